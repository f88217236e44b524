"""An alert's context from the record's fixes (issue 21, ``monitorapp.response.context``): a
signal-lost alert's last known position and when the signal came back; an exclusion breach's
entry, exit, time inside and greatest depth against the zone version that decided it (not the
zone as edited since); a curfew absence; an appointment's nearest approach. Real SQLite store,
fixes written through it; Qt-free."""
from __future__ import annotations

import math

import pytest

from localdb.store import Store
from monitorapp.engine.alerts import Alert, alert_id
from monitorapp.response.context import alert_context, lines, record_inputs
from tests.fixtures_store import T0
from tests.fixtures_clock import Clock

LAT0, LON0 = 51.5400, -0.1400
M_PER_DEG_LAT = 111_200.0


def north(m: float) -> float:
    return LAT0 + m / M_PER_DEG_LAT


def circle(zid, radius, version=None):
    return {"type": "Feature", "id": zid, "properties": {"name": zid, "radius_m": radius},
            "geometry": {"type": "Point", "coordinates": [LON0, LAT0]}}


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s.sqlite", clock=Clock(T0), anchor=False)
    s.record_caseload({"version": 1, "tz": "Europe/London",
                       "zones": {"type": "FeatureCollection", "features": [circle("Z-1", 100.0)]},
                       "offenders": [{"id": "OFF-1", "name": "A", "risk": "high", "borough": "Camden",
                                      "device": "TAG-1", "requirements": []}]})
    yield s
    s.close()


def write_fixes(store, points):
    """Fixes of TAG-1 through the store's writer: [(t, metres north of the zone's centre, acc)]."""
    from monitorapp.feed.messages import Fix
    for i, (t, m, acc) in enumerate(points):
        store.on_fix(Fix(device="TAG-1", seq=i, t=t, rx=t + 1, lat=north(m), lon=LON0, acc=acc,
                         src="gps"), True)
    store.flush()


def alert(type_, start, zone="Z-1", version=1):
    a = Alert(alert_id(type_, "OFF-1", "R-1", start), type_, "critical", "OFF-1", "TAG-1", "R-1",
              zone, start, start + 60, zone_version=version)
    return {**a.to_record(), "start": start, "raised_at": start + 60, "zone_version": version,
            "device": "TAG-1"}


def test_exclusion_entry_exit_time_inside_and_depth_from_the_version_in_force(store):
    write_fixes(store, [(T0 + k * 60, m, 8.0) for k, m in
                        enumerate([400, 250, 60, 20, -30, 10, 150, 300])])   # in at +180, out at +360
    store.record_zone_edit(circle("Z-1", 1000.0), "op", base_version=1)       # edited later: v2
    a = alert("exclusion_entered", T0 + 180)
    fixes, zone = record_inputs(store, a)
    assert zone["properties"]["radius_m"] == 100.0          # version 1 decided it, not the edit
    ctx = alert_context(a, fixes, zone, now=T0 + 3600)
    assert ctx["entered_at"] == T0 + 180 and ctx["left_at"] == T0 + 360
    assert ctx["inside_s"] == 180
    assert ctx["deepest_m"] == pytest.approx(90.0, abs=2.0)   # 10 m from the centre of 100 m
    text = lines(ctx, lambda t: f"+{t - T0:.0f}s")
    assert text[0] == "Entered +180s; left +360s" and "greatest depth 90 m" in text[1]


def test_signal_lost_shows_the_last_known_position_and_when_it_came_back(store):
    write_fixes(store, [(T0, 500, 12.0), (T0 + 60, 520, 15.0), (T0 + 1800, 900, 9.0)])
    a = alert("signal_lost", T0 + 60, zone=None)
    ctx = alert_context(a, *record_inputs(store, a), now=T0 + 7200)
    assert ctx["last"]["t"] == T0 + 60 and ctx["last"]["acc"] == 15.0
    assert math.isclose(ctx["last"]["lat"], north(520), abs_tol=1e-7)
    assert ctx["back_at"] == T0 + 1800 and ctx["age_s"] == 1740
    assert lines(ctx, str)[1].startswith("Signal back at")


def test_curfew_absence_and_appointment_nearest_approach(store):
    write_fixes(store, [(T0, 0, 8.0), (T0 + 60, 150, 8.0), (T0 + 120, 400, 8.0), (T0 + 180, 180, 8.0),
                        (T0 + 240, 50, 8.0)])
    a = alert("curfew_absent", T0 + 60)
    ctx = alert_context(a, *record_inputs(store, a), now=T0 + 600)
    assert (ctx["left_at"], ctx["back_at"], ctx["outside_s"]) == (T0 + 60, T0 + 240, 180)
    assert ctx["farthest_m"] == pytest.approx(300.0, abs=3.0)
    b = alert("appointment_missed", T0)
    b["evidence"] = {"window_start": T0 + 30, "window_end": T0 + 200}
    ctx = alert_context(b, *record_inputs(store, b), now=T0 + 600)
    assert ctx["nearest_at"] == T0 + 60 and ctx["nearest_m"] == pytest.approx(50.0, abs=3.0)
