"""``monitorapp verify-log --db D``: check the hash chains of the acknowledgement log and the
audit log, and name the first broken record.

Exit status: 0 both chains intact, 1 a chain is broken, 2 the store cannot be read. The file is
opened read-only and never migrated or changed. Output: one line per chain on stdout, and for a
broken chain the table, the record number and what is wrong.
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from localdb.hashchain import CHAINS, ChainReport, verify_chain
from localdb.schema import APPLICATION_ID, SCHEMA_VERSION, StoreError


def verify_store(path: str | os.PathLike) -> list[ChainReport]:
    """Check both chains of a store file; raise StoreError if it cannot be read."""
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
        return reports
    finally:
        conn.close()


def cli_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="monitorapp verify-log",
        description="Check the hash chains of the acknowledgement and audit logs.")
    parser.add_argument("--db", required=True, help="the store file")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        reports = verify_store(args.db)
    except StoreError as e:
        print(f"monitorapp verify-log: {e}", file=sys.stderr)
        return 2
    broken = False
    for r in reports:
        if r.intact:
            print(f"{r.table}: intact, {r.records} records")
        else:
            broken = True
            print(f"{r.table}: BROKEN at record {r.broken_seq}: {r.problem}")
    return 1 if broken else 0
