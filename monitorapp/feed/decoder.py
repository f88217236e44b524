"""Feed protocol v1 decoding (spec §2): bytes in, a Fix/Event/Heartbeat or a Rejection out.

``FixDecoder.decode`` never raises, whatever the bytes: anything that is not a valid v1
message becomes a ``Rejection`` with a reason code, a sentence naming the field and the raw
bytes kept for inspection. Reason codes:

==================  ===========================================================
``oversize``        more than 64 KiB
``bad_encoding``    not UTF-8
``bad_json``        not JSON, or JSON that is not an object
``bad_version``     ``v`` is not 1
``bad_kind``        ``kind`` is not fix, event or heartbeat
``missing_field``   a required field is absent
``bad_type``        a field has the wrong JSON type
``bad_device``      a device id outside ``[A-Za-z0-9_.-]{1,64}``
``bad_seq``         ``seq`` negative, or above 2^53 − 1 (the largest integer a JSON number
                    holds exactly in every reader, JavaScript's included)
``bad_time``        ``t`` or ``rx`` does not parse as RFC 3339
``t_out_of_range``  ``t`` before 2000-01-01T00:00:00Z or after 2100-01-01T00:00:00Z
``rx_out_of_range`` a replay file's ``rx`` outside the same window
``t_in_future``     ``t`` more than 5 minutes after ``rx`` (live: after the arrival time)
``lat_out_of_range`` / ``lon_out_of_range`` / ``acc_out_of_range`` / ``batt_out_of_range``
``bad_value``       another field out of its range (``src``, ``hdg``, ``spd``, ``sats``)
``bad_event_type``  an event ``type`` not in the spec's list
``unknown_device``  a tag that is in no offender's record
``topic_mismatch``  the topic names another device or kind than the payload
==================  ===========================================================

The window's edges are valid times (``2000-01-01T00:00:00Z`` and ``2100-01-01T00:00:00Z``
decode); the check is made on the parsed epoch seconds, so it holds whatever the offset.

**Live** (``decode(raw, rx=arrival)``), ``rx`` is the centre's own clock, the time the message
arrived: a ``rx`` inside the payload is the gateway's claim and is ignored, not parsed, not
checked and not kept (the raw bytes of a rejected message still carry it). It is never the
processing clock and never the reference of the "5 minutes after ``rx``" check. In a replay
(``rx=None``) the payload's ``rx`` is the recorded arrival time and is required.

``SequenceTracker`` drops duplicates (same device, seq *and* ``t``), tells counter restarts
(same seq, another ``t``) from them, and counts seq gaps per tag (not between the numbers an
adapter derives, at or above ``DERIVED_SEQ_BASE``).

``decode_obj(..., adapted=True)`` decodes what the Traccar and OwnTracks adapters make: a v1
dict that may also carry ``valid`` and ``acc_derived`` (an ``AdaptedFix``) and the adapters'
event types ``device_alarm`` and ``gateway_event``. A v1 feed's message never gets these.
"""
from __future__ import annotations

import dataclasses
import math
import re
from array import array
from bisect import bisect_left
from typing import Callable, Container

import numpy as np
import orjson

from monitorapp.feed.accel import speedups
from monitorapp.feed.messages import (DERIVED_SEQ_BASE, EVENT_TYPES, FIX_SOURCES, AdaptedFix, Event, Fix,
                                     Heartbeat, Rejection)
from monitorapp.feed.timeutil import TimeFormatError, parse_time

