"""The memory suite's quick path on a tiny config: rows for every level, ratios, a verdict."""

from __future__ import annotations

import math

import pandas as pd

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


def test_cell_filter_keeps_stage_levels_at_batch_1_train():
    cells = memory.SUITE.cells(
        {
            "level": ["analytic", "model"],
            "variant": ["dense"],
            "batch_size": [1, 2],
            "mode": ["train", "infer"],
        },
        quick=True,
    )
    assert [(c["level"], c["batch_size"], c["mode"]) for c in cells] == [
        ("analytic", 1, "train"), ("model", 1, "train"), ("model", 1, "infer"), ("model", 2, "train"), ("model", 2, "infer"),
    ]  # fmt: skip


def test_tiny_run_gives_rows_ratios_and_a_summary(tmp_path):
    overrides = {
        "level": list(memory.LEVELS),
        "model": ["favit_b0"],
        "variant": ["probsparse_seed", "dense+sr1"],
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
    model_rows = rows[rows["level"] == "model"].set_index("variant")
    expected = (
        1
        - model_rows.loc["probsparse_seed", "step_mem_mib"]
        / model_rows.loc["dense+sr1", "step_mem_mib"]
    )
    assert abs(pick["reduction"] - expected) < 1e-9
    summary = (run_dir / "summary.md").read_text()
    assert "## Verdict" in summary and "`probsparse_seed` vs `dense+sr1`" in summary
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
