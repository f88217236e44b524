"""Daily routines: where each offender truly goes, day by day (the simulator's ground truth).

An ``OffenderWorld`` holds one offender's requirements as geometry in metres, a home (the
curfew zone's centre, or a chosen spot when there is no curfew) and a handful of favourite
places (shops, work, friends) that are well clear of every exclusion zone.

``plan_path`` turns that into a ``TruePath`` over the simulated period:

* at home at night, leaving after the curfew ends (≥ 20 min) and home again well before it
  starts (20–70 min), or late evening when there is no curfew that night;
* by day, outings to the favourite places, on foot (~1.4 m/s) under 1.2 km, by bus (~8 m/s)
  beyond; every leg keeps ``ROUTE_MARGIN_M`` from the offender's exclusion zones (a detour
  through a side waypoint when the straight line would pass too close);
* ``Visit``s, fixed in time: appointments at the probation office and the scripted incidents
  (walking into an exclusion zone, standing just outside one, a night out in curfew, ...),
  reached by a safe route and, where given, a final straight approach from ``approach``.

Everything the engine is judged against is then measured on this path (``truth``), so a
planning compromise (a late arrival, a detour) can never make the ground truth wrong.
"""
from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import shapely
from shapely.geometry import LineString, Point
from shapely.ops import unary_union

from monitorapp.sim.routines import (LocalGrid, TruePath, active_intervals, local_date, local_time,
                                    zone_centre)
from monitorapp.feed.timeutil import parse_time

WALK_MPS = 1.4
BUS_MPS = 8.0
WALK_MAX_M = 1200.0
ROUTE_MARGIN_M = 150.0       # routine legs keep this far from the offender's exclusion zones
PLACE_MARGIN_M = 300.0       # favourite places keep this far
HOME_OFFSET_MAX_M = 15.0     # where in the home zone the person actually is
LONDON = (-0.08, 51.54)


@dataclass
class Req:
    """A requirement of spec §3 with its zone in the offender's metres."""
    id: str
    type: str
    zone: str
    geom: object
    schedule: list | None = None
    grace_s: float = 0.0
    start: float | None = None   # appointments
    end: float | None = None
    active: list = field(default_factory=list)   # UTC intervals in the period


@dataclass
class Visit:
    """Be at ``point`` at ``arrive`` and stay ``stay_s``; reach it last from ``approach`` in a
    straight walk (and leave the same way). ``night``: from home and back home, in curfew."""
    arrive: float
    point: tuple[float, float]
    stay_s: float
    approach: tuple[float, float] | None = None
    night: bool = False
    kind: str = "routine"
    # filled in by the planner: when the visit's journey began and ended
    began: float | None = None
    ended: float | None = None


