"""Crime mapping (spec §5): was anyone tagged near this place at this time?

``crime_check(store_or_path, lat, lon, radius_m, t_from, t_to, ref, reason, who)`` answers, for
every offender (and unassigned tag) whose assignment or data touches the window, with a verdict,
the closest approach and its time, and the fixes and track segments near the place.
``monitorapp crimecheck`` prints the same as JSON. Every query is written to the store's
hash-chained audit log with who asked, the reference, the reason, the parameters and the number
of results.

Verdicts (``monitorapp.crime.prism``, spec v2 §5): space-time prisms between consecutive good
fixes at ``speed_ms`` (15 m/s unless the query names another), accuracy counted; the fixes in
the window and the ones bracketing it within the offender's assignment however long before or
after (``monitorapp.crime.tracks``); ``not_present`` only where the prisms rule the place out
for the whole window, ``no_data`` only where no fix is in the window and no pair of fixes less
than 24 hours apart brackets it. Each result gives its ``reason`` in words, the ``earliest``
and ``latest`` time the person could have been at the place, the bracketing fixes and the
prisms that meet the place (``monitorapp.crime.results``). Distances are in a metric
projection chosen for the place, the engine's own (``monitorapp.engine.geo.Projector``: British
National Grid in Great Britain, where the stored grid positions are used; a local transverse
Mercator elsewhere, from each fix's latitude and longitude); the query names it.

Bad queries are one line and exit status 2, never a traceback: the place (lat within ±90, lon
within ±180, finite), the radius (more than 0, at most 50 km), the window (RFC 3339, ``--to``
after ``--from``, at most 31 days, and both ends within the feed's own time bounds,
2000-01-01T00:00:00Z to 2100-01-01T00:00:00Z, spec v2 §2: no data can exist outside them, and
the window's margins and times stay printable), ``--ref`` and ``--reason``, and the command's
own arguments (a value that is not a number is named in one line, not with the usage text).
"""
from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import sqlite3
import sys

import pyproj

from monitorapp.crime.prism import evaluate
from monitorapp.crime.results import build
from monitorapp.crime.tracks import Tracks
from monitorapp.crime.trail import subjects
from monitorapp.feed.timeutil import TimeFormatError, fmt_time, parse_time

MARGIN_S = 600.0          # how far either side of the window a view shows the track (display only)
REACH_SPEED_MS = 15.0     # the speed bound of the prisms unless a query names another
MAX_SPEED_MS = 350.0
MAX_RADIUS_M = 50_000.0
MAX_WINDOW_S = 31 * 86400.0
T_EARLIEST = 946_684_800.0     # 2000-01-01T00:00:00Z: the feed's bounds (spec v2 §2)
T_LATEST = 4_102_444_800.0     # 2100-01-01T00:00:00Z
VERDICT_RANK = {"present": 0, "possible": 1, "not_present": 2, "no_data": 3}


class CrimeQueryError(ValueError):
    """A query that cannot be answered as asked (bad place, radius, window, missing ref)."""


_bng = None


def scene_xy(lon: float, lat: float) -> tuple[float, float]:
    """A crime scene's lon/lat in British National Grid metres, the grid the store indexes fixes in."""
    global _bng
    if _bng is None:
        _bng = pyproj.Transformer.from_crs(4326, 27700, always_xy=True)
    x, y = _bng.transform(lon, lat)
    return float(x), float(y)


