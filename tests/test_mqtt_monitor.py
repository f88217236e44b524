"""``monitorapp monitor`` end to end, as a subprocess against a real Mosquitto running exactly
the locked configuration ``monitorapp broker-config`` writes (the monitor, a gateway and a
console each with their own identity), on a SQLite store: the replay's alerts through the
broker, SIGKILL and restart, bad payloads, a fast publisher, handling written into the store by
another process republished, nothing taken from em/v1/ack/ or em/v1/zone/, and the live
(wall-clock) path."""
from __future__ import annotations

import json
import threading
import time

import orjson
import pytest

from monitorapp.feed.timeutil import parse_time
from monitorapp.sim.publish import publish_feed
from tests.fixtures_mqtt import read_alert_lines, replay_alerts, scenario_lines, wait_until

T0 = 1_795_000_000.0          # 2026-11-18T11:06:40Z, outside the curfews


@pytest.fixture
def broker(locked_broker):
    """Every live test here runs on the locked broker (``LockedBroker``)."""
    return locked_broker


def gateway(broker) -> str:
    return broker.url_for("gateway")


def monitor_args(broker, tmp_path, name="mon", clock="feed", extra=()):
    return ["--broker", broker.url_for("monitor"), "--instance", name, "--caseload", tmp_path / "caseload.json", "--db", tmp_path / f"{name}.db",
            "--alerts-out", tmp_path / f"{name}-alerts.ndjson", "--client-id", name, "--clock", clock,
            "--stats-interval", "0.5", *extra]


@pytest.fixture
def caseload(tmp_path, example_caseload_path):
    p = tmp_path / "caseload.json"
    p.write_bytes(example_caseload_path.read_bytes())
    return p


def retained_alerts(broker, expect: int, cond=None) -> dict[str, dict]:
    """The retained em/v1/alert/# records, read by a fresh console client (until ``cond`` of
    them holds, when given)."""
    from tests.decider_kit import StateReader
    with StateReader(broker.settings_for("console"), "em/v1/alert/#") as r:
        wait_until(lambda: len(r.alerts()) >= expect and (cond is None or cond(r.alerts())), 10,
                   f"{expect} retained alerts")
        return r.alerts()


def test_simulated_feed_through_the_broker_gives_the_replays_alerts(broker, caseload, tmp_path, monitor_factory):
    lines = scenario_lines(T0)
    expected = replay_alerts(tmp_path, lines, caseload)
    assert {a["type"] for a in expected} == {"strap_tamper", "exclusion_entered", "battery_low"}
    mon = monitor_factory(monitor_args(broker, tmp_path))
    mon.wait_log("feed_subscribed")
    stats = publish_feed(lines, gateway(broker), speed=1000)
    assert stats["published"] == len(lines)
    wait_until(lambda: len(read_alert_lines(tmp_path / "mon-alerts.ndjson")) >= len(expected), 30,
               "the replay's alerts from the monitor")
    mon.wait_stats(lambda s: s["messages"] == len(lines))
    assert mon.terminate() == 0
    assert read_alert_lines(tmp_path / "mon-alerts.ndjson") == expected
    final = mon.stats[-1]
    assert final.get("final") and final["messages"] == len(lines) and final["alerts"] == len(expected)
    assert {"fixes", "events", "heartbeats", "rejected", "duplicates", "seconds", "lag_s"} <= set(final)
    retained = retained_alerts(broker, len(expected))
    for a in expected:
        rec = retained[a["alert_id"]]
        assert rec["type"] == a["type"] and rec["start"] == a["start"]
        assert rec["handling"]["state"] == "unacknowledged" and rec["handling"]["entries"] == []
    tamper = next(a for a in expected if a["type"] == "strap_tamper")
    assert retained[tamper["alert_id"]]["state"] == "cleared"      # restored: the change was published


