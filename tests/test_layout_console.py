"""The console's layout as a user meets it: a one-line training banner with the watermark beside
it (never on the map, so never over an alerting tag), feed health, operator and clock as
permanent large widgets, the queue with room for rows (no empty shelved pane), the wall board
from its shortcut, map labels that do not pile up, and the map driven from the keyboard on the
real page (Ctrl+0, then + / - to zoom and ] to go to the next alerting tag)."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

import ui.map.view  # noqa: F401  (registers the map's URL schemes before the QApplication)
from tests.fixtures_map import NO_GPU_MESSAGES, run_js, wait_state
from tests.fixtures_ui import T0, tamper_flood
from ui.settings import Settings

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"does not support raise", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse", *NO_GPU_MESSAGES)


def make(qtbot, rig, map_widget, training=False):
    from ui.console.mainwindow import MainWindow
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                   settings=Settings(), map_widget=map_widget, clock=rig.feed.now, operator="op.jones",
                   training=training)
    qtbot.addWidget(w)
    return w


def test_compact_banner_watermark_off_the_map_and_room_for_the_queue(qtbot, ui_rig):
    rig = ui_rig(tamper_flood(n=12), start=False)
    map_widget = QWidget()
    w = make(qtbot, rig, map_widget, training=True)
    w.training_banner.setText("TRAINING MODE — Fourteen alerts of four types within ten minutes: triage by "
                              "priority. Simulated feed, not live. Nothing here reaches police or probation.")
    rig.start(feed_controller=False)
    w.resize(1366, 740)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: len(rig.alerts("strap_tamper")) == 12, timeout=20000)
    assert w.width() <= 1366, "the console needs more than a 1366 px wide screen"
    qtbot.wait(400)                         # the default dock sizes are applied after the show
    banner, mark = w.training_banner, w.watermark
    assert banner.isVisible() and mark.isVisible()
    line = banner.fontMetrics().height()
    assert banner.height() < 2 * line + 12, "the training banner is more than one line"
    assert banner.toolTip().endswith("probation.")     # the full text, elided on screen
    # the watermark is beside the banner, not over the map: it can never cover a tag
    assert mark.parent() is not map_widget and not map_widget.isAncestorOf(mark)
    top_left = mark.mapTo(w, mark.rect().topLeft())
    map_top = map_widget.mapTo(w, map_widget.rect().topLeft()).y()
    assert top_left.y() + mark.height() <= map_top
    # the map keeps most of the width (caseload and details share the right column)
    assert map_widget.width() >= 0.5 * w.width()
    assert w.caseload_dock.isVisible() or w.details_dock.isVisible()
    # the queue: no empty shelved pane; rows fill the table
    q = w.queue
    assert not q.shelved_pane.isVisible()
    table = q.table
    rows_visible = sum(1 for r in range(w.ctl.proxy.rowCount())
                       if table.viewport().rect().contains(table.visualRect(w.ctl.proxy.index(r, 0))))
    assert rows_visible >= 6, rows_visible
    crit = sum(1 for r in w.ctl.model.rows() if r.alert.priority == "critical"
               and r.handling.state == "unacknowledged")
    assert crit >= 12          # the twelve tampers (and the feed_lost once the script ends)
    assert q.count_labels["critical"].isVisible() and f"{crit} unack" in q.count_labels["critical"].text()
    # the wall board, from its shortcut
    QTest.keyClick(w.queue.table, Qt.Key.Key_W,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: w.wallboard is not None and w.wallboard.isVisible(), timeout=3000)
    board = w.wallboard
    qtbot.waitUntil(lambda: int(board.counts["critical"].text()) >= 12, timeout=3000)
    assert board.counts["critical"].text() == str(sum(1 for r in w.ctl.model.rows() if r.alert.priority ==
                                                      "critical" and r.handling.state == "unacknowledged"))
    assert board.counts["low"].text() == "0"
    assert board.oldest.text().startswith("Oldest unacknowledged: ▲ CRITICAL Strap tamper — waiting")
    assert board.feed.text() == w.status.feed.text()
    assert board.counts["critical"].font().pointSize() >= 40 or "96pt" in board.counts["critical"].styleSheet()
    w.close()
    assert not board.isVisible()


@pytest.fixture
def map_window(qtbot, ui_rig):
    from ui.map.view import MapView
    rig = ui_rig(tamper_flood(n=2), start=False, speed=60)
    mv = MapView()
    w = make(qtbot, rig, mv)
    events = []
    w.event.connect(lambda name, fields: events.append(name))
    w.resize(1400, 900)
    w.show()
    qtbot.waitUntil(lambda: mv.is_ready, timeout=30000)
    w.events = events
    yield w
    w.close()


def test_map_labels_do_not_pile_up_and_the_keyboard_drives_the_map(qtbot, map_window):
    w = map_window
    mv = w.map
    # twelve alerting tags 33 m apart: at borough zoom their labels would be one heap
    mv.update_markers([{"device": f"TAG-{i}", "lat": 51.55 + i * 0.0003, "lon": -0.07, "acc": 5,
                        "label": f"OFF-{i} Person {i}", "priority": "critical" if i < 4 else "high",
                        "t": T0} for i in range(2, 14)])
    mv.pan_to(51.5524, -0.07, 12)
    state = wait_state(qtbot, mv, lambda s: len(s["alerts"]) == 12 and s["labels"]["shown"] >= 1)
    assert state["labels"]["hidden"] >= 8 and state["labels"]["shown"] + state["labels"]["hidden"] == 12
    shown = run_js(qtbot, mv, "[...EM.layers.markers.values()].filter(e => e.tip && !e.tipHidden)"
                              ".map(e => e.tip.getContent())")
    assert any("CRITICAL" in t and "+" in t for t in shown)       # the kept label counts the hidden ones
    # Ctrl+0 gives the map the keyboard; "+" zooms in (Leaflet's own keyboard handler) and the
    # labels spread out
    QTest.keyClick(w.queue.table, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: run_js(qtbot, mv, "document.activeElement === EM.map.getContainer()"
                                           " && EM.map.keyboard._focused") is True, timeout=5000)
    zoom = state["zoom"]
    qtbot.wait(300)                     # the view settles into its focus
    for step in range(1, 6):            # one zoom level a press, at a person's pace (Leaflet
        qtbot.wait(400)                 # ignores a zoom key while it is still animating)
        QTest.keyClick(mv.view.focusProxy(), Qt.Key.Key_Plus)
        state = wait_state(qtbot, mv, lambda s, z=zoom + step: s["zoom"] >= z, timeout=5000)
    qtbot.waitUntil(lambda: run_js(qtbot, mv, "EM.state().labels.hidden") < 8, timeout=5000)
    # "]" goes to the worst alerting tag and selects it, as a click on it would
    clicked = []
    mv.markerClicked.connect(clicked.append)
    QTest.keyClick(mv.view.focusProxy(), Qt.Key.Key_BracketRight)
    qtbot.waitUntil(lambda: bool(clicked), timeout=5000)
    assert clicked[0] == "TAG-2"             # critical first; then by device name
    assert w._selected_offender == "OFF-2"
    QTest.keyClick(mv.view.focusProxy(), Qt.Key.Key_BracketRight)
    qtbot.waitUntil(lambda: len(clicked) == 2, timeout=5000)
    assert clicked[1] == "TAG-3"
    centre = run_js(qtbot, mv, "EM.state().center")
    assert abs(centre["lat"] - (51.55 + 3 * 0.0003)) < 1e-4      # TAG-3's place
    QApplication.processEvents()
    assert json.dumps(run_js(qtbot, mv, "EM.state().errors")) == "[]"
