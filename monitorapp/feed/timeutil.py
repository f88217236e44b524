"""Times in the feed and in alerts.

Internally every time is a float: seconds since the Unix epoch, UTC. The feed carries RFC 3339
strings (``Z`` or an offset); alerts and reports carry RFC 3339 UTC with milliseconds
(``2026-11-27T17:00:02.090Z``), which sorts as text and round-trips exactly at 1 ms.
"""
from __future__ import annotations

import datetime as _dt
import re

from monitorapp.feed.accel import speedups

_UTC = _dt.timezone.utc
# RFC 3339 date-time: full date, 'T' (or space, lower-case t), time, optional fraction, Z or offset.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_minute_cache: dict[str, float] = {}


class TimeFormatError(ValueError):
    """A time string that is not RFC 3339."""


def parse_time(s: object) -> float:
    """Parse an RFC 3339 string to epoch seconds; raise TimeFormatError otherwise.

    With the compiled module, the feed's usual form (``YYYY-MM-DDTHH:MM:SS[.f]Z``) is read in C
    and anything else takes ``_parse_full``. Without it, the pure-Python fast path caches the
    epoch of each ``YYYY-MM-DDTHH:MM`` prefix of UTC times (entered only after a full
    validation), so the common feed form costs a dict look-up, a match of the seconds against a
    fixed pattern and one float conversion.
    """
    try:
        base = _minute_cache[s[:16]]  # type: ignore[index]
    except (KeyError, TypeError):
        return _parse_full(s)
    tail = s[16:]  # type: ignore[index]
    if _TAIL(tail) is None:
        return _parse_full(s)
    return base + float(tail[1:-1])


_TAIL = re.compile(r":[0-5]\d(?:\.\d{1,9})?Z").fullmatch
_parse_time_py = parse_time

if speedups is not None:
    _parse_utc = speedups.parse_utc

    def parse_time(s: object) -> float:  # noqa: F811 (the compiled variant of the same function)
        v = _parse_utc(s)
        return v if v is not None else _parse_full(s)

    parse_time.__doc__ = _parse_time_py.__doc__


def _parse_full(s: object) -> float:
    if type(s) is not str:
        raise TimeFormatError("time is not a string")
    if not _RFC3339.match(s):
        raise TimeFormatError(f"not an RFC 3339 time: {s[:40]!r}")
    try:
        d = _dt.datetime.fromisoformat(s.replace("z", "Z").replace("t", "T", 1) if not s[10] == "T" else s)
    except ValueError as e:
        raise TimeFormatError(f"not a valid time: {s[:40]!r} ({e})") from None
    ts = d.timestamp()
    if s[-1] == "Z" and s[10] == "T" and len(_minute_cache) < 200_000:
        _minute_cache[s[:16]] = ts - (d.second + d.microsecond / 1e6)
    return ts


def fmt_time(ts: float) -> str:
    """Epoch seconds to RFC 3339 UTC with milliseconds and ``Z``."""
    ms = int(round(ts * 1000.0))
    d = _dt.datetime.fromtimestamp(ms // 1000, _UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (ms % 1000)


def utc_datetime(ts: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ts, _UTC)
