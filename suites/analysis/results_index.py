"""Find and load committed runs under a results root, for the report-only suites (claims, paper).

Layout (DESIGN.md, results/README.md): a committed run is a folder
``<root>/<machine>/<suite>-<YYYYmmddTHHMMSSZ>[-n]/`` holding ``rows.csv`` and ``env.json``.
``<root>/runs/`` (scratch, git-ignored) is never read; ``<root>/reference/`` (CI references) does
not match the folder pattern and is not read either.

Which run is used (the documented rule, ``RunChoice``):

1. only runs of the suite, found as above;
2. device: suites whose figures depend on the accelerator (``Suite.needs_gpu``: memory, latency,
   scaling, accuracy) use only runs whose ``env.json`` says ``run.device == "cuda"``; the others
   (flops: deterministic counts) use runs of any device;
3. the full profile before the quick one (``run.quick`` in ``env.json``), then the newest by the
   UTC stamp of the folder name (then the ``-n`` suffix, then the machine folder's name);
4. the first run in that order that holds the rows the caller needs (``accept``).

A folder that matches the pattern but lacks ``rows.csv`` or ``env.json``, or whose ``rows.csv``
cannot be read or lacks a needed column, raises ``ResultsError`` (one line naming the file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from suites.analysis.compare import RunLoadError, load_run
from suites.engine.run_folder import ENV_FILE, RunFolderError, read_env
from suites.engine.suite import Axis, cell_id

RUN_FOLDER_RE = re.compile(r"^(?P<suite>[a-z0-9_]+)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?$")
SCRATCH_FOLDERS = ("runs",)
BASE_COLUMNS = ("cell_id", "status")


class ResultsError(ValueError):
    """A committed run that cannot be read; its message is one line naming the file."""


@dataclass(frozen=True)
class CommittedRun:
    """One run folder found under the results root."""

    path: Path
    machine: str  # the folder above the run, e.g. "h200" or "cpu"
    suite: str
    stamp: str  # UTC, YYYYmmddTHHMMSSZ
    suffix: int  # the "-n" of a second run in the same second, else 1
    device: str  # env.json run.device: "cuda" or "cpu"
    quick: bool  # env.json run.quick
    # (started_utc, commit) of the run and of each resume, in order: a resumed run's rows can
    # come from several code versions
    sessions: tuple[tuple[str, str], ...] = ()
    seed: int = 0  # env.json run.seed: the run's --seed

    def commits_of(self, finished_utc: pd.Series) -> pd.Series:
        """The commit each row was measured at: that of the last session started before the row
        finished (ISO UTC strings compare in time order); the first session's without a time."""
        first = self.sessions[0][1] if self.sessions else ""

        def commit(finished: object) -> str:
            found = first
            for started, commit in self.sessions:
                if isinstance(finished, str) and started <= finished:
                    found = commit
            return found

        return finished_utc.map(commit)

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"

    @property
    def label(self) -> str:
        return f"{self.machine}/{self.path.name}"

    def preference(self) -> tuple[bool, str, int, str]:
        """Sort key, larger = preferred: full profile, then newest stamp, suffix, machine name."""
        return (not self.quick, self.stamp, self.suffix, self.machine)


@dataclass(frozen=True)
class RunChoice:
    """A chosen run and its rows (all statuses, as written)."""

    run: CommittedRun
    rows: pd.DataFrame

    @property
    def rows_csv(self) -> Path:
        return self.run.path / "rows.csv"


def needs_gpu(suite: str) -> bool:
    """Whether the suite's committed figures count only from a GPU run (``Suite.needs_gpu``)."""
    from suites import get_suite

    return get_suite(suite).needs_gpu


def _read_env(folder: Path) -> dict:
    try:
        env = read_env(folder)
    except RunFolderError as err:
        raise ResultsError(str(err)) from None
    if not isinstance(env.get("run"), dict):
        raise ResultsError(f"{folder / ENV_FILE}: no 'run' record (suite, device, quick)")
    return env


