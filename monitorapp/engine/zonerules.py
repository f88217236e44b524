"""The three zone requirements of spec §3 as rules the engine runs per tag.

Each rule sees every fix of its tag (``on_fix``), may ask the engine for timers
(``on_timer``), and raises or clears its own alert through the engine. The confirmation of
which side of a boundary a tag is on is ``monitorapp.engine.rules.Evidence``; see that module for the
numbers and the reasoning.
"""
from __future__ import annotations

import shapely
from shapely.ops import polylabel

from monitorapp.engine.geo import FAR_DEPTH
from monitorapp.engine.rules import NOISE_INFLATION, SIGMA_PER_ACC, Z_FAR, Evidence, classify
from monitorapp.feed.timeutil import fmt_time

JUMP_WALK_S = 2 * 86400.0


def _item_evidence(items) -> list[dict]:
    return [{"t": fmt_time(it[0]), "rx": fmt_time(it[7]), "lat": it[3], "lon": it[4], "acc": it[5],
             "depth_m": None if it[6] <= FAR_DEPTH else round(it[6], 1), "inside": it[1]}
            for it in items]


def zone_room(shape) -> float:
    """The deepest point of a zone (m): a circle's radius, a polygon's inscribed radius."""
    if shape.kind == "circle":
        return shape.radius
    geom = shape.geom
    parts = getattr(geom, "geoms", [geom])
    best = 0.0
    for g in parts:
        if g.geom_type != "Polygon" or g.is_empty:
            continue
        p = polylabel(g, tolerance=0.5)
        best = max(best, shapely.distance(g.boundary, p))
    return best


class _ZoneRule:
    alert_type = ""

    def __init__(self, engine, offender, req, shape, schedule=None):
        self.engine = engine
        self.offender = offender
        self.req = req
        self.shape = shape
        self.schedule = schedule
        self.ev = Evidence()
        self.key = (self.alert_type, offender.id, req.id)

    def _observe(self, fix):
        """Classify the fix against the zone and add it to the evidence; None if it says nothing.
        The depth is exact wherever the breach confirmation's far test could need it."""
        acc = fix.acc
        need = NOISE_INFLATION * SIGMA_PER_ACC * acc * 5.5
        depth = self.shape.depth(fix.lon, fix.lat, need if need > 50.0 else 50.0)
        c = classify(depth, acc)
        if c is None:
            return None
        item = (fix.t, c[0], c[1], fix.lat, fix.lon, acc, depth, fix.rx)
        if not self.ev.add(item):
            return None
        return item

    def _active_alert(self):
        return self.engine._active.get(self.key)

    def _raise(self, start: float, raised_at: float, late: bool, items) -> None:
        ev = {"zone": self.req.zone, "zone_version": self.engine.zone_versions.get(self.req.zone),
              "fixes": _item_evidence(items)}
        self.engine.raise_alert(self.alert_type, self.offender, self.offender.device, self.req,
                                start, raised_at, late, ev)

    def start(self, now: float) -> None:
        pass

    def inherit(self, prev: "_ZoneRule") -> None:
        """Carry the evidence over a zone edit: positions stay, depths are re-taken on the next fix."""
        self.ev = Evidence([])

    def state(self) -> dict:
        return {"ev": [list(it) for it in self.ev.items]}

    def load_state(self, s: dict) -> None:
        self.ev = Evidence([tuple(it) for it in s.get("ev", [])])


class ExclusionRule(_ZoneRule):
    alert_type = "exclusion_entered"

    def on_fix(self, fix) -> None:
        if self.ev.far >= 4:
            box = self.shape.box
            if (fix.lon < box[0] or fix.lon > box[2] or fix.lat < box[1] or fix.lat > box[3]) \
                    and self.engine._active.get(self.key) is None:
                return   # far away again after a window of far fixes: nothing can change
        if self._observe(fix) is None:
            return
        eng = self.engine
        active = self._active_alert()
        window = None
        if self.schedule is not None:
            window = self.schedule.interval_at(fix.t)
        in_force = self.schedule is None or window is not None
        if active is not None:
            if not in_force or self.ev.confirmed(False) is not None:
                eng.clear_alert(active, eng.now)
            return
        if not in_force:
            return
        # an exclusion entry keeps rules A/B (rules.py: "Breach side", why not the noise model)
        first = self.ev.confirmed(True)
        if first is None:
            return
        start = first[0] if window is None else max(first[0], window[0])
        late = eng.now - fix.t > 60.0
        self._raise(start, eng.now, late, self.ev.supporting(True))

    def on_timer(self, due, token) -> None:  # exclusion rules use no timers
        pass


QUIET_BEFORE_S = 3600.0


