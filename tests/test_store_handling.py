"""Operators' handling of alerts and the tamper-evident logs: acknowledge → close, shelving with
expiry, refusals, and ``monitorapp verify-log`` finding the first altered record."""
from __future__ import annotations

import sqlite3

import pytest

from localdb.handling import ACTION_CODES, HandlingError
from localdb.store import Store
from localdb.verify import cli_main as verify_main
from monitorapp.engine.alerts import Alert, alert_id
from tests.fixtures_store import T0
from tests.fixtures_clock import Clock


@pytest.fixture
def clock():
    return Clock(T0 + 3600)


@pytest.fixture
def hstore(store_path, clock):
    s = Store(store_path, clock=clock)
    yield s
    s.close()


def raise_alert(store, type_="curfew_absent", start=T0, cleared=False,
                priority="high") -> str:
    a = Alert(alert_id(type_, "OFF-1", "R-1", start), type_, priority, "OFF-1", "TAG-1", "R-1",
              "Z-1", start, start + 60)
    store.on_alert(a, "raised")
    if cleared:
        a.state, a.cleared_at = "cleared", start + 300
        store.on_alert(a, "cleared")
    return a.alert_id


def test_acknowledge_then_close(hstore, clock):
    aid = raise_alert(hstore, cleared=True)
    row = hstore.acknowledge(aid, "alice", "contacted_subject", "phoned, he is on his way home")
    assert row["seq"] == 1 and row["operator"] == "alice" and row["at"] == clock.t
    clock.t += 120
    hstore.close(aid, "bob")
    [a] = hstore.alerts()
    assert a["handling"] == "closed" and a["handled_by"] == "bob"
    log = hstore.ack_log(aid)
    assert [(r["action"], r["operator"], r["action_code"]) for r in log] == [
        ("acknowledge", "alice", "contacted_subject"), ("close", "bob", None)]
    assert log[1]["prev_hash"] == log[0]["hash"]


@pytest.mark.parametrize("call, message", [
    (lambda s, a: s.acknowledge(a, "alice", "made_tea", "x"), "unknown action code"),
    (lambda s, a: s.acknowledge(a, "", "contacted_subject", "x"), "operator is required"),
    (lambda s, a: s.acknowledge(a, "alice", "other", ""), "needs a note"),
    (lambda s, a: s.close(a, "alice"), "must be acknowledged"),
    (lambda s, a: s.acknowledge("A-nosuchalert", "alice", "other", "x"), "no such alert"),
    (lambda s, a: s.unshelve(a, "alice"), "not shelved"),
    (lambda s, a: s.shelve(a, "alice", "", T0 + 9e9), "reason"),
    (lambda s, a: s.shelve(a, "alice", "known fault", T0), "in the future"),
    # spec v2 §8, enforced by the store itself whatever the caller checked
    (lambda s, a: s.acknowledge(a, "alice", "contacted_subject", "  "), "high alert needs a note"),
    (lambda s, a: s.shelve(a, "alice", "device swap", 4102444800.0), "at most 8 hours"),
])
def test_refused_steps_change_nothing(hstore, call, message):
    aid = raise_alert(hstore)
    with pytest.raises(HandlingError, match=message):
        call(hstore, aid)
    assert hstore.ack_log() == []
    assert hstore.alerts()[0]["handling"] == "unacknowledged"


def test_every_action_code_is_accepted(hstore):
    for k, code in enumerate(ACTION_CODES):
        aid = raise_alert(hstore, start=T0 + k)
        hstore.acknowledge(aid, "alice", code, "note")
    assert len(hstore.ack_log()) == len(ACTION_CODES)


def test_closed_alert_takes_no_further_steps(hstore):
    aid = raise_alert(hstore, cleared=True)
    hstore.acknowledge(aid, "alice", "false_alarm_gps", "multipath near the flats")
    hstore.close(aid, "alice")
    with pytest.raises(HandlingError, match="closed"):
        hstore.acknowledge(aid, "bob", "other", "again")
    with pytest.raises(HandlingError, match="closed"):
        hstore.close(aid, "bob")


def test_shelving_expires_and_unshelve_returns_to_previous_state(hstore, clock):
    aid = raise_alert(hstore)
    hstore.shelve(aid, "alice", "device swap booked", clock.t + 600)
    [a] = hstore.alerts()
    assert a["handling"] == "shelved" and a["shelved_reason"] == "device swap booked"
    assert hstore.alerts(handling_state="unacknowledged") == []
    clock.t += 601
    assert hstore.alerts()[0]["handling"] == "unacknowledged"     # expired by itself
    hstore.acknowledge(aid, "bob", "device_fault", "swap booked")
    hstore.shelve(aid, "bob", "engineer on site", clock.t + 3600)
    hstore.unshelve(aid, "carol")
    assert hstore.alerts()[0]["handling"] == "acknowledged"
    assert [r["action"] for r in hstore.ack_log(aid)] == [
        "shelve", "acknowledge", "shelve", "unshelve"]


