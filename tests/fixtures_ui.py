"""Fixtures for the console tests: a small caseload with an exclusion zone, scripted feed
messages (a breach, tamper floods, a low battery), and a running engine + worker + store +
queue controller wired as the console wires them (real engine, real SQLite file, real thread)."""
from __future__ import annotations

import json

import pytest

from monitorapp.feed.timeutil import fmt_time

T0 = 1_795_000_000.0           # 2026-11-18, a fixed processing-clock origin
EXCL = [[-0.1050, 51.5300], [-0.1000, 51.5300], [-0.1000, 51.5330], [-0.1050, 51.5330], [-0.1050, 51.5300]]
OUTSIDE = (51.5200, -0.1200)   # about 1.4 km from the exclusion zone
INSIDE = (51.5315, -0.1025)    # its middle


def ui_caseload_doc(n_extra: int = 14) -> dict:
    zones = [{"type": "Feature", "id": "Z-EX-1", "properties": {"name": "Victim's street"},
              "geometry": {"type": "Polygon", "coordinates": [EXCL]}}]
    offenders = [{"id": "OFF-1", "name": "Alex Example", "risk": "high", "borough": "Islington",
                  "device": "TAG-1", "fix_interval_s": 30,
                  "requirements": [{"id": "R-1-X", "type": "exclusion", "zone": "Z-EX-1", "schedule": None}]}]
    for i in range(2, 2 + n_extra):
        offenders.append({"id": f"OFF-{i}", "name": f"Person {i}", "risk": "medium",
                          "borough": "Hackney" if i % 2 else "Camden", "device": f"TAG-{i}",
                          "fix_interval_s": 30, "requirements": []})
    return {"version": 1, "tz": "Europe/London",
            "zones": {"type": "FeatureCollection", "features": zones}, "offenders": offenders}


def fix(device: str, seq: int, t: float, lat: float, lon: float, acc: float = 8.0, batt: float = 0.8) -> tuple:
    msg = {"v": 1, "kind": "fix", "device": device, "seq": seq, "t": fmt_time(t), "rx": fmt_time(t + 0.5),
           "lat": lat, "lon": lon, "acc": acc, "src": "gps", "batt": batt}
    return (t + 0.5, json.dumps(msg).encode())


def event(device: str, seq: int, t: float, type_: str) -> tuple:
    msg = {"v": 1, "kind": "event", "device": device, "seq": seq, "t": fmt_time(t), "rx": fmt_time(t + 0.5),
           "type": type_}
    return (t + 0.5, json.dumps(msg).encode())


def heartbeats(t0: float, t1: float) -> list[tuple]:
    out = []
    t = t0
    while t <= t1:
        out.append((t + 0.2, json.dumps({"v": 1, "kind": "heartbeat", "gateway": "GW-T", "t": fmt_time(t),
                                         "rx": fmt_time(t + 0.2)}).encode()))
        t += 10
    return out


def breach_script(t0: float = T0) -> list[tuple]:
    """TAG-1 outside for 2 minutes, then inside the exclusion zone for 5 minutes; the others
    report quietly far away."""
    msgs = heartbeats(t0, t0 + 420)
    for k in range(15):
        t = t0 + 30 * k
        lat, lon = OUTSIDE if k < 4 else INSIDE
        msgs.append(fix("TAG-1", k + 1, t, lat, lon))
    return msgs


def tamper_flood(t0: float = T0, n: int = 12) -> list[tuple]:
    """n different tags report strap tamper within two minutes: a flood of critical alerts."""
    msgs = heartbeats(t0, t0 + 180)
    for i in range(n):
        dev = f"TAG-{i + 2}"
        msgs.append(fix(dev, 1, t0 + i, 51.55, -0.07))
        msgs.append(event(dev, 2, t0 + 10 + 5 * i, "strap_tamper"))
    return msgs


def battery_script(t0: float = T0) -> list[tuple]:
    """TAG-2 reports a falling battery: one low-priority battery_low alert."""
    msgs = heartbeats(t0, t0 + 120)
    for k in range(4):
        msgs.append(fix("TAG-2", k + 1, t0 + 30 * k, 51.55, -0.07, batt=0.2 - 0.03 * k))
    return msgs


class Rig:
    """Engine + store + worker thread + queue controller, as ``ui.app.Console`` wires them."""

    def __init__(self, tmp_path, messages, *, speed: float = 600.0, n_extra: int = 14, operator: str = "op.jones"):
        from localdb.store import Store
        from monitorapp.engine.caseload import parse_caseload
        from monitorapp.engine.engine import Engine
        from ui.console.alertqueue import AlarmSound, AlertQueueController
        from ui.console.engineworker import EngineWorker, ReplayFeed
        self.caseload = parse_caseload(ui_caseload_doc(n_extra), "test caseload")
        self.feed = ReplayFeed(messages, start=T0, speed=speed)
        self.store_path = tmp_path / "console.sqlite"
        self.store = Store(self.store_path, clock=self.feed.now)
        caseload = self.caseload
        self.worker = EngineWorker(lambda: Engine(caseload, start=T0), self.feed, store=self.store)
        self.controller = AlertQueueController(self.store, operator, sound=AlarmSound(True))
        self.controller.model.set_offenders({o.id: (o.name, o.borough) for o in self.caseload.offenders.values()})

    def feed_controller(self):
        """Hand the worker's alert batches straight to the controller (no main window)."""
        self.worker.alertBatch.connect(self.controller.on_alert_batch)
        return self

    def start(self, feed_controller: bool = True):
        """Start the engine thread; without a main window, feed the controller directly."""
        if feed_controller:
            self.feed_controller()
        self.worker.start()
        return self

    def stop(self):
        self.worker.stop()
        self.store.close()

    @property
    def engine(self):
        """The engine, once the engine thread has built it (read it only after it is idle)."""
        return self.worker.engine

    def alerts(self, type_: str | None = None):
        return [r for r in self.controller.model.rows() if type_ is None or r.alert.type == type_]


@pytest.fixture
def ui_rig(tmp_path):
    """Factory: ``ui_rig(messages, speed=...)`` returns a started Rig; stopped at teardown."""
    rigs = []

    def make(messages, start: bool = True, **kw):
        rig = Rig(tmp_path, messages, **kw)
        rigs.append(rig)
        if start:
            rig.start()
        return rig
    yield make
    for rig in rigs:
        rig.stop()
        assert not rig.worker.running, "engine thread left running"
