"""Done when (issue 21): an operator takes an exclusion breach from raise to close following its
protocol, with the calls recorded, and the supervisor sees the whole timeline in the review.

The centre for real: the decider (``monitorapp monitor``) on a PostgreSQL record and the locked
Mosquitto, a console built as ``main.py --db postgresql://…`` builds it, signed in as the
operator's own login; the protocols recorded by a supervisor's login. The operator clicks the
alert, acknowledges it with A, records the police call through the step dialog (keyboard and
mouse), and when the subject has left closes it with Close, typing the reasons for the
mandatory steps not done; the server wrote every step under the operator's name, the chain
verifies, and the supervisor's review of the record carries the timeline.
"""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from localdb.hashchain import verify_chain
from monitorapp.response.protocols import load_protocols
from tests.fixtures_ui import OUTSIDE, fix
from tests.test_response_console import finished, ok_button, when_dialog
from tests.test_ui_client_centre import WAIT, breach, press_ack, pytestmark  # noqa: F401
from ui.console.stepdialog import CloseStepsDialog, StepDialog


def test_an_exclusion_breach_worked_through_the_centre_and_reviewed(qtbot, centre, people):
    centre.start_monitor()
    sup = people.store("sam.supervisor", "supervisor")
    assert sup.record_protocols(load_protocols(), "sam.supervisor") == 1
    c = centre.console("olly.operator")
    qtbot.waitUntil(lambda: c.window.status.feed.text().startswith("●"), timeout=WAIT)
    centre.publish(breach(time.time()))
    qtbot.waitUntil(lambda: any(r.alert.type == "exclusion_entered" for r in c.controller.model.rows()),
                    timeout=WAIT)
    aid = next(r.alert.alert_id for r in c.controller.model.rows() if r.alert.type == "exclusion_entered")
    press_ack(qtbot, c, aid, "Taking it: following the protocol")
    qtbot.waitUntil(lambda: c.controller.model.row(aid).handling.state == "acknowledged", timeout=WAIT)
    panel = c.window.details.response
    assert panel is not None and panel.alert_id == aid
    qtbot.waitUntil(lambda: "Call the borough police control room" in panel.checklist.text(), timeout=WAIT)

    def police(dlg):
        assert dlg.step.currentData() == "call_police"
        QTest.keyClick(dlg.outcome, Qt.Key.Key_Down)                       # Reached
        QTest.keyClicks(dlg.reference, "CAD 2211")
        QTest.mouseClick(ok_button(dlg), Qt.MouseButton.LeftButton)
    s = when_dialog(StepDialog, police)
    QTest.mouseClick(panel.step_btn, Qt.MouseButton.LeftButton)
    assert finished(s)
    qtbot.waitUntil(lambda: "CAD 2211" in panel.timeline.toPlainText(), timeout=WAIT)

    # the subject leaves the zone: the alert clears, and may be closed
    t = time.time()
    centre.publish([(time.time(), fix("TAG-1", 20 + k, t - 10 + 5 * k, *OUTSIDE)[1]) for k in range(3)])
    qtbot.waitUntil(lambda: c.controller.model.row(aid).alert.state == "cleared", timeout=WAIT)

    def reasons(dlg):
        assert list(dlg.reasons) == ["warn_victim", "inform_officer"]
        QTest.keyClicks(dlg.reasons["warn_victim"], "no victim named in the order")
        QTest.keyClicks(dlg.reasons["inform_officer"], "out of hours; e-mailed the team")
        QTest.keyClicks(dlg.note, "left the zone after 4 minutes")
        QTest.mouseClick(ok_button(dlg), Qt.MouseButton.LeftButton)
    s = when_dialog(CloseStepsDialog, reasons)
    QTest.mouseClick(c.window.queue.close_btn, Qt.MouseButton.LeftButton)
    assert finished(s)
    qtbot.waitUntil(lambda: c.controller.model.row(aid).handling.state == "closed", timeout=WAIT)

    log = sup.ack_log(aid)
    assert [(r["action"], r["action_code"], r["operator"]) for r in log] == [
        ("acknowledge", "police_informed", "olly.operator"), ("step", "call_police", "olly.operator"),
        ("skip", "warn_victim", "olly.operator"), ("skip", "inform_officer", "olly.operator"),
        ("close", None, "olly.operator")]
    assert verify_chain(sup.reader(), "ack_log").intact
    from ui.views.review import handling_records
    rec = next(r for r in handling_records(sup) if r["alert_id"] == aid)
    assert rec["steps"] == 1 and rec["skipped"].startswith("warn_victim: no victim named")
    assert "Call the borough police control room: Reached (ref CAD 2211)" in rec["timeline"]
