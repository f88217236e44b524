"""Traccar's forwarding (spec §6) as protocol v1 dicts: positions and events, current and 4.x.

What Traccar sends (``org.traccar.forward.PositionData`` / ``EventData`` through its Jackson
``ObjectMapper``, ``WRITE_DATES_AS_TIMESTAMPS`` off, top level ``NON_NULL``):

* position forwarding: ``{"position": {...}, "device": {...}}``
* event forwarding: ``{"event": {...}, "position": {...}?, "device": {...}}``; ``position`` is
  absent for events without one (``deviceOffline``, ``deviceUnknown``...).
* ``position``: ``id``, ``attributes``, ``deviceId``, ``protocol``, ``serverTime``,
  ``deviceTime``, ``fixTime``, ``valid``, ``latitude``, ``longitude``, ``altitude``, ``speed``
  (knots), ``course``, ``address`` (null), ``accuracy`` (0.0 when the protocol gives none,
  which is most of them: GT06, Teltonika, H02, TK103, Meitrack, Queclink...), ``network``,
  ``geofenceIds``. ``attributes`` may hold ``hdop``, ``sat``, ``batteryLevel`` (percent),
  ``charge`` (bool), ``alarm`` (comma-separated), ``approximate`` (a cell/Wi-Fi position).
* ``event``: ``id``, ``attributes`` (``alarm`` for ``type: alarm``), ``deviceId``, ``type``,
  ``eventTime``, ``positionId``, ``geofenceId``, ``maintenanceId``.
* dates: ``2026-11-27T17:00:00.000+00:00`` (Jackson 2.11 and later), ``...+0000`` (Traccar
  4.x, older Jackson) or ``Z``.

Mapping: ``accuracy`` 0 or absent is unknown: ``acc`` = ``HDOP_UERE_M`` × ``hdop`` when there is
one (``acc_derived: hdop``), else the stated default for the protocol, device model or source
(``acc_derived: default``). ``valid: false`` is kept (``valid: False``) and never evidence.
``approximate`` positions are ``wifi`` (Wi-Fi access points in ``network``) or ``cell``. Alarms
are events at ``deviceTime`` (``eventTime`` for an event without its position), never the
``fixTime`` of an older position: ``tampering``/``removing`` → ``strap_tamper``,
``lowBattery`` → ``battery_low``, ``lowPower``/``powerOff`` → ``power_off``, ``jamming`` →
``gps_jamming``, ``fault`` → ``device_fault``, anything else → ``device_alarm`` (``detail``
names it). Other event types (``deviceOffline``...) → ``gateway_event``. The same alarm
forwarded as a position and as an event gets the same seq and ``t``: one of them is a duplicate.
"""
from __future__ import annotations

import re

from monitorapp.feed import adaptbase as _a
from monitorapp.feed.timeutil import TimeFormatError, fmt_time, parse_time

ALARMS = {"tampering": "strap_tamper", "removing": "strap_tamper", "lowBattery": "battery_low",
          "lowPower": "power_off", "powerOff": "power_off", "jamming": "gps_jamming",
          "fault": "device_fault"}
_OFFSET4 = re.compile(r"([+-]\d{2})(\d{2})$")


def _time(pos: dict, name: str, required: bool) -> str | None:
    v = pos.get(name)
    if v is None and not required:
        return None
    if not isinstance(v, str):
        raise _a.AdapterError(f"Traccar {name} is {'missing' if v is None else 'not a string'}")
    s = _OFFSET4.sub(r"\1:\2", v.strip())          # 4.x: +0000
    try:
        ts = parse_time(s)
    except TimeFormatError as e:
        raise _a.AdapterError(f"Traccar {name}: {e}") from None
    return _a.v1_time(ts, f"Traccar {name} {v[:40]!r}")


def _device(obj: dict) -> tuple[str, dict]:
    dev = obj.get("device")
    if not isinstance(dev, dict) or not isinstance(dev.get("uniqueId"), str) or not dev["uniqueId"]:
        raise _a.AdapterError("Traccar payload has no 'device.uniqueId' string")
    return _a.device_from_id(dev["uniqueId"]), dev


def _alarm_events(device: str, alarm, t: str, rx) -> list[dict]:
    """One event per v1 type, its detail naming every Traccar alarm it stands for."""
    if not isinstance(alarm, str) or not alarm.strip():
        return []
    by_type: dict[str, list[str]] = {}
    for a in alarm.split(","):
        a = a.strip()
        if a:
            by_type.setdefault(ALARMS.get(a, _a.DEVICE_ALARM), []).append(a)
    return [_a.event_dict(device, t, et, "traccar alarm " + ",".join(names), rx)
            for et, names in by_type.items()]


