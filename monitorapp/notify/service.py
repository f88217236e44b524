"""The decider's notifier: alert steps into the outbox, the outbox out through the relay.

``Notifier`` runs in the monitor only (the one decider, spec v2 §8: never several workstations
at once; with a PostgreSQL record only the leader). Its parts:

* ``on_alert`` (the engine's listener, main thread): a ``raised`` or ``reactivated`` change is
  planned (``monitorapp.notify.plan``) and queued on the store's writer in order with the alert
  row, so the checkpoint that covers the alert also covers its notifications;
* the sender thread: the closes in the acknowledgement log since its cursor (kept in
  ``notify_state``; a first start begins at the log's end, so history is not notified), the due
  notifications (a ``next_working_day`` batch goes as one summary per recipient), each sent in
  two phases (``sending`` → ``committing`` → ``sent``, see ``localdb.outbox``), retried with
  back-off while the relay refuses or cannot be reached, failed after ``give_up_after_s``;
* ``tick`` (main thread, once a loop): a ``system_fault`` (component ``notify``, kind
  ``relay``) once the relay has been failing for ``fault_after_s``, cleared when a message goes
  through again; planned rows that could not be queued are queued again.

Every attempt is recorded against its notification; deliveries, final failures and uncertain
sendings are audited. Log lines: ``notification sent`` (with ``delay_s``), ``notification
failed``, ``notification unknown``, ``relay unreachable``.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from types import SimpleNamespace

from monitorapp.notify.message import build_message
from monitorapp.notify.plan import plan, step_name
from monitorapp.notify.policy import NotifyPolicy
from monitorapp.notify.relay import RelayError, RelaySettings, SmtpRelay

log = logging.getLogger("monitorapp.service.monitor")
CURSOR = "close_cursor"


class Notifier:
    def __init__(self, store, caseload, policy: NotifyPolicy, relay: RelaySettings | None,
                 outbox=None, clock=time.time, fault=None, ok=None, poll_s: float = 0.5):
        from centraldb.outbox import outbox_for
        self.store, self.caseload, self.policy = store, caseload, policy
        self.outbox = outbox if outbox is not None else outbox_for(store)
        self.relay = SmtpRelay(relay) if relay is not None else None
        self.clock, self.fault_cb, self.ok_cb, self.poll_s = clock, fault, ok, poll_s
        self.tz = getattr(caseload, "tz", "Europe/London") if caseload is not None else "Europe/London"
        self._queued: list = []               # (future, notes) of planned rows being written
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.down_since: float | None = None   # first relay failure since the last success
        self.relay_error: str | None = None
        self.backoff = policy.retry["first_s"]
        self.retry_at = 0.0
        self.sent = self.failed = 0
        self.thread_error: str | None = None

    # ---- main thread ------------------------------------------------------------------------
    def attach(self, engine) -> None:
        self.engine = engine
        engine.add_listener(on_alert=self.on_alert)

    engine = None

    def _engine_now(self) -> float:
        """The processing clock (the feed's in an accelerated simulation), else the wall clock."""
        now = getattr(self.engine, "now", None)
        return float(now) if isinstance(now, (int, float)) else self.clock()

    def on_alert(self, alert, change: str) -> None:
        step = step_name(change, alert)
        if step is None:
            return
        at = alert.raised_at if change == "raised" else self._engine_now()
        notes = self._plan(alert, step, at)
        if notes:
            self._queued.append((self.outbox.add(notes, self.clock()), notes))
            self._wake.set()

    def _plan(self, alert, step: str, at: float, extra: dict | None = None):
        offender = self.caseload.offenders.get(alert.offender) if (self.caseload and alert.offender) else None
        zone = self.caseload.zones.get(alert.zone) if (self.caseload and alert.zone) else None
        zone_name = getattr(zone, "name", None) if zone is not None else None
        return plan(alert, step, at, offender, zone_name, self.policy, self.tz, extra)

    def tick(self) -> None:
        """Once a main-loop turn: re-queue what the writer refused; the relay's system_fault."""
        keep = []
        for fut, notes in self._queued:
            if not fut.done():
                keep.append((fut, notes))
            elif fut.exception() is None:
                self._wake.set()                  # committed: the sender need not wait its poll
            else:
                log.warning("notifications not queued", extra={"fields": {"error": str(fut.exception())[:300]}})
                keep.append((self.outbox.add(notes, self.clock()), notes))
        self._queued = keep
        now = self.clock()
        if self.down_since is not None and now - self.down_since >= self.policy.retry["fault_after_s"]:
            if self.fault_cb is not None:
                self.fault_cb("notify", "relay", f"notifications cannot be sent for "
                              f"{now - self.down_since:.0f} s: {self.relay_error}")
        elif self.down_since is None and self.ok_cb is not None:
            self.ok_cb("notify", "relay")
        if self.thread_error is not None and self.fault_cb is not None:
            self.fault_cb("notify", "sender", self.thread_error)

    def start(self) -> None:
        now = self.clock()
        got = self.outbox.recover(now)
        for nid in got["unknown"]:
            log.warning("notification unknown", extra={"fields": {"notification": nid}})
        if self.outbox.state(CURSOR) is None:        # a first start: history is not notified
            self.outbox.set_state(CURSOR, str(self.outbox.last_ack_seq()))
        self._thread = threading.Thread(target=self._main, name="notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self.relay is not None:
            self.relay.close()

    # ---- the sender thread ------------------------------------------------------------------
    def _main(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self.thread_error = None
            except Exception as e:        # noqa: BLE001 - annunciated by tick(); tried again
                self.thread_error = f"{e.__class__.__name__}: {e}"[:300]
                log.exception("notifier failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def run_once(self) -> None:
        self.plan_closes()
        now = self.clock()
        self.give_up(now)
        if self.relay is None or now < self.retry_at:
            return
        rows = self.outbox.due(now)
        groups: dict[tuple, list] = {}
        for r in rows:
            key = (r["address"], r["delivery"]) if r["delivery"] != "now" else (r["notification_id"],)
            groups.setdefault(key, []).append(r)
        pending = list(groups.values())
        while pending and not self._stop.is_set():
            if not self.send(pending.pop(0)):
                rest = [n["notification_id"] for notes in pending for n in notes]
                if rest:        # not tried: the relay is down; each says so on its alert
                    self.outbox.transition(rest, "pending", self.clock(), "deferred",
                                           f"not tried: {self.relay_error}", next_attempt_at=self.retry_at,
                                           last_error=self.relay_error)
                break

    def plan_closes(self) -> None:
        cursor = int(self.outbox.state(CURSOR) or 0)
        closes = self.outbox.closes_after(cursor)
        if not closes:
            return
        notes = []
        for c in closes:
            a = self.alert_of(c["alert_id"])
            if a is not None:
                notes += self._plan(a, "closed", float(c["at"]))
        if notes:
            self.outbox.add(notes, self.clock(), wait=True)
        self.outbox.set_state(CURSOR, str(closes[-1]["seq"]))

    def alert_of(self, alert_id: str):
        conn = self.outbox.reader()
        r = conn.execute(self.outbox.q(
            "SELECT alert_id, type, priority, offender_id, device, requirement_id, zone_id, start,"
            " raised_at, late, evidence, reactivations FROM alerts WHERE alert_id=?"), (alert_id,)).fetchone()
        if r is None:
            return None
        import json
        ev = r[10]
        return SimpleNamespace(alert_id=r[0], type=r[1], priority=r[2], offender=r[3], device=r[4],
                               requirement=r[5], zone=r[6], start=r[7], raised_at=r[8], late=bool(r[9]),
                               evidence=json.loads(ev) if isinstance(ev, str) and ev else {},
                               reactivations=r[11])

    def give_up(self, now: float) -> None:
        limit = self.policy.retry["give_up_after_s"]
        for r in self.outbox.due(now, limit=1000):
            if now - max(r["due_at"], r["created_at"]) > limit:     # from when it could first go
                self.outbox.transition([r["notification_id"]], "failed", now, "failed",
                                       f"not sent within {limit:.0f} s: {r['last_error'] or ''}",
                                       audit="notification_failed")
                self.failed += 1
                log.error("notification failed", extra={"fields": {"notification": r["notification_id"],
                                                                   "reason": "gave up"}})

    def send(self, notes: list[dict]) -> bool:
        """One message for ``notes`` (one recipient). False: the relay is down, stop this round."""
        ob, now = self.outbox, self.clock()
        ids = [n["notification_id"] for n in notes]
        mid = ids[0] if len(ids) == 1 else "D-" + hashlib.sha256("|".join(sorted(ids)).encode()).hexdigest()[:32]
        for n in notes:
            self._add_street(n["facts"])
        currents = {n["alert_id"]: ob.alert_now(n["alert_id"]) for n in notes}
        msg = build_message(notes, currents, self.policy.sender, mid, now)
        data = msg.as_bytes()
        ob.transition(ids, "sending", now, "sending", f"to {notes[0]['address']} via "
                      f"{self.relay.settings.describe()}", counts=True, message_id=mid)
        try:
            reply = self.relay.send(data, self.policy.sender.address, notes[0]["address"],
                                    lambda: ob.transition(ids, "committing", self.clock(), "committing",
                                                          "ending the SMTP transaction"))
        except RelayError as e:
            return self._refused(notes, ids, e)
        except Exception:          # the store refused "committing": the relay never got the end
            ob.transition(ids, "pending", self.clock(), "retry", "the outbox could not be written",
                          next_attempt_at=self.clock() + self.backoff)
            raise
        done = self.clock()
        for n in notes:
            delay = round(done - float(n["event_at"]), 3)
            ob.transition([n["notification_id"]], "sent", done, "sent", reply, audit="notification_sent",
                          sent_at=done, smtp_reply=reply, delay_s=delay, last_error=None)
            log.info("notification sent", extra={"fields": {
                "notification": n["notification_id"], "alert_id": n["alert_id"], "step": n["step"],
                "role": n["role"], "delay_s": delay, "message_id": mid}})
        self.sent += len(notes)
        self.down_since, self.relay_error = None, None
        self.backoff, self.retry_at = self.policy.retry["first_s"], 0.0
        return True

    def _refused(self, notes, ids, e: RelayError) -> bool:
        ob, now = self.outbox, self.clock()
        if e.after_end:
            ob.transition(ids, "unknown", now, "unknown", f"{e}; it may have been delivered: not sent "
                          f"again (a supervisor may resend it)", audit="notification_unknown", last_error=str(e))
            log.warning("notification unknown", extra={"fields": {"notifications": ids, "error": str(e)}})
            return True
        if e.permanent:
            ob.transition(ids, "failed", now, "failed", str(e), audit="notification_failed", last_error=str(e))
            self.failed += len(ids)
            log.error("notification failed", extra={"fields": {"notifications": ids, "error": str(e)}})
            return True
        if self.down_since is None:
            self.down_since = now
            log.warning("relay unreachable", extra={"fields": {"error": str(e)[:300]}})
        self.relay_error = str(e)[:300]
        self.retry_at = now + self.backoff
        ob.transition(ids, "pending", now, "retry", f"{e}; next attempt in {self.backoff:.0f} s",
                      next_attempt_at=self.retry_at, last_error=str(e)[:500])
        self.backoff = min(self.policy.retry["max_s"], self.backoff * 2)
        return False

    _places_failed = False

    def _add_street(self, facts: dict) -> None:
        if facts.get("street") or facts.get("lat") is None or self._places_failed:
            return
        try:
            from monitorapp.places import reverse_geocode
            facts["street"] = str(reverse_geocode(float(facts["lon"]), float(facts["lat"])))
        except Exception:           # noqa: BLE001 - no street index: the borough and position stay
            self._places_failed = True
