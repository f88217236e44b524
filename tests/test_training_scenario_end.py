"""A training scenario whose feed ends by design says "scenario ended", never "feed lost".

The feed-outage preset on the real simulator, engine thread and training store, in the trainer's
view at ×600 (30 simulated minutes in 3 real seconds): its scripted 8-minute outage raises one
``feed_lost`` alert, as it must; the end of the scenario raises none, however long the console
stays open after it. The status bar, the wall board and the trainer's line say the scenario
ended at 12:30 (its simulated local time), in grey, and Start runs it again."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel

from ui.views.trainer import TrainerPanel

# offscreen has no window manager: the wall board's show() and raise_() say so
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")


def _feed_lost(run) -> list[dict]:
    run.store.flush()
    return [a for a in run.store.alerts() if a["type"] == "feed_lost"]


def test_the_end_of_a_scenario_is_scenario_ended_not_feed_lost(qtbot, handled_store, own, tmp_path):
    panel = own(TrainerPanel(handled_store.sessions["trainer"], store_dir=tmp_path / "training",
                             map_factory=lambda theme: QLabel("no map")))
    panel.speed.setCurrentIndex(panel.speed.findData(600))
    run = panel.start("feed_outage")
    console = panel.console
    assert run.feed.ended_at is None          # running: not ended
    # the scripted outage (10 min in, 8 min long) is a lost feed: one feed_lost alert
    qtbot.waitUntil(lambda: len(_feed_lost(run)) == 1, timeout=30_000)
    qtbot.waitUntil(lambda: run.feed.ended_at is not None, timeout=30_000)
    ended = run.feed.ended_at
    assert ended == run.end                   # 30 simulated minutes after 12:00
    # ten simulated minutes past the end (1 s at x600): ten times the 60 s that makes a lost feed
    qtbot.waitUntil(lambda: run.feed.now() > ended + 600, timeout=30_000)
    qtbot.waitUntil(lambda: console.status.ended_at == ended, timeout=10_000)
    qtbot.wait(600)                            # a few more ticks of the engine thread
    lost = _feed_lost(run)
    assert len(lost) == 1 and lost[0]["raised_at"] < ended - 600, lost     # only the outage's
    assert not [r for r in run.controller.model.rows()
                if r.alert.type == "feed_lost" and r.alert.raised_at >= ended - 60]

    status = console.status
    assert status.feed.text() == "■ SCENARIO ENDED at 12:30", status.feed.text()
    assert status.feed.objectName() == "feedEnded" and status.connected is False
    assert "Views ▸ Training scenarios" in status.feed.toolTip()
    console.show_wallboard()
    board = console.wallboard
    assert board.feed.text() == "■ SCENARIO ENDED at 12:30"
    assert board.palette_.priority["critical"] not in board.feed.styleSheet()     # not an alarm
    assert board.palette_.dim_text in board.feed.styleSheet()
    panel._tick()
    assert "SCENARIO ENDED at 12:30" in panel.clock.text() and "Start runs it again" in panel.clock.text()

    # Start runs it again: a fresh run, not ended, the status bar back to the live feed's state
    again = panel.start("feed_outage")
    assert again is not run and again.feed.ended_at is None
    qtbot.waitUntil(lambda: panel.console.status.feed.text() == "● feed connected", timeout=30_000)
    board.close()
