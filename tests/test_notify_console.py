"""What operators and supervisors see of notifications (issue 20): on each alert, who was told,
when and whether it was delivered; a supervisor's resend with a reason typed into the dialog;
the KPI dashboard's delays per type and the review's line per alert. The rows are the real
outbox's, made by the real notifier through a real SMTP relay."""
from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit

from localdb.store import Store
from tests.fixtures_mqtt import wait_until
from tests.notify_kit import OFFICER, Wired, centre_policy, notify_caseload_doc, tamper_lines
from ui.console.notifications import NotificationsPanel, notification_summary
from ui.views.kpi import notification_kpis

# the offscreen platform's note on a dialog's size hints: not ours (as tests/test_flood_queue.py)
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def notified(tmp_path, smtp_relay):
    """A store with one tamper alert: the officer's notification delivered, the police's failed
    (no contact for the borough, whose name is hostile markup)."""
    store = Store(tmp_path / "record.sqlite", anchor=False)
    doc = notify_caseload_doc()
    doc["offenders"][0]["borough"] = "<b>Nowhere</b>"
    w = Wired(store, doc, centre_policy(), smtp_relay.settings())
    w.feed(tamper_lines())
    alert_id = next(a.alert_id for a in w.engine.alerts.values() if a.type == "strap_tamper")
    wait_until(lambda: sorted(r["status"] for r in w.rows(alert_id)) == ["failed", "sent"], 15, "rows")
    yield w, alert_id
    w.stop()
    store.close()


def test_each_alert_shows_who_was_notified_and_a_supervisor_resends(qtbot, notified, smtp_relay):
    w, alert_id = notified
    panel = NotificationsPanel(w.store, who="sup1", can_resend=True)
    qtbot.addWidget(panel)
    panel.show()
    panel.show_alert(alert_id)
    t = panel.table
    assert t.rowCount() == 2
    cells = {t.item(r, 0).text(): t.item(r, 2).text() for r in range(2)}
    officer = next(k for k in cells if OFFICER in k)
    assert officer.startswith("Responsible officer: Pat Officer")
    assert cells[officer].startswith("delivered ") and "after the step" in cells[officer]
    police = next(k for k in cells if k.startswith("Police"))
    assert cells[police] == "not delivered: no contact for police:<b>Nowhere</b> in the caseload or the policy"
    assert "sending" in t.item(0, 0).toolTip() or "sending" in t.item(1, 0).toolTip()

    # the supervisor selects the officer's row and resends it with a reason typed in the dialog
    row = next(r for r in range(2) if OFFICER in t.item(r, 0).text())
    rect = t.visualItemRect(t.item(row, 0))
    QTest.mouseClick(t.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.selected()["address"] == OFFICER

    def answer():
        dlg = QApplication.activeModalWidget()
        edit = dlg.findChild(QLineEdit)
        QTest.keyClicks(edit, "officer says it never arrived")
        QTest.keyClick(edit, Qt.Key.Key_Return)
    QTimer.singleShot(200, answer)
    QTest.mouseClick(panel.resend_btn, Qt.MouseButton.LeftButton)
    assert "Queued to be sent again" in panel.message.text()
    msgs = smtp_relay.wait_for(2)
    assert msgs[1]["to"] == [OFFICER]
    assert "officer says it never arrived" in msgs[1]["message"].get_body(("plain",)).get_content()
    audit = [e for e in w.store.audit_log() if e["action"] == "notification_resend"]
    assert len(audit) == 1 and audit[0]["who"] == "sup1"
    wait_until(lambda: (panel.refresh(), panel.table.rowCount() == 3 and any(
        panel.table.item(r, 1).text() == "sent again" and panel.table.item(r, 2).text().startswith("delivered")
        for r in range(3)))[1], 15, "the resend shown delivered")


def test_a_resend_without_a_reason_is_refused_and_an_operator_has_no_button(qtbot, notified):
    w, alert_id = notified
    op = NotificationsPanel(w.store, who="op1", can_resend=False)
    qtbot.addWidget(op)
    op.show_alert(alert_id)
    assert not op.resend_btn.isVisibleTo(op)
    sup = NotificationsPanel(w.store, who="sup1", can_resend=True)
    qtbot.addWidget(sup)
    sup.show_alert(alert_id)
    nid = sup.rows[0]["notification_id"]
    assert sup.resend(nid, "   ") is None and "needs a reason" in sup.message.text()
    assert not [e for e in w.store.audit_log() if e["action"] == "notification_resend"]


def test_kpis_and_the_review_include_notification_delays(notified):
    w, alert_id = notified
    rows = w.notifier.outbox.all()
    k = notification_kpis(rows)
    d = k["strap_tamper"]
    assert d["sent"] == 1 and d["failed"] == 1 and d["median_s"] == d["max_s"] >= 0
    line = notification_summary(w.store)[alert_id]
    assert line.startswith("1 delivered, the first ") and line.endswith("1 not delivered")
    from ui.views.review import handling_records
    rec = next(r for r in handling_records(w.store, now=time.time()) if r["alert_id"] == alert_id)
    assert rec["notified"] == line
