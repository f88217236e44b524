"""Trail playback for one offender: where they went, fix by fix, with a time slider.

``PlaybackPanel`` loads an offender's (or a tag's) stored fixes over a time range through
``monitorapp.crime.trail.trail`` (single-fix jumps marked) and plays them back: a slider over the
fixes, play and pause, a speed (×1 to ×600 of real time), the map following the current fix
(the trail up to it, its accuracy circle, gaps over 2 minutes dashed and over 10 minutes broken,
as the console's map draws a selected tag). Beside the map, a plan of the whole trail in metres
with each fix shaded by its accuracy (darker is more precise; shades of grey, since accuracy is
not an alarm), gaps over 10 minutes drawn as dotted lines and jumps as crosses. Loading a trail
is audited (who looked at whose movements, over which period).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton,
                               QSlider, QSplitter, QVBoxLayout, QWidget)

from monitorapp.feed.timeutil import fmt_time
from monitorapp.crime.trail import latest_fix_time, trail as read_trail
from ui.console.formdialog import utc_datetime_edit
from ui.roles import require
from ui.text import plain_label
from ui.theme import current, style_plot

GAP_S = 600.0
SPEEDS = (1, 10, 60, 600)
TICK_MS = 100
ACC_BANDS = ((10.0, "#1c1c1c", "≤ 10 m"), (30.0, "#5a5a5a", "≤ 30 m"), (100.0, "#8f8f8f", "≤ 100 m"),
             (math.inf, "#c4c4c4", "> 100 m"))


# At night the shades run the other way: the most accurate fixes the brightest on dark.
ACC_BANDS_DARK = ((10.0, "#ececec", "≤ 10 m"), (30.0, "#b4b4b4", "≤ 30 m"), (100.0, "#7c7c7c", "≤ 100 m"),
                  (math.inf, "#4c4c4c", "> 100 m"))


def acc_bands():
    return ACC_BANDS_DARK if current().name == "dark" else ACC_BANDS


def accuracy_shade(acc: float) -> str:
    bands = acc_bands()
    for limit, shade, _ in bands:
        if acc <= limit:
            return shade
    return bands[-1][1]


def gaps(fixes: list[dict], gap_s: float = GAP_S) -> list[tuple[int, float]]:
    """(index of the fix after the gap, seconds) for every gap over ``gap_s``."""
    return [(i, fixes[i]["t"] - fixes[i - 1]["t"]) for i in range(1, len(fixes))
            if fixes[i]["t"] - fixes[i - 1]["t"] > gap_s]


class PlaybackPanel(QWidget):
    """The playback view (see the module docstring)."""

    positionChanged = Signal(int)         # index of the current fix
    loaded = Signal(int)                  # number of fixes loaded

    def __init__(self, store, session, *, map_view=None, embed_map: bool = True, parent=None):
        super().__init__(parent)
        require(session.role, "playback")
        self.store, self.session, self.map = store, session, map_view
        self.fixes: list[dict] = []
        self.gap_list: list[tuple[int, float]] = []
        self._zoomed = False
        self.index = -1
        self.clock_t = 0.0
        self.setObjectName("playbackPanel")
        self.setWindowTitle("Trail playback")
        conn = store.reader()
        last = latest_fix_time(store)

        self.who = QComboBox()
        try:
            rows = conn.execute(
                "SELECT o.offender_id, o.name, a.device FROM offenders o LEFT JOIN assignments a"
                " ON a.offender_id = o.offender_id AND a.valid_to IS NULL ORDER BY o.offender_id").fetchall()
        except Exception:      # noqa: BLE001 - a login that may not see tag assignments (police)
            rows = [(oid, name, None) for oid, name in conn.execute(
                "SELECT offender_id, name FROM offenders ORDER BY offender_id")]
        for oid, name, dev in rows:
            self.who.addItem(f"{oid} {name or ''} ({dev or 'tag not shown'})", oid)
        self.t_from, self.t_to = utc_datetime_edit(last - 6 * 3600), utc_datetime_edit(last)
        self.load_button = QPushButton("Load trail")
        # on the centre's record a login that may not read positions (a police analyst, a
        # supervisor) reads a trail through the server's audited path: a reference and a reason
        self.needs_reason = hasattr(store, "crime_reader") and not store.reads_fixes
        self.ref, self.reason = QLineEdit(), QLineEdit()
        self.ref.setPlaceholderText("reference (e.g. MET/2026/0415)")
        self.reason.setPlaceholderText("reason for looking at this trail")
        top = QHBoxLayout()
        for w in (QLabel("Offender"), self.who, QLabel("from"), self.t_from, QLabel("to"), self.t_to):
            top.addWidget(w)
        if self.needs_reason:
            for w in (QLabel("Ref"), self.ref, QLabel("Reason"), self.reason):
                top.addWidget(w)
            self.reason.returnPressed.connect(lambda: self.load())
        top.addWidget(self.load_button)
        top.addStretch(1)

        self.play_button = QPushButton("▶ Play")
        self.play_button.setCheckable(True)
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(f"×{s}", s)
        self.speed.setCurrentIndex(2)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setEnabled(False)
        self.position = plain_label("Load a trail to play it back.")
        self.position.setObjectName("playbackPosition")
        self.position.setStyleSheet("font-size: 14pt;")
        controls = QHBoxLayout()
        controls.addWidget(self.play_button)
        controls.addWidget(QLabel("speed"))
        controls.addWidget(self.speed)
        controls.addWidget(self.slider, 1)

        self.plan = pg.PlotWidget()
        self.plan.setObjectName("trailPlan")
        pal = current()                  # dark at night: the plan follows the theme
        self.plan.setAspectLocked(True)
        self.plan.showGrid(x=True, y=True, alpha=0.2)
        self.plan.setLabel("bottom", "east (m)")
        self.plan.setLabel("left", "north (m)")
        style_plot(self.plan, pal)
        self.track_line = pg.PlotDataItem(pen=pg.mkPen(pal.dim_text, width=1), connect="finite")
        self.gap_lines = pg.PlotDataItem(pen=pg.mkPen(pal.text, width=2, style=Qt.PenStyle.DotLine),
                                         connect="pairs")
        self.dots = pg.ScatterPlotItem(size=7, pen=pg.mkPen(pal.border, width=0.5))
        self.jumps = pg.ScatterPlotItem(size=12, symbol="x", brush=pg.mkBrush(pal.text), pen=None)
        self.current = pg.ScatterPlotItem(size=22, pen=pg.mkPen(pal.priority["low"], width=3), brush=None)
        for item in (self.track_line, self.gap_lines, self.dots, self.jumps, self.current):
            self.plan.addItem(item)
        legend = QLabel("Accuracy: " + "   ".join(f"<span style='color:{c}'>●</span> {t}"
                                                   for _, c, t in acc_bands())
                        + "   · dotted: gap over 10 min · ×: single-fix jump")
        self.gap_summary = plain_label()

        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.plan, 1)
        ll.addWidget(legend)
        ll.addWidget(self.gap_summary)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        if map_view is not None and embed_map:
            split.addWidget(map_view)
            split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(controls)
        lay.addWidget(self.position)
        lay.addWidget(split, 1)

        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)
        self.load_button.clicked.connect(lambda: self.load())
        self.play_button.toggled.connect(self.set_playing)
        self.slider.valueChanged.connect(self.seek)

    # ---- loading ------------------------------------------------------------------------------
    def load(self, who: str | None = None, t_from: float | None = None, t_to: float | None = None) -> int:
        require(self.session.role, "playback")
        who = who or self.who.currentData()
        t0 = float(self.t_from.dateTime().toSecsSinceEpoch() if t_from is None else t_from)
        t1 = float(self.t_to.dateTime().toSecsSinceEpoch() if t_to is None else t_to)
        self.set_playing(False)
        ref, reason = self.ref.text().strip(), self.reason.text().strip()
        if self.needs_reason and not (ref and reason):
            self.position.setText("A reference number and a reason are required to load a trail "
                                  "(they are recorded with the read in the centre's audit log).")
            return 0
        try:
            self.fixes = read_trail(self.store, who, t0, t1, ref=ref or None, reason=reason or None)
        except ValueError as e:
            self.position.setText(f"Cannot load: {e}")
            return 0
        self.store.audit(self.session.username, "trail_playback",
                         {"who": who, "from": fmt_time(t0), "to": fmt_time(t1), "fixes": len(self.fixes)})
        self.who_id = who
        if (k := self.who.findData(who)) >= 0:
            self.who.setCurrentIndex(k)
        self._zoomed = False
        self._draw_plan()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(self.fixes) - 1))
        self.slider.setValue(0)
        self.slider.blockSignals(False)
        self.slider.setEnabled(bool(self.fixes))
        self.index = -1
        if self.fixes:
            self.seek(0)
        else:
            self.position.setText(f"No fixes for {who} between {fmt_time(t0)} and {fmt_time(t1)}.")
        self.loaded.emit(len(self.fixes))
        return len(self.fixes)

    def _xy(self) -> tuple[np.ndarray, np.ndarray]:
        lat = np.array([f["lat"] for f in self.fixes])
        lon = np.array([f["lon"] for f in self.fixes])
        lat0, lon0 = lat[0], lon[0]
        return (lon - lon0) * 111_320.0 * math.cos(math.radians(lat0)), (lat - lat0) * 111_320.0

    def _draw_plan(self) -> None:
        if not self.fixes:
            for item in (self.track_line, self.gap_lines, self.dots, self.jumps, self.current):
                item.setData([], [])
            self.gap_summary.setText("")
            return
        x, y = self._xy()
        self.x, self.y = x, y
        g = gaps(self.fixes)
        gx, gy = [], []
        for i, _ in g:
            gx += [x[i - 1], x[i]]
            gy += [y[i - 1], y[i]]
        connect = np.ones(len(x), dtype=bool)         # the line breaks at every gap
        for i, _ in g:
            connect[i - 1] = False
        self.track_line.setData(x, y, connect=connect)
        self.gap_lines.setData(gx, gy)
        self.dots.setData(x=x, y=y, brush=[pg.mkBrush(accuracy_shade(f["acc"])) for f in self.fixes])
        jx = [x[i] for i, f in enumerate(self.fixes) if f["jump"]]
        jy = [y[i] for i, f in enumerate(self.fixes) if f["jump"]]
        self.jumps.setData(jx, jy)
        self.gap_list = g
        if g:
            longest = max(s for _, s in g)
            self.gap_summary.setText(f"{len(g)} gap{'s' if len(g) != 1 else ''} over 10 minutes, the longest "
                                     f"{longest / 60:.0f} min (first after {self.fixes[g[0][0] - 1]['time']})")
        else:
            self.gap_summary.setText("No gap over 10 minutes.")

    # ---- playing ------------------------------------------------------------------------------
    def set_playing(self, on: bool) -> None:
        on = bool(on) and bool(self.fixes)
        if self.play_button.isChecked() != on:
            self.play_button.blockSignals(True)
            self.play_button.setChecked(on)
            self.play_button.blockSignals(False)
        self.play_button.setText("❚❚ Pause" if on else "▶ Play")
        if on:
            if self.index >= len(self.fixes) - 1:
                self.seek(0)
            self.timer.start()
        else:
            self.timer.stop()

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def _tick(self) -> None:
        self.clock_t += TICK_MS / 1000.0 * float(self.speed.currentData())
        i = self.index
        while i + 1 < len(self.fixes) and self.fixes[i + 1]["t"] <= self.clock_t:
            i += 1
        if i != self.index:
            self.slider.setValue(i)          # seek() through valueChanged
        if i >= len(self.fixes) - 1:
            self.set_playing(False)

    def seek(self, i: int) -> None:
        if not self.fixes:
            return
        i = max(0, min(int(i), len(self.fixes) - 1))
        if self.slider.value() != i:
            self.slider.blockSignals(True)
            self.slider.setValue(i)
            self.slider.blockSignals(False)
        jumped = abs(i - self.index) > 1 or not self.playing
        self.index = i
        f = self.fixes[i]
        if jumped:
            self.clock_t = f["t"]
        self.current.setData([self.x[i]], [self.y[i]])
        after_gap = [s for k, s in self.gap_list if k == i]
        note = f" · after a gap of {after_gap[0] / 60:.0f} min" if after_gap else ""
        note += " · single-fix jump (not a position)" if f["jump"] else ""
        self.position.setText(f"{f['time'].replace('T', ' ').replace('Z', ' UTC')} · fix {i + 1} of "
                              f"{len(self.fixes)} · ±{f['acc']:.0f} m · {f['device']}{note}")
        if self.map is not None:
            trail = [{"lat": p["lat"], "lon": p["lon"], "t": p["t"], "acc": p["acc"]}
                     for p in self.fixes[:i + 1] if not p["jump"]]
            self.map.select_device(f["device"], trail, now=f["t"])
            self.map.pan_to(f["lat"], f["lon"], None if self._zoomed else 16)
            self._zoomed = True
        self.positionChanged.emit(i)

    def shutdown(self) -> None:
        self.timer.stop()

    def closeEvent(self, event):  # noqa: N802 (Qt API)
        self.shutdown()
        super().closeEvent(event)