def test_monitor_sigkilled_and_restarted_loses_and_doubles_no_alert(broker, caseload, tmp_path, monitor_factory):
    lines = scenario_lines(T0, minutes=60)
    expected = replay_alerts(tmp_path, lines, caseload)
    args = monitor_args(broker, tmp_path, extra=["--commit-interval", "0.2"])
    mon = monitor_factory(args)
    mon.wait_log("feed_subscribed")
    result = {}
    pub = threading.Thread(target=lambda: result.update(publish_feed(lines, gateway(broker), speed=900)))
    pub.start()
    try:
        mon.wait_log("alert_raised", timeout=30)
        mon.kill()                                   # SIGKILL mid-stream
        assert pub.is_alive(), "the monitor should be killed while the feed is still coming"
        mon2 = monitor_factory(args)
        start = mon2.wait_log("monitor_starting")
        assert start["resumed_from_checkpoint"] is True
        assert mon2.wait_log("journal_replayed")["messages"] > 0
        pub.join(60)
        assert result.get("published") == len(lines)
        wait_until(lambda: {a["alert_id"] for a in read_alert_lines(tmp_path / "mon-alerts.ndjson")}
                   >= {a["alert_id"] for a in expected}, 60, "every alert after the restart")
        mon2.wait_stats(lambda s: s["backlog"] == 0 and s["processing_lag_s"] is not None)
        assert mon2.terminate() == 0
    finally:
        pub.join(10)
    got = read_alert_lines(tmp_path / "mon-alerts.ndjson")
    assert [a["alert_id"] for a in got] == [a["alert_id"] for a in expected], "no alert lost or doubled"
    from localdb.store import Store
    with Store(tmp_path / "mon.db", create=False) as store:
        assert sorted(a["alert_id"] for a in store.alerts()) == sorted(a["alert_id"] for a in expected)
        assert store.counts()["fixes"] == sum(1 for _, ln in lines if b'"fix"' in ln)


def test_malformed_payloads_are_rejected_counted_and_the_feed_goes_on(
        broker, caseload, tmp_path, monitor_factory, publisher_factory):
    """(An oversize payload never reaches the monitor on the locked broker: its packet limit
    refuses it.)"""
    mon = monitor_factory(monitor_args(broker, tmp_path, clock="wall"))
    mon.wait_log("feed_subscribed")
    now = time.time()
    good = {"v": 1, "kind": "fix", "device": "TAG-01001", "seq": 1, "t": _t(now - 1), "lat": 51.5,
            "lon": -0.1, "acc": 10, "src": "gps"}
    bad = [("em/v1/fix/TAG-01001", b"{not json"),
           ("em/v1/fix/TAG-99999", orjson.dumps(dict(good, device="TAG-99999"))),   # unknown device
           ("em/v1/fix/TAG-01001", orjson.dumps(dict(good, lat=123.0))),            # out of range
           ("em/v1/fix/TAG-01002", orjson.dumps(good))]                             # topic mismatch
    pub = publisher_factory(gateway(broker))
    pub.publish(bad + [("em/v1/fix/TAG-01001", orjson.dumps(good))])
    s = mon.wait_stats(lambda s: s["messages"] >= 5)
    assert s["rejected"] == 4 and s["fixes"] == 1
    assert mon.terminate() == 0
    from localdb.store import Store
    with Store(tmp_path / "mon.db", create=False) as store:
        assert store.counts()["rejected"] == 4


def test_a_fast_publisher_is_kept_up_with_or_its_lag_reported(broker, caseload, tmp_path, monitor_factory):
    """Four hours of feed as fast as the broker takes it (far above 10x real time): every
    message is processed, none dropped silently, and the stats lines report rate and lag."""
    lines = scenario_lines(T0, minutes=240)
    mon = monitor_factory(monitor_args(broker, tmp_path))
    mon.wait_log("feed_subscribed")
    publish_feed(lines, gateway(broker), speed=0)
    s = mon.wait_stats(lambda s: s["messages"] == len(lines), timeout=60)
    assert s["rejected"] == 0 and s["duplicates"] == 0
    assert mon.terminate() == 0
    busy = [x for x in mon.stats if x.get("rate_per_s")]
    assert busy and all({"backlog", "processing_lag_s", "lag_s", "rate_per_s"} <= set(x) for x in busy)
    assert read_alert_lines(tmp_path / "mon-alerts.ndjson") == replay_alerts(tmp_path, lines, caseload)


