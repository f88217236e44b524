"""The caseload file (spec §3): load, validate, and hold it for the engine.

``load_caseload(path)`` reads and validates the whole file and raises ``CaseloadError`` listing
*every* problem, each with its place (``offender OFF-0003 requirement R-0003-C: ...``,
``zone Z-EXCL-0001: ...``), so whoever edits the file fixes it in one go.

Decisions where the spec is silent:
  * Offender ids, device ids, zone ids and requirement ids must each be unique across the file.
  * ``fix_interval_s`` defaults to 60 and must be 1–86,400; curfew ``grace_s`` defaults to 600 and
    appointment ``grace_s`` to 300, both 0–86,400.
  * A curfew must have a non-empty schedule; an exclusion schedule may be null (always).
  * A circle's ``radius_m`` must be 1 m–100 km; polygons must have closed rings of at least
    four positions within ±180/±90; an invalid (self-intersecting) polygon is an error rather
    than being repaired, since the zone boundary is a court's condition. A position is two or
    three numbers (``[lon, lat]`` or ``[lon, lat, alt]``, RFC 7946 §3.1.1).
  * A zone that crosses the antimeridian (a polygon whose longitudes span more than 180°, or a
    circle reaching past ±180°) is refused: GeoJSON draws such a polygon the long way round the
    Earth, so it would never alert. RFC 7946 §3.1.9 asks for it to be split at ±180°, and that
    is what the message says. A circle that reaches a pole is refused likewise.
  * Nesting: a caseload is at most ``MAX_DEPTH`` (32) arrays and objects deep; the deepest thing
    the format needs is a MultiPolygon position at depth 9. Anything deeper is refused as one
    problem naming where it is, before any other check, so that no later stage (validation, a
    copy, the store's JSON, a checkpoint) can hit Python's recursion limit. A file nested beyond
    what the JSON parser itself can read is refused in the same words.
  * The file must be UTF-8 (RFC 8259 §8.1; a byte-order mark is tolerated).
  * The offender's record (issue 21), every field optional, so a version 1 file without them
    stays valid: ``phone`` (a telephone number: digits, spaces, ``+ ( ) - .``, 3–32 characters),
    ``photo`` (a file path, 1–1024 characters; relative to the directory the console starts
    in), ``address`` (1–300 characters), ``offence_category`` (1–120), ``risk_notes``
    (1–2000), ``order`` ``{"start", "end"}`` (``YYYY-MM-DD``, end not before start),
    ``"court_ref"`` (1–80), ``"court"`` (1–120)}, ``victim_contact`` ``{"name", "phone",
    "relation"?, "note"?}`` where the order protects a victim, and ``responsible_officer``
    ``{"name", "email", "team", "phone"?}`` (spec v2 §3).
"""
from __future__ import annotations

import copy
import json
import math
import pathlib
import re
import reprlib
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shapely.geometry import shape

from monitorapp.gcpause import paused_gc
from monitorapp.engine.schedule import DAYS, parse_hhmm
from monitorapp.feed.timeutil import TimeFormatError, parse_time

_DEVICE_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
REQUIREMENT_TYPES = ("exclusion", "curfew", "appointment")
PHONE_RE = re.compile(r"\+?[0-9][0-9 ()\-.]{2,31}")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_DEPTH = 32                      # arrays and objects, the document itself counting as 1
EARTH_RADIUS_M = 6_371_008.8        # mean radius: only to tell whether a circle reaches ±180° or a pole
ANTIMERIDIAN = "crosses the antimeridian: not supported; split it at ±180°"

_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxstring, _repr.maxother = 2, 40, 40


def _short(value: object) -> str:
    """A value for a message: bounded in length and depth, whatever the file holds."""
    return _repr.repr(value)


