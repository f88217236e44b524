"""Supervisor acknowledgement review: how every alert was handled, by whom, how fast.

``handling_records(store, ...)`` joins the store's alerts, its hash-chained acknowledgement log
and the supervisors' reviews (kept in the audit log, action ``alert_review``) into one record
per alert: time to acknowledge and to close (from the raise), the operator, the shift, whether
the handling was late (acknowledged, or still waiting, past its priority's limit), the latest
supervisor comment and reviewed mark. ``ReviewModel`` shows them; ``ReviewFilter`` filters by
operator, shift, priority, type and dates; ``ReviewPanel`` is the view, which checks both hash
chains when it opens and shows the result, records comments and reviewed marks (themselves
audited) and exports CSV (audited).

The alert's timeline (issue 21) is part of each record: every step of its response (the
protocol step or "other", its outcome, the police reference, the note, who and when), every
mandatory step skipped with its reason, and the steps done after their time limit. The table's
last column sums it up; the selected alert's whole timeline is shown under the table; the CSV
has it in ``steps``, ``skipped``, ``late_steps`` and ``timeline`` (one item per line).

Decisions where the spec is silent: the limits are the console's escalation limits (critical
60 s, high 180 s, medium 900 s) and one hour for low; shifts are day (07:00-19:00 local) and
night (19:00-07:00, named after the date it starts), by the time the alert was raised.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from zoneinfo import ZoneInfo

from PySide6.QtCore import (QDate, QModelIndex, QSortFilterProxyModel, Qt,
                            Signal)
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDateEdit, QFileDialog,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPlainTextEdit,
                               QPushButton, QTableView, QVBoxLayout, QWidget)

from localdb.verify import verify_store
from monitorapp.feed.timeutil import fmt_time
from monitorapp.response.protocols import steps_for
from monitorapp.response.timeline import checklist, describe, timeline
from ui.views.tablemodel import ColumnsModel
from ui.console.alertmodel import TYPE_TEXT, fmt_duration
from ui.roles import can, require
from ui.text import plain_label, tooltip
from ui.theme import PRIORITY_TEXT

DEFAULT_LIMITS = {"critical": 60.0, "high": 180.0, "medium": 900.0, "low": 3600.0}
DAY_START, NIGHT_START = 7, 19
LATE_MARK = "⚠ LATE"
COLUMNS = ("Reviewed", "Priority", "Type", "Offender", "Raised", "Shift", "Operator",
           "To ack", "To close", "Late", "Action", "Note", "Supervisor comment", "Response")
(C_REVIEWED, C_PRIORITY, C_TYPE, C_OFFENDER, C_RAISED, C_SHIFT, C_OPERATOR, C_TTA, C_TTC,
 C_LATE, C_ACTION, C_NOTE, C_COMMENT, C_RESPONSE) = range(len(COLUMNS))
CSV_FIELDS = ("alert_id", "type", "priority", "offender", "device", "raised_at", "shift",
              "operator", "acked_at", "acked_by", "action_code", "note", "closed_at",
              "closed_by", "tta_s", "ttc_s", "late", "handling", "reviewed", "reviewed_by",
              "comment", "steps", "skipped", "late_steps", "timeline", "notified")


def shift_of(t: float, tz) -> str:
    local = dt.datetime.fromtimestamp(t, tz)
    if DAY_START <= local.hour < NIGHT_START:
        return f"{local.date().isoformat()} day"
    start = local.date() if local.hour >= NIGHT_START else local.date() - dt.timedelta(days=1)
    return f"{start.isoformat()} night"


def handling_records(store, now: float | None = None, limits: dict | None = None,
                     tz="Europe/London") -> list[dict]:
    """One record per stored alert, oldest raised first (see the module docstring)."""
    limits = {**DEFAULT_LIMITS, **(limits or {})}
    tz = ZoneInfo(tz) if isinstance(tz, str) else tz
    now = store.clock() if now is None else now
    steps: dict[str, dict] = {}
    entries: dict[str, list] = {}
    for r in store.ack_log():
        entries.setdefault(r["alert_id"], []).append(r)
        s = steps.setdefault(r["alert_id"], {})
        if r["action"] == "acknowledge" and "ack" not in s:
            s["ack"] = r
        elif r["action"] == "close":
            s["close"] = r
    protocols = store.response_protocols() if hasattr(store, "response_protocols") else None
    risks = {}
    try:
        risks = dict(store.reader().execute("SELECT offender_id, risk FROM offenders").fetchall())
    except Exception:          # noqa: BLE001 - a login that may not read offenders: default protocol
        pass
    reviews: dict[str, dict] = {}
    for r in store.reader().execute("SELECT at, who, detail FROM audit_log WHERE"
                                    " action='alert_review' ORDER BY seq"):
        d = json.loads(r[2])
        reviews[d.get("alert_id")] = {"at": r[0], "by": r[1], **d}
    from ui.console.notifications import notification_summary
    notified = notification_summary(store)           # issue 20: who was told, how soon
    out = []
    for a in sorted(store.alerts(), key=lambda a: (a["raised_at"], a["alert_id"])):
        s = steps.get(a["alert_id"], {})
        ack, close = s.get("ack"), s.get("close")
        raised = a["raised_at"]
        tta = ack["at"] - raised if ack else None
        ttc = close["at"] - raised if close else None
        limit = limits.get(a["priority"])
        waited = tta if tta is not None else (now - raised if a["handling"] != "closed" else None)
        rv = reviews.get(a["alert_id"], {})
        out.append({
            "alert_id": a["alert_id"], "type": a["type"], "priority": a["priority"],
            "offender": a["offender_id"], "device": a["device"], "raised_at": raised,
            "shift": shift_of(raised, tz),
            "operator": (ack or close or {}).get("operator", ""),
            "acked_at": ack["at"] if ack else None, "acked_by": ack["operator"] if ack else None,
            "action_code": ack["action_code"] if ack else None, "note": ack["note"] if ack else None,
            "closed_at": close["at"] if close else None,
            "closed_by": close["operator"] if close else None,
            "tta_s": tta, "ttc_s": ttc, "handling": a["handling"],
            "late": bool(limit is not None and waited is not None and waited > limit),
            "reviewed": bool(rv.get("reviewed")), "reviewed_by": rv.get("by"),
            "comment": rv.get("comment") or "", "notified": notified.get(a["alert_id"], ""),
            **response_of(entries.get(a["alert_id"], []),
                          steps_for(protocols, a["type"], risks.get(a["offender_id"])), raised, tz),
        })
    return out


def response_of(entries: list[dict], steps: list[dict], raised: float, tz) -> dict:
    """The review's view of an alert's timeline: counts, skips, late steps and the lines."""
    titles = {s["id"]: s["title"] for s in steps}
    items = timeline(entries)
    ticks = checklist(steps, entries, raised, raised)
    late = [c["id"] for c in ticks if c["late"]]
    lines = [f"{dt.datetime.fromtimestamp(i['at'], tz).strftime('%H:%M:%S')} {i['operator']}: "
             f"{describe(i, titles)}" for i in items if i["at"] is not None]
    return {"steps": sum(1 for i in items if i["kind"] == "step"),
            "skipped": "; ".join(f"{i['step_id']}: {i['reason']}" for i in items if i["kind"] == "skip"),
            "late_steps": ", ".join(late), "timeline": "\n".join(lines),
            "timeline_items": items}


def write_csv(path, records: list[dict]) -> int:
    """The records as CSV (times RFC 3339 UTC, durations in seconds); returns rows written."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in records:
            row = dict(r)
            for k in ("raised_at", "acked_at", "closed_at"):
                row[k] = fmt_time(r[k]) if r[k] is not None else ""
            for k in ("tta_s", "ttc_s"):
                row[k] = "" if r[k] is None else f"{r[k]:.1f}"
            w.writerow(row)
    return len(records)