MAX_BYTES = 64 * 1024
FUTURE_LIMIT_S = 300.0
T_MIN = 946684800.0      # 2000-01-01T00:00:00Z: the earliest t (or replay rx) accepted
T_MAX = 4102444800.0     # 2100-01-01T00:00:00Z: the latest
SEQ_MAX = 2**53 - 1
_WINDOW_TEXT = "2000-01-01T00:00:00Z – 2100-01-01T00:00:00Z"
_DEVICE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
ADAPTED_EVENT_TYPES = frozenset({"device_alarm", "gateway_event"})   # see monitorapp.feed.adapters
_ACC_DERIVED = (None, "hdop", "default")
_INT = int
_FLOAT = float
# The compiled twin of FixDecoder._fast_fix (monitorapp/feed/_speedups.c), or None.
_fast_fix_c = None
if speedups is not None:
    speedups.bind(Fix, tuple(f.name for f in dataclasses.fields(Fix)))
    _fast_fix_c = speedups.fast_fix


class _Bad(Exception):
    def __init__(self, reason: str, text: str, device: str | None = None):
        self.reason, self.text, self.device = reason, text, device


def _num(obj: dict, name: str, required: bool = True):
    v = obj.get(name)
    if v is None:
        if required:
            raise _Bad("missing_field", f"field {name!r} is missing")
        return None
    tv = type(v)
    if tv is _FLOAT:
        if v != v or v in (math.inf, -math.inf):  # NaN/inf cannot come from JSON, but be sure
            raise _Bad(f"{name}_out_of_range" if name in ("lat", "lon", "acc", "batt") else "bad_value",
                       f"field {name!r} is not a finite number")
        return v
    if tv is _INT:
        return float(v)
    raise _Bad("bad_type", f"field {name!r} must be a number, not {tv.__name__}")


def _time(obj: dict, name: str) -> float:
    """Field ``t`` or ``rx`` as epoch seconds, inside [T_MIN, T_MAX]."""
    v = obj.get(name)
    if v is None:
        raise _Bad("missing_field", f"field {name!r} is missing")
    try:
        ts = parse_time(v)
    except TimeFormatError as e:
        raise _Bad("bad_time", f"field {name!r}: {e}") from None
    if not T_MIN <= ts <= T_MAX:
        raise _Bad(f"{name}_out_of_range", f"{name} {v[:40]!r} is outside {_WINDOW_TEXT}")
    return ts


def _seq_text(seq: int) -> str:
    return str(seq) if seq.bit_length() < 128 else ("a huge number" if seq > 0 else "a huge negative number")


