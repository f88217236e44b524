"""The console never shows "feed connected" over a dead engine (spec v2 §4 ``system_fault``):
when the engine thread dies, the watchdog puts a critical ``system_fault`` in the queue (the
alarm sounds), the status bar says the engine stopped, the thread is started again on the same
state, and a later real tamper is still raised. A store that cannot be written (locked by
another connection) shows as a system fault in the status bar and the queue, and clears when
it can be written again. Real engine thread, real SQLite file, real Qt widgets."""
from __future__ import annotations

import sqlite3

from tests.fixtures_ui import T0, event, heartbeats


def rig(tmp_path, messages, hostile=None, busy_timeout_s=5.0):
    from localdb.store import Store
    from monitorapp.engine.caseload import parse_caseload
    from monitorapp.engine.engine import Engine
    from tests.fixtures_ui import ui_caseload_doc
    from ui.console.alertqueue import AlarmSound, AlertQueueController
    from ui.console.engineworker import EngineWorker, ReplayFeed
    from ui.console.statusbar import ConsoleStatusBar
    caseload = parse_caseload(ui_caseload_doc(2), "test caseload")
    feed = ReplayFeed(messages, start=T0, speed=60.0)
    store = Store(tmp_path / "console.sqlite", clock=feed.now, busy_timeout_s=busy_timeout_s)

    def make():
        eng = Engine(caseload, start=T0)
        if hostile:
            eng.add_listener(on_event=hostile)
        return eng
    worker = EngineWorker(make, feed, store=store)
    ctl = AlertQueueController(store, "op.jones", sound=AlarmSound(True))
    bar = ConsoleStatusBar("op.jones")
    texts: list[str] = []
    worker.alertBatch.connect(ctl.on_alert_batch)
    worker.stats.connect(bar.update_stats)
    worker.stats.connect(lambda s: texts.append(bar.feed.text()))
    return worker, ctl, bar, store, texts


def test_a_dead_engine_thread_is_annunciated_restarted_and_monitoring_goes_on(qtbot, tmp_path):
    def dies(ev):                      # something that ends the thread outright, once
        if ev.type == "device_fault":
            raise SystemExit("engine thread killed")
    msgs = heartbeats(T0, T0 + 120) + [event("TAG-1", 1, T0 + 5, "device_fault"),
                                      event("TAG-2", 1, T0 + 40, "strap_tamper")]
    worker, ctl, bar, store, texts = rig(tmp_path, msgs, dies)
    sounded: list[str] = []
    ctl.sounded.connect(sounded.append)
    restarted: list[str] = []
    worker.restarted.connect(restarted.append)
    worker.start()
    try:
        def rows(type_):
            return [r for r in ctl.model.rows() if r.alert.type == type_]
        qtbot.waitUntil(lambda: bool(rows("system_fault")), timeout=10000)
        fault = rows("system_fault")[0].alert
        assert fault.priority == "critical" and "engine thread killed" in fault.evidence["error"]
        assert fault.alert_id in sounded
        assert any(t.startswith("▲ ENGINE STOPPED") for t in texts)
        qtbot.waitUntil(lambda: bool(restarted), timeout=5000)
        qtbot.waitUntil(lambda: bool(rows("strap_tamper")), timeout=15000)      # the later real tamper
        assert rows("strap_tamper")[0].alert.offender == "OFF-2"
        qtbot.waitUntil(lambda: rows("system_fault")[0].alert.state == "cleared", timeout=5000)
        qtbot.waitUntil(lambda: bar.feed.text() == "● feed connected", timeout=5000)
    finally:
        worker.stop()
        store.close()
    assert not worker.running
    with sqlite3.connect(tmp_path / "console.sqlite") as conn:   # the restarted engine recorded it
        assert conn.execute("SELECT state FROM alerts WHERE type='system_fault'").fetchall() == [("cleared",)]


def test_a_store_that_cannot_be_written_shows_as_a_system_fault_until_it_can(qtbot, tmp_path):
    msgs = heartbeats(T0, T0 + 600)
    worker, ctl, bar, store, texts = rig(tmp_path, msgs, busy_timeout_s=0.1)
    worker.start()
    other = None
    try:
        qtbot.waitUntil(lambda: bar.feed.text() == "● feed connected", timeout=10000)
        other = sqlite3.connect(tmp_path / "console.sqlite", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        qtbot.waitUntil(lambda: bar.feed.text().startswith("▲ SYSTEM FAULT — store:"), timeout=15000)
        faults = [r.alert for r in ctl.model.rows() if r.alert.type == "system_fault"]
        assert faults and faults[0].requirement == "store:write" and "locked" in faults[0].evidence["error"]
        other.execute("ROLLBACK")
        qtbot.waitUntil(lambda: bar.feed.text() == "● feed connected", timeout=15000)
        assert faults[0].alert_id in {r.alert.alert_id for r in ctl.model.rows() if r.alert.state == "cleared"}
    finally:
        if other is not None:
            other.close()
        worker.stop()
        store.close()
