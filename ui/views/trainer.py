"""The trainer's view: run a named scenario for a trainee, then read the trainee report.

``TrainerPanel`` offers the simulator's presets (``monitorapp.sim.scenarios``: an exclusion
breach in Hackney, a strap cut, a curfew breach, a feed outage, an alert flood). *Start* runs
one (``TrainingRun``: the scenario's caseload, its live simulator on an accelerated clock, a
real engine on its own thread, a store of its own) in the console itself (``TrainingConsole``,
the operators' main window embedded in the view: the same queue, actions and shortcuts, map,
caseload and details panel); *Pause* freezes the simulated clock; *Reset* throws the run away;
the speed accelerates it. The trainee signs in with their own account (*Trainee sign-in…*:
their password, the store's lockout and audit; any role that may handle alerts); with no
trainee signed in the run is a demonstration recorded under the trainer's name.

Scoring and escalation run on the trainee's clock, not the simulated one (``TrainingFeed``):
real seconds of the run with the pauses left out. At ×60 a critical alert still escalates after
60 real seconds, and 50 real seconds to acknowledge are scored 0:50. ``trainee_report`` lists
every injected incident with the alert it raised (its time in the scenario, simulated), the
trainee's time to acknowledge (real seconds) and the action chosen, and every other alert of
the run; a shown report keeps scoring while the run goes on.

Nothing here can reach live mode: a run never opens a broker, its store is a training file in
the data directory (refused if it is the live store), and the role check (``trainer``) comes
first.
"""
from __future__ import annotations

import datetime as dt
import pathlib
from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QColor
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QMessageBox,
                               QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget)

from monitorapp.sim.scenarios import SCENARIOS, scenario as make_scenario
from ui.console.alertmodel import TYPE_TEXT, fmt_duration
from ui.console.engineworker import TrainingFeed
from ui.console.mainwindow import STATE_VERSION, MainWindow
from ui.roles import can, require
from ui.settings import Settings, data_dir
from ui.text import plain_label
from ui.theme import LIGHT, PRIORITY_TEXT, Palette, palette
from ui.views.tablemodel import ColumnsModel

SPEEDS = (1, 10, 60, 600)
REPORT_EVERY = 4            # panel ticks (500 ms) between refreshes of a shown report
INCIDENT_ALERT = {"exclusion_breach": "exclusion_entered", "strap_tamper": "strap_tamper",
                  "curfew_late_return": "curfew_absent", "feed_outage": "feed_lost",
                  "battery_low": "battery_low", "dead_tag": "signal_lost"}
REPORT_COLUMNS = ("Injected", "At", "Alert", "Priority", "Offender", "Raised", "Time to ack (real)",
                  "Action", "Note", "By")
SCENARIO_TEXT = {"exclusion_breach_camden": "Exclusion breach in Camden",
                 "exclusion_breach_hackney": "Exclusion breach in Hackney", "strap_cut": "Strap cut",
                 "curfew_breach": "Curfew breach", "feed_outage": "Feed outage", "alert_flood": "Alert flood"}


def _rel(t: float | None, start: float) -> str:
    return "—" if t is None else "+" + fmt_duration(t - start)


