"""The details panel's figures for a console of the centre (client mode, issue 15).

A console of the centre runs no engine, so the trail on the map and the 24-hour charts of the
details panel (distance to the nearest exclusion boundary, speed, battery) are made here from
what it is shown: the positions the decider publishes (``TrailHistory``, a bounded window per
tag in the flat arrays of ``ui.console.fixhistory``), and, where the signed-in login may read
the record's ``fixes`` (``record_fixes``; with the shipped roles no console login may: a
person's movements are read only through the audited crime-mapping path), the record's fixes of
the last 24 hours before this console started. ``details_of`` returns the same dictionary the
engine worker's details give, so ``ui.console.details.DetailsPanel`` draws it unchanged.

Zone versions (``ZoneTimeline``): the distance at each fix is measured against the version of
each exclusion zone in force at that time (from the moment this console was told the decider
applied it), as the engine worker does, never against today's geometry.
"""
from __future__ import annotations

import math

import numpy as np

from ui.console.engineworker import BoundaryDistance, ZoneVersion, distance_in_force
from ui.console.fixhistory import FixHistory

HISTORY_S = 24 * 3600
HISTORY_MAX = 1440          # fixes kept per tag: a day at one a minute (36 bytes each)
TRAIL_MAX = 720             # points of the trail drawn on the map (as the engine worker draws)


class TrailHistory:
    """Each tag's published positions of the last ``span_s``, at most ``max_n`` per tag, in
    measurement order (an older or repeated position, as a reconnect's retained message, is
    not added again). Used by the GUI thread only."""

    def __init__(self, max_n: int = HISTORY_MAX, span_s: float = HISTORY_S):
        self.max_n, self.span_s = max_n, span_s
        self.by_device: dict[str, FixHistory] = {}

    def add(self, m: dict) -> None:
        h = self.by_device.get(m["device"])
        if h is None:
            h = self.by_device[m["device"]] = FixHistory(self.max_n, self.span_s)
        elif len(h) and m["t"] <= h.t[-1]:
            return
        h.append(m["t"], m["lat"], m["lon"], m.get("acc"), m.get("spd"), _num(m.get("batt")))

    def rows(self, device: str, since: float = -math.inf) -> list[tuple]:
        h = self.by_device.get(device)
        return h.rows(since) if h is not None else []

    def merge(self, device: str, older: list[tuple]) -> None:
        """Fixes from the record ``[(t, lat, lon, acc, spd, batt)]`` put in before what this
        console received (one window again, measurement order, each time once)."""
        mine = self.rows(device)
        first = mine[0][0] if mine else math.inf
        h = FixHistory(self.max_n, self.span_s)
        for r in sorted(r for r in older if r[0] < first):
            h.append(*r)
        for r in mine:
            h.append(*r)
        self.by_device[device] = h

    def __len__(self) -> int:
        return len(self.by_device)


class ZoneTimeline:
    """Every version of each zone this console was shown, from when it was in force."""

    def __init__(self):
        self.history: dict[str, list[ZoneVersion]] = {}

    def note(self, zones: dict, at: float, only=None) -> None:
        """The zones in force now (``caseload.zones``; ``only``: just these ids changed); a
        changed or removed one starts a new version at ``at`` (the first known version is in
        force from the start)."""
        for zid in (set(self.history) | set(zones)) if only is None else only:
            z = zones.get(zid)
            key = None if z is None else (repr(z.geometry), z.radius_m)
            hist = self.history.setdefault(zid, [])
            if (hist and hist[-1].key == key) or (not hist and key is None):
                continue
            try:
                shape = None if z is None else BoundaryDistance(z.geometry, z.radius_m)
            except Exception:          # noqa: BLE001 - a zone that cannot be measured: no distance
                shape = None
            hist.append(ZoneVersion(at if hist else -math.inf, key, shape))

    def distance_m(self, zone_ids: list[str], ts, lons, lats) -> list[float]:
        """Metres outside the nearest of ``zone_ids`` (< 0: inside) at each fix, against the
        versions in force at each fix's time; NaN where none was in force."""
        return distance_in_force(self.history, zone_ids, ts, lons, lats)

    def changes_since(self, zone_ids: list[str], t0: float) -> list[float]:
        return sorted(v.t_from for z in zone_ids for v in self.history.get(z, [])[1:] if v.t_from >= t0)


def details_of(o, caseload, rows: list[tuple], now: float, zones: ZoneTimeline, last: dict | None) -> dict:
    """The details dictionary (``EngineWorker._details``'s) of offender ``o`` from its fixes
    ``rows`` and the latest position message ``last``."""
    ts = [r[0] for r in rows]
    lons = np.fromiter((r[2] for r in rows), float, len(rows))
    lats = np.fromiter((r[1] for r in rows), float, len(rows))
    excl = [r.zone for r in o.requirements if r.type == "exclusion"]
    speed, prev = [], None
    for t, lat, lon, _acc, spd, _batt in rows:
        if spd is not None:
            speed.append(spd)
        elif prev is not None and t > prev[0]:
            speed.append(_haversine_m(prev[1], prev[2], lat, lon) / (t - prev[0]))
        else:
            speed.append(0.0)
        prev = (t, lat, lon)
    if last is None and rows:
        t, lat, lon, acc, _spd, batt = rows[-1]
        last = {"t": t, "lat": lat, "lon": lon, "acc": acc, "batt": batt}
    return {
        "offender": o.id, "name": o.name, "borough": o.borough, "risk": o.risk, "device": o.device,
        "fix_interval_s": o.fix_interval_s,
        "requirements": [{"id": r.id, "type": r.type, "zone": r.zone,
                          "zone_name": caseload.zones[r.zone].name if r.zone in caseload.zones else r.zone,
                          "schedule": r.schedule, "start": r.start, "end": r.end} for r in o.requirements],
        "now": now, "t": ts, "distance_m": zones.distance_m(excl, ts, lons, lats),
        "zone_changes": zones.changes_since(excl, ts[0]) if ts else [], "speed_ms": speed,
        "battery": [r[5] if r[5] is not None else math.nan for r in rows],
        "last": {"t": last["t"], "lat": last["lat"], "lon": last["lon"], "acc": last["acc"],
                 "batt": last.get("batt"), "address": last.get("address_text") or last.get("address")}
        if last else None,
        "tag": {},
        "trail": [{"lat": r[1], "lon": r[2], "t": r[0], "acc": r[3]} for r in rows[-TRAIL_MAX:]],
    }


def record_fixes(store, device: str, since: float, until: float, limit: int = HISTORY_MAX) -> list[tuple] | None:
    """The record's fixes of ``device`` in [since, until) as ``[(t, lat, lon, acc, spd, batt)]``,
    newest ``limit``, oldest first; None when this login may not read them (runs on the record's
    thread, as the signed-in person)."""
    conn = store.reader()
    if not conn.execute("SELECT has_table_privilege('fixes', 'SELECT')").fetchone()[0]:
        return None
    rows = conn.execute("SELECT t, lat, lon, acc, spd, batt FROM fixes WHERE device = %s AND t >= %s"
                        " AND t < %s AND used ORDER BY t DESC LIMIT %s", (device, since, until, limit)).fetchall()
    return [tuple(r) for r in reversed(rows)]


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _haversine_m(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371000.0 * math.asin(math.sqrt(a))
