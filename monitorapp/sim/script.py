"""Scripted incidents: the breaches, faults and near-misses the simulator plays into a feed.

An ``Incident`` is one scripted thing (``kind``, offender, UTC time ``at``, duration). The
default script (``auto_script``) spreads ``DEFAULT_COUNTS`` over the period, each incident on
a different offender that has the right requirement, away from appointments and the feed
outage; trainers' presets (``scenarios``) give explicit lists instead. ``apply_incidents``
turns incidents into what the planner and the tag need: ``Visit``s, changes to a day's
leaving/home-by times, multipath fixes and device faults.

Kinds (what the offender or tag does):

====================== ======================================================================
exclusion_breach       walks from 500 m out straight to the middle of an always-active
                       exclusion zone, stays 8–15 min, walks out the same way
exclusion_near_miss    stands 30–50 min ``NEAR_MISS_M`` outside an exclusion zone (must not alert)
multipath_exclusion    stands 400 m outside; one fix jumps into the zone (must not alert)
curfew_late_return     comes home grace + 15–25 min after the curfew starts (``at`` = start)
curfew_early_leave     leaves home 35–45 min before the curfew ends (``at`` = end)
curfew_night_out       goes 0.8–1.5 km from home for 40–50 min during the curfew
curfew_near_miss       stands 45–60 min in the garden, inside the curfew zone by ``NEAR_MISS_M``
multipath_curfew       at home in curfew; one fix jumps 300–600 m away (must not alert)
appointment_missed     never goes to the appointment
strap_tamper           ``strap_tamper`` event, ``strap_restored`` 10–30 min later
signal_gap             tag silent 20–30 min, its fixes delivered late in a burst afterwards
dead_tag               tag stops reporting for good
dead_battery           battery runs down: battery_low, battery_critical, power_off, silence
battery_low            battery falls through 0.15 at ``at`` (charged again in the evening)
feed_outage            no message at all (heartbeats included) for ``duration_s``
====================== ======================================================================
"""
from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

from monitorapp.sim.planner import DayFrame, OffenderWorld, Visit
from monitorapp.sim.routines import local_date, local_time, ray_point_at_distance

CLEAN_ACC_MAX = 20.0             # largest acc a tag reports during a scripted incident
NEAR_MISS_M = 2 * CLEAN_ACC_MAX + 2.0
KINDS = ("feed_outage", "exclusion_breach", "curfew_late_return", "curfew_early_leave",
         "curfew_night_out", "appointment_missed", "strap_tamper", "signal_gap", "dead_tag",
         "dead_battery", "battery_low", "exclusion_near_miss", "curfew_near_miss",
         "multipath_exclusion", "multipath_curfew")
DEFAULT_COUNTS = {  # per 24 h of feed
    "feed_outage": 1, "exclusion_breach": 3, "curfew_late_return": 2, "curfew_early_leave": 2,
    "curfew_night_out": 1, "appointment_missed": 2, "strap_tamper": 3, "signal_gap": 2,
    "dead_tag": 1, "dead_battery": 1, "battery_low": 2, "exclusion_near_miss": 4,
    "curfew_near_miss": 3, "multipath_exclusion": 2, "multipath_curfew": 2,
}
OUTAGE_S = 480.0
KEEP_CLEAR_S = 1800.0            # incidents keep this far from the feed outage


@dataclass
class Incident:
    kind: str
    offender: str | None
    at: float
    duration_s: float = 0.0
    requirement: str | None = None

    def to_json(self) -> dict:
        from monitorapp.feed.timeutil import fmt_time
        return {"kind": self.kind, "offender": self.offender, "at": fmt_time(self.at),
                "duration_s": self.duration_s, "requirement": self.requirement}


@dataclass
class OffenderScript:
    """What the incidents ask of one offender and their tag."""
    visits: list[Visit] = field(default_factory=list)
    leave: dict = field(default_factory=dict)       # date -> leave time
    home_by: dict = field(default_factory=dict)     # date -> home-by time
    multipath: list = field(default_factory=list)   # (t, (x, y))
    faults: list = field(default_factory=list)      # (kind, t, duration)
    missed: set = field(default_factory=set)        # appointment requirement ids
    must_not: list = field(default_factory=list)    # must-not-alert records (filled later)
    clean: list = field(default_factory=list)       # (t0, t1): no noise tricks, acc ≤ CLEAN_ACC_MAX


