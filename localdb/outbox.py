"""The notification outbox in the store (spec v2 §9): nothing lost, nothing sent twice.

Schema (migration 4, :data:`OUTBOX_MIGRATION`): ``notifications`` holds one row per
notification, keyed by its deterministic id (``monitorapp.notify.plan``), inserted once
(``ON CONFLICT DO NOTHING``: an alert raised again after a restart plans the same ids);
``notification_attempts`` records every attempt and outcome against it (the console shows
them on the alert); ``notify_state`` keeps the sender's cursor in the acknowledgement log (the
closes it has planned notifications for). Deliveries, final failures, uncertain sendings and
resends also go into the audit log, in the same transaction.

A notification's ``status``:

``pending``     waiting for its due time (``due_at``) and its next attempt (``next_attempt_at``)
``sending``     recorded before the SMTP transaction starts; the message's end (the final ``.``)
                has not been sent
``committing``  recorded, durably, just before the final ``.`` is sent: from here the relay may
                have the message
``sent``        the relay accepted it (``sent_at``, ``smtp_reply``, ``delay_s`` from the step)
``unknown``     the sender stopped (crash, SIGKILL) while ``committing``: the relay may or may not
                have it, so it is *not* sent again; shown on the alert for a person to resend
``failed``      no contact for the recipient, a relay that refuses the recipient or the message
                (5xx), or still not sent after the policy's ``give_up_after_s``

At a start (``recover``) a ``sending`` row goes back to ``pending`` (the relay discards a
transaction whose end it never received, so sending it again cannot duplicate it) and a
``committing`` row becomes ``unknown``. :class:`Outbox` is written once for both backends: this
module's SQLite class and ``centraldb.outbox.PgOutbox`` differ in placeholders, the audit call
and how a supervisor's resend is checked.
"""
from __future__ import annotations

import json
from concurrent.futures import Future

from localdb import hashchain

