"""Where was this offender (or tag) between T1 and T2: the stored track, for playback and for
crime mapping, with single-fix jumps marked.

Who wore which tag when comes from the store's assignments; a tag that was never assigned is
reported on its own (``offender`` None).

**Single-fix jump** (GPS multipath, spec §4, and not a fix for crime mapping, spec §5): fix *i*
is a jump when both its neighbours exist no more than 10 minutes from it, the neighbours agree
with each other (within 100 m plus both their accuracies), and fix *i* is far from both: both
legs longer than 300 m and longer than the two fixes' accuracies together, or both legs at an
implied speed over 50 m/s.
"""
from __future__ import annotations

import math

import numpy as np

from monitorapp.feed.timeutil import fmt_time

JUMP_NEIGHBOUR_S = 600.0
JUMP_NEIGHBOURS_AGREE_M = 100.0
JUMP_LEG_M = 300.0
JUMP_SPEED_MS = 50.0

_FIX_COLS = "fix_id, device, seq, t, lat, lon, acc, x, y, used"


def single_fix_jumps(t: np.ndarray, x: np.ndarray, y: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Boolean mask of single-fix jumps in one tag's fixes sorted by t (rule in the docstring)."""
    n = len(t)
    mask = np.zeros(n, dtype=bool)
    if n < 3:
        return mask
    px, py, pt, pa = x[:-2], y[:-2], t[:-2], acc[:-2]
    cx, cy, ct, ca = x[1:-1], y[1:-1], t[1:-1], acc[1:-1]
    nx, ny, nt, na = x[2:], y[2:], t[2:], acc[2:]
    leg_p = np.hypot(cx - px, cy - py)
    leg_n = np.hypot(nx - cx, ny - cy)
    agree = np.hypot(nx - px, ny - py) <= JUMP_NEIGHBOURS_AGREE_M + pa + na
    dtp, dtn = ct - pt, nt - ct
    near_in_time = (dtp <= JUMP_NEIGHBOUR_S) & (dtn <= JUMP_NEIGHBOUR_S)
    far = ((leg_p > JUMP_LEG_M) & (leg_n > JUMP_LEG_M)
           & (leg_p > ca + pa) & (leg_n > ca + na))
    with np.errstate(divide="ignore", invalid="ignore"):
        fast = (leg_p > np.maximum(dtp, 1e-3) * JUMP_SPEED_MS) & (leg_n > np.maximum(dtn, 1e-3) * JUMP_SPEED_MS)
    mask[1:-1] = agree & near_in_time & (far | fast)
    return mask


def subject_rows(conn, lo: float, hi: float) -> tuple[list[tuple], list[tuple]]:
    """The assignments (offender, device, from, to) and the tags (device, first seen, last
    seen) whose span touches [lo, hi]: what ``subjects_of`` picks the subjects from."""
    sql = ("SELECT offender_id, device, valid_from, coalesce(valid_to, 1e300) FROM assignments"
           " WHERE valid_from <= ? AND coalesce(valid_to, 1e300) >= ?")
    assignments = [tuple(r) for r in conn.execute(sql, (hi, lo))]
    sql = "SELECT device, first_seen, last_seen FROM tags WHERE first_seen <= ? AND last_seen >= ?"
    return assignments, [tuple(r) for r in conn.execute(sql, (hi, lo))]


def subjects_of(assignments, tags, lo: float, hi: float, who: str | None = None,
                clip: bool = True) -> list[tuple]:
    """``subjects`` from rows read once for a range containing [lo, hi] (a batch reads them
    once for its day and picks each incident's subjects from them)."""
    out: list[tuple] = []
    assigned: set[str] = set()
    for oid, dev, a, b in assignments:
        b = 1e300 if b is None else b
        if a > hi or b < lo:
            continue
        if who is None or who in (oid, dev):
            out.append((oid, dev, max(a, lo), min(b, hi)) if clip else (oid, dev, a, b))
        assigned.add(dev)
    for dev, first, last in tags:
        if first > hi or last < lo or dev in assigned or (who is not None and who != dev):
            continue
        out.append((None, dev, lo, hi) if clip else (None, dev, -1e300, 1e300))
    out.sort(key=lambda s: (s[0] or "~", s[1], s[2]))
    return out


def subjects(conn, lo: float, hi: float, who: str | None = None, clip: bool = True) -> list[tuple]:
    """(offender or None, device, from, to) whose assignment or data touches [lo, hi].

    ``who`` limits it to one offender id or one device id. With ``clip`` (the default) from
    and to are clipped to [lo, hi]; without, they are the whole assignment (a tag that was
    nobody's: unbounded), which is where crime mapping may look for the fixes bracketing a
    window.
    """
    return subjects_of(*subject_rows(conn, lo, hi), lo, hi, who, clip)


def read_track(conn, device: str, t1: float, t2: float, full: bool = False) -> dict | None:
    """One tag's fixes with t in [t1, t2], sorted by t, repeated times dropped, jumps marked.

    Without ``full`` only what the (device, t, x, y, acc) index covers is read (fast); with it,
    also seq, lat, lon and used.
    """
    cols = _FIX_COLS if full else "fix_id, t, x, y, acc"
    rows = conn.execute(f"SELECT {cols} FROM fixes WHERE device=? AND t BETWEEN ? AND ?"
                        " ORDER BY t", (device, t1, t2)).fetchall()
    if not rows:
        return None
    if full:
        c = list(zip(*rows))
        track = {"fix_id": np.array(c[0], dtype=np.int64), "seq": np.array(c[2], dtype=object),
                 "t": np.array(c[3], dtype=float), "lat": np.array(c[4], dtype=float),
                 "lon": np.array(c[5], dtype=float), "acc": np.array(c[6], dtype=float),
                 "x": np.array(c[7], dtype=float), "y": np.array(c[8], dtype=float),
                 "used": np.array(c[9], dtype=bool)}
    else:
        arr = np.array(rows, dtype=float)
        track = {"fix_id": arr[:, 0].astype(np.int64), "t": arr[:, 1], "x": arr[:, 2],
                 "y": arr[:, 3], "acc": arr[:, 4]}
    keep = np.ones(len(rows), dtype=bool)
    keep[1:] = np.diff(track["t"]) > 0
    if not keep.all():
        track = {k: v[keep] for k, v in track.items()}
    track["jump"] = single_fix_jumps(track["t"], track["x"], track["y"], track["acc"])
    return track


def neighbour_fix(conn, device: str, t: float, before: bool):
    """The last fix before t (or the first after t): (t, x, y, acc) or None."""
    if hasattr(conn, "neighbour"):           # a window's slice of the PostgreSQL record
        return conn.neighbour(device, t, before)
    if before:
        sql = "SELECT t, x, y, acc FROM fixes WHERE device=? AND t < ? ORDER BY t DESC LIMIT 1"
    else:
        sql = "SELECT t, x, y, acc FROM fixes WHERE device=? AND t > ? ORDER BY t LIMIT 1"
    return conn.execute(sql, (device, t)).fetchone()


def latest_fix_time(store) -> float:
    """When the store's data ends, for a view's default window: the newest fix (SQLite), the
    tags' last-seen time on the PostgreSQL record (no scan of its months of fixes), or, for a
    login that may not read positions there (a police analyst, a supervisor), the record's
    clock."""
    conn = store.reader()
    if hasattr(store, "crime_reader"):                  # the PostgreSQL record
        sql = ("SELECT max(last_seen) FROM tags" if store.reads_fixes else "SELECT record_now()")
    else:
        sql = "SELECT max(t) FROM fixes"
    return float(conn.execute(sql).fetchone()[0] or 0.0)


def trail(store, offender_or_device: str, t1: float, t2: float, *, ref: str | None = None,
          reason: str | None = None) -> list[dict]:
    """Every stored fix of an offender (through their tags' assignments) or of a tag, in time
    order, each with ``jump`` marked. Times are epoch seconds; ``time`` is RFC 3339."""
    if not (isinstance(t1, (int, float)) and isinstance(t2, (int, float))
            and math.isfinite(t1) and math.isfinite(t2) and t1 <= t2):
        raise ValueError("a trail needs a time range with t1 <= t2")
    # the PostgreSQL record hands over the window's slice (centraldb.crime), SQLite itself
    # (a login that may not read positions reads through the audited path: ref and reason)
    conn = (store.crime_reader(t1, t2, ref=ref, reason=reason) if hasattr(store, "crime_reader")
            else store.reader())
    out: list[dict] = []
    for oid, dev, a, b in subjects(conn, t1, t2, offender_or_device):
        tr = read_track(conn, dev, a, b, full=True)
        if tr is None:
            continue
        for k in range(len(tr["t"])):
            out.append({"offender": oid, "device": dev, "seq": int(tr["seq"][k]),
                        "t": float(tr["t"][k]), "time": fmt_time(float(tr["t"][k])),
                        "lat": float(tr["lat"][k]), "lon": float(tr["lon"][k]),
                        "acc": float(tr["acc"][k]), "used": bool(tr["used"][k]),
                        "jump": bool(tr["jump"][k])})
    out.sort(key=lambda f: (f["t"], f["device"]))
    return out
