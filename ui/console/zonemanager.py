"""The zone manager (Zones → Zone manager…, Ctrl+Shift+Z) and the path every zone change takes.

``ZoneChanges`` is the one way a zone changes, whoever asks: a vertex dragged on the map, a
zone erased on the map, the properties editor, a GeoJSON import. Each change

1. is confirmed when it deletes (the map's eraser asks too: a deleted exclusion stops being
   monitored);
2. needs a second person's approval when the zone is court-ordered (setting
   ``zones/approval``: ``court`` — the default — for zones that came with the caseload, i.e.
   the order; ``all``; ``none``). The approver types their own user name and password; the
   store's accounts check them (wrong passwords count towards the approver's lockout), and
   the approver must be another person whose role may edit zones. The approval is written to
   the store's audit log (``zone_change_approved``) naming both people;
3. takes effect now or at an effective-from time: a later change is kept in the audit log
   (``zone_change_scheduled``), shown as pending in the manager, applied when the console's
   clock reaches it (``zone_change_applied``), and survives a restart (re-read from the log);
4. then goes to the engine and, once applied, into the store as a new zone version
   (``MainWindow._record_applied_zone``).

A change refused or cancelled puts the map back to the zones in force.

``ZoneManager`` lists the zones (``ZoneTableModel``: offender, requirement, schedule, version,
author, origin, pending change) with a properties editor (name, schedule, curfew grace),
delete, "edit on the map" and import. An import is shown first as a diff (added, changed,
removed, unchanged, with vertex counts and areas) and replaces nothing until confirmed.
"""
from __future__ import annotations

import copy
import itertools
import json
import math
import pathlib
import re
import time

from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QDialogButtonBox, QFileDialog,
                               QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QMessageBox, QPushButton, QSpinBox, QTableView, QTableWidget,
                               QTableWidgetItem, QVBoxLayout)

from ui.console.formdialog import lay_out_form_dialog, utc_datetime_edit

APPROVAL_CHOICES = ("court", "all", "none")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_R = 6371008.8


class ChangeRefused(ValueError):
    """A zone change that may not go ahead (the message says why)."""


# ---- geometry for the diff --------------------------------------------------------------------
def zone_measure(feature: dict | None) -> tuple[int, float]:
    """(vertices, area in m²) of a zone Feature; a circle counts 0 vertices."""
    if not feature:
        return 0, 0.0
    g = feature.get("geometry") or {}
    if g.get("type") == "Point":
        r = float((feature.get("properties") or {}).get("radius_m") or 0)
        return 0, math.pi * r * r
    polys = [g.get("coordinates") or []] if g.get("type") == "Polygon" else (g.get("coordinates") or [])
    vertices, area = 0, 0.0
    for poly in polys:
        for k, ring in enumerate(poly):
            pts = ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring
            vertices += len(pts)
            if len(pts) < 3:
                continue
            lat0 = math.radians(sum(p[1] for p in pts) / len(pts))
            kx, ky = _R * math.pi / 180 * math.cos(lat0), _R * math.pi / 180
            xy = [(p[0] * kx, p[1] * ky) for p in pts]
            a = abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(xy, xy[1:] + xy[:1]))) / 2
            area += a if k == 0 else -a
    return vertices, area


def _same_zone(a: dict, b: dict) -> bool:
    pa, pb = a.get("properties") or {}, b.get("properties") or {}
    return (json.dumps(a.get("geometry"), sort_keys=True) == json.dumps(b.get("geometry"), sort_keys=True)
            and pa.get("name") == pb.get("name") and pa.get("radius_m") == pb.get("radius_m"))


def import_diff(current: dict[str, dict], incoming: list[dict]) -> list[dict]:
    """Rows {change, zone, name, before, after, vertices, area}: added, changed, unchanged for
    each incoming zone, removed for each current zone the file does not have."""
    rows = []
    seen = set()
    for f in incoming:
        zid = str(f["id"])
        seen.add(zid)
        old = current.get(zid)
        change = "added" if old is None else ("unchanged" if _same_zone(old, f) else "changed")
        rows.append({"change": change, "zone": zid, "name": (f.get("properties") or {}).get("name") or "",
                     "before": old, "after": f, "vertices": (zone_measure(old)[0] if old else None, zone_measure(f)[0]),
                     "area": (zone_measure(old)[1] if old else None, zone_measure(f)[1])})
    for zid, old in current.items():
        if zid not in seen:
            rows.append({"change": "removed", "zone": zid, "name": (old.get("properties") or {}).get("name") or "",
                         "before": old, "after": None, "vertices": (zone_measure(old)[0], None),
                         "area": (zone_measure(old)[1], None)})
    order = {"added": 0, "changed": 1, "removed": 2, "unchanged": 3}
    return sorted(rows, key=lambda r: (order[r["change"]], r["zone"]))


