"""The relay's failures and the message's safety (issue 20): the relay down for a while and then
back (sent once, late, the delay recorded, a ``system_fault`` while it stayed down), a hostile
offender or zone name that cannot add a header or a recipient, a contact that is missing, the
next-working-day summary, and a policy file that is refused with its problems."""
from __future__ import annotations

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

import pytest

from localdb.store import Store
from monitorapp.notify.policy import PolicyError, load_policy
from tests.fixtures_mqtt import wait_until
from tests.notify_kit import (DUTY, OFFICER, POLICE, Wired, centre_policy,
                              centre_policy_doc, exclusion_lines, notify_caseload_doc, tamper_lines)
from monitorapp.notify.policy import NotifyPolicy, merge, DEFAULT_POLICY
from tests.fixtures_clock import Clock


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "record.sqlite", anchor=False)
    yield s
    s.close()


def test_relay_down_then_back_sends_once_late_with_the_delay_and_a_fault_meanwhile(store, smtp_relay_down):
    relay = smtp_relay_down
    w = Wired(store, notify_caseload_doc(), centre_policy(first_s=0.1, max_s=0.4, fault_after_s=0.5),
              relay.settings())
    try:
        w.feed(tamper_lines(t0=time.time() - 10))
        alert_id = next(a.alert_id for a in w.engine.alerts.values() if a.type == "strap_tamper")

        def retried():
            w.notifier.tick()
            rows = w.rows(alert_id)
            return rows and all(sum(a["outcome"] in ("retry", "deferred") for a in r["attempts_log"]) >= 2 for r in rows) \
                and w.faults
        wait_until(retried, 30, "retries and a system_fault while the relay is down")
        assert w.faults[-1][:2] == ("notify", "relay") and "cannot reach the relay" in w.faults[-1][2]
        assert all(r["status"] == "pending" for r in w.rows(alert_id))
        down_for = time.time() - w.notifier.down_since
        relay.start()
        wait_until(lambda: all(r["status"] == "sent" for r in w.rows(alert_id)), 30, "sent once back")
        w.notifier.tick()
        assert ("notify", "relay") in w.cleared
        rows = w.rows(alert_id)
        assert sorted(m["to"][0] for m in relay.messages) == sorted([OFFICER, POLICE])
        for r in rows:
            assert down_for <= r["delay_s"] < down_for + 60 and r["attempts"] >= 1
            assert r["last_error"] is None
        assert sum(r["attempts"] for r in rows) >= 3           # the first tried while down, and again
        wait_until(lambda: w.notifier.outbox.due(float("inf")) == [], 10, "nothing left")
        assert len(relay.messages) == 2
    finally:
        w.stop()


def test_hostile_names_cannot_inject_headers_or_markup(store, smtp_relay):
    evil_name = "Evil\r\nBcc: victim@evil.example\r\nX-Injected: yes"
    evil_zone = "Street\r\n\r\n<script>alert('x')</script>\nSubject: fake"
    w = Wired(store, notify_caseload_doc(name=evil_name, zone_name=evil_zone), centre_policy(),
              smtp_relay.settings())
    try:
        w.feed(exclusion_lines())
        msgs = smtp_relay.wait_for(2)
        assert sorted(r for m in msgs for r in m["to"]) == sorted([OFFICER, POLICE])
        for m in msgs:
            msg = m["message"]
            assert msg["Bcc"] is None and msg["X-Injected"] is None
            assert len(msg.get_all("Subject")) == 1 and "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
            assert "Evil Bcc: victim@evil.example" in msg["Subject"]
            head = m["raw"].split(b"\r\n\r\n", 1)[0]
            assert b"\r\nBcc:" not in head and b"\r\nX-Injected:" not in head
            html = msg.get_body(("html",)).get_content()
            assert "<script>" not in html and "&lt;script&gt;" in html
            assert "Street" in msg.get_body(("plain",)).get_content()
    finally:
        w.stop()


def test_a_missing_contact_is_recorded_as_failed_and_audited(store, smtp_relay):
    doc = notify_caseload_doc()
    doc["offenders"][0]["borough"] = "Camden"            # no police contact for Camden
    w = Wired(store, doc, centre_policy(), smtp_relay.settings())
    try:
        w.feed(tamper_lines())
        smtp_relay.wait_for(1)
        alert_id = next(a.alert_id for a in w.engine.alerts.values() if a.type == "strap_tamper")
        wait_until(lambda: sorted(r["status"] for r in w.rows(alert_id)) == ["failed", "sent"], 15, "rows")
        failed = next(r for r in w.rows(alert_id) if r["status"] == "failed")
        assert failed["role"] == "police" and "no contact for police:Camden" in failed["last_error"]
        assert any(e["action"] == "notification_failed" for e in store.audit_log())
        assert [m["to"] for m in smtp_relay.messages] == [[OFFICER]]
    finally:
        w.stop()


