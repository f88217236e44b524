"""The details panel for the selected offender or alert: who, what the order requires, the tag's
state, the open alerts, and pyqtgraph charts of the last 24 hours (distance to the nearest
exclusion-zone boundary with its zero line, speed, battery).

The engine worker computes the figures in its own thread (``EngineWorker.request_details``);
this panel only draws the dictionary it gets back. Every value in it is data (names, zone names
from other workstations, boroughs): the title is plain text and the body is built with
``ui.text.rich``, which escapes each value.

Speeds are in miles per hour (what operators and police use; the tool tip gives m/s). Ages are
unambiguous ("4 min ago"). A stale tag (no fix for max(5 min, 3 fix intervals)) says so in
words and the tag line is dimmed and italic (ISA-101). No internal alert ids are shown: an
open alert is its priority, type and age.
"""
from __future__ import annotations

import datetime as dt
import math

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from ui.console.alertmodel import TYPE_TEXT, fmt_age
from ui.console.caseloadlist import STALE_MARK, is_stale
from ui.text import Markup, join, plain_label, rich
from ui.theme import LIGHT, PRIORITY_TEXT, Palette

MPH_PER_MS = 2.236936       # 1 m/s in miles per hour


def _age_of(extra: list, now: float) -> str:
    """" · 4 min ago" from an open alert's optional start time (the third item after priority
    and type; an alert id there, from older callers, is not shown)."""
    start = extra[1] if len(extra) > 1 else None
    return f" · {fmt_age(now - start)}" if isinstance(start, (int, float)) else ""


def _schedule_text(schedule) -> str:
    if not schedule:
        return "always"
    parts = []
    for w in schedule:
        days = w.get("days")
        days = "daily" if days == "daily" else ",".join(days or [])
        parts.append(f"{days} {w.get('start')}–{w.get('end')}")
    return "; ".join(parts)


