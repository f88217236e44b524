"""Batch crime correlation (spec §5): a force's list of incidents against every track, in one
run, audited as one query.

``load_incidents(path)`` reads the list: a CSV with the columns ``reference``, the place as
``lat``, ``lon`` or as British National Grid ``easting``, ``northing``, ``radius_m``, ``from``,
``to`` (RFC 3339); or a GeoJSON FeatureCollection of Points with the properties
``reference``, ``radius_m``, ``from``, ``to``. Every problem is reported (``IncidentFileError``,
with the line or feature number), not only the first; nothing is guessed.

``run_batch(store, incidents, reason, who)`` reads the fixes of the whole span of the incidents
once (``monitorapp.crime.tracks``, with the fixes bracketing it; each tag once, for the
subjects some incident has), then for each incident picks the subjects whose prisms could
meet the place (``_Index``: per subject and half hour, the box every pair of fixes can reach)
and decides on what a single query of its window would read of those (``Tracks.window``)
with the single-incident code itself, so a hit in a batch is exactly what ``crime_check``
would answer for that incident. The details the hits show (each fix's seq, lat, lon) are read
once per run of incidents; ``workers=N`` decides the runs in N forked processes
(``monitorapp.crime.batchwork``; the command line uses the CPUs, up to 4). The report's ``hits``
are the results whose verdict is ``present`` or ``possible``, ordered by incident, then verdict,
then closest approach; ``write_hits_json``/``write_hits_csv`` write it, the evidential PDF is
``monitorapp.crime.evidence.write_batch_pdf``. The run is one audit record (``crime_batch``)
with who, the reason, the references and the counts.

The command line (``monitorapp crimecheck --incidents FILE`` and the scheduled daily run
``--incidents-dir DIR``) is ``monitorapp.crime.batchcli``.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pyproj

from monitorapp.crime.prism import candidates, evaluate
from monitorapp.crime.query import (MAX_WINDOW_S, REACH_SPEED_MS, CrimeQueryError, _check_speed,
                                    _validate, projector_for, sort_results, window_reader)
from monitorapp.crime.batchwork import decide_all
from monitorapp.crime.results import build, wanted_fixes
from monitorapp.crime.tracks import Tracks
from monitorapp.crime.trail import subject_rows
from monitorapp.feed.timeutil import TimeFormatError, fmt_time, parse_time

MAX_PROBLEMS = 20
_to_wgs = None


class IncidentFileError(ValueError):
    """An incidents file that cannot be used as it is; the message names every problem."""


def _bng_to_lonlat(e: float, n: float) -> tuple[float, float]:
    global _to_wgs
    if _to_wgs is None:
        _to_wgs = pyproj.Transformer.from_crs(27700, 4326, always_xy=True)
    lon, lat = _to_wgs.transform(e, n)
    return float(lon), float(lat)


def _number(v, what: str) -> float:
    try:
        f = float(str(v).strip()) if not isinstance(v, (int, float)) or isinstance(v, bool) else float(v)
    except ValueError:
        raise ValueError(f"{what} is not a number: {str(v)[:30]!r}") from None
    if not math.isfinite(f):
        raise ValueError(f"{what} is not a finite number")
    return f


def _incident(where: str, ref, place: tuple, radius, t_from, t_to) -> dict:
    """One checked incident, or ValueError naming the problem."""
    if not isinstance(ref, str) or not ref.strip():
        raise ValueError("the reference is empty")
    kind, p, q = place
    if kind == "bng":
        e, n = _number(p, "easting"), _number(q, "northing")
        if not (0 <= e <= 700_000 and 0 <= n <= 1_300_000):
            raise ValueError(f"easting/northing {e:.0f}, {n:.0f} is outside the British National Grid")
        lon, lat = _bng_to_lonlat(e, n)
    else:
        lat, lon = _number(p, "lat"), _number(q, "lon")
    r = _number(radius, "radius_m")
    for name, v in (("from", t_from), ("to", t_to)):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"'{name}' is empty")
        try:
            parse_time(v.strip())
        except TimeFormatError as e:
            raise ValueError(f"'{name}': {e}") from None
    try:
        t0, t1 = _validate(lat, lon, r, t_from.strip(), t_to.strip(), ref, "-", "-")
    except CrimeQueryError as e:
        raise ValueError(str(e)) from None
    return {"reference": ref.strip(), "lat": lat, "lon": lon, "radius_m": r,
            "from": fmt_time(t0), "to": fmt_time(t1)}


def load_incidents(path) -> list[dict]:
    """The incidents of a CSV or GeoJSON file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise IncidentFileError(f"{path}: cannot be read ({e})") from None
    if path.suffix.lower() in (".geojson", ".json") or text.lstrip().startswith("{"):
        items, problems = _geojson(text)
    else:
        items, problems = _csv(text)
    seen: dict[str, str] = {}
    out = []
    for where, fn in items:
        try:
            inc = fn()
        except ValueError as e:
            problems.append(f"{where}: {e}")
            continue
        if inc["reference"] in seen:
            problems.append(f"{where}: reference {inc['reference']!r} is also on {seen[inc['reference']]}")
            continue
        seen[inc["reference"]] = where
        out.append(inc)
    if not problems and not out:
        problems.append("no incidents in the file")
    if problems:
        more = len(problems) - MAX_PROBLEMS
        raise IncidentFileError(f"{path}: " + "; ".join(problems[:MAX_PROBLEMS])
                                + (f"; and {more} more" if more > 0 else ""))
    return out


