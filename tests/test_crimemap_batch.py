"""Batch crime correlation (spec §5, issue 19): incidents files (CSV with lat/lon or British
National Grid, GeoJSON) and their problems; a batch gives, per incident, exactly the hits the
single-incident query gives, ordered, audited as one query; the command line's file form and
the scheduled daily run (a directory, each file done once)."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from localdb.store import Store
from monitorapp.crime.batch import (IncidentFileError, load_incidents, run_batch, write_hits_csv,
                                    write_hits_json)
from monitorapp.crime.query import crime_check
from monitorapp.feed.timeutil import fmt_time
from tests.fixtures_store import PLACE_X, PLACE_Y, T0, TrackWriter, lonlat

H = 3600.0
ROOT = Path(__file__).resolve().parent.parent


def _fill(store):
    tw = TrackWriter(store)
    rng = np.random.default_rng(19)
    for k in range(12):                       # random walks around the place, with gaps
        t, x, y = T0 - H, float(rng.uniform(-3000, 3000)), float(rng.uniform(-3000, 3000))
        while t < T0 + 6 * H:
            t += float(rng.choice([30, 60, 60, 120, 900, 3000], p=[.2, .3, .2, .2, .05, .05]))
            x += float(rng.normal(0, 90))
            y += float(rng.normal(0, 90))
            tw.fix(f"TAG-B{k}", t, x, y, acc=float(rng.uniform(5, 50)))
    tw.line("TAG-PASS", T0, T0 + 2 * H, 60.0, (-3000.0, 20.0), (3000.0, 20.0))
    store.flush()


INCIDENTS = [  # reference, dx, dy, radius, from, to (offsets from T0)
    ("INC-1", 0, 0, 100, 1800, 5400), ("INC-2", 1500, -800, 300, 0, 3 * H),
    ("INC-3", -2500, 2500, 50, 2 * H, 2.5 * H), ("INC-4", 0, 0, 30, -H, -0.5 * H),
    ("INC-5", 800, 800, 500, 4 * H, 5 * H),
]


def _incidents():
    out = []
    for ref, dx, dy, r, a, b in INCIDENTS:
        lon, lat = lonlat(dx, dy)
        out.append({"reference": ref, "lat": lat, "lon": lon, "radius_m": float(r),
                    "from": fmt_time(T0 + a), "to": fmt_time(T0 + b)})
    return out



def test_a_batch_decided_by_forked_workers_is_the_same_report(store):
    """Two worker processes (the command line's way) give the report one process gives,
    hit for hit and in the same order (23 incidents: three runs of ten and a short one)."""
    _fill(store)
    rng = np.random.default_rng(3)
    incidents = []
    for k in range(23):
        lon, lat = lonlat(float(rng.uniform(-2500, 2500)), float(rng.uniform(-2500, 2500)))
        a = float(rng.uniform(-H, 5 * H))
        incidents.append({"reference": f"W-{k}", "lat": lat, "lon": lon,
                          "radius_m": float(rng.choice([50, 200, 500])),
                          "from": fmt_time(T0 + a), "to": fmt_time(T0 + a + float(rng.uniform(600, 2 * H)))})
    calls = []
    one = run_batch(store, incidents, "a day's list", "analyst.kaur")
    two = run_batch(store, incidents, "a day's list", "analyst.kaur", workers=2,
                    progress=lambda done, total: calls.append((done, total)))
    assert one["hits"] and two["hits"] == one["hits"] and two["incidents"] == one["incidents"]
    assert calls == [(10, 23), (20, 23), (23, 23)]

def test_a_batch_gives_exactly_the_single_incident_hits(store):
    _fill(store)
    calls = []
    report = run_batch(store, _incidents(), "a day's burglaries", "analyst.kaur",
                       progress=lambda done, total: calls.append((done, total)))
    assert calls == [(k, 5) for k in range(1, 6)]
    hits = report["hits"]
    assert hits and report["query"]["hits"] == len(hits) and report["query"]["incidents"] == 5
    refs = [h["reference"] for h in hits]
    assert refs == sorted(refs)                    # by incident, then verdict, then closest
    for inc, summary in zip(_incidents(), report["incidents"]):
        single = crime_check(store, inc["lat"], inc["lon"], inc["radius_m"], inc["from"], inc["to"],
                             inc["reference"], "check", "me")
        want = [r for r in single["results"] if r["verdict"] in ("present", "possible")]
        got = [{k: v for k, v in h.items() if k != "reference"} for h in hits
               if h["reference"] == inc["reference"]]
        assert got == want, inc["reference"]
        assert summary["hits"] == len(want) and summary["reference"] == inc["reference"]
    assert {h["verdict"] for h in hits} == {"present", "possible"}
    [rec] = [r for r in store.audit_log() if r["action"] == "crime_batch"]
    assert rec["who"] == "analyst.kaur" and rec["detail"]["reason"] == "a day's burglaries"
    assert rec["detail"]["incidents"] == 5 and rec["detail"]["hits"] == len(hits)
    assert rec["detail"]["references"] == [i[0] for i in INCIDENTS]


def test_incidents_files(tmp_path):
    from pyproj import Transformer
    to_bng = Transformer.from_crs(4326, 27700, always_xy=True)
    p = tmp_path / "day.csv"
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Reference", "easting", "northing", "radius_m", "from", "to"])
        w.writerow(["CAD-1", PLACE_X, PLACE_Y, 200, "2026-03-10T21:00:00Z", "2026-03-10T23:00:00+00:00"])
    [inc] = load_incidents(p)
    x, y = to_bng.transform(inc["lon"], inc["lat"])
    assert (x, y) == pytest.approx((PLACE_X, PLACE_Y), abs=0.01)
    assert inc["to"] == "2026-03-10T23:00:00.000Z" and inc["radius_m"] == 200.0
    g = tmp_path / "day.geojson"
    g.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [inc["lon"], inc["lat"]]},
         "properties": {"reference": "CAD-2", "radius_m": 50, "from": "2026-03-10T21:00:00Z",
                        "to": "2026-03-10T21:30:00Z"}}]}))
    [gi] = load_incidents(g)
    assert gi["reference"] == "CAD-2" and gi["lat"] == pytest.approx(inc["lat"])


@pytest.mark.parametrize("text, problems", [
    ("reference,lat,lon,radius_m,from,to\nA,51.5,-0.1,100,2026-03-10T21:00:00Z,2026-03-10T20:00:00Z\n"
     "B,95,-0.1,100,2026-03-10T21:00:00Z,2026-03-10T22:00:00Z\nA,51.5,-0.1,0,x,2026-03-10T22:00:00Z\n"
     "C,51.5,-0.1,abc,2026-03-10T21:00:00Z,2026-03-10T22:00:00Z\n",
     ["line 2: the window must end", "line 3: lat", "line 4:", "line 5: radius_m is not a number"]),
    ("reference,lat,radius_m,from,to\n", ["line 1: the header lacks lat and lon, or easting and northing"]),
    ("reference,easting,northing,radius_m,from,to\nA,900000,100,10,2026-03-10T21:00:00Z,2026-03-10T22:00:00Z\n",
     ["line 2: easting/northing 900000, 100 is outside"]),
    ('{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "LineString"}}]}',
     ["feature 1: not a Point feature"]),
    ("reference,lat,lon,radius_m,from,to\n", ["no incidents"]),
])
def test_every_problem_of_an_incidents_file_is_named(tmp_path, text, problems):
    p = tmp_path / ("x.geojson" if text.startswith("{") else "x.csv")
    p.write_text(text)
    with pytest.raises(IncidentFileError) as e:
        load_incidents(p)
    for want in problems:
        assert want in str(e.value), str(e.value)


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "monitorapp", "crimecheck", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "USER": "analyst.cli", **(env or {})})


def _write_csv(path, incidents):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["reference", "lat", "lon", "radius_m", "from", "to"])
        for i in incidents:
            w.writerow([i["reference"], i["lat"], i["lon"], i["radius_m"], i["from"], i["to"]])


def test_the_command_line_writes_the_hits_report(store_path, tmp_path):
    with Store(store_path) as s:
        _fill(s)
    inc = tmp_path / "incidents.csv"
    _write_csv(inc, _incidents())
    out_json, out_csv = tmp_path / "hits.json", tmp_path / "hits.csv"
    pdf = tmp_path / "hits.pdf"
    r = _cli("--incidents", str(inc), "--db", str(store_path), "--reason", "daily list",
             "--out-json", str(out_json), "--out-csv", str(out_csv), "--pdf", str(pdf))
    assert r.returncode == 0, r.stderr
    assert pdf.read_bytes().startswith(b"%PDF")
    line = json.loads(r.stdout)
    report = json.loads(out_json.read_text())
    assert line["hits"] == report["query"]["hits"] == len(report["hits"]) > 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [x["reference"] for x in rows] == [h["reference"] for h in report["hits"]]
    assert all(x["reason"] for x in rows)
    with Store(store_path) as s:
        [rec] = [a for a in s.audit_log() if a["action"] == "crime_batch"]
    assert rec["who"] == "analyst.cli" and rec["detail"]["incidents"] == len(INCIDENTS)
    bad = tmp_path / "bad.csv"
    bad.write_text("reference,lat,lon,radius_m,from,to\nA,51.5,-0.1,100,nonsense,2026-03-10T22:00:00Z\n")
    r = _cli("--incidents", str(bad), "--db", str(store_path), "--reason", "x")
    assert r.returncode == 2 and "line 2" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = _cli("--incidents", str(inc), "--db", str(store_path))
    assert r.returncode == 2 and "reason" in r.stderr


def test_the_daily_run_does_each_file_once(store_path, tmp_path):
    with Store(store_path) as s:
        _fill(s)
    inbox, outbox = tmp_path / "inbox", tmp_path / "reports"
    inbox.mkdir()
    _write_csv(inbox / "2026-03-10.csv", _incidents()[:2])
    args = ("--incidents-dir", str(inbox), "--out-dir", str(outbox), "--db", str(store_path),
            "--reason", "force daily run", "--no-pdf")
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    [line] = [json.loads(x) for x in r.stdout.splitlines()]
    assert line["incidents"] == 2
    assert (outbox / "2026-03-10.hits.json").exists() and (outbox / "2026-03-10.hits.csv").exists()
    _write_csv(inbox / "2026-03-11.csv", _incidents()[2:])
    (inbox / "broken.csv").write_text("nothing useful\n")
    r = _cli(*args)
    assert r.returncode == 2 and "broken.csv" in r.stderr
    [line] = [json.loads(x) for x in r.stdout.splitlines()]
    assert line["incidents_file"].endswith("2026-03-11.csv") and line["incidents"] == 3
    with Store(store_path) as s:
        assert len([a for a in s.audit_log() if a["action"] == "crime_batch"]) == 2


def test_write_helpers(tmp_path, store):
    _fill(store)
    report = run_batch(store, _incidents()[:1], "r", "w")
    assert json.loads(Path(write_hits_json(report, tmp_path / "a.json")).read_text()) == report
    rows = list(csv.reader(open(write_hits_csv(report, tmp_path / "a.csv"))))
    assert rows[0][:4] == ["reference", "verdict", "offender", "device"] and len(rows) == 1 + len(report["hits"])
