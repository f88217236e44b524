"""Crime mapping verdicts (spec §5) on tracks laid out in metres around a place: present,
possible (accuracy, track segment, reachable gap, single-fix jump), not present (continuous, or
a gap too far away to matter), no data; closest approach; attribution through assignments."""
from __future__ import annotations

import pytest

from localdb.store import Store
from monitorapp.crime.query import CrimeQueryError, crime_check
from monitorapp.feed.timeutil import fmt_time
from monitorapp.crime.trail import trail
from tests.fixtures_store import PLACE_LAT, PLACE_LON, T0, TrackWriter

R = 200.0
W0, W1 = T0, T0 + 7200.0          # the window: two hours
BEFORE, AFTER = W0 - 900.0, W1 + 900.0


def stationary(tw, device, dx, dy, acc=10.0, t0=BEFORE, t1=AFTER, step=60.0):
    tw.line(device, t0, t1, step, (dx, dy), (dx, dy), acc)


def query(store, **kw):
    args = dict(lat=PLACE_LAT, lon=PLACE_LON, radius_m=R, t_from=W0, t_to=W1, ref="CAD-4411",
                reason="burglary at the jeweller's", who="dc.smith")
    args.update(kw)
    out = crime_check(store, **args)
    return {r["device"]: r for r in out["results"]}, out


@pytest.fixture
def scene(store):
    tw = TrackWriter(store)
    # walks straight past the place, 50 m off, reaching it at the middle of the window
    tw.line("TAG-PASS", W0, W1, 60.0, (-3000.0, 50.0), (3000.0, 50.0))
    # parked 260 m away with 80 m accuracy: possible, not present
    stationary(tw, "TAG-ACC", 0.0, 260.0, acc=80.0)
    # fixes 240 s apart either side of the place: the straight track passes 100 m from it
    stationary(tw, "TAG-SEG", -1000.0, 100.0, t1=W0 + 960.0)
    stationary(tw, "TAG-SEG", 1000.0, 100.0, t0=W0 + 1200.0)
    # 2 km away, then silent for an hour inside the window: could have got there
    stationary(tw, "TAG-GAP", 2000.0, 0.0, t1=W0 + 1800.0)
    stationary(tw, "TAG-GAP", 2000.0, 0.0, t0=W0 + 5400.0)
    # 60 km away with the same gap: could not have got there at 15 m/s
    stationary(tw, "TAG-FAR", 60000.0, 0.0, t1=W0 + 1800.0)
    stationary(tw, "TAG-FAR", 60000.0, 0.0, t0=W0 + 5400.0)
    # 1.5 km away all the time
    stationary(tw, "TAG-AWAY", 1500.0, 0.0)
    # 1.5 km away, one multipath fix lands on the place and the next is back
    stationary(tw, "TAG-JUMP", 1500.0, 0.0, t1=W0 + 3540.0)
    tw.fix("TAG-JUMP", W0 + 3600.0, 10.0, 0.0)
    stationary(tw, "TAG-JUMP", 1500.0, 0.0, t0=W0 + 3660.0)
    # seen only the day before: its data does not touch the window
    stationary(tw, "TAG-OLD", 0.0, 0.0, t0=W0 - 86400.0, t1=W0 - 80000.0)
    store.flush()
    return store


def test_verdicts(scene):
    res, out = query(scene)
    verdicts = {d: r["verdict"] for d, r in res.items()}
    assert verdicts == {
        "TAG-PASS": "present", "TAG-ACC": "possible", "TAG-SEG": "possible",
        "TAG-GAP": "possible", "TAG-FAR": "not_present", "TAG-AWAY": "not_present",
        "TAG-JUMP": "possible"}
    order = [r["verdict"] for r in out["results"]]
    assert order == sorted(order, key=["present", "possible", "not_present", "no_data"].index)


def test_present_reports_closest_approach_and_the_fixes_near(scene):
    res, _ = query(scene)
    r = res["TAG-PASS"]
    assert r["closest_m"] == pytest.approx(50.0, abs=0.5)
    assert r["closest_at"] == fmt_time(W0 + 3600.0)
    inside = [f for f in r["fixes"] if f["inside"]]
    assert inside and all(f["distance_m"] <= R and f["in_window"] for f in inside)
    assert min(f["distance_m"] for f in r["fixes"]) == pytest.approx(50.0, abs=0.5)
    assert all(f["acc"] == 10.0 for f in r["fixes"])


def test_segment_interpolation_gives_the_time_of_closest_approach(scene):
    res, _ = query(scene)
    r = res["TAG-SEG"]
    assert r["closest_m"] == pytest.approx(100.0, abs=0.5)
    assert r["closest_at"] == fmt_time(W0 + 1080.0)
    assert not any(f["inside"] for f in r["fixes"])
    assert r["segments"] and r["segments"][0]["closest_m"] == pytest.approx(100.0, abs=0.5)


def test_gaps(scene):
    res, _ = query(scene)
    [gap] = res["TAG-GAP"]["gaps"]
    assert gap["reachable"] and gap["seconds"] == 3600.0
    assert gap["last_seen"] == fmt_time(W0 + 1800.0)
    [far] = res["TAG-FAR"]["gaps"]
    assert not far["reachable"]
    assert "too far" in " ".join(res["TAG-FAR"]["basis"])
    assert res["TAG-AWAY"]["gaps"] == []
    assert res["TAG-AWAY"]["closest_m"] == pytest.approx(1500.0, abs=0.5)


