"""Engine start, checkpoint and restore for a large caseload (the live monitor's pauses).

The monitor checkpoints the engine's whole state into the store every few minutes and at
SIGTERM, and a restart loads and restores it; while either runs, no message is processed.
This builds the demo caseload for N tags (20,000 by default, a national centre), runs six
minutes of simulated feed through the engine, then times: loading the caseload, building the
engine, ``Store.checkpoint`` (snapshot, JSON, SQLite write), ``Store.load_checkpoint`` and
``Engine(caseload, state=...)``.

Run: ``.venv/bin/python benchmarks/bench_checkpoint.py [--tags N] [--repeats K]``.
The caseload and feed are generated once into ``benchmarks/.cache``.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CACHE = ROOT / "benchmarks" / ".cache"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tags", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from localdb.store import Store
    from monitorapp.engine.caseload import load_caseload
    from monitorapp.engine.engine import Engine

    CACHE.mkdir(parents=True, exist_ok=True)
    case, feed = CACHE / f"demo-{args.tags}.json", CACHE / f"feed-{args.tags}x0.1h.ndjson"
    if not feed.exists():
        print(f"generating {args.tags} tags x 0.1 h ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "monitorapp", "simulate", "--caseload", "demo",
                        "--write-demo-caseload", str(case), "--tags", str(args.tags), "--hours", "0.1",
                        "--out", str(feed)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    caseload, t_load = timed(lambda: load_caseload(case))
    engine, t_build = timed(lambda: Engine(caseload))
    with feed.open("rb") as f:
        n = sum(1 for line in f if engine.submit(line.rstrip(b"\n")))
    results = {"tags": args.tags, "messages": n, "load_caseload_s": round(t_load, 3),
               "engine_build_s": round(t_build, 3), "checkpoint_s": [], "load_checkpoint_s": [],
               "restore_s": []}
    with tempfile.TemporaryDirectory() as d, Store(pathlib.Path(d) / "bench.sqlite") as store:
        for i in range(args.repeats):
            _, t = timed(lambda: store.checkpoint(engine, {"line": n, "repeat": i}))
            results["checkpoint_s"].append(round(t, 3))
            (snap, _pos), t = timed(store.load_checkpoint)
            results["load_checkpoint_s"].append(round(t, 3))
            _, t = timed(lambda: Engine(caseload, state=snap))
            results["restore_s"].append(round(t, 3))
        stored = store.reader().execute("SELECT max(length(snapshot)) FROM checkpoints").fetchone()[0]
        results["snapshot_mb"] = round(stored / 1e6, 1)     # as written in the store
    print(f"{args.tags} tags, {n} messages: load caseload {results['load_caseload_s']} s, "
          f"build engine {results['engine_build_s']} s; checkpoint {min(results['checkpoint_s'])}–"
          f"{max(results['checkpoint_s'])} s ({results['snapshot_mb']} MB), load checkpoint "
          f"{min(results['load_checkpoint_s'])}–{max(results['load_checkpoint_s'])} s, restore "
          f"{min(results['restore_s'])}–{max(results['restore_s'])} s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
