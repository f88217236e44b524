"""The ankle tag and the gateway: true positions in, protocol v1 messages (spec §2) out.

Per tag (``TagFeed``), in measurement order, with ``seq`` +1 per message:

* a fix every ``fix_interval_s`` (random phase), its position the true one plus Gaussian noise
  of per-axis sigma ``acc / 1.515`` (so 68 % of fixes fall within ``acc``): ``gps`` 5–30 m
  (indoors worse), ``wifi`` 30–60 m when indoors, now and then a ``cell`` fix of 300–1500 m;
  during scripted incidents only ``gps`` with ``acc`` ≤ ``CLEAN_ACC_MAX``;
* real-world noise (``GpsError``, off by default): the error of a stationary receiver comes in
  runs (multipath off nearby walls, the satellite geometry changing slowly) and an accuracy
  derived from HDOP understates it. ``noise_tau_s`` > 0 makes the error a first-order
  Gauss–Markov (AR(1)) process per axis with that correlation time; ``noise_inflation`` scales
  it against the stated ``acc`` (2.0: errors about twice what ``acc`` implies);
* multipath: now and then one fix hundreds of metres off with a confident ``acc``, then back;
* battery (``Battery``): discharges over 1.5–2.5 days, charges in the evening at home when
  below 0.6 (``charging_started``/``charging_stopped``); ``battery_low`` at 0.15,
  ``battery_critical`` at 0.05, ``power_off`` at 0.01;
* device events of the script (strap tamper and restore).

Delivery (``rx``): usually ``t`` + 0.2–2 s. Coverage gaps (60–180 s, random) and scripted
silences hold the tag's messages and deliver them in a burst when coverage returns (same
``t``, later ``rx``); a retransmission repeats a message (same ``seq`` and body) 3–40 s later;
during a feed outage nothing is delivered, and what was held arrives in the 20 s after it.
A tag's messages leave ``TagFeed`` in ``rx`` order; ``merge_feed`` merges all tags and the
gateway heartbeats (every 10 s) into one arrival-ordered stream.
"""
from __future__ import annotations

import bisect
import datetime as dt
import heapq
import math
import random
from collections.abc import Iterator

import orjson

from monitorapp.sim.script import CLEAN_ACC_MAX

SIGMA_PER_ACC = 1.0 / 1.515
GATEWAY = "GW-1"
HEARTBEAT_S = 10.0
_UTC = dt.timezone.utc
_min_cache: dict[int, str] = {}


