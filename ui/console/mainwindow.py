"""The operator console's main window: the map in the centre, docks for the alert queue, the
caseload list and the details panel, a status bar, menus that show every shortcut.

The window wires the pieces together and owns nothing clever: the engine worker reports
batches (alerts, positions, feed stats) through queued signals; a 500 ms tick refreshes the
clock-driven columns and the status bar; the map widget throttles its own marker batches.
Operator actions go through ``AlertQueueController`` (which writes the acknowledgement log)
and zone edits through the store (a new zone version) and the engine worker. In client mode
(``window.centre``, ``ui.console.clientmode``) the "worker" is the ``CentreClient``, the
controller a ``CentreQueueController``, and actions and zone edits go to the centre's record.
"""
from __future__ import annotations

import collections
import json
import pathlib

from PySide6.QtCore import QByteArray, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QHBoxLayout, QLabel,
                               QMainWindow, QMessageBox, QSizePolicy, QVBoxLayout, QWidget)

from localdb.schema import StoreError
from monitorapp.engine.alerts import OpenAlerts
from ui.console.ackdialog import AckDialog
from monitorapp.engine.alerts import PRIORITY_RANK
from ui.console.alertmodel import TYPE_TEXT, fmt_age
from ui.console.alertqueue import AlertQueueController, AlertQueueDock, HandlingRefused
from ui.console.caseloadlist import CaseloadDock, CaseloadModel, is_stale
from ui.console.details import DetailsPanel
from ui.settings import Settings, window_state
from ui.console.shelvedialog import ShelveDialog, shift_end
from ui.console.statusbar import ConsoleStatusBar
from ui.text import plain_label, warn
from ui.theme import apply_theme, palette
from ui.console.zonedialog import ZoneDialog
from ui.console.zonemanager import ZoneChanges, ZoneManager

TICK_MS = 500
DETAILS_EVERY = 10          # ticks between refreshes of the selected offender's details
STALE_EVERY = 4             # ticks between checks of the tags' staleness (their own clock)
STATE_VERSION = 1


class BannerLabel(QLabel):
    """One line that never dictates the window's width: the text is elided to fit and given in
    full in the tool tip (the compact training banner)."""

    def __init__(self, text: str = ""):
        super().__init__()
        self.setTextFormat(Qt.TextFormat.PlainText)       # the scenario's text is data
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt API)
        self._full = str(text)
        self.setToolTip(self._full)
        self._fit()

    def text(self) -> str:
        return self._full

    def resizeEvent(self, event):  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        room = max(40, self.contentsRect().width() - 4)
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room))


def zone_kinds(caseload) -> dict[str, str]:
    """zone id -> the kind of requirement that uses it (the map colours zones by kind)."""
    kinds: dict[str, str] = {}
    for o in caseload.offenders.values():
        for r in o.requirements:
            if r.zone and r.zone not in kinds:
                kinds[r.zone] = r.type
    return kinds


def _centre_contacts(settings) -> dict | None:
    """The police control rooms and the centre's numbers (setting response/contacts_file, or
    the shipped file); None, with the problem logged, when the file cannot be used."""
    from monitorapp.response.contacts import ContactsError, load_centre_contacts
    try:
        return load_centre_contacts(settings.get("response/contacts_file") or None)
    except ContactsError as e:
        import logging
        logging.getLogger("monitorapp.console").error("centre contacts not loaded: %s", e)
        return None