def _csv(text: str):
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return [], []
    head = [h.strip().lower() for h in rows[0]]
    col = {h: k for k, h in enumerate(head)}
    need = ["reference", "radius_m", "from", "to"]
    missing = [h for h in need if h not in col]
    if {"lat", "lon"} <= set(col):
        place = ("lat", "lat", "lon")
    elif {"easting", "northing"} <= set(col):
        place = ("bng", "easting", "northing")
    else:
        missing.append("lat and lon, or easting and northing")
    if missing:
        return [], [f"line 1: the header lacks {', '.join(missing)} (it has {', '.join(head)})"]
    items = []
    for line, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(head):
            items.append((f"line {line}", lambda n=len(row): _raise(f"{n} columns, the header has {len(head)}")))
            continue

        def fn(row=row):
            return _incident("", row[col["reference"]], (place[0], row[col[place[1]]], row[col[place[2]]]),
                             row[col["radius_m"]], row[col["from"]], row[col["to"]])
        items.append((f"line {line}", fn))
    return items, []


def _raise(msg):
    raise ValueError(msg)


def _geojson(text: str):
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        return [], [f"not JSON (line {e.lineno}, column {e.colno}: {e.msg})"]
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(
            doc.get("features"), list):
        return [], ["not a GeoJSON FeatureCollection"]
    items = []
    for k, f in enumerate(doc["features"], 1):
        def fn(f=f):
            if not isinstance(f, dict) or not isinstance(f.get("geometry"), dict) \
                    or f["geometry"].get("type") != "Point":
                raise ValueError("not a Point feature")
            c = f["geometry"].get("coordinates")
            if not isinstance(c, list) or len(c) < 2:
                raise ValueError("a Point needs [lon, lat] coordinates")
            p = f.get("properties") or {}
            if not isinstance(p, dict):
                raise ValueError("properties is not an object")
            return _incident("", p.get("reference"), ("lat", c[1], c[0]), p.get("radius_m"),
                             p.get("from"), p.get("to"))
        items.append((f"feature {k}", fn))
    return items, []


