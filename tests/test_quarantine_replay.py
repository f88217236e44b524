"""The issue's "Done when", as ``monitorapp replay`` runs it: the example feed with each poison
message of issue 13 inserted (an event timed year 1, a fix and a heartbeat near year 9999, a seq
of 2^63) finishes with status 0, with and without ``--db``, counts every inserted line as
rejected (by the decoder's bounds or as ``processing_error``, whichever stage refuses it) and
still raises the real alert that comes after them. Also: ``alerts.ndjson`` and the journal are
created owner-only (spec §8), and a checkpoint that is valid JSON but not an engine state stops
``replay --db`` and ``monitor`` with one line and status 2."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def run(*args):
    return subprocess.run([sys.executable, "-m", "monitorapp", *map(str, args)], capture_output=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)


def poisoned_feed(example_feed_path, tmp_path):
    lines = example_feed_path.read_text().splitlines()
    mid = 1200
    rx = json.loads(lines[mid])["rx"]
    poison = [
        {"v": 1, "kind": "event", "device": "TAG-01001", "seq": 100000, "t": "0001-01-01T00:30:00+01:00",
         "rx": rx, "type": "strap_tamper"},
        {"v": 1, "kind": "fix", "device": "TAG-01002", "seq": 100001, "t": "9999-12-31T23:59:59Z",
         "rx": "9999-12-31T23:59:59Z", "lat": 51.5, "lon": -0.1, "acc": 10, "src": "gps"},
        {"v": 1, "kind": "heartbeat", "gateway": "GW-1", "t": "9999-12-31T23:59:58Z", "rx": "9999-12-31T23:59:59Z"},
        {"v": 1, "kind": "fix", "device": "TAG-01003", "seq": 2 ** 63, "t": rx, "rx": rx,
         "lat": 51.5, "lon": -0.1, "acc": 10, "src": "gps"},
    ]
    later = json.loads(lines[mid + 40])["rx"]      # a real tamper after them
    tamper = {"v": 1, "kind": "event", "device": "TAG-01003", "seq": 900000, "t": later, "rx": later,
              "type": "strap_tamper"}
    out = lines[:mid] + [json.dumps(p) for p in poison] + lines[mid:mid + 40] + [json.dumps(tamper)] + lines[mid + 40:]
    feed = tmp_path / "poisoned.ndjson"
    feed.write_text("\n".join(out) + "\n")
    return feed, len(poison), tamper


@pytest.mark.parametrize("with_db", [False, True])
def test_replay_with_every_poison_finishes_0_and_raises_the_later_alert(tmp_path, example_caseload_path,
                                                                        example_feed_path, with_db):
    clean = run("replay", "--caseload", example_caseload_path, "--feed", example_feed_path,
                "--out", tmp_path / "clean.ndjson")
    assert clean.returncode == 0, clean.stderr.decode()
    base = json.loads(clean.stdout)
    feed, n_poison, tamper = poisoned_feed(example_feed_path, tmp_path)
    out = tmp_path / "alerts.ndjson"
    extra = ["--db", tmp_path / "s.db"] if with_db else []
    r = run("replay", "--caseload", example_caseload_path, "--feed", feed, "--out", out, *extra)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    summary = json.loads(r.stdout)
    assert summary["rejected"] == base["rejected"] + n_poison      # each one counted as rejected
    assert summary["messages"] == base["messages"] + n_poison + 1
    alerts = [json.loads(x) for x in out.read_text().splitlines()]
    tampers = [a for a in alerts if a["type"] == "strap_tamper"]
    assert len(tampers) == 1 and tampers[0]["device"] == "TAG-01003"
    assert {a["type"] for a in alerts} >= {"feed_lost", "strap_tamper"}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    if with_db:
        with sqlite3.connect(tmp_path / "s.db") as conn:
            assert conn.execute("SELECT count(*) FROM rejected").fetchone()[0] == summary["rejected"]
            assert conn.execute("SELECT count(*) FROM alerts WHERE type='strap_tamper'").fetchone()[0] == 1


def _break_checkpoint(db, feed):
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE checkpoints SET snapshot=? WHERE feed=?",
                     (json.dumps({"state_version": 1, "now": "yesterday", "tags": [1, 2]}), feed))


def test_a_checkpoint_of_the_wrong_shape_is_one_line_and_status_2(tmp_path, example_caseload_path,
                                                                  example_feed_path):
    db, out = tmp_path / "s.db", tmp_path / "a.ndjson"
    first = run("replay", "--caseload", example_caseload_path, "--feed", example_feed_path, "--out", out, "--db", db)
    assert first.returncode == 0, first.stderr.decode()
    _break_checkpoint(db, "replay")
    r = run("replay", "--caseload", example_caseload_path, "--feed", example_feed_path, "--out", out, "--db", db)
    err = r.stderr.decode().strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1, err
    assert str(db) in err and "checkpoint" in err and "Traceback" not in err

    # the monitor restores the same way (its checkpoint is feed "default")
    from localdb.store import Store
    from monitorapp.engine.caseload import load_caseload
    from monitorapp.engine.engine import Engine
    mdb = tmp_path / "m.db"
    with Store(mdb) as s:
        s.checkpoint(Engine(load_caseload(example_caseload_path), start=1.795e9), {"journal": 1, "offset": 0})
    _break_checkpoint(mdb, "default")
    r = run("monitor", "--broker", "mqtt://127.0.0.1:1", "--caseload", example_caseload_path, "--db", mdb)
    err = r.stderr.decode().strip()
    assert r.returncode == 2 and len(err.splitlines()) == 1, err
    assert str(mdb) in err and "checkpoint" in err and "Traceback" not in err


def test_journal_quarantine_list_and_alerts_file_are_owner_only(tmp_path):
    from monitorapp.feed.mqttfeed import Delivery
    from monitorapp.service.monitor import AlertsFile, FeedJournal, QuarantineList
    old = os.umask(0o022)             # a typical umask would make them world-readable
    try:
        j = FeedJournal(tmp_path / "x.db")
        j.open()
        j.append([Delivery("em/v1/fix/A", b"one", 1.5)])
        j.close()
        q = QuarantineList(tmp_path / "x.db")
        q.add(Delivery("em/v1/fix/A", b"poison", 2.5))
        AlertsFile(str(tmp_path / "alerts.ndjson")).close()
        wide = tmp_path / "wide.ndjson"
        wide.write_text("")
        wide.chmod(0o644)
        AlertsFile(str(wide)).close()            # an existing wider file is narrowed
    finally:
        os.umask(old)
    for p in (j.path(1), q.path, tmp_path / "alerts.ndjson", wide):
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    assert Delivery("em/v1/fix/A", b"poison", 9.9) in QuarantineList(tmp_path / "x.db")
