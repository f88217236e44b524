"""Anchored logs, both backends (spec v2 §8 "Logs"): after every committed step the store writes
each chain's head outside the log (localdb/anchor.py), and ``monitorapp verify-log`` (the real
command, as a subprocess) checks the log's end against it.

Each attack is done the way a person with write access to the store would do it: the append-only
triggers dropped or disabled, rows deleted, one record rewritten and every later hash recomputed
so that the chain itself verifies again (and, on PostgreSQL, ``chain_heads`` moved with it). The
anchor file is left alone: it is what the attacker could not reach. Each must make verify-log
exit 1 and say what it found; an untouched store exits 0 and names the anchor it used.
"""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from centraldb import open_store
from localdb.anchor import default_anchor_path
from localdb.hashchain import CHAINS, GENESIS, record_hash
from monitorapp.engine.alerts import Alert, alert_id
from tests.conftest import ROOT
from tests.fixtures_store import T0
from tests.fixtures_clock import Clock

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    return request.getfixturevalue("pg_dsn")


def person(request, target, name, **kw):
    """A store acting as ``name``: on SQLite the store itself; on PostgreSQL a store signed
    in with that person's own login (tests/fixtures_pgpeople.py), which anchors like any other
    (the server establishes who acted)."""
    kw.setdefault("anchor", None)
    if target.startswith("postgresql://"):
        return request.getfixturevalue("people").store(name, "operator", **kw)
    return open_store(target, **kw)


def fill(request, target) -> None:
    """Five handling steps and five audit records, as a shift would leave them."""
    clock = Clock(T0 + 3600)
    with open_store(target, clock=clock) as feeder, \
            person(request, target, "op1", clock=clock) as s:
        for k in range(5):
            a = Alert(alert_id("battery_low", "OFF-1", None, T0 + k), "battery_low", "low",
                      "OFF-1", "TAG-1", None, None, T0 + k, T0 + k + 1)
            feeder.on_alert(a, "raised")
            feeder.flush()
            clock.t += 30
            s.acknowledge(a.alert_id, "op1", "device_fault", f"charger {k}")
            s.audit("op1", "export", {"k": k})


def last_seq(target, table) -> int:
    """The newest record of a log (on PostgreSQL the server also audits what it does itself,
    account creation say, so the count is read, not assumed)."""
    if target.startswith("postgresql://"):
        import psycopg
        with psycopg.connect(target) as c:
            return c.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()[0]
    with sqlite3.connect(target) as c:
        return c.execute(f"SELECT coalesce(max(seq), 0) FROM {table}").fetchone()[0]


def verify_log(target, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "monitorapp", "verify-log", "--db", target, *extra],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    return r.returncode, r.stdout + r.stderr


