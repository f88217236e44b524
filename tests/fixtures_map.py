"""Fixtures for the map tests: a shared live map page per module, a helper to read the page's
JavaScript state, and MBTiles files made at test time.

Importing ``ui.map.view`` here (this module is loaded as a plugin, before any QApplication
exists) registers the map's URL schemes in time, for every test module that shows a map.
"""
from __future__ import annotations

import json
import sqlite3

import pytest
from PySide6.QtCore import QBuffer, QByteArray, QIODevice
from PySide6.QtGui import QColor, QImage

from ui.map.view import MapView  # noqa: F401  (registers emapp:// and emtiles://)

# Warnings Qt prints on a machine without a GPU (offscreen CI): about the renderer, not our code.
NO_GPU_MESSAGES = (
    r"QRhiGles2: Failed to create.*",
    r"Failed to create RHI for backend.*",
    r"This plugin does not support createPlatformVulkanInstance",
    r"QVulkanInstance: Failed to initialize Vulkan",
    r"GBM is not supported.*",
    r"GPUInfo not initialized.*",
    r"Unable to detect GPU vendor.*",
)
map_log_ignore = pytest.mark.qt_log_ignore(*NO_GPU_MESSAGES)

PAGE_TIMEOUT_MS = 30_000
JS_TIMEOUT_MS = 10_000


def run_js(qtbot, view: MapView, script: str, timeout: int = JS_TIMEOUT_MS):
    """Evaluate ``script`` in the page and return its value (JSON round-tripped)."""
    box: list = []
    view.run_js_for_test(f"JSON.stringify(({script}))", box.append)
    qtbot.waitUntil(lambda: bool(box), timeout=timeout)
    return None if box[0] in (None, "") else json.loads(box[0])


def page_state(qtbot, view: MapView) -> dict:
    return run_js(qtbot, view, "EM.state()")


def wait_state(qtbot, view: MapView, predicate, timeout: int = JS_TIMEOUT_MS) -> dict:
    """Poll the page state until ``predicate(state)`` holds; return that state."""
    last: dict = {}

    def check() -> bool:
        last.clear()
        last.update(page_state(qtbot, view))
        return bool(predicate(last))

    qtbot.waitUntil(check, timeout=timeout)
    return last


@pytest.fixture(scope="module")
def shared_map(qapp, request):
    """One shown, ready MapView for the whole test module (page start-up is the slow part)."""
    from pytestqt.qtbot import QtBot

    bot = QtBot(request)
    view = MapView()
    view.resize(1000, 700)
    with bot.waitSignal(view.ready, timeout=PAGE_TIMEOUT_MS):
        view.show()
    yield view
    view.shutdown()
    view.close()
    gone: list = []
    view.destroyed.connect(lambda *_: gone.append(True))
    view.deleteLater()
    bot.waitUntil(lambda: bool(gone), timeout=5000)


@pytest.fixture
def map_view(shared_map, qtbot):
    """The module's map, reset to an empty, light, fallback (grid) state for this test; the real
    borough boundaries stay on it, as on every basemap."""
    view = shared_map
    view.remove_markers(list(view._sent))          # noqa: SLF001 (test reset)
    view.flush_markers()
    view.set_zones([])
    view.set_zone_alarms({})
    view.select_device(None)
    view.stop_editing()
    view.set_theme("light")
    view.set_basemap("fallback")
    wait_state(qtbot, view, lambda s: s["markers"] == 0 and not s["zones"] and not s["zoneAlarms"]
               and s["basemap"] == "fallback")
    view.js_errors.clear()
    yield view
    assert view.js_errors == [], "the map page reported JavaScript errors"


def png_tile(colour: str = "#b0b4b8", size: int = 256) -> bytes:
    image = QImage(size, size, QImage.Format.Format_RGB32)
    image.fill(QColor(colour))
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    return bytes(buf.data())


def make_mbtiles(path, tiles: dict[tuple[int, int, int], bytes], fmt: str = "png",
                 metadata: dict | None = None):
    """An MBTiles file with ``tiles`` keyed by XYZ (z, x, y); rows are stored TMS-flipped."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
    db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
    meta = {"name": "test", "format": fmt, "attribution": "test tiles"}
    meta.update(metadata or {})
    db.executemany("INSERT INTO metadata VALUES (?, ?)", list(meta.items()))
    db.executemany(
        "INSERT INTO tiles VALUES (?, ?, ?, ?)",
        [(z, x, (2 ** z - 1) - y, data) for (z, x, y), data in tiles.items()],
    )
    db.commit()
    db.close()
    return path


def sample_markers(n: int = 20, alert: dict | None = None) -> list[dict]:
    """``n`` tags spread over North/East London; ``alert`` maps device -> priority."""
    alert = alert or {}
    out = []
    for i in range(n):
        device = f"TAG-{i:04d}"
        out.append({"device": device, "lat": 51.52 + (i % 10) * 0.012, "lon": -0.16 + (i // 10) * 0.03,
                    "acc": 8 + i % 5, "label": f"Offender {i}", "priority": alert.get(device),
                    "stale": False})
    return out
