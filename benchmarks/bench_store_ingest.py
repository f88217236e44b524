"""Ingest into the store through its real path: ``Store.on_fix`` (what the engine calls) → the
writer thread → batched transactions, projection to grid metres and the (device, t) index.

Prints the rate per chunk (each chunk ends with a ``flush()``, i.e. a durable commit, as a
checkpoint would) and overall. ``--compare-rtree`` also measures raw SQLite inserts of the same
rows with and without an R*Tree over (x, y, t), the alternative index considered.

    .venv/bin/python benchmarks/bench_store_ingest.py [--fixes 1000000] [--compare-rtree]
"""
from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localdb.store import Store  # noqa: E402
from monitorapp.feed.messages import Fix  # noqa: E402

T0 = 1_780_000_000.0


def make_fixes(n: int, tags: int = 100, seed: int = 1) -> list[Fix]:
    rng = np.random.default_rng(seed)
    lat = 51.50 + np.cumsum(rng.normal(0, 2e-5, n)) % 0.1
    lon = -0.12 + np.cumsum(rng.normal(0, 3e-5, n)) % 0.15
    acc = rng.uniform(4, 40, n)
    out = []
    for i in range(n):
        t = T0 + (i // tags) * 60.0 + (i % tags) * 0.5
        out.append(Fix(f"TAG-{i % tags:05d}", i // tags, t, t + 1.2, float(lat[i]), float(lon[i]),
                       float(acc[i]), "gps", None, None, 9, 0.8))
    return out


def bench_store(path: Path, fixes: list[Fix], chunk: int) -> None:
    rates = []
    with Store(path) as store:
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(0, len(fixes), chunk):
            t = time.perf_counter()
            on_fix = store.on_fix
            for f in fixes[k:k + chunk]:
                on_fix(f, True)
            store.flush()
            rates.append(len(fixes[k:k + chunk]) / (time.perf_counter() - t))
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"store ingest: {len(fixes):,} fixes in {total:.2f} s = {len(fixes) / total:,.0f} fixes/s "
          f"(chunks of {chunk:,}: min {min(rates):,.0f}, median {statistics.median(rates):,.0f}, "
          f"max {max(rates):,.0f} fixes/s)")
    print(f"  CPU time (both threads): {cpu:.2f} s = {len(fixes) / cpu:,.0f} fixes per CPU-second; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  size on disk: {os.path.getsize(path) / len(fixes):.0f} bytes/fix")


def bench_raw(path: Path, fixes: list[Fix], rtree: bool, batch: int = 20000) -> float:
    from localdb.writer import BNG
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE fixes (fix_id INTEGER PRIMARY KEY, device, seq, t, rx, lat, lon,"
                 " acc, src, spd, hdg, sats, batt, x, y, used)")
    conn.execute("CREATE INDEX fixes_device_t ON fixes(device, t)")
    if rtree:
        conn.execute("CREATE VIRTUAL TABLE fixes_rt USING rtree(id, x0, x1, y0, y1, t0, t1)")
    bng = BNG()
    start = time.perf_counter()
    nid = 1
    for k in range(0, len(fixes), batch):
        b = fixes[k:k + batch]
        x, y = bng.project([f.lon for f in b], [f.lat for f in b])
        rows = [(nid + j, f.device, f.seq, f.t, f.rx, f.lat, f.lon, f.acc, f.src, f.spd, f.hdg,
                 f.sats, f.batt, float(x[j]), float(y[j]), 1) for j, f in enumerate(b)]
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO fixes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        if rtree:
            conn.executemany("INSERT INTO fixes_rt VALUES (?,?,?,?,?,?,?)",
                             [(r[0], r[13], r[13], r[14], r[14], r[3] - T0, r[3] - T0) for r in rows])
        conn.execute("COMMIT")
        nid += len(b)
    rate = len(fixes) / (time.perf_counter() - start)
    conn.close()
    return rate


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fixes", type=int, default=1_000_000)
    p.add_argument("--chunk", type=int, default=100_000)
    p.add_argument("--compare-rtree", action="store_true")
    args = p.parse_args()
    print(f"generating {args.fixes:,} fixes (100 tags) ...", flush=True)
    fixes = make_fixes(args.fixes)
    # the engine does not keep millions of fixes alive: keep the pre-made ones out of the
    # garbage collector's way so that they do not slow the measurement down
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory() as d:
        bench_store(Path(d) / "ingest.sqlite", fixes, args.chunk)
        if args.compare_rtree:
            for rtree in (False, True):
                rate = bench_raw(Path(d) / f"raw{int(rtree)}.sqlite", fixes, rtree)
                print(f"raw sqlite, (device, t) index{' + R*Tree (x, y, t)' if rtree else ''}: "
                      f"{rate:,.0f} fixes/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
