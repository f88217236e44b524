"""The zone manager and the path every zone change takes, in the real console (real map page,
engine thread, SQLite store, accounts): opened with its shortcut, the list, the properties
editor with a second person's approval, delete with confirmation, an effective-from time, the
GeoJSON import's preview and diff, and a vertex dragged with the mouse on a court-ordered zone.
Dialogs are driven with real key presses and clicks."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

import ui.map.view  # noqa: F401  (registers the map's URL schemes before the QApplication)
from localdb.accounts import Accounts
from tests.fixtures_map import run_js, wait_state
from tests.fixtures_ui import EXCL, breach_script
from tests.test_map_zone_mouse import drag, px
from ui.console.zonemanager import ChangeDialog, ImportPreview, ZoneTableModel, import_diff, zone_measure
from ui.settings import Settings

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse",
                                       r"This plugin does not support raise")
PW = "correct horse battery"


@pytest.fixture
def window(qtbot, ui_rig):
    from ui.console.mainwindow import MainWindow
    from ui.map.view import MapView
    rig = ui_rig(breach_script(), start=False, speed=120)
    rig.store.record_caseload(rig.caseload, "system")
    accounts = Accounts(rig.store)
    admin = accounts.create_first_admin("admin.a", PW)
    accounts.create(admin, "sup.smith", "supervisor", PW)
    accounts.create(admin, "op.jones", "operator", PW)
    accounts.create(admin, "pol.kay", "police_analyst", PW)
    events = []
    mv = MapView()
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                   settings=Settings(), map_widget=mv, clock=rig.feed.now, operator="op.jones")
    w.event.connect(lambda name, fields: events.append((name, fields)))
    rig.start(feed_controller=False)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    qtbot.waitUntil(lambda: mv.is_ready, timeout=30000)
    wait_state(qtbot, mv, lambda s: "Z-EX-1" in s["zones"])
    w.rig, w.events = rig, events
    yield w
    w.close()


def on_dialog(qtbot, cls, act, timeout=10_000):
    """Run ``act(dialog)`` once a modal ``cls`` is shown (the code under test is in exec())."""
    seen = []

    def poll():
        d = QApplication.activeModalWidget()
        if isinstance(d, cls) and d.isVisible() and not seen:
            seen.append(d)
            act(d)
        elif not seen:
            QTimer.singleShot(50, poll)
    QTimer.singleShot(0, poll)
    return seen


def ok(dlg):
    return dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)


def click(widget):
    QTest.mouseClick(widget, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, widget.rect().center())


def audit(w, action):
    return [r for r in w.rig.store.audit_log() if r["action"] == action]


def engine_zone(w, zid):
    return w.rig.engine.caseload.zones.get(zid)


def test_model_passes_qtmodeltester(qtmodeltester):
    m = ZoneTableModel()
    m.set_rows([{"zone": "Z-1", "name": "Street", "offender": "OFF-1", "requirement": "exclusion",
                 "schedule": "always", "version": 2, "author": "op.jones", "origin": "court order",
                 "pending": ""}])
    qtmodeltester.check(m)


def test_diff_counts_vertices_and_areas():
    old = {"type": "Feature", "id": "A", "properties": {"name": "a"},
           "geometry": {"type": "Polygon", "coordinates": [EXCL]}}
    new = json.loads(json.dumps(old))
    new["geometry"]["coordinates"][0].insert(1, [-0.1025, 51.5290])
    v, area = zone_measure(old)
    assert v == 4 and area == pytest.approx(348 * 334, rel=0.03)    # 0.005° lon × 0.003° lat
    rows = import_diff({"A": old, "B": dict(old, id="B")}, [new, dict(old, id="C")])
    assert [(r["change"], r["zone"]) for r in rows] == [("added", "C"), ("changed", "A"), ("removed", "B")]
    assert rows[1]["vertices"] == (4, 5)


def test_manager_opens_from_its_shortcut_and_lists_the_zones(qtbot, window):
    w = window
    w.activateWindow()
    QTest.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: w.zone_manager is not None and w.zone_manager.isVisible(), timeout=5000)
    m = w.zone_manager.model
    row = {m.headerData(c, Qt.Orientation.Horizontal): m.data(m.index(0, c)) for c in range(m.columnCount())}
    assert row == {"Zone": "Z-EX-1", "Name": "Victim's street", "Offender": "OFF-1",
                   "Requirement": "exclusion", "Schedule": "always", "Version": "1", "Author": "system",
                   "Origin": "court order", "Pending": ""}


def test_court_ordered_properties_need_a_second_person(qtbot, window):
    w = window
    mgr = w.open_zone_manager()
    mgr.name.selectAll()
    QTest.keyClicks(mgr.name, "Victim's street and park")
    steps = []

    def approve(d):
        assert d.approval
        QTest.keyClicks(d.user, "sup.smith")
        QTest.keyClicks(d.password, "wrong password!")
        click(ok(d))                                  # refused: it stays open and says why
        steps.append(d.problem.text())
        QTest.keyClicks(d.password, PW)
        QTest.keyClick(d.password, Qt.Key.Key_Return)
    seen = on_dialog(qtbot, ChangeDialog, approve)
    click(mgr.apply_btn)
    assert seen and steps and steps[0].startswith("Not approved: wrong user name or password")
    qtbot.waitUntil(lambda: engine_zone(w, "Z-EX-1").name == "Victim's street and park", timeout=10_000)
    qtbot.waitUntil(lambda: any(n == "zone_recorded" for n, _ in w.events), timeout=10_000)
    [rec] = audit(w, "zone_change_approved")
    assert rec["who"] == "op.jones"
    assert rec["detail"]["requested_by"] == "op.jones" and rec["detail"]["approved_by"] == "sup.smith"
    qtbot.waitUntil(lambda: mgr.model.data(mgr.model.index(0, 5)) == "2", timeout=5000)
    assert mgr.model.data(mgr.model.index(0, 6)) == "op.jones"


@pytest.mark.parametrize("who, why", [("op.jones", "another person"), ("pol.kay", "may not approve")])
def test_the_requester_or_a_police_analyst_cannot_approve(qtbot, window, who, why):
    w = window
    mgr = w.open_zone_manager()
    mgr.name.selectAll()
    QTest.keyClicks(mgr.name, "Renamed")
    said = []

    def try_then_cancel(d):
        QTest.keyClicks(d.user, who)
        QTest.keyClicks(d.password, PW)
        click(ok(d))
        said.append(d.problem.text())
        QTest.keyClick(d, Qt.Key.Key_Escape)
    on_dialog(qtbot, ChangeDialog, try_then_cancel)
    click(mgr.apply_btn)
    assert said and why in said[0]
    assert engine_zone(w, "Z-EX-1").name == "Victim's street"
    assert audit(w, "zone_change_approved") == []


def test_delete_asks_and_can_take_effect_later(qtbot, window):
    w = window
    mgr = w.open_zone_manager()
    on_dialog(qtbot, ChangeDialog, lambda d: click(d.buttons.button(QDialogButtonBox.StandardButton.Cancel)))
    click(mgr.delete_btn)
    assert engine_zone(w, "Z-EX-1") is not None and not w.zone_changes.pending
    start = w.clock()

    def later(d):
        d.now_box.setFocus()
        QTest.keyClick(d.now_box, Qt.Key.Key_Space)   # not now: two minutes from now
        d.when.setFocus()
        d.when.setDateTime(d.when.dateTime().addSecs(-3600 + 120))
        QTest.keyClicks(d.user, "sup.smith")
        QTest.keyClicks(d.password, PW)
        click(ok(d))
        said.append(d.problem.text())
    said = []
    on_dialog(qtbot, ChangeDialog, later)
    click(mgr.delete_btn)
    qtbot.waitUntil(lambda: bool(w.zone_changes.pending), timeout=5000)
    assert said == [""]
    assert "delete from" in mgr.model.data(mgr.model.index(0, 8))
    assert engine_zone(w, "Z-EX-1") is not None          # still in force
    [sched] = audit(w, "zone_change_scheduled")
    assert sched["detail"]["approved_by"] == "sup.smith" and sched["detail"]["effective_from"] > start
    # the console's clock (×120) reaches it: the zone goes, and the log says so
    qtbot.waitUntil(lambda: engine_zone(w, "Z-EX-1") is None, timeout=15_000)
    assert w.clock() >= sched["detail"]["effective_from"]
    assert audit(w, "zone_change_applied")[0]["detail"]["change_id"] == sched["detail"]["change_id"]
    wait_state(qtbot, w.map, lambda s: "Z-EX-1" not in s["zones"])


def test_import_is_previewed_as_a_diff_before_anything_changes(qtbot, window, tmp_path):
    w = window
    moved = [[x + 0.01, y] for x, y in EXCL]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "Z-EX-1", "properties": {"name": "Victim's street"},
         "geometry": {"type": "Polygon", "coordinates": [moved]}},
        {"type": "Feature", "id": "Z-NEW", "properties": {"name": "Park", "radius_m": 200},
         "geometry": {"type": "Point", "coordinates": [-0.09, 51.54]}}]}
    path = tmp_path / "zones.geojson"
    path.write_text(json.dumps(doc))
    shown = []

    def look_then_cancel(d):
        shown.append([[d.table.item(r, c).text() for c in range(5)] for r in range(d.table.rowCount())])
        click(d.buttons.button(QDialogButtonBox.StandardButton.Cancel))
    on_dialog(qtbot, ImportPreview, look_then_cancel)
    w.import_zones(str(path))
    assert shown[0][0] == ["added", "Z-NEW", "Park", "circle", "125,664"]
    assert shown[0][1][:4] == ["changed", "Z-EX-1", "Victim's street", "4"] and len(shown[0]) == 2
    assert "Z-NEW" not in w.rig.engine.caseload.zones
    assert engine_zone(w, "Z-EX-1").geometry["coordinates"][0][0] == EXCL[0]

    def accept_preview(d):
        click(ok(d))

    def approve(d):
        QTest.keyClicks(d.user, "sup.smith")
        QTest.keyClicks(d.password, PW)
        click(ok(d))
    on_dialog(qtbot, ImportPreview, accept_preview)
    QTimer.singleShot(300, lambda: on_dialog(qtbot, ChangeDialog, approve))
    w.import_zones(str(path))
    qtbot.waitUntil(lambda: "Z-NEW" in w.rig.engine.caseload.zones, timeout=10_000)
    qtbot.waitUntil(lambda: engine_zone(w, "Z-EX-1").geometry["coordinates"][0][0] == moved[0], timeout=10_000)
    assert {r["detail"]["zone"] for r in audit(w, "zone_change_approved")} == {"Z-EX-1"}


def test_vertex_dragged_on_a_court_ordered_zone_waits_for_approval(qtbot, window):
    w = window
    mv = w.map
    mv.pan_to(51.5315, -0.1025, 16)
    wait_state(qtbot, mv, lambda s: s["zoom"] == 16)
    target = mv.view.focusProxy() or mv.view
    with qtbot.waitSignal(mv.zoneSelected, timeout=5000):
        mv.enable_editing("Z-EX-1")
    corner = px(qtbot, mv, EXCL[1][1], EXCL[1][0])
    refused = []
    on_dialog(qtbot, ChangeDialog, lambda d: (refused.append(d.windowTitle()), QTest.keyClick(d, Qt.Key.Key_Escape)))
    drag(target, corner, corner + QPoint(50, 30))
    qtbot.waitUntil(lambda: bool(refused), timeout=10_000)
    assert refused == ["Change a court-ordered zone"]
    # cancelled: the map shows the zone in force again, and the engine never saw the change
    back = lambda: run_js(qtbot, mv, "EM.layers.zones.get('Z-EX-1').feature.geometry.coordinates[0][1]")  # noqa: E731
    qtbot.waitUntil(lambda: back() == [pytest.approx(EXCL[1][0]), pytest.approx(EXCL[1][1])], timeout=10_000)
    assert engine_zone(w, "Z-EX-1").geometry["coordinates"][0][1] == EXCL[1]
    assert run_js(qtbot, mv, "EM.zoneTools.withHandles()") == ["Z-EX-1"]     # still editing it
