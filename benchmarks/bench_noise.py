"""Real-world noise (issue 17): false alerts and detection latency, before and after the
noise-robust breach confirmation (``monitorapp/engine/rules.py``, "Breach side").

Cases (``monitorapp.sim.homescatter``), each under two noise models: *honest* (independent
errors as the stated ``acc`` promises) and *real* (AR(1) errors correlated over 300 s, twice
the stated scale):

1. ``--tags`` (200) stationary tags × 24 h in homes of 12–15 m radius, curfew 19:00–07:00,
   ``grace_s`` 60 s: every ``curfew_absent`` is false.
2. the same tags each leaving home once during the curfew (walking to 400 m, 30 min out):
   latency from the true boundary crossing to the alert, against the bound
   ``grace_s`` + 3 fix intervals + 60 s, for grace 60 s and 600 s.
3. the same tags each walking into an exclusion zone in the day (60 m deep, and 150 m: the
   middle): latency from the true entry, against 3 fix intervals + 60 s.

"before" runs the same engine with the breach side confirmed by the old rules A/B
(``Evidence.confirmed``). Run: ``.venv/bin/python benchmarks/bench_noise.py [--tags N]``.
"""
from __future__ import annotations

import argparse
import pathlib
import random
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitorapp.engine import rules  # noqa: E402
from monitorapp.engine.caseload import parse_caseload  # noqa: E402
from monitorapp.engine.engine import Engine  # noqa: E402
from monitorapp.feed.timeutil import parse_time  # noqa: E402
from monitorapp.sim.homescatter import home_caseload, home_feed  # noqa: E402

START = parse_time("2026-11-27T12:00:00Z")
MODELS = {"honest": (0.0, 1.0), "real": (300.0, 2.0)}
_ROBUST = rules.Evidence.confirmed_breach


def set_mode(mode: str) -> None:
    if mode == "before":
        rules.Evidence.confirmed_breach = lambda self, inside, room, z: self.confirmed(inside)
    else:
        rules.Evidence.confirmed_breach = _ROBUST


def run(cl_doc: dict, lines, end: float) -> list:
    eng = Engine(parse_caseload(cl_doc, "bench"))
    raised = []
    eng.add_listener(on_alert=lambda a, ch: raised.append(a) if ch == "raised" else None)
    for _rx, line in lines:
        eng.submit(line)
    eng.flush()
    eng.advance(end)
    return raised


def stationary(n: int, model: str, mode: str) -> dict:
    tau, infl = MODELS[model]
    cl = home_caseload(n, 60.0)
    lines, _ = home_feed(cl, START, 24.0, seed=7, tau_s=tau, inflation=infl)
    set_mode(mode)
    raised = run(cl, lines, START + 86400)
    cu = [a for a in raised if a.type == "curfew_absent"]
    return {"curfew_absent": len(cu), "tags_with_one": len({a.offender for a in cu}),
            "exclusion_entered": sum(a.type == "exclusion_entered" for a in raised)}


def leavers(n: int, model: str, mode: str, grace: float) -> dict:
    tau, infl = MODELS[model]
    cl = home_caseload(n, grace)
    rng = random.Random(11)
    night = parse_time("2026-11-27T20:00:00Z")
    plan = [(i, night + rng.uniform(0, 8 * 3600), 400.0) for i in range(n)]
    lines, truth = home_feed(cl, START, 24.0, seed=8, tau_s=tau, inflation=infl, leavers=plan)
    set_mode(mode)
    raised = run(cl, lines, START + 86400)
    bound = grace + 3 * 60 + 60
    lat, missed, late = [], 0, 0
    for i, tc in truth["leave"].items():
        a = [x for x in raised if x.type == "curfew_absent" and x.offender == f"OFF-{i:04d}"
             and tc - 300 <= x.start <= tc + 2400]
        if not a:
            missed += 1
            continue
        d = min(x.raised_at for x in a) - tc
        lat.append(d)
        late += d > bound
    return _lat(lat, missed, late, bound)


def entrants(n: int, model: str, mode: str, depth: float) -> dict:
    tau, infl = MODELS[model]
    cl = home_caseload(n, 60.0)
    rng = random.Random(12)
    day = parse_time("2026-11-27T13:00:00Z")
    plan = [(i, day + rng.uniform(0, 4 * 3600), depth) for i in range(n)]
    lines, truth = home_feed(cl, START, 24.0, seed=9, tau_s=tau, inflation=infl, entrants=plan)
    set_mode(mode)
    raised = run(cl, lines, START + 86400)
    bound = 3 * 60 + 60
    lat, missed, late = [], 0, 0
    for i, te in truth["entry"].items():
        a = [x for x in raised if x.type == "exclusion_entered" and x.offender == f"OFF-{i:04d}"]
        if not a:
            missed += 1
            continue
        d = min(x.raised_at for x in a) - te
        lat.append(d)
        late += d > bound
    return _lat(lat, missed, late, bound)


def _lat(lat, missed, late, bound) -> dict:
    if not lat:
        return {"missed": missed}
    lat.sort()
    return {"p50_s": round(statistics.median(lat), 1), "p95_s": round(lat[int(0.95 * (len(lat) - 1))], 1),
            "max_s": round(lat[-1], 1), "bound_s": bound, "over_bound": late, "missed": missed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=200)
    args = ap.parse_args()
    t0 = time.perf_counter()
    n = args.tags
    for model in MODELS:
        for mode in ("before", "after"):
            print(f"[{model} noise, {mode}]", flush=True)
            print(f"  stationary {n} tags x 24 h, 12-15 m home, grace 60 s: {stationary(n, model, mode)}", flush=True)
            for g in (60.0, 600.0):
                print(f"  leave home (400 m), grace {g:g} s: latency {leavers(n, model, mode, g)}", flush=True)
            for depth in (60.0, 150.0):
                print(f"  exclusion entry {depth:g} m deep: latency {entrants(n, model, mode, depth)}", flush=True)
    set_mode("after")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
