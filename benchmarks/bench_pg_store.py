"""The PostgreSQL record (centraldb) against the SQLite store, on a throw-away PostgreSQL 15 +
PostGIS cluster of the benchmark's own, with the server's default durability (fsync on,
synchronous_commit on; unlike the test cluster):

1. sustained ingest through the real path (``PgStore.on_fix`` → the writer thread → COPY into
   the monthly partition, GiST + (device, t) + BRIN indexes), each chunk ending with a
   ``flush()`` (a durable commit, as a checkpoint would), side by side with SQLite's
   ``Store`` on the same fixes (``bench_store_ingest.make_fixes``);
2. size on disk per million fixes (heap + indexes of the partitions);
3. crime query 500 m / 2 h over ``--crime-fixes`` (100 tags, one fix a minute, loaded with
   COPY): the whole path of a query (``monitorapp.crime.query.crime_check`` on the record: the
   window's slice from ``centraldb.crime``, the prism verdicts, the audit record), p50/p95,
   and the GiST area read alone;
4. the time to drop a month (``purge_fixes``: detach and drop one monthly partition).

    .venv/bin/python benchmarks/bench_pg_store.py [--fixes 1000000] [--crime-fixes 10000000]
    .venv/bin/python benchmarks/bench_pg_store.py --fixes 0 --crime-fixes 100000000 --keep --dir D
    .venv/bin/python benchmarks/bench_pg_store.py --crime-dsn DSN    # again, on the kept data
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyproj

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_store_ingest import bench_store, make_fixes  # noqa: E402
from centraldb.crime import devices_near  # noqa: E402
from centraldb.store import PgStore  # noqa: E402
from monitorapp.crime.query import crime_check  # noqa: E402
from tests.fixtures_pg import start_cluster, stop_cluster  # noqa: E402

T0 = 1_767_225_600.0          # 2026-01-01T00:00:00Z


def _pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]


def _fix_bytes(conn) -> int:
    return conn.execute("SELECT coalesce(sum(pg_total_relation_size(name::regclass)), 0)"
                        " FROM fix_partitions").fetchone()[0].__int__()


def bench_ingest(dsn: str, fixes, chunk: int) -> None:
    rates = []
    with PgStore(dsn) as store:
        start, cpu = time.perf_counter(), time.process_time()
        for k in range(0, len(fixes), chunk):
            t = time.perf_counter()
            on_fix = store.on_fix
            for f in fixes[k:k + chunk]:
                on_fix(f, True)
            store.flush()
            rates.append(len(fixes[k:k + chunk]) / (time.perf_counter() - t))
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
        size = _fix_bytes(store.reader())
    print(f"postgresql ingest: {len(fixes):,} fixes in {total:.2f} s = {len(fixes) / total:,.0f} "
          f"fixes/s (chunks of {chunk:,}: min {min(rates):,.0f}, median "
          f"{statistics.median(rates):,.0f}, max {max(rates):,.0f} fixes/s)")
    print(f"  client CPU time (both threads): {cpu:.2f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (the server shares them)")
    print(f"  size on disk: {size / len(fixes):.0f} bytes/fix = {size / len(fixes):.0f} "
          f"MB per million fixes (heap + GiST + (device, t) + BRIN)")


def _fold(v, half):
    return np.abs(np.mod(v + half, 4 * half) - 2 * half) - half


def load_crime_data(dsn: str, n_fixes: int, tags: int = 100, seed: int = 7) -> int:
    """100 tags wandering around their homes in London, a fix a minute, ~1 % missing, loaded
    with COPY in arrival order (as bench_crime_query.py builds its SQLite store)."""
    days = max(1, int(np.ceil(n_fixes / (tags * 1440 * 0.99))))
    doc = {"version": 1, "tz": "Europe/London",
           "zones": {"type": "FeatureCollection", "features": []},
           "offenders": [{"id": f"OFF-{i:04d}", "name": f"Subject {i}", "risk": "medium",
                          "borough": "Camden", "device": f"TAG-{i:05d}", "fix_interval_s": 60,
                          "requirements": []} for i in range(tags)]}
    import psycopg
    with PgStore(dsn, clock=lambda: T0 - 86400) as store:
        store.record_caseload(doc)
    rng = np.random.default_rng(seed)
    to_wgs = pyproj.Transformer.from_crs(27700, 4326, always_xy=True)
    homes = np.column_stack([rng.uniform(520_000, 545_000, tags), rng.uniform(170_000, 195_000, tags)])
    seq = np.zeros(tags, dtype=np.int64)
    walk = np.zeros((tags, 2))
    start, total = time.perf_counter(), 0
    names = [f"TAG-{k:05d}" for k in range(tags)]
    with psycopg.connect(dsn) as conn:
        conn.execute("SET synchronous_commit = off")
        for day in range(days):
            conn.execute("SELECT ensure_fix_partition(%s)", (T0 + day * 86400.0,))
            steps = rng.normal(0, 25.0, (tags, 1440, 2))
            pos = walk[:, None, :] + np.cumsum(steps, axis=1)
            walk = pos[:, -1, :]
            x = homes[:, 0:1] + _fold(pos[:, :, 0], 3000.0)
            y = homes[:, 1:2] + _fold(pos[:, :, 1], 3000.0)
            lon, lat = to_wgs.transform(x, y)
            t = T0 + day * 86400.0 + np.arange(1440)[None, :] * 60.0 + rng.uniform(0, 5, (tags, 1))
            acc = rng.uniform(4, 30, (tags, 1440))
            keep = rng.random((tags, 1440)) > 0.01
            with conn.cursor() as cur, cur.copy(
                    "COPY fixes (device, seq, t, rx, lat, lon, acc, src, x, y, used) FROM STDIN") as cp:
                for m in range(1440):
                    for k in np.flatnonzero(keep[:, m]):
                        seq[k] += 1
                        tt = float(t[k, m])
                        cp.write_row((names[k], int(seq[k]), tt, tt + 2.0, float(lat[k, m]),
                                      float(lon[k, m]), float(acc[k, m]), "gps", float(x[k, m]),
                                      float(y[k, m]), True))
            total += int(keep.sum())
            conn.commit()
            if total >= n_fixes:
                break
            if day % 10 == 9:
                print(f"  day {day + 1}: {total:,} fixes, "
                      f"{total / (time.perf_counter() - start):,.0f} fixes/s", flush=True)
        conn.execute("INSERT INTO tags SELECT device, min(t), max(t) FROM fixes GROUP BY device"
                     " ON CONFLICT (device) DO UPDATE SET first_seen=excluded.first_seen,"
                     " last_seen=excluded.last_seen")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE fixes")
    print(f"  loaded {total:,} fixes in {time.perf_counter() - start:.0f} s", flush=True)
    return total


def drop_record_cache(conn) -> bool:
    """Drop the record's database files from the kernel's page cache (``posix_fadvise``
    DONTNEED on each file of the database, after a sync; it needs read access to the server's
    data directory: root, or the server's user), so that the next reads of the record come
    from the disk, except what the server's own shared buffers hold. Only the record's files:
    the benchmark's own code and libraries stay cached, as they would in a running client."""
    try:
        data = conn.execute("SHOW data_directory").fetchone()[0]
        oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()[0]
        os.sync()
        base = Path(data) / "base" / str(oid)
        for f in base.iterdir():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        return True
    except Exception:          # noqa: BLE001 - not allowed here (a login, a path): said by the caller
        return False


def bench_crime(dsn: str, n: int, radius: float, window_s: float, seed: int = 11,
                cold: bool = False) -> None:
    """``n`` crime queries through the whole path a user's query takes (``crime_check`` on the
    record: the window's slice, the prism verdicts, the audit record), at random places near a
    random tag's position at a random time in the data. ``cold``: the record's files dropped from the
    page cache before each query (not timed, ``drop_record_cache``)."""
    rng = np.random.default_rng(seed)
    to_wgs = pyproj.Transformer.from_crs(27700, 4326, always_xy=True)
    with PgStore(dsn) as store:
        conn = store.reader()
        t_lo, t_hi = conn.execute("SELECT min(first_seen), max(last_seen) FROM tags").fetchone()
        total = conn.execute("SELECT count(*) FROM fixes").fetchone()[0]
        times, near_times, verdicts = [], [], {}
        for q in range(n + 3):
            tag = f"TAG-{int(rng.integers(0, 100)):05d}"
            at = float(rng.uniform(t_lo + window_s, t_hi - window_s))
            row = conn.execute("SELECT x, y FROM fixes WHERE device=%s AND t >= %s ORDER BY t"
                               " LIMIT 1", (tag, at)).fetchone()
            cx, cy = row[0] + rng.normal(0, 300), row[1] + rng.normal(0, 300)
            lon, lat = to_wgs.transform(cx, cy)
            tf, tt = at - window_s / 2, at + window_s / 2
            if cold and not drop_record_cache(conn):
                raise SystemExit("--cold needs a superuser DSN and read access to the server's "
                                 "data directory (root, or the server's user)")
            start = time.perf_counter()
            out = crime_check(store, lat, lon, radius, tf, tt, f"BENCH-{q}", "benchmark", "bench")
            elapsed = time.perf_counter() - start
            t1 = time.perf_counter()
            devices_near(conn, cx, cy, radius + max(radius, 250.0), tf, tt)
            if q >= 3:
                times.append(elapsed)
                near_times.append(time.perf_counter() - t1)
                for r in out["results"]:
                    verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
        size = _fix_bytes(conn)
    print(f"postgresql crime query {radius:.0f} m / {window_s / 3600:.1f} h over {total:,} fixes, "
          f"{n} queries: p50 {statistics.median(times) * 1000:.1f} ms, p95 "
          f"{_pct(times, 0.95) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
          f"(crime_check: slice + prism verdicts + audit"
          f"{'; the record dropped from the page cache before each' if cold else ''})")
    print(f"  GiST area read alone (devices within reach): p50 "
          f"{statistics.median(near_times) * 1000:.1f} ms, p95 {_pct(near_times, 0.95) * 1000:.1f} ms;"
          f" verdicts seen: {verdicts}; load average {os.getloadavg()[0]:.1f}")
    print(f"  size on disk: {size / 1e9:.2f} GB = {size / total:.0f} bytes/fix")


def bench_drop_month(dsn: str) -> None:
    import psycopg
    with psycopg.connect(dsn) as conn:
        parts = conn.execute("SELECT name, t_from, t_to FROM fix_partitions").fetchall()
        name, _, t_to = parts[0]
        n = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    with PgStore(dsn) as store:
        start = time.perf_counter()
        dropped = store.purge_fixes("bench", now=t_to + 86400.0, retention_days=1)
        elapsed = time.perf_counter() - start
    print(f"drop a month: {name} ({n:,} fixes) detached and dropped in {elapsed * 1000:.0f} ms "
          f"(purge_fixes returned {dropped:,})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fixes", type=int, default=1_000_000, help="fixes for the ingest run")
    p.add_argument("--chunk", type=int, default=100_000)
    p.add_argument("--crime-fixes", type=int, default=10_000_000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--skip-sqlite", action="store_true")
    p.add_argument("--dir", default=None, help="where the throw-away cluster goes (default: /tmp)")
    p.add_argument("--crime-dsn", default=None, metavar="DSN",
                   help="measure the crime query (only) on a database loaded before by this "
                        "script's loader (--keep), instead of loading one: 100 M fixes take "
                        "about 45 minutes to load here")
    p.add_argument("--seed", type=int, default=11,
                   help="the queries' places and times (a new seed: places and months the "
                        "server's cache has not seen)")
    p.add_argument("--cold", action="store_true",
                   help="drop the record's files from the kernel's page cache before each query "
                        "(root): each query reads its pages from the disk but for the server's "
                        "shared buffers")
    p.add_argument("--keep", action="store_true",
                   help="leave the cluster running after the run and print its crime database's "
                        "DSN (for --crime-dsn; stop it with pg_ctl -D DIR/data stop)")
    args = p.parse_args()
    if args.crime_dsn:
        bench_crime(args.crime_dsn, args.queries, 500.0, 7200.0, seed=args.seed, cold=args.cold)
        return 0
    cluster, root = start_cluster(Path(args.dir) if args.dir else None,
                                  settings={"shared_buffers": "'1GB'", "max_wal_size": "'4GB'",
                                            "checkpoint_timeout": "'15min'"})
    import psycopg
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE ingest")
            conn.execute("CREATE DATABASE crime")
        if args.fixes:
            print(f"generating {args.fixes:,} fixes (100 tags) ...", flush=True)
            fixes = make_fixes(args.fixes)
            gc.collect()
            gc.freeze()
            bench_ingest(cluster.dsn("ingest"), fixes, args.chunk)
            if not args.skip_sqlite:
                with tempfile.TemporaryDirectory() as d:
                    print("sqlite (same fixes, same path):", end=" ")
                    bench_store(Path(d) / "ingest.sqlite", fixes, args.chunk)
            del fixes
            gc.unfreeze()
            gc.collect()
        if args.crime_fixes:
            print(f"loading {args.crime_fixes:,} fixes for the crime query ...", flush=True)
            load_crime_data(cluster.dsn("crime"), args.crime_fixes)
            bench_crime(cluster.dsn("crime"), args.queries, 500.0, 7200.0)
            if args.keep:
                print(f"kept: --crime-dsn '{cluster.dsn('crime')}' (cluster in {root})")
            else:
                bench_drop_month(cluster.dsn("crime"))
    finally:
        if not args.keep:
            stop_cluster(cluster, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
