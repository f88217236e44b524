"""The alert queue's table model: the engine's alerts with the operators' handling of them.

``AlertTableModel`` is a ``QAbstractTableModel`` over alert ids with a row cache. Alerts arrive
in batches from the engine worker (``apply_changes``): new alerts are inserted with one
``beginInsertRows``; a tick (``tick``) refreshes the clock-driven columns (age,
time-to-acknowledge, escalation, flashing) with one ``dataChanged``; nothing ever resets the
model. ``AlertFilterProxy`` orders the rows (EEMUA 191: unacknowledged before handled, then
priority, then oldest first; in a flood: critical first among the unacknowledged, then grouped
by offender) and filters them by priority, type, state, borough and free text. While the
pointer is over the queue the proxy is *frozen* (``set_frozen``): no row moves or disappears
under it; new alerts are appended at the bottom until the pointer leaves.

The *condition* (active/cleared, re-activations) comes from the engine's ``Alert``; the
*handling* (unacknowledged/acknowledged/closed/shelved) belongs to the operators: the queue
controller records it in the store's acknowledgement log and mirrors it here in ``Handling``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QColor, QFont

from monitorapp.engine.alerts import PRIORITY_RANK, Alert
from ui.text import tooltip
from ui.theme import ESCALATED_MARK, LIGHT, PRIORITY_TEXT, Palette

COLUMNS = ("Priority", "Condition", "Handling", "Type", "Offender", "Zone", "Location", "Start", "Age",
           "To ack", "Re-act")
(COL_PRIORITY, COL_CONDITION, COL_HANDLING, COL_TYPE, COL_OFFENDER, COL_ZONE, COL_LOCATION, COL_START,
 COL_AGE, COL_TTA, COL_REACT) = range(len(COLUMNS))
AlertIdRole = Qt.ItemDataRole.UserRole + 1
HANDLING_STATES = ("unacknowledged", "acknowledged", "closed", "shelved")
TYPE_TEXT = {
    "strap_tamper": "Strap tamper", "exclusion_entered": "Exclusion entered",
    "feed_lost": "Feed lost", "curfew_absent": "Curfew absent", "signal_lost": "Signal lost",
    "appointment_missed": "Appointment missed", "battery_low": "Battery low",
    "system_fault": "System fault",
}


@dataclass
class Handling:
    """What the operators did with an alert (mirrors the store's acknowledgement log)."""
    state: str = "unacknowledged"
    acked_at: float | None = None
    acked_by: str | None = None
    action: str | None = None
    note: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    shelved_until: float | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    state_before_shelve: str | None = None
    steps: int = 0            # response steps recorded (issue 21): a new one is a change to show


@dataclass
class QueueRow:
    alert: Alert
    handling: Handling
    seen_at: float            # console clock when the queue first saw it (flood counting)
    offender_name: str = ""
    borough: str = ""
    location: str = ""        # street and borough of the alert's fix (the engine thread's lookup)


def fmt_duration(s: float | None) -> str:
    if s is None:
        return "—"
    s = max(0, int(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_span(s: float | None, *, precise: bool = False) -> str:
    """A length of time no one can misread: "11 s", "4 min", "1 h 5 min", "2 d 3 h".
    ``precise`` keeps the seconds under ten minutes ("4 min 05 s"), for counters that tick
    while the seconds still matter (a critical alert's time to acknowledge)."""
    if s is None:
        return "—"
    s = max(0, int(s))
    if s < 60:
        return f"{s} s"
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, sec = divmod(rem, 60)
    if d:
        return f"{d} d {h} h" if h else f"{d} d"
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    return f"{m} min {sec:02d} s" if precise and m < 10 else f"{m} min"


def fmt_age(s: float | None) -> str:
    """How long ago: "11 s ago", "4 min ago", "1 h 5 min ago"."""
    return "—" if s is None else fmt_span(s) + " ago"


class AlertTableModel(QAbstractTableModel):
    """Alerts by id, in arrival order; the proxy sorts and filters them."""

    def __init__(self, parent=None, *, escalation: dict[str, float] | None = None,
                 clock_tz=None):
        super().__init__(parent)
        self._ids: list[str] = []
        self._rows: dict[str, QueueRow] = {}
        self._index: dict[str, int] = {}
        self._offenders: dict[str, tuple[str, str]] = {}
        self._locations: dict[str, str] = {}     # alert id -> location, kept for rows to come
        self.escalation = dict(escalation or {"critical": 60, "high": 180, "medium": 900})
        self.now = 0.0
        self.flash_on = False
        self.palette: Palette = LIGHT
        self.tz = clock_tz
        # How long an alert has waited, (raised, now) -> seconds: the console clock by default;
        # training replaces it with the trainee's real seconds (the simulated clock runs x10-x600)
        self.waited = None
        self.generation = 0      # bumped on every change; lets the proxy cache per-offender work
        self._bold = QFont()
        self._bold.setBold(True)

    # ----- feeding the model -------------------------------------------------------------
    def set_offenders(self, offenders: dict[str, tuple[str, str]]) -> None:
        """offender id -> (name, borough), for the offender column and the borough filter."""
        self._offenders = dict(offenders)

    def apply_changes(self, changes: list[tuple[str, Alert]], seen_at: float) -> list[tuple[str, str]]:
        """Take a batch of (change, alert) from the engine; return [(alert_id, change)] of the
        alerts that are new or back in alarm (the ones that may sound)."""
        self.generation += 1
        fresh: list[str] = []
        sounding: list[tuple[str, str]] = []
        changed_rows: list[int] = []
        for change, alert in changes:
            alert = copy.copy(alert)
            row = self._rows.get(alert.alert_id)
            if row is None:
                name, borough = self._offenders.get(alert.offender or "", ("", ""))
                row = QueueRow(alert, Handling(), seen_at, name, borough,
                               self._locations.get(alert.alert_id, ""))
                self._rows[alert.alert_id] = row
                fresh.append(alert.alert_id)
                if alert.state == "active":
                    sounding.append((alert.alert_id, "raised"))
                continue
            row.alert = alert
            if change == "reactivated":
                if row.handling.state == "closed":
                    row.handling = Handling()     # a closed alert back in alarm is new work
                sounding.append((alert.alert_id, change))
            if alert.alert_id in self._index:
                changed_rows.append(self._index[alert.alert_id])
        if fresh:
            first = len(self._ids)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for i, aid in enumerate(fresh):
                self._index[aid] = first + i
            self._ids.extend(fresh)
            self.endInsertRows()
        if changed_rows:
            self.dataChanged.emit(self.index(min(changed_rows), 0),
                                  self.index(max(changed_rows), len(COLUMNS) - 1))
        return sounding

    def set_locations(self, locations: dict[str, str]) -> None:
        """alert id -> "Kentish Town Road, Camden" (the engine worker's ``addresses``, sent
        before the batch of those alerts); one dataChanged over the rows already shown."""
        changed = []
        for aid, text in locations.items():
            self._locations[aid] = str(text)
            row = self._rows.get(aid)
            if row is not None and row.location != text:
                row.location = str(text)
                if aid in self._index:
                    changed.append(self._index[aid])
        if len(self._locations) > 20_000:       # a long shift: keep the recent ones
            for aid in list(self._locations)[:10_000]:
                if aid not in self._rows:
                    del self._locations[aid]
        if changed:
            self.generation += 1
            self.dataChanged.emit(self.index(min(changed), COL_LOCATION), self.index(max(changed), COL_LOCATION))

    def forget_closed(self, before: float) -> list[str]:
        """Take out of the model the alerts closed before ``before`` (the store keeps their
        record; the review and the acknowledgement log show them): a console that runs for
        weeks keeps the recent closed ones for the "Closed" filter, not every one of them.
        Rows go in contiguous runs, each with beginRemoveRows, never a reset. Returns the ids."""
        def closed_at(row: QueueRow) -> float:      # restored closed: as of when the queue saw it
            return row.handling.closed_at if row.handling.closed_at is not None else row.seen_at
        gone = [i for i, aid in enumerate(self._ids)
                if self._rows[aid].handling.state == "closed" and closed_at(self._rows[aid]) < before]
        if not gone:
            return []
        ids = [self._ids[i] for i in gone]
        runs: list[list[int]] = []
        for i in gone:
            if runs and runs[-1][1] == i - 1:
                runs[-1][1] = i
            else:
                runs.append([i, i])
        self.generation += 1
        for first, last in reversed(runs):       # from the bottom: earlier indexes stay valid
            self.beginRemoveRows(QModelIndex(), first, last)
            for aid in self._ids[first:last + 1]:
                del self._rows[aid]
                self._locations.pop(aid, None)
            del self._ids[first:last + 1]
            self._index = {aid: i for i, aid in enumerate(self._ids)}
            self.endRemoveRows()
        return ids

    def tick(self, now: float, flash_on: bool) -> None:
        """Clock-driven refresh: one dataChanged for the whole table."""
        self.now = now
        self.flash_on = flash_on
        self.generation += 1
        if self._ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, len(COLUMNS) - 1))

    def set_handling(self, alert_id: str, handling: Handling) -> None:
        row = self._rows[alert_id]
        row.handling = handling
        self.generation += 1
        r = self._index[alert_id]
        self.dataChanged.emit(self.index(r, 0), self.index(r, len(COLUMNS) - 1))

    def set_palette(self, p: Palette) -> None:
        self.palette = p
        self.tick(self.now, self.flash_on)

    # ----- reading -----------------------------------------------------------------------
    def row(self, alert_id: str) -> QueueRow | None:
        return self._rows.get(alert_id)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per priority: how many alerts wait unacknowledged, how many are open (not closed,
        not shelved) and how many are shelved: the queue's always-visible counts."""
        out = {p: {"unack": 0, "open": 0, "shelved": 0} for p in PRIORITY_RANK}
        for r in self._rows.values():
            c = out.setdefault(r.alert.priority, {"unack": 0, "open": 0, "shelved": 0})
            st = r.handling.state
            if st == "shelved":
                c["shelved"] += 1
            elif st != "closed":
                c["open"] += 1
                if st == "unacknowledged":
                    c["unack"] += 1
        return out

    def oldest_unacknowledged(self) -> QueueRow | None:
        rows = [r for r in self._rows.values() if r.handling.state == "unacknowledged"]
        return min(rows, key=lambda r: r.alert.raised_at) if rows else None

    def group_of(self, alert_id: str) -> list[str]:
        """The unacknowledged alerts of this alert's offender (itself first): what one
        acknowledgement of the group takes. A system alert is a group of one."""
        row = self._rows.get(alert_id)
        if row is None:
            return []
        if not row.alert.offender:
            return [alert_id] if row.handling.state == "unacknowledged" else []
        others = sorted((r for r in self._rows.values()
                         if r.alert.offender == row.alert.offender and r.handling.state == "unacknowledged"
                         and r.alert.alert_id != alert_id),
                        key=lambda r: (PRIORITY_RANK[r.alert.priority], r.alert.start))
        head = [alert_id] if row.handling.state == "unacknowledged" else []
        return head + [r.alert.alert_id for r in others]

    def row_at(self, r: int) -> QueueRow:
        return self._rows[self._ids[r]]

    def rows(self) -> list[QueueRow]:
        return [self._rows[i] for i in self._ids]

    def source_row(self, alert_id: str) -> int | None:
        return self._index.get(alert_id)

    def waited_s(self, raised_at: float, until: float) -> float:
        return self.waited(raised_at, until) if self.waited else until - raised_at

    def is_escalated(self, row: QueueRow) -> bool:
        limit = self.escalation.get(row.alert.priority)
        return (limit is not None and row.handling.state == "unacknowledged"
                and self.waited_s(row.alert.raised_at, self.now) > limit)

    def is_flashing(self, row: QueueRow) -> bool:
        """New critical and high alerts flash until they are acknowledged."""
        return (row.handling.state == "unacknowledged" and row.alert.state == "active"
                and row.alert.priority in ("critical", "high"))

    # ----- QAbstractTableModel -----------------------------------------------------------
    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            if 0 <= section < len(COLUMNS):
                return COLUMNS[section]
        return None

    def flags(self, index):
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._ids):
            return None
        row = self._rows[self._ids[index.row()]]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == AlertIdRole:
            return row.alert.alert_id
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == COL_PRIORITY and row.handling.state != "closed":
                return QColor(self.palette.priority[row.alert.priority])
            if row.handling.state == "closed" or (row.alert.state == "cleared" and row.handling.state != "unacknowledged"):
                return QColor(self.palette.dim_text)
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if self.is_escalated(row) or (self.is_flashing(row) and self.flash_on):
                return QColor(self.palette.priority_tint[row.alert.priority])
            return None
        if role == Qt.ItemDataRole.FontRole:
            if col == COL_PRIORITY or self.is_escalated(row) or row.handling.state == "unacknowledged":
                return self._bold
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(self._tooltip(row))     # operators, notes and reasons are data
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (COL_AGE, COL_TTA, COL_REACT):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return self._display(row, col)
        return None

    def _display(self, row: QueueRow, col: int) -> str:
        a, h = row.alert, row.handling
        if col == COL_PRIORITY:
            return PRIORITY_TEXT[a.priority]
        if col == COL_CONDITION:
            return "ACTIVE" if a.state == "active" else "cleared"
        if col == COL_HANDLING:
            return {"unacknowledged": "UNACK", "acknowledged": "acked", "closed": "closed",
                    "shelved": "shelved"}[h.state]
        if col == COL_TYPE:
            return TYPE_TEXT.get(a.type, a.type) + (" (late)" if a.late else "")
        if col == COL_OFFENDER:
            if not a.offender:
                return "— system —"
            return f"{a.offender} {row.offender_name}".strip()
        if col == COL_ZONE:
            return a.zone or ""
        if col == COL_LOCATION:
            return row.location
        if col == COL_START:
            return self._clock(a.start)
        if col == COL_AGE:
            return fmt_span(self.now - a.start, precise=True)
        if col == COL_TTA:
            if h.acked_at is not None:
                return fmt_span(self.waited_s(a.raised_at, h.acked_at), precise=True)
            if h.state == "unacknowledged":
                waited = fmt_span(self.waited_s(a.raised_at, self.now), precise=True)
                return f"{ESCALATED_MARK} {waited}" if self.is_escalated(row) else waited
            return "—"
        if col == COL_REACT:
            return str(a.reactivations)
        return ""

    def _clock(self, ts: float) -> str:
        import datetime as dt
        d = dt.datetime.fromtimestamp(ts, self.tz or dt.timezone.utc)
        return d.strftime("%H:%M:%S")

    def _tooltip(self, row: QueueRow) -> str:
        """The row's history as plain text (``data`` makes it a tool tip that shows it literally)."""
        a, h = row.alert, row.handling
        lines = [f"{PRIORITY_TEXT[a.priority]} — {TYPE_TEXT.get(a.type, a.type)}", f"Alert {a.alert_id}"]
        if row.location:
            lines.append(f"At {row.location}")
        if self.is_escalated(row):
            lines.append(f"{ESCALATED_MARK} ESCALATED: unacknowledged past {fmt_span(self.escalation[a.priority])}")
        if h.acked_by:
            lines.append(f"Acknowledged by {h.acked_by}: {h.action}" + (f" — {h.note}" if h.note else ""))
        if h.state == "shelved":
            lines.append(f"Shelved by {h.shelved_by} until {self._clock(h.shelved_until or 0)}: {h.shelve_reason}")
        return "\n".join(lines)


