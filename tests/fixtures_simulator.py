"""Fixtures for the simulator's tests: the demo caseload and one realistic 24 h feed for 100
tags (crossing the end of British Summer Time), built once per session and shared by the feed
tests and the engine scenario tests."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from monitorapp.sim.demo import demo_caseload
from monitorapp.sim.simulator import DEFAULT_START, SimulatedFeed
from monitorapp.feed.timeutil import parse_time


@pytest.fixture(scope="session")
def sim_caseload() -> dict:
    return demo_caseload(100, seed=1, start=DEFAULT_START, hours=24)


@pytest.fixture(scope="session")
def sim_day(sim_caseload):
    """100 tags × 24 h from 2026-10-24T12:00Z: the feed object (true tracks), its lines
    (rx, bytes) in arrival order, the decoded messages and the truth."""
    feed = SimulatedFeed(sim_caseload, DEFAULT_START, 24.0, seed=1)
    lines = list(feed.lines())
    msgs = [json.loads(line) for _rx, line in lines]
    return SimpleNamespace(feed=feed, lines=lines, msgs=msgs, truth=feed.truth,
                           caseload=sim_caseload, t0=feed.t0, t1=feed.t1)


def times(d: dict, *keys: str) -> list[float]:
    return [parse_time(d[k]) for k in keys]
