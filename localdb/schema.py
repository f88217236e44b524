"""The store's SQLite schema, its versioned migrations and the safe opening of the file.

The schema version lives in ``PRAGMA user_version`` and the file is marked as ours with
``PRAGMA application_id``. Opening never replaces a file: a corrupt file, a zero-length file
(someone truncated it: it is not a new store), a file locked by another process, a SQLite file
that is not a monitorapp store, or a store written by a newer version of the program stops with
a :class:`StoreError` that names the file and the problem. A new file is created with mode 0600
before SQLite touches it, and its ``-wal`` and ``-shm`` files are kept 0600 too.

**Live or training** (spec v2 §8, "training is sealed"): every store records, once, in its
``meta`` table whether it is a ``live`` or a ``training`` store; triggers refuse to change or
delete the mark. ``open_store_file(path, mode=...)`` refuses a store of the other kind with a
:class:`StoreModeError` *before it writes anything* (no migration, no mark), so a refused store
is left byte-for-byte as it was. A store from before the mark (schema 2 or older) that holds
any data (offenders, fixes, events, alerts, handling, audit records or accounts) is a live
store: that is the safe reading, since treating a live record as training would let simulated
data into it, while treating an old training store as live only means training must start a
new one. An unmarked store without data takes the mode of whoever opens it first.

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
from localdb.outbox import OUTBOX_MIGRATION

APPLICATION_ID = 0x454D5354  # "EMST"
MODES = ("live", "training")
# what makes an unmarked (schema <= 2) store a live record rather than a fresh file
_DATA_TABLES = ("offenders", "fixes", "events", "rejected", "alerts", "ack_log", "audit_log",
                "accounts")


class StoreError(Exception):
    """The store cannot be used: the message names the file and the problem."""


class StoreModeError(StoreError):
    """A live store opened for training, or a training store opened live (spec v2 §8)."""

    def __init__(self, path, store_mode: str, wanted: str):
        self.store_mode, self.wanted = store_mode, wanted
        if wanted == "training":
            text = (f"{path}: is a live store; training never opens a live store "
                    f"(choose another --db for training)")
        else:
            text = (f"{path}: is a training store; live monitoring never opens a training "
                    f"store (its data is simulated)")
        super().__init__(text)


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
    # 3: the store's kind, live or training (spec v2 §8), set once; an older store with data is
    # live (see the module docstring); a fresh one is marked by open_store_file
    3: """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) SELECT 'mode', 'live' WHERE """
    + " OR ".join(f"EXISTS (SELECT 1 FROM {t})" for t in _DATA_TABLES) + """;
CREATE TRIGGER meta_mode_no_update BEFORE UPDATE ON meta WHEN OLD.key = 'mode'
    BEGIN SELECT RAISE(ABORT, 'the store mode is set once'); END;
CREATE TRIGGER meta_mode_no_delete BEFORE DELETE ON meta WHEN OLD.key = 'mode'
    BEGIN SELECT RAISE(ABORT, 'the store mode is set once'); END;
""",
    # 4: the notification outbox (spec v2 §9, localdb/outbox.py)
    4: OUTBOX_MIGRATION,
    # 5: the centre's response protocols (issue 21, localdb/handling.py), one row a version
    5: """
CREATE TABLE IF NOT EXISTS response_protocols (
    version INTEGER PRIMARY KEY, doc TEXT NOT NULL, recorded_at REAL NOT NULL,
    recorded_by TEXT NOT NULL);
""",
}
SCHEMA_VERSION = max(MIGRATIONS)        # migrations are applied one number at a time, 1 to this


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
                    busy_timeout_s: float = 5.0, mode: str | None = "live") -> sqlite3.Connection:
    """Open (creating if allowed) and migrate the store; return the writer connection.

    ``mode`` is the kind of store the caller needs, ``"live"`` or ``"training"``: a store of
    the other kind is refused with :class:`StoreModeError` before anything is written, and a
    fresh store is marked with it. ``None`` opens either kind and marks nothing (tools that
    only inspect a store)."""
    if mode is not None and mode not in MODES:
        raise ValueError(f"a store mode is one of {', '.join(MODES)}, not {mode!r}")
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a store file")
    if not path.exists():
        if not create:
            raise StoreError(f"{path}: no such store file")
        if not path.parent.is_dir():
            raise StoreError(f"{path}: the directory {path.parent} does not exist")
        _create_file(path)
    else:
        if not os.access(path, os.R_OK | os.W_OK):
            raise StoreError(f"{path}: permission denied (the store must be readable and writable)")
        _refuse_empty(path)
    conn = connect(path, busy_timeout_s=busy_timeout_s)
    try:
        check_identity(conn, path)
        found = stored_mode(conn)
        if mode is not None and found is not None and found != mode:
            raise StoreModeError(path, found, mode)
        migrate(conn, path)
        if mode is not None:
            found = _mark_mode(conn, mode)
            if found != mode:        # another process marked the fresh store first
                raise StoreModeError(path, found, mode)
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as e:
        conn.close()
        raise _explain(path, e) from None
    _keep_private(path)
    return conn


def _refuse_empty(path: Path) -> None:
    """A zero-length store file is not a new store: someone or something truncated it. Starting
    afresh would silently replace the centre's record with an empty one."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise StoreError(f"{path}: cannot read the store: {e.strerror}") from None
    if size == 0:
        raise StoreError(f"{path}: the store file is empty (0 bytes): it was truncated, it is "
                         f"not a new store; restore it from a backup, or remove it to start a "
                         f"new one")


def _keep_private(path: Path) -> None:
    """The store and its -wal/-shm files are readable by their owner only (spec v2 §8)."""
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            st = p.stat()
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(p, 0o600)
        except OSError:
            pass


def stored_mode(conn: sqlite3.Connection) -> str | None:
    """The store's kind as recorded, without writing anything: ``"live"``, ``"training"``, or
    None for a store that is not marked yet and holds no data. An unmarked store (from before
    schema 3, or opened unmarked by an inspecting tool) that holds data is live (see the module
    docstring)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" in tables:
        row = conn.execute("SELECT value FROM meta WHERE key='mode'").fetchone()
        if row is not None:
            return row[0]
    for t in _DATA_TABLES:
        if t in tables and conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone():
            return "live"
    return None


def _mark_mode(conn: sqlite3.Connection, mode: str) -> str:
    """Mark an unmarked store with ``mode`` (once); return the store's mode."""
    row = conn.execute("SELECT value FROM meta WHERE key='mode'").fetchone()
    if row is not None:
        return row[0]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('mode', ?)", (mode,))
        found = conn.execute("SELECT value FROM meta WHERE key='mode'").fetchone()[0]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return found


def check_store_file(path: str | os.PathLike, mode: str) -> None:
    """Before a program builds anything: raise StoreError (StoreModeError for the wrong kind)
    if an existing ``path`` cannot be opened as a ``mode`` store. Reads only; no file: fine."""
    found = read_store_mode(path)
    if found is not None and found != mode:
        raise StoreModeError(Path(path), found, mode)


def read_store_mode(path: str | os.PathLike) -> str | None:
    """The kind of an existing store file, read-only (None: no file, or not marked and empty).
    Raises StoreError for a file that is not a usable store (empty, corrupt, foreign, newer)."""
    path = Path(path)
    if not path.exists():
        return None
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a store file")
    _refuse_empty(path)
    conn = connect(path, readonly=True)
    try:
        check_identity(conn, path)
        return stored_mode(conn)
    except sqlite3.Error as e:
        raise _explain(path, e) from None
    finally:
        conn.close()


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
