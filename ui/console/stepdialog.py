"""The dialogs of an alert's response (issue 21): recording a step, and closing with the
protocol's mandatory steps done or a reason for skipping each.

``StepDialog`` records one step of the alert's timeline: the protocol step (the next open one
is chosen; "Other" is the free step and needs a note), what it came to (reached, call made,
message left, no answer, done, not possible), the reference number where the step asks for one
(the police incident number: required once the step is completed), and a note. The contact of
the chosen step is shown with its number, so the operator dials what the protocol asks.

``CloseStepsDialog`` is asked for when an alert is closed with mandatory steps still open: one
reason line per such step, each required, and the closing note. Both dialogs only collect and
check; the store decides (``localdb.handling``, the server's functions), and refuses what its
rules refuse whatever a dialog let through. Every value shown is data: headings go through
``ui.text.rich``; reasons and notes are plain-text fields.
"""
from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLineEdit,
                               QPlainTextEdit)

from monitorapp.engine.alerts import Alert
from monitorapp.response.protocols import COMPLETING, OTHER, OUTCOME_TEXT, STEP_OUTCOMES
from ui.console.alertmodel import TYPE_TEXT
from ui.console.formdialog import lay_out_form_dialog
from ui.text import plain_label, rich, rich_label
from ui.theme import PRIORITY_TEXT

STATE_MARK = {"done": "✔", "skipped": "⤼", "tried": "…", "due": "☐", "overdue": "⚠"}


def step_problem(step: dict | None, outcome: str | None, reference: str, note: str) -> str | None:
    """Why a step cannot be recorded as given (the store's rules, explained), or None."""
    if step is None:
        return "Choose the step."
    if outcome not in STEP_OUTCOMES:
        return "Choose what it came to."
    if step["id"] == OTHER and not note.strip():
        return "Say what was done in the note (step 'Other')."
    if step.get("reference") and outcome in COMPLETING and not reference.strip():
        return "Enter the reference number you were given."
    return None


def _head(alert: Alert, who: str):
    return rich_label(rich("<b>{priority}</b> — {type}<br>{who}",
                           priority=PRIORITY_TEXT.get(alert.priority, alert.priority),
                           type=TYPE_TEXT.get(alert.type, alert.type), who=who or alert.offender or ""))


class StepDialog(QDialog):
    """Collects (step id, outcome, reference, note) for one step of an alert's response."""

    def __init__(self, alert: Alert, checklist: list[dict], contacts: dict[str, dict] | None = None,
                 who: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Record a step")
        self.setModal(True)
        self.alert = alert
        self.contacts = contacts or {}
        self.steps = {c["id"]: c for c in checklist}
        self.step = QComboBox()
        self.step.setAccessibleName("Step")
        for c in checklist:
            mark = STATE_MARK.get(c["state"], "")
            self.step.addItem(f"{mark} {c['title']}" + (" (mandatory)" if c["mandatory"] else ""), c["id"])
        self.step.addItem("Other (say what in the note)", OTHER)
        self.steps[OTHER] = {"id": OTHER, "title": "Other", "contact": None, "reference": False}
        first_open = next((i for i, c in enumerate(checklist) if c["state"] in ("due", "overdue", "tried")),
                          len(checklist))         # all done: "Other"
        self.step.setCurrentIndex(first_open)
        self.contact = plain_label()
        self.contact.setObjectName("stepContact")
        self.outcome = QComboBox()
        self.outcome.setAccessibleName("Outcome")
        self.outcome.addItem("— choose —", None)
        for i, o in enumerate(STEP_OUTCOMES, start=1):
            self.outcome.addItem(f"{i}  {OUTCOME_TEXT[o]}", o)
        self.reference = QLineEdit()
        self.reference.setAccessibleName("Reference")
        self.reference.setMaxLength(200)
        self.note = QPlainTextEdit()
        self.note.setAccessibleName("Note")
        self.note.setTabChangesFocus(True)
        self.note.setPlaceholderText("Who you spoke to, what was said (optional, except for Other)")
        form = QFormLayout()
        form.addRow("&Step:", self.step)
        form.addRow("Contact:", self.contact)
        form.addRow("&Outcome:", self.outcome)
        form.addRow("&Reference:", self.reference)
        form.addRow("&Note:", self.note)
        self.problem, self.buttons = lay_out_form_dialog(self, form, "Record step", _head(alert, who))
        for sig in (self.step.currentIndexChanged, self.outcome.currentIndexChanged):
            sig.connect(self._validate)
        self.reference.textChanged.connect(self._validate)
        self.note.textChanged.connect(self._validate)
        self._validate()
        self.outcome.setFocus()

    def values(self) -> tuple[str, str, str, str]:
        return (self.step.currentData(), self.outcome.currentData(),
                self.reference.text().strip(), self.note.toPlainText().strip())

    def _validate(self) -> None:
        sid, outcome, ref, note = self.values()
        step = self.steps.get(sid)
        c = self.contacts.get((step or {}).get("contact") or "")
        self.contact.setText(f"{c['label']}: {c['name']} {c.get('phone') or c.get('email') or ''}".strip()
                             if c else "—")
        wants_ref = bool(step and step.get("reference"))
        self.reference.setPlaceholderText("required once reached (incident number)" if wants_ref
                                          else "optional")
        problem = step_problem(step, outcome, ref, note)
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)

    def accept(self) -> None:
        sid, outcome, ref, note = self.values()
        if step_problem(self.steps.get(sid), outcome, ref, note) is None:
            super().accept()


class CloseStepsDialog(QDialog):
    """A reason for each mandatory step still open, and the closing note."""

    def __init__(self, alert: Alert, open_steps: list[dict], who: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Close alert: mandatory steps not done")
        self.setModal(True)
        self.reasons: dict[str, QLineEdit] = {}
        self.titles = {s["id"]: s["title"] for s in open_steps}
        form = QFormLayout()
        for s in open_steps:
            edit = QLineEdit()
            edit.setObjectName(f"skip_{s['id']}")
            edit.setAccessibleName(f"Reason for skipping: {s['title']}")
            edit.setPlaceholderText("why this step was not done (required)")
            edit.setMaxLength(500)
            edit.textChanged.connect(self._validate)
            self.reasons[s["id"]] = edit
            form.addRow(plain_label(f"{s['title']}:"), edit)
        self.note = QLineEdit()
        self.note.setAccessibleName("Closing note")
        self.note.setPlaceholderText("how it ended (optional)")
        form.addRow("Closing &note:", self.note)
        head = _head(alert, who)
        head.setText(head.text() + "<br>" + rich("These mandatory steps of the protocol were not "
                                                 "completed; say why to close the alert."))
        self.problem, self.buttons = lay_out_form_dialog(self, form, "Close alert", head)
        self._validate()
        if self.reasons:
            next(iter(self.reasons.values())).setFocus()

    def values(self) -> tuple[dict[str, str], str]:
        return ({sid: e.text().strip() for sid, e in self.reasons.items()}, self.note.text().strip())

    def _problem(self) -> str | None:
        missing = [sid for sid, e in self.reasons.items() if not e.text().strip()]
        return (f"Give a reason for skipping: {'; '.join(self.titles[m] for m in missing)}"
                if missing else None)

    def _validate(self) -> None:
        problem = self._problem()
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)

    def accept(self) -> None:
        if self._problem() is None:
            super().accept()
