"""The column schema: every column every suite writes (now, and in the committed runs) is in it,
under one name per quantity; docs/COLUMNS.md is generated from it; every row has model_id; CSV
files end lines with LF."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_crosscheck import FAKE_BENCHMARK

import bench
from suites.engine import columns
from suites.engine.run_folder import read_rows, read_rows_csv

REPO_ROOT = Path(__file__).resolve().parent.parent
TOY_MODULE = "columns_toy_nets"
TOY = f"{TOY_MODULE}:TinyNet"
TOY_SOURCE = """
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.conv(x).relu().mean((2, 3)))
"""
CROSSCHECK_SMALL = {"img_size": 32, "infer_batch": 1, "train_batch": 1, "warmup_steps": 0,
                    "timed_steps": 5, "repeats": 2}  # fmt: skip
# the smallest cells that write every column the suite writes on a CPU (memory's model level is
# FaViT only and slow on CPU: its columns come from its committed reference run)
LIVE_RUNS = {
    "flops": ["--models", f"favit_b0:probsparse,{TOY}", "--img-size", "32"],
    "latency": ["--models", TOY, "--img-size", "16", "--batch-size", "2", "--mode", "infer,train"],
    "scaling": ["--models", TOY, "--img-size", "16,32", "--batch-size", "1", "--mode", "infer"],
    "profile": ["--models", TOY, "--img-size", "16", "--batch-size", "2", "--mode", "train"],
    "accuracy": [
        "--models",
        TOY,
        *("--set", "data=synthetic", "--set", "img_size=16", "--set", "epochs=1"),
        *("--batch-size", "32", "--set", "train_images=64", "--set", "test_images=32"),
    ],
    "crosscheck": [
        "--models",
        "deit_tiny",
        "--mode",
        "infer,train",
        "--option",
        "benchmark_py={fake}",
        *(f"--option={k}={v}" for k, v in CROSSCHECK_SMALL.items()),
    ],
    "claims": ["--set", "results={empty}"],
    "paper": ["--set", "results={empty}"],
}


@pytest.fixture(scope="module")
def live_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each suite run through the command line, in this process, on a toy model."""
    root = tmp_path_factory.mktemp("columns")
    (root / f"{TOY_MODULE}.py").write_text(TOY_SOURCE)
    empty = root / "empty-results"
    empty.mkdir()
    fake = root / "fake_timm" / "benchmark.py"  # timm's benchmark.py stand-in
    fake.parent.mkdir()
    fake.write_text(FAKE_BENCHMARK)
    sys.path.insert(0, str(root))
    runs = {}
    try:
        for suite, args in LIVE_RUNS.items():
            out = root / suite
            args = [a.format(empty=empty, fake=fake) for a in args]
            common = ["--device", "cpu", "--quick", "--no-isolate", "--no-progress"]
            assert bench.main(["--suite", suite, *common, "--out", str(out), *args]) == 0
            rows = read_rows(out)
            assert (rows["status"] == "ok").all(), rows[["cell_id", "reason"]]
            runs[suite] = out
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(TOY_MODULE, None)
    return runs


def committed_runs() -> list[Path]:
    """Every committed run folder (results/<machine>/..., the references), not scratch runs."""
    return sorted(
        p.parent for p in (REPO_ROOT / "results").rglob("rows.csv") if "runs" not in p.parts
    )


def suite_of(run_dir: Path) -> str:
    return json.loads((run_dir / "env.json").read_text())["run"]["suite"]


