"""The store's SQLite schema, its versioned migrations and the safe opening of the file.

The schema version lives in ``PRAGMA user_version`` and the file is marked as ours with
``PRAGMA application_id``. Opening never replaces a file: a corrupt file, a file locked by
another process, a SQLite file that is not a monitorapp store, or a store written by a newer
version of the program stops with a :class:`StoreError` that names the file and the problem.
A new file is created with mode 0600 before SQLite touches it (SQLite gives its ``-wal`` and
``-shm`` files the same mode).

Indexing decision (measured, see docs/readme/store.md): fixes carry British National Grid
metres (``x``, ``y``) and are indexed by ``(device, t)``, covering ``x, y, acc`` so that a
track is read from the index alone. Crime mapping (spec §5) needs every tag's continuous track
around the window, not only the fixes near the place, so a per-tag time-range scan is the
access path it needs; an R*Tree over (x, y, t) halved the ingest rate for no gain on that
query.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from localdb.migrations_accounts import ACCOUNTS_MIGRATION

APPLICATION_ID = 0x454D5354  # "EMST"
SCHEMA_VERSION = 2


class StoreError(Exception):
    """The store cannot be used: the message names the file and the problem."""


MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE offenders (
    offender_id TEXT PRIMARY KEY, name TEXT, risk TEXT, borough TEXT,
    fix_interval_s REAL, updated_at REAL NOT NULL);
CREATE TABLE tags (device TEXT PRIMARY KEY, first_seen REAL, last_seen REAL);
CREATE TABLE assignments (
    assignment_id INTEGER PRIMARY KEY, offender_id TEXT NOT NULL, device TEXT NOT NULL,
    valid_from REAL NOT NULL, valid_to REAL);
CREATE INDEX assignments_device ON assignments(device, valid_from);
CREATE INDEX assignments_offender ON assignments(offender_id, valid_from);
CREATE TABLE zones (
    zone_id TEXT NOT NULL, version INTEGER NOT NULL, name TEXT, feature TEXT NOT NULL,
    created_at REAL NOT NULL, created_by TEXT, removed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (zone_id, version));
CREATE TABLE requirements (
    offender_id TEXT NOT NULL, requirement_id TEXT NOT NULL, version INTEGER NOT NULL,
    body TEXT NOT NULL, recorded_at REAL NOT NULL,
    PRIMARY KEY (offender_id, requirement_id, version));
CREATE TABLE fixes (
    fix_id INTEGER PRIMARY KEY, device TEXT NOT NULL, seq INTEGER, t REAL NOT NULL,
    rx REAL, lat REAL NOT NULL, lon REAL NOT NULL, acc REAL NOT NULL, src TEXT,
    spd REAL, hdg REAL, sats INTEGER, batt REAL, x REAL NOT NULL, y REAL NOT NULL,
    used INTEGER NOT NULL);
CREATE INDEX fixes_device_t ON fixes(device, t, x, y, acc);
CREATE TABLE events (
    event_id INTEGER PRIMARY KEY, device TEXT NOT NULL, seq INTEGER, t REAL NOT NULL,
    rx REAL, type TEXT NOT NULL, detail TEXT);
CREATE INDEX events_device_t ON events(device, t);
CREATE TABLE rejected (
    rejected_id INTEGER PRIMARY KEY, rx REAL, topic TEXT, device TEXT,
    reason TEXT NOT NULL, text TEXT NOT NULL, raw BLOB NOT NULL);
CREATE TABLE alerts (
    alert_id TEXT PRIMARY KEY, type TEXT NOT NULL, priority TEXT NOT NULL, offender_id TEXT,
    device TEXT, requirement_id TEXT, zone_id TEXT, zone_version INTEGER,
    start REAL NOT NULL, raised_at REAL NOT NULL, late INTEGER NOT NULL, evidence TEXT,
    state TEXT NOT NULL, cleared_at REAL, reactivations INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL);
CREATE INDEX alerts_raised ON alerts(raised_at);
CREATE TABLE alert_changes (
    change_id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, change TEXT NOT NULL,
    n INTEGER NOT NULL, at REAL NOT NULL, state TEXT NOT NULL, UNIQUE (alert_id, change, n));
CREATE TABLE alert_handling (
    alert_id TEXT PRIMARY KEY, handling TEXT NOT NULL, operator TEXT, at REAL NOT NULL,
    action_code TEXT, acknowledged INTEGER NOT NULL DEFAULT 0, shelved_reason TEXT,
    shelved_until REAL);
CREATE TABLE ack_log (
    seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, at REAL NOT NULL,
    operator TEXT NOT NULL, action TEXT NOT NULL, action_code TEXT, note TEXT,
    reason TEXT, until REAL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX ack_log_alert ON ack_log(alert_id, seq);
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY, at REAL NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL,
    detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE checkpoints (
    feed TEXT PRIMARY KEY, at REAL NOT NULL, position TEXT NOT NULL, snapshot TEXT NOT NULL,
    max_fix_id INTEGER NOT NULL, max_event_id INTEGER NOT NULL,
    max_rejected_id INTEGER NOT NULL);
CREATE TRIGGER ack_log_no_update BEFORE UPDATE ON ack_log
    BEGIN SELECT RAISE(ABORT, 'ack_log is append-only'); END;
CREATE TRIGGER ack_log_no_delete BEFORE DELETE ON ack_log
    BEGIN SELECT RAISE(ABORT, 'ack_log is append-only'); END;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
""",
    # 2: local sign-in accounts (localdb/accounts.py); idempotent, see migrations_accounts.py
    2: ACCOUNTS_MIGRATION,
}


