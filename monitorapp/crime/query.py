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
* **present**: a fix with t in the window, not a single-fix jump (``monitorapp.crime.trail``), with
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
import itertools
import json
import math
import os
import sqlite3
import sys

import numpy as np
import pyproj

from monitorapp.feed.timeutil import TimeFormatError, fmt_time, parse_time
from monitorapp.crime.trail import neighbour_fix, single_fix_jumps, subjects

MARGIN_S = 600.0          # "around the window", and the longest segment that is interpolated
GAP_S = 600.0             # a gap is more than 10 minutes without a fix
REACH_SPEED_MS = 15.0
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


class Tracks:
    """The fixes of every subject around the window, as flat arrays sorted by (subject, t)."""

    def __init__(self, conn, subs: list[tuple], lo: float, hi: float):
        if hasattr(conn, "track_rows"):          # a window's slice of the PostgreSQL record
            self._arrays(conn.track_rows(subs, lo, hi))
            return
        rows: list[tuple] = []
        for k in range(0, len(subs), 2000):      # one statement per 2,000 subjects
            part = subs[k:k + 2000]
            values = ",".join("(?,?,?,?)" for _ in part)
            params = [v for i, (_, dev, a, b) in enumerate(part, k)
                      for v in (i, dev, max(a, lo), min(b, hi))]
            rows += conn.execute(
                f"WITH subj(i, device, a, b) AS (VALUES {values}) SELECT subj.i, f.fix_id, f.t,"
                " f.x, f.y, f.acc FROM subj CROSS JOIN fixes AS f ON f.device = subj.device"
                " AND f.t BETWEEN subj.a AND subj.b", params).fetchall()
        self._arrays(np.fromiter(itertools.chain.from_iterable(rows), dtype=float,
                                 count=6 * len(rows)).reshape(len(rows), 6))

    def _arrays(self, arr: np.ndarray) -> None:
        """Rows (subject, fix_id, t, x, y, acc) in any order -> the sorted flat arrays."""
        arr = arr[np.lexsort((arr[:, 2], arr[:, 0]))]          # by subject, then t
        s = arr[:, 0].astype(np.int64)
        arr = arr[:, 1:]
        keep = np.ones(len(s), dtype=bool)       # one fix per (tag, t)
        keep[1:] = (s[1:] != s[:-1]) | (arr[1:, 1] > arr[:-1, 1])
        arr, s = arr[keep], s[keep]
        self.s = s
        self.fix_id = arr[:, 0].astype(np.int64)
        self.t, self.x, self.y, self.acc = arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4]
        self.jump = self._jumps()

    def _jumps(self) -> np.ndarray:
        s = self.s
        jump = single_fix_jumps(self.t, self.x, self.y, self.acc)
        if len(s) >= 3:      # both neighbours must be the same subject's
            same = np.zeros(len(s), dtype=bool)
            same[1:-1] = (s[:-2] == s[1:-1]) & (s[2:] == s[1:-1])
            jump &= same
        return jump


def _fmt_times(ts: np.ndarray) -> list[str]:
    """``fmt_time`` for an array (RFC 3339 UTC, ms, Z), vectorised."""
    ms = np.round(np.asarray(ts, dtype=float) * 1000.0).astype(np.int64).astype("datetime64[ms]")
    return [v + "Z" for v in np.datetime_as_string(ms, unit="ms").tolist()]


