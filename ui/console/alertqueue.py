"""The alert queue: what the operators do with alerts, and the dock that shows them.

``AlertQueueController`` owns the table model and carries out the operators' actions
(acknowledge, close, shelve, unshelve), each recorded in the store's acknowledgement log under
the operator's name before the queue shows it. It also sounds new critical and high alerts
(``AlarmSound``; silencing is not acknowledging), brings shelved alerts back when their time is
up (sounding again if still active) and detects alert floods.

``AlertQueueDock`` is the widget: the counts per priority (always visible, EEMUA 191), filter
bar, flood banner, the queue table (large font, bold priority column; frozen while the pointer
is over it, so no row moves under a click), action buttons (acknowledge one alert, or the
offender's whole group at once, each alert still recorded on its own) and the shelved list,
collapsible and hidden while nothing is shelved.
"""
from __future__ import annotations

import math
import pathlib
import struct
import wave

from PySide6.QtCore import (QAbstractListModel, QEvent, QModelIndex, QObject, Qt, QTimer, QUrl,
                            Signal)
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QListView, QPushButton,
                               QTableView, QToolButton, QVBoxLayout, QWidget)

from monitorapp.engine.alerts import ALERT_TYPES, Alert
from ui.console.alertmodel import (COL_LOCATION, COL_OFFENDER, COL_PRIORITY, COL_TYPE, AlertFilterProxy, AlertTableModel, Handling,
                           TYPE_TEXT, fmt_span)
from ui.console.shelvedialog import ShelveRefused, check_shelve
from ui.text import tooltip
from ui.theme import PRIORITY_TEXT

SOUND_PATH = pathlib.Path(__file__).resolve().parents[2] / "resources" / "sounds" / "alert.wav"
RING_REPEAT_MS = 15_000
KEEP_CLOSED_S = 12 * 3600      # closed alerts stay in the queue's model this long (then the store's record)


class HandlingRefused(ValueError):
    """An operator action the rules do not allow (the message says why)."""


def ensure_alert_wav(path: pathlib.Path = SOUND_PATH) -> pathlib.Path:
    """Write the alert tone (two short 880/660 Hz beeps, 16-bit mono) if it is missing."""
    if path.exists() and path.stat().st_size > 44:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 22050
    frames = bytearray()
    for freq, dur in ((880, 0.18), (0, 0.07), (660, 0.22)):
        n = int(rate * dur)
        for i in range(n):
            env = min(1.0, i / 200, (n - i) / 200)     # no clicks at the edges
            v = 0.45 * env * math.sin(2 * math.pi * freq * i / rate) if freq else 0.0
            frames += struct.pack("<h", int(v * 32767))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


class AlarmSound(QObject):
    """The audible alarm. Uses QtMultimedia when it loads; otherwise (no audio libraries, no
    device, offscreen) falls back to the system beep, so a missing sound never stops alerting."""

    def __init__(self, enabled: bool = True, parent=None):
        super().__init__(parent)
        self.enabled = enabled
        self.backend = "beep"
        self.rings = 0
        self._effect = None
        try:
            from PySide6.QtMultimedia import QMediaDevices, QSoundEffect
            if QMediaDevices.audioOutputs():
                self._effect = QSoundEffect(self)
                self._effect.setSource(QUrl.fromLocalFile(str(ensure_alert_wav())))
                self._effect.setVolume(0.8)
                self.backend = "qtmultimedia"
            else:
                self.backend = "beep (no audio output)"
        except ImportError as e:    # e.g. libpulse missing: still alert, visually and by beep
            self.backend = f"beep ({e.__class__.__name__}: {e})"

    def ring(self) -> None:
        if not self.enabled:
            return
        self.rings += 1
        if self._effect is not None:
            self._effect.play()
        else:
            QApplication.beep()

    def stop(self) -> None:
        if self._effect is not None:
            self._effect.stop()


