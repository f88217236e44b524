"""Fixtures for the store and crime-mapping tests: a real store file in tmp_path, and tracks
laid out in British National Grid metres around a place in central London, so a test can put
a fix exactly 180 m from the place and know it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyproj
import pytest

from localdb.store import Store
from monitorapp.feed.messages import Fix
from monitorapp.feed.timeutil import parse_time

PLACE_X, PLACE_Y = 530_000.0, 180_000.0          # near Bank, City of London
T0 = parse_time("2026-03-10T12:00:00Z")
_to_wgs = pyproj.Transformer.from_crs(27700, 4326, always_xy=True)


def lonlat(dx: float, dy: float) -> tuple[float, float]:
    """WGS84 (lon, lat) of the point dx, dy metres east/north of the place."""
    lon, lat = _to_wgs.transform(PLACE_X + dx, PLACE_Y + dy)
    return float(lon), float(lat)


PLACE_LON, PLACE_LAT = lonlat(0.0, 0.0)


def fix_at(device: str, seq: int, t: float, dx: float, dy: float, acc: float = 10.0,
           rx_delay: float = 1.0) -> Fix:
    lon, lat = lonlat(dx, dy)
    return Fix(device=device, seq=seq, t=t, rx=t + rx_delay, lat=lat, lon=lon, acc=acc, src="gps")


class TrackWriter:
    """Puts tracks into a store through its real writer (``on_fix``), numbering seq per tag."""

    def __init__(self, store: Store):
        self.store = store
        self.seq: dict[str, int] = {}

    def fix(self, device: str, t: float, dx: float, dy: float, acc: float = 10.0) -> Fix:
        n = self.seq.get(device, 0) + 1
        self.seq[device] = n
        f = fix_at(device, n, t, dx, dy, acc)
        self.store.on_fix(f, True)
        return f

    def line(self, device: str, t_start: float, t_end: float, step: float,
             start: tuple[float, float], end: tuple[float, float], acc: float = 10.0) -> None:
        """Fixes every ``step`` seconds moving in a straight line from start to end."""
        n = int(round((t_end - t_start) / step))
        for k in range(n + 1):
            f = k / n if n else 0.0
            self.fix(device, t_start + k * step, start[0] + (end[0] - start[0]) * f,
                     start[1] + (end[1] - start[1]) * f, acc)


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "store.sqlite"


@pytest.fixture
def store(store_path):
    s = Store(store_path)
    yield s
    s.close()


@pytest.fixture
def tracks(store):
    return TrackWriter(store)


@pytest.fixture(scope="session")
def sim_feed(tmp_path_factory):
    """(caseload, replay file): six simulated hours of ten demo tags, with incidents."""
    d = tmp_path_factory.mktemp("simfeed")
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(
        [sys.executable, "-m", "monitorapp", "simulate", "--caseload", "demo",
         "--write-demo-caseload", str(d / "caseload.json"), "--out", str(d / "feed.ndjson"),
         "--hours", "6", "--tags", "10", "--seed", "3"],
        cwd=root, env=dict(os.environ, PYTHONPATH=str(root)), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode()
    return d / "caseload.json", d / "feed.ndjson"
