"""Two consoles as clients of the centre (issue 15): the real decider (``monitorapp monitor``
on the PostgreSQL record and the locked Mosquitto), two consoles built as ``main.py --db
postgresql://…`` builds them, each signed in with its own person's login, driven with real key
and mouse events.

A breach shows on both consoles; an acknowledgement on one shows on the other, with who took
it; two acknowledgements at once: the record takes one, the other console is told who took it;
the decider killed: both consoles raise a critical system_fault (with sound) and say "decider
unreachable", never "feed connected"; an action while the centre is cut off is refused at once.
"""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.fixtures_centre import answer_ack
from tests.fixtures_ui import INSIDE, OUTSIDE, fix

WAIT = 30_000
pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse", r"does not support raise")


def breach(t0: float) -> list[tuple]:
    """TAG-1 outside, then inside the exclusion zone of OFF-1, at the wall clock."""
    lines = [fix("TAG-1", 1, t0 - 60, *OUTSIDE), fix("TAG-1", 2, t0 - 30, *OUTSIDE)]
    lines += [fix("TAG-1", 3 + k, t0 - 20 + 10 * k, *INSIDE) for k in range(3)]
    return [(time.time(), b) for _rx, b in lines]


def alerts_of(console, type_: str) -> list:
    return [r for r in console.controller.model.rows() if r.alert.type == type_]


def wait_breach(qtbot, *consoles):
    for c in consoles:
        qtbot.waitUntil(lambda c=c: bool(alerts_of(c, "exclusion_entered")), timeout=WAIT)
    return alerts_of(consoles[0], "exclusion_entered")[0].alert.alert_id