class AlertQueueController(QObject):
    """The operators' actions on alerts, recorded in the acknowledgement log."""

    handlingChanged = Signal(str, str)      # alert_id, new handling state
    floodChanged = Signal(bool, int)        # on, new alerts within the window
    sounded = Signal(str)                   # alert_id that rang the alarm
    shelvedChanged = Signal(int)            # number of shelved alerts
    newAlerts = Signal(list)                # alert ids inserted into the queue
    stepRecorded = Signal(str)              # alert id: its response in the record may have changed
    # asked when an alert is closed with mandatory protocol steps open (issue 21): a callable
    # (alert id, open steps) -> ({step id: reason}, note) or None to stay open; the details
    # panel sets it (ui.console.details.AlertResponsePanel)
    ask_skips = None

    def __init__(self, store, operator: str, *, escalation: dict | None = None,
                 flood_count: int = 10, flood_window_s: float = 600, max_shelve_hours: float = 8.0,
                 sound: AlarmSound | None = None, tz=None, parent=None):
        super().__init__(parent)
        self.store = store
        self.operator = operator
        self.model = AlertTableModel(self, escalation=escalation, clock_tz=tz)
        self.proxy = AlertFilterProxy(self.model, self)
        self.shelved = ShelvedListModel(self.model, self)
        self.sound = sound or AlarmSound(parent=self)
        self.flood_count, self.flood_window_s = flood_count, flood_window_s
        self.max_shelve_hours = max_shelve_hours
        self.flood = False
        self.now = 0.0
        self._ringing: set[str] = set()
        self._seen: list[float] = []
        self._next_forget = 0.0
        self._flash = False
        self._ring_timer = QTimer(self)
        self._ring_timer.setInterval(RING_REPEAT_MS)
        self._ring_timer.timeout.connect(self._repeat_ring)

    # ----- from the engine ---------------------------------------------------------------
    def on_alert_batch(self, changes: list[tuple[str, Alert]], now: float) -> None:
        """A batch of (change, alert) from the engine worker, in the main thread."""
        self.now = max(self.now, now)
        before = self.model.rowCount()
        sounding = self.model.apply_changes(changes, now)
        new_ids = [self.model.row_at(r).alert.alert_id for r in range(before, self.model.rowCount())]
        self._seen.extend([now] * len(new_ids))
        for aid, change in sounding:
            row = self.model.row(aid)
            if row.handling.state == "shelved":
                continue      # shelved: silent until it returns
            if row.alert.priority in ("critical", "high"):
                self._ring(aid)
        if new_ids:
            self.newAlerts.emit(new_ids)
        self._check_flood()
        self._update_shelved()

    def restore(self, changes: list[tuple[str, Alert]], now: float, handlings: dict[str, dict]) -> int:
        """Alerts open when the engine was checkpointed, with their handling from the store's
        log; only those still unacknowledged sound again. Returns how many were restored."""
        self.now = max(self.now, now)
        before = self.model.rowCount()
        self.model.apply_changes(changes, now)
        for r in range(before, self.model.rowCount()):
            row = self.model.row_at(r)
            h = handlings.get(row.alert.alert_id)
            if h and h.get("handling") in ("acknowledged", "closed", "shelved"):
                row.handling = Handling(state=h["handling"], acked_at=h.get("handled_at"),
                                        acked_by=h.get("handled_by"), action=h.get("action_code"),
                                        shelved_until=h.get("shelved_until"), shelve_reason=h.get("shelved_reason"),
                                        state_before_shelve="acknowledged" if h.get("action_code") else None)
            elif row.alert.state == "active" and row.alert.priority in ("critical", "high"):
                self._ring(row.alert.alert_id)
        self.model.tick(self.now, self._flash)
        self._update_shelved()
        return self.model.rowCount() - before

    def tick(self, now: float) -> None:
        """Clock tick (a few times a second from the main window): ages, flashing, shelf expiry."""
        self.now = max(self.now, now)
        self._flash = not self._flash
        self._expire_shelving()
        self._check_flood()
        if self.now >= self._next_forget and not self.proxy.frozen:    # never under the pointer
            self._next_forget = self.now + 600.0
            self.model.forget_closed(self.now - KEEP_CLOSED_S)
        self.model.tick(self.now, self._flash)
        self.shelved.tick()       # the countdowns ("back in 14 min 59 s") move every tick

    # ----- operator actions --------------------------------------------------------------
    def acknowledge(self, alert_id: str, action: str, note: str) -> None:
        from ui.console.ackdialog import ack_problem
        row = self._row(alert_id)
        if row.handling.state != "unacknowledged":
            raise HandlingRefused(f"alert is {row.handling.state}, not unacknowledged")
        problem = ack_problem(row.alert.priority, action, note)
        if problem:
            raise HandlingRefused(problem)
        self.store.acknowledge(alert_id, self.operator, action, note)
        h = Handling(state="acknowledged", acked_at=self.now, acked_by=self.operator,
                     action=action, note=note)
        self._ringing.discard(alert_id)
        self._set(alert_id, h)

    def acknowledge_group(self, alert_ids: list[str], action: str, note: str) -> list[str]:
        """One acknowledgement for an offender's group of alerts: each is checked and recorded
        in the log on its own (same action and note, one entry per alert). All are checked
        before any is recorded, so a refusal records none. Returns the ids acknowledged."""
        from ui.console.ackdialog import ack_problem
        todo = []
        for aid in alert_ids:
            row = self._row(aid)
            if row.handling.state != "unacknowledged":
                continue          # someone else took it meanwhile: nothing to do for it
            problem = ack_problem(row.alert.priority, action, note)
            if problem:
                raise HandlingRefused(problem)
            todo.append(aid)
        for aid in todo:
            self.acknowledge(aid, action, note)
        return todo

    def close(self, alert_id: str, note: str = "", skipped: dict | None = None) -> None:
        row = self._row(alert_id)
        if row.alert.state != "cleared":
            raise HandlingRefused("an alert can be closed only once its condition has cleared")
        if row.handling.state not in ("acknowledged",):
            raise HandlingRefused("acknowledge the alert before closing it")
        skipped, note = self._skips(alert_id, skipped, note)
        self.store.close(alert_id, self.operator, note, skipped)
        h = Handling(**{**row.handling.__dict__, "state": "closed", "closed_at": self.now,
                        "closed_by": self.operator})
        self._set(alert_id, h)

    def shelve(self, alert_id: str, reason: str, until: float) -> None:
        row = self._row(alert_id)
        if row.handling.state in ("closed", "shelved"):
            raise HandlingRefused(f"alert is already {row.handling.state}")
        try:
            check_shelve(row.alert, reason, until, self.now, self.max_shelve_hours)
        except ShelveRefused as e:
            raise HandlingRefused(str(e)) from None
        self.store.shelve(alert_id, self.operator, reason, until)
        h = Handling(**{**row.handling.__dict__, "state": "shelved", "shelved_until": until,
                        "shelved_by": self.operator, "shelve_reason": reason,
                        "state_before_shelve": row.handling.state})
        self._ringing.discard(alert_id)
        self._set(alert_id, h)

    def unshelve(self, alert_id: str, *, expired: bool = False) -> None:
        row = self._row(alert_id)
        if row.handling.state != "shelved":
            raise HandlingRefused("alert is not shelved")
        if not expired:
            # an expired shelving has ended by itself in the store (its record holds the expiry)
            self.store.unshelve(alert_id, self.operator)
        h = Handling(**{**row.handling.__dict__, "state": row.handling.state_before_shelve or "unacknowledged",
                        "shelved_until": None, "state_before_shelve": None})
        self._set(alert_id, h)
        if row.alert.state == "active":
            self._ring(alert_id, force=True)

    def record_step(self, alert_id: str, step: str, outcome: str, reference: str = "",
                    note: str = "") -> None:
        """A step of the alert's response (issue 21), recorded under this operator's name."""
        self._row(alert_id)
        self.store.record_step(alert_id, self.operator, step, outcome, reference or None, note or None)
        self.stepRecorded.emit(alert_id)

    def response_of(self, alert_id: str) -> dict:
        """The alert's protocol checklist, timeline and open mandatory steps, from the store."""
        from monitorapp.response.timeline import checklist, open_mandatory, timeline
        row = self._row(alert_id)
        if self.store is None:
            return {"steps": [], "timeline": [], "open": []}
        steps = self.store.protocol_steps(alert_id) if hasattr(self.store, "protocol_steps") else []
        entries = self.store.ack_log(alert_id)
        return {"steps": checklist(steps, entries, row.alert.raised_at, self.now),
                "timeline": timeline(entries), "open": open_mandatory(steps, entries)}

    def _skips(self, alert_id: str, skipped: dict | None, note: str) -> tuple[dict | None, str]:
        """The reasons for the open mandatory steps: given, asked for, or left to the store."""
        if skipped is not None or self.ask_skips is None:
            return skipped, note
        try:
            open_steps = self.response_of(alert_id)["open"]
        except Exception:             # noqa: BLE001 - not readable now: the store refuses what is missing
            return None, note
        if not open_steps:
            return None, note
        answer = self.ask_skips(alert_id, open_steps)
        if answer is None:
            raise HandlingRefused("not closed: the protocol's mandatory steps are still open")
        reasons, typed = answer
        return reasons, typed or note

    def silence(self) -> None:
        """Stop the sound. The alerts stay unacknowledged and keep flashing."""
        self._ringing.clear()
        self._ring_timer.stop()
        self.sound.stop()

    # ----- helpers -----------------------------------------------------------------------
    def _row(self, alert_id: str):
        row = self.model.row(alert_id)
        if row is None:
            raise HandlingRefused(f"no alert {alert_id!r} in the queue")
        return row

    def _set(self, alert_id: str, h: Handling) -> None:
        self.model.set_handling(alert_id, h)
        self.handlingChanged.emit(alert_id, h.state)
        self._update_shelved()

    def _ring(self, alert_id: str, force: bool = False) -> None:
        self._ringing.add(alert_id)
        self.sound.ring()
        self.sounded.emit(alert_id)
        if not self._ring_timer.isActive():
            self._ring_timer.start()

    def _repeat_ring(self) -> None:
        self._ringing = {a for a in self._ringing
                         if (r := self.model.row(a)) and r.handling.state == "unacknowledged"}
        if self._ringing:
            self.sound.ring()
        else:
            self._ring_timer.stop()

    def _expire_shelving(self) -> None:
        for row in self.model.rows():
            h = row.handling
            if h.state == "shelved" and h.shelved_until is not None and h.shelved_until <= self.now:
                self.unshelve(row.alert.alert_id, expired=True)

    def _check_flood(self) -> None:
        cutoff = self.now - self.flood_window_s
        self._seen = [t for t in self._seen if t > cutoff]
        n = len(self._seen)
        on = n > self.flood_count
        if on != self.flood:
            self.flood = on
            self.proxy.set_flood(on)
            self.floodChanged.emit(on, n)

    def _update_shelved(self) -> None:
        n = self.shelved.refresh()
        self.shelvedChanged.emit(n)

    def new_in_window(self) -> int:
        return len(self._seen)


