"""``monitorapp migrate-store --from STORE.sqlite --to postgresql://...``: carry a workstation's
SQLite store over into the centre's PostgreSQL record, verifying counts and chains.

What is carried, row for row with its ids: fixes (with their ``fix_id``, into the monthly
partitions), events, rejected messages (raw bytes), alerts with their changes and handling,
offenders, tag assignments, zone and requirement versions (with who saved them), the
acknowledgement and audit logs **with their hashes** (the chains are the same chains: records,
``prev_hash`` and ``hash`` are copied, not re-appended, and ``chain_heads`` is set to their
ends), the checkpoints (so ``monitorapp monitor --db postgresql://...`` resumes where the
SQLite monitor stopped), the notification outbox with each notification's state and attempts
(so the decider on the record neither sends again what was sent, nor forgets what was due: a
notification left ``sending`` or ``committing`` is recovered there as it would have been on
the store) and the response protocols with their versions. Local accounts are **not** carried: their scrypt hashes cannot become
server logins (SCRAM verifiers are made from the password itself); the summary lists them so
that an administrator creates each with ``monitorapp accounts``.

Decisions (a monitoring centre's record must never be half-merged):

* the target must be empty (no fixes, events, alerts, logs, zones or offenders): a non-empty
  record is refused, never merged into. The copy is one transaction, so a failed run leaves the
  target as it was and may simply be run again.
* the store's mode travels with it. A training store is refused unless ``--training`` is given,
  and then only into a record that is (or becomes) a training record; a live store is never
  carried into a training record (``StoreModeError`` either way).
* it runs as a login that may set ``session_replication_role`` (the record's superuser, an
  installation step): the copy bypasses the server's triggers, which would otherwise stamp the
  migrating login as the author of every zone version and log record.
* after the copy and before the commit the target is checked: every table's row count equals
  the source's, both chains verify from their first record with the server's walker, and each
  chain ends on the same (seq, hash) as the source's. Then the target's anchor file is written
  (``localdb.anchor``).

Exit status: 0 carried and verified; 1 verification failed (nothing committed); 2 bad input
(a source that is not a store, an unreachable or non-empty target, a mode refused).
"""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import psycopg

from localdb.anchor import AnchorFile, default_anchor_path
from localdb.hashchain import CHAINS, GENESIS, verify_chain
from localdb.schema import APPLICATION_ID, SCHEMA_VERSION, StoreError, StoreModeError

# source table -> its key column (the copy's order), in the order they are copied
TABLES = {
    "offenders": "offender_id", "tags": "device", "assignments": "assignment_id",
    "zones": "zone_id, version", "requirements": "offender_id, requirement_id, version",
    "fixes": "fix_id", "events": "event_id", "rejected": "rejected_id", "alerts": "alert_id",
    "alert_changes": "change_id", "alert_handling": "alert_id", "ack_log": "seq",
    "audit_log": "seq", "checkpoints": "feed", "notifications": "notification_id",
    "notification_attempts": "attempt_id", "notify_state": "key", "response_protocols": "version",
}
MUST_BE_EMPTY = ("fixes", "events", "rejected", "alerts", "ack_log", "audit_log", "zones",
                 "offenders", "checkpoints", "notifications", "notification_attempts",
                 "notify_state", "response_protocols")
IDENTITIES = {"fixes": "fix_id", "events": "event_id", "rejected": "rejected_id",
              "assignments": "assignment_id", "alert_changes": "change_id",
              "notification_attempts": "attempt_id"}
BOOLEAN = {"used", "late", "removed", "acknowledged"}
BATCH = 50_000


class CarryError(StoreError):
    """The carried record does not match its source (nothing was committed)."""


def _open_source(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise StoreError(f"{path}: no such store file")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=5)
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
            raise StoreError(f"{path}: not a monitorapp store")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: schema version {version} is newer than this program "
                             f"understands ({SCHEMA_VERSION})")
    except sqlite3.DatabaseError as e:
        conn.close()
        raise StoreError(f"{path}: the file is corrupt or not a SQLite database ({e})") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _source_mode(src: sqlite3.Connection) -> str:
    try:
        row = src.execute("SELECT value FROM meta WHERE key='mode'").fetchone()
    except sqlite3.OperationalError:
        row = None
    return row[0] if row else "live"


def _columns(src, dst, table: str) -> list[str]:
    """The columns both sides have (the target's generated ``geom`` and any column the source
    lacks are left to their defaults)."""
    have = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
    want = [r[0] for r in dst.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name=%s"
        " AND table_schema=current_schema() AND is_generated='NEVER' ORDER BY ordinal_position",
        (table,))]
    return [c for c in want if c in have]


def _row(cols, values):
    out = []
    for c, v in zip(cols, values):
        if c in BOOLEAN and v is not None:
            v = bool(v)
        elif c == "raw" and isinstance(v, str):
            v = v.encode("utf-8")
        out.append(v)
    return out


def _copy(src, dst, table: str) -> int:
    cols = _columns(src, dst, table)
    if not cols:
        return 0
    cur = src.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY {TABLES[table]}")
    n = 0
    t_at = cols.index("t") if table == "fixes" else None
    months: set = set()
    while True:
        batch = cur.fetchmany(BATCH)
        if not batch:
            return n
        if t_at is not None:                      # the monthly partitions the batch needs
            for t in {time.strftime("%Y%m", time.gmtime(r[t_at])): r[t_at]
                      for r in batch}.items():
                if t[0] not in months:
                    dst.execute("SELECT ensure_fix_partition(%s)", (t[1],))
                    months.add(t[0])
        with dst.cursor().copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
            for r in batch:
                cp.write_row(_row(cols, r))
        n += len(batch)


