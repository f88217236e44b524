"""The feed's bounds through the real engine (spec v2 §2): counter restarts are processed and
counted, a fix dated a year ahead cannot freeze a tag, and the issue's poison messages are
rejections after which the next real alert is still raised (in-process and by
``monitorapp replay``)."""
from __future__ import annotations

import subprocess
import sys

import orjson

from monitorapp.engine.engine import Engine
from monitorapp.engine.state import restore, snapshot
from monitorapp.feed.decoder import SequenceTracker
from monitorapp.feed.messages import Rejection
from monitorapp.feed.timeutil import fmt_time
from tests.conftest import ROOT
from tests.enginekit import FeedBuilder, T, caseload, raised, run

T0 = T("2026-11-27T09:00:00Z")     # daytime: the kit's curfew (19:00-07:00) is not active
HOME = (0.0, 0.0)
EXCLUSION = (1000.0, 0.0)          # the middle of the kit's exclusion square


def _rebooting_feed(fb: FeedBuilder) -> float:
    """An hour at home (seq 0..60), a reboot (seq back to 0), 30 minutes in the exclusion zone.
    Returns the true entry time."""
    fb.heartbeats(T0, T0 + 5700)
    fb.track("TAG-1", T0, T0 + 3600, lambda t: HOME)
    fb.seq["TAG-1"] = 0                                      # the tag rebooted
    entry = T0 + 3660
    fb.track("TAG-1", entry, entry + 1800, lambda t: EXCLUSION)
    return entry


def test_a_tag_that_rebooted_is_still_caught_in_its_exclusion_zone():
    fb = FeedBuilder(seed=13)
    entry = _rebooting_feed(fb)
    eng, changes = run(caseload(), fb.lines())
    [alert] = raised(eng, "exclusion_entered")
    assert alert.offender == "OFF-1" and alert.requirement == "R-X"
    assert entry <= alert.start and alert.raised_at <= entry + 3 * 60 + 60     # spec §4: quickly
    assert eng.counters.seq_resets == 1          # one restart, however many messages follow it
    assert eng.counters.duplicates == 0
    assert eng.counters.fixes == 61 + 31


def test_a_retransmission_is_still_a_duplicate_after_a_restart():
    fb = FeedBuilder(seed=13)
    _rebooting_feed(fb)
    lines = fb.lines()
    again = [ln for ln in lines if b'"kind":"fix"' in ln]
    before, after = again[5], again[70]                    # one of each count, sent once more
    eng, _ = run(caseload(), lines + [before.replace(b'"rx":"', b'"rx":"2026-11-27T10:35:00.000Z","x":"'),
                                      after.replace(b'"rx":"', b'"rx":"2026-11-27T10:35:01.000Z","x":"')])
    assert eng.counters.duplicates == 2
    assert eng.counters.seq_resets == 1


def _engine_state_through_json(eng) -> dict:
    return orjson.loads(orjson.dumps(snapshot(eng), option=orjson.OPT_NON_STR_KEYS))


def test_a_checkpoint_keeps_what_tells_restarts_from_retransmissions():
    fb = FeedBuilder(seed=5)
    entry = _rebooting_feed(fb)
    lines = fb.lines()
    cut = next(i for i, ln in enumerate(lines) if orjson.loads(ln)["rx"] > fmt_time(entry - 30))
    cl = caseload()
    first, _ = run(cl, lines[:cut])
    state = _engine_state_through_json(first)
    assert state["counters"]["seq_resets"] == 0
    second = Engine(cl, state=state)
    resent = [ln for ln in lines[:cut] if b'"kind":"fix"' in ln][-3:]     # the journal hands some again
    second, _ = run(cl, resent + lines[cut:], engine=second)
    assert second.counters.duplicates == 3
    assert second.counters.seq_resets == 1
    assert len(raised(second, "exclusion_entered")) == 1
    third = Engine(cl, state=_engine_state_through_json(second))
    assert third.counters.seq_resets == 1