class DetailsPanel(QWidget):
    def __init__(self, parent=None, tz=None):
        super().__init__(parent)
        self.tz = tz or dt.timezone.utc
        self.title = plain_label("Select an alert or an offender")
        self.title.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.title.setWordWrap(True)
        self.body = QLabel("")
        self.body.setTextFormat(Qt.TextFormat.RichText)
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(360)
        self.plots.setVisible(False)      # no empty axes until an offender is shown
        self.dist = self.plots.addPlot(row=0, col=0, axisItems={"bottom": pg.DateAxisItem()})
        self.speed = self.plots.addPlot(row=1, col=0, axisItems={"bottom": pg.DateAxisItem()})
        self.batt = self.plots.addPlot(row=2, col=0, axisItems={"bottom": pg.DateAxisItem()})
        for p, label in ((self.dist, "Distance to exclusion boundary (m)"), (self.speed, "Speed (mph)"),
                         (self.batt, "Battery (%)")):
            p.setTitle(label)
            p.showGrid(x=True, y=True, alpha=0.2)
            p.setMouseEnabled(x=True, y=False)
        self.speed.setXLink(self.dist)
        self.plots.setToolTip("Speed in miles per hour (1 mph = 0.447 m/s; 10 m/s = 22.4 mph)")
        self.batt.setXLink(self.dist)
        self.zero = pg.InfiniteLine(pos=0, angle=0, movable=False, label="boundary",
                                    labelOpts={"position": 0.05})
        self.dist.addItem(self.zero)
        self.curves = {"dist": self.dist.plot([], []), "speed": self.speed.plot([], []),
                       "batt": self.batt.plot([], [])}
        self.batt.setYRange(0, 100)
        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.addWidget(self.title)
        lay.addWidget(self.body)
        lay.addWidget(self.plots, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.palette = LIGHT
        self.offender: str | None = None
        self.set_palette(LIGHT)

    def set_palette(self, p: Palette) -> None:
        self.palette = p
        self.plots.setBackground(p.base)
        pen = pg.mkPen(p.text, width=2)
        for c in self.curves.values():
            c.setPen(pen)
        self.zero.setPen(pg.mkPen(p.priority["critical"], width=2, style=Qt.PenStyle.DashLine))
        for plot in (self.dist, self.speed, self.batt):
            for ax in ("left", "bottom"):
                plot.getAxis(ax).setPen(pg.mkPen(p.dim_text))
                plot.getAxis(ax).setTextPen(pg.mkPen(p.text))
            plot.titleLabel.setText(plot.titleLabel.text, color=p.text)

    def _time(self, t: float | None) -> str:
        if t is None:
            return "—"
        return dt.datetime.fromtimestamp(t, self.tz).strftime("%d %b %H:%M:%S")

    def _when(self, r: dict) -> str:
        if r.get("type") == "appointment" and r.get("start") is not None:
            return f"{self._time(r['start'])}–{self._time(r.get('end'))[-8:]}"
        return _schedule_text(r.get("schedule"))

    def show_details(self, d: dict, open_alerts: list | None = None) -> None:
        """Draw a details dictionary from the engine worker; open_alerts: [(priority, type, id)]."""
        if d.get("error"):
            self.title.setText(f"{d.get('offender')}: {d['error']}")
            return
        self.offender = d["offender"]
        self.plots.setVisible(True)
        self.title.setText(f"{d['offender']}  {d['name']}")
        now = d.get("now", 0.0)
        last = d.get("last")
        reqs = join("", (rich("<li>{type} — {zone} ({when})</li>", type=r["type"], zone=r["zone_name"],
                              when=self._when(r)) for r in d.get("requirements", [])))
        if last:
            batt = "—" if last.get("batt") is None else f"{last['batt'] * 100:.0f} %"
            stale = is_stale(last["t"], now, d.get("fix_interval_s", 60))
            tag = (f"battery {batt} · last fix {self._time(last['t'])} "
                   f"({fmt_age(now - last['t'])}) · accuracy {last['acc']:.0f} m")
            if stale:
                tag = f"{STALE_MARK} — no fix for {fmt_age(now - last['t'])[:-4]}: " + tag
        else:
            tag = "no fix received"
        sig = d.get("tag", {})
        if isinstance(sig.get("last_fix"), dict) and sig["last_fix"].get("sats") is not None:
            tag += f" · {sig['last_fix']['sats']} satellites ({sig['last_fix'].get('src')})"
        elif last:
            overdue = now - last["t"] > 3 * d.get("fix_interval_s", 60)
            tag += " · signal " + ("▲ OVERDUE" if overdue else "ok")
        alerts = join("", (rich("<li><b>{p}</b> {t}{age}</li>", p=PRIORITY_TEXT.get(p, p),
                                t=TYPE_TEXT.get(t, t), age=_age_of(a, now))
                           for p, t, *a in (open_alerts or []))) or Markup("<li>none</li>")
        stale_tag = bool(last) and is_stale(last["t"], now, d.get("fix_interval_s", 60))
        tag_html = (rich("<i><span style='color:{c}'>{tag}</span></i>", c=self.palette.dim_text, tag=tag)
                    if stale_tag else tag)
        self.body.setText(rich(
            "<p>{borough} · risk <b>{risk}</b> · tag <b>{device}</b> (fix every {every:g} s)</p>"
            "<p><b>Tag:</b> {tag}</p><p><b>Location:</b> {where}</p>"
            "<p><b>Order requirements</b></p><ul>{reqs}</ul>"
            "<p><b>Open alerts</b></p><ul>{alerts}</ul>",
            borough=d["borough"], risk=d["risk"], device=d["device"], every=float(d["fix_interval_s"]),
            tag=tag_html, where=_where(last), reqs=reqs or Markup("<li>none</li>"), alerts=alerts))
        t = d.get("t", [])
        dist = d.get("distance_m", [])
        self.curves["dist"].setData(t if dist else [], dist)
        self.dist.setTitle("Distance to exclusion boundary (m; below 0 = inside)" if dist
                           else "Distance to exclusion boundary: no exclusion zone", color=self.palette.text)
        self.curves["speed"].setData(t, [v * MPH_PER_MS if v is not None else math.nan
                                         for v in d.get("speed_ms", [])])
        batt = [b * 100 if b is not None and not math.isnan(b) else math.nan for b in d.get("battery", [])]
        self.curves["batt"].setData(t, batt, connect="finite")
        if t:
            self.dist.setXRange(max(t[0], now - 24 * 3600), now, padding=0.02)


def _where(last: dict | None) -> str:
    """The street and borough of the last fix (looked up in the engine thread), as read out."""
    if not last:
        return "no fix received"
    return last.get("address") or f"{last['lat']:.5f}, {last['lon']:.5f} (no street or borough known here)"
