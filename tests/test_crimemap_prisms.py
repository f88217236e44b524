"""Crime mapping's space-time prisms (spec v2 §5, issue 19), on the cases the issue found wrong:
a runner at 30-s fixes passing 43.6 m from a 50 m scene (was not_present: the straight
segments miss the radius, the prisms do not), a 107-minute gap with fixes at the house on
both sides (was no_data in the middle of the gap, flipping as the window moved), a place
abroad (was measured on the British National Grid: 300 m near Beijing read 406 m); and what
the new verdicts say about gaps, open sides, the 24-hour bracket, the speed bound."""
from __future__ import annotations

import math

import pyproj
import pytest

from localdb.store import Store
from monitorapp.crime.query import CrimeQueryError, crime_check
from monitorapp.feed.messages import Fix
from monitorapp.feed.timeutil import fmt_time, parse_time
from tests.fixtures_store import PLACE_LAT, PLACE_LON, T0, TrackWriter

H = 3600.0


def check(store, radius, t0, t1, **kw):
    out = crime_check(store, PLACE_LAT, PLACE_LON, radius, t0, t1, "CAD-19", "issue 19", "dc.jones", **kw)
    return {r["device"]: r for r in out["results"]}, out


def test_a_runner_passing_43_m_from_a_50_m_scene_is_possible(store):
    """True path: a straight street 43.6 m from the scene at 3.5 m/s. The fixes (every 30 s)
    sit 20 m out with 12 m accuracy, so the straight track between them passes 63.6 m from the
    scene, more than the radius plus the accuracy: only the prism sees it."""
    tw = TrackWriter(store)
    for k in range(-20, 21):
        t = T0 + 30.0 * k + 15.0
        tw.fix("TAG-RUN", t, 3.5 * (t - T0), 63.6, acc=12.0)
    store.flush()
    res, _ = check(store, 50.0, T0 - 300, T0 + 300)
    r = res["TAG-RUN"]
    assert r["verdict"] == "possible"
    assert "prism" in " ".join(r["basis"]) and r["reason"]
    assert not any(f["inside"] for f in r["fixes"])
    # the true passage (at T0) lies between the earliest and the latest time given
    assert parse_time(r["earliest"]) <= T0 <= parse_time(r["latest"])
    [p, *_] = r["prisms"]
    assert p["kind"] == "prism" and p["a"]["t"] < p["to"] and p["reach_m_at_mid"]["a"] > 0


@pytest.mark.parametrize("offset", [0, 600, 1800, 3000, 4800, 6000])
def test_a_107_minute_gap_at_the_house_is_possible_wherever_the_window_is(store, offset):
    """Fixes at the house (20 m from it) before and after 107 minutes without any: every
    10-minute window inside the gap is possible, none no_data, none flips."""
    tw = TrackWriter(store)
    tw.line("TAG-HOME", T0 - H, T0, 60.0, (800.0, 0.0), (20.0, 5.0))
    gap_end = T0 + 107 * 60.0
    tw.line("TAG-HOME", gap_end, gap_end + H, 60.0, (20.0, 5.0), (900.0, 0.0))
    store.flush()
    t0 = T0 + offset + 1.0                 # strictly inside the gap
    res, _ = check(store, 30.0, t0, min(t0 + 600.0, gap_end - 1.0))
    r = res["TAG-HOME"]
    assert r["verdict"] == "possible", r["reason"]
    assert "107 minutes" in r["reason"]
    assert r["last_before"]["t"] == fmt_time(T0) and r["first_after"]["t"] == fmt_time(gap_end)
    assert r["earliest"] == fmt_time(t0)
    [gap] = r["gaps"]
    assert gap["reachable"] and gap["last_seen"] == fmt_time(T0)


def test_a_place_abroad_is_measured_in_a_local_projection(tmp_path):
    """Near Beijing: a fix 300 m (geodesic) from the place is 300 m, within 1 %, not the
    British National Grid's 406 m; a 350 m radius holds it."""
    geod = pyproj.Geod(ellps="WGS84")
    lat0, lon0 = 39.9042, 116.4074
    with Store(tmp_path / "abroad.sqlite") as store:
        for k in range(31):
            lon, lat, _ = geod.fwd(lon0, lat0, 90.0, 300.0)
            lon, lat, _ = geod.fwd(lon, lat, 0.0, -150.0 + 10.0 * k)
            store.on_fix(Fix("TAG-BJ", k + 1, T0 + 60.0 * k, T0 + 60.0 * k + 1, lat, lon, 5.0, "gps"), True)
        store.flush()
        out = crime_check(store, lat0, lon0, 350.0, T0, T0 + 1800.0, "BJ-1", "abroad", "dc.li")
    [r] = out["results"]
    assert out["query"]["projection"].startswith("local transverse Mercator")
    true = min(geod.inv(lon0, lat0, f["lon"], f["lat"])[2] for f in r["fixes"] if f["in_window"])
    assert true == pytest.approx(300.0, abs=0.5)
    assert r["closest_m"] == pytest.approx(true, rel=0.01)
    for f in r["fixes"]:
        assert f["distance_m"] == pytest.approx(geod.inv(lon0, lat0, f["lon"], f["lat"])[2], rel=0.01)
    assert r["verdict"] == "present"


