"""Payloads exactly as the gateways produce them, for the adapter tests (issue 17).

Traccar: ``PositionData``/``EventData`` through Traccar's ObjectMapper (Jackson,
``WRITE_DATES_AS_TIMESTAMPS`` off; ``NON_NULL`` only at the top level, so ``address``,
``network`` and ``geofenceIds`` inside a position are written as ``null``; ``outdated`` is
``@JsonIgnore``). Dates: ``.SSS+00:00`` (current Jackson), ``.SSS+0000`` (Traccar 4.x).
OwnTracks: the booklet's ``_type: location``.

``to_traccar`` / ``to_owntracks`` turn a protocol v1 track (the simulator's lines) into what a
GT06 tag through Traccar, or an OwnTracks phone, would have sent for it.
"""
from __future__ import annotations

import datetime as dt

import orjson

from monitorapp.feed.mqttfeed import OWNTRACKS, TRACCAR, V1, Delivery
from monitorapp.feed.timeutil import parse_time

KNOT_MS = 1852.0 / 3600.0


def jdate(ts: float, style: str = "+00:00") -> str:
    """java.util.Date as Jackson's StdDateFormat writes it."""
    d = dt.datetime.fromtimestamp(round(ts * 1000) / 1000, dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}" + ("+0000" if style == "4.x" else "+00:00")


def traccar_device(unique_id: str, model: str | None = None, dev_id: int = 7) -> dict:
    return {"id": dev_id, "attributes": {}, "groupId": 0, "calendarId": 0, "name": f"Tag {unique_id}",
            "uniqueId": unique_id, "status": "online", "lastUpdate": jdate(1795798800.0),
            "positionId": 0, "phone": None, "model": model, "contact": None, "category": None,
            "disabled": False, "expirationTime": None}


def traccar_position(*, protocol: str, fix_t: float, device_t: float | None = None, lat: float, lon: float,
                     accuracy: float = 0.0, valid: bool = True, speed_kn: float = 0.0, course: float = 0.0,
                     attributes: dict | None = None, pos_id: int = 1001, server_t: float | None = None,
                     style: str = "+00:00", network: dict | None = None) -> dict:
    device_t = fix_t if device_t is None else device_t
    return {"id": pos_id, "attributes": attributes or {}, "deviceId": 7, "protocol": protocol,
            "serverTime": jdate(server_t or device_t + 0.8, style), "deviceTime": jdate(device_t, style),
            "fixTime": jdate(fix_t, style), "valid": valid, "latitude": lat, "longitude": lon,
            "altitude": 0.0, "speed": speed_kn, "course": course, "address": None, "accuracy": accuracy,
            "network": network, "geofenceIds": None}


def traccar_event(*, type_: str, event_t: float, position_id: int = 0, alarm: str | None = None,
                  style: str = "+00:00", ev_id: int = 501) -> dict:
    return {"id": ev_id, "attributes": {"alarm": alarm} if alarm else {}, "deviceId": 7, "type": type_,
            "eventTime": jdate(event_t, style), "positionId": position_id, "geofenceId": 0, "maintenanceId": 0}


def owntracks_location(*, tst: int, lat: float, lon: float, acc=None, batt=None, bs: int | None = None,
                       vel=None, tid: str = "ph", **extra) -> dict:
    d = {"_type": "location", "BSSID": "b0:be:76:ad:3c:1a", "SSID": "home", "alt": 31, "batt": batt,
         "bs": bs, "conn": "w", "created_at": tst + 2 if isinstance(tst, int) else tst, "lat": lat, "lon": lon, "m": 1, "t": "u",
         "tid": tid, "tst": tst, "vac": 3, "vel": vel}
    if acc is not None:
        d["acc"] = acc
    d.update(extra)
    return {k: v for k, v in d.items() if v is not None}


TRACCAR_ALARM = {"strap_tamper": "tampering", "battery_low": "lowBattery", "battery_critical": "lowBattery",
                 "power_off": "powerOff"}


