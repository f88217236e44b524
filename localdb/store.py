"""The local store: everything the monitoring centre must keep, in one SQLite file.

``Store(path)`` opens (or creates, mode 0600) and migrates the file and starts the single
writer thread. ``Store(path, mode="training")`` is the training store: every store is marked,
once, live or training (spec v2 §8, ``localdb.schema``), and each mode refuses the other's store
with a one-line :class:`StoreModeError` before anything is written; the default is live. The engine feeds it through ``attach(engine)``; operators' handling goes through
``acknowledge``/``close``/``shelve``/``unshelve``; readers (UI tables, crime mapping, trail
playback) use ``reader()``, a connection of their own per thread (WAL lets them read while the
writer writes).

Crash safety: ``checkpoint(engine, position)`` commits ``engine.snapshot()`` and the feed
position in the same transaction as (or after) every fix, event and alert change queued before
it. After a crash, ``load_checkpoint()`` returns that snapshot and position and discards what
was stored after it (the restarted engine will process it again, and store it again), so a
restarted ``Engine(caseload, state=snapshot)`` raises nothing twice and misses nothing.
Alert ids are deterministic, so a re-raised alert updates its row and its handling is kept.

Anchored logs: after every committed step the heads of the two hash chains are appended to the
store's anchor file (``STORE.sqlite.anchor`` unless ``anchor=`` names another; ``anchor=False``
for none), so ``monitorapp verify-log`` detects a truncated or rewritten tail (``localdb.anchor``).
"""
from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
import time
from pathlib import Path

import orjson

from localdb import handling, hashchain
from localdb.anchor import AnchorFile, default_anchor_path
from localdb.handling import ACTION_CODES, HandlingError  # noqa: F401 - re-exported
from localdb.schema import StoreError, StoreModeError, connect, open_store_file  # noqa: F401
from localdb.writer import ALERT, EVENT, FIX, REJECTED, StoreWriter
from monitorapp.gcpause import paused_gc

DEFAULT_RETENTION_DAYS = 365


def _alert_row(alert, now: float) -> tuple:
    return (alert.alert_id, alert.type, alert.priority, alert.offender, alert.device,
            alert.requirement, alert.zone, alert.zone_version, alert.start, alert.raised_at,
            1 if alert.late else 0, json.dumps(alert.evidence, default=str), alert.state,
            alert.cleared_at, alert.reactivations, now)


