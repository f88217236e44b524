"""The map page's private URL schemes, so it works with no network.

* ``emapp://map/index.html``: the page itself (generated once per view by ``ui.map.page``);
  ``emapp://map/vendor/<npm package>/<file>``: Leaflet and Geoman from ``resources/web/
  node_modules`` (only packages named in ``resources/web/manifest.json``);
  ``emapp://map/app/<file>``: our own ``resources/web`` scripts and styles.
* ``emtiles://tiles/{z}/{x}/{y}``: tiles of the configured MBTiles file: raster images, or
  Mapbox Vector Tiles (``application/x-protobuf``, inflated from the archive's gzip) that the
  page draws with protomaps-leaflet; the page fetches those with ``fetch``, so the reply carries
  ``Access-Control-Allow-Origin`` and a tile the archive lacks is an empty tile, not an error.

Qt requires custom schemes to be registered before the ``QApplication`` exists:
``register_schemes()`` does it and is called when this module is imported before the
application is created (``ui.map.view`` imports it); calling it later is a no-op with a warning.
"""
from __future__ import annotations

import logging
import mimetypes
import pathlib
import re
import sqlite3

from PySide6.QtCore import QBuffer, QByteArray, QCoreApplication, QIODevice, QObject
from PySide6.QtWebEngineCore import (
    QWebEngineUrlRequestInfo,
    QWebEngineUrlRequestInterceptor,
    QWebEngineUrlRequestJob,
    QWebEngineUrlScheme,
    QWebEngineUrlSchemeHandler,
)

from ui.map.basemap import MBTilesArchive

log = logging.getLogger(__name__)

APP_SCHEME = b"emapp"
TILE_SCHEME = b"emtiles"
PAGE_URL = "emapp://map/index.html"
WEB_DIR = pathlib.Path(__file__).resolve().parents[2] / "resources" / "web"

_registered = False

MIME = {
    ".js": b"text/javascript",
    ".css": b"text/css",
    ".html": b"text/html",
    ".png": b"image/png",
    ".svg": b"image/svg+xml",
    ".json": b"application/json",
    ".map": b"application/json",
}


def is_registered() -> bool:
    return _registered


def register_schemes() -> bool:
    """Register emapp:// and emtiles:// with QtWebEngine; False when it is too late (the
    QApplication exists already and the schemes were not registered before it)."""
    global _registered
    if _registered:
        return True
    if QCoreApplication.instance() is not None:
        log.error("map URL schemes must be registered before the QApplication is created; "
                  "import ui.map.view before creating the application")
        return False
    for name in (APP_SCHEME, TILE_SCHEME):
        scheme = QWebEngineUrlScheme(name)
        scheme.setSyntax(QWebEngineUrlScheme.Syntax.Host)
        scheme.setFlags(
            QWebEngineUrlScheme.Flag.LocalScheme
            | QWebEngineUrlScheme.Flag.LocalAccessAllowed
            | QWebEngineUrlScheme.Flag.CorsEnabled
            | QWebEngineUrlScheme.Flag.ContentSecurityPolicyIgnored
            | QWebEngineUrlScheme.Flag.FetchApiAllowed     # the vector basemap fetch()es its tiles
        )
        QWebEngineUrlScheme.registerScheme(scheme)
    _registered = True
    return True


def _reply(job: QWebEngineUrlRequestJob, mime: bytes, data: bytes, *, cors: bool = False) -> None:
    buf = QBuffer(job)            # owned by the job: lives exactly as long as the reply
    buf.setData(QByteArray(data))
    buf.open(QIODevice.OpenModeFlag.ReadOnly)
    if cors:                      # the page (emapp://map) fetches emtiles:// cross-origin
        job.setAdditionalResponseHeaders({QByteArray(b"Access-Control-Allow-Origin"): QByteArray(b"*")})
    job.reply(QByteArray(mime), buf)