def _count(conn, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def _count_source(src, table: str) -> int:
    """Rows of ``table`` in the store; 0 where a store from before its migration has none."""
    if src.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,)).fetchone() is None:
        return 0
    return _count(src, table)


def _last(conn, table: str) -> tuple[int, str]:
    row = conn.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


def carry(source: str, dsn: str, *, training: bool = False, anchor=None) -> dict:
    """Carry the store file ``source`` into the empty record ``dsn``; return the summary.
    Raises StoreError / StoreModeError (bad input) or CarryError (verification failed)."""
    from centraldb.schema import migrate
    from centraldb.store import redact
    src_path = Path(source)
    src = _open_source(src_path)
    where = redact(dsn)
    try:
        mode = _source_mode(src)
        if mode == "training" and not training:
            raise StoreModeError(str(src_path), "training", "live")
        want = "training" if training else "live"
        if mode != want:
            raise StoreModeError(str(src_path), mode, want)
        try:
            dst = psycopg.connect(dsn, application_name="monitorapp migrate-store")
        except psycopg.Error as e:
            raise StoreError(f"{where}: cannot connect to the record: "
                             f"{str(e).strip().splitlines()[0] if str(e).strip() else e}") from None
        try:
            migrate(dst)
            with dst.transaction():
                found = dst.execute("SELECT value FROM meta WHERE key='mode'").fetchone()
                if found is not None and found[0] != mode:
                    raise StoreModeError(where, found[0], mode)
                busy = {t: _count(dst, t) for t in MUST_BE_EMPTY}
                if any(busy.values()):
                    raise StoreError(f"{where}: the record is not empty ("
                                     + ", ".join(f"{n} {t}" for t, n in busy.items() if n)
                                     + "); migrate-store only fills an empty record, it never "
                                       "merges")
                try:
                    dst.execute("SET LOCAL session_replication_role = replica")
                except psycopg.errors.InsufficientPrivilege:
                    raise StoreError(f"{where}: migrate-store must run as the record's superuser"
                                     f" (it copies who and when exactly as recorded, past the "
                                     f"server's triggers)") from None
                carried = {t: _copy(src, dst, t) for t in TABLES}
                for table, col in IDENTITIES.items():
                    dst.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'),"
                                f" greatest((SELECT max({col}) FROM {table}), 1),"
                                f" (SELECT max({col}) FROM {table}) IS NOT NULL)")
                heads = {}
                for table in CHAINS:
                    heads[table] = _last(dst, table)
                    dst.execute("UPDATE chain_heads SET seq=%s, hash=%s WHERE chain=%s",
                                (*heads[table], table))
                # acknowledged by whom and when: the first acknowledgement in the log
                dst.execute("UPDATE alert_handling h SET acked_by=l.operator, acked_at=l.at FROM"
                            " (SELECT DISTINCT ON (alert_id) alert_id, operator, at FROM ack_log"
                            "  WHERE action='acknowledge' ORDER BY alert_id, seq) l"
                            " WHERE h.alert_id=l.alert_id AND h.acknowledged")
                dst.execute("INSERT INTO meta (key, value) VALUES ('mode', %s)"
                            " ON CONFLICT (key) DO NOTHING", (mode,))
                dst.execute("SET LOCAL session_replication_role = origin")
                problems = _check(src, dst, heads)
                if problems:
                    raise CarryError(f"{where}: the carried record does not match "
                                     f"{src_path}: " + "; ".join(problems) + " (nothing was "
                                     f"committed)")
                summary = {"from": str(src_path), "to": where, "mode": mode,
                           "carried": carried,
                           "chains": {t: {"records": heads[t][0], "head": heads[t][1]}
                                      for t in CHAINS}}
        finally:
            dst.close()
        accounts = []
        try:
            accounts = [{"username": u, "role": r} for u, r in src.execute(
                "SELECT username, role FROM accounts ORDER BY username")]
        except sqlite3.OperationalError:
            pass
        summary["accounts_to_create"] = accounts
        target_anchor = AnchorFile(default_anchor_path(dsn) if anchor is None else anchor)
        target_anchor.record(heads)
        summary["anchor"] = str(target_anchor.path)
        return summary
    finally:
        src.close()


def _check(src, dst, heads) -> list[str]:
    problems = []
    for table in TABLES:
        a, b = _count_source(src, table), _count(dst, table)
        if a != b:
            problems.append(f"{table}: {a} rows in the store, {b} carried")
    for table in CHAINS:
        report = verify_chain(dst, table)
        if not report.intact:
            problems.append(f"{table}: the carried chain is broken at record "
                            f"{report.broken_seq}: {report.problem}")
        if _last(src, table) != heads[table]:
            problems.append(f"{table}: the carried chain does not end where the store's does")
    return problems


def cli_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="monitorapp migrate-store",
        description="Carry a SQLite store into an empty PostgreSQL record, verifying counts "
                    "and chains.")
    p.add_argument("--from", dest="source", required=True, help="the SQLite store file")
    p.add_argument("--to", dest="target", required=True, help="postgresql://... (an empty record)")
    p.add_argument("--training", action="store_true",
                   help="carry a training store into a training record (never into a live one)")
    p.add_argument("--anchor", help="the target's anchor file (default: this machine's anchor "
                                    "of that record)")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    from centraldb import is_pg_target
    if not is_pg_target(args.target):
        print("monitorapp migrate-store: --to must be a postgresql:// URL", file=sys.stderr)
        return 2
    try:
        summary = carry(args.source, args.target, training=args.training, anchor=args.anchor)
    except CarryError as e:
        print(f"monitorapp migrate-store: {e}", file=sys.stderr)
        return 1
    except StoreError as e:
        print(f"monitorapp migrate-store: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    return 0
