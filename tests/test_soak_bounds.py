"""A console runs for weeks (issue 16's soak, benchmarks/bench_soak.py): what it keeps in memory
is bounded. Each tag's details-chart history stays within its 24-h window, in flat arrays that
are compacted; the queue lets a closed alert go 12 h after it was closed (never while the
pointer holds the rows), an unacknowledged one never; the engine forgets alerts cleared more
than 12 h ago, never an active one nor the last of its cause. Real engine, real SQLite store,
real queue controller and models (checked by Qt's model tester while rows leave)."""
from __future__ import annotations

import copy

from tests.fixtures_ui import T0, ui_caseload_doc
from ui.console.fixhistory import FixHistory

DAY = 86400.0


def test_fix_history_holds_24_hours_at_most_and_stays_compact():
    h = FixHistory(3000, DAY)
    n = 10 * 2880                        # ten days of one fix every 30 s
    for i in range(n):
        h.append(T0 + 30 * i, 51.5 + i * 1e-7, -0.12, 12.3, None if i % 2 else 1.25, 0.87)
    assert len(h) == 2881                # the newest fix and the 24 h before it
    assert h.allocated() <= 2881 * 4 // 3 + 64
    rows = h.rows()
    assert rows[0][0] == T0 + 30 * (n - 2881) and rows[-1][0] == T0 + 30 * (n - 1)
    assert rows[-1][3:] == (12.3, None, 0.87)          # 32-bit values read back as given
    assert rows[-2][4] == 1.25
    assert abs(rows[-1][1] - (51.5 + (n - 1) * 1e-7)) < 1e-12   # positions in full precision
    assert len(h.rows(since=rows[-1][0] - 3600)) == 121
    fast = FixHistory(3000, DAY)         # a tag sending every 5 s is held to max_n
    for i in range(20_000):
        fast.append(T0 + 5 * i, 51.5, -0.12, None, None, None)
    assert len(fast) == 3000 and fast.allocated() <= 4000 + 64
    assert fast.rows()[-1] == (T0 + 5 * 19_999, 51.5, -0.12, None, None, None)


def _rig(tmp_path):
    from localdb.store import Store
    from monitorapp.engine.caseload import parse_caseload
    from monitorapp.engine.engine import Engine
    from ui.console.alertqueue import AlarmSound, AlertQueueController
    caseload = parse_caseload(ui_caseload_doc(2), "test caseload")
    store = Store(tmp_path / "console.sqlite", clock=lambda: T0)
    engine = Engine(caseload, start=T0)
    store.attach(engine)
    changes: list = []
    engine.add_listener(on_alert=lambda a, change: changes.append((change, copy.copy(a))))
    ctl = AlertQueueController(store, "op.jones", sound=AlarmSound(False))
    return caseload, store, engine, ctl, changes


def _deliver(ctl, store, changes, now):
    store.flush()
    batch, changes[:] = list(changes), []
    ctl.on_alert_batch(batch, now)


def test_closed_alerts_leave_the_queue_12_hours_after_closing(qtbot, qtmodeltester, tmp_path):
    caseload, store, engine, ctl, changes = _rig(tmp_path)
    try:
        o1, o2 = caseload.offenders["OFF-1"], caseload.offenders["OFF-2"]
        tamper = engine.raise_alert("strap_tamper", o1, o1.device, None, T0, T0, False, {})
        battery = engine.raise_alert("battery_low", o2, o2.device, None, T0, T0, False, {})
        _deliver(ctl, store, changes, T0)
        qtmodeltester.check(ctl.model)       # watches every change that follows
        qtmodeltester.check(ctl.proxy)
        ctl.acknowledge(tamper.alert_id, "contacted_subject", "strap checked, fitted again")
        engine.clear_alert(tamper, T0 + 60)
        engine.clear_alert(battery, T0 + 60)  # cleared, but nobody acknowledged it
        _deliver(ctl, store, changes, T0 + 60)
        ctl.tick(T0 + 120)
        ctl.close(tamper.alert_id, "resolved")
        ctl.tick(T0 + 6 * 3600)
        assert ctl.model.row(tamper.alert_id) is not None      # closed 6 h ago: still listed
        ctl.proxy.set_frozen(True)            # the pointer is over the queue: nothing leaves
        ctl.tick(T0 + 13 * 3600)
        assert ctl.model.row(tamper.alert_id) is not None
        ctl.proxy.set_frozen(False)
        ctl.tick(T0 + 13 * 3600 + 601)
        assert ctl.model.row(tamper.alert_id) is None
        assert [r.alert.alert_id for r in ctl.model.rows()] == [battery.alert_id]
        assert ctl.model.source_row(battery.alert_id) == 0
        ctl.tick(T0 + 30 * DAY)               # unacknowledged: it waits for an operator
        assert ctl.model.row(battery.alert_id) is not None
        assert [a["alert_id"] for a in store.alerts() if a["alert_id"] == tamper.alert_id]  # the record stays
    finally:
        store.close()


