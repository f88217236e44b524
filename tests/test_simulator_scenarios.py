"""The real engine over simulated feeds, judged against the simulator's ground truth (spec §4,
"What counts as right"): every scripted breach alerted within its bound, exactly once, and
nothing else — no alert from GPS noise, near-misses, multipath jumps or the feed outage."""
from __future__ import annotations

import collections

import pytest

from monitorapp.engine.caseload import parse_caseload
from monitorapp.engine.engine import Engine
from monitorapp.sim.scenarios import SCENARIOS, scenario
from monitorapp.feed.timeutil import fmt_time, parse_time

pytestmark = pytest.mark.slow


def run_engine(caseload: dict, lines, end: float):
    engine = Engine(parse_caseload(caseload, "simulated caseload"))
    raised = []
    engine.add_listener(on_alert=lambda a, change: raised.append(a) if change == "raised" else None)
    for _rx, line in lines:
        engine.submit(line)
    engine.flush()
    engine.advance(end)
    return engine, raised


def match(truth: dict, alerts) -> tuple[dict, list]:
    """breach index → matching alerts; and the alerts that neither a breach nor a ``may_alert``
    record (a curfew after the tag died) explains."""
    found, used = {}, set()
    for i, b in enumerate(truth["breaches"]):
        start, by = parse_time(b["start"]), parse_time(b["alert_by"])
        iv = b["fix_interval_s"] or 60
        found[i] = [a for a in alerts if a.type == b["type"] and a.offender == b["offender"]
                    and (b["requirement"] is None or a.requirement == b["requirement"])
                    and start - 3 * iv - 60 <= a.start <= by]
        used.update(a.alert_id for a in found[i])
    for m in truth.get("may_alert", []):
        a0, a1 = parse_time(m["from"]), parse_time(m["to"])
        used.update(a.alert_id for a in alerts if a.type == m["type"] and a.offender == m["offender"]
                    and a.requirement == m["requirement"] and a0 - 60 <= a.start <= a1)
    return found, [a for a in alerts if a.alert_id not in used]


def describe(a) -> str:
    return (f"{a.type} {a.offender} {a.requirement} start {fmt_time(a.start)} "
            f"raised {fmt_time(a.raised_at)} late={a.late}")


@pytest.fixture(scope="module")
def day_run(sim_day):
    engine, raised = run_engine(sim_day.caseload, sim_day.lines, sim_day.t1)
    return engine, raised


def test_every_scripted_breach_is_alerted_within_its_bound(sim_day, day_run):
    _engine, raised = day_run
    found, _ = match(sim_day.truth, raised)
    problems = []
    for i, b in enumerate(sim_day.truth["breaches"]):
        alerts = found[i]
        by = parse_time(b["alert_by"])
        if not alerts:
            problems.append(f"not alerted: {b}")
        elif len(alerts) > 1:
            problems.append(f"alerted {len(alerts)} times: {b} -> {[describe(a) for a in alerts]}")
        elif alerts[0].raised_at > by + 1e-3:
            problems.append(f"too late: {b} -> {describe(alerts[0])}")
        elif alerts[0].start > alerts[0].raised_at + 1e-3:
            problems.append(f"starts after it was raised: {describe(alerts[0])}")
    assert not problems, "\n".join(problems)
    assert len(sim_day.truth["breaches"]) >= 20


def test_nothing_is_alerted_that_the_truth_does_not_explain(sim_day, day_run):
    _engine, raised = day_run
    _, extra = match(sim_day.truth, raised)
    assert not extra, "\n".join(describe(a) for a in extra)


def test_near_misses_multipath_and_attended_appointments_raise_nothing(sim_day, day_run):
    _engine, raised = day_run
    bad = []
    for m in sim_day.truth["must_not_alert"]:
        a0, a1 = parse_time(m["from"]), parse_time(m["to"])
        for a in raised:
            if (a.type == m["type"] and a.offender == m["offender"]
                    and (m["requirement"] is None or a.requirement == m["requirement"])
                    and a0 - 60 <= a.start <= a1):
                bad.append(f"{m['cause']} {m['offender']} {m['requirement']}: {describe(a)}")
    assert not bad, "\n".join(bad)
    assert sum(1 for m in sim_day.truth["must_not_alert"] if m["cause"] == "near_miss") >= 7


def test_one_cause_one_alert(sim_day, day_run):
    engine, raised = day_run
    ids = collections.Counter(a.alert_id for a in raised)
    assert max(ids.values()) == 1
    assert len(engine.alerts) == len(raised)
    assert len(sim_day.truth["breaches"]) <= len(raised) <= len(sim_day.truth["breaches"]) + len(sim_day.truth["may_alert"])
    during_outage = [a for a in raised if a.type == "signal_lost"
                     and parse_time(sim_day.truth["outage"]["start"]) - 60 <= a.raised_at
                     <= parse_time(sim_day.truth["outage"]["end"]) + 120]
    assert not during_outage, [describe(a) for a in during_outage]


