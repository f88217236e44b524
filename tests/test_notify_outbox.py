"""Notifications of breaches through a real SMTP relay (aiosmtpd, STARTTLS, AUTH), from a real
store of either backend (SQLite file, PostgreSQL record): exactly one message per recipient,
the right content, the outbox and the audit log recording it, nothing twice across a restart,
closes notified with their outcome, a supervisor's audited resend (spec v2 §9, issue 20)."""
from __future__ import annotations

import pytest

from localdb.outbox import ResendError
from tests.fixtures_mqtt import wait_until
from tests.notify_kit import (OFFICER, POLICE, SENDER, Wired, centre_policy, notify_caseload_doc,
                              tamper_lines)


class Record:
    """The decider's store, and the people who handle alerts on it."""

    def __init__(self, decider, operator, supervisor, names):
        self.decider, self.operator, self.supervisor = decider, operator, supervisor
        self.op_name, self.sup_name = names


@pytest.fixture(params=["sqlite", "pg"])
def record(request, tmp_path):
    if request.param == "sqlite":
        from localdb.store import Store
        s = Store(tmp_path / "record.sqlite", anchor=False)
        try:
            yield Record(s, s, s, ("op1", "sup1"))
        finally:
            s.close()
    else:
        people = request.getfixturevalue("people")
        yield Record(people.store("dec1", "decider"), people.store("op1", "operator"),
                     people.store("sup1", "supervisor"), ("op1", "sup1"))


def _text(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def test_a_tamper_sends_one_message_per_recipient_and_a_close_its_outcome(record, smtp_relay):
    w = Wired(record.decider, notify_caseload_doc(), centre_policy(), smtp_relay.settings())
    try:
        w.feed(tamper_lines(restored=True))
        msgs = smtp_relay.wait_for(2)
        assert sorted(r for m in msgs for r in m["to"]) == sorted([OFFICER, POLICE])
        alert_id = next(a.alert_id for a in w.engine.alerts.values() if a.type == "strap_tamper")
        wait_until(lambda: [r["status"] for r in w.rows(alert_id)] == ["sent", "sent"], 15, "both sent")
        rows = {r["address"]: r for r in w.rows(alert_id)}
        for m in msgs:
            msg, to = m["message"], m["to"][0]
            assert m["tls"] and m["auth"] and m["from"] == SENDER
            assert msg["To"].addresses[0].addr_spec == to
            assert msg["Message-ID"] == f"<{rows[to]['notification_id']}@centre.example>"
            assert alert_id in msg["Subject"] and "Strap or case tamper" in msg["Subject"]
            body = _text(msg)
            assert "Test Subject (OFF-1)" in body and "TAG-1" in body and alert_id in body
            assert "&lt;" not in body
            assert msg.get_body(("html",)) is not None
        for r in rows.values():
            assert r["delay_s"] is not None and r["delay_s"] >= 0 and r["sent_at"] is not None
            assert [a["outcome"] for a in r["attempts_log"]] == ["planned", "sending", "committing", "sent"]
        sent = [e for e in record.supervisor.audit_log() if e["action"] == "notification_sent"]
        assert len(sent) == 2 and all(e["detail"]["alerts"] == [alert_id] for e in sent)

        # the strap restored, an operator acknowledges and closes: one message each with the outcome
        record.operator.acknowledge(alert_id, record.op_name, "police_informed",
                                    "Police attended; strap refitted")
        record.operator.close_alert(alert_id, record.op_name, "Device checked")
        msgs = smtp_relay.wait_for(4)
        closes = msgs[2:]
        assert sorted(r for m in closes for r in m["to"]) == sorted([OFFICER, POLICE])
        for m in closes:
            body = _text(m["message"])
            assert "closed" in m["message"]["Subject"]
            assert "police_informed" in body and "Police attended; strap refitted" in body
            assert "Device checked" in body
        wait_until(lambda: sum(r["status"] == "sent" for r in w.rows(alert_id)) == 4, 15, "closes sent")
    finally:
        w.stop()

    # a restart: the engine raises the same alert again (its journal replayed), and a new one
    w2 = Wired(record.decider, notify_caseload_doc(), centre_policy(), smtp_relay.settings())
    try:
        for a in list(w.engine.alerts.values()):
            w2.notifier.on_alert(a, "raised")
        w2.feed(tamper_lines(t0=__import__("time").time() - 60))
        wait_until(lambda: len(smtp_relay.messages) >= 6, 30, "the new alert's two messages")
        wait_until(lambda: w2.notifier.outbox.due(float("inf")) == [], 15, "the outbox drained")
        assert len(w2.rows(alert_id)) == 4
        assert len(smtp_relay.to(OFFICER)) == 3 and len(smtp_relay.to(POLICE)) == 3
    finally:
        w2.stop()


def test_a_supervisor_resends_with_a_reason_audited(record, smtp_relay):
    w = Wired(record.decider, notify_caseload_doc(), centre_policy(), smtp_relay.settings())
    try:
        w.feed(tamper_lines())
        smtp_relay.wait_for(2)
        alert_id = next(a.alert_id for a in w.engine.alerts.values() if a.type == "strap_tamper")
        wait_until(lambda: all(r["status"] == "sent" for r in w.rows(alert_id)), 15, "sent")
        first = next(r for r in w.rows(alert_id) if r["address"] == OFFICER)
        from centraldb.outbox import outbox_for
        seen = outbox_for(record.operator).of_alert(alert_id)          # an operator reads them
        assert {r["address"] for r in seen} == {OFFICER, POLICE} and seen[0]["attempts_log"]
        sup = outbox_for(record.supervisor)
        with pytest.raises(ResendError):
            sup.resend(first["notification_id"], record.sup_name, "  ", 0.0)
        if record.operator is not record.supervisor:           # the server refuses an operator
            with pytest.raises(Exception, match="supervisor|permission"):
                outbox_for(record.operator).resend(first["notification_id"], record.op_name,
                                                   "officer asked", 0.0)
        new_id = sup.resend(first["notification_id"], record.sup_name, "officer's mailbox was full",
                            __import__("time").time())
        msgs = smtp_relay.wait_for(3)
        assert msgs[2]["to"] == [OFFICER]
        assert "officer's mailbox was full" in _text(msgs[2]["message"])
        assert msgs[2]["message"]["Message-ID"].startswith(f"<{new_id}@")
        resent = [e for e in record.supervisor.audit_log() if e["action"] == "notification_resend"]
        assert len(resent) == 1 and resent[0]["who"] == record.sup_name
        assert resent[0]["detail"]["resend_of"] == first["notification_id"]
        wait_until(lambda: len([r for r in w.rows(alert_id) if r["status"] == "sent"]) == 3, 15, "resend sent")
        assert len(smtp_relay.to(OFFICER)) == 2
    finally:
        w.stop()
