"""A realistic, deterministic simulated feed (spec §2) for a caseload, with its ground truth.

``simulate(caseload, start, hours, seed, ...)`` returns ``(lines, truth)``: ``lines`` an
iterator of ``(rx, line_bytes)`` in arrival order (a replay file, one v1 message a line),
``truth`` what was scripted and what the engine must and must not alert (``truth``). The
same caseload, start, hours, seed and options give the same bytes on every run and machine.

How it is built (one module each): ``planner`` plans each offender's true track day by day,
``script`` scripts the incidents (breaches, faults, near-misses), ``tags`` turns tracks
into noisy fixes, device events and heartbeats with realistic delivery, ``truth`` measures
the ground truth on the true tracks. ``scenarios`` holds the trainers' presets.

``LiveSimulator`` yields the same feed incrementally (``step_until(t)``) for the desktop
training mode; ``cli_main`` is ``monitorapp simulate`` (spec §7).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from monitorapp.sim.planner import OffenderWorld, day_frames, plan_path
from monitorapp.sim.routines import local_date, local_time
from monitorapp.sim.script import (CLEAN_ACC_MAX, NEAR_MISS_M, Incident, apply_incidents,
                                  auto_script)
from monitorapp.sim.tags import Battery, TagFeed, bad_lines, heartbeats, merge_feed
from monitorapp.sim.truth import (audit_path, breach, clearance_warnings, must_not,
                                 signal_threshold)
from monitorapp.feed.timeutil import TimeFormatError, fmt_time, parse_time

DEFAULT_START = "2026-10-24T12:00:00Z"     # crosses the end of British Summer Time
DEFAULT_HOURS = 24.0
LIVE_HOURS = 72.0       # a training session at x60 runs 72 minutes before the feed ends


@dataclass
class FeedOptions:
    """What goes into a simulated feed besides the routines; every fault can be turned off."""
    counts: dict | None = None                 # incidents per 24 h (script.DEFAULT_COUNTS)
    incidents: list[Incident] | None = None    # an explicit script instead of ``counts``
    gaps_per_day: float = 3.0                  # short coverage gaps per tag per day
    p_duplicate: float = 0.004                 # chance a message is retransmitted
    p_cell: float = 0.004                      # chance a fix is a cell fix
    multipath_per_day: float = 1.5             # random single-fix jumps per tag per day
    tags: int | None = None                    # only the first N offenders
    bad_per_hour: float = 0.0                  # deliberate bad input lines (spec §2), per hour
    noise_tau_s: float = 0.0                   # GPS error correlation time (0: independent)
    noise_inflation: float = 1.0               # true error scale / the stated acc's (tags.GpsError)

    @classmethod
    def from_kwargs(cls, **kw) -> "FeedOptions":
        bad = set(kw) - set(cls.__dataclass_fields__)
        if bad:
            raise TypeError(f"unknown simulator option(s): {', '.join(sorted(bad))}")
        return cls(**kw)


@dataclass
class _Tag:
    world: OffenderWorld
    feed: TagFeed
    windows: list = field(default_factory=list)


def _as_time(start) -> float:
    if isinstance(start, (int, float)):
        return float(start)
    if isinstance(start, dt.datetime):
        return start.timestamp()
    return parse_time(start)


def _rng(seed: int, *parts) -> random.Random:
    return random.Random("|".join(str(p) for p in (seed,) + parts))


class SimulatedFeed:
    """The plan of a whole feed: every offender's track, script, tag and the truth."""

    def __init__(self, caseload: dict, start, hours: float = DEFAULT_HOURS, seed: int = 1,
                 options: FeedOptions | None = None):
        opt = options or FeedOptions()
        self.options = opt
        self.t0 = t0 = _as_time(start)
        self.t1 = t1 = t0 + float(hours) * 3600.0
        self.seed = seed
        self.tz = ZoneInfo(caseload.get("tz") or "Europe/London")
        zones = {f["id"]: f for f in caseload["zones"]["features"]}
        offenders = list(caseload["offenders"])
        if opt.tags is not None:
            offenders = offenders[:opt.tags]
        t_begin = local_time(local_date(t0, self.tz), "00:00", self.tz)
        worlds = [OffenderWorld(o, zones, self.tz, t0, t1, _rng(seed, "world", o["id"])) for o in offenders]
        if opt.incidents is not None:
            incidents = list(opt.incidents)
        else:
            incidents = auto_script(worlds, t0, t1, _rng(seed, "script"), opt.counts)
        self.incidents = incidents
        outage = next(((i.at, i.at + i.duration_s) for i in incidents if i.kind == "feed_outage"), None)
        self.outage = outage
        breaches, mna, warnings = [], [], []
        self.tags: list[_Tag] = []
        for w in worlds:
            rng = _rng(seed, "plan", w.id)
            frames = day_frames(w, rng, t_begin, t1 + 3600)
            mine = [i for i in incidents if i.offender == w.id]
            script = apply_incidents(w, mine, frames, rng)
            path = plan_path(w, rng, script.visits, frames, t_begin, t1 + 3600)
            tag, b, m, warn = self._tag(w, path, frames, script, mine, rng)
            self.tags.append(tag)
            breaches += b
            mna += m
            warnings += warn
        if outage:
            breaches.append(breach("feed_lost", None, None, outage[0], outage[1], outage[0] + 60.0,
                                   "feed_outage"))
        breaches.sort(key=lambda b: (b["start"], b["type"], b["offender"] or ""))
        self.bad = bad_lines(t0, t1, opt.bad_per_hour, [w.device for w in worlds] or ["TAG-X"],
                             worlds[0].lonlat(worlds[0].home) if worlds else (-0.08, 51.54),
                             _rng(seed, "bad"))
        if outage:
            self.bad = [b for b in self.bad if not outage[0] <= b[0] < outage[1]]
        self.truth = {
            "version": 1, "start": fmt_time(t0), "end": fmt_time(t1), "seed": seed,
            "tz": str(self.tz), "tags": len(worlds),
            "bounds": {"exclusion_entered": "true entry + 3 fix intervals + 60 s",
                       "curfew_absent": "absence start + grace_s + 3 fix intervals + 60 s",
                       "appointment_missed": "end + grace_s", "strap_tamper": "rx of the event",
                       "signal_lost": "silence start + max(300 s, 3 fix intervals)",
                       "battery_low": "rx of the battery_low event",
                       "feed_lost": "outage start + 60 s"},
            "near_miss_m": NEAR_MISS_M, "incident_acc_max": CLEAN_ACC_MAX,
            "incidents": [i.to_json() for i in sorted(incidents, key=lambda i: (i.at, i.kind))],
            "outage": ({"start": fmt_time(outage[0]), "end": fmt_time(outage[1])} if outage else None),
            "breaches": breaches,
            "must_not_alert": sorted((m for m in mna if m["kind"] == "must_not_alert"),
                                     key=lambda m: (m["from"], m["offender"])),
            "may_alert": sorted((m for m in mna if m["kind"] == "may_alert"),
                                key=lambda m: (m["from"], m["offender"])),
            "warnings": warnings,
            "bad_input": {"count": len(self.bad),
                          "lines": [{"rx": fmt_time(rx), "kind": k} for rx, _n, _l, k in self.bad]},
        }

    # --- one tag ---
    def _tag(self, w: OffenderWorld, path, frames, script, incidents, rng):
        t0, t1, opt, seed = self.t0, self.t1, self.options, self.seed
        iv = w.interval
        thr = signal_threshold(iv)
        windows = []          # (from, to, kind) of this offender's incidents
        for v in script.visits:
            if v.kind != "routine" and v.began is not None:
                windows.append((v.began, v.ended, v.kind))
        for inc in incidents:
            if inc.kind == "curfew_late_return":
                d = local_date(inc.at - 3600, w.tz)
                windows.append((inc.at - 900, frames[d].home_by + 600, inc.kind))
            elif inc.kind == "curfew_early_leave":
                d = local_date(inc.at, w.tz)
                windows.append((frames[d].leave - 600, inc.at + 600, inc.kind))
            elif inc.kind == "multipath_curfew":
                windows.append((inc.at - 600, inc.at + 600, inc.kind))
            elif inc.kind == "appointment_missed":
                q = next(q for q in w.appointments if q.id == inc.requirement)
                windows.append((q.start, q.end + q.grace_s, inc.kind))
            elif inc.kind in ("strap_tamper", "signal_gap", "dead_tag", "dead_battery", "battery_low"):
                windows.append((inc.at - 300, inc.at + 2400, inc.kind))
        for t, _ in script.multipath:
            windows.append((t - 600, t + 600, "multipath"))
        clean = sorted((a - 60, b + 60) for a, b, _ in windows)
        # device: battery, events, silences, death
        evenings = [fr.home_by + rng.uniform(30, 120) * 60 for fr in frames.values()]
        empty_at = low_at = death = None
        holds, events, breaches, mna = [], [], [], []
        for kind, t, dur in script.faults:
            if kind == "tamper":
                events += [(t, "strap_tamper", "strap circuit open"), (t + dur, "strap_restored", None)]
            elif kind == "silence":
                holds.append((t, t + dur))
                breaches.append(breach("signal_lost", w, None, t, t + dur, t + thr, "signal_gap"))
            elif kind == "dead_tag":
                death = t
            elif kind == "dead_battery":
                empty_at = t
            elif kind == "battery_low":
                low_at = t
        battery = Battery.plan(t0, t1, rng, iv, evenings, empty_at, low_at)
        for a, b in battery.charges:
            events += [(a, "charging_started", None), (b, "charging_stopped", None)]
        for c in battery.crossings(0.15):
            events.append((c, "battery_low", "battery below 15 %"))
        for c in battery.crossings(0.05):
            events.append((c, "battery_critical", "battery below 5 %"))
        if empty_at is not None:
            off = battery.crossings(0.01)
            if off:
                events.append((off[0], "power_off", "battery exhausted"))
                death = off[0] + 0.0005
        events = [e for e in events if e[0] >= t0 and (death is None or e[0] < death)]
        # random coverage gaps, clear of incidents, events and the outage
        guard = [(a - 1200, b + 1200) for a, b in clean] + [(e[0] - 900, e[0] + 900) for e in events]
        guard += [(a - 1200, b + 1200) for a, b in holds]
        if self.outage:
            guard.append((self.outage[0] - 1800, self.outage[1] + 1800))
        n_gaps = _poisson(rng, opt.gaps_per_day * (t1 - t0) / 86400.0)
        for _ in range(n_gaps):
            g0 = rng.uniform(t0 + 600, t1 - 600)
            g1 = g0 + rng.uniform(iv + 10, 180.0)
            if not any(a < g1 and g0 < b for a, b in guard):
                holds.append((g0, g1))
                guard.append((g0 - 600, g1 + 600))
        feed = TagFeed(w.device, iv, path, w.grid, w.home, t0, t1, _rng(seed, "tag", w.id), battery,
                       events, clean, holds, death, script.multipath, self.outage,
                       seq0=rng.randrange(1, 9000), phase=rng.uniform(0, iv),
                       p_dup=opt.p_duplicate, p_cell=opt.p_cell,
                       p_multipath=opt.multipath_per_day * iv / 86400.0,
                       noise_tau_s=opt.noise_tau_s, noise_inflation=opt.noise_inflation)
        # truth of the tag's faults
        for c in battery.crossings(0.15):
            if t0 <= c < t1 and (death is None or c < death):
                held = next((b for a, b in holds if a <= c < b), None)   # delivered in a burst
                breaches.append(breach("battery_low", w, None, c, None,
                                       (held + 6.0) if held else c + 6.0, "battery",
                                       note="alert_by bounds the event's rx (delay ≤ 6 s)"))
        for t, typ, _ in events:
            if typ == "strap_tamper":
                breaches.append(breach("strap_tamper", w, None, t, None, t + 6.0, "strap_tamper",
                                       note="alert_by bounds the event's rx (delay ≤ 6 s)"))
        if death is not None and death + thr < t1:
            breaches.append(breach("signal_lost", w, None, death, None, death + thr,
                                   "dead_battery" if empty_at is not None else "dead_tag"))
        b, m, may, warn = audit_path(w, path, t0, t1, windows, death)
        breaches += b
        mna += m + may
        warn += clearance_warnings(w, path, t0, t1, [(a - 60, b + 60) for a, b, _ in windows])
        for v in script.visits:
            q = next((q for q in w.reqs if q.id == getattr(v, "req", None)), None)
            if v.kind == "exclusion_near_miss":
                mna.append(must_not("exclusion_entered", w, q, v.began, v.ended, "near_miss",
                                    distance_m=NEAR_MISS_M, acc_max=CLEAN_ACC_MAX))
            elif v.kind == "curfew_near_miss":
                mna.append(must_not("curfew_absent", w, q, v.began, v.ended, "near_miss",
                                    depth_m=NEAR_MISS_M, acc_max=CLEAN_ACC_MAX))
        for t, _ in script.multipath:
            inc = next((i for i in incidents if i.kind.startswith("multipath") and abs(i.at - t) < 1200), None)
            q = next((q for q in w.reqs if inc and q.id == inc.requirement), None)
            typ = "exclusion_entered" if inc and inc.kind == "multipath_exclusion" else "curfew_absent"
            mna.append(must_not(typ, w, q, t - 300, t + 900, "multipath"))
        return _Tag(w, feed, windows), breaches, mna, warn

    def lines(self) -> Iterator[tuple[float, bytes]]:
        """The feed, in arrival order: (rx, line without newline)."""
        sources = [t.feed.messages() for t in self.tags]
        sources.append(heartbeats(self.t0, self.t1, self.outage, _rng(self.seed, "gateway")))
        if self.bad:
            sources.append(iter([(rx, n, line) for rx, n, line, _k in self.bad]))
        return merge_feed(sources)


