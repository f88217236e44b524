"""Breach confirmation: when do noisy fixes add up to "the tag is inside the zone"?

A fix says where the tag probably is: ``acc`` is the radius of 68 % horizontal confidence, so
the error along any one direction is roughly Gaussian with σ ≈ acc / 1.515. Each fix is
classified against a zone boundary by its signed depth ``d`` (metres, positive inside):

* **uninformative** when ``acc`` > 200 m (cell fixes) unless ``|d|`` ≥ 2 × acc: such a fix can
  neither start nor end a breach (a 1 km cell fix says nothing about a 100 m curfew circle);
* otherwise **inside** (d > 0) or **outside** (d ≤ 0), and **strong** when ``|d|`` ≥ 0.5 × acc.

A side of the boundary is *confirmed* from the four most recent informative fixes (by
measurement time ``t``) when either

* **A** the two newest are on that side and at least one of them is strong, or
* **B** three of the four are on that side, the newest included.

Why these numbers. The spec's noise clause: a true position 2 × acc outside must never raise.
For one fix to land inside, its error along the normal must exceed 2 × acc ≈ 3.0 σ
(p ≈ 1.2 × 10⁻³); to be strong inside, 2.5 × acc ≈ 3.8 σ (p ≈ 7 × 10⁻⁵). Rule A then needs
both in a row: ≈ 2 × 10⁻⁷ per fix pair; rule B needs three of four: ≈ 7 × 10⁻⁹. Over 100
tags reporting every minute for a year that is about ten false pairs in the worst case of every
tag parked exactly 2 × acc from a boundary all year, and none in practice. A single multipath
jump (one fix hundreds of metres off, then back) is one fix: it can never make two in a row nor
three of four, so it raises nothing. The spec's speed clause: a real entry to a depth of half the
accuracy is confirmed by the second fix inside (rule A), i.e. within 2 fix intervals plus the
delivery delay, inside the bound of 3 fix intervals + 60 s; a shallow entry hugging the
boundary, where fixes fall on both sides, is confirmed by rule B within 4 fixes.

The breach *start* is the measurement time of the earliest fix of the confirming run, so an
alert found from late data keeps the true start.

Breach side: real-world noise (curfew absence, issue 17). Rules A/B trust the stated ``acc``
and independent errors. A real stationary receiver does neither: its error comes in runs
(correlated over minutes) and an accuracy derived from HDOP understates it about twice. In a
home zone of 12–15 m with a grace of 60 s that raised a false ``curfew_absent`` on every tag
every night (``benchmarks/bench_noise.py``). So "the tag is away" (``confirmed_breach``) is
judged against a model of that noise: errors ``NOISE_INFLATION`` (2) × the stated scale,
correlated over ``CORRELATION_S`` (300 s), from a true position ``CLEARANCE_ACC`` (2) × acc
inside, the spec's noise clause, or as deep as the zone allows if less (``room``: a 12 m home
cannot hold a tag 40 m inside). A fix's evidence is ``z`` = (its depth outside + that
clearance) / (2 × acc / 1.515), and the absence is confirmed when

* **F** the two newest fixes both have ``z`` ≥ ``Z_FAR`` (5): one inflated error sample that
  large has p ≈ 3.7 × 10⁻⁶ even radially (a tag at the centre of a tiny circle, Rayleigh), and
  a correlated error gives about one such sample per correlation time, so ≈ 10⁻³ per tag-night
  in the worst home; a real departure on foot is that far within 2–3 fixes (6.6 acc − clearance:
  54 m at acc 10 in a 12 m home), or
* **R** every fix of a run of at least 3 lasting ``RUN_S`` (600 s, two correlation times) has
  ``z`` ≥ ``Z_RUN`` (3): a correlated error that has crossed 3 σ falls back within a fraction
  of τ, so staying out for 2 τ is the rarer event. (A mean over the run with single dips
  allowed was tried and raised false absences in the 12–15 m homes: the radial error of a
  tag at the centre of a tiny circle is above 2 σ 13.5 % of the time.) An absence ≈ 4.5 σ −
  clearance beyond the boundary (39 m at acc 10 in a 100 m home) is caught after 10 minutes.

Bounds: with F an absence that goes 6.6 acc − clearance beyond the boundary is raised within
``grace_s`` + 3 fix intervals + 60 s at any grace; with R one that goes ≈ 2 acc beyond is
raised at ``max(grace_s, RUN_S)`` after it began, within the bound when ``grace_s`` ≥ 600 s −
3 fix intervals − 60 s. An absence closer to the boundary than the noise can tell is not
confirmed: the price of not sending officers to people asleep at home. Coming home (clearing,
or cancelling a pending absence) stays on rules A/B: erring there only withholds an alert.

An exclusion entry stays on rules A/B: a monitoring centre takes a false critical alert over a
missed entry, and under this noise model an entry shallower than ≈ 2 acc cannot be told from
a tag standing the spec's 2 × acc outside within the spec's 3 fix intervals + 60 s.
"""
from __future__ import annotations

from monitorapp.engine.geo import FAR_DEPTH

UNINFORMATIVE_ACC_M = 200.0
STRONG_FRACTION = 0.5
WINDOW = 4
SIGMA_PER_ACC = 1.0 / 1.515

