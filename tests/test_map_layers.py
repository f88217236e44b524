"""The map's live layers on the real page: batched markers, alert styling, clicks, zones drawn,
edited and deleted with Geoman, and the selected tag's trail."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from tests.fixtures_map import map_log_ignore, page_state, run_js, sample_markers, wait_state

pytestmark = map_log_ignore

SQUARE = [(51.560, -0.100), (51.560, -0.080), (51.550, -0.080), (51.550, -0.100)]


def test_markers_appear_for_every_device(map_view, qtbot):
    markers = sample_markers(40, {"TAG-0007": "critical", "TAG-0011": "medium"})
    with qtbot.waitSignal(map_view.jsTiming, timeout=10_000) as timing:
        map_view.update_markers(markers)
    assert timing.args[0] >= 0
    state = page_state(qtbot, map_view)
    assert state["markers"] == 40
    assert state["alerts"] == {"TAG-0007": "critical", "TAG-0011": "medium"}
    critical = run_js(qtbot, map_view, "EM.markerData('TAG-0007')")
    plain = run_js(qtbot, map_view, "EM.markerData('TAG-0001')")
    # Colour is always backed by a shape, a ring and a text label.
    assert critical["shape"] == "triangle" and critical["ring"] is True
    assert "CRITICAL" in critical["tooltip"] and "Offender 7" in critical["tooltip"]
    assert plain["shape"] == "circle" and plain["ring"] is False and plain["priority"] is None
    assert critical["fillColor"] != plain["fillColor"]
    assert map_view.js_errors == []


def test_the_page_hands_back_the_stamps_of_the_rows_it_drew_and_only_those(map_view, qtbot):
    markers = sample_markers(3)
    map_view.update_markers(markers)
    map_view.flush_markers()
    wait_state(qtbot, map_view, lambda s: s["markers"] == 3)
    moved = dict(markers[0], lat=markers[0]["lat"] + 0.001)
    # TAG-0000 moves; TAG-0001's new data shows nothing new (its row is what the page shows)
    map_view.note_stamps({moved["device"]: 1000.5, markers[1]["device"]: 2000.25})
    map_view.update_markers([moved, markers[1]])
    with qtbot.waitSignal(map_view.stampsDrawn, timeout=10_000) as drawn:
        assert map_view.flush_markers() == 1
    assert drawn.args == [[1000.5]]
    assert run_js(qtbot, map_view, "EM.markerData('TAG-0000')")["lat"] == pytest.approx(moved["lat"])
    # the unchanged device's stamp went with that batch: a later move does not inherit it
    again = dict(markers[1], lat=markers[1]["lat"] + 0.002)
    seen = []
    map_view.stampsDrawn.connect(seen.append)
    with qtbot.waitSignal(map_view.jsTiming, timeout=10_000):
        map_view.update_markers([again])
        map_view.flush_markers()
    assert seen == []


def test_only_changed_markers_are_sent_and_updates_coalesce(map_view, qtbot):
    markers = sample_markers(30)
    map_view.update_markers(markers)
    assert map_view.flush_markers() == 30
    wait_state(qtbot, map_view, lambda s: s["markers"] == 30)
    map_view.update_markers(markers)                # nothing changed: nothing to send
    assert map_view.flush_markers() == 0
    moved = dict(markers[4], lat=markers[4]["lat"] + 0.001)
    for step in range(5):                           # five updates inside one throttle window
        map_view.update_markers([dict(moved, lat=moved["lat"] + step * 1e-4)])
    assert map_view.flush_markers() == 1
    wait_state(qtbot, map_view, lambda s: s["batches"] >= 2)
    lat = run_js(qtbot, map_view, "EM.markerData('TAG-0004').lat")
    assert lat == pytest.approx(moved["lat"] + 4e-4)


def test_alert_raised_then_cleared_restyles_marker(map_view, qtbot):
    markers = sample_markers(5)
    map_view.update_markers(markers)
    map_view.flush_markers()
    map_view.update_markers([dict(markers[2], priority="high")])
    map_view.flush_markers()
    wait_state(qtbot, map_view, lambda s: s["alerts"] == {"TAG-0002": "high"})
    assert run_js(qtbot, map_view, "EM.markerData('TAG-0002').shape") == "diamond"
    map_view.update_markers([dict(markers[2], priority=None, stale=True)])
    map_view.flush_markers()
    wait_state(qtbot, map_view, lambda s: s["alerts"] == {})
    data = run_js(qtbot, map_view, "EM.markerData('TAG-0002')")
    assert data["ring"] is False and data["stale"] is True and "stale" in data["tooltip"]


def test_labels_are_passed_as_data_not_code(map_view, qtbot):
    label = "O'Brien \"Danny\" </script><b>x</b> \u00e9"
    map_view.update_markers([{"device": "T'1", "lat": 51.55, "lon": -0.1, "acc": 5, "label": label,
                              "priority": "low", "stale": False}])
    map_view.flush_markers()
    wait_state(qtbot, map_view, lambda s: s["markers"] == 1)
    data = run_js(qtbot, map_view, "EM.markerData(\"T'1\")")
    assert data["label"] == label
    shown = run_js(qtbot, map_view, "EM.layers.markers.get(\"T'1\").tip.getElement().textContent")
    assert label in shown
    assert page_state(qtbot, map_view)["errors"] == []


def test_marker_and_map_clicks_reach_python(map_view, qtbot):
    map_view.update_markers(sample_markers(3))
    map_view.flush_markers()
    wait_state(qtbot, map_view, lambda s: s["markers"] == 3)
    # Real mouse input on the tag's pixel: the canvas hit test finds the marker. Hovering shows
    # its label (one shared label for all plain tags); clicking reports the device.
    x, y = run_js(qtbot, map_view, "(function () { const p = EM.map.latLngToContainerPoint("
                  "EM.layers.markers.get('TAG-0002').layer.getLatLng()); return [p.x, p.y]; })()")
    target = map_view.view.focusProxy() or map_view.view
    at = QPoint(round(x), round(y))
    hover = "EM.layers.hoverTip._map ? EM.layers.hoverTip.getElement().textContent : ''"
    qtbot.mouseMove(target, at)
    qtbot.waitUntil(lambda: run_js(qtbot, map_view, hover) == "Offender 2", timeout=5000)
    with qtbot.waitSignal(map_view.markerClicked, timeout=5000) as clicked:
        qtbot.mouseClick(target, Qt.MouseButton.LeftButton, pos=at)
    assert clicked.args == ["TAG-0002"]
    with qtbot.waitSignal(map_view.mapClicked, timeout=5000) as where:
        map_view.run_js_for_test("EM.map.fire('click', {latlng: L.latLng(51.5432, -0.0911)})")
    assert where.args == [pytest.approx(51.5432), pytest.approx(-0.0911)]


def test_polygon_drawn_with_geoman_arrives_as_zone_drawn(map_view, qtbot):
    map_view.start_drawing("polygon")
    clicks = "".join(f"EM.map.fire('click', {{latlng: L.latLng({lat}, {lon})}});" for lat, lon in SQUARE)
    with qtbot.waitSignal(map_view.zoneDrawn, timeout=5000) as drawn:
        map_view.run_js_for_test(clicks + "EM.map.pm.Draw.Polygon._finishShape();")
    feature = drawn.args[0]
    assert feature["type"] == "Feature"
    assert feature["geometry"]["type"] == "Polygon"
    ring = feature["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    assert [(pytest.approx(lat), pytest.approx(lon)) for lon, lat in ring[:4]] == SQUARE
    assert feature["properties"]["shape"] == "polygon"
    assert page_state(qtbot, map_view)["drafts"] == 1


def test_rectangle_drawn_with_geoman_is_a_polygon(map_view, qtbot):
    map_view.start_drawing("rectangle")
    with qtbot.waitSignal(map_view.zoneDrawn, timeout=5000) as drawn:
        map_view.run_js_for_test(
            "EM.map.fire('click', {latlng: L.latLng(51.56, -0.10)});"
            "EM.map.fire('mousemove', {latlng: L.latLng(51.55, -0.08)});"
            "EM.map.fire('click', {latlng: L.latLng(51.55, -0.08)});")
    feature = drawn.args[0]
    assert feature["geometry"]["type"] == "Polygon"
    lons = sorted({round(c[0], 5) for c in feature["geometry"]["coordinates"][0]})
    lats = sorted({round(c[1], 5) for c in feature["geometry"]["coordinates"][0]})
    assert lons == [-0.1, -0.08] and lats == [51.55, 51.56]
    assert feature["properties"]["shape"] == "rectangle"


def test_circle_drawn_with_geoman_is_a_point_with_radius(map_view, qtbot):
    map_view.start_drawing("circle")
    with qtbot.waitSignal(map_view.zoneDrawn, timeout=5000) as drawn:
        map_view.run_js_for_test(
            "EM.map.fire('click', {latlng: L.latLng(51.55, -0.10)});"
            "EM.map.fire('mousemove', {latlng: L.latLng(51.55 + 400 / 111320, -0.10)});"
            "EM.map.fire('click', {latlng: L.latLng(51.55 + 400 / 111320, -0.10)});")
    feature = drawn.args[0]
    assert feature["geometry"] == {"type": "Point", "coordinates": [pytest.approx(-0.10), pytest.approx(51.55)]}
    assert feature["properties"]["radius_m"] == pytest.approx(400, rel=0.01)
    assert feature["properties"]["shape"] == "circle"


ZONES = [
    {"type": "Feature", "id": "Z-EX", "properties": {"kind": "exclusion", "name": "Victim's street"},
     "geometry": {"type": "Polygon", "coordinates": [[[-0.10, 51.56], [-0.08, 51.56], [-0.08, 51.55],
                                                      [-0.10, 51.55], [-0.10, 51.56]]]}},
    {"type": "Feature", "id": "Z-HOME", "properties": {"kind": "curfew", "name": "Home", "radius_m": 150},
     "geometry": {"type": "Point", "coordinates": [-0.05, 51.58]}},
]


def test_zones_show_with_kind_labels_from_street_level_in(map_view, qtbot):
    map_view.set_zones(ZONES)
    state = wait_state(qtbot, map_view, lambda s: len(s["zones"]) == 2)
    assert state["zones"] == {"Z-EX": "exclusion", "Z-HOME": "curfew"}
    query = "Array.from(document.querySelectorAll('.em-zone-label')).map(e => e.textContent)"
    # names from street level in; at borough zoom the zones show as outlines only (calm map)
    run_js(qtbot, map_view, "EM.map.setZoom(15, {animate: false}) && true")
    qtbot.waitUntil(lambda: len(run_js(qtbot, map_view, query)) == 2, timeout=5000)
    assert sorted(run_js(qtbot, map_view, query)) == ["CURFEW · Home", "EXCLUSION · Victim's street"]
    run_js(qtbot, map_view, "EM.map.setZoom(12, {animate: false}) && true")
    qtbot.waitUntil(lambda: run_js(qtbot, map_view, query) == [], timeout=5000)


def test_zones_are_grey_until_an_open_alert_colours_one(map_view, qtbot):
    map_view.set_zones(ZONES)
    wait_state(qtbot, map_view, lambda s: len(s["zones"]) == 2)
    ex = run_js(qtbot, map_view, "EM.zoneStyle('Z-EX')")
    home = run_js(qtbot, map_view, "EM.zoneStyle('Z-HOME')")
    # calm: both neutral and the same grey, told apart by the outline's dash pattern
    assert ex["color"] == home["color"] and ex["alarm"] is None and ex["weight"] < 2
    assert ex["dashArray"] and not home["dashArray"]
    map_view.set_zone_alarms({"Z-EX": "critical"})
    wait_state(qtbot, map_view, lambda s: s["zoneAlarms"] == {"Z-EX": "critical"})
    alarmed = run_js(qtbot, map_view, "EM.zoneStyle('Z-EX')")
    assert alarmed["color"] == run_js(qtbot, map_view, "EM.PRIORITY.critical.color")
    assert alarmed["weight"] > ex["weight"] and alarmed["fillOpacity"] > ex["fillOpacity"]
    assert alarmed["label"].startswith("CRITICAL · EXCLUSION")
    assert run_js(qtbot, map_view, "EM.zoneStyle('Z-HOME')")["color"] == home["color"]
    map_view.set_zones(ZONES)                        # a zone edit redraws: the alarm stays
    wait_state(qtbot, map_view, lambda s: len(s["zones"]) == 2)
    assert run_js(qtbot, map_view, "EM.zoneStyle('Z-EX')")["alarm"] == "critical"
    map_view.set_zone_alarms({})                     # the alert closed
    wait_state(qtbot, map_view, lambda s: s["zoneAlarms"] == {})
    assert run_js(qtbot, map_view, "EM.zoneStyle('Z-EX')") == ex
    with pytest.raises(ValueError, match="priority 'urgent'"):
        map_view.set_zone_alarms({"Z-EX": "urgent"})


def test_zone_edit_and_delete_reach_python(map_view, qtbot):
    map_view.set_zones(ZONES)
    wait_state(qtbot, map_view, lambda s: len(s["zones"]) == 2)
    map_view.enable_editing("Z-HOME")
    with qtbot.waitSignal(map_view.zoneEdited, timeout=5000) as edited:
        map_view.run_js_for_test("const l = EM.layers.zones.get('Z-HOME'); l.setRadius(220); l.fire('pm:edit', {layer: l});")
    feature = edited.args[0]
    assert feature["id"] == "Z-HOME" and feature["properties"]["kind"] == "curfew"
    assert feature["properties"]["name"] == "Home" and feature["properties"]["radius_m"] == 220
    assert feature["geometry"]["type"] == "Point"
    with qtbot.waitSignal(map_view.zoneDeleted, timeout=5000) as deleted:
        map_view.run_js_for_test("EM.map.pm.enableGlobalRemovalMode();"
                                 "EM.map.pm.removeLayer({target: EM.layers.zones.get('Z-EX')});"
                                 "EM.map.pm.disableGlobalRemovalMode();")
    assert deleted.args == ["Z-EX"]
    assert wait_state(qtbot, map_view, lambda s: "Z-EX" not in s["zones"])["zones"] == {"Z-HOME": "curfew"}


def test_selected_device_shows_accuracy_age_and_broken_trail(map_view, qtbot):
    map_view.update_markers([{"device": "TAG-9", "lat": 51.56, "lon": -0.07, "acc": 35, "label": "J. Doe",
                              "priority": None, "stale": False, "t": 10_000.0}])
    map_view.flush_markers()
    wait_state(qtbot, map_view, lambda s: s["markers"] == 1)
    t0 = 10_000.0 - 2000
    times = [t0, t0 + 60, t0 + 120, t0 + 400, t0 + 1200, t0 + 1260, t0 + 2000]
    trail = [{"lat": 51.55 + i * 0.001, "lon": -0.07, "t": t, "acc": 10} for i, t in enumerate(times)]
    map_view.select_device("TAG-9", trail, now=10_000.0 + 150)
    state = wait_state(qtbot, map_view, lambda s: s["selected"] == "TAG-9")
    # 120→400 s is a gap of 280 s (dashed); 400→1200 s is 800 s (broken); 1260→2000 s is 740 s (broken).
    assert state["trail"] == {"solid": 2, "dashed": 1, "points": 7}
    tip = run_js(qtbot, map_view, "document.querySelector('.em-selected-tip').textContent")
    assert "J. Doe" in tip and "last fix 2 min ago" in tip and "±35 m" in tip
    map_view.select_device(None)
    assert wait_state(qtbot, map_view, lambda s: s["selected"] is None)["selected"] is None


def test_pan_to_moves_the_map(map_view, qtbot):
    map_view.pan_to(51.6538, -0.0799, zoom=14)
    state = wait_state(qtbot, map_view, lambda s: s["zoom"] == 14)
    assert state["center"]["lat"] == pytest.approx(51.6538, abs=1e-3)
    assert state["center"]["lng"] == pytest.approx(-0.0799, abs=1e-3)


def test_labels_stay_on_the_map_near_its_edges(map_view, qtbot):
    map_view.pan_to(51.56, -0.07, zoom=13)
    wait_state(qtbot, map_view, lambda s: s["zoom"] == 13)
    b = run_js(qtbot, map_view, "(() => { const b = EM.map.getBounds(); "
                                "return [b.getWest(), b.getEast(), b.getCenter().lat]; })()")
    west, east, lat = b
    span = east - west
    near = {"TAG-E": west + 0.95 * span, "TAG-W": west + 0.05 * span, "TAG-C": west + 0.5 * span}
    map_view.update_markers([{"device": dev, "lat": lat, "lon": lon, "acc": 10, "label": dev,
                              "priority": "critical", "stale": False, "t": 10_000.0}
                             for dev, lon in near.items()])
    map_view.flush_markers()
    wait_state(qtbot, map_view, lambda s: len(s["alerts"]) == 3)
    side = {dev: run_js(qtbot, map_view, f"EM.markerData('{dev}').tipSide") for dev in near}
    # an alert's label goes right, except where that would run off the right edge
    assert side == {"TAG-E": "left", "TAG-W": "right", "TAG-C": "right"}
    # the selected tag's label goes left, except at the left edge, and never onto its alert label
    for dev, expected in (("TAG-C", "left"), ("TAG-E", "bottom"), ("TAG-W", "bottom")):
        map_view.select_device(dev, [], now=10_060.0)
        wait_state(qtbot, map_view, lambda s, dev=dev: s["selected"] == dev)
        assert run_js(qtbot, map_view, "EM.selectionLabel().side") == expected, dev
    assert "TAG-W" in run_js(qtbot, map_view, "EM.selectionLabel().text")
    # panning re-places them: TAG-E comes to the left third of the map
    map_view.pan_to(lat, near["TAG-E"] + 0.4 * span)
    qtbot.waitUntil(lambda: run_js(qtbot, map_view, "EM.markerData('TAG-E').tipSide") == "right", timeout=5000)
