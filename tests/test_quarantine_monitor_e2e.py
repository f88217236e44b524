"""The issue's live case end to end: ``monitorapp monitor`` as a subprocess on a real Mosquitto
(the locked configuration of ``monitorapp broker-config``),
the issue's poison messages published in the middle of a real scenario (an event timed
``0001-01-01T00:30:00+01:00``, a fix and a heartbeat near year 9999, a ``seq`` of 2^63, a
replay ``rx`` in year 9999), the monitor SIGKILLed while they are in flight and restarted.
It carries on: no crash loop, every poison counted as rejected once, and every real alert after
them raised exactly once (the same alerts ``monitorapp replay`` gives for the same lines)."""
from __future__ import annotations

import json
import threading

from monitorapp.feed.timeutil import fmt_time
from monitorapp.sim.publish import publish_feed
from tests.fixtures_mqtt import read_alert_lines, replay_alerts, scenario_lines, wait_until
from tests.test_mqtt_monitor import T0, caseload, monitor_args  # noqa: F401  (caseload is a fixture)


def poisoned(lines):
    rx0 = lines[len(lines) // 3][0]
    poison = [
        {"v": 1, "kind": "event", "device": "TAG-01001", "seq": 5000, "t": "0001-01-01T00:30:00+01:00",
         "rx": fmt_time(rx0), "type": "strap_tamper"},
        {"v": 1, "kind": "fix", "device": "TAG-01002", "seq": 5001, "t": "9999-12-31T23:59:00Z",
         "rx": "9999-12-31T23:59:30Z", "lat": 51.58, "lon": -0.1, "acc": 5, "src": "gps"},
        {"v": 1, "kind": "heartbeat", "gateway": "GW-1", "t": "9999-12-31T23:59:00Z", "rx": "9999-12-31T23:59:30Z"},
        {"v": 1, "kind": "fix", "device": "TAG-01003", "seq": 2 ** 63, "t": fmt_time(rx0 - 1), "rx": fmt_time(rx0),
         "lat": 51.58, "lon": -0.1, "acc": 5, "src": "gps"},
    ]
    topics = {"event": "em/v1/event/TAG-01001", "heartbeat": "em/v1/heartbeat/GW-1"}
    out = list(lines)
    at = len(lines) // 3
    for p in reversed(poison):
        out.insert(at, (rx0, json.dumps(p).encode()))
    return out, len(poison), topics


def test_poison_in_flight_sigkill_restart_carries_on(locked_broker, caseload, tmp_path,  # noqa: F811
                                                     monitor_factory):
    """On the locked broker: the monitor signs in as ``monitor`` (password file), the feed is
    published as ``gateway``."""
    broker = locked_broker
    clean = scenario_lines(T0, minutes=60)
    lines, n_poison, _ = poisoned(clean)
    expected = replay_alerts(tmp_path, lines, caseload)
    assert expected == replay_alerts(tmp_path, clean, caseload)      # the poison changes nothing
    assert "strap_tamper" in {a["type"] for a in expected}
    args = monitor_args(broker, tmp_path, extra=["--commit-interval", "0.2", "--username", "monitor",
                                                 "--password-file", broker.password_file("monitor")])
    mon = monitor_factory(args)
    mon.wait_log("feed_subscribed")
    result = {}
    pub = threading.Thread(target=lambda: result.update(publish_feed(lines, broker.url_for("gateway"), speed=900)))
    pub.start()
    try:
        mon.wait_stats(lambda s: s["rejected"] >= 1, timeout=60)     # the poison has reached it
        mon.kill()                                                   # SIGKILL with more in flight
        mon2 = monitor_factory(args)
        assert mon2.wait_log("monitor_starting")["resumed_from_checkpoint"] is True
        pub.join(90)
        assert result.get("published") == len(lines)
        wait_until(lambda: {a["alert_id"] for a in read_alert_lines(tmp_path / "mon-alerts.ndjson")}
                   >= {a["alert_id"] for a in expected}, 60, "every alert after the restart")
        final = mon2.wait_stats(lambda s: s["backlog"] == 0 and s["messages"] >= 1)
        assert mon2.proc.poll() is None, "the restarted monitor must still be running"
        assert mon2.terminate() == 0
    finally:
        pub.join(10)
    got = read_alert_lines(tmp_path / "mon-alerts.ndjson")
    assert [a["alert_id"] for a in got] == [a["alert_id"] for a in expected], "no alert lost or doubled"
    from localdb.store import Store
    with Store(tmp_path / "mon.db", create=False) as store:
        reasons = [r[0] for r in store.reader().execute("SELECT reason FROM rejected").fetchall()]
    assert len(reasons) == n_poison, reasons                         # each poison kept once
    assert final["rejected"] >= 1