class CaseloadError(ValueError):
    def __init__(self, problems: list[str], source: str = "caseload"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass
class Zone:
    id: str
    name: str
    geometry: dict
    radius_m: float | None = None
    properties: dict = field(default_factory=dict)
    version: int = 1

    def feature(self) -> dict:
        props = dict(self.properties, name=self.name)
        if self.radius_m is not None:
            props["radius_m"] = self.radius_m
        return {"type": "Feature", "id": self.id, "properties": props, "geometry": self.geometry}


@dataclass
class Requirement:
    id: str
    type: str
    zone: str
    schedule: list[dict] | None = None
    grace_s: float = 0.0
    start: float | None = None   # appointments
    end: float | None = None
    raw: dict = field(default_factory=dict)


@dataclass
class Offender:
    id: str
    name: str
    risk: str
    borough: str
    device: str
    fix_interval_s: float
    requirements: list[Requirement]
    raw: dict = field(default_factory=dict)


@dataclass
class Caseload:
    tz: str
    zones: dict[str, Zone]
    offenders: dict[str, Offender]
    raw: dict

    @property
    def by_device(self) -> dict[str, Offender]:
        return {o.device: o for o in self.offenders.values()}

    def devices(self) -> set[str]:
        return {o.device for o in self.offenders.values()}


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _check_window(w, where: str, problems: list[str]) -> None:
    if not isinstance(w, dict):
        problems.append(f"{where}: a schedule window must be an object")
        return
    days = w.get("days")
    if days != "daily":
        if not isinstance(days, list) or not days or not all(d in DAYS for d in days):
            problems.append(f"{where}: days must be \"daily\" or a non-empty list of {', '.join(DAYS)}")
    for k in ("start", "end"):
        try:
            parse_hhmm(w.get(k))
        except ValueError as e:
            problems.append(f"{where}: {k}: {e}")


def _is_position(p) -> bool:
    """``[lon, lat]`` or ``[lon, lat, alt]``, numbers, within ±180/±90 (nothing nested further)."""
    return (isinstance(p, list) and (len(p) == 2 or (len(p) == 3 and _is_num(p[2])))
            and _is_num(p[0]) and _is_num(p[1]) and -180 <= p[0] <= 180 and -90 <= p[1] <= 90)


def _check_circle_extent(where: str, lon: float, lat: float, radius_m: float, problems: list[str]) -> None:
    """A circle must not reach a pole nor past ±180° of longitude (on the sphere: exact enough
    for a yes/no at these radii, which are at most 100 km)."""
    a = radius_m / EARTH_RADIUS_M                      # angular radius, radians
    if abs(lat) + math.degrees(a) >= 90:
        problems.append(f"{where}: reaches a pole: not supported")
        return
    dlon = math.degrees(math.asin(min(1.0, math.sin(a) / math.cos(math.radians(lat)))))
    if lon - dlon < -180 or lon + dlon > 180:
        problems.append(f"{where}: {ANTIMERIDIAN} (the circle reaches {dlon:.4f}° either side of {lon:g})")


def _check_geometry(zid: str, f: dict, problems: list[str]) -> None:
    where = f"zone {zid}"
    g = f.get("geometry")
    props = f.get("properties") if isinstance(f.get("properties"), dict) else {}
    if not isinstance(g, dict):
        problems.append(f"{where}: geometry is missing")
        return
    gt = g.get("type")
    coords = g.get("coordinates")
    if gt == "Point":
        ok = _is_position(coords)
        if not ok:
            problems.append(f"{where}: a Point needs [lon, lat] within ±180/±90")
        r = props.get("radius_m")
        if not _is_num(r) or not 1 <= r <= 100_000:
            problems.append(f"{where}: a Point zone needs properties.radius_m between 1 and 100000 metres")
        elif ok:
            _check_circle_extent(where, coords[0], coords[1], r, problems)
        return
    if gt not in ("Polygon", "MultiPolygon"):
        problems.append(f"{where}: geometry type {_short(gt)} is not Polygon, MultiPolygon or Point")
        return
    polys = [coords] if gt == "Polygon" else coords
    if not isinstance(polys, list) or not polys:
        problems.append(f"{where}: {gt} has no coordinates")
        return
    lon_min, lon_max = math.inf, -math.inf
    for poly in polys:
        if not isinstance(poly, list) or not poly:
            problems.append(f"{where}: a polygon has no rings")
            return
        for ring in poly:
            if not isinstance(ring, list) or len(ring) < 4:
                problems.append(f"{where}: a ring needs at least 4 positions")
                return
            for p in ring:
                if not _is_position(p):
                    problems.append(f"{where}: position {_short(p)} is not [lon, lat] within ±180/±90")
                    return
                lon = p[0]
                if lon < lon_min:
                    lon_min = lon
                if lon > lon_max:
                    lon_max = lon
            if ring[0][:2] != ring[-1][:2]:
                problems.append(f"{where}: a ring is not closed (first and last positions differ)")
                return
    if lon_max - lon_min > 180:
        problems.append(f"{where}: {ANTIMERIDIAN} (its longitudes span {lon_min:g} to {lon_max:g})")
        return
    try:
        geom = shape(g)
        if not geom.is_valid:
            from shapely.validation import explain_validity
            problems.append(f"{where}: polygon is not valid ({explain_validity(geom)})")
        elif geom.area == 0:
            problems.append(f"{where}: polygon has no area")
    except Exception as e:  # shapely refuses some shapes outright
        problems.append(f"{where}: geometry cannot be read ({e})")


def _too_deep(doc: dict) -> str | None:
    """Where the document nests more than MAX_DEPTH arrays and objects, or None.

    Iterative (an explicit stack), so it cannot itself hit the recursion limit. Zone
    coordinates are not walked: ``_check_geometry`` bounds their shape exactly (rings of
    positions of numbers), and they are most of a national caseload's containers."""
    containers = (dict, list)
    zones = doc.get("zones")
    feats = zones.get("features") if isinstance(zones, dict) else None
    for k, v in doc.items():
        if k != "zones" or not isinstance(feats, list):
            if isinstance(v, containers) and _deeper_than(v, MAX_DEPTH - 1):
                return _place(v, (k,), 2)
            continue
        for k2, v2 in zones.items():
            if k2 != "features" and isinstance(v2, containers) and _deeper_than(v2, MAX_DEPTH - 2):
                return _place(v2, (k, k2), 3)
        for i, f in enumerate(feats):
            if type(f) is not dict:
                if isinstance(f, containers) and _deeper_than(f, MAX_DEPTH - 3):
                    return _place(f, (k, "features", i), 4)
                continue
            for k3, v3 in f.items():
                if type(v3) is dict and k3 == "geometry":
                    for k4, v4 in v3.items():
                        if k4 != "coordinates" and isinstance(v4, containers) \
                                and _deeper_than(v4, MAX_DEPTH - 5):
                            return _place(v4, (k, "features", i, k3, k4), 6)
                elif isinstance(v3, containers) and _deeper_than(v3, MAX_DEPTH - 4):
                    return _place(v3, (k, "features", i, k3), 5)
    return None


def _deeper_than(value: dict | list, levels: int) -> bool:
    """Whether ``value`` holds more than ``levels`` levels of arrays and objects (itself one)."""
    stack = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        v, d = pop()
        if d > levels:
            return True
        d += 1
        for x in (v.values() if type(v) is dict else v):
            if isinstance(x, (dict, list)):
                push((x, d))
    return False


def _place(value, path: tuple, depth: int) -> str:
    """The path to the first container below ``value`` deeper than MAX_DEPTH, for the message."""
    keys = list(path)
    while depth <= MAX_DEPTH and len(keys) < 6:
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for k, v in items:
            if isinstance(v, (dict, list)) and _deeper_than(v, MAX_DEPTH - depth):
                keys.append(k)
                value, depth = v, depth + 1
                break
        else:
            break
    text = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
    return text + ("…" if depth <= MAX_DEPTH else "")


def parse_caseload(doc: object, source: str = "caseload") -> Caseload:
    """Validate a caseload document (already parsed JSON); raise CaseloadError with every problem."""
    try:
        with paused_gc():      # a national caseload is a quarter of a million objects: monitorapp.gcpause
            place = _too_deep(doc) if isinstance(doc, dict) else None
            if place is not None:
                raise CaseloadError([f"{place}: nested more than {MAX_DEPTH} levels deep "
                                     "(a caseload needs at most 9)"], source)
            return _parse_caseload(doc, source)
    except RecursionError:     # not expected after _too_deep; never a traceback for a bad file
        raise CaseloadError([f"nested too deeply to check (more than {MAX_DEPTH} levels)"], source) from None


def _parse_caseload(doc: object, source: str) -> Caseload:
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise CaseloadError(["the caseload must be a JSON object"], source)
    if doc.get("version") != 1:
        problems.append(f"version must be 1, not {_short(doc.get('version'))}")
    tz = doc.get("tz")
    try:
        if not isinstance(tz, str):
            raise ZoneInfoNotFoundError
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"tz {_short(tz)} is not a known time zone (e.g. \"Europe/London\")")
        tz = None
    zones: dict[str, Zone] = {}
    zdoc = doc.get("zones")
    feats = zdoc.get("features") if isinstance(zdoc, dict) else None
    if not isinstance(zdoc, dict) or zdoc.get("type") != "FeatureCollection" or not isinstance(feats, list):
        problems.append("zones must be a GeoJSON FeatureCollection with a features list")
        feats = []
    for i, f in enumerate(feats):
        if not isinstance(f, dict) or f.get("type") != "Feature":
            problems.append(f"zones feature #{i + 1}: not a GeoJSON Feature")
            continue
        zid = f.get("id")
        if not isinstance(zid, str) or not zid:
            problems.append(f"zones feature #{i + 1}: id must be a non-empty string")
            continue
        if zid in zones:
            problems.append(f"zone {zid}: id is used twice")
            continue
        props = f.get("properties") if isinstance(f.get("properties"), dict) else {}
        if not isinstance(props.get("name"), str):
            problems.append(f"zone {zid}: properties.name must be a string")
        n = len(problems)
        _check_geometry(zid, f, problems)
        if len(problems) == n:
            r = props.get("radius_m") if f["geometry"]["type"] == "Point" else None
            zones[zid] = Zone(zid, str(props.get("name", zid)), f["geometry"], float(r) if r is not None else None,
                              {k: v for k, v in props.items() if k not in ("name", "radius_m")})
        else:
            zones[zid] = None  # type: ignore[assignment]  # known id, bad geometry
    offenders: dict[str, Offender] = {}
    devices: dict[str, str] = {}
    req_ids: set[str] = set()
    odoc = doc.get("offenders")
    if not isinstance(odoc, list):
        problems.append("offenders must be a list")
        odoc = []
    for i, o in enumerate(odoc):
        if not isinstance(o, dict):
            problems.append(f"offenders #{i + 1}: not an object")
            continue
        oid = o.get("id")
        if not isinstance(oid, str) or not oid:
            problems.append(f"offenders #{i + 1}: id must be a non-empty string")
            continue
        where = f"offender {oid}"
        if oid in offenders:
            problems.append(f"{where}: id is used twice")
            continue
        for k in ("name", "risk", "borough"):
            if k in o and not isinstance(o[k], str):
                problems.append(f"{where}: {k} must be a string")
        dev = o.get("device")
        if not isinstance(dev, str) or not _DEVICE_RE.fullmatch(dev):
            problems.append(f"{where}: device must match [A-Za-z0-9_.-]{{1,64}}")
        elif dev in devices:
            problems.append(f"{where}: device {dev} is already assigned to offender {devices[dev]}")
        else:
            devices[dev] = oid
        _check_record(o, where, problems)
        fi = o.get("fix_interval_s", 60)
        if not _is_num(fi) or not 1 <= fi <= 86_400:
            problems.append(f"{where}: fix_interval_s must be a number of seconds 1–86400")
            fi = 60
        reqs: list[Requirement] = []
        rdoc = o.get("requirements", [])
        if not isinstance(rdoc, list):
            problems.append(f"{where}: requirements must be a list")
            rdoc = []
        for j, r in enumerate(rdoc):
            req = _parse_requirement(r, f"{where} requirement #{j + 1}", zones, req_ids, problems, oid)
            if req is not None:
                reqs.append(req)
        offenders[oid] = Offender(oid, str(o.get("name", oid)), str(o.get("risk", "")),
                                  str(o.get("borough", "")), dev if isinstance(dev, str) else "",
                                  float(fi), reqs, copy.deepcopy(o))
    if problems:
        raise CaseloadError(problems, source)
    return Caseload(tz, {k: v for k, v in zones.items() if v is not None}, offenders, doc)


