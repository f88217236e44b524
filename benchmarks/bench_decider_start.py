"""Benchmark: the decider's first start on a national caseload (issue 15).

A PostgreSQL 15 + PostGIS cluster of its own (defaults, fsync on), a Mosquitto with the
configuration ``monitorapp broker-config`` writes, and ``monitorapp monitor --db postgresql://…``
started on a fresh record with ``--offenders`` offenders, each with its own exclusion zone (the
caseload of ``bench_mqtt.make_caseload``). Nothing is checkpointed yet, so the decider records
the caseload, then reads every zone version back from the record and applies it, checkpoints,
and subscribes to the feed: until then nothing is monitored.

Printed: the seconds from the process's launch to its ``feed_subscribed`` line (ready), and
the phases from its log's timestamps: to ``monitor_starting`` (caseload loaded and recorded,
engine built), the zone versions read and applied (to the last ``zone_version_applied``), the
first checkpoint, the subscription; and the load average. With ``--restart`` the monitor is
then stopped (SIGTERM: it checkpoints) and started again, timed the same way: a restart, or a
standby taking over, restores the engine from that checkpoint, which holds every zone the
first start applied. One JSON line at the end.

    .venv/bin/python benchmarks/bench_decider_start.py [--offenders 20000] [--restart]
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_mqtt import make_caseload  # noqa: E402
from tests.fixtures_mqtt import LockedBroker  # noqa: E402
from tests.fixtures_pg import start_cluster, stop_cluster  # noqa: E402


def _ts(line: dict) -> float:
    return datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).timestamp()


def read_log(path: pathlib.Path) -> list[dict]:
    out = []
    for raw in path.read_bytes().splitlines():
        try:
            out.append(json.loads(raw))
        except ValueError:
            pass
    return out


def phases(lines: list[dict], launched: float) -> dict:
    """Seconds from the launch to the first line of each event (the last for zone versions)."""
    first: dict[str, float] = {}
    last_applied = None
    applied = 0
    for d in lines:
        ev = d.get("event")
        if ev == "zone_version_applied":
            applied += 1
            last_applied = _ts(d)
        if ev in ("monitor_starting", "zone_version_applied", "checkpoint", "feed_subscribed") \
                and ev not in first:
            first[ev] = _ts(d)
    out = {k: round(v - launched, 2) for k, v in first.items()}
    if last_applied is not None:
        out["zone_version_applied_last"] = round(last_applied - launched, 2)
    out["zone_versions_applied"] = applied
    return out


def launch(argv: list[str], env: dict, log_path: pathlib.Path, timeout: float):
    """Start the monitor; return it and (seconds to its ``feed_subscribed`` line, launch time)."""
    with open(log_path, "wb") as err:
        launched = time.time()
        mon = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT,
                               start_new_session=True)
    while b'"feed_subscribed"' not in log_path.read_bytes():
        if mon.poll() is not None:
            raise SystemExit(f"the monitor exited ({mon.returncode}): " + log_path.read_text()[-2000:])
        if time.time() - launched > timeout:
            stop(mon)
            raise SystemExit(f"the monitor was not ready after {timeout:.0f} s")
        time.sleep(0.2)
    return mon, (time.time() - launched, launched)


def stop(mon: subprocess.Popen) -> None:
    """SIGTERM (the monitor checkpoints and exits), SIGKILL after two minutes."""
    if mon.poll() is None:
        mon.send_signal(signal.SIGTERM)
        try:
            mon.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(mon.pid, signal.SIGKILL)
            mon.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--offenders", type=int, default=20_000)
    ap.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    ap.add_argument("--restart", action="store_true",
                    help="then stop it (SIGTERM) and time its start again from the checkpoint")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # stopped: everything started goes
    import psycopg
    from centraldb.schema import migrate
    load_at_start = open("/proc/loadavg").read().split()[:3]
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-decider-start-"))
    cluster, pg_root = start_cluster()
    broker = LockedBroker(work / "broker").start()
    mon = None
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE em")
        dsn = cluster.dsn("em")
        with psycopg.connect(dsn) as conn:
            migrate(conn)
        caseload = work / "caseload.json"
        caseload.write_text(json.dumps(make_caseload(args.offenders, 60.0)))
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        argv = [sys.executable, "-m", "monitorapp", "monitor", "--broker", broker.url_for("monitor"),
                "--caseload", str(caseload), "--db", dsn, "--instance", "bench-decider",
                "--stats-interval", "60"]
        result = {"offenders": args.offenders, "loadavg_start": load_at_start}
        for start in ("first", "restart")[:2 if args.restart else 1]:
            log_path = work / f"monitor-{start}.log"
            mon, ready = launch(argv, env, log_path, args.timeout)
            load_at_ready = open("/proc/loadavg").read().split()[:3]
            got = phases(read_log(log_path), ready[1])
            what = ("first start (no checkpoint)" if start == "first"
                    else "restart from the first start's checkpoint (a standby's takeover)")
            print(f"{what}: decider ready (feed subscribed) {ready[0]:.1f} s after launch, "
                  f"{args.offenders} offenders with a zone each; load average {' '.join(load_at_ready)} "
                  f"when ready", flush=True)
            print(f"  monitor_starting (caseload loaded{' and recorded' if start == 'first' else ''}, "
                  f"engine built{' and restored' if start == 'restart' else ''}) at "
                  f"{got.get('monitor_starting')} s; {got['zone_versions_applied']} zone versions applied"
                  f" from {got.get('zone_version_applied')} s to {got.get('zone_version_applied_last')} s; "
                  f"first checkpoint at {got.get('checkpoint')} s", flush=True)
            result[start] = {"ready_s": round(ready[0], 2), "phases_s": got, "loadavg_ready": load_at_ready}
            stop(mon)
            mon = None
        print(f"load average at start {' '.join(load_at_start)}")
        print(json.dumps(result))
    finally:
        if mon is not None:
            stop(mon)
        broker.stop()
        stop_cluster(cluster, pg_root)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
