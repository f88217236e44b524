"""The map's basemap choice and the MBTiles archive reader.

A basemap is one of four things (``Basemap.kind``):

* ``"tiles"``: a live XYZ tile URL such as ``https://tiles.example/{z}/{x}/{y}.png``;
* ``"mbtiles"``: a local raster MBTiles file (SQLite, table ``tiles``), served to the page
  through the ``emtiles://`` URL scheme so training and offline use need no network;
* ``"vector"``: a local vector MBTiles file (``format`` ``pbf``, Mapbox Vector Tiles, as built by
  ``monitorapp basemap build``), served the same way and drawn in the page by protomaps-leaflet
  in the map's greyscale style. The shipped ``resources/basemap/london.mbtiles`` is one, and it
  is the default when nothing is configured (``default_basemap``);
* ``"fallback"``: no basemap file at all: the page draws its own grid, borough names and zones.

``parse_basemap`` turns the user's setting (a URL, a path or ``None``) into a ``Basemap`` or
raises ``BasemapError`` with a message an operator can act on; ``None`` means "the shipped
vector basemap if it is there, else the fallback". ``MBTilesArchive`` reads tiles
(MBTiles rows are TMS: ``tile_row = 2**z - 1 - y``) and is safe to call with any input.
"""
from __future__ import annotations

import gzip
import pathlib
import sqlite3
import zlib
from dataclasses import dataclass

TILE_FORMATS = {
    "png": b"image/png",
    "jpg": b"image/jpeg",
    "jpeg": b"image/jpeg",
    "webp": b"image/webp",
}
VECTOR_FORMATS = {"pbf": b"application/x-protobuf", "mvt": b"application/x-protobuf"}
SHIPPED_BASEMAP = pathlib.Path(__file__).resolve().parents[2] / "resources" / "basemap" / "london.mbtiles"


class BasemapError(ValueError):
    """The configured basemap cannot be used; the message says why."""


@dataclass(frozen=True)
class Basemap:
    kind: str                      # "tiles" | "mbtiles" | "vector" | "fallback"
    url: str | None = None         # the tile URL template the page uses
    path: pathlib.Path | None = None
    min_zoom: int = 0
    max_zoom: int = 19             # max native zoom: Leaflet scales tiles past it
    attribution: str = ""
    bounds: tuple[float, float, float, float] | None = None   # west, south, east, north

    def hosts(self) -> set[str]:
        """The network origins ("host" or "host:port") this basemap loads from; {s} expands
        to Leaflet's subdomains a, b and c."""
        if self.kind != "tiles" or not self.url:
            return set()
        authority = self.url.split("://", 1)[1].split("/", 1)[0].split("@")[-1].lower()
        if authority.endswith((":80", ":443")):
            authority = authority.rsplit(":", 1)[0]
        return {authority.replace("{s}", s) for s in "abc"} if "{s}" in authority else {authority}

    def to_js(self) -> dict:
        """The JSON-able description the page's ``EM.setBasemap`` takes."""
        return {
            "kind": self.kind,
            "url": self.url,
            "minZoom": self.min_zoom,
            "maxNativeZoom": self.max_zoom,
            "attribution": self.attribution,
            "bounds": list(self.bounds) if self.bounds else None,
        }


FALLBACK = Basemap("fallback")
MBTILES_URL = "emtiles://tiles/{z}/{x}/{y}"


def default_basemap(shipped: pathlib.Path = SHIPPED_BASEMAP) -> Basemap:
    """The basemap used when none is configured: the shipped vector basemap, or the grid
    fallback when the file is not there (or cannot be read; logged by the caller)."""
    if not shipped.is_file():
        return FALLBACK
    try:
        return parse_basemap(shipped)
    except BasemapError:
        return FALLBACK


def parse_basemap(value: str | pathlib.Path | None) -> Basemap:
    """A tile URL, an MBTiles path (raster or vector) or None (the shipped vector basemap when
    it is there, else the built-in fallback)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default_basemap()
    if isinstance(value, str) and value.strip().lower() == "fallback":
        return FALLBACK
    if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
        url = value.strip()
        missing = [p for p in ("{z}", "{x}", "{y}") if p not in url]
        if missing:
            raise BasemapError(
                f"tile URL {url!r} lacks the placeholder(s) {', '.join(missing)}; "
                "expected e.g. https://host/{z}/{x}/{y}.png"
            )
        return Basemap("tiles", url=url)
    path = pathlib.Path(value).expanduser()
    if not path.is_file():
        raise BasemapError(f"basemap {str(value)!r} is neither a http(s) tile URL nor an existing MBTiles file")
    archive = MBTilesArchive(path)   # validates the file
    try:
        meta = archive.metadata
        min_zoom, max_zoom = archive.zoom_range()
        vector = archive.vector
    finally:
        archive.close()
    return Basemap(
        "vector" if vector else "mbtiles",
        url=MBTILES_URL,
        path=path.resolve(),
        min_zoom=min_zoom,
        max_zoom=max_zoom,
        attribution=meta.get("attribution", "") or ("© OpenStreetMap contributors" if vector else ""),
        bounds=_bounds(meta.get("bounds")),
    )


def _bounds(text: str | None) -> tuple[float, float, float, float] | None:
    """MBTiles ``bounds`` metadata ("west,south,east,north") or None when absent or invalid."""
    try:
        w, s, e, n = (float(v) for v in str(text).split(","))
    except (TypeError, ValueError):
        return None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        return None
    return w, s, e, n


class MBTilesArchive:
    """Read-only access to one MBTiles file."""

    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)
        uri = self.path.resolve().as_uri() + "?mode=ro"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            tables = {r[0] for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        except sqlite3.DatabaseError as exc:
            raise BasemapError(f"{self.path} is not an MBTiles file (not SQLite: {exc})") from None
        if "tiles" not in tables:
            self._db.close()
            raise BasemapError(f"{self.path} is not an MBTiles file (no 'tiles' table)")
        self.metadata: dict[str, str] = {}
        if "metadata" in tables:
            self.metadata = {str(k): str(v) for k, v in self._db.execute("SELECT name, value FROM metadata")}
        fmt = self.metadata.get("format", "png").lower()
        if fmt not in TILE_FORMATS and fmt not in VECTOR_FORMATS:
            self._db.close()
            raise BasemapError(f"{self.path}: tile format {fmt!r} is not one the map can show "
                               f"({', '.join(sorted(TILE_FORMATS | VECTOR_FORMATS))})")
        self.vector = fmt in VECTOR_FORMATS
        self.mime = VECTOR_FORMATS[fmt] if self.vector else TILE_FORMATS[fmt]

    def zoom_range(self) -> tuple[int, int]:
        lo, hi = self._db.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
        if lo is None:
            raise BasemapError(f"{self.path}: the MBTiles file holds no tiles")
        return int(self.metadata.get("minzoom", lo)), int(self.metadata.get("maxzoom", hi))

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ (z, x, y), or None when the archive has none there."""
        if z < 0 or z > 30 or not (0 <= x < 2 ** z) or not (0 <= y < 2 ** z):
            return None
        row = self._db.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (2 ** z - 1) - y),
        ).fetchone()
        if not row or row[0] is None:
            return None
        data = bytes(row[0])
        if self.vector and data[:2] == b"\x1f\x8b":
            # MBTiles vector tiles are stored gzipped; the page's tile source does not inflate
            # them and a scheme reply cannot say Content-Encoding, so we inflate here.
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error):
                return None
        return data

    def close(self) -> None:
        self._db.close()