def test_handling_recorded_in_the_store_by_another_process_is_republished(
        broker, caseload, tmp_path, monitor_factory):
    """A single workstation's SQLite store: a step another process records in the same file
    (here the test, as the console would) reaches the retained alert through the monitor's
    2-second poll of the ack log."""
    lines = scenario_lines(T0)
    mon = monitor_factory(monitor_args(broker, tmp_path))
    mon.wait_log("feed_subscribed")
    publish_feed(lines, gateway(broker), speed=0)
    wait_until(lambda: len(read_alert_lines(tmp_path / "mon-alerts.ndjson")) >= 3, 30, "the alerts")
    tamper = next(a for a in read_alert_lines(tmp_path / "mon-alerts.ndjson") if a["type"] == "strap_tamper")
    from localdb.store import Store
    with Store(tmp_path / "mon.db", create=False) as store:
        wait_until(lambda: any(a["alert_id"] == tamper["alert_id"] for a in store.alerts()), 10, "stored")
        store.acknowledge(tamper["alert_id"], "alice", "contacted_subject", "called him")
    rec = mon.wait_log("record_handling", timeout=10)
    assert (rec["alert_id"], rec["operator"], rec["step"]) == (tamper["alert_id"], "alice", "acknowledge")
    got = retained_alerts(broker, 3, lambda al: al[tamper["alert_id"]]["handling"]["state"] == "acknowledged")
    h = got[tamper["alert_id"]]["handling"]
    assert h["owner"] == "alice" and h["action_code"] == "contacted_subject" and h["note"] == "called him"
    assert [(e["step"], e["operator"]) for e in h["entries"]] == [("acknowledge", "alice")]
    assert mon.terminate() == 0


def test_messages_on_the_retired_ack_and_zone_topics_change_nothing(broker, caseload, tmp_path,
                                                                    monitor_factory):
    """em/v1/ack/ and em/v1/zone/: the locked broker lets no identity write them (a gateway,
    a console, the monitor's own), and the monitor reads neither: the alert stays
    unacknowledged, the zone is not touched, the store has no handling step."""
    from tests.decider_kit import fixes_at, try_publish
    lines = scenario_lines(T0)
    mon = monitor_factory(monitor_args(broker, tmp_path))
    mon.wait_log("feed_subscribed")
    publish_feed(lines, gateway(broker), speed=0)
    mon.wait_stats(lambda s: s["messages"] == len(lines))
    tamper = next(a for a in read_alert_lines(tmp_path / "mon-alerts.ndjson") if a["type"] == "strap_tamper")
    ack = {"alert_id": tamper["alert_id"], "entries": [
        {"id": "x1", "step": "acknowledge", "operator": "mallory", "workstation": "ws-evil",
         "at": T0 + 2000, "action": "false_alarm_gps"},
        {"id": "x2", "step": "close", "operator": "mallory", "workstation": "ws-evil", "at": T0 + 2001}]}
    zone = {"zone_id": "Z-EXCL-0002", "feature": None, "removed": True, "operator": "mallory",
            "workstation": "ws-evil", "at": 4e9}
    for who in ("gateway", "console", "monitor"):
        try_publish(broker.settings_for(who), [
            (f"em/v1/ack/{tamper['alert_id']}", orjson.dumps(ack)),
            ("em/v1/zone/Z-EXCL-0002", orjson.dumps(zone))])
    # a fix inside the exclusion zone still raises: the zone was not removed
    from tests.fixtures_mqtt import ROOT
    z = next(f for f in json.loads((ROOT / "examples" / "caseload.json").read_text())["zones"]["features"]
             if f["id"] == "Z-EXCL-0002")
    from shapely.geometry import shape
    c = shape(z["geometry"]).centroid
    def breaches():
        return [a for a in read_alert_lines(tmp_path / "mon-alerts.ndjson") if a["type"] == "exclusion_entered"]
    assert len(breaches()) == 1
    publish_feed(fixes_at("TAG-01002", c.y, c.x, T0 + 3600), gateway(broker), speed=0)
    wait_until(lambda: len(breaches()) == 2, 20, "the breach of the untouched zone")
    got = retained_alerts(broker, 4)
    assert got[tamper["alert_id"]]["handling"]["state"] == "unacknowledged"
    assert not [r for r in mon.logs if r.get("event") == "record_handling"]
    applied = [r for r in mon.logs if r.get("event") == "zone_version_applied"]
    assert applied and all(r["version"] == 1 and not r["removed"] for r in applied)   # the caseload's, at start
    assert mon.terminate() == 0
    from localdb.store import Store
    with Store(tmp_path / "mon.db", create=False) as store:
        assert store.ack_log() == []


