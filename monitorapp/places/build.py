"""``monitorapp basemap build``: an offline vector basemap, boroughs and streets from OSM data.

One pipeline serves the basemap shipped in ``resources/basemap/`` and a centre's own build from
its own extract (for example all of Greater London). It runs two tools from Debian's packages,
``osmium-tool`` and ``tilemaker`` (``make basemap-tools`` installs them), and writes three
files side by side::

    OUT.mbtiles                 vector tiles (Mapbox Vector Tile, gzip), zoom 10-15, layers
                                roads, rail, buildings, water, parks, boundaries, places
    OUT.boroughs.geojson        the London borough boundaries (33 with the City), short names
    OUT.streets.npz             the streets index: named street segments in metres (EPSG:27700)
                                and named places, for reverse geocoding and place search

Steps: check every input is OSM data (a clear one-line error, exit 2, when not); sort each
input into PBF (``osmium sort``: XML ``.osm`` inputs become PBF, which tilemaker needs); take
the borough boundaries (relations ``boundary=administrative`` with a ``ref:gss`` of E09…, or
``admin_level=8`` when no GSS code is there) from ``--boundaries`` or the inputs and build
their polygons (``osmium export``); optionally cut the data to the boroughs (``--area``); add
one label node per borough; merge; build the tiles with our profile (``profile/config.json``,
``profile/process.lua``); and build the streets index from the same merged data.

Imports only the standard library, numpy, shapely and ``monitorapp.places``.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

from monitorapp.places import boroughs as boroughs_mod
from monitorapp.places import index as index_mod

PROFILE = pathlib.Path(__file__).resolve().parent / "profile"
ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
LABEL_NODE_ID = 10**15            # ids of our label nodes: far above any OSM node id
TOOLS_HINT = "install them with 'make basemap-tools' (Debian packages tilemaker and osmium-tool)"


class BuildError(Exception):
    """The build cannot go on; the message is the one line the operator reads."""


def sidecars(out: str | pathlib.Path) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    """(tiles, boroughs GeoJSON, streets index) paths for the basemap file ``out``."""
    out = pathlib.Path(out)
    stem = out.name[:-len(".mbtiles")] if out.name.endswith(".mbtiles") else out.name
    return out, out.with_name(stem + ".boroughs.geojson"), out.with_name(stem + ".streets.npz")


def sniff_osm(path: pathlib.Path) -> str:
    """"pbf" or "xml" when the file looks like OSM data; raises BuildError otherwise."""
    if not path.is_file():
        raise BuildError(f"{path}: no such file")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if len(head) >= 8:
        size = int.from_bytes(head[:4], "big")
        if 0 < size < 64 * 1024 and b"OSMHeader" in head[4:4 + size]:
            return "pbf"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if (text.startswith(b"<?xml") or text.startswith(b"<osm")) and b"<osm" in head:
        return "xml"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh":
        if re.search(r"\.osm\.(gz|bz2)$", path.name):
            return "xml"
    raise BuildError(f"{path}: not OpenStreetMap data (expected an .osm.pbf or .osm file)")


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BuildError(f"{name} is not installed: {TOOLS_HINT}")
    return found


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = " ".join((r.stderr or r.stdout).split())[-300:]
        raise BuildError(f"{what} failed: {tail}")


class Progress:
    """Prints the build's steps and a percentage for the tile step, on one stream."""

    def __init__(self, stream=None, steps: int = 6):
        self.stream = stream if stream is not None else sys.stderr
        self.steps = steps
        self.n = 0
        self.t0 = time.monotonic()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_pct = -1

    def step(self, text: str) -> None:
        self.n += 1
        self._last_pct = -1
        print(f"[{self.n}/{self.steps}] {text}", file=self.stream, flush=True)

    def percent(self, pct: int, text: str) -> None:
        shown = pct if self.tty else (pct // 10) * 10      # a log gets a line every 10 %
        if shown <= self._last_pct:
            return
        self._last_pct = shown
        end = "\r" if self.tty and pct < 100 else "\n"
        print(f"      {text} {shown:3d}%", end=end, file=self.stream, flush=True)

    def done(self, text: str) -> None:
        print(f"done in {time.monotonic() - self.t0:.1f} s: {text}", file=self.stream, flush=True)


_TILE_LINE = re.compile(rb"Zoom level (\d+), writing tile (\d+) of (\d+)")


def run_tilemaker(merged: pathlib.Path, out: pathlib.Path, bbox, progress: Progress,
                  store: pathlib.Path) -> None:
    cmd = [_tool("tilemaker"), "--input", str(merged), "--output", str(out),
           "--config", str(PROFILE / "config.json"), "--process", str(PROFILE / "process.lua"),
           "--bbox", ",".join(f"{v:.7f}" for v in bbox), "--skip-integrity"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=store)
    tail = b""
    buf = b""
    assert proc.stdout is not None
    while True:
        chunk = proc.stdout.read1(65536) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096)
        if not chunk:
            break
        buf += chunk
        *lines, buf = re.split(rb"[\r\n]", buf)
        for line in lines:
            line = line.strip()
            if not line:
                continue
            tail = (tail + b" " + line)[-600:]
            m = _TILE_LINE.search(line)
            if m:
                z, i, n = (int(g) for g in m.groups())
                progress.percent(int(100 * i / max(n, 1)), f"tiles (zoom {z})")
    rc = proc.wait()
    if rc != 0 or not out.is_file():
        raise BuildError(f"tilemaker failed (exit {rc}): {tail.decode('utf-8', 'replace')[-300:]}")
    progress.percent(100, "tiles")