def _poisson(rng: random.Random, lam: float) -> int:
    n, p, L = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= L:
            return n
        n += 1


def simulate(caseload: dict, start=DEFAULT_START, hours: float = DEFAULT_HOURS, seed: int = 1,
             **options) -> tuple[Iterator[tuple[float, bytes]], dict]:
    """``(lines, truth)``: lines an iterator of (rx, bytes) in arrival order. Options: see
    ``FeedOptions`` (counts, incidents, gaps_per_day, p_duplicate, p_cell, multipath_per_day,
    tags, bad_per_hour, noise_tau_s, noise_inflation)."""
    feed = SimulatedFeed(caseload, start, hours, seed, FeedOptions.from_kwargs(**options))
    return feed.lines(), feed.truth


def write_feed(out, caseload: dict, start=DEFAULT_START, hours: float = DEFAULT_HOURS, seed: int = 1,
               truth_path=None, **options) -> dict:
    """Write a replay file (NDJSON, arrival order) and optionally the truth; returns counts."""
    lines, truth = simulate(caseload, start, hours, seed, **options)
    counts = {"messages": 0, "fixes": 0, "events": 0, "heartbeats": 0}
    with open(out, "wb") as f:
        buf = []
        for _rx, line in lines:
            buf.append(line)
            counts["messages"] += 1
            k = line[15:18]    # after '{"v":1,"kind":"'
            counts["fixes" if k == b"fix" else "heartbeats" if k == b"hea" else "events"] += 1
            if len(buf) >= 4096:
                f.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            f.write(b"\n".join(buf) + b"\n")
    if truth_path is not None:
        with open(truth_path, "w", encoding="utf-8") as f:
            json.dump(truth, f, indent=1)
    counts["breaches"] = len(truth["breaches"])
    return counts


