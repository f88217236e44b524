"""The acknowledge dialog: an action code and a note, the note required for critical and high.

Acknowledging says "an operator has taken this alert and done something about it"; the action
code says what. The dialog only collects and validates; the queue controller writes the result
to the store's acknowledgement log under the operator's name. The heading's offender name and
zone are data, escaped through ``ui.text.rich``. Under the heading, the location the operator
reads out to the police: the street and borough of the tag's last fix (and of the alert's fix,
when it differs), as plain text in a label that can be selected and copied.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QPlainTextEdit

from ui.console.formdialog import lay_out_form_dialog
from monitorapp.engine.alerts import Alert
from ui.console.alertmodel import TYPE_TEXT
from ui.text import plain_label, rich, rich_label
from ui.theme import PRIORITY_TEXT

ACTION_CODES: tuple[tuple[str, str], ...] = (
    ("contacted_subject", "Contacted the subject"),
    ("contacted_probation", "Contacted probation"),
    ("police_informed", "Police informed"),
    ("false_alarm_gps", "False alarm: GPS"),
    ("device_fault", "Device fault"),
    ("other", "Other"),
)
ACTION_LABEL = dict(ACTION_CODES)
NOTE_REQUIRED = frozenset({"critical", "high"})


def ack_problem(priority: str, action: str | None, note: str) -> str | None:
    """Why an acknowledgement cannot be recorded as given, or None when it can."""
    if action not in ACTION_LABEL:
        return "Choose an action code."
    if priority in NOTE_REQUIRED and not note.strip():
        return f"A note is required for a {priority} alert."
    if action == "other" and not note.strip():
        return "Say what was done in the note (action 'Other')."
    return None


class AckDialog(QDialog):
    """Collects (action code, note) for one alert."""

    def __init__(self, alert: Alert, offender_label: str = "", parent=None, *, location: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Acknowledge alert")
        self.setModal(True)
        self.alert = alert
        head = rich_label(rich("<b>{priority}</b> — {type}<br>{who}{zone}",
                               priority=PRIORITY_TEXT[alert.priority], type=TYPE_TEXT.get(alert.type, alert.type),
                               who=offender_label or alert.offender or "system",
                               zone=f" · zone {alert.zone}" if alert.zone else ""))
        self.location = plain_label(location or "no fix with an address")
        self.location.setObjectName("ackLocation")
        self.location.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.location.setAccessibleName("Location")
        self.action = QComboBox()
        self.action.addItem("— choose —", None)
        for i, (code, label) in enumerate(ACTION_CODES, start=1):
            self.action.addItem(f"{i}  {label}", code)
        self.action.setAccessibleName("Action code")
        self.note = QPlainTextEdit()
        self.note.setPlaceholderText("What was done, who was contacted"
                                     + (" (required)" if alert.priority in NOTE_REQUIRED else " (optional)"))
        self.note.setAccessibleName("Note")
        self.note.setTabChangesFocus(True)
        form = QFormLayout()
        form.addRow("Location:", self.location)
        form.addRow("&Action:", self.action)
        form.addRow("&Note:", self.note)
        self.problem, self.buttons = lay_out_form_dialog(self, form, "Acknowledge", head)
        self.action.currentIndexChanged.connect(self._validate)
        self.note.textChanged.connect(self._validate)
        self._validate()
        self.action.setFocus()

    def values(self) -> tuple[str, str]:
        return self.action.currentData(), self.note.toPlainText().strip()

    def _validate(self) -> None:
        action, note = self.values()
        problem = ack_problem(self.alert.priority, action, note)
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)

    def accept(self) -> None:
        action, note = self.values()
        if ack_problem(self.alert.priority, action, note) is None:
            super().accept()
