"""Closed months compacted (centraldb.compaction, ``monitorapp compact-store``) on a real
PostgreSQL record: the track index of each month that is over is rebuilt concurrently, once,
recorded and audited as the login that ran it; what crime mapping reads is unchanged; a person's
login cannot do it; a rebuild that fails leaves no half-built index and is tried again."""
from __future__ import annotations

import threading

import psycopg
import pytest

from centraldb.compaction import CompactionError, candidates, cli_main, compact_closed_months
from centraldb.crime import window_rows
from centraldb.store import PgStore
from tests.fixtures_pgpeople import people  # noqa: F401 - the fixture
from tests.fixtures_store import TrackWriter
from tests.fixtures_clock import Clock

JAN = 1_767_225_600.0           # 2026-01-01T00:00:00Z
FEB = 1_769_904_000.0
MAR = 1_772_323_200.0
H = 3600.0


@pytest.fixture
def record(pg_dsn):
    """Three tags with two days of fixes in January, February and March each."""
    store = PgStore(pg_dsn, clock=Clock(JAN - 86400))
    w = TrackWriter(store)
    for month in (JAN, FEB, MAR):
        for k in range(3):
            w.line(f"TAG-{k}", month + 86400, month + 3 * 86400, 300, (k * 100, 0), (k * 100, 4000))
    store.flush()
    yield pg_dsn
    store.close()


def _tracks(conn, lo, hi):
    rows = window_rows(conn, lo, hi)
    return {r[0]: tuple(tuple(a.tolist()) for a in r[1:]) for r in rows["tracks"]}


def _indexes(conn, partition):
    return conn.execute(
        "SELECT x.indexrelid::regclass::text, x.indisvalid, EXISTS (SELECT 1 FROM pg_inherits i"
        " WHERE i.inhrelid = x.indexrelid) FROM pg_index x WHERE x.indrelid = %s::regclass"
        " ORDER BY 1", (partition,)).fetchall()


def test_the_months_that_are_over_are_rebuilt_once_and_what_crime_mapping_reads_is_unchanged(record):
    with psycopg.connect(record, autocommit=True) as conn:
        windows = [(JAN + 86400 + 2 * H, JAN + 86400 + 4 * H), (FEB + 2 * 86400 - H, FEB + 2 * 86400 + H),
                   (MAR + 86400, MAR + 2 * 86400)]
        before = [_tracks(conn, lo, hi) for lo, hi in windows]
        indexes_before = {p: _indexes(conn, p) for p in ("fixes_p202601", "fixes_p202602", "fixes_p202603")}
        said = []
        done = compact_closed_months(conn, MAR, progress=said.append)
        assert [c.partition for c in done] == ["fixes_p202601", "fixes_p202602"]   # not March
        assert all(c.index.endswith("_idx") and c.bytes_after > 0 for c in done)
        assert len(said) == 4 and "1 of 2" in said[0] and "MB ->" in said[1]
        assert [_tracks(conn, lo, hi) for lo, hi in windows] == before
        for p, idx in indexes_before.items():      # same names, valid, still the parent's
            assert _indexes(conn, p) == idx and all(valid and attached for _, valid, attached in idx)
        rows = conn.execute("SELECT name, compacted_by FROM fix_partition_compactions"
                            " ORDER BY name").fetchall()
        login = conn.execute("SELECT session_user::text").fetchone()[0]
        assert rows == [("fixes_p202601", login), ("fixes_p202602", login)]
        audited = conn.execute("SELECT who, detail::jsonb ->> 'partition' FROM audit_log"
                               " WHERE action = 'compact_fixes' ORDER BY seq").fetchall()
        assert audited == [(login, "fixes_p202601"), (login, "fixes_p202602")]
        assert compact_closed_months(conn, MAR) == []                   # once
        assert [c[0] for c in candidates(conn, MAR + 62 * 86400)] == ["fixes_p202603", "fixes_p202604"]


