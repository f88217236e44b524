"""Basemaps: MBTiles files made at test time served through emtiles://, the TMS row flip, tile
URL checks, and clear errors for files that are not MBTiles."""
from __future__ import annotations

import math
import sqlite3

import pytest

from tests.fixtures_map import make_mbtiles, map_log_ignore, page_state, png_tile, run_js, wait_state
from ui.map.basemap import BasemapError, MBTilesArchive, parse_basemap

pytestmark = map_log_ignore


def xyz(lat: float, lon: float, z: int) -> tuple[int, int]:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_mbtiles_rows_are_tms_flipped(tmp_path):
    path = tmp_path / "flip.mbtiles"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
    # TMS counts rows from the south: at zoom 1, row 1 is the northern half of the world.
    db.executemany("INSERT INTO tiles VALUES (1, 0, ?, ?)", [(1, b"north"), (0, b"south")])
    db.commit()
    db.close()
    archive = MBTilesArchive(path)
    assert archive.tile(1, 0, 0) == b"north"      # XYZ y=0 is the top (north)
    assert archive.tile(1, 0, 1) == b"south"
    assert archive.tile(1, 1, 0) is None
    assert archive.tile(1, 5, 0) is None           # outside the zoom level's grid
    assert archive.mime == b"image/png"
    archive.close()


def test_basemap_setting_is_checked(tmp_path):
    assert parse_basemap(None).kind == "vector"           # the shipped London basemap
    assert parse_basemap("").kind == "vector"
    assert parse_basemap("fallback").kind == "fallback"
    live = parse_basemap("https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    assert live.kind == "tiles" and live.hosts() == {"a.tiles.example.org", "b.tiles.example.org", "c.tiles.example.org"}
    with pytest.raises(BasemapError, match=r"lacks the placeholder\(s\) \{y\}"):
        parse_basemap("https://tiles.example.org/{z}/{x}.png")
    with pytest.raises(BasemapError, match="neither a http"):
        parse_basemap(str(tmp_path / "missing.mbtiles"))
    text = tmp_path / "notes.mbtiles"
    text.write_text("this is not a database, it is just long enough text to not be sqlite" * 20)
    with pytest.raises(BasemapError, match="not SQLite"):
        parse_basemap(text)
    other = tmp_path / "other.mbtiles"
    sqlite3.connect(other).execute("CREATE TABLE things (a)").connection.close()
    with pytest.raises(BasemapError, match="no 'tiles' table"):
        parse_basemap(other)
    empty = make_mbtiles(tmp_path / "empty.mbtiles", {})
    with pytest.raises(BasemapError, match="holds no tiles"):
        parse_basemap(empty)
    vector = make_mbtiles(tmp_path / "vector.mbtiles", {(0, 0, 0): b"x"}, fmt="pbf")
    assert parse_basemap(vector).kind == "vector"
    odd = make_mbtiles(tmp_path / "odd.mbtiles", {(0, 0, 0): b"x"}, fmt="tiff")
    with pytest.raises(BasemapError, match="'tiff' is not one the map can show"):
        parse_basemap(odd)


def test_mbtiles_basemap_is_served_to_the_page(map_view, qtbot, tmp_path):
    lat, lon, z = 51.57, -0.065, 12
    cx, cy = xyz(lat, lon, z)
    tile = png_tile("#c4c7cb")
    tiles = {(z, x, y): tile for x in range(cx - 3, cx + 4) for y in range(cy - 3, cy + 4)}
    path = make_mbtiles(tmp_path / "london.mbtiles", tiles, metadata={"minzoom": "10", "maxzoom": "12"})
    basemap = map_view.set_basemap(str(path))
    assert basemap.kind == "mbtiles" and basemap.max_zoom == 12
    map_view.pan_to(lat, lon, zoom=z)
    state = wait_state(qtbot, map_view, lambda s: s["basemap"] == "mbtiles" and s["zoom"] == z)
    loaded = "document.querySelectorAll('.em-tiles img.leaflet-tile-loaded').length"
    qtbot.waitUntil(lambda: run_js(qtbot, map_view, loaded) > 0, timeout=10_000)
    assert map_view.tiles.served > 0
    assert state["boroughLabels"] == 33             # the real boroughs, over every basemap
    # One tile fetched directly: the archive's bytes arrive as a 256 px image.
    probe = f"""(function () {{ window.__probe = null; const img = new Image();
        img.onload = () => {{ window.__probe = img.naturalWidth; }};
        img.onerror = () => {{ window.__probe = -1; }};
        img.src = 'emtiles://tiles/{z}/{cx}/{cy}.png'; return true; }})()"""
    run_js(qtbot, map_view, probe)
    qtbot.waitUntil(lambda: run_js(qtbot, map_view, "window.__probe") is not None, timeout=5000)
    assert run_js(qtbot, map_view, "window.__probe") == 256
    run_js(qtbot, map_view, probe.replace(f"{z}/{cx}/{cy}", f"{z}/{cx + 50}/{cy}"))
    qtbot.waitUntil(lambda: run_js(qtbot, map_view, "window.__probe") is not None, timeout=5000)
    assert run_js(qtbot, map_view, "window.__probe") == -1     # no such tile: a clean failure
    assert map_view.requests.blocked == []
    assert page_state(qtbot, map_view)["errors"] == []


def test_back_to_fallback_when_basemap_cleared(map_view, qtbot, tmp_path):
    path = make_mbtiles(tmp_path / "one.mbtiles", {(12, 2046, 1361): png_tile()})
    map_view.set_basemap(path)
    wait_state(qtbot, map_view, lambda s: s["basemap"] == "mbtiles")
    map_view.set_basemap("fallback")
    state = wait_state(qtbot, map_view, lambda s: s["basemap"] == "fallback")
    assert state["boroughLabels"] == 33 and "Waltham Forest" in state["boroughs"]
    assert map_view.tiles.archive is None


@pytest.fixture
def tile_server():
    """A tile server on the loopback interface answering every /z/x/y.png with a PNG."""
    import http.server
    import threading

    body = png_tile("#babdc1")
    hits: list[str] = []

    class Tiles(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_live_tile_url_is_used_and_nothing_else_reaches_the_network(map_view, qtbot, tile_server):
    base, hits = tile_server
    basemap = map_view.set_basemap(base + "/{z}/{x}/{y}.png")
    assert basemap.kind == "tiles" and basemap.hosts() == {base.split("//")[1]}
    wait_state(qtbot, map_view, lambda s: s["basemap"] == "tiles")
    loaded = "document.querySelectorAll('.em-tiles img.leaflet-tile-loaded').length"
    qtbot.waitUntil(lambda: run_js(qtbot, map_view, loaded) > 0, timeout=10_000)
    assert hits and all(h.endswith(".png") for h in hits)
    # Anything else (a CDN, another port on the same host) is blocked before it leaves.
    other_port = base.rsplit(":", 1)[0] + ":9"
    run_js(qtbot, map_view, f"(fetch({other_port + '/x.js'!r}).catch(() => null), "
                            "fetch('https://cdn.example.invalid/leaflet.js').catch(() => null), true)")
    qtbot.waitUntil(lambda: len(map_view.requests.blocked) >= 2, timeout=5000)
    assert any("cdn.example.invalid" in u for u in map_view.requests.blocked)
    assert any(u.startswith(other_port) for u in map_view.requests.blocked)
    map_view.requests.blocked.clear()
    map_view.js_errors.clear()    # Chromium logs the refused fetches to the console
