"""Closed months of fixes compacted: ``monitorapp compact-store --db DSN`` (issue 14).

Fixes arrive in time order across every tag, so a month's ``(device, t)`` track index (the
index crime mapping and playback read, migration 9) is appended at one place per tag at once: a
hundred places for a hundred tags, ten thousand nationally. Each full leaf page splits in half
and the halves never fill again, so the index of a month that is being written stays about half
full: measured 845 MB for a month of 100 tags reporting every minute (190 bytes an entry),
476 MB once rebuilt (108 bytes). A crime query reads a few leaf pages per tag; half-full pages
are twice the pages to read from the disk and twice the index to keep in memory.

``compact_closed_months(conn, before)`` rebuilds the track index of every month that ended
before ``before`` and has not been rebuilt yet, oldest first, with ``REINDEX INDEX
CONCURRENTLY``: the monitor goes on writing (a late fix of that month is still taken) and
crime queries go on reading while it runs. Each month done is recorded by the server
(``record_fix_compaction``, migration 10: the table ``fix_partition_compactions`` and the audit
log, as the login that ran it). A rebuild that fails (cancelled, the disk full) leaves the
month as it was, to be tried again on the next run; the invalid copy it made is dropped then
or, if whatever stopped it still holds (a timeout, a lock), at the start of the next run.

``REINDEX`` needs the rights of the tables' owner, which nobody logs in as: the command is the
database administrator's (a superuser, or a login granted ``monitorapp_owner``), run nightly,
for example from cron, as migrations are. A person's login is refused with a plain sentence.
The current month is never touched, and a month is left alone for ``--settle-days`` after its
end (default 2), while its late fixes (a tag's stored backlog) still come in.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

_CANDIDATES_SQL = """
SELECT p.name, i.inhrelid::regclass::text, pg_relation_size(i.inhrelid)
  FROM fix_partitions p
  JOIN pg_index x ON x.indrelid = to_regclass(p.name)
  JOIN pg_inherits i ON i.inhrelid = x.indexrelid AND i.inhparent = 'fixes_track'::regclass
 WHERE p.t_to <= %s
   AND NOT EXISTS (SELECT 1 FROM fix_partition_compactions c WHERE c.name = p.name)
 ORDER BY p.t_from"""
# what a failed REINDEX CONCURRENTLY leaves: the new copy, invalid, named <index>_ccnew[N]
_LEFTOVERS_SQL = """
SELECT x.indexrelid::regclass::text FROM pg_index x JOIN fix_partitions p
    ON x.indrelid = to_regclass(p.name)
 WHERE NOT x.indisvalid AND x.indexrelid::regclass::text LIKE '%\\_ccnew%'"""


class CompactionError(Exception):
    """A run that could not be done, in words for the administrator."""


@dataclass
class Compacted:
    partition: str
    index: str
    bytes_before: int
    bytes_after: int
    seconds: float


def _owner_only(e) -> CompactionError:
    return CompactionError(
        "rebuilding a month's index needs the rights of the record's owner (a superuser, "
        f"or a login granted monitorapp_owner): {e.diag.message_primary or e}")


def candidates(conn, before: float) -> list[tuple[str, str, int]]:
    """(partition, its track index, the index's size in bytes) of every month ended by
    ``before`` whose track index has not been rebuilt, oldest first."""
    import psycopg
    try:
        return [tuple(r) for r in conn.execute(_CANDIDATES_SQL, (float(before),)).fetchall()]
    except psycopg.errors.InsufficientPrivilege as e:
        raise _owner_only(e) from None


def drop_leftovers(conn) -> list[str]:
    """Drop the invalid copies an interrupted rebuild left (the planner ignores them, but the
    monitor's writer keeps them up to date: a cost for nothing). Returns their names."""
    left = [r[0] for r in conn.execute(_LEFTOVERS_SQL).fetchall()]
    for name in left:
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    return left


def compact_partition(conn, partition: str, index: str, size: int) -> Compacted:
    """Rebuild one month's track index concurrently and record it. ``conn`` is in autocommit
    mode (``REINDEX CONCURRENTLY`` runs in no transaction block)."""
    import psycopg
    start = time.perf_counter()
    try:
        conn.execute(f"REINDEX INDEX CONCURRENTLY {index}")
    except psycopg.errors.InsufficientPrivilege as e:
        raise _owner_only(e) from None
    except psycopg.Error:
        try:
            drop_leftovers(conn)
        except psycopg.Error:       # the same cause (a timeout, a lock): the next run drops it
            pass
        raise
    seconds = time.perf_counter() - start
    after = conn.execute("SELECT pg_relation_size(%s::regclass)", (index,)).fetchone()[0]
    conn.execute("SELECT record_fix_compaction(%s, %s, %s, %s)",
                 (partition, int(size), int(after), round(seconds, 3)))
    return Compacted(partition, index, int(size), int(after), seconds)


def compact_closed_months(conn, before: float, progress=None) -> list[Compacted]:
    """Every month ended by ``before`` and not yet rebuilt, rebuilt; ``progress(text)`` is
    told before and after each (a month takes about a minute per 4 million fixes here)."""
    done = []
    todo = candidates(conn, before)
    for name in drop_leftovers(conn):
        if progress:
            progress(f"{name}: dropped, left by an interrupted rebuild")
    for k, (partition, index, size) in enumerate(todo, 1):
        if progress:
            progress(f"{partition} ({k} of {len(todo)}): rebuilding its track index "
                     f"({size / 1e6:,.0f} MB) ...")
        c = compact_partition(conn, partition, index, size)
        done.append(c)
        if progress:
            progress(f"{partition}: {c.bytes_before / 1e6:,.0f} MB -> {c.bytes_after / 1e6:,.0f} MB"
                     f" in {c.seconds:.1f} s")
    return done


def _connect(dsn: str):
    import psycopg
    from centraldb.schema import MIGRATIONS, applied_versions, migrate
    conn = psycopg.connect(dsn)
    try:
        if set(MIGRATIONS) - set(applied_versions(conn)):
            migrate(conn)
        conn.commit()
    except psycopg.errors.InsufficientPrivilege as e:
        conn.close()
        raise CompactionError(f"the record needs migrating by its owner: "
                              f"{e.diag.message_primary or e}") from None
    conn.autocommit = True
    return conn


def cli_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="monitorapp compact-store",
        description="Rebuild the track index of each closed month of fixes in a PostgreSQL "
                    "record (about 44 %% smaller; reads and writes go on meanwhile). Run by the "
                    "database administrator, nightly.")
    p.add_argument("--db", required=True, metavar="DSN", help="postgresql://... as the record's owner")
    p.add_argument("--settle-days", type=float, default=2.0,
                   help="leave a month alone this long after its end, while late fixes come in "
                        "(default 2)")
    p.add_argument("--dry-run", action="store_true", help="list the months, rebuild nothing")
    args = p.parse_args(argv)
    if not args.db.startswith(("postgresql://", "postgres://")):
        print("monitorapp compact-store: --db must be a PostgreSQL record (postgresql://...); "
              "a SQLite store has no months to compact", file=sys.stderr)
        return 2
    if not args.settle_days >= 0:
        print("monitorapp compact-store: --settle-days must be 0 or more", file=sys.stderr)
        return 2
    import psycopg
    before = time.time() - args.settle_days * 86400.0
    try:
        conn = _connect(args.db)
    except (psycopg.OperationalError, CompactionError) as e:
        print(f"monitorapp compact-store: {' '.join(str(e).split())[:300]}", file=sys.stderr)
        return 2
    with conn:
        try:
            if args.dry_run:
                todo = candidates(conn, before)
                for partition, index, size in todo:
                    print(f"{partition}: track index {size / 1e6:,.0f} MB, to be rebuilt")
                print(f"{len(todo)} month(s) to compact")
                return 0
            done = compact_closed_months(conn, before, progress=lambda s: print(s, flush=True))
        except CompactionError as e:
            print(f"monitorapp compact-store: {e}", file=sys.stderr)
            return 2
        except psycopg.Error as e:
            print(f"monitorapp compact-store: a rebuild failed and was undone: "
                  f"{' '.join(str(e).split())[:300]}", file=sys.stderr)
            return 1
    saved = sum(c.bytes_before - c.bytes_after for c in done)
    print(f"{len(done)} month(s) compacted, {saved / 1e6:,.0f} MB freed")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main())
