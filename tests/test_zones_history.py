"""The details chart measures the past against the zone version in force at the time (the
version that decided the alert), not against a later edit: the real engine thread, store and
scripted feed of the console."""
from __future__ import annotations

from tests.fixtures_ui import breach_script

MOVED = [[-0.1250, 51.5180], [-0.1150, 51.5180], [-0.1150, 51.5220], [-0.1250, 51.5220], [-0.1250, 51.5180]]


def details(qtbot, worker, offender="OFF-1"):
    with qtbot.waitSignal(worker.details, timeout=10_000) as got:
        worker.request_details(offender)
    return got.args[0]


def test_chart_uses_the_zone_version_that_decided_the_alert(qtbot, ui_rig):
    rig = ui_rig(breach_script(), speed=600)
    qtbot.waitUntil(lambda: bool(rig.alerts("exclusion_entered")), timeout=15_000)
    qtbot.waitUntil(lambda: rig.feed.remaining() == 0, timeout=15_000)
    alert = rig.alerts("exclusion_entered")[0].alert
    before = details(qtbot, rig.worker)
    assert len(before["t"]) == 15
    inside_before = [d for t, d in zip(before["t"], before["distance_m"]) if t >= alert.start]
    assert inside_before and all(d < 0 for d in inside_before)
    # the zone is moved afterwards onto where the tag was before the breach
    moved = {"type": "Feature", "id": "Z-EX-1", "properties": {"name": "Victim's street (moved)"},
             "geometry": {"type": "Polygon", "coordinates": [MOVED]}}
    with qtbot.waitSignal(rig.worker.zoneApplied, timeout=10_000) as applied:
        rig.worker.update_zone(moved)
    assert applied.args[1] == alert.zone_version + 1
    after = details(qtbot, rig.worker)
    # the fixes before the edit: still against version 1 (inside where the alert said inside,
    # far outside before the breach); none against the moved zone
    assert after["distance_m"] == before["distance_m"]
    assert after["t"] == before["t"]
    assert after["zone_changes"] and after["zone_changes"][0] >= before["t"][-1]


def test_a_removed_zone_leaves_the_past_in_the_chart(qtbot, ui_rig):
    rig = ui_rig(breach_script(), speed=600)
    qtbot.waitUntil(lambda: rig.feed.remaining() == 0, timeout=15_000)
    before = details(qtbot, rig.worker)
    with qtbot.waitSignal(rig.worker.zoneApplied, timeout=10_000):
        rig.worker.remove_zone("Z-EX-1")
    after = details(qtbot, rig.worker)
    assert after["distance_m"] == before["distance_m"] and any(d < 0 for d in after["distance_m"])
