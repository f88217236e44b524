"""Builds the streets index (``OUT.streets.npz``) from an ``osmium export`` of the basemap data.

What goes in (``numpy.savez_compressed``, no pickles; loaded by ``monitorapp.places.streets``):

``crs``            the metric CRS of the coordinates (EPSG:27700 in Great Britain; chosen by
                   ``monitorapp.engine.geo.Projector`` from the data's extent)
``origin``         float64 (x, y) the coordinates are relative to
``xy``             float32 (n, 2) vertices of the named streets, in metres from ``origin``
``line_start``     int32 (k+1) where each polyline starts in ``xy`` (the last is ``n``)
``line_name``      int32 (k) index into ``names`` of each polyline's street name
``names``          the street names, one string array
``place_*``        the search's places: ``place_name``, ``place_kind`` ("street", "district",
                   "station", "park"), ``place_lon``, ``place_lat``

A "street" for addresses is a highway with a name (roads, pedestrian streets, named paths and
passages; not platforms, corridors, proposed or construction). One search place is written per
street *name and neighbourhood*: ways of the same name within ``CLUSTER_M`` of each other are
one place, so "High Street" in three boroughs is three results, and a long road is one.

Imports ``monitorapp.engine.geo`` (the projection) only.
"""
from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from monitorapp.engine.geo import Projector

OSMIUM_FILTERS = ["w/highway", "n/place", "n/railway=station", "n/public_transport=station",
                  "wr/leisure=park", "wr/leisure=common", "wr/leisure=nature_reserve"]
NOT_STREETS = {"platform", "corridor", "proposed", "construction", "elevator", "bus_stop",
               "raceway", "abandoned", "disused", "razed", "emergency_bay", "rest_area", "services"}
PLACE_KINDS = {"suburb", "neighbourhood", "quarter", "locality", "town", "village", "hamlet", "square"}
CLUSTER_M = 600.0


def _lines(geom: dict):
    if geom["type"] == "LineString":
        yield geom["coordinates"]
    elif geom["type"] == "MultiLineString":
        yield from geom["coordinates"]
    elif geom["type"] == "Polygon":            # a closed pedestrian area or square
        yield geom["coordinates"][0]


def read_features(seq_path: str | pathlib.Path):
    """(streets [(name, [[lon, lat], ...]) ...], places [(name, kind, lon, lat) ...])."""
    streets, places = [], []
    with open(seq_path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip().lstrip("\x1e")
            if not line:
                continue
            f = json.loads(line)
            p = f.get("properties") or {}
            name = " ".join(str(p.get("name", "")).split())
            g = f.get("geometry") or {}
            if not name or not g:
                continue
            hw = p.get("highway")
            if hw and g["type"] != "Point":
                if hw in NOT_STREETS or p.get("area:highway"):
                    continue
                for coords in _lines(g):
                    if len(coords) >= 2:
                        streets.append((name, coords))
                continue
            kind = None
            if g["type"] == "Point" and p.get("place") in PLACE_KINDS:
                kind = "district"
            elif g["type"] == "Point" and (p.get("railway") == "station" or p.get("public_transport") == "station"):
                kind = "station"
            elif p.get("leisure") in ("park", "common", "nature_reserve") and g["type"] in ("Polygon", "MultiPolygon"):
                kind = "park"
            if kind is None:
                continue
            if g["type"] == "Point":
                lon, lat = g["coordinates"]
            else:
                import shapely.geometry
                pt = shapely.geometry.shape(g).representative_point()
                lon, lat = pt.x, pt.y
            places.append((name, kind, float(lon), float(lat)))
    return streets, places


def _street_places(names, name_of_line, starts, xy, origin, proj) -> list[tuple[str, str, float, float]]:
    """One search place per street name and cluster of its ways (see the module docstring)."""
    by_name: dict[int, list[int]] = {}
    for li, ni in enumerate(name_of_line.tolist()):
        by_name.setdefault(ni, []).append(li)
    out = []
    for ni, lines in by_name.items():
        mids = []
        for li in lines:
            seg = xy[starts[li]:starts[li + 1]].astype(float)
            mids.append((seg, seg.mean(axis=0)))
        clusters: list[list] = []
        for seg, mid in mids:
            for c in clusters:
                if min(float(np.hypot(*(mid - m))) for _, m in c) <= CLUSTER_M:
                    c.append((seg, mid))
                    break
            else:
                clusters.append([(seg, mid)])
        for c in clusters:
            # the middle of the segment nearest the cluster's centre: on the street, and not at
            # a junction (where another street is as near)
            mids_c = np.concatenate([(s[1:] + s[:-1]) / 2 for s, _ in c])
            centre = np.concatenate([s for s, _ in c]).mean(axis=0)
            v = mids_c[np.argmin(np.hypot(*(mids_c - centre).T))]
            lon, lat = proj.to_lonlat(v[0] + origin[0], v[1] + origin[1])
            out.append((names[ni], "street", round(lon, 6), round(lat, 6)))
    return out


def write_index(seq_path: str | pathlib.Path, out: str | pathlib.Path) -> dict:
    """Read the export, write the index; returns counts for the build's figures."""
    streets, places = read_features(seq_path)
    if not streets:
        raise ValueError("the data holds no named streets")
    lon_all = np.concatenate([np.asarray(c, dtype=float)[:, 0] for _, c in streets])
    lat_all = np.concatenate([np.asarray(c, dtype=float)[:, 1] for _, c in streets])
    proj = Projector([(float(lon_all.min()), float(lat_all.min())), (float(lon_all.max()), float(lat_all.max()))])
    x, y = proj.to_xy_many(lon_all, lat_all)
    x, y = np.asarray(x), np.asarray(y)
    origin = np.array([math.floor(x.min()), math.floor(y.min())], dtype=np.float64)
    xy = np.column_stack([x - origin[0], y - origin[1]]).astype(np.float32)
    names = sorted({n for n, _ in streets})
    name_id = {n: i for i, n in enumerate(names)}
    lengths = np.array([len(c) for _, c in streets], dtype=np.int64)
    starts = np.zeros(len(streets) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    line_name = np.array([name_id[n] for n, _ in streets], dtype=np.int32)
    all_places = _street_places(names, line_name, starts, xy, origin, proj) + places
    seen, uniq = set(), []
    for p in all_places:
        k = (p[0], p[1], round(p[2], 3), round(p[3], 3))
        if k not in seen:
            seen.add(k)
            uniq.append(p)
    out = pathlib.Path(out)
    tmp = out.with_name(out.name + ".part.npz")
    np.savez_compressed(
        tmp, crs=np.array(proj.crs.to_wkt()), origin=origin, xy=xy,
        line_start=starts.astype(np.int32), line_name=line_name, names=np.array(names),
        place_name=np.array([p[0] for p in uniq]), place_kind=np.array([p[1] for p in uniq]),
        place_lon=np.array([p[2] for p in uniq]), place_lat=np.array([p[3] for p in uniq]),
        attribution=np.array("© OpenStreetMap contributors (ODbL)"))
    tmp.replace(out)
    return {"streets": len(names), "street_lines": len(streets), "vertices": int(len(xy)),
            "places": len(uniq)}
