"""The shape of the code: the core imports no Qt; caseload problems are all reported at once;
zones are measured in metres; the replay command keeps its contract (spec §7)."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import orjson
import pytest

from monitorapp.engine.caseload import CaseloadError, load_caseload, parse_caseload
from monitorapp.engine.geo import Projector, ZoneShape
from tests.conftest import ROOT
from tests.enginekit import caseload_doc


def test_core_and_store_import_no_qt():
    code = (
        "import sys, importlib, pkgutil\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph'):\n"
        "            raise ImportError('Qt is not allowed in the core: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import monitorapp, localdb, centraldb\n"
        "for pkg in (monitorapp, localdb, centraldb):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "print('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_every_caseload_problem_is_reported_with_its_place():
    doc = caseload_doc(appointment=("2026-11-27T11:00:00Z", "2026-11-27T10:00:00Z"))
    doc["offenders"][0]["requirements"][0]["zone"] = "Z-NOPE"
    doc["offenders"][0]["requirements"][1]["schedule"][0]["start"] = "25:00"
    doc["offenders"][1]["device"] = "TAG-1"
    doc["zones"]["features"][1]["geometry"]["coordinates"][0][2] = [0.0, 95.0]
    with pytest.raises(CaseloadError) as ei:
        parse_caseload(doc)
    probs = ei.value.problems
    assert any(p.startswith("offender OFF-1 requirement R-X: zone 'Z-NOPE'") for p in probs)
    assert any("requirement R-C window #1: start" in p for p in probs)
    assert any("requirement R-A: end must be after start" in p for p in probs)
    assert any(p.startswith("offender OFF-2: device TAG-1 is already assigned") for p in probs)
    assert any(p.startswith("zone Z-EXCL: position") for p in probs)
    assert len(probs) >= 5


def test_self_intersecting_polygon_is_an_error():
    doc = caseload_doc()
    ring = doc["zones"]["features"][1]["geometry"]["coordinates"][0]
    ring[1], ring[2] = ring[2], ring[1]          # a bow tie
    with pytest.raises(CaseloadError, match="zone Z-EXCL: polygon is not valid"):
        parse_caseload(doc)


def test_example_caseload_loads(example_caseload_path):
    c = load_caseload(example_caseload_path)
    assert set(c.by_device) == {"TAG-01001", "TAG-01002", "TAG-01003"}


def test_affine_fast_path_agrees_with_pyproj_within_half_a_metre():
    p = Projector([(-0.1, 51.5)])
    assert "27700" in p.name
    z = ZoneShape("Z", {"type": "Point", "coordinates": [-0.1, 51.55]}, 100, p)
    worst = 0.0
    for i in range(41):
        for j in range(41):
            lon = -0.1 + (i - 20) * 0.0014
            lat = 51.55 + (j - 20) * 0.0009
            ex, ey = p.to_xy(lon, lat)
            if math.hypot(ex - z.cx, ey - z.cy) > 2000:
                continue
            ax, ay = z.xy(lon, lat)
            worst = max(worst, math.hypot(ax - ex, ay - ey))
    assert worst < 0.5


def test_circle_and_polygon_depths_are_metres():
    p = Projector([(-0.1, 51.5)])
    circ = ZoneShape("C", {"type": "Point", "coordinates": [-0.1, 51.5]}, 100, p)
    # 0.001° of latitude is ~111.3 m north: 11 m outside a 100 m circle
    assert circ.depth(-0.1, 51.501) == pytest.approx(-11.3, abs=0.5)
    sq = ZoneShape("S", {"type": "Polygon", "coordinates": [[[-0.1, 51.5], [-0.09, 51.5], [-0.09, 51.51],
                                                            [-0.1, 51.51], [-0.1, 51.5]]]}, None, p)
    assert sq.depth(-0.095, 51.5005) == pytest.approx(55.6, abs=1.0)       # 0.0005° inside the south edge
    assert sq.depth(-0.095, 51.4995) == pytest.approx(-55.6, abs=1.0)


def test_a_caseload_outside_great_britain_gets_a_local_projection():
    p = Projector([(2.35, 48.85), (2.40, 48.88)])
    assert "transverse Mercator" in p.name


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "monitorapp", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, **kw)


def test_replay_of_the_example_prints_its_summary(tmp_path, example_caseload_path, example_feed_path):
    out = tmp_path / "alerts.ndjson"
    r = run_cli("replay", "--caseload", str(example_caseload_path), "--feed", str(example_feed_path),
                "--out", str(out))
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(summary) == {"messages", "fixes", "events", "heartbeats", "rejected", "duplicates", "alerts", "seconds"}
    lines = example_feed_path.read_text().splitlines()
    assert summary["messages"] == len(lines)
    assert summary["fixes"] + summary["events"] + summary["heartbeats"] + summary["rejected"] + \
        summary["duplicates"] == summary["messages"]
    alerts = [orjson.loads(x) for x in out.read_text().splitlines()]
    assert len(alerts) == summary["alerts"]
    for a in alerts:
        assert set(a) == {"alert_id", "type", "priority", "offender", "device", "requirement", "zone",
                          "start", "raised_at", "late", "evidence"}
        assert a["start"].endswith("Z") and a["raised_at"].endswith("Z")
    # the example's feed outage is one feed_lost, and no tag raises signal_lost for it
    assert [a["type"] for a in alerts].count("feed_lost") == 1
    assert "signal_lost" not in [a["type"] for a in alerts]
    # deterministic: a second run writes the same bytes
    out2 = tmp_path / "again.ndjson"
    run_cli("replay", "--caseload", str(example_caseload_path), "--feed", str(example_feed_path), "--out", str(out2))
    assert out2.read_bytes() == out.read_bytes()


def test_replay_exits_2_naming_the_file_and_the_problem(tmp_path, example_caseload_path, example_feed_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "tz": "Europe/London", "zones": 3, "offenders": []}')
    r = run_cli("replay", "--caseload", str(bad), "--feed", str(example_feed_path), "--out", str(tmp_path / "a"))
    assert r.returncode == 2
    assert str(bad) in r.stderr.splitlines()[0] and "FeatureCollection" in r.stderr.splitlines()[0]
    r = run_cli("replay", "--caseload", str(example_caseload_path), "--feed", str(tmp_path / "missing.ndjson"),
                "--out", str(tmp_path / "a"))
    assert r.returncode == 2 and "missing.ndjson" in r.stderr and "cannot be read" in r.stderr
    notjson = tmp_path / "nj.json"
    notjson.write_text("{")
    r = run_cli("replay", "--caseload", str(notjson), "--feed", str(example_feed_path), "--out", str(tmp_path / "a"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not valid JSON" in r.stderr


def test_replay_survives_hostile_lines(tmp_path, example_caseload_path, example_feed_path):
    lines = example_feed_path.read_bytes().splitlines()
    hostile = [b"\x00\xff garbage", b'{"v":1,"kind":"fix"}', b"[" * 100000, b'{"v":1,"kind":"fix","device":"<script>","seq":1}',
               b'{"v":1,"kind":"fix","device":"TAG-01001","seq":999999,"t":"2026-11-27T17:00:00Z","rx":"2026-11-27T17:00:01Z","lat":1e400,"lon":0,"acc":5,"src":"gps"}']
    feed = tmp_path / "feed.ndjson"
    feed.write_bytes(b"\n".join(lines[:100] + hostile + lines[100:]) + b"\n")
    out = tmp_path / "alerts.ndjson"
    r = run_cli("replay", "--caseload", str(example_caseload_path), "--feed", str(feed), "--out", str(out))
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["rejected"] == len(hostile)
    assert s["messages"] == len(lines) + len(hostile)
