"""Trail playback: loading an offender's stored fixes, the slider, play and pause, the map
following the current fix (real map page), accuracy shades, gaps and the audit record."""
from __future__ import annotations

import json

import pytest

from tests.fixtures_map import map_log_ignore, wait_state
from ui.views.playback import ACC_BANDS, PlaybackPanel, accuracy_shade, gaps
from ui.roles import RoleRefused

pytestmark = map_log_ignore


def _with_gap(crime_store):
    """OFF-D's tag reports again 40 minutes after it went quiet, with a poor fix."""
    from tests.fixtures_store import fix_at
    t = crime_store.t0 - 3 * 3600 + 2400
    for k in range(5):
        crime_store.store.on_fix(fix_at("TAG-D", 100 + k, t + 60 * k, 500 + 20 * k, 0, acc=150 if k == 0 else 8), True)
    crime_store.store.flush()


def test_load_seek_and_gaps(qtbot, crime_store, own, map_view):
    _with_gap(crime_store)
    panel = own(PlaybackPanel(crime_store.store, crime_store.sessions["police_analyst"],
                              map_view=map_view, embed_map=False))
    n = panel.load("OFF-D", crime_store.t0 - 5 * 3600, crime_store.t0)
    assert n == 61 + 5
    assert len(panel.gap_list) == 1 and panel.gap_list[0][0] == 61
    assert "1 gap over 10 minutes, the longest 40 min" in panel.gap_summary.text()
    panel.slider.setValue(61)
    assert panel.index == 61
    assert "after a gap of 40 min" in panel.position.text() and "±150 m" in panel.position.text()
    assert panel.dots.data["brush"][61].color().name() == ACC_BANDS[-1][1]
    state = wait_state(qtbot, map_view, lambda s: "TAG-D" in json.dumps(s.get("selected")))
    assert state["trail"]
    audit = [r for r in crime_store.store.audit_log() if r["action"] == "trail_playback"]
    assert audit[-1]["who"] == "pc.smith" and audit[-1]["detail"]["who"] == "OFF-D"


def test_play_and_pause(qtbot, crime_store, own):
    panel = own(PlaybackPanel(crime_store.store, crime_store.sessions["supervisor"]))
    assert panel.load("OFF-A", crime_store.t0 - 1800, crime_store.t0 + 5400) == 121
    panel.speed.setCurrentIndex(panel.speed.findData(600))
    panel.play_button.click()
    assert panel.playing and "Pause" in panel.play_button.text()
    qtbot.waitUntil(lambda: panel.index >= 3, timeout=10_000)
    panel.play_button.click()
    assert not panel.playing
    stopped = panel.index
    qtbot.wait(300)
    assert panel.index == stopped


def test_helpers_and_roles(crime_store):
    assert accuracy_shade(5) == ACC_BANDS[0][1] and accuracy_shade(500) == ACC_BANDS[-1][1]
    assert gaps([{"t": 0}, {"t": 60}, {"t": 1000}]) == [(2, 940)]
    with pytest.raises(RoleRefused):
        PlaybackPanel(crime_store.store, crime_store.sessions["trainer"])
