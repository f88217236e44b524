"""Text from data is text: the one way data goes into Qt rich text, and plain text elsewhere.

Offender names, zone names (which also arrive from other workstations over the broker), notes,
operators, reasons, alert evidence, scenario and file names are data. Shown in a widget that
renders markup, a zone named ``<b>Open alerts: none</b><!--`` would draw a fake heading and hide
everything after it. So:

- Where a widget needs no markup, it shows plain text: ``plain_label()`` or ``set_plain()`` for a
  QLabel (whose default, ``Qt.AutoText``, renders anything that *looks* like HTML as HTML),
  ``warn()`` for a message box, ``setPlainText`` for a text edit.
- Where markup is wanted (bold headings, lists), the markup is ours and the data goes in through
  ``rich(template, **values)``, which escapes every value; ``join()`` builds lists of fragments.
  What ``rich`` returns is ``Markup``: inserting it into another ``rich`` does not escape it twice.
- Tool tips cannot be told their format (``QToolTip`` guesses), so ``tooltip()`` turns plain
  text into rich text that shows it literally, line breaks kept.
- pyqtgraph's labels, titles and legends are HTML too: ``escape()`` what goes into them.

The map page escapes on its side (``ui.map``); the PDF report draws with ``QPainter.drawText``,
which never interprets markup.
"""
from __future__ import annotations

import html
from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QWidget


class Markup(str):
    """Rich text whose markup is ours and whose data is escaped: inserted as is, never again."""


def escape(value) -> Markup:
    """``value`` as rich text that shows it literally (``Markup`` is passed through)."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def rich(template: str, /, **values) -> Markup:
    """``template`` (our markup, with ``str.format`` fields) filled with escaped ``values``.

    Numbers are passed through as numbers, so format specs such as ``{n:g}`` work; everything
    else is escaped unless it is already ``Markup``. The template itself must never be data.
    """
    safe = {k: v if isinstance(v, (int, float)) and not isinstance(v, bool) else escape(v)
            for k, v in values.items()}
    return Markup(template.format(**safe))


def join(separator: str, parts: Iterable) -> Markup:
    """The ``parts`` (escaped unless ``Markup``) joined by ``separator`` (our markup)."""
    return Markup(separator.join(escape(p) for p in parts))


def set_plain(label: QLabel) -> QLabel:
    """Make ``label`` show its text literally, whatever it looks like; returns it."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def plain_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A QLabel that shows data: plain text, never interpreted as markup."""
    return set_plain(QLabel(text, parent))


def rich_label(markup: Markup, parent: QWidget | None = None) -> QLabel:
    """A QLabel that renders ``markup`` (built with ``rich``) as rich text."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setText(escape(markup))
    return label


def tooltip(text: str) -> Markup:
    """Plain ``text`` (lines kept) as a tool tip that shows it literally.

    ``QToolTip`` renders its text as HTML whenever ``Qt.mightBeRichText`` says it might be; the
    returned string is always rich text, with the data escaped, so the guess never matters.
    """
    if not text:
        return Markup("")
    return Markup("<p style='white-space:pre-wrap'>" + html.escape(str(text), quote=True) + "</p>")


def warn(parent: QWidget | None, title: str, text: str) -> None:
    """A modal warning whose text is shown literally (``QMessageBox`` guesses the format too)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.exec()