class ReviewModel(ColumnsModel):
    """The handling records, by alert id; ``update`` inserts new alerts and refreshes the rest."""
    columns = COLUMNS

    def __init__(self, tz=None, parent=None):
        super().__init__(parent)
        self._ids: list[str] = []
        self._rows: dict[str, dict] = {}
        self.tz = tz

    def update(self, records: list[dict]) -> None:
        new = [r for r in records if r["alert_id"] not in self._rows]
        changed = False
        for r in records:
            if r["alert_id"] in self._rows and self._rows[r["alert_id"]] != r:
                self._rows[r["alert_id"]] = r
                changed = True
        if changed and self._ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, len(COLUMNS) - 1))
        if new:
            self.beginInsertRows(QModelIndex(), len(self._ids), len(self._ids) + len(new) - 1)
            for r in new:
                self._ids.append(r["alert_id"])
                self._rows[r["alert_id"]] = r
            self.endInsertRows()

    def record(self, row: int) -> dict:
        return self._rows[self._ids[row]]

    def records(self) -> list[dict]:
        return [self._rows[i] for i in self._ids]

    def row_count(self) -> int:
        return len(self._ids)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not self.in_table(index):
            return None
        r = self._rows[self._ids[index.row()]]
        c = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(r, c)
        if role == Qt.ItemDataRole.UserRole:            # sort key
            if c == C_RAISED:
                return r["raised_at"]
            if c in (C_TTA, C_TTC):
                v = r["tta_s" if c == C_TTA else "ttc_s"]
                return 1e18 if v is None else v
            return self._text(r, c)
        if role == Qt.ItemDataRole.FontRole and (c == C_LATE and r["late"] or c == C_PRIORITY):
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(r["alert_id"])
        return None

    def _text(self, r: dict, c: int) -> str:
        if c == C_REVIEWED:
            return "✓" if r["reviewed"] else ""
        if c == C_PRIORITY:
            return PRIORITY_TEXT.get(r["priority"], r["priority"])
        if c == C_TYPE:
            return TYPE_TEXT.get(r["type"], r["type"])
        if c == C_OFFENDER:
            return r["offender"] or "—"
        if c == C_RAISED:
            local = dt.datetime.fromtimestamp(r["raised_at"], self.tz)
            return local.strftime("%d %b %H:%M:%S")
        if c == C_SHIFT:
            return r["shift"]
        if c == C_OPERATOR:
            return r["operator"] or "—"
        if c == C_TTA:
            return fmt_duration(r["tta_s"]) if r["tta_s"] is not None else "not acknowledged"
        if c == C_TTC:
            return fmt_duration(r["ttc_s"]) if r["ttc_s"] is not None else "open"
        if c == C_LATE:
            return LATE_MARK if r["late"] else ""
        if c == C_ACTION:
            return (r["action_code"] or "").replace("_", " ")
        if c == C_NOTE:
            return r["note"] or ""
        if c == C_RESPONSE:
            parts = [f"{r.get('steps', 0)} step{'s' if r.get('steps', 0) != 1 else ''}"]
            if r.get("skipped"):
                parts.append("skipped " + ", ".join(x.split(":")[0] for x in r["skipped"].split("; ")))
            if r.get("late_steps"):
                parts.append(f"late: {r['late_steps']}")
            return " · ".join(parts)
        return r["comment"]