def _daytimes(world: OffenderWorld, t0: float, t1: float) -> list[tuple[float, float]]:
    out = []
    d = local_date(t0, world.tz)
    while local_time(d, "00:00", world.tz) < t1:
        a = max(local_time(d, "10:30", world.tz), t0 + 1200)
        b = min(local_time(d, "15:30", world.tz), t1 - 3600)
        for q in world.appointments:
            if q.start - 7200 < b and q.end + 7200 > a:   # keep 2 h clear of appointments
                if q.start - 7200 - a > b - (q.end + 7200):
                    b = min(b, q.start - 7200)
                else:
                    a = max(a, q.end + 7200)
        if b > a:
            out.append((a, b))
        d += dt.timedelta(days=1)
    return out


def _clear(t: float, span: float, outage: tuple[float, float] | None) -> bool:
    return outage is None or t + span + KEEP_CLEAR_S < outage[0] or t - KEEP_CLEAR_S > outage[1]


def candidate_time(kind: str, world: OffenderWorld, t0: float, t1: float, rng: random.Random,
                   k: int, outage) -> tuple[float, str | None] | None:
    """A time (and requirement) at which ``kind`` can happen to this offender, or None."""
    cands: list[tuple[float, str | None]] = []
    if kind in ("exclusion_breach", "exclusion_near_miss", "multipath_exclusion"):
        reqs = [q for q in world.exclusions if q.schedule is None or kind != "exclusion_breach"]
        if not reqs:
            return None
        for a, b in _daytimes(world, t0, t1):
            if b - a > 600:
                cands.append((rng.uniform(a, b - 600), rng.choice(reqs).id))
    elif kind in ("curfew_late_return", "curfew_early_leave", "curfew_night_out",
                  "curfew_near_miss", "multipath_curfew"):
        if not world.curfews:
            return None
        q = world.curfews[0]
        for a, b in q.active:
            if kind == "curfew_late_return":
                t, ok = a, t0 + 1800 <= a <= t1 - q.grace_s - 3600
            elif kind == "curfew_early_leave":
                t, ok = b, t0 + 3600 <= b <= t1 - 900
            else:
                t = a + rng.uniform(5400, 9000)
                ok = t0 + 1800 <= t <= t1 - 5400 and t + 5400 < b
            if ok:
                cands.append((t, q.id))
    elif kind == "appointment_missed":
        for q in world.appointments:
            if q.start >= t0 + 600 and q.end + q.grace_s <= t1 - 300:
                cands.append((q.start, q.id))
    else:
        lo, hi = t0 + 1200, t1 - 2700
        if hi > lo:
            cands = [(rng.uniform(lo, hi), None) for _ in range(8)]
    span = {"curfew_late_return": 5400, "curfew_early_leave": 0, "exclusion_near_miss": 4800,
            "signal_gap": 1800, "strap_tamper": 1800}.get(kind, 3600)
    start_off = 3600 if kind == "curfew_early_leave" else 1200
    cands = [c for c in cands if _clear(c[0] - start_off, span + start_off, outage)]
    if not cands:
        return None
    cands.sort()
    return cands[k % len(cands)] if kind.startswith("curfew") else rng.choice(cands)


def auto_script(worlds: list[OffenderWorld], t0: float, t1: float, rng: random.Random,
                counts: dict | None = None) -> list[Incident]:
    """A script with ``counts`` (per 24 h; default ``DEFAULT_COUNTS``) incidents.

    ``counts`` may also hold ``"first_breach_s"``: an opening exclusion breach (the offender at
    the middle of the zone that many seconds after ``t0``, on an offender with no appointment
    within two hours), so a training day starts with an alert instead of an empty queue."""
    per_day = dict(DEFAULT_COUNTS if counts is None else counts)
    first_s = per_day.pop("first_breach_s", None)
    scale = (t1 - t0) / 86400.0
    incidents: list[Incident] = []
    outage = None
    if per_day.get("feed_outage", 0) > 0 and t1 - t0 > 4 * 3600:
        at = round(t0 + (t1 - t0) * rng.uniform(0.35, 0.65))
        outage = (at, at + OUTAGE_S)
        incidents.append(Incident("feed_outage", None, at, OUTAGE_S))
    free = sorted(worlds, key=lambda w: w.id)
    rng.shuffle(free)
    if first_s is not None:
        at = t0 + float(first_s)
        for w in free:
            always = [q for q in w.exclusions if q.schedule is None]
            if always and not any(q.start - 7200 < at + 1800 and q.end + 7200 > at for q in w.appointments):
                incidents.append(Incident("exclusion_breach", w.id, at, 0.0, always[0].id))
                free.remove(w)
                break
    want = {k: (max(1, round(n * scale)) if n > 0 else 0)
            for k, n in ((k, per_day.get(k, 0)) for k in KINDS if k != "feed_outage")}
    done = dict.fromkeys(want, 0)
    for _round in range(max(want.values(), default=0)):   # one of each kind first: small caseloads
        for kind in want:                                   # get a bit of everything
            if done[kind] >= want[kind]:
                continue
            for w in free:
                c = candidate_time(kind, w, t0, t1, rng, done[kind], outage)
                if c is not None:
                    incidents.append(Incident(kind, w.id, c[0], 0.0, c[1]))
                    free.remove(w)
                    done[kind] += 1
                    break
    return incidents


