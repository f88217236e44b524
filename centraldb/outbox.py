"""The notification outbox in the centre's PostgreSQL record (migration 7; spec v2 §9).

The same tables and the same logic as ``localdb.outbox`` (read its docstring for the statuses
and the at-most-once rule): :class:`PgOutbox` only changes the placeholders, the audit call and
the resend, which here is the server's decision:

* the decider (``monitorapp_decider``) inserts and updates notifications and their attempts,
  and keeps its cursor in ``notify_state``; its audit records go through ``audit_append``;
* operators, supervisors, trainers and administrators read ``notifications`` and
  ``notification_attempts`` (the console shows them on each alert), never write them;
* a supervisor resends through ``resend_notification(id, reason)``, a ``SECURITY DEFINER``
  function granted to ``monitorapp_supervisor`` only, which refuses without a reason, makes the
  new notification (its id computed exactly as ``monitorapp.notify.plan.notification_id``) and
  records ``notification_resend`` in the audit log with ``session_user`` as who and the
  server's clock as when, in one transaction.
"""
from __future__ import annotations

import json

from localdb.outbox import Outbox, ResendError

OUTBOX_MIGRATION_PG = r"""
CREATE TABLE notifications (
  notification_id text PRIMARY KEY, alert_id text NOT NULL, step text NOT NULL,
  role text NOT NULL, name text, address text, alert_type text NOT NULL,
  priority text NOT NULL, delivery text NOT NULL, event_at double precision NOT NULL,
  due_at double precision NOT NULL, created_at double precision NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'sending', 'committing', 'sent', 'unknown',
                                         'failed')),
  attempts integer NOT NULL DEFAULT 0, next_attempt_at double precision, last_error text,
  message_id text, sent_at double precision, smtp_reply text, delay_s double precision,
  resend_of text, facts text NOT NULL, updated_at double precision NOT NULL);
CREATE INDEX notifications_alert ON notifications (alert_id);
CREATE INDEX notifications_open ON notifications (status, due_at);
CREATE TABLE notification_attempts (
  attempt_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  notification_id text NOT NULL, at double precision NOT NULL, outcome text NOT NULL,
  detail text);
CREATE INDEX notification_attempts_of ON notification_attempts (notification_id, attempt_id);
CREATE TABLE notify_state (key text PRIMARY KEY, value text NOT NULL);

-- a supervisor's resend, with a reason, audited; returns the new notification's id
CREATE FUNCTION resend_notification(p_id text, p_reason text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE old notifications; n integer; v_step text; v_id text; v_at double precision;
BEGIN
  IF NOT pg_has_role(session_user, 'monitorapp_supervisor', 'MEMBER') THEN
    RAISE EXCEPTION 'only a supervisor may resend a notification' USING ERRCODE = 'MA001';
  END IF;
  IF coalesce(btrim(p_reason), '') = '' THEN
    RAISE EXCEPTION 'a resend needs a reason' USING ERRCODE = 'MA001';
  END IF;
  SELECT * INTO old FROM notifications WHERE notification_id = p_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no notification %', p_id USING ERRCODE = 'MA001';
  END IF;
  IF old.address IS NULL THEN
    RAISE EXCEPTION 'this notification has no address to send to' USING ERRCODE = 'MA001';
  END IF;
  SELECT count(*) INTO n FROM notifications WHERE resend_of = p_id;
  v_step := 'resend:' || (n + 1) || ':' || old.step;
  v_id := 'N-' || left(encode(sha256(convert_to(old.alert_id || '|' || v_step || '|'
                                               || lower(old.address), 'UTF8')), 'hex'), 32);
  v_at := record_now();
  INSERT INTO notifications (notification_id, alert_id, step, role, name, address, alert_type,
      priority, delivery, event_at, due_at, created_at, status, attempts, next_attempt_at,
      resend_of, facts, updated_at)
    VALUES (v_id, old.alert_id, v_step, old.role, old.name, old.address, old.alert_type,
      old.priority, 'now', v_at, v_at, v_at, 'pending', 0, v_at, p_id,
      (old.facts::jsonb || jsonb_build_object('resend_reason', left(btrim(p_reason), 500),
                                             'resend_by', session_user::text))::text, v_at);
  INSERT INTO notification_attempts (notification_id, at, outcome, detail)
    VALUES (v_id, v_at, 'resend', session_user || ': ' || left(btrim(p_reason), 300));
  PERFORM audit_write('notification_resend', json_build_object(
    'notification', v_id, 'resend_of', p_id, 'alert_id', old.alert_id,
    'reason', btrim(p_reason))::text);
  RETURN v_id;
END $$;

GRANT SELECT, INSERT, UPDATE ON notifications, notification_attempts, notify_state
  TO monitorapp_decider;
GRANT SELECT ON notifications, notification_attempts
  TO monitorapp_operator, monitorapp_supervisor, monitorapp_trainer, monitorapp_administrator;
-- apply_privileges() (run after this migration) revokes PUBLIC's EXECUTE only: this stays
GRANT EXECUTE ON FUNCTION resend_notification(text, text) TO monitorapp_supervisor;
"""


class PgOutbox(Outbox):
    """The outbox of a ``centraldb.store.PgStore``."""

    P = "%s"

    def _audit(self, conn, at: float, action: str, detail: dict) -> None:
        conn.execute("SELECT audit_append(%s, %s, %s, %s)",
                     ("monitor", action, json.dumps(detail, sort_keys=True, default=str), at))

    def next_due(self) -> float | None:
        r = self.reader().execute("SELECT min(greatest(due_at, coalesce(next_attempt_at, 0))) FROM"
                                  " notifications WHERE status='pending'").fetchone()
        return r[0] if r else None

    def resend(self, notification_id: str, who: str, reason: str, now: float) -> str:
        """The server's ``resend_notification`` (who is the login; ``who`` and ``now`` are not
        sent). A refusal is a :class:`ResendError` with the server's text."""
        from localdb.handling import HandlingError
        if not isinstance(reason, str) or not reason.strip():
            raise ResendError("a resend needs a reason")
        try:
            return self.store._call(lambda conn: conn.execute(
                "SELECT resend_notification(%s, %s)", (notification_id, reason)).fetchone()[0])
        except HandlingError as e:        # the server's refusal (SQLSTATE MA001)
            raise ResendError(str(e)) from None


def outbox_for(store) -> Outbox:
    """The outbox of a store of either backend."""
    from localdb.outbox import SqliteOutbox
    if hasattr(store, "dsn"):                  # a PgStore (a SQLite Store has a path only)
        return PgOutbox(store)
    return SqliteOutbox(store)
