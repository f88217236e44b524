"""Each tag's recent fixes for the details charts, kept in flat typed arrays.

The engine worker keeps the last 24 hours of every tag's fixes (at most ``max_n``) so that the
details panel can draw distance, speed and battery without asking the store. As Python tuples a
fix cost about 250 bytes (a tuple and five float objects), which at 5,000 tags and one fix a
minute is about 2 GB a day; here it is 36 bytes (time, latitude and longitude as doubles;
accuracy, speed and battery as 32-bit floats, NaN for "not given"), so 5,000 tags cost about
300 MB once a day has filled them, and no more afterwards.

``FixHistory`` is one tag's window: ``append`` drops what falls out of it (older than
``span_s`` before the newest fix, or more than ``max_n`` fixes), and the arrays are compacted
once the dropped head is a sixteenth of them (``COMPACT_FRACTION``: one memmove of the window
per fifteenth of it, about 90 values moved per fix appended), so a tag's memory stays within
16/15 of its window whatever the length of the run, and stops growing within about 1.6 hours
of a full day. (Compacting at a quarter let the arrays grow to 4/3 of the window, which took
until hour 32 of a soak: 20 MB more after the first day at 1,000 tags.) Used by one thread only
(the engine thread).
"""
from __future__ import annotations

import math
from array import array

import numpy as np

_NAN = math.nan
COMPACT_FRACTION = 16       # compact once the dropped head is this fraction (1/16) of the arrays


class FixHistory:
    """One tag's fixes ``(t, lat, lon, acc, spd, batt)`` within ``span_s`` of the newest and at
    most ``max_n`` of them, oldest first."""

    __slots__ = ("t", "lat", "lon", "acc", "spd", "batt", "start", "max_n", "span_s")

    def __init__(self, max_n: int, span_s: float):
        self.max_n = int(max_n)
        self.span_s = float(span_s)
        self.t = array("d")
        self.lat = array("d")
        self.lon = array("d")
        self.acc = array("f")
        self.spd = array("f")
        self.batt = array("f")
        self.start = 0            # index of the oldest fix kept; before it: dropped, not yet compacted

    def append(self, t: float, lat: float, lon: float, acc, spd, batt) -> None:
        self.t.append(t)
        self.lat.append(lat)
        self.lon.append(lon)
        self.acc.append(_NAN if acc is None else acc)
        self.spd.append(_NAN if spd is None else spd)
        self.batt.append(_NAN if batt is None else batt)
        ts, n, s = self.t, len(self.t), self.start
        oldest = t - self.span_s
        while s < n and (n - s > self.max_n or ts[s] < oldest):
            s += 1
        if s >= 64 and COMPACT_FRACTION * s >= n:       # the dropped head is 1/16 of the arrays
            for a in (self.t, self.lat, self.lon, self.acc, self.spd, self.batt):
                del a[:s]
            s = 0
        self.start = s

    def __len__(self) -> int:
        return len(self.t) - self.start

    def allocated(self) -> int:
        """Fixes the arrays hold, dropped head included (at most about 4/3 of the window)."""
        return len(self.t)

    def rows(self, since: float = -math.inf) -> list[tuple]:
        """[(t, lat, lon, acc, spd, batt)] of the fixes at ``since`` or later, in arrival order;
        None where a value was not given. The 32-bit values come back as the shortest decimal
        that reads as them (12.3, not 12.300000190734863)."""
        s = self.start
        keep = np.flatnonzero(np.frombuffer(self.t, dtype=np.float64)[s:] >= since) + s
        cols = [np.frombuffer(a, dtype=np.float64)[keep].tolist() for a in (self.t, self.lat, self.lon)]
        cols += [_short(np.frombuffer(a, dtype=np.float32)[keep]) for a in (self.acc, self.spd, self.batt)]
        return list(zip(*cols))


def _short(values: np.ndarray) -> list:
    return [None if math.isnan(x) else float(str(x)) for x in values]