def test_the_place_in_great_britain_uses_the_grid(store):
    TrackWriter(store).fix("TAG-GB", T0 + 10.0, 30.0, 40.0)
    store.flush()
    res, out = check(store, 100.0, T0, T0 + 60.0)
    assert out["query"]["projection"] == "EPSG:27700 (British National Grid)"
    assert out["query"]["speed_ms"] == 15.0
    assert res["TAG-GB"]["closest_m"] == pytest.approx(50.0, abs=0.1)


def test_no_data_only_when_nothing_brackets_the_window_within_24_hours(store):
    tw = TrackWriter(store)
    # 30 hours without a fix around the window: nothing bounds the person
    tw.fix("TAG-30H", T0 - 10 * H, 0.0, 0.0)
    tw.fix("TAG-30H", T0 + 20 * H, 0.0, 0.0)
    # 20 hours: bounded (loosely) -- possible, not no_data
    tw.fix("TAG-20H", T0 - 10 * H, 500.0, 0.0)
    tw.fix("TAG-20H", T0 + 10 * H, 500.0, 0.0)
    store.flush()
    res, _ = check(store, 100.0, T0, T0 + 600.0)
    a, b = res["TAG-30H"], res["TAG-20H"]
    assert a["verdict"] == "no_data" and a["earliest"] is None
    assert a["last_before"]["t"] == fmt_time(T0 - 10 * H) and a["first_after"]["t"] == fmt_time(T0 + 20 * H)
    assert "24 hours" in a["reason"]
    assert b["verdict"] == "possible" and b["earliest"] == fmt_time(T0)


def test_open_sides_and_the_speed_bound(store):
    tw = TrackWriter(store)
    # the data starts 5 minutes into the window, 6 km away: at 15 m/s it could have come from
    # the place (4.5 km in 300 s is not enough: 6 km is not) -- from 3 km it could
    tw.line("TAG-LATE-FAR", T0 + 300.0, T0 + 1200.0, 60.0, (6000.0, 0.0), (6000.0, 0.0))
    tw.line("TAG-LATE-NEAR", T0 + 300.0, T0 + 1200.0, 60.0, (3000.0, 0.0), (3000.0, 0.0))
    # and the data that stops 5 minutes before the window's end, 3 km away
    tw.line("TAG-EARLY-NEAR", T0 - 600.0, T0 + 900.0, 60.0, (3000.0, 0.0), (3000.0, 0.0))
    store.flush()
    res, _ = check(store, 100.0, T0, T0 + 1200.0)
    assert res["TAG-LATE-FAR"]["verdict"] == "not_present"
    r = res["TAG-LATE-NEAR"]
    assert r["verdict"] == "possible" and r["earliest"] == fmt_time(T0)
    assert parse_time(r["latest"]) == pytest.approx(T0 + 300.0 - (3000.0 - 10.0 - 100.0) / 15.0, abs=0.01)
    assert r["prisms"][0]["kind"] == "open" and r["prisms"][0]["a"] is None
    e = res["TAG-EARLY-NEAR"]
    assert e["verdict"] == "possible" and e["latest"] == fmt_time(T0 + 1200.0)
    assert e["first_after"] is None and "no fix after" in " ".join(e["basis"])
    # at 5 m/s the 3 km tag could not have got there in 5 minutes
    res, out = check(store, 100.0, T0, T0 + 1200.0, speed_ms=5.0)
    assert res["TAG-LATE-NEAR"]["verdict"] == "not_present" and out["query"]["speed_ms"] == 5.0
    with pytest.raises(CrimeQueryError, match="speed"):
        check(store, 100.0, T0, T0 + 60.0, speed_ms=0.0)


def test_a_pair_faster_than_the_speed_bound_is_caught_by_its_path(store):
    """Two fixes 2 km apart 60 s apart (a train): the prism at 15 m/s is empty, but the
    straight path between them crosses the place, so it is possible, never not_present."""
    tw = TrackWriter(store)
    tw.fix("TAG-TRAIN", T0 + 100.0, -1000.0, 0.0)
    tw.fix("TAG-TRAIN", T0 + 160.0, 1000.0, 0.0)
    store.flush()
    res, _ = check(store, 50.0, T0, T0 + 600.0)
    r = res["TAG-TRAIN"]
    assert r["verdict"] == "possible"
    assert "straight track" in r["reason"]
    assert math.isclose(parse_time(r["earliest"]), T0, abs_tol=1e-3)


def test_not_present_says_why(store):
    tw = TrackWriter(store)
    tw.line("TAG-AWAY", T0 - 600.0, T0 + 1800.0, 30.0, (2000.0, 0.0), (2000.0, 100.0))
    store.flush()
    res, _ = check(store, 100.0, T0, T0 + 1200.0)
    r = res["TAG-AWAY"]
    assert r["verdict"] == "not_present" and r["earliest"] is None and r["prisms"] == []
    assert "15 m/s" in r["reason"] and "2000 m" in r["reason"]
