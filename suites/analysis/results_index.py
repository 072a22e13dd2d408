"""Find and load committed runs under a results root, for the report-only suites (claims, paper).

Layout (results/README.md): a committed run is a folder
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

import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from suites.analysis.compare import RunLoadError, load_run
from suites.engine.row_flags import flag_column
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
    # env.json wall_s: the run's wall seconds, resumes included; the harness that records it is the
    # one whose cost a time estimate calibrates on (``estimate_time``)
    wall_s: float | None = None

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
                    wall_s=_float_or_none(env.get("wall_s")),
                )
            )
    return sorted(found, key=CommittedRun.preference, reverse=True)


def _float_or_none(value: Any) -> float | None:
    number = pd.to_numeric(value, errors="coerce")
    return None if pd.isna(number) else float(number)


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


# ---- how long a run should take ------------------------------------------------------------------


@dataclass(frozen=True)
class TimeEstimate:
    """Seconds a list of cells should take (``estimate_time``), with a range and where it came from."""

    seconds: float
    low_s: float  # the range: cells whose time is a guess count from half to twice their estimate
    high_s: float
    measured: int  # cells whose own step (or, without a step model, own row) was measured before
    alike: int  # cells timed by committed cells alike (step suites: another size or compile mode)
    scaled: int  # step time from other models scaled by GMACs (a guess: in the range)
    other: int  # cells timed by the median of every committed cell (a guess: in the range)
    machines: tuple[str, ...]  # where the rows come from
    method: str = "wall_s"  # "components" (step suites) or "wall_s" (committed cells' wall_s)

    def describe(self, on_gpu: bool, reuse_workers: bool) -> str:
        """One line for ``--dry-run``: the minutes, the range where some cells' time is a guess,
        and where the figures came from."""
        where = "a GPU" if on_gpu else "a CPU"
        machines = ", ".join(self.machines)
        guessed = self.scaled + self.other
        span = (
            f" (range {self.low_s / 60:.1f}-{self.high_s / 60:.1f} min: {guessed} cells' time "
            "is a guess)"
            if guessed
            else ""
        )
        if self.method == "components":
            how = (
                f"step times from committed rows on {machines}: {self.measured} cells' own step, "
                f"{self.alike} the same step compiled or laid out otherwise, {self.scaled} scaled "
                f"from other models by GMACs, {self.other} at the median cell; the harness's cost "
                "from the timing options in force, calibrated on the committed runs that record "
                "their wall time"
                + ("" if reuse_workers else "; a fresh worker per cell (--reuse-workers: faster)")
            )
        else:
            how = (
                f"from committed runs on {machines}: {self.measured} cells measured before, "
                f"{self.alike} timed by alike cells (same variant, model, size, batch, dtype, "
                f"mode... as far as rows match), {self.other} at the median cell; cell start-up "
                "included, compile time where measured"
            )
        return f"estimated {self.seconds / 60:.1f} min on {where}{span} ({how})"


# most specific first; a level drops the first axes (axes a suite lacks are skipped)
LIKENESS_AXES = (
    "variant", "impl", "model", "recipe", "epochs", "img_size", "batch_size", "dtype", "compile",
    "mode", "level",
)  # fmt: skip


def _committed_rows(
    root: str | Path, suites: Sequence[str], on_gpu: bool, without: Path | None = None
) -> pd.DataFrame:
    """Every committed row of ``suites`` on that kind of device, newest preferred run first, but
    for the run folder ``without``.
    ``_timed``: the row's run records its wall time (the current harness wrote it);
    ``_run_overhead_s``: that run's wall seconds beyond its cells' (start, report), where it was
    never resumed."""
    parts = []
    for suite in suites:
        for run in find_runs(root, suite):
            if run.on_gpu == on_gpu and run.path != without:
                rows = load_rows(run, ["cell_id", "wall_s"])
                parts.append(
                    rows.assign(
                        _machine=run.machine,
                        _run=run.label,
                        _timed=run.wall_s is not None,
                        _run_overhead_s=_run_overhead_s(run, rows),
                    )
                )
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not rows.empty:
        rows["wall_s"] = pd.to_numeric(rows["wall_s"], errors="coerce")
    return rows


def _run_overhead_s(run: CommittedRun, rows: pd.DataFrame) -> float:
    """A run's wall seconds outside its cells; NaN without a recorded wall time or after a resume."""
    if run.wall_s is None or len(run.sessions) > 1:
        return math.nan
    cells = pd.to_numeric(rows.drop_duplicates("cell_id")["wall_s"], errors="coerce")
    return run.wall_s - float(cells.sum())