class LiveSimulator:
    """The same feed, produced incrementally: ``step_until(t)`` returns every (rx, line) with
    rx ≤ t not yet returned. The desktop training mode calls it from its clock at x1/x10/x60.
    Lines are generated lazily, so a long period (default 72 h) costs only its planning."""

    def __init__(self, caseload: dict, start=DEFAULT_START, seed: int = 1,
                 hours: float = LIVE_HOURS, **options):
        self.feed = SimulatedFeed(caseload, start, hours, seed, FeedOptions.from_kwargs(**options))
        self.truth = self.feed.truth
        self.start, self.end = self.feed.t0, self.feed.t1
        self.now = self.start
        self._it = self.feed.lines()
        self._next = next(self._it, None)

    @property
    def finished(self) -> bool:
        return self._next is None

    def step_until(self, t: float) -> list[tuple[float, bytes]]:
        out = []
        nxt, it = self._next, self._it
        while nxt is not None and nxt[0] <= t:
            out.append(nxt)
            nxt = next(it, None)
        self._next = nxt
        self.now = max(self.now, t)
        return out


# --- monitorapp simulate ----------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monitorapp simulate",
                                description="Write a realistic simulated feed (spec §2) to a replay "
                                            "file or publish it to an MQTT broker.")
    p.add_argument("--caseload", help="caseload file, or 'demo' for the built-in demo caseload")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--out", help="replay file to write (NDJSON, arrival order)")
    out.add_argument("--broker", help="MQTT broker URL to publish to, e.g. mqtt://localhost:1883")
    p.add_argument("--speed", type=float, default=1.0, help="publishing speed factor (broker only)")
    p.add_argument("--client-id", help="broker client id (default: per host and run)")
    p.add_argument("--ca", help="CA file for mqtts://")
    p.add_argument("--cert", help="client certificate for mqtts:// (a gateway identity's)")
    p.add_argument("--key", help="client certificate's key")
    p.add_argument("--username", help="broker user name (a gateway identity: monitorapp broker-config --gateway)")
    p.add_argument("--password-file", help="file whose first line is the broker password "
                   "(or set MONITORAPP_MQTT_PASSWORD)")
    p.add_argument("--mqtt-version", choices=("5", "3.1.1"), default="5")
    p.add_argument("--hours", type=float, default=DEFAULT_HOURS, help="simulated period (default 24)")
    p.add_argument("--start", default=DEFAULT_START, help=f"RFC 3339 start (default {DEFAULT_START})")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--truth", help="write the ground truth (JSON) here")
    p.add_argument("--write-demo-caseload", metavar="FILE", help="write the demo caseload here and use it")
    p.add_argument("--tags", type=int, help="number of tags (demo: offenders to generate)")
    p.add_argument("--bad-per-hour", type=float, default=0.0,
                   help="deliberate bad input lines per hour (default none)")
    return p


