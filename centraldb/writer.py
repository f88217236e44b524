"""The PostgreSQL store's single writer: one thread, one connection, batched transactions.

The same contract as ``localdb.writer.StoreWriter``: everything that changes the record goes
through one queue, in order; the thread drains it into one transaction (up to ``batch_max``
items), and an operation (``call``) runs inside that transaction, after everything queued
before it, in a savepoint of its own so that a refused step is undone alone. Fixes go in with
``COPY`` (projected to British National Grid metres per batch, vectorised); the partitions of
the months a batch touches are made first (``ensure_fix_partition``, with the month after
each, so a month exists before its first fix), once per month.

If a transaction fails (the server went away, the disk is full) the writer stops, keeps the
error, and every later call raises it: nothing is dropped silently.
"""
from __future__ import annotations

import operator
import queue
import threading
from concurrent.futures import Future
from typing import Callable

import numpy as np
import psycopg

from localdb.schema import StoreError
from localdb.writer import BNG

FIX, EVENT, REJECTED, ALERT, CALL, STOP = range(6)

_FIX_COPY = ("COPY fixes (device, seq, t, rx, lat, lon, acc, src, spd, hdg, sats, batt, x, y,"
             " used) FROM STDIN")
_FIX_FIELDS = operator.attrgetter("device", "seq", "t", "rx", "lat", "lon", "acc", "src", "spd",
                                  "hdg", "sats", "batt")
_TAG_SQL = ("INSERT INTO tags (device, first_seen, last_seen)"
            " SELECT * FROM unnest(%s::text[], %s::float8[], %s::float8[])"
            " ON CONFLICT (device) DO UPDATE SET"
            " first_seen = least(tags.first_seen, excluded.first_seen),"
            " last_seen = greatest(tags.last_seen, excluded.last_seen)")
_EVENT_COPY = "COPY events (device, seq, t, rx, type, detail) FROM STDIN"
_REJ_SQL = ("INSERT INTO rejected (rx, topic, device, reason, text, raw)"
            " VALUES (%s, %s, %s, %s, %s, %s)")
_ALERT_SQL = (
    "INSERT INTO alerts (alert_id, type, priority, offender_id, device, requirement_id, zone_id,"
    " zone_version, start, raised_at, late, evidence, state, cleared_at, reactivations,"
    " updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
    " ON CONFLICT (alert_id) DO UPDATE SET"
    " state=excluded.state, cleared_at=excluded.cleared_at,"
    " reactivations=excluded.reactivations, late=excluded.late, evidence=excluded.evidence,"
    " zone_version=excluded.zone_version, updated_at=excluded.updated_at")
_CHANGE_SQL = ("INSERT INTO alert_changes (alert_id, change, n, at, state)"
               " VALUES (%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING")


def _text(s) -> str | None:
    """Text for PostgreSQL: it holds no NUL character (a decoder's text may)."""
    return None if s is None else str(s).replace("\x00", "\\u0000")


