"""Fixtures for the sign-in, review, KPI, crime-view, playback and trainer tests: a real store
filled by the real engine from scripted feed messages, with operators' handling at known
delays, accounts for every role, and tracks near a crime scene."""
from __future__ import annotations

import pytest


PASSWORD = "correct horse battery"
ROLE_USERS = {"operator": "op.jones", "supervisor": "sup.khan", "trainer": "tr.lee",
              "police_analyst": "pc.smith", "administrator": "admin.ann"}


class Clock:
    """The store's clock, moved by the test (handling times are what the review measures)."""

    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


class HandledStore:
    """A store the real engine has filled: a tamper flood (12 critical alerts), a breach and a
    low battery, acknowledged by two operators at known delays; some closed, one left open."""

    def __init__(self, tmp_path):
        from localdb.accounts import Accounts
        from localdb.store import Store
        from monitorapp.caseload import parse_caseload
        from monitorapp.engine import Engine
        from tests.fixtures_ui import T0, battery_script, breach_script, tamper_flood, ui_caseload_doc
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
                self.store.close_alert(a["alert_id"], who, "restored")
        for a in self.alerts.values():
            if a["type"] in ("exclusion_entered", "battery_low"):
                self.clock.t = a["raised_at"] + 45
                self.store.acknowledge(a["alert_id"], "op.patel", "police_informed", "999 called")
        self.clock.t = T0 + 3600
        self.store.flush()
        self.accounts = Accounts(self.store)
        admin = self.accounts.create_first_admin(ROLE_USERS["administrator"], PASSWORD)
        for role, user in ROLE_USERS.items():
            if role != "administrator":
                self.accounts.create(admin, user, role, PASSWORD)
        self.sessions = {role: self.accounts.sign_in(user, PASSWORD) for role, user in ROLE_USERS.items()}

    def close(self):
        self.store.close()


@pytest.fixture
def handled_store(tmp_path):
    h = HandledStore(tmp_path)
    yield h
    h.close()
