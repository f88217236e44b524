"""The operator console's live map: a QWebEngineView showing the folium/Leaflet page.

``MapView`` is the only widget the main window uses. Everything live reaches the page through
one ``QWebChannel`` bridge object (``MapBridge``) after a ready handshake: calls made before the
page says ready are queued and replayed in order; callbacks that arrive after the view is gone
are ignored. Every JavaScript argument is produced by ``json.dumps``.

Markers are coalesced: ``update_markers`` only records the latest state per device and a
``QTimer`` throttle (``THROTTLE_MS``) sends the devices whose state changed since the last
batch, as one call; the page applies it on a canvas and reports the time it took (``jsTiming``).

The basemap (``ui.map.basemap``) is the shipped vector map of London unless a tile URL or an
MBTiles file is set; the real borough boundaries (``Places``) are drawn over every basemap, and
the map's search box (Ctrl+F) asks ``Places.search`` through the bridge and pans to the choice.
"""
from __future__ import annotations

import atexit
import json
import logging
import math
import pathlib
import time
import weakref

import shiboken6

from PySide6.QtCore import QCoreApplication, QObject, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtWebChannel import QWebChannel
from PySide6.QtWebEngineCore import QWebEnginePage, QWebEngineProfile, QWebEngineSettings
from PySide6.QtWebEngineWidgets import QWebEngineView
from PySide6.QtWidgets import QVBoxLayout, QWidget

from monitorapp.engine.alerts import PRIORITY_RANK
from ui.map import scheme as mapscheme
from ui.map.basemap import SHIPPED_BASEMAP, Basemap, parse_basemap
from ui.map.page import DEFAULT_CENTRE, DEFAULT_ZOOM, build_page, load_manifest

log = logging.getLogger(__name__)

# Qt only accepts URL schemes registered before the QApplication exists: importing this module
# first (as the console's main and the tests do) registers them in time.
if QCoreApplication.instance() is None:
    mapscheme.register_schemes()

THROTTLE_MS = 250
_LIVE_VIEWS: "weakref.WeakSet[MapView]" = weakref.WeakSet()


@atexit.register
def _release_pages() -> None:
    """At interpreter exit, delete the pages of views nobody deleted, before Python tears the
    QApplication down: QtWebEngine must release a page before its profile (else it warns
    "Release of profile requested but WebEnginePage still not deleted" and may crash)."""
    for view in list(_LIVE_VIEWS):
        try:
            if shiboken6.isValid(view) and shiboken6.isValid(view.page):
                view.shutdown()
                shiboken6.delete(view.page)       # its children (channel, profile) go with it
        except RuntimeError:
            pass
PRIORITIES = (None, "critical", "high", "medium", "low")
ZONE_KINDS = ("exclusion", "curfew", "appointment", "scene")   # scene: a crime-mapping query's place
DRAW_SHAPES = ("polygon", "rectangle", "circle")


class MapBridge(QObject):
    """The page's one bridge object; its slots are what JavaScript may call."""

    def __init__(self, view: "MapView"):
        super().__init__()
        self._view: MapView | None = view

    def detach(self) -> None:
        self._view = None

    def _alive(self) -> "MapView | None":
        return self._view

    @Slot(str)
    def pageReady(self, info: str) -> None:  # noqa: N802 (called from JavaScript)
        if view := self._alive():
            view._on_page_ready(_loads(info) or {})

    @Slot(float, int, int)
    def batchApplied(self, ms: float, count: int, batch: int) -> None:  # noqa: N802
        if view := self._alive():
            view._on_batch_applied(float(ms), int(batch))

    @Slot(str)
    def zoneCreated(self, feature: str) -> None:  # noqa: N802
        if (view := self._alive()) and (f := _loads(feature)) is not None:
            view.zoneDrawn.emit(f)

    @Slot(str)
    def zoneEdited(self, feature: str) -> None:  # noqa: N802
        if (view := self._alive()) and (f := _loads(feature)) is not None:
            view.zoneEdited.emit(f)

    @Slot(str)
    def zoneRemoved(self, zone_id: str) -> None:  # noqa: N802
        if view := self._alive():
            view.zoneDeleted.emit(str(zone_id))

    @Slot(str)
    def zoneSelected(self, zone_id: str) -> None:  # noqa: N802
        if view := self._alive():
            view.editing_zone = str(zone_id) or None
            view.zoneSelected.emit(str(zone_id))

    @Slot(str)
    def markerClicked(self, device: str) -> None:  # noqa: N802
        if view := self._alive():
            view.markerClicked.emit(str(device))

    @Slot(float, float)
    def mapClicked(self, lat: float, lon: float) -> None:  # noqa: N802
        if view := self._alive():
            view.mapClicked.emit(float(lat), float(lon))

    @Slot(str, int, result=str)
    def searchPlaces(self, text: str, limit: int) -> str:  # noqa: N802
        """The search box's suggestions: JSON [{name, kind, borough, lat, lon, text}]."""
        view = self._alive()
        if view is None:
            return "[]"
        return json.dumps(view.search_places(str(text), int(limit)))

    @Slot(str)
    def placeChosen(self, text: str) -> None:  # noqa: N802
        if view := self._alive():
            view.placeFound.emit(str(text))

    @Slot(str)
    def jsError(self, text: str) -> None:  # noqa: N802
        if view := self._alive():
            view.js_errors.append(str(text))
            log.error("map page error: %s", text)


