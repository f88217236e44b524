"""The store's single writer: one thread, one connection, batched transactions.

Everything that changes the database goes through :class:`StoreWriter`'s queue, in order:
fixes, events, rejected messages and alert changes from the engine's callbacks (fire and
forget), and operations such as acknowledgements and checkpoints (which wait for their commit).
The thread drains the queue into one transaction (up to ``batch_max`` items), so a burst of
50,000 fixes costs a handful of commits, and an operation is always committed together with,
or after, everything queued before it. Fix coordinates are projected to British National Grid
metres (EPSG:27700) per batch, vectorised.

Nothing stops the writer for good (spec §2 "never stops the feed"):

* A *row* the database refuses (a value SQLite cannot hold, such as a seq of 2^63, a NULL in a
  NOT NULL column) is quarantined: the batch is written again row by row, each row under its own
  savepoint, and the refused row becomes a ``rejected`` row with reason ``processing_error``,
  the row's fields as its raw bytes and the error as its text; the rest of the batch is written.
  ``quarantined`` counts them.
* A *store* that cannot be written (disk full, I/O error, read-only, locked by another
  connection) keeps what it was given: the batch's data is held and retried with back-off
  (0.5 s doubling to 5 s), operations queued with it fail with the error, ``error`` holds it and
  ``health()`` says it in one line, until a commit succeeds again, which clears it.
* A writer thread that died is started again by ``restart()`` (the host's watchdog), carrying
  on with what it held.
"""
from __future__ import annotations

import json
import operator
import queue
import sqlite3
import threading
from concurrent.futures import Future
from typing import Callable

import numpy as np
import pyproj

from localdb.schema import StoreError

FIX, EVENT, REJECTED, ALERT, CALL, STOP = range(6)

