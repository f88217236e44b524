"""The shape every small dialog of the console shares: an optional heading, a form, a line
saying what is still wrong, and OK/Cancel with OK named for what it does; and the UTC
date-time field the query forms (crime mapping, playback) use."""
from __future__ import annotations

from PySide6.QtCore import QDateTime, Qt, QTimeZone
from PySide6.QtWidgets import (QDateTimeEdit, QDialog, QDialogButtonBox, QFormLayout, QLabel,
                               QVBoxLayout, QWidget)


def lay_out_form_dialog(dialog: QDialog, form: QFormLayout, ok_text: str,
                        head: QWidget | None = None) -> tuple[QLabel, QDialogButtonBox]:
    """Lay ``dialog`` out; return its problem line and its buttons."""
    problem = QLabel()
    problem.setTextFormat(Qt.TextFormat.PlainText)     # a problem may quote what was typed
    problem.setObjectName("dim")
    ok = QDialogButtonBox.StandardButton.Ok
    buttons = QDialogButtonBox(ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.button(ok).setText(ok_text)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    lay = QVBoxLayout(dialog)
    if head is not None:
        lay.addWidget(head)
    lay.addLayout(form)
    lay.addWidget(problem)
    lay.addWidget(buttons)
    return problem, buttons


def utc_datetime_edit(t: float, seconds: bool = False) -> QDateTimeEdit:
    """A date-time field shown and edited in UTC (evidence is in UTC), with a calendar."""
    w = QDateTimeEdit()
    w.setTimeZone(QTimeZone.utc())
    w.setDisplayFormat("yyyy-MM-dd HH:mm:ss 'UTC'" if seconds else "yyyy-MM-dd HH:mm 'UTC'")
    w.setCalendarPopup(True)
    w.setDateTime(QDateTime.fromSecsSinceEpoch(int(t), QTimeZone.utc()))
    return w
