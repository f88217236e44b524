"""The simulated feed is valid protocol v1, realistic and honest about itself (spec §2)."""
from __future__ import annotations

import collections
import math
import random
import re

from monitorapp.feed.decoder import FixDecoder
from monitorapp.feed.messages import EVENT_TYPES, Rejection
from monitorapp.sim.routines import LocalGrid, TruePath, active_intervals
from monitorapp.sim.script import CLEAN_ACC_MAX
from monitorapp.sim.tags import Battery, TagFeed
from monitorapp.sim.truth import signal_threshold
from monitorapp.sim.simulator import simulate
from monitorapp.feed.timeutil import parse_time

DEVICE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def test_same_seed_same_bytes_other_seed_other_bytes(sim_caseload):
    a = [line for _, line in simulate(sim_caseload, hours=3, seed=7, tags=12)[0]]
    b = [line for _, line in simulate(sim_caseload, hours=3, seed=7, tags=12)[0]]
    c = [line for _, line in simulate(sim_caseload, hours=3, seed=8, tags=12)[0]]
    assert a == b
    assert len(a) > 12 * 3 * 60
    assert a != c


def test_every_line_is_valid_v1_with_fields_in_range(sim_day):
    kinds = collections.Counter()
    for (rx, line), m in zip(sim_day.lines, sim_day.msgs):
        assert len(line) < 64 * 1024 and b"\n" not in line
        assert m["v"] == 1
        t, mrx = parse_time(m["t"]), parse_time(m["rx"])
        assert abs(mrx - rx) < 1e-6
        assert t <= mrx + 300 and mrx >= t
        assert sim_day.t0 <= t < sim_day.t1
        kinds[m["kind"]] += 1
        if m["kind"] == "heartbeat":
            assert m["gateway"] == "GW-1" and set(m) == {"v", "kind", "gateway", "t", "rx"}
            continue
        assert DEVICE_RE.match(m["device"]) and isinstance(m["seq"], int) and m["seq"] >= 0
        if m["kind"] == "fix":
            assert -90 <= m["lat"] <= 90 and -180 <= m["lon"] <= 180
            assert 51.3 < m["lat"] < 51.9 and -0.6 < m["lon"] < 0.4      # London
            assert m["acc"] > 0 and m["src"] in ("gps", "wifi", "cell")
            assert 0.0 <= m["batt"] <= 1.0
            if "spd" in m:
                assert m["spd"] >= 0 and 0 <= m["hdg"] < 360
        else:
            assert m["kind"] == "event" and m["type"] in EVENT_TYPES
    assert kinds["fix"] > 140_000 and kinds["heartbeat"] > 8000 and kinds["event"] > 50


def test_the_projects_decoder_accepts_every_line(sim_day):
    devices = {o["device"] for o in sim_day.caseload["offenders"]}
    dec = FixDecoder(devices)
    for _rx, line in sim_day.lines[::7]:
        msg = dec.decode(line)
        assert not isinstance(msg, Rejection), (msg.reason, msg.text, line)


def test_arrival_order_and_sequence_numbers(sim_day):
    rxs = [rx for rx, _ in sim_day.lines]
    assert all(a <= b for a, b in zip(rxs, rxs[1:]))
    by_tag: dict[str, dict[int, dict]] = collections.defaultdict(dict)
    dups = 0
    for m in sim_day.msgs:
        if m["kind"] == "heartbeat":
            continue
        seen = by_tag[m["device"]]
        if m["seq"] in seen:
            first = seen[m["seq"]]
            dups += 1
            assert {k: v for k, v in m.items() if k != "rx"} == {k: v for k, v in first.items() if k != "rx"}
            assert parse_time(m["rx"]) > parse_time(first["rx"])
        else:
            seen[m["seq"]] = m
    for dev, seen in by_tag.items():
        seqs = sorted(seen)
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), f"{dev}: a gap in seq"
        ts = [parse_time(seen[s]["t"]) for s in seqs]
        assert ts == sorted(ts), f"{dev}: seq not in measurement order"
    assert dups > 100


def test_late_bursts_arrive_together_after_coverage_returns(sim_day):
    bursts = 0
    by_tag = collections.defaultdict(list)
    for m in sim_day.msgs:
        if m["kind"] == "fix":
            by_tag[m["device"]].append((parse_time(m["rx"]), parse_time(m["t"])))
    for dev, rows in by_tag.items():
        rows.sort()
        i = 0
        while i < len(rows):
            j = i
            while j + 1 < len(rows) and rows[j + 1][0] - rows[i][0] < 0.5:
                j += 1
            if j > i and rows[j][1] - rows[i][1] >= 50 and rows[i][0] - rows[i][1] > 50:
                bursts += 1
            i = j + 1
    assert bursts >= 100      # ~3 coverage gaps per tag per day, and the outage


