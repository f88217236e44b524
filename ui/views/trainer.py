"""The trainer's view: run a named scenario for a trainee, then read the trainee report.

``TrainerPanel`` offers the simulator's presets (``monitorapp.sim.scenarios``: an exclusion
breach in Hackney, a strap cut, a curfew breach, a feed outage, an alert flood). *Start* runs
one (``TrainingRun``: the scenario's caseload, its live simulator on an accelerated clock, a
real engine on its own thread, a store of its own, the console's alert queue for the trainee);
*Pause* freezes the simulated clock; *Reset* throws the run away; the speed accelerates it. The
trainee acknowledges in the embedded queue as in the console. ``trainee_report`` lists every
injected incident with the alert it raised, the time the trainee took to acknowledge it (in
simulated time) and the action chosen, and every other alert of the run.

Nothing here can reach live mode: a run never opens a broker, its store is a training file in
the data directory (refused if it is the live store), and the role check (``trainer``) comes
first.
"""
from __future__ import annotations

import datetime as dt
import pathlib
from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget)

from monitorapp.sim.scenarios import SCENARIOS, scenario as make_scenario
from ui.views.tablemodel import ColumnsModel
from ui.console.alertmodel import TYPE_TEXT, fmt_duration
from ui.roles import require
from ui.settings import data_dir
from ui.text import plain_label
from ui.theme import PRIORITY_TEXT

SPEEDS = (1, 10, 60, 600)
INCIDENT_ALERT = {"exclusion_breach": "exclusion_entered", "strap_tamper": "strap_tamper",
                  "curfew_late_return": "curfew_absent", "feed_outage": "feed_lost",
                  "battery_low": "battery_low", "dead_tag": "signal_lost"}
REPORT_COLUMNS = ("Injected", "At", "Alert", "Priority", "Offender", "Raised", "Time to ack",
                  "Action", "Note", "By")
SCENARIO_TEXT = {"exclusion_breach_hackney": "Exclusion breach in Hackney", "strap_cut": "Strap cut",
                 "curfew_breach": "Curfew breach", "feed_outage": "Feed outage", "alert_flood": "Alert flood"}


def _rel(t: float | None, start: float) -> str:
    return "—" if t is None else "+" + fmt_duration(t - start)


def trainee_report(store, incidents: list, start: float) -> list[dict]:
    """Each injected incident with its alert, then every other alert of the run (by raise)."""
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
                "tta_s": (ack["at"] - a["raised_at"]) if ack else None,
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
    columns = REPORT_COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[dict] = []

    def set_rows(self, rows: list[dict]) -> None:
        self.beginResetModel()             # a report is replaced as a whole, on demand
        self._rows = list(rows)
        self.endResetModel()

    def rows(self) -> list[dict]:
        return list(self._rows)

    def row_count(self) -> int:
        return len(self._rows)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole or not self.in_table(index):
            return None
        r, c = self._rows[index.row()], index.column()
        return [
            (r["incident"] or "(not injected)").replace("_", " "),
            _rel(r["incident_at"], r["start"]),
            TYPE_TEXT.get(r["type"], "no alert raised") if r["type"] else "NO ALERT RAISED",
            PRIORITY_TEXT.get(r["priority"], "") if r["priority"] else "",
            r["offender"] or "system",
            _rel(r["raised_at"], r["start"]),
            fmt_duration(r["tta_s"]) if r["tta_s"] is not None else ("not acknowledged" if r["type"] else "—"),
            (r["action"] or "").replace("_", " "), r["note"] or "", r["by"] or "",
        ][c]


class TrainingRun:
    """One run of a scenario: simulator → engine (own thread) → training store → queue."""

    def __init__(self, name: str, store_path: pathlib.Path, trainee: str, speed: float):
        from localdb.store import Store
        from monitorapp.engine.caseload import parse_caseload
        from monitorapp.engine.engine import Engine
        from ui.console.alertqueue import AlarmSound, AlertQueueController
        from ui.console.engineworker import EngineWorker, SimulatedFeed
        self.scenario = make_scenario(name)
        self.name, self.start = name, float(self.scenario.start)
        self.incidents = list(self.scenario.options.get("incidents", []))
        self.caseload = parse_caseload(self.scenario.caseload, f"scenario {name}")
        self.tz = ZoneInfo(self.caseload.tz)
        self.feed = SimulatedFeed(self.scenario.live(), self.start, speed)
        self.speed = float(speed)
        for suffix in ("", "-wal", "-shm"):       # every run starts from an empty store
            pathlib.Path(str(store_path) + suffix).unlink(missing_ok=True)
        self.store = Store(store_path, clock=self.feed.now, mode="training")   # sealed: spec v2 §8
        self.store.record_caseload(self.caseload, "trainer")
        caseload, start = self.caseload, self.start
        # the engine is built, and the store attached to it, in the engine thread
        self.worker = EngineWorker(lambda: Engine(caseload, start=start), self.feed, store=self.store)
        self.controller = AlertQueueController(self.store, trainee, sound=AlarmSound(False))
        self.controller.model.set_offenders({o.id: (o.name, o.borough) for o in self.caseload.offenders.values()})
        self.worker.alertBatch.connect(self.controller.on_alert_batch)
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

    def stop(self) -> None:
        self.worker.stop()
        self.store.flush()
        self.store.close()