def test_tamper_is_raised_on_the_message_that_reports_it(sim_day, day_run):
    _engine, raised = day_run
    rx_of = {(m["device"], m["t"]): parse_time(m["rx"]) for m in sim_day.msgs
             if m["kind"] == "event" and m["type"] == "strap_tamper"}
    tampers = [a for a in raised if a.type == "strap_tamper"]
    assert len(tampers) == len(rx_of) >= 3
    for a in tampers:
        assert abs(a.raised_at - rx_of[(a.device, fmt_time(a.start))]) < 1e-3


def test_curfew_alerts_follow_london_time_across_the_dst_change(sim_day, day_run):
    """Late returns are alerted from the curfew's local start (BST, 24 Oct); early leaves are
    absences before its local end (GMT, 25 Oct)."""
    _engine, raised = day_run
    curfew = {(a.offender, a.requirement): a for a in raised if a.type == "curfew_absent"}
    checked = 0
    for b in sim_day.truth["breaches"]:
        if b["cause"] not in ("curfew_late_return", "curfew_early_leave"):
            continue
        a = curfew[(b["offender"], b["requirement"])]
        sched = next(r for o in sim_day.caseload["offenders"] if o["id"] == b["offender"]
                     for r in o["requirements"] if r["id"] == b["requirement"])["schedule"][0]
        if b["cause"] == "curfew_late_return":
            local = {"19:00": "2026-10-24T18:00:00.000Z", "21:00": "2026-10-24T20:00:00.000Z"}
            assert fmt_time(a.start) == local[sched["start"]], describe(a)
        else:
            end = {"07:00": "2026-10-25T07:00:00.000Z", "06:00": "2026-10-25T06:00:00.000Z"}
            assert parse_time(end[sched["end"]]) - 20 * 60 > a.start > parse_time(end[sched["end"]]) - 50 * 60
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("name", SCENARIOS)
def test_trainer_presets_raise_exactly_their_story(name):
    sc = scenario(name)
    lines, truth = sc.feed()
    lines = list(lines)
    assert 0.4 <= sc.hours <= 1.0 and truth["breaches"]
    _engine, raised = run_engine(sc.caseload, lines, parse_time(truth["end"]))
    found, extra = match(truth, raised)
    assert not extra, "\n".join(describe(a) for a in extra)
    for i, b in enumerate(truth["breaches"]):
        assert len(found[i]) == 1, b
        assert found[i][0].raised_at <= parse_time(b["alert_by"]) + 1e-3, (b, describe(found[i][0]))
    if name == "alert_flood":
        first = min(a.raised_at for a in raised)
        assert len(raised) >= 12 and all(a.raised_at - first <= 600 for a in raised)


def test_default_training_day_alerts_within_two_real_minutes():
    """``main.py --demo`` at its default speed: the engine raises the first alert within two
    real minutes (the opening exclusion breach), not after ten minutes of an empty queue."""
    from monitorapp.engine.engine import Engine
    from ui.console.training import TrainingSession
    from ui.settings import SETTINGS
    speed = next(s.default for s in SETTINGS if s.key == "training/speed")
    session = TrainingSession(speed=speed)
    engine = Engine(session.caseload, start=session.start)
    raised = []
    engine.add_listener(on_alert=lambda a, change: raised.append(a) if change == "raised" else None)
    t, limit = session.start, session.start + 120 * speed
    while t < limit and not raised:
        t += 5.0
        for rx, raw in session.simulator.step_until(t):
            engine.submit(raw, rx=rx)
        engine.advance(t)
    assert raised, f"no alert in the first {120 * speed / 60:.0f} simulated minutes"
    first = raised[0]
    assert first.type == "exclusion_entered" and (first.raised_at - session.start) / speed < 120


def test_curfews_under_real_world_noise_alert_every_absence_and_nothing_else(sim_caseload):
    """Issue 17: the same day with GPS errors correlated over 5 minutes and twice what ``acc``
    says. Every scripted curfew absence is alerted once within its bound; no curfew alert the
    truth does not explain (near-misses in the garden, multipath, nights at home)."""
    from monitorapp.sim.simulator import DEFAULT_START, FeedOptions, SimulatedFeed
    feed = SimulatedFeed(sim_caseload, DEFAULT_START, 24.0, seed=1,
                         options=FeedOptions(noise_tau_s=300.0, noise_inflation=2.0))
    _engine, raised = run_engine(sim_caseload, feed.lines(), feed.t1)
    found, extra = match(feed.truth, raised)
    problems = [f"unexplained: {describe(a)}" for a in extra if a.type == "curfew_absent"]
    n = 0
    for i, b in enumerate(feed.truth["breaches"]):
        if b["type"] != "curfew_absent":
            continue
        n += 1
        if len(found[i]) != 1:
            problems.append(f"alerted {len(found[i])} times: {b}")
        elif found[i][0].raised_at > parse_time(b["alert_by"]) + 1e-3:
            problems.append(f"too late: {b} -> {describe(found[i][0])}")
    assert n >= 5 and not problems, "\n".join(problems)
