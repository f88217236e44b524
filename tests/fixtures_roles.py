"""Fixtures for the sign-in, review, KPI, crime-view, playback and trainer tests: a real store
filled by the real engine from scripted feed messages, with operators' handling at known
delays, accounts for every role, and tracks near a crime scene."""
from __future__ import annotations

import pytest
from tests.fixtures_clock import Clock


PASSWORD = "correct horse battery"
ROLE_USERS = {"operator": "op.jones", "supervisor": "sup.khan", "trainer": "tr.lee",
              "police_analyst": "pc.smith", "administrator": "admin.ann"}


def accounts_for_every_role(store):
    """An account for each role (the administrator made by the first-run path), each signed in."""
    from localdb.accounts import Accounts
    accounts = Accounts(store)
    admin = accounts.create_first_admin(ROLE_USERS["administrator"], PASSWORD)
    for role, user in ROLE_USERS.items():
        if role != "administrator":
            accounts.create(admin, user, role, PASSWORD)
    return accounts, {role: accounts.sign_in(user, PASSWORD) for role, user in ROLE_USERS.items()}


class HandledStore:
    """A store the real engine has filled: a tamper flood (12 critical alerts), a breach and a
    low battery, acknowledged by two operators at known delays; some closed, one left open."""

    def __init__(self, tmp_path):
        from localdb.store import Store
        from monitorapp.engine.caseload import parse_caseload
        from monitorapp.engine.engine import Engine
        from tests.fixtures_ui import (T0, battery_script, breach_script, event, tamper_flood,
                                       ui_caseload_doc)
        self.clock = Clock(T0)
        self.path = tmp_path / "handled.sqlite"
        self.store = Store(self.path, clock=self.clock)
        self.caseload = parse_caseload(ui_caseload_doc(14), "test caseload")
        self.store.record_caseload(self.caseload)
        engine = Engine(self.caseload, start=T0)
        self.store.attach(engine)
        msgs = sorted(tamper_flood(T0) + breach_script(T0 + 200) + battery_script(T0 + 100),
                      key=lambda m: m[0])
        for rx, raw in msgs:
            engine.submit(raw, rx=rx)
        engine.advance(T0 + 700)
        self.store.flush()
        self.alerts = {a["alert_id"]: a for a in self.store.alerts()}
        # handling: op.jones takes the tampers quickly except two (late); op.patel the rest
        tampers = sorted((a for a in self.alerts.values() if a["type"] == "strap_tamper"),
                         key=lambda a: a["raised_at"])
        self.late, self.open = [], []
        for k, a in enumerate(tampers):
            if k == len(tampers) - 1:
                self.open.append(a["alert_id"])          # never acknowledged
                continue
            delay = 30.0 if k % 5 else 240.0               # critical limit is 60 s
            self.clock.t = a["raised_at"] + delay
            who = "op.jones" if k < 7 else "op.patel"
            self.store.acknowledge(a["alert_id"], who, "contacted_subject", f"called #{k}")
            if delay > 60:
                self.late.append(a["alert_id"])
            if k % 3 == 0:
                self.clock.t += 300
                # the strap is restored first: a store closes only a cleared alert (spec v2 §8)
                rx, raw = event(a["device"], 100, self.clock.t - 60, "strap_restored")
                engine.submit(raw, rx=rx)
                self.store.flush()
                self.store.close_alert(a["alert_id"], who, "restored")
        for a in self.alerts.values():
            if a["type"] in ("exclusion_entered", "battery_low"):
                self.clock.t = a["raised_at"] + 45
                self.store.acknowledge(a["alert_id"], "op.patel", "police_informed", "999 called")
        self.clock.t = T0 + 3600
        self.store.flush()
        self.accounts, self.sessions = accounts_for_every_role(self.store)

    def close(self):
        self.store.close()


@pytest.fixture
def handled_store(tmp_path):
    h = HandledStore(tmp_path)
    yield h
    h.close()


CRIME_DEVICES = {"OFF-A": "TAG-A", "OFF-B": "TAG-B", "OFF-C": "TAG-C", "OFF-D": "TAG-D"}


class CrimeStore:
    """Four tracks around a scene near Bank (tests.fixtures_store's place), one hour window:
    OFF-A walks straight through it (present), OFF-B passes 1.2 km away, too far to have
    reached it between fixes a minute apart at 15 m/s (not present), OFF-C
    waits 150 m away with a poor 80 m accuracy (possible), OFF-D reported only hours before
    (no data). Accounts for every role."""

    RADIUS = 100.0

    def __init__(self, tmp_path):
        from localdb.store import Store
        from tests.fixtures_store import PLACE_LAT, PLACE_LON, T0, TrackWriter
        self.t0, self.t1 = T0, T0 + 3600
        self.lat, self.lon = PLACE_LAT, PLACE_LON
        self.clock = Clock(T0 + 86400)
        self.path = tmp_path / "crime.sqlite"
        self.store = Store(self.path, clock=self.clock)
        self.store.record_caseload({"version": 1, "tz": "Europe/London",
                                    "zones": {"type": "FeatureCollection", "features": []},
                                    "offenders": [{"id": o, "name": f"Person {o[-1]}", "risk": "high",
                                                   "borough": "City", "device": d, "requirements": []}
                                                  for o, d in CRIME_DEVICES.items()]})
        w = TrackWriter(self.store)
        w.line("TAG-A", T0 - 1800, T0 + 5400, 60, (-3000, 0), (3000, 0))
        w.line("TAG-B", T0 - 600, T0 + 4200, 60, (-2000, 1200), (2000, 1200))
        w.line("TAG-C", T0 - 600, T0 + 4200, 120, (150, 0), (150, 0), acc=80)
        w.line("TAG-D", T0 - 4 * 3600, T0 - 3 * 3600, 60, (0, 0), (500, 0))
        self.store.flush()
        self.accounts, self.sessions = accounts_for_every_role(self.store)

    def close(self):
        self.store.close()


@pytest.fixture
def crime_store(tmp_path):
    c = CrimeStore(tmp_path)
    yield c
    c.close()


@pytest.fixture
def own(qtbot):
    """``own(widget)``: shown by the test, closed and *deleted* at teardown (waiting for it),
    so no view outlives its test and nothing is left for the interpreter's exit to free."""
    import shiboken6
    widgets = []

    def add(w):
        widgets.append(w)
        return w
    yield add
    for w in reversed(widgets):
        if not shiboken6.isValid(w):
            continue
        w.close()
        gone: list = []
        w.destroyed.connect(lambda *_: gone.append(True))
        w.deleteLater()
        qtbot.waitUntil(lambda: bool(gone), timeout=5000)
