"""Street and borough names for what the decider publishes (issue 15, README "Basemaps,
boroughs, search and addresses").

A console of the centre shows the alert queue's *Location*, the map label of a tag in alarm and
the acknowledgement dialog's "Last fix: Kentish Town Road, Camden" from what the decider
publishes, so the decider names the place once for every console: each alert record and each
position message carries ``address``::

    {"street": "Kentish Town Road", "borough": "Camden", "distance_m": 12.3,
     "text": "Kentish Town Road, Camden"}

``text`` is what an operator reads out (``Address.describe()``: "near …, Camden (80 m)" when
the nearest named street is more than a few metres off; the borough alone when none is within
150 m). Why here rather than at each console: every console shows the same words for the same
alert (the words an operator reads out to the police should not depend on the workstation),
and a console of the centre runs nothing per fix beyond drawing it.

Cost: ``Places.addresses`` is vectorised (about 17 µs a point); positions go out at most once
a second per tag, and a tag that has moved less than ``MOVED_M`` since its last lookup keeps
its address, so a tag at home costs nothing. A lookup that fails is said once in the log and
the messages go out without ``address``; nothing is held back for it.
"""
from __future__ import annotations

import logging
import math

log = logging.getLogger("monitorapp.service.placenames")
MOVED_M = 25.0              # a tag that moved less keeps its last address
M_PER_DEG = 111_320.0


def address_record(a) -> dict | None:
    """The published form of an ``Address``; None when it names nothing."""
    if a is None or not (a.street or a.borough):
        return None
    return {"street": a.street, "borough": a.borough,
            "distance_m": None if a.distance_m is None else round(float(a.distance_m), 1),
            "text": a.describe()}


def alert_lonlat(rec: dict) -> tuple[float, float] | None:
    """(lon, lat) an alert record is about: the last of its evidence's fixes, its fix, the
    tag's last fix or the closest fix; None for alerts with no position (system faults)."""
    ev = rec.get("evidence") if isinstance(rec.get("evidence"), dict) else {}
    fixes = ev.get("fixes")
    candidates = [fixes[-1]] if isinstance(fixes, list) and fixes else []
    candidates += [ev.get("fix"), ev.get("last_fix"), ev.get("closest_fix")]
    for c in candidates:
        if isinstance(c, dict):
            try:
                lon, lat = float(c["lon"]), float(c["lat"])
            except (KeyError, TypeError, ValueError):
                continue
            if math.isfinite(lon) and math.isfinite(lat):
                return lon, lat
    return None


class PlaceNamer:
    """Adds ``address`` to alert records and position messages; see the module docstring.
    ``places`` is a ``monitorapp.places.Places`` (None: nothing is named). Used by one thread
    (the monitor's main thread)."""

    def __init__(self, places, moved_m: float = MOVED_M):
        self.places, self.moved_m = places, moved_m
        self._last: dict[str, tuple[float, float, dict | None]] = {}    # device -> lon, lat, address
        self._error: str | None = None
        self.lookups = 0

    def _lookup(self, lons: list[float], lats: list[float]) -> list | None:
        if self.places is None or not lons:
            return None
        try:
            found = self.places.addresses(lons, lats)
        except Exception as e:        # noqa: BLE001 - the messages go out without addresses
            text = f"{e.__class__.__name__}: {e}"[:300]
            if text != self._error:
                self._error = text
                log.warning("addresses not available", extra={"fields": {"error": text}})
            return None
        self._error = None
        self.lookups += len(lons)
        return found

    def name_alert(self, rec: dict) -> None:
        """``rec["address"]``: where the alert's evidence puts the tag (absent when nowhere)."""
        at = alert_lonlat(rec)
        found = self._lookup([at[0]], [at[1]]) if at is not None else None
        a = address_record(found[0]) if found else None
        if a is not None:
            rec["address"] = a

    def name_positions(self, positions: list[dict]) -> None:
        """``p["address"]`` for each position message (``device``, ``lat``, ``lon``), looked
        up in one call for the tags that moved ``moved_m`` or more since their last lookup."""
        if self.places is None:
            return
        last, moved = self._last, []
        for p in positions:
            held = last.get(p["device"])
            if held is not None:
                dx = (p["lon"] - held[0]) * M_PER_DEG * math.cos(math.radians(p["lat"]))
                dy = (p["lat"] - held[1]) * M_PER_DEG
                if dx * dx + dy * dy < self.moved_m * self.moved_m:
                    if held[2] is not None:
                        p["address"] = held[2]
                    continue
            moved.append(p)
        found = self._lookup([p["lon"] for p in moved], [p["lat"] for p in moved])
        if found is None:
            return
        for p, a in zip(moved, found):
            rec = address_record(a)
            last[p["device"]] = (p["lon"], p["lat"], rec)
            if rec is not None:
                p["address"] = rec


def load_places(basemap: str | None):
    """The ``Places`` of ``--places`` (a basemap file whose side files name streets and
    boroughs; default the shipped London one), or None for ``off``."""
    from monitorapp.places import SHIPPED_BASEMAP, Places
    if basemap == "off":
        return None
    return Places.for_basemap(basemap or SHIPPED_BASEMAP)