def _time(value, what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        t = float(value)
    else:
        try:
            t = parse_time(value)
        except TimeFormatError as e:
            raise CrimeQueryError(f"{what}: {e}") from None
    if not T_EARLIEST <= t <= T_LATEST:
        shown = value if isinstance(value, str) else t
        raise CrimeQueryError(f"{what}: {str(shown)[:40]!r} is outside 2000-01-01T00:00:00Z to "
                              "2100-01-01T00:00:00Z, where the centre can hold data")
    return t


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


def _check_speed(speed_ms) -> float:
    if (not isinstance(speed_ms, (int, float)) or isinstance(speed_ms, bool)
            or not math.isfinite(speed_ms) or not 0 < speed_ms <= MAX_SPEED_MS):
        raise CrimeQueryError(f"the speed bound must be more than 0 and at most {MAX_SPEED_MS:.0f} m/s")
    return float(speed_ms)


def projector_for(lon: float, lat: float):
    """The engine's metric projection chosen for the place, and whether it is the stored grid."""
    from monitorapp.engine.geo import BNG_BOUNDS, Projector
    global _grid
    inside = BNG_BOUNDS[0] <= lon <= BNG_BOUNDS[2] and BNG_BOUNDS[1] <= lat <= BNG_BOUNDS[3]
    if inside and _grid is not None:          # one grid projector (making one costs ~40 ms)
        return _grid, True
    proj = Projector([(float(lon), float(lat))])
    if inside:
        _grid = proj
    return proj, proj.name.startswith("EPSG:27700")


_grid = None


def assess_all(conn, subs: list[tuple], cx: float, cy: float, radius: float,
               tf: float, tt: float, *, speed_ms: float = REACH_SPEED_MS,
               projector=None, tracks: Tracks | None = None) -> list[dict]:
    """The verdict and evidence for every subject (offender, device, assignment from, to);
    (cx, cy) in British National Grid metres, or in ``projector``'s when one is given (a place
    outside Great Britain: the fixes are reprojected from their latitude and longitude)."""
    tr = tracks if tracks is not None else Tracks(conn, subs, tf, tt, lonlat=projector is not None)
    if projector is not None:
        tr = tr.reprojected(projector)
    ev = evaluate(tr, cx, cy, float(radius), tf, tt, float(speed_ms))
    return build(conn, tr, ev, float(radius), tf, tt, float(speed_ms))


def window_reader(store, lo: float, hi: float, ref: str, reason: str, place: dict | None):
    """What the query reads: the PostgreSQL record's slice of [lo, hi] (``centraldb.crime``)
    or the SQLite store itself (an analyst's login reads only through the server's audited
    path, with ref and reason)."""
    if hasattr(store, "crime_reader"):
        return store.crime_reader(lo, hi, ref=ref, reason=reason, place=place)
    return store.reader()


def sort_results(results: list[dict]) -> None:
    results.sort(key=lambda r: (VERDICT_RANK[r["verdict"]],
                                r["closest_m"] if r["closest_m"] is not None else math.inf,
                                r["offender"] or "", r["device"]))


def crime_check(store_or_path, lat, lon, radius_m, t_from, t_to, ref, reason, who, *,
                speed_ms: float = REACH_SPEED_MS, reader=None) -> dict:
    """Answer a crime-mapping query (spec §5) and audit it. See the module docstring.
    ``reader``: the window's reader already made by ``window_reader`` with this query's ref and
    reason (a view that also draws from it reads, and is audited, once)."""
    t0, t1 = _validate(lat, lon, radius_m, t_from, t_to, ref, reason, who)
    v = _check_speed(speed_ms)
    from centraldb import open_store
    own = not hasattr(store_or_path, "reader")
    store = open_store(store_or_path, create=False) if own else store_or_path
    try:
        proj, grid = projector_for(lon, lat)
        cx, cy = proj.to_xy(float(lon), float(lat))
        conn = reader if reader is not None else window_reader(
            store, t0, t1, ref.strip(), reason.strip(),
            {"lat": float(lat), "lon": float(lon), "radius_m": float(radius_m)})
        subs = subjects(conn, t0, t1, clip=False)
        results = [{"offender": oid, "device": dev, **r} for (oid, dev, _, _), r
                   in zip(subs, assess_all(conn, subs, cx, cy, float(radius_m), t0, t1, speed_ms=v,
                                           projector=None if grid else proj))]
        sort_results(results)
        query = {"lat": float(lat), "lon": float(lon), "radius_m": float(radius_m),
                 "from": fmt_time(t0), "to": fmt_time(t1), "ref": ref.strip(),
                 "reason": reason.strip(), "who": who.strip(), "speed_ms": v,
                 "projection": proj.name}
        counts = {k: sum(1 for r in results if r["verdict"] == k) for k in VERDICT_RANK}
        record = store.audit(who, "crime_query", {**query, "results": len(results),
                                                  "verdicts": counts})
        query["asked_at"] = fmt_time(record["at"])
        return {"query": query, "results": results}
    finally:
        if own:
            store.close()


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (exit 2), not the usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} ('{self.prog} --help' lists the options)\n")


def cli_main(argv: list[str]) -> int:
    parser = _OneLineParser(
        prog="monitorapp crimecheck",
        description="Crime mapping (spec §5): who was near this place in this time window.")
    parser.add_argument("--db", required=True,
                        help="the store: a SQLite file, or the centre's record as postgresql://...")
    parser.add_argument("--lat", type=float, required=True)
    parser.add_argument("--lon", type=float, required=True)
    parser.add_argument("--radius-m", type=float, required=True)
    parser.add_argument("--from", dest="t_from", required=True, help="RFC 3339 time")
    parser.add_argument("--to", dest="t_to", required=True, help="RFC 3339 time")
    parser.add_argument("--ref", help="the reference number of the request (required)")
    parser.add_argument("--reason", help="why the query is made (required)")
    parser.add_argument("--operator", help="who is asking (default: $USER)")
    parser.add_argument("--speed-ms", type=float, default=REACH_SPEED_MS,
                        help="the speed bound of the prisms, m/s (default 15)")
    parser.add_argument("--incidents", help="a CSV or GeoJSON file of incidents instead of one "
                        "place: the batch form (monitorapp crimecheck --incidents FILE --help)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    who = args.operator or os.environ.get("USER") or _login()
    from localdb.schema import StoreError
    try:
        out = crime_check(args.db, args.lat, args.lon, args.radius_m, args.t_from, args.t_to,
                          args.ref, args.reason, who, speed_ms=args.speed_ms)
    except CrimeQueryError as e:
        print(f"monitorapp crimecheck: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"monitorapp crimecheck: {e}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as e:        # a store damaged past its header
        print(f"monitorapp crimecheck: {args.db}: the store cannot be read ({e})", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name available at all
        return ""
