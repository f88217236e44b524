"""Times in the feed and in alerts.

Internally every time is a float: seconds since the Unix epoch, UTC. The feed carries RFC 3339
strings (``Z`` or an offset); alerts and reports carry RFC 3339 UTC with milliseconds
(``2026-11-27T17:00:02.090Z``), which sorts as text and round-trips exactly at 1 ms.

One arithmetic for every path, so a time reads the same to the bit however it is read: the
epoch of the string's minute (a whole number of seconds, the offset taken off) plus
``float("SS.fffffffff")`` of its seconds. The compiled ``parse_utc`` (``_speedups.c``) does the
same sum, and the pure-Python minute cache stores exactly that whole-second base, so a first
and a later call of a minute agree. A leap second ``:60`` is read as the next second
(``23:59:60Z`` is the next day's ``00:00:00Z``): it is a real instant the feed may carry, and
the centre keeps no leap-second table.
"""
from __future__ import annotations

import datetime as _dt
import re

from monitorapp.feed.accel import speedups

_UTC = _dt.timezone.utc
# RFC 3339 date-time: full date, 'T' (or space, lower-case t), time, optional fraction, Z or offset.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2}(?:\.\d{1,9})?)(?:[Zz]|([+-])(\d{2}):(\d{2}))", re.ASCII
).fullmatch
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_minute_cache: dict[str, float] = {}


class TimeFormatError(ValueError):
    """A time string that is not RFC 3339."""


def parse_time(s: object) -> float:
    """Parse an RFC 3339 string to epoch seconds; raise TimeFormatError otherwise.

    With the compiled module, the feed's usual form (``YYYY-MM-DDTHH:MM:SS[.f]Z``) is read in C
    and anything else takes ``_parse_full``. Without it, the pure-Python fast path caches the
    epoch of each ``YYYY-MM-DDTHH:MM`` prefix of UTC times (entered only after a full
    validation), so the common feed form costs a dict look-up, a match of the seconds against a
    fixed pattern and one float conversion: the same sum ``_parse_full`` makes.
    """
    try:
        base = _minute_cache[s[:16]]  # type: ignore[index]
    except (KeyError, TypeError):
        return _parse_full(s)
    tail = s[16:]  # type: ignore[index]
    if _TAIL(tail) is None:
        return _parse_full(s)
    return base + float(tail[1:-1])


_TAIL = re.compile(r":(?:[0-5]\d|60)(?:\.\d{1,9})?Z", re.ASCII).fullmatch
_parse_time_py = parse_time

if speedups is not None:
    _parse_utc = speedups.parse_utc

    def parse_time(s: object) -> float:  # noqa: F811 (the compiled variant of the same function)
        v = _parse_utc(s)
        return v if v is not None else _parse_full(s)

    parse_time.__doc__ = _parse_time_py.__doc__


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days from 1970-01-01 to y-m-d, proleptic Gregorian (the C module's algorithm)."""
    return _dt.date(y, m, d).toordinal() - 719163


def _parse_full(s: object) -> float:
    if type(s) is not str:
        raise TimeFormatError("time is not a string")
    m = _RFC3339(s)
    if m is None:
        raise TimeFormatError(f"not an RFC 3339 time: {s[:40]!r}")
    y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
    sec = m.group(6)
    leap = mo == 2 and y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (y >= 1 and 1 <= mo <= 12 and 1 <= d <= _DAYS_IN_MONTH[mo - 1] + leap):
        raise TimeFormatError(f"not a valid date: {s[:40]!r}")
    if h > 23 or mi > 59 or int(sec[:2]) > 60:
        raise TimeFormatError(f"not a valid time of day: {s[:40]!r}")
    base = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60
    if m.group(7) is not None:
        oh, om = int(m.group(8)), int(m.group(9))
        if oh > 23 or om > 59:
            raise TimeFormatError(f"not a valid UTC offset: {s[:40]!r}")
        off = oh * 3600 + om * 60
        base -= off if m.group(7) == "+" else -off
    elif s[10] == "T" and s[-1] == "Z" and len(_minute_cache) < 200_000:
        _minute_cache[s[:16]] = float(base)
    return float(base) + float(sec)


def fmt_time(ts: float) -> str:
    """Epoch seconds to RFC 3339 UTC with milliseconds and ``Z``."""
    ms = int(round(ts * 1000.0))
    d = _dt.datetime.fromtimestamp(ms // 1000, _UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def utc_datetime(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, _UTC)