def _create_file(path: Path) -> None:
    """Create an empty database file with mode 0600 (an empty file is a valid SQLite db)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as e:
        raise StoreError(f"{path}: cannot create the store: {e.strerror}") from None
    os.close(fd)
    os.chmod(path, 0o600)


def _explain(path: Path, e: sqlite3.Error) -> StoreError:
    text = str(e)
    if "locked" in text or "busy" in text:
        return StoreError(f"{path}: the store is locked by another process ({text})")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(f"{path}: the file is corrupt or not a SQLite database ({text})")
    return StoreError(f"{path}: cannot use the store: {text}")


def connect(path: Path, *, readonly: bool = False, busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """One connection with our pragmas. Autocommit mode: callers BEGIN/COMMIT explicitly."""
    try:
        if readonly:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=busy_timeout_s)
        else:
            conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                   timeout=busy_timeout_s)
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        if not readonly:
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute("PRAGMA cache_size=-65536")
    except sqlite3.Error as e:
        raise _explain(path, e) from None
    return conn


def open_store_file(path: str | os.PathLike, *, create: bool = True,
                    busy_timeout_s: float = 5.0) -> sqlite3.Connection:
    """Open (creating if allowed) and migrate the store; return the writer connection."""
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a store file")
    if not path.exists():
        if not create:
            raise StoreError(f"{path}: no such store file")
        if not path.parent.is_dir():
            raise StoreError(f"{path}: the directory {path.parent} does not exist")
        _create_file(path)
    elif not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(f"{path}: permission denied (the store must be readable and writable)")
    conn = connect(path, busy_timeout_s=busy_timeout_s)
    try:
        migrate(conn, path)
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as e:
        conn.close()
        raise _explain(path, e) from None
    return conn


def check_identity(conn: sqlite3.Connection, path: Path) -> int:
    """Return the file's schema version after checking that it is a store we can read."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if app != APPLICATION_ID and (tables or version):
        raise StoreError(f"{path}: is a SQLite database but not a monitorapp store "
                         f"(application_id {app:#x}); refusing to use it")
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: the store has schema version {version}, newer than this "
                         f"program understands ({SCHEMA_VERSION}); use a newer monitorapp")
    return version


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Bring the schema up to SCHEMA_VERSION, one migration per transaction."""
    version = check_identity(conn, path)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StoreError(f"{path}: cannot switch the store to WAL mode (got {mode})")
    while version < SCHEMA_VERSION:
        target = version + 1
        conn.execute("BEGIN IMMEDIATE")
        try:
            # re-read under the write lock: another process may have migrated meanwhile
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current >= target:
                conn.execute("ROLLBACK")
                version = current
                continue
            for statement in _statements(MIGRATIONS[target]):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version={target}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        version = target
    return version


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers contain inner semicolons)."""
    out, buf = [], ""
    for line in script.strip().splitlines():
        buf += line + "\n"
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
