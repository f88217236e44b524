"""The alert queue of a console that is a client of the centre (issue 15): operators act
through the centre's record, and the queue shows what the decider publishes.

``CentreQueueController`` is the ``AlertQueueController`` of client mode. The queue's handling
is the record's, as the decider republishes it with each alert (``CentreClient.handling_for``),
never set here by an action. Acknowledge, close, shelve and unshelve are checked as before (an
action code, the note a critical alert needs, the shelving rules), then sent to the record as
the signed-in person on the client's record thread (``PgStore.acknowledge`` and the others: the
server establishes who acts and refuses what its rules refuse). ``recorded`` says when the
record took a step, ``refused`` when it did not, with the server's reason (who already took
it); the row changes when the decider's republished alert arrives.

While the centre cannot be reached an action is refused at once with that sentence (nothing is
queued: a response recorded later would carry a time it did not happen, and could collide with
another operator's). This console's own ``system_fault`` alerts (the decider or the record out
of reach) are handled here, in this queue only: the record does not hold them.
"""
from __future__ import annotations

from PySide6.QtCore import Signal

from ui.console.alertmodel import Handling
from ui.console.alertqueue import AlertQueueController, HandlingRefused
from ui.console.shelvedialog import ShelveRefused, check_shelve


class CentreQueueController(AlertQueueController):
    recorded = Signal(str, str, str)          # what, alert id, operator
    refused = Signal(str, str, str, str)      # what, alert id, reason, who already took it ("")
    sent = Signal(str, str)                   # what, alert id: on its way to the record

    def __init__(self, centre, operator: str, **kw):
        super().__init__(centre.store, operator, **kw)
        self.centre = centre
        centre.actionDone.connect(self._done)

    # ----- what the decider publishes ------------------------------------------------------
    def on_alert_batch(self, changes, now: float) -> None:
        self.now = max(self.now, now)
        before = self.model.rowCount()
        sounding = self.model.apply_changes(changes, now)
        new_ids = [self.model.row_at(r).alert.alert_id for r in range(before, self.model.rowCount())]
        self._seen.extend([now] * len(new_ids))
        changed = []
        for _change, a in changes:
            h = self.centre.handling_for(a.alert_id)
            row = self.model.row(a.alert_id)
            if h is not None and row is not None and row.handling != h:
                self.model.set_handling(a.alert_id, h)
                changed.append((a.alert_id, h.state))
        for aid, _change in sounding:
            row = self.model.row(aid)
            if row.handling.state in ("shelved", "closed"):
                continue
            if row.handling.state == "acknowledged" and aid in new_ids:
                continue          # taken before this console saw it: no alarm for it here
            if row.alert.priority in ("critical", "high"):
                self._ring(aid)
        for aid, state in changed:
            if state != "unacknowledged":
                self._ringing.discard(aid)
            self.handlingChanged.emit(aid, state)
        if new_ids:
            self.newAlerts.emit(new_ids)
        for change, a in changes:     # republished by the decider: maybe another person's step
            if change == "updated":
                self.stepRecorded.emit(a.alert_id)
        self._check_flood()
        self._update_shelved()

    # ----- operators' actions: to the record -------------------------------------------------
    def acknowledge(self, alert_id: str, action: str, note: str) -> None:
        from ui.console.ackdialog import ack_problem
        row = self._row(alert_id)
        if row.handling.state != "unacknowledged":
            who = f" by {row.handling.acked_by}" if row.handling.acked_by else ""
            raise HandlingRefused(f"alert is {row.handling.state}{who}, not unacknowledged")
        problem = ack_problem(row.alert.priority, action, note)
        if problem:
            raise HandlingRefused(problem)
        if self._local(alert_id, Handling(state="acknowledged", acked_at=self.now,
                                          acked_by=self.operator, action=action, note=note)):
            return
        op = self.operator
        self.centre.act("acknowledged", alert_id, lambda s: s.acknowledge(alert_id, op, action, note or None))
        self.sent.emit("acknowledged", alert_id)

    def close(self, alert_id: str, note: str = "", skipped: dict | None = None) -> None:
        row = self._row(alert_id)
        if row.alert.state != "cleared":
            raise HandlingRefused("an alert can be closed only once its condition has cleared")
        if row.handling.state != "acknowledged" and not self.centre.local_fault(alert_id):
            raise HandlingRefused("acknowledge the alert before closing it")
        if self._local(alert_id, Handling(**{**row.handling.__dict__, "state": "closed",
                                             "closed_at": self.now, "closed_by": self.operator})):
            return
        skipped, note = self._skips(alert_id, skipped, note)
        op = self.operator
        self.centre.act("closed", alert_id, lambda s: s.close_alert(alert_id, op, note or None, skipped))
        self.sent.emit("closed", alert_id)

    def record_step(self, alert_id: str, step: str, outcome: str, reference: str = "",
                    note: str = "") -> None:
        """A step of the alert's response, sent to the record as the signed-in person."""
        self._row(alert_id)
        if self.centre.local_fault(alert_id):
            raise HandlingRefused("this console's own fault has no response steps in the record")
        op = self.operator
        self.centre.act("step", alert_id, lambda s: s.record_step(alert_id, op, step, outcome,
                                                                 reference or None, note or None))
        self.sent.emit("step", alert_id)

    def shelve(self, alert_id: str, reason: str, until: float) -> None:
        row = self._row(alert_id)
        if row.handling.state in ("closed", "shelved"):
            raise HandlingRefused(f"alert is already {row.handling.state}")
        try:
            check_shelve(row.alert, reason, until, self.now, self.max_shelve_hours)
        except ShelveRefused as e:
            raise HandlingRefused(str(e)) from None
        if self.centre.local_fault(alert_id):
            raise HandlingRefused("this console's own fault cannot be shelved")
        op = self.operator
        self.centre.act("shelved", alert_id, lambda s: s.shelve(alert_id, op, reason, until))
        self.sent.emit("shelved", alert_id)

    def unshelve(self, alert_id: str, *, expired: bool = False) -> None:
        row = self._row(alert_id)
        if row.handling.state != "shelved":
            raise HandlingRefused("alert is not shelved")
        if expired:
            # the record's shelving has ended by itself; the decider republishes its handling
            h = Handling(**{**row.handling.__dict__, "state": row.handling.state_before_shelve or "unacknowledged",
                            "shelved_until": None, "state_before_shelve": None})
            self._set(alert_id, h)
            if row.alert.state == "active":
                self._ring(alert_id, force=True)
            return
        op = self.operator
        self.centre.act("unshelved", alert_id, lambda s: s.unshelve(alert_id, op))
        self.sent.emit("unshelved", alert_id)

    def _local(self, alert_id: str, h: Handling) -> bool:
        """This console's own fault: handled in this queue (the record does not hold it)."""
        if not self.centre.local_fault(alert_id):
            return False
        if h.state != "unacknowledged":
            self._ringing.discard(alert_id)
        self._set(alert_id, h)
        self.centre.handlings[alert_id] = h
        return True

    def _done(self, out: dict) -> None:
        if out["ok"]:
            self.recorded.emit(out["what"], out["alert_id"], self.operator)
            if out["what"] == "step":
                self.stepRecorded.emit(out["alert_id"])
        else:
            self.refused.emit(out["what"], out["alert_id"], out["error"] or "refused", out["by"] or "")
