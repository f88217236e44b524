"""The alert's timeline in the record (issue 21), one suite over both backends: steps recorded
through the same authority as acknowledgements (localdb/handling.py on SQLite, the server's
``record_step``/``close_alert_skipping`` on PostgreSQL, each person acting as their own login),
closing asking for the protocol's mandatory steps or a reason for skipping them, the chain
verifying with every kind of record, and the decider's published handling carrying the timeline.
"""
from __future__ import annotations

import json

import pytest

from localdb.handling import AlreadyAcknowledged, HandlingError
from localdb.hashchain import verify_chain
from monitorapp.response.protocols import load_protocols, normalise
from monitorapp.response.timeline import checklist, open_mandatory
from monitorapp.service.recordwatch import handling_of
from tests.fixtures_store import T0
from tests.test_pg_store_behaviour import backend, clock, raise_alert, target  # noqa: F401

SUPERVISOR = "sam.super"


@pytest.fixture
def store(request, target, clock):  # noqa: F811 - this suite's store: steps by their people
    if target.startswith("postgresql://"):
        from tests.fixtures_pgpeople import PeopleStore

        class ResponseStore(PeopleStore):
            HANDLING = PeopleStore.HANDLING + ("record_step",)
            ROLE_OF = {"trainer": "trainer", SUPERVISOR: "supervisor"}

            def record_protocols(self, doc, who=SUPERVISOR):
                return self._by(who).record_protocols(doc, who)

        s = ResponseStore(request.getfixturevalue("people"), clock)
    else:
        from localdb.accounts import Accounts
        from localdb.store import Store
        s = Store(target, clock=clock)
        accounts = Accounts(s)
        admin = accounts.create_first_admin("admin", "a long enough password")
        accounts.create(admin, SUPERVISOR, "supervisor", "another long password")
    s.record_protocols(load_protocols(), SUPERVISOR)
    yield s
    s.close()


def exclusion(store, cleared=True):
    return raise_alert(store, "exclusion_entered", "critical", cleared=cleared)


def test_an_exclusion_breach_from_acknowledgement_to_close_following_its_protocol(store, clock):
    aid = exclusion(store)
    store.acknowledge(aid, "alice", "police_informed", "taking it: following the protocol")
    clock.t += 60
    store.record_step(aid, "alice", "call_police", "no_answer", None, "control room engaged")
    clock.t += 60
    store.record_step(aid, "alice", "call_police", "reached", "CAD 4711", "unit dispatched")
    store.record_step(aid, "alice", "warn_victim", "reached", None, "victim indoors, door locked")
    store.record_step(aid, "alice", "other", "done", None, "checked the zone on the map")
    with pytest.raises(HandlingError, match="mandatory step inform_officer not done"):
        store.close_alert(aid, "alice", "subject left the zone")
    clock.t += 60
    store.close_alert(aid, "alice", "subject left the zone",
                      skipped={"inform_officer": "officer off duty; e-mailed the team"})
    log = store.ack_log(aid)
    assert [(r["action"], r["action_code"]) for r in log] == [
        ("acknowledge", "police_informed"), ("step", "call_police"), ("step", "call_police"),
        ("step", "warn_victim"), ("step", "other"), ("skip", "inform_officer"), ("close", None)]
    assert json.loads(log[2]["reason"]) == {"outcome": "reached", "reference": "CAD 4711"}
    assert log[5]["note"] == "officer off duty; e-mailed the team" and log[5]["operator"] == "alice"
    assert {r["operator"] for r in log} == {"alice"} and log[-1]["at"] == clock.t
    assert store.alerts()[0]["handling"] == "closed"
    assert verify_chain(store.reader(), "ack_log").intact
    # the checklist an operator and the supervisor see, from the same records
    steps = load_protocols()["protocols"]["exclusion_entered"]["*"]
    ticks = {c["id"]: c for c in checklist(steps, log, T0 + 60, clock.t)}
    assert ticks["call_police"]["state"] == "done" and ticks["call_police"]["attempts"] == 2
    assert ticks["call_police"]["given_reference"] == "CAD 4711"
    assert ticks["inform_officer"]["state"] == "skipped"
    assert ticks["call_subject"]["state"] == "overdue"          # optional, never done
    assert open_mandatory(steps, log) == []


