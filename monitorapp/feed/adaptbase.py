"""What the Traccar and OwnTracks adapters share (spec §6); ``monitorapp.feed.adapters`` is the
entry point that names them all.

Other feed formats: what real gateways send, mapped onto protocol v1 dicts.

Two adapters, one module each: ``monitorapp.feed.traccar`` (Traccar's position and event
forwarding, current and 4.x) and ``monitorapp.feed.owntracks`` (OwnTracks ``_type: location``).
This module holds what they share; ``traccar_to_v1`` and ``owntracks_to_v1`` are re-exported here.

What an adapted dict carries beyond protocol v1 (read only by ``FixDecoder.decode_obj(...,
adapted=True)``, never accepted from a v1 feed):

* ``valid`` (bool): ``False`` when the device itself does not trust the fix (Traccar
  ``valid: false``). Such a fix is kept as received and never used as evidence.
* ``acc_derived``: how ``acc`` was obtained when the source gave none: ``"hdop"`` (about
  ``HDOP_UERE_M`` × hdop) or ``"default"`` (a stated default per source, protocol or device
  model: ``AccuracyDefaults``). Absent when the device reported its accuracy.
* event ``type`` ``device_alarm`` (an alarm the spec names no event for; ``detail`` names it)
  and ``gateway_event`` (a gateway's own event, e.g. Traccar ``deviceOffline``).

**Sequence numbers.** Neither format has one. ``derived_seq`` makes one from what the message
itself says: ``DERIVED_SEQ_BASE + 64 × (measurement time in ms) + slot``, where the slot is 0 for
the fix and one per v1 event type. The same position or alarm sent again gets the same number
(and the same ``t``): a duplicate. A new one gets a new number whatever the monitor remembers,
so a restarted monitor or a journal replay neither drops a new position nor takes a
retransmission for a new one. Numbers at or above ``DERIVED_SEQ_BASE`` do not count seq gaps.

**Charging** comes as a state (Traccar ``charge``, OwnTracks ``bs``); ``AdapterState`` turns its
changes into ``charging_started`` / ``charging_stopped``. Its state is small (one bool per
device) and is kept in the monitor's checkpoint, so a restart does not announce it again.

Anything the adapter cannot map raises ``AdapterError`` (reason ``bad_adapter_payload``, or
``encrypted`` for an encrypted OwnTracks payload): the monitor turns it into a rejection that
keeps the gateway's raw bytes and topic. A time outside the decoder's window (2000-01-01 –
2100-01-01) is an ``AdapterError`` naming the field.
"""
from __future__ import annotations

import hashlib
import math
import re

from monitorapp.feed.decoder import T_MAX, T_MIN
from monitorapp.feed.messages import DERIVED_SEQ_BASE, EVENT_TYPES
from monitorapp.feed.timeutil import fmt_time, parse_time

KNOT_MS = 1852.0 / 3600.0
HDOP_UERE_M = 5.0            # metres of horizontal error (68 %) per unit of HDOP
DEVICE_ALARM = "device_alarm"
GATEWAY_EVENT = "gateway_event"
ADAPTED_EVENT_TYPES = frozenset({DEVICE_ALARM, GATEWAY_EVENT})
# one seq slot per event type: slot 0 is the fix
_SLOTS = {t: i + 1 for i, t in enumerate(sorted(EVENT_TYPES | ADAPTED_EVENT_TYPES))}
_DEVICE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_KEEP = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")


class AdapterError(ValueError):
    """The payload cannot be mapped; ``reason`` is the rejection's reason code."""

    def __init__(self, text: str, reason: str = "bad_adapter_payload"):
        super().__init__(text)
        self.reason = reason


def derived_seq(t_v1: str, etype: str | None = None) -> int:
    """The sequence number of a message measured at ``t_v1`` (a v1 time string, ms): the
    fix (``etype`` None) or an event of that type."""
    ms = round(parse_time(t_v1) * 1000.0)
    return DERIVED_SEQ_BASE + ms * 64 + (0 if etype is None else _SLOTS[etype])


class SeqCounter:
    """Kept for callers of the old signature: sequence numbers are now derived from each
    message (``derived_seq``), so there is nothing to count or to lose on a restart."""


def v1_time(ts: float, what: str) -> str:
    """Epoch seconds as a v1 ``t``; AdapterError when outside the decoder's window."""
    if not T_MIN <= ts <= T_MAX:        # NaN too
        raise AdapterError(f"{what} is outside 2000-01-01T00:00:00Z – 2100-01-01T00:00:00Z")
    return fmt_time(ts)