def trainee_report(store, incidents: list, start: float, *, real=None, now: float | None = None) -> list[dict]:
    """Each injected incident with its alert, then every other alert of the run (by raise).

    ``real(t0, t1)``: the trainee's seconds between two simulated times (``TrainingFeed``); by
    default the store's clock is taken as real. ``now``: for alerts not yet acknowledged, how
    long they have waited so far (``waited_s``)."""
    between = real or (lambda t0, t1: t1 - t0)
    acks: dict[str, dict] = {}
    for r in store.ack_log():
        if r["action"] == "acknowledge" and r["alert_id"] not in acks:
            acks[r["alert_id"]] = r
    alerts = sorted(store.alerts(), key=lambda a: (a["raised_at"], a["alert_id"]))
    used: set[str] = set()
    rows = []

    def row(incident, a):
        ack = acks.get(a["alert_id"]) if a else None
        return {"incident": incident.kind if incident else None,
                "incident_at": incident.at if incident else None,
                "alert_id": a["alert_id"] if a else None, "type": a["type"] if a else None,
                "priority": a["priority"] if a else None,
                "offender": (a["offender_id"] if a else None) or (incident.offender if incident else None),
                "raised_at": a["raised_at"] if a else None,
                "tta_s": between(a["raised_at"], ack["at"]) if ack else None,
                "waited_s": (between(a["raised_at"], now) if a and not ack and now is not None else None),
                "action": ack["action_code"] if ack else None, "note": ack["note"] if ack else None,
                "by": ack["operator"] if ack else None, "start": start}
    for inc in sorted(incidents, key=lambda i: i.at):
        want = INCIDENT_ALERT.get(inc.kind)
        match = next((a for a in alerts if a["alert_id"] not in used and a["type"] == want
                      and (inc.offender is None or a["offender_id"] == inc.offender)
                      and a["start"] >= inc.at - 600), None)
        if match:
            used.add(match["alert_id"])
        rows.append(row(inc, match))
    rows += [row(None, a) for a in alerts if a["alert_id"] not in used]
    return rows


class TraineeReportModel(ColumnsModel):
    """The report; every cell has its colours from the theme's palette (text on the table's
    base; an incident that raised no alert, or one still waiting, on the critical tint), so the
    contrast never depends on the style's alternating rows."""

    columns = REPORT_COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[dict] = []
        self.palette: Palette = LIGHT

    def set_palette(self, p: Palette) -> None:
        self.palette = p
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(self.columns) - 1))

    def set_rows(self, rows: list[dict]) -> None:
        rows = list(rows)
        if len(rows) == len(self._rows) and [r["alert_id"] for r in rows] == [r["alert_id"] for r in self._rows]:
            self._rows = rows                 # the same rows, new scores: one dataChanged
            if rows:
                self.dataChanged.emit(self.index(0, 0), self.index(len(rows) - 1, len(self.columns) - 1))
            return
        self.beginResetModel()             # new rows: a small report is replaced as a whole
        self._rows = rows
        self.endResetModel()

    def rows(self) -> list[dict]:
        return list(self._rows)

    def row_count(self) -> int:
        return len(self._rows)

    def attention(self, r: dict) -> bool:
        """A missed incident, or an alert still waiting for the trainee."""
        return r["type"] is None or (r["tta_s"] is None and r["incident"] is not None)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not self.in_table(index):
            return None
        r, c = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.ForegroundRole:
            return QColor(self.palette.text)
        if role == Qt.ItemDataRole.BackgroundRole:
            return QColor(self.palette.priority_tint["critical"] if self.attention(r) else self.palette.base)
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if r["tta_s"] is not None:
            tta = fmt_duration(r["tta_s"])
        elif not r["type"]:
            tta = "—"
        elif r["waited_s"] is not None:
            tta = f"waiting {fmt_duration(r['waited_s'])}"
        else:
            tta = "not acknowledged"
        return [
            (r["incident"] or "(not injected)").replace("_", " "),
            _rel(r["incident_at"], r["start"]),
            TYPE_TEXT.get(r["type"], "no alert raised") if r["type"] else "NO ALERT RAISED",
            PRIORITY_TEXT.get(r["priority"], "") if r["priority"] else "",
            r["offender"] or "system",
            _rel(r["raised_at"], r["start"]),
            tta,
            (r["action"] or "").replace("_", " "), r["note"] or "", r["by"] or "",
        ][c]