def _opl_escape(value: str) -> str:
    out = []
    for ch in value:
        if ch.isalnum() or ch in "-_.:;/()'!?&*+<>[]{}~^|$#":
            out.append(ch)
        else:
            out.append(f"%{ord(ch):x}%")
    return "".join(out)


def label_nodes_opl(boroughs_fc: dict) -> str:
    """One node per borough at its label point, tagged for the profile's places layer."""
    lines = []
    for i, f in enumerate(boroughs_fc["features"], start=1):
        lon, lat = f["properties"]["label"]
        tags = f"emapp:label=borough,name={_opl_escape(f['properties']['name'])}"
        lines.append(f"n{LABEL_NODE_ID + i} v1 dV c0 t2000-01-01T00:00:00Z i0 u T{tags} x{lon:.7f} y{lat:.7f}")
    return "\n".join(lines) + "\n"


def _bbox_of(path: pathlib.Path) -> tuple[float, float, float, float]:
    r = subprocess.run([_tool("osmium"), "fileinfo", "-e", "-j", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildError(f"osmium fileinfo failed: {' '.join(r.stderr.split())[-300:]}")
    box = json.loads(r.stdout).get("data", {}).get("bbox")
    if not box:
        raise BuildError(f"{path}: the extract holds no nodes")
    return tuple(box)


def _strip_boundaries(osmium: str, path: pathlib.Path, tmp: pathlib.Path) -> None:
    """Remove the administrative boundary relations of an extract, so that those of
    ``--boundaries`` (complete, possibly of another date) are the only ones."""
    opl = tmp / "boundary-relations.opl"
    _run([osmium, "tags-filter", "-R", "-O", "-f", "opl", "-o", str(opl), str(path),
          "r/boundary=administrative"], "finding boundary relations")
    ids = [line.split(" ", 1)[0] for line in opl.read_text(encoding="utf-8").splitlines() if line.startswith("r")]
    if ids:
        (tmp / "boundary.ids").write_text("\n".join(ids) + "\n")
        _run([osmium, "removeid", "-O", "-o", str(tmp / "stripped.osm.pbf"), str(path),
              "-i", str(tmp / "boundary.ids")], "removing boundary relations")
        os.replace(tmp / "stripped.osm.pbf", path)


def _drop_incomplete_ways(osmium: str, path: pathlib.Path, tmp: pathlib.Path) -> int:
    """Remove ways that name nodes the data does not hold (cut at an extract's edge: tilemaker
    stops on them); returns how many."""
    r = subprocess.run([osmium, "check-refs", "--show-ids", str(path)], capture_output=True, text=True)
    bad = sorted({line.split()[2] for line in r.stdout.splitlines() if line.count(" ") == 2 and " in w" in line})
    if r.returncode not in (0, 1):
        raise BuildError(f"osmium check-refs failed: {' '.join(r.stderr.split())[-300:]}")
    if bad:
        ids = tmp / "incomplete.ids"
        ids.write_text("\n".join(bad) + "\n")
        whole = tmp / "complete.osm.pbf"
        _run([osmium, "removeid", "-O", "-o", str(whole), str(path), "-i", str(ids)], "dropping incomplete ways")
        os.replace(whole, path)
    return len(bad)


def build(osm: list[pathlib.Path], out: pathlib.Path, *, boundaries: pathlib.Path | None = None,
          area: str = "all", progress: Progress | None = None) -> dict:
    """Run the pipeline; returns figures (seconds, sizes, counts). Raises BuildError."""
    progress = progress or Progress()
    if not osm:
        raise BuildError("give at least one --osm extract")
    osm = [pathlib.Path(p).resolve() for p in osm]
    boundaries = pathlib.Path(boundaries).resolve() if boundaries else None
    out = pathlib.Path(out).resolve()          # tilemaker runs in a temporary folder
    inputs = list(osm) + ([boundaries] if boundaries else [])
    for p in inputs:
        sniff_osm(p)
    osmium = _tool("osmium")
    _tool("tilemaker")
    tiles_out, boroughs_out, streets_out = sidecars(out)
    tiles_out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="basemap-") as tmpname:
        tmp = pathlib.Path(tmpname)
        progress.step(f"reading {len(inputs)} extract(s)")
        sorted_files = []
        for i, p in enumerate(inputs):
            dst = tmp / f"in{i}.osm.pbf"
            _run([osmium, "sort", "-O", "-o", str(dst), str(p)], f"reading {p.name}")
            if boundaries is not None and i < len(osm):
                _strip_boundaries(osmium, dst, tmp)   # the boundaries come from --boundaries only
            sorted_files.append(dst)
        progress.step("borough boundaries")
        rels = tmp / "boundaries.osm.pbf"
        _run([osmium, "merge", "-O", "-o", str(tmp / "merged-versions.osm.pbf"), *map(str, sorted_files)],
             "merging the extracts")
        # extracts of different dates hold different versions of the same objects: keep the newest
        _run([osmium, "time-filter", "-O", "-o", str(tmp / "all.osm.pbf"), str(tmp / "merged-versions.osm.pbf")],
             "keeping the newest version of each object")
        _drop_incomplete_ways(osmium, tmp / "all.osm.pbf", tmp)
        # the polygons from the boundaries file by itself when there is one: the extracts' newer
        # versions of shared nodes and ways must not break its rings
        source = sorted_files[-1] if boundaries is not None else tmp / "all.osm.pbf"
        _run([osmium, "tags-filter", "-O", "-o", str(rels), str(source),
              "r/boundary=administrative"], "selecting boundaries")
        seq = tmp / "boundaries.geojsonseq"
        _run([osmium, "export", "-O", "-f", "geojsonseq", "--geometry-types=polygon", "-o", str(seq),
              str(rels)], "building boundary polygons")
        fc = boroughs_mod.boroughs_from_geojsonseq(seq)
        if not fc["features"]:
            raise BuildError("no London borough boundaries in the data (relations boundary="
                             "administrative with ref:gss E09…, or admin_level=8); give --boundaries")
        data = tmp / "all.osm.pbf"
        if area != "all":
            fc = boroughs_mod.select(fc, area)
            poly = tmp / "area.geojson"
            poly.write_text(json.dumps(boroughs_mod.union_feature(fc)))
            cut = tmp / "cut.osm.pbf"
            progress.step(f"cutting the data to {area}")
            _run([osmium, "extract", "-O", "-s", "smart", "-p", str(poly), "-o", str(cut), str(data)],
                 "cutting to the area")
            data = cut
        else:
            progress.step("whole extract kept (--area all)")
        boroughs_out.write_text(json.dumps(fc, ensure_ascii=False, separators=(",", ":")) + "\n",
                                encoding="utf-8")
        labels = tmp / "labels.opl"
        labels.write_text(label_nodes_opl(fc), encoding="utf-8")
        merged = tmp / "merged.osm.pbf"
        _run([osmium, "sort", "-O", "-o", str(tmp / "labels.osm.pbf"), str(labels)], "label nodes")
        _run([osmium, "merge", "-O", "-o", str(merged), str(data), str(tmp / "labels.osm.pbf")],
             "merging")
        bbox = _bbox_of(merged)
        progress.step("vector tiles (tilemaker)")
        part = tiles_out.with_name(tiles_out.name + ".part.mbtiles")   # tilemaker goes by the suffix
        part.unlink(missing_ok=True)
        run_tilemaker(merged, part, bbox, progress, tmp)
        progress.step("streets index")
        streets_seq = tmp / "streets.geojsonseq"
        named = tmp / "named.osm.pbf"
        _run([osmium, "tags-filter", "-O", "-o", str(named), str(data), *index_mod.OSMIUM_FILTERS],
             "selecting streets")
        _run([osmium, "export", "-O", "-f", "geojsonseq", "-o", str(streets_seq), str(named)],
             "exporting streets")
        stats = index_mod.write_index(streets_seq, streets_out)
        os.replace(part, tiles_out)
    figures = {
        "seconds": round(time.monotonic() - t0, 1),
        "tiles_bytes": tiles_out.stat().st_size,
        "boroughs": len(fc["features"]),
        "boroughs_bytes": boroughs_out.stat().st_size,
        "streets_bytes": streets_out.stat().st_size,
        **stats,
    }
    progress.done(f"{tiles_out} ({figures['tiles_bytes'] / 1e6:.1f} MB), {figures['boroughs']} boroughs, "
                  f"{figures['streets']} named streets, {figures['places']} places")
    return figures


class _OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2, as the other commands do
        self.exit(2, f"{self.prog}: {message}\n")


def cli_main(argv: list[str]) -> int:
    parser = _OneLineParser(prog="monitorapp basemap",
                            description="The offline vector basemap, from OpenStreetMap data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    b = sub.add_parser("build", help="build the basemap, boroughs and streets index from OSM extracts",
                       description="Build OUT (MBTiles vector tiles) and, beside it, "
                                   "OUT.boroughs.geojson and OUT.streets.npz.")
    b.add_argument("--osm", action="append", required=True, type=pathlib.Path, metavar="EXTRACT",
                   help="an .osm.pbf (or .osm) extract; repeat for several")
    b.add_argument("--boundaries", type=pathlib.Path, metavar="FILE",
                   help="OSM data holding the borough boundary relations (default: the extracts)")
    b.add_argument("--area", default="all",
                   help="'all' (default: everything in the extracts), 'boroughs' (cut to the "
                        "London boroughs) or borough names, comma-separated (e.g. Camden,Islington)")
    b.add_argument("--out", required=True, type=pathlib.Path, metavar="FILE",
                   help="the basemap file to write (.mbtiles)")
    args = parser.parse_args(argv)
    try:
        figures = build(args.osm, args.out, boundaries=args.boundaries, area=args.area)
    except (BuildError, boroughs_mod.BoroughError) as e:
        print(f"monitorapp basemap: {e}", file=sys.stderr)
        return 2
    print(json.dumps(figures))
    return 0
