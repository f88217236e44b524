"""Zone and requirement edits while the engine runs (a zone drawn, moved or removed, an
offender's requirements changed; issue 15), the part of ``Engine`` that applies them.

An edit is checked before anything changes, so a refused one leaves the engine as it was.
A rule whose requirement and zone an edit did not change keeps its evidence, timers and open
alert; a replaced one inherits what it can. Edits made inside an ``edits`` block reach the
rules together when it ends. Every edit is remembered (``_edited_zones``, ``_edited_reqs``)
for the checkpoint (``monitorapp.engine.state``).
"""
from __future__ import annotations

import contextlib

from monitorapp.engine.caseload import Offender, Zone, parse_caseload


class ZoneEdits:
    """Mixed into ``Engine``: uses its caseload, tags, zone versions and shapes, ``now``,
    ``_install_zone``, ``_install_offender`` and ``_failed``."""

    def update_zone(self, feature: dict) -> int:
        """Apply a new or edited zone (a GeoJSON Feature with an id); return its new version.
        Raises CaseloadError if the feature is not a valid zone."""
        return self._apply_zone(self._checked_zone(feature))

    def attach_zone(self, feature: dict, offender_id: str, requirements: list[dict]) -> int:
        """A zone drawn or edited for an offender, with that offender's requirements (one of
        them using it), as one edit: the zone and the requirements are both checked before
        either is applied, so a refused one (CaseloadError; KeyError for an offender the
        caseload does not hold) leaves the engine as it was: zones, versions, requirements and
        rules, inside an ``edits`` block too. Returns the zone's new version."""
        zone = self._checked_zone(feature)
        off = self.caseload.offenders[offender_id]
        # a requirement naming a zone removed before (kept with no rule, as remove_zone leaves
        # it) does not refuse the new zone: a victim's exclusion zone drawn for an offender
        # whose office zone was removed is enforced, not saved and ignored
        new = self._checked_requirements(off, requirements, zone, removed_zones=True)
        version = self._apply_zone(zone)
        self._apply_requirements(off, new, requirements)
        return version

    def _checked_zone(self, feature: dict) -> Zone:
        zid = feature.get("id")
        doc = {"version": 1, "tz": self.caseload.tz,
               "zones": {"type": "FeatureCollection", "features": [feature]}, "offenders": []}
        return parse_caseload(doc, "zone").zones[zid]

    def _apply_zone(self, zone: Zone) -> int:
        zone.version = self.zone_versions.get(zone.id, 0) + 1
        self.caseload.zones[zone.id] = zone
        self._install_zone(zone)
        self._edited_zones[zone.id] = zone.feature()
        self._reinstall_rules_using(zone.id)
        return zone.version

    def remove_zone(self, zone_id: str) -> None:
        """Remove a zone. The requirements that name it stay with their offenders, with no rule:
        nothing is decided for them (no alert; the retired rule's pending decision goes with
        it) until a later version brings the zone back, when they are in force again. A
        checkpoint restores exactly that (``state.restore``)."""
        self.caseload.zones.pop(zone_id, None)
        self.zone_shapes.pop(zone_id, None)
        self.zone_versions[zone_id] = self.zone_versions.get(zone_id, 0) + 1
        self._edited_zones[zone_id] = None
        self._reinstall_rules_using(zone_id)

    def set_requirements(self, offender_id: str, requirements: list[dict], removed_zones: bool = False) -> None:
        """Replace an offender's requirements (spec §3 dicts); raises CaseloadError if invalid,
        as for one naming a zone the engine does not hold. With ``removed_zones`` (a restore)
        one naming a zone an edit removed is kept with no rule, as ``remove_zone`` leaves it."""
        off = self.caseload.offenders[offender_id]
        new = self._checked_requirements(off, requirements, None, removed_zones)
        self._apply_requirements(off, new, requirements)

    def _checked_requirements(self, off: Offender, requirements: list[dict], drawn: Zone | None,
                              removed_zones: bool = False) -> Offender:
        # checked against the zones they name (every other zone is valid already, and reading
        # them all again made each of a batch's edits cost the whole caseload); ``drawn`` in
        # place of the engine's zone of its id, a removed zone as a stand-in of that id
        named = {r.get("zone") for r in requirements if isinstance(r, dict) and isinstance(r.get("zone"), str)}
        feats = []
        for z in sorted(named):
            if drawn is not None and z == drawn.id:
                feats.append(drawn.feature())
            elif z in self.caseload.zones:
                feats.append(self.caseload.zones[z].feature())
            elif removed_zones and z in self._edited_zones and self._edited_zones[z] is None:
                feats.append({"type": "Feature", "id": z, "properties": {"name": z, "radius_m": 1},
                              "geometry": {"type": "Point", "coordinates": [0.0, 0.0]}})
        doc = {"version": 1, "tz": self.caseload.tz, "zones": {"type": "FeatureCollection", "features": feats},
               "offenders": [dict(off.raw, requirements=requirements)]}
        return parse_caseload(doc, f"offender {off.id}").offenders[off.id]

    def _apply_requirements(self, off: Offender, new: Offender, requirements: list[dict]) -> None:
        off.requirements = new.requirements
        off.raw = new.raw
        self._edited_reqs[off.id] = requirements
        if self._edit_batch is not None:
            self._edit_batch["offenders"][off.id] = off
        else:
            self._reinstall(off)

    @contextlib.contextmanager
    def edits(self):
        """Zone and requirement edits made inside the block (``update_zone``, ``remove_zone``,
        ``set_requirements``) take effect on the rules together when it ends: each offender
        whose rules an edit touched is reinstalled once, against the zones and requirements
        as they then are, which is the state the edits made one by one reach (a rule replaced
        twice inherits from the one before the block, the same evidence). Each edit is still
        checked, applied to the caseload, versioned and refused on its own. A first start or a
        standby's restore applies every zone of a national caseload at once: one by one, each
        edit walked every offender. A failure reinstalling one offender is kept in ``errors``
        (``take_errors``) and the others go on. Blocks nest: the outermost one applies."""
        if self._edit_batch is not None:
            yield
            return
        self._edit_batch = batch = {"zones": set(), "offenders": {}}
        try:
            yield
        finally:
            self._edit_batch = None
            zones, named = batch["zones"], batch["offenders"]
            for off in list(self.caseload.offenders.values()):
                if off.id in named or any(r.zone in zones for r in off.requirements):
                    try:
                        self._reinstall(off)
                    except Exception as e:      # noqa: BLE001 - the other offenders' rules go on
                        self._failed(f"zone edits: the rules of offender {off.id}", e)

    _edit_batch: dict | None = None

    def _reinstall_rules_using(self, zone_id: str) -> None:
        if self._edit_batch is not None:
            self._edit_batch["zones"].add(zone_id)
            return
        for off in self.caseload.offenders.values():
            if any(r.zone == zone_id for r in off.requirements):
                self._reinstall(off)

    def _reinstall(self, off: Offender) -> None:
        """Rules again for ``off`` after an edit: a rule whose requirement and zone did not
        change is kept as it is (its evidence, timers and open alert); a replaced one inherits
        what it can from the one before, which is retired (its pending timers do nothing)."""
        tag = self.tags[off.device]
        old = {r.req.id: r for r in tag.rules}
        self._install_offender(off)
        for i, r in enumerate(tag.rules):
            prev = old.pop(r.req.id, None)
            if prev is not None and prev.req == r.req and prev.shape is r.shape:
                tag.rules[i] = prev
                continue
            if prev is not None:
                if type(prev) is type(r):
                    r.inherit(prev)
                prev.retired = True
            if self.now is not None:
                r.start(self.now)
        for prev in old.values():       # a requirement that went
            prev.retired = True

