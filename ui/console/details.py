"""The details panel for the selected offender or alert: who, what the order requires, the tag's
state, the open alerts, and pyqtgraph charts of the last 24 hours (distance to the nearest
exclusion-zone boundary with its zero line, speed, battery).

The engine worker computes the figures in its own thread (``EngineWorker.request_details``);
this panel only draws the dictionary it gets back. Every value in it is data (names, zone names
from other workstations, boroughs): the title is plain text and the body is built with
``ui.text.rich``, which escapes each value.

The offender's record (issue 21) follows the title: photo (an optional file), home address,
order dates and court reference, offence category, risk notes, responsible officer, and the
zones with the version in force and since when (from the store's zone versions). Under it, the
selected alert's response (``AlertResponsePanel``): protocol checklist, contacts with copy and
dial, the alert's context from the record's fixes, its timeline, and "Record step…".
``attach(controller, caseload, queue, contacts)`` gives the panel what it reads them from (the
main window calls it once its queue exists).

Speeds are in miles per hour (what operators and police use; the tool tip gives m/s). Ages are
unambiguous ("4 min ago"). A stale tag (no fix for max(5 min, 3 fix intervals)) says so in
words and the tag line is dimmed and italic (ISA-101). No internal alert ids are shown: an
open alert is its priority, type and age.
"""
from __future__ import annotations

import datetime as dt
import math

import pathlib

import pyqtgraph as pg
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (QApplication, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton,
                               QScrollArea, QToolButton, QVBoxLayout, QWidget)

