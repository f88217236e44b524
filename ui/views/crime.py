"""The police analyst's crime-mapping view: where was who, when (spec §5), in the application.

The analyst picks the place on the map or types it (latitude and longitude, a British National
Grid grid reference or easting and northing, or a street or address: ``monitorapp.crime.place``),
a radius and a time window (typed digits go in: ``ui.console.formdialog``), and must give a
reference number and a reason: without them the query is refused before it runs. The query runs on a worker thread through ``monitorapp.crime.query.crime_check`` (which
writes it to the audit log); the answer comes back to the GUI thread as a signal. The view shows
every person's verdict in a table (``CrimeResultModel``), a distance-to-scene over time chart
per person with the radius as a line (pyqtgraph), and on the map the scene circle, the closest
fix of each person near it and the selected person's track. Exports (the evidential PDF, GeoJSON
and CSV, all ``monitorapp.crime.evidence``) are audited with the data's SHA-256.

A second tab, *Incidents file*, is the batch (``ui.views.crimebatch``): a day's incidents
checked against every track; each hit opens here with its incident's place, radius, window and
reference filled in, and runs.
"""
from __future__ import annotations

import concurrent.futures
import threading

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QDateTime, Qt, QTimeZone, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QDoubleSpinBox, QFileDialog,
                               QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QSplitter, QTableView, QTabWidget, QVBoxLayout,
                               QWidget)

from monitorapp.crime import evidence as evidence_report
from monitorapp.crime.query import MARGIN_S, CrimeQueryError, crime_check, scene_xy, window_reader
from monitorapp.crime.evidence import VERDICT_TEXT
from monitorapp.crime.evidencepdf import shipped_places
from monitorapp.crime.place import PlaceError, bng, grid_reference, in_grid, parse_place
from monitorapp.crime.trail import latest_fix_time, read_track
from ui.console.formdialog import utc_datetime_edit
from ui.views.crimebatch import BatchPanel
from ui.views.tablemodel import ColumnsModel
from ui.roles import RoleRefused, can, require
from ui.text import escape, plain_label
from ui.theme import current, style_plot

COLUMNS = ("Verdict", "Offender", "Tag", "Closest", "At (UTC)", "Accuracy", "Basis")
CHART_MAX = 8            # people drawn on the distance chart (present and possible first)
SCENE_ZONE = "crime-scene"
PENS = ["#1c1c1c", "#4f6f91", "#6d6d6d", "#8a6d00", "#3f7d4e", "#999999", "#555555", "#2f5f8a"]
PENS_DARK = ["#e6e6e6", "#8fb3d9", "#a8a8a8", "#e0c040", "#7fc08e", "#6f6f6f", "#c4c4c4", "#7fa8d0"]


def pens() -> list[str]:
    """The curves' colours, told apart on the theme's background (night: light on dark)."""
    return PENS_DARK if current().name == "dark" else PENS


class CrimeResultModel(ColumnsModel):
    """One row per person in the answer, in the answer's order (strongest verdict first)."""
    columns = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self._results: list[dict] = []

    def set_results(self, results: list[dict]) -> None:
        # a new answer replaces the old one: a reset here is one event per query, not per tick
        self.beginResetModel()
        self._results = list(results)
        self.endResetModel()

    def result(self, row: int) -> dict:
        return self._results[row]

    def row_count(self) -> int:
        return len(self._results)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not self.in_table(index):
            return None
        r = self._results[index.row()]
        c = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if c == 0:
                return VERDICT_TEXT[r["verdict"]]
            if c == 1:
                return r["offender"] or "(unassigned tag)"
            if c == 2:
                return r["device"]
            if c == 3:
                return "—" if r["closest_m"] is None else f"{r['closest_m']:.0f} m"
            if c == 4:
                return (r["closest_at"] or "—").replace("T", " ").replace("Z", "")
            if c == 5:
                return "—" if r.get("closest_acc_m") is None else f"±{r['closest_acc_m']:.0f} m"
            return "; ".join(r.get("basis") or [])
        if role == Qt.ItemDataRole.FontRole and c == 0 and r["verdict"] in ("present", "possible"):
            f = QFont()
            f.setBold(True)
            return f
        return None


