"""The shape every small dialog of the console shares: an optional heading, a form, a line
saying what is still wrong, and OK/Cancel with OK named for what it does."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget


def lay_out_form_dialog(dialog: QDialog, form: QFormLayout, ok_text: str,
                        head: QWidget | None = None) -> tuple[QLabel, QDialogButtonBox]:
    """Lay ``dialog`` out; return its problem line and its buttons."""
    problem = QLabel()
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
