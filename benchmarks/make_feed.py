"""How fast the simulator makes a feed: planning (tracks, script, truth) and generation
(messages in arrival order, serialised), for the demo caseload.

Run: ``.venv/bin/python benchmarks/make_feed.py [--tags 100] [--hours 24] [--out FILE]``.
Prints one JSON line: tags, hours, messages, plan_s, generate_s, messages_per_s, bytes.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitorapp.sim.demo import demo_caseload  # noqa: E402
from monitorapp.sim.simulator import DEFAULT_START, SimulatedFeed  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tags", type=int, default=100)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", help="also write the feed here")
    args = p.parse_args(argv)
    cl = demo_caseload(args.tags, seed=args.seed, start=DEFAULT_START, hours=args.hours)
    t0 = time.perf_counter()
    feed = SimulatedFeed(cl, DEFAULT_START, args.hours, args.seed)
    t1 = time.perf_counter()
    n = size = 0
    out = open(args.out, "wb") if args.out else None
    for _rx, line in feed.lines():
        n += 1
        size += len(line) + 1
        if out:
            out.write(line + b"\n")
    if out:
        out.close()
    t2 = time.perf_counter()
    print(json.dumps({"tags": args.tags, "hours": args.hours, "messages": n,
                      "breaches": len(feed.truth["breaches"]), "plan_s": round(t1 - t0, 2),
                      "generate_s": round(t2 - t1, 2), "messages_per_s": round(n / (t2 - t1)),
                      "bytes": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
