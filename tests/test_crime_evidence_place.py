"""A crime scene's place as an analyst types it (monitorapp.crime.place): latitude and
longitude, an OS grid reference (checked against known trig points), easting and northing, or a
street of the shipped OpenStreetMap data; and what cannot be read is a sentence."""
from __future__ import annotations

import pytest

from monitorapp.crime.place import (PlaceError, bng, from_bng, grid_reference, parse_grid_reference,
                                    parse_place)
from monitorapp.places import Places


@pytest.mark.parametrize("text, e, n", [
    ("TQ 29970 81740", 529970, 181740),        # central London
    ("TQ2997081740", 529970, 181740),
    ("tq 299 817", 529900, 181700),            # 100 m: the square's south-west corner
    ("NN 16600 71200", 216600, 771200),        # Ben Nevis
    ("SV 00000 00000", 0, 0),                  # the grid's false origin
    ("HU 40000 40000", 440000, 1140000),       # Shetland
])
def test_grid_references(text, e, n):
    assert parse_grid_reference(text) == (e, n)
    digits = sum(ch.isdigit() for ch in text)
    assert parse_grid_reference(grid_reference(e, n, digits)) == (e, n)


def test_each_way_of_typing_a_place_lands_on_the_same_spot():
    lat, lon = from_bng(529970, 181740)
    for text in ("TQ 29970 81740", "529970 181740", "E 529970 N 181740", "529970, 181740",
                 f"{lat:.7f}, {lon:.7f}", f"{lat:.7f} {lon:.7f}"):
        p = parse_place(text)
        e, n = bng(p.lat, p.lon)
        assert abs(e - 529970) < 0.05 and abs(n - 181740) < 0.05, text
    assert parse_place("TQ 29970 81740").how == "grid reference"
    assert parse_place("529970 181740").text == "E 529970, N 181740"
    assert abs(lat - 51.5196) < 1e-3 and abs(lon + 0.1281) < 1e-3      # Covent Garden, as on the OS map


def test_a_street_is_found_in_the_shipped_places():
    places = Places.shipped()
    p = parse_place("camden high st", places)
    assert p.how == "address" and p.text == "Camden High Street, Camden"
    assert places.address(p.lon, p.lat).street == "Camden High Street"


@pytest.mark.parametrize("text, words", [
    ("", "give the place"),
    ("ZZ 123 456", "not a 100 km square"),
    ("TQ 123 4567", "half for the easting"),
    ("800000 100000", "outside the British National Grid"),
    ("no such road anywhere", "no street or place"),
])
def test_what_cannot_be_read_says_why(text, words):
    with pytest.raises(PlaceError, match=words):
        parse_place(text, Places.shipped())
