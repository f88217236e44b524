"""The store's single writer: one thread, one connection, batched transactions.

Everything that changes the database goes through :class:`StoreWriter`'s queue, in order:
fixes, events, rejected messages and alert changes from the engine's callbacks (fire and
forget), and operations such as acknowledgements and checkpoints (which wait for their commit).
The thread drains the queue into one transaction (up to ``batch_max`` items), so a burst of
50,000 fixes costs a handful of commits, and an operation is always committed together with,
or after, everything queued before it. Fix coordinates are projected to British National Grid
metres (EPSG:27700) per batch, vectorised.

If a transaction fails (disk full, I/O error) the writer stops, keeps the error, and every later
call raises it: nothing is dropped silently.
"""
from __future__ import annotations

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
# the time span of each tag, from the rows just inserted (fix_id > ?)
_TAG_SQL = ("INSERT INTO tags (device, first_seen, last_seen) SELECT device, min(t), max(t)"
            " FROM fixes WHERE fix_id > ? GROUP BY device"
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


class StoreWriter:
    def __init__(self, conn: sqlite3.Connection, path, *, batch_max: int = 20000) -> None:
        self._conn = conn
        self.path = path
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._batch_max = batch_max
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    # ---- producers (any thread) -------------------------------------------------------------
    def put(self, item: tuple) -> None:
        if self.error is not None:
            raise StoreError(f"{self.path}: the store cannot be written: {self.error}")
        self._q.put(item)

    def call(self, fn: Callable[[sqlite3.Connection], object]) -> object:
        """Run fn(conn) inside the writer's transaction, after everything queued before it;
        return its result once committed (re-raising its exception)."""
        fut: Future = Future()
        self.put((CALL, fn, fut))
        return fut.result()

    def flush(self) -> None:
        """Wait until everything queued so far is committed."""
        self.call(lambda conn: None)

    def close(self) -> None:
        if self._thread.is_alive():
            self._q.put((STOP,))
            self._thread.join()
        self._conn.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # ---- the writer thread ------------------------------------------------------------------
    def _run(self) -> None:
        bng = BNG()
        while True:
            item = self._q.get()
            batch = [item]
            while len(batch) < self._batch_max:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            stop = any(i[0] == STOP for i in batch)
            calls: list[tuple[Future, object, BaseException | None]] = []
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._apply(batch, bng, calls)
                self._conn.execute("COMMIT")
            except BaseException as e:  # noqa: BLE001 - kept and re-raised to every caller
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                self.error = e
                for i in batch:
                    if i[0] == CALL and not i[2].done():
                        i[2].set_exception(e)
                self._fail_pending(e)
                return
            for fut, result, exc in calls:
                if exc is not None:
                    fut.set_exception(exc)
                else:
                    fut.set_result(result)
            if stop:
                return

    def _fail_pending(self, e: BaseException) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except queue.Empty:
                return
            if item[0] == CALL:
                item[2].set_exception(e)

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
        first = conn.execute("SELECT coalesce(max(fix_id), 0) FROM fixes").fetchone()[0]
        conn.executemany(_FIX_SQL, rows)
        conn.execute(_TAG_SQL, (first,))