def test_live_wall_clock_alert_arrives_and_sigterm_checkpoints(broker, caseload, tmp_path, monitor_factory,
                                                               publisher_factory):
    args = monitor_args(broker, tmp_path, clock="wall")
    mon = monitor_factory(args)
    mon.wait_log("feed_subscribed")
    now = time.time()
    ev = {"v": 1, "kind": "event", "device": "TAG-01001", "seq": 1, "t": _t(now - 0.2), "type": "strap_tamper"}
    publisher_factory(gateway(broker)).publish([("em/v1/event/TAG-01001", orjson.dumps(ev))])
    wait_until(lambda: read_alert_lines(tmp_path / "mon-alerts.ndjson"), 10, "the tamper alert")
    a = read_alert_lines(tmp_path / "mon-alerts.ndjson")[0]
    assert a["type"] == "strap_tamper" and a["late"] is False and a["start"] == ev["t"]
    assert mon.terminate() == 0
    mon2 = monitor_factory(args)
    assert mon2.wait_log("monitor_starting")["resumed_from_checkpoint"] is True
    mon2.wait_log("feed_subscribed")
    assert mon2.terminate() == 0
    assert len(read_alert_lines(tmp_path / "mon-alerts.ndjson")) == 1


@pytest.mark.parametrize("argv, words", [
    (["--broker", "http://x"], "scheme"),
    (["--caseload", "/nonexistent/caseload.json"], "cannot be read"),
])
def test_bad_configuration_exits_2_with_one_line(tmp_path, caseload, argv, words):
    import subprocess
    import sys
    base = {"--broker": "mqtt://127.0.0.1:1", "--caseload": str(caseload), "--db": str(tmp_path / "x.db")}
    for i in range(0, len(argv), 2):
        base[argv[i]] = argv[i + 1]
    r = subprocess.run([sys.executable, "-m", "monitorapp", "monitor", *sum(map(list, base.items()), [])],
                       capture_output=True, timeout=60, cwd=tmp_path,
                       env={**__import__("os").environ, "PYTHONPATH": str(__import__("pathlib").Path(__file__).parent.parent)})
    assert r.returncode == 2
    assert words in r.stderr.decode() and len(r.stderr.decode().strip().splitlines()) == 1


def _t(ts: float) -> str:
    from monitorapp.feed.timeutil import fmt_time
    return fmt_time(ts)


