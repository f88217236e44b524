"""The shape every small dialog of the console shares: an optional heading, a form, a line
saying what is still wrong, and OK/Cancel with OK named for what it does; and the UTC
date-time field the query forms (crime mapping, playback) use.

The date-time field takes typed digits as people type them: a click or Tab into it selects the
section under the cursor, so digits overwrite it (Qt's own field inserts them beside the old
value and refuses the result); a whole selection (Ctrl+A) starts at the first section; a full
section moves on to the next, and a separator typed after it ("2026-03-10 14:05") is taken as
already passed, not as a move past the next section."""
from __future__ import annotations

from PySide6.QtCore import QDateTime, Qt, QTimeZone, QTimer
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


SEPARATORS = set("-:/. Tt")


class TypedDateTimeEdit(QDateTimeEdit):
    """A QDateTimeEdit that overwrites the section being typed in (see the module docstring)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._moved = False          # the last digit filled a section and moved to the next
        self._typing = False         # digits are going into the current section

    def _select_current(self) -> None:
        le = self.lineEdit()
        if le.hasSelectedText() and le.selectedText() == self.sectionText(self.currentSection()):
            return
        if le.hasSelectedText() and len(le.selectedText()) > len(self.sectionText(self.currentSection())):
            self.setCurrentSectionIndex(0)       # everything selected: typing starts at the first
        self.setSelectedSection(self.currentSection())

    def keyPressEvent(self, event):  # noqa: N802 (Qt API)
        text = event.text()
        if text and text.isdigit():
            if not self._typing:
                self._select_current()
            before = self.currentSection()
            super().keyPressEvent(event)
            self._moved = self.currentSection() != before
            self._typing = not self._moved
            return
        if text and text in SEPARATORS and self._moved:
            self._moved = False              # the section was left already: the separator is done
            event.accept()
            return
        self._moved = self._typing = False
        super().keyPressEvent(event)

    def mouseReleaseEvent(self, event):  # noqa: N802 (Qt API)
        super().mouseReleaseEvent(event)
        self._moved = self._typing = False
        if not self.lineEdit().hasSelectedText():
            self.setSelectedSection(self.currentSection())

    def focusInEvent(self, event):  # noqa: N802 (Qt API)
        super().focusInEvent(event)
        self._moved = self._typing = False
        # after Qt has placed the cursor for a click; the field may be gone by then
        QTimer.singleShot(0, self, self._select_after_focus)

    def _select_after_focus(self) -> None:
        if self.hasFocus() and not self.lineEdit().hasSelectedText():
            self.setSelectedSection(self.currentSection())


def utc_datetime_edit(t: float, seconds: bool = False) -> QDateTimeEdit:
    """A date-time field shown and edited in UTC (evidence is in UTC), with a calendar, that
    takes typed digits."""
    w = TypedDateTimeEdit()
    w.setTimeZone(QTimeZone.utc())
    w.setDisplayFormat("yyyy-MM-dd HH:mm:ss 'UTC'" if seconds else "yyyy-MM-dd HH:mm 'UTC'")
    w.setCalendarPopup(True)
    w.setDateTime(QDateTime.fromSecsSinceEpoch(int(t), QTimeZone.utc()))
    return w
