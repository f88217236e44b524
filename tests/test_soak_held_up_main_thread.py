"""A main thread held up (an acknowledgement waiting for the store's commit, a busy machine)
while the engine thread goes on (issue 16's soak, benchmarks/bench_soak.py): the engine worker
leaves one batch of positions and one of statistics waiting for it, the latest, instead of a
queued signal every 250 ms each holding every tag's position. Nothing is lost: the newest
position of every tag arrives, and every alert change. Real engine, real worker thread."""
from __future__ import annotations

import time

from PySide6.QtCore import QCoreApplication, QObject, Slot

from monitorapp.engine.caseload import parse_caseload
from monitorapp.engine.engine import Engine
from tests.fixtures_ui import T0, fix, ui_caseload_doc
from ui.console.engineworker import EngineWorker, ReplayFeed


class _MainThreadReceiver(QObject):
    """Counts what reaches the main thread (a QObject's slots: queued calls from the engine)."""

    def __init__(self):
        super().__init__()
        self.positions: list[list] = []
        self.stats: list[dict] = []

    @Slot(list)
    def on_positions(self, moved: list) -> None:
        self.positions.append(moved)

    @Slot(dict)
    def on_stats(self, stats: dict) -> None:
        self.stats.append(stats)


def test_positions_and_statistics_wait_for_a_held_up_main_thread(qtbot):
    caseload = parse_caseload(ui_caseload_doc(2), "test caseload")        # TAG-1 .. TAG-3
    seconds = 600
    msgs = [fix(f"TAG-{1 + i % 3}", 1 + i // 3, T0 + i // 3, 51.52, -0.12 + 1e-6 * i)
            for i in range(3 * seconds)]                                  # a fix a second each
    feed = ReplayFeed(msgs, start=T0, speed=60.0)        # 300 s of the feed take 5 s or more
    worker = EngineWorker(lambda: Engine(caseload, start=T0), feed)
    got = _MainThreadReceiver()
    worker.positions.connect(got.on_positions)
    worker.stats.connect(got.on_stats)
    try:
        worker.start()
        qtbot.waitUntil(lambda: bool(got.positions) and bool(got.stats), timeout=20_000)
        QCoreApplication.processEvents()
        held_positions, held_stats = len(got.positions), len(got.stats)
        # the main thread is held up: it takes no event while the engine takes 300 s of the
        # feed (at least 20 of the worker's 250-ms emits)
        c = worker.engine.counters
        first, deadline = c.messages, time.monotonic() + 60
        while c.messages < first + 900 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert c.messages >= first + 900
        QCoreApplication.processEvents()
        assert len(got.positions) - held_positions <= 2
        assert len(got.stats) - held_stats <= 2
        # the worker goes on once the main thread is back, and the newest position of each
        # tag reaches it
        qtbot.waitUntil(lambda: feed.remaining() == 0 and c.messages == len(msgs), timeout=60_000)
        last_t = T0 + seconds - 1

        def newest_shown():
            latest = {}
            for batch in got.positions:
                for m in batch:
                    latest[m["device"]] = max(latest.get(m["device"], 0.0), m["t"])
            return latest == {f"TAG-{k}": last_t for k in (1, 2, 3)}
        qtbot.waitUntil(newest_shown, timeout=20_000)
        qtbot.waitUntil(lambda: got.stats[-1]["messages"] == len(msgs), timeout=20_000)
    finally:
        worker.stop()