def _position(pos: dict, device: str, dev: dict, state: "_a.AdapterState", rx, with_alarms: bool) -> list[dict]:
    fix_t = _time(pos, "fixTime", True)
    dev_t = _time(pos, "deviceTime", False) or fix_t
    attrs = pos.get("attributes") if isinstance(pos.get("attributes"), dict) else {}
    fix = {"v": 1, "kind": "fix", "device": device, "seq": _a.derived_seq(fix_t), "t": fix_t,
           "lat": pos.get("latitude"), "lon": pos.get("longitude")}
    approximate = attrs.get("approximate") is True
    if approximate:
        net = pos.get("network") if isinstance(pos.get("network"), dict) else {}
        fix["src"] = "wifi" if net.get("wifiAccessPoints") and not net.get("cellTowers") else "cell"
    else:
        fix["src"] = "gps"
    acc = _a.number(pos.get("accuracy"))
    if acc is not None and acc > 0:
        fix["acc"] = acc
    else:
        hdop = _a.number(attrs.get("hdop"))
        if hdop is not None and hdop > 0 and not approximate:
            fix["acc"] = round(_a.HDOP_UERE_M * hdop, 2)
            fix["acc_derived"] = "hdop"
        else:
            proto = pos.get("protocol") if isinstance(pos.get("protocol"), str) else None
            model = dev.get("model") if isinstance(dev.get("model"), str) else None
            fix["acc"] = state.defaults.lookup("traccar", proto, model, approximate)
            fix["acc_derived"] = "default"
    if pos.get("valid") is False:
        fix["valid"] = False
    spd = _a.number(pos.get("speed"))
    if spd is not None and spd >= 0:
        fix["spd"] = spd * _a.KNOT_MS
    crs = _a.number(pos.get("course"))
    if crs is not None and 0 <= crs <= 360:
        fix["hdg"] = crs
    sat = attrs.get("sat")
    if isinstance(sat, int) and not isinstance(sat, bool) and 0 <= sat <= 1000:
        fix["sats"] = sat
    b = _a.percent(attrs.get("batteryLevel"))
    if b is not None:
        fix["batt"] = b
    if rx is not None:
        fix["rx"] = fmt_time(rx)
    out = [fix]
    charge = attrs.get("charge")
    change = state.charge_change(device, charge if isinstance(charge, bool) else None)
    if change:
        out.append(_a.event_dict(device, dev_t, change, "traccar charge", rx))
    if with_alarms:
        out += _alarm_events(device, attrs.get("alarm"), dev_t, rx)
    return out


def traccar_to_v1(obj: object, seqs=None, rx: float | None = None, *,
                  state: "_a.AdapterState | None" = None) -> list[dict]:
    """A Traccar position or event forwarding payload as v1 dicts (``seqs`` is unused: see
    ``adaptbase.derived_seq``)."""
    state = state or _a.AdapterState()
    if not isinstance(obj, dict):
        raise _a.AdapterError("Traccar payload is not a JSON object")
    event = obj.get("event")
    pos = obj.get("position")
    if event is None and not isinstance(pos, dict):
        raise _a.AdapterError("Traccar payload has neither a 'position' nor an 'event' object")
    device, dev = _device(obj)
    if event is None:
        return _position(pos, device, dev, state, rx, with_alarms=True)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise _a.AdapterError("Traccar event has no 'type' string")
    out = []
    own_position = (isinstance(pos, dict) and pos.get("id") is not None
                    and pos.get("id") == event.get("positionId"))
    if isinstance(pos, dict):
        out = _position(pos, device, dev, state, rx, with_alarms=False)
    t = _time(pos, "deviceTime", False) if own_position else None
    t = t or _time(event, "eventTime", True)
    attrs = event.get("attributes") if isinstance(event.get("attributes"), dict) else {}
    etype = event["type"]
    if etype == "alarm":
        evs = _alarm_events(device, attrs.get("alarm"), t, rx)
        out += evs or [_a.event_dict(device, t, _a.DEVICE_ALARM, "traccar alarm (unnamed)", rx)]
    else:
        out.append(_a.event_dict(device, t, _a.GATEWAY_EVENT, f"traccar event {etype[:100]}", rx))
    return out