def run_overhead_s(rows: pd.DataFrame) -> float:
    """A run's own seconds (start, report): the median over the committed runs that record their
    wall time, else ``RUN_OVERHEAD_S``."""
    per_run = rows.groupby("_run", sort=False)["_run_overhead_s"].first().dropna()
    return float(per_run.median()) if len(per_run) else RUN_OVERHEAD_S


def estimate_time(
    root: str | Path,
    suite: str,
    cells: Sequence[Mapping[str, Any]],
    on_gpu: bool,
    options: Mapping[str, Any] | None = None,
    quick: bool = False,
    reuse_workers: bool = False,
    without: Path | None = None,
) -> TimeEstimate | None:
    """How long ``cells`` should take, from the committed runs on a GPU (``on_gpu``) or a CPU;
    None when there is no such row.

    The step suites (latency, scaling: ``STEP_SUITES``) add up each cell's parts
    (``StepCostModel``): its step time from committed rows of that step in either suite (a
    property of the model, batch, dtype, mode and GPU, not of the harness), the harness's cost from
    the timing options in force (``options``, ``quick``) and a few calibrated constants. Other
    suites take a cell's own newest ``wall_s``, else the median of the rows alike on
    ``LIKENESS_AXES`` (then on fewer of them), else the median of all. Both add a run's own
    overhead (``run_overhead_s``). ``without``: a run folder left out (to test the estimate of a
    run on the runs before it).
    """
    if suite in STEP_SUITES:
        rows = _committed_rows(root, STEP_SUITES, on_gpu, without)
        if rows.empty:
            return None
        timing = _timing_options(suite, on_gpu, quick, options)
        gmacs = _committed_gmacs(root)
        return StepCostModel(rows, on_gpu, gmacs).estimate(cells, timing, reuse_workers)
    rows = _committed_rows(root, [suite], on_gpu, without)
    if rows.empty:
        return None
    return _wall_s_estimate(rows, cells)


def _wall_s_estimate(rows: pd.DataFrame, cells: Sequence[Mapping[str, Any]]) -> TimeEstimate | None:
    per_cell = rows.dropna(subset=["wall_s"]).drop_duplicates("cell_id")  # newest run first
    if per_cell.empty:
        return None
    own = dict(zip(per_cell["cell_id"], per_cell["wall_s"], strict=True))
    axes = [a for a in LIKENESS_AXES if a in per_cell]
    levels = [axes[i:] for i in range(len(axes))]
    medians = [
        per_cell.groupby([per_cell[a].astype(str) for a in level])["wall_s"].median().to_dict()
        for level in levels
    ]
    overall = float(per_cell["wall_s"].median())
    seconds, guessed, counts = run_overhead_s(rows), 0.0, {"measured": 0, "alike": 0, "other": 0}
    for cell in cells:
        cid = cell_id(cell)
        if cid in own:
            seconds, counts["measured"] = seconds + own[cid], counts["measured"] + 1
            continue
        for level, median in zip(levels, medians, strict=True):
            key = tuple(str(cell.get(a, "eager" if a == "compile" else "")) for a in level)
            key = key[0] if len(key) == 1 else key
            if key in median:
                seconds += float(median[key])
                counts["alike"] += 1
                break
        else:
            seconds, guessed, counts["other"] = (
                seconds + overall,
                guessed + overall,
                counts["other"] + 1,
            )
    machines = tuple(sorted(set(per_cell["_machine"])))
    low, high = seconds - guessed / 2, seconds + guessed
    return TimeEstimate(
        seconds, low, high, counts["measured"], counts["alike"], 0, counts["other"], machines
    )


