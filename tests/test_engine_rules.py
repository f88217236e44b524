"""Every clause of spec §4 "What counts as right", as acceptance tests on the real engine."""
from __future__ import annotations

import orjson
import pytest

from monitorapp.engine.engine import Engine
from tests.enginekit import EXCL_X0, FeedBuilder, T, caseload, caseload_doc, raised, run

DAY = "2026-11-27"
T0 = T(f"{DAY}T10:00:00Z")       # daytime, curfew (19:00–07:00 GMT) not active


def quiet_other(fb, t0, t1):
    """A second tag reporting normally and gateway heartbeats, so the feed is alive."""
    fb.track("TAG-2", t0, t1, lambda t: (-3000, 0))
    fb.heartbeats(t0, t1)


@pytest.mark.parametrize("interval", [30, 60])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exclusion_entry_is_alerted_within_bound(interval, seed):
    cl = caseload(fix_interval=interval)
    entry = T0 + 1800.0 + 17.0
    fb = FeedBuilder(seed)
    # walks east at 1.4 m/s, reaching the boundary (x = 850) at `entry`, stops 60 m inside

    def pos(t):
        x = EXCL_X0 + 1.4 * (t - entry)
        return (min(x, EXCL_X0 + 60.0), 0.0)
    fb.track("TAG-1", T0, T0 + 3 * 3600, pos, interval=interval, acc=12.0)
    quiet_other(fb, T0, T0 + 3 * 3600)
    eng, changes = run(cl, fb.lines())
    ex = raised(eng, "exclusion_entered")
    assert len(ex) == 1, changes
    a = ex[0]
    assert a.priority == "critical" and a.offender == "OFF-1" and a.requirement == "R-X" and a.zone == "Z-EXCL"
    assert a.raised_at <= entry + 3 * interval + 60
    assert entry - 2 * interval <= a.start <= a.raised_at
    assert a.state == "active" and not a.late
    assert a.evidence["fixes"] and all(f["inside"] for f in a.evidence["fixes"])
    assert [c for c in changes if c[1] == "exclusion_entered"] == [("raised", "exclusion_entered", a.alert_id)]


def test_exclusion_clears_when_the_tag_leaves_and_comes_back_as_one_alert():
    cl = caseload()
    fb = FeedBuilder(4)

    def pos(t):
        dt = t - T0
        if 600 <= dt < 1200 or 1500 <= dt < 1800:   # in, out for 5 min, in again
            return (1000, 0)
        return (500, 0)
    fb.track("TAG-1", T0, T0 + 3600, pos)
    quiet_other(fb, T0, T0 + 3600)
    eng, changes = run(cl, fb.lines())
    ex = raised(eng, "exclusion_entered")
    kinds = [c[0] for c in changes if c[1] == "exclusion_entered"]
    assert len(ex) == 1
    assert kinds == ["raised", "cleared", "reactivated", "cleared"]
    assert ex[0].reactivations == 1 and ex[0].state == "cleared"


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("acc", [5.0, 15.0, 30.0])
def test_noise_two_acc_outside_an_exclusion_zone_never_alerts(seed, acc):
    cl = caseload()
    fb = FeedBuilder(100 + seed)
    # a whole day standing 2 × acc outside the boundary, one fix every 30 s
    fb.track("TAG-1", T0, T0 + 24 * 3600, lambda t: (EXCL_X0 - 2 * acc, 0.0), interval=30, acc=acc)
    quiet_other(fb, T0, T0 + 24 * 3600)
    eng, _ = run(cl, fb.lines())
    assert raised(eng, "exclusion_entered") == []


@pytest.mark.parametrize("seed", range(4))
def test_noise_two_acc_inside_the_curfew_zone_never_alerts(seed):
    cl = caseload()
    acc = 20.0
    fb = FeedBuilder(200 + seed)
    night = T(f"{DAY}T19:00:00Z")
    # home is a 100 m circle; standing 100 - 2 × 20 = 60 m from its centre
    fb.track("TAG-1", night - 3600, night + 12 * 3600, lambda t: (60.0, 0.0), acc=acc)
    quiet_other(fb, night - 3600, night + 12 * 3600)
    eng, _ = run(cl, fb.lines())
    assert raised(eng, "curfew_absent") == []


