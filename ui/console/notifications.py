"""The selected alert's notifications (spec v2 §9, issue 20): who was told, when, delivered or not.

``NotificationsPanel`` sits in the details panel under the alert's response (``mount`` puts it
there and follows the queue's selection). One row per notification the decider planned: the
recipient (role, name, address), the step (raised, raised again, closed, sent again), the state
in words ("delivered 14:02:11, 3 s after the alert", "waiting for the relay: next try 14:05",
"not delivered: no contact for police:Camden", "uncertain: the monitor stopped while the relay
took it"), the attempts (each with its time and outcome in the tool tip) and the last error.
Every value is data and is shown as plain text (table items, ``tooltip()``).

A supervisor (the record's role: a PostgreSQL login in ``monitorapp_supervisor``, or the signed-in
role of a single workstation) can resend the selected notification with a reason: the record's
``resend_notification`` (audited by the server), or the SQLite outbox's audited resend. The
button is a convenience: the server refuses anyone else.
"""
from __future__ import annotations

import datetime as dt
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QInputDialog, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ui.text import plain_label, tooltip

ROLE_TEXT = {"responsible_officer": "Responsible officer", "team": "Officer's team",
             "police": "Police", "duty_manager": "Duty manager"}
COLUMNS = ("Recipient", "Step", "State", "Attempts", "Last error")


def step_text(step: str) -> str:
    if step.startswith("resend:"):
        return "sent again"
    if step.startswith("reactivated"):
        return "raised again"
    return step


def state_text(r: dict, fmt) -> str:
    s = r["status"]
    if s == "sent":
        delay = r.get("delay_s")
        after = f", {delay:.0f} s after the step" if isinstance(delay, (int, float)) else ""
        return f"delivered {fmt(r['sent_at'])}{after}"
    if s == "failed":
        return f"not delivered: {r.get('last_error') or 'failed'}"
    if s == "unknown":
        return "uncertain: the sender stopped while the relay took it; not sent again"
    if s in ("sending", "committing"):
        return "being sent"
    if r.get("last_error"):
        return f"waiting for the relay: next try {fmt(r.get('next_attempt_at'))}"
    if r.get("delivery") != "now" and (r.get("due_at") or 0) > time.time():
        return f"in the summary of {fmt(r['due_at'], day=True)}"
    return "waiting to be sent"


