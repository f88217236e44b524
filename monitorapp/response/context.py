"""What the record's fixes say about an alert (issue 21): the context an operator reads out.

``alert_context(alert, fixes, zone, now)`` takes the alert (a dictionary of the store's alert
row or ``Alert.to_record()``), the tag's fixes around it (``[(t, lat, lon, acc), ...]`` in
measurement order, from the store, or the alert's evidence where the login may not read fixes)
and the zone *version in force when the alert was raised* (its GeoJSON Feature, or None), and
returns plain values (times in epoch seconds, distances in metres):

* ``signal_lost``: the last known position before the silence (``last``: t, lat, lon, acc),
  its age now or when the signal came back, and ``back_at`` (the first fix after it).
* ``exclusion_entered``: ``entered_at`` (the first fix inside from the breach's start),
  ``left_at`` (the first fix back outside after it, None while inside), ``inside_s`` and
  ``deepest_m`` (the greatest depth inside, measured in metres on the projected zone).
* ``curfew_absent``: the same, the other way round: ``left_at`` (the first fix outside),
  ``back_at`` (the first fix inside again), ``outside_s`` and ``farthest_m``.
* ``appointment_missed``: ``nearest_m`` and ``nearest_at``, the closest approach to the
  appointment zone during its window (``window``: start, end), None without a fix in it.

Depths come from ``monitorapp.engine.geo.ZoneShape`` (the engine's own projected geometry), so
the figures agree with what decided the alert. Qt-free; ``lines(context)`` gives the plain text
the details panel shows.
"""
from __future__ import annotations

import time

from monitorapp.engine.geo import Projector, ZoneShape


def _shape(zone: dict | None) -> ZoneShape | None:
    if not isinstance(zone, dict) or not isinstance(zone.get("geometry"), dict):
        return None
    g = zone["geometry"]
    coords = g.get("coordinates")
    pts = []

    def walk(c):
        if isinstance(c, (list, tuple)) and len(c) >= 2 and all(isinstance(v, (int, float)) for v in c[:2]):
            pts.append((float(c[0]), float(c[1])))
        elif isinstance(c, (list, tuple)):
            for x in c:
                walk(x)
    walk(coords)
    if not pts:
        return None
    radius = (zone.get("properties") or {}).get("radius_m")
    return ZoneShape(str(zone.get("id")), g, radius, Projector(pts))


def _exact_depth(shape: ZoneShape, lon: float, lat: float) -> float:
    return shape.depth_xy(*shape.proj.to_xy(lon, lat))


def _run(fixes, shape, start, inside_wanted: bool):
    """(first fix at/after start on the wanted side, first after it on the other, extreme depth)."""
    first = back = None
    extreme = None
    for t, lat, lon, _acc in fixes:
        if t < start:
            continue
        d = _exact_depth(shape, lon, lat)
        on_side = d > 0 if inside_wanted else d <= 0
        if first is None:
            if on_side:
                first, extreme = t, abs(d)
            continue
        if on_side:
            extreme = max(extreme, abs(d))
        else:
            back = t
            break
    return first, back, extreme


