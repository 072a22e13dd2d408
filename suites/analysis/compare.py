"""``bench.py compare BASE NEW``: compare two runs cell by cell and flag regressions.

BASE and NEW are run folders (``results/runs/<suite>-<UTC>/`` holding ``rows.csv`` and
``env.json``) or ``rows.csv`` paths of one suite. Cells are joined by ``cell_id``; every metric
column present in both runs gets a ratio NEW/BASE and a verdict decided by its *class*. A column's
class comes from its name, through the ordered pattern table ``METRIC_PATTERNS`` (first match wins;
patterns are shell globs, matched case-insensitively); ``--threshold`` overrides a threshold per
class or per column.

| class        | columns (examples)                                      | verdict                               |
|--------------|---------------------------------------------------------|---------------------------------------|
| `exact`      | params, *gmacs, *gflops, *_bytes, acct_*, *_skipped_ops | any difference is a change (fails)    |
| `memory`     | *_kib, *_mib, *_gib, *_mb (allocator memory)            | relative, 2 % + 64 KiB, lower better  |
| `timing`     | *_ms, *_ms_per_step, *_step_time                        | log ratio, noise-aware, lower better  |
| `throughput` | *per_sec, *_img_s, achieved_tflops, mfu                 | log ratio, noise-aware, higher better |
| `accuracy`   | top1*, top5*, *_top1*, *_top5*, *_acc                   | absolute points (0.5), higher better  |
| `spread`     | *_cv, *_p10_ms, *_p90_ms, *_spread_pct, *_std_ms        | not judged; the noise of the timings  |
| `info`       | acct_over_allocator, anything else                      | not judged; differences are listed    |

An allocator-memory change counts (growth a regression, shrinking an improvement) when it exceeds
2 % *and* 64 KiB, the floor converted to the column's unit by its suffix (``_kib``, ``_mib``,
``_gib``; ``_mb`` is 10**6 bytes): the floor keeps allocator rounding on peaks of a few hundred KiB
from failing and is below 2 % of any peak above 3.2 MiB. ``acct_over_allocator`` (exact bytes over
the allocator peak) is a ratio of two judged figures that falls when the allocator grows, so it is
listed, not judged.

Timings and throughputs are judged on the log of the ratio, ``ln(NEW / BASE)``: a halving and a
doubling are equally far from no change, and a drop is never bounded by -100 %. Each run's row gives
a log spread ``s`` (the standard deviation of the log of a step's time: ``sqrt(ln(1 + cv**2))`` for a
``*_cv`` or a ``*_spread_pct / 100``, ``ln(p90 / p10) / 2.563`` for a ``*_p10_ms``/``*_p90_ms`` pair:
a log-normal's 10th and 90th percentiles lie 1.2816 s either side of its median; the largest of
them). The noise band is ``b = k * sqrt(s_base**2 + s_new**2)`` (``k`` is ``--noise-k``), the
threshold ``t = ln(1 + threshold / 100)``:

- ``|ln ratio| > max(t, b)``: a regression or an improvement, by direction;
- else, when ``b <= t``: unchanged (the runs resolve a change of the threshold's size);
- else: inconclusive (the change lies inside a noise band wider than the threshold: the runs are
  too noisy to say whether it moved by the threshold). Never reported as unchanged.

The rule is ``suites.engine.log_ratio``'s. A row whose timing rounds never agreed (unstable) reads
their spread as its ``s``: a rerun of that row moves about that far, so its band is that wide.

A gate (``--max-band PCT``) bounds the band it accepts: an inconclusive figure whose band is at
most ``ln(1 + PCT / 100)`` is listed and passes (no figure moved beyond its band, and no band is
wider than PCT); one whose band is wider is *too noisy to gate* and fails with exit code 3. Without
``--max-band`` every inconclusive figure gives exit code 3.

A status change away from ``ok`` is a regression, a change to ``ok`` an improvement, any other
status change is reported as a change (and fails). Cells present in only one run are listed;
``--require-same-cells`` makes a cell in only one run fail too (CI uses it: the reference must
hold exactly the cells of the profile it stands for). Runs of different suites (``env.json``'s
``run.suite``), or runs that share no cell, are bad input.

Output: a Markdown report (``--format markdown``, the default, fit for a pull request or a job
summary) or a JSON document (``--format json``), printed and, with ``--out``, written to a file.

Exit codes: 0 every judged figure unchanged or better (with ``--max-band``, or inconclusive inside
a band of at most PCT); 1 at least one regression or change (or a cell in one run only, with
``--require-same-cells``); 2 bad input; 3 no regression, but at least one figure too noisy to judge
(inconclusive; with ``--max-band``, too noisy to gate: its band is wider than PCT).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from suites.engine.log_ratio import (
    DEFAULT_NOISE_K,
    INCONCLUSIVE,
    TIMING_THRESHOLD_PCT,
    as_float,
    judge_log_ratio,
    noise_band,
    row_log_spread,
)
from suites.engine.render import markdown_table
from suites.engine.row_flags import (
    HOST_BOUND,
    HOST_SPEED_TOLERANCE,
    UNSTABLE,
    add_flags,
    host_speed_ratio,
    hosts_differ,
)
from suites.engine.run_folder import ENV_FILE, ROWS_FILE, RunFolderError, read_env, read_rows_csv

# Columns the runner adds to every row; never metrics (``status`` is judged on its own).
BOOKKEEPING_COLUMNS: tuple[str, ...] = (
    "cell_id",
    "status",
    "reason",
    "device_name",
    "wall_s",
    "finished_utc",
    "gpu_index",
)

# Ordered (pattern, class) table: the first pattern that matches a column name decides its class.
METRIC_PATTERNS: tuple[tuple[str, str], ...] = (
    # spread descriptors of a timing: the noise allowance, never judged themselves
    ("*_cv", "spread"),
    ("*_p10_ms", "spread"),
    ("*_p90_ms", "spread"),
    ("*_spread_pct", "spread"),
    ("*_std_ms", "spread"),
    ("*_iqr_ms", "spread"),
    # exact bytes over the allocator peak: a ratio of two judged figures, listed only (ahead of
    # ``acct_*``)
    ("acct_over_allocator", "info"),
    # deterministic figures: counts and exact tensor accounting (suites.engine.meters writes the latter
    # as ``acct_<name>_mib``, so its prefix must win over the allocator's ``*_mib``)
    ("acct_*", "exact"),
    ("*_acct_*", "exact"),
    ("param_count", "exact"),
    ("*_params", "exact"),
    ("*_param_count", "exact"),
    ("*gmacs", "exact"),
    ("*_macs", "exact"),
    ("*gflops", "exact"),
    ("*_flops", "exact"),
    ("*_bytes", "exact"),
    ("*_elements", "exact"),
    ("*_score_mib", "exact"),
    (
        "eager_ops_per_step",
        "exact",
    ),  # suites.engine.meters.OpTraffic: dispatched ops and their bytes
    ("eager_traffic_*", "exact"),
    (
        "*_skipped_ops",
        "exact",
    ),  # the ops a FLOP counter left out (text), as deterministic as its count
    (
        "*_uncounted_ops",
        "exact",
    ),  # analytic size of score matrices (memory suite), not the allocator
    # GPU allocator / NVML memory (units in MEMORY_UNIT_BYTES)
    ("*_kib", "memory"),
    ("*_mib", "memory"),
    ("*_gib", "memory"),
    ("*_mb", "memory"),
    # throughputs before timings, so that "*_per_sec" never falls to a timing pattern
    ("*_samples_per_sec", "throughput"),
    ("*_img_s", "throughput"),
    ("*per_sec", "throughput"),
    ("achieved_tflops", "throughput"),  # the step's FLOPs over its median time (latency, scaling)
    ("mfu", "throughput"),
    ("*_step_time", "timing"),
    ("*_ms", "timing"),
    ("*_ms_per_step", "timing"),  # the profile suite's device_ms_per_step
    # accuracy, in percent points: every top-1/top-5 figure (final, EMA, best epoch)
    ("top1*", "accuracy"),
    ("top5*", "accuracy"),
    ("*_top1*", "accuracy"),
    ("*_top5*", "accuracy"),
    ("*_acc", "accuracy"),
)

# Bytes per unit of a column, by the suffix of its name: converts the memory class's absolute floor.
MEMORY_UNIT_BYTES: tuple[tuple[str, float], ...] = (
    ("_bytes", 1.0),
    ("_kib", 2.0**10),
    ("_mib", 2.0**20),
    ("_gib", 2.0**30),
    ("_mb", 1e6),
)


@dataclass(frozen=True)
class MetricClass:
    """How one class of columns is judged.

    ``threshold`` is in percent of BASE for relative classes, in the metric's own units (points)
    when ``absolute``. ``higher_is_better`` is None for two-sided classes (any change beyond the
    threshold is a change). ``log_ratio`` judges ``ln(NEW / BASE)`` against the threshold and the
    runs' noise band (module docstring). ``min_abs_bytes`` ignores changes of at most that many
    bytes, converted to the column's unit by ``MEMORY_UNIT_BYTES`` (no floor without a unit suffix).
    """

    name: str
    judged: bool
    threshold: float = 0.0
    higher_is_better: bool | None = None
    absolute: bool = False
    log_ratio: bool = False
    min_abs_bytes: float = 0.0


# allocator memory: a peak within this percentage of another is the same memory
ALLOCATOR_TOLERANCE_PCT = 2.0
DEFAULT_CLASSES: dict[str, MetricClass] = {
    "exact": MetricClass("exact", judged=True, threshold=0.0),
    "memory": MetricClass(
        "memory",
        judged=True,
        threshold=ALLOCATOR_TOLERANCE_PCT,
        higher_is_better=False,
        min_abs_bytes=64 * 2**10,
    ),
    "timing": MetricClass(
        "timing",
        judged=True,
        threshold=TIMING_THRESHOLD_PCT,
        higher_is_better=False,
        log_ratio=True,
    ),
    "throughput": MetricClass(
        "throughput",
        judged=True,
        threshold=TIMING_THRESHOLD_PCT,
        higher_is_better=True,
        log_ratio=True,
    ),
    "accuracy": MetricClass(
        "accuracy", judged=True, threshold=0.5, higher_is_better=True, absolute=True
    ),
    "spread": MetricClass("spread", judged=False),
    "info": MetricClass("info", judged=False),
}
JUDGED_CLASSES: tuple[str, ...] = ("exact", "memory", "timing", "throughput", "accuracy")

VERDICT_FAILS: frozenset[str] = frozenset({"regression", "changed", "missing"})
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3


class RunLoadError(ValueError):
    """A run folder or rows.csv that cannot be compared; its message is one line."""


@dataclass
class Run:
    """One run: its rows as written (a cell may have several), its env.json (or {}), its path."""

    path: Path
    rows: pd.DataFrame
    env: dict[str, Any]


@dataclass(frozen=True)
class Comparison:
    """The verdict on one metric of one cell (``metric == "status"`` for a status change)."""

    cell_id: str
    metric: str
    kind: str
    base: Any
    new: Any
    ratio: float  # NEW / BASE (NaN when undefined)
    # the change in ``scale``'s units: "percent" of BASE, "points" (absolute classes) or "log"
    # (ln of the ratio); "" for a status change
    change: float
    allowed: float  # the allowance the change was held against, same units as ``change``
    verdict: str  # regression | changed | missing | improvement | unchanged | inconclusive
    scale: str = "percent"


@dataclass(frozen=True)
class CompareOptions:
    """Thresholds and switches of one comparison."""

    classes: Mapping[str, MetricClass] = field(default_factory=lambda: dict(DEFAULT_CLASSES))
    column_thresholds: Mapping[str, float] = field(default_factory=dict)  # glob -> threshold
    noise_k: float = DEFAULT_NOISE_K
    judge: tuple[str, ...] = JUDGED_CLASSES
    require_same_cells: bool = False
    max_band: float | None = None  # percent: the widest noise band a gate accepts (--max-band)


@dataclass
class CompareResult:
    base: Run
    new: Run
    comparisons: list[Comparison]
    only_in_base: list[str]
    only_in_new: list[str]
    informational: dict[str, int]  # unjudged column -> number of common rows where it differs
    columns_only_in_base: list[str]
    columns_only_in_new: list[str]
    warnings: list[str]
    options: CompareOptions
    key_columns: list[str] = field(default_factory=list)
    common_rows: int = 0
    # row key -> its timing flags in either run ("host-bound in NEW", ...): ``timing_flags``
    row_flags: dict[str, str] = field(default_factory=dict)

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict in VERDICT_FAILS]

    @property
    def improvements(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "improvement"]

    @property
    def unchanged(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "unchanged"]

    @property
    def inconclusive(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == INCONCLUSIVE]

    @property
    def too_noisy(self) -> list[Comparison]:
        """The inconclusive figures that fail: all of them, or with ``max_band`` those whose band
        (their ``allowed``, wider than the threshold) exceeds it."""
        if self.options.max_band is None:
            return self.inconclusive
        widest = math.log1p(self.options.max_band / 100.0)
        return [c for c in self.inconclusive if c.allowed > widest]

    @property
    def cells_differ(self) -> bool:
        """A cell is in one run only and ``--require-same-cells`` makes that fail."""
        return self.options.require_same_cells and bool(self.only_in_base or self.only_in_new)

    @property
    def failed(self) -> bool:
        return bool(self.regressions) or self.cells_differ

    @property
    def exit_code(self) -> int:
        if self.failed:
            return EXIT_FAILED
        return EXIT_INCONCLUSIVE if self.too_noisy else EXIT_OK

    @property
    def verdict(self) -> str:
        """The report's one-word verdict, from the same facts as ``exit_code``."""
        if self.regressions:
            return "REGRESSION"
        if self.cells_differ:
            return "CELLS DIFFER"
        if not self.too_noisy:
            return "OK"
        return "INCONCLUSIVE" if self.options.max_band is None else "TOO NOISY TO GATE"


