"""Test kit for the notification tests (issue 20): a caseload whose offenders have responsible
officers, a centre policy with contacts, a feed of breaches at the present time, and a notifier
wired to a real store and engine as the monitor wires it."""
from __future__ import annotations

import json
import time

from monitorapp.engine.caseload import parse_caseload
from monitorapp.engine.engine import Engine
from monitorapp.notify.policy import NotifyPolicy, merge, DEFAULT_POLICY
from monitorapp.notify.service import Notifier
from tests.enginekit import FeedBuilder, caseload_doc

OFFICER = "po.hackney@probation.example"
OFFICER_2 = "po.other@probation.example"
POLICE = "police.hackney@police.example"
DUTY = "duty@centre.example"
SENDER = "monitoring@centre.example"


def notify_caseload_doc(name: str = "Test Subject", zone_name: str = "Victim's street") -> dict:
    doc = caseload_doc()
    doc["offenders"][0]["name"] = name
    doc["offenders"][0]["responsible_officer"] = {"name": "Pat Officer", "email": OFFICER,
                                                  "team": "Hackney A", "phone": "+44 20 7946 0001"}
    doc["offenders"][1]["responsible_officer"] = {"name": "Sam Other", "email": OFFICER_2,
                                                  "team": "Hackney B"}
    for f in doc["zones"]["features"]:
        if f["id"] == "Z-EXCL":
            f["properties"]["name"] = zone_name
    return doc


def centre_policy_doc(**retry) -> dict:
    return {"version": 1, "sender": {"address": SENDER, "name": "Test centre"},
            "retry": {"first_s": 0.2, "max_s": 1.0, "fault_after_s": 60.0, **retry},
            "contacts": {"duty_manager": {"name": "Duty manager", "email": DUTY},
                         "police": {"Hackney": {"name": "Hackney police", "email": POLICE}}}}


def centre_policy(**retry) -> NotifyPolicy:
    return NotifyPolicy(merge(DEFAULT_POLICY, centre_policy_doc(**retry)), "test policy")


def write_policy(path, **retry):
    path.write_text(json.dumps(centre_policy_doc(**retry)))
    return path


def write_caseload(path, **kw):
    path.write_text(json.dumps(notify_caseload_doc(**kw)))
    return path


def tamper_lines(t0: float | None = None, device: str = "TAG-1", restored: bool = False,
                 seq0: int = 0) -> list[bytes]:
    """A strap tamper now (and with ``restored``, the strap restored a minute later)."""
    t0 = time.time() - 120 if t0 is None else t0
    fb = FeedBuilder()
    fb.seq[device] = seq0
    fb.fix(device, t0, 0, 0, noise=False)
    fb.event(device, t0 + 5, "strap_tamper")
    if restored:
        fb.event(device, t0 + 60, "strap_restored")
    return fb.lines()


def exclusion_lines(t0: float | None = None) -> list[bytes]:
    """TAG-1 inside the exclusion zone for five minutes, now."""
    t0 = time.time() - 600 if t0 is None else t0
    fb = FeedBuilder()
    fb.track("TAG-1", t0, t0 + 300, lambda t: (1000, 0), interval=30, noise=False)
    return fb.lines()


class Wired:
    """A store, an engine fed by tests, and a started notifier, as the monitor wires them."""

    def __init__(self, store, doc: dict, policy: NotifyPolicy, relay_settings, clock=time.time):
        self.store = store
        self.caseload = parse_caseload(doc)
        self.engine = Engine(self.caseload)
        store.record_caseload(self.caseload)
        store.attach(self.engine)
        self.faults: list = []
        self.cleared: list = []
        self.notifier = Notifier(store, self.caseload, policy, relay_settings, clock=clock,
                                 fault=lambda c, k, e: self.faults.append((c, k, e)),
                                 ok=lambda c, k: self.cleared.append((c, k)), poll_s=0.05)
        self.notifier.attach(self.engine)
        self.notifier.start()

    def feed(self, lines) -> None:
        for ln in lines:
            self.engine.submit(ln)
        self.store.flush()

    def rows(self, alert_id: str | None = None) -> list[dict]:
        ob = self.notifier.outbox
        if alert_id is not None:
            return ob.of_alert(alert_id)
        return ob.all()

    def stop(self) -> None:
        self.notifier.stop()