def test_the_decider_publishes_the_timeline_the_record_holds(store, clock):
    aid = exclusion(store)
    store.acknowledge(aid, "alice", "police_informed", "on it")
    store.record_step(aid, "alice", "call_police", "reached", "CAD 1", None)
    store.flush()
    h = handling_of(store.ack_log(aid), clock.t)
    assert h["state"] == "acknowledged" and h["owner"] == "alice"
    assert [(i["kind"], i["step_id"], i["outcome"], i["reference"]) for i in h["timeline"]] == [
        ("acknowledge", None, None, None), ("step", "call_police", "reached", "CAD 1")]


STEP_REFUSALS = [
    ("before acknowledgement", False, lambda s, a: s.record_step(a, "alice", "call_police", "reached", "X"),
     "must be acknowledged before steps"),
    ("unknown step", True, lambda s, a: s.record_step(a, "alice", "make_tea", "done"),
     "not a step of this alert's protocol"),
    ("unknown outcome", True, lambda s, a: s.record_step(a, "alice", "call_police", "sort_of"),
     "unknown outcome"),
    ("other without a note", True, lambda s, a: s.record_step(a, "alice", "other", "done", None, " "),
     "needs a note"),
    ("police reached without a reference", True,
     lambda s, a: s.record_step(a, "alice", "call_police", "reached", "  "), "needs the reference"),
    ("another operator's alert", True,
     lambda s, a: s.record_step(a, "bob", "warn_victim", "reached"), "handled by alice"),
]


@pytest.mark.parametrize("what, acked, call, message", STEP_REFUSALS, ids=[r[0] for r in STEP_REFUSALS])
def test_refused_steps_add_nothing_to_the_log(store, what, acked, call, message):
    aid = exclusion(store, cleared=False)
    if acked:
        store.acknowledge(aid, "alice", "police_informed", "on it")
    before = len(store.ack_log(aid))
    with pytest.raises(HandlingError, match=message) as e:
        call(store, aid)
    if what == "another operator's alert":
        assert isinstance(e.value, AlreadyAcknowledged) and e.value.by == "alice"
    assert len(store.ack_log(aid)) == before


def test_a_supervisor_may_record_a_step_of_anyones_alert_and_no_answer_does_not_complete(store):
    aid = exclusion(store)
    store.acknowledge(aid, "alice", "police_informed", "on it")
    store.record_step(aid, SUPERVISOR, "call_police", "reached", "CAD 9", "took over the call")
    store.record_step(aid, "alice", "warn_victim", "no_answer", None, "tried twice")
    store.record_step(aid, "alice", "inform_officer", "message_left", None, None)
    with pytest.raises(HandlingError, match="mandatory step warn_victim not done"):
        store.close_alert(aid, "alice", "done")
    with pytest.raises(HandlingError, match="not a mandatory step"):
        store.close_alert(aid, "alice", "done", skipped={"warn_victim": "no answer",
                                                         "call_subject": "not needed"})
    store.close_alert(aid, "alice", "done", skipped={"warn_victim": "no answer, three tries"})
    assert [r["operator"] for r in store.ack_log(aid) if r["action"] == "step"] == [
        SUPERVISOR, "alice", "alice"]


def test_no_step_after_close_and_closing_without_protocol_steps_when_the_type_has_none(store):
    aid = raise_alert(store, "battery_low", "low", cleared=True)     # no mandatory step
    store.acknowledge(aid, "alice", "contacted_subject", None)
    store.close_alert(aid, "alice", "charged")
    with pytest.raises(HandlingError, match="is closed"):
        store.record_step(aid, "alice", "call_subject", "reached")


def test_protocols_are_versioned_and_a_high_risk_offender_gets_their_level(store, clock):
    doc = {"version": 1, "protocols": {"curfew_absent": {
        "steps": [{"id": "call_subject", "title": "Call", "mandatory": True}],
        "risk": {"medium": {"steps": [{"id": "call_home", "title": "Call home", "mandatory": True}]}}}}}
    assert store.record_protocols(normalise(doc), SUPERVISOR) == 2
    assert store.record_protocols(normalise(doc), SUPERVISOR) == 2                 # unchanged: no version
    assert store.response_protocols()["protocols"]["curfew_absent"]["medium"][0]["id"] == "call_home"
    aid = raise_alert(store, cleared=True)                # OFF-1 is not in this store: risk unknown
    store.acknowledge(aid, "alice", "contacted_subject", "phoned")
    with pytest.raises(HandlingError, match="call_subject not done"):
        store.close_alert(aid, "alice", None)
    store.record_step(aid, "alice", "call_subject", "reached")
    store.close_alert(aid, "alice", None)