class ReviewFilter(QSortFilterProxyModel):
    """Operator, shift, priority, type (exact, or None for all) and a date range (local)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.criteria: dict = {}
        self.date_from: dt.date | None = None
        self.date_to: dt.date | None = None
        self.setSortRole(Qt.ItemDataRole.UserRole)

    def set_criteria(self, *, operator=None, shift=None, priority=None, type_=None,
                     date_from=None, date_to=None) -> None:
        self.beginFilterChange()
        self.criteria = {"operator": operator, "shift": shift, "priority": priority, "type": type_}
        self.date_from, self.date_to = date_from, date_to
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row, source_parent):  # noqa: N802 (Qt API)
        src = self.sourceModel()
        r = src.record(source_row)
        for key, value in self.criteria.items():
            if value is not None and r[key] != value:
                return False
        if self.date_from or self.date_to:
            day = dt.datetime.fromtimestamp(r["raised_at"], src.tz).date()
            if (self.date_from and day < self.date_from) or (self.date_to and day > self.date_to):
                return False
        return True

    def visible_records(self) -> list[dict]:
        src = self.sourceModel()
        return [src.record(self.mapToSource(self.index(i, 0)).row()) for i in range(self.rowCount())]


class ReviewPanel(QWidget):
    """The supervisors' review view (see the module docstring)."""

    reviewed = Signal(str)

    def __init__(self, store, session, *, limits: dict | None = None, tz: str = "Europe/London",
                 parent=None):
        super().__init__(parent)
        require(session.role, "review")
        self.store, self.session, self.limits = store, session, limits
        self.tz = ZoneInfo(tz)
        self.setObjectName("reviewPanel")
        self.setWindowTitle("Acknowledgement review")
        self.model = ReviewModel(self.tz, self)
        self.proxy = ReviewFilter(self)
        self.proxy.setSourceModel(self.model)

        lay = QVBoxLayout(self)
        self.chain = plain_label()
        self.chain.setObjectName("chainStatus")
        self.chain.setWordWrap(True)
        lay.addWidget(self.chain)
        bar = QHBoxLayout()
        self.f_operator, self.f_shift = QComboBox(), QComboBox()
        self.f_priority, self.f_type = QComboBox(), QComboBox()
        self.f_late = QCheckBox("Late only")
        self.f_from, self.f_to = QDateEdit(), QDateEdit()
        for w in (self.f_from, self.f_to):
            w.setCalendarPopup(True)
            w.setDisplayFormat("yyyy-MM-dd")
        for label, w in (("Operator", self.f_operator), ("Shift", self.f_shift),
                         ("Priority", self.f_priority), ("Type", self.f_type),
                         ("From", self.f_from), ("To", self.f_to)):
            bar.addWidget(QLabel(label))
            bar.addWidget(w)
        bar.addWidget(self.f_late)
        bar.addStretch(1)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setEnabled(can(session.role, "review_export"))
        bar.addWidget(self.export_button)
        lay.addLayout(bar)

        self.table = QTableView()
        self.table.setTabKeyNavigation(False)      # Tab leaves the table (arrows move in it)
        self.table.setObjectName("reviewTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setResizeContentsPrecision(200)    # not every row of a year
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.sortByColumn(C_RAISED, Qt.SortOrder.AscendingOrder)
        lay.addWidget(self.table, 1)
        # the selected alert's whole timeline, as plain text (names and notes are data)
        self.timeline = QPlainTextEdit()
        self.timeline.setObjectName("reviewTimeline")
        self.timeline.setReadOnly(True)
        self.timeline.setAccessibleName("Timeline of the selected alert")
        self.timeline.setPlaceholderText("Select an alert to see its whole timeline")
        self.timeline.setMaximumHeight(160)
        lay.addWidget(self.timeline)

        act = QHBoxLayout()
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("Supervisor comment on the selected alert's handling")
        self.review_button = QPushButton("Mark reviewed")
        allowed = can(session.role, "review_comment")
        self.comment.setEnabled(allowed)
        self.review_button.setEnabled(allowed)
        self.summary = plain_label()
        self.summary.setObjectName("dim")
        act.addWidget(self.comment, 1)
        act.addWidget(self.review_button)
        lay.addLayout(act)
        lay.addWidget(self.summary)
        self.message = plain_label()
        self.message.setWordWrap(True)
        lay.addWidget(self.message)

        for w in (self.f_operator, self.f_shift, self.f_priority, self.f_type):
            w.currentIndexChanged.connect(self.apply_filters)
        self.f_from.dateChanged.connect(self.apply_filters)
        self.f_to.dateChanged.connect(self.apply_filters)
        self.f_late.toggled.connect(self.apply_filters)
        self.review_button.clicked.connect(self._review_selected)
        self.comment.returnPressed.connect(self.review_button.click)     # Return records it too
        self.export_button.clicked.connect(lambda: self.export_csv())
        self.table.selectionModel().selectionChanged.connect(self._show_timeline)
        self.check_chain()
        self.refresh()

    def _show_timeline(self, *_) -> None:
        aid = self.selected_alert()
        rec = next((r for r in self.model.records() if r["alert_id"] == aid), None)
        self.timeline.setPlainText((rec.get("timeline") or "no step recorded") if rec else "")

    # ---- data ---------------------------------------------------------------------------------
    def check_chain(self) -> list:
        reports = verify_store(self.store.path)
        parts, broken = [], False
        for r in reports:
            name = "Acknowledgement log" if r.table == "ack_log" else "Audit log"
            if r.intact:
                parts.append(f"{name}: intact ({r.records} records, hash chain verified)")
            else:
                broken = True
                parts.append(f"{name}: BROKEN at record {r.broken_seq} — {r.problem}")
        self.chain.setText("   ·   ".join(parts))
        self.chain.setProperty("broken", broken)
        self.chain.setStyleSheet("font-weight: bold;" + (" color: #c8102e;" if broken else ""))
        self.chain_reports = reports
        return reports

    def refresh(self) -> None:
        records = handling_records(self.store, limits=self.limits, tz=self.tz)
        self.model.update(records)
        self._fill(self.f_operator, sorted({r["operator"] for r in records if r["operator"]}))
        self._fill(self.f_shift, sorted({r["shift"] for r in records}))
        self._fill(self.f_priority, [p for p in DEFAULT_LIMITS if any(r["priority"] == p for r in records)],
                   PRIORITY_TEXT)
        self._fill(self.f_type, sorted({r["type"] for r in records}), TYPE_TEXT)
        if records and not self.f_from.property("set"):
            first = dt.datetime.fromtimestamp(records[0]["raised_at"], self.tz).date()
            last = dt.datetime.fromtimestamp(records[-1]["raised_at"], self.tz).date()
            for w, d in ((self.f_from, first), (self.f_to, last)):
                w.blockSignals(True)
                w.setDate(QDate(d.year, d.month, d.day))
                w.blockSignals(False)
            self.f_from.setProperty("set", True)
        self.apply_filters()

    @staticmethod
    def _fill(combo: QComboBox, values: list, text: dict | None = None) -> None:
        current = combo.currentData()
        have = [combo.itemData(i) for i in range(combo.count())]
        want = [None] + list(values)
        if have == want:
            return
        combo.blockSignals(True)
        combo.clear()
        combo.addItem("All", None)
        for v in values:
            combo.addItem((text or {}).get(v, v), v)
        i = combo.findData(current)
        combo.setCurrentIndex(max(0, i))
        combo.blockSignals(False)

    def apply_filters(self, *_) -> None:
        def day(w):
            d = w.date()
            return dt.date(d.year(), d.month(), d.day()) if self.f_from.property("set") else None
        self.proxy.set_criteria(operator=self.f_operator.currentData(), shift=self.f_shift.currentData(),
                                priority=self.f_priority.currentData(), type_=self.f_type.currentData(),
                                date_from=day(self.f_from), date_to=day(self.f_to))
        if self.f_late.isChecked():
            self.proxy.beginFilterChange()
            self.proxy.criteria["late"] = True
            self.proxy.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        vis = self.proxy.visible_records()
        acked = [r["tta_s"] for r in vis if r["tta_s"] is not None]
        mean = fmt_duration(sum(acked) / len(acked)) if acked else "—"
        self.summary.setText(f"{len(vis)} alerts shown · {sum(r['late'] for r in vis)} late · "
                             f"{sum(r['reviewed'] for r in vis)} reviewed · mean time to acknowledge {mean}")

    # ---- actions ------------------------------------------------------------------------------
    def selected_alert(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        return self.model.record(self.proxy.mapToSource(rows[0]).row())["alert_id"]

    def select_alert(self, alert_id: str) -> bool:
        for i in range(self.proxy.rowCount()):
            src = self.proxy.mapToSource(self.proxy.index(i, 0)).row()
            if self.model.record(src)["alert_id"] == alert_id:
                self.table.selectRow(i)
                return True
        return False

    def review(self, alert_id: str, comment: str, reviewed: bool = True) -> dict:
        """Record a supervisor's comment and reviewed mark in the audit log."""
        require(self.session.role, "review_comment")
        if alert_id not in {r["alert_id"] for r in self.model.records()}:
            raise ValueError(f"no such alert: {alert_id}")
        rec = self.store.audit(self.session.username, "alert_review",
                               {"alert_id": alert_id, "comment": comment.strip(), "reviewed": reviewed})
        self.refresh()
        self.reviewed.emit(alert_id)
        return rec

    def _review_selected(self) -> None:
        aid = self.selected_alert()
        if aid is None:
            self.message.setText("Select an alert first.")
            return
        self.review(aid, self.comment.text())
        self.comment.clear()
        self.message.setText(f"Alert {aid} marked reviewed (recorded in the audit log).")

    def export_csv(self, path: str | None = None) -> int | None:
        require(self.session.role, "review_export")
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export review", "review.csv", "CSV (*.csv)")
        if not path:
            return None
        records = self.proxy.visible_records()
        n = write_csv(path, records)
        self.store.audit(self.session.username, "review_export",
                         {"path": str(path), "rows": n, "filters": {k: v for k, v in self.proxy.criteria.items()
                                                                    if v is not None}})
        self.message.setText(f"{n} rows exported to {path}")
        return n
