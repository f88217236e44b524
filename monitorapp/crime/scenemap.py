"""The map of one hit in the evidential PDF, drawn to scale from the data (vector, no tiles).

``draw_scene_map(canvas, box, query, result, places=None)`` draws, inside ``box`` (x, y, w, h
in mm on a ``PdfCanvas`` page), north up:

* the named streets around the scene (the shipped OpenStreetMap streets index of
  ``monitorapp.places``, when it covers the place), thin grey, with a few names;
* the scene: its centre cross and its radius (dashed), labelled "Scene" and the radius;
* the person's fixes near the scene in time order joined by a line, each with its accuracy
  circle (filled dot: in the window; open: around it; a cross: a single-fix jump);
* the space-time prisms that meet the place (``result["prisms"]``, spec v2 §5): for each pair of
  bracketing fixes, the ellipse of every point reachable between them at the query's speed bound
  (foci at the two fixes, distances adding up to speed × time between them plus both
  accuracies); a prism with only one fix is the disc of its reach; their union is drawn, cut at
  the frame. Drawn when the answer carries prisms (an older answer has none), with the fixes
  that bound them;
* a scale bar, a north arrow and a legend.

Only the data decides what is drawn: no live-map labels ("last fix … ago"), no zone kinds, no
toolbars. Positions are projected with ``monitorapp.engine.geo.Projector`` chosen for the place
(British National Grid in Great Britain, a local transverse Mercator elsewhere), as the verdicts are.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from monitorapp.crime.pdfcanvas import PdfCanvas, ellipse_points
from monitorapp.engine.geo import Projector
from monitorapp.feed.timeutil import parse_time

STREET_GREY, SCENE_GREY, FIX_GREY, PRISM_GREY = 0.72, 0.0, 0.15, 0.35
MAX_HALF_R, MIN_CAP_M = 8.0, 800.0


def _fix_xy(proj: Projector, f) -> tuple[float, float] | None:
    if not isinstance(f, dict) or f.get("lat") is None or f.get("lon") is None:
        return None
    return proj.to_xy(float(f["lon"]), float(f["lat"]))


def prism_shapes(query: dict, result: dict, proj: Projector, origin) -> list[list[tuple[float, float]]]:
    """The outline(s) of the union of the result's prisms, in metres from ``origin`` (the scene):
    each prism between two fixes is the ellipse with foci at them whose distances add up to
    speed x time between them plus both accuracies; with one fix, the disc of its reach."""
    import shapely
    speed = float(query.get("speed_ms") or 15.0)
    shapes = []
    for p in result.get("prisms") or []:
        a, b = p.get("a"), p.get("b")
        ax, bx = _fix_xy(proj, a), _fix_xy(proj, b)
        if ax and bx:
            dt = abs(parse_time(b["t"]) - parse_time(a["t"])) if a.get("t") and b.get("t") else 0.0
            major = speed * dt + float(a.get("acc") or 0) + float(b.get("acc") or 0)
            f1 = (ax[0] - origin[0], ax[1] - origin[1])
            f2 = (bx[0] - origin[0], bx[1] - origin[1])
            shapes.append(shapely.Polygon(ellipse_points(f1, f2, major)))
        elif ax or bx:
            f, xy, side = (a, ax, "a") if ax else (b, bx, "b")
            r = p.get("reach_m_at_mid")
            if isinstance(r, dict):
                r = r.get(side)
            if r is None:
                continue
            shapes.append(shapely.Point(xy[0] - origin[0], xy[1] - origin[1])
                          .buffer(float(r) + float(f.get("acc") or 0), 36))
    if not shapes:
        return []
    u = shapely.union_all(shapes)
    polys = list(u.geoms) if hasattr(u, "geoms") else [u]
    return [list(ring.coords) for poly in polys if not poly.is_empty
            for ring in (poly.exterior, *poly.interiors)]


def evidence_fixes(result: dict) -> list[dict]:
    """The fixes the map shows: those near the scene, and the prisms' and the window's
    bracketing fixes (which may be far off), once each."""
    out, seen = [], set()
    extra = [result.get("last_before"), result.get("first_after")]
    for p in result.get("prisms") or []:
        extra += [p.get("a"), p.get("b")]
    for f in list(result.get("fixes") or []) + [dict(f, bracket=True) for f in extra if isinstance(f, dict)]:
        key = (f.get("t"), f.get("lat"), f.get("lon"))
        if f.get("lat") is None or key in seen:
            continue
        seen.add(key)
        out.append(f)
    return out


def _nice(m: float) -> float:
    e = 10 ** math.floor(math.log10(max(m, 1e-9)))
    for k in (1, 2, 5, 10):
        if k * e >= m:
            return k * e
    return 10 * e


_street_cache: dict = {}


@functools.lru_cache(maxsize=64)
def projector_at(lon: float, lat: float) -> Projector:
    """The place's projector, made once per place (a pyproj Transformer costs ~0.4 s)."""
    return Projector([(lon, lat)])


