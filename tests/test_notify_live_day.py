"""The issue's "done when" (issue 20): a simulated stretch of a live day through the locked
broker, ``monitorapp monitor`` deciding, the relay a real SMTP server; the relay is stopped for a
while and the monitor SIGKILLed and restarted in the middle. Every alert the policy names gives
exactly one e-mail per recipient (the relay's own record), and each is shown delivered on its
alert in the console's notifications panel."""
from __future__ import annotations

import json
import threading

import pytest

from monitorapp.sim.publish import publish_feed
from tests.fixtures_mqtt import read_alert_lines, replay_alerts, scenario_lines, wait_until
from tests.test_mqtt_monitor import T0, monitor_args

# the offscreen platform's note on a top-level widget's size hints: not ours
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")

OFFICERS = {"OFF-0001": "po1@probation.example", "OFF-0002": "po2@probation.example",
            "OFF-0003": "po3@probation.example"}
POLICE = {"Haringey": "police.haringey@police.example", "Camden": "police.camden@police.example",
          "Waltham Forest": "police.wf@police.example"}


def expected_pairs(alerts: list[dict], caseload: dict) -> set[tuple[str, str]]:
    """(alert id, address) of every raised alert the built-in policy names."""
    from monitorapp.notify.policy import DEFAULT_POLICY, NotifyPolicy, merge
    policy = NotifyPolicy(merge(DEFAULT_POLICY, {"contacts": {"duty_manager": {"email": "duty@centre.example"}}}))
    offenders = {o["id"]: o for o in caseload["offenders"]}
    out = set()
    for a in alerts:
        rule = policy.rule(a["type"], "raised")
        for role in (rule.to if rule else ()):
            o = offenders.get(a["offender"])
            address = {"responsible_officer": o and OFFICERS[o["id"]], "police": o and POLICE[o["borough"]],
                       "duty_manager": "duty@centre.example"}[role]
            out.add((a["alert_id"], address))
    return out


def test_a_live_stretch_with_relay_and_monitor_restarts_notifies_each_once(
        tmp_path, locked_broker, smtp_relay, monitor_factory, example_caseload_path, qtbot):
    doc = json.loads(example_caseload_path.read_text())
    for o in doc["offenders"]:
        o["responsible_officer"] = {"name": f"Officer of {o['id']}", "email": OFFICERS[o["id"]],
                                    "team": "Team"}
    (tmp_path / "caseload.json").write_text(json.dumps(doc))
    (tmp_path / "policy.json").write_text(json.dumps({
        "version": 1, "sender": {"address": "monitoring@centre.example"}, "retry": {"first_s": 0.2, "max_s": 1.0},
        "contacts": {"duty_manager": {"email": "duty@centre.example"},
                     "police": {b: {"email": e} for b, e in POLICE.items()}}}))
    lines = scenario_lines(T0, minutes=60)
    alerts = replay_alerts(tmp_path, lines, tmp_path / "caseload.json")
    want = expected_pairs(alerts, doc)
    assert {a["type"] for a in alerts} >= {"strap_tamper", "exclusion_entered", "battery_low"} and len(want) >= 5
    args = monitor_args(locked_broker, tmp_path, extra=[
        "--username", "monitor", "--password-file", locked_broker.password_file("monitor"),
        "--commit-interval", "0.2", "--notify-policy", tmp_path / "policy.json", *smtp_relay.args()])
    mon = monitor_factory(args)
    mon.wait_log("feed_subscribed")
    result = {}
    pub = threading.Thread(target=lambda: result.update(
        publish_feed(lines, locked_broker.url_for("gateway"), speed=600)))
    pub.start()
    try:
        smtp_relay.wait_for(1, timeout=60)                    # the first breach is out
        smtp_relay.hold_rcpt.set()                            # the next transaction waits at RCPT,
        assert smtp_relay.at_rcpt.wait(60)                    # before its message: nothing is in
        smtp_relay.stop()                                     # doubt when the relay goes down ...
        smtp_relay.hold_rcpt.clear()
        mon.wait_log("relay_unreachable", timeout=60)
        mon.kill()                                            # ... and the monitor dies
        mon2 = monitor_factory(args)
        assert mon2.wait_log("monitor_starting")["resumed_from_checkpoint"] is True
        mon2.wait_log("relay_unreachable", timeout=60)
        smtp_relay.start()                                    # the relay is back
        pub.join(120)
        assert result.get("published") == len(lines)
        wait_until(lambda: {a["alert_id"] for a in read_alert_lines(tmp_path / "mon-alerts.ndjson")}
                   >= {a["alert_id"] for a in alerts}, 60, "every alert")

        def got():
            return {(aid, to) for m in smtp_relay.messages for to in m["to"]
                    for aid in (m["message"]["X-EM-Alert"] or "").split()}
        wait_until(lambda: got() >= want, 60, "every notification at the relay")
        mon2.wait_stats(lambda s: s["backlog"] == 0)
        assert mon2.terminate() == 0
    finally:
        pub.join(10)
    pairs = [(aid, to) for m in smtp_relay.messages for to in m["to"]
             for aid in (m["message"]["X-EM-Alert"] or "").split()]
    assert sorted(pairs) == sorted(want), "exactly one e-mail per alert and recipient"
    ids = [m["message"]["Message-ID"] for m in smtp_relay.messages]
    assert len(ids) == len(set(ids))

    from localdb.store import Store
    from ui.console.notifications import NotificationsPanel
    with Store(tmp_path / "mon.db", create=False, anchor=False) as store:
        for a in alerts:
            panel = NotificationsPanel(store)
            qtbot.addWidget(panel)
            panel.show_alert(a["alert_id"])
            states = [panel.table.item(r, 2).text() for r in range(panel.table.rowCount())]
            assert len(states) == len({to for aid, to in want if aid == a["alert_id"]})
            assert all(s.startswith("delivered ") for s in states), states