def _per_subject_min(s: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each subject 0..n-1: the minimum of ``values`` and the index where it is (-1)."""
    best = np.full(n, np.inf)
    where = np.full(n, -1, dtype=np.int64)
    if len(s):
        order = np.lexsort((values, s))
        first = order[np.unique(s[order], return_index=True)[1]]
        best[s[first]] = values[first]
        where[s[first]] = first
    return best, where


def _segments(tr: Tracks, good: np.ndarray, cx, cy, tf, tt):
    """Closest approach to (cx, cy) of each straight track segment between consecutive good
    fixes of one subject no more than GAP_S apart, clipped to [tf, tt]: (first index, second
    index, distance, time) arrays for the segments that overlap the window."""
    t, x, y = tr.t, tr.x, tr.y
    a, b = good[:-1], good[1:]
    ta, tb = t[a], t[b]
    dt = tb - ta
    ok = (tr.s[a] == tr.s[b]) & (dt > 0) & (dt <= GAP_S) & (tb >= tf) & (ta <= tt)
    a, b, ta, tb, dt = a[ok], b[ok], ta[ok], tb[ok], dt[ok]
    s0, s1 = np.maximum(ta, tf), np.minimum(tb, tt)
    f0, f1 = (s0 - ta) / dt, (s1 - ta) / dt
    ex, ey = x[b] - x[a], y[b] - y[a]
    p0x, p0y = x[a] + ex * f0, y[a] + ey * f0
    dx, dy = ex * (f1 - f0), ey * (f1 - f0)
    ll = dx * dx + dy * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(ll > 0, ((cx - p0x) * dx + (cy - p0y) * dy) / ll, 0.0)
    u = np.clip(u, 0.0, 1.0)
    return a, b, np.hypot(p0x + u * dx - cx, p0y + u * dy - cy), s0 + u * (s1 - s0)


def _any_per_subject(s: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(s[mask], minlength=n) > 0


def assess_all(conn, subs: list[tuple], cx: float, cy: float, radius: float,
               tf: float, tt: float) -> list[dict]:
    """The verdict and evidence for every subject (offender, device, from, to)."""
    n = len(subs)
    tr = Tracks(conn, subs, tf - MARGIN_S, tt + MARGIN_S)
    s, t, acc, jump = tr.s, tr.t, tr.acc, tr.jump
    d = np.hypot(tr.x - cx, tr.y - cy)
    inw = (t >= tf) & (t <= tt)
    reach = radius + max(radius, 250.0)
    has_data = np.bincount(s, minlength=n) > 0
    present = _any_per_subject(s, inw & ~jump & (d <= radius), n)
    by_acc = _any_per_subject(s, inw & ~jump & (d <= radius + acc), n)
    by_jump = _any_per_subject(s, inw & jump & (d <= radius + acc), n)
    cand = np.flatnonzero(inw & ~jump)
    fbest, fwhere = _per_subject_min(s[cand], d[cand], n)
    good = np.flatnonzero(~jump)
    sa, sb, sd, st = _segments(tr, good, cx, cy, tf, tt)
    sbest, swhere = _per_subject_min(s[sa], sd, n)
    by_seg = _any_per_subject(s[sa], sd <= radius, n)
    gaps = _gaps(conn, tr, good, subs, cx, cy, radius, tf, tt)
    near = {}
    idx = np.flatnonzero(d <= acc + reach)
    if len(idx):
        ids = [int(i) for i in tr.fix_id[idx]]
        extra = (conn.fix_details(ids) if hasattr(conn, "fix_details") else
                 dict((r[0], r[1:]) for r in conn.execute(
                     f"SELECT fix_id, seq, lat, lon FROM fixes WHERE fix_id IN ({','.join('?' * len(idx))})",
                     ids)))
        times = _fmt_times(t[idx])
        for j, k in enumerate(idx):
            seq, lat, lon = extra[int(tr.fix_id[k])]
            near.setdefault(int(s[k]), []).append({
                "t": times[j], "seq": seq, "lat": lat, "lon": lon,
                "acc": float(acc[k]), "distance_m": round(float(d[k]), 1),
                "in_window": bool(inw[k]), "inside": bool(d[k] <= radius), "jump": bool(jump[k])})
    segs = {}
    idx = np.flatnonzero(sd <= reach)
    t_a, t_b, t_c = _fmt_times(t[sa[idx]]), _fmt_times(t[sb[idx]]), _fmt_times(st[idx])
    for j, k in enumerate(idx):
        segs.setdefault(int(s[sa[k]]), []).append({
            "from": t_a[j], "to": t_b[j], "closest_m": round(float(sd[k]), 1),
            "closest_at": t_c[j]})
    out = []
    for i in range(n):
        res = {"verdict": "no_data", "closest_m": None, "closest_at": None,
               "closest_acc_m": None, "fixes": near.get(i, []), "segments": segs.get(i, []),
               "gaps": gaps.get(i, []), "basis": []}
        out.append(res)
        if not has_data[i]:
            res["basis"].append("no fix from 10 minutes before to 10 minutes after the window")
            continue
        if fbest[i] <= sbest[i] and fwhere[i] >= 0:
            k = cand[fwhere[i]]
            res.update(closest_m=round(float(d[k]), 1), closest_at=fmt_time(float(t[k])),
                       closest_acc_m=float(acc[k]))
        elif swhere[i] >= 0:
            res.update(closest_m=round(float(sbest[i]), 1), closest_at=fmt_time(float(st[swhere[i]])))
        basis = res["basis"]
        if present[i]:
            basis.append("a fix in the window within the radius")
        elif by_acc[i]:
            basis.append("a fix in the window within the radius plus its accuracy")
        if by_jump[i]:
            basis.append("a single-fix jump within the radius (not taken as presence)")
        if by_seg[i] and not (present[i] or by_acc[i] or by_jump[i]):
            basis.append("the track between two fixes passes within the radius")
        reachable = any(g["reachable"] for g in res["gaps"])
        if reachable and not present[i] and not basis:
            basis.append("a gap over 10 minutes from which the place was reachable at 15 m/s")
        if present[i]:
            res["verdict"] = "present"
        elif by_acc[i] or by_jump[i] or by_seg[i] or reachable:
            res["verdict"] = "possible"
        else:
            res["verdict"] = "not_present"
            basis.append("gaps over 10 minutes, but too far to reach the place at 15 m/s"
                         if res["gaps"] else "continuous data keeps the tag out of the radius")
    return out


def _gaps(conn, tr: Tracks, good, subs, cx, cy, radius, tf, tt) -> dict[int, list[dict]]:
    """Gaps over 10 minutes overlapping the window, per subject, each marked reachable or not."""
    t, x, y, acc, s = tr.t, tr.x, tr.y, tr.acc, tr.s

    def fix(k):
        return (float(t[k]), float(x[k]), float(y[k]), float(acc[k]))
    pairs: list[tuple[int, tuple | None, tuple | None]] = []
    gs = s[good]
    inner = np.flatnonzero((gs[1:] == gs[:-1]) & (np.diff(t[good]) > GAP_S))
    pairs += [(int(gs[i]), fix(good[i]), fix(good[i + 1])) for i in inner]
    if len(good):
        firsts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
        lasts = np.flatnonzero(np.r_[gs[1:] != gs[:-1], True])
        lo, hi = tf - MARGIN_S, tt + MARGIN_S
        # at the edges: "last seen" before the range read (unless the tag was not this
        # offender's then) and "next seen" after it
        for i in firsts[t[good[firsts]] > tf]:
            si = int(gs[i])
            _, dev, a, _ = subs[si]
            before = neighbour_fix(conn, dev, lo, before=True) if a <= lo else None
            pairs.append((si, before, fix(good[i])))
        for i in lasts[t[good[lasts]] < tt]:
            si = int(gs[i])
            _, dev, _, b = subs[si]
            after = neighbour_fix(conn, dev, hi, before=False) if b >= hi else None
            pairs.append((si, fix(good[i]), after))
    out: dict[int, list[dict]] = {}
    for si, p, q in pairs:
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
        out.setdefault(si, []).append({
            "from": fmt_time(g0), "to": fmt_time(g1), "seconds": round(g1 - g0, 1),
            "last_seen": fmt_time(p[0]) if p is not None else None,
            "next_seen": fmt_time(q[0]) if q is not None else None, "reachable": bool(reach)})
    for v in out.values():
        v.sort(key=lambda g: g["from"])
    return out


def crime_check(store_or_path, lat, lon, radius_m, t_from, t_to, ref, reason, who) -> dict:
    """Answer a crime-mapping query (spec §5) and audit it. See the module docstring."""
    t0, t1 = _validate(lat, lon, radius_m, t_from, t_to, ref, reason, who)
    from centraldb import open_store
    own = not hasattr(store_or_path, "reader")
    store = open_store(store_or_path, create=False) if own else store_or_path
    try:
        cx, cy = scene_xy(float(lon), float(lat))
        lo, hi = t0 - MARGIN_S, t1 + MARGIN_S
        # the PostgreSQL record hands over the window's slice (centraldb.crime), SQLite itself
        # (an analyst's login reads only through the server's audited path, with ref and reason)
        conn = (store.crime_reader(lo, hi, ref=ref.strip(), reason=reason.strip(),
                                   place={"lat": float(lat), "lon": float(lon), "radius_m": float(radius_m)})
                if hasattr(store, "crime_reader") else store.reader())
        subs = subjects(conn, lo, hi)
        results = [{"offender": oid, "device": dev, **r} for (oid, dev, _, _), r
                   in zip(subs, assess_all(conn, subs, cx, cy, float(radius_m), t0, t1))]
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
