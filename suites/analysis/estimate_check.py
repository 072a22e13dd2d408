"""How close ``--dry-run``'s time estimate comes: each committed GPU run that records its wall time
(the current harness wrote it), the cells it measured estimated from the other committed runs
("held out", as a dry run before it would have) and from all of them, against the wall time it
recorded. Runs made only to check the estimate lie in ``<machine>/estimate-check/``, where no
other suite reads them.

    python -m suites.analysis.estimate_check > results/ESTIMATES.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from suites import get_suite
from suites.analysis.compare import load_run
from suites.analysis.results_index import TimeEstimate, estimate_time, find_runs
from suites.engine.render import markdown_table
from suites.engine.run_folder import read_env
from suites.engine.suite import cell_id

CHECKED_SUITES = ("latency", "scaling", "memory", "crosscheck")
CHECK_FOLDER = "estimate-check"  # <machine>/estimate-check/<suite>-<UTC>/: read by no other suite
TARGET_PCT = 20.0  # the dry run's estimate of a run lies within this much of its wall time


@dataclass(frozen=True)
class EstimateCheck:
    label: str  # <machine>/<run folder>
    gpu: str  # the GPU env.json names
    cells: int  # the cells it measured
    planned: int  # the cells it planned (more where it was stopped early)
    wall_s: float
    held_out: TimeEstimate | None  # from the other committed runs only
    with_own: TimeEstimate | None  # its own rows included; None for a check run

    @staticmethod
    def error_pct(estimate: TimeEstimate | None, wall_s: float) -> float | None:
        return None if estimate is None else 100.0 * (estimate.seconds / wall_s - 1.0)


def timed_runs(root: str | Path) -> list[Path]:
    """The committed GPU runs that record their wall time and were never resumed."""
    return [
        run.path
        for suite in CHECKED_SUITES
        for run in find_runs(root, suite)
        if run.on_gpu and run.wall_s is not None and len(run.sessions) == 1
    ]


def check_runs(root: str | Path) -> list[Path]:
    """The runs in ``<machine>/estimate-check/``, made to check the estimate."""
    return sorted(p.parent for p in Path(root).glob(f"*/{CHECK_FOLDER}/*/env.json"))


def check_run(root: str | Path, folder: Path) -> EstimateCheck:
    """The cells the run in ``folder`` measured (planned again from its ``env.json``), estimated
    held out and, for a run the suites read, with its own rows too."""
    env = read_env(folder)
    record = env["run"]
    planned = get_suite(record["suite"]).cells(record.get("axes"), quick=bool(record.get("quick")))
    measured = set(load_run(folder).rows["cell_id"])
    cells = [cell for cell in planned if cell_id(cell) in measured]
    read_by_suites = folder.parent.name != CHECK_FOLDER

    def estimate(without: Path | None) -> TimeEstimate | None:
        return estimate_time(
            root, record["suite"], cells, on_gpu=True, options=record.get("options") or None,
            quick=bool(record.get("quick")), reuse_workers=bool(record.get("reuse_workers")),
            without=without,
        )  # fmt: skip

    return EstimateCheck(
        label=str(folder.relative_to(root)),
        gpu=str(env["gpus"][0]["name"]),
        cells=len(cells),
        planned=len(planned),
        wall_s=float(env["wall_s"]),
        held_out=estimate(folder),
        with_own=estimate(None) if read_by_suites else None,
    )


def report(root: str | Path) -> str:
    rows = []
    for folder in [*timed_runs(root), *check_runs(root)]:
        check = check_run(root, folder)
        cells = {"run": check.label, "GPU": check.gpu, "cells": f"{check.cells} of {check.planned}"}
        cells["wall (s)"] = f"{check.wall_s:.0f}"
        for name, estimate in (("held out", check.held_out), ("with its rows", check.with_own)):
            error = EstimateCheck.error_pct(estimate, check.wall_s)
            cells[f"{name} (s)"] = "none" if estimate is None else f"{estimate.seconds:.0f}"
            cells[f"{name}: error"] = "" if error is None else f"{error:+.0f}%"
        rows.append(cells)
    return "\n".join([
        "# How close the dry run's time estimate comes",
        "",
        "Written by `python -m suites.analysis.estimate_check > results/ESTIMATES.md`. Each "
        "committed GPU run that records its wall time, the cells it measured estimated as "
        "`--dry-run` does: held out (from the other committed runs, as a dry run before it would "
        "have) and with its own rows. Runs in `<machine>/estimate-check/` were made to check the "
        "estimate (no other suite reads them). The target: within "
        f"{TARGET_PCT:.0f}% of the wall time. A held-out estimate is only as good as the runs "
        "left: where no other run measured the models, their time is a guess (the dry run prints "
        "its range); where only runs of an older, slower harness measured them (runs without a "
        "recorded wall time), their cells' own times are too long. The step times come from the "
        "committed runs whatever GPU they were measured on.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ])  # fmt: skip


def main() -> int:
    sys.stdout.write(report("results"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
