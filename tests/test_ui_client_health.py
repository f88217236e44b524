"""The pieces of client mode that judge and keep (issue 15), with their clocks injected:
``DeciderHealth`` says the decider is unreachable exactly when the contract says so, and the
workstation cache (``localdb.cache``) is private, round-trips the picture and forgets what was
closed."""
from __future__ import annotations

import os
import stat

import pytest

from localdb.cache import CacheError, ConsoleCache
from ui.console.centrestate import (DeciderHealth, alert_from_record, handling_from_published,
                                    position_from_published)
from tests.fixtures_clock import Clock


def health(silent_s=10.0):
    wall, mono = Clock(), Clock(100.0)
    return DeciderHealth(silent_s, clock=wall, mono=mono), wall, mono


def active(wall, **kw):
    return {"state": "active", "monitor": "decider-a", "at": wall(), "record": "ok", **kw}


def test_the_decider_is_unreachable_after_10_s_of_silence_and_at_once_when_lost_or_stopped():
    h, wall, mono = health()
    assert h.problem(True) is None                    # just started: the retained word is coming
    mono.t += 10.5
    assert h.problem(True)[0] == "decider"            # nothing at all for 10 s
    h.seen(active(wall))
    assert h.problem(True) is None
    mono.t += 9.9
    wall.t += 9.9
    assert h.problem(True) is None
    mono.t += 0.2
    kind, text = h.problem(True)
    assert kind == "decider" and text.startswith("decider unreachable — no word from the decider for 10 s")
    h.seen(active(wall))
    assert h.problem(True) is None
    h.seen({"state": "lost", "monitor": "decider-a"})                  # its last will
    assert h.problem(True) == ("decider", "decider unreachable — decider-a was lost")
    h.seen({"state": "stopped", "monitor": "decider-a"})
    assert h.problem(True) == ("decider", "decider unreachable — decider-a stopped")
    h.seen(active(wall, record="unreachable"))
    assert h.problem(True) == ("record", "record unreachable — decider-a cannot reach the centre's record")
    assert h.problem(False)[0] == "broker"                             # this console is cut off


def test_a_retained_word_is_judged_by_its_own_time_not_by_when_it_arrived():
    h, wall, mono = health()
    h.seen(active(wall, at=wall() - 30), retained=True)                # a dead decider's last status
    assert h.problem(True)[0] == "decider"
    h.seen(active(wall, at=wall() - 2), retained=True)                 # a live one's
    assert h.problem(True) is None


def test_published_records_become_the_queue_s_alert_and_handling():
    rec = {"alert_id": "A-1", "type": "exclusion_entered", "priority": "critical", "offender": "OFF-1",
           "device": "TAG-1", "requirement": "R-1-X", "zone": "Z-EX-1", "start": "2026-12-01T12:00:00Z",
           "raised_at": 1_796_126_405.0, "late": False, "evidence": {"fixes": []}, "state": "active",
           "reactivations": 0,
           "handling": {"state": "shelved", "owner": "ann", "acknowledged_at": 1_796_040_010.0,
                        "action_code": "police_informed", "shelved_until": 1_796_041_000.0,
                        "shelved_reason": "police on scene",
                        "entries": [{"step": "acknowledge", "operator": "ann"},
                                    {"step": "shelve", "operator": "bob", "reason": "police on scene"}]}}
    a = alert_from_record(rec)
    assert (a.alert_id, a.priority, a.offender, a.start) == ("A-1", "critical", "OFF-1", 1_796_126_400.0)
    h = handling_from_published(rec["handling"])
    assert (h.state, h.acked_by, h.shelved_by, h.shelve_reason, h.state_before_shelve) == \
        ("shelved", "ann", "bob", "police on scene", "acknowledged")
    for bad in ({"alert_id": "A-2", "type": "not_a_type", "start": 1, "raised_at": 1},
                {"alert_id": "", "type": "strap_tamper", "start": 1, "raised_at": 1},
                {"alert_id": "A-3", "type": "strap_tamper", "raised_at": 1}, ["not", "a", "dict"]):
        with pytest.raises(ValueError):
            alert_from_record(bad)
    assert position_from_published({"device": "TAG-1", "lat": 95, "lon": 0, "t": 1}) is None
    assert position_from_published({"device": "TAG-1", "lat": 51.5, "lon": -0.1, "t": 1, "acc": 8,
                                    "battery": 0.5})["batt"] == 0.5


def test_the_workstation_cache_is_private_round_trips_and_forgets_what_was_closed(tmp_path):
    clock = Clock()
    path = tmp_path / "data" / "centre-cache.sqlite"
    c = ConsoleCache(path, clock=clock)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    c.put_alerts([{"alert_id": "A-1", "type": "strap_tamper", "handling": {"state": "acknowledged"}},
                  {"alert_id": "A-2", "type": "strap_tamper"}])
    c.put_positions([{"device": "TAG-1", "lat": 51.5, "lon": -0.1, "t": 5.0}])
    c.put_zones([{"zone_id": "Z-1", "version": 3, "feature": None, "removed": True}])
    clock.t += 60
    c.put_caseload({"version": 1, "offenders": []})
    c.drop_alerts(["A-2"])
    c.close()
    for side in ("-wal", "-shm"):
        p = path.with_name(path.name + side)
        if p.exists():
            assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    pic = ConsoleCache(path).load()
    assert pic["saved_at"] == clock.t
    assert [a["alert_id"] for a in pic["alerts"]] == ["A-1"]
    assert pic["alerts"][0]["handling"]["state"] == "acknowledged"
    assert pic["positions"][0]["device"] == "TAG-1" and pic["zones"][0]["version"] == 3
    assert pic["caseload"] == {"version": 1, "offenders": []}
    empty = ConsoleCache(tmp_path / "other.sqlite").load()
    assert empty["saved_at"] is None and empty["alerts"] == []
    (tmp_path / "not-a-db.sqlite").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(CacheError, match="workstation cache cannot be opened"):
        ConsoleCache(tmp_path / "not-a-db.sqlite")
