"""How close ``--dry-run``'s time estimate comes: each committed GPU run that records its wall time
(the current harness wrote it), its cells estimated from the other committed runs ("held out", as
a dry run before it would have) and from all of them, against the wall time it recorded.

    python -m suites.analysis.estimate_check > results/ESTIMATES.md
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from suites import get_suite
from suites.analysis.results_index import CommittedRun, TimeEstimate, estimate_time, find_runs
from suites.engine.render import markdown_table
from suites.engine.run_folder import read_env

CHECKED_SUITES = ("latency", "scaling", "memory", "crosscheck")
TARGET_PCT = 20.0  # the dry run's estimate of a run lies within this much of its wall time


@dataclass(frozen=True)
class EstimateCheck:
    run: CommittedRun
    wall_s: float
    held_out: TimeEstimate | None  # from the other committed runs only
    with_own: TimeEstimate | None  # its own rows included

    @staticmethod
    def error_pct(estimate: TimeEstimate | None, wall_s: float) -> float | None:
        return None if estimate is None else 100.0 * (estimate.seconds / wall_s - 1.0)


def timed_runs(root: str | Path) -> list[CommittedRun]:
    """The committed GPU runs that record their wall time and were never resumed."""
    runs = []
    for suite in CHECKED_SUITES:
        for run in find_runs(root, suite):
            if run.on_gpu and run.wall_s is not None and len(run.sessions) == 1:
                runs.append(run)
    return runs


def check_run(root: str | Path, run: CommittedRun) -> EstimateCheck:
    """The run's cells, planned again from its ``env.json``, estimated held out and with its rows."""
    record = read_env(run.path)["run"]
    cells = get_suite(run.suite).cells(record.get("axes"), quick=run.quick)
    options = record.get("options") or None
    reuse = bool(record.get("reuse_workers"))

    def estimate(without: Path | None) -> TimeEstimate | None:
        return estimate_time(
            root, run.suite, cells, on_gpu=True, options=options, quick=run.quick,
            reuse_workers=reuse, without=without,
        )  # fmt: skip

    return EstimateCheck(run, float(run.wall_s or 0.0), estimate(run.path), estimate(None))


def report(root: str | Path) -> str:
    rows = []
    for check in (check_run(root, run) for run in timed_runs(root)):
        cells = {"run": check.run.label, "wall (s)": f"{check.wall_s:.0f}"}
        for name, estimate in (("held out", check.held_out), ("with its rows", check.with_own)):
            error = EstimateCheck.error_pct(estimate, check.wall_s)
            cells[f"{name} (s)"] = "none" if estimate is None else f"{estimate.seconds:.0f}"
            cells[f"{name}: error"] = "" if error is None else f"{error:+.0f}%"
        rows.append(cells)
    return "\n".join([
        "# How close the dry run's time estimate comes",
        "",
        "Written by `python -m suites.analysis.estimate_check > results/ESTIMATES.md`. Each "
        "committed GPU run that records its wall time, its cells estimated as `--dry-run` does: "
        "held out (from the other committed runs, as a dry run before it would have) and with its "
        f"own rows. The target: within {TARGET_PCT:.0f}% of the wall time. A held-out estimate "
        "is only as good as the runs left: where no other run measured the models, their time is "
        "a guess (the dry run prints its range); where only runs of an older, slower harness "
        "measured them (runs without a recorded wall time), their cells' own times are too long.",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ])  # fmt: skip


def main() -> int:
    sys.stdout.write(report("results"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
