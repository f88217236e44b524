"""A second training run on the same training store never replays the first run's hours.

The training store is kept between runs of ``main.py --demo`` (it holds the training accounts),
and alert ids are made from the alert's type, offender and start: a rerun of the same scenario
over the same simulated hours raised the very alerts the store already held acknowledged, and
the trainee's acknowledgement was refused ("already acknowledged by op.jones"). The real
simulator, engine and store: the first run records its strap-cut alert and its acknowledgement;
the second session starts a day later, its alert has a new id and is acknowledged."""
from __future__ import annotations

from localdb.store import Store
from monitorapp.engine.engine import Engine
from ui.console.training import TrainingSession, days_after, last_recorded


def _run(session: TrainingSession, path, minutes: float = 12) -> Store:
    """Feed ``minutes`` of the session's simulator through a real engine into the store."""
    store = Store(path, clock=lambda: session.start + minutes * 60, mode="training")
    store.record_caseload(session.caseload, "trainer")
    engine = Engine(session.caseload, start=session.start)
    store.attach(engine)
    sim = session.simulator
    t = session.start
    while t < session.start + minutes * 60:
        t += 30
        for rx, raw in sim.step_until(t):
            engine.submit(raw, rx=rx)
        engine.advance(t)
    store.flush()
    return store


def _strap_alert(store: Store) -> dict:
    (a,) = [a for a in store.alerts() if a["type"] == "strap_tamper"]
    return a


def test_a_rerun_of_a_scenario_moves_on_a_day_and_its_alert_can_be_acknowledged(tmp_path):
    path = tmp_path / "training.sqlite"
    assert last_recorded(path) is None
    first = TrainingSession(speed=60, scenario="strap_cut", db=str(path))
    assert first.days_on == 0
    store = _run(first, path)
    a1 = _strap_alert(store)
    store.acknowledge(a1["alert_id"], "op.jones", "contacted_subject", "first run: called the subject")
    store.flush()
    store.close()
    assert last_recorded(path) >= a1["raised_at"]

    second = TrainingSession(speed=60, scenario="strap_cut", db=str(path))
    assert second.days_on == 1 and second.start == first.start + 86400
    assert second.description == first.description          # the same story
    store = _run(second, path)
    a2 = [a for a in store.alerts() if a["type"] == "strap_tamper" and a["alert_id"] != a1["alert_id"]]
    assert len(a2) == 1 and a2[0]["start"] > a1["start"] + 86000, a2
    # the trainee's acknowledgement of the new alert is taken (the old one stays acknowledged)
    store.acknowledge(a2[0]["alert_id"], "op.jones", "contacted_subject", "second run")
    store.flush()
    acks = [r for r in store.ack_log() if r["action"] == "acknowledge"]
    assert [r["alert_id"] for r in acks] == [a1["alert_id"], a2[0]["alert_id"]]
    store.close()


def test_the_training_day_moves_on_only_past_what_the_store_holds(tmp_path):
    start = 1_800_000_000.0
    assert days_after(start, None) == 0
    assert days_after(start, start - 1) == 0                 # yesterday's run: today is free
    assert days_after(start, start) == 1
    assert days_after(start, start + 2 * 3600) == 1          # two hours of today used: tomorrow
    assert days_after(start, start + 86400 + 60) == 2
    fresh = TrainingSession(speed=10, start=start, n_offenders=8, db=str(tmp_path / "none.sqlite"))
    assert fresh.days_on == 0 and fresh.start == start
