"""Every console model passes Qt's model tester, with real data in it; the queue's order and
filters do what the operator expects."""
from __future__ import annotations

import copy

from monitorapp.engine.alerts import PRIORITY, Alert, alert_id
from monitorapp.engine.caseload import parse_caseload
from tests.fixtures_ui import T0, ui_caseload_doc
from ui.console.alertmodel import COL_PRIORITY, AlertFilterProxy, AlertTableModel, Handling
from ui.console.alertqueue import ShelvedListModel
from ui.console.caseloadlist import CaseloadModel


def make_alert(type_, offender, start, state="active"):
    return Alert(alert_id(type_, offender, None, start), type_, PRIORITY[type_], offender, f"TAG-{offender[4:]}",
                 None, None, start, start + 5, state=state)


def filled_model():
    m = AlertTableModel(escalation={"critical": 60, "high": 180, "medium": 900})
    m.set_offenders({f"OFF-{i}": (f"Person {i}", "Camden" if i % 2 else "Hackney") for i in range(1, 9)})
    batch = [("raised", make_alert("battery_low", "OFF-1", T0)),
             ("raised", make_alert("curfew_absent", "OFF-2", T0 + 10)),
             ("raised", make_alert("strap_tamper", "OFF-3", T0 + 20)),
             ("raised", make_alert("strap_tamper", "OFF-4", T0 + 5)),
             ("raised", make_alert("appointment_missed", "OFF-5", T0 + 1, state="cleared"))]
    m.apply_changes(batch, T0 + 30)
    return m, batch


def test_alert_model_and_proxy_pass_modeltester(qtmodeltester):
    m, batch = filled_model()
    qtmodeltester.check(m)
    proxy = AlertFilterProxy(m)
    qtmodeltester.check(proxy)
    # live changes under the tester: a new batch, a tick, a handling change, a flood re-sort
    a = copy.copy(batch[1][1])
    a.state = "cleared"
    m.apply_changes([("cleared", a), ("raised", make_alert("signal_lost", "OFF-6", T0 + 40))], T0 + 50)
    m.tick(T0 + 100, True)
    m.set_handling(batch[0][1].alert_id, Handling(state="acknowledged", acked_at=T0 + 60, acked_by="x", action="other"))
    proxy.set_flood(True)
    proxy.set_filters(priorities=["critical"], text="off")
    qtmodeltester.check(proxy)


def test_queue_order_priority_then_oldest_unacknowledged():
    m, _ = filled_model()
    proxy = AlertFilterProxy(m)
    order = [m.row(proxy.alert_id_at(r)).alert for r in range(proxy.rowCount())]
    assert [(a.priority, a.offender) for a in order] == [
        ("critical", "OFF-4"), ("critical", "OFF-3"), ("high", "OFF-2"), ("medium", "OFF-5"), ("low", "OFF-1")]
    # acknowledging the oldest critical puts the other (unacknowledged) critical first
    m.set_handling(order[0].alert_id, Handling(state="acknowledged", acked_at=T0 + 60))
    assert m.row(proxy.alert_id_at(0)).alert.offender == "OFF-3"
    assert proxy.data(proxy.index(0, COL_PRIORITY)) == "▲ CRITICAL"


def test_filters_priority_type_state_borough():
    m, batch = filled_model()
    proxy = AlertFilterProxy(m)
    proxy.set_filters(priorities=["critical"])
    assert proxy.rowCount() == 2
    proxy.set_filters(priorities=[], types=["battery_low"])
    assert proxy.rowCount() == 1
    proxy.set_filters(types=[], borough="Camden")
    assert {m.row(proxy.alert_id_at(r)).borough for r in range(proxy.rowCount())} == {"Camden"}
    proxy.set_filters(borough="", state="active")
    assert proxy.rowCount() == 4            # the appointment alert has cleared
    m.set_handling(batch[0][1].alert_id, Handling(state="shelved", shelved_until=T0 + 999))
    proxy.set_filters(state="open")
    assert batch[0][1].alert_id not in {proxy.alert_id_at(r) for r in range(proxy.rowCount())}


def test_new_batch_is_one_insert(qtbot):
    m, _ = filled_model()
    inserts = []
    m.rowsInserted.connect(lambda parent, first, last: inserts.append((first, last)))
    resets = []
    m.modelReset.connect(lambda: resets.append(1))
    m.apply_changes([("raised", make_alert("signal_lost", f"OFF-{i}", T0 + 100 + i)) for i in range(1, 5)], T0 + 200)
    assert inserts == [(5, 8)] and not resets


