"""The PostgreSQL record's schema: migrations from every earlier version give the same schema
as a fresh one; monthly partitions with their indexes are made as fixes arrive; retention
drops whole partitions and audits it; the server's hash of a log record is, byte for byte,
``localdb.hashchain.record_hash``; a rewritten record is caught by ``verify_chain``."""
from __future__ import annotations

import math

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from centraldb.schema import MIGRATIONS, SCHEMA_VERSION, applied_versions, migrate
from centraldb.store import PgStore
from localdb.hashchain import GENESIS, record_hash, verify_chain
from localdb.schema import StoreError
from tests.fixtures_store import fix_at

MAY_2026 = 1777593600.0            # 2026-05-01T00:00:00Z


def _schema(conn) -> dict:
    """What a migration makes: columns, indexes, functions, triggers, constraints."""
    q = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default,"
                   " generation_expression FROM information_schema.columns"
                   " WHERE table_schema='public' ORDER BY 1, 2",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes"
                   " WHERE schemaname='public' ORDER BY 1, 2",
        "functions": "SELECT p.proname, pg_get_function_identity_arguments(p.oid), p.prosrc"
                     " FROM pg_proc p JOIN pg_namespace n ON n.oid=p.pronamespace"
                     " WHERE n.nspname='public' AND p.proname NOT LIKE 'st\\_%%'"
                     " AND p.proname NOT LIKE '\\_st%%' AND p.proname NOT LIKE 'postgis%%'"
                     " ORDER BY 1, 2",
        "triggers": "SELECT event_object_table, trigger_name, event_manipulation, action_statement"
                    " FROM information_schema.triggers ORDER BY 1, 2, 3",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
                       " FROM pg_constraint WHERE connamespace='public'::regnamespace ORDER BY 1, 2",
    }
    return {k: conn.execute(v).fetchall() for k, v in q.items()}


def test_there_is_more_than_one_migration_to_test_upgrades_with():
    assert sorted(MIGRATIONS) == list(range(1, SCHEMA_VERSION + 1)) and SCHEMA_VERSION >= 3


@pytest.mark.parametrize("start", range(0, SCHEMA_VERSION))
def test_migrating_from_every_earlier_version(pg_empty_dsn, pg_dsn, start):
    with psycopg.connect(pg_empty_dsn) as conn:
        if start:
            assert migrate(conn, target=start) == start
            assert applied_versions(conn) == list(range(1, start + 1))
        assert migrate(conn) == SCHEMA_VERSION
        assert migrate(conn) == SCHEMA_VERSION            # idempotent
        upgraded = _schema(conn)
    with psycopg.connect(pg_dsn) as fresh:
        assert _schema(fresh) == upgraded


def test_a_newer_schema_is_refused(pg_dsn):
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
        conn.commit()
        with pytest.raises(StoreError, match="newer than this program"):
            migrate(conn)


def _partitions(dsn):
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT name, t_from, t_to FROM fix_partitions").fetchall()


def _indexes(dsn, table):
    with psycopg.connect(dsn) as conn:
        return sorted(r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename=%s", (table,)))


def test_fixes_go_into_monthly_partitions_made_as_needed(pg_dsn):
    with PgStore(pg_dsn) as s:
        s.on_fix(fix_at("TAG-1", 1, MAY_2026 + 86400 * 3, 0, 0), True)        # May
        s.on_fix(fix_at("TAG-1", 2, MAY_2026 + 86400 * 70, 10, 0), True)      # July
        s.on_fix(fix_at("TAG-1", 3, MAY_2026 - 1, 20, 0), False)              # April, late
        s.flush()
        assert s.counts()["fixes"] == 3
    names = [p[0] for p in _partitions(pg_dsn)]
    assert names == ["fixes_p202604", "fixes_p202605", "fixes_p202606", "fixes_p202607",
                     "fixes_p202608"]
    parts = dict((p[0], p[1:]) for p in _partitions(pg_dsn))
    assert parts["fixes_p202605"] == (MAY_2026, MAY_2026 + 31 * 86400)
    defs = _indexes(pg_dsn, "fixes_p202605")
    assert any("USING gist (geom, t)" in d for d in defs), defs
    assert any("USING btree (device, t)" in d for d in defs), defs
    assert any("USING brin (fix_id)" in d for d in defs), defs
    with psycopg.connect(pg_dsn) as conn:
        # each fix is in the partition of its month, with its point in British National Grid
        got = conn.execute("SELECT tableoid::regclass::text, seq, ST_SRID(geom),"
                           " round(ST_X(geom)) FROM fixes ORDER BY seq").fetchall()
        assert [g[0] for g in got] == ["fixes_p202605", "fixes_p202607", "fixes_p202604"]
        assert {g[2] for g in got} == {27700}
        assert [g[3] for g in got] == [530000, 530010, 530020]
        # a query on a time range reads only the partitions of that range
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT * FROM fixes WHERE device='TAG-1' AND t BETWEEN %s AND %s",
            (MAY_2026 + 86400, MAY_2026 + 86400 * 2)))
        assert "fixes_p202605" in plan and "fixes_p202607" not in plan and "fixes_p202604" not in plan


