"""``monitorapp crimecheck``: the JSON of spec §7, the required --ref and --reason, who asked,
and clear errors (exit 2) for a bad query or store."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localdb.store import Store
from monitorapp.crime.query import cli_main
from monitorapp.feed.timeutil import fmt_time
from tests.fixtures_store import PLACE_LAT, PLACE_LON, T0, TrackWriter

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def db(store_path):
    with Store(store_path) as s:
        tw = TrackWriter(s)
        tw.line("TAG-A", T0, T0 + 3600, 60, (-1000.0, 0.0), (1000.0, 0.0))
        tw.line("TAG-B", T0, T0 + 3600, 60, (5000.0, 0.0), (5000.0, 0.0))
    return store_path


def args(db, **over):
    a = {"--db": str(db), "--lat": str(PLACE_LAT), "--lon": str(PLACE_LON), "--radius-m": "150",
         "--from": fmt_time(T0), "--to": fmt_time(T0 + 3600), "--ref": "CAD 2291/26",
         "--reason": "robbery, witness saw a tag"}
    a.update(over)
    out = []
    for k, v in a.items():
        if v is not None:
            out += [k, v]
    return out


def test_prints_the_spec_json_and_audits_who_asked(db, capsys, monkeypatch):
    monkeypatch.setenv("USER", "dc.jones")
    assert cli_main(args(db)) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"query", "results"}
    assert out["query"]["ref"] == "CAD 2291/26" and out["query"]["who"] == "dc.jones"
    by_dev = {r["device"]: r for r in out["results"]}
    for r in out["results"]:
        assert {"offender", "device", "verdict", "closest_m", "closest_at", "fixes"} <= set(r)
    assert by_dev["TAG-A"]["verdict"] == "present"
    assert by_dev["TAG-A"]["closest_at"] == fmt_time(T0 + 1800)
    assert by_dev["TAG-B"]["verdict"] == "not_present"
    with Store(db) as s:
        [rec] = [r for r in s.audit_log() if r["action"] == "crime_query"]
    assert rec["who"] == "dc.jones" and rec["detail"]["results"] == 2
    assert rec["detail"]["reason"] == "robbery, witness saw a tag"


def test_operator_flag_overrides_user(db, capsys):
    assert cli_main(args(db, **{"--operator": "sgt.brown"})) == 0
    assert json.loads(capsys.readouterr().out)["query"]["who"] == "sgt.brown"


@pytest.mark.parametrize("over, message", [
    ({"--ref": None}, "--ref"), ({"--reason": None}, "--reason"),
    ({"--ref": "  "}, "reference number (--ref) is required"),
    ({"--reason": ""}, "reason (--reason) is required"),
    ({"--from": "last tuesday"}, "from"), ({"--radius-m": "-5"}, "radius"),
])
def test_bad_query_exits_2_with_a_clear_message(db, capsys, over, message):
    assert cli_main(args(db, **over)) == 2
    err = capsys.readouterr().err
    assert message in err
    with Store(db) as s:
        assert not [r for r in s.audit_log() if r["action"] == "crime_query"]


def test_missing_or_corrupt_store_exits_2(tmp_path, capsys):
    missing = tmp_path / "none.sqlite"
    assert cli_main(args(missing)) == 2
    assert "none.sqlite: no such store file" in capsys.readouterr().err
    assert not missing.exists()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not a database" * 500)
    assert cli_main(args(bad)) == 2
    assert "bad.sqlite" in capsys.readouterr().err


def test_end_to_end_command(db):
    r = subprocess.run([sys.executable, "-m", "monitorapp", "crimecheck", *args(db)],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), USER="dc.jones"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["results"][0]["verdict"] == "present"
