"""The map page: offline start-up, the bridge handshake and its queue, the fallback basemap,
themes, and clear errors for bad input."""
from __future__ import annotations

import pytest

from tests.fixtures_map import (
    PAGE_TIMEOUT_MS,
    map_log_ignore,
    page_state,
    run_js,
    sample_markers,
    wait_state,
)
from monitorapp.places import PILOT
from ui.map.page import BOROUGHS, build_page
from ui.map.scheme import WEB_DIR
from ui.map.view import MapView

pytestmark = map_log_ignore


def test_page_html_names_only_local_assets():
    html = build_page()
    assert "cdn" not in html.lower()
    assert "http://" not in html and "https://" not in html
    assert "emapp://map/vendor/leaflet/dist/leaflet.js" in html
    assert "emapp://map/vendor/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js" in html
    assert "qrc:///qtwebchannel/qwebchannel.js" in html
    # Leaflet must load before Geoman and our scripts.
    assert html.index("leaflet/dist/leaflet.js") < html.index("leaflet-geoman.min.js") < html.index("app/bridge.js")


def test_page_loads_offline_and_handshakes(map_view, qtbot):
    assert map_view.is_ready
    assert map_view.page_info["leaflet"] == "1.9.4"
    assert map_view.page_info["geoman"] is True
    state = page_state(qtbot, map_view)
    assert state["ready"] is True and state["errors"] == []
    scripts = run_js(qtbot, map_view, "Array.from(document.scripts).filter(s => s.src).map(s => s.src)")
    assert scripts and all(s.startswith(("emapp://", "qrc:")) for s in scripts)
    # Nothing was fetched from the network, and nothing had to be blocked.
    assert map_view.requests.blocked == []
    assert all(u.split(":", 1)[0] in ("emapp", "qrc", "data", "blob", "emtiles") for u in map_view.requests.requested)
    assert map_view.js_errors == []


def test_fallback_basemap_shows_grid_and_borough_names(map_view, qtbot):
    state = page_state(qtbot, map_view)
    assert state["basemap"] == "fallback"
    names = run_js(qtbot, map_view, "Array.from(document.querySelectorAll('.em-borough')).map(e => e.textContent)")
    # the real boundaries' names (all London boroughs), not the approximate centres of page.py
    assert set(PILOT) <= set(names) and len(names) == len(set(names)) == 33
    assert {b["name"] for b in BOROUGHS} <= set(names)
    grid_tiles = run_js(qtbot, map_view, "document.querySelectorAll('.em-ground canvas').length")
    assert grid_tiles > 0
    prefix = run_js(qtbot, map_view, "document.querySelector('.leaflet-control-attribution').textContent")
    assert "Built-in basemap" in prefix


def test_calls_before_ready_are_queued_and_replayed_in_order(qapp, qtbot):
    view = MapView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.set_zones([{"type": "Feature", "id": "z1", "geometry": {"type": "Point", "coordinates": [-0.1, 51.55]},
                     "properties": {"kind": "exclusion", "name": "Early zone", "radius_m": 300}}])
    view.update_markers(sample_markers(5, {"TAG-0003": "high"}))
    view.flush_markers()
    view.set_zones([])                      # the later call must win
    view.set_theme("dark")
    # the basemap and the borough boundaries the view queued itself, then the four calls above
    assert not view.is_ready and len(view._queue) == 6       # noqa: SLF001
    assert [q.split('"')[1] for q in view._queue] == [      # noqa: SLF001
        "setBasemap", "setBoroughs", "setZones", "applyMarkers", "setZones", "setTheme"]
    with qtbot.waitSignal(view.ready, timeout=PAGE_TIMEOUT_MS):
        view.show()
    state = wait_state(qtbot, view, lambda s: s["batches"] >= 1)
    assert state["markers"] == 5 and state["alerts"] == {"TAG-0003": "high"}
    assert state["zones"] == {} and state["theme"] == "dark"
    view.shutdown()