def test_outage_is_silent_and_heartbeats_tick_otherwise(sim_day):
    o0, o1 = (parse_time(sim_day.truth["outage"][k]) for k in ("start", "end"))
    assert 480 <= o1 - o0
    assert not [rx for rx, _ in sim_day.lines if o0 <= rx < o1]
    hb = [parse_time(m["t"]) for m in sim_day.msgs if m["kind"] == "heartbeat"]
    gaps = [(a, b) for a, b in zip(hb, hb[1:]) if abs(b - a - 10.0) > 1e-6]
    assert len(gaps) == 1
    assert gaps[0][0] < o0 <= gaps[0][0] + 10.5 and o1 <= gaps[0][1] <= o1 + 10.5


def test_tags_are_never_silent_long_unless_scripted(sim_day):
    """Coverage gaps stay under the signal-lost threshold; only scripted silences, dead tags and
    the outage are longer."""
    truth = sim_day.truth
    o0, o1 = (parse_time(truth["outage"][k]) for k in ("start", "end"))
    scripted = collections.defaultdict(list)
    for b in truth["breaches"]:
        if b["type"] == "signal_lost":
            scripted[b["device"]].append(parse_time(b["start"]))
    intervals = {o["device"]: o["fix_interval_s"] for o in sim_day.caseload["offenders"]}
    last: dict[str, float] = {}
    for rx, m in zip((rx for rx, _ in sim_day.lines), sim_day.msgs):
        if m["kind"] == "heartbeat":
            continue
        d = m["device"]
        if d in last and rx - last[d] > signal_threshold(intervals[d]):
            quiet = (last[d], rx)
            assert (quiet[0] <= o0 and quiet[1] >= o1) or any(
                abs(s - quiet[0]) < 120 for s in scripted[d]), f"{d} silent {quiet}"
        last[d] = max(last.get(d, rx), rx)


def test_truth_lists_every_alert_type_with_bounds(sim_day):
    truth = sim_day.truth
    types = {b["type"] for b in truth["breaches"]}
    assert types == {"strap_tamper", "exclusion_entered", "curfew_absent", "signal_lost",
                     "appointment_missed", "battery_low", "feed_lost"}
    for b in truth["breaches"]:
        assert b["cause"] != "unscripted", b
        start, by = parse_time(b["start"]), parse_time(b["alert_by"])
        assert sim_day.t0 <= start < by < sim_day.t1 + 3600
        if b["type"] == "exclusion_entered":
            assert by - start == 3 * b["fix_interval_s"] + 60
            assert parse_time(b["end"]) - start >= 300
        if b["type"] == "curfew_absent":
            assert by - start == 600 + 3 * b["fix_interval_s"] + 60
            assert parse_time(b["end"]) - start > 600 + 600
        if b["type"] == "feed_lost":
            assert by - start == 60 and b["offender"] is None
    causes = collections.Counter(m["cause"] for m in truth["must_not_alert"])
    assert causes["near_miss"] >= 4 and causes["multipath"] >= 2 and causes["attended"] >= 1
    assert truth["warnings"] == []


def test_dst_curfew_windows_on_both_sides_of_the_change(sim_day):
    """19:00–07:00 London is 18:00Z–07:00Z across the night the clocks go back (25 Oct 2026)."""
    from zoneinfo import ZoneInfo
    tz = ZoneInfo("Europe/London")
    win = [{"days": "daily", "start": "19:00", "end": "07:00"}]
    ivs = active_intervals(win, tz, parse_time("2026-10-24T12:00:00Z"), parse_time("2026-10-26T12:00:00Z"))
    assert ivs == [(parse_time("2026-10-24T18:00:00Z"), parse_time("2026-10-25T07:00:00Z")),
                   (parse_time("2026-10-25T19:00:00Z"), parse_time("2026-10-26T07:00:00Z"))]
    before = active_intervals(win, tz, parse_time("2026-10-23T12:00:00Z"), parse_time("2026-10-23T20:00:00Z"))
    assert before == [(parse_time("2026-10-23T18:00:00Z"), parse_time("2026-10-24T06:00:00Z"))]
    curfew = [b for b in sim_day.truth["breaches"] if b["type"] == "curfew_absent"]
    late = [b for b in curfew if b["cause"] == "curfew_late_return"]
    early = [b for b in curfew if b["cause"] == "curfew_early_leave"]
    assert late and early
    for b in late:     # the curfew starting at 19:00 BST
        sched = next(r for o in sim_day.caseload["offenders"] if o["id"] == b["offender"]
                     for r in o["requirements"] if r["id"] == b["requirement"])["schedule"][0]
        expect = {"19:00": "2026-10-24T18:00:00.000Z", "21:00": "2026-10-24T20:00:00.000Z"}[sched["start"]]
        assert b["start"] == expect
    for b in early:    # the curfew ending at 07:00 (or 06:00) GMT
        assert b["end"] in ("2026-10-25T07:00:00.000Z", "2026-10-25T06:00:00.000Z")
        assert parse_time(b["end"]) - parse_time(b["start"]) > 20 * 60