from monitorapp.response.contacts import ContactsError, contacts_for, load_centre_contacts, tel_url
from monitorapp.response.context import alert_context, lines, record_inputs, zone_versions
from monitorapp.response.protocols import OUTCOME_TEXT
from monitorapp.response.timeline import describe
from ui.console.alertmodel import TYPE_TEXT, fmt_age
from ui.console.caseloadlist import STALE_MARK, is_stale
from ui.console.stepdialog import STATE_MARK, CloseStepsDialog, StepDialog
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
        self.photo = QLabel()
        self.photo.setObjectName("offenderPhoto")
        self.photo.setVisible(False)
        self.record = QLabel("")
        self.record.setObjectName("offenderRecord")
        self.record.setTextFormat(Qt.TextFormat.RichText)
        self.record.setWordWrap(True)
        self.record.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.response: AlertResponsePanel | None = None
        self.ctl = self.caseload = None
        inner = QWidget()
        lay = self._layout = QVBoxLayout(inner)
        lay.addWidget(self.title)
        head = QHBoxLayout()
        head.addWidget(self.photo, 0, Qt.AlignmentFlag.AlignTop)
        head.addWidget(self.record, 1)
        lay.addLayout(head)
        lay.addWidget(self.body)
        lay.addWidget(self.plots, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        # the panel's text wraps to its width: nothing of an alert is hidden to the right
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self.palette = LIGHT
        self.offender: str | None = None
        self.set_palette(LIGHT)

    # ---- issue 21: the offender's record and the alert's response ---------------------------
    def attach(self, controller, caseload, queue=None, contacts: dict | None = None) -> None:
        """Read the offender's record from ``caseload`` and alerts' responses through
        ``controller`` (an ``AlertQueueController``); follow ``queue``'s selected alert."""
        self.ctl, self.caseload = controller, caseload
        if contacts is None:
            try:
                contacts = load_centre_contacts()
            except ContactsError:
                contacts = None
        self.response = AlertResponsePanel(controller, caseload, contacts)
        self._layout.insertWidget(2, self.response)
        controller.ask_skips = self.response.ask_skips
        from ui.console.notifications import mount as mount_notifications
        mount_notifications(self, controller, queue)      # issue 20: who was notified, delivered?
        if queue is not None:
            queue.alertSelected.connect(self.show_alert)

    def show_alert(self, alert_id: str) -> None:
        if self.response is not None:
            self.response.show_alert(alert_id)

    def _show_record(self, offender_id: str) -> None:
        o = self.caseload.offenders.get(offender_id) if self.caseload is not None else None
        raw = o.raw if o is not None else {}
        zones = {}
        for r in (o.requirements if o is not None else []):
            z = self.caseload.zones.get(r.zone)
            zones[r.zone] = z.name if z is not None else r.zone
        versions = {}
        if zones and self.ctl is not None:
            try:
                versions = zone_versions(self.ctl.store, list(zones))
            except Exception:        # noqa: BLE001 - a record that cannot be read: no dates shown
                versions = {}
        self.record.setText(offender_record(raw, zones, versions, self.tz))
        photo = raw.get("photo")
        pix = QPixmap(str(pathlib.Path(photo))) if isinstance(photo, str) else QPixmap()
        self.photo.setVisible(not pix.isNull())
        if not pix.isNull():
            self.photo.setPixmap(pix.scaledToHeight(120, Qt.TransformationMode.SmoothTransformation))

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
        self._show_record(d["offender"])
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


# ---- the alert's response and the offender's record (issue 21) ---------------------------------

class AlertResponsePanel(QWidget):
    """The selected alert's response: its protocol checklist (ticked from the record), whom to
    call with one action to copy or dial each number (a ``tel:`` link the workstation's
    softphone takes), what the record's fixes say about it, and its whole timeline; "Record
    step…" adds to it. The checklist, timeline and context are read from the store whenever the
    alert is shown or a step is recorded; every value in them is data (escaped or plain text)."""

    def __init__(self, controller, caseload, contacts: dict | None = None, parent=None):
        super().__init__(parent)
        self.setObjectName("alertResponse")
        self.ctl, self.caseload = controller, caseload
        self.centre_contacts = contacts
        self.alert_id: str | None = None
        self.response: dict = {}
        self.contacts: list[dict] = []
        self.heading = plain_label()
        self.heading.setStyleSheet("font-weight: bold;")
        self.heading.setWordWrap(True)
        self.checklist = QLabel()
        self.checklist.setObjectName("responseChecklist")
        self.checklist.setTextFormat(Qt.TextFormat.RichText)
        self.checklist.setWordWrap(True)
        self.context = plain_label()
        self.context.setObjectName("alertContext")
        self.context.setWordWrap(True)
        self.contact_box = QVBoxLayout()
        self.contact_box.setContentsMargins(0, 0, 0, 0)
        self.timeline = QPlainTextEdit()
        self.timeline.setObjectName("alertTimeline")
        self.timeline.setReadOnly(True)
        self.timeline.setAccessibleName("Timeline of the alert")
        self.timeline.setMaximumHeight(150)
        self.step_btn = QPushButton("Record ste&p…  [Alt+P]")
        self.step_btn.setObjectName("recordStep")
        self.step_btn.setToolTip("Record what you did (a call, its outcome, the police reference)")
        self.step_btn.clicked.connect(self.record_step)
        self.message = plain_label()
        self.message.setObjectName("responseMessage")
        self.message.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 4)
        for w in (self.heading, self.checklist):
            lay.addWidget(w)
        heads = [plain_label(t) for t in ("Contacts", "Context", "Timeline")]
        for h in heads:
            h.setStyleSheet("font-weight: bold;")
        lay.addWidget(heads[0])
        lay.addLayout(self.contact_box)
        lay.addWidget(heads[1])
        lay.addWidget(self.context)
        lay.addWidget(heads[2])
        lay.addWidget(self.timeline)
        lay.addWidget(self.step_btn)
        lay.addWidget(self.message)
        self.setVisible(False)
        # bound methods of this widget, never lambdas: Qt drops the connections when the panel
        # goes, while the controller (which outlives a window) goes on emitting
        controller.stepRecorded.connect(self._changed)
        controller.handlingChanged.connect(self._handling_changed)

    def _handling_changed(self, alert_id: str, _state: str) -> None:
        self._changed(alert_id)

    def _time(self, t) -> str:
        return "—" if t is None else dt.datetime.fromtimestamp(t, self.ctl.model.tz).strftime("%H:%M:%S")

    def _changed(self, alert_id: str) -> None:
        if alert_id == self.alert_id:
            self.refresh()

    def show_alert(self, alert_id: str) -> None:
        self.alert_id = alert_id
        self.message.setText("")
        self.refresh()

    def refresh(self) -> None:
        row = self.ctl.model.row(self.alert_id) if self.alert_id else None
        if row is None:
            self.setVisible(False)
            return
        a, h = row.alert, row.handling
        self.setVisible(True)
        owner = f" · {h.state} by {h.acked_by}" if h.acked_by else f" · {h.state}"
        self.heading.setText(f"{TYPE_TEXT.get(a.type, a.type)} · {a.offender or 'system'}{owner}")
        try:
            self.response = self.ctl.response_of(a.alert_id)
        except Exception as e:      # noqa: BLE001 - the record could not be read: say so, go on
            self.response = {"steps": [], "timeline": [], "open": []}
            self.message.setText(f"The response could not be read from the record: {e}")
        self._fill_checklist()
        titles = {s["id"]: s["title"] for s in self.response["steps"]}
        self.timeline.setPlainText("\n".join(
            f"{self._time(i['at'])} {i['operator']}: {describe(i, titles)}"
            for i in self.response["timeline"]) or "nothing recorded yet")
        off = self.caseload.offenders.get(a.offender) if a.offender else None
        self._fill_contacts(off)
        self._fill_context(a)
        self.step_btn.setEnabled(h.state in ("acknowledged", "shelved") and bool(h.acked_by))

    def _fill_checklist(self) -> None:
        items = []
        for c in self.response["steps"]:
            mark = STATE_MARK.get(c["state"], "")
            when = ""
            if c["state"] in ("due", "overdue") and c["due_at"] is not None:
                when = f" — due {self._time(c['due_at'])}" + (" (OVERDUE)" if c["state"] == "overdue" else "")
            elif c["state"] == "done":
                when = f" — {OUTCOME_TEXT.get(c['outcome'], c['outcome'])} {self._time(c['at'])} by {c['by']}"
                when += f", ref {c['given_reference']}" if c.get("given_reference") else ""
                when += " (late)" if c["late"] else ""
            elif c["state"] == "tried":
                when = f" — {c['attempts']} attempt(s), last: {OUTCOME_TEXT.get(c['outcome'], c['outcome'])}"
            elif c["state"] == "skipped":
                when = f" — skipped: {c['reason']}"
            items.append(rich("<li>{mark} {b}{title}{eb}{when}</li>", mark=mark, title=c["title"],
                              b=Markup("<b>") if c["mandatory"] else "",
                              eb=Markup("</b>") if c["mandatory"] else "", when=when))
        self.checklist.setText(rich("<p>Protocol (<b>bold</b>: mandatory)</p><ul>{items}</ul>",
                                    items=join("", items)) if items
                               else rich("<p>No response protocol for this alert type.</p>"))

    def _fill_contacts(self, offender) -> None:
        while self.contact_box.count():
            item = self.contact_box.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.contacts = contacts_for(offender.raw if offender else None,
                                     offender.borough if offender else None, self.centre_contacts)
        for i, c in enumerate(self.contacts):
            line = QWidget()
            lay = QHBoxLayout(line)
            lay.setContentsMargins(0, 0, 0, 0)
            number = c["phone"] or c["email"]
            text = plain_label(f"{c['label']}: {c['name']} · {number}")
            text.setWordWrap(True)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            copy = QToolButton()
            copy.setText("Copy")
            copy.setObjectName(f"copy_{c['kind']}")
            copy.setAccessibleName(f"Copy the number of {c['label']}")
            copy.clicked.connect(lambda _=False, n=number: QApplication.clipboard().setText(n))
            call = QToolButton()
            call.setText("Call" if c["phone"] else "E-mail")
            call.setObjectName(f"call_{c['kind']}")
            call.setAccessibleName(f"Call {c['label']}")
            url = tel_url(c["phone"]) if c["phone"] else f"mailto:{c['email']}"
            call.setToolTip(url)
            call.clicked.connect(lambda _=False, u=url: QDesktopServices.openUrl(QUrl(u)))
            lay.addWidget(text, 1)
            lay.addWidget(copy)
            lay.addWidget(call)
            self.contact_box.addWidget(line)
        if not self.contacts:
            self.contact_box.addWidget(plain_label("no contact known for this alert"))

    def _fill_context(self, a) -> None:
        try:
            fixes, zone = record_inputs(self.ctl.store, {**a.to_record(), "zone_version": a.zone_version,
                                                         "start": a.start, "raised_at": a.raised_at})
            ctx = alert_context({"type": a.type, "start": a.start, "raised_at": a.raised_at,
                                 "evidence": a.evidence}, fixes, zone, self.ctl.now or None)
            self.context.setText("\n".join(lines(ctx, self._time)))
        except Exception as e:        # noqa: BLE001 - context is help, never a reason to fail
            self.context.setText(f"context not available: {e}"[:200])

    def record_step(self) -> None:
        row = self.ctl.model.row(self.alert_id) if self.alert_id else None
        if row is None:
            return
        by_kind = {c["kind"]: c for c in self.contacts}
        dlg = StepDialog(row.alert, self.response.get("steps", []), by_kind,
                         f"{row.alert.offender or ''} {row.offender_name}".strip(), self)
        if not dlg.exec():
            return
        step, outcome, reference, note = dlg.values()
        try:
            self.ctl.record_step(self.alert_id, step, outcome, reference, note)
        except ValueError as e:                 # HandlingRefused, or the store's HandlingError
            self.message.setText(f"Step not recorded: {e}")
            return
        self.message.setText("Step recorded in the acknowledgement log")
        self.refresh()

    def ask_skips(self, alert_id: str, open_steps: list[dict]):
        """The controller's question when closing with mandatory steps open (see alertqueue)."""
        row = self.ctl.model.row(alert_id)
        dlg = CloseStepsDialog(row.alert, open_steps,
                               f"{row.alert.offender or ''} {row.offender_name}".strip(), self)
        return dlg.values() if dlg.exec() else None


