"""Schedule helpers take any instant (issue 13, part E): near year 1 and year 9999, NaN and
infinity they answer "no window" instead of raising OverflowError, and a schedule with one
weekday still finds its next edge a week ahead."""
from __future__ import annotations

import datetime as dt
import math

import pytest

from monitorapp.engine.schedule import T_MAX, T_MIN, Schedule
from monitorapp.feed.timeutil import parse_time

NIGHTLY = [{"days": "daily", "start": "19:00", "end": "07:00"}]
FRIDAY_LATE = [{"days": ["fri"], "start": "23:00", "end": "01:00"}]
UTC_LAST = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc).timestamp()
UTC_FIRST = dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc).timestamp()

HOSTILE = [UTC_FIRST, UTC_FIRST - 86400, T_MIN - 1, UTC_LAST, UTC_LAST + 3600, T_MAX + 1, 1e20, -1e20,
           math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("tz", ["Europe/London", "Pacific/Kiritimati", "Etc/GMT+12"])
@pytest.mark.parametrize("windows", [NIGHTLY, FRIDAY_LATE])
def test_far_instants_have_no_window_and_raise_nothing(tz, windows):
    s = Schedule(windows, tz)
    for t in HOSTILE:
        assert s.interval_at(t) is None, t
        assert s.active_at(t) is False
        assert s.next_change(t) is None
        assert s.intervals_around(t) == []
        gap = s.gap_end(t)
        assert gap is None or gap == t or math.isnan(gap)


@pytest.mark.parametrize("tz", ["Europe/London", "Pacific/Kiritimati", "Etc/GMT+12"])
def test_the_last_days_that_can_be_held_still_work(tz):
    s = Schedule(NIGHTLY, tz)
    for t in (T_MAX, T_MAX - 1, T_MIN, T_MIN + 1):
        iv = s.interval_at(t)
        nxt = s.next_change(t)
        assert nxt is not None and t < nxt <= t + 86400
        assert iv is None or iv[0] <= t < iv[1]
    # a nightly curfew is active at 02:00 local on 9999-12-19
    two_am = dt.datetime(9999, 12, 19, 2, 0, tzinfo=s.tz).timestamp()
    assert s.active_at(two_am)


def test_a_schedule_on_one_weekday_finds_its_next_start_a_week_later():
    s = Schedule([{"days": ["mon"], "start": "19:00", "end": "07:00"}], "Europe/London")
    tuesday_after = parse_time("2026-11-24T08:00:00Z")    # the Monday window ended at 07:00
    assert s.next_change(tuesday_after) == parse_time("2026-11-30T19:00:00Z")
    assert s.gap_end(tuesday_after) == parse_time("2026-11-30T19:00:00Z")
