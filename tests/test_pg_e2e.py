"""Issue 14's "Done when", end to end on the PostgreSQL record: a real Mosquitto, ``monitorapp
monitor --db postgresql://...`` as a subprocess, a simulated day published through the broker
by the simulator; then ``monitorapp crimecheck --db postgresql://...`` gives the same verdicts
as on a SQLite store that replayed the same feed, ``verify-log --db postgresql://...`` passes
and then catches a truncated log, and a monitor SIGKILLed mid-batch and restarted leaves the
record with every fix once and every alert once.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import psycopg
import pytest

from monitorapp.sim.publish import publish_feed
from tests.conftest import ROOT
from tests.fixtures_mqtt import read_alert_lines, replay_alerts, scenario_lines, wait_until

T0 = 1_795_000_000.0


def run(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "monitorapp", *map(str, args)], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def caseload(tmp_path, example_caseload_path):
    p = tmp_path / "caseload.json"
    p.write_bytes(example_caseload_path.read_bytes())
    return p


@pytest.fixture
def broker(locked_broker):
    """The live tests run on the locked broker ``monitorapp broker-config`` writes."""
    return locked_broker


def monitor_args(broker, tmp_path, dsn, name="mon", extra=()):
    return ["--broker", broker.url_for("monitor"), "--caseload", tmp_path / "caseload.json", "--db", dsn,
            "--alerts-out", tmp_path / f"{name}-alerts.ndjson", "--client-id", name,
            "--clock", "feed", "--stats-interval", "0.5", *extra]


def places(lines, k=6):
    """Crime scenes where tags were: every n-th fix of the feed, with a 2-hour window."""
    fixes = [json.loads(b) for _, b in lines if b'"kind":"fix"' in b]
    step = max(1, len(fixes) // k)
    return [(f["lat"], f["lon"], f["t"]) for f in fixes[::step][:k]]


def verdicts(db, lat, lon, t):
    from monitorapp.feed.timeutil import fmt_time, parse_time
    t0 = parse_time(t) if isinstance(t, str) else t
    code, out, err = run("crimecheck", "--db", db, "--lat", lat, "--lon", lon, "--radius-m", 500,
                         "--from", fmt_time(t0 - 3600), "--to", fmt_time(t0 + 3600),
                         "--ref", "CR-2026-0001", "--reason", "burglary, Acacia Ave",
                         "--operator", "analyst1")
    assert code == 0, err
    return [(r["offender"], r["device"], r["verdict"], r["closest_m"], r["closest_at"])
            for r in json.loads(out)["results"]]


def test_a_simulated_day_through_the_monitor_into_postgresql(broker, caseload, tmp_path,
                                                             monitor_factory, pg_dsn):
    from monitorapp.sim.simulator import simulate
    lines, _truth = simulate(json.loads(caseload.read_text()), "2026-11-18T06:00:00Z", 24.0, 11)
    lines = list(lines)
    n_fixes = sum(1 for _, b in lines if b'"kind":"fix"' in b)
    expected = replay_alerts(tmp_path, lines, caseload)
    assert expected, "a simulated day should raise alerts"
    # the same feed into a SQLite store, by the replay command
    feed = tmp_path / "day.ndjson"
    feed.write_bytes(b"".join(b if b.endswith(b"\n") else b + b"\n" for _, b in lines))
    sqlite_db = tmp_path / "day.sqlite"
    code, _, err = run("replay", "--caseload", caseload, "--feed", feed,
                       "--out", tmp_path / "replay-alerts.ndjson", "--db", sqlite_db)
    assert code == 0, err

    mon = monitor_factory(monitor_args(broker, tmp_path, pg_dsn))
    start = mon.wait_log("monitor_starting")
    assert start["db"].startswith("postgresql://pgtest:***@")      # never the password
    mon.wait_log("feed_subscribed")
    assert publish_feed(lines, broker.url_for("gateway"), speed=0)["published"] == len(lines)
    try:
        mon.wait_stats(lambda s: s["messages"] == len(lines), timeout=240)
    except AssertionError:
        errors = [r for r in mon.logs if r.get("level") == "error"][:2]
        raise AssertionError(f"{len(lines)} published; the monitor's last stats: "
                             f"{mon.stats[-1:]}; its first errors: {errors}") from None
    assert mon.terminate() == 0
    password = urlsplit(pg_dsn).password
    assert password not in json.dumps(mon.logs) + json.dumps(mon.stats)
    # the quarantine list lives in this machine's state directory, not in a directory named
    # after the URL (which would hold the password in its name); the feed journal is in the
    # record (a standby on another machine replays it), released at the last checkpoint
    assert not any(password in str(p) or "postgresql:" in str(p) for p in tmp_path.rglob("*"))
    assert not any((tmp_path / "home" / ".local" / "state" / "monitorapp" / "records").glob("*.journal.*"))
    assert read_alert_lines(tmp_path / "mon-alerts.ndjson") == expected
    import sqlite3
    with sqlite3.connect(sqlite_db) as c:
        stored = c.execute("SELECT count(*) FROM fixes").fetchone()[0]
    assert n_fixes * 0.95 < stored <= n_fixes            # the feed's duplicates stored once
    with psycopg.connect(pg_dsn) as c:
        assert c.execute("SELECT count(*) FROM fixes").fetchone()[0] == stored
        assert c.execute("SELECT count(*) FROM fixes_p202611").fetchone()[0] == stored
        assert c.execute("SELECT count(*) FROM feed_journal").fetchone()[0] == 0   # released at exit

    # crime mapping gives the same answers on both records
    for lat, lon, t in places(lines):
        assert verdicts(pg_dsn, lat, lon, t) == verdicts(sqlite_db, lat, lon, t)
    found = {v[2] for lat, lon, t in places(lines) for v in verdicts(pg_dsn, lat, lon, t)}
    assert "present" in found

    # the logs verify against this machine's anchor, and a cut-off tail is caught
    code, out, err = run("verify-log", "--db", pg_dsn)
    assert code == 0, out + err
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        n = c.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
        assert n >= 2                                   # the caseload and the crime queries
        c.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
        c.execute("DELETE FROM audit_log WHERE seq > %s", (n - 2,))
        c.execute("UPDATE chain_heads SET (seq, hash) = (SELECT seq, hash FROM audit_log"
                  " ORDER BY seq DESC LIMIT 1) WHERE chain='audit_log'")
    code, out, err = run("verify-log", "--db", pg_dsn)
    assert code == 1, out + err
    assert f"audit_log: BROKEN against anchor record {n}" in out and "truncated" in out


def test_monitor_sigkilled_mid_batch_on_postgresql_loses_and_doubles_nothing(
        broker, caseload, tmp_path, monitor_factory, pg_dsn):
    lines = scenario_lines(T0, minutes=60)
    expected = replay_alerts(tmp_path, lines, caseload)
    args = monitor_args(broker, tmp_path, pg_dsn, extra=["--commit-interval", "0.2"])
    mon = monitor_factory(args)
    mon.wait_log("feed_subscribed")
    result: dict = {}
    pub = threading.Thread(target=lambda: result.update(publish_feed(lines, broker.url_for("gateway"), speed=900)))
    pub.start()
    try:
        mon.wait_log("alert_raised", timeout=60)
        mon.kill()                                   # SIGKILL while batches are being written
        assert pub.is_alive(), "the monitor should be killed while the feed is still coming"
        mon2 = monitor_factory(args)
        assert mon2.wait_log("monitor_starting")["resumed_from_checkpoint"] is True
        pub.join(120)
        assert result.get("published") == len(lines)
        wait_until(lambda: {a["alert_id"] for a in read_alert_lines(tmp_path / "mon-alerts.ndjson")}
                   >= {a["alert_id"] for a in expected}, 90, "every alert after the restart")
        mon2.wait_stats(lambda s: s["backlog"] == 0 and s["messages"] > 0, timeout=90)
        assert mon2.terminate() == 0
    finally:
        pub.join(10)
    got = read_alert_lines(tmp_path / "mon-alerts.ndjson")
    assert [a["alert_id"] for a in got] == [a["alert_id"] for a in expected], "no alert lost or doubled"
    fixes_sent = {(json.loads(b)["device"], json.loads(b)["seq"])
                  for _, b in lines if b'"kind":"fix"' in b}
    with psycopg.connect(pg_dsn) as c:
        stored = c.execute("SELECT device, seq FROM fixes").fetchall()
        assert len(stored) == len(set(stored)), "a fix stored twice"
        assert set(map(tuple, stored)) == fixes_sent, "a fix lost"
        ids = [r[0] for r in c.execute("SELECT alert_id FROM alerts")]
        assert sorted(ids) == sorted(a["alert_id"] for a in expected)
        raised = c.execute("SELECT alert_id, count(*) FROM alert_changes WHERE change='raised'"
                           " GROUP BY 1 HAVING count(*) > 1").fetchall()
        assert raised == []
    assert run("verify-log", "--db", pg_dsn)[0] == 0
