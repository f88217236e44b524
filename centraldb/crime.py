"""Crime mapping (spec §5) on the PostgreSQL record: the slice of the record a query needs.

``window_rows(conn, lo, hi)`` reads exactly what ``monitorapp.crime.query`` reads from a SQLite
store for a window ``[lo, hi]`` (``monitorapp.crime.tracks``): the tag assignments and the tags
whose span touches it (the subjects), and, per tag, every fix in it plus the last two fixes
before ``lo`` and the first two after ``hi`` (the bracketing fixes and, for each, the neighbour
that decides whether it is a single-fix jump),
as arrays: the server's ``crime_tracks_of`` (migration 5) returns one row per tag, so a
hundred rows cross the wire instead of tens of thousands. The fix read is one index scan of
``(device, t)`` per partition of the window's months (partition pruning); the neighbour reads
stop at the first partition that has one (ordered ``Append``). A login that may not read fixes
(a police analyst, a supervisor) gets the same rows from ``audited_window_rows``: the server's
``crime_window_tracks``, which audits the read with who, its reference and its reason before
any row.

``crime_slice(conn, lo, hi)`` makes a ``WindowSlice`` of those rows: an in-memory SQLite
database shaped as a store, whose fixes table is filled only when a statement names it
(playback's track read), and which answers the crime query's own reads from the arrays, so the
one verdict code (``monitorapp.crime.query.assess_all``) decides on either backend and the
verdicts cannot drift apart. ``devices_near(conn, x, y, reach, lo, hi)`` is the spatial side
(the GiST index on the British National Grid point): the tags with any fix within ``reach``
metres of the place in the window, which is what a caller at national scale uses to rank or to
narrow the full read.
"""
from __future__ import annotations

import json
import sqlite3
import struct

import numpy as np
from psycopg.adapt import Loader
from psycopg.pq import Format
from psycopg.postgres import types as pg_types

BRACKET = 2    # fixes either side of the window: migration 5's LIMIT, = monitorapp.crime.tracks.BRACKET

_SUBJECT_SQL = (
    "SELECT offender_id, device, valid_from, valid_to FROM assignments"
    " WHERE valid_from <= %(hi)s AND coalesce(valid_to, 'Infinity'::float8) >= %(lo)s")
_TAG_SQL = "SELECT device, first_seen, last_seen FROM tags WHERE first_seen <= %(hi)s AND last_seen >= %(lo)s"
_TRACKS_SQL = "SELECT * FROM crime_tracks_of(%(lo)s, %(hi)s, %(devices)s::text[])"
_NEAR_SQL = (
    "SELECT device, min(ST_Distance(geom, p.pt)) FROM fixes,"
    " (SELECT ST_SetSRID(ST_MakePoint(%(x)s, %(y)s), 27700) AS pt) AS p"
    " WHERE t BETWEEN %(lo)s AND %(hi)s AND ST_DWithin(geom, p.pt, %(reach)s)"
    " GROUP BY device ORDER BY 2, 1")


class _NumpyArrayLoader(Loader):
    """A one-dimensional array of a fixed-width type in PostgreSQL's binary format, straight
    into numpy: a header (ndim, has-null flag, element type, then length and lower bound), then
    per element its 4-byte length and its value. One ``frombuffer`` instead of a Python object
    per element: at 100 tags and two hours, 110,000 values a query; the Python lists and their
    conversion took ~20 ms of a 50 ms query. An array with a NULL element (a fix without a
    ``seq``) falls back to a list, element by element."""
    format = Format.BINARY
    element: str = ">f8"
    into: type = float

    def load(self, data) -> np.ndarray:
        ndim, has_null = struct.unpack_from(">ii", data)
        if ndim == 0:
            return np.zeros(0, dtype=self.into)
        if ndim != 1:
            raise ValueError(f"a {ndim}-dimensional array where a track's column was expected")
        n = struct.unpack_from(">i", data, 12)[0]
        if not has_null:
            cells = np.frombuffer(data, dtype=[("n", ">i4"), ("v", self.element)], count=n,
                                  offset=20)
            return cells["v"].astype(self.into)
        out, at, width = [], 20, np.dtype(self.element).itemsize
        for _ in range(n):
            size = struct.unpack_from(">i", data, at)[0]
            at += 4
            if size < 0:
                out.append(None)
            else:
                out.append(self.into(np.frombuffer(data, dtype=self.element, count=1, offset=at)[0]))
                at += width
        return np.array(out, dtype=object)


class _Float8Array(_NumpyArrayLoader):
    element, into = ">f8", float


class _Int8Array(_NumpyArrayLoader):
    element, into = ">i8", np.int64


class _BoolArray(_NumpyArrayLoader):
    element, into = "u1", bool


def _numpy_arrays(cur) -> None:
    """Read the track arrays of ``crime_tracks_of`` into numpy on this cursor."""
    for name, loader in (("float8", _Float8Array), ("int8", _Int8Array), ("bool", _BoolArray)):
        cur.adapters.register_loader(pg_types[name].array_oid, loader)