class AssetSchemeHandler(QWebEngineUrlSchemeHandler):
    """Serves the page, our scripts and the npm packages listed in the manifest."""

    def __init__(self, page_html: str, packages: list[str], web_dir: pathlib.Path = WEB_DIR,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.page_html = page_html.encode("utf-8")
        self.web_dir = web_dir.resolve()
        self.roots = {p: (web_dir / "node_modules" / p).resolve() for p in packages}

    def resolve(self, url_path: str) -> pathlib.Path | None:
        """The file for a URL path under /app/ or /vendor/<package>/, never outside them."""
        if url_path.startswith("/app/"):
            root, rel = self.web_dir, url_path[len("/app/"):]
            if "/" in rel:                     # our own files are flat; node_modules is not ours
                return None
        elif url_path.startswith("/vendor/"):
            rest = url_path[len("/vendor/"):]
            for package, package_root in self.roots.items():
                if rest.startswith(package + "/"):
                    root, rel = package_root, rest[len(package) + 1:]
                    break
            else:
                return None
        else:
            return None
        target = (root / rel).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return None
        return target

    def requestStarted(self, job: QWebEngineUrlRequestJob) -> None:  # noqa: N802 (Qt API)
        url = job.requestUrl()
        path = url.path()
        if url.host() != "map":
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        if path in ("/", "/index.html"):
            _reply(job, b"text/html", self.page_html)
            return
        target = self.resolve(path)
        if target is None:
            log.warning("map page asked for an unknown asset %s", url.toString())
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        mime = MIME.get(target.suffix) or (mimetypes.guess_type(target.name)[0] or "application/octet-stream").encode()
        _reply(job, mime, target.read_bytes())


_TILE_PATH = re.compile(r"^/(\d{1,2})/(\d{1,9})/(\d{1,9})(?:\.\w+)?$")


class TileSchemeHandler(QWebEngineUrlSchemeHandler):
    """Serves ``emtiles://tiles/{z}/{x}/{y}`` from an MBTiles file (or fails: no file set)."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.archive: MBTilesArchive | None = None
        self.served = 0
        self.empty = 0

    def set_archive(self, path: str | pathlib.Path | None) -> None:
        if self.archive is not None:
            self.archive.close()
            self.archive = None
        if path is not None:
            self.archive = MBTilesArchive(path)

    def requestStarted(self, job: QWebEngineUrlRequestJob) -> None:  # noqa: N802 (Qt API)
        match = _TILE_PATH.match(job.requestUrl().path())
        if self.archive is None or match is None:
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        z, x, y = (int(g) for g in match.groups())
        try:
            data = self.archive.tile(z, x, y)
        except sqlite3.Error as exc:   # a damaged file must not take the console down
            log.warning("MBTiles read failed for %s: %s", job.requestUrl().toString(), exc)
            data = None
        vector = self.archive.vector
        if data is None and not (vector and 0 <= x < 2 ** z and 0 <= y < 2 ** z):
            job.fail(QWebEngineUrlRequestJob.Error.UrlNotFound)
            return
        if data is None:
            self.empty += 1           # nothing mapped there (sea, beyond the extract): empty tile
        else:
            self.served += 1
        _reply(job, self.archive.mime, data or b"", cors=vector)

    def close(self) -> None:
        self.set_archive(None)


LOCAL_SCHEMES = {"emapp", "emtiles", "qrc", "data", "blob"}


class LocalOnlyInterceptor(QWebEngineUrlRequestInterceptor):
    """Lets the page load only local content, plus the host of a configured live tile URL.

    The map must never depend on (or leak requests to) a CDN; anything else is blocked and
    remembered in ``blocked`` so a test or the log shows it."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.allowed_hosts: set[str] = set()
        self.blocked: list[str] = []
        self.requested: list[str] = []

    def interceptRequest(self, info: QWebEngineUrlRequestInfo) -> None:  # noqa: N802 (Qt API)
        url = info.requestUrl()
        text = url.toString()
        if len(self.requested) < 10_000:
            self.requested.append(text)
        if url.scheme() in LOCAL_SCHEMES:
            return
        if url.scheme() in ("http", "https"):
            port = url.port()
            origin = url.host().lower() + (f":{port}" if port not in (-1, 80, 443) else "")
            if origin in self.allowed_hosts:
                return
        info.block(True)
        if len(self.blocked) < 1000:
            self.blocked.append(text)
        log.warning("map page request blocked (not local, not the tile host): %.200s", text)