def test_a_single_multipath_jump_raises_nothing():
    cl = caseload()
    fb = FeedBuilder(5)
    night = T(f"{DAY}T20:00:00Z")
    t_jump_in = T0 + 1200
    t_jump_out = night + 1800

    def pos(t):
        if t == t_jump_in:
            return (1000.0, 0.0)       # one fix 1 km away inside the exclusion zone
        if t == t_jump_out:
            return (-700.0, 400.0)     # one fix far from home during curfew
        return (0.0, 0.0)
    fb.track("TAG-1", T0, night + 3 * 3600, pos, acc=8.0)
    quiet_other(fb, T0, night + 3 * 3600)
    eng, changes = run(cl, fb.lines())
    assert raised(eng) == [], changes


def test_duplicates_are_dropped_counted_and_raise_nothing_twice():
    cl = caseload()
    fb = FeedBuilder(6)
    fb.track("TAG-1", T0, T0 + 1800, lambda t: (1000, 0) if t - T0 >= 600 else (0, 0))
    quiet_other(fb, T0, T0 + 1800)
    lines = fb.lines()
    doubled = []
    for ln in lines:
        doubled.append(ln)
        if b'"TAG-1"' in ln:
            doubled.append(ln)        # retransmitted at once
    eng, changes = run(cl, doubled)
    assert eng.counters.duplicates == sum(1 for ln in lines if b'"TAG-1"' in ln)
    assert len(raised(eng, "exclusion_entered")) == 1
    assert eng.counters.fixes == sum(1 for ln in lines if b'"fix"' in ln)


def _gap_feed(shuffle: bool):
    """The tag loses coverage at T0+600, enters the zone at T0+900, and its buffered fixes
    arrive in one burst when coverage returns at T0+1500."""
    fb = FeedBuilder(7)
    gap = (T0 + 600, T0 + 1500)
    entry = T0 + 900

    def pos(t):
        return (1000.0, 0.0) if t >= entry else (0.0, 0.0)
    t = T0
    burst = []
    while t <= T0 + 2400:
        if gap[0] <= t < gap[1]:
            burst.append(t)
        else:
            fb.fix("TAG-1", t, *pos(t))
        t += 60
    rx = gap[1] + 5
    order = list(reversed(burst)) if shuffle else burst
    seqs = {t: fb.next_seq("TAG-1") for t in burst}
    for i, t in enumerate(order):
        fb.fix("TAG-1", t, *pos(t), rx=rx + 0.01 * i, seq=seqs[t])
    quiet_other(fb, T0, T0 + 2400)
    return fb.lines(), entry, rx


@pytest.mark.parametrize("shuffle", [False, True])
def test_late_data_is_evaluated_in_measurement_order_and_keeps_the_true_start(shuffle):
    cl = caseload()
    lines, entry, rx = _gap_feed(shuffle)
    eng, changes = run(cl, lines)
    ex = raised(eng, "exclusion_entered")
    assert len(ex) == 1, changes
    a = ex[0]
    assert a.late is True
    assert entry <= a.start <= entry + 60          # the first fix inside, measured in the gap
    assert a.raised_at >= rx


def test_late_alert_from_a_burst_is_the_same_alert_whatever_the_order():
    cl = caseload()
    ids = {tuple(a.alert_id for a in raised(run(cl, _gap_feed(s)[0])[0], "exclusion_entered")) for s in (False, True)}
    assert len(ids) == 1


def test_feed_outage_raises_one_feed_lost_and_no_signal_lost_storm():
    cl = caseload()
    fb = FeedBuilder(8)
    out = (T0 + 1800, T0 + 1800 + 900)   # 15 minutes of nothing at all
    fb.track("TAG-1", T0, T0 + 3600, lambda t: (0, 0), skip=out)
    fb.track("TAG-2", T0, T0 + 3600, lambda t: (-3000, 0), skip=out)
    fb.heartbeats(T0, T0 + 3600, skip=out)
    eng, changes = run(cl, fb.lines())
    fl = raised(eng, "feed_lost")
    assert len(fl) == 1 and fl[0].priority == "critical" and fl[0].offender is None
    assert out[0] + 60 - 60 < fl[0].raised_at <= out[0] + 61 + 1
    assert fl[0].state == "cleared"
    assert raised(eng, "signal_lost") == []


