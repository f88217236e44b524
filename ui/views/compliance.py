"""The supervisor's "Compliance report…" dialog (issue 21): one offender, a period, a reason, and
the PDF or the CSV a probation officer takes to a breach hearing.

``ComplianceDialog(store, session, caseload=None)``: the offender from the caseload (the
console's, else the store's offenders), the period as two local dates (from the start of the
first to the end of the last, in the centre's time zone), the reason (recorded in the audit log
with the report), the file to write (typed, or chosen with *Browse…*, a Qt file dialog, not the
desktop's native one) and *Write PDF* / *Write CSV*. The report is built and written on a worker
thread (``monitorapp.response.compliance``, ``compliancepdf``); the GUI thread only gets the job
number back through a queued signal and shows the outcome in plain text. Only the roles with
``compliance_report`` (supervisors, administrators) open it; the store enforces what a login
may read.
"""
from __future__ import annotations

import concurrent.futures
import datetime as dt
import threading
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate, Signal
from PySide6.QtWidgets import (QComboBox, QDateEdit, QDialog, QFileDialog, QFormLayout,
                               QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout)

from ui.roles import require
from ui.text import plain_label


def offenders_of(store, caseload) -> list[tuple[str, str]]:
    """[(offender id, name)] from the console's caseload, else the store's offenders."""
    if caseload is not None and getattr(caseload, "offenders", None):
        return sorted((oid, getattr(o, "name", "") or "") for oid, o in caseload.offenders.items())
    try:
        rows = store.reader().execute("SELECT offender_id, name FROM offenders ORDER BY offender_id").fetchall()
    except Exception:          # noqa: BLE001 - a login that may not read offenders: an empty list
        return []
    return [(r[0], r[1] or "") for r in rows]


