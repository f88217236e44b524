"""Roles enforced by the PostgreSQL server (spec v2 §8, issue 14): for every role, over a real
connection signed in with that role's own login and password, every forbidden act is refused by
the server, and the record is unchanged afterwards; each allowed act succeeds and the record
names the login that did it, whatever name the caller wrote.

The record is fed by a real decider login (``monitorapp_decider``) through ``PgStore``: the
caseload, a day of fixes, an alert. Logins are made through the server's own
``create_account`` (tests/fixtures_pgpeople.py).
"""
from __future__ import annotations

import json

import psycopg
import pytest

from centraldb.store import PgStore
from localdb.handling import HandlingError
from localdb.hashchain import verify_chain
from localdb.schema import StoreError
from monitorapp.engine.alerts import Alert, alert_id
from tests.fixtures_store import T0, fix_at

ROLES = ("operator", "supervisor", "police_analyst", "trainer", "administrator", "decider")
DENIED = {"42501"}                  # insufficient_privilege
NO_SUCH_FUNCTION = {"42883"}        # the old signatures that took a name are gone
REFUSED = {"MA001"}                 # a rule of the record


def _caseload():
    return {"version": 1, "tz": "Europe/London",
            "zones": {"type": "FeatureCollection", "features": []},
            "offenders": [{"id": "OFF-1", "name": "A. Person", "risk": "high", "borough": "Camden",
                           "device": "TAG-1", "fix_interval_s": 60, "requirements": []}]}


class Record:
    """A fresh record fed by its decider: one offender, 60 fixes, one raised alert."""

    def __init__(self, people):
        self.people = people
        self.decider = people.store("decider_1", "decider", anchor=False)
        self.decider.record_caseload(_caseload())
        for k in range(60):
            self.decider.on_fix(fix_at("TAG-1", k, T0 + 60 * k, 20.0 * k, 0.0), True)
        a = Alert(alert_id("curfew_absent", "OFF-1", "R-1", T0), "curfew_absent", "high",
                  "OFF-1", "TAG-1", "R-1", "Z-1", T0, T0 + 60)
        self.decider.on_alert(a, "raised")
        self.decider.checkpoint(_NoEngine(), {"line": 60})
        self.alert_id = a.alert_id

    def counts(self) -> dict:
        with self.people.admin() as conn:
            return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                    for t in ("fixes", "alerts", "alert_handling", "ack_log", "audit_log",
                              "accounts", "zones", "offenders")}

    def handling(self):
        with self.people.admin() as conn:
            return conn.execute("SELECT * FROM alert_handling").fetchall()


class _NoEngine:
    def snapshot(self):
        return {}


@pytest.fixture
def record(people):
    r = Record(people)
    yield r