class AlertFilterProxy(QSortFilterProxyModel):
    """Queue order and filters over ``AlertTableModel``."""

    STATES = ("open", "unacknowledged", "active", "acknowledged", "closed", "all")

    def __init__(self, source: AlertTableModel, parent=None):
        super().__init__(parent)
        self._src = source
        self.priorities: set[str] | None = None
        self.types: set[str] | None = None
        self.state = "open"
        self.borough: str | None = None
        self.text = ""
        self.flood = False
        self.frozen = False
        self._resort_pending = False
        self._worst: dict[str | None, int] = {}
        self._worst_gen = -1
        self.setSourceModel(source)
        self.setDynamicSortFilter(True)
        self.sort(0)

    def set_filters(self, *, priorities=None, types=None, state=None, borough=None, text=None) -> None:
        self.beginFilterChange()
        if priorities is not None:
            self.priorities = set(priorities) or None
        if types is not None:
            self.types = set(types) or None
        if state is not None:
            if state not in self.STATES:
                raise ValueError(f"unknown state filter {state!r}")
            self.state = state
        if borough is not None:
            self.borough = borough or None
        if text is not None:
            self.text = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_flood(self, on: bool) -> None:
        if on != self.flood:
            self.flood = on
            if self.frozen:
                self._resort_pending = True
                return
            self.invalidate()
            self.sort(0)

    def set_frozen(self, on: bool) -> None:
        """Freeze the order and the filter (the pointer is over the table: no row may move
        under it), or thaw them and re-sort what changed meanwhile."""
        if on == self.frozen:
            return
        self.frozen = on
        if on:
            self.setDynamicSortFilter(False)
            return
        self.setDynamicSortFilter(True)
        self._resort_pending = False
        self.invalidate()
        self.sort(0)

    def filterAcceptsRow(self, source_row, source_parent):
        row = self._src.row_at(source_row)
        a, h = row.alert, row.handling
        if self.priorities and a.priority not in self.priorities:
            return False
        if self.types and a.type not in self.types:
            return False
        if self.borough and row.borough != self.borough:
            return False
        st = self.state
        if h.state == "shelved" and st != "all":
            return False    # shelved alerts live in the shelved list
        if st == "open" and h.state == "closed":
            return False
        if st == "unacknowledged" and h.state != "unacknowledged":
            return False
        if st == "active" and (a.state != "active" or h.state == "closed"):
            return False
        if st in ("acknowledged", "closed") and h.state != st:
            return False
        if self.text:
            hay = " ".join((a.type, a.offender or "", row.offender_name, a.zone or "", row.borough,
                            row.location, a.alert_id)).lower()
            if self.text not in hay:
                return False
        return True

    def _key(self, source_row: int) -> tuple:
        row = self._src.row_at(source_row)
        a, h = row.alert, row.handling
        handled = {"unacknowledged": 0, "acknowledged": 1, "shelved": 2, "closed": 3}[h.state]
        # EEMUA 191: what waits for an operator comes first, whatever its priority; an
        # acknowledged critical never sits above an unacknowledged alert.
        base = (PRIORITY_RANK[a.priority], a.start, a.alert_id)
        if not self.flood:
            return (handled,) + base
        # Flood: unacknowledged first, critical on top of them, then grouped by offender (the
        # offender with the worst open alert first), so one acknowledgement can take a group.
        crit = a.priority == "critical"
        return (handled, not crit, 0 if crit else self._worst_of(a.offender), a.offender or "") + base

    def _worst_of(self, offender: str | None) -> int:
        if self._worst_gen != self._src.generation:
            worst: dict[str | None, int] = {}
            for r in self._src.rows():
                if r.handling.state != "closed":
                    rank = PRIORITY_RANK[r.alert.priority]
                    worst[r.alert.offender] = min(worst.get(r.alert.offender, 9), rank)
            self._worst, self._worst_gen = worst, self._src.generation
        return self._worst.get(offender, 9)

    def lessThan(self, left, right):
        return self._key(left.row()) < self._key(right.row())

    def alert_id_at(self, proxy_row: int) -> str | None:
        if proxy_row < 0 or proxy_row >= self.rowCount():
            return None
        return self.data(self.index(proxy_row, 0), AlertIdRole)