class ComplianceDialog(QDialog):
    """See the module docstring. ``written(kind, path, sha256)`` once a file is written."""

    written = Signal(str, str, str)
    failed = Signal(str)
    _done = Signal(int)

    def __init__(self, store, session, *, caseload=None, tz: str = "Europe/London", parent=None):
        super().__init__(parent)
        require(session.role, "compliance_report")
        self.store, self.session, self.caseload = store, session, caseload
        self.tz = ZoneInfo(tz)
        self.setObjectName("complianceDialog")
        self.setWindowTitle("Compliance report")
        self.setMinimumWidth(560)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="compliance")
        self._lock = threading.Lock()
        self._results: dict[int, concurrent.futures.Future] = {}
        self._job = 0
        form = QFormLayout()
        self.offender = QComboBox()
        self.offender.setObjectName("complianceOffender")
        for oid, name in offenders_of(store, caseload):
            self.offender.addItem(f"{oid} — {name}" if name else oid, oid)
        form.addRow("Offender", self.offender)
        today = dt.datetime.fromtimestamp(store.clock() if hasattr(store, "clock") else dt.datetime.now().timestamp(),
                                          self.tz).date()
        self.date_from, self.date_to = QDateEdit(), QDateEdit()
        for w, d in ((self.date_from, today - dt.timedelta(days=30)), (self.date_to, today)):
            w.setDisplayFormat("yyyy-MM-dd")
            w.setCalendarPopup(True)
            w.setDate(QDate(d.year, d.month, d.day))
        period = QHBoxLayout()
        period.addWidget(self.date_from)
        period.addWidget(plain_label("to"))
        period.addWidget(self.date_to)
        form.addRow("Period (local dates)", period)
        self.reason = QLineEdit()
        self.reason.setObjectName("complianceReason")
        self.reason.setPlaceholderText("why: e.g. breach hearing at Highbury Corner, 2 December")
        form.addRow("Reason (audited)", self.reason)
        self.path = QLineEdit()
        self.path.setObjectName("compliancePath")
        self.path.setPlaceholderText("file to write, e.g. /home/me/OFF-1-compliance.pdf")
        self.browse = QPushButton("Browse…")
        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(self.browse)
        form.addRow("File", where)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        buttons = QHBoxLayout()
        self.pdf_button = QPushButton("Write &PDF")
        self.csv_button = QPushButton("Write &CSV")
        buttons.addStretch(1)
        buttons.addWidget(self.pdf_button)
        buttons.addWidget(self.csv_button)
        lay.addLayout(buttons)
        self.message = plain_label()
        self.message.setObjectName("complianceMessage")
        self.message.setWordWrap(True)
        lay.addWidget(self.message)
        self.browse.clicked.connect(self.choose_file)
        self.pdf_button.clicked.connect(lambda: self.write("pdf"))
        self.csv_button.clicked.connect(lambda: self.write("csv"))
        self._done.connect(self._on_done)

    # ---- input ----------------------------------------------------------------------------------
    def period(self) -> tuple[float, float]:
        """Epoch seconds: the first date's local midnight to the end of the last date."""
        def day(w):
            d = w.date()
            return dt.date(d.year(), d.month(), d.day())
        start = dt.datetime.combine(day(self.date_from), dt.time(), self.tz)
        end = dt.datetime.combine(day(self.date_to) + dt.timedelta(days=1), dt.time(), self.tz)
        return start.timestamp(), end.timestamp()

    def choose_file(self) -> None:
        kind = "CSV (*.csv)" if self.path.text().lower().endswith(".csv") else "PDF (*.pdf)"
        dlg = QFileDialog(self, "Write the compliance report", self.path.text() or
                          f"{self.offender.currentData() or 'offender'}-compliance.pdf", kind)
        dlg.setObjectName("complianceFileDialog")
        dlg.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        if dlg.exec() and dlg.selectedFiles():
            self.path.setText(dlg.selectedFiles()[0])

    # ---- work -----------------------------------------------------------------------------------
    def write(self, kind: str) -> int | None:
        """Start writing the report as ``kind`` (pdf, csv) on the worker; returns the job number."""
        oid, reason, path = self.offender.currentData(), self.reason.text().strip(), self.path.text().strip()
        if not oid:
            self.message.setText("Choose an offender.")
            return None
        if not reason:
            self.message.setText("Give the reason for the report: it is recorded in the audit log.")
            self.reason.setFocus()
            return None
        if not path:
            self.message.setText("Give the file to write (or Browse…).")
            return None
        if not path.lower().endswith("." + kind):
            path += "." + kind
            self.path.setText(path)
        t_from, t_to = self.period()
        self._job += 1
        job = self._job
        self.pdf_button.setEnabled(False)
        self.csv_button.setEnabled(False)
        self.message.setText(f"Writing the {kind.upper()} for {oid}…")
        fut = self._pool.submit(self._work, kind, oid, t_from, t_to, reason, path)
        fut.add_done_callback(lambda f, j=job: self._park(j, f))
        return job

    def _work(self, kind, oid, t_from, t_to, reason, path):
        from monitorapp.response.compliance import compliance_report
        from monitorapp.response.compliancepdf import write_compliance_csv, write_compliance_pdf
        report = compliance_report(self.store, oid, t_from, t_to, self.session.username, reason,
                                   caseload=self.caseload)
        if kind == "pdf":
            write_compliance_pdf(report, path, self.store)
        else:
            write_compliance_csv(report, path)
        return kind, path, report

    def _park(self, job: int, fut) -> None:
        """On the worker: keep the future, wake the GUI thread with the job number only."""
        with self._lock:
            self._results[job] = fut
        self._done.emit(job)

    def _on_done(self, job: int) -> None:
        with self._lock:
            fut = self._results.pop(job, None)
        self.pdf_button.setEnabled(True)
        self.csv_button.setEnabled(True)
        if fut is None:
            return
        try:
            kind, path, report = fut.result()
        except Exception as e:      # noqa: BLE001 - shown to the supervisor, one line
            text = str(e).splitlines()[0] if str(e) else type(e).__name__
            self.message.setText(f"Not written: {text}")
            self.failed.emit(text)
            return
        n = len(report["alerts"])
        self.message.setText(f"{kind.upper()} written to {path}: {n} alert{'s' if n != 1 else ''}, time away "
                             f"from curfew {report['curfew_away_s'] / 60:.0f} min; SHA-256 {report['sha256'][:16]}… "
                             "(recorded in the audit log)")
        self.written.emit(kind, path, report["sha256"])

    def shutdown(self) -> None:
        """Wait for a report being written and stop the worker (the dialog is going away)."""
        self._pool.shutdown(wait=True)