class Tamper:
    """Write access to the store, as its owner: triggers out of the way, SQL on the logs."""

    def __init__(self, target):
        self.pg = target.startswith("postgresql://")
        if self.pg:
            import psycopg
            self.conn = psycopg.connect(target, autocommit=True)
            for t in CHAINS:
                self.conn.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")
        else:
            self.conn = sqlite3.connect(target, isolation_level=None)
            for t in CHAINS:
                for what in ("update", "delete"):
                    self.conn.execute(f"DROP TRIGGER IF EXISTS {t}_no_{what}")
        self.p = "%s" if self.pg else "?"

    def sql(self, text, args=()):
        return self.conn.execute(text.replace("?", self.p), args)

    def rehash_from(self, table, seq) -> None:
        """Recompute every hash from record ``seq`` on, so the chain verifies again."""
        fields = CHAINS[table]
        prev = self.sql(f"SELECT hash FROM {table} WHERE seq=?", (seq - 1,)).fetchone()
        prev = prev[0] if prev else GENESIS
        rows = self.sql(f"SELECT {', '.join(fields)} FROM {table} WHERE seq>=? ORDER BY seq",
                        (seq,)).fetchall()
        for values in rows:
            rec = dict(zip(fields, values))
            h = record_hash(prev, rec)
            self.sql(f"UPDATE {table} SET prev_hash=?, hash=? WHERE seq=?", (prev, h, rec["seq"]))
            prev = h
        self.move_head(table)

    def move_head(self, table) -> None:
        """What the owner of a PostgreSQL record can do too: make chain_heads agree."""
        if self.pg:
            last = self.sql(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
            self.sql("UPDATE chain_heads SET seq=?, hash=? WHERE chain=?",
                     (last[0] if last else 0, last[1] if last else GENESIS, table))

    def close(self):
        self.conn.close()


def test_an_untouched_store_verifies_against_its_anchor(request, target):
    fill(request, target)
    anchor = default_anchor_path(target)
    assert anchor.is_file()
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600          # personal data: owner only
    lines = [json.loads(x) for x in anchor.read_text().splitlines()]
    audit = last_seq(target, "audit_log")
    assert audit >= 5
    assert max(x["seq"] for x in lines if x["chain"] == "ack_log") == 5
    assert max(x["seq"] for x in lines if x["chain"] == "audit_log") == audit
    code, out = verify_log(target)
    assert code == 0, out
    assert "ack_log: intact, 5 records" in out and f"audit_log: intact, {audit} records" in out
    assert "ack_log: matches anchor record 5" in out and str(anchor) in out


ATTACKS = {
    "newest records deleted": lambda t: (
        t.sql("DELETE FROM ack_log WHERE seq>=4"), t.move_head("ack_log")),
    "truncated": lambda t: (t.sql("DELETE FROM ack_log"), t.move_head("ack_log")),
    "one rewritten and the rest re-hashed": lambda t: (
        t.sql("UPDATE ack_log SET note='nothing happened' WHERE seq=2"),
        t.rehash_from("ack_log", 2)),
    "rewritten from the first record": lambda t: (
        t.sql("UPDATE ack_log SET operator='mallory'"), t.rehash_from("ack_log", 1)),
}


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_verify_log_catches_what_the_chain_alone_misses(request, target, attack):
    fill(request, target)
    audit = last_seq(target, "audit_log")
    t = Tamper(target)
    try:
        ATTACKS[attack](t)
    finally:
        t.close()
    # the chain by itself is a valid chain again: only the anchor can tell
    if not target.startswith("postgresql://"):
        from localdb.verify import verify_store
        assert all(r.intact for r in verify_store(target))
    code, out = verify_log(target)
    assert code == 1, out
    assert "ack_log: BROKEN against anchor record 5" in out, out
    assert ("truncated" if "delete" in attack or attack == "truncated" else "rewritten") in out
    assert f"audit_log: matches anchor record {audit}" in out   # the other log is fine


def test_a_deleted_anchor_file_is_reported(request, target):
    fill(request, target)
    default_anchor_path(target).unlink()
    code, out = verify_log(target)
    assert code == 1 and "NOT ANCHORED: no anchor file" in out, out


def test_an_anchor_kept_elsewhere(request, target, tmp_path):
    """--anchor names the file, e.g. a copy on another machine or another user's directory."""
    elsewhere = tmp_path / "elsewhere" / "record.anchor"
    clock = Clock(T0)
    open_store(target, clock=clock, anchor=False).close()       # the record is made
    with person(request, target, "alice", clock=clock, anchor=elsewhere) as s:
        s.audit("alice", "export", {"n": 1})
        s.audit("alice", "export", {"n": 2})
    assert not default_anchor_path(target).exists()
    code, out = verify_log(target, "--anchor", str(elsewhere))
    n = last_seq(target, "audit_log")
    assert code == 0 and f"audit_log: matches anchor record {n}" in out, out
    assert "ack_log: no records, nothing to anchor" in out


def test_records_after_the_anchor_are_reported_not_refused(request, target):
    """A process killed between its commit and its anchor line leaves its last step unanchored:
    verify-log says so and still exits 0 (the rest is checked)."""
    fill(request, target)
    audit = last_seq(target, "audit_log")
    with person(request, target, "carol", clock=Clock(T0 + 9000), anchor=False) as s:
        s.audit("carol", "export", {"n": 1})
    code, out = verify_log(target)
    assert code == 0, out
    newer = last_seq(target, "audit_log") - audit
    assert newer >= 1
    assert (f"audit_log: matches anchor record {audit}" in out
            and f"{newer} newer record(s) not anchored" in out), out
