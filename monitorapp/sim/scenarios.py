"""Scenario presets for trainers: short simulated feeds (30–60 min) with one story each.

``scenario(name)`` returns a ``Scenario``: the demo caseload it runs on, a start, a length, a
seed and an explicit incident script. ``.feed()`` gives ``(lines, truth)`` like
``simulator.simulate``; ``.live()`` a ``LiveSimulator`` for the desktop training mode;
``.write(out, truth)`` a replay file.

=========================== ===============================================================
exclusion_breach_hackney    a Hackney offender walks into their exclusion zone 10 min in
strap_cut                   a strap is cut 5 min in and restored 20 min later
curfew_breach               an offender is not home when the 19:00 curfew starts; back 25–35
                            min late (the feed starts at 18:35 local)
feed_outage                 the gateway goes quiet for 8 min, 10 min in
alert_flood                 six tampers, three exclusion entries, three flat batteries and two
                            dead tags, all within 10 minutes
=========================== ===============================================================
"""
from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from monitorapp.sim.demo import demo_caseload
from monitorapp.sim.routines import local_date, local_time
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
    if name == "exclusion_breach_hackney":
        o = _first(cl, lambda o: o["borough"] == "Hackney" and _has(o, "exclusion", True))[0]
        incidents.append(Incident("exclusion_breach", o["id"], start + 600, 0.0, _has(o, "exclusion", True)["id"]))
        text = f"{o['name']} ({o['id']}, Hackney) walks into exclusion zone {_has(o, 'exclusion')['zone']} 10 minutes in."
    elif name == "strap_cut":
        o = _first(cl, lambda o: True)[0]
        incidents.append(Incident("strap_tamper", o["id"], start + 300, 1200.0))
        text = f"The strap of {o['device']} ({o['id']}) is cut 5 minutes in and restored 20 minutes later."
    elif name == "curfew_breach":
        o = _first(cl, lambda o: (c := _has(o, "curfew")) and c["schedule"][0]["start"] == "19:00"
                   and c["schedule"][0]["days"] == "daily")[0]
        incidents.append(Incident("curfew_late_return", o["id"], local_time(day, "19:00", TZ), 0.0,
                                  _has(o, "curfew")["id"]))
        hours = 1.0
        text = f"{o['id']} is still out when the 19:00 curfew starts and gets home 25–35 minutes late."
    elif name == "feed_outage":
        incidents.append(Incident("feed_outage", None, start + 600, 480.0))
        hours = 0.5
        text = "The gateway goes quiet for 8 minutes, 10 minutes in: one feed_lost alert, no signal_lost."
    else:  # alert_flood
        offs = iter(_first(cl, lambda o: True))
        excl = [o for o in cl["offenders"] if _has(o, "exclusion", True)][:3]
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


SCENARIOS = ("exclusion_breach_hackney", "strap_cut", "curfew_breach", "feed_outage", "alert_flood")
