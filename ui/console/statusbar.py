"""The status bar: feed health (connected or lost, messages per second, lag), the operator's
name, training speed and the clock. Grey and quiet while all is well; the feed state turns to
``▲ FEED LOST`` (shape, word and colour) when the feed is down, ``▲ SYSTEM FAULT — …`` naming
the part that cannot do its job, and ``▲ ENGINE STOPPED — …`` when the engine thread died:
never "feed connected" over a dead engine (spec §4 ``system_fault``). A console that is a client
of the centre says ``▲ SYSTEM FAULT — decider unreachable …`` (or ``record unreachable``) while
the decider is silent, lost or stopped, and names the active decider when all is well.

Nor over silence: when nothing has arrived for ``NO_DATA_S`` (the feed's own clock) the label says
``▲ NO DATA for 5 min`` however connected the broker claims to be, and when the engine's
statistics themselves stop coming (``STATS_SILENT_S`` of wall time) it says ``▲ NO STATUS``.

A training feed that ends by design (a scenario's period is over: ``ended_at`` in the statistics)
is not a lost feed: the label says ``■ SCENARIO ENDED at 12:30`` (the simulated local time), quiet
grey, and its tool tip says how to run it again or choose another; the engine's clock stopped
there, so no ``feed_lost`` alert is raised for it.

Feed health, the operator's name and the clock are permanent widgets in a large bold font,
readable from two metres; transient messages (``showMessage``) appear in the space left of
them and never cover them."""
from __future__ import annotations

import datetime as dt
import time

from PySide6.QtWidgets import QLabel, QStatusBar

from ui.console.alertmodel import fmt_span
from ui.text import plain_label, tooltip

NO_DATA_S = 60.0          # spec §4: no message for 60 s is a lost feed
STATS_SILENT_S = 10.0     # wall seconds without statistics from the engine thread
ENDED_HELP = ("The training scenario's feed ended at {at} (simulated time), as planned: not a fault, and no "
              "feed_lost alert. The queue stays open for the trainee. To run it again or choose another: "
              "Views ▸ Training scenarios (trainers), or start main.py --demo again.")


class ConsoleStatusBar(QStatusBar):
    def __init__(self, operator: str, tz=None, training: bool = False, parent=None):
        super().__init__(parent)
        self.tz = tz or dt.timezone.utc
        self.feed = plain_label("feed: starting")      # may quote what went wrong
        self.rate = QLabel("— msg/s")
        self.lag = QLabel("lag —")
        self.counts = QLabel("")
        self.counts.setVisible(False)      # in the feed's tool tip and the rate's: room for the clock
        self.operator = plain_label(f"Operator: {operator}")     # a name is data: ui.text
        self.mode = QLabel("TRAINING" if training else "LIVE")
        self.clock = QLabel("--:--:--")
        # All permanent: showMessage() hides normal widgets, and feed health must never be hidden.
        for w in (self.feed, self.rate, self.lag, self.counts, self.mode, self.operator, self.clock):
            self.addPermanentWidget(w)
        big = self.font()
        big.setPointSize(15)
        big.setBold(True)
        for w in (self.feed, self.operator, self.clock, self.mode):
            w.setProperty("big", True)       # the theme's stylesheet says the same
            w.setFont(big)
        self.feed.setAccessibleName("Feed state")
        # a long fault never widens the window past the screen: the label may be cut, and its
        # tool tip holds the whole text (the shape and the first words say enough)
        self.feed.setMinimumWidth(240)
        # below the supported 1366 px the others may be cut too, rather than widen the window
        for w, least in ((self.rate, 40), (self.lag, 40), (self.mode, 90), (self.operator, 110),
                         (self.clock, 150)):
            w.setMinimumWidth(least)
        self.operator.setAccessibleName("Operator")
        self.clock.setAccessibleName("Clock")
        self.connected: bool | None = None
        self.no_data_s: float | None = None      # how long nothing has arrived, when it matters
        self.ended_at: float | None = None       # training: when the scenario's feed ended
        self._stats_at: float | None = None      # wall clock of the last statistics
        self._first_now: float | None = None

    def update_stats(self, s: dict) -> None:
        """The feed label says the worst of: the engine stopped, a system fault, the feed lost;
        "feed connected" only while the engine runs and nothing is at fault."""
        self._stats_at = time.monotonic()
        connected = bool(s.get("connected"))
        down = s.get("engine_down")
        faults = s.get("faults") or []
        now = s.get("now")
        if now is not None and self._first_now is None:
            self._first_now = float(now)
        last = s.get("last_msg_at") or self._first_now
        idle = (float(now) - float(last)) if now is not None and last is not None else None
        ended = s.get("ended_at")
        self.ended_at = float(ended) if ended is not None else None
        if self.ended_at is not None:           # over by design: its silence is not "no data"
            idle = None
        self.no_data_s = idle if idle is not None and idle >= NO_DATA_S else None
        silent = f" — no data for {fmt_span(idle)}" if self.no_data_s is not None else ""
        if down:
            text, bad = f"▲ ENGINE STOPPED — {down}", True
        elif faults:
            more = f" (+{len(faults) - 1} more)" if len(faults) > 1 else ""
            text, bad = f"▲ SYSTEM FAULT — {faults[0]}{more}", True
        elif self.ended_at is not None:
            text, bad = f"■ SCENARIO ENDED at {self.ended_text()}", False
        elif not connected:
            text, bad = "▲ FEED LOST" + silent, True
        elif silent:
            text, bad = f"▲ NO DATA for {fmt_span(idle)}", True
        else:     # a client of the centre names the decider, not a feed it does not have
            text, bad = s.get("ok_text") or "● feed connected", False
        self.connected = connected and not bad and self.ended_at is None
        why = "\n".join([down] if down else faults)
        if self.ended_at is not None and not why:
            why = ENDED_HELP.format(at=self.ended_text())
        self._set_feed(text, bad, why, "feedEnded" if self.ended_at is not None and not bad else None)
        self.rate.setText(f"{s.get('msgs_per_s', 0):,.0f} msg/s")
        lag = s.get("lag_s", 0.0)
        self.lag.setText(f"lag {lag:.1f} s")
        self.counts.setText(f"{s.get('messages', 0):,} msgs · {s.get('rejected', 0):,} rejected")
        self.rate.setToolTip(self.counts.text())
        if "speed" in s and self.mode.text().startswith("TRAINING"):
            self.mode.setText(f"TRAINING ×{s['speed']:g}")

    def ended_text(self) -> str:
        """The simulated local time the training feed ended, "12:30"."""
        return dt.datetime.fromtimestamp(self.ended_at, self.tz).strftime("%H:%M") if self.ended_at else ""

    def _set_feed(self, text: str, bad: bool, why: str, name: str | None = None) -> None:
        if text != self.feed.text():
            self.feed.setText(text[:200])
            self.feed.setToolTip(tooltip("\n".join(x for x in (text, why) if x)))   # errors are data
            name = name or ("feedLost" if bad else "")
            if self.feed.objectName() != name:
                self.feed.setObjectName(name)
                self.feed.style().unpolish(self.feed)
                self.feed.style().polish(self.feed)

    def set_time(self, now: float) -> None:
        d = dt.datetime.fromtimestamp(now, self.tz)
        self.clock.setText(d.strftime("%a %d %b %H:%M:%S %Z"))
        # the engine's statistics stopped coming (a stalled thread): say so, never stay green
        if self._stats_at is not None and (quiet := time.monotonic() - self._stats_at) > STATS_SILENT_S:
            self.connected = False
            self._set_feed(f"▲ NO STATUS from the engine for {fmt_span(quiet)}", True, "")
