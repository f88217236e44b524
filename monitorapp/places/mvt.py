"""Reads what a basemap file holds: its metadata, and the layers and names of a vector tile.

A check for the pipeline's output without a map renderer: ``MBTilesInfo(path)`` opens the
MBTiles file read-only and gives its metadata (format, zoom range, bounds, attribution,
``vector_layers``), the number of tiles per zoom, and ``layers(z, x, y)``: a decoded Mapbox
Vector Tile (protobuf, gzip) as {layer name: [feature properties, ...]}. Geometry is not
decoded. The protobuf reader covers what the MVT 2.1 spec uses (varints, length-delimited
fields, 32/64-bit values) and nothing else.

Imports only the standard library.
"""
from __future__ import annotations

import gzip
import json
import pathlib
import sqlite3
import struct
import zlib


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; value is bytes for wire type 2."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            value, i = buf[i:i + size], i + size
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _value(buf: bytes):
    for field, wire, v in _fields(buf):
        if field == 1:
            return v.decode("utf-8")
        if field == 2:
            return struct.unpack("<f", v)[0]
        if field == 3:
            return struct.unpack("<d", v)[0]
        if field in (4, 5):
            return v
        if field == 6:
            return (v >> 1) ^ -(v & 1)
        if field == 7:
            return bool(v)
    return None


def _packed(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def decode_tile(data: bytes) -> dict[str, list[dict]]:
    """{layer: [properties of each feature]} of one vector tile (gzip/zlib or raw)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:1] == b"\x78":
        data = zlib.decompress(data)
    layers: dict[str, list[dict]] = {}
    for field, _, layer in _fields(data):
        if field != 3:
            continue
        name, keys, values, feats = "", [], [], []
        for f, _, v in _fields(layer):
            if f == 1:
                name = v.decode("utf-8")
            elif f == 3:
                keys.append(v.decode("utf-8"))
            elif f == 4:
                values.append(_value(v))
            elif f == 2:
                feats.append(v)
        props = []
        for feat in feats:
            tags = []
            for f, _, v in _fields(feat):
                if f == 2:
                    tags = _packed(v)
            props.append({keys[tags[k]]: values[tags[k + 1]] for k in range(0, len(tags) - 1, 2)})
        layers.setdefault(name, []).extend(props)
    return layers


class MBTilesInfo:
    def __init__(self, path: str | pathlib.Path):
        self.path = pathlib.Path(path)
        self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def metadata(self) -> dict:
        meta = dict(self.conn.execute("SELECT name, value FROM metadata").fetchall())
        if "json" in meta:
            meta["json"] = json.loads(meta["json"])
        return meta

    def tiles_per_zoom(self) -> dict[int, int]:
        return dict(self.conn.execute("SELECT zoom_level, count(*) FROM tiles GROUP BY zoom_level").fetchall())

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ (MBTiles rows are TMS: the row is flipped)."""
        row = self.conn.execute("SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                                (z, x, (1 << z) - 1 - y)).fetchone()
        return row[0] if row else None

    def layers(self, z: int, x: int, y: int) -> dict[str, list[dict]]:
        data = self.tile(z, x, y)
        return decode_tile(data) if data else {}


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile (x, y) holding a position at zoom z (Web Mercator)."""
    import math
    n = 1 << z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return x, y
