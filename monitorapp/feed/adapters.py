"""Other feed formats (spec §6) mapped onto protocol v1 dicts.

* Traccar position forwarding: ``device.uniqueId``; ``position.fixTime``, ``latitude``,
  ``longitude``, ``accuracy``, ``speed`` (knots → m/s), ``course``,
  ``attributes.batteryLevel`` (percent → 0–1), ``attributes.alarm`` (``tampering`` and
  ``removing`` → ``strap_tamper``, ``lowBattery`` → ``battery_low``).
* OwnTracks ``_type: location``: ``tid`` or the topic's device for the device, ``tst`` (epoch
  seconds), ``lat``, ``lon``, ``acc``, ``batt`` (percent).

Neither format carries a sequence number. The adapter keeps one per device (``SeqCounter``) so the
engine's duplicate detection sees each position once; a retransmission of the same position
(same device and fix time) gets the same number and is dropped as a duplicate.
Where a value is missing the adapter leaves it out, and the v1 decoder then rejects the message
with the spec's reason (e.g. ``missing_field`` for an OwnTracks location without ``acc``).
A time outside the decoder's window (2000-01-01T00:00:00Z – 2100-01-01T00:00:00Z), an OwnTracks
``tst`` of 1e20 or a Traccar ``fixTime`` in year 10000 say, raises ``AdapterError`` naming the
field: the monitor turns that into a rejection (``bad_adapter_payload``) like any other payload
the adapter cannot map, never an exception out of the feed.
"""
from __future__ import annotations

import math

from monitorapp.feed.decoder import T_MAX, T_MIN
from monitorapp.feed.timeutil import fmt_time, parse_time, TimeFormatError

KNOT_MS = 1852.0 / 3600.0
TRACCAR_ALARMS = {"tampering": "strap_tamper", "removing": "strap_tamper", "lowBattery": "battery_low"}


class AdapterError(ValueError):
    """The payload is not of the format the subscription expects."""


class SeqCounter:
    """Stable per-device sequence numbers for formats without one, keyed by fix time."""

    def __init__(self):
        self._next: dict[str, int] = {}
        self._by_key: dict[tuple, int] = {}

    def seq(self, device: str, key: str) -> int:
        k = (device, key)
        s = self._by_key.get(k)
        if s is None:
            s = self._next.get(device, 0)
            self._next[device] = s + 1
            self._by_key[k] = s
            if len(self._by_key) > 500_000:
                self._by_key.clear()
        return s


def _v1_time(ts: float, what: str) -> str:
    """Epoch seconds as a v1 ``t``; AdapterError when outside the decoder's window."""
    if not T_MIN <= ts <= T_MAX:        # NaN too
        raise AdapterError(f"{what} is outside 2000-01-01T00:00:00Z – 2100-01-01T00:00:00Z")
    return fmt_time(ts)


def _pct(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return max(0.0, min(1.0, v / 100.0))
    return None


def traccar_to_v1(obj: object, seqs: SeqCounter, rx: float | None = None) -> list[dict]:
    if not isinstance(obj, dict) or not isinstance(obj.get("position"), dict):
        raise AdapterError("Traccar payload has no 'position' object")
    dev = obj.get("device")
    if not isinstance(dev, dict) or not isinstance(dev.get("uniqueId"), str):
        raise AdapterError("Traccar payload has no 'device.uniqueId' string")
    device = dev["uniqueId"]
    pos = obj["position"]
    t = pos.get("fixTime")
    if not isinstance(t, str):
        raise AdapterError("Traccar position has no 'fixTime' string")
    try:
        ts = parse_time(t)
    except TimeFormatError as e:
        raise AdapterError(f"Traccar fixTime: {e}") from None
    t = _v1_time(ts, f"Traccar fixTime {t[:40]!r}")
    fix = {"v": 1, "kind": "fix", "device": device, "seq": seqs.seq(device, "f" + t), "t": t,
           "lat": pos.get("latitude"), "lon": pos.get("longitude"), "src": "gps"}
    if pos.get("accuracy") not in (None, 0):
        fix["acc"] = pos.get("accuracy")
    spd = pos.get("speed")
    if isinstance(spd, (int, float)) and not isinstance(spd, bool):
        fix["spd"] = spd * KNOT_MS
    crs = pos.get("course")
    if isinstance(crs, (int, float)) and not isinstance(crs, bool):
        fix["hdg"] = crs
    attrs = pos.get("attributes") if isinstance(pos.get("attributes"), dict) else {}
    b = _pct(attrs.get("batteryLevel"))
    if b is not None:
        fix["batt"] = b
    if rx is not None:
        fix["rx"] = fmt_time(rx)
    out = [fix]
    alarm = attrs.get("alarm")
    if isinstance(alarm, str):
        for a in alarm.split(","):
            etype = TRACCAR_ALARMS.get(a.strip())
            if etype:
                ev = {"v": 1, "kind": "event", "device": device, "seq": seqs.seq(device, "e" + etype + t),
                      "t": t, "type": etype, "detail": f"traccar alarm {a.strip()}"}
                if rx is not None:
                    ev["rx"] = fix["rx"]
                out.append(ev)
    return out


def owntracks_to_v1(obj: object, topic: str | None, seqs: SeqCounter, rx: float | None = None) -> list[dict]:
    if not isinstance(obj, dict):
        raise AdapterError("OwnTracks payload is not an object")
    if obj.get("_type") != "location":
        return []  # other OwnTracks types (transition, waypoint, lwt) carry no fix
    device = obj.get("tid")
    if topic:
        parts = topic.split("/")
        if len(parts) >= 3 and parts[0] == "owntracks":
            device = f"{parts[1]}.{parts[2]}"
    if not isinstance(device, str):
        raise AdapterError("OwnTracks location has neither a topic device nor 'tid'")
    tst = obj.get("tst")
    if not isinstance(tst, (int, float)) or isinstance(tst, bool):
        raise AdapterError("OwnTracks location has no numeric 'tst'")
    try:
        ts = float(tst)
    except OverflowError:
        ts = math.nan
    shown = repr(tst) if isinstance(tst, float) or -10**20 < tst < 10**20 else "of more than 20 digits"
    t = _v1_time(ts, f"OwnTracks tst {shown}")
    fix = {"v": 1, "kind": "fix", "device": device, "seq": seqs.seq(device, t), "t": t,
           "lat": obj.get("lat"), "lon": obj.get("lon"), "src": "gps"}
    if obj.get("acc") is not None:
        fix["acc"] = obj["acc"]
    b = _pct(obj.get("batt"))
    if b is not None:
        fix["batt"] = b
    if isinstance(obj.get("vel"), (int, float)) and not isinstance(obj.get("vel"), bool):
        fix["spd"] = obj["vel"] / 3.6  # km/h
    if rx is not None:
        fix["rx"] = fmt_time(rx)
    return [fix]