# ---- the step suites' cost model

STEP_SUITES = ("latency", "scaling")  # their cells are suites.engine.step.measure_step
STEP_KEY = ("model", "img_size", "batch_size", "dtype", "mode", "channels_last", "compile")
STEP_DEFAULTS = {"channels_last": "off", "compile": "eager", "dtype": "bf16", "mode": "infer"}
# harness constants (seconds) that the committed rows cannot give apart; measured on the H200 host
# or the code's own cost: the gap between two cells, a fresh worker's extra cost per cell (process
# and CUDA start, and one-time per-shape costs it cannot share), one round's overhead (a collection
# of the few objects a cell makes, a sync) and a skipped cell. The run's own overhead (start: forkserver,
# imports, env.json, the device's matmul peak; the report), taking a kept model back and building
# one are calibrated on the committed runs; ``RUN_OVERHEAD_S``, ``RESTORE_S`` and ``BUILD_S``
# stand in where no committed row records them.
GAP_S, FRESH_WORKER_S, ROUND_S, SKIPPED_S = 0.05, 21.0, 0.01, 0.5
RUN_OVERHEAD_S, RESTORE_S, BUILD_S = 12.0, 0.05, 0.5
# steps a meter window held in rows without ``profiled_steps``: a memory step, a warm step and three
# profiled ones
OLD_METER_STEPS = 5
GUESS_RANGE = (0.5, 2.0)  # a guessed cell's time lies between these multiples of its estimate


def _committed_gmacs(root: str | Path) -> dict[tuple[str, str], float]:
    """(model, img_size) -> GMACs per image from the committed flops runs (any device: counts are
    the same everywhere), newest first."""
    gmacs: dict[tuple[str, str], float] = {}
    for run in find_runs(root, "flops"):
        rows = load_rows(run)
        if not {"model", "img_size", "flop_counter_gmacs"} <= set(rows.columns):
            continue
        for row in rows[rows["status"] == "ok"].to_dict("records"):
            key = (str(row["model"]), _text(row["img_size"], ""))
            value = pd.to_numeric(row["flop_counter_gmacs"], errors="coerce")
            if key not in gmacs and pd.notna(value):
                gmacs[key] = float(value)
    return gmacs


def _timing_options(suite: str, on_gpu: bool, quick: bool, options: Mapping[str, Any] | None):
    from suites import get_suite
    from suites.engine.step import TimingOptions

    full_defaults = {}
    if suite == "scaling":
        from suites.scaling import SCALING_TIMING

        full_defaults = SCALING_TIMING
    get_suite(suite)  # an unknown suite fails here, not in the model
    device = "cuda" if on_gpu else "cpu"
    return TimingOptions.for_device(device, quick, options, full_defaults)


