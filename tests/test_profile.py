"""The profile suite on the CPU: exact op counts, the top-kernels file, the row, the report."""

from __future__ import annotations

import csv
import math

import pandas as pd
import pytest
import torch

from suites import get_suite, profile
from suites.engine.suite import CellContext


def test_profile_step_counts_each_host_op_once_per_step() -> None:
    a, b = torch.randn(8, 8), torch.randn(8, 8)

    def step() -> None:
        torch.add(a, b)
        torch.mul(a, b)

    counts, top, source, top_ops = profile.profile_step(step, "cpu", steps=4)
    assert top_ops == top  # on the CPU both rank aten ops by self CPU time
    assert counts["cpu_ops_per_step"] == 2
    assert counts["kernels_per_step"] == 0 and source == "cpu"
    assert {name for name, _, _ in top} == {"aten::add", "aten::mul"}
    assert all(calls == 1 for _, calls, _ in top)
    assert [t for _, _, t in top] == sorted((t for _, _, t in top), reverse=True)


def test_measure_writes_top_kernels_and_a_row(tmp_path) -> None:
    ctx = CellContext(device="cpu", run_dir=tmp_path, cell_id="cell", quick=True)
    cell = {"model": "favit_b0", "img_size": 32, "batch_size": 1, "dtype": "fp32",
            "mode": "infer", "compile": "eager"}  # fmt: skip
    row = profile.measure(cell, ctx)
    assert row["kernels_per_step"] == 0 and row["cpu_ops_per_step"] > 100
    assert row["top_source"] == "cpu" and row["profiled_steps"] == 2
    assert math.isnan(row["inductor_kernels"])  # eager: nothing compiled
    assert row["cpu_ops_per_step"] > row["eager_ops_per_step"] > 100  # views, nested ops left out
    assert row["eager_traffic_gib_per_step"] > 0
    assert row["launch_bound"] is None and row["gpu_busy_share"] != row["gpu_busy_share"]  # NaN
    with open(tmp_path / "cells" / "cell" / profile.TOP_KERNELS_CSV) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == profile.TOP_IN_FILE
    with open(tmp_path / "cells" / "cell" / profile.TOP_OPS_CSV) as handle:
        ops = list(csv.DictReader(handle))
    assert [r["name"] for r in ops] == [r["name"] for r in rows]
    assert ops[0]["source"] == "cpu (by aten op)"
    assert [int(r["rank"]) for r in rows] == list(range(1, profile.TOP_IN_FILE + 1))
    assert all(r["name"].startswith("aten::") for r in rows)
    shares = [float(r["share_pct"]) for r in rows]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 100.0 + 1e-6
    top3 = row["top_kernels"].split("; ")
    assert [entry.rsplit(" (", 1)[0] for entry in top3] == [r["name"] for r in rows[:3]]


def test_summarize_top_gives_shares_of_the_total() -> None:
    entries = [("a", 1, 6.0), ("b", 2, 3.0), ("c", 1, 1.0), ("d", 5, 0.0)]
    assert profile.summarize_top(entries, 10.0, 3) == "a (60.0%); b (30.0%); c (10.0%)"
    assert profile.summarize_top(entries, 0.0, 3) == ""


def test_report_writes_tables_with_kernel_ratios(tmp_path) -> None:
    base = {"img_size": 224, "batch_size": 128, "dtype": "bf16", "mode": "train",
            "compile": "eager", "status": "ok", "cpu_ops_per_step": 10.0,
            "device_ms_per_step": 1.0, "gpu_busy_share": 0.5, "launch_bound": True,
            "profiled_step_ms": 2.0, "top_kernels": "k (50.0%)"}  # fmt: skip
    table = pd.DataFrame(
        [
            {**base, "model": "pvt_v2_b1", "kernels_per_step": 400.0},
            {**base, "model": "favit_b1", "kernels_per_step": 600.0},
            {**base, "model": "favit_b1", "kernels_per_step": 900.0, "mode": "infer"},
            {**base, "model": "favit_b1+ref", "status": "error", "kernels_per_step": None},
        ]
    )
    ratios = profile.add_kernel_ratio(table[table["status"] == "ok"])
    by_model = ratios.set_index(["model", "mode"])["kernels_vs_ref"]
    assert by_model[("favit_b1", "train")] == 1.5 and by_model[("pvt_v2_b1", "train")] == 1.0
    assert pd.isna(by_model[("favit_b1", "infer")])  # no reference row at those settings
    profile.report(table, tmp_path)
    markdown = (tmp_path / "profile.md").read_text()
    assert "| favit_b1 | train |" in markdown and "1.50" in markdown
    assert "favit_b1+ref" not in markdown  # only ok rows
    assert (tmp_path / "profile.tex").read_text().startswith(r"\begin{table}")


def test_suite_is_registered_with_documented_axes() -> None:
    suite = get_suite("profile")
    assert suite.axis_names == ["model", "img_size", "batch_size", "dtype", "mode", "compile"]
    assert list(suite.axis("model").default) == ["favit_b1+ref", "favit_b1", "pvt_v2_b1"]
    assert len(suite.cells()) == 3 * 2 * 2
    with pytest.raises(ValueError, match="bad compile 'cudagraph'; valid: eager, compile"):
        suite.axis("compile").kind("cudagraph")
    with pytest.raises(ValueError, match="bad batch_size 'max'"):
        suite.axis("batch_size").kind("max")