def _streets(places, proj: Projector, origin, half: float):
    """Street polylines (metres from the scene) and their names, within ``half`` of it; one
    vectorised transform for them all, and kept for the next hit at the same scene."""
    if places is None:
        return []
    try:
        idx = places.streets
    except Exception:          # noqa: BLE001 - the map is evidence without its streets too
        return []
    if idx is None:
        return []
    key = (id(idx), round(origin[0], 1), round(origin[1], 1), round(half / 50.0))
    if key in _street_cache:
        return _street_cache[key]
    import shapely
    lon0, lat0 = proj.to_lonlat(*origin)
    sx, sy = idx.to_xy(lon0, lat0)
    box = shapely.box(float(sx) - half * 1.5, float(sy) - half * 1.5, float(sx) + half * 1.5, float(sy) + half * 1.5)
    hits = idx.tree.query(box)[:6000]
    out = []
    if len(hits):
        coords, which = shapely.get_coordinates(idx.tree.geometries[hits], return_index=True)
        if idx.crs.equals(proj.crs):
            x, y = coords[:, 0] + idx.origin[0], coords[:, 1] + idx.origin[1]
        else:
            lon, lat = idx.to_lonlat(coords[:, 0], coords[:, 1])
            x, y = proj.to_xy_many(np.asarray(lon), np.asarray(lat))
        x, y = np.asarray(x) - origin[0], np.asarray(y) - origin[1]
        cuts = np.flatnonzero(np.diff(which)) + 1
        for g, xs, ys in zip(hits, np.split(x, cuts), np.split(y, cuts)):
            out.append((xs, ys, idx.names[idx.piece_name[g]]))
    if len(_street_cache) > 32:
        _street_cache.clear()
    _street_cache[key] = out
    return out


