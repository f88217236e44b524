"""Anchors of the logs' chain heads, kept outside the log's reach (spec v2 §8 "Logs").

A hash chain shows an edited or removed record in its middle, but not a tail that was cut off,
nor a log rewritten from some record on with every hash recomputed: what is left is a valid
chain. So after every committed append the store also writes the chain's head, ``(seq, hash)``,
somewhere the log's own storage does not reach: an **anchor file**, one JSON line per head::

    {"chain": "ack_log", "seq": 42, "hash": "9f…", "at": 1764582000.0}

opened ``O_APPEND`` (a line is added, never rewritten), mode 0600. ``monitorapp verify-log``
checks the log against the newest anchor of each chain: the anchored record must still be
there with the anchored hash. A log that ends before it was cut off; a record whose hash
differs was rewritten (re-hashing the rest does not help: the anchored hash is the whole
chain's digest up to it). Records after the newest anchor are reported, not refused: a process
killed between its commit and its anchor line leaves at most its last step unanchored.

Where: beside a SQLite store (``STORE.sqlite.anchor``, :func:`default_anchor_path`); for the
PostgreSQL record, on the machine of the process that writes it (the decider, and every
workstation for its own steps), under ``$XDG_STATE_HOME/monitorapp/anchors/``: the database's
owner can rewrite the log and ``chain_heads`` together, but not a file on another machine.

What it cannot do: someone who can write both the log and its anchor file can rewrite both.
The anchor moves the bar from "write access to the store" to "write access to the store and
to wherever the anchors are" (another user, another machine, a broker's retained topic).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ANCHOR_SUFFIX = ".anchor"
CHAIN_NAMES = ("ack_log", "audit_log")


def default_anchor_path(target) -> Path:
    """The anchor file of a store: beside a SQLite file; for a ``postgresql://`` record, one
    file per server and database in this machine's state directory."""
    text = os.fspath(target)
    if text.split("://", 1)[0] in ("postgresql", "postgres"):
        u = urlsplit(text)
        host = (u.hostname or "local").replace("/", "_")
        db = (u.path.lstrip("/") or u.username or "postgres").replace("/", "_")
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        return base / "monitorapp" / "anchors" / f"{host}_{u.port or 5432}_{db}{ANCHOR_SUFFIX}"
    return Path(text + ANCHOR_SUFFIX)


@dataclass(frozen=True)
class Anchor:
    chain: str
    seq: int
    hash: str
    at: float
    line: int                 # its line in the anchor file (1-based)


class AnchorFile:
    """Appends chain heads to an anchor file; ``record`` skips a head it already wrote."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._written: dict[str, int] = {}

    def record(self, heads: dict[str, tuple[int, str]], at: float | None = None) -> int:
        """Append the heads newer than those this object wrote; returns how many lines."""
        at = time.time() if at is None else at
        with self._lock:
            lines = []
            for chain, (seq, digest) in heads.items():
                if seq and seq > self._written.get(chain, 0):
                    lines.append(json.dumps({"chain": chain, "seq": int(seq), "hash": digest,
                                             "at": round(float(at), 3)}, sort_keys=True) + "\n")
                    self._written[chain] = seq
            if lines:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, "".join(lines).encode("utf-8"))   # one write: whole lines
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return len(lines)


def read_anchors(path: str | os.PathLike) -> tuple[dict[str, Anchor], list[str]]:
    """The newest anchor of each chain in the file (by seq), and the lines it could not read."""
    newest: dict[str, Anchor] = {}
    bad: list[str] = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                d = json.loads(raw)
                a = Anchor(str(d["chain"]), int(d["seq"]), str(d["hash"]), float(d["at"]), n)
            except (ValueError, KeyError, TypeError):
                if raw.endswith(b"\n"):           # a torn last line (a crash mid-write) is not
                    bad.append(f"line {n}")       # a problem; a damaged complete line is
                continue
            if a.chain in CHAIN_NAMES and a.seq > getattr(newest.get(a.chain), "seq", 0):
                newest[a.chain] = a
    return newest, bad


@dataclass(frozen=True)
class AnchorReport:
    chain: str
    anchor: Anchor | None
    problem: str | None = None
    after: int = 0            # records after the anchored one (not anchored yet)

    @property
    def intact(self) -> bool:
        return self.problem is None


def check_anchors(path, last, hash_at) -> list[AnchorReport]:
    """Check each chain against its newest anchor in ``path``.

    ``last(chain) -> (seq, hash)`` gives the log's newest record ((0, "") when empty) and
    ``hash_at(chain, seq) -> str | None`` the stored hash of one record."""
    path = Path(path)
    try:
        newest, bad = read_anchors(path)
    except FileNotFoundError:
        newest, bad = None, []
    except OSError as e:
        return [AnchorReport(c, None, f"the anchor file {path} cannot be read: {e}")
                for c in CHAIN_NAMES]
    out = []
    for chain in CHAIN_NAMES:
        end_seq, _ = last(chain)
        a = None if newest is None else newest.get(chain)
        if a is None:
            if end_seq:
                what = "no anchor file" if newest is None else "no anchor for this log"
                out.append(AnchorReport(chain, None,
                                        f"{what} ({path}): its {end_seq} records cannot be "
                                        f"checked against a head kept outside the log"))
            else:
                out.append(AnchorReport(chain, None))
            continue
        if end_seq < a.seq:
            out.append(AnchorReport(chain, a, f"the log ends at record {end_seq} but the anchor "
                                              f"names record {a.seq}: records were removed from "
                                              f"its end (truncated)"))
            continue
        stored = hash_at(chain, a.seq)
        if stored is None:
            out.append(AnchorReport(chain, a, f"record {a.seq}, which the anchor names, is "
                                              f"missing"))
        elif stored != a.hash:
            out.append(AnchorReport(chain, a, f"record {a.seq} does not match its anchor: the "
                                              f"log was rewritten up to or before it"))
        else:
            out.append(AnchorReport(chain, a, None, end_seq - a.seq))
    if bad:
        out = [AnchorReport(r.chain, r.anchor, r.problem or f"the anchor file {path} has "
                            f"unreadable lines ({', '.join(bad[:3])})", r.after) for r in out]
    return out


def describe(r: AnchorReport, path) -> str:
    """One line for verify-log: which anchor was used and what it found."""
    if r.anchor is None:
        return f"{r.chain}: {'no records, nothing to anchor' if r.intact else 'NOT ANCHORED: ' + r.problem}"
    used = (f"anchor record {r.anchor.seq} of {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(r.anchor.at))}"
            f" ({path}, line {r.anchor.line})")
    if not r.intact:
        return f"{r.chain}: BROKEN against {used}: {r.problem}"
    tail = f"; {r.after} newer record(s) not anchored yet" if r.after else ""
    return f"{r.chain}: matches {used}{tail}"
