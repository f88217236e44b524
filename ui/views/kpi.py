"""The supervisors' KPI dashboard (pyqtgraph): how the centre is coping.

``compute_kpis(records, now, ...)`` (plain Python over ``ui.views.review.handling_records``) gives
the five figures; ``KpiDashboard`` draws them:

* alerts raised per 10 minutes, against the flood threshold (the console's ``alarm/flood_count``
  per ``alarm/flood_window_s``); a bar over the threshold is drawn in the critical colour, the
  only colour on the page, because a flood is the abnormal condition;
* time to acknowledge per priority: every acknowledged alert as a dot, the median as a bar, the
  priority's limit as a dashed line;
* load per operator: alerts acknowledged and closed by each operator;
* stale alerts: raised more than 24 hours ago and still not closed (a list);
* the ten noisiest tags: alerts per tag;
* notifications (spec v2 §9, issue 20): per alert type, how many were delivered and the delay
  from the alert's step (raise, re-activation, close) to the relay accepting the message
  (median and worst; next-working-day summaries apart, their delay is the policy's), and how
  many are not delivered, uncertain or still waiting (``notification_kpis``).
"""
from __future__ import annotations

import collections
import statistics

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QGridLayout, QGroupBox, QHBoxLayout, QLabel, QListWidget, QPushButton,
                               QVBoxLayout, QWidget)

from ui.console.alertmodel import TYPE_TEXT, fmt_duration
from ui.views.review import DEFAULT_LIMITS, handling_records
from ui.roles import require
from ui.theme import PRIORITY_TEXT, current, style_plot

BIN_S = 600.0
STALE_S = 24 * 3600.0
PRIORITIES = ("critical", "high", "medium", "low")


def _ink() -> str:
    """Bars and points: the theme's text colour (dark on the day theme, light at night)."""
    return current().text


def _soft() -> str:
    return current().dim_text


class CountAxis(pg.AxisItem):
    """An axis of counts: ticks on whole numbers only (never "2.5 alerts")."""

    def tickSpacing(self, minVal, maxVal, size):  # noqa: N802 (pyqtgraph API)
        levels = [(float(max(1, round(s))), o) for s, o in super().tickSpacing(minVal, maxVal, size) if s >= 1]
        return levels or [(1.0, 0.0)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph API)
        return [f"{int(round(v * scale)):,}" for v in values]


