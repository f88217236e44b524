"""The status bar: feed health (connected or lost, messages per second, lag), the operator's
name, training speed and the clock. Grey and quiet while all is well; the feed state turns to
``▲ FEED LOST`` (shape, word and colour) when the feed is down, ``▲ SYSTEM FAULT — …`` naming
the part that cannot do its job, and ``▲ ENGINE STOPPED — …`` when the engine thread died:
never "feed connected" over a dead engine (spec §4 ``system_fault``)."""
from __future__ import annotations

import datetime as dt

from PySide6.QtWidgets import QLabel, QStatusBar

from ui.text import plain_label, tooltip


class ConsoleStatusBar(QStatusBar):
    def __init__(self, operator: str, tz=None, training: bool = False, parent=None):
        super().__init__(parent)
        self.tz = tz or dt.timezone.utc
        self.feed = plain_label("feed: starting")      # may quote what went wrong
        self.rate = QLabel("— msg/s")
        self.lag = QLabel("lag —")
        self.counts = QLabel("")
        self.operator = plain_label(f"Operator: {operator}")     # a name is data: ui.text
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
        """The feed label says the worst of: the engine stopped, a system fault, the feed lost;
        "feed connected" only while the engine runs and nothing is at fault."""
        connected = bool(s.get("connected"))
        down = s.get("engine_down")
        faults = s.get("faults") or []
        if down:
            text, bad = f"▲ ENGINE STOPPED — {down}", True
        elif faults:
            more = f" (+{len(faults) - 1} more)" if len(faults) > 1 else ""
            text, bad = f"▲ SYSTEM FAULT — {faults[0]}{more}", True
        else:
            text, bad = ("● feed connected", False) if connected else ("▲ FEED LOST", True)
        self.connected = connected and not bad
        if text != self.feed.text():
            self.feed.setText(text[:200])
            self.feed.setToolTip(tooltip("\n".join([down] if down else faults)))   # errors are data
            name = "feedLost" if bad else ""
            if self.feed.objectName() != name:
                self.feed.setObjectName(name)
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