def test_every_curfew_offender_is_home_in_curfew_unless_scripted(sim_day):
    """The true tracks keep every offender inside their curfew zone by ≥ 85 m whenever a curfew
    is active, except in scripted incidents (the auditor found no unscripted breach, and this
    checks the depth directly on a sample)."""
    feed = sim_day.feed
    scripted = {i["offender"] for i in sim_day.truth["incidents"]}
    checked = 0
    for tag in feed.tags:
        w = tag.world
        if not w.curfews or w.id in scripted:
            continue
        for a, b in w.curfew_active:
            for t in range(int(max(a, feed.t0)), int(min(b, feed.t1)), 600):
                s = tag.feed.path.at(t)
                assert math.hypot(s.x - w.home[0], s.y - w.home[1]) <= 15.0 + 1e-6, (w.id, t)
                checked += 1
    assert checked > 1000


def test_noise_matches_acc_68_percent_for_stationary_tags(sim_day):
    """Fixes of a stationary tag fall within ``acc`` of the true position 68 % of the time."""
    feed = {tag.world.device: tag for tag in sim_day.feed.tags}
    inside = total = 0
    for m in sim_day.msgs[::3]:
        if m["kind"] != "fix":
            continue
        tag = feed[m["device"]]
        s = tag.feed.path.at(parse_time(m["t"]))
        if not s.still:
            continue
        x, y = tag.world.grid.to_xy(m["lon"], m["lat"])
        total += 1
        inside += math.hypot(x - s.x, y - s.y) <= m["acc"]
    assert total > 20_000
    assert 0.66 <= inside / total <= 0.70, inside / total


def test_noise_of_one_still_tag_and_a_multipath_jump():
    grid = LocalGrid(-0.05, 51.55)
    path = TruePath(0.0, 10.0, 20.0)
    path.stay_until(200_000.0)
    bat = Battery([(0.0, 0.9), (300_000.0, 0.5)], [])
    feed = TagFeed("TAG-X", 60.0, path, grid, (10.0, 20.0), 0.0, 180_000.0, random.Random(3), bat,
                   [], [], [], None, [(90_000.0, (600.0, 20.0))], None, 1, 5.0,
                   p_dup=0.0, p_cell=0.0, p_multipath=0.0)
    import json
    fixes = [json.loads(line) for _, _, line in feed.messages()]
    assert len(fixes) == 3000
    dist = []
    for m in fixes:
        x, y = grid.to_xy(m["lon"], m["lat"])
        dist.append((math.hypot(x - 10.0, y - 20.0), m["acc"], parse_time(m["t"])))
    far = [d for d in dist if d[0] > 300]
    assert len(far) == 1 and abs(far[0][2] - 90_000.0) <= 30 and far[0][1] < 30   # one confident jump
    share = sum(d <= acc for d, acc, _ in dist) / len(dist)
    assert 0.65 <= share <= 0.71


def test_near_misses_keep_their_margins_on_the_true_track(sim_day):
    feed = {tag.world.id: tag for tag in sim_day.feed.tags}
    n = 0
    for m in sim_day.truth["must_not_alert"]:
        if m["cause"] != "near_miss":
            continue
        tag = feed[m["offender"]]
        req = next(q for q in tag.world.reqs if q.id == m["requirement"])
        a, b = parse_time(m["from"]), parse_time(m["to"])
        if m["type"] == "exclusion_entered":
            assert tag.feed.path.min_distance(req.geom, a, b) >= 2 * CLEAN_ACC_MAX - 1e-6
            assert tag.feed.path.min_distance(req.geom, a, b) <= 2 * CLEAN_ACC_MAX + 5
        else:
            depth = min(req.geom.exterior.distance(_pt(tag.feed.path.at(t)))
                        for t in range(int(a), int(b), 20))
            assert depth >= 2 * CLEAN_ACC_MAX
        fixes = [x for x in sim_day.msgs if x["kind"] == "fix" and x.get("device") == m["device"]
                 and a <= parse_time(x["t"]) <= b]
        assert fixes and all(x["src"] == "gps" and x["acc"] <= CLEAN_ACC_MAX for x in fixes)
        n += 1
    assert n >= 7


def _pt(s):
    from shapely.geometry import Point
    return Point(s.x, s.y)
