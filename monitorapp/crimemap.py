"""Crime mapping (spec §5): was anyone tagged near this place at this time?

``crime_check(store_or_path, lat, lon, radius_m, t_from, t_to, ref, reason, who)`` answers, for
every offender (and unassigned tag) whose assignment or data touches the window, with a verdict,
the closest approach and its time, and the fixes and track segments near the place.
``monitorapp crimecheck`` prints the same as JSON. Every query is written to the store's
hash-chained audit log with who asked, the reference, the reason, the parameters and the number
of results.

Decisions where the spec is silent (also in docs/readme/store.md):

* **Around the window**: fixes from 10 minutes before ``--from`` to 10 minutes after ``--to`` are
  read, so a track segment crossing the window's edge is interpolated and a gap at the edge is
  seen; for a gap, the last fix before (first after) that range is looked up as "last seen".
* Distances are in British National Grid metres (EPSG:27700), from the fix's centre.
* **present**: a fix with t in the window, not a single-fix jump (``monitorapp.trail``), with
  distance <= radius.
* **possible**: otherwise, any of: a fix in the window with distance <= radius + acc; the straight
  track between consecutive fixes <= 10 minutes apart, clipped to the window, coming within
  the radius; a gap over 10 minutes overlapping the window where the place was reachable at
  15 m/s from the last fix before the gap (or could have been left in time to reach the first
  fix after it), distances less that fix's accuracy; or a single-fix jump within radius + acc
  (not taken as presence, but shown to the investigator rather than hidden).
* **not_present**: neither, with continuous data; a gap the tag could not have crossed to the
  place at 15 m/s also gives not_present, and the result says so in ``basis``.
* **no_data**: no fix from 10 minutes before to 10 minutes after the window.
"""
from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import sys

import numpy as np
import pyproj

from monitorapp.timeutil import TimeFormatError, fmt_time, parse_time
from monitorapp.trail import neighbour_fix, read_track, subjects

MARGIN_S = 600.0          # "around the window", and the longest segment that is interpolated
GAP_S = 600.0             # a gap is more than 10 minutes without a fix
REACH_SPEED_MS = 15.0
MAX_RADIUS_M = 50_000.0
MAX_WINDOW_S = 31 * 86400.0
VERDICT_RANK = {"present": 0, "possible": 1, "not_present": 2, "no_data": 3}


class CrimeQueryError(ValueError):
    """A query that cannot be answered as asked (bad place, radius, window, missing ref)."""


_bng = None


def _project(lon: float, lat: float) -> tuple[float, float]:
    global _bng
    if _bng is None:
        _bng = pyproj.Transformer.from_crs(4326, 27700, always_xy=True)
    x, y = _bng.transform(lon, lat)
    return float(x), float(y)