def read_import(path: str) -> list[dict]:
    """The zone Features of a GeoJSON file; raises ChangeRefused saying what is wrong."""
    try:
        doc = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
        feats = doc["features"] if doc.get("type") == "FeatureCollection" else [doc]
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise ChangeRefused(f"{path}: not a GeoJSON FeatureCollection ({e})") from None
    out, ids = [], set()
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or f.get("id") is None:
            raise ChangeRefused(f"{path}: zone {i + 1} has no id; nothing was imported")
        if (f.get("geometry") or {}).get("type") not in ("Polygon", "MultiPolygon", "Point"):
            raise ChangeRefused(f"{path}: zone {f['id']} is not a polygon or a circle; nothing was imported")
        if str(f["id"]) in ids:
            raise ChangeRefused(f"{path}: zone {f['id']} appears twice; nothing was imported")
        ids.add(str(f["id"]))
        out.append(dict(f, id=str(f["id"])))
    return out


def schedule_text(req: dict | None) -> str:
    if not req:
        return ""
    sched = req.get("schedule")
    if not sched:
        return "always"
    return ", ".join(f"{w.get('days', 'daily')} {w.get('start')}–{w.get('end')}" for w in sched)


# ---- the list ---------------------------------------------------------------------------------
COLUMNS = ("Zone", "Name", "Offender", "Requirement", "Schedule", "Version", "Author", "Origin", "Pending")


class ZoneTableModel(QAbstractTableModel):
    """One row per zone in force (plain dicts from ``ZoneChanges.rows``)."""

    KEYS = ("zone", "name", "offender", "requirement", "schedule", "version", "author", "origin", "pending")

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[dict] = []

    def set_rows(self, rows: list[dict]) -> None:
        self.beginResetModel()      # a handful of zones, changed by hand: a reset is right here
        self._rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 (Qt API)
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            v = row.get(self.KEYS[index.column()])
            return "" if v is None else str(v)
        if role == Qt.ItemDataRole.UserRole:
            return row["zone"]
        if role == Qt.ItemDataRole.ToolTipRole and row.get("origin") == "court order":
            return "Court-ordered: changes need a second person's approval (setting zones/approval)"
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(COLUMNS):
            return COLUMNS[section]
        return None

    def row_of(self, zone_id: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r["zone"] == zone_id), -1)

    def zone_at(self, row: int) -> dict | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None


# ---- dialogs ----------------------------------------------------------------------------------
class ChangeDialog(QDialog):
    """Confirm one change: what it does, when it takes effect, and (if needed) who approves."""

    def __init__(self, title: str, summary: str, *, now: float, approval: bool, verify, ok_text: str,
                 allow_later: bool = True, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setModal(True)
        self._verify, self.approval = verify, approval
        self.approver_session = None
        self.summary = QLabel(summary)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)    # zone names are data
        self.summary.setWordWrap(True)
        form = QFormLayout()
        self.now_box = QCheckBox("Takes effect &now")
        self.now_box.setChecked(True)
        self.when = utc_datetime_edit(now + 3600)
        self.when.setEnabled(False)
        self.now_box.toggled.connect(lambda on: self.when.setEnabled(not on))
        if allow_later:
            form.addRow("", self.now_box)
            form.addRow("Effective &from:", self.when)
        self.user = QLineEdit()
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        if approval:
            form.addRow(QLabel("Court-ordered zone: a second person approves with their own account."))
            form.addRow("&Approver:", self.user)
            form.addRow("Approver's pass&word:", self.password)
        self.problem, self.buttons = lay_out_form_dialog(self, form, ok_text, head=self.summary)
        self.now = now

    def effective_from(self) -> float | None:
        """None: now; else the time (UTC epoch seconds) it takes effect."""
        if self.now_box.isChecked():
            return None
        return float(self.when.dateTime().toSecsSinceEpoch())

    def accept(self) -> None:
        when = self.effective_from()
        if when is not None and when <= self.now:
            self.problem.setText("the effective-from time has passed: choose a later time, or now")
            return
        if self.approval:
            try:
                self.approver_session = self._verify(self.user.text().strip(), self.password.text())
            except (ValueError, ChangeRefused) as e:      # SignInError is a ValueError
                self.problem.setText(f"Not approved: {e}")
                self.password.clear()
                self.password.setFocus()
                return
        super().accept()


