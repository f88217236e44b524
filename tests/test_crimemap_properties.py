"""Properties of crime-mapping verdicts over random tracks (hypothesis): whatever the track,
the verdict agrees with the fixes it reports and the closest approach is never farther than
the nearest fix in the window; and, against generated true paths sampled with noise and gaps,
that the verdict is never not_present when the truth passes inside the radius (issue 19)."""
from __future__ import annotations

import itertools
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdb.store import Store
from monitorapp.crime.query import crime_check
from monitorapp.crime.trail import trail
from monitorapp.feed.timeutil import parse_time
from tests.fixtures_store import PLACE_LAT, PLACE_LON, T0, TrackWriter

R = 300.0
W0, W1 = T0, T0 + 3600.0
_count = itertools.count()

step = st.tuples(st.floats(20.0, 900.0),                       # seconds to the next fix
                 st.floats(-2500.0, 2500.0), st.floats(-2500.0, 2500.0),   # where
                 st.floats(3.0, 150.0))                         # accuracy
tracks = st.lists(step, min_size=1, max_size=60)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(track=tracks, start=st.floats(-1500.0, 1500.0))
def test_verdict_agrees_with_the_evidence(tmp_path, track, start):
    device = f"TAG-P{next(_count)}"
    with Store(tmp_path / "props.sqlite") as store:
        tw = TrackWriter(store)
        t = W0 + start
        written = []
        for dt, dx, dy, acc in track:
            t += dt
            tw.fix(device, t, dx, dy, acc)
            written.append((t, math.hypot(dx, dy), acc))
        store.flush()
        out = crime_check(store, PLACE_LAT, PLACE_LON, R, W0, W1, "P-1", "property", "hyp")
        jumps = {f["t"] for f in trail(store, device, W0 - 600, W1 + 600) if f["jump"]}
    [res] = [r for r in out["results"] if r["device"] == device] or [None]
    # a tag nobody wore is a subject when its data's span touches the window
    if written[-1][0] < W0 or written[0][0] > W1:
        assert res is None
        return
    assert res is not None
    inside = [f for f in res["fixes"] if f["in_window"] and f["inside"] and not f["jump"]]
    if res["verdict"] == "present":
        assert inside and res["closest_m"] <= R + 0.05
    else:
        assert not inside
    if res["verdict"] == "not_present":
        assert not any(g["reachable"] for g in res["gaps"])
        assert not [f for f in res["fixes"]
                    if f["in_window"] and not f["jump"] and f["distance_m"] <= R + f["acc"] - 0.05]
        assert all(s["closest_m"] > R - 0.05 for s in res["segments"])
    in_window = [d for (tt, d, _) in written if W0 <= tt <= W1 and tt not in jumps]
    if in_window:        # closest_m is rounded to 0.1 m: half of that, and a float's width
        assert res["closest_m"] <= min(in_window) + 0.05 + 1e-9


# ---- against the truth (issue 19): true paths at most 15 m/s, sampled with noise within the
# stated accuracy and with gaps; the verdict is never not_present when the true path passes
# inside the radius in the window, and present only with a fix inside.

leg = st.tuples(st.floats(10.0, 600.0),                         # seconds of this leg: turns between fixes
                st.floats(0.0, 14.9), st.floats(0.0, 2 * math.pi))   # speed, heading
sample = st.tuples(st.floats(5.0, 400.0), st.booleans(),         # to the next fix; a gap after it
                   st.floats(600.0, 5400.0),                     # the gap's length
                   st.floats(3.0, 60.0), st.floats(0.0, 0.99), st.floats(0.0, 2 * math.pi))


def _true_path(visit, tv, back, ahead):
    """Waypoints (t, x, y) of a piecewise-straight path no faster than 14.9 m/s through
    ``visit`` at time ``tv``: the legs ``back`` before it, ``ahead`` after it."""
    t, x, y = tv, visit[0], visit[1]
    pts = [(t, x, y)]
    for dur, v, h in back:
        t, x, y = t - dur, x - v * dur * math.cos(h), y - v * dur * math.sin(h)
        pts.insert(0, (t, x, y))
    t, x, y = tv, visit[0], visit[1]
    for dur, v, h in ahead:
        t, x, y = t + dur, x + v * dur * math.cos(h), y + v * dur * math.sin(h)
        pts.append((t, x, y))
    return pts


def _at(pts, t):
    for (t0, x0, y0), (t1, x1, y1) in zip(pts, pts[1:]):
        if t0 <= t <= t1:
            f = (t - t0) / (t1 - t0)
            return x0 + f * (x1 - x0), y0 + f * (y1 - y0)
    return None


def _true_min_in_window(pts, tf, tt):
    """The true path's closest approach to the place (0, 0) during [tf, tt]."""
    best = math.inf
    for (t0, x0, y0), (t1, x1, y1) in zip(pts, pts[1:]):
        a, b = max(t0, tf), min(t1, tt)
        if a > b:
            continue
        pa, pb = _at([(t0, x0, y0), (t1, x1, y1)], a), _at([(t0, x0, y0), (t1, x1, y1)], b)
        dx, dy = pb[0] - pa[0], pb[1] - pa[1]
        ll = dx * dx + dy * dy
        u = 0.0 if ll == 0 else min(1.0, max(0.0, -(pa[0] * dx + pa[1] * dy) / ll))
        best = min(best, math.hypot(pa[0] + u * dx, pa[1] + u * dy))
    return best


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(visit=st.tuples(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5)), when=st.floats(0.0, 1.0),
       back=st.lists(leg, min_size=1, max_size=30), ahead=st.lists(leg, min_size=1, max_size=30),
       samples=st.lists(sample, min_size=1, max_size=80),
       radius=st.floats(20.0, 400.0), window=st.floats(60.0, 7200.0))
def test_never_not_present_when_the_true_path_passes_inside(tmp_path, visit, when, back, ahead, samples,
                                                            radius, window):
    pts = _true_path((visit[0] * radius, visit[1] * radius), W0 + when * window, back, ahead)
    device = f"TAG-T{next(_count)}"
    tf, tt = W0, W0 + window
    with Store(tmp_path / "truth.sqlite") as store:
        tw = TrackWriter(store)
        t = pts[0][0]
        for dt, gap, gap_s, acc, e, h in samples:
            t += dt
            p = _at(pts, t)
            if p is None:
                break                       # past the path's end
            # the fix is off the truth by less than its accuracy
            tw.fix(device, t, p[0] + e * acc * math.cos(h), p[1] + e * acc * math.sin(h), acc)
            if gap:
                t += gap_s
        store.flush()
        out = crime_check(store, PLACE_LAT, PLACE_LON, radius, tf, tt, "T-1", "truth", "hyp")
    [res] = [r for r in out["results"] if r["device"] == device] or [None]
    if res is None:
        return                      # no fix touches the window's day: nothing to judge
    truth = _true_min_in_window(pts, tf, tt)
    if truth < radius - 0.01:
        assert res["verdict"] != "not_present", (truth, res["reason"])
    if res["verdict"] == "present":
        assert [f for f in res["fixes"] if f["in_window"] and f["inside"] and not f["jump"]]
    if res["verdict"] in ("present", "possible"):
        assert res["earliest"] is not None and res["reason"]
        assert tf - 1e-3 <= parse_time(res["earliest"]) <= parse_time(res["latest"]) <= tt + 1e-3
