"""The one decider on the centre's PostgreSQL record (issue 15), end to end: ``monitorapp
monitor --db postgresql://...`` as subprocesses, a real Mosquitto running exactly what
``monitorapp broker-config`` writes, real operator logins on a real PostgreSQL.

What operators do reaches the decider only through the record: an acknowledgement recorded by
an operator's own login comes back on the alert topic within seconds, a zone version saved by
one is applied to the engine (a breach inside the moved exclusion zone raises) and published
on ``em/v1/state/zone/``. A standby takes over from an active decider killed mid-stream with no
alert lost or doubled (the same alerts as a replay of the feed), and the broker publishes the
dead one's will ("lost"); an active decider whose lock connection dies stops at once.
"""
from __future__ import annotations

import json
import threading

import psycopg
import pytest
from shapely.geometry import shape

from monitorapp.sim.publish import publish_feed
from tests.decider_kit import StateReader, fixes_at
from tests.fixtures_mqtt import ROOT, read_alert_lines, replay_alerts, scenario_lines, wait_until

T0 = 1_795_000_000.0


@pytest.fixture
def caseload(tmp_path, example_caseload_path):
    p = tmp_path / "caseload.json"
    p.write_bytes(example_caseload_path.read_bytes())
    return p


def decider_args(broker, tmp_path, dsn, name, extra=()):
    """No --client-id: the deciders of a record share the default (``em-decider``)."""
    return ["--broker", broker.url_for("monitor"), "--caseload", tmp_path / "caseload.json",
            "--db", dsn, "--alerts-out", tmp_path / f"{name}-alerts.ndjson", "--instance", name,
            "--clock", "feed", "--stats-interval", "0.5", *extra]


def _zone(zone_id: str) -> dict:
    doc = json.loads((ROOT / "examples" / "caseload.json").read_text())
    return next(f for f in doc["zones"]["features"] if f["id"] == zone_id)


def test_an_operators_acknowledgement_in_the_record_comes_back_on_the_alert_topic(
        locked_broker, caseload, tmp_path, monitor_factory, pg_dsn, people):
    lines = scenario_lines(T0)
    mon = monitor_factory(decider_args(locked_broker, tmp_path, pg_dsn, "a"))
    mon.wait_log("feed_subscribed")
    with StateReader(locked_broker.settings_for("console"), "em/v1/alert/#", "em/v1/state/#") as seen:
        publish_feed(lines, locked_broker.url_for("gateway"), speed=0)
        wait_until(lambda: any(a["type"] == "strap_tamper" for a in seen.alerts().values()), 30,
                   "the tamper alert on em/v1/alert/")
        tamper = next(a for a in seen.alerts().values() if a["type"] == "strap_tamper")
        assert tamper["handling"]["state"] == "unacknowledged" and tamper["handling"]["entries"] == []
        mon.wait_stats(lambda s: s["messages"] == len(lines))
        alice = people.store("alice", "operator")
        alice.acknowledge(tamper["alert_id"], "alice", "contacted_subject", "called him")
        topic = "em/v1/alert/" + tamper["alert_id"]
        wait_until(lambda: (seen.get(topic) or {}).get("handling", {}).get("state") == "acknowledged", 5,
                   "the acknowledgement on the alert topic")
        h = seen.get(topic)["handling"]
        assert (h["owner"], h["action_code"], h["note"]) == ("alice", "contacted_subject", "called him")
        assert [(e["step"], e["operator"]) for e in h["entries"]] == [("acknowledge", "alice")]
        assert seen.get(topic)["state"] == "cleared"          # the alert itself is unchanged
        # positions and the decider's heartbeat are there for the consoles
        pos = seen.get("em/v1/state/position/TAG-01002")
        assert pos["offender"] and pos["device"] == "TAG-01002" and {"lat", "lon", "acc", "t", "rx"} <= set(pos)
        beat = seen.get("em/v1/state/decider")
        assert beat["state"] == "active" and beat["monitor"] == "a" and beat["record"] == "ok"
    rec = mon.wait_log("record_handling")
    assert rec["alert_id"] == tamper["alert_id"] and rec["operator"] == "alice"
    assert mon.terminate() == 0
    with StateReader(locked_broker.settings_for("console"), "em/v1/state/decider") as after:
        wait_until(lambda: after.get("em/v1/state/decider"), 5, "the retained decider state")
        assert after.get("em/v1/state/decider")["state"] == "stopped"


