"""Zone geometry in metres.

Projection
    Zones are projected once, with pyproj, into the **British National Grid** (EPSG:27700)
    when every zone lies inside the grid's area of use (Great Britain): the centre is national
    in scope, BNG is what police and probation partners use, its scale error is under 0.04 %
    across England and Wales, and the store and crime mapping index fixes in it too. A caseload
    outside Great Britain gets a local transverse Mercator centred on its extent instead
    (``+proj=tmerc`` on WGS84, scale 1), so distances stay true to well under 0.1 %.

Fast path for fixes
    Projecting every fix through pyproj costs about 1.5 µs; the engine needs thousands of
    fixes a second near zones. Each zone therefore keeps the *local affine linearisation* of the
    same pyproj transform at its centre (the Jacobian, from finite differences). Within 2 km of
    the centre the affine position differs from pyproj's by well under 0.5 m (a test measures
    it), far below GPS accuracy. Zones larger than ``AFFINE_MAX_M`` use pyproj itself per fix.
    A fix further than ``NEAR_M`` beyond a zone's bounding circle (a degree box test, four
    comparisons) is not projected at all: its depth is only bounded, which is enough to call it
    clearly outside.

Signed depth
    ``ZoneShape.depth(lon, lat)`` is the signed distance in metres from the point to the
    zone's boundary: positive inside, negative outside. Circles (Point + ``radius_m``) are exact
    arithmetic; polygons use shapely 2's prepared ``contains_xy`` and ``distance``.
"""
from __future__ import annotations

import math
from array import array

import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Point, shape

BNG_BOUNDS = (-9.0, 49.75, 2.0, 61.0)   # lon/lat area of use of EPSG:27700
AFFINE_MAX_M = 2500.0                   # zones up to this bounding radius use the affine path
NEAR_M = 2000.0                         # beyond this from the bounding circle: "far", not projected
FAR_DEPTH = -1e9


class Projector:
    """WGS84 lon/lat ↔ metres, chosen from the caseload's extent (see module docstring)."""

    def __init__(self, lonlats: list[tuple[float, float]]):
        if lonlats and all(BNG_BOUNDS[0] <= lo <= BNG_BOUNDS[2] and BNG_BOUNDS[1] <= la <= BNG_BOUNDS[3]
                           for lo, la in lonlats):
            self.crs = CRS.from_epsg(27700)
            self.name = "EPSG:27700 (British National Grid)"
        else:
            if lonlats:
                lon0 = (min(p[0] for p in lonlats) + max(p[0] for p in lonlats)) / 2
                lat0 = (min(p[1] for p in lonlats) + max(p[1] for p in lonlats)) / 2
            else:
                lon0 = lat0 = 0.0
            self.crs = CRS.from_proj4(f"+proj=tmerc +lat_0={lat0:.6f} +lon_0={lon0:.6f} +k=1 "
                                      "+x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs")
            self.name = f"local transverse Mercator at {lat0:.4f}, {lon0:.4f}"
        self._fwd = Transformer.from_crs(4326, self.crs, always_xy=True)
        self._inv = None   # made on first use: building a Transformer costs ~45 ms, and the engine never inverts

    def to_xy(self, lon: float, lat: float) -> tuple[float, float]:
        return self._fwd.transform(lon, lat)

    def to_xy_many(self, lons, lats):
        return self._fwd.transform(lons, lats)

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        if self._inv is None:
            self._inv = Transformer.from_crs(self.crs, 4326, always_xy=True)
        return self._inv.transform(x, y)

    def affine_at(self, lon0: float, lat0: float):
        """(x0, y0, a, b, c, d) with x ≈ x0 + a·dlon + b·dlat, y ≈ y0 + c·dlon + d·dlat."""
        h = 1e-4
        # the centre and its four neighbours in one call (a national caseload has 30,000 zones)
        xs_, ys_ = self.to_xy_many(array("d", (lon0, lon0 + h, lon0, lon0 - h, lon0)),
                                   array("d", (lat0, lat0, lat0 + h, lat0, lat0 - h)))
        x0, xe, xn, xw, xs = xs_
        y0, ye, yn, yw, ys = ys_
        return (x0, y0, (xe - xw) / (2 * h), (xn - xs) / (2 * h), (ye - yw) / (2 * h), (yn - ys) / (2 * h))


