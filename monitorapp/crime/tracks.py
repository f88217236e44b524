"""The fixes crime mapping decides on (spec §5), as flat arrays sorted by (subject, t).

For each subject (offender, device, assignment from, to) and a window [lo, hi]: every fix of
the tag in the window within the assignment, plus the ``BRACKET`` fixes either side of it that
are still within the assignment (however long before or after): the last fix before a window
and the first after it bound where the person was in a gap around or across it (the
space-time prism, ``monitorapp.crime.prism``), and the second one either side decides whether
the bracketing fix is itself a single-fix jump (``trail.single_fix_jumps``).

On SQLite the fixes come from the ``(device, t, x, y, acc)`` index (one statement per 2,000
subjects, and two index seeks per subject for the brackets); on the PostgreSQL record from the
window's slice (``centraldb.crime.WindowSlice.track_rows``), which holds the same rows. Rows
arrive in the same order on both (per subject by t, x, y, acc, as the index orders them; the
brackets read back in that order), are sorted by (subject, t) keeping that order for ties, and
one fix per (subject, t) is kept, so both backends give the same arrays.

Positions are British National Grid metres as stored; ``reprojected(projector)`` gives the
arrays in another metric projection (a place outside Great Britain: a local transverse
Mercator, ``monitorapp.engine.geo.Projector``), from each fix's latitude and longitude.
"""
from __future__ import annotations

import itertools

import numpy as np

from monitorapp.crime.trail import single_fix_jumps

BRACKET = 2          # fixes read either side of the window


def _sqlite_rows(conn, subs: list[tuple], lo: float, hi: float, lonlat: bool) -> np.ndarray:
    cols = "f.fix_id, f.t, f.x, f.y, f.acc" + (", f.lat, f.lon" if lonlat else "")
    width = 8 if lonlat else 6
    rows: list[tuple] = []
    pre: list[tuple] = []         # the brackets before first, then the window's, then after
    post: list[tuple] = []
    for k in range(0, len(subs), 2000):      # one statement per 2,000 subjects
        part = subs[k:k + 2000]
        values = ",".join("(?,?,?,?)" for _ in part)
        params = [v for i, (_, dev, a, b) in enumerate(part, k)
                  for v in (i, dev, max(a, lo), min(b, hi))]
        rows += conn.execute(
            f"WITH subj(i, device, a, b) AS (VALUES {values}) SELECT subj.i, {cols}"
            " FROM subj CROSS JOIN fixes AS f ON f.device = subj.device"
            " AND f.t BETWEEN subj.a AND subj.b", params).fetchall()
    plain = cols.replace("f.", "")
    before = (f"SELECT ?, {plain} FROM fixes WHERE device=? AND t < ? AND t >= ?"
              f" ORDER BY t DESC, x DESC, y DESC, acc DESC LIMIT {BRACKET}")
    after = (f"SELECT ?, {plain} FROM fixes WHERE device=? AND t > ? AND t <= ?"
             f" ORDER BY t, x, y, acc LIMIT {BRACKET}")
    for i, (_, dev, a, b) in enumerate(subs):
        if max(a, lo) > min(b, hi):
            continue
        pre += reversed(conn.execute(before, (i, dev, max(a, lo), a)).fetchall())
        post += conn.execute(after, (i, dev, min(b, hi), b)).fetchall()
    count = len(pre) + len(rows) + len(post)
    return np.fromiter(itertools.chain.from_iterable(itertools.chain(pre, rows, post)), dtype=float,
                       count=width * count).reshape(count, width)


def _sorted(arr: np.ndarray) -> bool:
    ds, dt = np.diff(arr[:, 0]), np.diff(arr[:, 2])
    return bool(((ds > 0) | ((ds == 0) & (dt >= 0))).all())


