"""The police analyst's batch: a day's incidents file checked against every track (spec v2 §5).

*Open incidents file…* reads a CSV (reference, lat/lon or easting/northing, radius_m, from, to)
or a GeoJSON FeatureCollection with ``monitorapp.crime.batch.load_incidents``; every problem of
the file is listed with its line or feature number and nothing runs. With a reason (required,
as for one query), *Run batch* calls ``run_batch`` on a worker thread: a progress bar counts the
incidents done, *Cancel* stops it at the next incident (a cancelled batch reports nothing and
is not audited as run). The hits (present and possible, by incident) fill a table
(``HitsModel``); double-click or Return on one (or *Open in the single-incident view*) emits
``openHit(incident, hit)``, which the crime-mapping view answers by filling in that incident's
place, radius, window and reference and running it. *JSON…*, *CSV…* and *PDF…* write the hits
report (``write_hits_json``, ``write_hits_csv``, ``monitorapp.crime.evidence.write_batch_pdf``),
each recorded in the audit log.
"""
from __future__ import annotations

import concurrent.futures
import threading

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLineEdit, QProgressBar, QPushButton,
                               QTableView, QVBoxLayout, QWidget)

from monitorapp.crime.evidence import VERDICT_TEXT, digest_of, write_batch_pdf
from monitorapp.crime.evidencepdf import local_time
from ui.roles import can, require
from ui.text import plain_label
from ui.views.tablemodel import ColumnsModel

HIT_COLUMNS = ("Incident", "Verdict", "Offender", "Tag", "Closest", "At (local)", "Reason")


class BatchCancelled(Exception):
    """The analyst cancelled the batch."""


