"""Batch crime correlation (spec §5): a force's list of incidents against every track, in one
run, audited as one query.

``load_incidents(path)`` reads the list: a CSV with the columns ``reference``, the place as
``lat``, ``lon`` or as British National Grid ``easting``, ``northing``, ``radius_m``, ``from``,
``to`` (RFC 3339); or a GeoJSON FeatureCollection of Points with the properties
``reference``, ``radius_m``, ``from``, ``to``. Every problem is reported (``IncidentFileError``,
with the line or feature number), not only the first; nothing is guessed.

``run_batch(store, incidents, reason, who)`` reads the fixes of the whole span of the incidents
once (``monitorapp.crime.tracks``, with the fixes bracketing it), then for each incident picks
the subjects whose prisms could meet the place (the same tests as ``monitorapp.crime.prism``,
over all tracks at once, on pairs of fixes sorted by time so only those around the incident's
window are looked at) and decides on those with the single-incident code itself, so a hit in
a batch is exactly what ``crime_check`` would answer for that incident. The report's ``hits``
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
from monitorapp.crime.results import build
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
    prism (at tB the prism is within v (tB - tA) + accA of A) and the straight path. Pairs are
    put in levels by reach (``LEVELS_M``; beyond the last, the few long gaps, always looked at),
    and each level in a grid of cells half its reach, sorted by (cell, tA): an incident looks at
    the cells within reach of its place, and in each only at the pairs whose tA is within the
    level's longest pair before its window. The single-fix jumps are sorted by time; the open
    sides are per subject (its first and last good fix)."""

    LEVELS_M = (500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)

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
        rho = (v * (tr.t[b] - tr.t[a]) + np.maximum(tr.acc[a], tr.acc[b])
               + np.hypot(tr.x[b] - tr.x[a], tr.y[b] - tr.y[a]))
        self.levels = []
        lower = -np.inf
        for reach in self.LEVELS_M:
            m = (rho > lower) & (rho <= reach)
            lower = reach
            la, lb = a[m], b[m]
            cell = reach / 2
            ix = np.floor(tr.x[la] / cell).astype(np.int64)
            iy = np.floor(tr.y[la] / cell).astype(np.int64)
            key = ix * 1_000_003 + iy
            o = np.lexsort((tr.t[la], key))
            self.levels.append((reach, cell, key[o], tr.t[la][o], self._pairs(la[o], lb[o])))
        m = rho > lower
        self.long = self._pairs(a[m], b[m])
        first = np.full(tr.n, -1, dtype=np.int64)
        last = np.full(tr.n, -1, dtype=np.int64)
        if len(g):
            sg = tr.s[g]
            heads = np.flatnonzero(np.r_[True, sg[1:] != sg[:-1]])
            tails = np.flatnonzero(np.r_[sg[1:] != sg[:-1], True])
            first[sg[heads]], last[sg[tails]] = g[heads], g[tails]
        self.first, self.last = first, last

    def _pairs(self, a, b) -> dict:
        tr = self.tr
        return {"s": tr.s[a], "ta": tr.t[a], "tb": tr.t[b], "xa": tr.x[a], "ya": tr.y[a],
                "xb": tr.x[b], "yb": tr.y[b], "acca": tr.acc[a], "accb": tr.acc[b]}

    def _level_rows(self, level, cx, cy, r, tf, tt) -> np.ndarray:
        reach, cell, key, ta, _ = level
        span = reach + r + 1.0
        ix0, ix1 = int(np.floor((cx - span) / cell)), int(np.floor((cx + span) / cell))
        iy0, iy1 = int(np.floor((cy - span) / cell)), int(np.floor((cy + span) / cell))
        keys = (np.arange(ix0, ix1 + 1)[:, None] * 1_000_003 + np.arange(iy0, iy1 + 1)[None, :]).ravel()
        lo_k, hi_k = np.searchsorted(key, keys, "left"), np.searchsorted(key, keys, "right")
        parts = []
        for i, j in zip(lo_k.tolist(), hi_k.tolist()):
            if j > i:
                p = i + int(np.searchsorted(ta[i:j], tf - reach / self.v, "left"))
                q = i + int(np.searchsorted(ta[i:j], tt, "right"))
                if q > p:
                    parts.append(np.arange(p, q))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def near(self, cx, cy, r, tf, tt, slack=1.0) -> np.ndarray:
        """Subjects that may meet the place: a superset of the present/possible ones."""
        v, n = self.v, self.tr.n
        hit = np.zeros(n, dtype=bool)
        i, j = np.searchsorted(self.jt, tf, "left"), np.searchsorted(self.jt, tt, "right")
        d = np.hypot(self.jx[i:j] - cx, self.jy[i:j] - cy)
        hit[self.js[i:j][d <= r + self.jacc[i:j] + slack]] = True
        groups = [(lv[4], self._level_rows(lv, cx, cy, r, tf, tt)) for lv in self.levels]
        groups.append((self.long, None))
        for q, k in groups:
            if k is not None:
                q = {name: w[k] for name, w in q.items()}
            ta, tb = q["ta"], q["tb"]
            m = np.flatnonzero((ta <= tt) & (tb >= tf))
            if not len(m):
                continue
            q = {name: w[m] for name, w in q.items()}
            ta, tb = q["ta"], q["tb"]
            da = np.hypot(q["xa"] - cx, q["ya"] - cy)
            db = np.hypot(q["xb"] - cx, q["yb"] - cy)
            lo = np.maximum(np.maximum(ta, tf), ta + (da - q["acca"] - r - slack) / v)
            hi = np.minimum(np.minimum(tb, tt), tb - (db - q["accb"] - r - slack) / v)
            ex, ey = q["xb"] - q["xa"], q["yb"] - q["ya"]
            ll = ex * ex + ey * ey
            with np.errstate(divide="ignore", invalid="ignore"):
                u = np.clip(np.where(ll > 0, ((cx - q["xa"]) * ex + (cy - q["ya"]) * ey) / ll, 0.0), 0, 1)
            pd = np.hypot(q["xa"] + u * ex - cx, q["ya"] + u * ey - cy)
            path = pd <= r + np.maximum(q["acca"], q["accb"]) + slack
            hit[q["s"][(lo <= hi + 1e-6) | path]] = True
        tr, f, la = self.tr, self.first, self.last
        ok = f >= 0
        fi, li = np.where(ok, f, 0), np.where(ok, la, 0)
        df = np.hypot(tr.x[fi] - cx, tr.y[fi] - cy)
        dl = np.hypot(tr.x[li] - cx, tr.y[li] - cy)
        hit |= ok & (tr.t[fi] > tf) & (tr.t[fi] - (df - tr.acc[fi] - r - slack) / v >= tf - 1e-6)
        hit |= ok & (tr.t[li] < tt) & (tr.t[li] + (dl - tr.acc[li] - r - slack) / v <= tt + 1e-6)
        return hit


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