class Tracks:
    """Subjects' fixes: ``s`` (subject index), ``fix_id``, ``t``, ``x``, ``y``, ``acc``,
    ``jump`` (a single-fix jump), optionally ``lat``/``lon``; ``start[i]:start[i+1]`` is
    subject i's slice."""

    def __init__(self, conn=None, subs: list[tuple] | None = None, lo: float = 0.0,
                 hi: float = 0.0, lonlat: bool = False):
        self.n = len(subs or [])
        if conn is None:
            return
        if hasattr(conn, "track_rows"):          # a window's slice of the PostgreSQL record
            arr = conn.track_rows(subs, lo, hi, lonlat=lonlat)
        else:
            arr = _sqlite_rows(conn, subs, lo, hi, lonlat)
        self._arrays(arr, lonlat)

    def _arrays(self, arr: np.ndarray, lonlat: bool) -> None:
        """Rows (subject, fix_id, t, x, y, acc[, lat, lon]) in any order -> the sorted arrays."""
        if len(arr) > 1 and not _sorted(arr):
            arr = arr[np.argsort(arr[:, 0].astype(np.int64), kind="stable")]   # by subject
            if not _sorted(arr):
                arr = arr[np.lexsort((arr[:, 2], arr[:, 0]))]      # stable: ties keep the read order
        s = arr[:, 0].astype(np.int64)
        keep = np.ones(len(s), dtype=bool)       # one fix per (subject, t)
        keep[1:] = (s[1:] != s[:-1]) | (arr[1:, 2] > arr[:-1, 2])
        arr, s = arr[keep], s[keep]
        self.s = s
        self.fix_id = arr[:, 1].astype(np.int64)
        self.t, self.x, self.y, self.acc = arr[:, 2], arr[:, 3], arr[:, 4], arr[:, 5]
        self.lat = arr[:, 6] if lonlat else None
        self.lon = arr[:, 7] if lonlat else None
        self._index()
        self.jump = self._jumps()

    _key = None

    def _index(self) -> None:
        self._key = None
        self.start = np.searchsorted(self.s, np.arange(self.n + 1), "left").astype(np.int64)

    def _jumps(self) -> np.ndarray:
        s = self.s
        jump = single_fix_jumps(self.t, self.x, self.y, self.acc)
        if len(s) >= 3:      # both neighbours must be the same subject's
            same = np.zeros(len(s), dtype=bool)
            same[1:-1] = (s[:-2] == s[1:-1]) & (s[2:] == s[1:-1])
            jump &= same
        return jump

    def reprojected(self, projector) -> "Tracks":
        """The same fixes in ``projector``'s metres (needs ``lat``/``lon``), jumps re-marked."""
        out = self._copy(slice(None))
        if len(out.t):
            x, y = projector.to_xy_many(self.lon, self.lat)
            out.x, out.y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        out.jump = out._jumps()
        return out

    def subset(self, idx) -> "Tracks":
        """The subjects ``idx`` (in that order) as a Tracks of their own, numbered 0..k-1; the
        jumps as marked here."""
        idx = np.asarray(idx, dtype=np.int64)
        return self._runs(self.start[idx], self.start[idx + 1])

    def window(self, idx, lo: float, hi: float) -> "Tracks":
        """The subjects ``idx`` (in that order, numbered 0..k-1) with only what a query of the
        window [lo, hi] reads of each (``_sqlite_rows``): the fixes in it and the ``BRACKET``
        either side; the jumps as marked here."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._key is None:       # (subject, t in ms) as one sortable integer: 2^42 ms is 2109
            self._key = (self.s << 42) + np.floor(self.t * 1000.0).astype(np.int64)
        # a millisecond either side too many, never too few: a fix beyond the window's and its
        # brackets' changes no verdict (it meets no pair of the window's; the jumps are kept)
        j = np.searchsorted(self._key, (idx << 42) + int(np.floor(lo * 1000.0)) - 1, "left")
        k = np.searchsorted(self._key, (idx << 42) + int(np.ceil(hi * 1000.0)) + 1, "right")
        return self._runs(np.maximum(j - BRACKET, self.start[idx]),
                          np.minimum(k + BRACKET, self.start[idx + 1]))

    def _runs(self, j: np.ndarray, k: np.ndarray) -> "Tracks":
        """Rows j[m]:k[m] of each m as subject m of a Tracks of their own."""
        lengths = k - j
        rows = (np.repeat(j - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
                + np.arange(int(lengths.sum()))) if len(j) else np.zeros(0, dtype=np.int64)
        out = self._copy(rows)
        out.n = len(j)
        out.s = np.repeat(np.arange(len(j)), lengths)
        out._index()
        return out

    def _copy(self, rows) -> "Tracks":
        out = Tracks()
        out.n = self.n
        for k in ("s", "fix_id", "t", "x", "y", "acc", "jump"):
            setattr(out, k, getattr(self, k)[rows])
        out.lat = None if self.lat is None else self.lat[rows]
        out.lon = None if self.lon is None else self.lon[rows]
        out.start = self.start
        return out