def forbidden_acts(role: str, aid: str, verifier: str, other: str) -> list[tuple[str, str, set]]:
    """(what, SQL, the SQLSTATEs that count as the server's refusal) for a role."""
    lo, hi = T0 - 3600, T0 + 7200
    acts = [
        ("UPDATE an acknowledgement-log row", "UPDATE ack_log SET note = 'x'", DENIED),
        ("DELETE an acknowledgement-log row", "DELETE FROM ack_log", DENIED),
        ("TRUNCATE the acknowledgement log", "TRUNCATE ack_log", DENIED),
        ("UPDATE an audit-log row", "UPDATE audit_log SET who = 'mallory'", DENIED),
        ("DELETE an audit-log row", "DELETE FROM audit_log WHERE seq = 1", DENIED),
        ("TRUNCATE the audit log", "TRUNCATE audit_log", DENIED),
        ("INSERT an audit-log row", "INSERT INTO audit_log VALUES (99, 0, 'x', 'x', '{}', 'x', 'x')",
         DENIED),
        ("move a chain head", "UPDATE chain_heads SET seq = 0", DENIED),
        ("switch a log's trigger off",
         "ALTER TABLE ack_log DISABLE TRIGGER ack_log_append_only", DENIED),
        ("change a handling row directly",
         f"UPDATE alert_handling SET acked_by = 'mallory' WHERE alert_id = '{aid}'", DENIED),
        ("insert a handling row directly",
         f"INSERT INTO alert_handling (alert_id, handling, operator, at, acknowledged) VALUES"
         f" ('{aid}', 'closed', 'mallory', 0, true)", DENIED),
        ("acknowledge naming someone else (the old signature)",
         f"SELECT * FROM ack_alert('{aid}', '{other}', 'contacted_subject', 'x', 0)",
         NO_SUCH_FUNCTION),
        ("become another login", f'SET ROLE "{other}"', DENIED),
        ("become another login for the session", f'SET SESSION AUTHORIZATION "{other}"', DENIED),
        ("create a role", "CREATE ROLE eve LOGIN PASSWORD 'letmein-letmein'", DENIED),
        ("alter another role", f'ALTER ROLE "{other}" NOLOGIN', DENIED),
        ("grant themselves administrator", f"GRANT monitorapp_administrator TO {role}_1", DENIED),
        ("make an account administrator by UPDATE",
         "UPDATE accounts SET role = 'administrator'", DENIED),
        ("switch row-level security off", "ALTER TABLE accounts DISABLE ROW LEVEL SECURITY", DENIED),
        ("redefine the record's clock",
         "CREATE OR REPLACE FUNCTION record_now() RETURNS float8 LANGUAGE sql AS $$ SELECT 0 $$",
         DENIED),
        ("create a table", "CREATE TABLE public.mine (x int)", DENIED),
        ("write an audit action only the server writes",
         "SELECT audit_append('x', 'account_created', '{}')", DENIED),
        ("claim a supervisor resent a notification",
         "SELECT audit_append('x', 'notification_resend', '{}')", DENIED),
        ("claim the response protocols were recorded",
         "SELECT audit_append('x', 'protocols_recorded', '{}')", DENIED),
        ("read a month of fixes directly", "SELECT * FROM fixes_p202603 LIMIT 1", DENIED),
        ("change a zone version", "UPDATE zones SET removed = true", DENIED),
        ("delete alerts", "DELETE FROM alerts", DENIED),
    ]
    if role != "decider":
        acts += [
            ("SELECT fixes directly", "SELECT * FROM fixes LIMIT 1", DENIED),
            ("INSERT a fix", "INSERT INTO fixes (device, t, lat, lon, acc, x, y, used) VALUES"
                             " ('TAG-9', 1, 51.5, -0.1, 5, 530000, 180000, true)", DENIED),
            ("raise an alert", "INSERT INTO alerts (alert_id, type, priority, start, raised_at,"
                               " late, state, updated_at) VALUES ('A-x', 'x', 'low', 0, 0, false,"
                               " 'active', 0)", DENIED),
            ("drop a month of fixes", "SELECT drop_fix_partitions(4102444800)", DENIED),
            ("change the caseload", "UPDATE assignments SET device = 'TAG-2'", DENIED),
        ]
    if role != "administrator":
        acts += [
            ("create an account", f"SELECT create_account('eve', 'administrator', '{verifier}')",
             DENIED),
            ("change their own role",
             f"SELECT set_account_role('{role}_1', 'administrator')", DENIED),
            ("reset another's password", f"SELECT reset_password('{other}', '{verifier}')", DENIED),
            ("disable an account", f"SELECT disable_account('{other}')", DENIED),
            ("unlock an account", f"SELECT unlock_account('{other}')", DENIED),
            ("lock an account", f"SELECT lock_account('{other}', 15)", DENIED),
        ]
    else:
        acts += [
            ("create a role without the account function",
             "CREATE ROLE eve2 LOGIN", DENIED),
            ("change their own role", "SELECT set_account_role('administrator_1', 'operator')",
             {"MA003"}),
            ("disable their own account", "SELECT disable_account('administrator_1')", {"MA003"}),
            ("create an account with a plain password",
             "SELECT create_account('eve', 'operator', 'letmein-letmein')", {"MA003"}),
            ("create an account for a reserved name",
             f"SELECT create_account('monitorapp_root', 'operator', '{verifier}')", {"MA003"}),
            ("take over an existing database role",
             f"SELECT create_account('pgtest', 'operator', '{verifier}')", {"MA003"}),
        ]
    if role in ("police_analyst", "supervisor"):
        acts += [
            ("a crime query without a reason",
             f"SELECT * FROM crime_window({lo}, {hi}, 'REF-1', '')", REFUSED),
            ("a crime query without a reference",
             f"SELECT * FROM crime_window({lo}, {hi}, NULL, 'burglary')", REFUSED),
            ("a crime query over a year",
             f"SELECT * FROM crime_window({lo}, {lo + 365 * 86400}, 'REF-1', 'burglary')", REFUSED),
        ]
    else:
        acts += [("a crime query", f"SELECT * FROM crime_window({lo}, {hi}, 'REF-1', 'burglary')",
                  DENIED)]
    if role not in ("operator", "supervisor"):
        # a trainer handles alerts in a training record only; nobody else handles them
        acts += [
            ("acknowledge an alert",
             f"SELECT * FROM ack_alert('{aid}', 'contacted_subject', 'phoned')", DENIED),
            ("shelve an alert", f"SELECT * FROM shelve_alert('{aid}', 'known', 1e12)", DENIED),
            ("close an alert", f"SELECT * FROM close_alert('{aid}', 'x')", DENIED),
        ]
    if role in ("operator", "trainer", "police_analyst"):
        acts += [("read the audit log", "SELECT * FROM audit_log", DENIED)]
    if role in ("police_analyst", "administrator"):      # the decider records the caseload's
        acts += [("save a zone", "INSERT INTO zones (zone_id, version, feature, created_at) VALUES"
                                 " ('Z-9', 1, '{}', 0)", DENIED)]
    if role == "police_analyst":
        acts += [("read the alert queue", "SELECT * FROM alerts", DENIED),
                 ("read who wears which tag", "SELECT * FROM assignments", DENIED),
                 ("read the acknowledgement log", "SELECT * FROM ack_log", DENIED),
                 ("read the tags' times", "SELECT * FROM tags", DENIED)]
    if role == "administrator":
        acts += [("SELECT fixes directly", "SELECT * FROM fixes LIMIT 1", DENIED)]
    return acts


