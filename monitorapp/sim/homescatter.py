"""Real-world noise cases (issue 17): tags in small homes under a short curfew grace, as a
caseload and a protocol v1 feed, for the scenario tests and ``benchmarks/bench_noise.py``.

``home_caseload(n)``: ``n`` offenders, each with a circular home zone of 12–15 m radius, a
curfew 19:00–07:00 (Europe/London) with ``grace_s`` (default 60 s), an always-active exclusion
square 300 m across 1 km east of home, one fix a minute.

``home_feed(caseload, start, hours, ...)``: every tag stationary where it lives (uniformly
within half the home's radius of its centre: a flat, not its front wall), the stated ``acc``
drawn per fix as ``TagFeed`` draws it at home (30 % Wi-Fi 30–42 m, else GPS 10–30 m), and the
error from ``tags.GpsError`` (``tau_s`` correlation, ``inflation`` × the stated scale).
``leavers``: (offender index, leave time, distance m) — that tag walks away from home at 1.4 m/s
to ``distance`` metres, stays 30 min and walks back; its true boundary crossing is returned.
``entrants``: (offender index, time, depth m) — that tag walks east into the exclusion zone
to ``depth`` metres inside it, stays 10 min and walks back; the true entry is returned. While
walking the tag reports GPS with ``acc`` 5–20 m (outdoors). All deterministic in ``seed``.
"""
from __future__ import annotations

import math
import random

import orjson

from monitorapp.feed.timeutil import fmt_time
from monitorapp.sim.tags import SIGMA_PER_ACC, GpsError

LON0, LAT0 = -0.0550, 51.5450
K_LAT = 111_250.0
K_LON = 111_320.0 * math.cos(math.radians(LAT0))
SPACING_M = 3000.0          # homes on a grid this far apart (exclusion zones never overlap)
WALK_MPS = 1.4
STAY_S = 1800.0
EXCL_OFFSET_M, EXCL_HALF_M = 1000.0, 150.0


def _lonlat(x: float, y: float) -> tuple[float, float]:
    return LON0 + x / K_LON, LAT0 + y / K_LAT


