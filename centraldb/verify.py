"""``monitorapp verify-log --db postgresql://...``: check the hash chains of the PostgreSQL
record's acknowledgement and audit logs with the same walker as the SQLite store
(``localdb.hashchain.verify_chain``: the server computes the same hashes), and the chain heads
the server keeps (``chain_heads``): a log whose newest records were deleted behind the
triggers' back no longer ends where its head says. The head lives in the same database, so a
rewrite by someone holding the owner's rights can move it too: with ``anchor`` (a
``localdb.verify.Anchored``) each log's end is also checked against the newest head anchored
outside the database (``localdb.anchor``), which such a rewrite cannot reach.

Read-only: one transaction, ``READ ONLY``, at REPEATABLE READ so both reads see one moment.
"""
from __future__ import annotations

import psycopg

from localdb.hashchain import CHAINS, ChainReport, verify_chain
from localdb.schema import StoreError


def verify_record(dsn: str, anchor=None) -> list[ChainReport]:
    from centraldb.store import redact
    try:
        conn = psycopg.connect(dsn, application_name="monitorapp verify-log")
    except psycopg.Error as e:
        raise StoreError(f"{redact(dsn)}: cannot connect to the record: {e}") from None
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        if conn.execute("SELECT to_regclass('chain_heads')").fetchone()[0] is None:
            raise StoreError(f"{redact(dsn)}: not a monitorapp record")
        heads = dict((r[0], (r[1], r[2])) for r in conn.execute(
            "SELECT chain, seq, hash FROM chain_heads"))
        out = []
        for table in CHAINS:
            report = verify_chain(conn, table)
            if report.intact:
                last = conn.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1"
                                    ).fetchone() or (0, "0" * 64)
                head = heads.get(table)
                if head is None or tuple(last) != tuple(head):
                    report = ChainReport(
                        table, report.records, (last[0] or 0) + 1,
                        f"the log ends at record {last[0]} but its head is record "
                        f"{head[0] if head else '(none)'}: records were removed from its end")
            out.append(report)
        if anchor is not None:
            from localdb.verify import anchor_reports
            anchor.extend(anchor_reports(conn, anchor.path, "%s"))
        return out
    except psycopg.Error as e:
        raise StoreError(f"{redact(dsn)}: cannot read the logs: {e}") from None
    finally:
        conn.close()
