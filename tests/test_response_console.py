"""The alert's response in the console, as an operator works it (issue 21): select an exclusion
breach in the queue with the mouse, see its protocol and contacts, dial the police control room,
record the call with its outcome and reference through the dialog (keyboard and mouse), close
it with a skipped mandatory step and its reason; the store holds every step. Real widgets, a
real SQLite store, QTest input; no engine (the alert is given to the queue as the engine would)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QObject, Qt, QTimer, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QToolButton

from localdb.store import Store
from monitorapp.engine.alerts import Alert, alert_id
from monitorapp.engine.caseload import parse_caseload
from monitorapp.response.protocols import load_protocols
from tests.fixtures_store import T0
from ui.console.alertqueue import AlertQueueController, AlertQueueDock
from ui.console.details import DetailsPanel
from ui.console.stepdialog import CloseStepsDialog, StepDialog
from tests.fixtures_clock import Clock

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints")   # the offscreen platform's dialogs

CASELOAD = {
    "version": 1, "tz": "Europe/London",
    "zones": {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": "Z-EX-1", "properties": {"name": "Victim's street <b>"},
         "geometry": {"type": "Point", "coordinates": [-0.14, 51.54]}}]},
    "offenders": [{
        "id": "OFF-1", "name": "Sam <i>Subject</i>", "risk": "high", "borough": "Camden",
        "device": "TAG-1", "phone": "+44 7700 900123", "address": "1 Example Road, London NW1",
        "order": {"start": "2026-01-05", "end": "2027-01-04", "court_ref": "T20267001",
                  "court": "Highbury Corner"},
        "offence_category": "Violence against the person", "risk_notes": "Do not visit alone",
        "victim_contact": {"name": "V. Contact", "phone": "+44 7700 900456", "relation": "sister"},
        "responsible_officer": {"name": "P. Officer", "email": "po@probation.example",
                                "team": "Camden A", "phone": "+44 20 7946 0500"},
        "requirements": [{"id": "R-1", "type": "exclusion", "zone": "Z-EX-1", "schedule": None}]}],
}
CASELOAD["zones"]["features"][0]["properties"]["radius_m"] = 200


class Dialler(QObject):
    """What the workstation's softphone would be given (QDesktopServices' tel: handler)."""

    def __init__(self):
        super().__init__()
        self.urls = []

    @Slot("QUrl")
    def dial(self, url):
        self.urls.append(url.toString())


@pytest.fixture
def desk(qtbot, tmp_path):
    clock = Clock(T0 + 600)
    store = Store(tmp_path / "store.sqlite", clock=clock, anchor=False)
    store.record_caseload(CASELOAD)
    store.record_protocols(load_protocols(), "sup")
    caseload = parse_caseload(CASELOAD)
    ctl = AlertQueueController(store, "op.jones")
    ctl.sound.enabled = False
    dock = AlertQueueDock(ctl, ["Camden"])
    details = DetailsPanel()
    details.attach(ctl, caseload, dock)
    refused = []

    def close(aid):                          # as the main window's close_alert/_do does
        try:
            ctl.close(aid)
        except ValueError as e:
            refused.append(str(e))
    dock.closeRequested.connect(close)
    for w in (dock, details):
        qtbot.addWidget(w)
        w.resize(1100, 800)
        w.show()
    a = Alert(alert_id("exclusion_entered", "OFF-1", "R-1", T0), "exclusion_entered", "critical",
              "OFF-1", "TAG-1", "R-1", "Z-EX-1", T0, T0 + 30)
    store.on_alert(a, "raised")
    ctl.on_alert_batch([("raised", a)], T0 + 60)
    a.state, a.cleared_at = "cleared", T0 + 400
    store.on_alert(a, "cleared")
    ctl.on_alert_batch([("cleared", a)], T0 + 400)
    ctl.acknowledge(a.alert_id, "police_informed", "taking it, following the protocol")
    dialler = Dialler()
    QDesktopServices.setUrlHandler("tel", dialler, "dial")
    details.refused = refused
    yield store, ctl, dock, details, a.alert_id, dialler
    QDesktopServices.unsetUrlHandler("tel")
    ctl.silence()
    store.close()


def click_row(qtbot, dock, row=0):
    table = dock.table
    rect = table.visualRect(table.model().index(row, 1))
    QTest.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def when_dialog(kind, act, timeout_ms=5000):
    """Run ``act(dialog)`` once the modal dialog of ``kind`` is up (it blocks in exec())."""
    state = {"waited": 0, "done": False}
    timer = QTimer()
    timer.setInterval(20)

    def poll():
        dlg = QApplication.activeModalWidget()
        state["waited"] += 20
        if isinstance(dlg, kind):
            timer.stop()
            try:
                act(dlg)
                state["done"] = True
            except BaseException as e:      # noqa: BLE001 - raised in the test, after exec()
                state["error"] = e
            if dlg.isVisible():             # never leave a modal dialog blocking the test
                state["done"] = False if "error" in state else state["done"]
                dlg.reject()
        elif state["waited"] > timeout_ms:
            timer.stop()
    timer.timeout.connect(poll)
    timer.start()
    state["timer"] = timer
    return state


def finished(state) -> bool:
    """Whether the dialog was driven to its end (what went wrong in it is raised here)."""
    if "error" in state:
        raise state["error"]
    return state["done"]


def ok_button(dlg):
    return dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_an_operator_records_the_police_call_and_closes_with_a_skipped_step(qtbot, desk):
    store, ctl, dock, details, aid, dialler = desk
    click_row(qtbot, dock)
    panel = details.response
    qtbot.waitUntil(lambda: panel.isVisible() and panel.alert_id == aid, timeout=5000)
    text = panel.checklist.text()
    assert "Call the borough police control room" in text and ("☐" in text or "⚠" in text)
    # contacts from the caseload and the centre's file: dial the police with one click
    QTest.mouseClick(panel.findChild(QToolButton, "call_police"), Qt.MouseButton.LeftButton)
    assert dialler.urls == ["tel:+442079460101"]
    QTest.mouseClick(panel.findChild(QToolButton, "copy_victim"), Qt.MouseButton.LeftButton)
    assert QApplication.clipboard().text() == "+44 7700 900456"

    def fill_step(dlg):
        assert dlg.step.currentData() == "call_police"          # the first open step
        assert not ok_button(dlg).isEnabled()                   # no outcome yet
        dlg.outcome.setFocus()
        QTest.keyClick(dlg.outcome, Qt.Key.Key_Down)             # 1 Reached
        assert dlg.outcome.currentData() == "reached"
        assert not ok_button(dlg).isEnabled()                   # the police reference is needed
        QTest.mouseClick(dlg.reference, Qt.MouseButton.LeftButton)
        QTest.keyClicks(dlg.reference, "CAD 4711")
        QTest.mouseClick(dlg.note, Qt.MouseButton.LeftButton)
        QTest.keyClicks(dlg.note, "unit on its way")
        assert ok_button(dlg).isEnabled()
        QTest.mouseClick(ok_button(dlg), Qt.MouseButton.LeftButton)
    s1 = when_dialog(StepDialog, fill_step)
    QTest.mouseClick(panel.step_btn, Qt.MouseButton.LeftButton)
    assert finished(s1)
    store.flush()
    [step] = [r for r in store.ack_log(aid) if r["action"] == "step"]
    assert (step["action_code"], step["operator"], step["note"]) == ("call_police", "op.jones", "unit on its way")
    assert '"reference":"CAD 4711"' in step["reason"]
    assert "✔" in panel.checklist.text() and "CAD 4711" in panel.timeline.toPlainText()

    def second_step(dlg):
        dlg.step.setCurrentIndex(dlg.step.findData("warn_victim"))
        dlg.outcome.setCurrentIndex(dlg.outcome.findData("reached"))
        QTest.keyClick(dlg.outcome, Qt.Key.Key_Return)        # Return takes the dialog's OK
    s2 = when_dialog(StepDialog, second_step)
    QTest.mouseClick(panel.step_btn, Qt.MouseButton.LeftButton)
    assert finished(s2)

    # close: the responsible officer was not informed; first cancel (it stays open), then a reason
    s3 = when_dialog(CloseStepsDialog, lambda dlg: QTest.keyClick(dlg, Qt.Key.Key_Escape))
    QTest.mouseClick(dock.close_btn, Qt.MouseButton.LeftButton)
    assert finished(s3) and ctl.model.row(aid).handling.state == "acknowledged"
    assert details.refused == ["not closed: the protocol's mandatory steps are still open"]

    def give_reason(dlg):
        assert list(dlg.reasons) == ["inform_officer"]          # the one open mandatory step
        assert not ok_button(dlg).isEnabled()
        QTest.keyClicks(dlg.reasons["inform_officer"], "officer on leave; team e-mailed")
        QTest.mouseClick(ok_button(dlg), Qt.MouseButton.LeftButton)
    s4 = when_dialog(CloseStepsDialog, give_reason)
    QTest.mouseClick(dock.close_btn, Qt.MouseButton.LeftButton)
    assert finished(s4)
    store.flush()
    log = store.ack_log(aid)
    assert [(r["action"], r["action_code"]) for r in log] == [
        ("acknowledge", "police_informed"), ("step", "call_police"), ("step", "warn_victim"),
        ("skip", "inform_officer"), ("close", None)]
    assert log[3]["note"] == "officer on leave; team e-mailed"
    assert ctl.model.row(aid).handling.state == "closed"


def test_the_details_panel_shows_the_offenders_record_escaped(qtbot, desk):
    store, ctl, dock, details, aid, _ = desk
    details.show_details({"offender": "OFF-1", "name": "Sam <i>Subject</i>", "borough": "Camden",
                          "risk": "high", "device": "TAG-1", "fix_interval_s": 60,
                          "requirements": [], "now": T0 + 600, "last": None, "tag": {}})
    text = details.record.text()
    for part in ("1 Example Road, London NW1", "2026-01-05", "2027-01-04", "T20267001",
                 "Violence against the person", "Do not visit alone", "P. Officer",
                 "Victim&#x27;s street &lt;b&gt;", "version 1, in force since"):
        assert part in text, part
    assert "<b>Victim" not in text