def _home_xy(i: int) -> tuple[float, float]:
    return (i % 20) * SPACING_M, (i // 20) * SPACING_M


def home_caseload(n: int, grace_s: float = 60.0, seed: int = 1, interval: float = 60.0) -> dict:
    rng = random.Random(f"{seed}|caseload")
    feats, offenders = [], []
    for i in range(n):
        hx, hy = _home_xy(i)
        r = round(rng.uniform(12.0, 15.0), 1)
        feats.append({"type": "Feature", "id": f"Z-HOME-{i:04d}", "properties": {"name": "Home", "radius_m": r},
                      "geometry": {"type": "Point", "coordinates": list(_lonlat(hx, hy))}})
        cx = hx + EXCL_OFFSET_M
        ring = [list(_lonlat(cx + dx, hy + dy)) for dx, dy in
                ((-EXCL_HALF_M, -EXCL_HALF_M), (EXCL_HALF_M, -EXCL_HALF_M), (EXCL_HALF_M, EXCL_HALF_M),
                 (-EXCL_HALF_M, EXCL_HALF_M), (-EXCL_HALF_M, -EXCL_HALF_M))]
        feats.append({"type": "Feature", "id": f"Z-EXCL-{i:04d}", "properties": {"name": "Street"},
                      "geometry": {"type": "Polygon", "coordinates": [ring]}})
        offenders.append({
            "id": f"OFF-{i:04d}", "name": f"Offender {i}", "risk": "medium", "borough": "Hackney",
            "device": f"TAG-{i:04d}", "fix_interval_s": interval,
            "requirements": [
                {"id": f"R-{i:04d}-C", "type": "curfew", "zone": f"Z-HOME-{i:04d}", "grace_s": grace_s,
                 "schedule": [{"days": "daily", "start": "19:00", "end": "07:00"}]},
                {"id": f"R-{i:04d}-X", "type": "exclusion", "zone": f"Z-EXCL-{i:04d}", "schedule": None}]})
    return {"version": 1, "tz": "Europe/London",
            "zones": {"type": "FeatureCollection", "features": feats}, "offenders": offenders}


def _radius(caseload: dict, i: int) -> float:
    return caseload["zones"]["features"][2 * i]["properties"]["radius_m"]


def home_feed(caseload: dict, start: float, hours: float, seed: int = 1, tau_s: float = 300.0,
              inflation: float = 2.0, leavers=(), entrants=()):
    """``(lines, truth)``: lines (rx, bytes) in arrival order; truth {"leave": {i: crossing t},
    "entry": {i: entry t}}."""
    n = len(caseload["offenders"])
    interval = float(caseload["offenders"][0]["fix_interval_s"])
    t1 = start + hours * 3600.0
    leave = {i: (t, d) for i, t, d in leavers}
    enter = {i: (t, d) for i, t, d in entrants}
    truth = {"leave": {}, "entry": {}}
    out = []
    for i in range(n):
        rng = random.Random(f"{seed}|tag|{i}")
        err = GpsError(rng, tau_s, inflation)
        hx, hy = _home_xy(i)
        rad = _radius(caseload, i)
        a, d = rng.uniform(0, 2 * math.pi), 0.5 * rad * math.sqrt(rng.random())
        sx, sy = hx + d * math.cos(a), hy + d * math.sin(a)
        heading = rng.uniform(0, 2 * math.pi)
        walk = None          # (t_out, dist, ux, uy, from_x, from_y)
        if i in leave:
            tl, dist = leave[i]
            walk = (tl, dist, math.cos(heading), math.sin(heading), sx, sy)
            # crossing: |s + u·v·(t − tl) − h| = rad
            bx, by = sx - hx, sy - hy
            pu = bx * walk[2] + by * walk[3]
            k = -pu + math.sqrt(pu * pu - (bx * bx + by * by - rad * rad))
            truth["leave"][i] = tl + k / WALK_MPS
        elif i in enter:
            te, depth = enter[i]
            dist = EXCL_OFFSET_M - EXCL_HALF_M + depth - (sx - hx)
            walk = (te, dist, 1.0, 0.0, sx, sy)
            truth["entry"][i] = te + (EXCL_OFFSET_M - EXCL_HALF_M - (sx - hx)) / WALK_MPS
        seq = rng.randrange(1, 9000)
        t = start + rng.uniform(0, interval)
        while t < t1:
            x, y, moving = sx, sy, False
            if walk is not None:
                tw, dist, ux, uy, fx, fy = walk
                go = dist / WALK_MPS
                if tw <= t < tw + 2 * go + STAY_S:
                    e = t - tw
                    s = min(e, go) * WALK_MPS if e < go + STAY_S else max(0.0, dist - (e - go - STAY_S) * WALK_MPS)
                    x, y = fx + ux * s, fy + uy * s
                    moving = e < go or e >= go + STAY_S
            if moving or (walk is not None and walk[0] <= t < walk[0] + 2 * walk[1] / WALK_MPS + STAY_S):
                src, acc = "gps", rng.uniform(5.0, 20.0)
            elif rng.random() < 0.3:
                src, acc = "wifi", rng.uniform(30.0, 42.0)
            else:
                src, acc = "gps", rng.uniform(10.0, 30.0)
            ex, ey = err.sample(t, acc * SIGMA_PER_ACC)
            lon, lat = _lonlat(x + ex, y + ey)
            tm = round(t, 3)
            rx = round(tm + rng.uniform(0.2, 2.0), 3)
            msg = {"v": 1, "kind": "fix", "device": f"TAG-{i:04d}", "seq": seq, "t": fmt_time(tm),
                   "rx": fmt_time(rx), "lat": round(lat, 7), "lon": round(lon, 7), "acc": round(acc, 1),
                   "src": src}
            out.append((rx, i, seq, orjson.dumps(msg)))
            seq += 1
            t += interval
    out.sort()
    return [(rx, line) for rx, _i, _s, line in out], truth