def draw_scene_map(c: PdfCanvas, box, query: dict, result: dict, places=None) -> None:
    """Draw the map of one hit inside ``box`` (see the module docstring)."""
    x0, y0, w, h = box
    proj = projector_at(float(query["lon"]), float(query["lat"]))
    origin = proj.to_xy(float(query["lon"]), float(query["lat"]))
    radius = float(query["radius_m"])
    fixes = [f for f in evidence_fixes(result) if _fix_xy(proj, f)]
    pts = [(_fix_xy(proj, f), f) for f in fixes]
    rel = [((p[0] - origin[0]), (p[1] - origin[1]), f) for p, f in pts]
    prisms = prism_shapes(query, result, proj, origin)
    # extent: the radius with room around it and the fixes near; the bracketing fixes too, up to
    # MAX_HALF_R radii (past that they, and a prism, are cut at the frame: the tables give them)
    half = radius * 2.2
    for dx, dy, f in rel:
        reach = max(abs(dx), abs(dy)) + float(f.get("acc") or 0)
        half = max(half, min(reach, max(radius * MAX_HALF_R, MIN_CAP_M)) if f.get("bracket") else reach)
    half = half * 1.08
    scale = min(w, h) / (2 * half)                        # mm per metre
    cx, cy = x0 + w / 2, y0 + h / 2

    def at(dx, dy):
        return cx + dx * scale, cy - dy * scale

    c.rect(x0, y0, w, h, grey=0.4, width=0.3, fill=1.0)
    c.clip(x0, y0, w, h)
    named: dict[str, tuple] = {}
    streets = _streets(places, proj, origin, half)
    c.polylines([list(zip((cx + sx * scale).tolist(), (cy - sy * scale).tolist())) for sx, sy, _ in streets],
                grey=STREET_GREY, width=0.35)
    for sx, sy, name in streets:
        mid = len(sx) // 2
        d = math.hypot(sx[mid], sy[mid])
        if name and (name not in named or d < named[name][0]):
            named[name] = (d, sx[mid], sy[mid])
    for ring in prisms:
        c.polyline([at(*p) for p in ring], grey=PRISM_GREY, width=0.3, dash=(1.2, 0.8), closed=True,
                   fill=0.55, alpha=0.12)
    import shapely
    frame = shapely.box(-w / 2 / scale, -h / 2 / scale, w / 2 / scale, h / 2 / scale)
    covered = any(len(ring) > 3 and shapely.Polygon(ring).contains(frame) for ring in prisms)
    scx, scy = at(0, 0)
    c.circle(scx, scy, radius * scale, grey=SCENE_GREY, width=0.6, dash=(2.0, 1.2), fill=0.3, alpha=0.12)
    c.line(scx - 2.5, scy, scx + 2.5, scy, width=0.5)
    c.line(scx, scy - 2.5, scx, scy + 2.5, width=0.5)
    ordered = sorted(rel, key=lambda r: parse_time(r[2]["t"]) if r[2].get("t") else 0.0)
    good = [at(dx, dy) for dx, dy, f in ordered if not f.get("jump")]
    c.polyline(good, grey=FIX_GREY, width=0.35)
    # the accuracy circles as one shaded shape (many fixes in one place do not add up to black)
    discs = [shapely.Point(dx, dy).buffer(float(f["acc"]), 24) for dx, dy, f in ordered if float(f.get("acc") or 0) > 0]
    if discs:
        u = shapely.union_all(discs)
        for poly in (u.geoms if hasattr(u, "geoms") else [u]):
            c.polyline([at(*p) for p in poly.exterior.coords], grey=0.45, width=0.2, closed=True,
                       fill=0.5, alpha=0.12)
    for dx, dy, f in ordered:
        px, py = at(dx, dy)
        if f.get("jump"):
            c.line(px - 1.2, py - 1.2, px + 1.2, py + 1.2, width=0.4)
            c.line(px - 1.2, py + 1.2, px + 1.2, py - 1.2, width=0.4)
        else:
            c.circle(px, py, 0.9, grey=FIX_GREY, width=0.3,
                     fill=FIX_GREY if f.get("in_window") or (f.get("bracket") and _in_window(f, query)) else 1.0)
    for name, (_, sx, sy) in sorted(named.items(), key=lambda kv: kv[1][0])[:6]:
        px, py = at(sx, sy)
        c.text(px + 1, py - 1, name, size=5.5, grey=0.45)
    c.text(scx + radius * scale * 0.72 + 1, scy - radius * scale * 0.72, f"Scene, radius {radius:.0f} m",
           size=6.5, font="B")
    c.unclip()
    if covered:
        c.text(x0 + 3, y0 + 5, "The prism's reach covers the whole of this map: the person could have been "
               "anywhere on it in the window.", size=6.5, font="B", grey=0.2)
    # scale bar and north arrow, outside the clip so they always show
    bar = _nice(half / 2.5)
    bx, by = x0 + 4, y0 + h - 4
    c.rect(bx - 1, by - 4.5, bar * scale + 2 + 12, 6, grey=None, fill=1.0, alpha=0.5)
    c.line(bx, by, bx + bar * scale, by, width=0.8)
    c.text(bx + bar * scale + 1.5, by + 0.8, f"{bar:.0f} m" if bar < 1000 else f"{bar / 1000:g} km", size=6)
    nx, ny = x0 + w - 6, y0 + 10
    c.polyline([(nx, ny - 6), (nx - 1.8, ny), (nx + 1.8, ny)], closed=True, fill=0.0, width=0.2)
    c.text(nx, ny + 3.5, "N", size=7, font="B", align="center")


def _in_window(f: dict, query: dict) -> bool:
    try:
        return parse_time(query["from"]) <= parse_time(f["t"]) <= parse_time(query["to"])
    except (KeyError, TypeError, ValueError):
        return False


def legend_lines(result: dict) -> list[str]:
    """What the map's marks mean, for the line under it."""
    parts = ["dashed circle: the scene and its radius", "dots: fixes (filled in the window, open "
             "around it) joined in time order", "grey discs: each fix's stated accuracy"]
    if any(f.get("jump") for f in result.get("fixes") or []):
        parts.append("cross: a single-fix jump (not taken as presence)")
    if result.get("prisms"):
        parts.append("shaded with a dashed edge: the space-time prisms, every place reachable "
                     "between two fixes at the speed bound")
    parts.append("grey lines: named streets (OpenStreetMap data); north up")
    return parts