def columns_by_suite(run_dirs: list[Path]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for run_dir in run_dirs:
        out.setdefault(suite_of(run_dir), set()).update(read_rows_csv(run_dir / "rows.csv"))
    return out


def not_in_schema(seen: dict[str, set[str]]) -> list[str]:
    missing = []
    for suite, names in sorted(seen.items()):
        for name in sorted(names):
            entry = columns.find(name)
            if entry is None or suite not in entry.suites:
                missing.append(f"{suite}: {name}")
    return missing


def test_every_column_a_suite_writes_is_in_the_schema(live_runs: dict[str, Path]) -> None:
    seen = columns_by_suite(list(live_runs.values()))
    assert set(seen) == set(LIVE_RUNS)
    assert not_in_schema(seen) == []


def test_every_column_of_the_committed_runs_is_in_the_schema() -> None:
    runs = committed_runs()
    assert len(runs) > 10 and {"memory", "flops", "profile"} <= {suite_of(r) for r in runs}
    assert not_in_schema(columns_by_suite(runs)) == []


def test_every_schema_column_is_written_by_a_suite(live_runs: dict[str, Path]) -> None:
    seen = columns_by_suite([*live_runs.values(), *committed_runs()])
    unseen = [
        c.name
        for c in columns.COLUMNS
        if not any(c.matches(name) for suite in c.suites for name in seen.get(suite, ()))
    ]
    assert unseen == []


def test_one_name_per_quantity() -> None:
    names = [c.name for c in columns.COLUMNS]
    assert len(names) == len(set(names))
    # parameters: timm's param_count (millions), never a second column in another unit
    assert columns.find("params") is None and columns.find("param_count").timm
    # the allocator's readings: the step suites' names, in the memory suite too
    for name in ("peak_mem_mib", "step_mem_mib", "steady_mem_mib", "reserved_mem_mib"):
        assert {"latency", "memory"} <= set(columns.find(name).suites)
    assert not [c.name for c in columns.COLUMNS if c.name.startswith("gpu_peak")]


def test_docs_columns_md_is_the_generated_text() -> None:
    assert (REPO_ROOT / columns.DOC_PATH).read_text() == columns.markdown()


def test_the_generator_writes_the_file(tmp_path: Path) -> None:
    assert columns.main([str(tmp_path)]) == 0
    assert (tmp_path / "docs" / "COLUMNS.md").read_text() == columns.markdown()


def test_every_row_carries_its_model_id(live_runs: dict[str, Path]) -> None:
    """The library-qualified name each row's model was built from, in every measuring suite."""
    flops = read_rows(live_runs["flops"])
    assert dict(zip(flops["model"], flops["model_id"], strict=True)) == {
        "favit_b0:probsparse": "favit:favit_b0",
        TOY: TOY,
    }
    for suite in ("latency", "scaling", "profile", "accuracy"):
        assert set(read_rows(live_runs[suite])["model_id"]) == {TOY}, suite


def test_committed_runs_read_under_todays_names(tmp_path: Path) -> None:
    """An older run's repeated and renamed columns: one name per quantity on reading."""
    old = pd.DataFrame(
        {
            "cell_id": ["a"],
            "status": ["ok"],
            "params": [25557032],
            "param_count": [25.557032],
            "model_id": ["torchvision:resnet50"],
            "gpu_peak_above_baseline_mib": [10.0],
            "gpu_peak_allocated_mib": [30.0],
            "step_mem_mib": [10.0],
        }
    )
    old.to_csv(tmp_path / "rows.csv", index=False)
    rows = read_rows_csv(tmp_path / "rows.csv")
    assert list(rows.columns) == [
        "cell_id",
        "status",
        "param_count",
        "model_id",
        "peak_mem_mib",
        "step_mem_mib",
    ]
    assert rows.loc[0, "model_id"] == "tv:resnet50" and rows.loc[0, "peak_mem_mib"] == 30.0


def test_every_csv_a_run_writes_ends_lines_with_lf(live_runs: dict[str, Path]) -> None:
    # timm's benchmark.py writes the crosscheck cells' repeat*.csv with its own line endings
    written = [
        p
        for run in live_runs.values()
        for p in run.rglob("*.csv")
        if not (p.name.startswith("repeat") and "cells" in p.parts)
    ]
    names = {p.name for p in written}
    assert {"rows.csv", "modules.csv", "top_kernels.csv", "epochs.csv"} <= names
    assert [str(p) for p in written if b"\r\n" in p.read_bytes()] == []