def test_traccar_and_owntracks_subscriptions_feed_the_engine(broker, tmp_path, example_caseload_path,
                                                             monitor_factory, publisher_factory):
    """Real shapes through a real broker (issue 17): a GT06 position without accuracy on
    Traccar's position topic, a shielded tag's strap alarm without any position on its event
    topic, an OwnTracks phone with ``-1`` unknowns, an encrypted OwnTracks payload and junk."""
    from tests.adaptkit import owntracks_location, traccar_device, traccar_event, traccar_position
    doc = json.loads(example_caseload_path.read_text())
    doc["offenders"][2]["device"] = "alice.phone"          # an OwnTracks phone: owntracks/alice/phone
    (tmp_path / "caseload.json").write_text(json.dumps(doc))
    mon = monitor_factory(monitor_args(broker, tmp_path, clock="wall",
                                       extra=["--traccar-topic", "traccar/positions", "--traccar-topic",
                                              "traccar/events", "--owntracks"]))
    mon.wait_log("feed_subscribed")
    now = time.time()
    gt06 = {"position": traccar_position(protocol="gt06", fix_t=now - 2, lat=51.52, lon=-0.1,
                                         attributes={"hdop": 1.2, "sat": 8, "batteryLevel": 80}),
            "device": traccar_device("TAG-01002")}
    shielded = {"event": traccar_event(type_="alarm", event_t=now - 1, alarm="removing"),
                "device": traccar_device("TAG-01001")}
    owntracks = owntracks_location(tst=int(now - 1), lat=51.59, lon=-0.016, acc=12, batt=9, vel=-1)
    publisher_factory(gateway(broker)).publish([
        ("traccar/positions", orjson.dumps(gt06)), ("traccar/events", orjson.dumps(shielded)),
        ("owntracks/alice/phone", orjson.dumps(owntracks)),
        ("owntracks/alice/phone", b'{"_type":"encrypted","data":"3q2+7w=="}'),
        ("owntracks/alice/phone", b'{"_type":"lwt","tst":1}'),
        ("traccar/positions", b'{"position": {}}'), ("owntracks/alice/phone", b"[1, 2")])
    s = mon.wait_stats(lambda s: s["messages"] >= 7)
    assert (s["fixes"], s["events"], s["rejected"], s["heartbeats"]) == (2, 1, 3, 1)
    assert s["rejected_by_reason"] == {"encrypted": 1, "bad_adapter_payload": 1, "bad_json": 1}
    assert s["adapter_ignored"] == {"owntracks:lwt": 1}
    assert set(s["sources"]) == {"traccar", "owntracks"} and s["sources"]["traccar"]["messages"] == 3
    wait_until(lambda: len(read_alert_lines(tmp_path / "mon-alerts.ndjson")) >= 2, 10, "two alerts")
    lines = read_alert_lines(tmp_path / "mon-alerts.ndjson")
    assert {(a["type"], a["device"]) for a in lines} == {("strap_tamper", "TAG-01001"), ("battery_low", "alice.phone")}
    [tamper] = [a for a in lines if a["type"] == "strap_tamper"]
    assert abs(parse_time(tamper["start"]) - (now - 1)) < 0.01 and tamper["late"] is False
    assert mon.terminate() == 0
    from localdb.store import Store
    st = Store(tmp_path / "mon.db")
    try:
        rows = st.reader().execute("SELECT reason, topic, raw FROM rejected ORDER BY rejected_id").fetchall()
    finally:
        st.close()
    assert ("encrypted", "owntracks/alice/phone", b'{"_type":"encrypted","data":"3q2+7w=="}') in [
        (r[0], r[1], bytes(r[2])) for r in rows]


def test_the_simulators_feed_through_the_broker_gives_the_replays_alerts(broker, caseload, tmp_path,
                                                                         monitor_factory):
    """What ``monitorapp simulate --broker`` does: the simulator's lines through publish_feed."""
    from monitorapp.sim.simulator import simulate
    lines, _truth = simulate(json.loads(caseload.read_text()), "2026-11-18T16:00:00Z", 6.0, 7)
    lines = list(lines)
    expected = replay_alerts(tmp_path, lines, caseload)
    assert expected, "the simulated six hours should raise alerts"
    mon = monitor_factory(monitor_args(broker, tmp_path))
    mon.wait_log("feed_subscribed")
    assert publish_feed(lines, gateway(broker), speed=0)["published"] == len(lines)
    mon.wait_stats(lambda s: s["messages"] == len(lines), timeout=60)
    assert mon.terminate() == 0
    assert read_alert_lines(tmp_path / "mon-alerts.ndjson") == expected


def test_the_feed_journal_replays_after_a_position_and_drops_a_torn_record(tmp_path):
    from monitorapp.service.monitor import FeedJournal
    from monitorapp.feed.mqttfeed import Delivery
    j = FeedJournal(tmp_path / "x.db")
    j.open()
    j.append([Delivery("em/v1/fix/A", b"one", 1.5), Delivery("owntracks/a/b", b"two", 2.5, "owntracks")])
    pos = j.rotate()
    j.append([Delivery("em/v1/fix/A", b"three", 3.5)])
    j.sync()
    j.close()
    with open(j.path(pos["journal"]), "ab") as f:
        f.write(b"\x00\x01\x02")                          # a record cut short by a crash
    j2 = FeedJournal(tmp_path / "x.db")
    assert [(d.topic, d.payload, d.arrival, d.adapter) for d in j2.replay({})] == [
        ("em/v1/fix/A", b"one", 1.5, "v1"), ("owntracks/a/b", b"two", 2.5, "owntracks"),
        ("em/v1/fix/A", b"three", 3.5, "v1")]
    assert [d.payload for d in j2.replay(pos)] == [b"three"]
    j2.drop_before(pos["journal"])
    assert j2.generations() == [pos["journal"]]