class ZoneShape:
    """One zone's geometry, projected and prepared."""

    __slots__ = ("zone_id", "kind", "geom", "boundary", "cx", "cy", "radius", "bound_r",
                 "lon0", "lat0", "box", "affine", "proj", "lonlat_geojson")

    def __init__(self, zone_id: str, geometry: dict, radius_m: float | None, proj: Projector):
        self.zone_id = zone_id
        self.proj = proj
        self.lonlat_geojson = geometry
        gtype = geometry["type"]
        if gtype == "Point":
            self.kind = "circle"
            self.lon0, self.lat0 = float(geometry["coordinates"][0]), float(geometry["coordinates"][1])
            self.radius = float(radius_m)
            self.geom = self.boundary = None
            self.bound_r = self.radius
        else:
            self.kind = "polygon"
            g = shape(geometry)
            c = g.envelope.centroid
            self.lon0, self.lat0 = c.x, c.y
            self.radius = None
            geom = shapely.transform(g, lambda pts: _xy_array(proj, pts))
            if not geom.is_valid:
                geom = shapely.make_valid(geom)
            shapely.prepare(geom)
            self.geom = geom
            self.boundary = geom.boundary
            shapely.prepare(self.boundary)
        self.affine = proj.affine_at(self.lon0, self.lat0)
        self.cx, self.cy = self.affine[0], self.affine[1]
        if self.kind == "polygon":
            minx, miny, maxx, maxy = self.geom.bounds
            self.bound_r = max(math.hypot(px - self.cx, py - self.cy)
                               for px, py in ((minx, miny), (minx, maxy), (maxx, miny), (maxx, maxy)))
        reach = self.bound_r + NEAR_M
        dlat = reach / 111_000.0
        dlon = reach / (111_000.0 * max(0.05, math.cos(math.radians(self.lat0))))
        self.box = (self.lon0 - dlon, self.lat0 - dlat, self.lon0 + dlon, self.lat0 + dlat)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        if self.bound_r > AFFINE_MAX_M:
            return self.proj.to_xy(lon, lat)
        x0, y0, a, b, c, d = self.affine
        dlon = lon - self.lon0
        dlat = lat - self.lat0
        return x0 + a * dlon + b * dlat, y0 + c * dlon + d * dlat

    def depth(self, lon: float, lat: float, need: float = 50.0) -> float:
        """Signed metres to the boundary: > 0 inside, < 0 outside.

        Exact wherever the magnitude could be below ``need``; further out it returns an
        outside distance that is a lower bound (the distance to the bounding circle, or
        ``FAR_DEPTH`` beyond ``NEAR_M``), which is all a classification against ``need`` uses.
        """
        box = self.box
        if lon < box[0] or lon > box[2] or lat < box[1] or lat > box[3]:
            return FAR_DEPTH
        x, y = self.xy(lon, lat)
        dist_c = math.hypot(x - self.cx, y - self.cy)
        if self.kind == "circle":
            return self.radius - dist_c
        if dist_c - self.bound_r >= need:
            return self.bound_r - dist_c
        d = self.boundary.distance(Point(x, y))
        return d if shapely.contains_xy(self.geom, x, y) else -d

    def depth_xy(self, x: float, y: float) -> float:
        """Signed depth for a point already in projected metres (crime mapping, charts)."""
        if self.kind == "circle":
            return self.radius - math.hypot(x - self.cx, y - self.cy)
        d = self.boundary.distance(Point(x, y))
        return d if shapely.contains_xy(self.geom, x, y) else -d


def _xy_array(proj: Projector, pts):
    import numpy as np
    x, y = proj.to_xy_many(pts[:, 0], pts[:, 1])
    return np.column_stack([x, y])


def circle_polygon_lonlat(lon: float, lat: float, radius_m: float, n: int = 48) -> list[list[float]]:
    """A ring approximating a circle, in lon/lat (for display)."""
    out = []
    k_lat = 111_320.0
    k_lon = 111_320.0 * math.cos(math.radians(lat))
    for i in range(n + 1):
        a = 2 * math.pi * i / n
        out.append([lon + radius_m * math.cos(a) / k_lon, lat + radius_m * math.sin(a) / k_lat])
    return out
