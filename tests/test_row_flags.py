"""Row flags: host-bound and unstable rows, from new rows and from older ones."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from suites.engine import row_flags


def test_launch_bound_rows_are_those_with_the_gpu_busy_under_the_threshold():
    table = pd.DataFrame({"gpu_busy_share": [0.5, 0.7, 0.95, math.nan]})
    flagged = row_flags.add_flags(table)
    assert flagged["launch_bound"].tolist() == [True, False, False, False]  # NaN: the CPU
    assert flagged["flags"].tolist() == ["host-bound", "", "", ""]


def test_unstable_is_recorded_or_derived_from_the_spread_and_its_target():
    table = pd.DataFrame(
        {
            # older rows: no target recorded, 3% assumed
            "repeat_spread_pct": [3.5, 2.9, 4.0, 4.0, 1.0, math.nan],
            "spread_target_pct": [math.nan, math.nan, 5.0, 2.0, math.nan, math.nan],
            # a row's own verdict wins where recorded (as a CSV reads it back)
            "unstable": [None, None, None, None, "True", None],
        }
    )
    assert row_flags.is_unstable(table).tolist() == [True, False, False, True, True, False]
    assert row_flags.is_unstable(table.drop(columns="unstable")).tolist() == [
        True, False, False, True, False, False
    ]  # fmt: skip
    assert row_flags.is_unstable(pd.DataFrame(index=[0])).tolist() == [False]  # no columns


def test_flags_of_a_row_with_both_and_their_marks():
    table = pd.DataFrame({"gpu_busy_share": [0.3], "repeat_spread_pct": [10.0]})
    assert row_flags.add_flags(table)["flags"].iloc[0] == "host-bound, unstable"
    assert row_flags.flag_marks(True, True) == "‡§"
    assert row_flags.flag_marks(False, True) == "§"


def test_hosts_differ_beyond_twenty_percent():
    assert row_flags.host_speed_ratio(2.0, 2.5) == pytest.approx(1.25)
    assert row_flags.hosts_differ(2.0, 2.5) and row_flags.hosts_differ(2.5, 2.0)
    assert not row_flags.hosts_differ(2.0, 2.3)
    assert not row_flags.hosts_differ(2.0, math.nan)  # unknown: no claim
    assert row_flags.host_speed_spread([2.0, 3.0, math.nan, 2.5]) == pytest.approx(1.5)
    assert math.isnan(row_flags.host_speed_spread([2.0]))