def test_a_zone_version_saved_in_the_record_is_applied_and_published(
        locked_broker, caseload, tmp_path, monitor_factory, pg_dsn, people):
    lines = scenario_lines(T0)
    mon = monitor_factory(decider_args(locked_broker, tmp_path, pg_dsn, "a"))
    mon.wait_log("feed_subscribed")
    publish_feed(lines, locked_broker.url_for("gateway"), speed=0)
    mon.wait_stats(lambda s: s["messages"] == len(lines))
    breaches = lambda: [a for a in read_alert_lines(tmp_path / "a-alerts.ndjson")  # noqa: E731
                        if a["type"] == "exclusion_entered"]
    assert len(breaches()) == 1
    # the exclusion zone moved to where TAG-01002 lives, by an operator's own login
    home2 = _zone("Z-HOME-0002")["geometry"]["coordinates"]
    lat, lon = home2[1] + 0.0003, home2[0] + 0.0003
    moved = _zone("Z-EXCL-0002")
    moved["geometry"] = {"type": "Polygon", "coordinates": [[
        [lon - 0.002, lat - 0.002], [lon + 0.002, lat - 0.002], [lon + 0.002, lat + 0.002],
        [lon - 0.002, lat + 0.002], [lon - 0.002, lat - 0.002]]]}
    with StateReader(locked_broker.settings_for("console"), "em/v1/state/zone/#") as seen:
        topic = "em/v1/state/zone/Z-EXCL-0002"
        wait_until(lambda: seen.get(topic), 5, "the zone's retained state")
        assert seen.get(topic)["version"] == 1
        version = people.store("alice", "operator").record_zone_edit(moved, "alice", base_version=1)
        assert version == 2
        wait_until(lambda: seen.get(topic)["version"] == 2, 5, "the new version on em/v1/state/zone/")
        z = seen.get(topic)
        assert z["saved_by"] == "alice" and z["removed"] is False
        assert z["feature"]["geometry"] == moved["geometry"]
    wait_until(lambda: [r for r in mon.logs if r.get("event") == "zone_version_applied"
                        and r["zone_id"] == "Z-EXCL-0002" and r["version"] == 2], 5, "the log line")
    publish_feed(fixes_at("TAG-01002", lat, lon, T0 + 3600), locked_broker.url_for("gateway"), speed=0)
    wait_until(lambda: len(breaches()) == 2, 20, "a breach inside the moved exclusion zone")
    assert mon.terminate() == 0
    with psycopg.connect(pg_dsn) as c:
        assert c.execute("SELECT zone_id, zone_version FROM alerts WHERE alert_id = %s",
                         (breaches()[-1]["alert_id"],)).fetchone() == ("Z-EXCL-0002", 2)


