"""Where a crime scene is, as an analyst types it: latitude and longitude, British National Grid
easting and northing, an OS grid reference, or an address or street name.

``parse_place(text, places=None)`` reads, in this order:

* **latitude, longitude** (WGS84 degrees): ``51.5131, -0.0890`` or ``51.5131 -0.089``;
* **an OS grid reference**: two letters of the 100 km square and an even number of digits
  (2 to 10), with or without spaces: ``TQ 29970 81740``, ``TQ2997081740``, ``TQ 299 817`` (a
  shorter reference is the south-west corner of its square, as the OS defines it);
* **easting and northing** (EPSG:27700 metres): ``529970 181740``, ``E 529970 N 181740``,
  ``529970, 181740``;
* otherwise **an address or a street**, through ``monitorapp.places`` search of the shipped
  OpenStreetMap data (``Camden High Street``): the best hit.

It returns a ``ScenePlace(lat, lon, how, text)``; what cannot be read raises ``PlaceError``
with a sentence saying why. ``grid_reference(e, n)`` and ``bng(lat, lon)`` print the place back
for the report.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pyproj import Transformer

LETTERS = "ABCDEFGHJKLMNOPQRSTUVWXYZ"          # the OS grid's letters: no I
_NUM = r"[-+]?\d+(?:\.\d+)?"
_LATLON = re.compile(rf"\s*({_NUM})\s*(?:,|\s)\s*({_NUM})\s*")
_EN = re.compile(r"\s*(?:E\s*)?(\d{3,7}(?:\.\d+)?)\s*(?:,|\s)\s*(?:N\s*)?(\d{3,7}(?:\.\d+)?)\s*", re.I)
_GRIDREF = re.compile(r"\s*([A-Za-z]{2})\s*(\d+)\s*(\d*)\s*")
_to_bng = _to_wgs = None


class PlaceError(ValueError):
    """A place that cannot be read; the message says why."""


@dataclass(frozen=True)
class ScenePlace:
    lat: float
    lon: float
    how: str            # "lat/lon" | "grid reference" | "easting/northing" | "address"
    text: str           # what was found, as the report names it


def bng(lat: float, lon: float) -> tuple[float, float]:
    """British National Grid (easting, northing) of a WGS84 position."""
    global _to_bng
    if _to_bng is None:
        _to_bng = Transformer.from_crs(4326, 27700, always_xy=True)
    e, n = _to_bng.transform(lon, lat)
    return float(e), float(n)


def from_bng(e: float, n: float) -> tuple[float, float]:
    """(lat, lon) of a British National Grid easting and northing."""
    global _to_wgs
    if _to_wgs is None:
        _to_wgs = Transformer.from_crs(27700, 4326, always_xy=True)
    lon, lat = _to_wgs.transform(e, n)
    return float(lat), float(lon)


def in_grid(e: float, n: float) -> bool:
    return 0 <= e < 700_000 and 0 <= n < 1_300_000


def grid_reference(e: float, n: float, digits: int = 10) -> str:
    """The OS grid reference of an easting and northing: "TQ 29970 81740" (10 digits: 1 m)."""
    if not in_grid(e, n):
        raise PlaceError(f"easting {e:.0f}, northing {n:.0f} is outside the British National Grid")
    e, n = round(e), round(n)
    e100, n100 = int(e // 100_000), int(n // 100_000)
    l1 = (19 - n100) - (19 - n100) % 5 + (e100 + 10) // 5
    l2 = (19 - n100) * 5 % 25 + e100 % 5
    half = digits // 2
    ee = int(e % 100_000) // 10 ** (5 - half)
    nn = int(n % 100_000) // 10 ** (5 - half)
    return f"{LETTERS[l1]}{LETTERS[l2]} {ee:0{half}d} {nn:0{half}d}"


def parse_grid_reference(text: str) -> tuple[float, float]:
    """(easting, northing) of an OS grid reference; PlaceError if it is not one."""
    m = _GRIDREF.fullmatch(text)
    if not m:
        raise PlaceError(f"{text!r} is not a grid reference like TQ 29970 81740")
    sq, a, b = m.group(1).upper(), m.group(2), m.group(3)
    digits = a + b
    if not b and len(a) % 2 == 0:
        a, b = digits[:len(digits) // 2], digits[len(digits) // 2:]
    if len(a) != len(b) or not 1 <= len(a) <= 5:
        raise PlaceError(f"{text!r}: a grid reference has two letters and 2 to 10 digits, "
                         "half for the easting and half for the northing")
    if any(ch not in LETTERS for ch in sq):
        raise PlaceError(f"{text!r}: {sq} is not a 100 km square of the British National Grid")
    l1, l2 = LETTERS.index(sq[0]), LETTERS.index(sq[1])
    e100 = ((l1 - 2) % 5) * 5 + l2 % 5
    n100 = (19 - (l1 // 5) * 5) - l2 // 5
    if not (0 <= e100 < 7 and 0 <= n100 < 13):
        raise PlaceError(f"{text!r}: {sq} is not a 100 km square of the British National Grid")
    k = 10 ** (5 - len(a))
    return float(e100 * 100_000 + int(a) * k), float(n100 * 100_000 + int(b) * k)


def parse_place(text: str, places=None) -> ScenePlace:
    """The place an analyst typed (see the module docstring)."""
    s = (text or "").strip()
    if not s:
        raise PlaceError("give the place: latitude and longitude, a grid reference, "
                         "easting and northing, or an address")
    m = _LATLON.fullmatch(s)
    if m and abs(float(m.group(1))) <= 90 and abs(float(m.group(2))) <= 180:
        lat, lon = float(m.group(1)), float(m.group(2))
        return ScenePlace(lat, lon, "lat/lon", f"{lat:.6f}, {lon:.6f}")
    if _GRIDREF.fullmatch(s) and not s[:2].isdigit():
        e, n = parse_grid_reference(s)
        lat, lon = from_bng(e, n)
        return ScenePlace(lat, lon, "grid reference", grid_reference(e, n))
    m = _EN.fullmatch(s)
    if m:
        e, n = float(m.group(1)), float(m.group(2))
        if not in_grid(e, n):
            raise PlaceError(f"easting {e:.0f}, northing {n:.0f} is outside the British National Grid")
        lat, lon = from_bng(e, n)
        return ScenePlace(lat, lon, "easting/northing", f"E {e:.0f}, N {n:.0f}")
    if places is None:
        raise PlaceError(f"{s!r} is not a position, and no place names are installed to look it up")
    try:
        hits = places.search(s, limit=1)
    except Exception as e:          # noqa: BLE001 - a missing index is a sentence, not a traceback
        raise PlaceError(f"place names cannot be searched: {e}") from None
    if not hits:
        raise PlaceError(f"no street or place called {s!r} was found")
    p = hits[0]
    if not (math.isfinite(p.lat) and math.isfinite(p.lon)):
        raise PlaceError(f"{p} has no position")
    return ScenePlace(float(p.lat), float(p.lon), "address", str(p))