class _Index:
    """The batch's tracks arranged for finding, per incident, the subjects whose prisms could
    meet its place, without looking at every pair of fixes of the day.

    A pair of consecutive good fixes A, B can meet a place only if A is within its reach
    ``rho = v (tB - tA) + max(accA, accB) + |AB|`` (plus the radius) of it: that bounds both the
    prism (at any time between tA and tB the prism is within v (tB - tA) + accA of A, and B is
    within |AB| of A) and the straight path. The pairs of at most ``BUCKET_S`` are summarised
    per subject and half hour of tA: the box around every A of that half hour grown by its
    pair's reach, and the earliest tA and latest tB. An incident looks at the half hours that
    can hold a pair meeting its window, keeps the subjects whose box the place's circle meets,
    and decides on exactly those (a superset of the present and possible ones: the prism test
    itself is ``monitorapp.crime.prism``'s, on the subject's fixes). The few longer pairs (a
    shielded tag's gap) are tested one by one, with the prism's own bounds; the single-fix
    jumps are sorted by time; the open sides are per subject (its first and last good fix).
    """

    BUCKET_S = 1800.0

    def __init__(self, tr: Tracks, v: float):
        self.tr, self.v = tr, v
        jumps = np.flatnonzero(tr.jump)
        order = jumps[np.argsort(tr.t[jumps], kind="stable")]
        self.jt, self.js = tr.t[order], tr.s[order]
        self.jx, self.jy, self.jacc = tr.x[order], tr.y[order], tr.acc[order]
        g = np.flatnonzero(~tr.jump)
        a, b = g[:-1], g[1:]
        ok = (tr.s[a] == tr.s[b]) & (tr.t[b] > tr.t[a])
        a, b = a[ok], b[ok]
        ta, tb = tr.t[a], tr.t[b]
        rho = (v * (tb - ta) + np.maximum(tr.acc[a], tr.acc[b])
               + np.hypot(tr.x[b] - tr.x[a], tr.y[b] - tr.y[a]))
        long = (tb - ta) > self.BUCKET_S
        la, lb = a[long], b[long]
        self.long = np.column_stack([tr.s[la].astype(float), tr.t[la], tr.t[lb], tr.x[la], tr.y[la],
                                     tr.x[lb], tr.y[lb], tr.acc[la], tr.acc[lb]])
        a, b, ta, tb, rho = a[~long], b[~long], ta[~long], tb[~long], rho[~long]
        self.base = float(ta.min()) if len(ta) else 0.0
        bucket = np.floor((ta - self.base) / self.BUCKET_S).astype(np.int64)
        s = tr.s[a]
        # one row per (bucket, subject), sorted by bucket
        key = bucket * (tr.n + 1) + s
        order = np.argsort(key, kind="stable")
        key, first_row = np.unique(key[order], return_index=True)

        def reduce(values, fn):
            return fn.reduceat(values[order], first_row) if len(order) else np.zeros(0)
        xa, ya = tr.x[a], tr.y[a]
        self.bx0, self.bx1 = reduce(xa - rho, np.minimum), reduce(xa + rho, np.maximum)
        self.by0, self.by1 = reduce(ya - rho, np.minimum), reduce(ya + rho, np.maximum)
        self.bt0, self.bt1 = reduce(ta, np.minimum), reduce(tb, np.maximum)
        self.bs = key % (tr.n + 1)
        rows_bucket = key // (tr.n + 1)
        self.bstart = np.searchsorted(rows_bucket, np.arange(int(rows_bucket.max()) + 2)
                                      if len(rows_bucket) else np.zeros(1, dtype=np.int64), "left")
        first = np.full(tr.n, -1, dtype=np.int64)
        last = np.full(tr.n, -1, dtype=np.int64)
        if len(g):
            sg = tr.s[g]
            heads = np.flatnonzero(np.r_[True, sg[1:] != sg[:-1]])
            tails = np.flatnonzero(np.r_[sg[1:] != sg[:-1], True])
            first[sg[heads]], last[sg[tails]] = g[heads], g[tails]
        self.first, self.last = first, last
        self.ok = first >= 0            # each subject's first and last good fix, gathered once
        fi, li = np.where(self.ok, first, 0), np.where(self.ok, last, 0)
        self.first_fix = (tr.t[fi], tr.x[fi], tr.y[fi], tr.acc[fi])
        self.last_fix = (tr.t[li], tr.x[li], tr.y[li], tr.acc[li])

    def near(self, cx, cy, r, tf, tt, slack=1.0) -> np.ndarray:
        """Subjects that may meet the place: a superset of the present/possible ones."""
        v, n = self.v, self.tr.n
        hit = np.zeros(n, dtype=bool)
        i, j = np.searchsorted(self.jt, tf, "left"), np.searchsorted(self.jt, tt, "right")
        d = np.hypot(self.jx[i:j] - cx, self.jy[i:j] - cy)
        hit[self.js[i:j][d <= r + self.jacc[i:j] + slack]] = True
        nb = len(self.bstart) - 1          # buckets whose pairs can span into [tf, tt]
        k0 = min(max(int(np.floor((tf - self.base) / self.BUCKET_S)) - 1, 0), nb)
        k1 = min(max(int(np.floor((tt - self.base) / self.BUCKET_S)) + 1, 0), nb)
        p, q = int(self.bstart[k0]), int(self.bstart[k1])
        if q > p:
            w = slice(p, q)
            dx = np.maximum(np.maximum(self.bx0[w] - cx, cx - self.bx1[w]), 0.0)
            dy = np.maximum(np.maximum(self.by0[w] - cy, cy - self.by1[w]), 0.0)
            m = ((self.bt0[w] <= tt) & (self.bt1[w] >= tf)
                 & (np.hypot(dx, dy) <= r + slack))
            hit[self.bs[w][m]] = True
        q = self.long
        m = np.flatnonzero((q[:, 1] <= tt) & (q[:, 2] >= tf))
        if len(m):
            s_, ta, tb, xa, ya, xb, yb, acca, accb = q[m].T
            da = np.hypot(xa - cx, ya - cy)
            db = np.hypot(xb - cx, yb - cy)
            lo = np.maximum(np.maximum(ta, tf), ta + (da - acca - r - slack) / v)
            hi = np.minimum(np.minimum(tb, tt), tb - (db - accb - r - slack) / v)
            ex, ey = xb - xa, yb - ya
            ll = ex * ex + ey * ey
            with np.errstate(divide="ignore", invalid="ignore"):
                u = np.clip(np.where(ll > 0, ((cx - xa) * ex + (cy - ya) * ey) / ll, 0.0), 0, 1)
            pd = np.hypot(xa + u * ex - cx, ya + u * ey - cy)
            path = pd <= r + np.maximum(acca, accb) + slack
            hit[s_[(lo <= hi + 1e-6) | path].astype(np.int64)] = True
        ok, (ft, fx, fy, facc), (lt, lx, ly, lacc) = self.ok, self.first_fix, self.last_fix
        df = np.hypot(fx - cx, fy - cy)
        dl = np.hypot(lx - cx, ly - cy)
        hit |= ok & (ft > tf) & (ft - (df - facc - r - slack) / v >= tf - 1e-6)
        hit |= ok & (lt < tt) & (lt + (dl - lacc - r - slack) / v <= tt + 1e-6)
        return hit


