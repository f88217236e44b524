"""The verdicts of crime mapping as time geography (spec §5), vectorised over every subject.

``evaluate(tr, cx, cy, radius, tf, tt, v)`` tests, for every subject of a ``Tracks`` (fixes in
the window and the fixes bracketing it), in metres of one projection:

* the fixes in the window (single-fix jumps apart): within the radius (``present``), within
  the radius plus the fix's accuracy;
* every pair of consecutive good fixes A, B whose span meets the window (the pair bracketing a
  window with no fix in it too, however long): the **space-time prism** meets the place's
  circle (centre c, radius r) at time t only if
  ``|A - c| <= v (t - tA) + accA + r`` and ``|B - c| <= v (tB - t) + accB + r``. Each is a
  half-line in t, so the set of such t, intersected with the window and [tA, tB], is one
  interval [earliest, latest]; it is empty only if the prism is wholly outside the circle for
  the whole pair. This is conservative (a prism's reach is a pair of discs, the circle is
  tested against each disc on its own), which is what ``not_present`` needs: never wrong;
* the straight path A→B, clipped to the window, within the radius plus the larger accuracy:
  this also catches a pair that is inconsistent with the speed bound (the person moved faster
  than ``v``, or the fixes are worse than their accuracy), whose prism is empty;
* the open sides: no fix before the window (within the assignment) — reachable from the
  first fix at ``v``; no fix after it — reachable from the last fix;
* a single-fix jump within the radius plus its accuracy (not presence, but not hidden).

Verdicts: ``present`` (a good fix in the window within the radius); else ``no_data`` when no
fix is in the window and no pair of fixes less than 24 hours apart brackets it; else
``possible`` when any test above meets the place; else ``not_present``: every instant of the
window is covered by a prism (or an open side) that lies wholly outside the circle.

Everything here is numpy over all fixes and pairs at once; the per-subject answers are arrays
(``Evaluation``) from which ``monitorapp.crime.query`` builds the results.
"""
from __future__ import annotations

import numpy as np

BRACKET_MAX_S = 86400.0      # a bracketing pair this far apart or more bounds nothing (no_data)
GAP_S = 600.0                # a "gap": more than 10 minutes without a fix
PRESENT, POSSIBLE, NOT_PRESENT, NO_DATA = 0, 1, 2, 3
VERDICTS = ("present", "possible", "not_present", "no_data")


