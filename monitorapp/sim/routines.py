"""The simulator's model of the world: metres, zones, schedules and where each person truly is.

``LocalGrid``
    An equirectangular grid in metres around one offender's home. Within the ~10 km an
    offender's day spans, it agrees with the engine's British National Grid to a few
    centimetres per hundred metres, far below the margins the simulator keeps (≥ 2 m).
``active_intervals``
    A spec §3 schedule (windows in the caseload's ``tz``) → UTC intervals, DST-correct through
    ``zoneinfo``. A window belongs to the day it starts on; ``end`` ≤ ``start`` runs to the
    next day.
``TruePath``
    A person's true track: waypoints ``(t, x, y)``, linear in between (a stay is two waypoints
    at the same place). ``at(t)`` gives position, speed and heading; ``crossings`` the exact
    times the track enters or leaves a zone.
"""
from __future__ import annotations

import bisect
import datetime as dt
import math
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import shapely
from shapely.geometry import LineString, Point, Polygon, shape

R_EARTH = 6371008.8
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class LocalGrid:
    """Metres east (x) and north (y) of an origin, on the sphere; good for a few km."""

    def __init__(self, lon0: float, lat0: float):
        self.lon0, self.lat0 = lon0, lat0
        self.ky = R_EARTH * math.pi / 180.0
        self.kx = self.ky * math.cos(math.radians(lat0))

    def to_xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        return self.lon0 + x / self.kx, self.lat0 + y / self.ky

    def geometry(self, feature: dict):
        """A caseload zone Feature → shapely geometry in this grid's metres."""
        geom = feature["geometry"]
        if geom["type"] == "Point":
            x, y = self.to_xy(*geom["coordinates"][:2])
            return Point(x, y).buffer(float(feature["properties"]["radius_m"]), quad_segs=32)
        g = shape(geom)
        return shapely.transform(g, lambda a: _project_array(a, self))


def _project_array(a, grid: LocalGrid):
    out = a.copy()
    out[:, 0] = (a[:, 0] - grid.lon0) * grid.kx
    out[:, 1] = (a[:, 1] - grid.lat0) * grid.ky
    return out


def zone_centre(feature: dict) -> tuple[float, float]:
    """(lon, lat) of a zone's centre: the point of a circle, the centroid of a polygon."""
    geom = feature["geometry"]
    if geom["type"] == "Point":
        return float(geom["coordinates"][0]), float(geom["coordinates"][1])
    c = shape(geom).centroid
    return c.x, c.y


def circle_ring(lon: float, lat: float, radius_m: float, n: int = 24) -> list[list[float]]:
    """A closed lon/lat ring approximating a circle (a 'circle-ish' polygon zone)."""
    grid = LocalGrid(lon, lat)
    ring = []
    for k in range(n):
        a = 2 * math.pi * k / n
        lo, la = grid.to_lonlat(radius_m * math.cos(a), radius_m * math.sin(a))
        ring.append([round(lo, 7), round(la, 7)])
    ring.append(ring[0])
    return ring


def rect_ring(lon: float, lat: float, w_m: float, h_m: float, angle_deg: float = 0.0) -> list[list[float]]:
    """A closed lon/lat ring: a w × h metre rectangle centred on (lon, lat), rotated."""
    grid = LocalGrid(lon, lat)
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    ring = []
    for dx, dy in ((-w_m / 2, -h_m / 2), (w_m / 2, -h_m / 2), (w_m / 2, h_m / 2), (-w_m / 2, h_m / 2)):
        lo, la = grid.to_lonlat(dx * c - dy * s, dx * s + dy * c)
        ring.append([round(lo, 7), round(la, 7)])
    ring.append(ring[0])
    return ring


# --- schedules -----------------------------------------------------------------------------

def _hm(s: str) -> dt.time:
    h, m = s.split(":")
    return dt.time(int(h), int(m))


