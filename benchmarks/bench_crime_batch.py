"""Batch crime correlation speed (issue 19): a force's day, 500 incidents over 24 hours, checked
against every track of 10,000 tags in a SQLite store of about 10 million fixes
(``monitorapp.crime.batch.run_batch``, the same call ``monitorapp crimecheck --incidents``
makes, including its one audit record).

The store is built once (kept for re-runs, never in the repository): 10,000 offenders and their
tags from the real ``Store``, then the fixes in arrival order through plain sqlite3 (as a live
feed interleaves them): two days, one fix every 168 s per tag (10.2 M fixes), each tag
wandering around its home in London (a folded random walk), about 1 % of fixes missing and
one tag in fifty silent for two hours each day (a shielded tag). The incidents are on the
second day: windows of 1 to 6 hours, radii of 50 to 500 m, half of them placed near where a
random tag was at the time (so there are hits), half anywhere in the area.

    .venv/bin/python benchmarks/bench_crime_batch.py --db /var/tmp/crime10k.sqlite
    .venv/bin/python benchmarks/bench_crime_batch.py --db /var/tmp/crime10k.sqlite --pg-only

``--pg`` runs the same batch on the PostgreSQL record too (the store carried into a throw-away
cluster with ``monitorapp migrate-store``'s code).
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np
import pyproj

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from localdb.store import Store  # noqa: E402

T0 = 1_767_225_600.0          # 2026-01-01T00:00:00Z
WORKERS = None
DAY = 86400.0
_INSERT = ("INSERT INTO fixes (device, seq, t, rx, lat, lon, acc, src, spd, hdg, sats, batt,"
           " x, y, used) VALUES (?,?,?,?,?,?,?,'gps',NULL,NULL,NULL,NULL,?,?,1)")


def _fold(v: np.ndarray, half: float) -> np.ndarray:
    """Keep a random walk within ±half of its start by folding it back at the edges."""
    return np.abs(np.mod(v + half, 4 * half) - 2 * half) - half


def _caseload(tags: int) -> dict:
    return {"version": 1, "tz": "Europe/London",
            "zones": {"type": "FeatureCollection", "features": []},
            "offenders": [{"id": f"OFF-{i:05d}", "name": f"Subject {i}", "risk": "medium",
                           "borough": "Camden", "device": f"TAG-{i:05d}", "fix_interval_s": 168,
                           "requirements": []} for i in range(tags)]}


def generate(path: Path, tags: int, days: int, step: float, seed: int = 19) -> int:
    with Store(path, clock=lambda: T0 - DAY) as store:
        store.record_caseload(_caseload(tags))
    rng = np.random.default_rng(seed)
    to_wgs = pyproj.Transformer.from_crs(27700, 4326, always_xy=True)
    per_day = int(DAY // step)
    homes = np.column_stack([rng.uniform(520_000, 545_000, tags), rng.uniform(170_000, 195_000, tags)])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1048576")
    seq = np.zeros(tags, dtype=np.int64)
    walk = np.zeros((tags, 2))
    devices = [f"TAG-{k:05d}" for k in range(tags)]
    shielded = rng.random(tags) < 0.02
    total, start = 0, time.perf_counter()
    for day in range(days):
        steps = rng.normal(0, 40.0, (tags, per_day, 2))
        pos = walk[:, None, :] + np.cumsum(steps, axis=1)
        walk = pos[:, -1, :]
        x = homes[:, 0:1] + _fold(pos[:, :, 0], 3000.0)
        y = homes[:, 1:2] + _fold(pos[:, :, 1], 3000.0)
        lon, lat = to_wgs.transform(x, y)
        t = T0 + day * DAY + np.arange(per_day)[None, :] * step + rng.uniform(0, step, (tags, 1))
        acc = rng.uniform(4, 40, (tags, per_day))
        keep = rng.random((tags, per_day)) > 0.01
        gap0 = rng.integers(0, per_day, tags)
        cols = np.arange(per_day)[None, :]
        keep &= ~(shielded[:, None] & (cols >= gap0[:, None]) & (cols < gap0[:, None] + 7200 / step))
        for m in range(per_day):                 # arrival order: step by step across the tags
            ks = np.flatnonzero(keep[:, m])
            seq[ks] += 1
            tt = t[ks, m]
            conn.execute("BEGIN")
            conn.executemany(_INSERT, zip([devices[k] for k in ks], seq[ks].tolist(), tt.tolist(),
                                          (tt + 2.0).tolist(), lat[ks, m].tolist(), lon[ks, m].tolist(),
                                          acc[ks, m].tolist(), x[ks, m].tolist(), y[ks, m].tolist()))
            conn.execute("COMMIT")
            total += len(ks)
        print(f"  day {day + 1}/{days}: {total:,} fixes, "
              f"{total / (time.perf_counter() - start):,.0f} fixes/s", flush=True)
    conn.execute("INSERT OR REPLACE INTO tags SELECT device, min(t), max(t) FROM fixes GROUP BY device")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return total


def make_incidents(path: Path, out: Path, n: int, day: int, seed: int = 23) -> None:
    """``n`` incidents on day ``day`` as the CSV a force sends (reference, lat, lon, radius_m,
    from, to); half of them near where a random tag was at the time."""
    from monitorapp.feed.timeutil import fmt_time
    rng = np.random.default_rng(seed)
    to_wgs = pyproj.Transformer.from_crs(27700, 4326, always_xy=True)
    conn = sqlite3.connect(path)
    tags = conn.execute("SELECT count(*) FROM tags").fetchone()[0]
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["reference", "lat", "lon", "radius_m", "from", "to"])
        for k in range(n):
            length = float(rng.uniform(1, 6)) * 3600.0
            t0 = T0 + day * DAY + float(rng.uniform(0, DAY - length))
            if k % 2 == 0:
                dev = f"TAG-{int(rng.integers(0, tags)):05d}"
                row = conn.execute("SELECT x, y FROM fixes WHERE device=? AND t >= ? ORDER BY t"
                                   " LIMIT 1", (dev, t0 + length / 2)).fetchone()
                x, y = row[0] + rng.normal(0, 200), row[1] + rng.normal(0, 200)
            else:
                x, y = rng.uniform(517_000, 548_000), rng.uniform(167_000, 198_000)
            lon, lat = to_wgs.transform(x, y)
            w.writerow([f"INC-{k:04d}", f"{lat:.6f}", f"{lon:.6f}", int(rng.choice([50, 100, 200, 300, 500])),
                        fmt_time(t0), fmt_time(t0 + length)])
    conn.close()


def _run(store, incidents, label: str) -> dict:
    from monitorapp.crime.batch import run_batch
    from monitorapp.crime.batchwork import default_workers
    workers = default_workers() if WORKERS is None else WORKERS    # as monitorapp crimecheck does
    cpu, start = time.process_time(), time.perf_counter()
    report = run_batch(store, incidents, "benchmark: a force's day", "bench", workers=workers)
    wall = time.perf_counter() - start
    verdicts: dict[str, int] = {}
    for h in report["hits"]:
        verdicts[h["verdict"]] = verdicts.get(h["verdict"], 0) + 1
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"{label}: {len(incidents)} incidents in {wall:.1f} s wall ({workers} workers), "
          f"{time.process_time() - cpu:.1f} s CPU here + {children.ru_utime + children.ru_stime:.1f} s in the workers;"
          f" {report['query']['hits']} hits {verdicts}; load average {os.getloadavg()[0]:.1f}"
          f" on {os.cpu_count()} CPUs", flush=True)
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="/tmp/bench_crime_batch.sqlite", help="store file (kept for re-runs; 1.6 GB)")
    p.add_argument("--tags", type=int, default=10_000)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--step", type=float, default=168.0, help="seconds between a tag's fixes")
    p.add_argument("--incidents", type=int, default=500)
    p.add_argument("--regenerate", action="store_true", help="build the data set again")
    p.add_argument("--workers", type=int, default=None, help="processes deciding the incidents "
                   "(default: as monitorapp crimecheck, the CPUs up to 4)")
    p.add_argument("--pg", action="store_true", help="also on the PostgreSQL record (a throw-away "
                   "cluster; the store carried into it as monitorapp migrate-store does)")
    p.add_argument("--pg-only", action="store_true", help="only on the PostgreSQL record")
    p.add_argument("--pg-dir", default=None, help="where the throw-away cluster goes")
    args = p.parse_args()
    global WORKERS
    WORKERS = args.workers
    path = Path(args.db)
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.regenerate or not path.exists():
        for s in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{s}"):
                os.remove(f"{path}{s}")
        print(f"generating {args.tags} tags x {args.days} days, a fix every {args.step:.0f} s, into {path} ...",
              flush=True)
        t = time.perf_counter()
        n = generate(path, args.tags, args.days, args.step)
        print(f"  {n:,} fixes generated in {time.perf_counter() - t:.0f} s", flush=True)
    inc_path = path.with_suffix(".incidents.csv")
    make_incidents(path, inc_path, args.incidents, args.days - 1)
    from monitorapp.crime.batch import load_incidents
    incidents = load_incidents(inc_path)
    with Store(path) as store:
        total = store.reader().execute("SELECT count(*) FROM fixes").fetchone()[0]
        print(f"store: {total:,} fixes, {args.tags:,} tags; incidents: {inc_path}", flush=True)
        if not args.pg_only:
            _run(store, incidents, "SQLite")
    if args.pg or args.pg_only:
        _run_pg(path, incidents, Path(args.pg_dir) if args.pg_dir else None)
    return 0


def _run_pg(path: Path, incidents, root_dir) -> None:
    """The same batch on the PostgreSQL record: a throw-away cluster, the SQLite store carried
    into it with ``monitorapp migrate-store``'s own code, then ``run_batch`` on ``PgStore`` (the
    window's slice read through ``crime_tracks_of``)."""
    from centraldb.carry import carry
    from centraldb.store import PgStore
    from tests.fixtures_pg import start_cluster, stop_cluster
    cluster, root = start_cluster(root_dir, settings={"shared_buffers": "'1GB'",
                                                      "max_wal_size": "'4GB'"})
    try:
        import psycopg
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE batch")
        t = time.perf_counter()
        carry(str(path), cluster.dsn("batch"), anchor=str(Path(root) / "anchor.jsonl"))
        with psycopg.connect(cluster.dsn("batch"), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE fixes")
        print(f"  carried into PostgreSQL in {time.perf_counter() - t:.0f} s", flush=True)
        with PgStore(cluster.dsn("batch"), anchor=str(Path(root) / "anchor.jsonl")) as store:
            _run(store, incidents, "PostgreSQL")
    finally:
        stop_cluster(cluster, root)


if __name__ == "__main__":
    sys.exit(main())
