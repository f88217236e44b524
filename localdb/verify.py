"""``monitorapp verify-log --db D [--anchor FILE]``: check the hash chains of the
acknowledgement log and the audit log, name the first broken record, and check each log's end
against the newest head anchored outside it (``localdb.anchor``; default ``D.anchor`` beside
the store), naming the anchor used.

Exit status: 0 both chains intact and matching their anchors, 1 a chain is broken, truncated,
rewritten or not anchored, 2 the store cannot be read. The file is opened read-only and never
migrated or changed. Output: one line per chain and one per anchor check on stdout; for a
broken chain the table, the record number and what is wrong.

(``monitorapp verify-log --db postgresql://...`` is dispatched to ``centraldb.verify`` by
``monitorapp.service.verifylog``; localdb does not import centraldb.)
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from localdb.anchor import AnchorReport, check_anchors, default_anchor_path, describe
from localdb.hashchain import CHAINS, ChainReport, verify_chain
from localdb.schema import APPLICATION_ID, SCHEMA_VERSION, StoreError


def anchor_reports(conn, anchor, param: str = "?") -> list[AnchorReport]:
    """Check the logs read through ``conn`` (sqlite3, or psycopg with ``param="%s"``) against
    the anchor file ``anchor``."""
    def last(chain):
        row = conn.execute(f"SELECT seq, hash FROM {chain} ORDER BY seq DESC LIMIT 1").fetchone()
        return (row[0], row[1]) if row else (0, "")

    def hash_at(chain, seq):
        row = conn.execute(f"SELECT hash FROM {chain} WHERE seq={param}", (seq,)).fetchone()
        return row[0] if row else None
    return check_anchors(anchor, last, hash_at)


def verify_store(path: str | os.PathLike, anchor=None) -> list[ChainReport]:
    """Check both chains of a store file; raise StoreError if it cannot be read.

    With ``anchor`` (an :class:`Anchored` collector) the logs' ends are also checked against
    its anchor file, and the reports added to it."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such store file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=5)
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot open the store: {e}") from None
    try:
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as e:
            raise StoreError(f"{path}: the file is corrupt or not a SQLite database ({e})") from None
        if app != APPLICATION_ID:
            raise StoreError(f"{path}: not a monitorapp store")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path}: schema version {version} is newer than this program "
                             f"understands ({SCHEMA_VERSION})")
        reports = []
        for table in CHAINS:
            try:
                reports.append(verify_chain(conn, table))
            except sqlite3.Error as e:
                raise StoreError(f"{path}: cannot read {table}: {e}") from None
        if anchor is not None:
            try:
                anchor.extend(anchor_reports(conn, anchor.path))
            except sqlite3.Error as e:
                raise StoreError(f"{path}: cannot read the logs' ends: {e}") from None
        return reports
    finally:
        conn.close()


class Anchored(list):
    """The anchor reports of one verification, and the anchor file they were checked against
    (``anchor``, or the store's default, ``localdb.anchor.default_anchor_path``)."""

    def __init__(self, store, anchor=None):
        super().__init__()
        self.path = str(anchor or default_anchor_path(store))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="monitorapp verify-log",
        description="Check the hash chains of the acknowledgement and audit logs, and their "
                    "ends against the heads anchored outside them.")
    p.add_argument("--db", required=True,
                   help="the store: a SQLite file, or the centre's record as postgresql://...")
    p.add_argument("--anchor", help="the anchor file (default: STORE.anchor beside a SQLite "
                                    "store; for postgresql://, this machine's anchor of that "
                                    "record under $XDG_STATE_HOME/monitorapp/anchors/)")
    return p


def report(reports: list[ChainReport], anchors: Anchored) -> int:
    """Print one line per chain and per anchor check; the exit status."""
    broken = False
    for r in reports:
        if r.intact:
            print(f"{r.table}: intact, {r.records} records")
        else:
            broken = True
            print(f"{r.table}: BROKEN at record {r.broken_seq}: {r.problem}")
    for a in anchors:
        broken = broken or not a.intact
        print(describe(a, anchors.path))
    return 1 if broken else 0


def cli_main(argv: list[str]) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    anchors = Anchored(args.db, args.anchor)
    try:
        reports = verify_store(args.db, anchors)
    except StoreError as e:
        print(f"monitorapp verify-log: {e}", file=sys.stderr)
        return 2
    return report(reports, anchors)