# Real-world noise (see "Breach side" above): the error model a breach must beat.
NOISE_INFLATION = 2.0     # true error scale / the scale the stated acc implies
CORRELATION_S = 300.0     # correlation time of the error (a Gauss–Markov process)
CLEARANCE_ACC = 2.0       # the spec's noise clause: the true position is this many acc clear
Z_FAR = 5.0               # two newest fixes this far (in inflated σ): confirmed
Z_RUN = 3.0               # ... or every fix of a run this far, the run lasting RUN_S:
RUN_S = 2.0 * CORRELATION_S
RUN_MIN_FIXES = 3
HISTORY = 16              # fixes kept per (tag, zone): the run rule looks back this far


def classify(depth: float, acc: float) -> tuple[bool, bool] | None:
    """(inside, strong) for a fix at signed ``depth`` with accuracy ``acc``; None if uninformative."""
    mag = depth if depth >= 0.0 else -depth
    if acc > UNINFORMATIVE_ACC_M and mag < 2.0 * acc:
        return None
    return depth > 0.0, mag >= STRONG_FRACTION * acc


class Evidence:
    """The most recent informative fixes for one (tag, zone) pair, ordered by ``t``.

    Each item is ``(t, inside, strong, lat, lon, acc, depth, rx)``.
    """

    __slots__ = ("items", "far", "deep_in")

    def __init__(self, items: list | None = None):
        self.items: list[tuple] = items or []
        self.far = _trailing(self.items, _is_far)        # how many of the newest items are far away
        self.deep_in = _trailing(self.items, _is_deep_in)  # ... or strongly inside

    def add(self, item: tuple) -> bool:
        """Insert in measurement order; return False if the fix is older than the whole window
        (it cannot change the present decision)."""
        items = self.items
        if not items or item[0] >= items[-1][0]:
            items.append(item)
            self.far = self.far + 1 if item[6] <= FAR_DEPTH else 0
            self.deep_in = self.deep_in + 1 if item[1] and item[2] else 0
        else:
            i = len(items) - 1
            while i >= 0 and items[i][0] > item[0]:
                i -= 1
            if len(items) - (i + 1) >= WINDOW:
                return False       # older than the newest WINDOW fixes
            items.insert(i + 1, item)
            self.far = _trailing(items, _is_far)
            self.deep_in = _trailing(items, _is_deep_in)
        if len(items) > HISTORY:
            del items[0]
        return True

    def saturated_far(self) -> bool:
        """True when every fix in the window is far from the zone: another far fix changes nothing."""
        return self.far >= WINDOW

    def confirmed(self, inside: bool) -> tuple | None:
        """The earliest item of the confirming run if the side is confirmed, else None."""
        items = self.items[-WINDOW:]
        n = len(items)
        if n < 2 or items[-1][1] is not inside:
            return None
        last, prev = items[-1], items[-2]
        if prev[1] is inside and (last[2] or prev[2]):
            i = n - 2
            while i > 0 and items[i - 1][1] is inside:
                i -= 1
            return items[i]
        if n >= 3:
            same = [it for it in items if it[1] is inside]
            if len(same) >= 3:
                return same[0]
        return None

    def confirmed_breach(self, inside: bool, room_m: float, z_far: float) -> tuple | None:
        """The earliest item of the confirming run if the *breach* side ``inside`` is confirmed
        against the real-world noise model (module docstring, "Breach side"), else None.

        The true position the noise must not move is ``CLEARANCE_ACC`` × acc on the other side
        (the spec's noise clause), or ``room_m`` if less: the deepest a zone lets a tag be (a
        12 m home cannot hold a tag 2 × 20 m inside it)."""
        items = self.items
        n = len(items)
        if n < 2 or items[-1][1] is not inside:
            return None
        zs = [_z(it, inside, room_m) for it in items]
        # F: the two newest far enough that inflated noise from the clear position cannot reach
        if zs[-1] >= z_far and zs[-2] >= z_far and items[-2][1] is inside:
            return items[_run_start(items, zs, inside, n - 2)]
        # R: a run at Z_RUN lasting RUN_S: longer than a correlated error stays that far out
        i = n - 1
        while i > 0 and items[i - 1][1] is inside and zs[i - 1] >= Z_RUN:
            i -= 1
        if zs[-1] >= Z_RUN and n - i >= RUN_MIN_FIXES and items[-1][0] - items[i][0] >= RUN_S:
            return items[i]
        return None

    def supporting(self, inside: bool) -> list[tuple]:
        return [it for it in self.items[-WINDOW:] if it[1] is inside]


def _z(it: tuple, inside: bool, room_m: float) -> float:
    """How far on side ``inside`` the fix is from the clear position, in inflated σ."""
    depth, acc = it[6], it[5]
    b = depth if inside else -depth
    clear = CLEARANCE_ACC * acc
    return (b + (clear if clear < room_m else room_m)) / (NOISE_INFLATION * SIGMA_PER_ACC * acc)


def _run_start(items: list, zs: list, inside: bool, i: int) -> int:
    """The absence began with the run of fixes clearly away (``z`` ≥ ``Z_RUN``) before ``i``:
    not with every fix just outside, which in a tiny home is noise half the time."""
    while i > 0 and items[i - 1][1] is inside and zs[i - 1] >= Z_RUN:
        i -= 1
    return i


def _is_far(it: tuple) -> bool:
    return it[6] <= FAR_DEPTH


def _is_deep_in(it: tuple) -> bool:
    return it[1] and it[2]


def _trailing(items: list, pred) -> int:
    n = 0
    for it in reversed(items):
        if not pred(it):
            break
        n += 1
    return n
