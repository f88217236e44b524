"""The engine's state as plain JSON, so the store can checkpoint it and a restarted engine
raises nothing twice and misses nothing.

What is kept: the processing clock, counters, duplicate-detection windows, per-tag state
(last message, last fix, battery arming), each rule's evidence and pending absence or
appointment decision, every alert with its condition, and zone edits made since the caseload
was loaded. Timers are not kept: they are derived again from that state on restore.

A restore reaches the rules the engine had: the zone edits, then each edited offender's
requirements as they were set. A requirement can name a zone removed after it was set (an
offender's requirements edited, a zone they name removed later): the live engine keeps it
with no rule (``Engine.remove_zone``), and so does the restore, never refusing the checkpoint;
should a later version bring the zone back, the requirement is in force again in both.

Snapshots and restores run with the garbage collector paused (``monitorapp.gcpause``).
"""
from __future__ import annotations

from monitorapp.engine.alerts import Alert
from monitorapp.engine.caseload import parse_caseload
from monitorapp.gcpause import paused_gc
from monitorapp.feed.messages import Fix

STATE_VERSION = 1


def _fix_to_list(f: Fix | None):
    if f is None:
        return None
    return [f.device, f.seq, f.t, f.rx, f.lat, f.lon, f.acc, f.src, f.spd, f.hdg, f.sats, f.batt]


def snapshot(eng) -> dict:
    with paused_gc():
        return _snapshot(eng)


def _snapshot(eng) -> dict:
    c = eng.counters
    return {
        "state_version": STATE_VERSION,
        "now": eng.now, "origin": eng.origin,
        "last_rx_any": eng.last_rx_any, "feed_recovered_at": eng.feed_recovered_at,
        "counters": {**c.summary(), "rejected_by_reason": c.rejected_by_reason, "seq_resets": c.seq_resets},
        "seqs": eng.seqs.snapshot(),
        "zones": eng._edited_zones, "zone_versions": eng.zone_versions,
        "requirements": eng._edited_reqs,
        "tags": {d: {"last_rx": t.last_rx, "last_msg_t": t.last_msg_t, "last_t": t.last_t if t.last_fix else None,
                     "last_fix": _fix_to_list(t.last_fix), "batt": t.batt, "batt_armed": t.batt_armed,
                     "events": t.events, "late_buf": [_fix_to_list(f) for f in t.late_buf],
                     "rules": {r.req.id: r.state() for r in t.rules}}
                 for d, t in eng.tags.items()},
        "alerts": [dict(_alert_fields(a)) for a in eng.alerts.values()],
        "active": [a.alert_id for a in eng._active.values()],
        "last_cleared": [a.alert_id for a in eng._last_cleared.values()],
    }


def _alert_fields(a: Alert):
    for name in Alert.__slots__:
        yield name, getattr(a, name)


def restore(eng, s: dict) -> None:
    if s.get("state_version") != STATE_VERSION:
        raise ValueError(f"engine state version {s.get('state_version')!r} is not {STATE_VERSION}")
    versions = s.get("zone_versions", {})
    with eng.edits():       # the rules once for all the edits (a national caseload's zones)
        for zid, feat in s.get("zones", {}).items():
            if versions.get(zid):     # each zone back at the version it had, not at 1: alerts
                eng.zone_versions[zid] = versions[zid] - 1       # name the version in force
            if feat is None:
                eng.remove_zone(zid)
            else:
                eng.update_zone(feat)
        eng.zone_versions.update(versions)
        for oid, reqs in s.get("requirements", {}).items():
            if oid in eng.caseload.offenders:
                eng.set_requirements(oid, reqs, removed_zones=True)
    eng._edited_zones = dict(s.get("zones", {}))
    eng.now = s["now"]
    eng.origin = s["origin"]
    eng.last_rx_any = s["last_rx_any"]
    eng.feed_recovered_at = s["feed_recovered_at"]
    c = eng.counters
    for k, v in s["counters"].items():
        setattr(c, k, v)
    eng.seqs.restore(s["seqs"], taken_at=s["now"])
    for aid_fields in s["alerts"]:
        a = Alert(**aid_fields)
        eng.alerts[a.alert_id] = a
    by_offender = {t.offender.id: t for t in eng.tags.values()}
    for aid in s["active"]:
        a = eng.alerts[aid]
        eng._active[(a.type, a.offender, a.requirement)] = a
        if a.type == "signal_lost" and a.offender in by_offender:
            by_offender[a.offender].signal_alert = a
        if a.type == "feed_lost":
            eng._feed_alert = a
    for aid in s["last_cleared"]:
        a = eng.alerts[aid]
        eng._last_cleared[(a.type, a.offender, a.requirement)] = a
    for d, ts in s["tags"].items():
        tag = eng.tags.get(d)
        if tag is None:
            continue
        tag.last_rx, tag.last_msg_t = ts["last_rx"], ts["last_msg_t"]
        if ts["last_fix"]:
            tag.last_fix = Fix(*ts["last_fix"])
            tag.last_t = ts["last_t"]
        tag.batt, tag.batt_armed = ts["batt"], ts["batt_armed"]
        tag.events = [tuple(e) for e in ts.get("events", [])]
        tag.late_buf = [Fix(*f) for f in ts.get("late_buf", [])]
        rs = ts.get("rules", {})
        for r in tag.rules:
            if r.req.id in rs:
                r.load_state(rs[r.req.id])
    if eng.now is not None:
        eng.rearm_timers()


__all__ = ["snapshot", "restore", "parse_caseload"]
