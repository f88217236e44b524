"""Places: which borough and street a position is on, place search, and the basemap pipeline.

Offline, from OpenStreetMap data (© OpenStreetMap contributors, ODbL) built by our own pipeline
(``monitorapp basemap build``, ``monitorapp.places.build``) into three files side by side; the
shipped ones are ``resources/basemap/london.mbtiles`` (the vector basemap),
``london.boroughs.geojson`` (the real boundaries of the 33 London boroughs) and
``london.streets.npz`` (the streets index)::

    places = Places.for_basemap("resources/basemap/london.mbtiles")   # or Places.shipped()
    places.borough_at(-0.1426, 51.5390)           # "Camden"
    places.address(-0.1426, 51.5390)              # Address("Camden High Street", "Camden", 3.1)
    str(places.address(-0.1426, 51.5390))         # "Camden High Street, Camden"
    places.search("camden high st")[0]            # Place("Camden High Street", "street", lon, lat, "Camden")

Files are read lazily, on first use, once (thread-safe); a missing or damaged streets index
makes ``address`` give the borough alone (and ``search`` boroughs only), never an exception, so a
console without the file still names boroughs. The module functions ``borough_at``,
``reverse_geocode`` and ``search_places`` use the shipped files.

Qt-free. It may import only ``monitorapp.places``, ``monitorapp.engine.geo`` (the projection) and
``monitorapp.feed.timeutil``; nothing of the engine's state, the store or the UI.
"""
from __future__ import annotations

import logging
import pathlib
import threading

from monitorapp.places.boroughs import PILOT, BoroughError, BoroughIndex
from monitorapp.places.search import Place, PlaceSearch, fold
from monitorapp.places.streets import MAX_M, Address, StreetIndex, StreetIndexError

log = logging.getLogger(__name__)

BASEMAP_DIR = pathlib.Path(__file__).resolve().parents[2] / "resources" / "basemap"
SHIPPED_BASEMAP = BASEMAP_DIR / "london.mbtiles"

__all__ = ["Address", "Place", "Places", "PILOT", "BoroughError", "StreetIndexError",
           "SHIPPED_BASEMAP", "borough_at", "reverse_geocode", "search_places", "fold", "MAX_M"]


class Places:
    """Borough lookup, reverse geocoding and search over one basemap's side files."""

    def __init__(self, boroughs_path: str | pathlib.Path, streets_path: str | pathlib.Path | None):
        self.boroughs_path = pathlib.Path(boroughs_path)
        self.streets_path = pathlib.Path(streets_path) if streets_path else None
        self._lock = threading.RLock()     # the search index loads the others
        self._boroughs: BoroughIndex | None = None
        self._streets: StreetIndex | None | bool = None     # False: tried and failed
        self._search: PlaceSearch | None = None

    @classmethod
    def for_basemap(cls, basemap: str | pathlib.Path) -> "Places":
        from monitorapp.places.build import sidecars
        _, b, s = sidecars(basemap)
        return cls(b, s)

    @classmethod
    def shipped(cls) -> "Places":
        return cls.for_basemap(SHIPPED_BASEMAP)

    # -- the files, loaded once -------------------------------------------------------------
    @property
    def boroughs(self) -> BoroughIndex:
        if self._boroughs is None:
            with self._lock:
                if self._boroughs is None:
                    self._boroughs = BoroughIndex.load(self.boroughs_path)
        return self._boroughs

    @property
    def streets(self) -> StreetIndex | None:
        if self._streets is None:
            with self._lock:
                if self._streets is None:
                    if self.streets_path is None or not self.streets_path.is_file():
                        log.warning("no streets index at %s: addresses name the borough only", self.streets_path)
                        self._streets = False
                    else:
                        try:
                            self._streets = StreetIndex.load(self.streets_path)
                        except StreetIndexError as e:
                            log.error("%s: addresses name the borough only", e)
                            self._streets = False
        return self._streets or None

    # -- lookups ------------------------------------------------------------------------------
    def borough_at(self, lon: float, lat: float) -> str | None:
        return self.boroughs.borough_at(lon, lat)

    def address(self, lon: float, lat: float, max_m: float = MAX_M) -> Address:
        """The nearest named street within max_m (else None) and the borough of a position."""
        street = self.streets
        hit = street.nearest(lon, lat, max_m) if street is not None else None
        return Address(hit[0] if hit else None, self.borough_at(lon, lat), hit[1] if hit else None)

    def addresses(self, lons, lats, max_m: float = MAX_M) -> list[Address]:
        """``address`` for many positions (vectorised: for reports and tables)."""
        street = self.streets
        hits = street.nearest_many(lons, lats, max_m) if street is not None else [None] * len(lons)
        boroughs = self.boroughs.boroughs_at(lons, lats)
        return [Address(h[0] if h else None, b, h[1] if h else None) for h, b in zip(hits, boroughs)]

    def search(self, text: str, limit: int = 10) -> list[Place]:
        """Streets and places whose name matches text, best first (see ``places.search``)."""
        if self._search is None:
            with self._lock:
                if self._search is None:
                    self._search = self._build_search()
        return self._search.search(text, limit)

    def _build_search(self) -> PlaceSearch:
        places = [Place(f["properties"]["name"], "borough", *f["properties"]["label"], f["properties"]["name"])
                  for f in self.boroughs.features]
        street = self.streets
        if street is not None and street.places:
            names, kinds, lons, lats = zip(*street.places)
            for name, kind, lon, lat, b in zip(names, kinds, lons, lats,
                                               self.boroughs.boroughs_at(list(lons), list(lats))):
                places.append(Place(name, kind, lon, lat, b))
        return PlaceSearch(places)


_shipped: Places | None = None
_shipped_lock = threading.Lock()


def _default() -> Places:
    global _shipped
    if _shipped is None:
        with _shipped_lock:
            if _shipped is None:
                _shipped = Places.shipped()
    return _shipped


def borough_at(lon: float, lat: float) -> str | None:
    """The London borough at a position (the shipped boundaries), or None outside London."""
    return _default().borough_at(lon, lat)


def reverse_geocode(lon: float, lat: float, max_m: float = MAX_M) -> Address:
    """The nearest named street and the borough of a position (the shipped data)."""
    return _default().address(lon, lat, max_m)


def search_places(text: str, limit: int = 10) -> list[Place]:
    """Place search over the shipped data."""
    return _default().search(text, limit)
