"""Live mode: what this console shares with the other workstations through the broker.

``BrokerSync`` wraps ``monitorapp.service.sharedstate.SharedState``. Its callbacks arrive on paho's
network thread; they are handed to the main thread through queued signals and applied there:
another operator's acknowledgement, close or shelving updates this queue (the alert stops
flashing and sounding here too); a zone edited elsewhere goes to the engine and the map. Local
actions are published after the store has recorded them. An acknowledgement of an alert that
another operator already took is refused with who and when (``ack_conflict``).
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from ui.console.alertmodel import Handling


class BrokerSync(QObject):
    remoteAck = Signal(str, dict, dict)     # alert_id, entry, merged handling
    remoteZone = Signal(dict)               # zone edit record
    conflict = Signal(str, dict)

    def __init__(self, shared, controller, window, parent=None):
        super().__init__(parent)
        self.shared, self.ctl, self.window = shared, controller, window
        shared.on_remote_ack = lambda aid, e, h: self.remoteAck.emit(aid, e, h)
        shared.on_remote_zone = lambda rec: self.remoteZone.emit(rec)
        shared.on_conflict = lambda aid, c: self.conflict.emit(aid, c)
        q = Qt.ConnectionType.QueuedConnection
        self.remoteAck.connect(self._apply_ack, q)
        self.remoteZone.connect(self._apply_zone, q)
        self.conflict.connect(self._report_conflict, q)
        controller.share = self
        window.share = self

    def start(self) -> None:
        self.shared.start()

    def stop(self) -> None:
        self.shared.stop()

    # ----- local actions, published after the store recorded them ---------------------------
    def ack_conflict(self, alert_id: str, operator: str) -> str | None:
        owner = self.shared.handling(alert_id).get("owner")
        if owner and owner.get("operator") != operator:
            return f"already acknowledged by {owner['operator']} at {owner.get('workstation')}"
        return None

    def published(self, step: str, alert_id: str, **fields) -> None:
        op = self.ctl.operator
        try:
            if step == "acknowledge":
                self.shared.publish_ack(alert_id, op, fields.get("action"), fields.get("note"), force=True)
            elif step == "close":
                self.shared.publish_close(alert_id, op, fields.get("note"))
            elif step == "shelve":
                self.shared.publish_shelve(alert_id, op, fields["reason"], fields["until"])
            elif step == "unshelve":
                self.shared.publish_unshelve(alert_id, op)
        except (RuntimeError, ValueError) as e:    # broker down: the local log still has it
            self.window.event.emit("warning", {"text": f"not shared with other workstations: {e}"})

    def zone(self, feature: dict, removed: bool = False) -> None:
        try:
            self.shared.publish_zone(feature, self.ctl.operator, removed=removed)
        except (RuntimeError, ValueError) as e:
            self.window.event.emit("warning", {"text": f"zone not shared: {e}"})

    # ----- remote actions, on the main thread ------------------------------------------------
    def _apply_ack(self, alert_id: str, entry: dict, handling: dict) -> None:
        row = self.ctl.model.row(alert_id)
        if row is None:
            return
        owner = handling.get("owner") or {}
        h = Handling(**{**row.handling.__dict__})
        h.state = handling.get("state", h.state)
        if owner:
            h.acked_by, h.acked_at = owner.get("operator"), h.acked_at or self.ctl.now
            h.action = h.action or entry.get("action")
        if h.state == "shelved":
            h.shelved_until, h.shelved_by = entry.get("until", h.shelved_until), entry.get("operator")
            h.shelve_reason = entry.get("reason", h.shelve_reason)
        self.ctl.apply_remote(alert_id, h)
        self.window.event.emit("remote_handling", {"alert_id": alert_id, "step": entry.get("step"),
                                                   "operator": entry.get("operator")})

    def _apply_zone(self, rec: dict) -> None:
        if rec.get("workstation") == self.shared.workstation:
            return
        self.window.apply_remote_zone(rec["feature"], bool(rec.get("removed")))

    def _report_conflict(self, alert_id: str, c: dict) -> None:
        self.window.event.emit("handling_conflict", {
            "alert_id": alert_id, "first": c["first"].get("operator"), "second": c["second"].get("operator")})
