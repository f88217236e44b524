"""Scenario presets for trainers: short simulated feeds (30–60 min) with one story each.

``scenario(name)`` returns a ``Scenario``: the demo caseload it runs on, a start, a length, a
seed and an explicit incident script. ``.feed()`` gives ``(lines, truth)`` like
``simulator.simulate``; ``.live()`` a ``LiveSimulator`` for the desktop training mode;
``.write(out, truth)`` a replay file.

=========================== ===============================================================
exclusion_breach_camden     a Camden offender walks into their exclusion zone on Camden High
                            Street (or another Camden street) 10 min in
exclusion_breach_hackney    a Hackney offender walks into their exclusion zone 10 min in
strap_cut                   a strap is cut 5 min in and restored 20 min later
curfew_breach               an offender is not home when the 19:00 curfew starts; back 25–35
                            min late (the feed starts at 18:35 local)
feed_outage                 the gateway goes quiet for 8 min, 10 min in
alert_flood                 six tampers, three exclusion entries, three flat batteries and two
                            dead tags, all within 10 minutes
=========================== ===============================================================

Showcase incidents happen where the shipped OpenStreetMap data has streets (Camden: every
street and name), so a trainee sees the breach on a real, named street: ``camden_showcase``
moves the exclusion zones of the Camden offenders it picks onto named Camden streets
(``CAMDEN_STREETS``), clear of their home, their probation office and the way between them.
The strap cut, the curfew breach and the flood's breaches pick Camden offenders first too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from shapely.geometry import LineString, Point, Polygon

from monitorapp.sim.demo import demo_caseload
from monitorapp.sim.routines import LocalGrid, circle_ring, local_date, local_time
from monitorapp.sim.script import Incident
from monitorapp.sim.simulator import LiveSimulator, simulate, write_feed
from monitorapp.feed.timeutil import parse_time

SCENARIO_DATE = "2026-11-26T12:00:00Z"       # a Thursday in winter time
TZ = ZoneInfo("Europe/London")


@dataclass
class Scenario:
    name: str
    description: str
    caseload: dict
    start: float
    hours: float
    seed: int
    options: dict = field(default_factory=dict)

    def feed(self):
        return simulate(self.caseload, self.start, self.hours, self.seed, **self.options)

    def live(self) -> LiveSimulator:
        return LiveSimulator(self.caseload, self.start, self.seed, self.hours, **self.options)

    def write(self, out, truth_path=None) -> dict:
        return write_feed(out, self.caseload, self.start, self.hours, self.seed, truth_path, **self.options)


def _first(caseload: dict, pred) -> list[dict]:
    return [o for o in caseload["offenders"] if pred(o)]


def _has(o: dict, type_: str, always: bool = False) -> dict | None:
    for r in o["requirements"]:
        if r["type"] == type_ and (not always or r.get("schedule") is None):
            return r
    return None


# Named Camden streets (OSM, © OpenStreetMap contributors) for the showcase exclusion zones:
# a point on the street away from its junctions, so that most fixes of a breach (GPS noise of a
# few tens of metres) still read as that street; the first one a demo meets is Camden High Street.
CAMDEN_STREETS = (
    ("Camden High Street", -0.141876, 51.538054),
    ("Chalk Farm Road", -0.150170, 51.543199),
    ("Kentish Town Road", -0.142210, 51.540288),
    ("Eversholt Street", -0.132991, 51.529322),
    ("Highgate Road", -0.149664, 51.559705),
    ("West End Lane", -0.192108, 51.551913),
    ("Fortess Road", -0.139212, 51.555776),
    ("Hampstead High Street", -0.176368, 51.555669),
)
SHOWCASE_RADIUS_M = 90.0


def _zone(cl: dict, zone_id: str) -> dict | None:
    return next((f for f in cl["zones"]["features"] if f["id"] == zone_id), None)


def camden_showcase(cl: dict, n: int = 1, *, at: float | None = None) -> list[tuple[dict, dict]]:
    """Up to ``n`` Camden offenders of caseload ``cl`` (edited in place) whose always-on
    exclusion zone is moved onto a named Camden street: [(offender, exclusion requirement)].

    Each zone becomes a circle of ``SHOWCASE_RADIUS_M`` centred on the street, at least 800 m
    from the offender's home and office and 400 m from the way between them (as the demo's own
    zones are), so only the scripted breach enters it. ``at``: skip offenders with an
    appointment within two hours of that time. Fewer than ``n`` when the caseload has fewer."""
    office = _zone(cl, "Z-OFFICE-Camden")
    picked: list[tuple[dict, dict]] = []
    free = list(CAMDEN_STREETS)
    for o in cl["offenders"]:
        if len(picked) >= n or not free:
            break
        req = _has(o, "exclusion", True)
        home_req = _has(o, "curfew")
        if o.get("borough") != "Camden" or req is None or home_req is None or office is None:
            continue
        if at is not None and any(r["type"] == "appointment" and parse_time(r["start"]) - 7200 < at + 1800
                                  and parse_time(r["end"]) + 7200 > at for r in o["requirements"]):
            continue
        home = _zone(cl, home_req["zone"])
        zone = _zone(cl, req["zone"])
        if home is None or zone is None or home["geometry"]["type"] != "Point":
            continue
        grid = LocalGrid(*home["geometry"]["coordinates"][:2])
        h = Point(0.0, 0.0)
        off = Point(*grid.to_xy(*office["geometry"]["coordinates"][:2]))
        route = LineString([h, off])
        for site in free:
            name, lon, lat = site
            ring = circle_ring(lon, lat, SHOWCASE_RADIUS_M, n=24)
            poly = Polygon([grid.to_xy(*q) for q in ring])
            if poly.distance(h) >= 800 and poly.distance(off) >= 800 and poly.distance(route) >= 400:
                zone["geometry"] = {"type": "Polygon", "coordinates": [ring]}
                zone["properties"]["name"] = f"Exclusion zone of {o['id']} ({name})"
                picked.append((o, req))
                free.remove(site)
                break
    return picked


def _camden_first(offenders: list[dict]) -> list[dict]:
    return sorted(offenders, key=lambda o: o.get("borough") != "Camden")     # stable


def scenario(name: str, seed: int = 1, date: str = SCENARIO_DATE, n_offenders: int = 40) -> Scenario:
    """A named preset (see the module docstring); KeyError names the known ones."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    day = local_date(parse_time(date), TZ)
    midday = local_time(day, "12:00", TZ)
    quiet = {"gaps_per_day": 0.0, "multipath_per_day": 0.0, "p_cell": 0.0}
    if name == "curfew_breach":
        start = local_time(day, "18:35", TZ)
    else:
        start = midday
    cl = demo_caseload(n_offenders, seed=seed, start=start, hours=24)   # appointments after the story
    incidents: list[Incident] = []
    hours = 0.75
    if name == "exclusion_breach_camden":
        o, req = camden_showcase(cl, 1, at=start + 600)[0]
        incidents.append(Incident("exclusion_breach", o["id"], start + 600, 0.0, req["id"]))
        street = _zone(cl, req["zone"])["properties"]["name"].rsplit("(", 1)[-1].rstrip(")")
        text = f"{o['name']} ({o['id']}, Camden) walks into exclusion zone {req['zone']} on {street} 10 minutes in."
    elif name == "exclusion_breach_hackney":
        o = _first(cl, lambda o: o["borough"] == "Hackney" and _has(o, "exclusion", True))[0]
        incidents.append(Incident("exclusion_breach", o["id"], start + 600, 0.0, _has(o, "exclusion", True)["id"]))
        text = f"{o['name']} ({o['id']}, Hackney) walks into exclusion zone {_has(o, 'exclusion')['zone']} 10 minutes in."
    elif name == "strap_cut":
        o = _first(cl, lambda o: o["borough"] == "Camden")[0]     # a Camden tag: streets around it
        incidents.append(Incident("strap_tamper", o["id"], start + 300, 1200.0))
        text = f"The strap of {o['device']} ({o['id']}) is cut 5 minutes in and restored 20 minutes later."
    elif name == "curfew_breach":
        o = _camden_first(_first(cl, lambda o: (c := _has(o, "curfew")) and c["schedule"][0]["start"] == "19:00"
                                 and c["schedule"][0]["days"] == "daily"))[0]
        incidents.append(Incident("curfew_late_return", o["id"], local_time(day, "19:00", TZ), 0.0,
                                  _has(o, "curfew")["id"]))
        hours = 1.0
        text = f"{o['id']} is still out when the 19:00 curfew starts and gets home 25–35 minutes late."
    elif name == "feed_outage":
        incidents.append(Incident("feed_outage", None, start + 600, 480.0))
        hours = 0.5
        text = "The gateway goes quiet for 8 minutes, 10 minutes in: one feed_lost alert, no signal_lost."
    else:  # alert_flood
        offs = iter(_camden_first(_first(cl, lambda o: True)))
        excl = [o for o, _r in camden_showcase(cl, 3, at=start + 420)]      # on Camden streets first
        excl += [o for o in cl["offenders"] if _has(o, "exclusion", True) and o not in excl][:3 - len(excl)]
        used = {o["id"] for o in excl}
        for k, o in enumerate(excl):
            incidents.append(Incident("exclusion_breach", o["id"], start + 420 + 60 * k, 0.0,
                                      _has(o, "exclusion", True)["id"]))
        rest = [o for o in offs if o["id"] not in used]
        for k in range(6):
            incidents.append(Incident("strap_tamper", rest[k]["id"], start + 300 + 75 * k, 1500.0))
        for k in range(3):
            incidents.append(Incident("battery_low", rest[6 + k]["id"], start + 360 + 120 * k))
        for k in range(2):
            incidents.append(Incident("dead_tag", rest[9 + k]["id"], start + 240 + 30 * k))
        hours = 0.5
        text = "Fourteen alerts of four types within ten minutes: triage by priority."
    return Scenario(name, text, cl, start, hours, seed, dict(incidents=incidents, **quiet))


SCENARIOS = ("exclusion_breach_camden", "exclusion_breach_hackney", "strap_cut", "curfew_breach", "feed_outage", "alert_flood")