def test_a_persons_login_cannot_compact_nor_claim_a_compaction(record, people):  # noqa: F811
    for role in ("operator", "supervisor", "administrator", "police_analyst"):
        with people.connect(f"c_{role}", role, autocommit=True) as conn:
            with pytest.raises(CompactionError, match="owner"):
                compact_closed_months(conn, MAR)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT record_fix_compaction('fixes_p202601', 1, 1, 1)")
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="server's own"):
                conn.execute("SELECT audit_append('x', 'compact_fixes', '{}')")
    with psycopg.connect(record) as conn:
        assert conn.execute("SELECT count(*) FROM fix_partition_compactions").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'compact_fixes'"
                            ).fetchone()[0] == 0


def test_a_rebuild_that_fails_leaves_no_half_built_index_and_is_done_on_the_next_run(record):
    # a writer's transaction open on January (a late fix, not committed): the rebuild waits for
    # it after making its new copy, and is cancelled by its statement timeout
    blocker = psycopg.connect(record)
    blocker.execute("INSERT INTO fixes (device, seq, t, lat, lon, acc, x, y, used)"
                    " VALUES ('TAG-9', 1, %s, 51.5, -0.1, 5, 530000, 180000, true)", (JAN + 5 * 86400,))
    try:
        with psycopg.connect(record, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '1500ms'")
            before = _tracks(conn, JAN + 86400, JAN + 2 * 86400)
            with pytest.raises(psycopg.errors.QueryCanceled):
                compact_closed_months(conn, FEB)
            assert conn.execute("SELECT count(*) FROM fix_partition_compactions").fetchone()[0] == 0
            assert _tracks(conn, JAN + 86400, JAN + 2 * 86400) == before   # reads go on
            blocker.commit()
            conn.execute("RESET statement_timeout")
            said = []
            assert [c.partition for c in compact_closed_months(conn, FEB, said.append)] == ["fixes_p202601"]
            assert "_ccnew" in said[0] and "interrupted" in said[0]      # the copy it had made
            assert not [n for n, _, _ in _indexes(conn, "fixes_p202601") if "ccnew" in n]
            assert all(valid for _, valid, _ in _indexes(conn, "fixes_p202601"))
            assert _tracks(conn, JAN + 86400, JAN + 2 * 86400) == before
    finally:
        blocker.close()


def test_the_command_lists_compacts_and_refuses_what_it_cannot(record, people, capsys, tmp_path):  # noqa: F811
    assert cli_main(["--db", record, "--dry-run", "--settle-days", "0"]) == 0
    out = capsys.readouterr().out
    assert "fixes_p202601: track index" in out and "to be rebuilt" in out
    assert cli_main(["--db", str(tmp_path / "store.sqlite")]) == 2
    assert "PostgreSQL record" in capsys.readouterr().err
    password = people.login("c_admin", "administrator")
    person = f"postgresql://c_admin:{password}@{record.split('@', 1)[1]}"
    assert cli_main(["--db", person, "--settle-days", "0"]) == 2
    assert "owner" in capsys.readouterr().err
    done = threading.Event()         # a late fix committed meanwhile is taken (writes go on)

    def late_fix():
        with psycopg.connect(record) as c:
            c.execute("INSERT INTO fixes (device, seq, t, lat, lon, acc, x, y, used) VALUES"
                      " ('TAG-8', 1, %s, 51.5, -0.1, 5, 530000, 180000, true)", (JAN + 9 * 86400,))
        done.set()
    threading.Thread(target=late_fix).start()
    assert cli_main(["--db", record, "--settle-days", "0"]) == 0
    assert done.wait(30)
    out = capsys.readouterr().out
    assert "month(s) compacted" in out and "fixes_p202601:" in out
    with psycopg.connect(record) as conn:
        assert conn.execute("SELECT count(*) FROM fixes WHERE device = 'TAG-8'").fetchone()[0] == 1