class CurfewRule(_ZoneRule):
    """Must be inside the zone while the schedule is active; absence raised after ``grace_s``.

    Fixes measured more than ``QUIET_BEFORE_S`` before the next curfew window, with nothing
    pending or open, are not evaluated: they cannot decide anything, and the evidence the window
    start needs comes from the fixes of the hour before it."""
    alert_type = "curfew_absent"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.pending: float | None = None     # absence start, waiting for grace to pass
        self.pending_items: list = []
        self._token = 0
        self._room: float | None = None      # the deepest a tag can be inside the zone

    def start(self, now: float) -> None:
        nxt = self.schedule.next_change(now)
        if nxt is not None:
            self.engine.schedule(nxt, self, ("edge", nxt))
        if self.pending is not None:
            self._arm_grace()

    def _absent(self):
        """The first fix of a run confirming the tag away, against the real-world noise model
        (``rules``: errors correlated over minutes, twice the stated acc); None if not."""
        room = self._room
        if room is None:
            room = self._room = zone_room(self.shape)
        return self.ev.confirmed_breach(False, room, Z_FAR)

    def _arm_grace(self) -> None:
        self._token += 1
        self.engine.schedule(self.pending + self.req.grace_s, self, ("grace", self._token))

    def _begin_absence(self, start: float, late: bool) -> None:
        self.pending = start
        self.pending_items = self.ev.supporting(False)
        due = start + self.req.grace_s
        if due <= self.engine.now:
            self._fire(late=late)
        else:
            self._arm_grace()

    def _fire(self, late: bool = False) -> None:
        start = self.pending
        self.pending = None
        self._raise(start, self.engine.now, late, self.pending_items)
        self.pending_items = []

    def on_fix(self, fix) -> None:
        if self.pending is None:
            gap_end = self.schedule.gap_end(fix.t)
            if gap_end is not None and gap_end - fix.t > QUIET_BEFORE_S and self.engine._active.get(self.key) is None:
                return   # well before the curfew, nothing pending or open: nothing to decide
            if self.ev.deep_in >= 4 and fix.t >= self.ev.items[-1][0] and fix.acc <= 200.0:
                # settled at home: one more fix well inside changes nothing
                if self.shape.depth(fix.lon, fix.lat) >= 0.5 * fix.acc and self.engine._active.get(self.key) is None:
                    return
        if self._observe(fix) is None:
            return
        eng = self.engine
        window = self.schedule.interval_at(fix.t)
        active = self._active_alert()
        if window is None:
            if active is not None:
                eng.clear_alert(active, eng.now)
            self.pending = None
            return
        if self.ev.confirmed(True) is not None:
            if active is not None:
                eng.clear_alert(active, eng.now)
            self.pending = None
            return
        if active is not None or self.pending is not None:
            return
        first = self._absent()
        if first is not None:
            self._begin_absence(max(first[0], window[0]), eng.now - fix.t > 60.0)

    def on_timer(self, due, token) -> None:
        eng = self.engine
        kind, val = token
        if kind == "grace":
            if val == self._token and self.pending is not None and self._active_alert() is None:
                self._fire()
            return
        # a window edge: schedule the next, then act on this one. When the clock jumped far
        # ahead (a replay whose arrival times leap years), the windows wholly inside the jump
        # saw no data and are not walked one by one: the next edge is the first of the last
        # JUMP_WALK_S before the new time (a curfew walked night by night for decades stalled
        # the engine for seconds per offender).
        target = getattr(eng, "advancing_to", due)
        nxt = self.schedule.next_change(max(due, target - JUMP_WALK_S))
        if nxt is not None:
            eng.schedule(nxt, self, ("edge", nxt))
        if self.schedule.active_at(due):
            # the curfew begins: a tag already confirmed out is absent from now on
            if self.pending is None and self._active_alert() is None and self._absent() is not None:
                self._begin_absence(due, False)
        else:
            active = self._active_alert()
            if active is not None:
                eng.clear_alert(active, due)
            self.pending = None

    def state(self) -> dict:
        s = super().state()
        s["pending"] = self.pending
        s["pending_items"] = [list(it) for it in self.pending_items]
        return s

    def load_state(self, s: dict) -> None:
        super().load_state(s)
        self.pending = s.get("pending")
        self.pending_items = [tuple(it) for it in s.get("pending_items", [])]


class AppointmentRule(_ZoneRule):
    """Must be inside the zone at some time in [start, end]; checked at ``end + grace_s``."""
    alert_type = "appointment_missed"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.attended = False
        self.decided = False
        self.nearest: tuple | None = None   # closest fix in the window: (depth, t, lat, lon, acc)

    def start(self, now: float) -> None:
        """Only an appointment the engine watched from its start can be called missed: one that
        began before the engine's first message (a replay or a first start in the middle of
        it) is not judged, since the fixes that might show attendance were never seen."""
        origin = self.engine.origin if self.engine.origin is not None else now
        if not self.decided and self.req.start >= origin and self.req.end >= now - self.req.grace_s:
            self.engine.schedule(self.req.end + self.req.grace_s, self, None)

    def on_fix(self, fix) -> None:
        r = self.req
        if self.attended or not (r.start <= fix.t <= r.end):
            return
        depth = self.shape.depth(fix.lon, fix.lat, fix.acc + 1.0)
        if self.nearest is None or depth > self.nearest[0]:
            self.nearest = (depth, fix.t, fix.lat, fix.lon, fix.acc)
        if depth + fix.acc >= 0.0:
            self.attended = True

    def on_timer(self, due, token) -> None:
        if self.decided:
            return
        self.decided = True
        if self.attended:
            return
        r = self.req
        ev = {"zone": r.zone, "zone_version": self.engine.zone_versions.get(r.zone),
              "window": {"start": fmt_time(r.start), "end": fmt_time(r.end), "grace_s": r.grace_s}}
        if self.nearest is not None:
            d, t, lat, lon, acc = self.nearest
            ev["closest_fix"] = {"t": fmt_time(t), "lat": lat, "lon": lon, "acc": acc,
                                 "distance_m": None if d <= FAR_DEPTH else round(-d, 1)}
        a = self.engine.raise_alert(self.alert_type, self.offender, self.offender.device, r,
                                    r.start, due, False, ev)
        self.engine.clear_alert(a, due)

    def inherit(self, prev) -> None:
        super().inherit(prev)
        self.attended, self.decided, self.nearest = prev.attended, prev.decided, prev.nearest

    def state(self) -> dict:
        return {"attended": self.attended, "decided": self.decided,
                "nearest": list(self.nearest) if self.nearest else None}

    def load_state(self, s: dict) -> None:
        self.attended = s.get("attended", False)
        self.decided = s.get("decided", False)
        self.nearest = tuple(s["nearest"]) if s.get("nearest") else None