class FixDecoder:
    """Decodes protocol v1 messages.

    ``known_devices`` is a container of tag ids (or a callable returning one, so the caseload
    can change under a running decoder); ``None`` accepts any well-formed device id.
    """

    def __init__(self, known_devices: Container[str] | Callable[[], Container[str]] | None = None):
        self._known = known_devices

    def decode(self, raw: bytes | str, rx: float | None = None, topic: str | None = None):
        if isinstance(raw, str):
            try:
                raw = raw.encode("utf-8")
            except UnicodeEncodeError:
                raw = raw.encode("utf-8", "surrogateescape")
        try:
            if len(raw) > MAX_BYTES:
                raise _Bad("oversize", f"message is {len(raw)} bytes; the limit is {MAX_BYTES}")
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                if isinstance(e.__cause__, UnicodeDecodeError) or "utf-8" in str(e).lower():
                    raise _Bad("bad_encoding", "message is not valid UTF-8") from None
                raise _Bad("bad_json", f"not JSON: {str(e)[:120]}") from None
            if type(obj) is not dict:
                raise _Bad("bad_json", f"message is a JSON {type(obj).__name__}, not an object")
            if topic is None and obj.get("kind") == "fix":
                fix = self._fast_fix(obj, rx) if _fast_fix_c is None else _fast_fix_c(obj, self._known, rx)
                if fix is not None:
                    return fix
            return self._decode_obj(obj, raw, rx, topic)
        except _Bad as b:
            return Rejection(b.reason, b.text, bytes(raw), rx if rx is not None else math.nan,
                             topic, b.device)
        except Exception as e:  # last line of defence: a bad message never stops the feed
            return Rejection("bad_value", f"undecodable message ({type(e).__name__}: {e})"[:200],
                             bytes(raw) if isinstance(raw, (bytes, bytearray)) else b"",
                             rx if rx is not None else math.nan, topic, None)

    def decode_obj(self, obj: dict, rx: float | None = None, topic: str | None = None, raw: bytes = b"",
                   adapted: bool = False):
        """Decode an already parsed v1 dict (the Traccar and OwnTracks adapters make these, with
        ``adapted``). A rejection keeps ``raw`` (the bytes as received) and ``topic``; the topic
        is checked against the payload only for ``em/v1/`` topics, as in ``decode``."""
        try:
            if type(obj) is not dict:
                raise _Bad("bad_json", "message is not an object")
            msg = self._decode_obj(obj, raw or orjson.dumps(obj), rx, None if adapted else topic, adapted)
            if adapted and msg.kind == "fix":
                valid, how = obj.get("valid", True), obj.get("acc_derived")
                if type(valid) is not bool or how not in _ACC_DERIVED:
                    raise _Bad("bad_value", "adapted fix: 'valid' must be a bool, 'acc_derived' hdop or default",
                               msg.device)
                f = msg
                msg = AdaptedFix(f.device, f.seq, f.t, f.rx, f.lat, f.lon, f.acc, f.src, f.spd, f.hdg, f.sats,
                                 f.batt, valid, how)
            return msg
        except _Bad as b:
            return Rejection(b.reason, b.text, raw or b"", rx if rx is not None else math.nan, topic, b.device)

    def _fast_fix(self, obj: dict, rx_arrival: float | None = None) -> Fix | None:
        """The common case in few steps: a fix with ``rx`` (or an arrival time as a float), a
        known device and every value of the usual type in range. Anything else returns None and
        takes the full path, which accepts a superset of this and gives each rejection its
        reason."""
        try:
            v = obj["v"]
            device = obj["device"]
            seq = obj["seq"]
            lat = obj["lat"]
            lon = obj["lon"]
            acc = obj["acc"]
            src = obj["src"]
            t = parse_time(obj["t"])
            if rx_arrival is None:
                rx = parse_time(obj["rx"])
                if not T_MIN <= rx <= T_MAX:
                    return None
            elif type(rx_arrival) is _FLOAT:
                rx = rx_arrival
            else:
                return None
        except (KeyError, TimeFormatError):
            return None
        known = self._known
        if (type(v) is not int or v != 1 or type(seq) is not int or not 0 <= seq <= SEQ_MAX or known is None
                or callable(known) or type(device) is not str or device not in known
                or type(lat) is not _FLOAT or not -90.0 <= lat <= 90.0
                or type(lon) is not _FLOAT or not -180.0 <= lon <= 180.0
                or type(src) is not str or src not in FIX_SOURCES
                or not T_MIN <= t <= T_MAX or t - rx > FUTURE_LIMIT_S):
            return None
        ta = type(acc)
        if ta is _INT:
            acc = float(acc)
        elif ta is not _FLOAT:
            return None
        if not 0.0 < acc <= 1e6:
            return None
        batt = spd = hdg = sats = None
        if len(obj) > 10:
            get = obj.get
            batt = get("batt")
            if batt is not None and (type(batt) is not _FLOAT or not 0.0 <= batt <= 1.0):
                return None
            spd = get("spd")
            hdg = get("hdg")
            sats = get("sats")
            if spd is not None or hdg is not None or sats is not None:
                return None if not _optional_ok(spd, hdg, sats) else Fix(
                    device, seq, t, rx, lat, lon, acc, src,
                    None if spd is None else float(spd), None if hdg is None else float(hdg), sats, batt)
        return Fix(device, seq, t, rx, lat, lon, acc, src, spd, hdg, sats, batt)

    def _decode_obj(self, obj: dict, raw: bytes, rx_arrival: float | None, topic: str | None,
                    adapted: bool = False):
        get = obj.get
        v = get("v")
        if v != 1 or type(v) is not int:
            if v is None:
                raise _Bad("missing_field", "field 'v' is missing")
            raise _Bad("bad_version", f"protocol version {str(v)[:20]!r} is not 1")
        kind = get("kind")
        if kind is None:
            raise _Bad("missing_field", "field 'kind' is missing")
        t = _time(obj, "t")
        if rx_arrival is not None:
            rx = float(rx_arrival)     # live: the centre's clock; a payload rx is not read
        elif get("rx") is not None:
            rx = _time(obj, "rx")
        else:
            raise _Bad("missing_field", "field 'rx' is missing (a replay file must carry it)")
        if t - rx > FUTURE_LIMIT_S:
            raise _Bad("t_in_future", f"t is {t - rx:.0f} s after {'arrival' if rx_arrival is not None else 'rx'}"
                                      f" (limit {FUTURE_LIMIT_S:.0f} s)")
        if kind == "heartbeat":
            gw = obj.get("gateway")
            if gw is None:
                raise _Bad("missing_field", "field 'gateway' is missing")
            if type(gw) is not str or not gw or len(gw) > 128:
                raise _Bad("bad_type", "field 'gateway' must be a non-empty string of at most 128 characters")
            return Heartbeat(gw, t, rx)
        if kind != "fix" and kind != "event":
            raise _Bad("bad_kind", f"kind {str(kind)[:20]!r} is not fix, event or heartbeat")
        device = get("device")
        if device is None:
            raise _Bad("missing_field", "field 'device' is missing")
        known = self._known
        if known is not None and callable(known):
            known = known()
        if known is None or type(device) is not str or device not in known:
            # a known tag id was validated with the caseload; anything else is checked here
            if type(device) is not str or not _DEVICE_RE.fullmatch(device):
                raise _Bad("bad_device", f"device id {str(device)[:70]!r} is not [A-Za-z0-9_.-]{{1,64}}")
            if known is not None:
                raise _Bad("unknown_device", f"device {device!r} is in no offender's record", device)
        seq = get("seq")
        if seq is None:
            raise _Bad("missing_field", "field 'seq' is missing", device)
        if type(seq) is not int:
            raise _Bad("bad_type", "field 'seq' must be an integer", device)
        if seq < 0:
            raise _Bad("bad_seq", f"seq {_seq_text(seq)} is negative", device)
        if seq > SEQ_MAX:
            raise _Bad("bad_seq", f"seq {_seq_text(seq)} is above 2^53 - 1 ({SEQ_MAX})", device)
        if topic is not None:
            parts = topic.split("/")
            if len(parts) == 4 and parts[0] == "em" and parts[1] == "v1":
                if parts[2] != kind or parts[3] != device:
                    raise _Bad("topic_mismatch", f"topic {topic[:100]!r} does not match kind {kind!r} device {device!r}", device)
        if kind == "fix":
            try:
                return self._fix(obj, device, seq, t, rx)
            except _Bad as b:
                b.device = device
                raise
        etype = obj.get("type")
        if etype is None:
            raise _Bad("missing_field", "field 'type' is missing", device)
        if etype not in EVENT_TYPES and not (adapted and etype in ADAPTED_EVENT_TYPES):
            raise _Bad("bad_event_type", f"event type {str(etype)[:40]!r} is not one the spec names", device)
        detail = obj.get("detail")
        if detail is not None and type(detail) is not str:
            raise _Bad("bad_type", "field 'detail' must be a string", device)
        return Event(device, seq, t, rx, etype, detail[:1000] if detail else None)

    @staticmethod
    def _fix(obj: dict, device: str, seq: int, t: float, rx: float) -> Fix:
        get = obj.get
        lat = get("lat")
        if type(lat) is not _FLOAT:
            lat = _num(obj, "lat")
        if not -90.0 <= lat <= 90.0:
            raise _Bad("lat_out_of_range", f"lat {lat} is outside ±90")
        lon = get("lon")
        if type(lon) is not _FLOAT:
            lon = _num(obj, "lon")
        if not -180.0 <= lon <= 180.0:
            raise _Bad("lon_out_of_range", f"lon {lon} is outside ±180")
        acc = get("acc")
        if type(acc) is not _FLOAT:
            acc = _num(obj, "acc")
        if not 0.0 < acc <= 1e6:
            raise _Bad("acc_out_of_range", f"acc {acc} must be > 0 metres (and at most 1,000 km)")
        src = get("src")
        if type(src) is not str or src not in FIX_SOURCES:
            if src is None:
                raise _Bad("missing_field", "field 'src' is missing")
            raise _Bad("bad_value", f"src {str(src)[:20]!r} is not gps, wifi or cell")
        batt = get("batt")
        if batt is not None:
            if type(batt) is not _FLOAT:
                batt = _num(obj, "batt")
            if not 0.0 <= batt <= 1.0:
                raise _Bad("batt_out_of_range", f"batt {batt} is outside 0–1")
        spd = get("spd")
        if spd is not None:
            spd = _num(obj, "spd")
            if not 0.0 <= spd <= 1000.0:
                raise _Bad("bad_value", f"spd {spd} is outside 0–1000 m/s")
        hdg = get("hdg")
        if hdg is not None:
            hdg = _num(obj, "hdg")
            if not 0.0 <= hdg <= 360.0:
                raise _Bad("bad_value", f"hdg {hdg} is outside 0–360 degrees")
        sats = get("sats")
        if sats is not None and (type(sats) is not int or not 0 <= sats <= 1000):
            raise _Bad("bad_value", "sats must be a whole number 0–1000")
        return Fix(device, seq, t, rx, lat, lon, acc, src, spd, hdg, sats, batt)


