"""The alert queue with the real engine, worker thread and store: a scripted breach appears,
acknowledging writes the acknowledgement log, a flood shows the banner, shelving follows
ISA-18.2, escalation and flashing follow the clock."""
from __future__ import annotations

import pytest

from localdb.store import Store
from tests.fixtures_ui import T0, battery_script, breach_script, tamper_flood
from ui.console.alertmodel import COL_HANDLING, COL_PRIORITY, COL_TTA
from ui.console.alertqueue import AlertQueueDock, HandlingRefused
from ui.theme import ESCALATED_MARK


def wait_for_alert(qtbot, rig, type_, timeout=15000):
    qtbot.waitUntil(lambda: bool(rig.alerts(type_)), timeout=timeout)
    return rig.alerts(type_)[0]


def test_scripted_breach_appears_in_queue_on_top(qtbot, ui_rig):
    rig = ui_rig(breach_script())
    row = wait_for_alert(qtbot, rig, "exclusion_entered")
    assert row.alert.priority == "critical" and row.alert.offender == "OFF-1"
    assert row.alert.zone == "Z-EX-1"
    proxy = rig.controller.proxy
    qtbot.waitUntil(lambda: proxy.rowCount() >= 1)
    # critical and unacknowledged: first row, shape and word in the priority column
    assert proxy.alert_id_at(0) == row.alert.alert_id
    assert proxy.data(proxy.index(0, COL_PRIORITY)) == "▲ CRITICAL"
    assert proxy.data(proxy.index(0, COL_HANDLING)) == "UNACK"
    assert rig.controller.sound.rings >= 1          # a new critical alert sounds


def test_acknowledge_writes_the_ack_log(qtbot, ui_rig):
    rig = ui_rig(breach_script())
    row = wait_for_alert(qtbot, rig, "exclusion_entered")
    aid = row.alert.alert_id
    with pytest.raises(HandlingRefused, match="note is required"):
        rig.controller.acknowledge(aid, "contacted_subject", "  ")
    rig.controller.acknowledge(aid, "police_informed", "Called 101, ref CAD 4471")
    assert rig.controller.model.row(aid).handling.state == "acknowledged"
    rig.store.flush()
    # read the file with a fresh connection: the record is there under the operator's name
    other = Store(rig.store_path, create=False)
    try:
        log = other.ack_log(aid)
    finally:
        other.close()
    assert [e["action"] for e in log] == ["acknowledge"]
    assert log[0]["operator"] == "op.jones" and log[0]["action_code"] == "police_informed"
    assert log[0]["note"] == "Called 101, ref CAD 4471"
    # closing needs the condition to have cleared: the tag is still inside
    if rig.controller.model.row(aid).alert.state == "active":
        with pytest.raises(HandlingRefused, match="cleared"):
            rig.controller.close(aid)


def test_flood_shows_banner_and_keeps_critical_on_top(qtbot, ui_rig):
    rig = ui_rig(tamper_flood(n=12) + battery_script(T0 + 30))
    dock = AlertQueueDock(rig.controller, ["Camden", "Hackney", "Islington"])
    qtbot.addWidget(dock)
    qtbot.waitUntil(lambda: len(rig.alerts("strap_tamper")) == 12, timeout=15000)
    qtbot.waitUntil(lambda: rig.controller.flood, timeout=5000)
    assert dock.banner.isVisibleTo(dock)
    assert "FLOOD" in dock.banner.text() and "grouped by offender" in dock.banner.text()
    qtbot.waitUntil(lambda: bool(rig.alerts("battery_low")), timeout=15000)
    proxy = rig.controller.proxy
    prios = [rig.controller.model.row(proxy.alert_id_at(r)).alert.priority for r in range(proxy.rowCount())]
    first_non_critical = next((i for i, p in enumerate(prios) if p != "critical"), len(prios))
    assert all(p != "critical" for p in prios[first_non_critical:]), prios


def test_exclusion_and_tamper_cannot_be_shelved_battery_can(qtbot, ui_rig):
    rig = ui_rig(breach_script() + tamper_flood(T0 + 30, n=1) + battery_script(T0 + 60))
    excl = wait_for_alert(qtbot, rig, "exclusion_entered")
    tamper = wait_for_alert(qtbot, rig, "strap_tamper")
    batt = wait_for_alert(qtbot, rig, "battery_low")
    now = rig.controller.now
    for row in (excl, tamper):
        with pytest.raises(HandlingRefused, match="never shelved"):
            rig.controller.shelve(row.alert.alert_id, "noisy", now + 600)
    with pytest.raises(HandlingRefused, match="reason"):
        rig.controller.shelve(batt.alert.alert_id, "  ", now + 600)
    with pytest.raises(HandlingRefused, match="8 hours"):
        rig.controller.shelve(batt.alert.alert_id, "charger at home broken", now + 9 * 3600)
    rig.controller.shelve(batt.alert.alert_id, "charger at home broken", now + 600)
    assert rig.controller.shelved.rowCount() == 1
    assert rig.controller.proxy.mapFromSource(
        rig.controller.model.index(rig.controller.model.source_row(batt.alert.alert_id), 0)).isValid() is False
    rig.store.flush()
    log = rig.store.ack_log(batt.alert.alert_id)
    assert log[-1]["action"] == "shelve" and log[-1]["reason"] == "charger at home broken"


def test_shelved_alert_returns_on_expiry_and_sounds_if_active(qtbot, ui_rig):
    rig = ui_rig(battery_script())
    batt = wait_for_alert(qtbot, rig, "battery_low")
    aid = batt.alert.alert_id
    ctl = rig.controller
    ctl.shelve(aid, "known dead battery, replacement booked", ctl.now + 120)
    assert ctl.model.row(aid).handling.state == "shelved"
    rings = ctl.sound.rings
    qtbot.waitUntil(lambda: (ctl.tick(rig.feed.now()), ctl.model.row(aid).handling.state)[1] == "unacknowledged",
                    timeout=10000)
    assert ctl.shelved.rowCount() == 0
    if ctl.model.row(aid).alert.state == "active":
        assert ctl.sound.rings > rings


def test_escalation_and_flashing_follow_the_clock(qtbot, ui_rig):
    rig = ui_rig(breach_script(), speed=600)
    row = wait_for_alert(qtbot, rig, "exclusion_entered")
    ctl = rig.controller
    rig.worker.alertBatch.disconnect(ctl.on_alert_batch)   # freeze the queue; drive its clock by hand
    ctl.model.tick(row.alert.raised_at + 30, True)
    assert not ctl.model.is_escalated(row) and ctl.model.is_flashing(row)
    ctl.model.tick(row.alert.raised_at + 61, False)
    assert ctl.model.is_escalated(row)
    r = ctl.model.source_row(row.alert.alert_id)
    assert ctl.model.data(ctl.model.index(r, COL_TTA)).startswith(ESCALATED_MARK)
    ctl.silence()                                  # silencing is not acknowledging
    assert ctl.model.row(row.alert.alert_id).handling.state == "unacknowledged"
    assert ctl.model.is_flashing(ctl.model.row(row.alert.alert_id))