# ---------------------------------------------------------------------------------------------
# loading


def load_run(path: str | Path) -> Run:
    """Read a run folder (or a ``rows.csv`` path) and the ``env.json`` beside it.

    Raises ``RunLoadError`` with a one-line message for a missing path, a folder without
    ``rows.csv``, an unreadable or empty CSV, or one without a ``cell_id`` column.
    """
    path = Path(path)
    if not path.exists():
        raise RunLoadError(f"{path}: no such run folder or rows.csv")
    csv_path = path / ROWS_FILE if path.is_dir() else path
    if not csv_path.is_file():
        raise RunLoadError(
            f"{path}: folder has no rows.csv (expected a run folder results/runs/<suite>-<UTC>/)"
        )
    try:
        rows = read_rows_csv(csv_path)
    except pd.errors.EmptyDataError:
        raise RunLoadError(f"{csv_path}: empty file, no header and no rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunLoadError(f"{csv_path}: malformed CSV ({first_line})") from None
    if "cell_id" not in rows.columns:
        shown = ", ".join(map(str, rows.columns[:8]))
        raise RunLoadError(f"{csv_path}: no 'cell_id' column (columns: {shown})")
    if rows.empty:
        raise RunLoadError(f"{csv_path}: no rows (header only)")
    if rows["cell_id"].isna().any():
        raise RunLoadError(
            f"{csv_path}: {int(rows['cell_id'].isna().sum())} row(s) with an empty cell_id"
        )

    env: dict[str, Any] = {}
    if (csv_path.parent / ENV_FILE).is_file():
        try:
            env = read_env(csv_path.parent)
        except RunFolderError as err:
            raise RunLoadError(str(err)) from None
    return Run(path=path, rows=rows, env=env)


def _find_in_env(env: Any, keys: Sequence[str]) -> str | None:
    """The first scalar (or list of scalars) stored under one of ``keys``, searched depth-first
    through nested dicts, trying the keys in order of preference."""

    def search(obj: Any, key: str) -> Any:
        if isinstance(obj, dict):
            if key in obj and not isinstance(obj[key], dict):
                return obj[key]
            for value in obj.values():
                found = search(value, key)
                if found is not None:
                    return found
        return None

    for key in keys:
        value = search(env, key)
        if value is None:
            continue
        if isinstance(value, list):  # e.g. env.json's "gpus": [{"name": ...}, ...]
            parts = [str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value]
            if parts:
                return ", ".join(parts)
            continue
        return str(value)
    return None


def env_summary(run: Run) -> dict[str, str]:
    """Machine, accelerator, commit and torch version of a run, from env.json (or the rows)."""
    env = run.env
    devices = None
    if "device_name" in run.rows.columns:
        names = sorted({str(v) for v in run.rows["device_name"].dropna()})
        devices = ", ".join(names) if names else None
    commit = _find_in_env(env, ("git_commit", "commit", "sha", "git"))
    dirty = _find_in_env(env, ("git_dirty", "dirty"))
    if commit and dirty and dirty.lower() in ("true", "1", "yes"):
        commit += " (dirty)"
    return {
        "run": str(run.path),
        "suite": _find_in_env(env, ("suite",)) or "-",
        "machine": _find_in_env(env, ("machine", "hostname", "host", "node")) or "-",
        "device": _find_in_env(env, ("gpu_name", "gpu", "gpus", "cuda_device_name", "device_name"))
        or devices
        or "-",
        "commit": commit or "-",
        "tree": _find_in_env(env, ("tree",)) or "-",  # the files that ran (env.json's git block)
        "torch": _find_in_env(env, ("torch", "torch_version")) or "-",
        "cells (rows)": f"{run.rows['cell_id'].nunique()} ({len(run.rows)})",
    }


# ---------------------------------------------------------------------------------------------
# classification and judging


def classify_column(name: str, patterns: Sequence[tuple[str, str]] = METRIC_PATTERNS) -> str:
    """The class of a column by its name: the first matching pattern of ``patterns``, or "info"."""
    lowered = name.lower()
    for pattern, kind in patterns:
        if fnmatch.fnmatchcase(lowered, pattern):
            return kind
    return "info"


def unit_bytes(name: str) -> float | None:
    """Bytes per unit of a column by its suffix (``MEMORY_UNIT_BYTES``), or None without one."""
    lowered = name.lower()
    return next((size for suffix, size in MEMORY_UNIT_BYTES if lowered.endswith(suffix)), None)


def axis_columns(cell_ids: Iterable[str]) -> set[str]:
    """Axis names recovered from ``cell_id`` strings (``model=favit_b1,img_size=224,...``)."""
    names: set[str] = set()
    for cell in cell_ids:
        for part in str(cell).split(","):
            key, sep, _ = part.partition("=")
            if sep and key.isidentifier():
                names.add(key)
    return names


def row_key_columns(frames: Sequence[pd.DataFrame]) -> list[str]:
    """The columns that, beside ``cell_id``, tell apart the rows of one cell.

    A suite's ``measure`` may return several rows per cell (one per stage, say), told apart by
    columns that are neither axes, bookkeeping nor metrics (``stage``, ``level``, ...). Candidates
    are tried in column order and kept while they reduce the duplicates, in every run at once.
    """
    shared = [c for c in frames[0].columns if all(c in f.columns for f in frames)]
    skip = set(BOOKKEEPING_COLUMNS)
    for frame in frames:
        skip |= axis_columns(frame["cell_id"])
    candidates = [c for c in shared if c not in skip and classify_column(c) == "info"]

    def duplicates(columns: list[str]) -> int:
        return sum(int(f[["cell_id", *columns]].astype(str).duplicated().sum()) for f in frames)

    chosen: list[str] = []
    remaining = duplicates(chosen)
    for column in candidates:
        if remaining == 0:
            break
        fewer = duplicates([*chosen, column])
        if fewer < remaining:
            chosen.append(column)
            remaining = fewer
    return chosen


def _key_text(value: Any) -> str:
    """A key value as text, the same whether pandas read its column as int, float or text
    (a column with an empty entry, such as an oom row's, is read as float: 1 -> 1.0)."""
    if _is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def keyed_rows(rows: pd.DataFrame, key_columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Rows indexed by their key (``cell_id``, then ``|col=value`` per key column), and how many
    duplicate keys were dropped (the last row of each key is kept)."""
    keys = rows["cell_id"].astype(str)
    for column in key_columns:
        keys = keys + ("|" if column == key_columns[0] else ",") + column + "="
        keys = keys + rows[column].map(_key_text)
    indexed = rows.set_axis(pd.Index(keys, name="row_key"), axis=0)
    duplicated = indexed.index.duplicated(keep="last")
    return indexed[~duplicated], int(duplicated.sum())


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _threshold_for(column: str, kind: str, options: CompareOptions) -> float:
    for pattern, threshold in options.column_thresholds.items():
        if fnmatch.fnmatchcase(column.lower(), pattern.lower()):
            return threshold
    return options.classes[kind].threshold


def judge_metric(
    cell: str,
    column: str,
    kind: str,
    base: Any,
    new: Any,
    options: CompareOptions,
    band: float = 0.0,
) -> Comparison:
    """The verdict on one metric of one cell. ``band`` is the two rows' noise band in log units
    (``noise_band`` of each ``row_log_spread``), used by the log-ratio classes."""
    rule = options.classes[kind]
    threshold = _threshold_for(column, kind, options)
    base_missing, new_missing = _is_missing(base), _is_missing(new)
    base_value, new_value = as_float(base), as_float(new)
    ratio = new_value / base_value if base_value != 0.0 else math.nan  # NaN propagates
    scale = "points" if rule.absolute else "log" if rule.log_ratio else "percent"

    def result(change: float, allowed: float, verdict: str) -> Comparison:
        return Comparison(cell, column, kind, base, new, ratio, change, allowed, verdict, scale)

    if base_missing and new_missing:
        return result(math.nan, threshold, "unchanged")
    if new_missing:
        return result(math.nan, threshold, "missing")
    if base_missing:
        return result(math.nan, threshold, "changed")

    if math.isnan(base_value) or math.isnan(new_value):  # text values: equal or changed
        return result(math.nan, 0.0, "unchanged" if str(base) == str(new) else "changed")

    if rule.log_ratio:
        return _judge_on_log_ratio(result, rule, base_value, new_value, threshold, band)
    if rule.absolute:
        change = new_value - base_value
    elif base_value == new_value:
        change = 0.0
    elif base_value == 0.0:
        change = math.copysign(math.inf, new_value)
    else:
        change = (new_value - base_value) / abs(base_value) * 100.0
    allowed = threshold

    unit = unit_bytes(column)
    floor = rule.min_abs_bytes / unit if unit else 0.0  # 64 KiB is 0.0625 in a *_mib column
    if base_value != new_value and abs(new_value - base_value) <= floor:
        return result(change, allowed, "unchanged")
    if rule.higher_is_better is None:  # two-sided: exact figures, or an overridden info column
        return result(change, allowed, "changed" if abs(change) > allowed else "unchanged")
    worse = -change if rule.higher_is_better else change
    if worse > allowed:
        return result(change, allowed, "regression")
    if worse < -allowed:
        return result(change, allowed, "improvement")
    return result(change, allowed, "unchanged")


def _judge_on_log_ratio(
    result: Callable[[float, float, str], Comparison],
    rule: MetricClass,
    base_value: float,
    new_value: float,
    threshold: float,
    band: float,
) -> Comparison:
    """A timing or throughput: ``ln(NEW / BASE)`` against the threshold and the noise band."""
    log_threshold = math.log1p(threshold / 100.0)
    allowed = max(log_threshold, band)
    if base_value <= 0.0 or new_value <= 0.0:  # no ratio to take the log of
        return result(math.nan, allowed, "unchanged" if base_value == new_value else "changed")
    log_ratio = math.log(new_value / base_value)
    verdict = judge_log_ratio(log_ratio, log_threshold, band, bool(rule.higher_is_better))
    return result(log_ratio, allowed, verdict)


def judge_status(cell: str, base: Any, new: Any) -> Comparison | None:
    """A status change: away from ok is a regression, to ok an improvement, else a change."""
    base_status, new_status = str(base), str(new)
    if base_status == new_status:
        return None
    if base_status == "ok":
        verdict = "regression"
    elif new_status == "ok":
        verdict = "improvement"
    else:
        verdict = "changed"
    return Comparison(
        cell, "status", "status", base_status, new_status, math.nan, math.nan, math.nan, verdict, ""
    )


def run_suite_name(run: Run) -> str | None:
    """The suite a run belongs to (``env.json``'s ``run.suite``), None when its env does not say."""
    record = run.env.get("run")
    suite = record.get("suite") if isinstance(record, dict) else None
    return str(suite) if suite else None


def _no_common_cell(base_keys: Sequence[str], new_keys: Sequence[str]) -> str:
    return (
        f"BASE and NEW share no cell (BASE has {len(base_keys)}, e.g. {base_keys[0]!r}; NEW has "
        f"{len(new_keys)}, e.g. {new_keys[0]!r}): nothing to compare; give two runs of the same "
        "suite and axes"
    )


def compare_runs(base: Run, new: Run, options: CompareOptions | None = None) -> CompareResult:
    """Join two runs on ``cell_id`` and judge every metric column they share.

    Raises ``RunLoadError`` (one line) for runs of different suites or runs that share no cell.
    """
    options = options or CompareOptions()
    suites = run_suite_name(base), run_suite_name(new)
    if None not in suites and suites[0] != suites[1]:
        raise RunLoadError(
            f"BASE is a {suites[0]} run and NEW a {suites[1]} run: only runs of one suite compare"
        )
    key_columns = row_key_columns([base.rows, new.rows])
    base_rows, base_dropped = keyed_rows(base.rows, key_columns)
    new_rows, new_dropped = keyed_rows(new.rows, key_columns)
    base_keys, new_keys = list(base_rows.index), list(new_rows.index)
    base_key_set, new_key_set = set(base_keys), set(new_keys)
    common = [k for k in base_keys if k in new_key_set]
    only_in_base = [k for k in base_keys if k not in new_key_set]
    only_in_new = [k for k in new_keys if k not in base_key_set]

    skip = set(BOOKKEEPING_COLUMNS) | set(key_columns)
    skip |= axis_columns(base.rows["cell_id"]) | axis_columns(new.rows["cell_id"])
    base_columns = [c for c in base.rows.columns if c not in skip]
    new_columns = [c for c in new.rows.columns if c not in skip]
    shared = [c for c in base_columns if c in set(new_columns)]
    kinds, options = _column_kinds(shared, options)
    if not common:
        raise RunLoadError(_no_common_cell(base_keys, new_keys))
    spread_columns = (
        [c for c in base.rows.columns if classify_column(c) == "spread"],
        [c for c in new.rows.columns if classify_column(c) == "spread"],
    )
    comparisons: list[Comparison] = []
    informational: dict[str, int] = {}
    for cell in common:
        rows = base_rows.loc[cell].to_dict(), new_rows.loc[cell].to_dict()
        judged, changed = _judge_cell(cell, rows, kinds, options, spread_columns)
        comparisons += judged
        for column in changed:
            informational[column] = informational.get(column, 0) + 1

    warnings = _warnings(base, new)
    row_flags, flag_warnings = timing_flags(base_rows, new_rows, common)
    warnings += flag_warnings
    for label, dropped in (("BASE", base_dropped), ("NEW", new_dropped)):
        if dropped:
            warnings.append(
                f"{label} has {dropped} row(s) with a repeated key; the last of each was kept"
            )
    return CompareResult(
        base=base,
        new=new,
        comparisons=comparisons,
        only_in_base=only_in_base,
        only_in_new=only_in_new,
        informational=informational,
        columns_only_in_base=[c for c in base_columns if c not in set(new_columns)],
        columns_only_in_new=[c for c in new_columns if c not in set(base_columns)],
        warnings=warnings,
        options=options,
        key_columns=key_columns,
        common_rows=len(common),
        row_flags=row_flags,
    )


def _column_kinds(
    shared: list[str], options: CompareOptions
) -> tuple[dict[str, str], CompareOptions]:
    """Each shared column's class; a column a ``--threshold`` names, unclassified otherwise, is
    judged two-sided (class ``override``, added to the options' classes)."""
    kinds = {c: classify_column(c) for c in shared}
    for column in shared:
        if kinds[column] == "info" and any(
            fnmatch.fnmatchcase(column.lower(), p.lower()) for p in options.column_thresholds
        ):
            kinds[column] = "override"
    classes = {**options.classes, "override": MetricClass("override", judged=True)}
    return kinds, replace(options, classes=classes)


def _judge_cell(
    cell: str,
    rows: tuple[dict, dict],
    kinds: Mapping[str, str],
    options: CompareOptions,
    spread_columns: tuple[list[str], list[str]],
) -> tuple[list[Comparison], list[str]]:
    """One common cell: its status change and judged metrics, and its informational columns that
    differ."""
    (base_row, new_row), judged = rows, set(options.judge) | {"override"}
    comparisons, changed = [], []
    status = judge_status(cell, base_row.get("status", "ok"), new_row.get("status", "ok"))
    if status is not None:
        comparisons.append(status)
    both_ok = str(base_row.get("status", "ok")) == "ok" and str(new_row.get("status", "ok")) == "ok"
    band = noise_band(
        row_log_spread(base_row, spread_columns[0]),
        row_log_spread(new_row, spread_columns[1]),
        options.noise_k,
    )
    for column, kind in kinds.items():
        b, n = base_row[column], new_row[column]
        if _is_missing(b) and _is_missing(n):  # a column this row lacks
            continue
        if kind in judged and options.classes[kind].judged:
            if both_ok:
                comparisons.append(judge_metric(cell, column, kind, b, n, options, band))
        elif kind != "spread" and _key_text(b) != _key_text(n):  # 1 and 1.0 are the same value
            changed.append(column)
    return comparisons, changed


def timing_flags(
    base_rows: pd.DataFrame, new_rows: pd.DataFrame, common: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """The host-bound and unstable flags (``suites.engine.row_flags``) of the common rows, as
    text per row key, and the warnings they call for: unstable rows, whose timings are noisier
    than their target, and launch-bound rows timed on hosts whose ``host_op_us`` differ by more
    than ``HOST_SPEED_TOLERANCE``, whose NEW/BASE ratio is then partly the hosts'."""
    if not common:
        return {}, []
    base, new = add_flags(base_rows.loc[common]), add_flags(new_rows.loc[common])
    row_flags: dict[str, str] = {}
    for key in common:
        parts = []
        for flag, column in ((HOST_BOUND, "launch_bound"), (UNSTABLE, "unstable")):
            runs = [label for label, rows in (("BASE", base), ("NEW", new)) if rows.at[key, column]]
            if runs:
                parts.append(f"{flag} in {' and '.join(runs)}")
        if parts:
            row_flags[key] = ", ".join(parts)
    warnings = []
    unstable = base["unstable"] | new["unstable"]
    if unstable.any():
        warnings.append(
            f"{int(unstable.sum())} row(s) are unstable in BASE or NEW (their two timing rounds "
            "never agreed within the target): their timings are noisier than the target, and a "
            "verdict on them rests on that noise allowance"
        )
    if "host_op_us" not in base or "host_op_us" not in new:
        return row_flags, warnings
    bound = base["launch_bound"] | new["launch_bound"]
    base_host = pd.to_numeric(base["host_op_us"], errors="coerce")
    new_host = pd.to_numeric(new["host_op_us"], errors="coerce")
    differ = [key for key in common if bound[key] and hosts_differ(base_host[key], new_host[key])]
    if differ:
        ratios = [host_speed_ratio(base_host[k], new_host[k]) for k in differ]
        warnings.append(
            f"{len(differ)} launch-bound row(s) ran on hosts of different speed (host_op_us "
            f"BASE {base_host[differ].min():.2f}-{base_host[differ].max():.2f} µs, NEW "
            f"{new_host[differ].min():.2f}-{new_host[differ].max():.2f} µs; up to "
            f"{max(ratios):.2f}x apart, more than {HOST_SPEED_TOLERANCE:.0%}): their NEW/BASE "
            "timing ratios are partly the hosts'"
        )
    return row_flags, warnings


def _warnings(base: Run, new: Run) -> list[str]:
    warnings = []
    base_env, new_env = env_summary(base), env_summary(new)
    if base_env["device"] != new_env["device"]:
        warnings.append(
            f"runs come from different machines (BASE device {base_env['device']!r}, NEW device "
            f"{new_env['device']!r}): timings and allocator memory are not comparable"
        )
    trees = (base_env["tree"], new_env["tree"])
    if base_env["commit"] == new_env["commit"] and trees[0] != trees[1] and "-" not in trees:
        warnings.append(
            f"both runs name commit {base_env['commit']} but ran different files (tree "
            f"{trees[0][:12]} against {trees[1][:12]}): a change not committed differs between them"
        )
    if base_env["torch"] != new_env["torch"] and "-" not in (base_env["torch"], new_env["torch"]):
        warnings.append(
            f"torch versions differ (BASE {base_env['torch']}, NEW {new_env['torch']}): "
            "FLOP counts and accounted bytes may change with torch's kernels and decompositions"
        )
    return warnings


# ---------------------------------------------------------------------------------------------
# report


def _format_value(value: Any, kind: str) -> str:
    if _is_missing(value):
        return "-"
    number = as_float(value)
    if math.isnan(number):
        return str(value)
    if kind == "exact":
        return repr(int(number)) if number.is_integer() else repr(number)
    return f"{number:.4g}"


def _format_change(comparison: Comparison) -> tuple[str, str, str]:
    """(ratio, change, allowed) as the report shows them; a log-ratio change as the percent its
    ratio means, its allowance as the factor either way (x/÷)."""
    if comparison.kind == "status":
        return "-", "-", "-"
    ratio = "-" if math.isnan(comparison.ratio) else f"{comparison.ratio:.4g}"
    if math.isnan(comparison.change):
        change = "-"
    elif comparison.scale == "log":
        change = f"{math.expm1(comparison.change) * 100:+.2f} %"
    else:
        change = f"{comparison.change:+.2f}{' pt' if comparison.scale == 'points' else ' %'}"
    if math.isnan(comparison.allowed):
        allowed = "-"
    elif comparison.scale == "log":
        allowed = f"x/÷ {math.exp(comparison.allowed):.3f}"
    else:
        allowed = f"±{comparison.allowed:.2f}{' pt' if comparison.scale == 'points' else ' %'}"
    return ratio, change, allowed


def _comparison_table(
    comparisons: Sequence[Comparison], max_rows: int, row_flags: Mapping[str, str] | None = None
) -> str:
    row_flags = row_flags or {}
    flagged = any(c.cell_id in row_flags for c in comparisons[:max_rows])
    records = []
    for c in comparisons[:max_rows]:
        ratio, change, allowed = _format_change(c)
        records.append(
            {
                "cell": f"`{c.cell_id}`",
                "metric": f"`{c.metric}`",
                "class": c.kind,
                "BASE": _format_value(c.base, c.kind),
                "NEW": _format_value(c.new, c.kind),
                "NEW/BASE": ratio,
                "change": change,
                "allowed": allowed,
                "verdict": c.verdict,
                **({"flags": row_flags.get(c.cell_id, "")} if flagged else {}),
            }
        )
    text = markdown_table(pd.DataFrame.from_records(records))
    if len(comparisons) > max_rows:
        text += f"\n... and {len(comparisons) - max_rows} more.\n"
    return text


def _cell_list(cells: Sequence[str], max_rows: int) -> str:
    lines = [f"- `{c}`" for c in cells[:max_rows]]
    if len(cells) > max_rows:
        lines.append(f"- ... and {len(cells) - max_rows} more")
    return "\n".join(lines) + "\n"


def summary_line(result: CompareResult) -> str:
    """The report's one-line count of verdicts (``--quiet`` prints only this)."""
    unit = "row(s)" if result.key_columns else "cell(s)"  # several rows per cell: keyed rows
    cells = f"{len(result.only_in_base)} {unit} only in BASE, {len(result.only_in_new)} only in NEW"
    if result.cells_differ:
        cells += " (fails: --require-same-cells)"
    inconclusive = f"{len(result.inconclusive)} inconclusive"
    if result.options.max_band is not None:
        inconclusive += f" ({len(result.too_noisy)} too noisy to gate: {_gate_band(result)})"
    return (
        f"**{len(result.regressions)} regression(s), {len(result.improvements)} improvement(s), "
        f"{len(result.unchanged)} unchanged, {inconclusive}** over "
        f"{result.common_rows} common {unit}; {cells}. Judged: {', '.join(result.options.judge)}."
    )


def _gate_band(result: CompareResult) -> str:
    """The widest band ``--max-band`` accepts, as the report writes an allowance."""
    return f"band wider than x/÷ {1 + (result.options.max_band or 0.0) / 100:.3f}"


def _inconclusive_sections(result: CompareResult, max_rows: int) -> list[str]:
    """The inconclusive figures: one section, or with ``--max-band`` those too noisy to gate
    (which fail) apart from those inside the gate's band (which pass)."""
    flags, noisy = result.row_flags, result.too_noisy
    if result.options.max_band is None:
        sections = [("Inconclusive: too noisy to judge", noisy)]
    else:
        failing = {id(c) for c in noisy}
        inside = [c for c in result.inconclusive if id(c) not in failing]
        sections = [
            (f"Too noisy to gate: {_gate_band(result)}", noisy),
            ("Inconclusive inside the gate's band (pass)", inside),
        ]
    lines = []
    for title, comparisons in sections:
        lines += [f"### {title} ({len(comparisons)})", ""]
        lines += [_comparison_table(comparisons, max_rows, flags) if comparisons else "None.\n"]
    return lines


def render_markdown(result: CompareResult, max_rows: int = 200) -> str:
    """A Markdown report fit for a pull-request comment or a CI job summary."""
    regressions, improvements = result.regressions, result.improvements
    unchanged = result.unchanged
    unit = "row(s)" if result.key_columns else "cell(s)"  # several rows per cell: keyed rows
    lines = [f"## favit-bench compare: {result.verdict}", "", summary_line(result), ""]
    if result.key_columns:
        keys = ", ".join(f"`{c}`" for c in ["cell_id", *result.key_columns])
        lines += [f"A cell has several rows here; rows are matched on {keys}.", ""]
    base_env, new_env = env_summary(result.base), env_summary(result.new)
    header = pd.DataFrame(
        {"": list(base_env), "BASE": list(base_env.values()), "NEW": list(new_env.values())}
    )
    lines += [markdown_table(header)]
    lines += [f"> **warning:** {w}" for w in result.warnings]
    if result.warnings:
        lines.append("")
    lines += [f"### Regressions ({len(regressions)})", ""]
    flags = result.row_flags
    lines += [_comparison_table(regressions, max_rows, flags) if regressions else "None.\n"]
    lines += _inconclusive_sections(result, max_rows)
    lines += [f"### Improvements ({len(improvements)})", ""]
    lines += [_comparison_table(improvements, max_rows, flags) if improvements else "None.\n"]
    cells_unchanged = len({c.cell_id for c in unchanged})
    lines += [f"### Unchanged: {len(unchanged)} metric(s) in {cells_unchanged} {unit}", ""]
    fails = " (fails: --require-same-cells)" if result.options.require_same_cells else ""
    for label, cells in (("BASE", result.only_in_base), ("NEW", result.only_in_new)):
        lines += [f"### Only in {label} ({len(cells)}){fails if cells else ''}", ""]
        lines += [_cell_list(cells, max_rows) if cells else "None.\n"]
    if result.informational or result.columns_only_in_base or result.columns_only_in_new:
        lines += ["### Informational (not judged)", ""]
        for column, count in sorted(result.informational.items()):
            lines.append(
                f"- `{column}` ({classify_column(column)}): differs in {count} common {unit}"
            )
        if result.columns_only_in_base:
            lines.append(
                "- columns only in BASE: "
                + ", ".join(f"`{c}`" for c in result.columns_only_in_base)
            )
        if result.columns_only_in_new:
            lines.append(
                "- columns only in NEW: " + ", ".join(f"`{c}`" for c in result.columns_only_in_new)
            )
        lines.append("")
    return "\n".join(lines)


def _json_value(value: Any) -> Any:
    """A cell value as JSON: numbers as numbers (NaN as null), the rest as text."""
    if _is_missing(value):
        return None
    number = as_float(value)
    if not math.isnan(number):
        return int(number) if isinstance(value, (int, bool)) or number.is_integer() else number
    return str(value)


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def render_json(result: CompareResult) -> str:
    """The comparison as a JSON document: verdict, exit code, counts, both runs' env, every
    comparison (``change`` and ``allowed`` in ``scale``'s units: percent, points or log), the
    cells in one run only, the unjudged columns that differ, and the warnings."""
    document = {
        "verdict": result.verdict,
        "exit_code": result.exit_code,
        "counts": {
            "regressions": len(result.regressions),
            "improvements": len(result.improvements),
            "unchanged": len(result.unchanged),
            "inconclusive": len(result.inconclusive),
            "too_noisy": len(result.too_noisy),
            "common": result.common_rows,
            "only_in_base": len(result.only_in_base),
            "only_in_new": len(result.only_in_new),
        },
        "judged": list(result.options.judge),
        "require_same_cells": result.options.require_same_cells,
        "max_band_pct": result.options.max_band,
        "key_columns": ["cell_id", *result.key_columns],
        "base": env_summary(result.base),
        "new": env_summary(result.new),
        "warnings": list(result.warnings),
        "comparisons": [
            {
                "cell": c.cell_id,
                "metric": c.metric,
                "class": c.kind,
                "base": _json_value(c.base),
                "new": _json_value(c.new),
                "ratio": _json_number(c.ratio),
                "change": _json_number(c.change),
                "allowed": _json_number(c.allowed),
                "scale": c.scale,
                "verdict": c.verdict,
            }
            for c in result.comparisons
        ],
        "only_in_base": list(result.only_in_base),
        "only_in_new": list(result.only_in_new),
        "informational": dict(sorted(result.informational.items())),
        "columns_only_in_base": list(result.columns_only_in_base),
        "columns_only_in_new": list(result.columns_only_in_new),
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


RENDERERS = {"markdown": render_markdown, "json": render_json}


# ---------------------------------------------------------------------------------------------
# command line


class _OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parse_threshold(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f"bad --threshold {text!r}; expected METRIC=PCT, e.g. timing=8 or infer_step_time=10"
        )
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad --threshold value {value!r} in {text!r}; expected a number"
        ) from None
    if number < 0 or math.isnan(number):
        raise argparse.ArgumentTypeError(
            f"bad --threshold value {value!r} in {text!r}; expected a number >= 0"
        )
    return name, number


def _parse_max_band(text: str) -> float:
    try:
        number = float(text.rstrip("%"))
    except ValueError:
        number = math.nan
    if not number >= 0 or math.isinf(number):
        raise argparse.ArgumentTypeError(
            f"bad --max-band {text!r}; expected a percent >= 0, e.g. 20"
        )
    return number


def _parse_judge(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in JUDGED_CLASSES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"bad --judge {text!r}; valid classes: {', '.join(JUDGED_CLASSES)}"
        )
    return names


EXAMPLES = (
    "examples:\n"
    "  python bench.py compare results/runs/memory-20250101T000000Z results/runs/memory-20250102T000000Z\n"
    "  python bench.py compare BASE NEW --threshold timing=8 --threshold peak_alloc_mib=5 --out report.md\n"
    "  python bench.py compare results/reference/flops-cpu-quick NEW --judge exact --require-same-cells\n"
    "  python bench.py compare REFERENCE NEW --judge timing,throughput,memory --max-band 20   # a CI gate\n"
    "classes: "
    + ", ".join(f"{k} (default {v.threshold:g})" for k, v in DEFAULT_CLASSES.items() if v.judged)
)
HELP = (
    "compare two runs cell by cell; exit 1 on a regression, 2 on bad input, 3 when a figure is "
    "too noisy to judge (with --max-band: its noise band is wider than the gate accepts)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="bench.py compare",
        description=HELP,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(command_prog=parser.prog)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``bench.py compare``."""
    parser.add_argument("base", metavar="BASE", help="run folder or rows.csv of the reference run")
    parser.add_argument("new", metavar="NEW", help="run folder or rows.csv of the run under test")
    parser.add_argument(
        "--threshold",
        action="append",
        type=_parse_threshold,
        default=[],
        metavar="METRIC=PCT",
        help="override a threshold: METRIC is a class (exact, memory, timing, throughput, accuracy) or a "
        "column name/glob; percent for relative classes, points for accuracy (repeatable)",
    )
    parser.add_argument(
        "--noise-k",
        type=float,
        default=DEFAULT_NOISE_K,
        metavar="K",
        help="timings and throughputs may move by K x the runs' combined log spread (default 3)",
    )
    parser.add_argument(
        "--max-band",
        type=_parse_max_band,
        default=None,
        metavar="PCT",
        help="gate: an inconclusive figure passes when its noise band is at most PCT %% and fails "
        "(exit 3, too noisy to gate) when wider; without it every inconclusive figure exits 3",
    )
    parser.add_argument(
        "--judge",
        type=_parse_judge,
        default=JUDGED_CLASSES,
        metavar="CLASSES",
        help=f"comma-separated classes to judge (default all: {','.join(JUDGED_CLASSES)}); statuses are always judged",
    )
    parser.add_argument(
        "--require-same-cells",
        action="store_true",
        help="fail when a cell is in only one of the runs (CI against a reference)",
    )
    parser.add_argument(
        "--format",
        choices=list(RENDERERS),
        default="markdown",
        help="the report's format: markdown (default; a pull request or CI job summary) or json",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this file")
    parser.add_argument(
        "--quiet", action="store_true", help="print only the summary line, not the report"
    )


def options_from_args(args: argparse.Namespace) -> CompareOptions:
    classes = dict(DEFAULT_CLASSES)
    column_thresholds: dict[str, float] = {}
    for name, value in args.threshold:
        if name in classes and classes[name].judged:
            classes[name] = replace(classes[name], threshold=value)
        elif name in classes:
            raise ValueError(
                f"bad --threshold {name}={value:g}: class {name!r} is never judged; judged: {', '.join(JUDGED_CLASSES)}"
            )
        else:
            column_thresholds[name] = value
    if not (args.noise_k >= 0):
        raise ValueError(f"bad --noise-k {args.noise_k}; expected a number >= 0")
    return CompareOptions(
        classes=classes,
        column_thresholds=column_thresholds,
        noise_k=args.noise_k,
        judge=args.judge,
        require_same_cells=args.require_same_cells,
        max_band=args.max_band,
    )


def main(argv: list[str]) -> int:
    """``bench.py compare BASE NEW [--threshold METRIC=PCT ...] [--out report.md] [--noise-k K]``."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a bad option (already printed on one line)
        return int(stop.code or 0)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Compare the runs ``args`` names; print (and with ``--out`` write) the report."""
    try:
        options = options_from_args(args)
        result = compare_runs(load_run(args.base), load_run(args.new), options)
    except (RunLoadError, ValueError) as err:
        print(f"{args.command_prog}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    report = RENDERERS[args.format](result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    print(summary_line(result) if args.quiet else report)
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
