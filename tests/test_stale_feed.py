"""Staleness per ISA-101, as the operator sees it: a silent tag turns stale on the real map page
on the console's own clock (no new message needed), in the caseload and in the details panel;
the feed health says "no data for N min" when nothing arrives and never "feed connected" then;
a live console opened on a store with open alerts shows them in the queue at once."""
from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

import ui.map.view  # noqa: F401  (registers the map's URL schemes before the QApplication)
from tests.fixtures_map import NO_GPU_MESSAGES, run_js
from tests.fixtures_ui import T0, breach_script, fix, heartbeats
from ui.console import statusbar
from ui.console.statusbar import ConsoleStatusBar
from ui.settings import Settings

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse", *NO_GPU_MESSAGES)


def test_feed_health_says_no_data_and_never_connected_then(qtbot, monkeypatch):
    bar = ConsoleStatusBar("op.jones")
    qtbot.addWidget(bar)
    base = {"connected": True, "msgs_per_s": 0, "lag_s": 0.0, "messages": 10, "rejected": 0, "faults": []}
    bar.update_stats({**base, "now": T0, "last_msg_at": T0 - 5})
    assert bar.feed.text() == "● feed connected"
    bar.update_stats({**base, "now": T0 + 300, "last_msg_at": T0 - 5})
    assert bar.feed.text() == "▲ NO DATA for 5 min" and bar.feed.objectName() == "feedLost"
    assert bar.connected is False
    bar.update_stats({**base, "connected": False, "now": T0 + 3900, "last_msg_at": T0})
    assert bar.feed.text() == "▲ FEED LOST — no data for 1 h 5 min"
    # the engine's statistics stop coming at all: the bar says so on its own clock
    monkeypatch.setattr(statusbar, "STATS_SILENT_S", 0.2)
    bar.update_stats({**base, "now": T0 + 4000, "last_msg_at": T0 + 3999})
    assert bar.feed.text() == "● feed connected"
    qtbot.wait(400)
    bar.set_time(T0 + 4001)
    assert bar.feed.text().startswith("▲ NO STATUS from the engine")


def test_transient_messages_never_cover_feed_clock_or_operator(qtbot):
    from PySide6.QtWidgets import QMainWindow
    win = QMainWindow()
    qtbot.addWidget(win)
    bar = ConsoleStatusBar("Sam Night")
    win.setStatusBar(bar)
    win.resize(1366, 200)
    win.show()
    qtbot.waitExposed(win)
    bar.set_time(T0)
    bar.showMessage("Alert acknowledged — recorded in the acknowledgement log", 8000)
    qtbot.wait(50)
    for w in (bar.feed, bar.operator, bar.clock):
        assert w.isVisible() and w.visibleRegion().boundingRect().width() >= w.sizeHint().width() - 2
        assert w.font().pointSizeF() >= 14 and w.font().bold()     # readable from two metres
    assert bar.operator.text() == "Operator: Sam Night"


def silent_tags_script(t0=T0):
    """An outage: TAG-2 and the gateway report for one minute, then nothing arrives at all. No
    tag raises signal_lost while the feed is lost (spec §4), so nothing new reaches the map:
    only the console's own clock can turn the tags stale."""
    msgs = heartbeats(t0, t0 + 60)
    for k in range(3):
        msgs.append(fix("TAG-2", k + 1, t0 + 30 * k, 51.55, -0.07))
    return sorted(msgs, key=lambda m: m[0])


@pytest.fixture
def map_window(qtbot, ui_rig):
    from ui.console.mainwindow import MainWindow
    from ui.map.view import MapView
    rig = ui_rig(silent_tags_script(), start=False, speed=150)
    mv = MapView()
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                   settings=Settings(), map_widget=mv, clock=rig.feed.now, operator="op.jones")
    events = []
    w.event.connect(lambda name, fields: events.append(name))
    qtbot.addWidget(w)
    w.resize(1600, 1000)
    w.show()
    qtbot.waitUntil(lambda: mv.is_ready, timeout=30000)
    rig.start(feed_controller=False)
    w.rig, w.events = rig, events
    yield w
    w.close()


def marker(qtbot, mv, device):
    return run_js(qtbot, mv, f"EM.markerData({json.dumps(device)})")


