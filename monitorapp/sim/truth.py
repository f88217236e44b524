"""The ground truth of a simulated feed: what the engine must alert, by when, and what it must
not, measured on the true tracks (not on the noisy fixes).

Bounds (spec §4, "What counts as right"), written as ``alert_by`` on each breach:

===================== ========================================================================
exclusion_entered     true entry + 3 × fix interval + 60 s (inside an active zone ≥ 2 min)
curfew_absent         absence start + grace_s + 3 × fix interval + 60 s (absence > grace_s)
appointment_missed    end + grace_s
strap_tamper          the ``rx`` of the event message (written as its bound, ``t`` + 6 s)
signal_lost           silence start + max(300 s, 3 × fix interval); silence start is a bound
                      on the tag's last arrival (no message of the tag arrives after it)
battery_low           the ``rx`` of the ``battery_low`` event (bound ``t`` + 6 s; later fixes say < 0.15)
feed_lost             outage start + 60 s (no message of any kind arrives after outage start)
===================== ========================================================================

``must_not_alert`` records (kind ``must_not_alert``) name an offender, requirement, alert type
and a time window in which that alert must not start: scripted near-misses (standing
``NEAR_MISS_M`` outside an exclusion zone or inside the curfew zone by it), single-fix
multipath jumps, and appointments that were attended. ``may_alert`` records (same shape) name
alerts that are right either way: a curfew after the tag died (its position is unknown), an
appointment that began before the feed did.
"""
from __future__ import annotations

from monitorapp.sim.planner import OffenderWorld
from monitorapp.sim.routines import TruePath, intersect
from monitorapp.feed.timeutil import fmt_time

MIN_EXCLUSION_S = 120.0
ROUTINE_ACC_MAX = 60.0


def signal_threshold(interval: float) -> float:
    return max(300.0, 3.0 * interval)


def breach(type_: str, world: OffenderWorld | None, req, start: float, end: float | None,
           alert_by: float, cause: str, **extra) -> dict:
    d = {"type": type_, "offender": world.id if world else None,
         "device": world.device if world else None,
         "requirement": req.id if req is not None else None,
         "zone": req.zone if req is not None else None,
         "start": fmt_time(start), "end": fmt_time(end) if end is not None else None,
         "alert_by": fmt_time(alert_by), "cause": cause,
         "fix_interval_s": world.interval if world else None}
    d.update(extra)
    return d


def must_not(type_: str, world: OffenderWorld, req, t_from: float, t_to: float, cause: str, **extra) -> dict:
    d = {"kind": "must_not_alert", "type": type_, "offender": world.id, "device": world.device,
         "requirement": req.id if req is not None else None,
         "zone": req.zone if req is not None else None,
         "from": fmt_time(t_from), "to": fmt_time(t_to), "cause": cause}
    d.update(extra)
    return d


def audit_path(world: OffenderWorld, path: TruePath, t0: float, t1: float, scripted: list[tuple],
               death: float | None = None) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """(breaches, must_not_alert, may_alert, warnings) for one offender's true track over [t0, t1).

    ``scripted``: (t_from, t_to, kind) windows of this offender's incidents, to name the cause
    of a breach; a breach outside every window is reported with cause ``unscripted`` (a
    simulator defect the tests look for). ``death``: the tag stops then; later breaches are
    not observable and are left out, except that an appointment with no fix is missed
    whatever the reason, and a curfew after death *may* be alerted (``may_alert``: the engine
    cannot know where the tag is; either answer is right).
    """
    end = min(t1, death) if death is not None else t1
    breaches, mna, may, warnings = [], [], [], []
    iv = world.interval

    def cause_of(a: float, b: float) -> str:
        for s, e, kind in scripted:
            if s - 600 <= b and a <= e + 600:
                return kind
        return "unscripted"

    for q in world.exclusions:
        act = intersect(path.inside_intervals(q.geom, t0, end), _clip(q.active, t0, end))
        for a, b in act:
            if b - a >= MIN_EXCLUSION_S:
                breaches.append(breach("exclusion_entered", world, q, a, b if b < end else None,
                                       a + 3 * iv + 60, cause_of(a, b)))
            else:
                warnings.append(f"{world.id} {q.id}: inside for only {b - a:.0f} s at {fmt_time(a)}")
    for q in world.curfews:
        for a, b in _clip(q.active, t0, end):
            inside = path.inside_intervals(q.geom, a, b)
            for s, e in _complement(inside, a, b):
                if e - s > q.grace_s and s + q.grace_s < end:
                    breaches.append(breach("curfew_absent", world, q, s, e if e < end else None,
                                           s + q.grace_s + 3 * iv + 60, cause_of(s, e)))
                elif e - s > 1.0:
                    mna.append(must_not("curfew_absent", world, q, s, e, "absence_within_grace"))
    for q in world.appointments:
        if q.start < t0 <= q.end + q.grace_s <= t1:   # began before the feed: no fixes of its start
            may.append(may_alert("appointment_missed", world, q, q.start, q.end + q.grace_s,
                                 "began_before_the_feed"))
        if q.end + q.grace_s > t1 or q.start < t0:
            continue
        # judged on the fixes the tag can send: none after it died
        inside = sum(b - a for a, b in path.inside_intervals(q.geom, q.start, min(q.end, end)))
        if inside >= 2 * iv:
            mna.append(must_not("appointment_missed", world, q, q.start, q.end + q.grace_s + 60,
                                "attended"))
        elif inside > 0:     # only passed through: a fix inside is a matter of luck
            may.append(may_alert("appointment_missed", world, q, q.start, q.end + q.grace_s,
                                 "passed_through"))
        else:
            breaches.append(breach("appointment_missed", world, q, q.start, q.end,
                                   q.end + q.grace_s, cause_of(q.start, q.end)
                                   if end >= q.end else "tag_dead"))
    if death is not None:
        for q in world.curfews:
            for a, b in _clip(q.active, death, t1):
                may.append(may_alert("curfew_absent", world, q, a, b, "no_data_after_tag_died"))
    return breaches, mna, may, warnings


def clearance_warnings(world: OffenderWorld, path: TruePath, t0: float, t1: float,
                       incident_windows: list[tuple[float, float]]) -> list[str]:
    """Routine travel must stay 2 × the largest routine acc away from exclusion zones."""
    out = []
    spans = _complement(sorted(incident_windows), t0, t1)
    for q in world.exclusions:
        for a, b in spans:
            d = path.min_distance(q.geom, a, b)
            if d < 2 * ROUTINE_ACC_MAX:
                out.append(f"{world.id} {q.id}: routine track {d:.0f} m from the zone "
                           f"between {fmt_time(a)} and {fmt_time(b)}")
    return out


def may_alert(type_: str, world: OffenderWorld, req, t_from: float, t_to: float, cause: str) -> dict:
    d = must_not(type_, world, req, t_from, t_to, cause)
    d["kind"] = "may_alert"
    return d


def _clip(ivs, t0, t1):
    return [(max(a, t0), min(b, t1)) for a, b in ivs if b > t0 and a < t1]


def _complement(ivs, t0, t1):
    out, cur = [], t0
    for a, b in sorted(ivs):
        if a > cur:
            out.append((cur, min(a, t1)))
        cur = max(cur, b)
    if cur < t1:
        out.append((cur, t1))
    return [(a, b) for a, b in out if b > a]