def test_v2_rules_hold_in_the_store_whatever_the_caller(hstore, clock):
    """The console checks these too, but the store is the control (spec v2 §8)."""
    from localdb.handling import AlreadyAcknowledged
    active = raise_alert(hstore)
    hstore.acknowledge(active, "alice", "contacted_subject", "phoned him")
    first_at = clock.t
    clock.t += 45
    with pytest.raises(AlreadyAcknowledged, match="already acknowledged by alice at") as e:
        hstore.acknowledge(active, "bob", "contacted_probation", "emailed")
    assert (e.value.by, e.value.at) == ("alice", first_at)
    with pytest.raises(HandlingError, match="still active"):
        hstore.close(active, "alice", "done")
    for kind in ("strap_tamper", "exclusion_entered"):
        crit = raise_alert(hstore, kind, priority="critical")
        with pytest.raises(HandlingError, match=f"a {kind} alert cannot be shelved"):
            hstore.shelve(crit, "alice", "engineer booked", clock.t + 600)
    low = raise_alert(hstore, "battery_low", start=T0 + 7, priority="low")
    hstore.acknowledge(low, "alice", "device_fault", None)          # low: no note needed
    hstore.shelve(raise_alert(hstore, start=T0 + 8), "alice", "swap", clock.t + 8 * 3600)
    assert [(r["action"], r["operator"]) for r in hstore.ack_log()] == [
        ("acknowledge", "alice"), ("acknowledge", "alice"), ("shelve", "alice")]


def test_handling_survives_reopening_and_re_raise(store_path, clock):
    with Store(store_path, clock=clock) as s:
        aid = raise_alert(s)
        s.acknowledge(aid, "alice", "police_informed", "ref 123")
    with Store(store_path, clock=clock) as s:
        raise_alert(s)          # a restarted engine reports the same alert again
        s.flush()
        [a] = s.alerts()
        assert a["alert_id"] == aid and a["handling"] == "acknowledged"


def test_logs_are_append_only(hstore, store_path):
    aid = raise_alert(hstore)
    hstore.acknowledge(aid, "alice", "contacted_subject", "ok")
    hstore.sign_in("alice")
    conn = sqlite3.connect(store_path)
    for sql in ("UPDATE ack_log SET note='nothing to see'", "DELETE FROM ack_log",
                "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)


def _filled(store_path, clock):
    with Store(store_path, clock=clock) as s:
        aid = raise_alert(s)
        for k in range(5):
            clock.t += 10
            s.audit(f"op{k}", "sign_in")
        s.acknowledge(aid, "alice", "contacted_subject", "first")
        s.acknowledge(raise_alert(s, start=T0 + 1), "bob", "contacted_probation", "second")
        s.acknowledge(raise_alert(s, start=T0 + 2), "carol", "police_informed", "third")


def _tamper(store_path, sql):
    conn = sqlite3.connect(store_path)
    conn.execute("DROP TRIGGER ack_log_no_update")
    conn.execute("DROP TRIGGER ack_log_no_delete")
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_verify_log_intact(store_path, clock, capsys):
    _filled(store_path, clock)
    assert verify_main(["--db", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert "ack_log: intact, 3 records" in out and "audit_log: intact, 5 records" in out


@pytest.mark.parametrize("sql, table, seq, problem", [
    ("UPDATE ack_log SET note='never happened' WHERE seq=2", "ack_log", 2, "altered"),
    ("UPDATE audit_log SET who='mallory' WHERE seq=4", "audit_log", 4, "altered"),
    ("DELETE FROM audit_log WHERE seq=3", "audit_log", 4, "record 3 is missing"),
    ("UPDATE ack_log SET at=at+1 WHERE seq=1", "ack_log", 1, "altered"),
])
def test_verify_log_names_the_first_broken_record(store_path, clock, capsys, sql, table, seq, problem):
    _filled(store_path, clock)
    _tamper(store_path, sql)
    assert verify_main(["--db", str(store_path)]) == 1
    out = capsys.readouterr().out
    assert f"{table}: BROKEN at record {seq}" in out and problem in out


def test_verify_log_rehashed_record_breaks_the_link(store_path, clock, capsys):
    """Recomputing an altered record's own hash does not help: the next record no longer links."""
    from localdb.hashchain import record_hash
    _filled(store_path, clock)
    conn = sqlite3.connect(store_path)
    seq, alert, at, op, action, code, note, reason, until, prev = conn.execute(
        "SELECT seq, alert_id, at, operator, action, action_code, note, reason, until, prev_hash"
        " FROM ack_log WHERE seq=1").fetchone()
    forged = record_hash(prev, {"seq": seq, "alert_id": alert, "at": at, "operator": op,
                                "action": action, "action_code": code, "note": "forged",
                                "reason": reason, "until": until})
    conn.close()
    _tamper(store_path, f"UPDATE ack_log SET note='forged', hash='{forged}' WHERE seq=1")
    assert verify_main(["--db", str(store_path)]) == 1
    assert "ack_log: BROKEN at record 2" in capsys.readouterr().out


def test_verify_log_unreadable(tmp_path, capsys):
    assert verify_main(["--db", str(tmp_path / "missing.sqlite")]) == 2
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"garbage" * 1000)
    assert verify_main(["--db", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "missing.sqlite: no such store file" in err and "bad.sqlite" in err