@pytest.mark.parametrize("role", ROLES)
def test_every_forbidden_act_is_refused_by_the_server(people, record, role):
    other = "someone_else"
    people.login(other, "operator")
    me = f"{role}_1" if role != "decider" else "decider_1"
    people.login(me, role)
    before, handling = record.counts(), record.handling()
    with people.connect(me, role, autocommit=True) as conn:
        verifier = conn.pgconn.encrypt_password(b"a-long-password", b"eve",
                                                b"scram-sha-256").decode()
        assert conn.execute("SELECT session_user").fetchone()[0] == me
        not_refused = []
        for what, sql, states in forbidden_acts(role, record.alert_id, verifier, other):
            try:
                conn.execute(sql)
            except psycopg.Error as e:
                if e.sqlstate not in states:
                    not_refused.append((what, e.sqlstate, str(e).splitlines()[0]))
            else:
                not_refused.append((what, "accepted", sql))
            conn.execute("RESET ROLE")
        assert not_refused == [], f"{role}: {not_refused}"
    assert record.counts() == before and record.handling() == handling
    with people.admin() as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname IN ('eve', 'eve2')"
                            ).fetchone()[0] == 0
        assert conn.execute("SELECT role FROM accounts WHERE username = %s", (me,)
                            ).fetchone()[0] == role
        for table in ("ack_log", "audit_log"):
            assert verify_chain(conn, table).intact


# ---- what each role may do, attributed to its login ---------------------------------------------

def test_an_operator_handles_alerts_as_themselves_whatever_name_is_written(people, record):
    ann = people.store("ann", "operator", anchor=False)
    assert ann.login == "ann" and ann.roles == frozenset({"operator"})
    with pytest.raises(HandlingError, match="signed in as ann: it cannot act as bob"):
        ann.acknowledge(record.alert_id, "bob", "contacted_subject", "phoned")
    row = ann.acknowledge(record.alert_id, "ann", "contacted_subject", "phoned him")
    assert row["operator"] == "ann"
    # straight SQL, naming someone else wherever a name can go: the server writes "ann"
    with people.connect("ann", autocommit=True) as conn:
        conn.execute("SELECT audit_append('bob', 'export', '{\"what\": \"pdf\"}', 0)")
        conn.execute("INSERT INTO zones (zone_id, version, feature, created_at, created_by)"
                     " VALUES ('Z-9', 1, '{}', 0, 'bob')")
        now = conn.execute("SELECT extract(epoch FROM now())").fetchone()[0]
    with people.admin() as conn:
        who, at = conn.execute("SELECT who, at FROM audit_log WHERE action = 'export'").fetchone()
        assert who == "ann" and abs(at - float(now)) < 60         # the server's time, not 0
        assert conn.execute("SELECT created_by FROM zones WHERE zone_id = 'Z-9'"
                            ).fetchone()[0] == "ann"
        [(op, by, at)] = conn.execute("SELECT operator, acked_by, at FROM alert_handling").fetchall()
        assert op == by == "ann" and abs(at - float(now)) < 60
    # a second operator is refused with who was first
    bob = people.store("bob", "operator", anchor=False)
    with pytest.raises(HandlingError, match="already acknowledged by ann") as e:
        bob.acknowledge(record.alert_id, "bob", "contacted_probation", "emailed")
    assert e.value.by == "ann"
    assert ann.sign_in()["who"] == "ann"


