"""The log-ratio rule: one timing (or throughput) held against another, inside their noise.

Two figures are judged on ``ln(NEW / BASE)``: a halving and a doubling are equally far from no
change, and a drop is never bounded by -100 %. Each side gives a log spread ``s`` (the standard
deviation of the log of a step's time, ``row_log_spread``); the noise band is
``b = k * sqrt(s_base**2 + s_new**2)`` (``noise_band``) and the threshold ``t = ln(1 + pct / 100)``:

- ``|ln ratio| > max(t, b)``: a regression or an improvement, by direction;
- else, when ``b <= t``: unchanged (the figures resolve a change of the threshold's size);
- else: inconclusive (the change lies inside a noise band wider than the threshold: the figures
  are too noisy to say whether it moved by the threshold). Never unchanged.

``bench.py compare`` judges two runs' timings with it, the claims judge ProbSparse's speed against
full attention's with it, and the crosscheck suite judges our throughput against timm's with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

TIMING_THRESHOLD_PCT = 5.0  # a timing or throughput may move this much and be unchanged
DEFAULT_NOISE_K = 3.0  # a change must exceed this many combined standard deviations to count
INCONCLUSIVE = "inconclusive"
# a log-normal's 10th and 90th percentiles lie this many standard deviations from its median
P90_Z = 1.2816


def as_float(value: Any) -> float:
    """A cell's value as a float; NaN where it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def log_spread_of_cv(cv: float) -> float:
    """The standard deviation of ``ln(time)`` for a log-normal time whose std/mean is ``cv``."""
    return math.sqrt(math.log1p(cv * cv))


def row_log_spread(row: Mapping[str, Any], columns: Iterable[str]) -> float:
    """The largest log spread a row reports (0.0 when it reports none): the standard deviation of
    ``ln(time)`` from ``*_cv`` (std/mean), ``*_spread_pct`` (percent, read as a CV) or a
    ``<p>_p10_ms``/``<p>_p90_ms`` pair (``ln(p90 / p10) / (2 * P90_Z)``)."""
    spreads = [0.0]
    for column in columns:
        lowered = column.lower()
        value = as_float(row.get(column))
        if math.isnan(value):
            continue
        if lowered.endswith("_cv"):
            spreads.append(log_spread_of_cv(abs(value)))
        elif lowered.endswith("_spread_pct"):
            spreads.append(log_spread_of_cv(abs(value) / 100.0))
        elif lowered.endswith("_p10_ms"):
            upper = as_float(row.get(column[: -len("_p10_ms")] + "_p90_ms"))
            if value > 0 and upper > 0:
                spreads.append(abs(math.log(upper / value)) / (2 * P90_Z))
    return max(spreads)


def noise_band(base_spread: float, new_spread: float, k: float = DEFAULT_NOISE_K) -> float:
    """``k`` times the two sides' combined log spread: the move noise alone may make."""
    return k * math.hypot(base_spread, new_spread)


def judge_log_ratio(log_ratio: float, threshold: float, band: float, higher_is_better: bool) -> str:
    """regression | improvement | unchanged | inconclusive for ``ln(NEW / BASE)`` (module docstring);
    ``threshold`` and ``band`` are in log units."""
    worse = -log_ratio if higher_is_better else log_ratio
    if abs(worse) > max(threshold, band):
        return "regression" if worse > 0 else "improvement"
    return "unchanged" if band <= threshold else INCONCLUSIVE