def compute_kpis(records: list[dict], now: float, *, flood_count: int = 10,
                 flood_window_s: float = 600.0, limits: dict | None = None) -> dict:
    limits = {**DEFAULT_LIMITS, **(limits or {})}
    raised = np.array([r["raised_at"] for r in records], dtype=float)
    if len(raised):
        start = np.floor(raised.min() / BIN_S) * BIN_S
        n_bins = int((raised.max() - start) // BIN_S) + 1
        counts = np.bincount(((raised - start) // BIN_S).astype(int), minlength=n_bins)
        bins = start + BIN_S * np.arange(n_bins)
    else:
        counts, bins = np.zeros(0, dtype=int), np.zeros(0)
    threshold = flood_count * BIN_S / flood_window_s      # the flood rule, scaled to a bin
    tta = {p: sorted(r["tta_s"] for r in records if r["priority"] == p and r["tta_s"] is not None)
           for p in PRIORITIES}
    load: dict[str, collections.Counter] = {}
    for r in records:
        if r["acked_by"]:
            load.setdefault(r["acked_by"], collections.Counter())["acknowledged"] += 1
        if r["closed_by"]:
            load.setdefault(r["closed_by"], collections.Counter())["closed"] += 1
    stale = sorted((r for r in records if r["handling"] != "closed" and now - r["raised_at"] > STALE_S),
                   key=lambda r: r["raised_at"])
    noisy = collections.Counter(r["device"] for r in records if r["device"]).most_common(10)
    return {"bins": bins, "counts": counts, "threshold": threshold,
            "flood_bins": int((counts > threshold).sum()),
            "tta": tta, "tta_median": {p: statistics.median(v) if v else None for p, v in tta.items()},
            "limits": limits, "load": {k: dict(v) for k, v in sorted(load.items())},
            "stale": stale, "noisy": noisy}


def notification_kpis(rows: list[dict]) -> dict[str, dict]:
    """Per alert type: sent, median and worst delay (s) of immediate notifications, summaries
    sent, and the failed, uncertain and waiting ones (the outbox's rows)."""
    out: dict[str, dict] = {}
    for r in rows:
        d = out.setdefault(r["alert_type"], {"sent": 0, "delays": [], "summaries": 0, "failed": 0,
                                             "unknown": 0, "waiting": 0})
        if r["status"] == "sent":
            d["sent"] += 1
            if r["delivery"] == "now" and r.get("delay_s") is not None:
                d["delays"].append(float(r["delay_s"]))
            elif r["delivery"] != "now":
                d["summaries"] += 1
        elif r["status"] == "failed":
            d["failed"] += 1
        elif r["status"] == "unknown":
            d["unknown"] += 1
        else:
            d["waiting"] += 1
    for d in out.values():
        v = sorted(d.pop("delays"))
        d["median_s"] = statistics.median(v) if v else None
        d["max_s"] = v[-1] if v else None
    return dict(sorted(out.items()))


def _notification_rows(store) -> list[dict]:
    """The outbox's rows, or none (a store from before the outbox, or not readable)."""
    try:
        from centraldb.outbox import outbox_for
        return outbox_for(store).all()
    except Exception:           # noqa: BLE001 - the dashboard still shows the rest
        return []


def _plot(title: str, left: str, bottom_axis=None, left_axis=None) -> pg.PlotWidget:
    axes = {}
    if bottom_axis is not None:
        axes["bottom"] = bottom_axis
    if left_axis is not None:
        axes["left"] = left_axis
    w = pg.PlotWidget(axisItems=axes or None)
    w.setLabel("left", left)
    w.showGrid(x=False, y=True, alpha=0.25)
    w.setMouseEnabled(x=False, y=False)
    w.setMenuEnabled(False)
    style_plot(w, current(), title)      # the dark theme at night, the light one by day
    return w


class KpiDashboard(QWidget):
    """The dashboard (see the module docstring); ``refresh()`` re-reads the store."""

    def __init__(self, store, session, *, flood_count: int = 10, flood_window_s: float = 600.0,
                 limits: dict | None = None, tz: str = "Europe/London", parent=None):
        super().__init__(parent)
        require(session.role, "kpi")
        self.store, self.session = store, session
        self.flood_count, self.flood_window_s, self.limits, self.tz = flood_count, flood_window_s, limits, tz
        self.setObjectName("kpiDashboard")
        self.setWindowTitle("KPI dashboard")
        self.kpis: dict = {}
        self.rate = _plot("Alerts per 10 minutes", "alerts", pg.DateAxisItem(), CountAxis("left"))
        self.tta = _plot("Time to acknowledge by priority (dashed: limit)", "seconds")
        self.load = _plot("Load per operator (strong: acknowledged, faint: closed)", "alerts",
                          left_axis=CountAxis("left"))
        self.noisy = _plot("Ten noisiest tags", "alerts", bottom_axis=CountAxis("bottom"))
        self.stale = QListWidget()
        self.stale.setObjectName("staleList")
        self.headline = QLabel()
        self.headline.setObjectName("kpiHeadline")
        self.headline.setStyleSheet("font-size: 15pt; font-weight: bold;")
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        stale_box = QGroupBox("Stale alerts (over 24 h, not closed)")
        sl = QVBoxLayout(stale_box)
        sl.addWidget(self.stale)
        self.notified = QListWidget()
        self.notified.setObjectName("notificationKpis")
        notify_box = QGroupBox("Notifications per type: delay from the alert to the relay accepting it")
        QVBoxLayout(notify_box).addWidget(self.notified)
        grid = QGridLayout(self)
        self.headline.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.headline, 1)
        top.addWidget(refresh)
        grid.addLayout(top, 0, 0, 1, 2)
        grid.addWidget(self.rate, 1, 0)
        grid.addWidget(self.tta, 1, 1)
        grid.addWidget(self.load, 2, 0)
        grid.addWidget(self.noisy, 2, 1)
        grid.addWidget(stale_box, 3, 0)
        grid.addWidget(notify_box, 3, 1)
        grid.setRowStretch(1, 3)
        grid.setRowStretch(2, 3)
        grid.setRowStretch(3, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        self._items: list = []
        self.refresh()

    def refresh(self, now: float | None = None) -> dict:
        now = self.store.clock() if now is None else now
        records = handling_records(self.store, now=now, limits=self.limits, tz=self.tz)
        k = self.kpis = compute_kpis(records, now, flood_count=self.flood_count,
                                     flood_window_s=self.flood_window_s, limits=self.limits)
        # the charts are rebuilt on refresh (a button press, not a live tick)
        for plot in (self.rate, self.tta, self.load, self.noisy):
            plot.clear()
        self._draw_rate(k)
        self._draw_tta(k)
        self._draw_bars(self.load, list(k["load"]), [v.get("acknowledged", 0) for v in k["load"].values()],
                        [v.get("closed", 0) for v in k["load"].values()])
        self._draw_noisy(k["noisy"])
        self.stale.clear()
        for r in k["stale"]:
            age = fmt_duration(now - r["raised_at"])
            self.stale.addItem(f"{PRIORITY_TEXT[r['priority']]}  {TYPE_TEXT.get(r['type'], r['type'])}  "
                               f"{r['offender'] or r['device'] or ''}  raised {age} ago  ({r['handling']})")
        if not k["stale"]:
            self.stale.addItem("None: every alert older than 24 hours is closed.")
        k["notifications"] = notification_kpis(_notification_rows(self.store))
        self.notified.clear()
        for t, d in k["notifications"].items():
            delay = (f"median {fmt_duration(d['median_s'])}, worst {fmt_duration(d['max_s'])}"
                     if d["median_s"] is not None else "no immediate ones")
            extra = [f"{d[key]} {text}" for key, text in (("summaries", "in summaries"),
                     ("failed", "not delivered"), ("unknown", "uncertain"), ("waiting", "waiting")) if d[key]]
            self.notified.addItem(f"{TYPE_TEXT.get(t, t)}: {d['sent']} sent, {delay}"
                                  + (f"; {', '.join(extra)}" if extra else ""))
        if not k["notifications"]:
            self.notified.addItem("None sent yet.")
        acked = [v for vs in k["tta"].values() for v in vs]
        late = sum(r["late"] for r in records)
        self.headline.setText(f"{len(records)} alerts · {k['flood_bins']} ten-minute periods over the flood "
                              f"threshold · {late} handled late · {len(k['stale'])} stale · median time to "
                              f"acknowledge {fmt_duration(statistics.median(acked)) if acked else '—'}")
        return k

    def _draw_rate(self, k: dict) -> None:
        bins, counts = k["bins"], k["counts"]
        over = counts > k["threshold"]
        if len(bins):
            x = bins + BIN_S / 2
            self.rate.addItem(pg.BarGraphItem(x=x[~over], height=counts[~over], width=BIN_S * 0.85,
                                              brush=_soft(), pen=pg.mkPen(_ink())))
            if over.any():
                self.rate.addItem(pg.BarGraphItem(x=x[over], height=counts[over], width=BIN_S * 0.85,
                                                  brush=current().priority["critical"], pen=pg.mkPen(_ink())))
        line = pg.InfiniteLine(pos=k["threshold"], angle=0,
                               pen=pg.mkPen(_ink(), width=2, style=Qt.PenStyle.DashLine),
                               label=f"flood threshold {k['threshold']:.0f}",
                               labelOpts={"position": 0.1, "color": _ink()})
        self.rate.addItem(line)

    def _draw_tta(self, k: dict) -> None:
        rng = np.random.default_rng(0)        # a fixed jitter: the same picture every refresh
        for i, p in enumerate(PRIORITIES):
            v = np.array(k["tta"][p], dtype=float)
            if len(v):
                self.tta.addItem(pg.ScatterPlotItem(x=i + rng.uniform(-0.25, 0.25, len(v)), y=v, size=7,
                                                    brush=pg.mkBrush(_ink()), pen=None))
                med = k["tta_median"][p]
                self.tta.addItem(pg.PlotDataItem([i - 0.35, i + 0.35], [med, med], pen=pg.mkPen(_ink(), width=4)))
            limit = k["limits"].get(p)
            if limit:
                self.tta.addItem(pg.PlotDataItem([i - 0.4, i + 0.4], [limit, limit],
                                                 pen=pg.mkPen(current().priority[p], width=2, style=Qt.PenStyle.DashLine)))
        self.tta.getAxis("bottom").setTicks([[(i, PRIORITY_TEXT[p]) for i, p in enumerate(PRIORITIES)]])
        self.tta.setXRange(-0.6, len(PRIORITIES) - 0.4)
        # the scale of the data and of the limits that apply to it, not of every limit
        data = [v for vs in k["tta"].values() for v in vs]
        self.tta.setYRange(0, max(data + [200.0]) * 1.3)     # limits above that are off the scale

    def _draw_noisy(self, noisy: list[tuple[str, int]]) -> None:
        if not noisy:
            return
        y = np.arange(len(noisy), dtype=float)[::-1]       # the noisiest at the top
        self.noisy.addItem(pg.BarGraphItem(x0=0, y=y, width=[n for _, n in noisy], height=0.7,
                                           brush=_ink(), pen=pg.mkPen(_ink())))
        self.noisy.getAxis("left").setTicks([[(yy, d) for yy, (d, _) in zip(y, noisy)]])
        self.noisy.setLabel("left", "")
        self.noisy.getAxis("left").setWidth(90)
        self.noisy.setLabel("bottom", "alerts")
        self.noisy.setYRange(-0.6, len(noisy) - 0.4)

    @staticmethod
    def _draw_bars(plot, names: list[str], heights: list[int], second: list[int] | None = None) -> None:
        if not names:
            return
        x = np.arange(len(names), dtype=float)
        w = 0.4 if second is not None else 0.7
        plot.addItem(pg.BarGraphItem(x=x - (w / 2 if second is not None else 0), height=heights, width=w,
                                     brush=_ink(), name="acknowledged"))
        if second is not None:
            plot.addItem(pg.BarGraphItem(x=x + w / 2, height=second, width=w, brush=_soft(), name="closed"))
        plot.getAxis("bottom").setTicks([[(i, n) for i, n in enumerate(names)]])
        plot.setXRange(-0.6, len(names) - 0.4)