def _optional_ok(spd, hdg, sats) -> bool:
    """The optional fix fields of the fast path, as the full path checks them."""
    if spd is not None and (type(spd) not in (_INT, _FLOAT) or not 0.0 <= spd <= 1000.0):
        return False
    if hdg is not None and (type(hdg) not in (_INT, _FLOAT) or not 0.0 <= hdg <= 360.0):
        return False
    if sats is not None and (type(sats) is not int or not 0 <= sats <= 1000):
        return False
    return True


NEW, DUPLICATE, RESET = "new", "duplicate", "reset"
# How long a tag's (seq, t) pairs are remembered (besides the count window): a retransmission
# comes within minutes, a buffered upload within hours; a day bounds the memory of a 24/7
# console (benchmarks/bench_soak.py: it grew ~4 MB per simulated hour at 100 tags before).
SEQ_MEMORY_S = 24 * 3600.0


class _TagSeqs:
    """One tag's recent (seq, t) pairs, oldest first, and the seq and t of its counter's head.

    Kept as two flat arrays (seq as int64, ``t`` as float64, NaN for a legacy pair without its
    time) in arrival order, from ``start`` on: 16 bytes a pair. As Python tuples in a set, a
    dict and a deque they took about 257 bytes a pair, which at a fix a minute is 7.4 GB a day
    for the decider of 20,000 tags (and 1.8 GB for a console of 5,000: most of what the soak
    benchmark saw grow). A pair is looked up only when its seq is not above the highest
    remembered one (a new fix of a counting tag, seq = highest + 1, costs no lookup at all): by a
    binary search while the tag's remembered seqs ascend, else (after a counter restart or a late
    fix, until those pairs are forgotten) by one vectorised scan of at most a day's pairs."""

    __slots__ = ("seqs", "ts", "start", "max_seq", "ascending", "head_t", "legacy_until")
    # Forgotten pairs are dropped from the arrays' front once there are this many and they are
    # a sixteenth of the arrays (one memmove of the day per sixteenth of it): the arrays stay
    # within 17/16 of a day's pairs. At a half they reached twice the day, and a console's
    # memory grew by 27 MB a day at 1,000 tags until they did (benchmarks/bench_soak.py).
    _COMPACT_AT = 256
    _COMPACT_FRACTION = 16

    def __init__(self):
        self.seqs = array("q")
        self.ts = array("d")
        self.start = 0
        self.max_seq: int | None = None
        self.ascending = True               # every seq above the one before it (since start)
        self.head_t: float | None = None    # t of the message that set ``highest``
        self.legacy_until: float | None = None

    def __len__(self) -> int:
        return len(self.seqs) - self.start

    def _where(self, seq: int) -> range | np.ndarray:
        """Positions of ``seq`` among the remembered pairs (none when it is above them all)."""
        if self.max_seq is None or seq > self.max_seq:
            return range(0)
        if self.ascending:               # a counting tag: one binary search
            i = bisect_left(self.seqs, seq, self.start)
            return range(i, i + 1) if i < len(self.seqs) and self.seqs[i] == seq else range(0)
        view = np.frombuffer(self.seqs, dtype=np.int64)  # (a restart or a late fix): one scan
        found = np.flatnonzero(view[self.start:] == seq) + self.start
        del view                          # no buffer export left: the arrays can grow again
        return found

    def has(self, seq: int, t: float | None) -> bool:
        """Whether the pair (seq, t) is remembered (``t`` None: a legacy pair without its time)."""
        ts = self.ts
        for i in self._where(seq):
            v = ts[int(i)]
            if (v != v) if t is None else v == t:
                return True
        return False

    def has_seq(self, seq: int) -> bool:
        return len(self._where(seq)) > 0

    def add(self, seq: int, t: float | None, window: int) -> None:
        if len(self) and seq <= self.seqs[-1]:
            self.ascending = False
        self.seqs.append(seq)
        self.ts.append(math.nan if t is None else t)
        if self.max_seq is None or seq > self.max_seq:
            self.max_seq = seq
        if len(self) > window:
            self._forget_oldest()
        if t is not None:      # and nothing measured more than SEQ_MEMORY_S before this message
            ts, floor = self.ts, t - SEQ_MEMORY_S
            while len(self) > 1 and ts[self.start] < floor:     # (NaN < floor is False)
                self._forget_oldest()

    def load(self, seqs, ts, window: int) -> None:
        """The pairs of a snapshot, as they were remembered (what a message forgets by time is
        forgotten at the next message, as it would have been; only the count window applies)."""
        for seq, t in zip(seqs, ts):
            if len(self) and seq <= self.seqs[-1]:
                self.ascending = False
            self.seqs.append(seq)
            self.ts.append(math.nan if t is None else t)
            if self.max_seq is None or seq > self.max_seq:
                self.max_seq = seq
        while len(self) > window:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        old = self.seqs[self.start]
        self.start += 1
        if self.start >= self._COMPACT_AT and self.start * self._COMPACT_FRACTION >= len(self.seqs):
            del self.seqs[:self.start]
            del self.ts[:self.start]
            self.start = 0
            if not self.ascending:       # the out-of-order pairs may all be forgotten by now
                self.ascending = bool(np.all(np.diff(np.frombuffer(self.seqs, dtype=np.int64)) > 0))
        if old == self.max_seq:      # the highest forgotten (a restart's old count): recompute
            self.max_seq = max(self.seqs[self.start:]) if len(self) else None


