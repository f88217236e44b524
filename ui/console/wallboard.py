"""The wall board: an overview of the console for the room, on a wall screen or a second
monitor (View ▸ Wall board, Ctrl+Shift+W).

Read from across the room, so large and few: per priority the number of unacknowledged alerts
(and how many are open), the feed health as the status bar says it, and the oldest alert still
waiting for acknowledgement with how long it has waited (in training, "■ SCENARIO ENDED at 12:30"
in grey once the scenario's feed is over). No names, no notes, no map: a wall
screen is seen by visitors too (data minimisation), and the console is where alerts are handled.
Nothing on it is interactive; it is refreshed by the main window's tick.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from ui.console.alertmodel import TYPE_TEXT, fmt_span
from ui.theme import LIGHT, PRIORITY_TEXT, Palette

PRIORITIES = ("critical", "high", "medium", "low")


class WallBoard(QWidget):
    """A separate top-level window; ``refresh(model, status_bar, now)`` updates it."""

    def __init__(self, training: bool = False, parent=None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setObjectName("wallboard")
        self.setWindowTitle(("TRAINING — " if training else "") + "Monitoring — wall board")
        self.palette_ = LIGHT
        self.mode = QLabel("TRAINING — simulated feed" if training else "LIVE")
        self.mode.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.counts: dict[str, QLabel] = {}
        self.words: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(24)
        for col, p in enumerate(PRIORITIES):
            word = QLabel(PRIORITY_TEXT[p])
            word.setAlignment(Qt.AlignmentFlag.AlignCenter)
            n = QLabel("0")
            n.setAlignment(Qt.AlignmentFlag.AlignCenter)
            n.setAccessibleName(f"{p} unacknowledged")
            self.words[p], self.counts[p] = word, n
            grid.addWidget(word, 0, col)
            grid.addWidget(n, 1, col)
        self.open_line = QLabel("")
        self.open_line.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.feed = QLabel("feed: starting")
        self.feed.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.feed.setAccessibleName("Feed state")
        self.oldest = QLabel("")
        self.oldest.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.oldest.setAccessibleName("Oldest unacknowledged")
        self.clock = QLabel("")
        self.clock.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(24, 16, 24, 16)
        lay.addWidget(self.mode)
        lay.addLayout(grid, 3)
        lay.addWidget(self.open_line)
        lay.addWidget(self.oldest, 1)
        lay.addWidget(self.feed, 1)
        lay.addWidget(self.clock)
        self.resize(1100, 620)
        self._state: dict[str, bool] = {}
        self.set_palette(LIGHT)

    def set_palette(self, p: Palette) -> None:
        self.palette_ = p
        self.setStyleSheet(f"QWidget#wallboard {{ background: {p.window}; }}"
                           f" QLabel {{ color: {p.text}; background: transparent; }}")
        self.mode.setStyleSheet(f"font-size: 20pt; font-weight: bold; color: {p.dim_text if self.mode.text() == 'LIVE' else p.watermark};")
        self.open_line.setStyleSheet(f"font-size: 18pt; color: {p.dim_text};")
        self.clock.setStyleSheet(f"font-size: 22pt; color: {p.dim_text};")
        self._state = {}          # restyle everything on the next refresh

    def _style(self, key: str, widget: QLabel, css: str) -> None:
        if self._state.get(key) != css:
            self._state[key] = css
            widget.setStyleSheet(css)

    def refresh(self, model, status_bar, now: float) -> None:
        p = self.palette_
        counts = model.counts()
        open_parts = []
        for pr in PRIORITIES:
            c = counts.get(pr, {"unack": 0, "open": 0})
            self.counts[pr].setText(str(c["unack"]))
            hot = c["unack"] > 0
            colour = p.priority[pr] if hot else p.dim_text
            self._style(f"n-{pr}", self.counts[pr],
                        f"font-size: 96pt; font-weight: bold; color: {colour};")
            self._style(f"w-{pr}", self.words[pr],
                        f"font-size: 24pt; font-weight: bold; color: {colour};")
            open_parts.append(f"{pr}: {c['open']} open")
        self.open_line.setText("unacknowledged above · " + " · ".join(open_parts))
        row = model.oldest_unacknowledged()
        if row is None:
            self.oldest.setText("No alert waiting for acknowledgement")
            self._style("oldest", self.oldest, f"font-size: 26pt; color: {p.dim_text};")
        else:
            a = row.alert
            self.oldest.setText(f"Oldest unacknowledged: {PRIORITY_TEXT[a.priority]} "
                                f"{TYPE_TEXT.get(a.type, a.type)} — waiting {fmt_span(now - a.raised_at, precise=True)}")
            self._style("oldest", self.oldest,
                        f"font-size: 30pt; font-weight: bold; color: {p.priority[a.priority]};")
        text = status_bar.feed.text()
        self.feed.setText(text)
        # a training scenario that ended by design is said in grey, like a healthy feed
        bad = not text.startswith("●") and getattr(status_bar, "ended_at", None) is None
        self._style("feed", self.feed, f"font-size: 30pt; font-weight: bold; color: "
                                       f"{p.priority['critical'] if bad else p.dim_text};")
        self.clock.setText(status_bar.clock.text())
