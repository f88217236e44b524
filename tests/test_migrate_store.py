"""``monitorapp migrate-store --from STORE.sqlite --to postgresql://...`` (the real command, as a
subprocess): a workstation's store, filled the way a centre fills it (the example feed replayed
into it by ``monitorapp replay --db``, alerts handled, a zone edited, an audited export), is
carried into an empty record. Afterwards the record holds the same rows, the same chains with
the same hashes (verify-log passes against the anchor migrate-store wrote), the same handling,
and ``crimecheck`` gives the same verdicts on both. A second run, a training store and a
non-superuser are refused with one line and exit 2; the target is left as it was.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg
import pytest

from centraldb import open_store
from centraldb.outbox import PgOutbox
from localdb.outbox import SqliteOutbox
from localdb.store import Store
from monitorapp.notify.plan import Notification
from monitorapp.response.protocols import load_protocols
from monitorapp.engine.alerts import Alert, alert_id
from tests.conftest import ROOT

T0 = 1795798800.0                    # 2026-11-27T17:00:00Z, the example feed's first hour

FEED = ROOT / "examples" / "feed.ndjson"
CASELOAD = ROOT / "examples" / "caseload.json"


def run(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "monitorapp", *map(str, args)], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout, env=env)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def filled(tmp_path):
    """A SQLite store as a workstation leaves it after a shift."""
    db = tmp_path / "workstation.sqlite"
    code, out, err = run("replay", "--caseload", CASELOAD, "--feed", FEED,
                         "--out", tmp_path / "alerts.ndjson", "--db", db)
    assert code == 0, err
    with Store(db) as s:
        s.record_caseload(json.loads(CASELOAD.read_text()), "supervisor1")
        for k, (kind, state) in enumerate((("curfew_absent", "cleared"),
                                           ("curfew_absent", "active"),
                                           ("signal_lost", "active"))):
            a = Alert(alert_id(kind, "OFF-1001", "R-1", T0 + k), kind, "high", "OFF-1001",
                      "TAG-01001", "R-1", None, T0 + k, T0 + k + 60)
            s.on_alert(a, "raised")
            if state == "cleared":
                a.state, a.cleared_at = "cleared", T0 + 900
                s.on_alert(a, "cleared")
        s.flush()
        alerts = s.alerts()
        assert len(alerts) >= 4
        for a in alerts:
            s.acknowledge(a["alert_id"], "alice", "contacted_subject", "phoned, on his way")
        for a in alerts:
            if a["state"] == "cleared":
                s.close_alert(a["alert_id"], "bob", "home again")
        s.record_zone_edit({"type": "Feature", "id": "Z-NEW", "properties": {"name": "Café “Ω”"},
                            "geometry": {"type": "Point", "coordinates": [-0.12, 51.5]}},
                           "carol", base_version=0)
        s.audit("dave", "export", {"what": "pdf", "alerts": 3})
        outbox = SqliteOutbox(s)          # probation told of one alert, due to tell of another
        sent, due = (Notification(f"N-{k}", alerts[k]["alert_id"], "raised", "responsible_officer",
                                  "Pat Officer", "pat@probation.example", alerts[k]["type"], "high",
                                  "now", T0 + k, T0 + k, facts={"k": k}) for k in (0, 1))
        assert outbox.add([sent, due], T0 + 5, wait=True) == ["N-0", "N-1"]
        outbox.transition(["N-0"], "sent", T0 + 7, "delivered", "250 OK", message_id="<m0@centre>",
                          sent_at=T0 + 7, smtp_reply="250 OK", delay_s=7.0)
        outbox.set_state("summary_sent_for", "2026-11-27")
        s.record_protocols(load_protocols(), "erin")     # the shipped protocols
    return db


def crimecheck(db):
    code, out, err = run("crimecheck", "--db", db, "--lat", "51.5281", "--lon", "-0.1078",
                         "--radius-m", "800", "--from", "2026-11-27T17:00:00Z",
                         "--to", "2026-11-27T21:00:00Z", "--ref", "CR-1", "--reason", "test",
                         "--operator", "analyst1")
    assert code == 0, err
    return [(r["offender"], r["device"], r["verdict"], r["closest_m"])
            for r in json.loads(out)["results"]]


def test_a_store_is_carried_over_with_its_chains(filled, pg_dsn):
    before = crimecheck(filled)          # audited in the store: carried too
    code, out, err = run("migrate-store", "--from", filled, "--to", pg_dsn)
    assert code == 0, err
    summary = json.loads(out)
    with Store(filled) as s:
        counts, alerts = s.counts(), s.alerts()
        protocols = [s.protocol_steps(a["alert_id"]) for a in alerts]
        ack, audit = s.ack_log(), s.audit_log()
    assert summary["carried"]["fixes"] == counts["fixes"] > 900
    assert summary["chains"]["ack_log"]["records"] == len(ack)
    with open_store(pg_dsn, anchor=False) as pg:
        assert {k: pg.counts()[k] for k in counts} == counts
        assert pg.ack_log() == ack                     # the same records, the same hashes
        assert pg.audit_log() == audit
        assert [(a["alert_id"], a["handling"], a["handled_by"]) for a in pg.alerts()] == [
            (a["alert_id"], a["handling"], a["handled_by"]) for a in alerts]
        zone = pg.reader().execute("SELECT name, created_by FROM zones WHERE zone_id='Z-NEW'"
                                   ).fetchone()
        assert tuple(zone) == ("Café “Ω”", "carol")   # who saved it, as recorded
        # the outbox: what was sent is not sent again, what was due is still due
        rows = dict(pg.reader().execute("SELECT notification_id, status FROM notifications"
                                        ).fetchall())
        assert rows == {"N-0": "sent", "N-1": "pending"}
        assert [n["notification_id"] for n in PgOutbox(pg).due(T0 + 60)] == ["N-1"]
        assert PgOutbox(pg).state("summary_sent_for") == "2026-11-27"
        assert pg.reader().execute("SELECT count(*) FROM notification_attempts").fetchone()[0] == 3
        steps = [pg.protocol_steps(a["alert_id"]) for a in alerts]
        assert steps == protocols and all(steps)       # each alert's protocol, as on the store
    code, out, err = run("verify-log", "--db", pg_dsn)
    assert code == 0, out + err
    assert f"ack_log: matches anchor record {len(ack)}" in out
    assert crimecheck(pg_dsn) == before
    assert any(v == "present" for _, _, v, _ in before)          # a query that finds someone


def test_a_non_empty_record_is_refused_and_left_alone(filled, pg_dsn):
    assert run("migrate-store", "--from", filled, "--to", pg_dsn)[0] == 0
    with psycopg.connect(pg_dsn) as c:
        n = c.execute("SELECT count(*) FROM fixes").fetchone()[0]
    code, out, err = run("migrate-store", "--from", filled, "--to", pg_dsn)
    assert code == 2 and "the record is not empty" in err and "never merges" in err
    assert len(err.strip().splitlines()) == 1
    with psycopg.connect(pg_dsn) as c:
        assert c.execute("SELECT count(*) FROM fixes").fetchone()[0] == n


def test_a_training_store_is_never_carried_into_a_live_record(tmp_path, pg_dsn):
    db = tmp_path / "training.sqlite"
    with Store(db, mode="training") as s:
        s.sign_in("trainer1")
    code, out, err = run("migrate-store", "--from", db, "--to", pg_dsn)
    assert code == 2 and "is a training store" in err
    with psycopg.connect(pg_dsn) as c:
        assert c.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
        assert c.execute("SELECT value FROM meta WHERE key='mode'").fetchone() is None


def test_bad_sources_are_one_line(tmp_path, pg_dsn):
    code, _, err = run("migrate-store", "--from", tmp_path / "nope.sqlite", "--to", pg_dsn)
    assert code == 2 and "no such store file" in err
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)
    code, _, err = run("migrate-store", "--from", junk, "--to", pg_dsn)
    assert code == 2 and "junk.sqlite" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("migrate-store", "--from", junk, "--to", tmp_path / "x.sqlite")
    assert code == 2 and "postgresql://" in err