class TrainingRun:
    """One run of a scenario: simulator → engine (own thread) → training store → queue."""

    def __init__(self, name: str, store_path: pathlib.Path, trainee: str, speed: float, *,
                 escalation: dict | None = None, sound=None):
        from localdb.store import Store
        from monitorapp.engine.caseload import parse_caseload
        from monitorapp.engine.engine import Engine
        from ui.console.alertqueue import AlarmSound, AlertQueueController
        from ui.console.engineworker import EngineWorker
        self.scenario = make_scenario(name)
        self.name, self.start = name, float(self.scenario.start)
        self.incidents = list(self.scenario.options.get("incidents", []))
        self.caseload = parse_caseload(self.scenario.caseload, f"scenario {name}")
        self.tz = ZoneInfo(self.caseload.tz)
        self.feed = TrainingFeed(self.scenario.live(), self.start, speed)
        self.speed = float(speed)
        for suffix in ("", "-wal", "-shm"):       # every run starts from an empty store
            pathlib.Path(str(store_path) + suffix).unlink(missing_ok=True)
        self.store = Store(store_path, clock=self.feed.now, mode="training")   # sealed: spec v2 §8
        self.store.record_caseload(self.caseload, "trainer")
        caseload, start = self.caseload, self.start
        # the engine is built, and the store attached to it, in the engine thread
        self.worker = EngineWorker(lambda: Engine(caseload, start=start), self.feed, store=self.store)
        self.controller = AlertQueueController(self.store, trainee, escalation=escalation,
                                               sound=sound or AlarmSound(False), tz=self.tz)
        self.controller.model.waited = self.feed.real_between      # the trainee's seconds
        self.paused = False

    @property
    def end(self) -> float:
        return self.start + self.scenario.hours * 3600

    def begin(self) -> None:
        self.worker.start()

    def pause(self, on: bool) -> None:
        self.paused = on
        self.worker.set_speed(0.0 if on else self.speed)

    def set_speed(self, speed: float) -> None:
        self.speed = float(speed)
        if not self.paused:
            self.worker.set_speed(self.speed)

    def report(self, now: float | None = None) -> list[dict]:
        self.store.flush()
        return trainee_report(self.store, self.incidents, self.start, real=self.feed.real_between,
                              now=self.feed.now() if now is None else now)

    def stop(self) -> None:
        self.worker.stop()
        self.store.flush()
        self.store.close()


class TrainingConsole(MainWindow):
    """The console itself, embedded in the trainer's view for one run: the same queue with its
    actions and shortcuts (A, C, S, U, N, F), map, caseload and details panel. Its layout is not
    saved over the console's (each run starts from the default layout)."""

    def __init__(self, run: TrainingRun, settings, map_widget, parent=None):
        super().__init__(controller=run.controller, worker=run.worker, caseload=run.caseload,
                         store=run.store, settings=settings, map_widget=map_widget, clock=run.feed.now,
                         operator=run.controller.operator, training=True, parent=parent)
        self.setWindowFlags(Qt.WindowType.Widget)
        self.setObjectName("trainingConsole")
        for a in self.findChildren(QAction):
            if a.text() == "&Quit":        # the trainer's Reset ends a run, not the trainee
                a.setEnabled(False)
                a.setVisible(False)

    def _restore_layout(self) -> None:
        self._default_state = self.saveState(STATE_VERSION)
        self.start_maximised = False
        self._sized = False

    def save_layout(self) -> None:
        pass

    def stop(self) -> None:
        self._tick_timer.stop()
        if hasattr(self.map, "shutdown"):
            self.map.shutdown()


def _make_map(theme: str):
    try:
        from ui.map.view import MapView
        return MapView(theme=theme)
    except Exception:      # noqa: BLE001 - no web engine: the console works without its map
        w = QLabel("Map not available on this workstation (no QtWebEngine).")
        w.setAlignment(Qt.AlignmentFlag.AlignCenter)
        return w