def local_time(date: dt.date, hm: str | dt.time, tz: ZoneInfo) -> float:
    """Epoch seconds of a local wall-clock time on a date (first occurrence if ambiguous;
    a time skipped by a DST change moves forward by the change)."""
    t = _hm(hm) if isinstance(hm, str) else hm
    return dt.datetime.combine(date, t, tzinfo=tz).timestamp()


def local_date(ts: float, tz: ZoneInfo) -> dt.date:
    return dt.datetime.fromtimestamp(ts, tz).date()


def active_intervals(schedule: list[dict] | None, tz: ZoneInfo, t0: float, t1: float) -> list[tuple[float, float]]:
    """UTC intervals in which a schedule is active and which overlap [t0, t1), merged.
    ``None`` (always active) gives [(t0, t1)]."""
    if schedule is None:
        return [(t0, t1)]
    out = []
    d = local_date(t0, tz) - dt.timedelta(days=1)
    last = local_date(t1, tz) + dt.timedelta(days=1)
    while d <= last:
        for w in schedule:
            days = w["days"]
            if days != "daily" and DAY_NAMES[d.weekday()] not in days:
                continue
            st, en = _hm(w["start"]), _hm(w["end"])
            a = local_time(d, st, tz)
            b = local_time(d + dt.timedelta(days=1) if en <= st else d, en, tz)
            if b > t0 and a < t1:
                out.append((a, b))
        d += dt.timedelta(days=1)
    out.sort()
    merged: list[tuple[float, float]] = []
    for a, b in out:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def intersect(xs: list[tuple[float, float]], ys: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Intersection of two sorted lists of disjoint intervals."""
    out, i, j = [], 0, 0
    while i < len(xs) and j < len(ys):
        a, b = max(xs[i][0], ys[j][0]), min(xs[i][1], ys[j][1])
        if a < b:
            out.append((a, b))
        if xs[i][1] < ys[j][1]:
            i += 1
        else:
            j += 1
    return out


# --- the true track ------------------------------------------------------------------------

@dataclass(slots=True)
class Sample:
    x: float
    y: float
    speed: float      # m/s along the track
    heading: float    # degrees clockwise from north
    still: bool


class TruePath:
    """Piecewise-linear true track of one person. Waypoints are appended in time order."""

    def __init__(self, t: float, x: float, y: float):
        self.ts, self.xs, self.ys = [t], [x], [y]

    @property
    def t(self) -> float:
        return self.ts[-1]

    @property
    def pos(self) -> tuple[float, float]:
        return self.xs[-1], self.ys[-1]

    def add(self, t: float, x: float, y: float) -> None:
        if t < self.ts[-1] - 1e-6:
            raise ValueError(f"waypoint at {t} before the end of the path {self.ts[-1]}")
        t = max(t, self.ts[-1])
        if t == self.ts[-1]:
            if (x, y) == (self.xs[-1], self.ys[-1]):
                return
            t += 1e-3   # an instant move is a very fast one; keeps times strictly increasing
        self.ts.append(t)
        self.xs.append(x)
        self.ys.append(y)

    def stay_until(self, t: float) -> None:
        if t > self.ts[-1]:
            self.add(t, self.xs[-1], self.ys[-1])

    def go(self, points: list[tuple[float, float]], speed: float) -> float:
        """Move through points at a constant speed; returns the arrival time."""
        t = self.ts[-1]
        x0, y0 = self.pos
        for x, y in points:
            t += math.hypot(x - x0, y - y0) / speed
            self.add(t, x, y)
            x0, y0 = x, y
        return self.ts[-1]

    def at(self, t: float) -> Sample:
        ts = self.ts
        i = bisect.bisect_right(ts, t) - 1
        if i < 0:
            return Sample(self.xs[0], self.ys[0], 0.0, 0.0, True)
        if i >= len(ts) - 1:
            return Sample(self.xs[-1], self.ys[-1], 0.0, 0.0, True)
        t0, t1 = ts[i], ts[i + 1]
        x0, y0, x1, y1 = self.xs[i], self.ys[i], self.xs[i + 1], self.ys[i + 1]
        dx, dy = x1 - x0, y1 - y0
        if dx == 0.0 and dy == 0.0:
            return Sample(x0, y0, 0.0, 0.0, True)
        f = (t - t0) / (t1 - t0)
        d = math.hypot(dx, dy)
        return Sample(x0 + f * dx, y0 + f * dy, d / (t1 - t0),
                      math.degrees(math.atan2(dx, dy)) % 360.0, False)

    def inside_intervals(self, geom, t0: float, t1: float) -> list[tuple[float, float]]:
        """Exact intervals within [t0, t1] in which the track is inside ``geom`` (metres)."""
        shapely.prepare(geom)
        minx, miny, maxx, maxy = geom.bounds
        out: list[tuple[float, float]] = []
        cur = None
        ts, xs, ys = self.ts, self.xs, self.ys
        i0 = max(0, bisect.bisect_right(ts, t0) - 1)
        i1 = min(len(ts) - 1, bisect.bisect_right(ts, t1))
        for i in range(i0, i1):
            a, b = ts[i], ts[i + 1]
            xa, ya, xb, yb = xs[i], ys[i], xs[i + 1], ys[i + 1]
            if max(xa, xb) < minx or min(xa, xb) > maxx or max(ya, yb) < miny or min(ya, yb) > maxy:
                events = [(a, False)]
            elif xa == xb and ya == yb:
                events = [(a, bool(shapely.contains_xy(geom, xa, ya)))]
            else:
                events = [(a, bool(shapely.contains_xy(geom, xa, ya)))]
                seg = LineString([(xa, ya), (xb, yb)])
                hit = seg.intersection(geom.boundary)
                pts = [] if hit.is_empty else [p for g in getattr(hit, "geoms", [hit])
                                                for p in shapely.get_coordinates(g)]
                length = seg.length
                for px, py in sorted(pts, key=lambda p: math.hypot(p[0] - xa, p[1] - ya)):
                    f = math.hypot(px - xa, py - ya) / length
                    tm = a + f * (b - a)
                    # state just after the crossing
                    g = min(1.0, f + 1e-4)
                    events.append((tm, bool(shapely.contains_xy(geom, xa + g * (xb - xa), ya + g * (yb - ya)))))
            for tm, inside in events:
                if inside and cur is None:
                    cur = tm
                elif not inside and cur is not None:
                    out.append((cur, tm))
                    cur = None
        if cur is not None:
            out.append((cur, ts[i1] if i1 < len(ts) else ts[-1]))
        return [(max(a, t0), min(b, t1)) for a, b in out if min(b, t1) > max(a, t0)]

    def min_distance(self, geom, t0: float, t1: float) -> float:
        """Smallest distance (m) from the track within [t0, t1] to ``geom``."""
        i0 = max(0, bisect.bisect_right(self.ts, t0) - 1)
        i1 = min(len(self.ts) - 1, bisect.bisect_right(self.ts, t1))
        pts = [(self.xs[i], self.ys[i]) for i in range(i0, i1 + 1)]
        if len(pts) == 1:
            return geom.distance(Point(pts[0]))
        return geom.distance(LineString(pts))


def ray_point_at_distance(geom, cx: float, cy: float, angle: float, want: float,
                          lo: float = 0.0, hi: float = 5000.0) -> tuple[float, float]:
    """The point on the ray from (cx, cy) at ``angle`` whose distance to ``geom`` is ``want``
    (outside); for a convex zone the distance grows along the ray."""
    ux, uy = math.cos(angle), math.sin(angle)
    for _ in range(60):
        mid = (lo + hi) / 2
        d = geom.distance(Point(cx + mid * ux, cy + mid * uy))
        if d < want:
            lo = mid
        else:
            hi = mid
    return cx + hi * ux, cy + hi * uy


def polygon_or_none(geom) -> Polygon | None:
    return geom if isinstance(geom, Polygon) else None
