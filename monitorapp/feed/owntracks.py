"""OwnTracks (spec §6) as protocol v1 dicts: ``_type: location`` as its apps and recorder send it.

A location (the booklet's JSON): ``_type: "location"``, ``tid``, ``tst`` (epoch seconds of the
fix), ``lat``, ``lon``, ``acc`` (metres; omitted when 0), ``alt``, ``vac``, ``vel`` (km/h),
``cog``, ``batt`` (percent), ``bs`` (battery status: 0 unknown, 1 unplugged, 2 charging, 3
full), ``conn`` (``w``/``m``/``o``), ``t`` (trigger), ``m``, ``created_at``, ``inregions``,
``SSID``/``BSSID``, ``topic`` (HTTP mode), optional ``source``. ``-1`` means unknown for
``vel``, ``cog``, ``vac`` and ``batt``; numbers may come as strings.

* The device is named by the topic levels after the configured root (``owntracks/+/+``:
  ``owntracks/jane/phone`` → ``jane.phone``; ``fleet/tags/#`` → everything after
  ``fleet/tags``), each level escaped injectively (``adaptbase.device_from_levels``: any UTF-8,
  spaces included, one id per name); with no device levels, the payload's ``topic`` or ``tid``.
* ``acc`` absent, 0 or ``-1``: unknown, the stated default (``acc_derived: default``).
* ``source`` (``gps``, ``wifi``, ``cell``/``network``) is kept; otherwise ``gps``.
* ``bs`` 2 or 3 is charging, 1 is not: changes become ``charging_started``/``charging_stopped``.
* ``_type: encrypted``: ``AdapterError`` with reason ``encrypted`` (the centre holds no key);
  other ``_type``s (``transition``, ``waypoint``, ``lwt``, ``card``...) map to nothing: the
  monitor counts them and they count as traffic.
"""
from __future__ import annotations

import math

from monitorapp.feed import adaptbase as _a
from monitorapp.feed.timeutil import fmt_time

DEFAULT_TOPIC = "owntracks/+/+"
SOURCES = {"gps": "gps", "wifi": "wifi", "cell": "cell", "network": "cell"}


def topic_root(pattern: str) -> list[str]:
    """The fixed levels of a subscription pattern before its first wildcard."""
    root = []
    for level in pattern.split("/"):
        if level in ("+", "#"):
            break
        root.append(level)
    return root


def device_for(topic: str | None, pattern: str, obj: dict) -> str:
    levels = None
    for t in (topic, obj.get("topic") if isinstance(obj.get("topic"), str) else None):
        if not t:
            continue
        parts = t.split("/")
        root = topic_root(pattern)
        if parts[:len(root)] == root and len(parts) > len(root):
            levels = parts[len(root):]
            break
    if levels:
        return _a.device_from_levels(levels)
    tid = obj.get("tid")
    if isinstance(tid, str) and tid:
        return _a.device_from_levels([tid])
    raise _a.AdapterError("OwnTracks location has neither a device in its topic nor a 'tid'")


def owntracks_to_v1(obj: object, topic: str | None, seqs=None, rx: float | None = None, *,
                    state: "_a.AdapterState | None" = None, pattern: str = DEFAULT_TOPIC) -> list[dict]:
    """An OwnTracks payload as v1 dicts: a fix (and a charging change), or ``[]`` for a type
    that carries no position. ``seqs`` is unused (see ``adaptbase.derived_seq``)."""
    state = state or _a.AdapterState()
    if not isinstance(obj, dict):
        raise _a.AdapterError("OwnTracks payload is not a JSON object")
    kind = obj.get("_type")
    if kind == "encrypted":
        raise _a.AdapterError("OwnTracks payload is encrypted (_type: encrypted); the centre holds no "
                              "key: turn encryption off for this device or decrypt before the broker",
                              reason="encrypted")
    if kind != "location":
        return []
    device = device_for(topic, pattern, obj)
    tst = obj.get("tst")
    if isinstance(tst, str):
        tst = _a.number(tst)
    if not isinstance(tst, (int, float)) or isinstance(tst, bool):
        raise _a.AdapterError("OwnTracks location has no numeric 'tst'")
    try:
        ts = float(tst)
    except OverflowError:
        ts = math.nan
    shown = repr(tst) if isinstance(tst, float) or -10**20 < tst < 10**20 else "of more than 20 digits"
    t = _a.v1_time(ts, f"OwnTracks tst {shown}")
    lat, lon = _a.number(obj.get("lat")), _a.number(obj.get("lon"))
    src = SOURCES.get(obj.get("source"), "gps") if isinstance(obj.get("source"), str) else "gps"
    fix = {"v": 1, "kind": "fix", "device": device, "seq": _a.derived_seq(t), "t": t,
           "lat": obj.get("lat") if lat is None else lat, "lon": obj.get("lon") if lon is None else lon,
           "src": src}
    acc = _a.number(obj.get("acc"), unknown_minus_one=True)
    if acc is not None and acc > 0:
        fix["acc"] = acc
    else:
        fix["acc"] = state.defaults.lookup("owntracks", None, None, src != "gps")
        fix["acc_derived"] = "default"
    b = _a.percent(obj.get("batt"), unknown_minus_one=True)
    if b is not None:
        fix["batt"] = b
    vel = _a.number(obj.get("vel"), unknown_minus_one=True)
    if vel is not None and 0 <= vel <= 3600:
        fix["spd"] = vel / 3.6                 # km/h
    cog = _a.number(obj.get("cog"), unknown_minus_one=True)
    if cog is not None and 0 <= cog <= 360:
        fix["hdg"] = cog
    if rx is not None:
        fix["rx"] = fmt_time(rx)
    out = [fix]
    bs = _a.number(obj.get("bs"))
    charging = True if bs in (2.0, 3.0) else False if bs == 1.0 else None
    change = state.charge_change(device, charging)
    if change:
        out.append(_a.event_dict(device, t, change, "owntracks bs", rx))
    return out
