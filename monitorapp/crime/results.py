"""Crime mapping's answer per subject (spec §5), built from a ``prism.Evaluation``.

Each result has: ``verdict``; ``closest_m``/``closest_at``/``closest_acc_m`` (the closest good
fix in the window, or the closest point of a straight track segment between fixes at most
10 minutes apart, clipped to the window); ``fixes`` (the fixes in the window and the bracketing
ones near the place: t, seq, lat, lon, acc, distance_m, in_window, inside, jump);
``segments`` (from, to, closest_m, closest_at); ``gaps`` (more than 10 minutes without a fix,
or an open side: from, to, seconds, last_seen, next_seen, reachable); ``basis`` (every reason
that applies, short); ``reason`` (one sentence in words: why this verdict, as the evidential
PDF prints it); ``earliest``/``latest`` (present/possible: the earliest and latest time the
person could have been at the place in the window; else null); ``last_before``/``first_after``
(the bracketing good fixes: t, lat, lon, acc; or null); ``prisms``: the pairs whose prism (or
whose straight path) meets the place, closest first, at most ``MAX_PRISMS``, each
``{"kind": "prism"|"path"|"open", "from", "to", "a", "b", "earliest", "latest", "at",
"reach_m_at_mid": {"a", "b"}}`` where ``a``/``b`` are the fixes (t, lat, lon, acc,
distance_m; null on an open side) and ``reach_m_at_mid`` how far from each the person could be
at ``at`` (the middle of the time the place was reachable): ``v·|at − t| + acc``, the radii
the PDF draws.
"""
from __future__ import annotations

import json
import math

import numpy as np

from monitorapp.crime.prism import GAP_S, VERDICTS
from monitorapp.feed.timeutil import fmt_time

MAX_PRISMS = 10


def fmt_times(ts) -> list[str]:
    """``fmt_time`` for an array (RFC 3339 UTC, ms, Z), vectorised."""
    ms = np.round(np.asarray(ts, dtype=float) * 1000.0).astype(np.int64).astype("datetime64[ms]")
    return [v + "Z" for v in np.datetime_as_string(ms, unit="ms").tolist()]


def _hm(t: float) -> str:
    return fmt_time(t)[:19] + "Z"


def _m(v: float) -> str:
    return f"{v:.0f} m" if v >= 10 else f"{v:.1f} m"


def fix_details(conn, ids) -> dict:
    """fix_id -> (seq, lat, lon), from the store or the window's slice. On SQLite the ids go
    as one JSON array (``json_each``): the store looks them up in id order, in C, for any
    number of them (a batch asks for its whole day's at once)."""
    ids = sorted({int(i) for i in ids})
    if hasattr(conn, "fix_details"):
        return conn.fix_details(ids)
    if not ids:
        return {}
    rows = conn.execute("SELECT fix_id, seq, lat, lon FROM fixes WHERE fix_id IN"
                        " (SELECT value FROM json_each(?))", (json.dumps(ids),)).fetchall()
    return {r[0]: r[1:] for r in rows}