class ShelvedListModel(QAbstractListModel):
    """The shelved alerts, one line each with the time they come back."""

    def __init__(self, source: AlertTableModel, parent=None):
        super().__init__(parent)
        self._src = source
        self._ids: list[str] = []

    def refresh(self) -> int:
        ids = sorted((r.alert.alert_id for r in self._src.rows() if r.handling.state == "shelved"),
                     key=lambda a: self._src.row(a).handling.shelved_until or 0)
        if ids != self._ids:
            # Small list; remove and insert rows rather than resetting the model.
            if self._ids:
                self.beginRemoveRows(QModelIndex(), 0, len(self._ids) - 1)
                self._ids = []
                self.endRemoveRows()
            if ids:
                self.beginInsertRows(QModelIndex(), 0, len(ids) - 1)
                self._ids = ids
                self.endInsertRows()
        return len(self._ids)

    def tick(self) -> None:
        if self._ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, 0))

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self._ids)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._ids):
            return None
        row = self._src.row(self._ids[index.row()])
        if role == Qt.ItemDataRole.DisplayRole:
            left = fmt_span((row.handling.shelved_until or 0) - self._src.now, precise=True)
            return (f"{PRIORITY_TEXT[row.alert.priority]}  {TYPE_TEXT.get(row.alert.type, row.alert.type)}"
                    f"  {row.alert.offender or ''}  — back in {left}")
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(f"Shelved by {row.handling.shelved_by}: {row.handling.shelve_reason}")
        if role == Qt.ItemDataRole.UserRole + 1:
            return row.alert.alert_id
        return None

    def alert_id_at(self, r: int) -> str | None:
        return self._ids[r] if 0 <= r < len(self._ids) else None


