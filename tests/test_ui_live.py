"""Single-workstation live mode end to end: ``main.py --broker URL --caseload FILE --db FILE``
(a SQLite store: the console is its own decider, with its embedded engine) against the locked
Mosquitto of ``monitorapp broker-config``; a tamper published by the gateway identity reaches
the console's queue (structured log line) and its store; a restart carries on from the store's
checkpoint. (Consoles of a centre are clients of its decider: tests/test_ui_client_*.py.)"""
from __future__ import annotations

import json
import sqlite3
import time

from monitorapp.sim.publish import publish_feed
from monitorapp.feed.timeutil import fmt_time
from tests.fixtures_ui import ui_caseload_doc
from tests.test_ui_e2e import run_console

PASSWORD = "night shift password 2026"


def signed_in(db, tmp_path, user: str) -> list[str]:
    """Live mode signs in first: an operator account in the live store, and the options that
    sign in with it without the dialog."""
    from localdb.accounts import Accounts
    from localdb.store import Store
    store = Store(db)
    acc = Accounts(store)
    admin = acc.create_first_admin("admin", PASSWORD + " admin")
    acc.create(admin, user, "operator", PASSWORD)
    store.close()
    pw = tmp_path / f"{user}.pw"
    pw.write_text(PASSWORD + "\n")
    return ["--user", user, "--password-file", str(pw)]


def test_single_workstation_live_console_raises_alert_from_the_locked_broker(tmp_path, locked_broker):
    """A single workstation with its own SQLite store is its own decider: it reads the feed with
    the monitor identity of the locked broker and raises the alert itself; nothing is shared
    through the broker (handling is shared only through the centre's record, client mode)."""
    caseload = tmp_path / "caseload.json"
    caseload.write_text(json.dumps(ui_caseload_doc(3)))
    db = tmp_path / "live.sqlite"
    published = {}

    def publish_when_connected(events):
        if published or not any(e["event"] == "map_ready" for e in events):
            return
        now = time.time()
        lines = []
        for i, (dev, kind) in enumerate((("TAG-2", "fix"), ("TAG-2", "event"))):
            msg = {"v": 1, "kind": kind, "device": dev, "seq": i + 1, "t": fmt_time(now - 1 + i * 0.1)}
            if kind == "fix":
                msg.update(lat=51.55, lon=-0.07, acc=9.0, src="gps", batt=0.7)
            else:
                msg.update(type="strap_tamper")
            lines.append((now, json.dumps(msg).encode()))
        published.update(publish_feed(lines, locked_broker.url_for("gateway"), speed=1000.0, drain_timeout=20))

    rc, events, err = run_console(["--broker", locked_broker.url_for("monitor"), "--caseload", str(caseload),
                                   "--db", str(db), *signed_in(db, tmp_path, "live.op"), "--quit-after", "60"],
                                  ["map_ready", "alert_raised"], timeout=60, on_event=publish_when_connected)
    names = [e["event"] for e in events]
    assert published.get("published") == 2, (published, names, err[-1500:])
    raised = [e for e in events if e["event"] == "alert_raised"]
    assert any(e["type"] == "strap_tamper" and e["offender"] == "OFF-2" for e in raised), (names, err[-1500:])
    started = next(e for e in events if e["event"] == "console_started")
    assert started["mode"] == "live" and started["store"] == str(db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM alerts WHERE type='strap_tamper'").fetchone()[0] == 1


def test_live_console_restarts_from_its_checkpoint(tmp_path, locked_broker):
    """A restarted live console carries on from the store's checkpoint: the open alert is back
    in the queue (same id, not raised again)."""
    caseload = tmp_path / "caseload.json"
    caseload.write_text(json.dumps(ui_caseload_doc(3)))
    db = tmp_path / "live.sqlite"
    url = locked_broker.url_for("monitor")
    sent = {}

    def tamper_when_ready(events):
        if sent or not any(e["event"] == "map_ready" for e in events):
            return
        now = time.time()
        msg = {"v": 1, "kind": "event", "device": "TAG-3", "seq": 1, "t": fmt_time(now - 1), "type": "strap_tamper"}
        sent.update(publish_feed([(now, json.dumps(msg).encode())], locked_broker.url_for("gateway"),
                                 speed=1000.0, drain_timeout=20))

    args = ["--broker", url, "--caseload", str(caseload), "--db", str(db), *signed_in(db, tmp_path, "op1"),
            "--quit-after", "60"]
    rc, events, err = run_console(args, ["map_ready", "alert_raised"], timeout=60, on_event=tamper_when_ready)
    raised = [e for e in events if e["event"] == "alert_raised" and e["type"] == "strap_tamper"]
    assert raised, ([e["event"] for e in events], err[-1500:])
    rc, events2, err2 = run_console(args, ["map_ready", "queue_restored"], timeout=60)
    restored = next((e for e in events2 if e["event"] == "queue_restored"), None)
    assert restored and raised[0]["alert_id"] in restored["ids"], ([e["event"] for e in events2], err2[-1500:])
    assert not [e for e in events2 if e["event"] == "alert_raised" and e["alert_id"] == raised[0]["alert_id"]]