class MainWindow(QMainWindow):
    """The console. ``events`` receives structured log records (event name, fields)."""

    event = Signal(str, dict)

    def __init__(self, *, controller: AlertQueueController, worker, caseload, store,
                 settings: Settings, map_widget: QWidget, clock, operator: str,
                 training: bool = False, speeds: tuple = (), parent=None):
        super().__init__(parent)
        self.ctl, self.worker, self.caseload, self.store = controller, worker, caseload, store
        self.settings, self.map, self.clock, self.operator = settings, map_widget, clock, operator
        self.training = training
        self.theme = settings.get("ui/theme")
        self.setObjectName("console")
        self.setWindowTitle(("TRAINING — " if training else "") + "Monitoring console")
        self._positions: dict[str, dict] = {}
        self._zone_alerts = OpenAlerts()          # open exclusion/curfew alerts by zone
        self._zone_alarms_sent: dict[str, str] | None = None
        self._worst: dict[str, str | None] = {}
        self._selected_device: str | None = None
        self._selected_offender: str | None = None
        self._zone_kinds = zone_kinds(caseload)
        self._by_device = caseload.by_device      # a property that builds a dict: keep one
        self._extra_zones: dict[str, dict] = {}
        self._pending_zones: dict[str, collections.deque] = {}   # edits the engine has not answered
        self._zone_seq = 0
        self.centre = None       # client mode: ui.console.centreclient.CentreClient
        self._ticks = 0
        self._stale_sent: dict[str, bool] = {}    # device -> stale as the map shows it
        self.wallboard = None

        centre = QWidget()
        lay = QVBoxLayout(centre)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        self.training_banner = BannerLabel("TRAINING MODE — simulated feed, not live. "
                                           "Nothing here reaches police or probation.")
        self.training_banner.setObjectName("trainingBanner")
        self.training_banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.training_banner.setVisible(training)
        # The watermark sits in the one-line banner above the map, not on it: it never covers
        # a tag (alerting or not), and every screenshot of the window still says TRAINING.
        self.watermark = QLabel("TRAINING")
        self.watermark.setObjectName("watermark")
        self.watermark.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.watermark.setVisible(training)
        strip = QHBoxLayout()
        strip.setContentsMargins(0, 0, 0, 0)
        strip.setSpacing(0)
        strip.addWidget(self.watermark)
        strip.addWidget(self.training_banner, 1)
        lay.addLayout(strip)
        lay.addWidget(map_widget, 1)
        self.setCentralWidget(centre)

        boroughs = sorted({o.borough for o in caseload.offenders.values()})
        self.queue = AlertQueueDock(controller, boroughs)
        self.caseload_model = CaseloadModel(caseload, self)
        self.caseload_list = CaseloadDock(self.caseload_model)
        self.details = DetailsPanel(tz=controller.model.tz)
        self.queue_dock = self._dock("Alert queue", "queueDock", self.queue, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.caseload_dock = self._dock("Caseload", "caseloadDock", self.caseload_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.details_dock = self._dock("Details", "detailsDock", self.details, Qt.DockWidgetArea.RightDockWidgetArea)
        self.details.attach(controller, caseload, self.queue, contacts=_centre_contacts(settings))
        self.status = ConsoleStatusBar(operator, tz=controller.model.tz, training=training)
        self.setStatusBar(self.status)
        self._build_menus(speeds)

        controller.model.set_offenders({o.id: (o.name, o.borough) for o in caseload.offenders.values()})
        worker.alertBatch.connect(self._on_alert_batch)
        worker.restored.connect(self._on_restored)
        worker.positions.connect(self._on_positions)
        if hasattr(worker, "addresses"):      # alert locations, looked up in the engine thread
            worker.addresses.connect(controller.model.set_locations)
        worker.stats.connect(self.status.update_stats)
        worker.stats.connect(self._on_stats)
        worker.details.connect(self._on_details)
        worker.zoneApplied.connect(self._on_zone_applied)
        worker.zoneRefused.connect(self._on_zone_refused)
        worker.failed.connect(self._warn)
        controller.sounded.connect(lambda aid: self.event.emit("alarm_sounded", {"alert_id": aid}))
        controller.handlingChanged.connect(self._on_handling_changed)
        controller.floodChanged.connect(lambda on, n: self.event.emit("flood", {"on": on, "new_alerts": n}))
        self.queue.acknowledgeRequested.connect(self.acknowledge)
        self.queue.groupAcknowledgeRequested.connect(self.acknowledge_group)
        self.queue.closeRequested.connect(self.close_alert)
        self.queue.shelveRequested.connect(self.shelve)
        self.queue.unshelveRequested.connect(self.unshelve)
        self.queue.alertSelected.connect(self.show_alert)
        self.caseload_list.offenderSelected.connect(self.show_offender)
        # every zone change (map, manager, import) goes through ZoneChanges: confirmation,
        # a second person's approval for court-ordered zones, an effective-from time
        self.zone_changes = ZoneChanges(self, approval=settings.get("zones/approval"))
        self.zone_manager: ZoneManager | None = None
        if hasattr(map_widget, "markerClicked"):
            map_widget.markerClicked.connect(self._marker_clicked)
            map_widget.zoneDrawn.connect(self._zone_drawn)
            map_widget.zoneEdited.connect(self.zone_changes.edit_from_map)
            map_widget.zoneDeleted.connect(self.zone_changes.delete_from_map)
            map_widget.ready.connect(self._map_ready)

        self.apply_theme(self.theme)
        self.resize(1600, 1000)
        self._restore_layout()
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(TICK_MS)
        self._tick_timer.timeout.connect(self._tick)
        self._tick_timer.start()

    # ----- construction --------------------------------------------------------------------
    def _dock(self, title, name, widget, area) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                      | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, d)
        return d

    def _action(self, menu, text, slot, shortcut=None, checkable=False) -> QAction:
        a = QAction(text, self)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        menu.addAction(a)
        self.addAction(a)
        return a

    def _build_menus(self, speeds) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "&Import zones (GeoJSON)…", self.import_zones, "Ctrl+I")
        self._action(f, "&Export zones (GeoJSON)…", self.export_zones, "Ctrl+E")
        f.addSeparator()
        self._action(f, "&Quit", self.request_quit, "Ctrl+Q")
        a = mb.addMenu("&Alert")
        self.act_ack = self._action(a, "&Acknowledge…", lambda: self._on_selected(self.acknowledge), "A")
        self.act_ack_group = self._action(a, "Acknowledge the offender's &group…",
                                          lambda: self._on_selected(self.acknowledge_group), "Shift+A")
        self.act_close = self._action(a, "&Close", lambda: self._on_selected(self.close_alert), "C")
        self.act_shelve = self._action(a, "&Shelve…", lambda: self._on_selected(self.shelve), "S")
        self._action(a, "&Unshelve first shelved", self.queue._unshelve, "U")
        a.addSeparator()
        self._action(a, "Next &unacknowledged", self.next_unacknowledged, "N")
        self._action(a, "&Focus filter", self.focus_filter, "F")
        self._action(a, "Si&lence alarm (does not acknowledge)", self.ctl.silence, "Ctrl+M")
        z = mb.addMenu("&Zones")
        self._action(z, "Draw &polygon", lambda: self.draw("polygon"), "Ctrl+Shift+P")
        self._action(z, "Draw &rectangle", lambda: self.draw("rectangle"), "Ctrl+Shift+R")
        self._action(z, "Draw &circle", lambda: self.draw("circle"), "Ctrl+Shift+C")
        z.addSeparator()
        self._action(z, "Zone &manager…", self.open_zone_manager, "Ctrl+Shift+Z")
        self._action(z, "&Edit selected zone on the map", self.edit_selected_zone, "Ctrl+Shift+E")
        self._action(z, "&Stop editing zones", lambda: self.map.stop_editing() if hasattr(self.map, "stop_editing") else None)
        v = mb.addMenu("&View")
        self._action(v, "Alert &queue", lambda: self.focus_dock(self.queue_dock, self.queue.table), "Ctrl+1")
        self._action(v, "&Caseload", lambda: self.focus_dock(self.caseload_dock, self.caseload_list.filter), "Ctrl+2")
        self._action(v, "&Details", lambda: self.focus_dock(self.details_dock, self.details), "Ctrl+3")
        self._action(v, "&Map (arrows pan, +/- zoom, ] [ next alert)",
                     lambda: self.map.focus_map() if hasattr(self.map, "focus_map") else self.map.setFocus(),
                     "Ctrl+0")
        v.addSeparator()
        self.act_dark = self._action(v, "&Dark theme (night shift)", self.toggle_theme, "Ctrl+Shift+D", checkable=True)
        self._action(v, "&Reset layout", self.reset_layout)
        self._action(v, "&Wall board (overview for the room)", self.show_wallboard, "Ctrl+Shift+W")
        if self.training and speeds:
            t = mb.addMenu("&Training")
            group = QActionGroup(self)
            for i, s in enumerate(speeds, start=1):
                act = self._action(t, f"Speed ×{s}", lambda _=False, s=s: self.set_speed(s),
                                   f"Ctrl+Alt+{i}", checkable=True)
                group.addAction(act)
                act.setChecked(s == self.settings.get("training/speed"))

    # ----- engine results ------------------------------------------------------------------
    def _on_alert_batch(self, changes: list, now: float) -> None:
        self.ctl.on_alert_batch(changes, now)
        touched = set()
        for change, alert in changes:
            state = self.ctl.model.row(alert.alert_id).handling.state
            open_ = state != "shelved" and (alert.state == "active" or state != "closed")
            self._set_alert_open(alert, open_)
            if alert.offender:
                touched.add(alert.offender)
            self.event.emit(f"alert_{change}", {"alert_id": alert.alert_id, "type": alert.type,
                                                "priority": alert.priority, "offender": alert.offender})
        self._refresh_markers(touched)
        self._send_zone_alarms()

    def _on_restored(self, changes: list, now: float) -> None:
        """Live restart: the engine came back from its checkpoint; so does the queue."""
        try:
            handlings = {d["alert_id"]: d for d in self.store.alerts()}
        except Exception as e:
            handlings = {}
            self._warn(f"Handling not read from the store: {e}")
        n = self.ctl.restore(changes, now, handlings)
        for _change, a in changes:
            h = handlings.get(a.alert_id, {}).get("handling", "unacknowledged")
            self._set_alert_open(a, h not in ("closed", "shelved"))
        self._refresh_markers({a.offender for _c, a in changes if a.offender})
        self._send_zone_alarms()
        self.event.emit("queue_restored", {"alerts": n, "ids": [a.alert_id for _c, a in changes]})

    def _on_handling_changed(self, alert_id: str, state: str) -> None:
        """A closed alert no longer colours its offender's marker or caseload row."""
        row = self.ctl.model.row(alert_id)
        if row is None or not row.alert.offender:
            return
        a = row.alert
        self._set_alert_open(a, state not in ("closed", "shelved"))   # shelved: off the map too
        self._refresh_markers({a.offender})
        self._send_zone_alarms()
        if a.offender == self._selected_offender:
            self.worker.request_details(a.offender)

    def _on_positions(self, moved: list) -> None:
        for m in moved:
            held = self._positions.get(m["device"])
            if held is not None and m["t"] < held["t"]:
                continue          # an older fix (reported late) never replaces the newer one
            self._positions[m["device"]] = m
        self.caseload_model.set_positions(moved)
        self._send_markers([m["device"] for m in moved])

    def _send_markers(self, devices) -> None:
        if not hasattr(self.map, "update_markers"):
            return
        by_device = self._by_device
        now = self.clock()
        out = []
        for dev in devices:
            m = self._positions.get(dev)
            off = by_device.get(dev)
            if m is None or off is None:
                continue
            stale = is_stale(m["t"], now, off.fix_interval_s)
            self._stale_sent[dev] = stale
            worst = self.caseload_model.worst(off.id)
            label = f"{off.id} {off.name}"
            if worst and m.get("address"):      # an alert's label says which street it is on
                label += f" · {m['address']}"
            out.append({"device": dev, "lat": m["lat"], "lon": m["lon"], "acc": m["acc"],
                        "label": label, "priority": worst,
                        "stale": stale, "t": m["t"]})
        if out:
            self.map.update_markers(out)

    # Zones on the map take the colour of their worst open exclusion or curfew alert (the
    # victim's street entered, the home left during curfew). A missed appointment does not
    # colour the probation office: the offender was not there, and the office is shared.
    ZONE_ALARM_TYPES = ("exclusion_entered", "curfew_absent")

    def _set_alert_open(self, alert, open_: bool) -> None:
        """An alert is open (not closed) or no longer: its offender's row and marker, and its
        zone if an exclusion or curfew alert, are coloured by it while it is open."""
        self.caseload_model.set_alert(alert.offender, alert.alert_id, alert.priority, open_)
        if alert.type in self.ZONE_ALARM_TYPES:
            self._zone_alerts.set(alert.zone, alert.alert_id, alert.priority, open_)

    def _send_zone_alarms(self) -> None:
        if not hasattr(self.map, "set_zone_alarms"):
            return
        worst = self._zone_alerts.worst_by_key()
        if worst != self._zone_alarms_sent:
            self._zone_alarms_sent = worst
            self.map.set_zone_alarms(worst)

    def _refresh_stale(self) -> None:
        """The tags' own clock: a tag that has gone silent turns stale on the map now, not when
        its next fix arrives (which may be never)."""
        if not hasattr(self.map, "update_markers"):
            return
        now = self.clock()
        by_device = self._by_device
        changed = [dev for dev, m in self._positions.items()
                   if (off := by_device.get(dev)) is not None
                   and is_stale(m["t"], now, off.fix_interval_s) != self._stale_sent.get(dev)]
        if changed:
            self._send_markers(changed)
            self.event.emit("stale_changed", {"devices": len(changed)})

    def _refresh_markers(self, offenders) -> None:
        devs = [self.caseload.offenders[o].device for o in offenders if o in self.caseload.offenders]
        self._send_markers(devs)

    def _on_stats(self, s: dict) -> None:
        pass

    def _on_details(self, d: dict) -> None:
        if d.get("offender") != self._selected_offender:
            return
        open_alerts = [(r.alert.priority, r.alert.type, r.alert.alert_id, r.alert.start) for r in self.ctl.model.rows()
                       if r.alert.offender == d["offender"] and r.handling.state != "closed"]
        self.details.show_details(d, open_alerts)
        if hasattr(self.map, "select_device") and d.get("device"):
            self.map.select_device(d["device"], d.get("trail", []), now=d.get("now"))

    # ----- selection -----------------------------------------------------------------------
    def show_alert(self, alert_id: str) -> None:
        row = self.ctl.model.row(alert_id)
        if row is None:
            return
        a = row.alert
        if a.offender:
            self.show_offender(a.offender)
        pos = self._positions.get(a.device or "")
        where = (a.evidence or {}).get("fixes") if isinstance(a.evidence, dict) else None
        if where and isinstance(where, list) and isinstance(where[-1], dict) and "lat" in where[-1]:
            self.map.pan_to(where[-1]["lat"], where[-1]["lon"], 16) if hasattr(self.map, "pan_to") else None
        elif pos and hasattr(self.map, "pan_to"):
            self.map.pan_to(pos["lat"], pos["lon"], 16)

    def show_offender(self, offender_id: str) -> None:
        if offender_id not in self.caseload.offenders:
            return
        self._selected_offender = offender_id
        self._selected_device = self.caseload.offenders[offender_id].device
        self.worker.request_details(offender_id)
        pos = self._positions.get(self._selected_device or "")
        if pos and hasattr(self.map, "pan_to"):      # the caseload's choice is shown on the map
            self.map.pan_to(pos["lat"], pos["lon"], 16)

    def _marker_clicked(self, device: str) -> None:
        off = self._by_device.get(device)
        if off:
            self.show_offender(off.id)

    # ----- operator actions ----------------------------------------------------------------
    def _on_selected(self, fn) -> None:
        aid = self.queue.selected_alert()
        if aid:
            fn(aid)
        else:
            self.statusBar().showMessage("Select an alert first (Ctrl+1 to go to the queue)", 4000)

    def acknowledge(self, alert_id: str) -> None:
        row = self.ctl.model.row(alert_id)
        if row is None or row.handling.state != "unacknowledged":
            text = "This alert is not waiting for acknowledgement"
            if row is not None and row.handling.acked_by:      # who took it, and when
                at = self.ctl.model._clock(row.handling.acked_at) if row.handling.acked_at else ""
                text += f": {row.handling.state} by {row.handling.acked_by}" + (f" at {at}" if at else "")
            self.statusBar().showMessage(text, 6000)
            if row is not None:
                self.event.emit("handling_refused", {"alert_id": alert_id, "what": "acknowledged",
                                                     "reason": text})
            return
        # The dialog names the alert it will acknowledge (who, what, when it started): the
        # operator confirms the identity of what was aimed at, whatever moved meanwhile.
        dlg = AckDialog(row.alert, self._identity(row), self, location=self._location_text(row))
        if dlg.exec():
            action, note = dlg.values()
            self._do(lambda: self.ctl.acknowledge(alert_id, action, note), "acknowledged", alert_id,
                     action=action)

    def _location_text(self, row) -> str:
        """Where the tag is now and where the alert happened, as the operator reads it out."""
        a = row.alert
        off = self.caseload.offenders.get(a.offender) if a.offender else None
        now = self._positions.get(off.device) if off is not None else None
        parts = []
        if now and now.get("address_text"):
            parts.append(f"Last fix: {now['address_text']} at {self.ctl.model._clock(now['t'])}")
        if row.location and not (now and now.get("address_text") == row.location):
            parts.append(f"Alert at: {row.location}")
        return "\n".join(parts)

    def _identity(self, row) -> str:
        a = row.alert
        who = f"{a.offender or ''} {row.offender_name}".strip() or "system"
        return f"{who} · started {self.ctl.model._clock(a.start)} ({fmt_age(self.ctl.now - a.start)})"

    def acknowledge_group(self, alert_id: str) -> None:
        """One acknowledgement for all the unacknowledged alerts of this alert's offender; the
        log gets one entry per alert (EEMUA 191 grouping)."""
        group = self.ctl.model.group_of(alert_id)
        if len(group) <= 1:
            self.acknowledge(alert_id)
            return
        rows = [self.ctl.model.row(aid) for aid in group]
        worst = min(rows, key=lambda r: PRIORITY_RANK[r.alert.priority])   # its rules apply to all
        kinds = ", ".join(sorted({TYPE_TEXT.get(r.alert.type, r.alert.type) for r in rows}))
        label = f"{self._identity(worst)} — GROUP of {len(group)} alerts: {kinds}"
        dlg = AckDialog(worst.alert, label, self, location=self._location_text(worst))
        dlg.setWindowTitle(f"Acknowledge {len(group)} alerts of {worst.alert.offender}")
        if dlg.exec():
            action, note = dlg.values()
            self._do(lambda: self.ctl.acknowledge_group(group, action, note), "acknowledged",
                     alert_id, action=action, group=group)

    def close_alert(self, alert_id: str) -> None:
        self._do(lambda: self.ctl.close(alert_id), "closed", alert_id)

    def shelve(self, alert_id: str) -> None:
        row = self.ctl.model.row(alert_id)
        from ui.console.shelvedialog import shelve_refusal
        problem = shelve_refusal(row.alert) if row else "no such alert"
        if problem:
            self.statusBar().showMessage(f"Cannot shelve: {problem}", 6000)
            self.event.emit("shelve_refused", {"alert_id": alert_id, "reason": problem})
            return
        now = self.ctl.now
        try:
            end = shift_end(now, self.settings.get("shift/end"), self.ctl.model.tz)
        except ValueError:
            end = None
        dlg = ShelveDialog(row.alert, now, max_hours=self.ctl.max_shelve_hours, shift_end_at=end,
                           tz=self.ctl.model.tz, parent=self)
        if dlg.exec():
            reason, until = dlg.values()
            self._do(lambda: self.ctl.shelve(alert_id, reason, until), "shelved", alert_id, until=until)

    def unshelve(self, alert_id: str) -> None:
        self._do(lambda: self.ctl.unshelve(alert_id), "unshelved", alert_id)

    def _do(self, fn, what: str, alert_id: str, **fields) -> None:
        try:
            fn()
        except (HandlingRefused, ValueError) as e:   # HandlingError from the store is a ValueError
            self._warn(f"Alert not {what}: {e}")
            self.event.emit("handling_refused", {"alert_id": alert_id, "what": what, "reason": str(e)})
            return
        if self.centre is not None and not self.centre.local_fault(alert_id):
            # client mode: on its way to the record; ``centre_recorded``/``centre_refused`` follow
            self.event.emit(f"alert_{what}_sent", {"alert_id": alert_id, "operator": self.operator, **fields})
            self.statusBar().showMessage(f"Alert {what}: sent to the centre…", 4000)
            return
        self.event.emit(f"alert_{what}", {"alert_id": alert_id, "operator": self.operator, **fields})
        self.statusBar().showMessage(f"Alert {what} — recorded in the acknowledgement log", 4000)

    def next_unacknowledged(self) -> None:
        for r in range(self.ctl.proxy.rowCount()):
            aid = self.ctl.proxy.alert_id_at(r)
            if self.ctl.model.row(aid).handling.state == "unacknowledged":
                self.focus_dock(self.queue_dock, self.queue.table)
                self.queue.select_alert(aid)
                return

    def focus_filter(self) -> None:
        self.focus_dock(self.queue_dock, self.queue.filter)
        self.queue.filter.selectAll()

    def focus_dock(self, dock: QDockWidget, widget: QWidget) -> None:
        dock.show()
        dock.raise_()
        widget.setFocus(Qt.FocusReason.ShortcutFocusReason)

    # ----- zones ---------------------------------------------------------------------------
    def zone_features(self) -> list[dict]:
        out = []
        for z in self.caseload.zones.values():
            f = z.feature() if hasattr(z, "feature") else {"type": "Feature", "id": z.id, "geometry": z.geometry,
                                                           "properties": {"name": z.name}}
            f = json.loads(json.dumps(f))
            f["properties"] = dict(f.get("properties") or {}, kind=self._zone_kinds.get(z.id, "exclusion"),
                                   id=z.id, name=z.name)
            if z.radius_m:
                f["properties"]["radius_m"] = z.radius_m
            out.append(f)
        return out

    def _map_ready(self) -> None:
        self.map.set_zones(self.zone_features())
        self._zone_alarms_sent = None
        self._send_zone_alarms()
        self._send_markers(list(self._positions))
        self.event.emit("map_ready", {"seconds": getattr(self.map, "page_info", {}).get("readyAfterS")})

    def draw(self, shape: str) -> None:
        if hasattr(self.map, "start_drawing"):
            self.map.start_drawing(shape)
            self.statusBar().showMessage(f"Drawing a {shape}: click on the map; Esc cancels", 8000)

    def _new_zone_id(self) -> str:
        while True:
            self._zone_seq += 1
            zid = f"Z-OP-{self._zone_seq:04d}"
            if zid not in self.caseload.zones and zid not in self._extra_zones:
                return zid

    def _zone_drawn(self, feature: dict) -> None:
        offenders = [(o.id, o.name) for o in sorted(self.caseload.offenders.values(), key=lambda o: o.id)]
        dlg = ZoneDialog(feature, offenders, zone_id=self._new_zone_id(), preselect=self._selected_offender,
                         parent=self)
        if dlg.exec():
            zone, req = dlg.result_pair()
            self.save_zone(zone, dlg.offender.currentData(), req)
        if hasattr(self.map, "clear_drafts"):
            self.map.clear_drafts()

    # A zone edit is the engine's to accept: it is sent to the engine first and recorded in the
    # store (a new version, audited, with the engine's version number) only when the engine has
    # applied it. An edit the engine refuses is not recorded; the operator sees the engine's
    # reason (the worker's ``failed``). If the store cannot record an applied edit, the operator
    # is told that too. In client mode the record takes the edit first (``_to_centre``) and the
    # decider applies it from the record.
    def _send_zone(self, zid: str, edit: dict) -> None:
        self._pending_zones.setdefault(zid, collections.deque()).append(edit)

    def save_zone(self, zone: dict, offender_id: str, requirement: dict) -> None:
        """A new zone for an offender: to the engine, then (if applied) a version in the store."""
        if self.centre is not None:      # client mode: to the record; the decider applies it
            props = dict(zone.get("properties") or {}, offender=offender_id, requirement=requirement,
                         kind=requirement["type"])
            self._zone_kinds[zone["id"]] = requirement["type"]
            self._to_centre(dict(zone, properties=props))
            return
        self._send_zone(zone["id"], {"feature": zone, "who": self.operator, "removed": False,
                                     "offender": offender_id, "kind": requirement["type"]})
        self.worker.attach_zone(zone, offender_id, requirement)

    def _zone_edited(self, feature: dict) -> None:
        if self.centre is not None:
            self._to_centre(feature)
            return
        self._send_zone(str(feature.get("id")), {"feature": feature, "who": self.operator,
                                                 "removed": False})
        self.worker.update_zone(feature)

    def _zone_deleted(self, zone_id: str) -> None:
        gone = {"type": "Feature", "id": zone_id, "geometry": None, "properties": {}}
        if self.centre is not None:
            self._to_centre(gone, removed=True)
            return
        self._send_zone(zone_id, {"feature": gone, "who": self.operator, "removed": True})
        self.worker.remove_zone(zone_id)

    def _to_centre(self, feature: dict, removed: bool = False) -> None:
        """Client mode: a zone version to the record, on the version this console shows (the
        record refuses it if someone saved another meanwhile); the map changes when the
        decider has applied it, and goes back to the zones in force if it is refused."""
        zid = str(feature.get("id"))
        try:
            self.centre.save_zone(feature, self.operator, removed=removed)
        except ValueError as e:          # the centre cannot be reached: nothing was recorded
            self._on_zone_refused(zid, str(e))
            return
        self.event.emit("zone_sent", {"zone": zid, "removed": removed,
                                      "base_version": self.centre.zone_versions.get(zid)})
        self.statusBar().showMessage(f"Zone {zid}: sent to the centre…", 6000)

    def _on_zone_applied(self, zone_id: str, version: int) -> None:
        self.event.emit("zone_applied", {"zone": zone_id, "version": version})
        queue = self._pending_zones.get(zone_id)
        edit = queue.popleft() if queue else None
        if edit is not None:
            self._record_applied_zone(zone_id, version, edit)
        if hasattr(self.map, "set_zones"):
            QTimer.singleShot(0, lambda: self.map.set_zones(self.zone_features()))

    def _on_zone_refused(self, zone_id: str, reason: str) -> None:
        queue = self._pending_zones.get(zone_id)
        if queue:
            queue.popleft()
        self.event.emit("zone_refused", {"zone": zone_id, "reason": reason})
        if self.centre is not None:       # client mode: say why; the map shows what is in force
            self._warn(f"Zone {zone_id}: {reason}")
            if hasattr(self.map, "set_zones"):
                QTimer.singleShot(0, lambda: self.map.set_zones(self.zone_features()))

    def _record_applied_zone(self, zone_id: str, version: int, edit: dict) -> None:
        feature, removed = edit["feature"], edit["removed"]
        try:
            try:      # the engine's version, so that alerts' zone_version names this geometry
                stored = self.store.record_zone_edit(feature, edit["who"], version or None,
                                                     removed=removed)
            except StoreError:     # the store is ahead of this engine (an older run): next one
                stored = self.store.record_zone_edit(feature, edit["who"], None, removed=removed)
        except Exception as e:
            self._warn(f"Zone {zone_id} is applied by the engine but NOT recorded in the store: {e}")
            return
        if "kind" in edit and not removed:
            if edit.get("offender"):
                self._zone_kinds[zone_id] = edit["kind"]
                self._extra_zones[zone_id] = feature
            else:
                self._zone_kinds.setdefault(zone_id, edit["kind"])
        self.event.emit("zone_recorded", {"zone": zone_id, "version": stored, "removed": removed})
        if edit.get("offender"):
            self.event.emit("zone_saved", {"zone": zone_id, "offender": edit["offender"],
                                           "type": edit["kind"]})

    def import_zones(self, path: str | None = None) -> None:
        """A preview and a diff first; nothing is replaced until confirmed (ZoneChanges)."""
        self.zone_changes.import_file(path)

    def open_zone_manager(self) -> ZoneManager:
        if self.zone_manager is None:
            self.zone_manager = ZoneManager(self.zone_changes, self)
        self.zone_manager.refresh()
        self.zone_manager.show()
        self.zone_manager.raise_()
        self.zone_manager.activateWindow()
        return self.zone_manager

    def edit_selected_zone(self) -> None:
        """Handles on the zone selected in the manager (or the selected offender's first zone)."""
        zid = None
        if self.zone_manager is not None and self.zone_manager.current():
            zid = self.zone_manager.current()["zone"]
        elif self._selected_offender in self.caseload.offenders:
            zid = next((r.zone for r in self.caseload.offenders[self._selected_offender].requirements
                        if r.zone), None)
        if zid is None:
            self.statusBar().showMessage("Select a zone in the zone manager (Ctrl+Shift+Z) or click one "
                                         "with the map's pencil tool", 6000)
        else:
            self.zone_changes.edit_on_map(zid)

    def export_zones(self, path: str | None = None) -> None:
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export zones", "zones.geojson", "GeoJSON (*.geojson)")
        if not path:
            return
        doc = {"type": "FeatureCollection", "features": self.zone_features()}
        pathlib.Path(path).write_text(json.dumps(doc, indent=1), encoding="utf-8")
        self.statusBar().showMessage(f"Zones exported to {path}", 4000)

    # ----- view ----------------------------------------------------------------------------
    def set_speed(self, speed: int) -> None:
        self.worker.set_speed(speed)
        self.settings.set("training/speed", speed)
        self.event.emit("training_speed", {"speed": speed})

    def toggle_theme(self) -> None:
        self.apply_theme("light" if self.theme == "dark" else "dark")
        self.settings.set("ui/theme", self.theme)

    def apply_theme(self, name: str) -> None:
        self.theme = name
        p = apply_theme(QApplication.instance(), name, self.settings.get("ui/queue_font_pt"))
        self.ctl.model.set_palette(p)
        self.caseload_model.palette = p
        self.details.set_palette(p)
        self.act_dark.setChecked(name == "dark")
        # the watermark's look comes from the theme (QLabel#watermark): it is in the banner strip
        if self.wallboard is not None:
            self.wallboard.set_palette(p)
        if hasattr(self.map, "set_theme"):
            self.map.set_theme(name)

    def showEvent(self, event):  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self._sized:      # first run: give the docks room (later runs restore the layout)
            self._sized = True
            QTimer.singleShot(0, self._default_dock_sizes)
            QTimer.singleShot(300, self._default_dock_sizes)   # again once maximised by the WM

    def _default_dock_sizes(self) -> None:
        # From 1366x768 up: on a narrow screen the caseload and the details share the right
        # column as tabs, so the map keeps most of the width; the queue takes about 45 % of
        # the height (at 1920x1080 some 14 rows), half of it on a screen lower than 900 px.
        w, h = self.width(), self.height()
        if self.screen() is not None:     # the screen it opens on (maximised), not the first resize
            avail = self.screen().availableGeometry()
            w, h = min(w, avail.width()), min(h, avail.height())
        if w < 1600:
            self.tabifyDockWidget(self.details_dock, self.caseload_dock)
            self.details_dock.raise_()
            self.resizeDocks([self.details_dock], [min(420, w // 3)], Qt.Orientation.Horizontal)
        else:
            self.resizeDocks([self.caseload_dock, self.details_dock], [360, 440], Qt.Orientation.Horizontal)
        share = 0.5 if h < 900 else 0.45        # a low screen: the queue is the work, half of it
        self.resizeDocks([self.queue_dock], [max(260, int(h * share))], Qt.Orientation.Vertical)

    def resizeEvent(self, event):  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        self._place_watermark()

    def _place_watermark(self) -> None:
        """The watermark lives in the banner strip above the map (see __init__): nothing to place."""

    def _tick(self) -> None:
        now = self.clock()
        self.ctl.tick(now)
        self.caseload_model.tick(now)
        self.status.set_time(now)
        self._ticks += 1
        if self._ticks % STALE_EVERY == 0:
            self._refresh_stale()
        if self.wallboard is not None and self.wallboard.isVisible():
            self.wallboard.refresh(self.ctl.model, self.status, now)
        if self._selected_offender and self._ticks % DETAILS_EVERY == 0:
            self.worker.request_details(self._selected_offender)     # keep the charts current

    def show_wallboard(self) -> None:
        """The overview for the room's wall: counts per priority, feed health, the oldest
        unacknowledged alert; a separate window to put on another monitor."""
        from ui.console.wallboard import WallBoard
        if self.wallboard is None:
            self.wallboard = WallBoard(training=self.training)
            self.wallboard.set_palette(palette(self.theme))
        self.wallboard.refresh(self.ctl.model, self.status, self.clock())
        self.wallboard.show()
        self.wallboard.raise_()
        self.event.emit("wallboard_shown", {})

    def _warn(self, text: str) -> None:
        self.event.emit("warning", {"text": text})
        self.statusBar().showMessage(text, 8000)
        if self.isVisible() and QApplication.platformName() not in ("offscreen", "minimal"):
            warn(self, "Monitoring console", text)        # plain text: it may quote a zone name

    # ----- layout persistence --------------------------------------------------------------
    def _restore_layout(self) -> None:
        self._default_state = self.saveState(STATE_VERSION)
        qs = window_state()
        geo = qs.value("window/geometry")
        self.layout_account = self.operator       # dock layout and columns are per person
        state = qs.value(self._account_key("window/state"))
        # First start, or a saved geometry that does not fit this screen (another monitor, a
        # lower resolution): the console fills the available screen instead.
        self.start_maximised = not (isinstance(geo, QByteArray) and self._saved_geometry_fits(qs))
        if not self.start_maximised:
            self.restoreGeometry(geo)
        self._sized = isinstance(state, QByteArray) and self.restoreState(state, STATE_VERSION)
        self._default_header = self.queue.table.horizontalHeader().saveState()
        header = qs.value(self._account_key("queue/header"))
        if isinstance(header, QByteArray):
            self.queue.table.horizontalHeader().restoreState(header)

    def _account_key(self, key: str) -> str:
        """Window geometry is the workstation's; the dock layout and the queue's columns are the
        signed-in person's, so one person's layout (an administrator's, without the queue) is
        never the next person's."""
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in (self.layout_account or ""))
        return f"accounts/{name}/{key}" if name else key

    def use_account_layout(self, account: str) -> None:
        """Someone else signed in: keep the previous person's layout, show this person's (the
        default layout if they have none)."""
        if account == self.layout_account:
            return
        if self.layout_account:
            self.save_layout()
        self.layout_account = account
        qs = window_state()
        state = qs.value(self._account_key("window/state"))
        if not (isinstance(state, QByteArray) and self.restoreState(state, STATE_VERSION)):
            self.reset_layout()
        header = qs.value(self._account_key("queue/header"))
        self.queue.table.horizontalHeader().restoreState(
            header if isinstance(header, QByteArray) else self._default_header)

    def _saved_geometry_fits(self, qs) -> bool:
        """Whether the saved window (its normal, unmaximised frame) lies within the available
        area of the screen it would open on; a saved geometry larger than the screen is not used."""
        normal = qs.value("window/normal")
        if not isinstance(normal, QRect) or not normal.isValid():
            return False
        screen = QGuiApplication.screenAt(normal.center()) or self.screen() or QGuiApplication.primaryScreen()
        return screen is not None and screen.availableGeometry().contains(normal)

    def save_layout(self) -> None:
        qs = window_state()
        qs.setValue("window/geometry", self.saveGeometry())
        qs.setValue("window/normal", self.normalGeometry() if self.isMaximized() else self.frameGeometry())
        qs.setValue(self._account_key("window/state"), self.saveState(STATE_VERSION))
        qs.setValue(self._account_key("queue/header"), self.queue.table.horizontalHeader().saveState())
        qs.sync()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, STATE_VERSION)
        for d in (self.queue_dock, self.caseload_dock, self.details_dock):
            d.show()
        self._default_dock_sizes()

    def unacknowledged_criticals(self) -> int:
        return sum(1 for r in self.ctl.model.rows()
                   if r.alert.priority == "critical" and r.handling.state == "unacknowledged")

    def may_quit(self) -> bool:
        """Quitting (Ctrl+Q, File → Quit, the window's ×, Alt+F4) is refused while the console
        is locked or signed out, and asks first (default No) while critical alerts wait for
        acknowledgement: a console that quits stops monitoring."""
        if getattr(self, "_quit_without_asking", False):
            return True
        rv = getattr(self, "role_views", None)
        if rv is not None and rv.is_locked:
            return False
        n = self.unacknowledged_criticals()
        if not n:
            return True
        box = QMessageBox(QMessageBox.Icon.Warning, "Quit the monitoring console?",
                          f"{n} critical alert{'s are' if n != 1 else ' is'} not acknowledged. "
                          "Quitting stops this console monitoring and sounding them.\n\n"
                          "Quit anyway?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("quitConfirm")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setEscapeButton(QMessageBox.StandardButton.No)
        self.quit_box = box
        yes = box.exec() == QMessageBox.StandardButton.Yes
        self.event.emit("quit_asked", {"unacknowledged_critical": n, "quit": yes})
        return yes

    def request_quit(self) -> bool:
        """A person asks to quit (Ctrl+Q, File → Quit): ``may_quit`` first."""
        return self.may_quit() and self.close_without_asking()

    def close_without_asking(self) -> bool:
        """The program (not a person) closes the console: --quit-after, the tests."""
        self._quit_without_asking = True
        return self.close()

    def closeEvent(self, event):  # noqa: N802 (Qt API)
        # the window manager's close (the title bar's ×, Alt+F4) is a person asking to quit;
        # close() from the program (tests, --quit-after, request_quit) is not asked again
        if event.spontaneous() and not self.may_quit():
            event.ignore()
            return
        self.save_layout()
        self._tick_timer.stop()
        if self.wallboard is not None:
            self.wallboard.close()
        if hasattr(self.map, "shutdown"):
            self.map.shutdown()
        super().closeEvent(event)