class ImportPreview(QDialog):
    """The diff an import would make; nothing changes until "Import" is pressed."""

    def __init__(self, path: str, rows: list[dict], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Import zones — preview")
        self.rows = rows
        counts = {c: sum(1 for r in rows if r["change"] == c) for c in ("added", "changed", "removed", "unchanged")}
        head = QLabel(f"{pathlib.Path(path).name}: {counts['added']} added, {counts['changed']} changed, "
                      f"{counts['unchanged']} unchanged; {counts['removed']} in force but not in the file.")
        head.setTextFormat(Qt.TextFormat.PlainText)
        self.counts = counts
        self.table = QTableWidget(len(rows), 5)
        self.table.setHorizontalHeaderLabels(["Change", "Zone", "Name", "Vertices", "Area (m²)"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for i, r in enumerate(rows):
            v, a = r["vertices"], r["area"]
            circle = (_is_circle(r["before"]), _is_circle(r["after"]))
            cells = [r["change"], r["zone"], r["name"], _pair(v, "{:d}", circle), _pair(a, "{:,.0f}")]
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.also_remove = QCheckBox(f"Also &delete the {counts['removed']} zones not in the file")
        self.also_remove.setEnabled(counts["removed"] > 0)
        lay = QVBoxLayout(self)
        lay.addWidget(head)
        lay.addWidget(self.table)
        lay.addWidget(self.also_remove)
        ok = QDialogButtonBox.StandardButton.Ok
        self.buttons = QDialogButtonBox(ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(ok).setText("&Import…")
        self.buttons.button(ok).setEnabled(counts["added"] + counts["changed"] + counts["removed"] > 0)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        self.resize(760, 420)

    def chosen(self) -> list[dict]:
        keep = ("added", "changed") + (("removed",) if self.also_remove.isChecked() else ())
        return [r for r in self.rows if r["change"] in keep]


def _pair(v: tuple, fmt: str, circle: tuple = (False, False)) -> str:
    """"before → after", or one value when only one side exists or nothing changed."""
    def show(x, is_circle):
        return "circle" if is_circle and fmt == "{:d}" else fmt.format(int(round(x)) if fmt == "{:d}" else x)
    (before, after), (cb, ca) = v, circle
    if before is None or after is None or (before == after and cb == ca):
        return show(after, ca) if after is not None else show(before, cb)
    return f"{show(before, cb)} → {show(after, ca)}"


def _is_circle(f: dict | None) -> bool:
    return bool(f) and (f.get("geometry") or {}).get("type") == "Point"


# ---- the pipeline -----------------------------------------------------------------------------
class ZoneChanges(QObject):
    """Every zone change goes through here (see the module docstring)."""

    changed = Signal()          # the list of zones or of pending changes changed

    def __init__(self, window, *, verify=None, approval: str = "court"):
        super().__init__(window)
        self.w = window
        self.approval = approval if approval in APPROVAL_CHOICES else "court"
        self.court_ids = set(window.caseload.zones)      # the zones that came with the order
        self._verify = verify or self._verify_with_accounts
        self.pending: dict[str, dict] = {}               # change id -> scheduled change
        self._seq = itertools.count(1)
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.apply_due)
        self.timer.start()
        window.event.connect(self._on_event)
        self._reload_pending()

    # -- who may approve
    def _verify_with_accounts(self, username: str, password: str):
        from localdb.accounts import Accounts
        from ui.roles import can
        if not username:
            raise ChangeRefused("the approver's user name is needed")
        if username == self.w.operator:
            raise ChangeRefused("the approver must be another person")
        if getattr(self.w, "centre", None) is not None:
            session = self._verify_at_centre(username, password)
        else:
            session = Accounts(self.w.store).sign_in(username, password)
        if not can(session.role, "edit_zones"):
            raise ChangeRefused(f"{username} ({session.role_text}) may not approve zone changes")
        return session

    def _verify_at_centre(self, username: str, password: str):
        """Client mode: the approver's own login of the centre's record; the server checks the
        password and says the role (nothing is kept: the connection is closed at once)."""
        import time
        from centraldb.store import PgStore
        from localdb.accounts import Session
        from localdb.schema import StoreError
        if self.w.store is None:
            raise ChangeRefused("the centre cannot be reached: nothing can be approved or recorded")
        try:
            probe = PgStore(self.w.store.dsn, credentials=(username, password), create=False, anchor=False)
        except Exception as e:     # noqa: BLE001 - refused at connect: wrong password, locked, unreachable
            why = "wrong user name or password" if "authentication" in str(e) else str(e).splitlines()[0]
            raise ChangeRefused(f"approval not given: {why}") from None
        try:
            roles = sorted(probe.roles)
        finally:
            try:
                probe.close()
            except StoreError:
                pass
        return Session(username, roles[0] if roles else "", time.time())

    def needs_approval(self, zone_id: str) -> bool:
        return self.approval == "all" or (self.approval == "court" and zone_id in self.court_ids)

    # -- the rows of the manager
    def requirement_of(self, zone_id: str) -> tuple[str | None, dict | None]:
        for o in self.w.caseload.offenders.values():
            for r in (o.raw.get("requirements") or []):
                if r.get("zone") == zone_id:
                    return o.id, dict(r)
        return None, None

    def rows(self) -> list[dict]:
        versions = {}
        try:
            for zid, ver, who in self.w.store.reader().execute(
                    "SELECT zone_id, version, created_by FROM zones z WHERE version ="
                    " (SELECT max(version) FROM zones WHERE zone_id = z.zone_id)"):
                versions[zid] = (ver, who)
        except Exception:     # noqa: BLE001 - the list still shows the zones in force
            pass
        pend = {}
        for c in self.pending.values():
            pend.setdefault(c["zone"], []).append(c)
        out = []
        for f in self.w.zone_features():
            zid = f["id"]
            off, req = self.requirement_of(zid)
            ver, who = versions.get(zid, (None, None))
            p = pend.get(zid, [])
            out.append({"zone": zid, "name": f["properties"].get("name") or "", "offender": off or "",
                        "requirement": (req or {}).get("type", f["properties"].get("kind", "")),
                        "schedule": schedule_text(req), "version": ver, "author": who or "",
                        "origin": "court order" if zid in self.court_ids else "operator",
                        "pending": "; ".join(f"{c['action']} from {_utc(c['effective_from'])}" for c in p),
                        "feature": f, "requirement_dict": req})
        return out

    def feature(self, zone_id: str) -> dict | None:
        return next((f for f in self.w.zone_features() if f["id"] == zone_id), None)

    # -- entry points
    def edit_on_map(self, zone_id: str) -> bool:
        """Pan to the zone and put handles on it alone (the map's "Edit a zone" tool)."""
        f = self.feature(zone_id)
        if f is None or not hasattr(self.w.map, "enable_editing"):
            return False
        g = f.get("geometry") or {}
        pts = {"Point": lambda c: [c], "Polygon": lambda c: c[0],
               "MultiPolygon": lambda c: c[0][0]}.get(g.get("type"), lambda c: [])(g.get("coordinates"))
        if pts:
            self.w.map.pan_to(sum(p[1] for p in pts) / len(pts), sum(p[0] for p in pts) / len(pts), 16)
        self.w.map.enable_editing(zone_id)
        self.w.statusBar().showMessage(f"Editing {zone_id} on the map: drag its corners; Esc ends", 8000)
        return True

    def edit_from_map(self, feature: dict) -> None:
        zid = str(feature.get("id"))
        if not self.needs_approval(zid):
            self.w._zone_edited(feature)        # noqa: SLF001 - as before: at once
            return
        old = self.feature(zid)
        (v0, a0), (v1, a1) = zone_measure(old), zone_measure(feature)
        summary = (f"Zone {zid} ({(feature.get('properties') or {}).get('name', '')}) reshaped on the map:"
                   f" {v0} → {v1} vertices, {a0:,.0f} → {a1:,.0f} m².")
        self.request([{"zone": zid, "action": "edit", "feature": feature}], "Change a court-ordered zone",
                     summary, "&Approve change", from_map=True)

    def delete_from_map(self, zone_id: str) -> None:
        self.delete(zone_id, from_map=True)

    def delete(self, zone_id: str, from_map: bool = False) -> bool:
        off, req = self.requirement_of(zone_id)
        f = self.feature(zone_id) or {"properties": {}}
        what = (f"{req['type']} zone of {off}" if req else "zone") + f" {zone_id} ({f['properties'].get('name', '')})"
        summary = (f"Delete the {what}? Its requirement is no longer monitored from the moment it"
                   " takes effect. The deletion is recorded as a new version; the old geometry is kept.")
        return self.request([{"zone": zone_id, "action": "delete", "feature": None}], "Delete zone",
                            summary, "&Delete zone", from_map=from_map)

    def set_properties(self, zone_id: str, *, name: str, always: bool, start: str, end: str,
                       grace_s: int) -> bool:
        f = self.feature(zone_id)
        if f is None:
            raise ChangeRefused(f"zone {zone_id} is not in force")
        if not name.strip():
            raise ChangeRefused("the zone needs a name")
        off, req = self.requirement_of(zone_id)
        new = copy.deepcopy(f)
        new["properties"]["name"] = name.strip()
        change = {"zone": zone_id, "action": "properties", "feature": new}
        if req is not None:
            req = dict(req)
            if req.get("type") == "curfew" or not always:
                if not (_HHMM.match(start) and _HHMM.match(end)) or start == end:
                    raise ChangeRefused("the schedule needs two different times, HH:MM")
                req["schedule"] = [{"days": "daily", "start": start, "end": end}]
            else:
                req["schedule"] = None
            if req.get("type") == "curfew":
                req["grace_s"] = int(grace_s)
            change.update(offender=off, requirement=req)
        summary = (f"Zone {zone_id}: name {f['properties'].get('name', '')!r} → {name.strip()!r}"
                   + (f"; schedule {schedule_text(self.requirement_of(zone_id)[1])} → {schedule_text(req)}"
                      if req is not None else "")
                   + (f"; grace {req.get('grace_s')} s" if req and req.get("type") == "curfew" else "") + ".")
        return self.request([change], "Change zone properties", summary, "&Apply change")

    def import_file(self, path: str | None = None) -> bool:
        if not path:
            path, _ = QFileDialog.getOpenFileName(self.w, "Import zones", "", "GeoJSON (*.geojson *.json)")
        if not path:
            return False
        try:
            incoming = read_import(path)
        except ChangeRefused as e:
            self.w._warn(str(e))            # noqa: SLF001
            return False
        current = {f["id"]: f for f in self.w.zone_features()}
        preview = ImportPreview(path, import_diff(current, incoming), self.w)
        accepted = preview.exec()
        chosen = preview.chosen()
        preview.deleteLater()
        if not accepted:
            self.w.event.emit("zone_import_cancelled", {"path": str(path)})
            return False
        changes = [{"zone": r["zone"], "action": "delete" if r["change"] == "removed" else "import",
                    "feature": r["after"]} for r in chosen]
        summary = (f"Import {len(changes)} zone change(s) from {pathlib.Path(path).name}: "
                   + ", ".join(f"{c['action']} {c['zone']}" for c in changes) + ".")
        return self.request(changes, "Import zones", summary, "&Import")

    # -- the one path
    def request(self, changes: list[dict], title: str, summary: str, ok_text: str,
                from_map: bool = False) -> bool:
        need = any(self.needs_approval(c["zone"]) for c in changes)
        dlg = ChangeDialog(title, summary, now=self.w.clock(), approval=need, verify=self._verify,
                           ok_text=ok_text, parent=self.w)
        accepted = dlg.exec()
        dlg.deleteLater()
        if not accepted:
            self._restore_map()
            self.w.event.emit("zone_change_cancelled", {"zones": [c["zone"] for c in changes]})
            return False
        approver = dlg.approver_session.username if dlg.approver_session else None
        when = dlg.effective_from()
        for c in changes:
            c.update(requested_by=self.w.operator, approved_by=approver if self.needs_approval(c["zone"]) else None,
                     effective_from=when)
            if c["approved_by"]:
                self._audit("zone_change_approved", {k: c.get(k) for k in (
                    "zone", "action", "requested_by", "approved_by", "effective_from")})
        if when is None:
            for c in changes:
                self._apply(c)
        else:
            for c in changes:
                c["change_id"] = f"ZC-{int(time.time() * 1000)}-{next(self._seq)}"
                self.pending[c["change_id"]] = c
                self._audit("zone_change_scheduled", dict(c))
            self._restore_map()
            self.w.statusBar().showMessage(f"Zone change scheduled from {_utc(when)}", 6000)
        self.changed.emit()
        return True

    def _apply(self, c: dict) -> None:
        zid = c["zone"]
        if c["action"] == "delete":
            self.w._zone_deleted(zid)                                 # noqa: SLF001
        elif c.get("requirement") is not None and c.get("offender"):
            self.w.save_zone(c["feature"], c["offender"], c["requirement"])
        else:
            self.w._zone_edited(c["feature"])                         # noqa: SLF001
        self.w.event.emit("zone_change", {"zone": zid, "action": c["action"],
                                          "approved_by": c.get("approved_by")})

    def apply_due(self) -> int:
        now = self.w.clock()
        due = [c for c in self.pending.values() if c["effective_from"] <= now]
        for c in sorted(due, key=lambda c: c["effective_from"]):
            del self.pending[c["change_id"]]
            self._audit("zone_change_applied", {"change_id": c["change_id"], "zone": c["zone"]})
            self._apply(c)
        if due:
            self.changed.emit()
        return len(due)

    def cancel(self, change_id: str) -> None:
        c = self.pending.pop(change_id, None)
        if c is not None:
            self._audit("zone_change_cancelled", {"change_id": change_id, "zone": c["zone"]})
            self.changed.emit()

    def _reload_pending(self) -> None:
        try:
            log = self.w.store.audit_log()
        except Exception:         # noqa: BLE001
            return
        for r in log:
            d = r.get("detail") or {}
            if r["action"] == "zone_change_scheduled" and d.get("change_id"):
                self.pending[d["change_id"]] = d
            elif r["action"] in ("zone_change_applied", "zone_change_cancelled"):
                self.pending.pop(d.get("change_id"), None)

    def _audit(self, action: str, detail: dict) -> None:
        try:
            self.w.store.audit(self.w.operator, action, detail)
        except Exception as e:    # noqa: BLE001 - the operator must know the record is missing
            self.w._warn(f"{action} NOT recorded in the audit log: {e}")     # noqa: SLF001

    def _restore_map(self) -> None:
        if hasattr(self.w.map, "set_zones"):
            self.w.map.set_zones(self.w.zone_features())

    def _on_event(self, name: str, fields: dict) -> None:
        if name in ("zone_recorded", "zone_applied"):
            self.changed.emit()


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


# ---- the manager window -----------------------------------------------------------------------
class ZoneManager(QDialog):
    """The list of zones with a properties editor (see the module docstring)."""

    def __init__(self, changes: ZoneChanges, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Zone manager")
        self.setObjectName("zoneManager")
        self.changes = changes
        self.model = ZoneTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSortingEnabled(False)
        self.name = QLineEdit()
        self.always = QCheckBox("Always (no schedule)")
        self.start = QLineEdit()
        self.end = QLineEdit()
        self.grace = QSpinBox()
        self.grace.setRange(0, 86400)
        self.grace.setSuffix(" s")
        self.origin = QLabel()
        self.origin.setTextFormat(Qt.TextFormat.PlainText)
        props = QGroupBox("Properties")
        form = QFormLayout(props)
        form.addRow(self.origin)
        form.addRow("&Name:", self.name)
        form.addRow("", self.always)
        form.addRow("Fr&om (HH:MM):", self.start)
        form.addRow("&To (HH:MM):", self.end)
        form.addRow("Curfew &grace:", self.grace)
        self.problem = QLabel()
        self.problem.setTextFormat(Qt.TextFormat.PlainText)
        self.problem.setObjectName("dim")
        form.addRow(self.problem)
        self.apply_btn = QPushButton("&Apply changes…")
        self.map_btn = QPushButton("Edit on the &map")
        self.delete_btn = QPushButton("&Delete zone…")
        self.cancel_btn = QPushButton("Cancel &pending change")
        self.import_btn = QPushButton("&Import GeoJSON…")
        close = QPushButton("Close")
        buttons = QHBoxLayout()
        for b in (self.apply_btn, self.map_btn, self.delete_btn, self.cancel_btn, self.import_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addWidget(props)
        lay.addLayout(buttons)
        self.apply_btn.clicked.connect(self.apply_properties)
        self.map_btn.clicked.connect(self.edit_on_map)
        self.delete_btn.clicked.connect(self.delete_zone)
        self.cancel_btn.clicked.connect(self.cancel_pending)
        self.import_btn.clicked.connect(lambda: self.changes.import_file())
        close.clicked.connect(self.close)
        self.always.toggled.connect(self._enable)
        self.table.selectionModel().selectionChanged.connect(self._selected)
        changes.changed.connect(self.refresh)
        if parent is not None:
            parent.installEventFilter(self)       # closes with the console
        self.resize(1100, 560)
        self.refresh()

    def eventFilter(self, obj, event):  # noqa: N802 (Qt API)
        if obj is self.parent() and event.type() == QEvent.Type.Close:
            self.close()
        return False

    def current(self) -> dict | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.zone_at(rows[0].row()) if rows else None

    def select_zone(self, zone_id: str) -> None:
        r = self.model.row_of(zone_id)
        if r >= 0:
            self.table.selectRow(r)

    def refresh(self) -> None:
        keep = (self.current() or {}).get("zone")
        self.model.set_rows(self.changes.rows())
        if keep:
            self.select_zone(keep)
        elif self.model.rowCount():
            self.table.selectRow(0)
        self._selected()

    def _selected(self, *_):
        row = self.current()
        for w in (self.apply_btn, self.map_btn, self.delete_btn, self.name):
            w.setEnabled(row is not None)
        self.cancel_btn.setEnabled(bool(row and row["pending"]))
        if row is None:
            return
        req = row["requirement_dict"] or {}
        self.origin.setText(f"{row['zone']} · {row['origin']}"
                            + (" · changes need a second person's approval" if self.changes.needs_approval(row["zone"]) else ""))
        self.name.setText(row["name"])
        sched = req.get("schedule") or []
        self.always.setChecked(not sched)
        self.start.setText(sched[0]["start"] if sched else "19:00")
        self.end.setText(sched[0]["end"] if sched else "07:00")
        self.grace.setValue(int(req.get("grace_s") or 0))
        self._enable()

    def _enable(self) -> None:
        row = self.current() or {}
        req = row.get("requirement_dict") or {}
        curfew = req.get("type") == "curfew"
        self.always.setEnabled(bool(req) and not curfew)
        timed = bool(req) and (curfew or not self.always.isChecked())
        self.start.setEnabled(timed)
        self.end.setEnabled(timed)
        self.grace.setEnabled(curfew)

    def apply_properties(self) -> None:
        row = self.current()
        if row is None:
            return
        try:
            self.problem.setText("")
            self.changes.set_properties(row["zone"], name=self.name.text(), always=self.always.isChecked(),
                                        start=self.start.text().strip(), end=self.end.text().strip(),
                                        grace_s=self.grace.value())
        except ChangeRefused as e:
            self.problem.setText(str(e))

    def edit_on_map(self) -> None:
        row = self.current()
        if row is not None:
            self.changes.edit_on_map(row["zone"])

    def delete_zone(self) -> None:
        row = self.current()
        if row is not None:
            self.changes.delete(row["zone"])

    def cancel_pending(self) -> None:
        row = self.current()
        if row is None:
            return
        ids = [cid for cid, c in self.changes.pending.items() if c["zone"] == row["zone"]]
        if ids and QMessageBox.question(self, "Cancel pending change",
                                        f"Cancel {len(ids)} pending change(s) to {row['zone']}?") \
                == QMessageBox.StandardButton.Yes:
            for cid in ids:
                self.changes.cancel(cid)