def commit_label(git: Mapping[str, Any] | None) -> str:
    """``git.commit`` of an env record, abbreviated, ``+dirty`` when the files differed from it."""
    git = git or {}
    commit = str(git.get("commit") or "")[:10] or "unknown"
    return commit + ("+dirty" if git.get("dirty") else "")


def _sessions(env: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    records = [env, *(env.get("resumes") or [])]
    return tuple((str(r.get("started_utc", "")), commit_label(r.get("git"))) for r in records)


def find_runs(root: str | Path, suite: str) -> list[CommittedRun]:
    """Every committed run of ``suite`` under ``root``, most preferred first (see the module rule)."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"{root}: no such results folder")
    found = []
    for machine_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if machine_dir.name in SCRATCH_FOLDERS:
            continue
        for folder in sorted(p for p in machine_dir.iterdir() if p.is_dir()):
            match = RUN_FOLDER_RE.match(folder.name)
            if match is None or match["suite"] != suite:
                continue
            if not (folder / "rows.csv").is_file():
                raise ResultsError(f"{folder / 'rows.csv'}: missing (a run folder without rows)")
            env = _read_env(folder)
            run = env["run"]
            found.append(
                CommittedRun(
                    path=folder,
                    machine=machine_dir.name,
                    suite=suite,
                    stamp=match["stamp"],
                    suffix=int(match["n"] or 1),
                    device=str(run.get("device", "")),
                    quick=bool(run.get("quick", False)),
                    sessions=_sessions(env),
                    seed=int(run.get("seed") or 0),
                )
            )
    return sorted(found, key=CommittedRun.preference, reverse=True)


def load_rows(run: CommittedRun, required: Sequence[str] = ()) -> pd.DataFrame:
    """The run's ``rows.csv``; ``ResultsError`` (one line) when unreadable or missing a column."""
    try:
        rows = load_run(run.path).rows
    except RunLoadError as err:
        raise ResultsError(str(err)) from None
    missing = [c for c in (*BASE_COLUMNS, *required) if c not in rows.columns]
    if missing:
        raise ResultsError(
            f"{run.path / 'rows.csv'}: malformed: no column {', '.join(map(repr, missing))} "
            f"(a {run.suite} run has them)"
        )
    return rows


def choose_run(
    root: str | Path,
    suite: str,
    accept: Callable[[pd.DataFrame], bool] | None = None,
    required: Sequence[str] = (),
) -> RunChoice | None:
    """The first run of ``suite`` in rule order (module docstring) whose rows ``accept`` takes."""
    for run in find_runs(root, suite):
        if needs_gpu(suite) and not run.on_gpu:
            continue
        rows = load_rows(run, required)
        if accept is None or accept(rows):
            return RunChoice(run, rows)
    return None


def choose_rows_per_key(
    root: str | Path,
    suite: str,
    key: Callable[[pd.DataFrame], pd.Series],
    keep: Callable[[pd.DataFrame], pd.Series],
    required: Sequence[str] = (),
) -> pd.DataFrame:
    """For each key value, the kept rows of the first run in rule order that has that key.

    Used where a suite's runs are committed one model at a time (accuracy). ``key`` and ``keep``
    map a run's rows to a key per row and a boolean mask (``key`` sees ``run_seed``, the run's
    ``--seed``). The result carries ``run_path`` and ``run_label`` columns naming the run each row
    came from, ``run_commit`` the code version it was measured at, and ``run_rank`` the run's place
    in rule order (0 = most preferred); sorted by key, then run order.
    """
    parts = []
    seen: set = set()
    for order, run in enumerate(find_runs(root, suite)):
        if needs_gpu(suite) and not run.on_gpu:
            continue
        rows = load_rows(run, required)
        rows = rows[keep(rows).astype(bool)].copy()
        if rows.empty:
            continue
        rows["run_seed"] = run.seed
        rows["_key"] = key(rows).to_numpy()
        rows = rows[~rows["_key"].isin(seen)]
        seen.update(rows["_key"])
        rows["run_path"] = str(run.path)
        rows["run_label"] = run.label
        finished = rows["finished_utc"] if "finished_utc" in rows else pd.Series(None, rows.index)
        rows["run_commit"] = run.commits_of(finished.astype(object))
        rows["run_rank"] = order
        parts.append(rows)
    if not parts:
        return pd.DataFrame(
            columns=["_key", "run_seed", "run_path", "run_label", "run_commit", "run_rank"]
        )
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values(["_key", "run_rank"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class TimeEstimate:
    """Seconds a list of cells should take, from the ``wall_s`` of committed rows."""

    seconds: float
    measured: int  # cells with a committed row of their own (the newest counts)
    alike: int  # cells timed by the median of committed cells alike (model, compile, mode, ...)
    other: int  # cells timed by the median of every committed cell
    machines: tuple[str, ...]  # where the rows come from


# most specific first; axes a suite lacks are skipped (recipe and epochs: the accuracy suite's)
LIKENESS_AXES = ("model", "recipe", "epochs", "compile", "mode")


def estimate_time(
    root: str | Path, suite: str, cells: Sequence[Mapping[str, Any]], on_gpu: bool
) -> TimeEstimate | None:
    """How long ``cells`` should take, from the committed runs of ``suite`` on a GPU (``on_gpu``)
    or on a CPU; None when there is no such row. A cell's own newest row gives its time; else the
    median of the rows alike on ``LIKENESS_AXES``, then on fewer of them (the compile mode and the
    mode weigh most); else the median of all."""
    runs = [r for r in find_runs(root, suite) if r.on_gpu == on_gpu]
    parts = [load_rows(r, ["cell_id", "wall_s"]).assign(_machine=r.machine) for r in runs]
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if rows.empty:
        return None
    rows["wall_s"] = pd.to_numeric(rows["wall_s"], errors="coerce")
    per_cell = rows.dropna(subset=["wall_s"]).drop_duplicates("cell_id")  # newest run first
    if per_cell.empty:
        return None
    own = dict(zip(per_cell["cell_id"], per_cell["wall_s"], strict=True))
    axes = [a for a in LIKENESS_AXES if a in per_cell]
    # likeness from the most to the least specific: (model, compile, mode), (compile, mode), ...
    levels = [axes[i:] for i in range(len(axes))]
    medians = [
        per_cell.groupby([per_cell[a].astype(str) for a in level])["wall_s"].median().to_dict()
        for level in levels
    ]
    overall = float(per_cell["wall_s"].median())
    seconds, counts = 0.0, {"measured": 0, "alike": 0, "other": 0}
    for cell in cells:
        cid = cell_id(cell)
        if cid in own:
            seconds, counts["measured"] = seconds + own[cid], counts["measured"] + 1
            continue
        for level, median in zip(levels, medians, strict=True):
            key = tuple(str(cell.get(a, "eager" if a == "compile" else "")) for a in level)
            if (key[0] if len(key) == 1 else key) in median:
                seconds += float(median[key[0] if len(key) == 1 else key])
                counts["alike"] += 1
                break
        else:
            seconds, counts["other"] = seconds + overall, counts["other"] + 1
    machines = tuple(sorted(set(per_cell["_machine"])))
    return TimeEstimate(seconds, counts["measured"], counts["alike"], counts["other"], machines)


def relative_link(target: str | Path, document_dir: str | Path) -> str:
    """``target`` relative to the folder of the document that links it, with forward slashes."""
    rel = os.path.relpath(Path(target).resolve(), Path(document_dir).resolve())
    return Path(rel).as_posix()


def run_files(folder: Path, suffixes: Sequence[str] = (".png", ".md")) -> list[Path]:
    """Report files of a run folder (plots, tables), sorted by name; ``rows.csv`` is not included."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in suffixes)


def results_root_axis() -> Axis:
    """The one axis of the report-only suites (claims, paper): the results root to read."""
    return Axis(
        "results",
        default=["results"],
        help="the results root holding <machine>/<suite>-<UTC>/ runs",
    )
