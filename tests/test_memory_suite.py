"""The memory suite's quick path on a tiny config: rows for every level, ratios, a verdict."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from suites import memory
from suites.engine.runner import run_suite
from suites.engine.suite import CellContext


def test_analytic_level_reproduces_the_readme_figure(tmp_path):
    cell = {
        "level": "analytic",
        "model": "favit_b1",
        "variant": "dense+sr1",
        "img_size": 224,
        "batch_size": 1,
        "mode": "train",
        "dtype": "fp32",
    }
    rows = memory.measure(cell, CellContext(device="cpu", run_dir=tmp_path, cell_id="a"))
    stage1 = rows[0]
    assert stage1["stage"] == 1 and stage1["queries"] == 3136 and stage1["global_keys"] == 3136
    assert stage1["global_score_elements"] == 3136 * 3136


def test_cell_filter_keeps_stage_levels_at_batch_1_train_and_the_reference_implementation():
    cells = memory.SUITE.cells(
        {
            "level": ["analytic", "model"],
            "variant": ["dense"],
            "impl": ["reference", "fast"],
            "batch_size": [1, 2],
            "mode": ["train", "infer"],
        },
        quick=True,
    )
    assert [(c["level"], c["impl"], c["batch_size"], c["mode"]) for c in cells] == [
        ("analytic", "reference", 1, "train"),
        *(("model", impl, b, m) for impl in ("reference", "fast") for b in (1, 2) for m in ("train", "infer")),
    ]  # fmt: skip


def test_any_baselines_model_is_measured_as_named_at_the_model_level():
    cells = memory.SUITE.cells(
        {"model": ["favit_b0", "pvt_v2_b0", "favit_b0:sdpa+ref"], "variant": ["dense", "as_named"]},
        quick=True,
    )
    seen = {(c["level"], c["model"], c["variant"], c["impl"]) for c in cells}
    assert {(lv, m, v) for lv, m, v, _ in seen if m == "favit_b0"} == {
        (level, "favit_b0", "dense") for level in memory.LEVELS
    }  # a FaViT size: its variants, never as named
    assert {x for x in seen if x[1] != "favit_b0"} == {
        ("model", "pvt_v2_b0", "as_named", "fast"),  # outside FaViT: one implementation
        ("model", "favit_b0:sdpa+ref", "as_named", "reference"),  # +ref: the reference only
    }
    assert memory.model_name(
        {"model": "favit_b1", "variant": "dense+gsr1", "impl": "reference"}
    ) == ("favit_b1:dense+gsr1+ref")
    assert (
        memory.model_name({"model": "favit_b1", "variant": "sdpa", "impl": "fast"})
        == "favit_b1:sdpa"
    )
    assert (
        memory.model_name({"model": "pvt_v2_b0", "variant": "as_named", "impl": "fast"})
        == "pvt_v2_b0"
    )
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        memory.SUITE.axis("model").kind("nope")
    assert "dense+gsr2" not in memory.SUITE.axis("variant").choices


def test_the_full_profile_measures_both_implementations_and_dtypes_every_row_named(tmp_path):
    cells = memory.SUITE.cells(quick=False)
    model = [c for c in cells if c["level"] == "model"]
    assert {c["impl"] for c in model} == {"reference", "fast"}
    assert {c["dtype"] for c in model} == {"fp32", "bf16"}
    assert {c["variant"] for c in model} == set(memory.VARIANTS)
    assert {c["impl"] for c in cells if c["level"] != "model"} == {"reference"}
    assert all({"impl", "dtype", "batch_size", "img_size"} <= set(c) for c in cells)


def test_gsr1_variants_count_every_patch_in_the_global_branch_only(tmp_path):
    ctx = CellContext(device="cpu", run_dir=tmp_path, cell_id="a")
    base = {"level": "analytic", "model": "favit_b1", "impl": "reference", "img_size": 224}
    base.update(batch_size=1, mode="train", dtype="fp32")
    rows = {
        v: memory.measure({**base, "variant": v}, ctx)[0]
        for v in ("dense", "dense+gsr1", "probsparse_seed+gsr1", "dense+sr1")
    }
    assert rows["dense+gsr1"]["global_keys"] == rows["probsparse_seed+gsr1"]["global_keys"] == 3136
    assert rows["dense+gsr1"]["global_score_elements"] == 3136 * 3136
    assert rows["dense+gsr1"]["sr_ratio"] == rows["dense"]["sr_ratio"] == 8  # the split published
    assert rows["dense+gsr1"]["global_sr_ratio"] == 1 and rows["dense"]["global_keys"] == 49
    assert rows["dense+sr1"]["sr_ratio"] == 1  # +sr1 changes the split too
    assert rows["probsparse_seed+gsr1"]["global_score_elements"] < 3136 * 3136


def test_tiny_run_gives_rows_ratios_and_a_summary(tmp_path):
    overrides = {
        "level": list(memory.LEVELS),
        "model": ["favit_b0"],
        "variant": ["probsparse_seed", "dense+sr1"],
        "impl": ["reference"],
        "img_size": [64],
        "batch_size": [1],
        "mode": ["train"],
        "dtype": ["fp32"],
    }
    run_dir = run_suite(
        memory.SUITE,
        overrides,
        out_dir=tmp_path / "run",
        device="cpu",
        isolate=False,
        progress=False,
    )
    rows = pd.read_csv(run_dir / "rows.csv")
    assert set(rows["status"]) == {"ok"}
    assert rows.groupby("level").size().to_dict() == {
        "analytic": 8,
        "global": 8,
        "attention": 8,
        "model": 2,
    }
    measured = rows[rows["level"] != "analytic"]
    assert (measured["step_mem_mib"] > 0).all() and set(measured["mem_source"]) == {
        "tensor_accounting"
    }
    ratios = pd.read_csv(run_dir / "reductions.csv")
    pick = ratios[(ratios["level"] == "model") & (ratios["comparison"] == "dense+sr1")].iloc[0]
    assert (pick["reading"], pick["impl"]) == ("every_patch_sr1", "reference")
    model_rows = rows[rows["level"] == "model"].set_index("variant")
    expected = (
        1
        - model_rows.loc["probsparse_seed", "step_mem_mib"]
        / model_rows.loc["dense+sr1", "step_mem_mib"]
    )
    assert abs(pick["reduction"] - expected) < 1e-9
    summary = (run_dir / "summary.md").read_text()
    assert "## Verdict" in summary and "`probsparse_seed` vs `dense+sr1`" in summary
    line = next(x for x in summary.splitlines() if "**model**" in x)
    assert "reading `every_patch_sr1`" in line
    assert "(reference implementation, fp32, sizes 64 px, batch 1)" in line
    assert f"{pick['reduction']:.1%}" in summary
    for name in (
        "reductions.md",
        "reductions.tex",
        "memory_vs_input_size.png",
        "reduction_per_level.pdf",
    ):
        assert (run_dir / name).exists(), name


def test_bench_report_rewrites_a_finished_runs_files_from_its_rows(tmp_path):
    import bench

    run_dir = run_suite(
        memory.SUITE,
        {"level": ["analytic"], "img_size": [64]},
        out_dir=tmp_path / "run",
        device="cpu",
        quick=True,
        progress=False,
    )
    summary = (run_dir / "summary.md").read_text()
    (run_dir / "summary.md").unlink()
    (run_dir / "reductions.csv").unlink()
    assert bench.main(["report", str(run_dir)]) == 0
    assert (run_dir / "summary.md").read_text() == summary
    assert (run_dir / "reductions.csv").exists()


def test_a_comparison_that_ran_out_of_memory_is_a_ratio_without_a_value():
    # a failed cell's row names no stage; at the model level it still pairs with ProbSparse's row
    setting = {
        "level": "model",
        "model": "favit_b1",
        "img_size": 512,
        "batch_size": 128,
        "mode": "train",
        "dtype": "fp32",
    }
    rows = pd.DataFrame.from_records(
        [
            {
                **setting,
                "variant": "probsparse_seed",
                "status": "ok",
                "stage": "all",
                "step_mem_mib": 10.0,
            },
            {**setting, "variant": "dense", "status": "ok", "stage": "all", "step_mem_mib": 20.0},
            {
                **setting,
                "variant": "dense+sr1",
                "status": "oom",
                "stage": None,
                "step_mem_mib": None,
            },
        ]
    )
    ratios = memory.reduction_table(rows).set_index("comparison")
    assert ratios.loc["dense", "reduction"] == 0.5
    assert ratios.loc["dense+sr1", "comparison_status"] == "oom"
    assert math.isnan(ratios.loc["dense+sr1", "reduction"])


def _rows_of(values: dict[str, float], **setting) -> pd.DataFrame:
    setting = {"level": "model", "model": "favit_b1", "img_size": 224, "batch_size": 32,
               "mode": "train", "dtype": "bf16", "stage": "all", "impl": "fast", **setting}  # fmt: skip
    return pd.DataFrame.from_records(
        [{**setting, "variant": v, "status": "ok", "step_mem_mib": m} for v, m in values.items()]
    )


def test_reductions_pair_variants_by_reading_and_only_like_with_like():
    values = {v: 100.0 for v in memory.VARIANTS}
    values.update({"probsparse_seed": 90.0, "probsparse_seed+gsr1": 50.0, "dense+sr1": 400.0})
    rows = pd.concat([_rows_of(values), _rows_of(values, impl="reference", dtype="fp32")])
    ratios = memory.reduction_table(rows)
    assert set(ratios.columns) >= {"reading", "impl", "probsparse", "comparison", "reduction"}
    seed = ratios[
        (ratios["probsparse"].str.startswith("probsparse_seed")) & (ratios["impl"] == "fast")
    ]
    pairs = {(r.reading, r.probsparse, r.comparison): r.reduction for r in seed.itertuples()}
    assert pairs == pytest.approx({
        ("published", "probsparse_seed", "dense"): 0.1,
        ("published", "probsparse_seed", "sdpa"): 0.1,
        ("every_patch", "probsparse_seed+gsr1", "dense+gsr1"): 0.5,
        ("every_patch", "probsparse_seed+gsr1", "sdpa+gsr1"): 0.5,
        ("every_patch_sr1", "probsparse_seed", "dense+sr1"): 1 - 90 / 400,
        ("every_patch_sr1", "probsparse_seed", "sdpa+sr1"): 0.1,
    })  # fmt: skip
    assert len(ratios) == 2 * 12  # each implementation and dtype apart, never across
    assert set(ratios.groupby(["impl", "dtype"]).size().index) == {
        ("fast", "bf16"),
        ("reference", "fp32"),
    }


def test_rows_of_a_run_without_the_impl_axis_read_as_the_reference_implementation():
    rows = _rows_of({"probsparse_seed": 10.0, "dense": 20.0}).drop(columns="impl")
    assert set(memory.reduction_table(rows)["impl"]) == {"reference"}
