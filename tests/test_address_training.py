"""Training shows streets: the showcase incidents (the training day's opening breach, the Camden
scenario, the flood's breaches) happen on named Camden streets, where the shipped basemap has
every street: the fixes of the breach read as "Camden High Street, Camden"."""
from __future__ import annotations

import json

import pytest
from shapely.geometry import Point, shape

from monitorapp.feed.timeutil import parse_time
from monitorapp.places import Places
from monitorapp.sim.scenarios import CAMDEN_STREETS, scenario
from ui.console.training import FIRST_BREACH_S, TrainingSession


@pytest.fixture(scope="module")
def places():
    return Places.shipped()


def breach_fixes(lines, breach) -> list[tuple[float, float]]:
    """(lon, lat) of the breach's tag's fixes between its start and end."""
    t0, t1 = parse_time(breach["start"]), parse_time(breach["end"])
    out = []
    for _rx, raw in lines:
        m = json.loads(raw)
        if m.get("kind") == "fix" and m.get("device") == breach["device"] and t0 <= parse_time(m["t"]) <= t1:
            out.append((m["lon"], m["lat"]))
    return out


def zone_of(doc: dict, zone_id: str) -> dict:
    return next(f for f in doc["zones"]["features"] if f["id"] == zone_id)


def test_camden_scenario_breach_is_on_camden_high_street(places):
    sc = scenario("exclusion_breach_camden")
    assert "Camden High Street" in sc.description
    lines, truth = sc.feed()
    lines = list(lines)
    [b] = [b for b in truth["breaches"] if b["type"] == "exclusion_entered"]
    off = next(o for o in sc.caseload["offenders"] if o["id"] == b["offender"])
    assert off["borough"] == "Camden"
    zone = shape(zone_of(sc.caseload, b["zone"])["geometry"])
    assert places.address(zone.centroid.x, zone.centroid.y).street == "Camden High Street"
    inside = [p for p in breach_fixes(lines, b) if zone.contains(Point(p))]
    assert len(inside) >= 3
    said = {str(a) for a in places.addresses([p[0] for p in inside], [p[1] for p in inside])}
    assert "Camden High Street, Camden" in said
    assert all(s.endswith(", Camden") for s in said)          # a street, and the borough


def test_flood_breaches_are_on_named_camden_streets(places):
    sc = scenario("alert_flood")
    _lines, truth = sc.feed()
    zones = {b["zone"] for b in truth["breaches"] if b["type"] == "exclusion_entered"}
    assert len(zones) == 3
    names = {n for n, *_ in CAMDEN_STREETS}
    on_streets = []
    for zid in sorted(zones):
        z = shape(zone_of(sc.caseload, zid)["geometry"])
        a = places.address(z.centroid.x, z.centroid.y)
        on_streets.append(a.borough == "Camden" and a.street in names)
    # the 40-offender caseload has two Camden offenders that fit; they come first
    assert sum(on_streets) >= 2, on_streets


def test_training_day_opens_with_a_breach_on_a_camden_street(places):
    session = TrainingSession(start=parse_time("2026-12-01T10:00:00Z"))
    first = min((b for b in session.simulator.truth["breaches"]), key=lambda b: parse_time(b["start"]))
    assert first["type"] == "exclusion_entered"
    assert parse_time(first["start"]) - session.start < FIRST_BREACH_S + 120
    off = next(o for o in session.doc["offenders"] if o["id"] == first["offender"])
    assert off["borough"] == "Camden"
    zone = shape(zone_of(session.doc, first["zone"])["geometry"])
    assert places.address(zone.centroid.x, zone.centroid.y).street == "Camden High Street"
    # the engine's caseload is the edited one: the zone it checks is the one on the street
    assert session.caseload.zones[first["zone"]].geometry == zone_of(session.doc, first["zone"])["geometry"]
    lines = session.simulator.step_until(parse_time(first["end"]))
    inside = [p for p in breach_fixes(lines, first) if zone.contains(Point(p))]
    said = [str(a) for a in places.addresses([p[0] for p in inside], [p[1] for p in inside])]
    # at its corner with Pratt Street: most fixes read as the high street
    assert said and max(set(said), key=said.count) == "Camden High Street, Camden"