def test_single_fix_jump_is_not_presence(scene):
    res, _ = query(scene)
    r = res["TAG-JUMP"]
    assert r["verdict"] != "present"
    [jump] = [f for f in r["fixes"] if f["jump"]]
    assert jump["distance_m"] == pytest.approx(10.0, abs=0.5)
    assert r["closest_m"] == pytest.approx(1500.0, abs=1.0)   # the jump is not the closest approach
    fixes = trail(scene, "TAG-JUMP", W0 + 3500, W0 + 3700)
    assert [f["jump"] for f in fixes] == [False, True, False]


def test_a_small_real_detour_is_not_a_jump(store):
    """Two fixes in a row at the place are a visit, not a multipath jump."""
    tw = TrackWriter(store)
    stationary(tw, "TAG-V", 1500.0, 0.0, t1=W0 + 3540.0)
    tw.fix("TAG-V", W0 + 3600.0, 10.0, 0.0)
    tw.fix("TAG-V", W0 + 3660.0, 20.0, 0.0)
    stationary(tw, "TAG-V", 1500.0, 0.0, t0=W0 + 3720.0)
    store.flush()
    res, _ = query(store)
    assert res["TAG-V"]["verdict"] == "present"


def test_no_data_for_an_assigned_offender_without_fixes(scene):
    scene.record_caseload({"version": 1, "tz": "Europe/London",
                           "zones": {"type": "FeatureCollection", "features": []},
                           "offenders": [{"id": "OFF-9", "name": "Nine", "risk": "low",
                                          "borough": "Camden", "device": "TAG-NINE",
                                          "requirements": []}]})
    res, _ = query(scene)
    assert res["TAG-NINE"]["verdict"] == "no_data" and res["TAG-NINE"]["offender"] == "OFF-9"
    assert res["TAG-NINE"]["closest_m"] is None
    assert "TAG-OLD" not in res


def test_fixes_are_attributed_to_who_wore_the_tag(store_path):
    clock_t = [W0 - 86400.0]
    with Store(store_path, clock=lambda: clock_t[0]) as s:
        doc = {"version": 1, "tz": "Europe/London",
               "zones": {"type": "FeatureCollection", "features": []},
               "offenders": [{"id": "OFF-A", "device": "TAG-X", "requirements": []},
                             {"id": "OFF-B", "device": "TAG-Y", "requirements": []}]}
        s.record_caseload(doc)
        tw = TrackWriter(s)
        stationary(tw, "TAG-X", 1500.0, 0.0, t1=W0 + 3600.0)      # A wears it, far away
        stationary(tw, "TAG-X", 0.0, 0.0, t0=W0 + 3660.0)         # B wears it, at the place
        clock_t[0] = W0 + 3630.0                                   # the tags are swapped
        doc["offenders"][0]["device"], doc["offenders"][1]["device"] = "TAG-Y", "TAG-X"
        s.record_caseload(doc)
        s.flush()
        res = {(r["offender"], r["device"]): r["verdict"]
               for r in crime_check(s, PLACE_LAT, PLACE_LON, R, W0, W1, "ref", "why", "me")["results"]}
        assert res[("OFF-A", "TAG-X")] != "present"
        assert res[("OFF-B", "TAG-X")] == "present"
        assert {f["offender"] for f in trail(s, "OFF-A", W0, W1)} == {"OFF-A"}
        assert max(f["t"] for f in trail(s, "OFF-A", W0, W1)) <= W0 + 3630.0


def test_each_query_is_audited(scene):
    _, out = query(scene)
    [rec] = [r for r in scene.audit_log() if r["action"] == "crime_query"]
    assert rec["who"] == "dc.smith"
    d = rec["detail"]
    assert d["ref"] == "CAD-4411" and d["reason"] == "burglary at the jeweller's"
    assert d["results"] == len(out["results"]) == 7
    assert d["radius_m"] == R and d["from"] == fmt_time(W0) and d["to"] == fmt_time(W1)
    assert d["verdicts"]["present"] == 1


@pytest.mark.parametrize("kw, message", [
    ({"ref": ""}, "reference"), ({"reason": "  "}, "reason"), ({"who": ""}, "who"),
    ({"radius_m": 0}, "radius"), ({"lat": 91.0}, "lat"), ({"t_to": W0 - 1}, "end after"),
    ({"t_from": "yesterday"}, "from"), ({"radius_m": float("nan")}, "radius"),
])
def test_bad_queries_are_refused_and_not_audited(scene, kw, message):
    with pytest.raises(CrimeQueryError, match=message):
        query(scene, **kw)
    assert not [r for r in scene.audit_log() if r["action"] == "crime_query"]


def test_trail_is_time_ordered(scene):
    fixes = trail(scene, "TAG-PASS", W0, W0 + 600)
    assert [f["t"] for f in fixes] == [W0 + 60.0 * k for k in range(11)]
    assert all(f["device"] == "TAG-PASS" and f["offender"] is None for f in fixes)
    assert trail(scene, "TAG-NOBODY", W0, W1) == []
