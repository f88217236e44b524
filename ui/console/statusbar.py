"""The status bar: feed health (connected or lost, messages per second, lag), the operator's
name, training speed and the clock. Grey and quiet while all is well; the feed state turns to
``▲ FEED LOST`` (shape, word and colour) when the feed is down."""
from __future__ import annotations

import datetime as dt

from PySide6.QtWidgets import QLabel, QStatusBar


class ConsoleStatusBar(QStatusBar):
    def __init__(self, operator: str, tz=None, training: bool = False, parent=None):
        super().__init__(parent)
        self.tz = tz or dt.timezone.utc
        self.feed = QLabel("feed: starting")
        self.rate = QLabel("— msg/s")
        self.lag = QLabel("lag —")
        self.counts = QLabel("")
        self.operator = QLabel(f"Operator: {operator}")
        self.mode = QLabel("TRAINING" if training else "LIVE")
        self.clock = QLabel("--:--:--")
        for w in (self.feed, self.rate, self.lag, self.counts):
            self.addWidget(w)
        for w in (self.mode, self.operator, self.clock):
            self.addPermanentWidget(w)
        self.feed.setAccessibleName("Feed state")
        self.clock.setAccessibleName("Clock")
        self.connected: bool | None = None

    def update_stats(self, s: dict) -> None:
        connected = bool(s.get("connected"))
        if connected != self.connected:
            self.connected = connected
            self.feed.setText("● feed connected" if connected else "▲ FEED LOST")
            self.feed.setObjectName("" if connected else "feedLost")
            self.feed.style().unpolish(self.feed)
            self.feed.style().polish(self.feed)
        self.rate.setText(f"{s.get('msgs_per_s', 0):,.0f} msg/s")
        lag = s.get("lag_s", 0.0)
        self.lag.setText(f"lag {lag:.1f} s")
        self.counts.setText(f"{s.get('messages', 0):,} msgs · {s.get('rejected', 0):,} rejected")
        if "speed" in s and self.mode.text().startswith("TRAINING"):
            self.mode.setText(f"TRAINING ×{s['speed']:g}")

    def set_time(self, now: float) -> None:
        d = dt.datetime.fromtimestamp(now, self.tz)
        self.clock.setText(d.strftime("%a %d %b  %H:%M:%S %Z"))
