"""Boroughs, addresses and place search from the shipped data (resources/basemap/), as the
console uses them: real positions taken from the OSM data, the real borough boundaries."""
from __future__ import annotations

import json

import pytest

from monitorapp.places import PILOT, SHIPPED_BASEMAP, Address, Places, borough_at, reverse_geocode, search_places
from monitorapp.places.build import sidecars

# Middles of segments of the streets, read from the OSM data of Camden (resources/basemap/README.md)
ON_STREET = {
    "Camden High Street": (-0.140243, 51.536351),
    "Kentish Town Road": (-0.141638, 51.547028),
    "Euston Road": (-0.134785, 51.526004),
    "Parkway": (-0.144492, 51.538099),
}
# A point well inside each pilot borough: a station, a town centre or a high street
IN_BOROUGH = {
    "Camden": (-0.1426, 51.5392),            # Camden Town station
    "Enfield": (-0.0810, 51.6520),           # Enfield Town
    "Haringey": (-0.1060, 51.5975),          # Wood Green
    "Islington": (-0.1030, 51.5380),         # Upper Street
    "Hackney": (-0.0553, 51.5450),           # Mare Street
    "Newham": (-0.0035, 51.5416),            # Stratford
    "Tower Hamlets": (-0.0600, 51.5196),     # Whitechapel
    "Waltham Forest": (-0.0200, 51.5830),    # Walthamstow
}


@pytest.fixture(scope="module")
def places():
    return Places.shipped()


def test_the_shipped_boundaries_are_all_33_london_boroughs():
    _, boroughs, _ = sidecars(SHIPPED_BASEMAP)
    fc = json.loads(boroughs.read_text(encoding="utf-8"))
    gss = sorted(f["properties"]["gss"] for f in fc["features"])
    assert gss == [f"E090000{n:02d}" for n in range(1, 34)]
    names = {f["properties"]["name"] for f in fc["features"]}
    assert set(PILOT) <= names and {"City of London", "Westminster"} <= names
    assert "OpenStreetMap contributors" in fc["attribution"]


@pytest.mark.parametrize("borough", PILOT)
def test_each_pilot_borough_is_named_from_a_position_in_it(places, borough):
    assert places.borough_at(*IN_BOROUGH[borough]) == borough


def test_positions_outside_london_and_across_a_boundary(places):
    assert places.borough_at(-0.1372, 50.8225) is None              # Brighton
    assert places.borough_at(-0.0920, 51.5155) == "City of London"  # Guildhall
    assert places.borough_at(-0.1357, 51.4995) == "Westminster"     # Victoria Street
    # Camden Road crosses from Camden into Islington at about 51.5472, -0.1243 (Camden Road station
    # side vs Holloway): either side of the line names the right one
    assert places.borough_at(-0.1305, 51.5435) == "Camden"
    assert places.borough_at(-0.1175, 51.5500) == "Islington"
    # many at once, as a report does
    assert places.boroughs.boroughs_at([p[0] for p in IN_BOROUGH.values()],
                                       [p[1] for p in IN_BOROUGH.values()]) == list(IN_BOROUGH)


@pytest.mark.parametrize("street", ON_STREET)
def test_a_position_on_a_camden_street_reads_as_that_street_and_camden(places, street):
    a = places.address(*ON_STREET[street])
    assert (a.street, a.borough) == (street, "Camden")
    assert a.distance_m < 5
    assert str(a) == f"{street}, Camden"


def test_a_fix_beside_the_street_names_it_and_says_how_near(places):
    lon, lat = ON_STREET["Kentish Town Road"]
    a = places.address(lon + 0.0003, lat)                # about 20 m east of the carriageway
    assert a.street == "Kentish Town Road" and 10 < a.distance_m < 30
    assert a.describe() == "Kentish Town Road, Camden"
    far = Address("Kentish Town Road", "Camden", 80.4)
    assert far.describe() == "near Kentish Town Road, Camden (80 m)"


def test_no_street_near_gives_the_borough_alone(places):
    # Stratford: Newham has boundaries but no street data in the shipped extract
    a = places.address(*IN_BOROUGH["Newham"])
    assert a == Address(None, "Newham", None) and str(a) == "Newham"
    # the middle of Hampstead Heath's ponds area is more than 150 m from any named street or path
    assert places.address(-0.1530, 51.5620, max_m=10).street is None
    assert str(places.address(-0.1372, 50.8225)) == ""


def test_vectorised_addresses_match_one_at_a_time(places):
    pts = list(ON_STREET.values()) + [IN_BOROUGH["Newham"]]
    many = places.addresses([p[0] for p in pts], [p[1] for p in pts])
    assert many == [places.address(*p) for p in pts]


def test_search_finds_camden_high_street_and_pans_to_it(places):
    for text in ("Camden High Street", "camden high street", "CAMDEN HIGH ST", "camden high", "high street camden",
                 "Cämden High Street"):
        hit = places.search(text)[0]
        assert (hit.name, hit.kind, hit.borough) == ("Camden High Street", "street", "Camden"), text
    hit = places.search("Camden High Street")[0]
    assert places.address(hit.lon, hit.lat).street == "Camden High Street"   # the pan lands on it
    assert str(hit) == "Camden High Street, Camden"


def test_search_ranks_whole_names_first_and_reads_abbreviations(places):
    assert [(p.name, p.kind) for p in places.search("camden", 2)] == [("Camden", "borough"),
                                                                      ("Camden Mews", "street")]
    assert places.search("kentish town rd")[0].name == "Kentish Town Road"
    assert places.search("st pancras")[0].name == "St Pancras"
    assert {p.kind for p in places.search("euston", 10)} >= {"station", "street"}
    assert places.search("x") == [] and places.search("zzqqxx") == []


def test_a_missing_streets_index_still_names_the_borough(tmp_path):
    _, boroughs, _ = sidecars(SHIPPED_BASEMAP)
    p = Places(boroughs, tmp_path / "none.streets.npz")
    assert p.address(*ON_STREET["Parkway"]) == Address(None, "Camden", None)
    assert [x.name for x in p.search("camden")] == ["Camden"]
    (tmp_path / "bad.streets.npz").write_bytes(b"not an index")
    assert Places(boroughs, tmp_path / "bad.streets.npz").address(*ON_STREET["Parkway"]).borough == "Camden"


def test_the_module_functions_use_the_shipped_data():
    assert borough_at(*IN_BOROUGH["Hackney"]) == "Hackney"
    assert str(reverse_geocode(*ON_STREET["Euston Road"])) == "Euston Road, Camden"
    assert search_places("Parkway")[0].name == "Parkway"


def test_the_demo_puts_every_home_inside_its_borough_by_the_real_boundary(places):
    from monitorapp.sim.demo import demo_caseload
    cl = demo_caseload(200, seed=3)
    zones = {f["id"]: f for f in cl["zones"]["features"]}
    homes = [(o["borough"], zones[f"Z-HOME-{o['id'][4:]}"]["geometry"]["coordinates"])
             for o in cl["offenders"] if f"Z-HOME-{o['id'][4:]}" in zones]
    assert len(homes) > 150
    assert [b for b, (lon, lat) in homes if places.borough_at(lon, lat) != b] == []