class TrainerPanel(QWidget):
    """The trainer's view (see the module docstring)."""

    started = Signal(str)
    stopped = Signal()

    def __init__(self, session, *, store_dir: pathlib.Path | None = None, live_store: str | None = None,
                 parent=None):
        super().__init__(parent)
        require(session.role, "trainer")
        self.session = session
        self.store_dir = pathlib.Path(store_dir) if store_dir else data_dir()
        self.live_store = live_store
        self.run: TrainingRun | None = None
        self.setObjectName("trainerPanel")
        self.setWindowTitle("Training scenarios")

        self.scenario = QComboBox()
        for name in SCENARIOS:
            self.scenario.addItem(SCENARIO_TEXT.get(name, name), name)
        self.trainee = QLineEdit("trainee")
        self.speed = QComboBox()
        for s in SPEEDS:
            self.speed.addItem(f"×{s}", s)
        self.speed.setCurrentIndex(2)
        self.start_button, self.pause_button = QPushButton("Start"), QPushButton("Pause")
        self.reset_button, self.report_button = QPushButton("Reset"), QPushButton("Trainee report")
        self.pause_button.setCheckable(True)
        bar = QHBoxLayout()
        for w in (QLabel("Scenario"), self.scenario, QLabel("Trainee"), self.trainee, QLabel("Speed"),
                  self.speed, self.start_button, self.pause_button, self.reset_button, self.report_button):
            bar.addWidget(w)
        bar.addStretch(1)
        self.description = plain_label()
        self.description.setWordWrap(True)
        self.clock = plain_label("Not running.")
        self.clock.setObjectName("trainerClock")
        self.clock.setStyleSheet("font-size: 15pt; font-weight: bold;")
        self.banner = QLabel("TRAINING — simulated feed, its own store; nothing here is live.")
        self.banner.setObjectName("trainingBanner")
        self.queue_holder = QVBoxLayout()
        queue_box = QWidget()
        queue_box.setLayout(self.queue_holder)
        self.report = TraineeReportModel(self)
        self.report_table = QTableView()
        self.report_table.setModel(self.report)
        self.report_table.verticalHeader().setVisible(False)
        self.report_table.setAlternatingRowColors(True)
        self.report_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.report_table.horizontalHeader().setStretchLastSection(True)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(queue_box)
        split.addWidget(self.report_table)
        split.setSizes([560, 340])
        lay = QVBoxLayout(self)
        lay.addWidget(self.banner)
        lay.addLayout(bar)
        lay.addWidget(self.description)
        lay.addWidget(self.clock)
        lay.addWidget(split, 1)
        self.queue = None

        self.tick = QTimer(self)
        self.tick.setInterval(500)
        self.tick.timeout.connect(self._tick)
        self.scenario.currentIndexChanged.connect(self._describe)
        self.start_button.clicked.connect(lambda: self.start())
        self.pause_button.toggled.connect(self.pause)
        self.reset_button.clicked.connect(self.reset)
        self.report_button.clicked.connect(self.show_report)
        self.speed.currentIndexChanged.connect(lambda _: self.run and self.run.set_speed(self.speed.currentData()))
        self._describe()

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
        run = TrainingRun(name, self.store_path(name), self.trainee.text().strip() or "trainee",
                          self.speed.currentData())
        from ui.console.alertqueue import AlertQueueDock
        boroughs = sorted({o.borough for o in run.caseload.offenders.values()})
        self.queue = AlertQueueDock(run.controller, boroughs)
        self.queue.acknowledgeRequested.connect(self._acknowledge)
        self.queue_holder.addWidget(self.queue)
        self.run = run
        run.begin()
        self.tick.start()
        run.store.audit(self.session.username, "training_started",
                        {"scenario": name, "trainee": run.controller.operator})
        self.started.emit(name)
        return run

    def _acknowledge(self, alert_id: str) -> None:
        from ui.console.ackdialog import AckDialog
        row = self.run.controller.model.row(alert_id)
        if row is None or row.handling.state != "unacknowledged":
            return
        dlg = AckDialog(row.alert, row.alert.offender or "", self)
        if dlg.exec():
            action, note = dlg.values()
            self.run.controller.acknowledge(alert_id, action, note)

    def pause(self, on: bool) -> None:
        if self.run is not None:
            self.run.pause(bool(on))
        self.pause_button.setText("Resume" if on else "Pause")

    def reset(self) -> None:
        self.tick.stop()
        if self.pause_button.isChecked():
            self.pause_button.setChecked(False)
        if self.queue is not None:
            self.queue_holder.removeWidget(self.queue)
            self.queue.deleteLater()
            self.queue = None
        if self.run is not None:
            self.run.stop()
            self.run = None
            self.stopped.emit()
        self.clock.setText("Not running.")

    def _tick(self) -> None:
        run = self.run
        now = run.feed.now()
        run.controller.tick(now)
        local = dt.datetime.fromtimestamp(now, run.tz)
        state = "PAUSED" if run.paused else f"×{run.speed:g}"
        self.clock.setText(f"{SCENARIO_TEXT.get(run.name, run.name)} · {_rel(now, run.start)} of "
                           f"{fmt_duration(run.end - run.start)} · {state} · {len(run.controller.model.rows())} alerts"
                           + f" · {local:%H:%M:%S} local")

    def report_rows(self) -> list[dict]:
        if self.run is None:
            return []
        self.run.store.flush()
        return trainee_report(self.run.store, self.run.incidents, self.run.start)

    def show_report(self) -> list[dict]:
        rows = self.report_rows()
        self.report.set_rows(rows)
        return rows

    def shutdown(self) -> None:
        self.reset()

    def closeEvent(self, event):  # noqa: N802 (Qt API)
        self.shutdown()
        super().closeEvent(event)
