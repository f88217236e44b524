"""The caseload list: every offender, their tag, how fresh its last fix is and their worst open
alert. A ``QAbstractTableModel`` over offender ids; positions and alert changes update the row
cache, and a tick refreshes the table with one ``dataChanged``.

Staleness (ISA-101) is judged on the console's clock, not on arrival: a tag without a fix for
``max(5 min, 3 fix intervals)`` is stale here, on the map and in the details panel alike, and
looks it (the age in italics, dimmed, with "▲ stale")."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

from monitorapp.engine.alerts import OpenAlerts
from ui.console.alertmodel import fmt_age
from ui.theme import LIGHT, PRIORITY_TEXT

COLUMNS = ("Offender", "Name", "Borough", "Risk", "Tag", "Last fix", "Worst alert")
COL_LAST_FIX = 5
OffenderIdRole = Qt.ItemDataRole.UserRole + 1
STALE_MIN_S = 300.0         # a tag is stale after max(5 min, 3 fix intervals) without a fix
STALE_MARK = "▲ stale"


def is_stale(fix_t: float, now: float, fix_interval_s: float) -> bool:
    """ISA-101: a value not refreshed in time is shown as stale, never as live."""
    return now - fix_t > max(STALE_MIN_S, 3 * float(fix_interval_s or 0))


class CaseloadModel(QAbstractTableModel):
    def __init__(self, caseload, parent=None):
        super().__init__(parent)
        self._ids = sorted(caseload.offenders)
        self._off = caseload.offenders
        self._last_fix: dict[str, float] = {}       # device -> fix time
        self._alerts = OpenAlerts()                    # by offender
        self.now = 0.0
        self.palette = LIGHT
        self._stale_font = QFont()
        self._stale_font.setItalic(True)

    def stale(self, offender_id: str) -> bool | None:
        """Whether the offender's tag is stale now (None: no fix yet)."""
        o = self._off[offender_id]
        t = self._last_fix.get(o.device)
        return None if t is None else is_stale(t, self.now, o.fix_interval_s)

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def worst(self, offender_id: str) -> str | None:
        return self._alerts.worst(offender_id)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._ids):
            return None
        oid = self._ids[index.row()]
        o = self._off[oid]
        col = index.column()
        if role == OffenderIdRole:
            return oid
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return oid
            if col == 1:
                return o.name
            if col == 2:
                return o.borough
            if col == 3:
                return o.risk
            if col == 4:
                return o.device
            if col == COL_LAST_FIX:
                t = self._last_fix.get(o.device)
                if t is None:
                    return "no fix"
                return fmt_age(self.now - t) + (f"  {STALE_MARK}" if self.stale(oid) else "")
            if col == 6:
                w = self.worst(oid)
                return PRIORITY_TEXT[w] if w else ""
        if role == Qt.ItemDataRole.ForegroundRole and col == 6:
            w = self.worst(oid)
            return QColor(self.palette.priority[w]) if w else None
        if col == COL_LAST_FIX and self._last_fix.get(o.device) is None or self.stale(oid):
            if role == Qt.ItemDataRole.ForegroundRole and col != 6:
                return QColor(self.palette.dim_text)
            if role == Qt.ItemDataRole.FontRole:
                return self._stale_font
        if role == Qt.ItemDataRole.ToolTipRole and col == COL_LAST_FIX and self.stale(oid):
            return (f"No fix for over {int(max(STALE_MIN_S, 3 * o.fix_interval_s) // 60)} min: "
                    "the position shown is old")
        return None

    def set_positions(self, moved: list[dict]) -> None:
        for m in moved:
            self._last_fix[m["device"]] = m["t"]

    def set_alert(self, offender: str | None, alert_id: str, priority: str, open_: bool) -> None:
        self._alerts.set(offender, alert_id, priority, open_)

    def tick(self, now: float) -> None:
        self.now = now
        if self._ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, len(COLUMNS) - 1))


class CaseloadDock(QWidget):
    offenderSelected = Signal(str)

    def __init__(self, model: CaseloadModel, parent=None):
        super().__init__(parent)
        self.model = model
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Find offender, name, borough, tag")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.table = QTableView()
        self.table.setTabKeyNavigation(False)      # Tab leaves the table (arrows move in it)
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setAccessibleName("Caseload")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.filter)
        lay.addWidget(self.table)
        self.table.selectionModel().currentRowChanged.connect(self._changed)

    def _changed(self, current, _prev) -> None:
        if current.isValid():
            self.offenderSelected.emit(self.proxy.data(current, OffenderIdRole))