def alert_context(alert: dict, fixes: list, zone: dict | None, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    type_ = alert.get("type")
    start = float(alert.get("start") or 0.0)
    fixes = sorted((f for f in fixes or [] if f and f[0] is not None), key=lambda f: f[0])
    out: dict = {"type": type_}
    if type_ == "signal_lost":
        before = [f for f in fixes if f[0] <= start]
        after = [f for f in fixes if f[0] > start]
        last = before[-1] if before else None
        out["last"] = ({"t": last[0], "lat": last[1], "lon": last[2], "acc": last[3]}
                       if last else None)
        out["back_at"] = after[0][0] if after else None
        if last:
            out["age_s"] = (out["back_at"] or now) - last[0]
        return out
    shape = _shape(zone)
    if shape is None:
        out["problem"] = "the zone version of this alert is not known here"
        return out
    if type_ == "exclusion_entered":
        entered, left, deepest = _run(fixes, shape, start - 1.0, True)
        out.update(entered_at=entered, left_at=left, deepest_m=deepest,
                   inside_s=((left or now) - entered) if entered is not None else None)
    elif type_ == "curfew_absent":
        gone, back, farthest = _run(fixes, shape, start - 1.0, False)
        out.update(left_at=gone, back_at=back, farthest_m=farthest,
                   outside_s=((back or now) - gone) if gone is not None else None)
    elif type_ == "appointment_missed":
        ev = alert.get("evidence") or {}
        lo = ev.get("window_start", start) if isinstance(ev, dict) else start
        hi = ev.get("window_end", alert.get("raised_at") or now) if isinstance(ev, dict) else now
        best = None
        for t, lat, lon, _acc in fixes:
            if lo <= t <= hi:
                d = -_exact_depth(shape, lon, lat)
                if best is None or d < best[0]:
                    best = (d, t)
        out.update(window=(lo, hi), nearest_m=max(0.0, best[0]) if best else None,
                   nearest_at=best[1] if best else None)
    return out


def _dur(s: float | None) -> str:
    if s is None:
        return "—"
    s = max(0, int(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {sec:02d} s" if m else f"{sec} s")


def lines(ctx: dict, fmt_time) -> list[str]:
    """The context as plain text lines (``fmt_time(t)`` formats a time for the operator)."""
    t = ctx.get("type")
    if ctx.get("problem"):
        return [ctx["problem"]]
    if t == "signal_lost":
        last = ctx.get("last")
        if not last:
            return ["No fix before the signal was lost."]
        out = [f"Last known position {last['lat']:.5f}, {last['lon']:.5f} (±{last['acc']:.0f} m) "
               f"at {fmt_time(last['t'])}"]
        out.append(f"Signal back at {fmt_time(ctx['back_at'])} after {_dur(ctx.get('age_s'))}"
                   if ctx.get("back_at") else f"Silent for {_dur(ctx.get('age_s'))}")
        return out
    if t == "exclusion_entered":
        if ctx.get("entered_at") is None:
            return ["No fix inside the zone in the record."]
        return [f"Entered {fmt_time(ctx['entered_at'])}; "
                + (f"left {fmt_time(ctx['left_at'])}" if ctx.get("left_at") else "still inside"),
                f"Time inside {_dur(ctx.get('inside_s'))}; greatest depth {ctx['deepest_m']:.0f} m"]
    if t == "curfew_absent":
        if ctx.get("left_at") is None:
            return ["No fix outside the curfew zone in the record."]
        return [f"Left {fmt_time(ctx['left_at'])}; "
                + (f"back {fmt_time(ctx['back_at'])}" if ctx.get("back_at") else "not back yet"),
                f"Time away {_dur(ctx.get('outside_s'))}; farthest {ctx['farthest_m']:.0f} m outside"]
    if t == "appointment_missed":
        if ctx.get("nearest_m") is None:
            return ["No fix during the appointment window."]
        return [f"Nearest approach {ctx['nearest_m']:.0f} m from the appointment zone at "
                f"{fmt_time(ctx['nearest_at'])}"]
    return []


def _evidence_fixes(evidence) -> list[tuple]:
    from monitorapp.feed.timeutil import TimeFormatError, parse_time
    out = []
    found = []
    if isinstance(evidence, dict):
        for key in ("fixes", "fix", "last_fix"):
            v = evidence.get(key)
            found.extend(v if isinstance(v, list) else [v] if isinstance(v, dict) else [])
    for f in found:
        try:
            t = f["t"] if isinstance(f["t"], (int, float)) else parse_time(f["t"])
            out.append((float(t), float(f["lat"]), float(f["lon"]), float(f.get("acc") or 0.0)))
        except (KeyError, TypeError, ValueError, TimeFormatError):
            continue
    return out


def record_inputs(store, alert: dict, before_s: float = 3600.0, after_s: float = 6 * 3600.0):
    """(fixes, zone feature) for ``alert_context`` from a store of either backend: the tag's
    fixes from an hour before the alert's start where this login may read fixes (else the
    alert's evidence), and the zone version that decided it."""
    pg = hasattr(store, "reads_fixes")
    p = "%s" if pg else "?"
    conn = store.reader()
    fixes = []
    device, start = alert.get("device"), float(alert.get("start") or 0.0)
    if device and (not pg or store.reads_fixes):
        fixes = [tuple(r) for r in conn.execute(
            f"SELECT t, lat, lon, acc FROM fixes WHERE device={p} AND t BETWEEN {p} AND {p}"
            f" ORDER BY t", (device, start - before_s, start + after_s)).fetchall()]
    if not fixes:
        fixes = _evidence_fixes(alert.get("evidence"))
    zone = None
    zid = alert.get("zone_id", alert.get("zone"))
    if zid:
        version = alert.get("zone_version")
        if version is not None:
            row = conn.execute(f"SELECT feature FROM zones WHERE zone_id={p} AND version={p}",
                               (zid, version)).fetchone()
        else:
            row = conn.execute(f"SELECT feature FROM zones WHERE zone_id={p} AND created_at <= {p}"
                               f" ORDER BY version DESC LIMIT 1",
                               (zid, float(alert.get("raised_at") or start))).fetchone()
        if not row:            # not recorded as of the raise: the newest version known
            row = conn.execute(f"SELECT feature FROM zones WHERE zone_id={p} ORDER BY version DESC"
                               f" LIMIT 1", (zid,)).fetchone()
        if row:
            import json
            zone = json.loads(row[0]) if isinstance(row[0], str) else row[0]
    return fixes, zone


def zone_versions(store, zone_ids) -> dict[str, tuple[int, float]]:
    """{zone id: (current version, in force since)} from the store's zone versions."""
    p = "%s" if hasattr(store, "reads_fixes") else "?"
    out = {}
    for zid in zone_ids:
        row = store.reader().execute(f"SELECT version, created_at FROM zones WHERE zone_id={p}"
                                     f" ORDER BY version DESC LIMIT 1", (zid,)).fetchone()
        if row:
            out[zid] = (int(row[0]), float(row[1]))
    return out