def test_a_trainer_handles_alerts_in_a_training_record_only(people, pg_dsn):
    with PgStore(pg_dsn, mode="training", anchor=False) as feeder:
        a = Alert(alert_id("battery_low", "OFF-1", "R-1", T0), "battery_low", "low",
                  "OFF-1", "TAG-1", "R-1", None, T0, T0 + 60)
        feeder.on_alert(a, "raised")
        feeder.flush()
    tess = people.store("tess", "trainer", mode="training", anchor=False)
    assert tess.acknowledge(a.alert_id, "tess", "device_fault", "")["operator"] == "tess"


def test_a_trainer_cannot_handle_a_live_alert(people, record):
    tess = people.store("tess", "trainer", anchor=False)
    with pytest.raises(StoreError, match="training record only"):
        tess.acknowledge(record.alert_id, "tess", "contacted_subject", "phoned")


def test_an_analyst_reads_positions_only_through_the_audited_path(people, record):
    from centraldb.crime import crime_slice
    from monitorapp.crime.trail import subjects
    lo, hi = T0 - 600, T0 + 1800
    pat = people.store("pat", "police_analyst", anchor=False)
    assert not pat.reads_fixes
    with pytest.raises(StoreError, match="reference number and a reason"):
        pat.crime_reader(lo, hi)
    with people.admin() as conn:
        assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'crime_access'"
                            ).fetchone()[0] == 0              # a refused read is not a read
        direct = crime_slice(conn, lo, hi)
    place = {"lat": 51.5, "lon": -0.1, "radius_m": 200}
    mem = pat.crime_reader(lo, hi, ref="CAD-2291", reason="burglary, Camden High St",
                           place=place)
    q = "SELECT * FROM fixes ORDER BY fix_id"
    assert mem.execute(q).fetchall() == direct.execute(q).fetchall()
    assert len(mem.execute(q).fetchall()) == 33          # 31 in the window + the two after it
    assert subjects(mem, lo, hi) == subjects(direct, lo, hi)
    with people.admin() as conn:
        [(who, detail)] = conn.execute("SELECT who, detail FROM audit_log"
                                       " WHERE action = 'crime_access'").fetchall()
    d = json.loads(detail)
    assert who == "pat" and d["ref"] == "CAD-2291" and d["reason"] == "burglary, Camden High St"
    assert d["place"] == place and (d["lo"], d["hi"]) == (lo, hi)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="table fixes"):
        pat.counts()


def test_a_supervisor_reads_the_audit_log_and_queries_through_the_audited_path(people, record):
    sue = people.store("sue", "supervisor", anchor=False)
    mem = sue.crime_reader(T0 - 600, T0 + 1800, ref="R-7", reason="missing person")
    assert mem.execute("SELECT count(*) FROM fixes").fetchone()[0] == 33
    assert [r["who"] for r in sue.audit_log() if r["action"] == "crime_access"] == ["sue"]


def test_the_decider_writes_as_itself(people, record):
    d = record.decider
    assert d.login == "decider_1" and d.reads_fixes
    assert d.load_checkpoint()[1] == {"line": 60}
    d.purge_fixes("monitor", now=T0 + 400 * 86400, retention_days=30)
    log = d.audit_log()
    assert [(r["who"], r["action"]) for r in log if r["action"] in ("caseload_loaded",
                                                                     "purge_fixes")] == [
        ("decider_1", "caseload_loaded"), ("decider_1", "purge_fixes")]
    assert d.counts()["fixes"] == 0


def test_an_analysts_crimecheck_goes_through_the_audited_path(people, record):
    """``monitorapp crimecheck`` signed in as a police analyst: the crime query reads through the
    server's audited ``crime_window`` with the query's reference, reason and place, and answers."""
    from monitorapp.crime.query import crime_check
    from monitorapp.feed.timeutil import fmt_time
    pat = people.store("pat", "police_analyst", anchor=False)
    answer = crime_check(pat, 51.5, -0.1, 300, fmt_time(T0), fmt_time(T0 + 1200), "CAD-77",
                         "robbery, Camden Town", "pat")
    assert [r["device"] for r in answer["results"]] == ["TAG-1"]
    assert answer["results"][0]["verdict"] in ("present", "possible", "not_present")   # the track was read
    with people.admin() as conn:
        rows = conn.execute("SELECT who, detail FROM audit_log WHERE action = 'crime_access'").fetchall()
    assert [(who, json.loads(d)["ref"], json.loads(d)["reason"]) for who, d in rows] == \
        [("pat", "CAD-77", "robbery, Camden Town")]
