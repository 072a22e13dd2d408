"""A worker process's start: what a cell's garbage collections have to scan."""

from __future__ import annotations

import csv
import gc

from suites.engine.runner import run_suite
from suites.engine.suite import Axis, Suite


def collector_view(cell, ctx):
    """What the collector sees in the cell's worker: frozen objects, and those it would scan."""
    return {"frozen": gc.get_freeze_count(), "tracked": len(gc.get_objects())}


SEEING = Suite("gc", "", [Axis("x", default=[1, 2], kind=int)], collector_view)


def test_a_workers_imports_are_out_of_the_collectors_sight_so_collections_scan_the_cells_objects(
    tmp_path,
):
    run_dir = run_suite(SEEING, out_dir=tmp_path / "run", workers=1, progress=False)
    with (run_dir / "rows.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    for row in rows:  # torch and the suite, frozen: a full collection walks a few objects
        frozen, tracked = int(row["frozen"]), int(row["tracked"])
        assert frozen > 10_000 and tracked < frozen / 10, row