def apply_incidents(world: OffenderWorld, incidents: list[Incident], frames: dict[dt.date, DayFrame],
                    rng: random.Random) -> OffenderScript:
    """Turn this offender's incidents into visits, day-frame changes, multipath and faults."""
    s = OffenderScript()
    reqs = {q.id: q for q in world.reqs}
    for inc in incidents:
        q = reqs.get(inc.requirement) if inc.requirement else None
        if inc.kind in ("exclusion_breach", "exclusion_near_miss", "multipath_exclusion"):
            q = q or (world.exclusions[0] if world.exclusions else None)
            if q is None:
                continue
            c = q.geom.centroid
            ang = math.atan2(world.home[1] - c.y, world.home[0] - c.x) + rng.uniform(-0.6, 0.6)
            far = ray_point_at_distance(q.geom, c.x, c.y, ang, 500.0)
            if inc.kind == "exclusion_breach":
                v = Visit(inc.at, (c.x, c.y), rng.uniform(8, 15) * 60, approach=far, kind=inc.kind)
            elif inc.kind == "exclusion_near_miss":
                near = ray_point_at_distance(q.geom, c.x, c.y, ang, NEAR_MISS_M)
                v = Visit(inc.at, near, rng.uniform(30, 50) * 60, approach=far, kind=inc.kind)
            else:
                v = Visit(inc.at, ray_point_at_distance(q.geom, c.x, c.y, ang, 400.0), 20 * 60,
                          kind=inc.kind)
                s.multipath.append((inc.at + 600.0, (c.x, c.y)))
            v.req = q.id      # type: ignore[attr-defined]
            s.visits.append(v)
        elif inc.kind == "curfew_late_return":
            d = local_date(inc.at - 3600, world.tz)
            cf = q or world.curfews[0]
            s.home_by[d] = inc.at + cf.grace_s + rng.uniform(15, 25) * 60
        elif inc.kind == "curfew_early_leave":
            s.leave[local_date(inc.at, world.tz)] = inc.at - rng.uniform(35, 45) * 60
        elif inc.kind == "curfew_night_out":
            p = world._free_point(rng, world.home, 800.0, 1500.0)
            s.visits.append(Visit(inc.at, p, rng.uniform(40, 50) * 60, night=True, kind=inc.kind))
        elif inc.kind == "curfew_near_miss":
            cf = q or world.curfews[0]
            radius = cf.geom.exterior.distance(cf.geom.centroid)
            r = radius - NEAR_MISS_M
            if r < 0:
                continue
            a = rng.uniform(0, 2 * math.pi)
            v = Visit(inc.at, (world.home[0] + r * math.cos(a), world.home[1] + r * math.sin(a)),
                      rng.uniform(45, 60) * 60, night=True, kind=inc.kind)
            v.req = cf.id     # type: ignore[attr-defined]
            s.visits.append(v)
        elif inc.kind == "multipath_curfew":
            a, r = rng.uniform(0, 2 * math.pi), rng.uniform(300, 600)
            s.multipath.append((inc.at, (world.home[0] + r * math.cos(a), world.home[1] + r * math.sin(a))))
        elif inc.kind == "appointment_missed" and q is not None:
            s.missed.add(q.id)
            world.avoid(q.geom, rng)      # not even passing by on a bus
        elif inc.kind == "strap_tamper":
            s.faults.append(("tamper", inc.at, inc.duration_s or rng.uniform(10, 30) * 60))
        elif inc.kind == "signal_gap":
            s.faults.append(("silence", inc.at, inc.duration_s or rng.uniform(20, 30) * 60))
        elif inc.kind in ("dead_tag", "dead_battery", "battery_low"):
            s.faults.append((inc.kind, inc.at, 0.0))
    for q in world.appointments:
        if q.id in s.missed:
            continue
        arrive = q.start - rng.uniform(3, 12) * 60
        a = rng.uniform(0, 2 * math.pi)
        c = q.geom.centroid
        r = min(8.0, max(0.0, q.geom.exterior.distance(c) - NEAR_MISS_M))
        v = Visit(arrive, (c.x + r * math.cos(a), c.y + r * math.sin(a)),
                  (q.start - arrive) + rng.uniform(15, 35) * 60, kind="appointment")
        v.req = q.id          # type: ignore[attr-defined]
        s.visits.append(v)
    for d, t in s.leave.items():
        if d in frames:
            frames[d].leave = t
    for d, t in s.home_by.items():
        if d in frames:
            frames[d].home_by = t
    return s