def _loads(text: str):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        log.error("map page sent invalid JSON: %.200r", text)
        return None


class MapPage(QWebEnginePage):
    """Routes the page's console to Python logging (and remembers errors)."""

    def __init__(self, profile: QWebEngineProfile, parent: QObject, errors: list[str]):
        super().__init__(profile, parent)
        self._errors = errors

    def javaScriptConsoleMessage(self, level, message, line, source):  # noqa: N802 (Qt API)
        text = f"{message} ({source}:{line})"
        if level == QWebEnginePage.JavaScriptConsoleMessageLevel.ErrorMessageLevel:
            self._errors.append(text)
            log.error("map page: %s", text)
        elif level == QWebEnginePage.JavaScriptConsoleMessageLevel.WarningMessageLevel:
            log.warning("map page: %s", text)
        else:
            log.debug("map page: %s", text)


def _marker_row(m: dict) -> list:
    """The compact row the page takes: [device, lat, lon, acc, label, priority, stale, t]."""
    try:
        device = str(m["device"])
        lat, lon = float(m["lat"]), float(m["lon"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"marker needs device, lat and lon: {m!r} ({exc})") from None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"marker {device!r} has an invalid position ({lat}, {lon})")
    priority = m.get("priority")
    if priority not in PRIORITIES:
        raise ValueError(f"marker {device!r} has an unknown priority {priority!r}; expected one of {PRIORITIES}")
    acc = m.get("acc")
    t = m.get("t")
    return [device, round(lat, 7), round(lon, 7), None if acc is None else round(float(acc), 1),
            str(m.get("label") or device), priority, bool(m.get("stale", False)),
            None if t is None else float(t)]