def test_low_priorities_go_as_one_summary_at_the_next_working_day(store, smtp_relay):
    london = ZoneInfo("Europe/London")
    friday = dt.datetime(2026, 11, 27, 18, 0, tzinfo=london).timestamp()       # a Friday evening
    monday = dt.datetime(2026, 11, 30, 8, 0, tzinfo=london).timestamp()
    clock = Clock(friday)
    doc = notify_caseload_doc()
    doc["offenders"][1]["responsible_officer"]["email"] = OFFICER          # both Pat's
    policy = NotifyPolicy(merge(DEFAULT_POLICY, {**centre_policy_doc(), "rules": {"battery_low": {
        "raised": {"to": ["responsible_officer", "duty_manager"], "when": "next_working_day"}}}}))
    w = Wired(store, doc, policy, smtp_relay.settings(), clock=clock)
    try:
        from tests.enginekit import FeedBuilder
        fb = FeedBuilder()
        fb.event("TAG-1", friday - 300, "battery_low")
        fb.event("TAG-2", friday - 290, "battery_low")
        w.feed(fb.lines())
        wait_until(lambda: len(w.rows()) == 4, 10, "four planned notifications")
        assert {r["due_at"] for r in w.rows()} == {monday}
        w.notifier._wake.set()
        wait_until(lambda: w.notifier.outbox.next_due() == monday, 10, "the next due time")
        assert smtp_relay.messages == []
        clock.t = monday + 1
        wait_until(lambda: all(r["status"] == "sent" for r in w.rows()), 15, "the summaries sent")
        by = {m["to"][0]: m["message"] for m in smtp_relay.messages}
        assert sorted(by) == sorted([OFFICER, DUTY]) and len(smtp_relay.messages) == 2
        for address, msg in by.items():
            assert "Summary: 2 notifications" in msg["Subject"]
            body = msg.get_body(("plain",)).get_content()
            ids = {r["alert_id"] for r in w.rows() if r["address"] == address}
            assert len(ids) == 2 and all(i in body for i in ids)
            assert msg["Message-ID"].startswith("<D-")
        assert {r["message_id"] for r in w.rows() if r["address"] == OFFICER} != \
            {r["message_id"] for r in w.rows() if r["address"] == DUTY}
    finally:
        w.stop()


def test_a_policy_file_with_problems_is_refused_naming_them(tmp_path):
    bad = centre_policy_doc()
    bad["rules"] = {"exclusion_entered": {"raised": {"to": ["responsible_officer", "mayor"]}},
                    "no_such_alert": {}}
    bad["contacts"]["police"]["Camden"] = {"name": "x", "email": "police@camden\r\nBcc: a@b.c"}
    p = tmp_path / "policy.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(PolicyError) as e:
        load_policy(p)
    text = str(e.value)
    assert str(p) in text and "'mayor'" in text and "no_such_alert" in text and "contacts.police.Camden" in text
    pol = NotifyPolicy(merge(DEFAULT_POLICY, {"rules": {"battery_low": {"raised": None}},
                                               "contacts": {"duty_manager": {"email": DUTY}}}))
    assert pol.rule("battery_low", "raised") is None
    assert pol.rule("exclusion_entered", "raised").to == ("responsible_officer", "police")
    assert pol.duty_manager.address == DUTY


def test_the_example_policy_loads_and_bad_options_stop_the_monitor_with_one_line(tmp_path):
    import subprocess
    import sys
    from tests.conftest import ROOT
    example = load_policy(ROOT / "resources" / "notify-policy.example.json")
    assert example.rule("curfew_absent", "raised").to == ("responsible_officer", "team")
    assert example.rule("battery_low", "raised") is None and "Camden" in example.police
    bad = tmp_path / "policy.json"
    bad.write_text('{"version": 1, "retry": {"first_s": -1}}')
    base = [sys.executable, "-m", "monitorapp", "monitor", "--broker", "mqtt://127.0.0.1:1",
            "--caseload", str(ROOT / "examples" / "caseload.json"), "--db", str(tmp_path / "x.db")]
    for extra, text in ((["--notify-policy", str(bad)], "retry.first_s"),
                        (["--smtp-host", "relay", "--smtp-user", "u"], "--smtp-password-file"),
                        (["--smtp-host", "relay", "--smtp-user", "u", "--smtp-password-file", str(bad)],
                         "only over TLS")):
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           env={k: v for k, v in __import__("os").environ.items() if k != "MONITORAPP_SMTP_PASSWORD"})
        assert r.returncode == 2, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and text in r.stderr, r.stderr
    assert not (tmp_path / "x.db").exists()