def _shown(tr, ev, r: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The fixes near the place (in the window or bracketing it) and the prisms reported (per
    subject the closest ``MAX_PRISMS`` meeting pairs), and the reach of "near"."""
    t, acc, d = tr.t, tr.acc, ev.d
    reach = r + max(r, 250.0)
    bracket = np.zeros(len(t), dtype=bool)
    bracket[ev.before[ev.before >= 0]] = True
    bracket[ev.after[ev.after >= 0]] = True
    near_idx = np.flatnonzero((ev.inw | bracket) & (d <= acc + reach))
    pd, ps = ev.pd, ev.ps
    hi_idx = np.flatnonzero(ev.p_meets | ev.p_path)
    hi_idx = hi_idx[np.lexsort((pd[hi_idx], ps[hi_idx]))]
    if len(hi_idx):
        sh = ps[hi_idx]
        rank = np.arange(len(hi_idx)) - np.searchsorted(sh, sh, "left")
        hi_idx = hi_idx[rank < MAX_PRISMS]
    return near_idx, hi_idx, reach


def wanted_fixes(tr, ev, r: float) -> np.ndarray:
    """The fix ids whose seq, lat and lon ``build`` shows (for ``fix_details``)."""
    near_idx, hi_idx, _ = _shown(tr, ev, r)
    return np.concatenate([tr.fix_id[near_idx], tr.fix_id[ev.before[ev.before >= 0]],
                           tr.fix_id[ev.after[ev.after >= 0]], tr.fix_id[ev.pa[hi_idx]],
                           tr.fix_id[ev.pb[hi_idx]],
                           tr.fix_id[ev.first[ev.l_meets]], tr.fix_id[ev.last[ev.r_meets]]])


def build(conn, tr, ev, r: float, tf: float, tt: float, v: float,
          details: dict | None = None) -> list[dict]:
    """One result dict per subject of ``tr`` (see the module docstring). ``details``: the
    ``fix_details`` of ``wanted_fixes`` already read (a batch reads its day's at once)."""
    n = tr.n
    s, t, acc, jump, d, inw = tr.s, tr.t, tr.acc, tr.jump, ev.d, ev.inw
    near_idx, hi_idx, reach = _shown(tr, ev, r)
    pa, pb, ps, pd = ev.pa, ev.pb, ev.ps, ev.pd
    dt = t[pb] - t[pa]
    hit = ev.p_meets | ev.p_path
    if details is None:
        want = wanted_fixes(tr, ev, r)
        details = fix_details(conn, want.tolist()) if len(want) else {}
    gap_k = np.flatnonzero(dt > GAP_S)
    used = np.unique(np.concatenate([near_idx, ev.before[ev.before >= 0], ev.after[ev.after >= 0],
                                     pa[hi_idx], pb[hi_idx], pa[gap_k], pb[gap_k],
                                     ev.first[ev.first >= 0], ev.last[ev.last >= 0]]))
    tstr = dict(zip(used.tolist(), fmt_times(t[used])))
    # plain Python values, converted once (indexing numpy scalars one by one costs more than
    # the dictionaries built from them)
    fid, acc_l, d_l, t_l = tr.fix_id.tolist(), acc.tolist(), d.tolist(), t.tolist()

    def ref(k: int) -> dict:
        _, lat, lon = details[fid[k]]
        return {"t": tstr[k], "lat": lat, "lon": lon, "acc": acc_l[k],
                "distance_m": round(d_l[k], 1)}

    def side(k: int) -> dict:
        _, lat, lon = details[fid[k]]
        return {"t": tstr[k], "lat": lat, "lon": lon, "acc": acc_l[k]}

    verdicts = ev.verdict.tolist()
    out = [{"verdict": VERDICTS[verdicts[i]], "closest_m": None, "closest_at": None,
            "closest_acc_m": None, "fixes": [], "segments": [], "gaps": [], "basis": [],
            "reason": "", "earliest": None, "latest": None, "last_before": None,
            "first_after": None, "prisms": []} for i in range(n)]
    times = fmt_times(t[near_idx])
    for k, tk, sk, in_w, jk in zip(near_idx.tolist(), times, s[near_idx].tolist(),
                                   inw[near_idx].tolist(), jump[near_idx].tolist()):
        seq, lat, lon = details[fid[k]]
        out[sk]["fixes"].append({
            "t": tk, "seq": seq, "lat": lat, "lon": lon, "acc": acc_l[k],
            "distance_m": round(d_l[k], 1), "in_window": in_w, "inside": d_l[k] <= r,
            "jump": jk})
    # closest approach: good fixes in the window, segments of at most 10 minutes
    cand = np.flatnonzero(inw & ~jump)
    fbest, fwhere = _per_min(s[cand], d[cand], n)
    short = dt <= GAP_S
    sidx = np.flatnonzero(short)
    sbest, swhere = _per_min(ps[sidx], pd[sidx], n)
    shown = sidx[pd[sidx] <= reach]
    fa, fb, fc = fmt_times(t[pa[shown]]), fmt_times(t[pb[shown]]), fmt_times(ev.pt[shown])
    for i, f0, f1, m, c in zip(ps[shown].tolist(), fa, fb, pd[shown].tolist(), fc):
        out[i]["segments"].append({"from": f0, "to": f1, "closest_m": round(m, 1), "closest_at": c})
    g0s, g1s = np.maximum(t[pa[gap_k]], tf), np.minimum(t[pb[gap_k]], tt)
    for k, g0, g1, f0, f1 in zip(gap_k.tolist(), g0s.tolist(), g1s.tolist(), fmt_times(g0s),
                                 fmt_times(g1s)):               # gaps between fixes
        out[int(ps[k])]["gaps"].append({
            "from": f0, "to": f1, "seconds": round(g1 - g0, 1),
            "last_seen": tstr[int(pa[k])], "next_seen": tstr[int(pb[k])], "reachable": bool(hit[k])})
    meets_h = ev.p_meets[hi_idx]
    los = np.where(meets_h, ev.p_lo[hi_idx], np.maximum(t[pa[hi_idx]], tf))
    his = np.where(meets_h, ev.p_hi[hi_idx], np.minimum(t[pb[hi_idx]], tt))
    ats = np.where(meets_h, (los + his) / 2, ev.pt[hi_idx])
    for i, a, b, at, mh, m, e, l_, mid in zip(
            ps[hi_idx].tolist(), pa[hi_idx].tolist(), pb[hi_idx].tolist(), ats.tolist(),
            meets_h.tolist(), pd[hi_idx].tolist(), fmt_times(los), fmt_times(his), fmt_times(ats)):
        out[i]["prisms"].append({
            "kind": "prism" if mh else "path", "from": tstr[a], "to": tstr[b],
            "a": ref(a), "b": ref(b), "earliest": e, "latest": l_, "at": mid,
            "path_m": round(m, 1),
            "reach_m_at_mid": {"a": round(v * (at - t_l[a]) + acc_l[a], 1),
                               "b": round(v * (t_l[b] - at) + acc_l[b], 1)}})
    before, after = ev.before.tolist(), ev.after.tolist()
    fw, sw = fwhere.tolist(), swhere.tolist()
    fbl, sbl = fbest.tolist(), sbest.tolist()
    for i in range(n):
        res = out[i]
        if before[i] >= 0:
            res["last_before"] = side(before[i])
        if after[i] >= 0:
            res["first_after"] = side(after[i])
        if fw[i] >= 0 and fbl[i] <= sbl[i]:
            k = int(cand[fw[i]])
            res.update(closest_m=round(d_l[k], 1), closest_at=fmt_time(t_l[k]),
                       closest_acc_m=acc_l[k])
        elif sw[i] >= 0:
            k = int(sidx[sw[i]])
            res.update(closest_m=round(float(pd[k]), 1), closest_at=fmt_time(float(ev.pt[k])))
        _open_sides(res, ev, i, t, acc, d, tf, tt, v, ref)
        _explain(res, ev, i, r, v, tf, tt)
        res["gaps"].sort(key=lambda g: g["from"])
    return out


def _per_min(s, values, n):
    from monitorapp.crime.prism import per_min
    return per_min(s, values, n)


def _open_sides(res, ev, i, t, acc, d, tf, tt, v, ref) -> None:
    for side in ("l", "r"):
        if not getattr(ev, f"{side}_open")[i]:
            continue
        k = int((ev.first if side == "l" else ev.last)[i])
        tk = float(t[k])
        g0, g1 = (tf, min(tk, tt)) if side == "l" else (max(tk, tf), tt)
        meets = bool(getattr(ev, f"{side}_meets")[i])
        res["gaps"].append({"from": fmt_time(g0), "to": fmt_time(g1), "seconds": round(g1 - g0, 1),
                            "last_seen": None if side == "l" else fmt_time(tk),
                            "next_seen": fmt_time(tk) if side == "l" else None,
                            "reachable": meets})
        if meets and len(res["prisms"]) < MAX_PRISMS:
            lo, hi = float(getattr(ev, f"{side}_lo")[i]), float(getattr(ev, f"{side}_hi")[i])
            at = (lo + hi) / 2
            fx = ref(k)
            res["prisms"].append({
                "kind": "open", "from": None if side == "l" else fx["t"],
                "to": fx["t"] if side == "l" else None,
                "a": None if side == "l" else fx, "b": fx if side == "l" else None,
                "earliest": fmt_time(lo), "latest": fmt_time(hi), "at": fmt_time(at), "path_m": None,
                "reach_m_at_mid": {"a": None if side == "l" else round(v * (at - tk) + float(acc[k]), 1),
                                   "b": round(v * (tk - at) + float(acc[k]), 1) if side == "l" else None}})


def _explain(res, ev, i, r, v, tf, tt) -> None:
    """``basis`` (every reason that applies) and ``reason`` (the one sentence)."""
    basis, verdict = res["basis"], res["verdict"]
    speed = f"{v:g} m/s"
    if verdict in ("present", "possible") and math.isfinite(ev.earliest[i]):
        res["earliest"], res["latest"] = fmt_time(float(ev.earliest[i])), fmt_time(float(ev.latest[i]))
    inside = [f for f in res["fixes"] if f["in_window"] and f["inside"] and not f["jump"]]
    by_acc = [f for f in res["fixes"] if f["in_window"] and not f["jump"]
              and f["distance_m"] <= r + f["acc"]]
    jumps = [f for f in res["fixes"] if f["in_window"] and f["jump"] and f["distance_m"] <= r + f["acc"]]
    prisms = res["prisms"]
    if ev.present[i]:
        basis.append("a fix in the window within the radius")
    elif ev.by_acc[i]:
        basis.append("a fix in the window within the radius plus its accuracy")
    if ev.by_jump[i]:
        basis.append("a single-fix jump within the radius (not taken as presence)")
    if ev.by_path[i]:
        basis.append("the track between two fixes passes within the radius plus the larger accuracy")
    if ev.by_prism[i]:
        basis.append(f"the space-time prism between two fixes meets the place at {speed}")
    if ev.l_meets[i]:
        basis.append(f"no fix before: the place was reachable from the first fix at {speed}")
    if ev.r_meets[i]:
        basis.append(f"no fix after: the place was reachable from the last fix at {speed}")
    if verdict == "present":
        f = min(inside, key=lambda f: f["distance_m"])
        res["reason"] = (f"A fix at {f['t'][:19]}Z was {_m(f['distance_m'])} from the place, inside the "
                         f"{_m(r)} radius (accuracy {_m(f['acc'])}).")
    elif verdict == "possible":
        res["reason"] = _possible_reason(res, ev, i, r, speed, by_acc, jumps, prisms)
    elif verdict == "no_data":
        lb, fa = res["last_before"], res["first_after"]
        basis.append("no fix in the window and no pair of fixes less than 24 hours apart around it")
        res["reason"] = ("No fix in the window and no pair of fixes less than 24 hours apart brackets "
                         "it, so nothing bounds where the person was"
                         + (f"; the last fix before was at {lb['t'][:19]}Z" if lb else "; no fix before it")
                         + (f", the first after at {fa['t'][:19]}Z." if fa else ", and none after it."))
    else:
        basis.append(f"the prisms between the fixes (at {speed}, accuracy counted) keep the tag out "
                     "of the radius for the whole window")
        if res["gaps"]:
            basis.append("gaps over 10 minutes, but too far to reach the place at " + speed)
        closest = (f"; the closest fix or track was {_m(res['closest_m'])} away"
                   if res["closest_m"] is not None else "")
        res["reason"] = (f"For every instant of the window the fixes, with their accuracy and a speed "
                         f"of at most {speed}, keep the person outside the {_m(r)} radius{closest}.")


def _minutes(p: dict) -> float:
    return float((np.datetime64(p["to"][:-1]) - np.datetime64(p["from"][:-1])) / np.timedelta64(60, "s"))


def _possible_reason(res, ev, i, r, speed, by_acc, jumps, prisms) -> str:
    when = (f" The person could have been there between {res['earliest'][:19]}Z and "
            f"{res['latest'][:19]}Z." if res["earliest"] else "")
    if by_acc:
        f = min(by_acc, key=lambda f: f["distance_m"] - f["acc"])
        return (f"No fix was inside the radius, but the fix at {f['t'][:19]}Z was {_m(f['distance_m'])} "
                f"from the place with an accuracy of {_m(f['acc'])}, so the person may have been within "
                f"the {_m(r)} radius.{when}")
    paths = [p for p in prisms if p["kind"] == "path" or (
        p["kind"] == "prism" and p["path_m"] <= r + max(p["a"]["acc"], p["b"]["acc"])
        and _minutes(p) * 60 <= GAP_S)]
    if paths:
        p = min(paths, key=lambda p: p["path_m"])
        return (f"The straight track between the fixes at {p['from'][:19]}Z and {p['to'][:19]}Z passes "
                f"{_m(p['path_m'])} from the place, within the {_m(r)} radius plus the larger accuracy "
                f"({_m(max(p['a']['acc'], p['b']['acc']))}).{when}")
    gaps = [p for p in prisms if p["kind"] == "prism"]
    if gaps:
        p = min(gaps, key=lambda p: p["a"]["distance_m"] + p["b"]["distance_m"])
        mins = _minutes(p)
        return (f"Between the fixes at {p['from'][:19]}Z ({_m(p['a']['distance_m'])} from the place) and "
                f"{p['to'][:19]}Z ({_m(p['b']['distance_m'])}), {mins:.0f} minutes apart, the person could "
                f"have reached the place at {speed} and been there between {p['earliest'][:19]}Z and "
                f"{p['latest'][:19]}Z.")
    opens = [p for p in prisms if p["kind"] == "open"]
    if opens:
        p = opens[0]
        if p["b"] is not None:
            return (f"There is no fix before {p['b']['t'][:19]}Z in the window ({_m(p['b']['distance_m'])} "
                    f"from the place); at {speed} the person could have been at the place before it.{when}")
        return (f"There is no fix after {p['a']['t'][:19]}Z in the window ({_m(p['a']['distance_m'])} "
                f"from the place); at {speed} the person could have reached the place after it.{when}")
    if jumps:
        f = jumps[0]
        return (f"A single fix at {f['t'][:19]}Z, {_m(f['distance_m'])} from the place, jumped away from "
                "the fixes either side (GPS multipath); it is not taken as presence, but the place is not "
                f"ruled out.{when}")
    return "The data does not rule the place out." + when