class SequenceTracker:
    """Per-tag sequence numbers (spec §2): duplicates, counter restarts and gaps.

    * A message is a **duplicate** (dropped) when its (seq, t) was already seen from that tag.
    * A **counter restart** (a tag that rebooted) is a seq at or below the tag's highest, with
      a ``t`` later than the message that set that highest: the tag counts again from a lower
      number. It is processed, counted in ``resets`` (once per restart, not once per message
      of the new count) and the new count becomes the head. A seq already seen with another
      ``t`` is never a duplicate, restart or not.
    * A jump forward is a **gap** (lost messages); a late arrival of a missing seq fills it.

    Remembers the last ``window`` (seq, t) pairs of each tag, enough for a tag's buffered upload
    after a long coverage gap to be told apart from retransmissions.
    """

    def __init__(self, window: int = 4096):
        self.window = window
        self._seen: dict[str, _TagSeqs] = {}
        self.highest: dict[str, int] = {}
        self.gaps: dict[str, int] = {}
        self.resets: dict[str, int] = {}

    def see(self, device: str, seq: int, t: float | None = None) -> str:
        """Record one message: ``NEW``, ``DUPLICATE`` or ``RESET`` (new, and a counter restart)."""
        e = self._seen.get(device)
        if e is None:
            e = self._seen[device] = _TagSeqs()
        if e.has(seq, t):
            return DUPLICATE
        if (e.legacy_until is not None and t is not None and t <= e.legacy_until
                and e.has(seq, None)):
            # a seq from a snapshot that kept no times: a repeat measured before that snapshot
            # was taken is a retransmission, as the old rule said
            return DUPLICATE
        seen_before = e.has_seq(seq)
        e.add(seq, t, self.window)
        hi = self.highest.get(device)
        head_t = e.head_t
        verdict = NEW
        if hi is None:
            self.highest[device], e.head_t = seq, t
        elif seq > hi:
            if head_t is None or t is None or t >= head_t:
                if seq > hi + 1 and seq < DERIVED_SEQ_BASE:
                    self.gaps[device] = self.gaps.get(device, 0) + (seq - hi - 1)
                self.highest[device], e.head_t = seq, t
            # else: a late message of the count before a restart; the head stays
        elif t is not None and (ref := head_t if head_t is not None else e.legacy_until) is not None and t > ref:
            self.resets[device] = self.resets.get(device, 0) + 1
            self.highest[device], e.head_t = seq, t
            verdict = RESET
        elif not seen_before and hi - seq <= self.window and self.gaps.get(device) and seq < DERIVED_SEQ_BASE:
            self.gaps[device] -= 1      # a late arrival fills part of a gap counted before
        return verdict

    def is_duplicate(self, device: str, seq: int, t: float | None = None) -> bool:
        return self.see(device, seq, t) == DUPLICATE

    def snapshot(self) -> dict:
        """Per tag: ``seen`` (seqs, oldest first, as before restarts were told apart) and
        ``seen_t`` (their ``t``, in the same order), the head and the counts."""
        return {d: {"seen": e.seqs[e.start:].tolist(),
                    "seen_t": [None if v != v else v for v in e.ts[e.start:]],
                    "highest": self.highest.get(d), "head_t": e.head_t, "gaps": self.gaps.get(d, 0),
                    "resets": self.resets.get(d, 0)}
                for d, e in self._seen.items()}

    def restore(self, snap: dict, taken_at: float | None = None) -> None:
        """Load a ``snapshot()``. A snapshot from before counter restarts were told apart kept
        seqs without their ``t``: a repeat of one of those is a duplicate when it was measured
        no later than ``taken_at`` (the snapshot's processing clock) + 5 minutes, the latest a
        message it saw can have been measured; anything later is a restart."""
        for d, s in snap.items():
            e = self._seen[d] = _TagSeqs()
            seqs, ts = s["seen"], s.get("seen_t")
            if ts is not None and len(ts) == len(seqs):
                e.load(seqs, ts, self.window)
            else:
                e.load(seqs, [None] * len(seqs), self.window)
                if seqs:
                    e.legacy_until = math.inf if taken_at is None else taken_at + FUTURE_LIMIT_S
            e.head_t = s.get("head_t")
            if s.get("highest") is not None:
                self.highest[d] = s["highest"]
            self.gaps[d] = s.get("gaps", 0)
            if s.get("resets"):
                self.resets[d] = s["resets"]