def test_a_silent_tag_turns_stale_on_the_map_by_itself(qtbot, map_window):
    w = map_window
    mv = w.map
    qtbot.waitUntil(lambda: (m := marker(qtbot, mv, "TAG-2")) is not None and m["t"] == pytest.approx(T0 + 60, abs=0.01),
                    timeout=15000)
    assert marker(qtbot, mv, "TAG-2")["stale"] is False
    last_t = marker(qtbot, mv, "TAG-2")["t"]
    # five minutes of the feed's clock later (2 s here), with no message from the tag at all
    qtbot.waitUntil(lambda: marker(qtbot, mv, "TAG-2")["stale"] is True, timeout=15000)
    data = marker(qtbot, mv, "TAG-2")
    assert data["t"] == last_t == pytest.approx(T0 + 60, abs=0.01)      # nothing new arrived
    assert "stale" in data["tooltip"]
    assert "stale_changed" in w.events
    # the caseload says it in words, dimmed and in italics
    model = w.caseload_model
    row = next(r for r in range(model.rowCount()) if model.data(model.index(r, 0)) == "OFF-2")
    qtbot.waitUntil(lambda: "▲ stale" in model.data(model.index(row, 5)), timeout=3000)
    assert model.data(model.index(row, 5), Qt.ItemDataRole.FontRole).italic()
    assert model.data(model.index(row, 5)).split("  ")[0].endswith("min ago")
    # selecting the offender in the caseload (a real click) pans the map to the tag and shows
    # the details panel with the stale tag in words
    table = w.caseload_list.table
    proxy = w.caseload_list.proxy
    prow = proxy.mapFromSource(model.index(row, 0)).row()
    w.caseload_dock.show()
    w.caseload_dock.raise_()
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualRect(proxy.index(prow, 1)).center())
    qtbot.waitUntil(lambda: w.details.offender == "OFF-2", timeout=5000)
    assert "▲ stale — no fix for" in w.details.body.text()
    centre = {}

    def panned():
        centre.update(run_js(qtbot, mv, "EM.state().center"))
        return abs(centre["lat"] - 51.55) < 1e-3 and abs(centre["lng"] + 0.07) < 1e-3
    qtbot.waitUntil(panned, timeout=5000)
    # and the feed health says how long nothing has arrived
    assert "no data for" in w.status.feed.text() and "feed connected" not in w.status.feed.text()
    assert not [r for r in w.rig.alerts() if r.alert.offender]      # stale by the clock, not by an alert


def test_feed_silence_reaches_the_status_bar(qtbot, ui_rig):
    from ui.console.mainwindow import MainWindow
    rig = ui_rig(heartbeats(T0, T0 + 30), start=False, speed=600)
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                   settings=Settings(), map_widget=QWidget(), clock=rig.feed.now, operator="op.jones")
    qtbot.addWidget(w)
    seen = set()
    rig.worker.stats.connect(lambda s: seen.add(w.status.feed.text()))
    rig.start(feed_controller=False)
    w.show()
    qtbot.waitUntil(lambda: "no data for" in w.status.feed.text(), timeout=15000)
    qtbot.waitUntil(lambda: "min" in w.status.feed.text(), timeout=15000)
    assert w.status.connected is False
    w.status.showMessage("a transient message", 5000)        # it does not hide the feed state
    assert w.status.feed.isVisible() and "no data for" in w.status.feed.text()
    w.close()


def test_live_console_opened_on_a_store_with_open_alerts_shows_them(qtbot, ui_rig, tmp_path):
    """The alerts a store holds open are in the queue at start, with their handling, even when
    there is no checkpoint to restore them from."""
    first = ui_rig(breach_script(), speed=600)
    qtbot.waitUntil(lambda: bool(first.alerts("exclusion_entered")), timeout=20000)
    aid = first.alerts("exclusion_entered")[0].alert.alert_id
    first.worker.stop()
    first.store.flush()
    assert first.store.load_checkpoint(discard_after=False) == (None, None)   # none was made
    first.store.close()
    from localdb.store import Store
    from monitorapp.engine.engine import Engine
    from ui.console.alertqueue import AlarmSound, AlertQueueController
    from ui.console.engineworker import EngineWorker, ReplayFeed
    from ui.console.mainwindow import MainWindow
    feed = ReplayFeed(heartbeats(T0 + 900, T0 + 960), start=T0 + 900, speed=10)
    store = Store(first.store_path, clock=feed.now)
    caseload = first.caseload
    worker = EngineWorker(lambda: Engine(caseload, start=T0 + 900), feed, store=store, checkpoint_s=3600)
    ctl = AlertQueueController(store, "op.night", sound=AlarmSound(True))
    w = MainWindow(controller=ctl, worker=worker, caseload=caseload, store=store, settings=Settings(),
                   map_widget=QWidget(), clock=feed.now, operator="op.night")
    qtbot.addWidget(w)
    events = []
    w.event.connect(lambda name, fields: events.append((name, fields)))
    worker.start()
    w.show()
    try:
        qtbot.waitUntil(lambda: ctl.model.row(aid) is not None, timeout=15000)
        assert ctl.proxy.alert_id_at(0) == aid          # on top of the queue, unacknowledged
        assert ctl.model.row(aid).handling.state == "unacknowledged"
        assert any(n == "queue_restored" and aid in f["ids"] for n, f in events)
        assert w.queue.count_labels["critical"].text().startswith("▲ CRITICAL  1 unack")
    finally:
        w.close()
        worker.stop()
        store.close()
    assert not worker.running
    QApplication.processEvents()