def rfc3339(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, like ``timeutil.fmt_time``, cached per minute."""
    msec = int(round(ts * 1000.0))
    s, frac = divmod(msec, 1000)
    m, sec = divmod(s, 60)
    head = _min_cache.get(m)
    if head is None:
        if len(_min_cache) > 100_000:
            _min_cache.clear()
        head = _min_cache[m] = dt.datetime.fromtimestamp(m * 60, _UTC).strftime("%Y-%m-%dT%H:%M:")
    return "%s%02d.%03dZ" % (head, sec, frac)


def ms(ts: float) -> float:
    return round(ts * 1000.0) / 1000.0


class Battery:
    """Charge level 0–1 as a piecewise-linear function of time."""

    def __init__(self, knots: list[tuple[float, float]], charges: list[tuple[float, float]]):
        self.knots = knots          # (t, level), times increasing
        self.charges = charges      # (start, stop) charging sessions
        self._ts = [k[0] for k in knots]

    def level(self, t: float) -> float:
        i = bisect.bisect_right(self._ts, t) - 1
        if i < 0:
            return self.knots[0][1]
        if i >= len(self.knots) - 1:
            return self.knots[-1][1]
        (ta, a), (tb, b) = self.knots[i], self.knots[i + 1]
        return a + (b - a) * (t - ta) / (tb - ta) if tb > ta else b

    def crossings(self, level: float) -> list[float]:
        """Times at which the charge falls through ``level``."""
        out = []
        for (ta, a), (tb, b) in zip(self.knots, self.knots[1:]):
            if a >= level > b:
                out.append(ta + (a - level) / (a - b) * (tb - ta))
        return out

    @staticmethod
    def plan(t0: float, t1: float, rng: random.Random, interval: float, at_home_evenings: list[float],
             empty_at: float | None = None, low_at: float | None = None) -> "Battery":
        """A discharge/charge history. ``empty_at``: reaches 0.01 then; ``low_at``: crosses 0.15
        then; otherwise starts at 0.45–1.0 and charges in the evenings when below 0.6."""
        rate = 1.0 / (rng.uniform(36, 60) * 3600) * (1.3 if interval < 60 else 1.0)
        if empty_at is not None:      # starts at 0.25 or more, so the fall through 0.15 is seen
            rate = max(rate, 0.24 / max(empty_at - t0, 60.0))
            b0, evenings = 0.01 + rate * (empty_at - t0), []
        elif low_at is not None:
            rate = max(rate, 0.05 / max(low_at - t0, 60.0))
            b0 = 0.15 + rate * (low_at - t0)
            evenings = [e for e in at_home_evenings if e > low_at]
        else:   # enough charge to reach the first evening at home without falling below 0.25
            first = min((e for e in at_home_evenings if e > t0), default=t1)
            b0, evenings = rng.uniform(max(0.45, 0.25 + rate * (first - t0)), 1.0), at_home_evenings
        if b0 > 1.0:
            b0 = 1.0
        knots, charges = [(t0, b0)], []
        t, b = t0, b0
        for e in sorted(evenings):
            if e <= t or e >= t1:
                continue
            be = b - rate * (e - t)
            if be >= 0.6:
                continue
            if be < 0.01:
                break
            full_t = e + (0.98 - be) / (0.5 / 3600)
            knots += [(e, be), (full_t, 0.98)]
            charges.append((e, full_t))
            t, b = full_t, 0.98
        end = max(t1, t) + 3600
        b_end = b - rate * (end - t)
        if b_end < 0.0:
            tz = t + b / rate
            knots += [(tz, 0.0), (end, 0.0)]
        else:
            knots.append((end, b_end))
        return Battery(knots, charges)


class GpsError:
    """One tag's position error (metres east, north) at measurement time ``t`` for a fix whose
    stated accuracy implies the per-axis sigma ``sigma``.

    ``tau_s`` = 0: independent Gaussian errors, as the stated ``acc`` promises (the same draws,
    so the same bytes, as before this model existed). ``tau_s`` > 0: a unit-variance AR(1)
    process per axis, ``u ← ρ u + √(1 − ρ²) N(0, 1)`` with ``ρ = exp(−Δt / tau_s)``, scaled by
    ``inflation × sigma``: stationary errors that stay on one side for minutes."""

    __slots__ = ("rng", "tau_s", "inflation", "_t", "_u")

    def __init__(self, rng: random.Random, tau_s: float = 0.0, inflation: float = 1.0):
        self.rng, self.tau_s, self.inflation = rng, float(tau_s), float(inflation)
        self._t: float | None = None
        self._u = (0.0, 0.0)

    def sample(self, t: float, sigma: float) -> tuple[float, float]:
        rng = self.rng
        scale = sigma * self.inflation
        if self.tau_s <= 0.0:
            return rng.gauss(0.0, scale), rng.gauss(0.0, scale)
        if self._t is None:
            ux, uy = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
        else:
            rho = math.exp(-max(0.0, t - self._t) / self.tau_s)
            k = math.sqrt(1.0 - rho * rho)
            ux = rho * self._u[0] + k * rng.gauss(0.0, 1.0)
            uy = rho * self._u[1] + k * rng.gauss(0.0, 1.0)
        self._t, self._u = t, (ux, uy)
        return ux * scale, uy * scale


def _in(t: float, windows: list[tuple[float, float]]) -> bool:
    for a, b in windows:
        if a <= t < b:
            return True
    return False


class TagFeed:
    """One tag's messages over [t0, t1), in arrival order, as (rx, line) pairs."""

    def __init__(self, device: str, interval: float, path, grid, home, t0: float, t1: float,
                 rng: random.Random, battery: Battery, events: list[tuple[float, str, str | None]],
                 clean: list[tuple[float, float]], holds: list[tuple[float, float]],
                 death: float | None, multipath: list[tuple[float, tuple[float, float]]],
                 outage: tuple[float, float] | None, seq0: int, phase: float,
                 p_dup: float = 0.004, p_cell: float = 0.004, p_multipath: float = 1 / 900,
                 noise_tau_s: float = 0.0, noise_inflation: float = 1.0):
        self.device, self.interval, self.path, self.grid, self.home = device, interval, path, grid, home
        self.t0, self.t1, self.rng, self.battery = t0, t1, rng, battery
        self.events = sorted(events)
        self.clean, self.holds, self.death = clean, sorted(holds), death
        self.multipath = sorted(multipath)
        self.outage = outage
        self.seq0, self.phase = seq0, phase
        self.p_dup, self.p_cell, self.p_multipath = p_dup, p_cell, p_multipath
        self._burst_last: dict[float, float] = {}
        self.error = GpsError(rng, noise_tau_s, noise_inflation)

    # --- delivery ---
    def deliver(self, t: float, delay: float) -> float:
        """rx for a message measured at t (see module docstring)."""
        rx = t + delay
        for a, b in self.holds:
            if a <= t < b:
                last = self._burst_last.get(b, b + 0.3)
                rx = last + 0.012
                self._burst_last[b] = rx
                break
            if t < a < rx:          # measured before a gap: on the air before it starts
                rx = max(t, a - 0.001)
        if self.death is not None and t < self.death < rx:
            rx = max(t, self.death - 0.001)
        if self.outage and self.outage[0] <= rx < self.outage[1]:
            rx = self.outage[1] + 0.5 + (t - self.outage[0]) / max(1.0, self.outage[1] - self.outage[0]) * 19.0
        return rx

    def _delay(self) -> float:
        r = self.rng.random()
        return self.rng.uniform(2.0, 6.0) if r < 0.02 else self.rng.uniform(0.2, 2.0)

    # --- measurement ---
    def _fix(self, t: float, seq: int, forced_target=None) -> dict:
        rng = self.rng
        s = self.path.at(t)
        clean = _in(t, self.clean)
        x, y = s.x, s.y
        src = "gps"
        if forced_target is not None:
            acc = rng.uniform(8.0, 18.0)
            x, y = forced_target
        elif clean:
            acc = rng.uniform(6.0, CLEAN_ACC_MAX)
        elif not s.still:
            acc = rng.uniform(5.0, 20.0) if s.speed < 3.0 else rng.uniform(8.0, 25.0)
        else:
            at_home = math.hypot(s.x - self.home[0], s.y - self.home[1]) < 25.0
            if rng.random() < (0.3 if at_home else 0.4):
                src, acc = "wifi", rng.uniform(30.0, 42.0 if at_home else 60.0)
            else:
                acc = rng.uniform(10.0 if at_home else 8.0, 30.0)
        if forced_target is None and not clean:
            r = rng.random()
            if r < self.p_cell:
                src, acc = "cell", rng.uniform(300.0, 1500.0)
        ex, ey = self.error.sample(t, acc * SIGMA_PER_ACC)
        x += ex
        y += ey
        lon, lat = self.grid.to_lonlat(x, y)
        msg = {"v": 1, "kind": "fix", "device": self.device, "seq": seq, "t": None, "rx": None,
               "lat": round(lat, 7), "lon": round(lon, 7), "acc": round(acc, 1), "src": src}
        if src == "gps":
            if not s.still:
                msg["spd"] = round(max(0.0, s.speed * rng.uniform(0.85, 1.15)), 2)
                msg["hdg"] = round((s.heading + rng.gauss(0, 8)) % 360.0, 1) % 360.0
            msg["sats"] = max(4, min(12, int(14 - acc / 3)))
        msg["batt"] = round(max(0.0, self.battery.level(t)), 3)
        return msg

    def _random_multipath(self) -> set[int]:
        """Fix indices that jump (not near clean windows, holds or the outage)."""
        n = int((self.t1 - self.t0) / self.interval) + 1
        out = set()
        guard = 3 * self.interval
        bad = self.clean + [(a, b) for a, b in self.holds]
        if self.outage:
            bad.append(self.outage)
        for k in range(n):
            if self.rng.random() < self.p_multipath:
                t = self.t0 + self.phase + k * self.interval
                if not any(a - guard <= t < b + guard for a, b in bad):
                    out.add(k)
        return out

    def messages(self) -> Iterator[tuple[float, int, bytes]]:
        rng = self.rng
        jumps = self._random_multipath()
        forced = list(self.multipath)
        pending: list[tuple[float, int, bytes]] = []
        seq = self.seq0
        n = 0
        events = list(self.events)
        k = 0
        while True:
            tf = self.t0 + self.phase + k * self.interval
            if events and events[0][0] <= tf:
                te, etype, detail = events.pop(0)
                if te < self.t0:
                    continue
                t, msg = te, {"v": 1, "kind": "event", "device": self.device, "seq": 0,
                              "t": None, "rx": None, "type": etype}
                if detail:
                    msg["detail"] = detail
            else:
                t = tf
                target = None
                if forced and abs(forced[0][0] - tf) <= self.interval / 2:
                    target = forced.pop(0)[1]
                elif forced and forced[0][0] < tf:
                    forced.pop(0)
                elif k in jumps:
                    s = self.path.at(tf)
                    a, r = rng.uniform(0, 2 * math.pi), rng.uniform(250.0, 700.0)
                    target = (s.x + r * math.cos(a), s.y + r * math.sin(a))
                msg = self._fix(tf, 0, target)
                k += 1
            if t >= self.t1 or (self.death is not None and t >= self.death):
                break
            t = ms(t)
            rx = ms(max(t, self.deliver(t, self._delay())))
            msg["seq"] = seq
            seq += 1
            msg["t"], msg["rx"] = rfc3339(t), rfc3339(rx)
            line = orjson.dumps(msg)
            heapq.heappush(pending, (rx, n, line))
            n += 1
            if rng.random() < self.p_dup and not _in(t, self.holds):
                rx2 = ms(self.deliver(t, rng.uniform(3.0, 40.0)))
                if rx2 > rx:
                    msg["rx"] = rfc3339(rx2)
                    heapq.heappush(pending, (rx2, n, orjson.dumps(msg)))
                    n += 1
            while pending and pending[0][0] <= t:
                yield heapq.heappop(pending)
        while pending:
            yield heapq.heappop(pending)


def heartbeats(t0: float, t1: float, outage: tuple[float, float] | None,
               rng: random.Random) -> Iterator[tuple[float, int, bytes]]:
    """The gateway's heartbeat every 10 s (none during a feed outage)."""
    t = math.ceil(t0 / HEARTBEAT_S) * HEARTBEAT_S
    n = 0
    while t < t1:
        rx = ms(t + rng.uniform(0.05, 0.4))
        if not (outage and outage[0] <= rx < outage[1]):
            line = orjson.dumps({"v": 1, "kind": "heartbeat", "gateway": GATEWAY,
                                 "t": rfc3339(t), "rx": rfc3339(rx)})
            yield rx, n, line
            n += 1
        t += HEARTBEAT_S


BAD_KINDS = ("not_json", "missing_field", "unknown_device", "out_of_range", "time_after_rx")


def bad_lines(t0: float, t1: float, per_hour: float, devices: list[str], lonlat: tuple[float, float],
              rng: random.Random) -> list[tuple[float, int, bytes, str]]:
    """Deliberate bad input (spec §2), ``per_hour`` on average: (rx, n, line, kind)."""
    out = []
    n = int(round(per_hour * (t1 - t0) / 3600.0))
    for i in range(n):
        rx = ms(rng.uniform(t0 + 1.0, t1 - 1.0))
        kind = BAD_KINDS[i % len(BAD_KINDS)]
        dev = rng.choice(devices)
        fix = {"v": 1, "kind": "fix", "device": dev, "seq": 0, "t": rfc3339(rx - 1.0), "rx": rfc3339(rx),
               "lat": round(lonlat[1] + rng.uniform(-0.01, 0.01), 7),
               "lon": round(lonlat[0] + rng.uniform(-0.01, 0.01), 7), "acc": 10.0, "src": "gps"}
        if kind == "not_json":
            line = orjson.dumps(fix)[:-rng.randint(5, 30)]
        elif kind == "missing_field":
            del fix["acc"]
            line = orjson.dumps(fix)
        elif kind == "unknown_device":
            fix["device"] = "TAG-UNKNOWN-%d" % rng.randint(1, 99)
            line = orjson.dumps(fix)
        elif kind == "out_of_range":
            fix["lat"] = 91.5
            line = orjson.dumps(fix)
        else:
            fix["t"] = rfc3339(rx + 400.0)
            line = orjson.dumps(fix)
        out.append((rx, i, line, kind))
    out.sort()
    return out


def merge_feed(sources: list[Iterator[tuple[float, int, bytes]]]) -> Iterator[tuple[float, bytes]]:
    """All sources merged in arrival order; ties broken by source then message order."""
    def keyed(i, it):
        for rx, n, line in it:
            yield rx, i, n, line
    for rx, _i, _n, line in heapq.merge(*(keyed(i, s) for i, s in enumerate(sources))):
        yield rx, line