def any_per(s: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(s[mask], minlength=n) > 0


def per_min(s: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For each subject 0..n-1: the minimum of ``values`` and the index where it is (-1)."""
    best = np.full(n, np.inf)
    where = np.full(n, -1, dtype=np.int64)
    if len(s):
        order = np.lexsort((values, s))
        first = order[np.unique(s[order], return_index=True)[1]]
        best[s[first]] = values[first]
        where[s[first]] = first
    return best, where


class Evaluation:
    """Per-subject arrays (length n) and the pairs' arrays of one query's evaluation."""


def evaluate(tr, cx: float, cy: float, r: float, tf: float, tt: float, v: float) -> Evaluation:
    n = tr.n
    ev = Evaluation()
    s, t, acc, jump = tr.s, tr.t, tr.acc, tr.jump
    d = np.hypot(tr.x - cx, tr.y - cy)
    good = ~jump
    inw = (t >= tf) & (t <= tt)
    ev.d, ev.inw = d, inw
    ev.present = any_per(s, inw & good & (d <= r), n)
    ev.by_acc = any_per(s, inw & good & (d <= r + acc), n)
    ev.by_jump = any_per(s, inw & jump & (d <= r + acc), n)
    ev.in_count = np.bincount(s[inw & good], minlength=n)

    # pairs of consecutive good fixes of one subject whose span meets the window
    g = np.flatnonzero(good)
    a, b = g[:-1], g[1:]
    ok = (s[a] == s[b]) & (t[a] <= tt) & (t[b] >= tf) & (t[b] > t[a])
    a, b = a[ok], b[ok]
    ta, tb, dt = t[a], t[b], t[b] - t[a]
    lo_t = np.maximum(np.maximum(ta, tf), ta + (d[a] - acc[a] - r) / v)
    hi_t = np.minimum(np.minimum(tb, tt), tb - (d[b] - acc[b] - r) / v)
    meets = lo_t <= hi_t
    # the straight path, clipped to the window
    s0, s1 = np.maximum(ta, tf), np.minimum(tb, tt)
    f0, f1 = (s0 - ta) / dt, (s1 - ta) / dt
    ex, ey = tr.x[b] - tr.x[a], tr.y[b] - tr.y[a]
    p0x, p0y = tr.x[a] + ex * f0, tr.y[a] + ey * f0
    qx, qy = ex * (f1 - f0), ey * (f1 - f0)
    ll = qx * qx + qy * qy
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(ll > 0, ((cx - p0x) * qx + (cy - p0y) * qy) / ll, 0.0)
    u = np.clip(u, 0.0, 1.0)
    pd = np.hypot(p0x + u * qx - cx, p0y + u * qy - cy)
    path = pd <= r + np.maximum(acc[a], acc[b])
    ps = s[a]
    ev.pa, ev.pb, ev.ps, ev.pd, ev.pt = a, b, ps, pd, s0 + u * (s1 - s0)
    ev.p_lo, ev.p_hi, ev.p_meets, ev.p_path = lo_t, hi_t, meets, path
    ev.by_prism = any_per(ps, meets, n)
    ev.by_path = any_per(ps, path, n)
    brackets = (ta < tf) & (tb > tt)
    ev.bracketed = any_per(ps, brackets & (dt < BRACKET_MAX_S), n)

    # each subject's first and last good fix: the open sides
    first = np.full(n, -1, dtype=np.int64)
    last = np.full(n, -1, dtype=np.int64)
    if len(g):
        sg = s[g]
        heads = np.flatnonzero(np.r_[True, sg[1:] != sg[:-1]])
        tails = np.flatnonzero(np.r_[sg[1:] != sg[:-1], True])
        first[sg[heads]] = g[heads]
        last[sg[tails]] = g[tails]
    has = first >= 0
    fi, li = np.where(has, first, 0), np.where(has, last, 0)
    ev.first, ev.last = first, last
    ev.l_open = has & (t[fi] > tf)
    ev.l_lo = np.full(n, tf)
    ev.l_hi = np.minimum(np.minimum(t[fi], tt), t[fi] - (d[fi] - acc[fi] - r) / v) if n else np.zeros(0)
    ev.l_meets = ev.l_open & (ev.l_lo <= ev.l_hi)
    ev.r_open = has & (t[li] < tt)
    ev.r_lo = np.maximum(np.maximum(t[li], tf), t[li] + (d[li] - acc[li] - r) / v) if n else np.zeros(0)
    ev.r_hi = np.full(n, tt)
    ev.r_meets = ev.r_open & (ev.r_lo <= ev.r_hi)

    # the bracketing fixes: the last good fix before the window and the first after it
    idx = np.arange(len(t))
    before = np.full(n, -1, dtype=np.int64)
    after = np.full(n, len(t), dtype=np.int64)
    m = good & (t < tf)
    np.maximum.at(before, s[m], idx[m])
    m = good & (t > tt)
    np.minimum.at(after, s[m], idx[m])
    ev.before, ev.after = before, np.where(after < len(t), after, -1)

    # earliest and latest time at the place: the meeting prisms, inconsistent pairs whose path
    # comes close, the fixes in the window within radius + accuracy, the open sides
    earliest = np.full(n, np.inf)
    latest = np.full(n, -np.inf)
    for sel, lo_v, hi_v in (
            (meets, lo_t, hi_t), (path & ~meets, s0, s1)):
        np.minimum.at(earliest, ps[sel], lo_v[sel])
        np.maximum.at(latest, ps[sel], hi_v[sel])
    m = inw & (d <= r + acc)
    np.minimum.at(earliest, s[m], t[m])
    np.maximum.at(latest, s[m], t[m])
    for sel, lo_v, hi_v in ((ev.l_meets, ev.l_lo, ev.l_hi), (ev.r_meets, ev.r_lo, ev.r_hi)):
        earliest = np.where(sel, np.minimum(earliest, lo_v), earliest)
        latest = np.where(sel, np.maximum(latest, hi_v), latest)
    ev.earliest, ev.latest = earliest, latest

    possible = ev.by_acc | ev.by_jump | ev.by_prism | ev.by_path | ev.l_meets | ev.r_meets
    no_data = (ev.in_count == 0) & ~ev.bracketed
    verdict = np.full(n, NOT_PRESENT, dtype=np.int64)
    verdict[possible] = POSSIBLE
    verdict[no_data] = NO_DATA
    verdict[ev.present] = PRESENT
    ev.verdict = verdict
    return ev


def candidates(ev: Evaluation) -> np.ndarray:
    """The subjects whose verdict is present or possible."""
    return np.flatnonzero(ev.verdict <= POSSIBLE)