def offender_record(raw: dict, zones: dict, versions: dict, tz) -> Markup:
    """The offender's record (issue 21) as rich text, every value escaped; '' when none."""
    def day(v):
        return v or "—"
    parts = []
    if raw.get("address"):
        parts.append(rich("<p><b>Home address:</b> {a}</p>", a=raw["address"]))
    order = raw.get("order") or {}
    if order:
        parts.append(rich("<p><b>Order:</b> {s} to {e} · court reference {ref}{court}</p>",
                          s=day(order.get("start")), e=day(order.get("end")),
                          ref=order.get("court_ref") or "—",
                          court=f" ({order['court']})" if order.get("court") else ""))
    if raw.get("offence_category"):
        parts.append(rich("<p><b>Offence category:</b> {c}</p>", c=raw["offence_category"]))
    if raw.get("risk_notes"):
        parts.append(rich("<p><b>Risk notes:</b> {n}</p>", n=raw["risk_notes"]))
    officer = raw.get("responsible_officer")
    if isinstance(officer, dict):
        parts.append(rich("<p><b>Responsible officer:</b> {n}{team} · {how}</p>", n=officer.get("name"),
                          team=f" ({officer['team']})" if officer.get("team") else "",
                          how=" · ".join(x for x in (officer.get("phone"), officer.get("email")) if x)))
    zl = []
    for zid, name in zones.items():
        v = versions.get(zid)
        since = (f"version {v[0]}, in force since "
                 f"{dt.datetime.fromtimestamp(v[1], tz).strftime('%d %b %Y %H:%M')}") if v else "not in the record"
        zl.append(rich("<li>{name} — {since}</li>", name=name, since=since))
    if zl:
        parts.append(rich("<p><b>Zones</b></p><ul>{z}</ul>", z=join("", zl)))
    return join("", parts)
