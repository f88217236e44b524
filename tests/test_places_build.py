"""The basemap pipeline, run as a centre runs it: ``monitorapp basemap build`` on the small
committed cut of Camden (tests/data/osm/), then read back what the page and the lookups use.

tilemaker and osmium-tool come from Debian (``make basemap-tools``, a prerequisite of ``make
test``); without them the build test is skipped on a developer's machine and fails under CI.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from monitorapp.places import Places
from monitorapp.places.mvt import MBTilesInfo, tile_of
from tests.conftest import ROOT

DATA = ROOT / "tests" / "data" / "osm"
HAVE_TOOLS = bool(shutil.which("tilemaker") and shutil.which("osmium"))
needs_tools = pytest.mark.skipif(not HAVE_TOOLS and os.environ.get("CI") != "true",
                                 reason="tilemaker/osmium-tool not installed (make basemap-tools)")
CAMDEN_HIGH_STREET = (-0.140243, 51.536351)      # the middle of a segment of it, from the OSM data


def basemap(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "monitorapp", "basemap", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@needs_tools
def test_the_basemap_builds_from_a_camden_extract_with_streets_buildings_and_the_boundary(tmp_path):
    out = tmp_path / "camden.mbtiles"
    r = basemap("build", "--osm", DATA / "camden-town.osm.pbf", "--boundaries", DATA / "camden-boundary.osm.pbf",
                "--area", "camden", "--out", out)
    assert r.returncode == 0, r.stderr
    # progress a person can follow: the steps, and the tile step counting up to 100 %
    assert "[1/6] reading 2 extract(s)" in r.stderr
    assert "[4/6] vector tiles (tilemaker)" in r.stderr and "100%" in r.stderr
    assert "cutting the data to camden" in r.stderr
    figures = json.loads(r.stdout)
    assert figures["boroughs"] == 1 and figures["streets"] > 100

    with MBTilesInfo(out) as m:
        meta = m.metadata
        assert meta["format"] == "pbf"
        assert (meta["minzoom"], meta["maxzoom"]) == ("10", "15")
        assert "OpenStreetMap contributors" in meta["attribution"]
        assert {layer["id"] for layer in meta["json"]["vector_layers"]} == {
            "water", "parks", "buildings", "rail", "roads", "boundaries", "places"}
        assert set(m.tiles_per_zoom()) == set(range(10, 16))
        street = m.layers(15, *tile_of(*CAMDEN_HIGH_STREET, 15))
        names = {f.get("name") for f in street["roads"]}
        assert "Camden High Street" in names and "Parkway" in names
        assert {f["kind"] for f in street["roads"] if f.get("name") == "Camden High Street"} <= {
            "trunk", "primary", "secondary", "tertiary", "minor"}
        assert len(street["buildings"]) > 100
        # the borough's edge and label at city zoom, streets unnamed there
        city = m.layers(11, *tile_of(*CAMDEN_HIGH_STREET, 11))
        assert city["boundaries"] and {"kind": "borough", "name": "Camden"} in city["places"]
        assert not any("name" in f for f in city["roads"] if f["kind"] == "minor")

    places = Places.for_basemap(out)
    assert str(places.address(*CAMDEN_HIGH_STREET)) == "Camden High Street, Camden"
    assert places.search("camden high st")[0].name == "Camden High Street"
    boroughs = json.loads((tmp_path / "camden.boroughs.geojson").read_text())
    assert [f["properties"]["gss"] for f in boroughs["features"]] == ["E09000007"]


def test_a_file_that_is_not_osm_data_is_one_clear_line_and_exit_2(tmp_path):
    bad = tmp_path / "notes.osm.pbf"
    bad.write_text("these are a trainer's notes, not map data\n")
    r = basemap("build", "--osm", bad, "--out", tmp_path / "x.mbtiles", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"monitorapp basemap: {bad}: not OpenStreetMap data "
                                             "(expected an .osm.pbf or .osm file)"]
    assert not (tmp_path / "x.mbtiles").exists()


def test_a_missing_extract_and_a_missing_option_say_so(tmp_path):
    r = basemap("build", "--osm", tmp_path / "london.osm.pbf", "--out", tmp_path / "x.mbtiles", timeout=60)
    assert r.returncode == 2 and r.stderr.strip() == f"monitorapp basemap: {tmp_path / 'london.osm.pbf'}: no such file"
    r = basemap("build", "--osm", DATA / "camden-town.osm.pbf", timeout=60)
    assert r.returncode == 2 and "--out" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@needs_tools
def test_an_unknown_borough_in_area_names_the_known_ones(tmp_path):
    r = basemap("build", "--osm", DATA / "camden-town.osm.pbf", "--boundaries", DATA / "camden-boundary.osm.pbf",
                "--area", "Camden,Narnia", "--out", tmp_path / "x.mbtiles")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == ("monitorapp basemap: --area: unknown borough(s) Narnia "
                                                 "(known: Camden)")


def test_basemap_is_a_command_in_the_help():
    r = subprocess.run([sys.executable, "-m", "monitorapp", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert "basemap" in r.stdout
