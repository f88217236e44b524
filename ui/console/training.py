"""Training mode (``python main.py --demo``): the simulator drives the engine in this process.

By default, a full simulated day: the demo caseload of the eight boroughs (``monitorapp.sim.demo``) and the live simulator
(``monitorapp.sim.simulator.LiveSimulator``) make a realistic feed on a clock that runs ×1, ×10 or
×60; the engine and a store of its own (``training.sqlite`` in the user data directory, never the
live store) process it exactly as they would live. ``--scenario NAME`` runs one of the trainers' short
presets instead (``monitorapp.sim.scenarios``: an exclusion breach, a cut strap, a curfew breach,
a feed outage, an alert flood). No broker can be configured in this mode:
``check_training_args`` refuses one, and nothing in the training session opens a connection.

The day's opening exclusion breach (``FIRST_BREACH_S`` in) is a showcase: a Camden offender whose
exclusion zone lies on a named Camden street (``monitorapp.sim.scenarios.camden_showcase``), where
the shipped basemap has every street, so the trainee's first alert is on a real street (the
queue's Location reads "Camden High Street, Camden"). The rest of the day is the simulator's
own script.

A rerun never meets the last run: alert ids are made from the alert's type, offender and start
(``monitorapp.engine.alerts.alert_id``), and the training store is kept between runs (it holds the
training accounts), so a run that replayed the same simulated hours would raise alerts the store
already holds acknowledged, and the trainee's acknowledgement would be refused. When the store
already holds anything at or after the planned start (``last_recorded``), the run moves on by
whole days (``days_after``): the same story at the same local times, on the next free day.

Training is sealed (spec v2 §8): the training store is opened with ``mode="training"``
(``localdb.schema``), which refuses a live store before writing anything; ``check_training_args``
reads the mark of a ``--db`` first, so the refusal comes before anything is built.
"""
from __future__ import annotations

import pathlib
import time

from ui.console.engineworker import TrainingFeed
from ui.settings import data_dir

SPEEDS = (1, 10, 60)


class TrainingError(ValueError):
    """Training mode was asked for something it does not allow (e.g. a live broker)."""


def check_training_args(broker: str | None, db: str | None, live_store: str | None = None) -> None:
    """Refuse what training may not touch: a live broker, the configured live store, and any
    store marked live (or an unmarked one holding data: ``localdb.schema``). Reads only."""
    from localdb.schema import StoreError, StoreModeError, read_store_mode
    if broker:
        raise TrainingError("training mode (--demo) cannot use a live broker; drop --broker")
    if db and live_store and pathlib.Path(db).resolve() == pathlib.Path(live_store).resolve():
        raise TrainingError("training mode cannot write the live store; choose another --db")
    if db:
        try:
            mode = read_store_mode(db)
        except StoreError as e:
            raise TrainingError(str(e)) from None
        if mode == "live":
            raise TrainingError(str(StoreModeError(db, "live", "training")))


def training_store_path(db: str | None = None) -> pathlib.Path:
    from ui.settings import private_dir
    if db:
        p = pathlib.Path(db)
        p.parent.mkdir(parents=True, exist_ok=True)
    else:
        p = private_dir(data_dir()) / "training.sqlite"
    return p


def last_recorded(path) -> float | None:
    """The latest time a training store holds (an alert raised, a fix), read only; None for a
    store that does not exist yet or holds neither."""
    import sqlite3
    p = pathlib.Path(path)
    if not p.is_file():
        return None
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            times = [con.execute(q).fetchone()[0] for q in ("SELECT max(raised_at) FROM alerts",
                                                            "SELECT max(t) FROM fixes")]
        finally:
            con.close()
    except sqlite3.Error:        # not a store (yet): the store itself says what is wrong
        return None
    times = [float(t) for t in times if t is not None]
    return max(times) if times else None


