"""The zone dialog: attach a zone drawn on the map to an offender's order requirement.

A zone drawn with Geoman (polygon, rectangle or circle) arrives as a GeoJSON Feature. The
operator names it, picks the offender and the requirement type (exclusion or curfew) and its
schedule; ``zone_and_requirement`` turns the answers into the spec §3 zone Feature and
requirement dict, which the main window saves as a new zone version in the store and hands to
the engine.
"""
from __future__ import annotations

import re

from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLineEdit,
                               QSpinBox)

from ui.console.formdialog import lay_out_form_dialog
from ui.text import rich, rich_label

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ZoneInputError(ValueError):
    """The dialog's answers do not make a valid zone or requirement."""


def zone_and_requirement(feature: dict, *, zone_id: str, name: str, offender: str, kind: str,
                         always: bool, start: str, end: str, grace_s: int,
                         requirement_id: str) -> tuple[dict, dict]:
    """Spec §3 zone Feature and requirement dict from the dialog's answers."""
    if not name.strip():
        raise ZoneInputError("the zone needs a name")
    if kind not in ("exclusion", "curfew"):
        raise ZoneInputError(f"requirement type {kind!r}: expected exclusion or curfew")
    geometry = feature.get("geometry") or {}
    if geometry.get("type") not in ("Polygon", "MultiPolygon", "Point"):
        raise ZoneInputError(f"a zone must be a polygon or a circle, not {geometry.get('type')!r}")
    props = {"name": name.strip(), "kind": kind}
    radius = (feature.get("properties") or {}).get("radius_m")
    if geometry["type"] == "Point":
        if not radius or float(radius) <= 0:
            raise ZoneInputError("a circle needs a positive radius")
        props["radius_m"] = float(radius)
    zone = {"type": "Feature", "id": zone_id, "properties": props, "geometry": geometry}
    if kind == "curfew" or not always:
        if not (_HHMM.match(start) and _HHMM.match(end)):
            raise ZoneInputError("schedule times must be HH:MM")
        if start == end:
            raise ZoneInputError("the schedule window must not be empty")
        schedule = [{"days": "daily", "start": start, "end": end}]
    else:
        schedule = None
    req = {"id": requirement_id, "type": kind, "zone": zone_id, "schedule": schedule}
    if kind == "curfew":
        req["grace_s"] = int(grace_s)
    return zone, req


class ZoneDialog(QDialog):
    def __init__(self, feature: dict, offenders: list[tuple[str, str]], *, zone_id: str,
                 preselect: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("New zone")
        self.setModal(True)
        self.feature = feature
        self.zone_id = zone_id
        g = feature.get("geometry", {})
        shape = "circle" if g.get("type") == "Point" else "polygon"
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. Victim's street, Holloway Road")
        self.offender = QComboBox()
        for oid, label in offenders:
            self.offender.addItem(f"{oid}  {label}", oid)
        if preselect:
            i = self.offender.findData(preselect)
            if i >= 0:
                self.offender.setCurrentIndex(i)
        self.kind = QComboBox()
        self.kind.addItem("Exclusion (must not enter)", "exclusion")
        self.kind.addItem("Curfew (must be inside)", "curfew")
        self.always = QCheckBox("Always (no schedule)")
        self.always.setChecked(True)
        self.start = QLineEdit("19:00")
        self.end = QLineEdit("07:00")
        self.grace = QSpinBox()
        self.grace.setRange(0, 86400)
        self.grace.setValue(600)
        self.grace.setSuffix(" s")
        form = QFormLayout()
        form.addRow(rich_label(rich("Drawn {shape} → zone <b>{zone}</b>", shape=shape, zone=zone_id)))
        form.addRow("&Name:", self.name)
        form.addRow("&Offender:", self.offender)
        form.addRow("&Requirement:", self.kind)
        form.addRow("", self.always)
        form.addRow("From (HH:MM):", self.start)
        form.addRow("To (HH:MM):", self.end)
        form.addRow("Curfew grace:", self.grace)
        self.problem, self.buttons = lay_out_form_dialog(self, form, "Save zone")
        for w in (self.name, self.start, self.end):
            w.textChanged.connect(self._validate)
        self.kind.currentIndexChanged.connect(self._validate)
        self.always.toggled.connect(self._validate)
        self._validate()

    def result_pair(self) -> tuple[dict, dict]:
        oid = self.offender.currentData() or ""
        return zone_and_requirement(
            self.feature, zone_id=self.zone_id, name=self.name.text(), offender=oid,
            kind=self.kind.currentData(), always=self.always.isChecked(), start=self.start.text().strip(),
            end=self.end.text().strip(), grace_s=self.grace.value(), requirement_id=f"R-{self.zone_id}")

    def _validate(self) -> None:
        curfew = self.kind.currentData() == "curfew"
        self.always.setEnabled(not curfew)
        timed = curfew or not self.always.isChecked()
        for w in (self.start, self.end):
            w.setEnabled(timed)
        self.grace.setEnabled(curfew)
        try:
            self.result_pair()
            problem = None if self.offender.count() else "no offender to attach the zone to"
        except ZoneInputError as e:
            problem = str(e)
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)

    def accept(self) -> None:
        try:
            self.result_pair()
        except ZoneInputError:
            return
        super().accept()