def number(v, *, unknown_minus_one: bool = False) -> float | None:
    """A JSON number, or a number written as a string ("12.5"); None when absent, not a
    finite number, or ``-1`` where that means unknown (OwnTracks)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return None
    if not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    if not math.isfinite(f):
        return None
    if unknown_minus_one and f == -1.0:
        return None
    return f


def percent(v, *, unknown_minus_one: bool = False) -> float | None:
    """A battery percentage as 0–1; None when unknown or out of 0–100."""
    f = number(v, unknown_minus_one=unknown_minus_one)
    if f is None or not 0.0 <= f <= 100.0:
        return None
    return f / 100.0


def escape_level(text: str) -> str:
    """One topic level (any UTF-8) as device-id characters, injectively: letters, digits and
    ``-`` stay; every other byte, ``_`` and ``.`` included, becomes ``_XX`` (hex)."""
    out = []
    for b in text.encode("utf-8", "surrogatepass"):
        out.append(chr(b) if b in _KEEP else f"_{b:02X}")
    return "".join(out)


def device_from_levels(levels: list[str]) -> str:
    """A v1 device id for the topic levels naming a device (``owntracks/jane/phone`` →
    ``jane.phone``): each level escaped (``escape_level``), joined by ``.``. Longer than 64:
    ``h.`` + 40 hex digits of its SHA-256, still one id per name."""
    dev = ".".join(escape_level(x) for x in levels)
    if len(dev) > 64 or not dev:
        dev = "h." + hashlib.sha256("/".join(levels).encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return dev


def device_from_id(text: str) -> str:
    """A gateway's device id (Traccar ``uniqueId``): kept when it is already a v1 id (IMEIs
    are), else ``u.`` + its escaped form."""
    if _DEVICE_RE.fullmatch(text):
        return text
    return device_from_levels(["u", text])


class AccuracyDefaults:
    """The stated accuracy (metres, 68 %) of a fix whose source gives neither accuracy nor
    HDOP, looked up most specific first: ``model:<device model>``, ``<source>:<protocol>``
    (e.g. ``traccar:gt06``), ``<source>``, then ``approximate`` for cell or Wi-Fi positions.
    Set with ``--default-acc KEY=METRES``; the defaults below are deliberately pessimistic."""

    BUILTIN = {"traccar": 30.0, "owntracks": 50.0, "approximate": 1000.0}

    def __init__(self, table: dict[str, float] | None = None):
        self.table = {**self.BUILTIN, **(table or {})}
        for k, v in self.table.items():
            if not (isinstance(v, (int, float)) and 0.0 < v <= 1e6):
                raise ValueError(f"default accuracy {k}={v!r} must be a number of metres > 0")

    @classmethod
    def parse(cls, items: list[str] | None) -> "AccuracyDefaults":
        table = {}
        for it in items or []:
            key, sep, val = it.partition("=")
            try:
                table[key.strip()] = float(val)
            except ValueError:
                raise ValueError(f"--default-acc {it!r} must be KEY=METRES, e.g. traccar:gt06=25") from None
            if not sep or not key.strip():
                raise ValueError(f"--default-acc {it!r} must be KEY=METRES, e.g. traccar:gt06=25")
        return cls(table)

    def lookup(self, source: str, protocol: str | None = None, model: str | None = None,
               approximate: bool = False) -> float:
        for key in (f"model:{model}" if model else None, f"{source}:{protocol}" if protocol else None):
            if key and key in self.table:
                return self.table[key]
        if approximate:
            return self.table.get(f"{source}:approximate", self.table["approximate"])
        return self.table.get(source, 50.0)


class AdapterState:
    """What the adapters remember between messages: the last charging state per device (for
    ``charging_started``/``charging_stopped``) and the accuracy defaults. ``state()`` and
    ``load()`` go into the monitor's checkpoint."""

    def __init__(self, defaults: AccuracyDefaults | None = None):
        self.defaults = defaults or AccuracyDefaults()
        self.charging: dict[str, bool] = {}

    def charge_change(self, device: str, charging: bool | None) -> str | None:
        """The event a charging state implies (None: unknown, or no change)."""
        if charging is None:
            return None
        before = self.charging.get(device)
        self.charging[device] = charging
        if before is None:
            return "charging_started" if charging else None
        if before == charging:
            return None
        return "charging_started" if charging else "charging_stopped"

    def state(self) -> dict:
        return {"charging": dict(self.charging)}

    def load(self, s: dict | None) -> None:
        if s:
            self.charging = {str(k): bool(v) for k, v in (s.get("charging") or {}).items()}


def event_dict(device: str, t: str, etype: str, detail: str | None, rx: float | None) -> dict:
    ev = {"v": 1, "kind": "event", "device": device, "seq": derived_seq(t, etype), "t": t, "type": etype}
    if detail:
        ev["detail"] = detail[:1000]
    if rx is not None:
        ev["rx"] = fmt_time(rx)
    return ev
