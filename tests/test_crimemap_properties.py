"""Properties of crime-mapping verdicts over random tracks (hypothesis): whatever the track,
the verdict agrees with the fixes it reports and the closest approach is never farther than
the nearest fix in the window."""
from __future__ import annotations

import itertools
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdb.store import Store
from monitorapp.crime.query import crime_check
from monitorapp.crime.trail import trail
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
    around = [w for w in written if W0 - 600 <= w[0] <= W1 + 600]
    if not around:
        assert res is None or res["verdict"] == "no_data"
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
