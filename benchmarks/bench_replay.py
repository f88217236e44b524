"""Replay throughput and memory (issue 2's performance figures).

1. A 100-tag, 24-hour simulated feed (the demo caseload, seed 1): messages per second through
   the whole engine (decode, duplicate check, rules, timers), the time plain ``json.loads``
   takes over the same lines, and the ratio between them. With the decoder's compiled fast
   path (``monitorapp/feed/_speedups.c``, what the program runs) and then, for comparison, with the
   pure-Python decoder (``MONITORAPP_PURE_PYTHON=1``, in a second process).
2. Peak resident memory of ``monitorapp replay`` for 4,000 tags over one hour.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_replay.py [--tags4000 N]``.
Feeds are generated once into ``benchmarks/.cache`` (git-ignored) and reused.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "benchmarks" / ".cache"


def make_feed(tags: int, hours: float) -> tuple[pathlib.Path, pathlib.Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    case = CACHE / f"demo-{tags}.json"
    feed = CACHE / f"feed-{tags}x{hours:g}h.ndjson"
    if not feed.exists():
        print(f"generating {tags} tags x {hours:g} h ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "monitorapp", "simulate", "--caseload", "demo",
                        "--write-demo-caseload", str(case), "--tags", str(tags), "--hours", str(hours),
                        "--out", str(feed)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return case, feed


def best_of(n, fn):
    best = float("inf")
    for _ in range(n):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def throughput(repeats: int) -> dict:
    from monitorapp.engine.caseload import load_caseload
    from monitorapp.engine.engine import Engine
    case, feed = make_feed(100, 24)
    lines = feed.read_bytes().splitlines()

    def engine_run():
        eng = Engine(load_caseload(case))
        submit = eng.submit
        for ln in lines:
            submit(ln)
        eng.flush()
        engine_run.summary = eng.counters.summary()

    def json_run():
        loads = json.loads
        for ln in lines:
            loads(ln)
    t_engine = best_of(repeats, engine_run)
    t_json = best_of(repeats, json_run)
    return {"messages": len(lines), "engine_s": round(t_engine, 3), "json_loads_s": round(t_json, 3),
            "ratio": round(t_engine / t_json, 2), "messages_per_s": int(len(lines) / t_engine),
            "alerts": engine_run.summary["alerts"]}


def command_line(repeats: int) -> dict:
    """The whole ``monitorapp replay`` command as an operator runs it: interpreter start, imports,
    caseload, reading the file, the engine, writing the alerts and the summary line."""
    case, feed = make_feed(100, 24)
    cmd = [sys.executable, "-m", "monitorapp", "replay", "--caseload", str(case), "--feed", str(feed),
           "--out", str(CACHE / "alerts-cli.ndjson")]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - t0)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    return {"messages": summary["messages"], "wall_s": round(best, 3),
            "messages_per_s": int(summary["messages"] / best)}


def peak_memory(tags: int) -> dict:
    case, feed = make_feed(tags, 1)
    code = ("import resource, sys; from monitorapp.cli import main; rc = main(sys.argv[1:]); "
            "print('maxrss_kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, "replay", "--caseload", str(case), "--feed", str(feed),
                        "--out", str(CACHE / "alerts-mem.ndjson")], cwd=ROOT, capture_output=True, text=True,
                       check=True)
    kib = int([ln for ln in r.stderr.splitlines() if ln.startswith("maxrss_kib")][0].split()[1])
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    return {"tags": tags, "hours": 1, "messages": summary["messages"], "peak_rss_mib": round(kib / 1024, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tags4000", type=int, default=4000, help="tags for the memory figure")
    ap.add_argument("--throughput-only", action="store_true", help="skip the memory figure and the comparison")
    args = ap.parse_args()
    from monitorapp.feed.accel import speedups
    t = throughput(args.repeats)
    t["decoder"] = "compiled" if speedups is not None else "pure-Python"
    print(f"replay 100 tags x 24 h ({t['decoder']} decoder): {t['messages']} messages in {t['engine_s']} s = "
          f"{t['messages_per_s']:,} messages/s; json.loads alone {t['json_loads_s']} s; ratio {t['ratio']}x "
          f"({t['alerts']} alerts)", flush=True)
    if args.throughput_only:
        print(json.dumps({"throughput": t}))
        return
    if speedups is not None:
        r = subprocess.run([sys.executable, __file__, "--throughput-only", "--repeats", str(args.repeats)],
                           env={**os.environ, "MONITORAPP_PURE_PYTHON": "1"}, capture_output=True, text=True,
                           check=True)
        print(r.stdout.splitlines()[0], flush=True)
    cli = command_line(args.repeats)
    print(f"monitorapp replay, whole command: {cli['messages']} messages in {cli['wall_s']} s wall = "
          f"{cli['messages_per_s']:,} messages/s (start-up, caseload, file and alerts included)", flush=True)
    m = peak_memory(args.tags4000)
    print(f"peak memory, {m['tags']} tags x 1 h ({m['messages']} messages): {m['peak_rss_mib']} MiB resident")
    print(json.dumps({"throughput": t, "command_line": cli, "memory": m}))


if __name__ == "__main__":
    main()
