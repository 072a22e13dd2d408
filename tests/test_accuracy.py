"""The accuracy suite: recipes, overrides, one cell end to end with a stand-in model, its report."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from suites.accuracy import RECIPES, SUITE, build_config, cell_seed, parse_extra
from suites.engine.suite import CellContext


def test_seed_recipe_is_the_published_one() -> None:
    config = build_config({"recipe": "seed"})
    assert (
        config.epochs,
        config.batch_size,
        config.lr,
        config.weight_decay,
        config.warmup_epochs,
    ) == (30, 128, 1e-3, 0.05, 5)
    assert (config.label_smoothing, config.ema_decay, config.img_size) == (0.1, 0.999, 224)
    augment = config.augment
    assert (
        augment.randaugment == "rand-m9-mstd0.5-inc1"
        and augment.erase_prob == 0.25
        and augment.interpolation == "bicubic"
    )
    assert not augment.mixing and augment.img_size == 224


def test_every_recipe_averages_its_ema_over_the_same_span_of_epochs() -> None:
    # an EMA of decay d averages about 1 / (1 - d) steps; CIFAR-10 has 50,000 training images
    spans = {
        name: 1 / (1 - recipe.ema_decay) / (50_000 // recipe.batch_size)
        for name, recipe in RECIPES.items()
    }
    assert spans["seed"] == pytest.approx(2.56, abs=0.01)
    for name, span in spans.items():
        assert span == pytest.approx(spans["seed"], rel=0.05), name


def test_axes_override_the_recipe() -> None:
    cell = {
        "recipe": "native32",
        "epochs": "5",
        "lr": "5e-4",
        "img_size": "64",
        "extra": "mixup_alpha:0.8+cutmix_alpha:1+randaugment:off",
    }
    config = build_config(cell, seed=7)
    assert (config.epochs, config.lr, config.img_size, config.seed) == (5, 5e-4, 64, 7)
    assert (
        config.batch_size == RECIPES["native32"].batch_size
    )  # "-" (not given) keeps the recipe's value
    assert (
        config.augment.img_size == 64 and config.augment.mixing and config.augment.randaugment == ""
    )


def test_bad_values_are_named() -> None:
    with pytest.raises(ValueError, match="recipe 'fast' is not valid; choices: seed, native32"):
        build_config({"recipe": "fast"})
    with pytest.raises(ValueError, match="epochs='ten' is not a valid int"):
        build_config({"recipe": "seed", "epochs": "ten"})
    with pytest.raises(ValueError, match=re.escape("extra item 'dropout:0.1' is not valid")):
        parse_extra("dropout:0.1")


def test_the_seed_axis_trains_one_cell_per_seed_into_one_run() -> None:
    """Three seeds of the claim run in one run folder: one cell each, each naming its seed."""
    from suites.engine.plan import PlanError, RunRequest, plan_run

    request = RunRequest(
        SUITE, {"model": ["favit_b1"], "seed": ["0", "1", "2"]}, out_dir=Path("unused")
    )
    plan = plan_run(request, planning_only=True)
    assert [cell["seed"] for cell in plan.cells] == ["0", "1", "2"]
    assert len({cell_seed(cell, run_seed=7) for cell in plan.cells}) == 3
    assert cell_seed({"seed": "-"}, run_seed=7) == 7  # the default: the run's --seed
    with pytest.raises(ValueError, match="seed 'one' is not valid; use an integer >= 0"):
        cell_seed({"seed": "one"}, run_seed=0)
    with pytest.raises(PlanError, match="seed 'one' is not valid"):  # before any cell runs
        plan_run(RunRequest(SUITE, {"seed": ["one"]}, out_dir=Path("unused")), planning_only=True)


def test_quick_profile_is_a_small_smoke_run() -> None:
    (cell,) = SUITE.cells(quick=True)
    config = build_config(cell, quick=True)
    assert cell["model"] == "favit_b0" and config.img_size == 32 and config.epochs == 1
    assert int(cell["train_images"]) <= 512


def test_one_cell_end_to_end_then_resume_and_report(tmp_path: Path, stand_in_model) -> None:
    cell = {
        **SUITE.cells(quick=True)[0],
        "model": "stand_in",
        "data": "synthetic",
        "img_size": "16",
        "epochs": "1",
        "batch_size": "32",
        "train_images": "64",
        "test_images": "32",
    }
    ctx = CellContext(device="cpu", run_dir=tmp_path, cell_id="cell0", quick=True)
    row = SUITE.measure(cell, ctx)
    assert row["augment_side_stream"] is True
    plain = CellContext(
        device="cpu",
        run_dir=tmp_path / "plain",
        cell_id="c",
        quick=True,
        options={"side_stream": "off"},
    )
    plain_row = SUITE.measure(cell, plain)
    assert plain_row["augment_side_stream"] is False
    assert plain_row["top1"] == row["top1"]  # the same batches either way
    assert (
        row["epochs_trained"] == 1
        and row["smoke_run"] is True
        and row["dataset"].startswith("synthetic")
    )
    assert row["train_images"] == 64 and row["infer_gmacs"] > 0 and row["train_seed"] == 0
    assert (ctx.artifact_dir / "epochs.csv").is_file() and (
        ctx.artifact_dir / "checkpoint.pt"
    ).is_file()
    again = SUITE.measure(
        cell, ctx
    )  # a resumed cell finds its finished checkpoint and trains no more
    assert again["top1"] == row["top1"]

    table = pd.DataFrame(
        [{**row, "status": "ok", "cell_id": "cell0", "model": "stand_in", "recipe": cell["recipe"]}]
    )
    SUITE.report(table, tmp_path)
    for name in (
        "accuracy.md",
        "accuracy.tex",
        "accuracy-vs-gmacs.png",
        "accuracy-vs-time.pdf",
        "learning-curves.png",
    ):
        assert (tmp_path / name).is_file(), name
    assert "SMOKE RUN" in (tmp_path / "accuracy.md").read_text()