def test_a_snapshot_from_before_restarts_were_counted_still_loads():
    """Snapshots written before this change kept each tag's seqs without their times."""
    old = SequenceTracker()
    for seq in range(61):
        old.see("TAG-1", seq, T0 + 60 * seq)
    snap = old.snapshot()
    legacy = {d: {"seen": s["seen"], "highest": s["highest"], "gaps": s["gaps"]} for d, s in snap.items()}
    taken_at = T0 + 3601
    tracker = SequenceTracker()
    tracker.restore(legacy, taken_at=taken_at)
    assert tracker.is_duplicate("TAG-1", 60, T0 + 3600)                     # the journal's replay
    assert tracker.see("TAG-1", 0, taken_at + 3600) == "reset"              # a reboot since
    assert not tracker.is_duplicate("TAG-1", 1, taken_at + 3660)
    assert tracker.resets["TAG-1"] == 1
    # an engine checkpoint in that form too
    fb = FeedBuilder(seed=2)
    fb.heartbeats(T0, T0 + 600)
    fb.track("TAG-1", T0, T0 + 600, lambda t: HOME)
    cl = caseload()
    eng, _ = run(cl, fb.lines())
    state = _engine_state_through_json(eng)
    state["seqs"] = {d: {"seen": s["seen"], "highest": s["highest"], "gaps": s["gaps"]}
                     for d, s in state["seqs"].items()}
    del state["counters"]["seq_resets"]
    restored = Engine(cl, state=state)
    assert restored.counters.seq_resets == 0
    run(cl, fb.lines()[-3:], engine=restored)
    assert restored.counters.duplicates == eng.counters.duplicates + sum(b'"kind":"fix"' in ln for ln in fb.lines()[-3:])


def test_a_fix_dated_a_year_ahead_does_not_freeze_a_tag():
    """Live: payload rx and t a year ahead, arrival now. The fix is refused and the tag's next
    real positions are shown and evaluated."""
    cl = caseload()
    eng = Engine(cl, start=T0)
    shown = []
    eng.add_listener(on_position=lambda device, f: shown.append((device, f.t)))
    ahead = fmt_time(T0 + 30 + 365 * 86400)
    future = {"v": 1, "kind": "fix", "device": "TAG-1", "seq": 0, "t": ahead, "rx": ahead,
              "lat": 51.5450, "lon": -0.0550, "acc": 10.0, "src": "gps"}
    for topic in ("em/v1/fix/TAG-1", None):             # the full path and the fast path
        r = eng.submit(orjson.dumps(future), T0 + 30, topic)
        assert isinstance(r, Rejection) and r.reason == "t_in_future", r
    fb = FeedBuilder(seed=3)
    fb.seq["TAG-1"] = 1
    fb.track("TAG-1", T0 + 60, T0 + 60 + 900, lambda t: EXCLUSION)
    for i, ln in enumerate(fb.lines()):
        obj = orjson.loads(ln)
        eng.submit(ln, T0 + 61 + 60 * i, "em/v1/fix/TAG-1" if i % 2 else None)
    assert [t for _, t in shown] == [T0 + 60 + 60 * i for i in range(16)]
    assert eng.tags["TAG-1"].last_fix.t == T0 + 60 + 900
    assert len(raised(eng, "exclusion_entered")) == 1
    assert eng.counters.rejected_by_reason == {"t_in_future": 2}


POISON = [
    {"v": 1, "kind": "event", "device": "TAG-1", "seq": 900, "t": "0001-01-01T00:30:00+01:00",
     "rx": "2026-11-27T09:10:00Z", "type": "strap_tamper"},
    {"v": 1, "kind": "fix", "device": "TAG-1", "seq": 901, "t": "9999-12-31T23:59:00Z",
     "rx": "9999-12-31T23:59:01Z", "lat": 51.5450, "lon": -0.0550, "acc": 10.0, "src": "gps"},
    {"v": 1, "kind": "heartbeat", "gateway": "GW-1", "t": "9999-12-31T23:59:00Z", "rx": "9999-12-31T23:59:00.2Z"},
    {"v": 1, "kind": "fix", "device": "TAG-1", "seq": 2**63, "t": "2026-11-27T09:10:05Z",
     "rx": "2026-11-27T09:10:06Z", "lat": 51.5450, "lon": -0.0550, "acc": 10.0, "src": "gps"},
    {"v": 1, "kind": "fix", "device": "TAG-1", "seq": 902, "t": "2026-11-27T09:10:07Z",
     "rx": "9999-12-31T23:59:01Z", "lat": 51.5450, "lon": -0.0550, "acc": 10.0, "src": "gps"},
]
POISON_REASONS = {"t_out_of_range": 3, "bad_seq": 1, "rx_out_of_range": 1}


