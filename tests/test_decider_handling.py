"""The handling the decider publishes (``recordwatch.handling_of``, from an alert's ack-log
entries) is the handling the record itself gives (``store.alerts()``: the server's
``effective_handling`` on PostgreSQL, localdb's on SQLite), step by step, on both backends, with
real stores, the steps taken by the people themselves (on PostgreSQL their own logins)."""
from __future__ import annotations

from monitorapp.service.recordwatch import handling_of
from tests.test_pg_store_behaviour import backend, clock, raise_alert, store, target  # noqa: F401


def _both(store, aid, now):
    mine = handling_of(store.ack_log(aid), now)
    theirs = next(a for a in store.alerts() if a["alert_id"] == aid)["handling"]
    return mine, theirs


def test_handling_of_the_ack_log_is_the_records_handling_step_by_step(store, clock):
    aid = raise_alert(store, cleared=True)
    store.flush()
    seen = []

    def check(expect):
        mine, theirs = _both(store, aid, clock.t)
        assert mine["state"] == theirs == expect
        seen.append(mine)

    check("unacknowledged")
    store.shelve(aid, "bob", "known fault", clock.t + 600)
    check("shelved")
    assert seen[-1]["shelved_until"] == clock.t + 600 and seen[-1]["shelved_reason"] == "known fault"
    clock.t += 700                                   # the shelving has run out by itself
    check("unacknowledged")
    store.acknowledge(aid, "alice", "contacted_subject", "called him")
    check("acknowledged")
    store.shelve(aid, "alice", "waiting for probation", clock.t + 600)
    check("shelved")
    store.unshelve(aid, "alice")
    check("acknowledged")
    store.close_alert(aid, "alice", "resolved")
    check("closed")
    h = seen[-1]
    assert (h["owner"], h["action_code"], h["note"], h["closed_by"]) == (
        "alice", "contacted_subject", "called him", "alice")
    assert [(e["step"], e["operator"]) for e in h["entries"]] == [
        ("shelve", "bob"), ("acknowledge", "alice"), ("shelve", "alice"), ("unshelve", "alice"),
        ("close", "alice")]
    assert [e["seq"] for e in h["entries"]] == sorted(e["seq"] for e in h["entries"])