def test_signal_lost_fires_at_its_due_time_and_clears_on_return():
    cl = caseload(fix_interval=60)
    fb = FeedBuilder(9)
    silent = (T0 + 1200, T0 + 1200 + 1500)
    fb.track("TAG-1", T0, T0 + 3600, lambda t: (0, 0), skip=silent)
    quiet_other(fb, T0, T0 + 3600)
    eng, changes = run(cl, fb.lines())
    sl = raised(eng, "signal_lost")
    assert len(sl) == 1
    last_fix_t = T0 + 1140
    assert sl[0].start == pytest.approx(last_fix_t)
    assert sl[0].raised_at == pytest.approx(last_fix_t + 1.0 + 300.0)   # last rx + max(300, 3 × 60)
    assert sl[0].state == "cleared" and sl[0].cleared_at == pytest.approx(silent[1] + 1.0)


def test_timers_fire_at_their_due_time_when_the_clock_jumps():
    """TAG-1 reports once; TAG-2 every 50 s until T0+250, then nothing until T0+1000. The
    clock jumps from T0+251 to T0+1001: TAG-1's signal timer (T0+1+300) fires at its due
    time, before the feed timer (T0+251+60), and the later feed outage raises no more."""
    cl = caseload()
    fb = FeedBuilder(10)
    fb.fix("TAG-1", T0, 0, 0)
    fb.track("TAG-2", T0, T0 + 250, lambda t: (-3000, 0), interval=50)
    fb.fix("TAG-2", T0 + 1000, -3000, 0)
    eng, changes = run(cl, fb.lines())
    sl = raised(eng, "signal_lost")
    assert [a.offender for a in sl] == ["OFF-1"]
    assert sl[0].raised_at == pytest.approx(T0 + 1 + 300)
    fl = raised(eng, "feed_lost")
    assert len(fl) == 1 and fl[0].raised_at == pytest.approx(T0 + 251 + 60)
    assert fl[0].cleared_at == pytest.approx(T0 + 1001)


def test_curfew_absence_is_alerted_after_grace_within_bound():
    cl = caseload()
    fb = FeedBuilder(11)
    night = T(f"{DAY}T19:00:00Z")
    left = night + 2 * 3600 + 13
    fb.track("TAG-1", night - 1800, night + 5 * 3600,
             lambda t: (0, 0) if t < left or t > left + 3600 else (600, 300))
    quiet_other(fb, night - 1800, night + 5 * 3600)
    eng, changes = run(cl, fb.lines())
    cu = raised(eng, "curfew_absent")
    assert len(cu) == 1, changes
    a = cu[0]
    assert a.priority == "high" and a.requirement == "R-C"
    assert left <= a.start <= left + 120
    assert a.raised_at <= left + 600 + 3 * 60 + 60
    assert a.raised_at >= a.start + 600
    assert a.state == "cleared"


def test_curfew_that_starts_while_the_tag_is_out_counts_from_the_window_start():
    cl = caseload()
    fb = FeedBuilder(12)
    night = T(f"{DAY}T19:00:00Z")
    fb.track("TAG-1", night - 3600, night + 3600, lambda t: (600, 300) if t < night + 1800 else (0, 0))
    quiet_other(fb, night - 3600, night + 3600)
    eng, _ = run(cl, fb.lines())
    cu = raised(eng, "curfew_absent")
    assert len(cu) == 1
    assert cu[0].start == night and cu[0].raised_at == pytest.approx(night + 600)


def test_short_absence_within_grace_raises_nothing():
    cl = caseload()
    fb = FeedBuilder(13)
    night = T(f"{DAY}T21:00:00Z")
    fb.track("TAG-1", night - 600, night + 3600, lambda t: (600, 0) if night <= t < night + 300 else (0, 0))
    quiet_other(fb, night - 600, night + 3600)
    eng, _ = run(cl, fb.lines())
    assert raised(eng, "curfew_absent") == []


def test_curfew_follows_the_daylight_saving_change():
    """19:00–07:00 Europe/London: on Sat 24 Oct 2026 (BST) the curfew starts at 18:00Z; on
    Sun 25 Oct (GMT) at 19:00Z. Out 18:05Z–18:50Z on both evenings: only the first breaches."""
    cl = caseload()
    fb = FeedBuilder(14)
    starts = [T("2026-10-24T18:05:00Z"), T("2026-10-25T18:05:00Z")]
    t0, t1 = T("2026-10-24T16:00:00Z"), T("2026-10-25T20:00:00Z")

    def pos(t):
        return (600, 300) if any(s <= t < s + 2700 for s in starts) else (0, 0)
    fb.track("TAG-1", t0, t1, pos)
    quiet_other(fb, t0, t1)
    eng, _ = run(cl, fb.lines())
    cu = raised(eng, "curfew_absent")
    assert len(cu) == 1
    assert T("2026-10-24T18:05:00Z") <= cu[0].start <= T("2026-10-24T18:07:00Z")


