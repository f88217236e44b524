"""The main window with the real map page, engine, worker thread and store: the map reports
ready and gets the zones, a scripted breach reaches the queue, the map and the details panel,
the keyboard path acknowledges it into the log, shortcuts are shown in the menus, the theme
toggles, the layout persists apart from the settings, a drawn zone reaches store and engine."""
from __future__ import annotations

import pathlib

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

import ui.map.view  # noqa: F401  (registers the map's URL schemes before the QApplication)
from tests.fixtures_map import wait_state
from tests.fixtures_ui import T0, breach_script
from ui.console.ackdialog import AckDialog
from ui.settings import Settings, config_dir

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse")


@pytest.fixture
def window(qtbot, ui_rig):
    from ui.console.mainwindow import MainWindow
    from ui.map.view import MapView
    rig = ui_rig(breach_script(), start=False, speed=120)
    events = []
    mv = MapView()
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                   settings=Settings(), map_widget=mv, clock=rig.feed.now, operator="op.jones")
    w.event.connect(lambda name, fields: events.append((name, fields)))
    rig.start(feed_controller=False)          # the window feeds the controller
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: mv.is_ready, timeout=30000)
    w.rig, w.events = rig, events
    yield w
    w.close()
    from ui.theme import apply_theme      # the theme is application-wide: the next test starts light
    apply_theme(QApplication.instance(), "light")


def names(events):
    return [n for n, _ in events]


def test_map_ready_breach_in_queue_and_on_map(qtbot, window):
    w = window
    assert "map_ready" in names(w.events)
    qtbot.waitUntil(lambda: bool(w.rig.alerts("exclusion_entered")), timeout=20000)
    qtbot.waitUntil(lambda: "alert_raised" in names(w.events), timeout=5000)
    assert w.caseload_model.worst("OFF-1") == "critical"
    qtbot.waitUntil(lambda: w.map.marker_count >= 1, timeout=5000)
    # the page shows the exclusion zone and the marker, coloured by its worst alert
    alert = w.rig.alerts("exclusion_entered")[0].alert
    aid = alert.alert_id
    # the victim's street itself is coloured while the alert is open; the other zones stay grey
    state = wait_state(qtbot, w.map, lambda s: s["zoneAlarms"].get(alert.zone) == "critical", timeout=10000)
    assert set(state["zoneAlarms"]) == {alert.zone}
    assert w.queue.select_alert(aid)
    qtbot.waitUntil(lambda: w.details.offender == "OFF-1", timeout=5000)
    assert "Alex Example" in w.details.title.text()
    assert "exclusion" in w.details.body.text()


def test_keyboard_acknowledge_writes_log(qtbot, window):
    w = window
    qtbot.waitUntil(lambda: bool(w.rig.alerts("exclusion_entered")), timeout=20000)
    aid = w.rig.alerts("exclusion_entered")[0].alert.alert_id
    assert w.queue.select_alert(aid)
    seen = []

    def fill():
        dlg = QApplication.activeModalWidget()
        seen.append(dlg)
        assert isinstance(dlg, AckDialog)
        ok = dlg.buttons.buttons()[0]
        dlg.action.setCurrentIndex(dlg.action.findData("contacted_probation"))
        assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()  # note required
        dlg.note.setPlainText("Probation officer on call informed")
        assert ok.isEnabled() or dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()
        dlg.accept()
    QTimer.singleShot(200, fill)
    w.act_ack.trigger()                  # the A shortcut's action
    assert seen and w.rig.controller.model.row(aid).handling.state == "acknowledged"
    w.rig.store.flush()
    log = w.rig.store.ack_log(aid)
    assert log[-1]["operator"] == "op.jones" and log[-1]["action_code"] == "contacted_probation"
    assert ("alert_acknowledged" in names(w.events))
    zone = w.rig.controller.model.row(aid).alert.zone
    assert wait_state(qtbot, w.map, lambda s: zone in s["zoneAlarms"], timeout=10000)  # acknowledged is still open


def test_shortcuts_shown_in_menus_and_theme_toggle(window):
    w = window
    shortcuts = {a.text(): a.shortcut().toString() for a in w.actions()}
    assert shortcuts["&Acknowledge…"] == "A"
    assert shortcuts["&Close"] == "C" and shortcuts["&Shelve…"] == "S" and shortcuts["&Focus filter"] == "F"
    assert {shortcuts["Alert &queue"], shortcuts["&Caseload"], shortcuts["&Details"]} == {"Ctrl+1", "Ctrl+2", "Ctrl+3"}
    assert shortcuts["&Dark theme (night shift)"] == "Ctrl+Shift+D"
    before = QApplication.instance().palette().window().color().lightness()
    w.act_dark.trigger()
    assert w.theme == "dark" and Settings().get("ui/theme") == "dark"
    assert QApplication.instance().palette().window().color().lightness() < before


def test_layout_persists_apart_from_settings(qtbot, window):
    w = window
    w.caseload_dock.hide()
    w.close()
    ws = config_dir() / "window-state.ini"
    assert ws.exists() and "window" in ws.read_text()
    assert "geometry" not in pathlib.Path(Settings().path).read_text()


def test_drawn_zone_reaches_store_and_engine(qtbot, window):
    w = window
    feature = {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[
        [-0.09, 51.54], [-0.085, 51.54], [-0.085, 51.543], [-0.09, 51.543], [-0.09, 51.54]]]},
        "properties": {}}
    from ui.console.zonedialog import ZoneDialog
    dlg = ZoneDialog(feature, [("OFF-2", "Person 2")], zone_id="Z-OP-0001")
    dlg.name.setText("Market square")
    zone, req = dlg.result_pair()
    w.save_zone(zone, "OFF-2", req)
    # zoneApplied comes from the engine thread; the window logs it on the main thread
    qtbot.waitUntil(lambda: "zone_applied" in names(w.events), timeout=10000)
    applied = dict(w.events)["zone_applied"]
    assert applied["zone"] == "Z-OP-0001" and applied["version"] >= 1
    assert "Z-OP-0001" in w.rig.engine.caseload.zones
    assert any(r.zone == "Z-OP-0001" for r in w.rig.engine.caseload.offenders["OFF-2"].requirements)
    rows = w.rig.store.reader().execute("SELECT count(*) FROM zones WHERE zone_id='Z-OP-0001'").fetchone()
    assert rows[0] >= 1