def _load_caseload_file(path: str) -> dict:
    """Read and check a caseload; raises ValueError with one line naming the problem."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except OSError as e:
        raise ValueError(f"cannot read: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:     # RecursionError: nested too deeply to read
        raise ValueError(f"not JSON: {e}") from None
    try:
        from monitorapp.engine.caseload import CaseloadError, load_caseload
    except ImportError:
        load_caseload = None
    if load_caseload is not None:
        try:
            load_caseload(path)
        except CaseloadError as e:
            probs = getattr(e, "problems", None) or [str(e)]
            raise ValueError("; ".join(str(p) for p in probs[:3])) from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError("not a version 1 caseload")
    if not isinstance(data.get("zones"), dict) or not isinstance(data["zones"].get("features"), list):
        raise ValueError("'zones' is not a GeoJSON FeatureCollection")
    if not isinstance(data.get("offenders"), list) or not data["offenders"]:
        raise ValueError("no offenders")
    ids = {f.get("id") for f in data["zones"]["features"] if isinstance(f, dict)}
    for o in data["offenders"]:
        if not isinstance(o, dict) or not isinstance(o.get("device"), str) or not o.get("id"):
            raise ValueError("an offender without id or device")
        for r in o.get("requirements") or []:
            if r.get("zone") not in ids:
                raise ValueError(f"offender {o['id']}: requirement {r.get('id')} names unknown zone {r.get('zone')!r}")
    return data


def _bad_simulate_args(args, start: float) -> str | None:
    """One line naming an argument out of range, or None (the feed's bounds: spec v2 §2)."""
    if not 0 < args.hours <= 24 * 366 or not 0 <= args.speed < math.inf:
        return "--hours must be more than 0 and at most 8784 (a year), --speed a number 0 or more"
    if not 946_684_800.0 <= start <= 4_102_444_800.0 - args.hours * 3600:
        return "--start and --hours must keep the feed within 2000-01-01 and 2100-01-01"
    if (args.tags is not None and args.tags < 1) or not 0 <= args.bad_per_hour <= 100_000:
        return "--tags must be at least 1 and --bad-per-hour 0 to 100000"
    return None


def cli_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        start = parse_time(args.start)
    except TimeFormatError as e:
        print(f"monitorapp simulate: --start: {e}", file=sys.stderr)
        return 2
    bad = _bad_simulate_args(args, start)
    if bad:
        print(f"monitorapp simulate: {bad}", file=sys.stderr)
        return 2
    if args.caseload is None and not args.write_demo_caseload:
        print("monitorapp simulate: --caseload FILE (or 'demo') is required", file=sys.stderr)
        return 2
    if not args.out and not args.broker:
        print("monitorapp simulate: give --out FILE or --broker URL", file=sys.stderr)
        return 2
    settings = None
    if args.broker:           # the same broker options as the monitor, checked before simulating
        from monitorapp.feed.mqttconfig import MqttConfigError, MqttSettings, default_client_id
        try:
            settings = MqttSettings.from_args(
                args.broker, client_id=args.client_id or f"{default_client_id('simulator')}-{os.getpid()}",
                ca=args.ca, cert=args.cert, key=args.key, username=args.username,
                password_file=args.password_file, protocol=5 if args.mqtt_version == "5" else 4)
        except MqttConfigError as e:
            print(f"monitorapp simulate: {e}", file=sys.stderr)
            return 2
    elif any((args.client_id, args.ca, args.cert, args.key, args.username, args.password_file)):
        print("monitorapp simulate: the broker options need --broker URL", file=sys.stderr)
        return 2
    if args.caseload in (None, "demo") or args.write_demo_caseload:
        from monitorapp.sim.demo import demo_caseload
        caseload = demo_caseload(args.tags or 100, seed=args.seed, start=start, hours=args.hours)
        if args.write_demo_caseload:
            try:
                with open(args.write_demo_caseload, "w", encoding="utf-8") as f:
                    json.dump(caseload, f, indent=1)
            except OSError as e:
                print(f"monitorapp simulate: {args.write_demo_caseload}: {e.strerror or e}",
                      file=sys.stderr)
                return 2
        tags = None
    else:
        try:
            caseload = _load_caseload_file(args.caseload)
        except ValueError as e:
            print(f"monitorapp simulate: {args.caseload}: {e}", file=sys.stderr)
            return 2
        tags = args.tags
    opts = {"tags": tags} if tags else {}
    if args.bad_per_hour > 0:
        opts["bad_per_hour"] = args.bad_per_hour
    t_start = time.perf_counter()
    if args.out:
        try:
            counts = write_feed(args.out, caseload, start, args.hours, args.seed, args.truth, **opts)
        except OSError as e:
            print(f"monitorapp simulate: {args.out}: {e.strerror or e}", file=sys.stderr)
            return 2
        counts["seconds"] = round(time.perf_counter() - t_start, 2)
        print(json.dumps(counts))
        return 0
    try:
        from monitorapp.sim.publish import publish_feed
    except ImportError:
        print("monitorapp simulate: --broker needs monitorapp.sim.publish, which this build does not "
              "have yet; use --out FILE", file=sys.stderr)
        return 2
    lines, truth = simulate(caseload, start, args.hours, args.seed, **opts)
    if args.truth:
        with open(args.truth, "w", encoding="utf-8") as f:
            json.dump(truth, f, indent=1)
    try:
        summary = publish_feed(lines, settings, args.speed)
    except KeyboardInterrupt:
        return 130
    except Exception as e:        # PublishError, a bad URL: one line, not a traceback
        print(f"monitorapp simulate: {settings.url()}: {e}", file=sys.stderr)   # no password
        return 1
    summary = dict(summary or {})
    summary["breaches"] = len(truth["breaches"])
    print(json.dumps(summary))
    return 0

