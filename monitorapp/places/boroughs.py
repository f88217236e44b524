"""The London boroughs from their real boundaries: which borough a position is in.

The boundaries are OpenStreetMap's (relations ``boundary=administrative``, ``admin_level=8``
with ``ref:gss`` E09000002…33, and the City of London, E09000001), built into polygons by the
basemap pipeline and committed as ``resources/basemap/london.boroughs.geojson``: one feature a
borough with ``name`` (the short name the centre uses: "Camden", "Tower Hamlets", "City of
London"), ``official`` (OSM's name), ``gss`` and ``label`` (a point inside, for the map's label).

``BoroughIndex.borough_at(lon, lat)`` answers with shapely 2's vectorised ``contains_xy`` on
prepared polygons (in degrees: containment needs no metres). The committed polygons are
simplified by at most a few metres, so neighbours can leave hairline gaps: a point in none is
given the nearest borough within ``EDGE_M`` (about 50 m), else ``None`` (outside London).

Imports only ``monitorapp.places`` (nothing else of ours).
"""
from __future__ import annotations

import json
import math
import pathlib
import unicodedata

import numpy as np
import shapely
import shapely.ops
from shapely.geometry import mapping, shape

SIMPLIFY_DEG = 0.00003            # ~2–3 m in London: the committed file stays small
EDGE_M = 50.0                     # a point this close to a borough (in a simplification gap) is in it
_DEG_LAT_M = 111_320.0

# The eight boroughs of the pilot (spec §3), in the order the centre lists them.
PILOT = ("Camden", "Enfield", "Haringey", "Islington", "Hackney", "Newham", "Tower Hamlets",
         "Waltham Forest")


class BoroughError(ValueError):
    """A borough name or boundaries file the program cannot use; the message says which."""


def short_name(official: str) -> str:
    """"London Borough of Camden" -> "Camden"; "City of Westminster" -> "Westminster"."""
    name = official.strip()
    for prefix in ("London Borough of ", "Royal Borough of ", "The "):
        if name.startswith(prefix):
            name = name[len(prefix):]
    if name == "City of Westminster":
        name = "Westminster"
    return name


def _is_london_borough(props: dict) -> bool:
    gss = str(props.get("ref:gss", ""))
    if gss:
        return gss.startswith("E09")
    return props.get("admin_level") == "8" and props.get("boundary") == "administrative"


def boroughs_from_geojsonseq(path: str | pathlib.Path) -> dict:
    """The London boroughs of an ``osmium export`` of boundary relations, as a FeatureCollection
    sorted by name, simplified, each with name/official/gss/label."""
    best: dict[str, dict] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip().lstrip("\x1e")
            if not line:
                continue
            f = json.loads(line)
            props = f.get("properties") or {}
            if not _is_london_borough(props) or f.get("geometry", {}).get("type") not in ("Polygon", "MultiPolygon"):
                continue
            official = props.get("name") or props.get("ref:gss") or "?"
            geom = shape(f["geometry"])
            if not geom.is_valid:
                geom = shapely.make_valid(geom)
            simple = geom.simplify(SIMPLIFY_DEG, preserve_topology=True)
            label = simple.representative_point() if geom.area else geom.centroid
            name = short_name(official)
            feat = {"type": "Feature",
                    "properties": {"name": name, "official": official, "gss": props.get("ref:gss", ""),
                                   "label": [round(label.x, 6), round(label.y, 6)]},
                    "geometry": _rounded(mapping(simple))}
            if name not in best or geom.area > best[name][1]:
                best[name] = (feat, geom.area)
    feats = [best[k][0] for k in sorted(best)]
    return {"type": "FeatureCollection",
            "attribution": "© OpenStreetMap contributors (ODbL)", "features": feats}


def _rounded(geom: dict) -> dict:
    def r(c):
        return [round(c[0], 6), round(c[1], 6)] if isinstance(c[0], (int, float)) else [r(x) for x in c]
    return {"type": geom["type"], "coordinates": r(geom["coordinates"])}