def test_a_new_month_is_made_while_a_reader_holds_the_fixes_open(pg_dsn):
    """An analyst's transaction that has read fixes (a crime query, a playback) does not hold up
    the writer at the first fix of a month: the month is attached, not created as a partition
    (which would wait for the reader and, past lock_timeout, stop the writer)."""
    with PgStore(pg_dsn) as s:
        s.on_fix(fix_at("TAG-1", 1, MAY_2026 + 86400, 0, 0), True)
        s.flush()
        with psycopg.connect(pg_dsn) as reader:          # its transaction stays open
            assert reader.execute("SELECT count(*) FROM fixes").fetchone()[0] == 1
            s.on_fix(fix_at("TAG-1", 2, MAY_2026 + 86400 * 70, 10, 0), True)      # July: new
            s.flush()
            assert reader.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert s.counts()["fixes"] == 2
    assert [p[0] for p in _partitions(pg_dsn)] == [
        "fixes_p202605", "fixes_p202606", "fixes_p202607", "fixes_p202608"]
    defs = _indexes(pg_dsn, "fixes_p202607")              # the parent's indexes, made on attach
    assert len(defs) == len(_indexes(pg_dsn, "fixes_p202605")) and any("USING gist (geom, t)" in d for d in defs), defs


def test_the_month_after_is_left_for_later_when_its_lock_does_not_come_at_once(pg_dsn):
    sept = MAY_2026 + 86400 * (31 + 30 + 31 + 31)
    with psycopg.connect(pg_dsn, autocommit=True) as c:
        assert c.execute("SELECT ensure_fix_partition(%s)", (sept,)).fetchone()[0] == 2
        c.execute("DROP TABLE fixes_p202610")
    with psycopg.connect(pg_dsn) as other, psycopg.connect(pg_dsn, autocommit=True) as c:
        other.execute("LOCK TABLE fixes IN SHARE UPDATE EXCLUSIVE MODE")    # as ANALYZE would
        c.execute("SET lock_timeout = '30s'")
        assert c.execute("SELECT ensure_fix_partition(%s)", (sept,)).fetchone()[0] == 0
        assert c.execute("SHOW lock_timeout").fetchone()[0] == "30s"          # as it was
        assert "fixes_p202610" not in [p[0] for p in _partitions(pg_dsn)]
        other.rollback()
        assert c.execute("SELECT ensure_fix_partition(%s)", (sept,)).fetchone()[0] == 1
    assert [p[0] for p in _partitions(pg_dsn)][-2:] == ["fixes_p202609", "fixes_p202610"]


def test_purge_drops_whole_partitions_and_is_audited(pg_dsn):
    day = 86400.0
    with PgStore(pg_dsn) as s:
        for k, t in enumerate((MAY_2026 - 20 * day, MAY_2026 + 5 * day, MAY_2026 + 40 * day)):
            s.on_fix(fix_at("TAG-1", k, t, 0, 0), True)
        # now = 10 June + 30 days' retention: the cutoff is in May; April goes, May stays
        now = MAY_2026 + 40 * day + 30 * day
        assert s.purge_fixes("admin", now=now, retention_days=60) == 1
        assert s.counts()["fixes"] == 2
        [rec] = s.audit_log()
        assert rec["action"] == "purge_fixes" and rec["who"] == s.login      # the login, not the name passed
        assert rec["detail"]["deleted"] == 1 and rec["detail"]["partitions"] == ["fixes_p202604"]
        assert verify_chain(s.reader(), "audit_log").intact
        # a late fix for a dropped month makes its partition again
        s.on_fix(fix_at("TAG-1", 9, MAY_2026 - 25 * day, 0, 0), True)
        s.flush()
        assert s.counts()["fixes"] == 3
        with pytest.raises(StoreError, match="positive"):
            s.purge_fixes("admin", retention_days=0)
    assert "fixes_p202604" in [p[0] for p in _partitions(pg_dsn)]


