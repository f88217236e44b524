"""A zone drawn for an offender in the centre's record makes the decider watch it (issue 15).

A console of the centre saves a new zone as a zone version whose properties name the offender
and the spec §3 requirement that uses it (``MainWindow.save_zone`` in client mode). The decider
applies that version from the record: the zone's geometry and the offender's requirement, as
the standalone console's engine worker does (``attach_zone``), so a fix inside a newly drawn
exclusion zone raises ``exclusion_entered``, published with the record's zone version and the
street and borough of its evidence (``address``). A version that names an offender the caseload
does not hold is refused and not published.

Real ``monitorapp monitor`` on a real PostgreSQL record with an operator's own login, the locked
Mosquitto of ``monitorapp broker-config``; nothing faked.
"""
from __future__ import annotations

import json

import pytest

from monitorapp.sim.publish import publish_feed
from tests.decider_kit import StateReader, fixes_at
from tests.fixtures_mqtt import ROOT, wait_until

T0 = 1_795_000_000.0


@pytest.fixture
def caseload(tmp_path):
    p = tmp_path / "caseload.json"
    p.write_bytes((ROOT / "examples" / "caseload.json").read_bytes())
    return p


def square(zone_id: str, lat: float, lon: float, half: float = 0.0015, **props) -> dict:
    return {"type": "Feature", "id": zone_id, "properties": {"name": f"drawn {zone_id}", **props},
            "geometry": {"type": "Polygon", "coordinates": [[
                [lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
                [lon - half, lat + half], [lon - half, lat - half]]]}}


def test_a_new_exclusion_zone_drawn_in_the_record_raises_a_breach_inside_it(
        locked_broker, caseload, tmp_path, monitor_factory, pg_dsn, people):
    doc = json.loads(caseload.read_text())
    home = next(f for f in doc["zones"]["features"] if f["id"] == "Z-HOME-0002")["geometry"]["coordinates"]
    lat, lon = home[1] + 0.004, home[0] + 0.004           # a street OFF-0002 is now kept out of
    mon = monitor_factory(["--broker", locked_broker.url_for("monitor"), "--caseload", caseload,
                           "--db", pg_dsn, "--instance", "a", "--clock", "feed", "--stats-interval", "0.5",
                           "--alerts-out", tmp_path / "alerts.ndjson"])
    mon.wait_log("feed_subscribed")
    gateway = locked_broker.url_for("gateway")
    publish_feed(fixes_at("TAG-01002", lat, lon, T0, n=5, seq0=1000), gateway, speed=0)
    mon.wait_stats(lambda s: s["fixes"] >= 5)
    alice = people.store("alice", "operator")
    with StateReader(locked_broker.settings_for("console"), "em/v1/alert/#", "em/v1/state/zone/#") as seen:
        wait_until(lambda: seen.get("em/v1/state/zone/Z-EXCL-0002"), 10, "the zones at the decider's start")
        assert not [a for a in seen.alerts().values() if a["offender"] == "OFF-0002"], \
            "no requirement holds that street yet"
        # a version naming an offender the caseload does not hold: refused, not published
        alice.record_zone_edit(square("Z-DRAWN-9", lat, lon, offender="OFF-9999", kind="exclusion",
                                      requirement={"id": "R-Z-DRAWN-9", "type": "exclusion",
                                                   "zone": "Z-DRAWN-9", "schedule": None}),
                               "alice", base_version=0)
        refused = mon.wait_log("zone_version_refused")
        assert refused["zone_id"] == "Z-DRAWN-9" and "OFF-9999" in refused["reason"]
        # the console's drawing: an exclusion zone for OFF-0002, always in force
        req = {"id": "R-Z-DRAWN-1", "type": "exclusion", "zone": "Z-DRAWN-1", "schedule": None}
        version = alice.record_zone_edit(square("Z-DRAWN-1", lat, lon, offender="OFF-0002", kind="exclusion",
                                                requirement=req), "alice", base_version=0)
        assert version == 1
        wait_until(lambda: (seen.get("em/v1/state/zone/Z-DRAWN-1") or {}).get("version") == 1, 10,
                   "the drawn zone applied and published")
        applied = next(r for r in mon.logs if r.get("event") == "zone_version_applied"
                       and r["zone_id"] == "Z-DRAWN-1")
        assert applied["requirement"] == {"offender": "OFF-0002", "id": "R-Z-DRAWN-1", "type": "exclusion"}
        assert seen.get("em/v1/state/zone/Z-DRAWN-9") is None
        # the tag is still there: the breach is raised by the decider and published
        publish_feed(fixes_at("TAG-01002", lat, lon, T0 + 600, n=5, seq0=2000), gateway, speed=0)

        def breach():
            return [a for a in seen.alerts().values() if a["type"] == "exclusion_entered"
                    and a["requirement"] == "R-Z-DRAWN-1"]
        wait_until(breach, 30, "an exclusion alert for the drawn zone on em/v1/alert/")
        a = breach()[0]
        assert (a["offender"], a["zone"], a["priority"]) == ("OFF-0002", "Z-DRAWN-1", "critical")
        assert a["evidence"]["zone_version"] == 1
        assert a["handling"]["state"] == "unacknowledged"
        # where: named by the decider for every console (the shipped data has Islington's boundary)
        assert a["address"] == {"street": None, "borough": "Islington", "distance_m": None, "text": "Islington"}
        assert isinstance(a["published_at"], float)
        # the zone's own exclusion requirement of the caseload still holds (it was kept)
        assert not [x for x in seen.alerts().values() if x["requirement"] == "R-0002-X"]
    assert mon.terminate() == 0


def test_a_zone_drawn_or_edited_mid_absence_keeps_the_offenders_curfew_grace_running():
    """The engine side of a zone version (what ``LiveProcessor.apply_zone`` calls): OFF-1 is out
    during its curfew with the grace running; a new zone drawn for OFF-1, then its exclusion
    zone reshaped, leave the curfew rule as it was, so the absence is raised from when it began
    and on time, not counted again from the edit."""
    from monitorapp.engine.engine import Engine
    from monitorapp.service.decider import zone_requirement
    from tests.enginekit import FeedBuilder, T, caseload, lonlat
    from tests.enginekit import square as local_square
    cl = caseload()
    eng = Engine(cl)
    fb = FeedBuilder(11)
    night = T("2026-11-27T19:00:00Z")
    left = night + 2 * 3600 + 13
    fb.track("TAG-1", night - 1800, night + 5 * 3600,
             lambda t: (0, 0) if t < left or t > left + 3600 else (600, 300))
    fb.track("TAG-2", night - 1800, night + 5 * 3600, lambda t: (-3000, 0))
    fb.heartbeats(night - 1800, night + 5 * 3600)
    edits = iter([left + 240, left + 420])
    due = next(edits)
    for rx, _n, line in sorted(fb.out):
        if due is not None and rx >= due:
            if due == left + 240:        # a new exclusion zone drawn for OFF-1 (a console's save)
                lon, lat = lonlat(-2000, 0)
                drawn = square("Z-DRAWN-1", lat, lon, 0.001, offender="OFF-1", kind="exclusion",
                               requirement={"id": "R-Z-DRAWN-1", "type": "exclusion", "zone": "Z-DRAWN-1",
                                            "schedule": None})
                oid, reqs, _req = zone_requirement(drawn, eng.caseload)
                eng.update_zone(drawn)
                eng.set_requirements(oid, reqs)
            else:                        # its exclusion zone reshaped
                eng.update_zone({"type": "Feature", "id": "Z-EXCL", "properties": {"name": "Victim's street"},
                                 "geometry": {"type": "Polygon", "coordinates": local_square(1000, 0, 200)}})
            due = next(edits, None)
        eng.submit(line)
    eng.flush()
    assert [r.id for r in eng.caseload.offenders["OFF-1"].requirements] == ["R-X", "R-C", "R-Z-DRAWN-1"]
    cu = [a for a in eng.alerts.values() if a.type == "curfew_absent"]
    assert len(cu) == 1
    assert left <= cu[0].start <= left + 120                   # from when the absence began
    assert cu[0].start + 600 <= cu[0].raised_at <= left + 600 + 3 * 60 + 60