class MapView(QWidget):
    """The live map widget (see the module docstring)."""

    ready = Signal()
    zoneDrawn = Signal(dict)        # GeoJSON Feature: Polygon, or Point + properties.radius_m
    zoneEdited = Signal(dict)
    zoneDeleted = Signal(str)
    zoneSelected = Signal(str)      # the zone picked for editing (handles on it alone); '' = none
    markerClicked = Signal(str)
    mapClicked = Signal(float, float)
    jsTiming = Signal(float)        # ms JavaScript spent applying (and painting) the last batch
    stampsDrawn = Signal(list)      # the stamps (note_stamps) of the rows the page has just drawn
    placeFound = Signal(str)        # the search box panned to this place ("Camden High Street, Camden")

    def __init__(self, parent: QWidget | None = None, *, theme: str = "light",
                 basemap: str | pathlib.Path | None = None,
                 centre: tuple[float, float] = DEFAULT_CENTRE, zoom: int = DEFAULT_ZOOM,
                 throttle_ms: int = THROTTLE_MS, places=None):
        super().__init__(parent)
        self.js_errors: list[str] = []
        self.is_ready = False
        self.editing_zone: str | None = None
        self.page_info: dict = {}
        self._queue: list[str] = []
        self._pending: dict[str, list] = {}     # device -> row not yet sent
        self._sent: dict[str, list] = {}        # device -> row the page shows
        self._removed: set[str] = set()
        self._stamps: dict[str, float] = {}     # device -> when its newest data was sent to us
        self._in_flight: dict[int, list[float]] = {}   # batch -> stamps of the rows it draws
        self._batches = 0
        self._basemap: Basemap = parse_basemap(basemap)
        self._theme = _check_theme(theme)

        if not mapscheme.is_registered():
            raise RuntimeError("the map's URL schemes were not registered: import ui.map.view "
                               "before creating the QApplication")
        manifest = load_manifest()
        html = build_page(theme=self._theme, centre=centre, zoom=zoom, manifest=manifest)

        # Teardown order matters: a profile must outlive its pages, so once the page exists the
        # profile becomes the page's child (deleted right after it, whoever deletes the view).
        self.view = QWebEngineView(self)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.NoContextMenu)
        self.profile = QWebEngineProfile(self)               # off the record: nothing on disk
        self.assets = mapscheme.AssetSchemeHandler(html, list(manifest["packages"]), parent=self.profile)
        self.tiles = mapscheme.TileSchemeHandler(parent=self.profile)
        self.profile.installUrlSchemeHandler(mapscheme.APP_SCHEME, self.assets)
        self.profile.installUrlSchemeHandler(mapscheme.TILE_SCHEME, self.tiles)
        self.requests = mapscheme.LocalOnlyInterceptor(self.profile)
        self.profile.setUrlRequestInterceptor(self.requests)
        self.page = MapPage(self.profile, self.view, self.js_errors)
        self.profile.setParent(self.page)
        settings = self.page.settings()
        settings.setAttribute(QWebEngineSettings.WebAttribute.LocalContentCanAccessRemoteUrls, True)
        settings.setAttribute(QWebEngineSettings.WebAttribute.LocalContentCanAccessFileUrls, False)
        self.bridge = MapBridge(self)
        self.channel = QWebChannel(self.page)
        self.channel.registerObject("bridge", self.bridge)
        self.page.setWebChannel(self.channel)
        self.view.setPage(self.page)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)
        self.setFocusProxy(self.view)     # setFocus() (Ctrl+0) gives the page the keyboard

        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.setInterval(int(throttle_ms))
        self._throttle.timeout.connect(self.flush_markers)
        self.destroyed.connect(self.bridge.detach)

        self.places = places if places is not None else _places_for(self._basemap)
        if self._basemap.kind != "fallback":
            self._apply_basemap(self._basemap)
        self._send_boroughs()
        self.created_at = time.perf_counter()
        _LIVE_VIEWS.add(self)
        self.view.load(QUrl(mapscheme.PAGE_URL))

    # ---- plumbing ----
    def _on_page_ready(self, info: dict) -> None:
        if self.is_ready:
            return
        self.is_ready = True
        self.page_info = dict(info, readyAfterS=time.perf_counter() - self.created_at)
        queued, self._queue = self._queue, []
        for script in queued:
            self.page.runJavaScript(script)
        self.ready.emit()

    def _call(self, function: str, *args) -> None:
        """Run ``EM.<function>(args...)`` in the page now or, before the handshake, later."""
        script = f"EM.call({json.dumps(function)}, {json.dumps(list(args), allow_nan=False)});"
        if self.is_ready:
            self.page.runJavaScript(script)
        else:
            self._queue.append(script)

    def set_zone_tools(self, enabled: bool) -> None:
        """Show the zone drawing, editing and eraser tools only to a role that may edit zones
        (the store enforces who may; the map does not offer what would be refused)."""
        self._call("setZoneTools", bool(enabled))

    def run_js_for_test(self, script: str, callback=None) -> None:
        """Evaluate ``script`` in the page; ``callback(result)`` gets its JSON-able value."""
        if callback is None:
            self.page.runJavaScript(script)
        else:
            self.page.runJavaScript(script, 0, callback)

    def shutdown(self) -> None:
        """Stop talking to the page; later callbacks from it are ignored."""
        if shiboken6.isValid(self._throttle):
            self._throttle.stop()
        self.bridge.detach()
        if shiboken6.isValid(self.tiles):
            self.tiles.close()

    def closeEvent(self, event):  # noqa: N802 (Qt API)
        self.shutdown()
        super().closeEvent(event)

    # ---- markers ----
    def update_markers(self, markers: list[dict]) -> None:
        """Record the latest state of these tags; the throttle sends what changed."""
        for m in markers:
            row = _marker_row(m)
            device = row[0]
            self._removed.discard(device)
            if self._sent.get(device) == row:
                self._pending.pop(device, None)
            else:
                self._pending[device] = row
        if (self._pending or self._removed) and not self._throttle.isActive():
            self._throttle.start()

    def note_stamps(self, stamps: dict[str, float]) -> None:
        """When the data of these devices' next rows was sent (the decider's ``published_at``):
        once the page has drawn a row, ``stampsDrawn`` gives its stamp back, so a caller can
        measure up to the screen. A stamp goes with the next batch that draws its device, or
        is dropped when that batch does not (nothing changed on the map)."""
        self._stamps.update(stamps)

    def _on_batch_applied(self, ms: float, batch: int) -> None:
        self.jsTiming.emit(ms)
        stamps = self._in_flight.pop(batch, None)
        if stamps:
            self.stampsDrawn.emit(stamps)

    def remove_markers(self, devices: list[str]) -> None:
        for device in devices:
            self._pending.pop(device, None)
            if device in self._sent:
                self._removed.add(device)
        if self._removed and not self._throttle.isActive():
            self._throttle.start()

    def flush_markers(self) -> int:
        """Send the pending batch now; returns the number of markers sent."""
        self._throttle.stop()
        rows = list(self._pending.values())
        removed = sorted(self._removed)
        if not rows and not removed:
            return 0
        self._pending.clear()
        self._removed.clear()
        for row in rows:
            self._sent[row[0]] = row
        for device in removed:
            self._sent.pop(device, None)
        self._batches += 1
        if self._stamps:
            stamps = [s for s in (self._stamps.get(row[0]) for row in rows) if s is not None]
            self._stamps.clear()
            if stamps:
                self._in_flight[self._batches] = stamps
                while len(self._in_flight) > 64:      # a page that never answers: not kept for ever
                    self._in_flight.pop(next(iter(self._in_flight)))
        self._call("applyMarkers", rows, removed, self._batches)
        return len(rows)

    @property
    def marker_count(self) -> int:
        return len(self._sent) + sum(1 for d in self._pending if d not in self._sent)

    # ---- zones ----
    def set_zones(self, features: list[dict]) -> None:
        """Replace the zones shown (GeoJSON Features with properties kind, id, name)."""
        clean = []
        for f in features:
            props = dict(f.get("properties") or {})
            zone_id = f.get("id", props.get("id"))
            if zone_id is None:
                raise ValueError(f"zone feature has no id: {str(f)[:200]}")
            kind = props.get("kind")
            if kind not in ZONE_KINDS:
                raise ValueError(f"zone {zone_id!r} has kind {kind!r}; expected one of {ZONE_KINDS}")
            geometry = f.get("geometry") or {}
            if geometry.get("type") not in ("Polygon", "MultiPolygon", "Point"):
                raise ValueError(f"zone {zone_id!r} has unsupported geometry {geometry.get('type')!r}")
            if geometry["type"] == "Point" and not (float(props.get("radius_m") or 0) > 0):
                raise ValueError(f"zone {zone_id!r} is a Point without a positive properties.radius_m")
            props["id"] = str(zone_id)
            clean.append({"type": "Feature", "id": str(zone_id), "geometry": geometry, "properties": props})
        self._call("setZones", clean)

    def set_zone_alarms(self, alarms: dict[str, str]) -> None:
        """Colour the zones with open alerts: zone id -> the priority of its worst open alert.
        Every other zone is drawn neutral grey. Replaces the previous mapping."""
        clean = {}
        for zone_id, priority in alarms.items():
            if priority not in PRIORITY_RANK:
                raise ValueError(f"zone {zone_id!r}: priority {priority!r} is not one of {tuple(PRIORITY_RANK)}")
            clean[str(zone_id)] = priority
        self._call("setZoneAlarms", clean)

    def start_drawing(self, shape: str) -> None:
        if shape not in DRAW_SHAPES:
            raise ValueError(f"cannot draw a {shape!r}; expected one of {DRAW_SHAPES}")
        self._call("startDrawing", shape)

    def enable_editing(self, zone_id: str) -> None:
        """Handles on this zone only (the "Edit a zone" tool turns on); the operator drags them."""
        self._call("enableEditing", str(zone_id))

    def stop_editing(self) -> None:
        self._call("stopEditing")

    def clear_drafts(self) -> None:
        """Remove shapes drawn but not (yet) saved as zones."""
        self._call("clearDrafts")

    # ---- selection and view ----
    def select_device(self, device: str | None, trail: list[dict] = (), *, now: float | None = None,
                      gap_warn_s: float = 120, gap_break_s: float = 600) -> None:
        """Highlight a tag: accuracy circle, last-fix age, and its trail (gaps over
        ``gap_warn_s`` dashed, over ``gap_break_s`` broken). ``device=None`` clears it."""
        if device is None:
            self._call("select", None)
            return
        points = []
        for p in trail:
            try:
                points.append({"lat": float(p["lat"]), "lon": float(p["lon"]), "t": float(p["t"]),
                               "acc": None if p.get("acc") is None else float(p["acc"])})
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"trail point needs lat, lon and t: {p!r}") from None
        points.sort(key=lambda p: p["t"])
        self._call("select", {"device": str(device), "trail": points,
                              "now": time.time() if now is None else float(now),
                              "gapWarn": float(gap_warn_s), "gapBreak": float(gap_break_s)})

    def focus_map(self) -> None:
        """Give the map the keyboard: arrows pan, + and - zoom, "]" / "[" step through the
        alerting tags (selecting each as a click would)."""
        self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._call("focusMap")

    def pan_to(self, lat: float, lon: float, zoom: int | None = None) -> None:
        self._call("panTo", float(lat), float(lon), None if zoom is None else int(zoom))

    # ---- places: borough boundaries and search ----
    def _send_boroughs(self) -> None:
        """The real borough boundaries, drawn over every basemap (none without Places)."""
        if self.places is None:
            return
        try:
            features = self.places.boroughs.features
        except Exception as exc:   # noqa: BLE001 - a missing or damaged file: the map goes on
            log.error("borough boundaries not shown: %s", exc)
            return
        self._call("setBoroughs", [
            {"type": "Feature", "geometry": f["geometry"],
             "properties": {"name": str(f["properties"]["name"]), "label": list(f["properties"]["label"])}}
            for f in features])

    def search_places(self, text: str, limit: int = 8) -> list[dict]:
        """What the search box suggests for ``text`` (empty without Places or for blank text)."""
        if self.places is None or not text.strip():
            return []
        try:
            found = self.places.search(text, max(1, min(int(limit), 20)))
        except Exception as exc:   # noqa: BLE001 - search must never take the map down
            log.error("place search failed for %.80r: %s", text, exc)
            return []
        return [{"name": p.name, "kind": p.kind, "borough": p.borough, "lat": float(p.lat),
                 "lon": float(p.lon), "text": str(p)} for p in found]

    def focus_search(self) -> None:
        """Put the keyboard in the map's search box (Ctrl+F)."""
        self.view.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._call("focusSearch")

    def set_theme(self, theme: str) -> None:
        self._theme = _check_theme(theme)
        self._call("setTheme", self._theme)

    def set_basemap(self, value: str | pathlib.Path | None) -> Basemap:
        """A tile URL, an MBTiles path (raster or vector), None (the shipped vector basemap, else
        the built-in fallback) or "fallback"; raises BasemapError."""
        basemap = parse_basemap(value)
        self._apply_basemap(basemap)
        return basemap

    def _apply_basemap(self, basemap: Basemap) -> None:
        self.tiles.set_archive(basemap.path if basemap.kind in ("mbtiles", "vector") else None)
        self.requests.allowed_hosts = basemap.hosts()
        self._basemap = basemap
        self._call("setBasemap", basemap.to_js())

    @property
    def basemap(self) -> Basemap:
        return self._basemap


def _places_for(basemap: Basemap):
    """Places of the vector basemap shown, else of the shipped one; None when neither is there."""
    from monitorapp.places import Places
    path = basemap.path if basemap.kind == "vector" else SHIPPED_BASEMAP
    if path is None or not path.is_file():
        return None
    try:
        return Places.for_basemap(path)
    except Exception as exc:   # noqa: BLE001
        log.error("no borough boundaries or search for %s: %s", path, exc)
        return None


def _check_theme(theme: str) -> str:
    if theme not in ("light", "dark"):
        raise ValueError(f"theme must be 'light' or 'dark', not {theme!r}")
    return theme