def _worker_reader(store, conn):
    """How a forked worker gets a reader: the window slice of the PostgreSQL record answers
    from its arrays (shared as they are); a SQLite store is opened again, read-only."""
    if hasattr(conn, "fix_details"):
        return lambda: conn
    from localdb.schema import connect

    def reader():
        c = connect(store.path)
        c.execute("PRAGMA query_only=1")
        return c
    return reader


class _Subjects:
    """Each incident's subjects (``trail.subjects_of`` with ``clip=False``) from the rows read
    once for the batch's span, as indices into ``keys`` (every subject of any incident)."""

    def __init__(self, assignments, tags):
        keys: dict[tuple, int] = {}
        self.ka = np.asarray([keys.setdefault((o, d, a, 1e300 if b is None else b), len(keys))
                              for o, d, a, b in assignments], dtype=np.int64)
        self.kt = np.asarray([keys.setdefault((None, d, -1e300, 1e300), len(keys))
                              for d, _, _ in tags], dtype=np.int64)
        self.keys = list(keys)
        code: dict[str, int] = {}
        self.da = np.asarray([code.setdefault(d, len(code)) for _, d, _, _ in assignments], dtype=np.int64)
        self.dt = np.asarray([code.setdefault(d, len(code)) for d, _, _ in tags], dtype=np.int64)
        self.ndev = len(code)
        self.a0 = np.asarray([a for _, _, a, _ in assignments], dtype=float)
        self.a1 = np.asarray([1e300 if b is None else b for _, _, _, b in assignments], dtype=float)
        self.t0 = np.asarray([f for _, f, _ in tags], dtype=float)
        self.t1 = np.asarray([last for _, _, last in tags], dtype=float)

    def of(self, lo: float, hi: float) -> np.ndarray:
        ma = (self.a0 <= hi) & (self.a1 >= lo)
        assigned = np.zeros(self.ndev, dtype=bool)
        assigned[self.da[ma]] = True
        mt = (self.t0 <= hi) & (self.t1 >= lo) & ~assigned[self.dt]
        return np.unique(np.concatenate([self.ka[ma], self.kt[mt]]))


