"""Crime-mapping query speed over a large store: 500 m and 2 hours over 10 million fixes
(100 tags, one fix a minute, 70 days), the figure the issue asks for.

The data set is generated straight into a store file with a fast bulk path (plain sqlite3,
rows in arrival order, i.e. interleaved by time as a live feed writes them); the schema, the
offenders and their tag assignments come from the real ``Store``. Each tag wanders around its
home inside London (a folded random walk), with about 1 % of fixes missing. Then ``--queries``
crime checks (``monitorapp.crime.query.crime_check`` on the store, including the audit record
each query writes) at places near a random tag at a random time.

    .venv/bin/python benchmarks/bench_crime_query.py --db /tmp/crime10m.sqlite
    .venv/bin/python benchmarks/bench_crime_query.py --db /tmp/crime50m.sqlite --days 350
"""
from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pyproj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localdb.store import Store  # noqa: E402
from monitorapp.crime.query import crime_check  # noqa: E402

T0 = 1_767_225_600.0          # 2026-01-01T00:00:00Z
_INSERT = ("INSERT INTO fixes (device, seq, t, rx, lat, lon, acc, src, spd, hdg, sats, batt,"
           " x, y, used) VALUES (?,?,?,?,?,?,?,?,NULL,NULL,NULL,NULL,?,?,1)")


def _fold(v: np.ndarray, half: float) -> np.ndarray:
    """Keep a random walk within ±half of its start by folding it back at the edges."""
    return np.abs(np.mod(v + half, 4 * half) - 2 * half) - half


def generate(path: Path, tags: int, days: int, seed: int = 7) -> None:
    doc = {"version": 1, "tz": "Europe/London",
           "zones": {"type": "FeatureCollection", "features": []},
           "offenders": [{"id": f"OFF-{i:04d}", "name": f"Subject {i}", "risk": "medium",
                          "borough": "Camden", "device": f"TAG-{i:05d}", "fix_interval_s": 60,
                          "requirements": []} for i in range(tags)]}
    with Store(path, clock=lambda: T0 - 86400) as store:
        store.record_caseload(doc)
    rng = np.random.default_rng(seed)
    to_wgs = pyproj.Transformer.from_crs(27700, 4326, always_xy=True)
    minutes = days * 1440
    homes = np.column_stack([rng.uniform(520_000, 545_000, tags), rng.uniform(170_000, 195_000, tags)])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")
    seq = np.zeros(tags, dtype=np.int64)
    walk = np.zeros((tags, 2))
    start = time.perf_counter()
    total = 0
    for day in range(days):
        steps = rng.normal(0, 25.0, (tags, 1440, 2))
        pos = walk[:, None, :] + np.cumsum(steps, axis=1)
        walk = pos[:, -1, :]
        x = homes[:, 0:1] + _fold(pos[:, :, 0], 3000.0)
        y = homes[:, 1:2] + _fold(pos[:, :, 1], 3000.0)
        lon, lat = to_wgs.transform(x, y)
        t = T0 + day * 86400.0 + np.arange(1440)[None, :] * 60.0 + rng.uniform(0, 5, (tags, 1))
        acc = rng.uniform(4, 30, (tags, 1440))
        keep = rng.random((tags, 1440)) > 0.01
        rows = []
        for m in range(1440):           # arrival order: minute by minute across the tags
            for k in range(tags):
                if keep[k, m]:
                    seq[k] += 1
                    tt = float(t[k, m])
                    rows.append((f"TAG-{k:05d}", int(seq[k]), tt, tt + 2.0, float(lat[k, m]),
                                 float(lon[k, m]), float(acc[k, m]), "gps", float(x[k, m]),
                                 float(y[k, m])))
        conn.execute("BEGIN")
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")
        total += len(rows)
        if day % 10 == 9 or day == days - 1:
            print(f"  day {day + 1}/{days}: {total:,} fixes, "
                  f"{total / (time.perf_counter() - start):,.0f} fixes/s", flush=True)
    conn.execute("INSERT OR REPLACE INTO tags SELECT device, min(t), max(t) FROM fixes GROUP BY device")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def run_queries(path: Path, n: int, radius: float, window_s: float, seed: int = 11) -> None:
    rng = np.random.default_rng(seed)
    to_wgs = pyproj.Transformer.from_crs(27700, 4326, always_xy=True)
    with Store(path) as store:
        conn = store.reader()
        t_lo, t_hi = conn.execute("SELECT min(t), max(t) FROM fixes").fetchone()
        total = conn.execute("SELECT count(*) FROM fixes").fetchone()[0]
        times, cpus, verdicts = [], [], {}
        for q in range(n + 3):
            tag = f"TAG-{int(rng.integers(0, 100)):05d}"
            at = float(rng.uniform(t_lo + window_s, t_hi - window_s))
            row = conn.execute("SELECT x, y FROM fixes WHERE device=? AND t >= ? ORDER BY t LIMIT 1",
                               (tag, at)).fetchone()
            x, y = row[0] + rng.normal(0, 300), row[1] + rng.normal(0, 300)
            lon, lat = to_wgs.transform(x, y)
            start, cpu = time.perf_counter(), time.process_time()
            out = crime_check(store, lat, lon, radius, at - window_s / 2, at + window_s / 2,
                              f"BENCH-{q}", "benchmark", "bench")
            elapsed = time.perf_counter() - start
            if q >= 3:                       # the first few warm the caches
                times.append(elapsed)
                cpus.append(time.process_time() - cpu)
                for r in out["results"]:
                    verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    times.sort()
    p50 = statistics.median(times)
    p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
    size = sum(os.path.getsize(f"{path}{s}") for s in ("", "-wal") if os.path.exists(f"{path}{s}"))
    print(f"crime query {radius:.0f} m / {window_s / 3600:.1f} h over {total:,} fixes, {n} queries: "
          f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
    cpus.sort()
    print(f"  CPU time per query (all threads): p50 {statistics.median(cpus) * 1000:.1f} ms, "
          f"p95 {cpus[min(len(cpus) - 1, int(round(0.95 * (len(cpus) - 1))))] * 1000:.1f} ms; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"  size on disk: {size / 1e9:.2f} GB ({size / total:.0f} bytes/fix); verdicts seen: {verdicts}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="/tmp/bench_crime.sqlite", help="store file (kept for re-runs)")
    p.add_argument("--days", type=int, default=70)
    p.add_argument("--tags", type=int, default=100)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--radius-m", type=float, default=500.0)
    p.add_argument("--window-h", type=float, default=2.0)
    p.add_argument("--regenerate", action="store_true", help="build the data set again")
    args = p.parse_args()
    path = Path(args.db)
    if args.regenerate or not path.exists():
        for s in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{s}"):
                os.remove(f"{path}{s}")
        print(f"generating {args.tags} tags x {args.days} days x 1440 fixes into {path} ...", flush=True)
        t = time.perf_counter()
        generate(path, args.tags, args.days)
        print(f"  generated in {time.perf_counter() - t:.0f} s", flush=True)
    run_queries(path, args.queries, args.radius_m, args.window_h * 3600.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