def test_shelved_and_caseload_models_pass_modeltester(qtmodeltester):
    m, batch = filled_model()
    shelved = ShelvedListModel(m)
    m.set_handling(batch[0][1].alert_id, Handling(state="shelved", shelved_until=T0 + 900, shelved_by="x",
                                                   shelve_reason="known"))
    shelved.refresh()
    qtmodeltester.check(shelved)
    assert shelved.rowCount() == 1 and "back in" in shelved.data(shelved.index(0, 0))
    cl = CaseloadModel(parse_caseload(ui_caseload_doc(4), "t"))
    cl.set_positions([{"device": "TAG-1", "lat": 51.5, "lon": -0.1, "acc": 5, "t": T0, "batt": 0.5}])
    cl.set_alert("OFF-1", "A-1", "high", True)
    cl.set_alert("OFF-1", "A-2", "critical", True)
    cl.tick(T0 + 65)
    qtmodeltester.check(cl)
    assert cl.worst("OFF-1") == "critical"
    assert cl.data(cl.index(0, 5)) == "1 min ago"       # never the ambiguous "1:05 ago"


def test_ages_cannot_be_misread():
    from ui.console.alertmodel import fmt_age, fmt_span
    assert fmt_age(11) == "11 s ago"
    assert fmt_age(4 * 60 + 7) == "4 min ago"
    assert fmt_age(3600 + 5 * 60 + 9) == "1 h 5 min ago"
    assert fmt_age(2 * 86400 + 3 * 3600) == "2 d 3 h ago"
    assert fmt_span(4 * 60 + 7, precise=True) == "4 min 07 s"
    assert fmt_span(None) == "—"


def test_acknowledged_critical_never_above_unacknowledged():
    """EEMUA 191: what waits for an operator is on top, whatever its priority."""
    m, batch = filled_model()
    proxy = AlertFilterProxy(m)
    crit = [a for _c, a in batch if a.priority == "critical"]
    for a in crit:
        m.set_handling(a.alert_id, Handling(state="acknowledged", acked_at=T0 + 60))
    states = [m.row(proxy.alert_id_at(r)).handling.state for r in range(proxy.rowCount())]
    assert states == ["unacknowledged"] * 3 + ["acknowledged"] * 2
    # unacknowledged: still by priority (high, medium, low) then oldest
    assert [m.row(proxy.alert_id_at(r)).alert.priority for r in range(3)] == ["high", "medium", "low"]
    proxy.set_flood(True)
    states = [m.row(proxy.alert_id_at(r)).handling.state for r in range(proxy.rowCount())]
    assert states == ["unacknowledged"] * 3 + ["acknowledged"] * 2


def test_frozen_proxy_moves_no_row_and_appends_new_ones():
    m, batch = filled_model()
    proxy = AlertFilterProxy(m)
    before = [proxy.alert_id_at(r) for r in range(proxy.rowCount())]
    proxy.set_frozen(True)
    m.set_handling(before[0], Handling(state="acknowledged", acked_at=T0 + 60))   # would sink
    new = make_alert("strap_tamper", "OFF-7", T0 + 45)                            # would go on top
    m.apply_changes([("raised", new)], T0 + 50)
    held = [proxy.alert_id_at(r) for r in range(proxy.rowCount())]
    assert held[:len(before)] == before and held[-1] == new.alert_id
    proxy.set_frozen(False)
    after = [proxy.alert_id_at(r) for r in range(proxy.rowCount())]
    assert after[0] != before[0] and after.index(before[0]) > after.index(new.alert_id)


def test_counts_per_priority_and_offender_groups():
    m, batch = filled_model()
    c = m.counts()
    assert (c["critical"]["unack"], c["critical"]["open"]) == (2, 2)
    assert (c["low"]["unack"], c["medium"]["open"]) == (1, 1)
    second = make_alert("signal_lost", "OFF-3", T0 + 25)
    m.apply_changes([("raised", second)], T0 + 40)
    tamper = next(a for _c, a in batch if a.offender == "OFF-3")
    assert m.group_of(tamper.alert_id) == [tamper.alert_id, second.alert_id]
    m.set_handling(second.alert_id, Handling(state="shelved", shelved_until=T0 + 900))
    assert m.group_of(tamper.alert_id) == [tamper.alert_id]
    assert m.counts()["high"]["shelved"] == 1
    assert m.oldest_unacknowledged().alert.offender == "OFF-1"
