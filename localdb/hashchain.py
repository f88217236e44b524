"""Tamper-evident, append-only logs: the acknowledgement log and the audit log.

Each record carries ``prev_hash`` (the hash of the record before it; 64 zeros for the first)
and ``hash = SHA-256(prev_hash + "\\n" + canonical JSON of the record's fields)``. Changing,
removing or re-ordering any record breaks the chain at that record, which ``verify_chain``
names. Triggers in the schema refuse UPDATE and DELETE; the chain catches whatever goes around
them (another program, a hex editor).

Appends run inside the writer's transaction, which holds SQLite's write lock, so the "read the
last hash, insert the next record" step is never interleaved, even across processes.

A chain alone does not show a cut-off tail or a log rewritten and re-hashed from some record
on; the store therefore anchors each chain's head (``heads``) outside the file after every
commit (``localdb.anchor``), and ``monitorapp verify-log`` checks the log against it.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass

GENESIS = "0" * 64

# the hashed fields of each chained table, in column order
CHAINS: dict[str, tuple[str, ...]] = {
    "ack_log": ("seq", "alert_id", "at", "operator", "action", "action_code", "note",
                "reason", "until"),
    "audit_log": ("seq", "at", "who", "action", "detail"),
}


def record_hash(prev_hash: str, record: dict) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def append(conn: sqlite3.Connection, table: str, record: dict) -> dict:
    """Append one record (without seq/hashes) to a chained table; return the stored row.

    Must run inside a write transaction.
    """
    fields = CHAINS[table]
    last = conn.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    row = {name: record.get(name) for name in fields}
    row["seq"] = seq
    digest = record_hash(prev, row)
    names = fields + ("prev_hash", "hash")
    conn.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [row[n] for n in fields] + [prev, digest])
    row.update(prev_hash=prev, hash=digest)
    return row


@dataclass(frozen=True)
class ChainReport:
    table: str
    records: int
    broken_seq: int | None = None    # the first record that does not verify
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_seq is None and self.problem is None


def verify_chain(conn: sqlite3.Connection, table: str) -> ChainReport:
    """Walk a chain from its first record; report the first record that does not verify."""
    fields = CHAINS[table]
    cur = conn.execute(
        f"SELECT {', '.join(fields)}, prev_hash, hash FROM {table} ORDER BY seq")
    prev, expected_seq, count = GENESIS, 1, 0
    for values in cur:
        row = dict(zip(fields, values[:len(fields)]))
        stored_prev, stored_hash = values[len(fields)], values[len(fields) + 1]
        seq = row["seq"]
        count += 1
        if seq != expected_seq:
            return ChainReport(table, count, seq,
                               f"record {seq} follows record {expected_seq - 1}: "
                               f"record {expected_seq} is missing")
        if stored_prev != prev:
            return ChainReport(table, count, seq,
                               f"record {seq} does not link to the record before it")
        try:
            digest = record_hash(prev, row)
        except (TypeError, ValueError) as e:
            return ChainReport(table, count, seq, f"record {seq} cannot be hashed ({e})")
        if digest != stored_hash:
            return ChainReport(table, count, seq,
                               f"record {seq} was altered (its hash does not match its content)")
        prev, expected_seq = stored_hash, seq + 1
    return ChainReport(table, count)


def heads(conn: sqlite3.Connection) -> dict[str, tuple[int, str]]:
    """The newest record of each chain, ``{table: (seq, hash)}`` ((0, GENESIS) when empty):
    what the store anchors after a commit (``localdb.anchor``)."""
    out = {}
    for table in CHAINS:
        row = conn.execute(f"SELECT seq, hash FROM {table} ORDER BY seq DESC LIMIT 1").fetchone()
        out[table] = (row[0], row[1]) if row else (0, GENESIS)
    return out