class IncidentHits:
    """One incident's hits, decided but not yet written out: its subjects ``idx`` (into the
    batch's tracks) narrowed by the index, then decided by the single-incident code
    (``evaluate``); ``want`` is the fixes whose details its results show, so that a batch
    reads every incident's at once. ``proj``: the place's projection when it is not the stored
    grid (the subjects' fixes are reprojected, and their jumps re-marked, in it)."""

    def __init__(self, tr: Tracks, index: "_Index", key_list: list, idx: np.ndarray, inc: dict,
                 t0: float, t1: float, cx: float, cy: float, proj, v: float):
        self.inc, self.t0, self.t1, self.v = inc, t0, t1, v
        self.r = r = float(inc["radius_m"])
        if proj is None:
            idx = idx[index.near(cx, cy, r, t0, t1)[idx]]
            sub = tr.window(idx, t0, t1)
        else:
            sub = tr.window(idx, t0, t1).reprojected(proj)
        keep = candidates(evaluate(sub, cx, cy, r, t0, t1, v))
        self.picked = [key_list[j] for j in idx[keep].tolist()]
        self.sub = sub.subset(keep) if len(keep) else None
        self.ev = evaluate(self.sub, cx, cy, r, t0, t1, v) if len(keep) else None
        self.want = (wanted_fixes(self.sub, self.ev, r) if len(keep)
                     else np.zeros(0, dtype=np.int64))

    def results(self, conn, details: dict | None = None) -> list[dict]:
        if self.sub is None:
            return []
        res = build(conn, self.sub, self.ev, self.r, self.t0, self.t1, self.v, details)
        found = [{"reference": self.inc["reference"], "offender": key[0], "device": key[1], **x}
                 for key, x in zip(self.picked, res)]
        sort_results(found)
        return found


def check_incident(conn, tr: Tracks, index: "_Index", key_list: list, idx: np.ndarray, inc: dict,
                   t0: float, t1: float, cx: float, cy: float, proj, v: float) -> list[dict]:
    """One incident's hits (``IncidentHits``), with its own read of the fixes' details."""
    return IncidentHits(tr, index, key_list, idx, inc, t0, t1, cx, cy, proj, v).results(conn)