class HitsModel(ColumnsModel):
    """One row per hit of a batch, in the report's order (incident, verdict, closest)."""
    columns = HIT_COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self._hits: list[dict] = []

    def set_hits(self, hits: list[dict]) -> None:
        self.beginResetModel()          # one reset per batch run
        self._hits = list(hits)
        self.endResetModel()

    def hit(self, row: int) -> dict:
        return self._hits[row]

    def row_count(self) -> int:
        return len(self._hits)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not self.in_table(index):
            return None
        h, c = self._hits[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (h.get("reference", ""), VERDICT_TEXT.get(h["verdict"], h["verdict"]),
                    h.get("offender") or "(unassigned tag)", h["device"],
                    "—" if h.get("closest_m") is None else f"{float(h['closest_m']):.0f} m",
                    local_time(h.get("closest_at")), h.get("reason") or "; ".join(h.get("basis") or []))[c]
        if role == Qt.ItemDataRole.ToolTipRole and c == 6:
            return h.get("reason") or None
        if role == Qt.ItemDataRole.FontRole and c == 1 and h["verdict"] == "present":
            f = QFont()
            f.setBold(True)
            return f
        return None


class BatchPanel(QWidget):
    """The incidents file, its run and its hits (see the module docstring)."""

    openHit = Signal(object, object)        # (incident summary dict, hit dict)
    finished = Signal(object)               # the hits report
    failed = Signal(str)
    _progress = Signal(int, int)            # from the worker: incidents done, total
    _done = Signal(int)                     # a finished job's number
    exported = Signal(str, str, str)        # kind, path, SHA-256: written and audited
    _written = Signal(int)                  # a finished PDF job's number

    def __init__(self, store, session, parent=None):
        super().__init__(parent)
        require(session.role, "crime_query")
        self.store, self.session = store, session
        self.incidents: list[dict] = []
        self.path: str | None = None
        self.report: dict | None = None
        self._cancel = threading.Event()
        self._job = 0
        self._results: dict[int, object] = {}
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="crime-batch")
        self.setObjectName("crimeBatch")

        self.open_button = QPushButton("Open incidents file…")
        self.file_label = plain_label("No incidents file loaded (CSV or GeoJSON).")
        self.file_label.setWordWrap(True)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why this batch is run (required), e.g. the force's daily incident list")
        self.speed = QDoubleSpinBox()
        self.speed.setRange(0.5, 100.0)
        self.speed.setDecimals(1)
        self.speed.setValue(15.0)
        self.speed.setSuffix(" m/s")
        form = QFormLayout()
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.file_label, 1)
        form.addRow("Incidents", top)
        form.addRow("Reason", self.reason)
        form.addRow("Speed bound", self.speed)
        self.run_button = QPushButton("Run batch")
        self.run_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("no incidents file")
        self.open_hit_button = QPushButton("Open in the single-incident view")
        self.open_hit_button.setEnabled(False)
        self.json_button, self.csv_button, self.pdf_button = (QPushButton("JSON…"), QPushButton("CSV…"),
                                                              QPushButton("PDF…"))
        run = QHBoxLayout()
        run.addWidget(self.run_button)
        run.addWidget(self.cancel_button)
        run.addWidget(self.progress, 1)
        exports = QHBoxLayout()
        exports.addWidget(self.open_hit_button)
        exports.addStretch(1)
        for b in (self.json_button, self.csv_button, self.pdf_button):
            b.setEnabled(False)
            exports.addWidget(b)
        self.message = plain_label("A batch is one query in the audit log, with its reason and counts.")
        self.message.setWordWrap(True)
        self.model = HitsModel(self)
        self.table = QTableView()
        self.table.setObjectName("batchHits")
        self.table.setModel(self.model)
        self.table.setTabKeyNavigation(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addLayout(run)
        lay.addWidget(self.message)
        lay.addWidget(self.table, 1)
        lay.addLayout(exports)

        self.open_button.clicked.connect(lambda: self.load())
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.reason.returnPressed.connect(self.run_button.click)
        self.open_hit_button.clicked.connect(self._open_selected)
        self.table.activated.connect(lambda index: self.open_row(index.row()))
        self.table.selectionModel().selectionChanged.connect(
            lambda *_: self.open_hit_button.setEnabled(bool(self.table.selectionModel().selectedRows())))
        self.json_button.clicked.connect(lambda: self.export("json"))
        self.csv_button.clicked.connect(lambda: self.export("csv"))
        self.pdf_button.clicked.connect(lambda: self.export("pdf"))
        self._progress.connect(self._on_progress)
        self._done.connect(self._on_done)
        self._written.connect(self._on_written)

    # ---- the file ----------------------------------------------------------------------------
    def load(self, path: str | None = None) -> bool:
        """Read an incidents file (asking for it without ``path``); False when it has problems."""
        from monitorapp.crime.batch import IncidentFileError, load_incidents
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Open incidents file", "",
                                                  "Incidents (*.csv *.geojson *.json);;All files (*)")
        if not path:
            return False
        try:
            incidents = load_incidents(path)
        except (IncidentFileError, OSError, ValueError) as e:
            self.incidents, self.path = [], None
            self.file_label.setText(f"{path}: not loaded")
            self.message.setText(str(e))
            self.run_button.setEnabled(False)
            return False
        self.incidents, self.path = incidents, path
        self.file_label.setText(f"{path}: {len(incidents)} incident{'s' if len(incidents) != 1 else ''}")
        self.message.setText("Give the reason and run the batch.")
        self.run_button.setEnabled(bool(incidents))
        self.progress.setRange(0, max(1, len(incidents)))
        self.progress.setValue(0)
        self.progress.setFormat("%v of %m incidents")
        return True

    # ---- the run -----------------------------------------------------------------------------
    def run(self) -> bool:
        require(self.session.role, "crime_query")
        if not self.incidents:
            self.message.setText("Open an incidents file first.")
            return False
        if not self.reason.text().strip():
            self.message.setText("A reason is required before a batch runs.")
            return False
        from monitorapp.crime.batch import run_batch
        self._cancel.clear()
        self.run_button.setEnabled(False)
        self.open_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, len(self.incidents))
        self.progress.setValue(0)
        self.message.setText(f"Checking {len(self.incidents)} incidents against every track…")
        args = (list(self.incidents), self.reason.text(), self.session.username)
        speed = float(self.speed.value())

        def progress(done, total):          # on the worker thread
            if self._cancel.is_set():
                raise BatchCancelled()
            self._progress.emit(int(done), int(total))

        def work():
            return run_batch(self.store, *args, speed_ms=speed, progress=progress)
        self._job += 1
        job = self._job
        fut = self._pool.submit(work)
        fut.add_done_callback(lambda f: self._finished(job, f))
        return True

    def cancel(self) -> None:
        self._cancel.set()
        self.message.setText("Cancelling after the incident being checked…")

    def _finished(self, job: int, fut, signal=None) -> None:
        with self._lock:
            self._results[job] = fut
        (signal or self._done).emit(job)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _on_done(self, job: int) -> None:
        with self._lock:
            fut = self._results.pop(job, None)
        if fut is None:
            return
        self.cancel_button.setEnabled(False)
        self.open_button.setEnabled(True)
        self.run_button.setEnabled(bool(self.incidents))
        exc = fut.exception()
        if isinstance(exc, BatchCancelled):
            self.message.setText("The batch was cancelled; nothing was reported.")
            self.failed.emit("cancelled")
            return
        if exc is not None:
            text = str(exc) if isinstance(exc, ValueError) else f"{exc.__class__.__name__}: {exc}"
            self.message.setText(f"The batch was refused: {text}")
            self.failed.emit(text)
            return
        self.report = fut.result()
        self.model.set_hits(self.report["hits"])
        q = self.report["query"]
        self.message.setText(f"{q['incidents']} incidents, {q['hits']} hits (present or possible), run "
                             f"{local_time(q.get('asked_at'))}. Recorded in the audit log.")
        allowed = can(self.session.role, "evidence_export")
        for b in (self.json_button, self.csv_button, self.pdf_button):
            b.setEnabled(allowed)
        self.finished.emit(self.report)

    # ---- hits --------------------------------------------------------------------------------
    def _open_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.open_row(rows[0].row())

    def open_row(self, row: int) -> None:
        if self.report is None or not 0 <= row < self.model.rowCount():
            return
        hit = self.model.hit(row)
        inc = next((i for i in self.report["incidents"] if i["reference"] == hit.get("reference")), None)
        if inc is not None:
            self.openHit.emit(inc, hit)

    def export(self, kind: str, path: str | None = None) -> str | None:
        """Write the hits report as JSON, CSV or PDF, audited; returns the path written."""
        require(self.session.role, "evidence_export")
        if self.report is None:
            return None
        if not path:
            ext = {"json": "JSON (*.json)", "csv": "CSV (*.csv)", "pdf": "PDF (*.pdf)"}[kind]
            day = (self.report["query"].get("asked_at") or "")[:10]
            path, _ = QFileDialog.getSaveFileName(self, "Export hits", f"crime-batch-{day}.{kind}", ext)
        if not path:
            return None
        from monitorapp.crime.batch import write_hits_csv, write_hits_json
        if kind == "pdf":            # seconds for a day's hits: drawn on the worker, the console runs on
            report, who = self.report, self.session.username
            self.pdf_button.setEnabled(False)
            self.message.setText(f"Writing the batch report to {path}…")
            self._job += 1
            job = self._job
            fut = self._pool.submit(lambda: (path, write_batch_pdf(report, path, store=self.store, produced_by=who)))
            fut.add_done_callback(lambda f: self._finished(job, f, self._written))
            return path
        try:
            (write_hits_json if kind == "json" else write_hits_csv)(self.report, path)
            digest = digest_of(self.report)
            self.store.audit(self.session.username, "evidence_export", {
                "kind": f"batch_{kind}", "path": str(path), "reason": self.report["query"].get("reason"),
                "incidents": len(self.report["incidents"]), "hits": len(self.report["hits"]),
                "sha256": digest})
        except (OSError, ValueError) as e:
            self.message.setText(f"{path}: not written: {e}")
            return None
        self.message.setText(f"{kind.upper()} written to {path} (SHA-256 {digest[:16]}…); recorded in the audit log.")
        self.exported.emit(kind, str(path), digest)
        return path

    def _on_written(self, job: int) -> None:
        with self._lock:
            fut = self._results.pop(job, None)
        if fut is None:
            return
        self.pdf_button.setEnabled(self.report is not None and can(self.session.role, "evidence_export"))
        if fut.exception() is not None:
            self.message.setText(f"The batch report was not written: {fut.exception()}")
            self.failed.emit(str(fut.exception()))
            return
        path, digest = fut.result()
        self.message.setText(f"PDF written to {path} (SHA-256 {digest[:16]}…); recorded in the audit log.")
        self.exported.emit("pdf", str(path), digest)

    def shutdown(self) -> None:
        self._cancel.set()
        self._pool.shutdown(wait=True)