def press_ack(qtbot, console, alert_id: str, note: str) -> None:
    """Select the alert in the queue with the mouse, press A, answer the dialog."""
    from PySide6.QtWidgets import QApplication
    w = console.window
    w.raise_()
    w.activateWindow()            # the A shortcut is the window's: it is the active one
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5000)
    w.focus_dock(w.queue_dock, w.queue.table)
    assert w.queue.select_alert(alert_id)
    rect = w.queue.table.visualRect(w.queue.table.currentIndex())
    QTest.mouseClick(w.queue.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    seen = []
    answer_ack(seen, note=note)
    QTest.keyClick(w.queue.table, Qt.Key.Key_A)          # the A shortcut
    assert seen, "the acknowledge dialog did not open"


def test_a_breach_shows_on_both_consoles_and_an_acknowledgement_on_one_shows_on_the_other(qtbot, centre):
    mon = centre.start_monitor()
    c1 = centre.console("olly.operator")
    c2 = centre.console("sam.supervisor", "supervisor")
    for c in (c1, c2):
        qtbot.waitUntil(lambda c=c: c.window.status.feed.text().startswith("●"), timeout=WAIT)
        assert "feed connected" not in c.window.status.feed.text()
    assert centre.publish(breach(time.time()))["published"] == 5
    aid = wait_breach(qtbot, c1, c2)
    for c in (c1, c2):
        row = c.controller.model.row(aid)
        assert row.handling.state == "unacknowledged" and row.alert.offender == "OFF-1"
        assert c.controller.sound.rings >= 1            # it sounded on both
    press_ack(qtbot, c1, aid, "Phoned the subject, leaving the street")
    # recorded as olly.operator by the server; the decider republishes; both show it
    for c in (c1, c2):
        qtbot.waitUntil(lambda c=c: c.controller.model.row(aid).handling.state == "acknowledged",
                        timeout=WAIT)
        assert c.controller.model.row(aid).handling.acked_by == "olly.operator"
    assert any(n == "centre_recorded" and f["alert_id"] == aid for n, f in c1.events)
    log = c1.store.ack_log(aid)
    assert [(e["operator"], e["action"]) for e in log] == [("olly.operator", "acknowledge")]
    # the other console, asked to acknowledge it, names who took it (without asking the record)
    c2.window.acknowledge(aid)
    assert any(n == "handling_refused" and "olly.operator" in f["reason"] for n, f in c2.events)


def test_two_acknowledgements_at_once_one_wins_and_the_other_is_told_who(qtbot, centre):
    mon = centre.start_monitor()
    c1 = centre.console("ann.operator")
    c2 = centre.console("bob.operator")
    assert centre.publish(breach(time.time()))["published"] == 5
    aid = wait_breach(qtbot, c1, c2)
    # both press A before either hears the decider's answer: console 2 is behind on the broker
    c2.centre._drain_timer.stop()                                   # noqa: SLF001
    press_ack(qtbot, c1, aid, "Called the victim's officer")
    qtbot.waitUntil(lambda: any(n == "centre_recorded" for n, _ in c1.events), timeout=WAIT)
    assert c2.controller.model.row(aid).handling.state == "unacknowledged"    # it has not heard
    press_ack(qtbot, c2, aid, "Sent the response car")
    qtbot.waitUntil(lambda: any(n == "centre_refused" for n, _ in c2.events), timeout=WAIT)
    refusal = next(f for n, f in c2.events if n == "centre_refused")
    assert refusal["by"] == "ann.operator" and "ann.operator" in refusal["reason"]
    assert "ann.operator" in c2.window.statusBar().currentMessage()
    c2.centre._drain_timer.start()                                  # noqa: SLF001
    qtbot.waitUntil(lambda: c2.controller.model.row(aid).handling.acked_by == "ann.operator", timeout=WAIT)
    assert [e["operator"] for e in c1.store.ack_log(aid)] == ["ann.operator"]


def test_the_decider_killed_every_console_raises_a_system_fault(qtbot, centre):
    mon = centre.start_monitor()
    c1 = centre.console("kim.operator")
    c2 = centre.console("lee.operator")
    for c in (c1, c2):
        qtbot.waitUntil(lambda c=c: c.window.status.feed.text().startswith("●"), timeout=WAIT)
    rings = [c.controller.sound.rings for c in (c1, c2)]
    mon.kill()          # SIGKILL: the broker publishes its last will ("lost") after the keepalive
    for c, before in zip((c1, c2), rings):
        qtbot.waitUntil(lambda c=c: bool(alerts_of(c, "system_fault")), timeout=60_000)
        fault = alerts_of(c, "system_fault")[0]
        assert fault.alert.priority == "critical" and fault.alert.state == "active"
        assert "decider unreachable" in fault.alert.evidence["error"]
        assert c.controller.sound.rings > before
        text = c.window.status.feed.text()
        assert "decider unreachable" in text and "feed connected" not in text
        assert c.window.stale_banner.isVisible()
    # acting while the decider is gone is refused at once: nothing recorded
    from ui.console.centreclient import UNREACHABLE
    assert c1.centre.fault_text
    c1.window.close_alert("A-nothing")
    assert c1.store.ack_log() == []
    assert any(n == "handling_refused" for n, _ in c1.events)
    assert UNREACHABLE.split(";")[0] in (c1.centre.fault_text and UNREACHABLE)


def test_a_zone_edit_goes_to_the_record_on_the_version_shown_and_a_stale_one_is_refused(qtbot, centre):
    import copy
    from ui.settings import Settings
    Settings().set("zones/approval", "none")          # no second person for this test
    centre.start_monitor()
    c1 = centre.console("zoe.operator")
    qtbot.waitUntil(lambda: c1.centre.zone_versions.get("Z-EX-1") == 1, timeout=WAIT)
    feature = copy.deepcopy(next(f for f in c1.window.zone_features() if f["id"] == "Z-EX-1"))
    ring = feature["geometry"]["coordinates"][0]
    ring[1][0] += 0.002                                # one corner dragged east
    ring[2][0] += 0.002
    c1.window.zone_changes.edit_from_map(feature)     # what the map's zoneEdited signal calls
    sent = next(f for n, f in c1.events if n == "zone_sent")
    assert sent == {"zone": "Z-EX-1", "removed": False, "base_version": 1}
    # the record took version 2 as zoe.operator; the decider applied it and published it
    qtbot.waitUntil(lambda: c1.centre.zone_versions.get("Z-EX-1") == 2, timeout=WAIT)
    assert c1.caseload.zones["Z-EX-1"].geometry["coordinates"][0][1][0] == ring[1][0]
    row = c1.store.reader().execute("SELECT created_by FROM zones WHERE zone_id='Z-EX-1' AND version=2").fetchone()
    assert row[0] == "zoe.operator"
    # someone else saves version 3 while this console has not heard of it yet: refused, and why
    c1.centre._drain_timer.stop()                                   # noqa: SLF001
    other = centre.people.store("yan.operator")
    other.record_zone_edit(dict(feature, properties=dict(feature["properties"], name="moved")), "yan.operator",
                           base_version=2)
    ring[1][0] += 0.001
    c1.window.zone_changes.edit_from_map(feature)
    qtbot.waitUntil(lambda: any(n == "zone_refused" for n, _ in c1.events), timeout=WAIT)
    reason = next(f["reason"] for n, f in c1.events if n == "zone_refused")
    assert "version 3 was saved by yan.operator" in reason
    c1.centre._drain_timer.start()                                  # noqa: SLF001
    qtbot.waitUntil(lambda: c1.centre.zone_versions.get("Z-EX-1") == 3, timeout=WAIT)


def test_a_zone_version_the_decider_refuses_is_said_on_every_console_and_not_enforced(qtbot, centre):
    """A version saved in the record that the decider cannot apply (here: drawn for an offender
    the caseload does not hold) is not silently ignored: the console of the person who saved it
    warns that it is in the record but not enforced and why, every other console says so in its
    status bar, and every map keeps what is in force."""
    import copy
    centre.start_monitor()
    other, saver = centre.console("zoe.operator"), centre.console("yan.operator")
    for c in (other, saver):
        qtbot.waitUntil(lambda c=c: c.centre.zone_versions.get("Z-EX-1") == 1, timeout=WAIT)
    feature = copy.deepcopy(next(f for f in saver.window.zone_features() if f["id"] == "Z-EX-1"))
    drawn = dict(feature, id="Z-DRAWN-1", properties={
        "name": "drawn", "offender": "OFF-NOT-HELD",
        "requirement": {"id": "R-DRAWN-1", "type": "exclusion", "zone": "Z-DRAWN-1", "schedule": None}})
    centre.people.store("yan.operator").record_zone_edit(drawn, "yan.operator")
    for c in (other, saver):
        qtbot.waitUntil(lambda c=c: any(n == "zone_refused" for n, _ in c.events), timeout=WAIT)
        reason = next(f["reason"] for n, f in c.events if n == "zone_refused")
        assert "version 1, saved by yan.operator, is in the record" in reason, reason
        assert "not enforced" in reason and "OFF-NOT-HELD" in reason, reason
        assert "Z-DRAWN-1" not in c.caseload.zones and "Z-DRAWN-1" not in {
            f["id"] for f in c.window.zone_features()}
    assert any(n == "warning" and "Z-DRAWN-1" in f["text"] for n, f in saver.events)
    assert not any(n == "warning" and "Z-DRAWN-1" in f["text"] for n, f in other.events)
    assert any(n == "notice" and "not enforced" in f["text"] for n, f in other.events)
    bar = other.window.statusBar()      # what matters first: the bar cuts a long message
    assert bar.currentMessage().startswith("Zone Z-DRAWN-1 NOT ENFORCED: "), bar.currentMessage()
    assert "OFF-NOT-HELD" in bar.currentMessage() and "is in the record" in bar.toolTip()
    bar.showMessage("something else")
    assert bar.toolTip() == ""
