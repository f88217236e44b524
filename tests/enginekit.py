"""Test kit for the engine: a small caseload around a point in Hackney and a feed builder that
turns a true track (metres east/north of the origin over time) into v1 lines with Gaussian GPS
noise consistent with ``acc`` (σ per axis = acc / 1.515)."""
from __future__ import annotations

import math
import random

import orjson

from monitorapp.engine.caseload import parse_caseload
from monitorapp.engine.engine import Engine
from monitorapp.feed.timeutil import fmt_time, parse_time

LON0, LAT0 = -0.0550, 51.5450
K_LAT = 111_250.0
K_LON = 111_320.0 * math.cos(math.radians(LAT0))


def lonlat(x: float, y: float) -> tuple[float, float]:
    return LON0 + x / K_LON, LAT0 + y / K_LAT


def square(cx: float, cy: float, half: float) -> list:
    pts = [(cx - half, cy - half), (cx + half, cy - half), (cx + half, cy + half), (cx - half, cy + half)]
    ring = [list(lonlat(*p)) for p in pts]
    return [ring + [ring[0]]]


# home at the origin (100 m circle); exclusion square centred 1 km east, 300 m across (x 850..1150)
EXCL_X0 = 850.0


def caseload_doc(fix_interval=60, appointment=None, exclusion_schedule=None, curfew=("19:00", "07:00")):
    o = {"id": "OFF-1", "name": "Test Subject", "risk": "high", "borough": "Hackney", "device": "TAG-1",
         "fix_interval_s": fix_interval,
         "requirements": [
             {"id": "R-X", "type": "exclusion", "zone": "Z-EXCL", "schedule": exclusion_schedule},
             {"id": "R-C", "type": "curfew", "zone": "Z-HOME",
              "schedule": [{"days": "daily", "start": curfew[0], "end": curfew[1]}], "grace_s": 600}]}
    feats = [
        {"type": "Feature", "id": "Z-HOME", "properties": {"name": "Home", "radius_m": 100},
         "geometry": {"type": "Point", "coordinates": list(lonlat(0, 0))}},
        {"type": "Feature", "id": "Z-EXCL", "properties": {"name": "Victim's street"},
         "geometry": {"type": "Polygon", "coordinates": square(1000, 0, 150)}},
        {"type": "Feature", "id": "Z-OFFICE", "properties": {"name": "Probation office", "radius_m": 60},
         "geometry": {"type": "Point", "coordinates": list(lonlat(0, 2000))}},
    ]
    if appointment:
        o["requirements"].append({"id": "R-A", "type": "appointment", "zone": "Z-OFFICE",
                                  "start": appointment[0], "end": appointment[1], "grace_s": 300})
    other = {"id": "OFF-2", "name": "Other", "risk": "low", "borough": "Hackney", "device": "TAG-2",
             "fix_interval_s": 60, "requirements": []}
    return {"version": 1, "tz": "Europe/London", "zones": {"type": "FeatureCollection", "features": feats},
            "offenders": [o, other]}


def caseload(**kw):
    return parse_caseload(caseload_doc(**kw))


class FeedBuilder:
    """Collects (rx, line) pairs; ``lines()`` gives them in arrival order."""

    def __init__(self, seed: int = 1):
        self.rng = random.Random(seed)
        self.out: list[tuple[float, int, bytes]] = []
        self.seq: dict[str, int] = {}
        self._n = 0

    def _add(self, rx: float, obj: dict) -> None:
        self._n += 1
        self.out.append((rx, self._n, orjson.dumps(obj)))

    def next_seq(self, device: str) -> int:
        s = self.seq.get(device, 0)
        self.seq[device] = s + 1
        return s

    def fix(self, device, t, x, y, acc=10.0, rx=None, noise=True, batt=None, seq=None):
        sigma = acc / 1.515
        if noise:
            x += self.rng.gauss(0, sigma)
            y += self.rng.gauss(0, sigma)
        lon, lat = lonlat(x, y)
        obj = {"v": 1, "kind": "fix", "device": device, "seq": self.next_seq(device) if seq is None else seq,
               "t": fmt_time(t), "rx": fmt_time(rx if rx is not None else t + 1.0),
               "lat": round(lat, 7), "lon": round(lon, 7), "acc": acc, "src": "gps"}
        if batt is not None:
            obj["batt"] = batt
        self._add(rx if rx is not None else t + 1.0, obj)
        return obj

    def event(self, device, t, etype, rx=None):
        self._add(rx if rx is not None else t + 1.0,
                  {"v": 1, "kind": "event", "device": device, "seq": self.next_seq(device),
                   "t": fmt_time(t), "rx": fmt_time(rx if rx is not None else t + 1.0), "type": etype})

    def heartbeats(self, t0, t1, every=10.0, skip=None):
        t = t0
        while t <= t1:
            if not (skip and skip[0] <= t < skip[1]):
                self._add(t + 0.2, {"v": 1, "kind": "heartbeat", "gateway": "GW-1", "t": fmt_time(t),
                                    "rx": fmt_time(t + 0.2)})
            t += every

    def track(self, device, t0, t1, pos, interval=60.0, acc=10.0, skip=None, **kw):
        """Fixes every ``interval`` from t0 to t1 at true position ``pos(t) -> (x, y)``."""
        t = t0
        while t <= t1:
            if not (skip and skip[0] <= t < skip[1]):
                self.fix(device, t, *pos(t), acc=acc, **kw)
            t += interval

    def lines(self) -> list[bytes]:
        return [line for _, _, line in sorted(self.out)]


def run(cl, lines, engine=None):
    eng = engine or Engine(cl)
    changes = []
    eng.add_listener(on_alert=lambda a, ch: changes.append((ch, a.type, a.alert_id)))
    for ln in lines:
        eng.submit(ln)
    eng.flush()
    return eng, changes


def T(s: str) -> float:
    return parse_time(s)


def raised(eng, type_=None):
    return [a for a in eng.alerts.values() if type_ is None or a.type == type_]
