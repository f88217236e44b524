"""The offline vector basemap of London on the real page: streets drawn from the shipped
MBTiles (a pixel check along a known street), nothing leaving the machine, the real borough
boundaries over every basemap, and the search box driven with real key events."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from monitorapp.places import PILOT, SHIPPED_BASEMAP, Places
from monitorapp.places.mvt import decode_tile, tile_of
from tests.fixtures_map import map_log_ignore, page_state, run_js, wait_state
from ui.map.basemap import MBTilesArchive, parse_basemap

pytestmark = map_log_ignore

STREET = "Camden High Street"
LOCAL = ("emapp", "emtiles", "qrc", "data", "blob")


@pytest.fixture(scope="module")
def places():
    return Places.shipped()


def street_lines(name: str) -> list[np.ndarray]:
    """The polylines (lon, lat) of a named street from the shipped streets index."""
    index = Places.shipped().streets
    with np.load(SHIPPED_BASEMAP.with_suffix("").with_suffix(".streets.npz")) as data:
        xy, starts, line_name = data["xy"], data["line_start"], data["line_name"]
    want = index.names.index(name)
    lines = []
    for li in np.flatnonzero(line_name == want):
        seg = xy[starts[li]:starts[li + 1]]
        lon, lat = index.to_lonlat(seg[:, 0], seg[:, 1])
        lines.append(np.column_stack([lon, lat]))
    return lines


def to_pixels(qtbot, view, lonlats) -> list[tuple[float, float]]:
    pts = [[float(lat), float(lon)] for lon, lat in lonlats]
    return [tuple(p) for p in run_js(qtbot, view, f"{json.dumps(pts)}.map(function (q) {{ "
                                                  "const p = EM.map.latLngToContainerPoint(q); return [p.x, p.y]; })")]


def densify(pixels: list[tuple[float, float]], step: float = 4.0) -> list[tuple[float, float]]:
    out = []
    for (x0, y0), (x1, y1) in zip(pixels, pixels[1:]):
        n = max(1, int(np.hypot(x1 - x0, y1 - y0) / step))
        out.extend((x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(n))
    return out


def inside(view, x, y, margin=30) -> bool:
    w, h = view.view.width(), view.view.height()
    # away from the edges, the zoom/zone controls (left) and the search box (top right)
    return margin + 60 < x < w - margin and margin + 60 < y < h - margin


def wait_tiles(qtbot, view):
    """Until every vector tile in view is drawn."""
    script = ("(function () { const c = document.querySelectorAll('.em-vector canvas');"
              " return c.length > 0 && Array.from(c).every(t => t.classList.contains('leaflet-tile-loaded')); })()")
    qtbot.waitUntil(lambda: run_js(qtbot, view, script) is True, timeout=15_000)
    qtbot.wait(300)     # the labeller may repaint a tile once its neighbours arrived


def white(image, x, y, floor=250) -> bool:
    c = image.pixelColor(int(round(x)), int(round(y)))
    return min(c.red(), c.green(), c.blue()) >= floor


def test_vector_tiles_are_served_inflated():
    basemap = parse_basemap(None)
    assert basemap.kind == "vector" and basemap.path == SHIPPED_BASEMAP.resolve()
    assert (basemap.min_zoom, basemap.max_zoom) == (10, 15) and "OpenStreetMap" in basemap.attribution
    west, south, east, north = basemap.bounds
    assert west < -0.14 < east and south < 51.54 < north
    archive = MBTilesArchive(SHIPPED_BASEMAP)
    raw = archive._db.execute("SELECT tile_data FROM tiles WHERE zoom_level = 15 LIMIT 1").fetchone()[0]  # noqa: SLF001
    assert bytes(raw[:2]) == b"\x1f\x8b"             # stored gzipped, as tilemaker writes it
    x, y = tile_of(-0.1426, 51.5390, 15)            # Camden Town
    tile = archive.tile(15, x, y)
    assert tile and tile[:1] == b"\x1a"              # a protobuf layer, inflated for the page
    names = {f.get("name") for f in decode_tile(tile)["roads"]}
    assert STREET in names
    assert archive.tile(15, 0, 0) is None            # mid-Pacific: none (the page gets an empty tile)
    assert archive.mime == b"application/x-protobuf"
    archive.close()


def test_streets_are_drawn_offline_and_search_pans_to_them(map_view, qtbot, places):
    map_view.set_basemap(None)                   # what a console with no basemap setting shows
    wait_state(qtbot, map_view, lambda s: s["basemap"] == "vector")
    map_view.requests.requested.clear()
    target = map_view.view.focusProxy() or map_view.view
    # The operator clicks the map, presses Ctrl+F, types the street and presses Enter.
    qtbot.mouseClick(target, Qt.MouseButton.LeftButton, pos=QPoint(400, 400))
    QTest.keyClick(target, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    wait_state(qtbot, map_view, lambda s: s["search"]["focused"])
    QTest.keyClicks(target, "camden high st")
    state = wait_state(qtbot, map_view, lambda s: s["search"]["results"])
    assert state["search"]["results"][0] == "Camden High Street, Camden"
    with qtbot.waitSignal(map_view.placeFound, timeout=5000) as found:
        QTest.keyClick(target, Qt.Key.Key_Return)
    assert found.args == ["Camden High Street, Camden"]
    state = wait_state(qtbot, map_view, lambda s: s["zoom"] == 16)
    hit = places.search(STREET, 1)[0]
    assert state["center"]["lat"] == pytest.approx(hit.lat, abs=1e-4)
    assert state["center"]["lng"] == pytest.approx(hit.lon, abs=1e-4)
    assert places.address(state["center"]["lng"], state["center"]["lat"]).street == STREET
    wait_tiles(qtbot, map_view)

    # Pixels along Camden High Street are the street's fill (white); elsewhere mostly not.
    image = map_view.view.grab().toImage()
    on = [p for line in street_lines(STREET) for p in densify(to_pixels(qtbot, map_view, line))
          if inside(map_view, *p)]
    assert len(on) > 60
    on_white = sum(white(image, x, y) for x, y in on) / len(on)
    bounds = run_js(qtbot, map_view, "(function () { const b = EM.map.getBounds();"
                    " return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()")
    lons, lats = np.meshgrid(np.linspace(bounds[0], bounds[2], 40), np.linspace(bounds[1], bounds[3], 30))
    lons, lats = lons.ravel(), lats.ravel()
    far = [(lo, la) for lo, la, a in zip(lons, lats, places.addresses(lons, lats, max_m=150))
           if a.street is None or a.distance_m > 35]
    off = [p for p in to_pixels(qtbot, map_view, far) if inside(map_view, *p)]
    assert len(off) > 100
    off_white = sum(white(image, x, y) for x, y in off) / len(off)
    assert on_white >= 0.75 and off_white <= 0.3, (on_white, off_white)
    assert map_view.tiles.served > 0

    # No request left the machine: every request was local, none had to be blocked.
    assert map_view.requests.blocked == []
    assert map_view.requests.requested
    assert all(u.split(":", 1)[0] in LOCAL for u in map_view.requests.requested)
    assert any(u.startswith("emtiles://tiles/16/") or u.startswith("emtiles://tiles/15/")
               for u in map_view.requests.requested)

    # The grid fallback does not draw the street: the same pixels are the plain ground.
    map_view.set_basemap("fallback")
    wait_state(qtbot, map_view, lambda s: s["basemap"] == "fallback")
    qtbot.wait(300)
    image = map_view.view.grab().toImage()
    assert sum(white(image, x, y) for x, y in on) / len(on) < 0.1
    assert page_state(qtbot, map_view)["errors"] == []


def test_dark_vector_basemap_draws_streets_dark(map_view, qtbot):
    map_view.set_basemap(None)
    map_view.pan_to(51.5390, -0.1426, 16)
    map_view.set_theme("dark")
    wait_state(qtbot, map_view, lambda s: s["basemap"] == "vector" and s["theme"] == "dark" and s["zoom"] == 16)
    wait_tiles(qtbot, map_view)
    image = map_view.view.grab().toImage()
    on = [p for line in street_lines(STREET) for p in densify(to_pixels(qtbot, map_view, line))
          if inside(map_view, *p)]
    assert len(on) > 60
    grey = [image.pixelColor(int(x), int(y)) for x, y in on]
    # the street fill is the dark grey #4a4a4a (lighter than the #1e1e1e ground), never white
    lit = sum(1 for c in grey if 0x40 <= c.red() <= 0x60 and abs(c.red() - c.blue()) < 8) / len(grey)
    assert lit >= 0.6, lit
    assert not any(white(image, x, y, 200) for x, y in on[::3])


def test_borough_boundaries_are_drawn_on_every_basemap(map_view, qtbot, places):
    camden = next(f for f in places.boroughs.features if f["properties"]["name"] == "Camden")
    geom = camden["geometry"]
    rings = geom["coordinates"] if geom["type"] == "Polygon" else [p[0] for p in geom["coordinates"]]
    edge = max(rings, key=len)
    for basemap in ("fallback", None):
        map_view.set_basemap(basemap)
        map_view.pan_to(51.545, -0.16, 13)
        state = wait_state(qtbot, map_view, lambda s: s["zoom"] == 13 and s["basemap"] == ("fallback" if basemap else "vector"))
        assert set(PILOT) <= set(state["boroughs"])
        if basemap is None:
            wait_tiles(qtbot, map_view)
        qtbot.wait(300)
        image = map_view.view.grab().toImage()
        on = [p for p in densify(to_pixels(qtbot, map_view, edge), 2.0) if inside(map_view, *p)]
        assert len(on) > 100
        # the dashed grey edge (#7a7a7a): about 6 px in every 10 are drawn
        dark = sum(1 for x, y in on if max(image.pixelColor(int(x), int(y)).getRgb()[:3]) < 0xB0) / len(on)
        assert dark >= 0.35, (basemap, dark)
    names = run_js(qtbot, map_view, "Array.from(document.querySelectorAll('.em-borough-real')).map(e => e.textContent)")
    assert set(PILOT) <= set(names)


def test_search_box_keys(map_view, qtbot):
    target = map_view.view.focusProxy() or map_view.view
    qtbot.mouseClick(target, Qt.MouseButton.LeftButton, pos=QPoint(400, 400))
    QTest.keyClick(target, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    wait_state(qtbot, map_view, lambda s: s["search"]["focused"])
    QTest.keyClicks(target, "zzqx nowhere")
    qtbot.waitUntil(lambda: run_js(qtbot, map_view, "document.querySelector('.em-search-none') !== null") is True,
                    timeout=5000)
    assert run_js(qtbot, map_view, "document.querySelector('.em-search-none').textContent") == \
        "No street or place of that name"
    QTest.keyClick(target, Qt.Key.Key_Escape)
    state = wait_state(qtbot, map_view, lambda s: s["search"]["text"] == "" and not s["search"]["focused"])
    assert state["search"]["results"] == []
    # Arrow keys in the box choose among the suggestions; they do not pan the map.
    QTest.keyClick(target, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    wait_state(qtbot, map_view, lambda s: s["search"]["focused"])
    QTest.keyClicks(target, "camden")
    state = wait_state(qtbot, map_view, lambda s: len(s["search"]["results"]) >= 2)
    second = state["search"]["results"][1]
    QTest.keyClick(target, Qt.Key.Key_Down)
    with qtbot.waitSignal(map_view.placeFound, timeout=5000) as found:
        QTest.keyClick(target, Qt.Key.Key_Return)
    assert found.args == [second]
    state = page_state(qtbot, map_view)
    chosen = state["search"]["chosen"]
    assert chosen["text"] == second
    assert state["center"]["lat"] == pytest.approx(chosen["lat"], abs=1e-5)
    assert state["center"]["lng"] == pytest.approx(chosen["lon"], abs=1e-5)
    assert state["zoom"] == (13 if chosen["kind"] == "borough" else 16)
    assert state["search"]["pin"] is True            # the place stays marked on the map ...
    QTest.keyClick(target, Qt.Key.Key_Escape)         # ... until the operator is done with it
    state = wait_state(qtbot, map_view, lambda s: not s["search"]["pin"])
    assert state["search"]["text"] == "" and not state["search"]["focused"]
