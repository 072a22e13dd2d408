"""The two flags a timed row carries into every table and plot: host-bound and unstable.

- host-bound (``launch_bound``): the GPU was busy less than ``LAUNCH_BOUND_BUSY_SHARE`` of the
  step (``gpu_busy_share``), so the step's time is mostly the host's, launching kernels; it moves
  with the host's speed, which ``host_op_us`` measures (microseconds to dispatch one tiny op). A
  row without a busy share (the CPU) is not flagged.
- unstable: the two timing rounds a row's figures come from never agreed within their target. A
  row's own ``unstable`` column says so where the step records it; else ``repeat_spread_pct``
  above the row's ``spread_target_pct``, or above ``DEFAULT_SPREAD_TARGET_PCT`` (the target the
  rounds ran to) for rows that record neither.

``add_flags`` adds ``launch_bound``, ``unstable`` and ``flags`` (words for a table) to a table;
every report that shows timed rows calls it. ``flag_marks`` gives the short marks a paper cell
carries, ``hosts_differ`` says when two host speeds differ enough that a ratio of launch-bound
rows is partly the host's, and ``mark_flagged_points`` draws flagged rows apart in a plot.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from suites.engine.timing import LAUNCH_BOUND_BUSY_SHARE

DEFAULT_SPREAD_TARGET_PCT = 3.0
# two hosts whose host_op_us differ by more than this share launch the same step at different speeds
HOST_SPEED_TOLERANCE = 0.2
HOST_BOUND = "host-bound"
UNSTABLE = "unstable"
HOST_BOUND_MARK = "‡"
UNSTABLE_MARK = "§"
FLAG_NOTE = (
    f"flags: {HOST_BOUND} = GPU busy < {LAUNCH_BOUND_BUSY_SHARE} of the step (launch_bound), so "
    "the step times the host, whose speed host_op_us gives (µs per tiny op; a slower host, a "
    f"slower row); {UNSTABLE} = its two timing rounds never agreed within the target "
    f"(spread_target_pct, {DEFAULT_SPREAD_TARGET_PCT:g}% where not recorded), so its figures are "
    "noisier than the target."
)


def _numbers(table: pd.DataFrame, column: str) -> pd.Series:
    if column not in table:
        return pd.Series(math.nan, index=table.index, dtype=float)
    return pd.to_numeric(table[column], errors="coerce")


def is_launch_bound(table: pd.DataFrame) -> pd.Series:
    """True where the GPU was busy less than ``LAUNCH_BOUND_BUSY_SHARE`` of the step; False where
    the row has no busy share (the CPU) or the table no such column."""
    return pd.Series(_numbers(table, "gpu_busy_share") < LAUNCH_BOUND_BUSY_SHARE, index=table.index)


def _as_flag(value: Any) -> bool | None:
    """A recorded boolean as read back from a CSV (True, "True", 1, "1"); None when empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip().lower()
    if text in ("true", "1", "1.0", "yes"):
        return True
    if text in ("false", "0", "0.0", "no"):
        return False
    return None


def flag_column(table: pd.DataFrame, column: str) -> pd.Series:
    """A recorded boolean column as booleans: empty cells, or no such column, read False."""
    if column not in table:
        return pd.Series(False, index=table.index)
    return table[column].map(lambda v: _as_flag(v) is True).astype(bool)


def is_unstable(table: pd.DataFrame) -> pd.Series:
    """True where the row's two compared rounds never agreed within the target (module docstring);
    False where they did or where the row records no spread."""
    spread = _numbers(table, "repeat_spread_pct")
    target = _numbers(table, "spread_target_pct").fillna(DEFAULT_SPREAD_TARGET_PCT)
    derived = spread > target
    if "unstable" not in table:
        return pd.Series(derived, index=table.index)
    recorded = table["unstable"].map(_as_flag)
    return pd.Series(
        [d if r is None else r for r, d in zip(recorded, derived, strict=True)],
        index=table.index,
        dtype=bool,
    )


def flag_words(launch_bound: bool, unstable: bool) -> str:
    return ", ".join(w for w, on in ((HOST_BOUND, launch_bound), (UNSTABLE, unstable)) if on)


def add_flags(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with ``launch_bound`` and ``unstable`` (booleans, from the module docstring's
    rules) and ``flags`` (their words, "" for a row with neither)."""
    out = table.copy()
    out["launch_bound"] = is_launch_bound(table)
    out["unstable"] = is_unstable(table)
    out["flags"] = [
        flag_words(bound, shaky)
        for bound, shaky in zip(out["launch_bound"], out["unstable"], strict=True)
    ]
    return out


def flag_marks(launch_bound: bool, unstable: bool) -> str:
    """The marks a table cell carries: ``HOST_BOUND_MARK`` and/or ``UNSTABLE_MARK``."""
    return (HOST_BOUND_MARK if launch_bound else "") + (UNSTABLE_MARK if unstable else "")


def host_speed_ratio(a: float, b: float) -> float:
    """The slower host's ``host_op_us`` over the faster one's (NaN when either is missing)."""
    if not (a > 0 and b > 0):
        return math.nan
    return max(a, b) / min(a, b)


def hosts_differ(a: float, b: float, tolerance: float = HOST_SPEED_TOLERANCE) -> bool:
    """Whether two hosts' ``host_op_us`` differ by more than ``tolerance`` (of the faster)."""
    return host_speed_ratio(a, b) > 1.0 + tolerance


def host_speed_spread(values: Iterable[float]) -> float:
    """The slowest over the fastest of several hosts' ``host_op_us`` (NaN with fewer than two)."""
    speeds = [float(v) for v in values if float(v) > 0]
    return max(speeds) / min(speeds) if len(speeds) > 1 else math.nan


def mark_flagged_points(ax: Any, rows: pd.DataFrame, x: str, y: str) -> None:
    """Draw ``rows``' host-bound points as open squares and unstable ones as crosses on ``ax``
    (``rows`` from ``add_flags``); ``flag_legend_handles`` names the markers."""
    data = rows.dropna(subset=[x, y])
    bound = data[data["launch_bound"].astype(bool)]
    shaky = data[data["unstable"].astype(bool)]
    if not bound.empty:
        ax.scatter(
            bound[x],
            bound[y],
            marker="s",
            s=110,
            facecolors="none",
            edgecolors="black",
            linewidths=1.2,
            zorder=4,
        )
    if not shaky.empty:
        ax.scatter(shaky[x], shaky[y], marker="x", s=70, color="crimson", linewidths=1.5, zorder=5)


def flag_legend_handles(rows: pd.DataFrame) -> list[Any]:
    """Legend entries for the markers ``mark_flagged_points`` drew (none when no row is flagged)."""
    from matplotlib.lines import Line2D

    handles = []
    if rows["launch_bound"].astype(bool).any():
        handles.append(
            Line2D(
                [],
                [],
                marker="s",
                linestyle="none",
                markerfacecolor="none",
                markeredgecolor="black",
                markersize=9,
                label=f"{HOST_BOUND} (GPU busy < {LAUNCH_BOUND_BUSY_SHARE:g})",
            )
        )
    if rows["unstable"].astype(bool).any():
        handles.append(
            Line2D(
                [],
                [],
                marker="x",
                linestyle="none",
                color="crimson",
                markersize=8,
                label=f"{UNSTABLE} (rounds never agreed)",
            )
        )
    return handles


def add_flag_legend(fig: Any, rows: pd.DataFrame) -> None:
    """A legend of the flag markers above the figure, when any row is flagged."""
    handles = flag_legend_handles(rows)
    if handles:
        fig.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncol=len(handles),
            frameon=False,
        )