def test_appointment_missed_raised_at_end_plus_grace_and_attended_raises_nothing():
    start, end = f"{DAY}T11:00:00Z", f"{DAY}T11:30:00Z"
    cl = caseload(appointment=(start, end))
    for goes, expect in ((False, 1), (True, 0)):
        fb = FeedBuilder(15)
        fb.track("TAG-1", T0, T0 + 3 * 3600,
                 lambda t: (0, 2000) if goes and T(start) + 300 <= t <= T(start) + 1500 else (0, 0))
        quiet_other(fb, T0, T0 + 3 * 3600)
        eng, _ = run(cl, fb.lines())
        ap = raised(eng, "appointment_missed")
        assert len(ap) == expect
        if expect:
            assert ap[0].priority == "medium"
            assert ap[0].raised_at == pytest.approx(T(end) + 300)
            assert ap[0].start == T(start)


def test_tamper_is_raised_on_the_message_and_cleared_by_restore():
    cl = caseload()
    fb = FeedBuilder(16)
    fb.track("TAG-1", T0, T0 + 1800, lambda t: (0, 0))
    fb.event("TAG-1", T0 + 600.5, "strap_tamper", rx=T0 + 601.25)
    fb.event("TAG-1", T0 + 700.5, "case_tamper")          # same cause: no second alert
    fb.event("TAG-1", T0 + 900.5, "strap_restored")
    quiet_other(fb, T0, T0 + 1800)
    eng, _ = run(cl, fb.lines())
    st = raised(eng, "strap_tamper")
    assert len(st) == 1
    assert st[0].raised_at == T0 + 601.25 and st[0].start == T0 + 600.5 and st[0].priority == "critical"
    assert st[0].state == "cleared"


def test_battery_low_once_per_discharge():
    cl = caseload()
    fb = FeedBuilder(17)
    levels = {}

    def batt(t):
        h = (t - T0) / 3600
        if h < 5:
            return max(0.05, 0.5 - 0.1 * h)       # falls below 0.15 at 3.5 h, keeps falling
        return min(1.0, 0.05 + 0.3 * (h - 5)) if h < 8 else max(0.05, 0.95 - 0.2 * (h - 8))
    t = T0
    while t <= T0 + 14 * 3600:
        levels[t] = round(batt(t), 3)
        fb.fix("TAG-1", t, 0, 0, batt=levels[t])
        t += 60
    quiet_other(fb, T0, T0 + 14 * 3600)
    eng, _ = run(cl, fb.lines())
    bl = raised(eng, "battery_low")
    assert len(bl) == 2
    assert all(a.priority == "low" for a in bl)
    assert bl[0].state == "cleared" and bl[1].state == "active"


def test_battery_event_and_charging_rearm():
    cl = caseload()
    fb = FeedBuilder(18)
    fb.track("TAG-1", T0, T0 + 5 * 3600, lambda t: (0, 0))
    fb.event("TAG-1", T0 + 100, "battery_low")
    fb.event("TAG-1", T0 + 200, "battery_critical")
    fb.event("TAG-1", T0 + 300, "charging_started")
    fb.event("TAG-1", T0 + 3 * 3600, "battery_critical")
    quiet_other(fb, T0, T0 + 5 * 3600)
    eng, _ = run(cl, fb.lines())
    assert len(raised(eng, "battery_low")) == 2


def test_the_same_input_gives_the_same_alerts_with_the_same_ids():
    cl = caseload()
    lines, _, _ = _gap_feed(True)
    outs = []
    for _ in range(2):
        eng, _ = run(caseload(), lines)
        outs.append([orjson.dumps(a.to_json()) for a in eng.alerts.values()])
    assert outs[0] == outs[1] and outs[0]