class OffenderWorld:
    """One offender, their zones in metres, home and favourite places."""

    def __init__(self, offender: dict, zones: dict[str, dict], tz: ZoneInfo,
                 t0: float, t1: float, rng: random.Random):
        self.offender = offender
        self.id = offender["id"]
        self.device = offender["device"]
        self.interval = float(offender.get("fix_interval_s") or 60)
        self.tz = tz
        self.t0, self.t1 = t0, t1
        reqs = offender.get("requirements") or []
        curfew_zone = next((zones[r["zone"]] for r in reqs if r.get("type") == "curfew"
                            and r.get("zone") in zones), None)
        if curfew_zone is not None:
            home_ll = zone_centre(curfew_zone)
        else:
            home_ll = None
        self.grid = LocalGrid(*(home_ll or LONDON))
        self.reqs: list[Req] = []
        for r in reqs:
            z = zones.get(r.get("zone"))
            if z is None:
                continue
            geom = self.grid.geometry(z)
            shapely.prepare(geom)
            q = Req(r["id"], r["type"], r["zone"], geom, r.get("schedule"),
                    float(r.get("grace_s") or (600 if r["type"] == "curfew" else 300)))
            if q.type == "appointment":
                q.start, q.end = parse_time(r["start"]), parse_time(r["end"])
                q.active = [(q.start, q.end)]
            else:
                q.active = active_intervals(q.schedule, tz, t0 - 86400, t1 + 86400)
            self.reqs.append(q)
        self.exclusions = [q for q in self.reqs if q.type == "exclusion"]
        self.curfews = [q for q in self.reqs if q.type == "curfew"]
        self.appointments = [q for q in self.reqs if q.type == "appointment"]
        ex = [q.geom for q in self.exclusions]
        self.keepout = unary_union([g.buffer(ROUTE_MARGIN_M) for g in ex]) if ex else None
        self.place_keepout = unary_union([g.buffer(PLACE_MARGIN_M) for g in ex]) if ex else None
        if self.keepout is not None:
            shapely.prepare(self.keepout)
            shapely.prepare(self.place_keepout)
        if home_ll is None:
            self.home = self._free_point(rng, (0.0, 0.0), 0.0, 3000.0)
        else:
            self.home = (0.0, 0.0)
        a, d = rng.uniform(0, 2 * math.pi), HOME_OFFSET_MAX_M * math.sqrt(rng.random())
        self.home_spot = (self.home[0] + d * math.cos(a), self.home[1] + d * math.sin(a))
        self.places = [self._free_point(rng, self.home, 500.0, 3500.0) for _ in range(5)]
        self.curfew_active = sorted(iv for q in self.curfews for iv in q.active)
        self.speed_factor = rng.uniform(0.85, 1.15)

    def avoid(self, geom, rng: random.Random) -> None:
        """Keep routine travel and places clear of another zone too (a skipped appointment's
        office), with the same margins as the exclusion zones."""
        extra, extra_place = geom.buffer(ROUTE_MARGIN_M), geom.buffer(PLACE_MARGIN_M)
        self.keepout = extra if self.keepout is None else unary_union([self.keepout, extra])
        self.place_keepout = (extra_place if self.place_keepout is None
                              else unary_union([self.place_keepout, extra_place]))
        shapely.prepare(self.keepout)
        shapely.prepare(self.place_keepout)
        self.places = [p if not shapely.contains_xy(self.place_keepout, *p) and self.safe(self.home, p)
                       else self._free_point(rng, self.home, 500.0, 3500.0) for p in self.places]

    # --- geometry helpers ---
    def _free_point(self, rng, centre, rmin, rmax) -> tuple[float, float]:
        for _ in range(200):
            a = rng.uniform(0, 2 * math.pi)
            r = math.sqrt(rng.uniform(rmin ** 2, rmax ** 2))
            p = (centre[0] + r * math.cos(a), centre[1] + r * math.sin(a))
            if self.place_keepout is None or not shapely.contains_xy(self.place_keepout, *p):
                if self.keepout is None or self.safe(centre, p):
                    return p
        return centre

    def safe(self, a, b) -> bool:
        if self.keepout is None:
            return True
        if a == b:
            return not shapely.contains_xy(self.keepout, *a)
        return not self.keepout.intersects(LineString([a, b]))

    def route(self, a, b) -> list[tuple[float, float]]:
        """Points to go through from a to b (b last), clear of the exclusion zones."""
        if self.safe(a, b):
            return [b]
        mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        dx, dy = b[0] - a[0], b[1] - a[1]
        n = math.hypot(dx, dy) or 1.0
        px, py = -dy / n, dx / n
        for off in (400, -400, 800, -800, 1500, -1500, 3000, -3000):
            w = (mx + off * px, my + off * py)
            if self.safe(a, w) and self.safe(w, b):
                return [w, b]
        for off in (800, -800, 2000, -2000):   # two side waypoints, a detour round the zone
            w1 = (a[0] + off * px, a[1] + off * py)
            w2 = (b[0] + off * px, b[1] + off * py)
            if self.safe(a, w1) and self.safe(w1, w2) and self.safe(w2, b):
                return [w1, w2, b]
        return [b]   # no clear route: truth reports any resulting breach or near approach

    def travel_time(self, a, b) -> float:
        pts = [a] + self.route(a, b)
        length = sum(math.hypot(q[0] - p[0], q[1] - p[1]) for p, q in zip(pts, pts[1:]))
        return length / self.speed(length)

    def speed(self, length: float) -> float:
        return (WALK_MPS if length < WALK_MAX_M else BUS_MPS) * self.speed_factor

    def lonlat(self, p) -> tuple[float, float]:
        return self.grid.to_lonlat(*p)

    def in_curfew(self, t: float) -> bool:
        return any(a <= t < b for a, b in self.curfew_active)


@dataclass
class DayFrame:
    leave: float
    home_by: float