def window_rows(conn, lo: float, hi: float) -> dict:
    """Assignments, tags and each tag's track (its fixes of the window [lo, hi] and its
    neighbours either side): ``{"assignments", "tags", "tracks"}``, a track being
    ``(device, fix_id[], seq[], t[], lat[], lon[], acc[], x[], y[], used[])`` in time order."""
    p = {"lo": float(lo), "hi": float(hi)}
    assignments = conn.execute(_SUBJECT_SQL, p).fetchall()
    tags = conn.execute(_TAG_SQL, p).fetchall()
    devices = sorted({r[1] for r in assignments} | {r[0] for r in tags})
    p["devices"] = devices
    with conn.cursor(binary=True) as cur:
        _numpy_arrays(cur)
        tracks = cur.execute(_TRACKS_SQL, p).fetchall() if devices else []
    return {"assignments": assignments, "tags": tags, "tracks": tracks}


def audited_window_rows(conn, lo: float, hi: float, ref, reason, place=None) -> dict:
    """``window_rows`` through the server's ``crime_window_tracks`` (the path of a login that
    may not read fixes): the server audits who, ``ref``, ``reason`` and ``place`` first, and
    refuses without a reference and a reason. Run it in a writing transaction (the audit is a
    write)."""
    out: dict = {"assignments": [], "tags": [], "tracks": []}
    with conn.cursor(binary=True) as cur:
        _numpy_arrays(cur)
        rows = cur.execute("SELECT * FROM crime_window_tracks(%s, %s, %s, %s, %s::jsonb)",
                           (float(lo), float(hi), ref, reason,
                            None if place is None else json.dumps(place, default=str))).fetchall()
    for r in rows:
        kind, offender, device, a, b = r[:5]
        if kind == "assignment":
            out["assignments"].append((offender, device, a, b))
        elif kind == "tag":
            out["tags"].append((device, a, b))
        else:
            out["tracks"].append((device, *r[5:]))
    return out


def audited_crime_slice(conn, lo: float, hi: float, ref, reason, place=None) -> sqlite3.Connection:
    """``crime_slice`` over ``audited_window_rows``."""
    return slice_of(audited_window_rows(conn, lo, hi, ref, reason, place))


def crime_slice(conn, lo: float, hi: float) -> sqlite3.Connection:
    """A ``WindowSlice`` of ``window_rows``."""
    return slice_of(window_rows(conn, lo, hi))


_FIXES_TABLE = ("CREATE TABLE fixes (fix_id INTEGER PRIMARY KEY, device TEXT, seq INTEGER,"
                " t REAL, lat REAL, lon REAL, acc REAL, x REAL, y REAL, used INTEGER)")


