"""The demo caseload: offenders in the eight North and East London pilot boroughs (spec §3).

``demo_caseload(n_offenders, seed, start, hours)`` builds a caseload v1 dict (tz
Europe/London), deterministic for a seed, shaped like ``shared/spec/examples/caseload.json``:

* a probation office per borough (``Z-OFFICE-<Borough>``, Point, radius 60 m);
* offender ``OFF-0001`` … with tag ``TAG-01001`` …, spread round-robin over the boroughs,
  homes within 1.8 km (Enfield 2.5 km) of the borough's centre and inside the borough's real
  boundary (``monitorapp.places``, OpenStreetMap; a home drawn across the line is drawn again);
* a curfew for most (``R-0001-C`` on ``Z-HOME-0001``, Point radius 100 m): 19:00–07:00 daily,
  some weekday-only, some 21:00–06:00; grace 600 s;
* an exclusion zone for most (``R-0001-X`` on ``Z-EXCL-0001``): a victim's street or home as a
  circle-ish polygon 150–300 m across, or a rectangle; a few (a school) only on weekdays
  08:00–16:00. Zones are 1.2–3 km from home, ≥ 800 m from home and the office and ≥ 400 m
  from the straight line between them;
* an appointment at the borough office for about a quarter (``R-0001-A1``), 30–60 min between
  10:00 and 16:00 local on a day of the simulated period, grace 300 s;
* ``fix_interval_s`` 60, or 30 for about a fifth (mostly high risk).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import random
from zoneinfo import ZoneInfo

from shapely.geometry import LineString, Point, Polygon

from monitorapp.places import BoroughError, borough_at
from monitorapp.sim.routines import LocalGrid, circle_ring, local_date, local_time, rect_ring
from monitorapp.feed.timeutil import fmt_time, parse_time

TZ = "Europe/London"
DEFAULT_START = "2026-10-24T12:00:00Z"
# borough: (centre lon, lat), (office lon, lat), spread of homes in metres
BOROUGHS = {
    "Camden": ((-0.1550, 51.5490), (-0.12116613501837345, 51.52720337765002), 1800),
    "Enfield": ((-0.0810, 51.6500), (-0.07556613501837345, 51.65200337765001), 2500),
    "Haringey": ((-0.1100, 51.5880), (-0.10666613501837345, 51.58880337765002), 1800),
    "Islington": ((-0.1060, 51.5470), (-0.09786613501837345, 51.53980337765002), 1500),
    "Hackney": ((-0.0590, 51.5490), (-0.05096613501837345, 51.543203377650016), 1800),
    "Newham": ((0.0300, 51.5280), (0.05623386498162655, 51.53680337765002), 2000),
    "Tower Hamlets": ((-0.0350, 51.5150), (-0.05626613501837345, 51.517703377650015), 1600),
    "Waltham Forest": ((-0.0180, 51.5900), (-0.007466135018373448, 51.586803377650014), 1800),
}
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def _office_id(borough: str) -> str:
    return "Z-OFFICE-" + borough.replace(" ", "")


def _point(fid: str, name: str, lon: float, lat: float, radius: float) -> dict:
    return {"type": "Feature", "id": fid, "properties": {"name": name, "radius_m": radius},
            "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}}


def _exclusion(rng: random.Random, grid: LocalGrid, home, office, fid: str, name: str):
    """A zone 1.2–3 km from home, clear of home, the office and the way between them."""
    route = LineString([home, office]) if home != office else Point(home)
    for _ in range(300):
        a, r = rng.uniform(0, 2 * math.pi), rng.uniform(1200, 3000)
        cx, cy = home[0] + r * math.cos(a), home[1] + r * math.sin(a)
        lon, lat = grid.to_lonlat(cx, cy)
        if rng.random() < 0.7:
            ring = circle_ring(lon, lat, rng.uniform(75, 150), n=24)
        else:
            ring = rect_ring(lon, lat, rng.uniform(150, 300), rng.uniform(100, 200), rng.uniform(0, 180))
        poly = Polygon([grid.to_xy(*p) for p in ring])
        if (poly.distance(Point(home)) >= 800 and poly.distance(Point(office)) >= 800
                and poly.distance(route) >= 400):
            return {"type": "Feature", "id": fid, "properties": {"name": name},
                    "geometry": {"type": "Polygon", "coordinates": [ring]}}
    return None


def _in_borough(lon: float, lat: float, borough: str) -> bool:
    """Whether a position is in the borough by its real boundary; True when the boundaries
    file cannot be read (the demo still runs, with homes near the centres only)."""
    try:
        return borough_at(lon, lat) == borough
    except BoroughError:
        return True


def demo_caseload(n_offenders: int = 100, seed: int = 1, start=DEFAULT_START, hours: float = 24.0) -> dict:
    """A caseload v1 dict for the eight pilot boroughs (see the module docstring)."""
    if n_offenders < 1:
        raise ValueError("n_offenders must be at least 1")
    rng = random.Random(f"demo|{seed}")
    tz = ZoneInfo(TZ)
    t0 = parse_time(start) if isinstance(start, str) else float(start)
    t1 = t0 + hours * 3600.0
    features = [_point(_office_id(b), f"Probation office, {b}", *v[1], 60)
                for b, v in BOROUGHS.items()]
    names = list(BOROUGHS)
    offenders = []
    slots = []          # (start, longest length in minutes) of appointment slots in the period
    d = local_date(t0, tz)
    while local_time(d, "00:00", tz) < t1:
        for minute in range(10 * 60, 15 * 60 + 1, 15):
            a = local_time(d, dt.time(minute // 60, minute % 60), tz)
            room = min(60.0, (t1 - 3600 - a) / 60.0, 16 * 60 - minute)
            if a >= t0 + 3600 and room >= 30:
                slots.append((a, room))
        d += dt.timedelta(days=1)
    for i in range(1, n_offenders + 1):
        borough = names[(i - 1) % len(names)]
        (clon, clat), (olon, olat), spread = BOROUGHS[borough]
        grid = LocalGrid(clon, clat)
        for _ in range(50):
            a, r = rng.uniform(0, 2 * math.pi), spread * math.sqrt(rng.random())
            home = (r * math.cos(a), r * math.sin(a))
            hlon, hlat = grid.to_lonlat(*home)
            if _in_borough(hlon, hlat, borough):
                break
        office = grid.to_xy(olon, olat)
        risk = rng.choices(["high", "medium", "low"], [0.35, 0.45, 0.2])[0]
        interval = 30 if rng.random() < (0.45 if risk == "high" else 0.05) else 60
        oid, num = f"OFF-{i:04d}", f"{i:04d}"
        reqs = []
        has_excl = risk == "high" or rng.random() < 0.6
        has_curfew = rng.random() < 0.85 or not has_excl
        if has_excl:
            z = _exclusion(rng, grid, home, office, f"Z-EXCL-{num}", f"Exclusion zone of {oid}")
            if z is not None:
                features.append(z)
                sched = None
                if rng.random() < 0.15:
                    sched = [{"days": list(WEEKDAYS), "start": "08:00", "end": "16:00"}]
                    z["properties"]["name"] = f"School exclusion zone of {oid}"
                reqs.append({"id": f"R-{num}-X", "type": "exclusion", "zone": z["id"], "schedule": sched})
        if has_curfew:
            features.append(_point(f"Z-HOME-{num}", f"Home of {oid}", hlon, hlat, 100))
            u = rng.random()
            if u < 0.7:
                win = {"days": "daily", "start": "19:00", "end": "07:00"}
            elif u < 0.9:
                win = {"days": list(WEEKDAYS), "start": "19:00", "end": "07:00"}
            else:
                win = {"days": "daily", "start": "21:00", "end": "06:00"}
            reqs.append({"id": f"R-{num}-C", "type": "curfew", "zone": f"Z-HOME-{num}",
                         "schedule": [win], "grace_s": 600})
        if rng.random() < 0.25 and slots:
            a_start, minutes = rng.choice(slots)
            a_end = a_start + rng.choice([m for m in (30, 45, 60) if m <= minutes]) * 60
            reqs.append({"id": f"R-{num}-A1", "type": "appointment", "zone": _office_id(borough),
                         "start": fmt_time(a_start), "end": fmt_time(a_end), "grace_s": 300})
        offenders.append({"id": oid, "name": f"Subject {i}", "risk": risk, "borough": borough,
                          "device": f"TAG-{1000 + i:05d}", "fix_interval_s": interval,
                          "requirements": reqs})
    return {"version": 1, "tz": TZ, "zones": {"type": "FeatureCollection", "features": features},
            "offenders": offenders}


def write_demo_caseload(path, n_offenders: int = 100, seed: int = 1, start=DEFAULT_START,
                        hours: float = 24.0) -> dict:
    """Write ``demo_caseload(...)`` as JSON to ``path``; returns the dict."""
    cl = demo_caseload(n_offenders, seed, start, hours)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cl, f, indent=1)
        f.write("\n")
    return cl