def _step_key(values: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(_text(values.get(a), STEP_DEFAULTS.get(a, "")) for a in STEP_KEY)


def _text(value: Any, default: str) -> str:
    """An axis value as rows.csv and a cell both spell it (a column with gaps reads 224 as 224.0)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class StepCostModel:
    """Seconds of a step suite's cells from their parts, calibrated on committed step rows.

    The harness's cost is calibrated on the runs that record their wall time (written by the
    current harness; every run where none does), the step time (a property of the model, batch,
    dtype, mode and GPU) on any run, newest first.

    A cell: its setup (taking back the model a reused worker kept; else building it, plus its FLOP
    count once per model and input size in a run, as that model's committed setup took) + first step (as committed: its one-time per-shape cost included) +
    the ``max`` search's failed tries + rounds + meters + ``GAP_S``. Rounds follow
    ``suites.engine.step.time_step``'s rules for the step time ``s``: round 1 warms up to
    ``warmup_steps - 1`` steps within ``max_warmup_s`` (the first step counted, at least one), a
    round times ``n = max(timed_steps, min_round_s / s)`` steps, later rounds one warm step (none
    from ``LONG_STEP_S``); a launch-bound step runs two rounds, a GPU-bound one the committed
    GPU-bound rows' mean. Meters: the profiler's cost (calibrated: rows' ``meters_s`` beyond their
    profiled steps) and one step (``busy_steps`` under ``ONE_PROFILED_STEP_MS``). A run adds its
    overhead (the median of the committed runs' wall time beyond their cells') and
    ``FRESH_WORKER_S`` per cell that gets a fresh worker.
    """

    def __init__(
        self, rows: pd.DataFrame, on_gpu: bool, gmacs: Mapping[tuple[str, str], float] | None = None
    ) -> None:
        rows = rows.assign(_step_s=_step_seconds(rows))
        rows["_key"] = [_step_key(r) for r in rows.to_dict("records")]
        rows["_once_s"] = (_num(rows, "first_step_s") - rows["_step_s"]).clip(lower=0)
        rows["_ms_per_gmac"] = 1e3 * rows["_step_s"] / _num(rows, "infer_gmacs")
        self.on_gpu = on_gpu
        self.machines = tuple(sorted(set(rows["_machine"])))
        # newest preferred run first: a step's first row is its newest
        self.rows_by_step = {k: g.iloc[0] for k, g in rows.groupby("_key", sort=False)}
        ok = rows[(rows["status"] == "ok") & rows["_step_s"].notna()]
        self.ok = ok
        timed = flag_column(ok, "_timed")
        harness = ok[timed] if timed.any() else ok  # the harness whose cost is calibrated
        self.run_overhead_s = run_overhead_s(rows)
        gpu_bound = harness[_num(harness, "gpu_busy_share") >= 0.7]
        rounds = _num(gpu_bound, "timing_rounds")
        self.gpu_bound_rounds = float(rounds.mean()) if rounds.notna().any() else 2.0
        self._calibrate_setup(harness)
        self.gmacs = {
            **(gmacs or {}),
            **_num(ok, "infer_gmacs").groupby(_by_model_size(ok)).median().to_dict(),
        }
        # the profiler's own cost: what a cell's meters took beyond their steps
        steps = _num(harness, "profiled_steps").fillna(OLD_METER_STEPS)
        beyond = (_num(harness, "meters_s") - steps * harness["_step_s"]).clip(lower=0)
        self.profiler_s = float(beyond.median()) if beyond.notna().any() else 0.1
        self.once_s = harness.groupby("model")["_once_s"].median().to_dict()
        self.once_all = float(harness["_once_s"].median()) if len(harness) else 0.0
        self.other_s = float(harness["wall_s"].median()) if len(harness) else 10.0

    def _calibrate_setup(self, harness: pd.DataFrame) -> None:
        """A cell's setup: ``restore_s`` where its worker kept the model (``model_reused``), else a
        build (``build_s``: rows whose FLOP count was cached) plus, once per model and size, the
        count (``setup_s``: that model's uncounted rows; the median of them all for another)."""
        setup = _num(harness, "setup_s")
        kept, cached = flag_column(harness, "model_reused"), flag_column(harness, "flops_cached")
        restored = setup[kept].dropna()
        self.restore_s = float(restored.median()) if len(restored) else RESTORE_S
        built = setup[~kept & cached].dropna()
        counted = setup[~kept & ~cached].dropna()
        builds = built if len(built) else counted  # a build with its FLOP count: an upper bound
        self.build_s = float(builds.median()) if len(builds) else BUILD_S
        by_size = _by_model_size(harness.loc[counted.index])
        self.setup_s = counted.groupby(by_size).median().to_dict()
        self.counted_s = float(counted.median()) if len(counted) else self.build_s

    def estimate(self, cells, timing, reuse_workers: bool) -> TimeEstimate:
        seconds, guessed = self.run_overhead_s, 0.0
        counts = {"measured": 0, "alike": 0, "scaled": 0, "other": 0}
        counted: set[tuple[str, str]] = set()
        last_model = None
        for cell in cells:
            key = _step_key(cell)
            model_size = (key[0], key[1])
            eager = key[6] == "eager"
            fresh = not (reuse_workers and eager)
            reused = not fresh and last_model == model_size
            cost, source = self.cell_seconds(
                cell, timing, reused, model_size not in counted, reused_worker=not fresh
            )
            counted.add(model_size)
            last_model = model_size if eager else None
            cost += GAP_S + (FRESH_WORKER_S if fresh and self.on_gpu else 0.0)
            counts[source] += 1
            seconds += cost
            guessed += cost if source in ("scaled", "other") else 0.0
        low = seconds - guessed * (1 - GUESS_RANGE[0])
        high = seconds + guessed * (GUESS_RANGE[1] - 1)
        return TimeEstimate(
            seconds, low, high, counts["measured"], counts["alike"], counts["scaled"],
            counts["other"], self.machines, method="components",
        )  # fmt: skip

    def step_of(self, cell: Mapping[str, Any]) -> tuple[pd.Series | None, str]:
        """The committed row that gives the cell's step time: its own step's (``measured``), the
        same step under another compile mode or layout (``alike``), else None."""
        key = _step_key(cell)
        own = self.rows_by_step.get(key)
        if own is not None:
            return own, "measured"
        near = self.ok[[k[:5] == key[:5] for k in self.ok["_key"]]]
        return (near.iloc[0], "alike") if len(near) else (None, "")

    def cell_seconds(
        self, cell, timing, reused: bool, count_flops: bool, reused_worker: bool = True
    ) -> tuple[float, str]:
        """A cell's seconds and where its step time came from. ``reused``: its model is the one
        its worker kept; ``reused_worker``: its worker measured cells before it."""
        row, source = self.step_of(cell)
        if row is not None and (str(row.get("status")) != "ok" or pd.isna(row["_step_s"])):
            wall_s = float(row.get("wall_s", float("nan")))
            return (SKIPPED_S if math.isnan(wall_s) else wall_s), source
        model, size = str(cell.get("model")), str(cell.get("img_size"))
        if row is not None:
            step_s, busy = float(row["_step_s"]), float(row.get("gpu_busy_share", float("nan")))
            first_s = float(row.get("first_step_s", step_s))
        else:
            step_s, busy, source = self.scaled_step(cell)
            if step_s is None:
                return self.other_s, "other"
            first_s = step_s + self.once_s.get(model, self.once_all)
        cost = self.setup_seconds(model, size, reused, count_flops)
        cost += first_s + self.search_s(cell, row, step_s, first_s, timing, reused_worker)
        kept_try = str(cell.get("batch_size")) == "max"
        cost += self.rounds_s(step_s, first_s, busy, timing, kept_try)
        cost += self.meters_s(step_s, timing)
        return cost, source

    def setup_seconds(self, model: str, size: str, reused: bool, count_flops: bool) -> float:
        if reused:
            return self.restore_s
        if count_flops:
            return self.setup_s.get((model, size), self.counted_s)
        return self.build_s

    def scaled_step(self, cell) -> tuple[float | None, float, str]:
        """Step seconds of a model with no committed row of this step: the ms per GMAC of the
        committed model nearest in GMACs (by ratio) at the same batch, dtype and mode, times this
        model's GMACs (``infer_gmacs`` of its rows, else the flops suite's count)."""
        key = _step_key(cell)
        # favit's reference implementation (+ref) computes the same math: the same count
        gmacs = self.gmacs.get(
            (key[0], key[1]), self.gmacs.get((key[0].replace("+ref", ""), key[1]))
        )
        same = self.ok[[k[2:5] == key[2:5] for k in self.ok["_key"]]]
        same = same[_num(same, "infer_gmacs") > 0]
        if gmacs is None or not len(same):
            return None, float("nan"), "other"
        distance = (np.log(_num(same, "infer_gmacs")) - math.log(gmacs)).abs()
        nearest = same.loc[distance.idxmin()]
        busy = float(pd.to_numeric(nearest.get("gpu_busy_share"), errors="coerce"))
        return float(nearest["_ms_per_gmac"]) * gmacs / 1e3, busy, "scaled"

    def rounds_s(
        self, step_s: float, first_s: float, busy: float, timing, kept_try: bool = False
    ) -> float:
        """``kept_try``: a ``max`` cell whose step is its search's last try, two steps run."""
        from suites.engine.timing import LAUNCH_BOUND_BUSY_SHARE, LONG_STEP_S

        ran = 2 if kept_try else 1
        spent = first_s + (step_s if kept_try else 0.0)
        warm = max(0, timing.warmup_steps - ran)
        if warm:
            least = 0 if kept_try else 1
            warm = min(warm, max(least, math.ceil((timing.max_warmup_s - spent) / step_s)))
        n = timing.timed_steps
        if timing.min_round_s > 0 and (warm or kept_try):
            n = max(n, math.ceil(timing.min_round_s / step_s))
        n = min(n, max(timing.max_steps, timing.timed_steps))
        later_warm = 0 if step_s >= LONG_STEP_S else min(1, max(0, timing.warmup_steps - ran))
        launch_bound = self.on_gpu and busy < LAUNCH_BOUND_BUSY_SHARE
        rounds = (
            2.0
            if launch_bound or not self.on_gpu
            else min(timing.max_rounds, self.gpu_bound_rounds)
        )
        rounds = min(rounds, timing.max_rounds)
        steps = warm + n + (rounds - 1) * (later_warm + n)
        return steps * step_s + rounds * ROUND_S

    def meters_s(self, step_s: float, timing) -> float:
        from suites.engine.step import ONE_PROFILED_STEP_MS

        if not self.on_gpu or timing.busy_steps == 0:
            return step_s
        steps = 1 if 1e3 * step_s >= ONE_PROFILED_STEP_MS else timing.busy_steps
        return self.profiler_s + steps * step_s

    @staticmethod
    def search_s(cell, row, step_s: float, first_s: float, timing, reused_worker: bool) -> float:
        """A ``max`` cell whose limit is below the start: the failed try one tolerance above the
        prediction, half a step plus a first step's one-time cost; in a fresh worker, whose
        prediction needs the start's failure and a probe first, those too."""
        if str(cell.get("batch_size")) != "max" or row is None:
            return 0.0
        found, failed = row.get("batch_found"), row.get("batch_failed")
        if pd.isna(failed) or not found:
            return 0.0
        once = max(0.0, first_s - step_s)
        above = 0.5 * step_s + once
        if reused_worker:
            return above
        start_try = 0.5 * step_s * timing.max_batch_start / float(found) + once
        probe = 2 * step_s * (timing.max_batch_start // 16) / float(found) + once
        return above + start_try + probe


def _by_model_size(rows: pd.DataFrame) -> list[pd.Series]:
    return [rows["model"], rows["img_size"].map(lambda v: _text(v, ""))]


def _num(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(float("nan"), index=table.index)
    return pd.to_numeric(table[column], errors="coerce")


def _step_seconds(rows: pd.DataFrame) -> pd.Series:
    train = rows["mode"].astype(str) == "train" if "mode" in rows else False
    return _num(rows, "train_step_time").where(train, _num(rows, "infer_step_time")) / 1e3


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