def test_restored_engine_raises_nothing_twice_and_misses_nothing():
    cl = caseload()
    fb = FeedBuilder(19)
    fb.track("TAG-1", T0, T0 + 7200, lambda t: (1000, 0) if T0 + 1200 <= t < T0 + 4000 else (0, 0))
    quiet_other(fb, T0, T0 + 7200)
    lines = fb.lines()
    full, full_changes = run(caseload(), lines)
    cut = len(lines) * 2 // 5      # in the middle of the breach
    first, _ = run(caseload(), lines[:cut])
    assert raised(first, "exclusion_entered")
    snap = orjson.loads(orjson.dumps(first.snapshot()))
    second = Engine(caseload(), state=snap)
    changes = []
    second.add_listener(on_alert=lambda a, ch: changes.append((ch, a.type)))
    for ln in lines[cut:]:
        second.submit(ln)
    assert ("raised", "exclusion_entered") not in changes
    assert ("cleared", "exclusion_entered") in changes
    assert {a.alert_id: a.to_json() for a in second.alerts.values()} == \
        {a.alert_id: a.to_json() for a in full.alerts.values()}
    assert second.counters.summary() == full.counters.summary()


def test_exclusion_with_a_schedule_only_applies_in_its_window():
    cl = caseload(exclusion_schedule=[{"days": "daily", "start": "12:00", "end": "14:00"}])
    fb = FeedBuilder(20)
    fb.track("TAG-1", T0, T0 + 5 * 3600, lambda t: (1000, 0) if T0 + 3600 <= t < T0 + 9000 else (0, 0))
    quiet_other(fb, T0, T0 + 5 * 3600)
    eng, _ = run(cl, fb.lines())
    ex = raised(eng, "exclusion_entered")
    assert len(ex) == 1
    assert ex[0].start == pytest.approx(T(f"{DAY}T12:00:00Z"), abs=61)


def test_a_processing_clock_near_year_9999_fires_curfew_edges_without_an_error():
    """The schedule helpers get processing-clock times, which no decoder bound covers: a clock
    jumped to the last representable days must not make the curfew's edge timer fail."""
    import datetime as dt
    start = dt.datetime(9999, 12, 1, tzinfo=dt.timezone.utc).timestamp()
    eng = Engine(caseload(), start=start)
    for days in (10, 25, 30.999):          # the curfew's edges, day after day, to the last second
        eng.advance(start + days * 86400)
        assert eng.take_errors() == []
    # and the engine still raises what comes after: a tamper is on the message that reports it
    late = FeedBuilder(22)
    late.event("TAG-2", T0, "strap_tamper")
    eng.submit(late.lines()[0])
    assert [a.offender for a in raised(eng, "strap_tamper")] == ["OFF-2"]


@pytest.mark.parametrize("seed", range(3))
def test_an_absence_just_outside_the_door_is_alerted_within_bound(seed):
    """40 m beyond a 100 m home with acc 10: too close for the two-far-fixes rule (F, 46 m),
    caught by the sustained run (R) after 10 minutes, inside grace 600 s + 3 intervals + 60 s."""
    cl = caseload()
    fb = FeedBuilder(300 + seed)
    night = T(f"{DAY}T19:00:00Z")
    left = night + 3600 + 7
    fb.track("TAG-1", night - 1800, night + 4 * 3600,
             lambda t: (140.0, 0.0) if left <= t < left + 3600 else (0.0, 0.0), acc=10.0)
    quiet_other(fb, night - 1800, night + 4 * 3600)
    eng, changes = run(cl, fb.lines())
    cu = raised(eng, "curfew_absent")
    assert len(cu) == 1, changes
    assert left <= cu[0].start <= left + 60
    assert cu[0].start + 600 <= cu[0].raised_at <= left + 600 + 3 * 60 + 60


def test_a_far_fix_then_one_just_outside_does_not_confirm_an_absence():
    """F needs both of the two newest fixes far: a multipath jump next to a noisy fix that is
    only just outside is not an absence, however short the grace."""
    doc = caseload_doc()
    doc["offenders"][0]["requirements"][1]["grace_s"] = 0
    from monitorapp.engine.caseload import parse_caseload
    cl = parse_caseload(doc)
    fb = FeedBuilder(9)
    night = T(f"{DAY}T20:00:00Z")
    jump = night + 1800

    def pos(t):
        if t == jump:
            return (800.0, 0.0)
        if t == jump + 60:
            return (112.0, 0.0)      # 12 m outside, acc 10
        return (0.0, 0.0)
    fb.track("TAG-1", night - 600, night + 3600, pos, acc=10.0, noise=False)
    quiet_other(fb, night - 600, night + 3600)
    eng, changes = run(cl, fb.lines())
    assert raised(eng, "curfew_absent") == [], changes
