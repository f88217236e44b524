"""Handling and zone edits shared through a real Mosquitto: workstations converge, and a second
operator taking an alert already taken is told so (a conflict)."""
from __future__ import annotations

import pytest

from monitorapp.feed.mqttconfig import MqttSettings
from monitorapp.service.sharedstate import SharedState, handling_of
from tests.fixtures_mqtt import wait_until


@pytest.fixture
def workstations(broker):
    made = []

    def make(name):
        ws = {"acks": [], "zones": [], "conflicts": []}
        s = SharedState(MqttSettings.from_url(broker.url, client_id=f"shared-{name}"), name,
                        on_remote_ack=lambda a, e, h: ws["acks"].append((a, e, h)),
                        on_remote_zone=lambda z: ws["zones"].append(z),
                        on_conflict=lambda a, c: ws["conflicts"].append((a, c)))
        ws["state"] = s
        s.start()
        assert s.wait_ready(10)
        made.append(s)
        return ws
    yield make
    for s in made:
        s.stop()


def test_an_ack_on_one_workstation_shows_on_the_other(workstations):
    a, b = workstations("ws-a"), workstations("ws-b")
    res = a["state"].publish_ack("A-0001", "alice", "contacted_subject", "phoned, on his way home")
    assert res["published"] and res["conflict"] is None
    wait_until(lambda: b["acks"], 5, "the ack on the other workstation")
    alert_id, entry, handling = b["acks"][0]
    assert alert_id == "A-0001" and entry["operator"] == "alice" and entry["action"] == "contacted_subject"
    assert handling["state"] == "acknowledged" and handling["owner"]["operator"] == "alice"
    assert b["state"].handling("A-0001")["state"] == "acknowledged"
    assert not a["acks"], "a workstation's own step is not reported back to it as remote"


def test_taking_an_alert_already_taken_is_a_conflict_not_a_silent_double(workstations):
    a, b = workstations("ws-a"), workstations("ws-b")
    a["state"].publish_ack("A-0002", "alice", "contacted_subject")
    wait_until(lambda: b["acks"], 5, "alice's ack at ws-b")
    res = b["state"].publish_ack("A-0002", "bob", "police_informed")
    assert not res["published"] and res["conflict"]["operator"] == "alice"


def test_a_race_is_reported_on_both_and_a_late_joiner_sees_both_steps(workstations):
    a, b = workstations("ws-a"), workstations("ws-b")
    a["state"].publish_ack("A-0003", "alice", "contacted_subject", force=True)
    b["state"].publish_ack("A-0003", "bob", "police_informed", force=True)
    wait_until(lambda: a["conflicts"] and b["conflicts"], 5, "the conflict on both workstations")
    first = a["conflicts"][0][1]["first"]["operator"]
    assert b["conflicts"][0][1]["first"]["operator"] == first
    c = workstations("ws-c")
    wait_until(lambda: len(c["state"].entries("A-0003")) == 2, 5, "both steps at the late joiner")
    h = c["state"].handling("A-0003")
    assert h["owner"]["operator"] == first and len(h["conflicts"]) == 1


def test_close_and_shelve_steps_fold_into_the_handling_state():
    e = [{"id": "1", "step": "acknowledge", "operator": "al", "workstation": "w", "at": 1.0},
         {"id": "2", "step": "shelve", "operator": "al", "workstation": "w", "at": 2.0},
         {"id": "3", "step": "unshelve", "operator": "al", "workstation": "w", "at": 3.0}]
    assert handling_of(e)["state"] == "acknowledged"
    assert handling_of(e + [{"id": "4", "step": "close", "operator": "al", "workstation": "w", "at": 4.0}])["state"] == "closed"
    assert handling_of([])["state"] == "unacknowledged"


def test_zone_edits_reach_every_workstation_latest_wins(workstations):
    a, b = workstations("ws-a"), workstations("ws-b")
    f1 = {"type": "Feature", "id": "Z-1", "properties": {"name": "v1", "radius_m": 50},
          "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}}
    f2 = dict(f1, properties={"name": "v2", "radius_m": 80})
    a["state"].publish_zone(f1, operator="alice")
    b["state"].publish_zone(f2, operator="bob")
    wait_until(lambda: any(z["feature"]["properties"]["name"] == "v2" for z in a["zones"]), 5, "bob's edit at ws-a")
    c = workstations("ws-c")
    wait_until(lambda: c["zones"] and c["zones"][-1]["feature"]["properties"]["name"] == "v2", 5,
               "the latest edit at a late joiner")
    assert c["zones"][-1]["operator"] == "bob"


def test_bad_messages_on_shared_topics_are_ignored(workstations, publisher_factory, broker):
    a = workstations("ws-a")
    pub = publisher_factory(broker.url)
    pub.publish([("em/v1/ack/A-9", b"not json"), ("em/v1/ack/A-9", b'{"entries": [{"id": 1}]}'),
                 ("em/v1/zone/Z-9", b'{"zone_id": "other", "feature": {}}')])
    a["state"].publish_ack("A-9", "alice", "other", "still works")
    wait_until(lambda: len(a["state"].entries("A-9")) == 1, 5, "the good ack")
    pub.publish([("em/v1/ack/A-9", b""), ("em/v1/zone/Z-9", b"")], retain=True)   # clear retained
    with pytest.raises(ValueError):
        a["state"].publish_ack("bad/id", "alice", "other")