def _text_field(obj: dict, key: str, longest: int, where: str, problems: list[str],
                required: bool = False) -> None:
    v = obj.get(key)
    if v is None and not required:
        return
    if not isinstance(v, str) or not v.strip() or len(v) > longest or "\x00" in v:
        problems.append(f"{where}: {key} must be text of 1–{longest} characters")


def _check_phone(obj: dict, key: str, where: str, problems: list[str], required: bool = False) -> None:
    v = obj.get(key)
    if v is None and not required:
        return
    if not isinstance(v, str) or not PHONE_RE.fullmatch(v.strip()):
        problems.append(f"{where}: {key} must be a telephone number (digits, spaces, + ( ) - .)")


def _check_date(value, where: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            import datetime as _dt
            _dt.date.fromisoformat(value)
            return value
        except ValueError:
            pass
    problems.append(f"{where} must be a date YYYY-MM-DD, not {_short(value)}")
    return None


def _check_record(o: dict, where: str, problems: list[str]) -> None:
    """The optional fields of the offender's record (module docstring), bounds checked."""
    _check_phone(o, "phone", where, problems)
    _text_field(o, "photo", 1024, where, problems)
    for key, longest in (("address", 300), ("offence_category", 120), ("risk_notes", 2000)):
        _text_field(o, key, longest, where, problems)
    order = o.get("order")
    if order is not None:
        if not isinstance(order, dict):
            problems.append(f"{where}: order must be an object (start, end, court_ref, court)")
        else:
            start = _check_date(order.get("start"), f"{where}: order start", problems)
            end = _check_date(order.get("end"), f"{where}: order end", problems)
            if start and end and end < start:
                problems.append(f"{where}: order end must not be before its start")
            _text_field(order, "court_ref", 80, f"{where} order", problems)
            _text_field(order, "court", 120, f"{where} order", problems)
    for key, fields in (("victim_contact", (("name", 120, True), ("relation", 60, False),
                                            ("note", 500, False))),
                        ("responsible_officer", (("name", 120, True), ("email", 254, False),
                                                 ("team", 120, False)))):
        v = o.get(key)
        if v is None:
            continue
        if not isinstance(v, dict):
            problems.append(f"{where}: {key} must be an object")
            continue
        for f, longest, required in fields:
            _text_field(v, f, longest, f"{where} {key}", problems, required)
        _check_phone(v, "phone", f"{where} {key}", problems, required=key == "victim_contact")


def _parse_requirement(r, where, zones, req_ids, problems, oid) -> Requirement | None:
    if not isinstance(r, dict):
        problems.append(f"{where}: not an object")
        return None
    rid = r.get("id")
    if not isinstance(rid, str) or not rid:
        problems.append(f"{where}: id must be a non-empty string")
        return None
    where = f"offender {oid} requirement {rid}"
    if rid in req_ids:
        problems.append(f"{where}: id is used twice")
        return None
    req_ids.add(rid)
    n = len(problems)
    rtype = r.get("type")
    if rtype not in REQUIREMENT_TYPES:
        problems.append(f"{where}: type {_short(rtype)} is not exclusion, curfew or appointment")
        return None
    zid = r.get("zone")
    if not isinstance(zid, str) or zid not in zones:
        problems.append(f"{where}: zone {_short(zid)} is not in the zones collection")
    sched = r.get("schedule")
    if rtype == "exclusion" and sched is not None and not isinstance(sched, list):
        problems.append(f"{where}: schedule must be null or a list of windows")
    if rtype == "curfew" and (not isinstance(sched, list) or not sched):
        problems.append(f"{where}: a curfew needs a non-empty schedule")
    if rtype != "appointment" and isinstance(sched, list):
        for k, w in enumerate(sched):
            _check_window(w, f"{where} window #{k + 1}", problems)
    grace_default = {"curfew": 600, "appointment": 300}.get(rtype, 0)
    grace = r.get("grace_s", grace_default)
    if not _is_num(grace) or not 0 <= grace <= 86_400:
        problems.append(f"{where}: grace_s must be a number of seconds 0–86400")
        grace = grace_default
    start = end = None
    if rtype == "appointment":
        try:
            start = parse_time(r.get("start"))
            end = parse_time(r.get("end"))
            if end <= start:
                problems.append(f"{where}: end must be after start")
        except TimeFormatError as e:
            problems.append(f"{where}: start/end: {e}")
    if len(problems) > n:
        return None
    return Requirement(rid, rtype, zid, sched if rtype != "appointment" else None, float(grace),
                       start, end, copy.deepcopy(r))


def load_caseload(path: str | pathlib.Path) -> Caseload:
    """Read and validate a caseload file; CaseloadError names the file and every problem."""
    p = pathlib.Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise CaseloadError([f"cannot be read ({e.strerror or e})"], str(p)) from None
    if not data.strip():
        raise CaseloadError(["is empty"], str(p))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CaseloadError([f"is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})"],
                            str(p)) from None
    try:
        with paused_gc():
            doc = json.loads(text)
    except RecursionError:
        raise CaseloadError([f"is nested too deeply to read (a caseload is at most {MAX_DEPTH} "
                             "levels of arrays and objects)"], str(p)) from None
    except ValueError as e:
        raise CaseloadError([f"is not valid JSON ({e})"], str(p)) from None
    return parse_caseload(doc, str(p))
