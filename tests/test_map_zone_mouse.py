"""Zones edited and deleted with the mouse on the real page: real QTest presses, moves and
releases on the QWebEngineView's input widget, through Leaflet's and Geoman's own input
handling (no ``pm:edit`` fired from JavaScript). The tags' canvas lies over the zones, as in
the console, and a tag sits on the zone's corner."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from tests.fixtures_map import map_log_ignore, run_js, sample_markers, wait_state

pytestmark = map_log_ignore

SQUARE = {"type": "Feature", "id": "Z-EX", "properties": {"kind": "exclusion", "name": "Victim's street"},
          "geometry": {"type": "Polygon", "coordinates": [[[-0.10, 51.56], [-0.08, 51.56], [-0.08, 51.55],
                                                           [-0.10, 51.55], [-0.10, 51.56]]]}}
OTHER = {"type": "Feature", "id": "Z-OTHER", "properties": {"kind": "exclusion", "name": "Another offender's"},
         "geometry": {"type": "Polygon", "coordinates": [[[-0.06, 51.56], [-0.04, 51.56], [-0.04, 51.55],
                                                          [-0.06, 51.55], [-0.06, 51.56]]]}}
HOME = {"type": "Feature", "id": "Z-HOME", "properties": {"kind": "curfew", "name": "Home", "radius_m": 300},
        "geometry": {"type": "Point", "coordinates": [-0.07, 51.575]}}


def px(qtbot, view, lat, lon) -> QPoint:
    x, y = run_js(qtbot, view, f"(function () {{ const p = EM.map.latLngToContainerPoint([{lat}, {lon}]);"
                               " return [p.x, p.y]; })()")
    return QPoint(round(x), round(y))


def latlng(qtbot, view, at: QPoint):
    return run_js(qtbot, view, f"(function () {{ const l = EM.map.containerPointToLatLng([{at.x()}, {at.y()}]);"
                               " return [l.lat, l.lng]; })()")


def drag(target, start: QPoint, end: QPoint, steps: int = 8) -> None:
    QTest.mousePress(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        QTest.mouseMove(target, p, 15)
    QTest.mouseRelease(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end, 15)


def button(qtbot, view, selector: str) -> QPoint:
    x, y = run_js(qtbot, view, "(function () { const r = document.querySelector("
                               f"{selector!r}).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()")
    return QPoint(round(x), round(y))


@pytest.fixture
def zoned(map_view, qtbot):
    map_view.set_zones([SQUARE, OTHER, HOME])
    # tags over the zones, one right on the corner that will be dragged: their canvas lies on top
    tags = sample_markers(30) + [{"device": "TAG-CORNER", "lat": 51.56, "lon": -0.08, "acc": 5,
                                  "label": "On the corner", "priority": None, "stale": False}]
    map_view.update_markers(tags)
    map_view.flush_markers()
    map_view.pan_to(51.562, -0.075, 14)
    wait_state(qtbot, map_view, lambda s: len(s["zones"]) == 3 and s["markers"] == 31 and s["zoom"] == 14)
    return map_view


def test_drag_a_vertex_of_the_zone_picked_with_the_mouse(zoned, qtbot):
    view = zoned
    target = view.view.focusProxy() or view.view
    centre_before = run_js(qtbot, view, "EM.map.getCenter()")
    # the pencil in the toolbar, then a click inside the zone: that zone alone gets handles
    QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     button(qtbot, view, ".leaflet-pm-icon-edit"))
    qtbot.waitUntil(lambda: run_js(qtbot, view, "EM.zoneTools.picking"), timeout=5000)
    with qtbot.waitSignal(view.zoneSelected, timeout=5000) as picked:
        QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         px(qtbot, view, 51.553, -0.095))
    assert picked.args == ["Z-EX"]
    assert run_js(qtbot, view, "EM.zoneTools.withHandles()") == ["Z-EX"]
    handles = run_js(qtbot, view, "EM.zoneTools.handles('Z-EX')")
    assert len(handles) == 4
    corner = px(qtbot, view, 51.56, -0.08)
    assert any(abs(x - corner.x()) <= 1 and abs(y - corner.y()) <= 1 for x, y in handles)
    end = corner + QPoint(60, -40)
    want = latlng(qtbot, view, end)
    with qtbot.waitSignal(view.zoneEdited, timeout=5000) as edited:
        drag(target, corner, end)
    f = edited.args[0]
    assert f["id"] == "Z-EX" and f["properties"]["kind"] == "exclusion"
    ring = f["geometry"]["coordinates"][0]
    assert len(ring) == 5
    moved = [c for c in ring if c != [-0.10, 51.56] and c != [-0.08, 51.55] and c != [-0.10, 51.55]]
    assert moved and moved[0] == [pytest.approx(want[1], abs=2e-5), pytest.approx(want[0], abs=2e-5)]
    # the drag moved the corner, not the map; the tag on the corner was not "clicked"
    assert run_js(qtbot, view, "EM.map.getCenter()") == centre_before
    # the other offender's zone never had handles; Esc ends editing
    assert run_js(qtbot, view, "EM.zoneTools.withHandles()") == ["Z-EX"]
    with qtbot.waitSignal(view.zoneSelected, timeout=5000) as done:
        QTest.keyClick(target, Qt.Key.Key_Escape)
    assert done.args == [""]
    assert run_js(qtbot, view, "EM.zoneTools.withHandles()") == []


def test_python_picks_the_zone_and_only_it_gets_handles(zoned, qtbot):
    view = zoned
    with qtbot.waitSignal(view.zoneSelected, timeout=5000):
        view.enable_editing("Z-HOME")
    assert run_js(qtbot, view, "EM.zoneTools.withHandles()") == ["Z-HOME"]
    # new zones from Python (an applied edit) keep the handles on the zone being edited
    view.set_zones([SQUARE, OTHER, HOME])
    qtbot.waitUntil(lambda: run_js(qtbot, view, "EM.zoneTools.withHandles()") == ["Z-HOME"], timeout=5000)
    view.stop_editing()
    qtbot.waitUntil(lambda: run_js(qtbot, view, "EM.zoneTools.withHandles()") == [], timeout=5000)


def test_eraser_deletes_the_zone_clicked_under_the_tags(zoned, qtbot):
    view = zoned
    target = view.view.focusProxy() or view.view
    QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     button(qtbot, view, ".leaflet-pm-icon-delete"))
    qtbot.waitUntil(lambda: run_js(qtbot, view, "EM.map.pm.globalRemovalModeEnabled()"), timeout=5000)
    # a click inside the other zone, on its outline's interior, beside a tag
    with qtbot.waitSignal(view.zoneDeleted, timeout=5000) as deleted:
        QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                         px(qtbot, view, 51.552, -0.045))
    assert deleted.args == ["Z-OTHER"]
    state = wait_state(qtbot, view, lambda s: "Z-OTHER" not in s["zones"])
    assert sorted(state["zones"]) == ["Z-EX", "Z-HOME"]
    assert state["markers"] == 31          # the tags are all still there
    view.stop_editing()


def test_tags_are_clickable_again_when_no_zone_tool_is_on(zoned, qtbot):
    view = zoned
    view.stop_editing()
    qtbot.waitUntil(lambda: not run_js(qtbot, view, "document.querySelector('.leaflet-container')"
                                                    ".classList.contains('em-zone-tool')"), timeout=5000)
    target = view.view.focusProxy() or view.view
    at = px(qtbot, view, 51.56, -0.08)
    qtbot.mouseMove(target, at)
    with qtbot.waitSignal(view.markerClicked, timeout=5000) as clicked:
        QTest.mouseClick(target, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at)
    assert clicked.args == ["TAG-CORNER"]


def test_no_zone_tools_for_a_role_that_may_not_edit_zones(zoned, qtbot):
    """A trainer or police analyst sees the map without the drawing, editing and eraser tools
    (``ui.session.wiring`` calls ``set_zone_tools(can(role, "edit_zones"))``); they come back
    for the next person who may edit zones."""
    visible = ("(function () { return Array.from(document.querySelectorAll('.leaflet-pm-toolbar'))"
               ".filter(function (el) { return el.offsetParent !== null; }).length; })()")
    assert run_js(qtbot, zoned, visible) > 0
    try:
        zoned.set_zone_tools(False)
        qtbot.waitUntil(lambda: run_js(qtbot, zoned, visible) == 0, timeout=5000)
    finally:
        zoned.set_zone_tools(True)
    qtbot.waitUntil(lambda: run_js(qtbot, zoned, visible) > 0, timeout=5000)