def _distance_series(conn, answer: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """device -> (t, metres from the scene) over the window and its margin, for the chart
    (``conn``: the store's reader, or the record's slice the query read)."""
    q = answer["query"]
    cx, cy = scene_xy(q["lon"], q["lat"])
    from monitorapp.feed.timeutil import parse_time
    lo, hi = parse_time(q["from"]) - MARGIN_S, parse_time(q["to"]) + MARGIN_S
    out = {}
    for r in answer["results"]:
        if r["verdict"] not in ("present", "possible") or len(out) >= CHART_MAX:
            continue
        tr = read_track(conn, r["device"], lo, hi)
        if tr is not None:
            out[r["device"]] = (tr["t"], np.hypot(tr["x"] - cx, tr["y"] - cy))
    return out


class CrimePanel(QWidget):
    """The crime-mapping view (see the module docstring)."""

    answered = Signal(object)      # the crime-mapping answer (object: a dict of bools through
                                   # QVariantMap trips a PySide refcount bug at exit)
    refused = Signal(str)          # a query refused before it ran (the reason)
    failed = Signal(str)
    _done = Signal(int)            # a finished job's number (its result waits in _results)
    exported = Signal(str, str, str)   # kind, path, SHA-256: an export written and audited
    _written = Signal(int)         # a finished PDF job's number

    def __init__(self, store, session, *, map_view=None, embed_map: bool = True, parent=None):
        super().__init__(parent)
        require(session.role, "crime_query")
        self.store, self.session, self.map = store, session, map_view
        self.answer: dict | None = None
        self.series: dict = {}
        self._markers: set[str] = set()
        self._stopped = False
        self._job = 0
        self._results: dict[int, object] = {}
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="crime-query")
        self.setObjectName("crimePanel")
        self.setWindowTitle("Crime mapping")
        last = latest_fix_time(store)
        self._reader = None        # the last query's window (the record's slice), for its tracks

        form = QFormLayout()
        self.lat, self.lon = QDoubleSpinBox(), QDoubleSpinBox()
        for w, lim in ((self.lat, 90), (self.lon, 180)):
            w.setDecimals(6)
            w.setRange(-lim, lim)
            w.setSingleStep(0.0005)
        self.lat.setValue(51.5131)
        self.lon.setValue(-0.0890)
        self.pick = QPushButton("Pick the place on the map")
        self.pick.setCheckable(True)
        self.pick.setEnabled(map_view is not None)
        place = QHBoxLayout()
        place.addWidget(QLabel("lat"))
        place.addWidget(self.lat)
        place.addWidget(QLabel("lon"))
        place.addWidget(self.lon)
        place.addWidget(self.pick)
        form.addRow("Place", place)
        self.place_text = QLineEdit()
        self.place_text.setObjectName("placeText")
        self.place_text.setPlaceholderText("or type: 51.5131, -0.0890 · TQ 29970 81740 · 529970 181740 · "
                                           "a street or address")
        self.find_place = QPushButton("Find")
        typed = QHBoxLayout()
        typed.addWidget(self.place_text, 1)
        typed.addWidget(self.find_place)
        form.addRow("", typed)
        self._places = None
        self.radius = QSpinBox()
        self.radius.setRange(1, 50_000)
        self.radius.setValue(200)
        self.radius.setSuffix(" m")
        form.addRow("Radius", self.radius)
        self.t_from, self.t_to = utc_datetime_edit(last - 3600, seconds=True), utc_datetime_edit(last, seconds=True)
        window = QHBoxLayout()
        window.addWidget(self.t_from)
        window.addWidget(QLabel("to"))
        window.addWidget(self.t_to)
        form.addRow("Window", window)
        self.ref = QLineEdit()
        self.ref.setPlaceholderText("Police reference number (required)")
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("Why this query is made (required)")
        form.addRow("Reference", self.ref)
        form.addRow("Reason", self.reason)

        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run query")
        self.run_button.setDefault(True)
        self.pdf_button = QPushButton("Evidential report (PDF)…")
        self.geojson_button = QPushButton("GeoJSON…")
        self.csv_button = QPushButton("CSV…")
        buttons.addWidget(self.run_button)
        buttons.addStretch(1)
        for b in (self.pdf_button, self.geojson_button, self.csv_button):
            b.setEnabled(False)
            buttons.addWidget(b)
        self.message = plain_label("Every query is recorded with who asked, when, the reference and the reason.")
        self.message.setWordWrap(True)

        self.model = CrimeResultModel(self)
        self.table = QTableView()
        self.table.setTabKeyNavigation(False)      # Tab leaves the table (arrows move in it)
        self.table.setObjectName("crimeTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setAlternatingRowColors(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)

        self.chart = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(utcOffset=0)})
        self.chart.setObjectName("distanceChart")
        pal = current()                  # dark at night: the chart follows the theme
        self.chart.showGrid(x=True, y=True, alpha=0.25)
        self.chart.setLabel("left", "distance to the scene (m)")
        self.chart.setLabel("bottom", "time (UTC)")
        style_plot(self.chart, pal)
        self.chart.addLegend(offset=(10, 10), labelTextColor=pal.text, brush=pg.mkBrush(pal.base))
        self.radius_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(pal.text, width=2, style=Qt.PenStyle.DashLine),
                                           label="radius {value:.0f} m",
                                           labelOpts={"position": 0.05, "color": pal.text})
        shade = (255, 255, 255, 22) if pal.name == "dark" else (0, 0, 0, 18)
        self.window_region = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(*shade))
        for edge in self.window_region.lines:       # the window's edges, grey like the rest
            edge.setPen(pg.mkPen(pal.dim_text, width=1))
        self._curves: list = []
        for item in (self.radius_line, self.window_region):
            self.chart.addItem(item)
            item.hide()

        single = QWidget()
        ll = QVBoxLayout(single)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(form)
        ll.addLayout(buttons)
        ll.addWidget(self.message)
        ll.addWidget(self.table, 1)
        self.batch = BatchPanel(store, session)
        self.tabs = QTabWidget()
        self.tabs.addTab(single, "One incident")
        self.tabs.addTab(self.batch, "Incidents file (batch)")
        split = QSplitter(Qt.Orientation.Vertical)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.tabs)
        if map_view is not None and embed_map:
            top.addWidget(map_view)
            top.setStretchFactor(1, 1)
        split.addWidget(top)
        split.addWidget(self.chart)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        lay = QVBoxLayout(self)
        lay.addWidget(split)

        self.run_button.clicked.connect(self.run_query)
        # Return in the reference or the reason runs it (a view is no dialog: no default button)
        for field in (self.ref, self.reason):
            field.returnPressed.connect(self.run_button.click)
        self.pdf_button.clicked.connect(lambda: self.export("pdf"))
        self.geojson_button.clicked.connect(lambda: self.export("geojson"))
        self.csv_button.clicked.connect(lambda: self.export("csv"))
        self.table.selectionModel().selectionChanged.connect(self._row_selected)
        self._done.connect(self._on_done)
        self.place_text.returnPressed.connect(self.find_place.click)
        self.find_place.clicked.connect(lambda: self.set_place_text(self.place_text.text()))
        self.batch.openHit.connect(self.open_hit)
        self._written.connect(self._on_written)
        self._open_device: str | None = None
        if map_view is not None:
            map_view.mapClicked.connect(self._map_clicked)
            map_view.set_zone_tools(False)      # an analyst's map draws no zones: no toolbars

    # ---- the query ------------------------------------------------------------------------------
    def set_place(self, lat: float, lon: float) -> None:
        self.lat.setValue(lat)
        self.lon.setValue(lon)

    def set_window(self, t_from: float, t_to: float) -> None:
        self.t_from.setDateTime(QDateTime.fromSecsSinceEpoch(int(t_from), QTimeZone.utc()))
        self.t_to.setDateTime(QDateTime.fromSecsSinceEpoch(int(t_to), QTimeZone.utc()))

    def set_place_text(self, text: str) -> bool:
        """The place as typed (lat/lon, grid reference, easting/northing, street or address)."""
        if self._places is None:
            self._places = shipped_places() or False
        try:
            found = parse_place(text, self._places or None)
        except PlaceError as e:
            self.message.setText(f"Place not set: {e}")
            return False
        self.set_place(found.lat, found.lon)
        e, n = bng(found.lat, found.lon)
        grid = f", grid reference {grid_reference(e, n)}" if in_grid(e, n) else ""
        self.message.setText(f"Place set from the {found.how}: {found.text} ({found.lat:.6f}, {found.lon:.6f}{grid}).")
        return True

    def open_hit(self, incident: dict, hit: dict) -> bool:
        """A batch's hit in this view: its incident's place, radius, window and reference, run
        with the batch's reason; the person's row is selected when the answer comes."""
        from monitorapp.feed.timeutil import parse_time
        self.tabs.setCurrentIndex(0)
        self.set_place(float(incident["lat"]), float(incident["lon"]))
        self.radius.setValue(int(round(float(incident["radius_m"]))))
        self.set_window(parse_time(incident["from"]), parse_time(incident["to"]))
        self.ref.setText(str(incident["reference"]))
        if self.batch.report is not None:
            self.reason.setText(self.batch.report["query"].get("reason", ""))
        self._open_device = hit.get("device")
        return self.run_query()

    def _map_clicked(self, lat: float, lon: float) -> None:
        if self.pick.isChecked():
            self.set_place(lat, lon)
            self.pick.setChecked(False)
            self.message.setText(f"Place set from the map: {lat:.6f}, {lon:.6f}")

    def run_query(self) -> bool:
        """Start the query; False (and ``refused``) when it cannot be asked as it stands."""
        try:
            require(self.session.role, "crime_query")
        except RoleRefused as e:
            return self._refuse(str(e))
        if not self.ref.text().strip() or not self.reason.text().strip():
            return self._refuse("A reference number and a reason are required before a query runs.")
        t0 = self.t_from.dateTime().toSecsSinceEpoch()
        t1 = self.t_to.dateTime().toSecsSinceEpoch()
        args = (self.lat.value(), self.lon.value(), float(self.radius.value()), float(t0), float(t1),
                self.ref.text(), self.reason.text(), self.session.username)
        self.run_button.setEnabled(False)
        self.message.setText("Running the query…")
        self._job += 1
        job = self._job
        fut = self._pool.submit(self._work, args)
        fut.add_done_callback(lambda f: self._finished(job, f))
        return True

    def _finished(self, job: int, fut) -> None:
        """On the query thread: park the result and wake the GUI thread with the job number
        only (Python objects are not sent through a queued signal from a foreign thread)."""
        with self._lock:
            self._results[job] = fut
        self._done.emit(job)

    def _work(self, args):
        # on the record, the window is read once (audited with the query's ref and reason) and
        # the chart and the tracks on the map come from that same read; SQLite reads itself
        lat, lon, radius, t0, t1, ref, reason = args[:7]
        reader = None
        if hasattr(self.store, "crime_reader"):
            reader = window_reader(self.store, t0, t1, ref.strip(), reason.strip(),
                                   {"lat": lat, "lon": lon, "radius_m": radius})
        answer = crime_check(self.store, *args, reader=reader)
        self._reader = reader
        return answer, _distance_series(reader if reader is not None else self.store.reader(), answer)

    def _refuse(self, text: str) -> bool:
        self.message.setText(text)
        self.refused.emit(text)
        return False

    def _on_done(self, job: int) -> None:
        with self._lock:
            fut = self._results.pop(job, None)
        if fut is None:
            return
        exc = fut.exception()
        out = None if exc is not None else fut.result()
        self.run_button.setEnabled(True)
        if exc is not None:
            text = str(exc) if isinstance(exc, CrimeQueryError) else f"{exc.__class__.__name__}: {exc}"
            self.message.setText(f"The query was refused: {text}")
            self.failed.emit(text)
            return
        self.answer, self.series = out
        self.model.set_results(self.answer["results"])
        counts = {v: sum(1 for r in self.answer["results"] if r["verdict"] == v) for v in VERDICT_TEXT}
        self.message.setText(
            f"Ref {self.answer['query']['ref']}, asked {self.answer['query']['asked_at']}: "
            + ", ".join(f"{n} {VERDICT_TEXT[v]}" for v, n in counts.items()) + ". Recorded in the audit log.")
        allowed = can(self.session.role, "evidence_export")
        for b in (self.pdf_button, self.geojson_button, self.csv_button):
            b.setEnabled(allowed)
        self._draw_chart()
        self._draw_map()
        if self._open_device is not None:
            rows = [i for i, r in enumerate(self.answer["results"]) if r["device"] == self._open_device]
            self._open_device = None
            if rows:
                self.table.selectRow(rows[0])
        self.answered.emit(self.answer)

    # ---- showing the answer ---------------------------------------------------------------------
    def _draw_chart(self) -> None:
        from monitorapp.feed.timeutil import parse_time
        for curve in self._curves:
            self.chart.removeItem(curve)
        self._curves = []
        q = self.answer["query"]
        names = {r["device"]: r["offender"] or r["device"] for r in self.answer["results"]}
        for i, (dev, (t, d)) in enumerate(self.series.items()):
            colours = pens()
            self._curves.append(self.chart.plot(t, d, pen=pg.mkPen(colours[i % len(colours)], width=2), symbol="o", symbolSize=5,
                            symbolBrush=colours[i % len(colours)],
                            name=escape(f"{names.get(dev, dev)} ({dev})")))     # pyqtgraph legends are HTML
        self.radius_line.show()      # first: pyqtgraph does not update a hidden line's label
        self.radius_line.setValue(q["radius_m"])
        self.window_region.setRegion((parse_time(q["from"]), parse_time(q["to"])))
        self.window_region.show()

    def _draw_map(self) -> None:
        if self.map is None:
            return
        q = self.answer["query"]
        self.map.set_zones([{"type": "Feature", "id": SCENE_ZONE,
                             "geometry": {"type": "Point", "coordinates": [q["lon"], q["lat"]]},
                             "properties": {"kind": "scene", "radius_m": q["radius_m"],
                                            "name": f"{q['ref']} ({q['radius_m']:.0f} m)"}}])
        self.map.remove_markers(sorted(self._markers))
        markers = []
        for r in self.answer["results"]:
            near = [f for f in r.get("fixes") or [] if f.get("in_window")]
            if not near:
                continue
            f = min(near, key=lambda f: f["distance_m"])
            markers.append({"device": r["device"], "lat": f["lat"], "lon": f["lon"], "acc": f["acc"],
                            "label": f"{r['offender'] or r['device']} · {VERDICT_TEXT[r['verdict']]}",
                            "priority": None, "stale": False})
        if markers:
            self.map.update_markers(markers)
        self._markers = {m["device"] for m in markers}
        self.map.pan_to(q["lat"], q["lon"], 16)

    def _row_selected(self, *_) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and self.map is not None and self.answer is not None:
            self.show_track(self.model.result(rows[0].row())["device"])

    def show_track(self, device: str) -> None:
        """The person's track over the window and its margin, on the map."""
        from monitorapp.feed.timeutil import parse_time
        q = self.answer["query"]
        conn = self._reader if self._reader is not None else self.store.reader()
        tr = read_track(conn, device, parse_time(q["from"]) - MARGIN_S,
                        parse_time(q["to"]) + MARGIN_S, full=True)
        if tr is None or self.map is None:
            return
        trail = [{"lat": float(a), "lon": float(b), "t": float(t), "acc": float(c)}
                 for a, b, t, c in zip(tr["lat"], tr["lon"], tr["t"], tr["acc"])]
        self.map.select_device(device, trail, now=float(tr["t"][-1]))

    # ---- exports --------------------------------------------------------------------------------
    def export(self, kind: str, path: str | None = None) -> str | None:
        """Write the PDF, GeoJSON or CSV export and audit it; returns the data's SHA-256."""
        require(self.session.role, "evidence_export")
        if self.answer is None:
            self.message.setText("Run a query first.")
            return None
        ext = {"pdf": "PDF (*.pdf)", "geojson": "GeoJSON (*.geojson)", "csv": "CSV (*.csv)"}[kind]
        if not path:
            ref = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in self.answer["query"]["ref"])
            path, _ = QFileDialog.getSaveFileName(self, "Export", f"crime-{ref}.{kind}", ext)
        if not path:
            return None
        if kind == "pdf":
            # drawn on the query thread (a report of many hits takes seconds: the console keeps
            # running); the map is drawn from the data, not grabbed from the screen
            from ui.views.report import write_pdf
            answer, who, at = self.answer, self.session.username, self.store.clock()

            def work():
                digest = write_pdf(path, answer, who, produced_at=at)
                evidence_report.audit_export(self.store, who, "pdf", path, answer, digest)
                return path, digest
            self.pdf_button.setEnabled(False)
            self.message.setText(f"Writing the evidential report to {path}…")
            self._job += 1
            job = self._job
            self._pool.submit(work).add_done_callback(lambda f: self._park(job, f, self._written))
            return evidence_report.data_digest(answer)
        digest = evidence_report.export(self.store, self.session.username, kind, path, self.answer)
        self.message.setText(f"{kind.upper()} written to {path} (SHA-256 {digest[:16]}…); recorded in the audit log.")
        self.exported.emit(kind, str(path), digest)
        return digest

    def _park(self, job: int, fut, signal) -> None:
        with self._lock:
            self._results[job] = fut
        signal.emit(job)

    def _on_written(self, job: int) -> None:
        with self._lock:
            fut = self._results.pop(job, None)
        if fut is None:
            return
        self.pdf_button.setEnabled(self.answer is not None and can(self.session.role, "evidence_export"))
        if fut.exception() is not None:
            self.message.setText(f"The report was not written: {fut.exception()}")
            self.failed.emit(str(fut.exception()))
            return
        path, digest = fut.result()
        self.message.setText(f"PDF written to {path} (SHA-256 {digest[:16]}…); recorded in the audit log.")
        self.exported.emit("pdf", str(path), digest)

    def shutdown(self) -> None:
        """Stop the query and batch threads (waits for a running query)."""
        self.batch.shutdown()
        self._pool.shutdown(wait=True)
        if self.map is not None and not self._stopped:
            self.map.mapClicked.disconnect(self._map_clicked)
        self._stopped = True

    def closeEvent(self, event):  # noqa: N802 (Qt API)
        self.shutdown()
        super().closeEvent(event)