class AlertQueueDock(QWidget):
    """Filter bar, flood banner, queue table, actions, and the shelved list."""

    acknowledgeRequested = Signal(str)
    groupAcknowledgeRequested = Signal(str)     # an alert id: acknowledge its offender's group
    closeRequested = Signal(str)
    shelveRequested = Signal(str)
    unshelveRequested = Signal(str)
    alertSelected = Signal(str)

    def __init__(self, controller: AlertQueueController, boroughs: list[str], parent=None):
        super().__init__(parent)
        self.ctl = controller
        self.priority = QComboBox()
        self.priority.addItem("All priorities", [])
        for p in ("critical", "high", "medium", "low"):
            self.priority.addItem(PRIORITY_TEXT[p], [p])
        self.type = QComboBox()
        self.type.addItem("All types", [])
        for t in ALERT_TYPES:
            self.type.addItem(TYPE_TEXT.get(t, t), [t])
        self.state = QComboBox()
        for s, label in (("open", "Open"), ("unacknowledged", "Unacknowledged"), ("active", "Active"),
                         ("acknowledged", "Acknowledged"), ("closed", "Closed"), ("all", "All")):
            self.state.addItem(label, s)
        self.borough = QComboBox()
        self.borough.addItem("All boroughs", "")
        for b in boroughs:
            self.borough.addItem(b, b)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter (F)")
        self.filter.setClearButtonEnabled(True)
        for w, name in ((self.priority, "Priority filter"), (self.type, "Type filter"),
                        (self.state, "State filter"), (self.borough, "Borough filter"),
                        (self.filter, "Text filter")):
            w.setAccessibleName(name)
        bar = QHBoxLayout()
        for w in (self.filter, self.priority, self.type, self.state, self.borough):
            bar.addWidget(w)
        for combo in (self.priority, self.type, self.state, self.borough):   # they fit 1366 px
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        bar.setStretch(0, 2)

        # EEMUA 191: the counts per priority are always on screen, whatever the filter shows.
        self.count_labels: dict[str, QLabel] = {}
        counts = QHBoxLayout()
        counts.setSpacing(6)
        for p in ("critical", "high", "medium", "low"):
            lab = QLabel()
            lab.setObjectName(f"count_{p}")
            lab.setProperty("priorityCount", p)
            lab.setAccessibleName(f"{p} alerts")
            lab.setMinimumWidth(90)        # cut rather than widen a small window (tool tip: all)
            self.count_labels[p] = lab
            counts.addWidget(lab)
        counts.addStretch(1)
        self.held = QLabel("‖ order held under the pointer")
        self.held.setObjectName("dim")
        self.held.setToolTip("While the pointer is over the queue no row moves or disappears; "
                             "new alerts are added at the bottom until the pointer leaves.")
        self.held.setVisible(False)
        counts.addWidget(self.held)

        self.banner = QLabel()
        self.banner.setObjectName("floodBanner")
        self.banner.setWordWrap(True)
        self.banner.hide()

        self.table = QTableView()
        self.table.setTabKeyNavigation(False)      # Tab leaves the table (arrows move in it)
        self.table.setObjectName("alertTable")
        self.table.setModel(controller.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(False)
        self.table.setShowGrid(False)
        self.table.verticalHeader().hide()
        self.table.setSortingEnabled(False)
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setStretchLastSection(False)
        # the figures as wide as their bold 15 pt text ("CLEARED", "12 min 51 s"), no wider: at
        # 1366 px the words below keep about 155 px each (the details panel has them in full)
        for col, w in enumerate((140, 110, 110, 185, 215, 100, 230, 115, 125, 115, 72)):
            self.table.setColumnWidth(col, w)
        # the words (type, offender, location) get the room a wide screen has; the figures keep theirs
        for col in (COL_TYPE, COL_OFFENDER, COL_LOCATION):
            hh.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)
        self.table.setAccessibleName("Alert queue")

        self.table.viewport().installEventFilter(self)
        self.table.verticalHeader().setMinimumSectionSize(10)

        self.ack_btn = QPushButton("&Acknowledge  [A]")
        self.group_btn = QPushButton("Ack &group  [Shift+A]")
        self.group_btn.setToolTip("Acknowledge every unacknowledged alert of this offender at once "
                                  "(each is recorded in the log on its own)")
        self.close_btn = QPushButton("&Close  [C]")
        self.shelve_btn = QPushButton("&Shelve  [S]")
        self.silence_btn = QPushButton("Silence  [Ctrl+M]")
        self.silence_btn.setToolTip("Stops the sound only; the alerts stay unacknowledged")
        actions = QHBoxLayout()
        for b in (self.ack_btn, self.group_btn, self.close_btn, self.shelve_btn):
            actions.addWidget(b)
        actions.addStretch(1)
        actions.addWidget(self.silence_btn)

        # The shelved pane: hidden while nothing is shelved; a click on its header folds it.
        self.shelved_fold = QToolButton()
        self.shelved_fold.setObjectName("shelvedFold")
        self.shelved_fold.setCheckable(True)
        self.shelved_fold.setChecked(True)
        self.shelved_fold.setArrowType(Qt.ArrowType.DownArrow)
        self.shelved_fold.setAccessibleName("Show or hide the shelved alerts")
        self.shelved_fold.setToolTip("Show or hide the shelved alerts")
        self.shelved_fold.toggled.connect(self._fold_shelved)
        self.shelved_header = QLabel()
        self.shelved_header.setObjectName("shelvedHeader")
        self.shelved_list = QListView()
        self.shelved_list.setModel(controller.shelved)
        self.shelved_list.setMaximumHeight(72)
        self.shelved_list.setAccessibleName("Shelved alerts")
        self.unshelve_btn = QPushButton("Unshelve")

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        lay.setSpacing(3)
        lay.addLayout(counts)
        lay.addLayout(bar)
        lay.addWidget(self.banner)
        lay.addWidget(self.table, 1)
        lay.addLayout(actions)
        self.shelved_pane = QWidget()
        sh = QHBoxLayout(self.shelved_pane)
        sh.setContentsMargins(0, 0, 0, 0)
        sh.addWidget(self.shelved_fold)
        sh.addWidget(self.shelved_header)
        sh.addStretch(1)
        sh.addWidget(self.unshelve_btn)
        lay.addWidget(self.shelved_pane)
        lay.addWidget(self.shelved_list)

        for combo in (self.priority, self.type, self.state, self.borough):
            combo.currentIndexChanged.connect(self._apply_filters)
        self.filter.textChanged.connect(self._apply_filters)
        self.ack_btn.clicked.connect(lambda: self._request(self.acknowledgeRequested))
        self.group_btn.clicked.connect(lambda: self._request(self.groupAcknowledgeRequested))
        self.close_btn.clicked.connect(lambda: self._request(self.closeRequested))
        self.shelve_btn.clicked.connect(lambda: self._request(self.shelveRequested))
        self.silence_btn.clicked.connect(controller.silence)
        self.unshelve_btn.clicked.connect(self._unshelve)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self.table.doubleClicked.connect(lambda _: self._request(self.acknowledgeRequested))
        controller.floodChanged.connect(self._flood)
        controller.shelvedChanged.connect(self._shelved_count)
        # bound methods, not lambdas: Qt drops them with this dock, the controller and its
        # model go on emitting (a lambda would call into a deleted widget)
        controller.handlingChanged.connect(self._controller_changed)
        controller.newAlerts.connect(self._controller_changed)
        # a condition that clears (or re-activates) changes what may be done with the selection
        controller.model.dataChanged.connect(self._rows_changed)
        self._shelved_count(0)
        self._update_buttons()
        self.update_counts()

    def _controller_changed(self, *_args) -> None:
        self._update_buttons()
        self.update_counts()

    def _rows_changed(self, *_args) -> None:
        self._update_buttons()

    def showEvent(self, event):  # noqa: N802 (Qt API)
        super().showEvent(event)
        self.fit_rows()

    def fit_rows(self) -> None:
        """Rows as tall as the queue's (large) font needs and no taller: more alerts on screen."""
        self.table.ensurePolished()
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 4)

    # ----- the pointer over the table: hold the order ---------------------------------------
    def eventFilter(self, obj, event):  # noqa: N802 (Qt API)
        if obj is self.table.viewport():
            if event.type() == QEvent.Type.Enter:
                self.hold(True)
            elif event.type() == QEvent.Type.Leave:
                self.hold(False)
        return super().eventFilter(obj, event)

    def hold(self, on: bool) -> None:
        self.ctl.proxy.set_frozen(on)
        self.held.setVisible(on)

    def update_counts(self) -> None:
        counts = self.ctl.model.counts()
        for p, lab in self.count_labels.items():
            c = counts.get(p, {"unack": 0, "open": 0})
            lab.setText(f"{PRIORITY_TEXT[p]}  {c['unack']} unack · {c['open']} open")
            lab.setToolTip(f"{p}: {c['unack']} unacknowledged, {c['open']} open, "
                           f"{c.get('shelved', 0)} shelved")
            waiting = "1" if c["unack"] else "0"
            if lab.property("waiting") != waiting:
                lab.setProperty("waiting", waiting)
                lab.style().unpolish(lab)
                lab.style().polish(lab)

    def _fold_shelved(self, open_: bool) -> None:
        self.shelved_list.setVisible(open_ and self.ctl.shelved.rowCount() > 0)
        self._shelved_count(self.ctl.shelved.rowCount())

    def selected_alert(self) -> str | None:
        idx = self.table.currentIndex()
        return self.ctl.proxy.alert_id_at(idx.row()) if idx.isValid() else None

    def select_alert(self, alert_id: str) -> bool:
        r = self.ctl.model.source_row(alert_id)
        if r is None:
            return False
        idx = self.ctl.proxy.mapFromSource(self.ctl.model.index(r, COL_PRIORITY))
        if not idx.isValid():
            return False
        self.table.setCurrentIndex(idx)
        self.table.scrollTo(idx)
        return True

    def _request(self, signal) -> None:
        aid = self.selected_alert()
        if aid:
            signal.emit(aid)

    def _unshelve(self) -> None:
        idx = self.shelved_list.currentIndex()
        aid = self.ctl.shelved.alert_id_at(idx.row()) if idx.isValid() else self.ctl.shelved.alert_id_at(0)
        if aid:
            self.unshelveRequested.emit(aid)

    def _current_changed(self, current, _previous) -> None:
        self._update_buttons()
        aid = self.ctl.proxy.alert_id_at(current.row()) if current.isValid() else None
        if aid:
            self.alertSelected.emit(aid)

    def _update_buttons(self) -> None:
        aid = self.selected_alert()
        row = self.ctl.model.row(aid) if aid else None
        self.ack_btn.setEnabled(bool(row and row.handling.state == "unacknowledged"))
        group = self.ctl.model.group_of(aid) if aid else []
        self.group_btn.setEnabled(len(group) > 1)
        self.group_btn.setText(f"Ack &group ({len(group)})  [Shift+A]" if len(group) > 1
                               else "Ack &group  [Shift+A]")
        self.close_btn.setEnabled(bool(row and row.handling.state == "acknowledged"
                                       and row.alert.state == "cleared"))
        from ui.console.shelvedialog import shelve_refusal
        ok = bool(row and row.handling.state in ("unacknowledged", "acknowledged")
                  and shelve_refusal(row.alert) is None)
        self.shelve_btn.setEnabled(ok)
        if row and not ok and row.handling.state != "closed":
            self.shelve_btn.setToolTip(tooltip(shelve_refusal(row.alert) or ""))
        else:
            self.shelve_btn.setToolTip("")

    def _apply_filters(self) -> None:
        self.ctl.proxy.set_filters(priorities=self.priority.currentData(), types=self.type.currentData(),
                                   state=self.state.currentData(), borough=self.borough.currentData(),
                                   text=self.filter.text())

    def _flood(self, on: bool, n: int) -> None:
        self.banner.setVisible(on)
        if on:
            self.banner.setText(f"▲ ALERT FLOOD — {n} new alerts in the last "
                                f"{int(self.ctl.flood_window_s // 60)} min. Critical alerts on top, "
                                "the rest grouped by offender.")

    def _shelved_count(self, n: int) -> None:
        open_ = self.shelved_fold.isChecked()
        self.shelved_fold.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.shelved_header.setText(f"Shelved ({n})")
        self.unshelve_btn.setEnabled(n > 0)
        self.shelved_pane.setVisible(n > 0)          # nothing shelved: no empty pane
        self.shelved_list.setVisible(n > 0 and open_)
        self.update_counts()