def days_after(start: float, after: float | None) -> int:
    """Whole days to move a run planned from ``start`` so that it begins after ``after`` (what
    the store already holds): 0 when nothing is recorded at or after ``start``."""
    if after is None or after < start:
        return 0
    return int((after - start) // 86400) + 1


FIRST_BREACH_S = 480     # the opening exclusion breach: its alert about 10 simulated min in


def training_counts() -> dict:
    """Incidents per simulated day: four times the simulator's default (one feed outage), so a
    trainee meets every kind of alert within the first hours instead of once a day; and an
    opening exclusion breach (``FIRST_BREACH_S`` in), so the first alert comes about a minute
    after the start at the default ×10, not after ten real minutes of an empty queue."""
    from monitorapp.sim.script import DEFAULT_COUNTS
    counts = {k: (v if k == "feed_outage" else 4 * v) for k, v in DEFAULT_COUNTS.items()}
    counts["first_breach_s"] = FIRST_BREACH_S
    return counts


def training_start(now: float | None = None, tz: str = "Europe/London") -> float:
    """Training runs a simulated day from 10:00 local time of the current day: the
    simulator's daytime incidents (exclusion breaches, appointments) then come within minutes
    whatever the hour of the real shift. The status bar shows this simulated clock."""
    import datetime as dt
    from zoneinfo import ZoneInfo
    local = dt.datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(tz))
    return local.replace(hour=10, minute=0, second=0, microsecond=0).timestamp()


def training_day(doc: dict, start: float, seed: int = 1):
    """The training day's LiveSimulator: the simulator's script for the day (``training_counts``)
    with its opening breach on a named Camden street (``doc`` is edited: the showcase
    offender's exclusion zone moves there). Without a Camden offender that fits, the
    simulator's own opening breach."""
    from monitorapp.sim.scenarios import camden_showcase
    from monitorapp.sim.script import Incident
    from monitorapp.sim.simulator import LiveSimulator
    counts = training_counts()
    at = start + counts["first_breach_s"]
    show = camden_showcase(doc, 1, at=at)
    if not show:
        return LiveSimulator(doc, start, seed, counts=counts)
    offender, req = show[0]
    del counts["first_breach_s"]
    day = LiveSimulator(doc, start, seed, counts=counts).feed.incidents     # the planned day
    # the showcase offender's own incidents give way to the opening breach for four hours
    rest = [i for i in day if not (i.offender == offender["id"] and i.at < at + 4 * 3600)]
    opening = Incident("exclusion_breach", offender["id"], at, 0.0, req["id"])
    return LiveSimulator(doc, start, seed, incidents=[opening, *rest])


class TrainingSession:
    """The demo caseload, the simulator and its feed source, for one run of training mode."""

    def __init__(self, *, n_offenders: int = 100, seed: int = 1, speed: int = 10,
                 start: float | None = None, scenario: str | None = None, db: str | None = None):
        if speed not in SPEEDS:
            raise TrainingError(f"training speed must be one of {', '.join(map(str, SPEEDS))}, not {speed}")
        from monitorapp.engine.caseload import parse_caseload
        from monitorapp.sim.demo import demo_caseload
        from monitorapp.sim.simulator import LiveSimulator
        self.scenario = scenario
        # what the training store already holds: a rerun moves on by whole days (module docstring)
        after = last_recorded(training_store_path(db))
        self.days_on = 0
        if scenario:
            from monitorapp.feed.timeutil import fmt_time, parse_time
            from monitorapp.sim.scenarios import SCENARIO_DATE, SCENARIOS, scenario as make_scenario
            if scenario not in SCENARIOS:
                raise TrainingError(f"unknown training scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
            day0 = parse_time(SCENARIO_DATE) - 12 * 3600          # the scenario day's 00:00 UTC
            self.days_on = days_after(day0, after)
            sc = make_scenario(scenario, seed=seed, date=fmt_time(parse_time(SCENARIO_DATE) + 86400 * self.days_on))
            self.description = sc.description
            self.start, self.doc = float(sc.start), sc.caseload
            self.simulator = sc.live()
        else:
            self.description = "a full simulated day of the eight boroughs from 10:00"
            planned = float(start if start is not None else training_start())
            self.days_on = days_after(planned, after)
            self.start = (planned + 86400 * self.days_on if start is not None      # 10:00 local, days on
                          else training_start(time.time() + 86400 * self.days_on))
            self.doc = demo_caseload(n_offenders=n_offenders, seed=seed, start=self.start)
            self.simulator = training_day(self.doc, self.start, seed)
        self.caseload = parse_caseload(self.doc, "demo caseload")
        self.feed = TrainingFeed(self.simulator, self.start, speed)   # keeps the trainee's real clock
