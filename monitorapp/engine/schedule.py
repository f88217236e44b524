"""Schedule windows (spec §3) turned into instants on the UTC time line.

A window is ``{"days": "daily" | ["mon", ...], "start": "HH:MM", "end": "HH:MM"}`` in the
caseload's time zone; an ``end`` earlier than (or equal to) ``start`` crosses midnight, and the
``days`` name the day the window *starts* on. Local times are converted with ``zoneinfo``, so a
19:00–07:00 curfew is 19:00–07:00 on the wall clock on both sides of a daylight-saving change:
the night of the October change lasts 13 hours, the night of the March change 11.

Wall-clock times that do not exist (the skipped hour in March) are taken as the instant the
clock jumps to (01:30 → 02:30 BST, i.e. 01:30 UTC is never reached, zoneinfo's ``fold=0``
rule); times that occur twice (the repeated hour in October) are taken at their first
occurrence. Both are what a probation officer reading "01:30" would expect.

Instants far from now: the helpers are called with processing-clock times as well as
measurement times, so they take any float. Outside ``T_MIN``..``T_MAX`` (years 1 and 9999,
less a few days, where ``datetime`` cannot hold the local day and its neighbours) and for NaN
or infinity there are no windows: ``interval_at`` is None, ``active_at`` False,
``next_change`` None. Nothing there raises ``OverflowError``: the feed's own bounds (spec v2
§2: 2000–2100) keep real data far inside.

``next_change`` looks up to eight days ahead, so a schedule with windows on one weekday only
still has its next edge found a week later.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# the local day of t, the day before and LOOKAHEAD_DAYS + 1 after, as instants in any time
# zone (±14 h), must be within what datetime can hold (years 1..9999)
T_MIN = dt.datetime(1, 1, 4, tzinfo=dt.timezone.utc).timestamp()
T_MAX = dt.datetime(9999, 12, 20, tzinfo=dt.timezone.utc).timestamp()
LOOKAHEAD_DAYS = 8


def parse_hhmm(s: object) -> tuple[int, int]:
    if not isinstance(s, str) or len(s) != 5 or s[2] != ":" or not (s[:2] + s[3:]).isdigit():
        raise ValueError(f"time of day {s!r} is not HH:MM")
    h, m = int(s[:2]), int(s[3:])
    if h > 23 or m > 59:
        raise ValueError(f"time of day {s!r} is out of range")
    return h, m


class Schedule:
    """A list of windows; answers "is it active at t" and "when does it next change"."""

    def __init__(self, windows: list[dict], tz: str):
        self.tz = ZoneInfo(tz)
        self.windows = []
        for w in windows:
            days = w["days"]
            dayset = frozenset(range(7)) if days == "daily" else frozenset(DAYS.index(d) for d in days)
            self.windows.append((dayset, parse_hhmm(w["start"]), parse_hhmm(w["end"])))
        self._intervals_for_date = lru_cache(maxsize=64)(self._intervals_uncached)
        self._seg = (1.0, 0.0, None)   # (from, to, interval or None) valid for from <= t < to

    def _local_date(self, t: float) -> dt.date | None:
        """The local date of t, or None where t is outside T_MIN..T_MAX (or not a number)."""
        if not T_MIN <= t <= T_MAX:
            return None
        return dt.datetime.fromtimestamp(t, self.tz).date()

    def _local(self, date: dt.date, hm: tuple[int, int]) -> float:
        local = dt.datetime(date.year, date.month, date.day, hm[0], hm[1], tzinfo=self.tz)
        # normalise non-existent times: round-trip through UTC
        return local.astimezone(dt.timezone.utc).timestamp()

    def _intervals_uncached(self, date: dt.date) -> tuple[tuple[float, float], ...]:
        out = []
        wd = date.weekday()
        for dayset, start, end in self.windows:
            if wd not in dayset:
                continue
            s = self._local(date, start)
            end_date = date if end > start else date + dt.timedelta(days=1)
            e = self._local(end_date, end)
            if e > s:
                out.append((s, e))
        return tuple(sorted(out))

    def intervals_around(self, t: float) -> list[tuple[float, float]]:
        """Every active interval that starts on the local day of t, the day before or after."""
        d = self._local_date(t)
        out: list[tuple[float, float]] = []
        if d is None:
            return out
        for k in (-1, 0, 1):
            out.extend(self._intervals_for_date(d + dt.timedelta(days=k)))
        return out

    def interval_at(self, t: float) -> tuple[float, float] | None:
        """The active interval containing t (start inclusive, end exclusive), merged with
        any interval that overlaps it, or None. Answers from a cached segment of the time
        line while t stays within it (fixes come in time order)."""
        lo, hi, iv = self._seg
        if lo <= t < hi:
            return iv
        iv = self._interval_at(t)
        if iv is not None:
            self._seg = (iv[0], iv[1], iv)
        else:                   # (for NaN: a segment nothing is inside, so never reused)
            nxt = self.next_change(t)
            self._seg = (t, nxt if nxt is not None else t, None)
        return iv

    def _interval_at(self, t: float) -> tuple[float, float] | None:
        best = None
        for s, e in self.intervals_around(t):
            if s <= t < e:
                best = (s, e) if best is None else (min(best[0], s), max(best[1], e))
        return best

    def gap_end(self, t: float) -> float | None:
        """If the schedule is inactive at t, when it next becomes active (None if active)."""
        if self.interval_at(t) is not None:
            return None
        return self._seg[1]

    def active_at(self, t: float) -> bool:
        return self.interval_at(t) is not None

    def next_change(self, t: float) -> float | None:
        """The first window start or end strictly after t (within the next eight days), or None."""
        cands = [x for s, e in self.intervals_around(t) for x in (s, e) if x > t]
        d = self._local_date(t)
        k = 2
        while not cands and d is not None and k <= LOOKAHEAD_DAYS:
            cands = [x for s, e in self._intervals_for_date(d + dt.timedelta(days=k))
                     for x in (s, e) if x > t]
            k += 1
        return min(cands) if cands else None