def test_callbacks_after_shutdown_are_ignored(qapp, qtbot):
    view = MapView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.ready, timeout=PAGE_TIMEOUT_MS):
        view.show()
    seen = []
    view.markerClicked.connect(seen.append)
    view.bridge.markerClicked("TAG-1")
    assert seen == ["TAG-1"]
    view.shutdown()
    view.bridge.markerClicked("TAG-2")
    view.bridge.zoneCreated('{"type": "Feature"}')
    assert seen == ["TAG-1"]


def test_dark_theme_recolours_page_and_markers(map_view, qtbot):
    map_view.update_markers(sample_markers(3))
    map_view.flush_markers()
    wait_state(qtbot, map_view, lambda s: s["markers"] == 3)
    light = run_js(qtbot, map_view, "EM.markerData('TAG-0001').fillColor")
    map_view.set_theme("dark")
    state = wait_state(qtbot, map_view, lambda s: s["theme"] == "dark")
    assert run_js(qtbot, map_view, "document.body.className") == "theme-dark"
    dark = run_js(qtbot, map_view, "EM.markerData('TAG-0001').fillColor")
    assert dark != light
    assert state["errors"] == []


def test_bad_input_gets_clear_errors(map_view):
    with pytest.raises(ValueError, match="unknown priority"):
        map_view.update_markers([{"device": "X", "lat": 51.5, "lon": -0.1, "priority": "urgent"}])
    with pytest.raises(ValueError, match="invalid position"):
        map_view.update_markers([{"device": "X", "lat": 151.5, "lon": -0.1}])
    with pytest.raises(ValueError, match="needs device, lat and lon"):
        map_view.update_markers([{"device": "X", "lat": "north"}])
    with pytest.raises(ValueError, match="kind"):
        map_view.set_zones([{"type": "Feature", "id": "z", "properties": {"kind": "forbidden"},
                             "geometry": {"type": "Polygon", "coordinates": []}}])
    with pytest.raises(ValueError, match="radius_m"):
        map_view.set_zones([{"type": "Feature", "id": "z", "properties": {"kind": "curfew"},
                             "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}}])
    with pytest.raises(ValueError, match="cannot draw"):
        map_view.start_drawing("hexagon")
    with pytest.raises(ValueError, match="theme"):
        map_view.set_theme("blue")
    with pytest.raises(ValueError, match="trail point"):
        map_view.select_device("X", [{"lat": 51.5}])


def test_missing_web_assets_name_the_fix(tmp_path):
    from ui.map.page import WebAssetsMissing, load_manifest

    (tmp_path / "manifest.json").write_text((WEB_DIR / "manifest.json").read_text())
    with pytest.raises(WebAssetsMissing, match=r"node_modules/leaflet/dist/leaflet.js.*make web"):
        build_page(web_dir=tmp_path, manifest=load_manifest(tmp_path / "manifest.json"))


def test_asset_handler_serves_only_listed_packages_and_our_files():
    from ui.map.scheme import AssetSchemeHandler

    handler = AssetSchemeHandler("<html></html>", ["leaflet", "@geoman-io/leaflet-geoman-free"])
    assert handler.resolve("/vendor/leaflet/dist/leaflet.js") == WEB_DIR / "node_modules/leaflet/dist/leaflet.js"
    assert handler.resolve("/vendor/leaflet/dist/images/layers.png") is not None   # CSS-relative images
    assert handler.resolve("/app/bridge.js") == WEB_DIR / "bridge.js"
    assert handler.resolve("/vendor/leaflet/../../package-lock.json") is None    # no way out of a package
    assert handler.resolve("/vendor/lodash/lodash.js") is None                   # not in the manifest
    assert handler.resolve("/app/node_modules/leaflet/dist/leaflet.js") is None  # our files are flat
    assert handler.resolve("/app/../../ui/map/view.py") is None
    assert handler.resolve("/etc/passwd") is None