class Store:
    """One store file, one writer thread, a reader connection per thread."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True,
                 retention_days: float = DEFAULT_RETENTION_DAYS,
                 busy_timeout_s: float = 5.0, clock=time.time, mode: str = "live",
                 anchor=None) -> None:
        """``mode``: ``"live"`` (the default) or ``"training"``; a store of the other kind is
        refused (StoreModeError, the file untouched), a new store is marked with it.
        ``anchor``: the anchor file of the logs' heads (default beside the store; False: none)."""
        self.path = Path(path)
        self.anchor = None if anchor is False else AnchorFile(
            default_anchor_path(self.path) if anchor is None else anchor)
        self.anchor_error: str | None = None
        self.retention_days = retention_days
        self.clock = clock
        self.mode = mode
        self._busy = busy_timeout_s
        self._writer = StoreWriter(open_store_file(self.path, create=create,
                                                   busy_timeout_s=busy_timeout_s, mode=mode),
                                   self.path)
        self._local = threading.local()
        self._readers: list = []
        self._readers_lock = threading.Lock()
        self._feed_lock_fd: int | None = None
        self._engine = None

    # ---- life cycle -------------------------------------------------------------------------
    def close(self, alert_id: str | None = None, operator: str | None = None,
              note: str | None = None, skipped: dict | None = None):
        """``close()`` closes the store; ``close(alert_id, operator)`` closes an alert (the
        handling step, same as ``close_alert``)."""
        if alert_id is not None:
            return self.close_alert(alert_id, operator, note, skipped)
        try:
            with self._readers_lock:
                for conn in self._readers:
                    conn.close()
                self._readers.clear()
        finally:
            self._writer.close()
            if self._feed_lock_fd is not None:
                os.close(self._feed_lock_fd)
                self._feed_lock_fd = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reader(self):
        """This thread's read-only connection (query_only), opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, busy_timeout_s=self._busy)
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _call(self, fn):
        """``fn(conn)`` in the writer's transaction; once committed, the logs' heads are
        appended to the anchor file. A step that could not be anchored is still committed (it
        happened): the failure is logged as an error and kept in ``anchor_error``, and
        verify-log will show the unanchored records."""
        if self.anchor is None:
            return self._committed(fn)

        def with_heads(conn):
            return fn(conn), hashchain.heads(conn)
        result, heads = self._committed(with_heads)
        try:
            self.anchor.record(heads, self.clock())
            self.anchor_error = None
        except OSError as e:
            self.anchor_error = f"{self.anchor.path}: the logs' anchor cannot be written: {e}"
            logging.getLogger("monitorapp.store").error(self.anchor_error)
        return result

    def _committed(self, fn):
        try:
            return self._writer.call(fn)
        except HandlingError:
            raise
        except StoreError:
            raise
        except Exception as e:
            if self._writer.error is not None:
                raise StoreError(f"{self.path}: the store cannot be written: {e}") from e
            raise

    def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        self._call(lambda conn: None)

    @property
    def writer(self) -> StoreWriter:
        """The single writer, for the host's watchdog: ``health()``, ``quarantined``, ``restart()``."""
        return self._writer

    # ---- the engine -------------------------------------------------------------------------
    def attach(self, engine) -> None:
        """Store every fix, event, rejection and alert change the engine reports.

        Only one process may feed a store: a second one gets a StoreError naming the file.
        """
        if self._feed_lock_fd is None:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise StoreError(f"{self.path}: the store is already being fed by another "
                                 f"process (only one engine may write a store)") from None
            self._feed_lock_fd = fd
        self._engine = engine
        engine.add_listener(on_alert=self.on_alert, on_fix=self.on_fix,
                            on_event=self.on_event, on_rejected=self.on_rejected)

    def on_fix(self, fix, used: bool) -> None:
        self._writer.put((FIX, fix, used))

    def on_event(self, event) -> None:
        self._writer.put((EVENT, event))

    def on_rejected(self, rejection) -> None:
        self._writer.put((REJECTED, rejection))

    def on_alert(self, alert, change: str) -> None:
        now = self._engine_now()
        if change == "raised":
            at = alert.raised_at
        elif change == "cleared" and alert.cleared_at is not None:
            at = alert.cleared_at
        else:
            at = now
        # the alert object changes later: copy what it is now
        self._writer.put((ALERT, _alert_row(alert, now),
                          (alert.alert_id, change,
                           0 if change == "raised" else alert.reactivations, at, alert.state)))

    def _engine_now(self) -> float:
        now = getattr(self._engine, "now", None)
        if callable(now):
            now = now()
        return float(now) if isinstance(now, (int, float)) and math.isfinite(now) else self.clock()

    def checkpoint(self, engine, position, feed: str = "default") -> None:
        """Durably record the engine's state and the feed position, after all queued writes."""
        snapshot = _state_json(engine.snapshot())
        pos = json.dumps(position)
        at = self.clock()

        def write(conn):
            ids = [conn.execute(f"SELECT coalesce(max({c}), 0) FROM {t}").fetchone()[0]
                   for t, c in (("fixes", "fix_id"), ("events", "event_id"),
                                ("rejected", "rejected_id"))]
            conn.execute("INSERT OR REPLACE INTO checkpoints (feed, at, position, snapshot,"
                         " max_fix_id, max_event_id, max_rejected_id) VALUES (?,?,?,?,?,?,?)",
                         (feed, at, pos, snapshot, *ids))
        self._call(write)

    def load_checkpoint(self, feed: str = "default", *, discard_after: bool = True):
        """(snapshot, position) of the last checkpoint, or (None, None) for a fresh store.

        With ``discard_after`` (the default), fixes, events and rejections stored after the
        checkpoint are removed: the engine restarts from the checkpoint and will report them
        again. Pass False when the feed cannot be re-read from the position.
        """
        def read(conn):
            row = conn.execute("SELECT position, snapshot, max_fix_id, max_event_id,"
                               " max_rejected_id FROM checkpoints WHERE feed=?", (feed,)).fetchone()
            if row is None:
                return None
            if discard_after:
                conn.execute("DELETE FROM fixes WHERE fix_id > ?", (row[2],))
                conn.execute("DELETE FROM events WHERE event_id > ?", (row[3],))
                conn.execute("DELETE FROM rejected WHERE rejected_id > ?", (row[4],))
            return row
        row = self._call(read)
        if row is None:
            return None, None
        try:
            return _state_loads(row[1]), json.loads(row[0])
        except ValueError as e:
            raise StoreError(f"{self.path}: the checkpoint of feed {feed!r} is unreadable: {e}")

    # ---- caseload, zones, requirements ------------------------------------------------------
    def record_caseload(self, caseload, who: str = "system") -> dict:
        """Record offenders, tag assignments, zones and requirements from a caseload (the
        parsed ``Caseload`` or its spec §3 JSON object). Changes make new versions; an
        unchanged caseload writes nothing. Returns counts of what changed."""
        doc = getattr(caseload, "raw", caseload)
        if not isinstance(doc, dict):
            raise StoreError("record_caseload needs a Caseload or its JSON object")
        at = self.clock()
        from localdb import records
        return self._call(lambda conn: records.record_caseload(conn, doc, who, at))

    def record_zone_edit(self, feature: dict, who: str, version: int | None = None,
                         removed: bool = False, *, base_version: int | None = None) -> int:
        """A zone edited (or removed) by an operator: a new version, audited.

        ``base_version``: the version the operator edited (0 for a new zone). The edit is
        refused with ``localdb.records.ZoneVersionConflict`` (a StoreError naming who saved
        the newer version, and when) once a newer version exists: optimistic concurrency."""
        at = self.clock()
        from localdb import records
        return self._call(lambda conn: records.record_zone(conn, feature, who, at, version,
                                                           removed, audit=True,
                                                           base_version=base_version))

    # ---- handling ---------------------------------------------------------------------------
    def acknowledge(self, alert_id: str, operator: str, action_code: str, note: str | None = None) -> dict:
        at = self.clock()
        return self._call(lambda c: handling.acknowledge(c, alert_id, operator, action_code, note, at))

    def close_alert(self, alert_id: str, operator: str, note: str | None = None,
                    skipped: dict | None = None) -> dict:
        """``skipped``: {step id: reason} for the protocol's mandatory steps not completed."""
        at = self.clock()
        return self._call(lambda c: handling.close(c, alert_id, operator, note, at, skipped))

    def record_step(self, alert_id: str, operator: str, step: str, outcome: str,
                    reference: str | None = None, note: str | None = None) -> dict:
        """A step of the alert's response (issue 21), in the acknowledgement log."""
        at = self.clock()
        return self._call(lambda c: handling.record_step(c, alert_id, operator, step, outcome,
                                                         reference, note, at))

    def record_protocols(self, doc: dict, who: str = "system") -> int:
        """Record the centre's response protocols (a new version if changed; audited)."""
        at = self.clock()
        return self._call(lambda c: handling.record_protocols(c, doc, who, at))

    def protocol_steps(self, alert_id: str) -> list[dict]:
        """The ordered steps of one alert's protocol (its type, its offender's risk)."""
        return handling.protocol_steps(self.reader(), alert_id)

    def response_protocols(self) -> dict | None:
        """The newest recorded protocols (normalised), None when the store has none."""
        return handling.protocols(self.reader())

    def shelve(self, alert_id: str, operator: str, reason: str, until: float) -> dict:
        at = self.clock()
        return self._call(lambda c: handling.shelve(c, alert_id, operator, reason, until, at))

    def unshelve(self, alert_id: str, operator: str) -> dict:
        at = self.clock()
        return self._call(lambda c: handling.unshelve(c, alert_id, operator, at))

    # ---- audit ------------------------------------------------------------------------------
    def audit(self, who: str, action: str, detail: dict | None = None) -> dict:
        """Append to the audit log (zone edits, queries, exports, sign-ins, purges)."""
        if not isinstance(who, str) or not who.strip():
            raise StoreError("an audit record needs who did it")
        text = json.dumps(detail or {}, sort_keys=True, default=str)
        at = self.clock()
        return self._call(lambda c: hashchain.append(
            c, "audit_log", {"at": at, "who": who.strip(), "action": action, "detail": text}))

    def sign_in(self, operator: str) -> dict:
        return self.audit(operator, "sign_in", {})

    # ---- retention --------------------------------------------------------------------------
    def purge_fixes(self, who: str = "system", now: float | None = None,
                    retention_days: float | None = None) -> int:
        """Delete fixes measured before now - retention; audited. Returns how many."""
        days = self.retention_days if retention_days is None else retention_days
        if not isinstance(days, (int, float)) or not days > 0:
            raise StoreError(f"retention must be a positive number of days, not {days!r}")
        now = self.clock() if now is None else now
        cutoff = now - days * 86400.0

        def purge(conn):
            n = conn.execute("DELETE FROM fixes WHERE t < ?", (cutoff,)).rowcount
            hashchain.append(conn, "audit_log", {
                "at": now, "who": who, "action": "purge_fixes",
                "detail": json.dumps({"retention_days": days, "cutoff": cutoff, "deleted": n},
                                     sort_keys=True)})
            return n
        return self._call(purge)

    # ---- reads ------------------------------------------------------------------------------
    def alerts(self, *, handling_state: str | None = None, limit: int | None = None) -> list[dict]:
        """Alerts with their condition and handling, newest raised first."""
        from localdb import records
        return records.read_alerts(self.reader(), self.clock(), handling_state, limit)

    def ack_log(self, alert_id: str | None = None) -> list[dict]:
        from localdb import records
        return records.read_chain(self.reader(), "ack_log", alert_id)

    def audit_log(self) -> list[dict]:
        from localdb import records
        return records.read_chain(self.reader(), "audit_log", None)

    def counts(self) -> dict:
        conn = self.reader()
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("fixes", "events", "rejected", "alerts", "alert_changes",
                          "ack_log", "audit_log", "offenders", "zones")}


def _state_json(state: dict) -> str:
    """The engine's snapshot as compact JSON: orjson (a 20,000-tag state in 0.1 s rather than
    0.7 s), or the standard library for anything orjson refuses (an integer beyond 64 bits)."""
    try:
        return orjson.dumps(state, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(state, separators=(",", ":"), default=str)


def _state_loads(text: str) -> dict:
    with paused_gc():                   # a quarter of a million objects at once: monitorapp.gcpause
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:  # NaN or Infinity, which only the standard library writes
            return json.loads(text)
