"""Reverse geocoding: the nearest named street to a position, and its borough.

``StreetIndex.load(path)`` reads the streets index (``OUT.streets.npz``, written by
``monitorapp.places.index``) and builds a shapely 2 ``STRtree`` over the streets cut into pieces
of at most ``PIECE`` segments, in metres (EPSG:27700 for London). ``nearest(lon, lat)`` is one
pyproj transform and one ``query_nearest`` with ``max_distance``: a street further than
``MAX_M`` (150 m: a tag in a park or on the railway is not "on" a street) gives ``None``.
``nearest_many`` does the same for arrays of positions in one vectorised call.

``Address(street, borough, distance_m)`` is what the program shows: ``str(address)`` reads
"Kentish Town Road, Camden" (just the borough when no street is near, "" outside London);
``describe()`` adds "near … (80 m)" when the street is more than ``ON_M`` away, which is what an
operator reads out to the police.

Imports only ``monitorapp.places``.
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import CRS, Transformer

MAX_M = 150.0
ON_M = 40.0
PIECE = 6


class StreetIndexError(ValueError):
    """The streets index file cannot be read; the message says why."""


@dataclass(frozen=True)
class Address:
    street: str | None
    borough: str | None
    distance_m: float | None = None

    def __str__(self) -> str:
        return ", ".join(p for p in (self.street, self.borough) if p)

    def describe(self) -> str:
        """"Kentish Town Road, Camden", or "near Kentish Town Road, Camden (80 m)" when the
        street is more than ON_M away; the borough alone without a street near."""
        text = str(self)
        if self.street and self.distance_m is not None and self.distance_m > ON_M:
            return f"near {text} ({self.distance_m:.0f} m)"
        return text


class StreetIndex:
    def __init__(self, data):
        try:
            self.crs = CRS.from_wkt(str(data["crs"]))
            self.origin = np.asarray(data["origin"], dtype=float)
            xy = np.asarray(data["xy"], dtype=np.float64)
            starts = np.asarray(data["line_start"], dtype=np.int64)
            self.line_name = np.asarray(data["line_name"], dtype=np.int64)
            self.names = [str(n) for n in data["names"]]
            self.places = list(zip((str(n) for n in data["place_name"]), (str(k) for k in data["place_kind"]),
                                   np.asarray(data["place_lon"], dtype=float).tolist(),
                                   np.asarray(data["place_lat"], dtype=float).tolist()))
        except (KeyError, ValueError, TypeError) as e:
            raise StreetIndexError(f"not a streets index: {e}") from e
        self._fwd = Transformer.from_crs(4326, self.crs, always_xy=True)
        self._inv = None
        # pieces of at most PIECE segments: tight boxes for the tree, few geometries
        piece_start, piece_line = [], []
        for li in range(len(starts) - 1):
            s, e = int(starts[li]), int(starts[li + 1])
            for a in range(s, e - 1, PIECE):
                piece_start.append(a)
                piece_line.append(li)
        ps = np.asarray(piece_start, dtype=np.int64)
        line_end = starts[1:][np.asarray(piece_line, dtype=np.int64)]
        pe = np.minimum(ps + PIECE + 1, line_end)
        counts = pe - ps
        idx = np.repeat(ps - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        geoms = shapely.linestrings(xy[idx], indices=np.repeat(np.arange(len(ps)), counts))
        self.piece_name = self.line_name[np.asarray(piece_line, dtype=np.int64)]
        self.tree = shapely.STRtree(geoms)
        self.pieces = len(ps)

    @classmethod
    def load(cls, path: str | pathlib.Path) -> "StreetIndex":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls({k: data[k] for k in data.files})
        except (OSError, ValueError) as e:
            raise StreetIndexError(f"streets index {path}: {e}") from e

    def to_xy(self, lon, lat):
        x, y = self._fwd.transform(lon, lat)
        return np.asarray(x) - self.origin[0], np.asarray(y) - self.origin[1]

    def to_lonlat(self, x, y):
        if self._inv is None:
            self._inv = Transformer.from_crs(self.crs, 4326, always_xy=True)
        return self._inv.transform(np.asarray(x) + self.origin[0], np.asarray(y) + self.origin[1])

    def nearest(self, lon: float, lat: float, max_m: float = MAX_M) -> tuple[str, float] | None:
        """(street name, distance in metres) of the nearest named street within max_m."""
        x, y = self._fwd.transform(lon, lat)
        hit, dist = self.tree.query_nearest(shapely.Point(x - self.origin[0], y - self.origin[1]),
                                            max_distance=max_m, return_distance=True)
        if len(hit) == 0:
            return None
        return self.names[self.piece_name[hit[0]]], float(dist[0])

    def nearest_many(self, lons, lats, max_m: float = MAX_M) -> list[tuple[str, float] | None]:
        """``nearest`` for arrays of positions, vectorised."""
        x, y = self.to_xy(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        out: list[tuple[str, float] | None] = [None] * len(x)
        pts = shapely.points(np.atleast_1d(x), np.atleast_1d(y))
        (pi, gi), dist = self.tree.query_nearest(pts, max_distance=max_m, return_distance=True)
        for p, g, d in zip(pi.tolist(), gi.tolist(), dist.tolist()):
            if out[p] is None:
                out[p] = (self.names[self.piece_name[g]], d)
        return out
