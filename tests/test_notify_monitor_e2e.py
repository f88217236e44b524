"""Notifications end to end (issue 20): ``monitorapp monitor`` as a subprocess on the locked
Mosquitto, live clock, the relay a real SMTP server (STARTTLS, AUTH) of the test's own. The
monitor is SIGKILLed in the middle of sending, and restarted: the relay's own record proves that
every notification reached it exactly once.

* killed after the relay has the message but before the monitor knew (the relay holds its reply
  to the final ``.``): on restart the notification is ``unknown``, shown, and not sent again;
* killed in the middle of the transaction (the relay holds at RCPT, before the message): on
  restart it is sent again, and the relay has it once.
"""
from __future__ import annotations

import json
import time

import pytest

from localdb.schema import connect
from tests.fixtures_mqtt import Publisher, wait_until
from tests.notify_kit import OFFICER, OFFICER_2, POLICE, write_caseload
from tests.test_mqtt_monitor import monitor_args


@pytest.fixture
def setup(tmp_path, locked_broker, smtp_relay):
    write_caseload(tmp_path / "caseload.json")
    policy = {"version": 1, "sender": {"address": "monitoring@centre.example", "name": "Centre"},
              "retry": {"first_s": 0.2, "max_s": 1.0},
              "rules": {"feed_lost": {"raised": None, "closed": None},
                        "signal_lost": {"raised": None, "reactivated": None, "closed": None}},
              "contacts": {"police": {"Hackney": {"name": "Hackney police", "email": POLICE}}}}
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    args = monitor_args(locked_broker, tmp_path, clock="wall", extra=[
        "--username", "monitor", "--password-file", locked_broker.password_file("monitor"),
        "--notify-policy", tmp_path / "policy.json", *smtp_relay.args()])
    pub = Publisher(locked_broker.url_for("gateway"), client_id="gw-test")
    yield args, pub, smtp_relay, tmp_path / "mon.db"
    pub.close()


def tamper(pub, device: str, seq: int) -> None:
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    pub.publish([(f"em/v1/event/{device}", json.dumps(
        {"v": 1, "kind": "event", "device": device, "seq": seq, "t": t, "type": "strap_tamper"}))])


def outbox(db) -> dict[str, tuple]:
    """(address, alert) -> (status, notification id), read while the monitor runs."""
    conn = connect(db, readonly=True)
    try:
        return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(
            "SELECT address, alert_id, status, notification_id FROM notifications")}
    except Exception:        # noqa: BLE001 - the monitor has not made its tables yet
        return {}
    finally:
        conn.close()


def delivered(relay, address: str, alert_id: str) -> int:
    return sum(1 for m in relay.to(address) if alert_id in (m["message"]["X-EM-Alert"] or ""))


def test_sigkill_after_the_relay_took_it_is_not_sent_twice(setup, monitor_factory):
    args, pub, relay, db = setup
    mon = monitor_factory(args)
    mon.wait_log("notifications_on")
    mon.wait_log("feed_subscribed")
    relay.hold_data.set()
    tamper(pub, "TAG-2", 1)
    assert relay.received.wait(30), "the relay never got the first message"
    mon.kill()                                    # it has the message; the monitor never heard
    relay.hold_data.clear()
    relay.release.set()
    assert len(relay.messages) == 1
    first = relay.messages[0]["to"][0]
    alert_id = relay.messages[0]["message"]["X-EM-Alert"]
    assert outbox(db)[(first, alert_id)][0] == "committing"

    mon2 = monitor_factory(args)
    got = mon2.wait_log("notification_unknown")
    assert got["notification"] == outbox(db)[(first, alert_id)][1]
    mon2.wait_log("feed_subscribed")
    tamper(pub, "TAG-1", 1)                       # a new alert after the restart goes out
    wait_until(lambda: len(relay.messages) >= 4, 30, "the other recipient and the new alert")
    wait_until(lambda: sorted(s for s, _ in outbox(db).values()) == ["sent", "sent", "sent", "unknown"],
               30, "the outbox settled")
    state = outbox(db)
    assert state[(first, alert_id)][0] == "unknown"
    assert {a for a, _ in state} == {OFFICER, OFFICER_2, POLICE}
    assert delivered(relay, OFFICER_2, alert_id) == 1 and delivered(relay, POLICE, alert_id) == 1
    assert len(relay.messages) == 4
    assert mon2.terminate() == 0
    assert len(relay.messages) == 4


def test_sigkill_in_the_middle_of_the_transaction_sends_it_once_after_the_restart(setup, monitor_factory):
    args, pub, relay, db = setup
    mon = monitor_factory(args)
    mon.wait_log("notifications_on")
    mon.wait_log("feed_subscribed")
    relay.hold_rcpt.set()
    tamper(pub, "TAG-1", 1)
    assert relay.at_rcpt.wait(30), "the monitor never reached RCPT"
    mon.kill()                                    # the relay never got the end of the message
    relay.hold_rcpt.clear()
    relay.release.set()
    assert relay.messages == []
    assert "sending" in {s for s, _ in outbox(db).values()}

    mon2 = monitor_factory(args)
    wait_until(lambda: sorted(s for s, _ in outbox(db).values()) == ["sent", "sent"], 30, "both sent")
    alert_id = next(a for _, a in outbox(db))
    assert delivered(relay, OFFICER, alert_id) == 1 and delivered(relay, POLICE, alert_id) == 1
    assert len(relay.messages) == 2
    assert mon2.terminate() == 0