_FIX_SQL = ("INSERT INTO fixes (device, seq, t, rx, lat, lon, acc, src, spd, hdg, sats, batt,"
            " x, y, used) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
_FIX_FIELDS = operator.attrgetter("device", "seq", "t", "rx", "lat", "lon", "acc", "src", "spd",
                                  "hdg", "sats", "batt")
# the time span of each tag, widened by the fixes just inserted (their span per tag, taken in
# Python: as "SELECT ... FROM fixes WHERE fix_id > ? GROUP BY device" SQLite's planner chose to
# scan the whole of the covering index fixes_device_t for the GROUP BY, every batch, so writing a
# batch cost more the bigger the store: 0.5 s a batch at 3 million fixes, a soak at 1,000 tags
# slowed day by day and an acknowledgement waited minutes behind the fixes queued before it)
_TAG_SQL = ("INSERT INTO tags (device, first_seen, last_seen) VALUES (?,?,?)"
            " ON CONFLICT(device) DO UPDATE SET first_seen=min(first_seen, excluded.first_seen),"
            " last_seen=max(last_seen, excluded.last_seen)")
_EVENT_SQL = "INSERT INTO events (device, seq, t, rx, type, detail) VALUES (?,?,?,?,?,?)"
_REJ_SQL = "INSERT INTO rejected (rx, topic, device, reason, text, raw) VALUES (?,?,?,?,?,?)"
_ALERT_SQL = (
    "INSERT INTO alerts (alert_id, type, priority, offender_id, device, requirement_id, zone_id,"
    " zone_version, start, raised_at, late, evidence, state, cleared_at, reactivations,"
    " updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(alert_id) DO UPDATE SET"
    " state=excluded.state, cleared_at=excluded.cleared_at,"
    " reactivations=excluded.reactivations, late=excluded.late, evidence=excluded.evidence,"
    " zone_version=excluded.zone_version, updated_at=excluded.updated_at")
_CHANGE_SQL = ("INSERT OR IGNORE INTO alert_changes (alert_id, change, n, at, state)"
               " VALUES (?,?,?,?,?)")


class BNG:
    """WGS84 degrees → British National Grid metres, vectorised (one per thread)."""

    def __init__(self) -> None:
        self._t = pyproj.Transformer.from_crs(4326, 27700, always_xy=True)

    def project(self, lon, lat):
        x, y = self._t.transform(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
        return np.asarray(x), np.asarray(y)


_DATA = (FIX, EVENT, REJECTED, ALERT)
_KIND = {FIX: "fix", EVENT: "event", REJECTED: "rejected message", ALERT: "alert change"}
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 5.0


def store_level(e: BaseException) -> bool:
    """True for a failure of the store as a whole (disk full, I/O, locked, read-only, corrupt),
    False for one row the database refuses (a value out of range, a constraint)."""
    if isinstance(e, (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError,
                      sqlite3.ProgrammingError)):
        return False
    return isinstance(e, sqlite3.DatabaseError) or not isinstance(e, Exception) or isinstance(e, MemoryError)


class StoreWriter:
    def __init__(self, conn: sqlite3.Connection, path, *, batch_max: int = 20000) -> None:
        self._conn = conn
        self.path = path
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._batch_max = batch_max
        self.error: BaseException | None = None      # the store cannot be written (until it can)
        self.died: BaseException | None = None       # what stopped the thread, if it stopped
        self.quarantined = 0                         # rows refused and kept as rejections
        self.last_quarantine: str | None = None
        self.restarts = 0
        self._held: list = []                        # data of a batch not committed yet
        self._closing = threading.Event()
        self._thread = self._start()

    def _start(self) -> threading.Thread:
        t = threading.Thread(target=self._main, name="store-writer", daemon=True)
        t.start()
        return t

    def restart(self) -> bool:
        """Start the thread again if it died (not after ``close``); True if it was restarted."""
        if self._thread.is_alive() or self._closing.is_set():
            return False
        self.restarts += 1
        self._thread = self._start()
        return True

    def health(self) -> str | None:
        """None while all is well; otherwise one line saying what is wrong with the writer."""
        if not self._thread.is_alive() and not self._closing.is_set():
            return f"{self.path}: the store writer stopped ({_text(self.died)})"
        if self.error is not None:
            return f"{self.path}: the store cannot be written: {_text(self.error)}"
        return None

    # ---- producers (any thread) -------------------------------------------------------------
    def put(self, item: tuple) -> None:
        """Queue an item; never refused (a store that cannot be written holds it, and says so
        through ``health``)."""
        self._q.put(item)

    def call(self, fn: Callable[[sqlite3.Connection], object]) -> object:
        """Run fn(conn) inside the writer's transaction, after everything queued before it;
        return its result once committed (re-raising its exception)."""
        fut: Future = Future()
        self.put((CALL, fn, fut))
        while True:
            try:
                return fut.result(timeout=1.0)
            except TimeoutError:
                if not self._thread.is_alive():
                    raise StoreError(self.health() or f"{self.path}: the store writer stopped") from None

    def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        self.call(lambda conn: None)

    def close(self) -> None:
        self._closing.set()
        if self._thread.is_alive():
            self._q.put((STOP,))
            self._thread.join()
        self._conn.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def backlog(self) -> int:
        """Items queued and not yet taken by the writer thread (a producer that outruns the
        disk can wait on it: ``ui.console.engineworker`` does)."""
        return self._q.qsize()

    # ---- the writer thread ------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self._run()
        except BaseException as e:  # noqa: BLE001 - kept for health(); the watchdog restarts us
            self.died = e

    def _next_batch(self) -> list:
        batch, self._held = self._held, []
        if not batch:
            batch = [self._q.get()]
        while len(batch) < self._batch_max:
            try:
                batch.append(self._q.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        bng = BNG()
        backoff = RETRY_FIRST_S
        while True:
            batch = self._next_batch()
            stop = any(i[0] == STOP for i in batch)
            calls: list[tuple[Future, object, BaseException | None]] = []
            try:
                try:
                    self._transaction(batch, bng, calls, row_by_row=False)
                except BaseException as e:  # noqa: BLE001
                    if store_level(e):
                        raise
                    calls = []          # one row is refused: write the batch again row by row
                    self._transaction(batch, bng, calls, row_by_row=True)
            except BaseException as e:  # noqa: BLE001 - the store cannot be written: hold and retry
                if not isinstance(e, Exception):
                    raise
                self.error = e
                err = StoreError(f"{self.path}: the store cannot be written: {_text(e)}")
                for i in batch:
                    if i[0] == CALL and not i[2].done():
                        i[2].set_exception(err)
                if stop:
                    return
                self._held = [i for i in batch if i[0] in _DATA]
                self._closing.wait(backoff)
                backoff = min(RETRY_MAX_S, backoff * 2)
                continue
            self.error = None
            backoff = RETRY_FIRST_S
            for fut, result, exc in calls:
                if exc is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
            if stop:
                return

    def _transaction(self, batch: list, bng: BNG, calls: list, row_by_row: bool) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if row_by_row:
                for item in batch:
                    self._apply_one(item, bng, calls)
            else:
                self._apply(batch, bng, calls)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def _apply_one(self, item: tuple, bng: BNG, calls: list) -> None:
        """One item under its own savepoint; a row the database refuses is quarantined."""
        conn = self._conn
        conn.execute("SAVEPOINT item")
        try:
            self._apply([item], bng, calls)
        except Exception as e:
            conn.execute("ROLLBACK TO item")
            conn.execute("RELEASE item")
            if store_level(e):
                raise
            self._quarantine(item, e)
        else:
            conn.execute("RELEASE item")

    def _quarantine(self, item: tuple, e: BaseException) -> None:
        kind, obj = item[0], item[1]
        fields = _row_fields(obj)
        rx = fields.get("rx") if isinstance(fields.get("rx"), float) else None
        device = fields.get("device") if isinstance(fields.get("device"), str) else None
        raw = json.dumps(fields, default=repr, sort_keys=True).encode()
        text = f"processing error: the store could not write this {_KIND.get(kind, 'item')}: {_text(e)}"[:1000]
        self._conn.execute(_REJ_SQL, (rx, None, device, "processing_error", text, raw))
        self.quarantined += 1
        self.last_quarantine = text

    def _apply(self, batch: list[tuple], bng: BNG, calls: list) -> None:
        fixes: list = []
        conn = self._conn
        for item in batch:
            kind = item[0]
            if kind == FIX:
                fixes.append(item)
                continue
            if fixes:
                self._write_fixes(fixes, bng)
                fixes = []
            if kind == EVENT:
                e = item[1]
                conn.execute(_EVENT_SQL, (e.device, e.seq, e.t, e.rx, e.type, e.detail))
            elif kind == REJECTED:
                r = item[1]
                raw = r.raw if isinstance(r.raw, bytes) else str(r.raw).encode("utf-8", "replace")
                conn.execute(_REJ_SQL, (r.rx, r.topic, r.device, r.reason, r.text, raw))
            elif kind == ALERT:
                conn.execute(_ALERT_SQL, item[1])
                conn.execute(_CHANGE_SQL, item[2])
            elif kind == CALL:
                fn, fut = item[1], item[2]
                conn.execute("SAVEPOINT call")
                try:
                    result = fn(conn)
                except Exception as exc:  # an operation refused: undo it alone
                    conn.execute("ROLLBACK TO call")
                    conn.execute("RELEASE call")
                    calls.append((fut, None, exc))
                else:
                    conn.execute("RELEASE call")
                    calls.append((fut, result, None))
        if fixes:
            self._write_fixes(fixes, bng)

    def _write_fixes(self, items: list, bng: BNG) -> None:
        n = len(items)
        fixes = [i[1] for i in items]
        lon = np.fromiter((f.lon for f in fixes), dtype=float, count=n)
        lat = np.fromiter((f.lat for f in fixes), dtype=float, count=n)
        x, y = bng.project(lon, lat)
        fields = _FIX_FIELDS
        rows = [fields(f) + (fx, fy, 1 if i[2] else 0)
                for f, fx, fy, i in zip(fixes, x.tolist(), y.tolist(), items)]
        conn = self._conn
        conn.executemany(_FIX_SQL, rows)
        span: dict[str, list] = {}           # device -> [first t, last t] of these fixes
        for f in fixes:
            s = span.get(f.device)
            if s is None:
                span[f.device] = [f.t, f.t]
            elif f.t < s[0]:
                s[0] = f.t
            elif f.t > s[1]:
                s[1] = f.t
        conn.executemany(_TAG_SQL, [(device, first, last) for device, (first, last) in span.items()])


def _text(e: BaseException | None) -> str:
    return "unknown" if e is None else (f"{e.__class__.__name__}: {e}" if not isinstance(e, StoreError) else str(e))


def _row_fields(obj) -> dict:
    """What a queued row held, as plain fields (a Fix, an Event, a Rejection, an alert row)."""
    if isinstance(obj, tuple):
        return {"row": list(obj)}
    names = getattr(obj, "__slots__", None) or list(getattr(obj, "__dict__", {}))
    out = {}
    for n in names:
        v = getattr(obj, n, None)
        out[n] = v.decode("utf-8", "replace") if isinstance(v, bytes) else v
    return out