def run_batch(store, incidents: list[dict], reason: str, who: str, *,
              speed_ms: float = REACH_SPEED_MS, progress=None, workers: int = 1) -> dict:
    """Check every incident against every track; the hits report (module docstring).
    ``progress(done, total)`` counts incidents. ``workers``: processes deciding the incidents
    (``monitorapp.crime.batchwork``; forked, so only from a process that is not a GUI)."""
    v = _check_speed(speed_ms)
    for name, val in (("a reason (--reason)", reason), ("who is asking", who)):
        if not isinstance(val, str) or not val.strip():
            raise CrimeQueryError(f"{name} is required")
    if not incidents:
        raise CrimeQueryError("a batch needs at least one incident")
    checked = []
    for inc in incidents:
        t0, t1 = _validate(inc["lat"], inc["lon"], inc["radius_m"], inc["from"], inc["to"],
                           inc["reference"], reason, who)
        checked.append((inc, t0, t1))
    lo, hi = min(c[1] for c in checked), max(c[2] for c in checked)
    if hi - lo > MAX_WINDOW_S:
        raise CrimeQueryError("the incidents of one batch may span at most 31 days")
    refs = [c[0]["reference"] for c in checked]
    from centraldb import open_store
    own = not hasattr(store, "reader")
    st = open_store(store, create=False) if own else store
    try:
        conn = window_reader(st, lo, hi, ("batch: " + ", ".join(refs))[:200], reason.strip(), None)
        assignments, tags = subject_rows(conn, lo, hi)
        pick = _Subjects(assignments, tags)
        # only the subjects some incident has (an assigned tag's own "unassigned" subject is
        # read only where an incident's window has no assignment for it): each track once
        of = [pick.of(t0, t1) for _, t0, t1 in checked]
        needed = np.unique(np.concatenate(of)) if of else np.zeros(0, dtype=np.int64)
        local = np.full(len(pick.keys), -1, dtype=np.int64)
        local[needed] = np.arange(len(needed))
        key_list = [pick.keys[j] for j in needed.tolist()]
        projs = [projector_for(c[0]["lon"], c[0]["lat"]) for c in checked]
        tr = Tracks(conn, key_list, lo, hi, lonlat=not all(g for _, g in projs))
        index = _Index(tr, v)
        state = {"checked": checked, "projs": projs, "tr": tr, "index": index,
                 "key_list": key_list, "local": local, "of": of, "v": v, "conn": conn,
                 "decide": IncidentHits,
                 "connect": _worker_reader(st, conn)}
        per_incident = decide_all(state, workers, progress)
        hits, summary = [], []
        for (inc, t0, t1), (proj, _), found in zip(checked, projs, per_incident):
            hits += found
            summary.append({"reference": inc["reference"], "lat": float(inc["lat"]),
                            "lon": float(inc["lon"]), "radius_m": float(inc["radius_m"]),
                            "from": fmt_time(t0), "to": fmt_time(t1), "hits": len(found),
                            "projection": proj.name})
        counts = {name: sum(1 for h in hits if h["verdict"] == name) for name in ("present", "possible")}
        query = {"reason": reason.strip(), "who": who.strip(), "incidents": len(checked),
                 "hits": len(hits), "speed_ms": v, "from": fmt_time(lo), "to": fmt_time(hi)}
        record = st.audit(who, "crime_batch", {**query, "references": refs, "verdicts": counts})
        query["asked_at"] = fmt_time(record["at"])
        return {"query": query, "incidents": summary, "hits": hits}
    finally:
        if own:
            st.close()


HIT_COLUMNS = ("reference", "verdict", "offender", "device", "closest_m", "closest_at",
               "closest_acc_m", "earliest", "latest", "reason")


def write_hits_json(report: dict, path) -> str:
    Path(path).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return str(path)


def write_hits_csv(report: dict, path) -> str:
    """One row per hit (``HIT_COLUMNS``)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HIT_COLUMNS)
        for h in report["hits"]:
            w.writerow(["" if h.get(c) is None else h.get(c) for c in HIT_COLUMNS])
    return str(path)