def test_the_issues_poison_messages_leave_the_engine_working():
    fb = FeedBuilder(seed=4)
    fb.heartbeats(T0, T0 + 1200)
    fb.track("TAG-1", T0, T0 + 1200, lambda t: HOME)
    fb.event("TAG-1", T0 + 900, "strap_tamper")
    lines = fb.lines()
    at = next(i for i, ln in enumerate(lines) if orjson.loads(ln)["rx"] > "2026-11-27T09:10")
    lines[at:at] = [orjson.dumps(p) for p in POISON]
    eng, _ = run(caseload(), lines)
    assert eng.counters.rejected_by_reason == POISON_REASONS
    assert eng.now < T("2026-11-28T00:00:00Z")              # no poison moved the processing clock
    [tamper] = raised(eng, "strap_tamper")
    assert tamper.start == T0 + 900
    assert raised(eng, "feed_lost") == []
    assert [a.offender for a in raised(eng, "signal_lost")] == ["OFF-2"]    # the kit's silent second tag
    for a in eng.alerts.values():
        orjson.dumps(a.to_json())                           # every alert still formats


def test_replay_finishes_with_the_poison_messages_in_the_example_feed(tmp_path, example_caseload_path,
                                                                      example_feed_path):
    lines = example_feed_path.read_bytes().splitlines()
    device = orjson.loads(next(ln for ln in lines if b'"kind":"fix"' in ln))["device"]
    last_rx = orjson.loads(lines[-1])["rx"]
    poison = [orjson.dumps({**p, "device": device}) if "device" in p else orjson.dumps(p) for p in POISON]
    tamper = orjson.dumps({"v": 1, "kind": "event", "device": device, "seq": 100000, "t": last_rx,
                           "rx": last_rx, "type": "strap_tamper"})
    mid = len(lines) // 2
    feed = tmp_path / "feed.ndjson"
    feed.write_bytes(b"\n".join(lines[:mid] + poison + lines[mid:] + [tamper]) + b"\n")
    out = tmp_path / "alerts.ndjson"
    p = subprocess.run([sys.executable, "-m", "monitorapp", "replay", "--caseload", str(example_caseload_path),
                        "--feed", str(feed), "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    summary = orjson.loads(p.stdout.strip().splitlines()[-1])
    assert summary["rejected"] == len(POISON)
    assert set(summary) == {"messages", "fixes", "events", "heartbeats", "rejected", "duplicates", "alerts",
                            "seconds"}                     # spec §7: the line's keys, no more
    alerts = [orjson.loads(ln) for ln in out.read_bytes().splitlines()]
    assert [a["device"] for a in alerts if a["type"] == "strap_tamper"] == [device]


def test_a_clock_leap_of_decades_does_not_walk_every_curfew_night(monkeypatch):
    """A replay whose arrival times leap from 2026 to 2099 (a hostile or broken file): the
    curfew's nights inside the leap saw no data and are not walked one by one (before: about
    53,000 edges per curfew, seconds of engine time each); the curfew still works after it."""
    from monitorapp.engine.zonerules import JUMP_WALK_S, CurfewRule
    fired = []
    real = CurfewRule.on_timer
    monkeypatch.setattr(CurfewRule, "on_timer",
                        lambda self, due, token: (fired.append(due), real(self, due, token))[1])
    fb = FeedBuilder(seed=5)
    fb.heartbeats(T0, T0 + 600)
    fb.track("TAG-1", T0, T0 + 600, lambda t: HOME)
    eng, _ = run(caseload(), fb.lines())
    leap = T("2099-11-27T09:00:00Z")
    eng.advance(leap)
    assert len(fired) < 10, len(fired)
    edges = [due for due, _, target, _ in eng._heap if isinstance(target, CurfewRule)]
    assert edges and all(leap - JUMP_WALK_S < due <= leap + 86400 for due in edges), edges
    later = FeedBuilder(seed=6)            # that night, away from home: the curfew is broken
    later.heartbeats(leap + 10 * 3600, leap + 12 * 3600)
    later.track("TAG-1", leap + 10 * 3600, leap + 12 * 3600, lambda t: EXCLUSION)
    for line in later.lines():
        eng.submit(line)
    eng.advance(leap + 12 * 3600)
    assert [a for a in raised(eng, "curfew_absent") if a.start >= leap]
