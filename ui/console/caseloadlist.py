"""The caseload list: every offender, their tag, how fresh its last fix is and their worst open
alert. A ``QAbstractTableModel`` over offender ids; positions and alert changes update the row
cache, and a tick refreshes the table with one ``dataChanged``."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLineEdit, QTableView, QVBoxLayout, QWidget

from monitorapp.engine.alerts import OpenAlerts
from ui.console.alertmodel import fmt_duration
from ui.theme import LIGHT, PRIORITY_TEXT

COLUMNS = ("Offender", "Name", "Borough", "Risk", "Tag", "Last fix", "Worst alert")
OffenderIdRole = Qt.ItemDataRole.UserRole + 1


class CaseloadModel(QAbstractTableModel):
    def __init__(self, caseload, parent=None):
        super().__init__(parent)
        self._ids = sorted(caseload.offenders)
        self._off = caseload.offenders
        self._last_fix: dict[str, float] = {}       # device -> fix time
        self._alerts = OpenAlerts()                    # by offender
        self.now = 0.0
        self.palette = LIGHT

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
            if col == 5:
                t = self._last_fix.get(o.device)
                return "no fix" if t is None else fmt_duration(self.now - t) + " ago"
            if col == 6:
                w = self.worst(oid)
                return PRIORITY_TEXT[w] if w else ""
        if role == Qt.ItemDataRole.ForegroundRole and col == 6:
            w = self.worst(oid)
            return QColor(self.palette.priority[w]) if w else None
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