class PgWriter:
    def __init__(self, conn: psycopg.Connection, where: str, *, batch_max: int = 50000) -> None:
        self._conn = conn
        self.where = where
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._batch_max = batch_max
        self._months: set[int] = set()           # months (since 1970-01) with a partition
        self.error: BaseException | None = None
        self.quarantined = 0          # the host's watchdog reads what localdb's writer has
        self.restarts = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="pg-store-writer", daemon=True)
        self._thread.start()

    # ---- the host's watchdog (the interface of localdb.writer.StoreWriter) -------------------
    def health(self) -> str | None:
        """None while all is well; otherwise one line saying what is wrong."""
        if self.error is not None:
            return f"{self.where}: the store cannot be written: {self.error}"
        if not self._thread.is_alive() and not self._closing:
            return f"{self.where}: the store writer stopped"
        return None

    def restart(self) -> bool:
        """A PostgreSQL writer is not restarted in place (its connection and the feed's
        advisory lock went with it): False; the monitor reports the fault and a supervisor
        restarts the process, which resumes from its checkpoint."""
        return False

    # ---- producers (any thread) -------------------------------------------------------------
    def put(self, item: tuple) -> None:
        if self.error is not None:
            raise StoreError(f"{self.where}: the store cannot be written: {self.error}")
        self._q.put(item)

    def call(self, fn: Callable[[psycopg.Connection], object]) -> object:
        fut: Future = Future()
        self.put((CALL, fn, fut))
        return fut.result()

    def close(self) -> None:
        self._closing = True
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
            calls: list = []
            try:
                with self._conn.transaction():
                    self._apply(batch, bng, calls)
            except BaseException as e:  # noqa: BLE001 - kept and re-raised to every caller
                self.error = e
                self._months.clear()
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
        conn = self._conn
        run: list = []
        kind_of_run = None
        for item in batch:
            kind = item[0]
            if kind in (FIX, EVENT, REJECTED, ALERT):
                if kind != kind_of_run and run:
                    self._write_run(kind_of_run, run, bng)
                    run = []
                kind_of_run = kind
                run.append(item)
                continue
            if run:
                self._write_run(kind_of_run, run, bng)
                run, kind_of_run = [], None
            if kind == CALL:
                fn, fut = item[1], item[2]
                try:
                    with conn.transaction():          # a savepoint: a refused step alone
                        result = fn(conn)
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    if conn.broken:
                        raise
                    calls.append((fut, None, exc))
                else:
                    calls.append((fut, result, None))
        if run:
            self._write_run(kind_of_run, run, bng)

    def _write_run(self, kind, items: list, bng: BNG) -> None:
        if kind == FIX:
            self._write_fixes(items, bng)
        elif kind == EVENT:
            with self._conn.cursor() as cur, cur.copy(_EVENT_COPY) as cp:
                for i in items:
                    e = i[1]
                    cp.write_row((e.device, e.seq, e.t, e.rx, _text(e.type), _text(e.detail)))
        elif kind == REJECTED:
            rows = []
            for i in items:
                r = i[1]
                raw = r.raw if isinstance(r.raw, bytes) else str(r.raw).encode("utf-8", "replace")
                rows.append((r.rx, _text(r.topic), _text(r.device), _text(r.reason),
                             _text(r.text), raw))
            with self._conn.cursor() as cur:
                cur.executemany(_REJ_SQL, rows)
        elif kind == ALERT:
            with self._conn.cursor() as cur:
                for i in items:
                    cur.execute(_ALERT_SQL, i[1])
                    cur.execute(_CHANGE_SQL, i[2])

    def _ensure_months(self, t: np.ndarray) -> None:
        months = np.unique(t.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64))
        new = [int(m) for m in months if int(m) not in self._months]
        if not new:
            return
        with self._conn.cursor() as cur:
            for m in new:
                start = np.datetime64(m, "M").astype("datetime64[s]").astype(np.int64)
                cur.execute("SELECT ensure_fix_partition(%s)", (float(start),))
                self._months.add(m)        # the month after: made now, asked again next month

    def _write_fixes(self, items: list, bng: BNG) -> None:
        n = len(items)
        fixes = [i[1] for i in items]
        t = np.fromiter((f.t for f in fixes), dtype=float, count=n)
        lon = np.fromiter((f.lon for f in fixes), dtype=float, count=n)
        lat = np.fromiter((f.lat for f in fixes), dtype=float, count=n)
        x, y = bng.project(lon, lat)
        self._ensure_months(t)
        fields = _FIX_FIELDS
        with self._conn.cursor() as cur:
            with cur.copy(_FIX_COPY) as cp:
                write = cp.write_row
                for f, fx, fy, i in zip(fixes, x.tolist(), y.tolist(), items):
                    write(fields(f) + (fx, fy, bool(i[2])))
            # the time span of each tag in this batch
            devs = np.array([f.device for f in fixes], dtype=object)
            uniq, inv = np.unique(devs, return_inverse=True)
            lo = np.full(len(uniq), np.inf)
            hi = np.full(len(uniq), -np.inf)
            np.minimum.at(lo, inv, t)
            np.maximum.at(hi, inv, t)
            cur.execute(_TAG_SQL, (uniq.tolist(), lo.tolist(), hi.tolist()))
