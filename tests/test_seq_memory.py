"""Per-tag sequence memory (``monitorapp.feed.decoder.SequenceTracker``) kept as flat arrays:
the same verdicts, counts and snapshots as a plain model of spec §2's rule (a set of (seq, t)
pairs, the last ``window`` and a day at most, per tag), under retransmissions, late fixes,
counter restarts and pairs without a time; and a day of a national feed's pairs costs bytes,
not hundreds of bytes, each."""
from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from monitorapp.feed.decoder import DUPLICATE, NEW, RESET, SEQ_MEMORY_S, SequenceTracker

T0 = 1_767_225_600.0


class Model:
    """The rule written plainly: remembered pairs in arrival order, a set for lookups."""

    def __init__(self, window):
        self.window, self.order, self.highest, self.head_t = window, {}, {}, {}
        self.gaps, self.resets = {}, {}

    def see(self, d, seq, t):
        order = self.order.setdefault(d, [])
        if (seq, t) in order:
            return DUPLICATE
        seen_before = any(q == seq for q, _ in order)
        order.append((seq, t))
        if len(order) > self.window:
            order.pop(0)
        if t is not None:
            while len(order) > 1 and order[0][1] is not None and order[0][1] < t - SEQ_MEMORY_S:
                order.pop(0)
        hi, head = self.highest.get(d), self.head_t.get(d)
        if hi is None:
            self.highest[d], self.head_t[d] = seq, t
        elif seq > hi:
            if head is None or t is None or t >= head:
                if seq > hi + 1:
                    self.gaps[d] = self.gaps.get(d, 0) + seq - hi - 1
                self.highest[d], self.head_t[d] = seq, t
        elif t is not None and head is not None and t > head:
            self.resets[d] = self.resets.get(d, 0) + 1
            self.highest[d], self.head_t[d] = seq, t
            return RESET
        elif not seen_before and hi - seq <= self.window and self.gaps.get(d):
            self.gaps[d] -= 1
        return NEW


step = st.tuples(st.sampled_from(["A", "B"]),
                 st.one_of(st.just("next"), st.just("again"), st.just("restart"), st.just("late"),
                           st.just("jump"), st.just("untimed")),
                 st.floats(0, 4 * 3600))


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=120), st.sampled_from([4, 16, 4096]))
def test_the_arrays_decide_as_the_plain_rule_does(steps, window):
    tracker, model = SequenceTracker(window=window), Model(window)
    seq, t, sent = {}, {}, {"A": [], "B": []}
    for d, kind, dt in steps:
        now = t.get(d, T0) + 60.0 + dt * (kind == "jump") * 10
        if kind == "again" and sent[d]:
            q, tt = sent[d][int(dt) % len(sent[d])]
        elif kind == "restart":
            q, tt = int(dt) % 3, now
        elif kind == "late" and seq.get(d, 0) > 3:
            q, tt = seq[d] - 2, t[d] - 119.0
        elif kind == "untimed":
            q, tt = seq.get(d, 0) + 1, None
        else:
            q, tt = seq.get(d, 0) + (1 if kind != "jump" else 5), now
        if kind not in ("again", "late"):
            seq[d] = q
            if tt is not None:
                t[d] = tt
        sent[d].append((q, tt))
        assert tracker.see(d, q, tt) == model.see(d, q, tt), (d, kind, q, tt)
    assert tracker.highest == model.highest
    assert {k: v for k, v in tracker.gaps.items() if v} == {k: v for k, v in model.gaps.items() if v}
    assert tracker.resets == model.resets
    snap = tracker.snapshot()
    for d, order in model.order.items():
        assert list(zip(snap[d]["seen"], snap[d]["seen_t"])) == order
    again = SequenceTracker(window=window)
    again.restore(snap)
    assert again.snapshot() == snap
    for d, order in model.order.items():          # what was remembered is still a duplicate
        for q, tt in order:
            assert again.see(d, q, tt) == DUPLICATE


def test_a_day_of_a_tags_fixes_costs_bytes_each():
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracker = SequenceTracker()
        names = [f"TAG-{k:05d}" for k in range(200)]
        for m in range(1440):                           # a fix a minute for a day, 200 tags
            for k, name in enumerate(names):
                tracker.see(name, m + 1, T0 + 60.0 * m + k)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert all(len(tracker._seen[n]) == 1440 for n in names)
    assert used / (200 * 1440) < 24        # 16 bytes a pair and the arrays' slack (was ~257)


def test_a_tags_arrays_stay_within_a_sixteenth_of_its_day_however_long_it_runs():
    """Forgotten pairs leave the arrays while the day goes on, not only once they are half of
    them (the arrays then reached twice a day's pairs: 27 MB a day of a console's memory at
    1,000 tags)."""
    from monitorapp.feed.decoder import SEQ_MEMORY_S
    tracker = SequenceTracker()
    every = 60.0
    day = int(SEQ_MEMORY_S / every)
    longest = 0
    for k in range(3 * day):                          # three days, a fix a minute
        tracker.see("TAG-1", k + 1, T0 + every * k)
        longest = max(longest, len(tracker._seen["TAG-1"].seqs))
    assert len(tracker._seen["TAG-1"]) <= day + 1     # what is remembered: a day
    assert longest <= day * 17 / 16 + 256, (longest, day)
