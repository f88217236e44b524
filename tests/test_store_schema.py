"""Opening the store file: created 0600, migrated, WAL; a corrupt, foreign, locked or newer file
stops with a clear error naming the file, and is never replaced."""
from __future__ import annotations

import os
import sqlite3
import stat
import sys

import pytest

from localdb.schema import APPLICATION_ID, SCHEMA_VERSION, StoreError
from localdb.store import Store


def test_new_store_is_private_wal_and_current(store_path):
    with Store(store_path) as s:
        s.audit("alice", "sign_in")
        assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
        for extra in ("-wal", "-shm"):
            p = f"{store_path}{extra}"
            if os.path.exists(p):
                assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    conn = sqlite3.connect(store_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_private_even_with_a_permissive_umask(store_path):
    old = os.umask(0)
    try:
        Store(store_path).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600


def test_reopen_keeps_data(store_path):
    with Store(store_path) as s:
        s.audit("alice", "sign_in")
    with Store(store_path) as s:
        assert [r["who"] for r in s.audit_log()] == ["alice"]


def test_corrupt_file_is_refused_and_left_alone(store_path):
    garbage = b"this is not a database, it is a shopping list\n" * 200
    store_path.write_bytes(garbage)
    with pytest.raises(StoreError) as e:
        Store(store_path)
    assert str(store_path) in str(e.value) and "corrupt" in str(e.value)
    assert store_path.read_bytes() == garbage


def test_damaged_store_is_refused(store_path):
    with Store(store_path) as s:
        s.audit("alice", "sign_in")
    data = bytearray(store_path.read_bytes())
    data[0:16] = b"XXXXXXXXXXXXXXXX"          # the SQLite header is gone
    store_path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt"):
        Store(store_path)
    assert store_path.read_bytes()[:16] == b"XXXXXXXXXXXXXXXX"


def test_foreign_sqlite_file_is_refused(store_path):
    conn = sqlite3.connect(store_path)
    conn.execute("CREATE TABLE recipes (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a monitorapp store"):
        Store(store_path)
    tables = sqlite3.connect(store_path).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("recipes",)]


def test_newer_schema_is_refused(store_path):
    Store(store_path).close()
    conn = sqlite3.connect(store_path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as e:
        Store(store_path)
    assert "newer" in str(e.value) and str(store_path) in str(e.value)


def test_locked_store_is_refused_with_a_clear_message(store_path):
    Store(store_path).close()
    holder = sqlite3.connect(store_path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError) as e:
            Store(store_path, busy_timeout_s=0.2)
        assert "locked" in str(e.value) and str(store_path) in str(e.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    Store(store_path).close()     # usable again once released


def test_missing_store_is_not_created_when_asked_to_read(tmp_path):
    p = tmp_path / "nope.sqlite"
    with pytest.raises(StoreError, match="no such store file"):
        Store(p, create=False)
    assert not p.exists()


def test_missing_directory(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "no" / "dir" / "s.sqlite")


def test_only_one_feeding_process(store_path, example_caseload_path):
    """A second process attaching an engine to the same store is refused."""
    import subprocess

    from monitorapp.engine.caseload import load_caseload
    from monitorapp.engine.engine import Engine

    with Store(store_path) as s:
        s.attach(Engine(load_caseload(example_caseload_path)))
        code = (
            "import sys; from localdb.store import Store; from localdb.schema import StoreError\n"
            "from monitorapp.engine.caseload import load_caseload; from monitorapp.engine.engine import Engine\n"
            f"s = Store({str(store_path)!r})\n"
            f"e = Engine(load_caseload({str(example_caseload_path)!r}))\n"
            "try:\n    s.attach(e)\nexcept StoreError as e:\n    print(e); sys.exit(3)\n"
            "finally:\n    s.close()\n")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=os.path.dirname(os.path.dirname(__file__)), timeout=60)
        assert r.returncode == 3, r.stderr
        assert "already being fed" in r.stdout


def test_core_imports_no_qt():
    import subprocess
    code = ("import sys; sys.modules['PySide6'] = None\n"
            "import localdb.store, localdb.verify, monitorapp.crime.query, monitorapp.crime.trail\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(__file__)), timeout=60)
    assert r.stdout.strip() == "ok", r.stderr


def test_an_older_store_is_migrated_and_keeps_its_data(store_path):
    """A version-1 store (before accounts) opens as the current version with its data."""
    from localdb.schema import MIGRATIONS, _statements
    conn = sqlite3.connect(store_path, isolation_level=None)
    for statement in _statements(MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute("PRAGMA user_version=1")
    conn.execute("INSERT INTO offenders VALUES ('OFF-1', 'One', 'high', 'Camden', 60, 0)")
    conn.close()
    with Store(store_path) as s:
        s.sign_in("alice")
        conn = s.reader()
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT offender_id FROM offenders").fetchall() == [("OFF-1",)]
        assert conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 0