def day_frames(world: OffenderWorld, rng: random.Random, t_begin: float, t_end: float) -> dict:
    """date → DayFrame: when the offender leaves home and is home again that day."""
    tz = world.tz
    frames = {}
    d = local_date(t_begin, tz)
    while local_time(d, "00:00", tz) < t_end:
        morning = local_time(d, "07:45", tz) + rng.uniform(0, 100 * 60)
        noon, next_morning = local_time(d, "12:00", tz), local_time(d + dt.timedelta(days=1), "06:00", tz)
        for a, b in world.curfew_active:
            if a < noon and b > local_time(d, "00:00", tz):
                morning = max(morning, b + rng.uniform(20, 40) * 60)
        starts = [a for a, _ in world.curfew_active if noon <= a < next_morning]
        if starts:
            home_by = min(starts) - rng.uniform(20, 70) * 60
        else:
            home_by = local_time(d, "21:00", tz) + rng.uniform(0, 60 * 60)
        frames[d] = DayFrame(morning, home_by)
        d += dt.timedelta(days=1)
    return frames


def plan_path(world: OffenderWorld, rng: random.Random, visits: list[Visit],
              frames: dict, t_begin: float, t_end: float) -> TruePath:
    """The offender's true track from ``t_begin`` (at home) to ``t_end``."""
    path = TruePath(t_begin, *world.home_spot)
    visits = sorted(visits, key=lambda v: v.arrive)
    night = [v for v in visits if v.night]
    day = [v for v in visits if not v.night]
    for d in sorted(frames):
        fr = frames[d]
        while night and night[0].arrive < fr.leave:
            _night_visit(world, path, night.pop(0))
        path.stay_until(fr.leave)
        while day and day[0].arrive < fr.home_by:
            v = day.pop(0)
            _routine(world, rng, path, v.arrive - _approach_time(world, path.pos, v), v.approach or v.point)
            _go_visit(world, path, v)
        _routine(world, rng, path, fr.home_by - world.travel_time(path.pos, world.home_spot), world.home_spot)
        depart = fr.home_by - world.travel_time(path.pos, world.home_spot)
        path.stay_until(depart)
        path.go(world.route(path.pos, world.home_spot), world.speed(_dist(path.pos, world.home_spot)))
    for v in night:
        if v.arrive < t_end:
            _night_visit(world, path, v)
    path.stay_until(t_end)
    return path


def _dist(a, b) -> float:
    return math.hypot(b[0] - a[0], b[1] - a[1])


def _approach_time(world, pos, v: Visit) -> float:
    if v.approach is None:
        return world.travel_time(pos, v.point)
    return world.travel_time(pos, v.approach) + _dist(v.approach, v.point) / WALK_MPS


def _go_visit(world: OffenderWorld, path: TruePath, v: Visit) -> None:
    depart = v.arrive - _approach_time(world, path.pos, v)
    path.stay_until(depart)
    v.began = path.t
    if v.approach is not None:
        first = v.approach
        path.go(world.route(path.pos, first), world.speed(_dist(path.pos, first)))
        path.go([v.point], WALK_MPS)
    else:
        path.go(world.route(path.pos, v.point), world.speed(_dist(path.pos, v.point)))
    path.stay_until(path.t + v.stay_s)
    if v.approach is not None:
        path.go([v.approach], WALK_MPS)
    v.ended = path.t


def _night_visit(world: OffenderWorld, path: TruePath, v: Visit) -> None:
    _go_visit(world, path, v)
    path.go(world.route(path.pos, world.home_spot), world.speed(_dist(path.pos, world.home_spot)))
    v.ended = path.t


def _routine(world: OffenderWorld, rng: random.Random, path: TruePath, until: float, nxt) -> None:
    """Outings to favourite places between now and ``until``, ending where ``nxt`` is reachable."""
    for _ in range(6):
        here = path.pos
        options = [p for p in world.places if _dist(p, here) > 50]
        if not options:
            return
        q = rng.choice(options)
        t1, t2 = world.travel_time(here, q), world.travel_time(q, nxt)
        spare = until - path.t - t1 - t2 - 300
        if spare < 20 * 60:
            return
        stay = min(rng.uniform(20, 150) * 60, spare)
        path.go(world.route(here, q), world.speed(_dist(here, q)))
        path.stay_until(path.t + stay)