# ---- the server's hash is localdb's --------------------------------------------------------------

texts = st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                                             blacklist_characters="\x00"),
                                     max_size=40))
times = st.floats(min_value=946684800.0, max_value=4102444800.0, allow_nan=False)


@pytest.fixture(scope="module")
def hash_conn(pg_cluster, pg_template):
    """A database of the module's own (a connection to the template would block copying it)."""
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE hashes TEMPLATE {pg_template}")
    try:
        with psycopg.connect(pg_cluster.dsn("hashes"), autocommit=True) as conn:
            yield conn
    finally:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
            admin.execute("DROP DATABASE hashes WITH (FORCE)")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seq=st.integers(1, 2**53), alert=st.text(max_size=20).filter(lambda s: "\x00" not in s
                                                                    and not any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
       at=times, op=texts, action=texts, code=texts, note=texts, reason=texts,
       until=st.one_of(st.none(), times, st.floats(min_value=1e-4, max_value=9.9e14)))
def test_server_hash_is_localdb_record_hash(hash_conn, seq, alert, at, op, action, code, note,
                                            reason, until):
    record = {"seq": seq, "alert_id": alert, "at": at, "operator": op, "action": action,
              "action_code": code, "note": note, "reason": reason, "until": until}
    got = hash_conn.execute("SELECT chain_hash_ack(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                            (GENESIS, seq, alert, at, op, action, code, note, reason,
                             until)).fetchone()[0]
    assert got == record_hash(GENESIS, record)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=times, who=texts.filter(lambda s: s is not None), detail=st.text(max_size=60).filter(
    lambda s: "\x00" not in s and not any(0xD800 <= ord(c) <= 0xDFFF for c in s)))
def test_server_audit_hash_is_localdb_record_hash(hash_conn, at, who, detail):
    got = hash_conn.execute("SELECT chain_hash_audit(%s, 7, %s, %s, 'x', %s)",
                            (GENESIS, at, who, detail)).fetchone()[0]
    assert got == record_hash(GENESIS, {"seq": 7, "at": at, "who": who, "action": "x",
                                        "detail": detail})


def test_numbers_the_chain_cannot_hash_exactly_are_refused(hash_conn):
    for bad in (math.inf, 1e15, 1e-5):
        with pytest.raises(psycopg.Error):
            hash_conn.execute("SELECT py_json_float(%s)", (bad,))


def test_a_rewritten_record_is_caught(pg_dsn, pg_cluster):
    with PgStore(pg_dsn) as s:
        for k in range(4):
            s.audit(f"op{k}", "export", {"k": k})
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        # the superuser goes around the append-only trigger: the chain still catches it
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET who='mallory' WHERE seq=2")
        report = verify_chain(conn, "audit_log")
        assert not report.intact and report.broken_seq == 2


def test_verify_record_catches_a_deleted_tail(pg_dsn):
    from centraldb.verify import verify_record
    with PgStore(pg_dsn) as s:
        for k in range(5):
            s.audit(f"op{k}", "export", {"k": k})
    assert [(r.table, r.intact, r.records) for r in verify_record(pg_dsn)] == [
        ("ack_log", True, 0), ("audit_log", True, 5)]
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("DELETE FROM audit_log WHERE seq >= 4")       # the newest two records
    [ack, audit] = verify_record(pg_dsn)
    assert ack.intact and not audit.intact and "removed from its end" in audit.problem


def test_a_store_that_lost_its_server_says_so(pg_dsn, pg_cluster):
    with PgStore(pg_dsn) as s:
        s.audit("alice", "export", {})
        pid = s._call(lambda c: c.execute("SELECT pg_backend_pid()").fetchone()[0])
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StoreError, match="cannot be written"):
            s.audit("bob", "export", {})
        with pytest.raises(StoreError, match="cannot be written"):     # and stays that way
            s.on_fix(fix_at("TAG-1", 1, MAY_2026, 0, 0), True)