class WindowSlice(sqlite3.Connection):
    """A window's rows as an in-memory SQLite database shaped as a store, with the crime
    query's reads answered from arrays (``track_rows``, ``neighbour``, ``fix_details``,
    which ``monitorapp.crime`` uses when a connection has them).

    Only the small tables (assignments, tags) are loaded at once; the fixes table is filled
    the first time a statement names it (playback's ``read_track``, any other SQL reader), so
    SQL readers see exactly the rows, and the crime query, which needs none of that SQL, does
    not pay for loading tens of thousands of rows into SQLite and reading them back (measured:
    over half of the query's time at 100 tags).
    """

    def _load(self, rows: dict) -> None:
        self.executescript(
            "CREATE TABLE assignments (offender_id TEXT, device TEXT, valid_from REAL, valid_to REAL);"
            "CREATE TABLE tags (device TEXT PRIMARY KEY, first_seen REAL, last_seen REAL);")
        self.executemany("INSERT INTO assignments VALUES (?,?,?,?)", rows["assignments"])
        self.executemany("INSERT INTO tags VALUES (?,?,?)", rows["tags"])
        tracks = sorted(rows["tracks"], key=lambda r: r[0])
        self._code = {r[0]: k for k, r in enumerate(tracks)}
        sizes = [len(r[1]) for r in tracks]
        self._start = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        dev = np.repeat(np.arange(len(tracks)), sizes)

        def column(k: int, dtype) -> np.ndarray:      # the tags' arrays end to end
            parts = [np.asarray(r[k]) for r in tracks]
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
        fix_id, t, acc, x, y = (column(1, np.int64), column(3, float), column(6, float),
                                column(7, float), column(8, float))
        seq_parts = [np.asarray(r[2]) for r in tracks]   # int64, or objects with a None
        seq = np.concatenate(seq_parts) if seq_parts else np.zeros(0, dtype=np.int64)
        lat, lon = column(4, float), column(5, float)
        # per tag by t, ties as the SQLite slice's (device, t, x, y, acc) index orders them:
        # sorted by (tag, t) alone unless two of a tag's fixes share a time (half the cost)
        order = np.lexsort((t, dev))
        ts, ds = t[order], dev[order]
        if ((ts[1:] == ts[:-1]) & (ds[1:] == ds[:-1])).any():
            order = np.lexsort((fix_id, acc, y, x, t, dev))
        self._fix_id, self._t, self._acc = fix_id[order], t[order], acc[order]
        self._x, self._y = x[order], y[order]
        self._seq, self._lat, self._lon = seq[order], lat[order], lon[order]
        self._ids_order = np.argsort(self._fix_id, kind="stable")
        self._ids_sorted = self._fix_id[self._ids_order]
        self._tracks, self._filled = tracks, False

    def _fill(self) -> None:
        self._filled = True
        super().execute(_FIXES_TABLE)
        self.executemany("INSERT OR IGNORE INTO fixes VALUES (?,?,?,?,?,?,?,?,?,?)",
                         ((f, r[0], q, t, la, lo, a, x, y, u) for r in self._tracks
                          for f, q, t, la, lo, a, x, y, u in zip(*(c.tolist() for c in r[1:]))))
        super().execute("CREATE INDEX fixes_device_t ON fixes (device, t, x, y, acc)")

    def execute(self, sql, *args):
        if not self._filled and "fixes" in sql:
            self._fill()
        return super().execute(sql, *args)

    def cursor(self, *args, **kw):
        if not self._filled:
            self._fill()
        return super().cursor(*args, **kw)

    def _bounds(self, device: str) -> tuple[int, int]:
        k = self._code.get(device)
        return (0, 0) if k is None else (int(self._start[k]), int(self._start[k + 1]))

    def track_rows(self, subs: list[tuple], lo: float, hi: float, lonlat: bool = False) -> np.ndarray:
        """(subject index, fix_id, t, x, y, acc[, lat, lon]) of every subject's fixes in its
        span within [lo, hi] and the ``BRACKET`` either side still within its span, as
        ``monitorapp.crime.tracks`` reads them from a SQLite store."""
        parts = []
        for i, (_, dev, a, b) in enumerate(subs):
            first, last = self._bounds(dev)
            ts = self._t[first:last]
            j0 = int(np.searchsorted(ts, max(a, lo), "left"))
            k0 = int(np.searchsorted(ts, min(b, hi), "right"))
            if max(a, lo) > min(b, hi):
                continue
            j = first + max(j0 - BRACKET, int(np.searchsorted(ts, a, "left")))
            k = first + min(k0 + BRACKET, int(np.searchsorted(ts, b, "right")))
            if k > j:
                cols = [np.full(k - j, float(i)), self._fix_id[j:k], self._t[j:k], self._x[j:k],
                        self._y[j:k], self._acc[j:k]]
                if lonlat:
                    cols += [self._lat[j:k], self._lon[j:k]]
                parts.append(np.column_stack(cols))
        return np.concatenate(parts) if parts else np.zeros((0, 8 if lonlat else 6))

    def neighbour(self, device: str, t: float, before: bool):
        """The tag's last fix before ``t`` (or first after it) as (t, x, y, acc), or None."""
        first, last = self._bounds(device)
        ts = self._t[first:last]
        if before:
            j = first + int(np.searchsorted(ts, t, "left")) - 1
            ok = j >= first
        else:
            j = first + int(np.searchsorted(ts, t, "right"))
            ok = j < last
        if not ok:
            return None
        return (float(self._t[j]), float(self._x[j]), float(self._y[j]), float(self._acc[j]))

    def fix_details(self, fix_ids) -> dict:
        """fix_id -> (seq, lat, lon) for the given fixes."""
        want = np.asarray(sorted({int(f) for f in fix_ids}), dtype=np.int64)
        if not len(want) or not len(self._ids_sorted):
            return {}
        k = np.clip(np.searchsorted(self._ids_sorted, want), 0, len(self._ids_sorted) - 1)
        found = self._ids_sorted[k] == want
        rows = self._ids_order[k[found]]
        return {int(f): (q, float(la), float(lo)) for f, q, la, lo in
                zip(want[found].tolist(), self._seq[rows].tolist(), self._lat[rows].tolist(),
                    self._lon[rows].tolist())}


def slice_of(rows: dict) -> sqlite3.Connection:
    """The in-memory SQLite database of a window's rows (a ``WindowSlice``)."""
    mem = sqlite3.connect(":memory:", check_same_thread=False, factory=WindowSlice)
    mem._load(rows)
    return mem


def devices_near(conn, x: float, y: float, reach: float, lo: float, hi: float) -> list[tuple]:
    """(device, closest fix distance in metres) of every tag with a fix within ``reach`` of
    the place (British National Grid) in [lo, hi], closest first (GiST + partition pruning)."""
    return conn.execute(_NEAR_SQL, {"x": float(x), "y": float(y), "reach": float(reach),
                                    "lo": float(lo), "hi": float(hi)}).fetchall()
