"""Shelving (ISA-18.2): take a nuisance alert out of the queue for a limited time.

Only medium and low alerts may be shelved, never a tamper or an exclusion alert; shelving is
timed (at most ``shelve/max_hours``, 8 hours, or to the end of the shift, whichever is sooner)
and needs a reason. The rules are plain functions so that the controller enforces them whatever
the dialog does; the dialog only offers what the rules allow.
"""
from __future__ import annotations

import datetime as dt

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLineEdit

from ui.console.formdialog import lay_out_form_dialog
from monitorapp.engine.alerts import Alert
from ui.console.alertmodel import TYPE_TEXT
from ui.text import rich, rich_label
from ui.theme import PRIORITY_TEXT

SHELVABLE_PRIORITIES = frozenset({"medium", "low"})
NEVER_SHELVED_TYPES = frozenset({"strap_tamper", "exclusion_entered"})
DURATIONS_MIN = (15, 30, 60, 120, 240, 480)


class ShelveRefused(ValueError):
    """An attempt to shelve that the rules forbid; the message says why."""


def shelve_refusal(alert: Alert) -> str | None:
    """Why this alert may not be shelved, or None when it may."""
    if alert.type in NEVER_SHELVED_TYPES:
        return f"{TYPE_TEXT.get(alert.type, alert.type)} alerts are never shelved."
    if alert.priority not in SHELVABLE_PRIORITIES:
        return f"Only medium and low alerts may be shelved; this one is {alert.priority}."
    return None


def shift_end(now: float, end_hhmm: str, tz=None) -> float:
    """The next end of shift after ``now`` (local time HH:MM in ``tz``)."""
    try:
        hh, mm = (int(x) for x in end_hhmm.split(":"))
        if not (0 <= hh < 24 and 0 <= mm < 60):
            raise ValueError
    except ValueError:
        raise ShelveRefused(f"end of shift {end_hhmm!r} is not HH:MM") from None
    tz = tz or dt.timezone.utc
    local = dt.datetime.fromtimestamp(now, tz)
    end = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if end.timestamp() <= now:
        end = (local + dt.timedelta(days=1)).replace(hour=hh, minute=mm, second=0, microsecond=0)
    return end.timestamp()


def check_shelve(alert: Alert, reason: str, until: float, now: float, max_hours: float) -> None:
    """Raise ShelveRefused unless shelving ``alert`` until ``until`` for ``reason`` is allowed."""
    problem = shelve_refusal(alert)
    if problem:
        raise ShelveRefused(problem)
    if not reason.strip():
        raise ShelveRefused("A reason is required to shelve an alert.")
    if until <= now:
        raise ShelveRefused("The shelving must end in the future.")
    if until - now > max_hours * 3600 + 1e-6:
        raise ShelveRefused(f"Shelving is limited to {max_hours:g} hours.")


class ShelveDialog(QDialog):
    """Collects (reason, until) for one shelvable alert."""

    def __init__(self, alert: Alert, now: float, *, max_hours: float = 8.0,
                 shift_end_at: float | None = None, tz=None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Shelve alert")
        self.setModal(True)
        self.alert, self.now, self.max_hours = alert, now, max_hours
        head = rich_label(rich("<b>{priority}</b> — {type} · {who}", priority=PRIORITY_TEXT[alert.priority],
                               type=TYPE_TEXT.get(alert.type, alert.type), who=alert.offender or "system"))
        self.duration = QComboBox()
        self.duration.setAccessibleName("Shelve for")
        for m in DURATIONS_MIN:
            if m <= max_hours * 60:
                self.duration.addItem(f"{m} min" if m < 60 else f"{m // 60} h", now + m * 60)
        # "Until end of shift" (README, setting shift/end) is always offered; when the end of
        # the shift is further away than shelving may last it is shown, greyed, saying so.
        if shift_end_at is not None and shift_end_at > now:
            local = dt.datetime.fromtimestamp(shift_end_at, tz or dt.timezone.utc).strftime("%H:%M %Z")
            if shift_end_at <= now + max_hours * 3600:
                self.duration.addItem(f"Until end of shift ({local})", shift_end_at)
            else:
                self.duration.addItem(f"Until end of shift ({local}): more than {max_hours:g} h away",
                                      shift_end_at)
                item = self.duration.model().item(self.duration.count() - 1)
                item.setEnabled(False)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why (required), e.g. known GPS dead spot, device replaced tomorrow")
        self.reason.setAccessibleName("Reason")
        form = QFormLayout()
        form.addRow("Shelve &for:", self.duration)
        form.addRow("&Reason:", self.reason)
        self.problem, self.buttons = lay_out_form_dialog(self, form, "Shelve", head)
        self.reason.textChanged.connect(self._validate)
        self._validate()

    def values(self) -> tuple[str, float]:
        return self.reason.text().strip(), float(self.duration.currentData())

    def _validate(self) -> None:
        reason, until = self.values()
        try:
            check_shelve(self.alert, reason, until, self.now, self.max_hours)
            problem = None
        except ShelveRefused as e:
            problem = str(e)
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)

    def accept(self) -> None:
        reason, until = self.values()
        try:
            check_shelve(self.alert, reason, until, self.now, self.max_hours)
        except ShelveRefused:
            return
        super().accept()