def test_a_standby_takes_over_from_a_decider_killed_mid_stream_losing_and_doubling_nothing(
        locked_broker, caseload, tmp_path, monitor_factory, pg_dsn):
    lines = scenario_lines(T0, minutes=60)
    expected = replay_alerts(tmp_path, lines, caseload)
    with StateReader(locked_broker.settings_for("console"), "em/v1/state/decider",
                     "em/v1/state/standby/#", "em/v1/alert/#") as seen:
        a = monitor_factory(decider_args(locked_broker, tmp_path, pg_dsn, "a", ["--commit-interval", "0.2"]))
        a.wait_log("feed_subscribed")
        b = monitor_factory(decider_args(locked_broker, tmp_path, pg_dsn, "b"))
        b.wait_log("standby_waiting")
        wait_until(lambda: (seen.get("em/v1/state/standby/b") or {}).get("state") == "standby", 10,
                   "the standby's announcement")
        result: dict = {}
        pub = threading.Thread(target=lambda: result.update(
            publish_feed(lines, locked_broker.url_for("gateway"), speed=900)))
        pub.start()
        try:
            a.wait_log("alert_raised", timeout=60)
            a.kill()                                   # SIGKILL while the feed is coming
            assert pub.is_alive(), "the active decider should be killed while the feed is still coming"
            wait_until(lambda: (seen.get("em/v1/state/decider") or {}).get("state") == "lost", 10,
                       "the broker's will: the decider is lost")
            assert seen.get("em/v1/state/decider")["monitor"] == "a"
            took = b.wait_log("leader_lock_taken", timeout=30)
            assert took["instance"] == "b"
            assert b.wait_log("monitor_starting")["resumed_from_checkpoint"] is True
            assert b.wait_log("journal_replayed")["messages"] > 0     # the record's journal
            pub.join(120)
            assert result.get("published") == len(lines)
            b.wait_stats(lambda s: s["backlog"] == 0 and s["messages"] > 0, timeout=90)
            want = {x["alert_id"] for x in expected}
            wait_until(lambda: set(seen.alerts()) >= want, 60, "every alert on em/v1/alert/ after the takeover")
            wait_until(lambda: (seen.get("em/v1/state/decider") or {}).get("monitor") == "b", 10,
                       "the standby's heartbeat")
            assert seen.get("em/v1/state/decider")["state"] == "active"
            assert seen.get("em/v1/state/standby/b") is None          # cleared: no longer waiting
            states = [((m or {}).get("state"), (m or {}).get("monitor")) for m in seen.history("em/v1/state/decider")]
            assert states.index(("lost", "a")) < states.index(("active", "b"))
            assert ("active", "a") in states[:states.index(("lost", "a"))]
            assert b.terminate() == 0
        finally:
            pub.join(10)
        assert set(seen.alerts()) == want, "an alert the single-decider run does not have"
        for x in expected:
            got = seen.alerts()[x["alert_id"]]
            assert (got["type"], got["start"], got["offender"]) == (x["type"], x["start"], x["offender"])
    fixes_sent = {(json.loads(p)["device"], json.loads(p)["seq"]) for _, p in lines if b'"fix"' in p}
    with psycopg.connect(pg_dsn) as c:
        stored = c.execute("SELECT device, seq FROM fixes").fetchall()
        assert len(stored) == len(set(stored)), "a fix stored twice"
        assert set(map(tuple, stored)) == fixes_sent, "a fix lost"
        assert sorted(r[0] for r in c.execute("SELECT alert_id FROM alerts")) == sorted(want)
        assert c.execute("SELECT alert_id, count(*) FROM alert_changes WHERE change='raised'"
                         " GROUP BY 1 HAVING count(*) > 1").fetchall() == []
    written = {x["alert_id"] for n in ("a", "b") for x in read_alert_lines(tmp_path / f"{n}-alerts.ndjson")}
    assert written == want


def test_an_active_decider_whose_lock_connection_dies_stops_deciding_at_once(
        locked_broker, caseload, tmp_path, monitor_factory, pg_dsn):
    """The lock's session is ended by the server (as a network cut would end it): the active
    decider stops with status 3; the standby, which may take the lock at once, waits until the
    deposed one no longer feeds the record, then decides."""
    from monitorapp.service.leader import LEADER_LOCK
    mon = monitor_factory(decider_args(locked_broker, tmp_path, pg_dsn, "a"))
    mon.wait_log("feed_subscribed")
    standby = monitor_factory(decider_args(locked_broker, tmp_path, pg_dsn, "b"))
    standby.wait_log("standby_waiting")
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        [(pid,)] = c.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                             " AND objid::bigint = %s", (LEADER_LOCK,)).fetchall()
        with StateReader(locked_broker.settings_for("console"), "em/v1/state/decider") as seen:
            wait_until(lambda: (seen.get("em/v1/state/decider") or {}).get("state") == "active", 10,
                       "the decider's heartbeat")
            assert c.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
            lost = mon.wait_log("leader_lock_lost", timeout=10)
            assert "lock" in lost["reason"]
            assert mon.proc.wait(15) == 3
            standby.wait_log("leader_lock_taken", timeout=15)
            standby.wait_log("feed_subscribed")
            wait_until(lambda: seen.get("em/v1/state/decider") == {**seen.get("em/v1/state/decider"),
                                                                   "state": "active", "monitor": "b"},
                       10, "the standby deciding")
            assert ("lost", "a") in [((m or {}).get("state"), (m or {}).get("monitor"))
                                     for m in seen.history("em/v1/state/decider")]
    assert not [r for r in mon.logs if r.get("event") == "monitor_stopping"]
    assert standby.terminate() == 0