class TrainerPanel(QWidget):
    """The trainer's view (see the module docstring)."""

    started = Signal(str)
    stopped = Signal()
    traineeChanged = Signal(str)

    def __init__(self, session, *, store_dir: pathlib.Path | None = None, live_store: str | None = None,
                 accounts=None, settings=None, map_factory=None, sign_in_dialog=None, parent=None):
        super().__init__(parent)
        require(session.role, "trainer")
        self.session = session
        self.accounts = accounts
        # (accounts, parent, title) -> a sign-in dialog; the session layer passes its own in
        # (views never import the session layer)
        self.sign_in_dialog = sign_in_dialog
        self.settings = settings if settings is not None else Settings()
        self.store_dir = pathlib.Path(store_dir) if store_dir else data_dir()
        self.live_store = live_store
        self.map_factory = map_factory or _make_map
        self.run: TrainingRun | None = None
        self.console: TrainingConsole | None = None
        self.trainee_session = None
        self.setObjectName("trainerPanel")
        self.setWindowTitle("Training scenarios")

        self.scenario = QComboBox()
        for name in SCENARIOS:
            self.scenario.addItem(SCENARIO_TEXT.get(name, name), name)
        self.trainee = plain_label()
        self.trainee.setObjectName("traineeName")
        self.trainee_button = QPushButton("Trainee &sign-in…")
        self.trainee_button.setEnabled(accounts is not None)
        if accounts is None:
            self.trainee_button.setToolTip("No accounts store: the run is recorded under the trainer's name")
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(f"×{s}", s)
        self.speed.setCurrentIndex(1)        # ×10, as training mode starts
        self.start_button, self.pause_button = QPushButton("Start"), QPushButton("Pause")
        self.reset_button, self.report_button = QPushButton("Reset"), QPushButton("Trainee &report")   # Alt+R
        self.pause_button.setCheckable(True)
        bar = QHBoxLayout()
        for w in (QLabel("Scenario"), self.scenario, QLabel("Trainee"), self.trainee, self.trainee_button,
                  QLabel("Speed"), self.speed, self.start_button, self.pause_button, self.reset_button,
                  self.report_button):
            bar.addWidget(w)
        bar.addStretch(1)
        self.description = plain_label()
        self.description.setWordWrap(True)
        self.clock = plain_label("Not running.")
        self.clock.setObjectName("trainerClock")
        self.clock.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.clock.setWordWrap(True)          # a long line wraps, never widens the window past the screen
        self.console_holder = QVBoxLayout()
        self.console_holder.setContentsMargins(0, 0, 0, 0)
        console_box = QWidget()
        console_box.setLayout(self.console_holder)
        self.report = TraineeReportModel(self)
        self.report_table = QTableView()
        self.report_table.setTabKeyNavigation(False)      # Tab leaves the table
        self.report_table.setObjectName("traineeReport")
        self.report_table.setModel(self.report)
        self.report_table.verticalHeader().setVisible(False)
        self.report_table.setAlternatingRowColors(False)     # the model colours every row
        self.report_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.report_table.horizontalHeader().setStretchLastSection(True)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(console_box)
        split.addWidget(self.report_table)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([760, 200])
        self.split = split
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(bar)
        lay.addWidget(self.description)
        lay.addWidget(self.clock)
        lay.addWidget(split, 1)
        self._show_trainee()
        self.report.set_palette(palette(self.settings.get("ui/theme")))

        self.tick = QTimer(self)
        self.tick.setInterval(500)
        self.tick.timeout.connect(self._tick)
        self._ticks = 0
        self.scenario.currentIndexChanged.connect(self._describe)
        self.trainee_button.clicked.connect(lambda: self.sign_in_trainee())
        self.start_button.clicked.connect(lambda: self.start())
        self.pause_button.toggled.connect(self.pause)
        self.reset_button.clicked.connect(self.reset)
        self.report_button.clicked.connect(self.show_report)
        self.speed.currentIndexChanged.connect(lambda _: self.run and self.run.set_speed(self.speed.currentData()))
        self._describe()

    # ---- who is training ------------------------------------------------------------------------
    @property
    def operator(self) -> str:
        """The name the run records acknowledgements under: the signed-in trainee's account, or
        (no trainee signed in) the trainer's own, for a demonstration."""
        return self.trainee_session.username if self.trainee_session else self.session.username

    def _show_trainee(self) -> None:
        if self.trainee_session:
            self.trainee.setText(f"{self.trainee_session.username} ({self.trainee_session.role_text})")
        else:
            self.trainee.setText(f"none signed in — demonstration by {self.session.username}")

    def sign_in_trainee(self, dialog=None):
        """The trainee signs in with their own account (their password, the store's lockout);
        the roles that may acknowledge alerts can train. Returns the session or None."""
        if self.accounts is None or (dialog is None and self.sign_in_dialog is None):
            return None
        dlg = dialog or self.sign_in_dialog(self.accounts, self, title="Trainee sign-in")
        if not dlg.exec() or dlg.session is None:
            return None
        if not can(dlg.session.role, "acknowledge"):
            QMessageBox.warning(self, "Trainee sign-in", f"A {dlg.session.role_text} account cannot handle "
                                "alerts; the trainee signs in with an operator's or supervisor's account.")
            return None
        return self.set_trainee(dlg.session)

    def set_trainee(self, session):
        self.trainee_session = session
        self._show_trainee()
        if self.run is not None:               # takes over the run's queue from now on
            self.run.controller.operator = session.username
            if self.console is not None:
                self.console.operator = session.username
        self.traineeChanged.emit(session.username)
        return session

    def _describe(self, *_) -> None:
        self.description.setText(make_scenario(self.scenario.currentData()).description)

    def store_path(self, name: str) -> pathlib.Path:
        from ui.console.training import check_training_args
        path = self.store_dir / f"training-{name}.sqlite"
        check_training_args(None, str(path), self.live_store)     # never the live store
        return path

    # ---- the run ------------------------------------------------------------------------------
    def start(self, name: str | None = None) -> TrainingRun:
        require(self.session.role, "trainer")
        name = name or self.scenario.currentData()
        if (k := self.scenario.findData(name)) >= 0:
            self.scenario.setCurrentIndex(k)
        self.reset()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        run = TrainingRun(name, self.store_path(name), self.operator, self.speed.currentData(),
                          escalation=self.settings.escalation_limits())
        console = TrainingConsole(run, self.settings, self.map_factory(self.settings.get("ui/theme")))
        console.training_banner.setText(f"TRAINING — {SCENARIO_TEXT.get(name, name)}: simulated feed, "
                                        f"its own store; nothing here is live.")
        self.console_holder.addWidget(console)
        self.console, self.run = console, run
        self.report.set_palette(palette(console.theme))
        run.begin()
        self.tick.start()
        run.store.audit(self.session.username, "training_started",
                        {"scenario": name, "trainee": run.controller.operator})
        self.started.emit(name)
        console.queue.table.setFocus()
        return run

    def pause(self, on: bool) -> None:
        if self.run is not None:
            self.run.pause(bool(on))
        self.pause_button.setText("Resume" if on else "Pause")

    def reset(self) -> None:
        self.tick.stop()
        if self.pause_button.isChecked():
            self.pause_button.setChecked(False)
        if self.console is not None:
            self.console.stop()
            self.console_holder.removeWidget(self.console)
            self.console.hide()
            self.console.deleteLater()
            self.console = None
        if self.run is not None:
            self.run.stop()
            self.run = None
            self.stopped.emit()
        self.clock.setText("Not running.")

    @property
    def queue(self):
        return self.console.queue if self.console is not None else None

    def _tick(self) -> None:
        run = self.run
        now = run.feed.now()
        local = dt.datetime.fromtimestamp(now, run.tz)
        state = "PAUSED" if run.paused else f"×{run.speed:g}"
        ended = run.feed.ended_at
        if ended is not None:       # over by design: say so, and what the trainer can do next
            self.clock.setText(f"{SCENARIO_TEXT.get(run.name, run.name)} · SCENARIO ENDED at "
                               f"{dt.datetime.fromtimestamp(ended, run.tz):%H:%M} ({_rel(ended, run.start)})"
                               f" · {len(run.controller.model.rows())} alerts · Start runs it again,"
                               f" or choose another scenario")
        else:
            self.clock.setText(f"{SCENARIO_TEXT.get(run.name, run.name)} · {_rel(now, run.start)} of "
                               f"{fmt_duration(run.end - run.start)} simulated · {fmt_duration(run.feed.real_s(now))}"
                               f" real · {state} · {len(run.controller.model.rows())} alerts"
                               + f" · {local:%H:%M:%S} local")
        self._ticks += 1
        if self._ticks % REPORT_EVERY == 0 and self.report.row_count():
            self.report.set_rows(self.report_rows())       # a shown report keeps scoring

    def report_rows(self) -> list[dict]:
        return self.run.report() if self.run is not None else []

    def show_report(self) -> list[dict]:
        rows = self.report_rows()
        self.report.set_rows(rows)
        return rows

    def shutdown(self) -> None:
        self.reset()

    def closeEvent(self, event):  # noqa: N802 (Qt API)
        self.shutdown()
        super().closeEvent(event)