def _time(value, what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    try:
        return parse_time(value)
    except TimeFormatError as e:
        raise CrimeQueryError(f"{what}: {e}") from None


def _validate(lat, lon, radius_m, t_from, t_to, ref, reason, who):
    for name, v, lim in (("lat", lat, 90), ("lon", lon, 180)):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > lim:
            raise CrimeQueryError(f"{name} must be a number within ±{lim}, not {v!r}")
    if (not isinstance(radius_m, (int, float)) or not math.isfinite(radius_m)
            or not 0 < radius_m <= MAX_RADIUS_M):
        raise CrimeQueryError(f"radius must be more than 0 and at most {MAX_RADIUS_M:.0f} m")
    t0, t1 = _time(t_from, "from"), _time(t_to, "to")
    if t1 <= t0:
        raise CrimeQueryError("the window must end after it starts (--to after --from)")
    if t1 - t0 > MAX_WINDOW_S:
        raise CrimeQueryError("the window may be at most 31 days")
    for name, v in (("a reference number (--ref)", ref), ("a reason (--reason)", reason),
                    ("who is asking", who)):
        if not isinstance(v, str) or not v.strip():
            raise CrimeQueryError(f"{name} is required")
    return t0, t1


def _segment_closest(ax, ay, at, bx, by, bt, cx, cy, tf, tt):
    """Closest approach to (cx, cy) of the straight track a→b clipped to [tf, tt]:
    (distance, time) or None if the segment is outside the window."""
    s0, s1 = max(at, tf), min(bt, tt)
    if s1 < s0 or bt <= at:
        return None
    f0, f1 = (s0 - at) / (bt - at), (s1 - at) / (bt - at)
    p0x, p0y = ax + (bx - ax) * f0, ay + (by - ay) * f0
    p1x, p1y = ax + (bx - ax) * f1, ay + (by - ay) * f1
    dx, dy = p1x - p0x, p1y - p0y
    ll = dx * dx + dy * dy
    u = 0.0 if ll == 0 else min(1.0, max(0.0, ((cx - p0x) * dx + (cy - p0y) * dy) / ll))
    return math.hypot(p0x + u * dx - cx, p0y + u * dy - cy), s0 + u * (s1 - s0)


def assess(conn, device: str, a: float, b: float, cx: float, cy: float, radius: float,
           tf: float, tt: float) -> dict:
    """The verdict for one tag (worn over [a, b]) against the place and window."""
    tr = read_track(conn, device, a, b)
    res = {"verdict": "no_data", "closest_m": None, "closest_at": None, "closest_acc_m": None,
           "fixes": [], "segments": [], "gaps": [], "basis": []}
    if tr is None:
        res["basis"].append("no fix from 10 minutes before to 10 minutes after the window")
        return res
    t, x, y, acc, jump = tr["t"], tr["x"], tr["y"], tr["acc"], tr["jump"]
    d = np.hypot(x - cx, y - cy)
    inw = (t >= tf) & (t <= tt)
    near = d <= radius + acc + max(radius, 250.0)
    present = possible = False
    best = (math.inf, None, None)
    for k in np.flatnonzero(inw & ~jump):
        if d[k] < best[0]:
            best = (float(d[k]), float(t[k]), float(acc[k]))
    for k in np.flatnonzero(near):
        res["fixes"].append({"t": fmt_time(float(t[k])), "seq": tr["seq"][k],
                             "lat": float(tr["lat"][k]), "lon": float(tr["lon"][k]),
                             "acc": float(acc[k]), "distance_m": round(float(d[k]), 1),
                             "in_window": bool(inw[k]), "inside": bool(d[k] <= radius),
                             "jump": bool(jump[k])})
    if np.any(inw & ~jump & (d <= radius)):
        present = True
        res["basis"].append("a fix in the window within the radius")
    elif np.any(inw & ~jump & (d <= radius + acc)):
        possible = True
        res["basis"].append("a fix in the window within the radius plus its accuracy")
    if np.any(inw & jump & (d <= radius + acc)):
        possible = True
        res["basis"].append("a single-fix jump within the radius (not taken as presence)")
    good = np.flatnonzero(~jump)
    for i, j in zip(good[:-1], good[1:]):
        if t[j] - t[i] > GAP_S:
            continue
        seg = _segment_closest(x[i], y[i], t[i], x[j], y[j], t[j], cx, cy, tf, tt)
        if seg is None:
            continue
        if seg[0] < best[0]:
            best = (seg[0], seg[1], None)
        if seg[0] <= radius + max(radius, 250.0):
            res["segments"].append({"from": fmt_time(float(t[i])), "to": fmt_time(float(t[j])),
                                    "closest_m": round(seg[0], 1), "closest_at": fmt_time(seg[1])})
        if seg[0] <= radius and not present and not possible:
            possible = True
            res["basis"].append("the track between two fixes passes within the radius")
    gap_unreachable = _gaps(conn, device, tr, good, cx, cy, radius, tf, tt, a, b, res)
    if any(g["reachable"] for g in res["gaps"]) and not present:
        if not possible:
            res["basis"].append("a gap over 10 minutes from which the place was reachable at 15 m/s")
        possible = True
    if best[1] is not None:
        res["closest_m"], res["closest_at"] = round(best[0], 1), fmt_time(best[1])
        res["closest_acc_m"] = best[2]
    if present:
        res["verdict"] = "present"
    elif possible:
        res["verdict"] = "possible"
    else:
        res["verdict"] = "not_present"
        res["basis"].append("gaps over 10 minutes, but too far to reach the place at 15 m/s"
                            if gap_unreachable else
                            "continuous data keeps the tag out of the radius")
    return res


def _gaps(conn, device, tr, good, cx, cy, radius, tf, tt, a, b, res) -> bool:
    """Find gaps over 10 minutes overlapping the window; mark each reachable or not."""
    t, x, y, acc = tr["t"], tr["x"], tr["y"], tr["acc"]
    pts = [(float(t[k]), float(x[k]), float(y[k]), float(acc[k])) for k in good]
    if not pts:
        return False
    # "last seen" before the range read, unless the tag was not this offender's then
    if pts[0][0] > tf:
        pts.insert(0, neighbour_fix(conn, device, a, before=True) if a <= tf - MARGIN_S else None)
    if pts[-1] is not None and pts[-1][0] < tt:
        pts.append(neighbour_fix(conn, device, b, before=False) if b >= tt + MARGIN_S else None)
    found = False
    for p, q in zip(pts[:-1], pts[1:]):
        t0 = p[0] if p is not None else -math.inf
        t1 = q[0] if q is not None else math.inf
        if t1 - t0 <= GAP_S or t1 <= tf or t0 >= tt:
            continue
        g0, g1 = max(t0, tf), min(t1, tt)
        reach = False
        if p is not None:
            reach |= math.hypot(p[1] - cx, p[2] - cy) - p[3] - radius <= REACH_SPEED_MS * (g1 - p[0])
        if q is not None:
            reach |= math.hypot(q[1] - cx, q[2] - cy) - q[3] - radius <= REACH_SPEED_MS * (q[0] - g0)
        found = True
        res["gaps"].append({"from": fmt_time(g0), "to": fmt_time(g1),
                            "seconds": round(g1 - g0, 1),
                            "last_seen": fmt_time(p[0]) if p is not None else None,
                            "next_seen": fmt_time(q[0]) if q is not None else None,
                            "reachable": bool(reach)})
    return found and not any(g["reachable"] for g in res["gaps"])


def crime_check(store_or_path, lat, lon, radius_m, t_from, t_to, ref, reason, who) -> dict:
    """Answer a crime-mapping query (spec §5) and audit it. See the module docstring."""
    t0, t1 = _validate(lat, lon, radius_m, t_from, t_to, ref, reason, who)
    from localdb.store import Store
    own = not hasattr(store_or_path, "reader")
    store = Store(store_or_path, create=False) if own else store_or_path
    try:
        cx, cy = _project(float(lon), float(lat))
        conn = store.reader()
        lo, hi = t0 - MARGIN_S, t1 + MARGIN_S
        results = []
        for oid, dev, a, b in subjects(conn, lo, hi):
            r = assess(conn, dev, a, b, cx, cy, float(radius_m), t0, t1)
            results.append({"offender": oid, "device": dev, **r})
        results.sort(key=lambda r: (VERDICT_RANK[r["verdict"]],
                                    r["closest_m"] if r["closest_m"] is not None else math.inf,
                                    r["offender"] or "", r["device"]))
        query = {"lat": float(lat), "lon": float(lon), "radius_m": float(radius_m),
                 "from": fmt_time(t0), "to": fmt_time(t1), "ref": ref.strip(),
                 "reason": reason.strip(), "who": who.strip(), "margin_s": MARGIN_S}
        counts = {v: sum(1 for r in results if r["verdict"] == v) for v in VERDICT_RANK}
        record = store.audit(who, "crime_query", {**query, "results": len(results),
                                                  "verdicts": counts})
        query["asked_at"] = fmt_time(record["at"])
        return {"query": query, "results": results}
    finally:
        if own:
            store.close()


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="monitorapp crimecheck",
        description="Crime mapping (spec §5): who was near this place in this time window.")
    parser.add_argument("--db", required=True, help="the store file")
    parser.add_argument("--lat", type=float, required=True)
    parser.add_argument("--lon", type=float, required=True)
    parser.add_argument("--radius-m", type=float, required=True)
    parser.add_argument("--from", dest="t_from", required=True, help="RFC 3339 time")
    parser.add_argument("--to", dest="t_to", required=True, help="RFC 3339 time")
    parser.add_argument("--ref", help="the reference number of the request (required)")
    parser.add_argument("--reason", help="why the query is made (required)")
    parser.add_argument("--operator", help="who is asking (default: $USER)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    who = args.operator or os.environ.get("USER") or _login()
    from localdb.schema import StoreError
    try:
        out = crime_check(args.db, args.lat, args.lon, args.radius_m, args.t_from, args.t_to,
                          args.ref, args.reason, who)
    except CrimeQueryError as e:
        print(f"monitorapp crimecheck: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"monitorapp crimecheck: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name available at all
        return ""