def run_batch(store, incidents: list[dict], reason: str, who: str, *,
              speed_ms: float = REACH_SPEED_MS, progress=None) -> dict:
    """Check every incident against every track; the hits report (module docstring)."""
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
        key_list = pick.keys
        projs = [projector_for(c[0]["lon"], c[0]["lat"]) for c in checked]
        tr = Tracks(conn, key_list, lo, hi, lonlat=not all(g for _, g in projs))
        index = _Index(tr, v)
        hits, summary = [], []
        for k, ((inc, t0, t1), (proj, grid)) in enumerate(zip(checked, projs)):
            r = float(inc["radius_m"])
            cx, cy = proj.to_xy(float(inc["lon"]), float(inc["lat"]))
            idx = pick.of(t0, t1)
            if grid:
                idx = idx[index.near(cx, cy, r, t0, t1)[idx]]
                sub = tr.subset(idx)
            else:                     # another projection: the jumps are re-marked in it
                sub = tr.subset(idx).reprojected(proj)
            picked = [key_list[j] for j in idx.tolist()]
            ev = evaluate(sub, cx, cy, r, t0, t1, v)
            keep = candidates(ev)
            found = []
            if len(keep):
                sub2 = sub.subset(keep)
                results = build(conn, sub2, evaluate(sub2, cx, cy, r, t0, t1, v), r, t0, t1, v)
                found = [{"reference": inc["reference"], "offender": picked[j][0], "device": picked[j][1],
                          **res} for j, res in zip(keep.tolist(), results)]
                sort_results(found)
            hits += found
            summary.append({"reference": inc["reference"], "lat": float(inc["lat"]),
                            "lon": float(inc["lon"]), "radius_m": r, "from": fmt_time(t0),
                            "to": fmt_time(t1), "hits": len(found), "projection": proj.name})
            if progress is not None:
                progress(k + 1, len(checked))
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

