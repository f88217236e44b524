"""The decider's leader lock in the centre's PostgreSQL record (spec v2 §8, issue 15).

Whoever holds the lock decides. Every ``monitorapp monitor`` on a PostgreSQL record takes a
session advisory lock (``pg_try_advisory_lock(LEADER_LOCK)``) on a connection of its own before
it restores its engine or connects to the feed; one that cannot get it is a *standby*: it
announces itself and tries again every second. PostgreSQL releases the lock when the holder's
session ends, so when the active decider dies (killed, its machine gone) the standby gets the
lock within a second of the server noticing.

The holder checks its lock connection every second from a thread of its own (``SELECT`` of its
own lock in ``pg_locks``); if the connection fails, or the check does not answer within
``stale_s``, ``lost`` is true and the monitor stops deciding at once: a standby may already
hold the lock, and two deciders must never write the record or acknowledge the feed together.
"""
from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("monitorapp.service.leader")
LEADER_LOCK = 0x454D5344          # "EMSD": the one deciding monitor of a record
FEED_LOCK_HELD = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                  " AND classid = 0 AND objid::bigint = %s AND objsubid = 1")


class LeaderLock:
    def __init__(self, store, check_s: float = 1.0, stale_s: float = 5.0):
        self.store, self.check_s, self.stale_s = store, check_s, stale_s
        self.conn = None
        self.held = False
        self._lost = threading.Event()
        self.reason: str | None = None
        self._last_ok = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """One attempt; raises StoreError when the record cannot be reached."""
        if self.conn is None or self.conn.closed:
            self.conn = self.store.session_connection()
        got = bool(self.conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()[0])
        if got:
            self.held = True
            self._last_ok = time.monotonic()
            self._thread = threading.Thread(target=self._watch, name="leader-lock", daemon=True)
            self._thread.start()
        return got

    def feed_lock_free(self) -> bool:
        """Whether no process still feeds the record (``centraldb.store.FEED_LOCK``): a deposed
        decider whose lock connection died may still have its writer for a moment."""
        from centraldb.store import FEED_LOCK
        return self.conn.execute(FEED_LOCK_HELD, (FEED_LOCK,)).fetchone()[0] == 0

    def _watch(self) -> None:
        while not self._stop.wait(self.check_s):
            try:
                n = self.conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                                      " AND granted AND pid = pg_backend_pid() AND objid::bigint = %s",
                                      (LEADER_LOCK,)).fetchone()[0]
            except Exception as e:          # noqa: BLE001 - any failure: the lock is gone
                self._lose(f"the lock connection failed: {str(e).strip()[:200]}")
                return
            if n != 1:
                self._lose("the lock is no longer held by this session")
                return
            self._last_ok = time.monotonic()

    def _lose(self, reason: str) -> None:
        if not self._lost.is_set():
            self.reason = reason
            self._lost.set()

    @property
    def lost(self) -> bool:
        """True once the lock may be held by someone else: stop deciding."""
        if self._lost.is_set():
            return True
        if self.held and time.monotonic() - self._last_ok > self.stale_s:
            self._lose(f"the lock connection has not answered for {self.stale_s:.0f} s")
            return True
        return False

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.check_s + self.stale_s)
        if self.conn is not None:
            try:
                self.conn.close()          # the server releases the session's lock
            except Exception:              # noqa: BLE001
                pass
        self.held = False