def to_traccar(lines, topic: str = "traccar/positions") -> tuple[list[Delivery], list[tuple[float, bytes]]]:
    """The v1 track as a GT06 tag through Traccar (no accuracy; ``hdop`` = acc / 5; cell and
    Wi-Fi positions ``approximate`` with the geolocation provider's accuracy), and the v1 lines
    of the same track (what a Traccar deployment cannot carry, e.g. ``strap_restored``, left
    out of both). Heartbeats stay v1 (Traccar has none)."""
    out, ref = [], []
    last_fix: dict[str, dict] = {}
    for rx, line in lines:
        m = orjson.loads(line)
        if m["kind"] == "heartbeat":
            out.append(Delivery("em/v1/heartbeat/" + m["gateway"], line, rx, V1))
            ref.append((rx, line))
            continue
        dev = traccar_device(m["device"], model="GT06N")
        t = parse_time(m["t"])
        if m["kind"] == "fix":
            last_fix[m["device"]] = m
            attrs = {"batteryLevel": round(m["batt"] * 100, 1)} if m.get("batt") is not None else {}
            if m["src"] == "gps":
                attrs["hdop"] = m["acc"] / 5.0
                if m.get("sats") is not None:
                    attrs["sat"] = m["sats"]
                pos = traccar_position(protocol="gt06", fix_t=t, lat=m["lat"], lon=m["lon"], attributes=attrs,
                                       speed_kn=(m.get("spd") or 0.0) / KNOT_MS, course=m.get("hdg") or 0.0)
            else:
                attrs["approximate"] = True
                net = ({"radioType": "gsm", "considerIp": False, "wifiAccessPoints": [{"macAddress": "00:11:22:33:44:55"}]}
                       if m["src"] == "wifi" else {"radioType": "gsm", "considerIp": False,
                                                   "cellTowers": [{"cellId": 1, "locationAreaCode": 2}]})
                pos = traccar_position(protocol="gt06", fix_t=t, lat=m["lat"], lon=m["lon"], accuracy=m["acc"],
                                       attributes=attrs, network=net)
        else:
            alarm = TRACCAR_ALARM.get(m["type"])
            if alarm is None:
                continue
            # an alarm packet: Traccar keeps the last location (outdated), its fixTime, and
            # dates the alarm by deviceTime
            f = last_fix.get(m["device"])
            if f is None:
                continue
            pos = traccar_position(protocol="gt06", fix_t=parse_time(f["t"]), device_t=t, lat=f["lat"],
                                   lon=f["lon"], attributes={"alarm": alarm, "hdop": f["acc"] / 5.0})
            m2 = dict(m)
            m2["type"] = "battery_low" if m["type"] == "battery_critical" else m["type"]
            m2.pop("detail", None)
            line = orjson.dumps(m2)
        out.append(Delivery(topic, orjson.dumps({"position": pos, "device": dev}), rx, TRACCAR))
        ref.append((rx, line))
    return out, ref


def to_owntracks(lines, root: str = "tags") -> tuple[list[Delivery], list[tuple[float, bytes]]]:
    """The v1 track as OwnTracks phones on ``{root}/{device}`` (``tst`` whole seconds), and the
    v1 lines of the same track (times whole seconds; events OwnTracks has no field for left out)."""
    out, ref = [], []
    for rx, line in lines:
        m = orjson.loads(line)
        if m["kind"] == "heartbeat":
            out.append(Delivery("em/v1/heartbeat/" + m["gateway"], line, rx, V1))
            ref.append((rx, line))
            continue
        if m["kind"] != "fix":
            continue
        tst = int(parse_time(m["t"]))
        m["t"] = jdate(tst).replace("+00:00", "Z")
        loc = owntracks_location(tst=tst, lat=m["lat"], lon=m["lon"], acc=m["acc"],
                                 batt=round(m["batt"] * 100) if m.get("batt") is not None else -1,
                                 vel=round(m["spd"] * 3.6) if m.get("spd") is not None else -1,
                                 source={"gps": "gps", "wifi": "wifi", "cell": "cell"}[m["src"]])
        if m.get("batt") is not None:
            m["batt"] = round(m["batt"] * 100) / 100
        m.pop("spd", None)
        out.append(Delivery(f"{root}/{m['device']}", orjson.dumps(loc), rx, OWNTRACKS))
        ref.append((rx, orjson.dumps(m)))
    return out, ref