class NotificationsPanel(QWidget):
    def __init__(self, store, *, who: str = "", can_resend: bool = False, tz=None, parent=None):
        super().__init__(parent)
        self.setObjectName("alertNotifications")
        self.store, self.who, self.can_resend = store, who, can_resend
        self.tz = tz or dt.timezone.utc
        self.alert_id: str | None = None
        self.rows: list[dict] = []
        self.outbox = None
        try:
            from centraldb.outbox import outbox_for
            if store is not None and hasattr(store, "reader"):
                self.outbox = outbox_for(store)
        except ImportError:
            self.outbox = None
        self.heading = plain_label("Notifications")
        self.heading.setStyleSheet("font-weight: bold;")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("notificationsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMaximumHeight(150)
        self.table.setAccessibleName("Notifications of the alert")
        self.resend_btn = QPushButton("Resend…")
        self.resend_btn.setObjectName("resendNotification")
        self.resend_btn.setToolTip("Send the selected notification again (a supervisor, with a reason)")
        self.resend_btn.setVisible(can_resend)
        self.resend_btn.clicked.connect(self.ask_resend)
        self.message = plain_label()
        self.message.setObjectName("notificationsMessage")
        self.message.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        lay.addWidget(self.heading)
        lay.addWidget(self.table)
        row = QHBoxLayout()
        row.addWidget(self.message, 1)
        row.addWidget(self.resend_btn)
        lay.addLayout(row)
        self.timer = QTimer(self)
        self.timer.setInterval(5000)            # a delivery shows within seconds, not per fix
        self.timer.timeout.connect(self.refresh)
        self.setVisible(False)

    def _fmt(self, t, day: bool = False) -> str:
        if not isinstance(t, (int, float)):
            return "—"
        d = dt.datetime.fromtimestamp(t, self.tz)
        return d.strftime("%a %d %b %H:%M" if day else "%H:%M:%S")

    def show_alert(self, alert_id: str | None) -> None:
        self.alert_id = alert_id
        self.message.setText("")
        self.refresh()

    def refresh(self) -> None:
        if self.outbox is None or not self.alert_id:
            self.setVisible(False)
            self.timer.stop()
            return
        try:
            self.rows = self.outbox.of_alert(self.alert_id)
        except Exception as e:        # noqa: BLE001 - an older record, or unreachable: say so
            self.rows = []
            self.message.setText(f"Notifications could not be read from the record: {e}")
        self.setVisible(True)
        if not self.timer.isActive():
            self.timer.start()
        self.heading.setText("Notifications" if self.rows else "Notifications: none for this alert")
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            who = ROLE_TEXT.get(r["role"], r["role"])
            if r.get("name") or r.get("address"):
                who += f": {r.get('name') or ''} <{r.get('address') or '?'}>".replace(":  <", ": <")
            error = "" if r["status"] in ("failed", "sent") else (r.get("last_error") or "")   # failed: in State
            cells = (who, step_text(r["step"]), state_text(r, self._fmt), str(r.get("attempts") or 0), error)
            log = "\n".join(f"{self._fmt(a['at'])} {a['outcome']}: {a.get('detail') or ''}"
                            for a in r.get("attempts_log") or [])
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tooltip(log or text))
                item.setData(Qt.ItemDataRole.UserRole, r["notification_id"])
                self.table.setItem(i, c, item)
        self.table.resizeColumnsToContents()

    def selected(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        return self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None

    def ask_resend(self) -> None:
        r = self.selected()
        if r is None:
            self.message.setText("Select the notification to send again.")
            return
        reason, ok = QInputDialog.getText(self, "Resend notification",
                                          f"Why send it again to {r.get('address') or '?'}?")
        if ok:
            self.resend(r["notification_id"], reason)

    def resend(self, notification_id: str, reason: str) -> str | None:
        """The record's resend (audited); the refusal's text is shown, never a traceback."""
        try:
            nid = self.outbox.resend(notification_id, self.who, reason, time.time())
        except Exception as e:        # noqa: BLE001 - ResendError, the server's refusal
            self.message.setText(f"Not sent again: {e}")
            return None
        self.message.setText("Queued to be sent again; the decider sends it within seconds.")
        self.refresh()
        return nid


def mount(details, controller, queue=None) -> NotificationsPanel:
    """Put the panel in ``details`` (a ``DetailsPanel``) under the alert's response, reading
    through ``controller``'s store, and follow ``queue``'s selected alert."""
    store = getattr(controller, "store", None)
    if store is not None and not hasattr(store, "reader"):
        store = getattr(store, "store", None)          # a centre client: its record
    roles = getattr(store, "roles", None)
    who = getattr(controller, "operator", "") or ""
    role = getattr(controller, "role", None) or getattr(details.window(), "role", None)
    can = bool(roles and "supervisor" in roles) or role == "supervisor"
    panel = NotificationsPanel(store, who=who, can_resend=can, tz=getattr(details, "tz", None))
    details._layout.insertWidget(3, panel)
    details.notifications = panel
    if queue is not None:
        queue.alertSelected.connect(panel.show_alert)
    return panel


def notification_summary(store) -> dict[str, str]:
    """Per alert id, one line for the acknowledgement review: "2 delivered, the first 3 s after
    the alert; 1 not delivered" (nothing for an alert without notifications, or a store from
    before the outbox)."""
    try:
        from centraldb.outbox import outbox_for
        rows = outbox_for(store).all()
    except Exception:             # noqa: BLE001 - the review still shows the rest
        return {}
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["alert_id"], []).append(r)
    out = {}
    for aid, rs in by.items():
        sent = [r for r in rs if r["status"] == "sent"]
        delays = [r["delay_s"] for r in sent if r.get("delay_s") is not None and r["delivery"] == "now"]
        parts = [f"{len(sent)} delivered" + (f", the first {min(delays):.0f} s after the step" if delays else "")]
        for status, text in (("failed", "not delivered"), ("unknown", "uncertain")):
            n = sum(r["status"] == status for r in rs)
            if n:
                parts.append(f"{n} {text}")
        waiting = sum(r["status"] in ("pending", "sending", "committing") for r in rs)
        if waiting:
            parts.append(f"{waiting} waiting")
        out[aid] = "; ".join(parts)
    return out