def test_engine_forgets_alerts_cleared_long_ago_but_not_active_ones_or_the_last_of_a_cause(tmp_path):
    caseload, store, engine, _ctl, _changes = _rig(tmp_path)
    try:
        o1, o2 = caseload.offenders["OFF-1"], caseload.offenders["OFF-2"]
        old = engine.raise_alert("strap_tamper", o1, o1.device, None, T0, T0, False, {})
        engine.clear_alert(old, T0 + 60)
        again = engine.raise_alert("strap_tamper", o1, o1.device, None, T0 + 7200, T0 + 7200, False, {})
        assert again.alert_id != old.alert_id          # beyond the re-activation window: a new alert
        engine.clear_alert(again, T0 + 7260)
        active = engine.raise_alert("battery_low", o2, o2.device, None, T0, T0, False, {})
        assert engine.forget_cleared(T0 + 30 * DAY) == 1
        assert set(engine.alerts) == {again.alert_id, active.alert_id}
        assert engine.forget_cleared(T0 + 30 * DAY) == 0
    finally:
        store.close()


def test_the_feed_waits_for_a_store_writer_that_falls_behind(qtbot, tmp_path, monkeypatch):
    """A feed faster than the disk (a full-speed soak, a gateway's day of buffered fixes) waits
    in the feed source: the store writer's queue stays near its limit instead of holding the
    whole backlog in memory, and everything is written once the writer catches up."""
    import threading

    from localdb.store import Store
    from monitorapp.engine.caseload import parse_caseload
    from monitorapp.engine.engine import Engine
    from tests.fixtures_ui import fix
    from ui.console import engineworker
    from ui.console.engineworker import EngineWorker, ReplayFeed
    monkeypatch.setattr(engineworker, "WRITER_BACKLOG_MAX", 200)
    caseload = parse_caseload(ui_caseload_doc(2), "test caseload")
    msgs = [fix(f"TAG-{1 + i % 3}", 1 + i // 3, T0 + 10 * (i // 3), 51.53, -0.11) for i in range(3000)]
    feed = ReplayFeed(msgs, start=T0 + 10_000, speed=1.0)      # all of it due at once
    store = Store(tmp_path / "console.sqlite", clock=feed.now)
    worker = EngineWorker(lambda: Engine(caseload, start=T0), feed, store=store)
    release, inside = threading.Event(), threading.Event()

    def slow_disk(conn):
        inside.set()
        release.wait(30)
    held = threading.Thread(target=lambda: store.writer.call(slow_disk), daemon=True)
    try:
        held.start()                        # the writer is busy (a slow disk): nothing is written
        assert inside.wait(10)
        worker.start()
        qtbot.waitUntil(lambda: store.writer.backlog > 200, timeout=10_000)
        peak = 0
        for _ in range(20):                 # the engine thread keeps ticking; the feed waits
            qtbot.wait(50)
            peak = max(peak, store.writer.backlog)
        assert feed.remaining() > 1000
        assert peak <= 200 + engineworker.CHUNK * 4
        assert store.writer.health() is None and worker.running
        release.set()
        c = worker.engine.counters
        qtbot.waitUntil(lambda: feed.remaining() == 0 and c.messages == 3000, timeout=20_000)
        worker.stop()                       # nothing more comes: what the engine took is written
        store.flush()
        assert c.fixes > 2000 and store.counts()["fixes"] == c.fixes
    finally:
        release.set()
        worker.stop()
        store.close()
