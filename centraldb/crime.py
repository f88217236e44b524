"""Crime mapping (spec §5) on the PostgreSQL record: the slice of the record a query needs.

``window_rows(conn, lo, hi)`` reads, in three statements, exactly what
``monitorapp.crime.query`` reads from a SQLite store for a window widened to ``[lo, hi]``
(``lo = from - MARGIN_S``, ``hi = to + MARGIN_S``): the tag assignments and the tags whose span
touches it (the subjects), every fix of those tags in it, and for each tag the last fix before
``lo`` and the first after ``hi`` ("last seen", "next seen"). The fix read is one index scan of
``(device, t)`` per partition of the window's months: the constant time bounds let the planner
prune every other month at plan time. A login that may not read fixes (a police analyst, a
supervisor) gets the same rows from ``audited_window_rows``: the server's ``crime_window``
function, which audits the read with who, its reference and its reason before any row.

``crime_slice(conn, lo, hi)`` puts those rows into an in-memory SQLite database with the
columns the crime query reads, so the one verdict code (``monitorapp.crime.query.assess_all``)
decides on either backend and the verdicts cannot drift apart. ``devices_near(conn, x, y, reach,
lo, hi)`` is the spatial side (the GiST index on the British National Grid point): the tags
with any fix within ``reach`` metres of the place in the window, which is what a caller at
national scale uses to rank or to narrow the full read.
"""
from __future__ import annotations

import sqlite3

_SUBJECT_SQL = (
    "SELECT offender_id, device, valid_from, valid_to FROM assignments"
    " WHERE valid_from <= %(hi)s AND coalesce(valid_to, 'Infinity'::float8) >= %(lo)s")
_TAG_SQL = "SELECT device, first_seen, last_seen FROM tags WHERE first_seen <= %(hi)s AND last_seen >= %(lo)s"
_FIX_SQL = (
    "SELECT fix_id, device, seq, t, lat, lon, acc, x, y, used FROM fixes"
    " WHERE device = ANY(%(devices)s) AND t BETWEEN %(lo)s AND %(hi)s")
_NEIGHBOUR_SQL = (
    "SELECT n.* FROM unnest(%(devices)s::text[]) AS d(device)"
    " CROSS JOIN LATERAL ((SELECT fix_id, device, seq, t, lat, lon, acc, x, y, used FROM fixes"
    "   WHERE device = d.device AND t < %(lo)s ORDER BY t DESC LIMIT 1)"
    "  UNION ALL (SELECT fix_id, device, seq, t, lat, lon, acc, x, y, used FROM fixes"
    "   WHERE device = d.device AND t > %(hi)s ORDER BY t LIMIT 1)) AS n")
_NEAR_SQL = (
    "SELECT device, min(ST_Distance(geom, p.pt)) FROM fixes,"
    " (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 27700) AS pt) AS p"
    " WHERE t BETWEEN %(lo)s AND %(hi)s AND ST_DWithin(geom, p.pt, %(reach)s)"
    " GROUP BY device ORDER BY 2, 1")


def window_rows(conn, lo: float, hi: float) -> dict:
    """Assignments, tags and fixes (with each tag's neighbours) of the window [lo, hi]."""
    p = {"lo": float(lo), "hi": float(hi)}
    assignments = conn.execute(_SUBJECT_SQL, p).fetchall()
    tags = conn.execute(_TAG_SQL, p).fetchall()
    devices = sorted({r[1] for r in assignments} | {r[0] for r in tags})
    p["devices"] = devices
    fixes = conn.execute(_FIX_SQL, p).fetchall() if devices else []
    neighbours = conn.execute(_NEIGHBOUR_SQL, p).fetchall() if devices else []
    return {"assignments": assignments, "tags": tags, "fixes": fixes, "neighbours": neighbours}


def audited_window_rows(conn, lo: float, hi: float, ref, reason, place=None) -> dict:
    """``window_rows`` through the server's ``crime_window`` (the path of a login that may not
    read fixes): the server audits who, ``ref``, ``reason`` and ``place`` first, and refuses
    without a reference and a reason. Run it in a writing transaction (the audit is a write)."""
    import json
    out: dict = {"assignments": [], "tags": [], "fixes": [], "neighbours": []}
    for r in conn.execute("SELECT * FROM crime_window(%s, %s, %s, %s, %s::jsonb)",
                          (float(lo), float(hi), ref, reason,
                           None if place is None else json.dumps(place, default=str))):
        kind, offender, device, a, b = r[:5]
        if kind == "assignment":
            out["assignments"].append((offender, device, a, b))
        elif kind == "tag":
            out["tags"].append((device, a, b))
        else:
            fix_id, seq, t, lat, lon, acc, x, y, used = r[5:]
            out["fixes"].append((fix_id, device, seq, t, lat, lon, acc, x, y, used))
    return out


def audited_crime_slice(conn, lo: float, hi: float, ref, reason, place=None) -> sqlite3.Connection:
    """``crime_slice`` over ``audited_window_rows``."""
    return slice_of(audited_window_rows(conn, lo, hi, ref, reason, place))


def crime_slice(conn, lo: float, hi: float) -> sqlite3.Connection:
    """An in-memory SQLite database holding ``window_rows``, shaped as a store's tables."""
    return slice_of(window_rows(conn, lo, hi))


def slice_of(rows: dict) -> sqlite3.Connection:
    """The in-memory SQLite database of a window's rows."""
    mem = sqlite3.connect(":memory:", check_same_thread=False)
    mem.executescript(
        "CREATE TABLE assignments (offender_id TEXT, device TEXT, valid_from REAL, valid_to REAL);"
        "CREATE TABLE tags (device TEXT PRIMARY KEY, first_seen REAL, last_seen REAL);"
        "CREATE TABLE fixes (fix_id INTEGER PRIMARY KEY, device TEXT, seq INTEGER, t REAL,"
        " lat REAL, lon REAL, acc REAL, x REAL, y REAL, used INTEGER);"
        "CREATE INDEX fixes_device_t ON fixes (device, t, x, y, acc);")
    mem.executemany("INSERT INTO assignments VALUES (?,?,?,?)", rows["assignments"])
    mem.executemany("INSERT INTO tags VALUES (?,?,?)", rows["tags"])
    mem.executemany("INSERT OR IGNORE INTO fixes VALUES (?,?,?,?,?,?,?,?,?,?)",
                    [(*r[:9], 1 if r[9] else 0) for r in rows["fixes"] + rows["neighbours"]])
    return mem


def devices_near(conn, x: float, y: float, reach: float, lo: float, hi: float) -> list[tuple]:
    """(device, closest fix distance in metres) of every tag with a fix within ``reach`` of
    the place (British National Grid) in [lo, hi], closest first (GiST + partition pruning)."""
    return conn.execute(_NEAR_SQL, {"x": float(x), "y": float(y), "reach": float(reach),
                                    "lo": float(lo), "hi": float(hi)}).fetchall()
