"""The part every read-only table of the views shares: a fixed tuple of column titles, a row
count and the check that an index is inside the table; subclasses give ``columns``,
``row_count()`` and ``data()``."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt


class ColumnsModel(QAbstractTableModel):
    columns: tuple[str, ...] = ()

    def row_count(self) -> int:
        raise NotImplementedError

    def in_table(self, index) -> bool:
        """A valid index inside the current rows and columns (``data()`` answers None otherwise)."""
        return index.isValid() and 0 <= index.row() < self.row_count() and 0 <= index.column() < len(self.columns)

    def rowCount(self, parent=QModelIndex()):  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else self.row_count()

    def columnCount(self, parent=QModelIndex()):  # noqa: N802
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.columns):
            return self.columns[section]
        return None