OUTBOX_MIGRATION = """
CREATE TABLE notifications (
    notification_id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, step TEXT NOT NULL,
    role TEXT NOT NULL, name TEXT, address TEXT, alert_type TEXT NOT NULL,
    priority TEXT NOT NULL, delivery TEXT NOT NULL, event_at REAL NOT NULL,
    due_at REAL NOT NULL, created_at REAL NOT NULL, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL, last_error TEXT,
    message_id TEXT, sent_at REAL, smtp_reply TEXT, delay_s REAL, resend_of TEXT,
    facts TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX notifications_alert ON notifications(alert_id);
CREATE INDEX notifications_open ON notifications(status, due_at);
CREATE TABLE notification_attempts (
    attempt_id INTEGER PRIMARY KEY, notification_id TEXT NOT NULL, at REAL NOT NULL,
    outcome TEXT NOT NULL, detail TEXT);
CREATE INDEX notification_attempts_of ON notification_attempts(notification_id, attempt_id);
CREATE TABLE notify_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

COLS = ("notification_id", "alert_id", "step", "role", "name", "address", "alert_type",
        "priority", "delivery", "event_at", "due_at", "created_at", "status", "attempts",
        "next_attempt_at", "last_error", "message_id", "sent_at", "smtp_reply", "delay_s",
        "resend_of", "facts", "updated_at")
OPEN = ("pending", "sending", "committing")
CALL = 4            # the writers' CALL item (localdb.writer, centraldb.writer)


class ResendError(ValueError):
    """A resend refused: unknown notification, no reason, not a supervisor."""


def _row(r) -> dict:
    d = dict(zip(COLS, r))
    d["facts"] = json.loads(d["facts"]) if d["facts"] else {}
    return d


class Outbox:
    """The outbox of one store (``Store`` or ``PgStore``). Writes go through the store's single
    writer; reads use the calling thread's reader connection."""

    P = "?"                       # the placeholder of the backend's driver

    def __init__(self, store):
        self.store = store

    def q(self, sql: str) -> str:
        return sql if self.P == "?" else sql.replace("?", self.P)

    # ---- hooks the PostgreSQL class replaces ------------------------------------------------
    def _audit(self, conn, at: float, action: str, detail: dict) -> None:
        hashchain.append(conn, "audit_log", {"at": at, "who": "monitor", "action": action,
                                             "detail": json.dumps(detail, sort_keys=True, default=str)})

    def _ack_entries(self, conn, alert_id: str) -> list[dict]:
        rows = conn.execute(self.q("SELECT seq, at, operator, action, action_code, note FROM ack_log"
                                   " WHERE alert_id=? ORDER BY seq"), (alert_id,)).fetchall()
        return [dict(zip(("seq", "at", "operator", "action", "action_code", "note"), r)) for r in rows]

    # ---- writes -----------------------------------------------------------------------------
    def add(self, notes, now: float, wait: bool = False):
        """Insert notifications (``monitorapp.notify.plan.Notification``) not already there.
        Queued on the writer in order with the alert rows (a later checkpoint commits after
        them); returns the Future, or with ``wait`` the ids inserted."""
        rows = [(n.notification_id, n.alert_id, n.step, n.role, n.name, n.address, n.alert_type,
                 n.priority, n.delivery, n.event_at, n.due_at, now, n.status, 0, n.due_at,
                 n.error, None, None, None, None, getattr(n, "resend_of", None),
                 json.dumps(n.facts, sort_keys=True, default=str), now) for n in notes]
        sql = self.q(f"INSERT INTO notifications ({', '.join(COLS)}) VALUES"
                     f" ({', '.join('?' * len(COLS))}) ON CONFLICT (notification_id) DO NOTHING")

        def write(conn):
            made = []
            for r, n in zip(rows, notes):
                if conn.execute(sql, r).rowcount:
                    made.append(n.notification_id)
                    self._attempt(conn, n.notification_id, now, "planned" if n.status == "pending" else n.status,
                                  n.error or f"{n.delivery}, due {n.due_at:.0f}")
                    if n.status == "failed":
                        self._audit(conn, now, "notification_failed", {
                            "notification": n.notification_id, "alert_id": n.alert_id, "step": n.step,
                            "role": n.role, "error": n.error})
            return made
        if wait:
            return self.store._call(write)
        fut: Future = Future()
        self.store.writer.put((CALL, write, fut))
        return fut

    def _attempt(self, conn, nid: str, at: float, outcome: str, detail: str | None) -> None:
        conn.execute(self.q("INSERT INTO notification_attempts (notification_id, at, outcome, detail)"
                            " VALUES (?,?,?,?)"), (nid, at, outcome, (detail or "")[:1000]))

    def transition(self, ids: list[str], to: str, now: float, outcome: str, detail: str | None = None,
                   *, audit: str | None = None, counts: bool = False, **fields) -> None:
        """Move ``ids`` to status ``to`` (setting ``fields``: message_id, sent_at, smtp_reply,
        delay_s, next_attempt_at, last_error), recording the attempt, and the audit record
        ``audit`` if given; ``counts`` adds one to ``attempts``. Waits for the commit."""
        sets = ["status=?", "updated_at=?"] + [f"{k}=?" for k in fields]
        args = [to, now] + list(fields.values())
        if counts:
            sets.append("attempts=attempts+1")
        sql = self.q(f"UPDATE notifications SET {', '.join(sets)} WHERE notification_id=?")

        def write(conn):
            for nid in ids:
                conn.execute(sql, args + [nid])
                self._attempt(conn, nid, now, outcome, detail)
            if audit:
                alerts = [r[0] for r in conn.execute(self.q(
                    "SELECT DISTINCT alert_id FROM notifications WHERE notification_id IN"
                    f" ({', '.join('?' * len(ids))})"), ids)]
                self._audit(conn, now, audit, {"notifications": ids, "alerts": alerts,
                                               "outcome": outcome, "detail": (detail or "")[:300],
                                               **{k: v for k, v in fields.items() if k != "facts"}})
        self.store._call(write)

    def recover(self, now: float) -> dict:
        """At a start: ``sending`` goes back to ``pending``, ``committing`` becomes ``unknown``."""
        got = {"resumed": [], "unknown": []}
        for r in self.reader().execute(self.q(
                "SELECT notification_id, status FROM notifications WHERE status IN (?, ?)"),
                ("sending", "committing")).fetchall():
            got["resumed" if r[1] == "sending" else "unknown"].append(r[0])
        if got["resumed"]:
            self.transition(got["resumed"], "pending", now, "interrupted",
                            "the sender stopped before the message was complete; it is sent again",
                            next_attempt_at=now)
        if got["unknown"]:
            self.transition(got["unknown"], "unknown", now, "unknown",
                            "the sender stopped while the relay was taking the message: it may have "
                            "been delivered; not sent again (a supervisor may resend it)",
                            audit="notification_unknown")
        return got

    def set_state(self, key: str, value: str) -> None:
        sql = self.q("INSERT INTO notify_state (key, value) VALUES (?, ?)"
                     " ON CONFLICT (key) DO UPDATE SET value=excluded.value")
        self.store._call(lambda conn: conn.execute(sql, (key, value)))

    def resend(self, notification_id: str, who: str, reason: str, now: float) -> str:
        """A person asks for a notification to be sent again: a new notification (a new id from
        the old one and the count of resends) with the reason; audited. Returns its id."""
        from monitorapp.notify.plan import notification_id as make_id
        if not isinstance(reason, str) or not reason.strip():
            raise ResendError("a resend needs a reason")
        if not isinstance(who, str) or not who.strip():
            raise ResendError("a resend needs who asked for it")

        def write(conn):
            r = conn.execute(self.q(f"SELECT {', '.join(COLS)} FROM notifications WHERE notification_id=?"),
                             (notification_id,)).fetchone()
            if r is None:
                raise ResendError(f"no notification {notification_id}")
            old = _row(r)
            if not old["address"]:
                raise ResendError("this notification has no address to send to")
            n = conn.execute(self.q("SELECT count(*) FROM notifications WHERE resend_of=?"),
                             (notification_id,)).fetchone()[0]
            nid = make_id(old["alert_id"], f"resend:{n + 1}:{old['step']}", old["address"])
            facts = {**old["facts"], "resend_reason": reason.strip()[:500], "resend_by": who.strip()}
            conn.execute(self.q(f"INSERT INTO notifications ({', '.join(COLS)}) VALUES"
                                f" ({', '.join('?' * len(COLS))})"),
                         (nid, old["alert_id"], f"resend:{n + 1}:{old['step']}", old["role"], old["name"],
                          old["address"], old["alert_type"], old["priority"], "now", now, now, now,
                          "pending", 0, now, None, None, None, None, None, notification_id,
                          json.dumps(facts, sort_keys=True), now))
            self._attempt(conn, nid, now, "resend", f"{who.strip()}: {reason.strip()[:300]}")
            self._audit_resend(conn, now, who.strip(), {"notification": nid, "resend_of": notification_id,
                                                        "alert_id": old["alert_id"], "reason": reason.strip()})
            return nid
        return self.store._call(write)

    def _audit_resend(self, conn, at: float, who: str, detail: dict) -> None:
        hashchain.append(conn, "audit_log", {"at": at, "who": who, "action": "notification_resend",
                                             "detail": json.dumps(detail, sort_keys=True)})

    # ---- reads ------------------------------------------------------------------------------
    def reader(self):
        return self.store.reader()

    def state(self, key: str) -> str | None:
        r = self.reader().execute(self.q("SELECT value FROM notify_state WHERE key=?"), (key,)).fetchone()
        return r[0] if r else None

    def due(self, now: float, limit: int = 200) -> list[dict]:
        rows = self.reader().execute(self.q(
            f"SELECT {', '.join(COLS)} FROM notifications WHERE status='pending' AND due_at <= ?"
            " AND coalesce(next_attempt_at, 0) <= ? ORDER BY due_at, notification_id LIMIT ?"),
            (now, now, limit)).fetchall()
        return [_row(r) for r in rows]

    def next_due(self) -> float | None:
        r = self.reader().execute("SELECT min(max(due_at, coalesce(next_attempt_at, 0))) FROM"
                                  " notifications WHERE status='pending'").fetchone()
        return r[0] if r else None

    def of_alert(self, alert_id: str) -> list[dict]:
        """The alert's notifications, oldest first, each with its ``attempts_log``."""
        conn = self.reader()
        out = [_row(r) for r in conn.execute(self.q(
            f"SELECT {', '.join(COLS)} FROM notifications WHERE alert_id=? ORDER BY created_at, notification_id"),
            (alert_id,)).fetchall()]
        for d in out:
            d["attempts_log"] = [dict(zip(("at", "outcome", "detail"), r)) for r in conn.execute(self.q(
                "SELECT at, outcome, detail FROM notification_attempts WHERE notification_id=?"
                " ORDER BY attempt_id"), (d["notification_id"],)).fetchall()]
        return out

    def all(self, since: float | None = None) -> list[dict]:
        rows = self.reader().execute(self.q(
            f"SELECT {', '.join(COLS)} FROM notifications WHERE created_at >= ? ORDER BY created_at"),
            (since or 0.0,)).fetchall()
        return [_row(r) for r in rows]

    def closes_after(self, seq: int, limit: int = 500) -> list[dict]:
        rows = self.reader().execute(self.q(
            "SELECT seq, alert_id, at FROM ack_log WHERE seq > ? AND action='close' ORDER BY seq LIMIT ?"),
            (seq, limit)).fetchall()
        return [dict(zip(("seq", "alert_id", "at"), r)) for r in rows]

    def last_ack_seq(self) -> int:
        return int(self.reader().execute("SELECT coalesce(max(seq), 0) FROM ack_log").fetchone()[0])

    def alert_now(self, alert_id: str) -> dict:
        """The alert's condition and handling now, with its ack-log entries (for a message)."""
        conn = self.reader()
        r = conn.execute(self.q("SELECT a.state, a.cleared_at, h.handling FROM alerts a LEFT JOIN"
                                " alert_handling h USING (alert_id) WHERE a.alert_id=?"), (alert_id,)).fetchone()
        from monitorapp.feed.timeutil import fmt_time
        d = {"state": r[0], "cleared_at": fmt_time(r[1]) if r[1] else None, "handling": r[2]} if r else {}
        d["entries"] = self._ack_entries(conn, alert_id)
        return d


class SqliteOutbox(Outbox):
    """The SQLite store's outbox (``localdb.store.Store``). A resend is checked here for a
    reason and a name; who may resend is the console's check (a single workstation's store
    has no server to enforce roles)."""