def _key(name: str) -> str:
    s = unicodedata.normalize("NFKD", name)
    return " ".join("".join(c for c in s if not unicodedata.combining(c)).casefold().split())


def select(fc: dict, area: str) -> dict:
    """The boroughs of ``area``: "boroughs" (all of them) or a comma-separated list of names
    (short or official, any case). Raises BoroughError naming an unknown one."""
    if area.strip().lower() == "boroughs":
        return fc
    by_key = {}
    for f in fc["features"]:
        by_key[_key(f["properties"]["name"])] = f
        by_key[_key(f["properties"]["official"])] = f
    chosen, unknown = [], []
    for part in area.split(","):
        if not part.strip():
            continue
        f = by_key.get(_key(part))
        (chosen if f else unknown).append(f or part.strip())
    if unknown or not chosen:
        known = ", ".join(f["properties"]["name"] for f in fc["features"])
        named = ", ".join(unknown) if unknown else repr(area)
        raise BoroughError(f"--area: unknown borough(s) {named} (known: {known})")
    return {**fc, "features": chosen}


def union_feature(fc: dict) -> dict:
    """One GeoJSON Feature of the union of the boroughs (for ``osmium extract -p``)."""
    geom = shapely.union_all([shape(f["geometry"]) for f in fc["features"]]).buffer(0.0005)
    return {"type": "Feature", "properties": {}, "geometry": mapping(geom)}


class BoroughIndex:
    """Borough lookup over a boroughs FeatureCollection (see the module docstring)."""

    def __init__(self, fc: dict):
        self.features = fc["features"]
        self.names = [f["properties"]["name"] for f in self.features]
        self.geoms = np.array([shape(f["geometry"]) for f in self.features], dtype=object)
        for g in self.geoms:
            shapely.prepare(g)
        self.tree = shapely.STRtree(self.geoms)

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "BoroughIndex":
        try:
            with open(path, encoding="utf-8") as fh:
                fc = json.load(fh)
            if fc.get("type") != "FeatureCollection" or not fc.get("features"):
                raise ValueError("not a FeatureCollection of boroughs")
            return cls(fc)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise BoroughError(f"boroughs file {path}: {e}") from e

    def borough_at(self, lon: float, lat: float) -> str | None:
        """The borough at a position, or None outside London."""
        return self.boroughs_at(np.array([lon]), np.array([lat]))[0]

    def boroughs_at(self, lons, lats) -> list[str | None]:
        """``borough_at`` for many positions at once (arrays of equal length)."""
        lons = np.asarray(lons, dtype=float)
        lats = np.asarray(lats, dtype=float)
        out: list[str | None] = [None] * len(lons)
        pts = shapely.points(lons, lats)
        pi, gi = self.tree.query(pts, predicate="intersects")
        for p, g in zip(pi.tolist(), gi.tolist()):
            if out[p] is None:
                out[p] = self.names[g]
        missing = [i for i, v in enumerate(out) if v is None and math.isfinite(lons[i]) and math.isfinite(lats[i])]
        if missing:
            # in a gap left by simplification, or just off the edge: the nearest borough close by
            m = np.array(missing)
            deg = EDGE_M / _DEG_LAT_M
            pi, gi = self.tree.query_nearest(pts[m], max_distance=deg * 1.7, return_distance=False)
            for p, g in zip(pi.tolist(), gi.tolist()):
                i = missing[p]
                if out[i] is None and _metres(self.geoms[g], lons[i], lats[i]) <= EDGE_M:
                    out[i] = self.names[g]
        return out

    def feature(self, name: str) -> dict | None:
        for f in self.features:
            if f["properties"]["name"] == name:
                return f
        return None


def _metres(geom, lon: float, lat: float) -> float:
    """Distance in metres from a point to a geometry near it (a local equirectangular scale;
    only used within ~100 m, where it is exact to well under a metre)."""
    k = math.cos(math.radians(lat))
    near = shapely.ops.nearest_points(geom, shapely.Point(lon, lat))[0]
    return math.hypot((near.x - lon) * k * _DEG_LAT_M, (near.y - lat) * _DEG_LAT_M)

