"""Benchmark: the centre live (issue 15) — one decider, consoles that are its clients.

Everything real, on this machine: a Mosquitto with exactly the configuration ``monitorapp
broker-config`` writes (``tests.fixtures_mqtt.LockedBroker``), a PostgreSQL 15 + PostGIS cluster
of its own (defaults, fsync on) holding the centre's record, ``monitorapp monitor`` as the one
decider on it, three consoles (``main.py --db postgresql://… --broker …``, offscreen, each
signed in as its own operator with its own login, with the map), and publisher processes (the
gateway identity) sending every tag's fix every ``--interval`` s in real time; ``--breachers``
tags walk into their exclusion zone at staggered times.

Printed (and as one JSON line at the end):

* decider → screen latency, per console and over all: from the ``published_at`` the decider
  stamps on each alert and position it publishes to the moment that console's queue had applied
  it (alerts) or its map's page had drawn it on the canvas (positions: the page reports each batch
  back over the bridge) (the console's ``centre_latency`` lines, every 10 s: exact p50/p95/p99/max per
  interval and a histogram, added up here; the overall percentiles are the histogram's upper
  bucket bounds). Target p99 ≤ 1 s.
* each console's CPU (% of one core) and memory (RSS, the largest seen) over the publishing
  window: the console's Python process and, with them, its QtWebEngine helper processes (the
  map's renderer); the decider's too.

    .venv/bin/python benchmarks/bench_centre.py [--tags 20000] [--seconds 60] [--interval 4]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_mqtt import make_caseload, publisher  # noqa: E402
from tests.fixtures_mqtt import LockedBroker  # noqa: E402
from tests.fixtures_pg import start_cluster, stop_cluster  # noqa: E402
from ui.console.centrestate import Freshness  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


class Proc:
    """A child process whose stdout JSON lines are kept (``lines``)."""

    def __init__(self, name: str, args: list[str], env: dict, log: pathlib.Path, stdout_json: bool = True):
        self.name = name
        self.err = open(log, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.err, env=env, cwd=ROOT,
                                     start_new_session=True)
        self.lines: list[dict] = []
        self.jsonl = open(log.with_suffix(".jsonl"), "wb")     # its structured lines, kept with --keep
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            self.jsonl.write(raw)
            try:
                self.lines.append(json.loads(raw))
            except ValueError:
                pass

    def wait_line(self, pred, timeout: float, what: str) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            for d in list(self.lines):
                if pred(d):
                    return d
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited ({self.proc.returncode}) waiting for {what}")
            time.sleep(0.2)
        raise SystemExit(f"{self.name}: timed out waiting for {what}")

    def stop(self, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._t.join(5)
        self.err.close()
        self.jsonl.close()


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the console's QtWebEngine processes)."""
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_rss(pid: int) -> tuple[float, int, float, int]:
    """(CPU seconds, RSS bytes) of ``pid`` with its descendants, then of ``pid`` alone."""
    cpu, rss, own = 0.0, 0, (0.0, 0)
    for p in tree(pid):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        c, r = (int(f[11]) + int(f[12])) / TICK, int(f[21]) * os.sysconf("SC_PAGE_SIZE")
        cpu, rss = cpu + c, rss + r
        if p == pid:
            own = (c, r)
    return cpu, rss, own[0], own[1]


def merged(lines: list[dict], kind: str, since: float) -> dict:
    """The centre_latency lines of one console after ``since``: counts, the histogram's
    percentiles (upper bucket bounds) and the worst interval's exact p99 and max."""
    edges = list(Freshness.EDGES_MS) + [float("inf")]
    hist = [0] * len(edges)
    worst99 = worst = None
    for d in lines:
        if d.get("event") != "centre_latency" or d.get("t", 0) < since:
            continue
        k = d.get(kind) or {}
        for i, c in enumerate(k.get("hist") or []):
            hist[i] += c
        if k.get("n"):
            worst99 = max(worst99 or 0, k["p99"])
            worst = max(worst or 0, k["max"])
    n = sum(hist)

    def pct(q):
        if not n:
            return None
        need, acc = q * n, 0
        for e, c in zip(edges, hist):
            acc += c
            if acc >= need:
                return e / 1000.0
        return None
    return {"n": n, "p50_le": pct(0.5), "p95_le": pct(0.95), "p99_le": pct(0.99),
            "worst_interval_p99": worst99, "max": worst, "hist": hist}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tags", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=4.0)
    ap.add_argument("--breachers", type=int, default=40)
    ap.add_argument("--consoles", type=int, default=3)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--settle", type=float, default=0.0,
                    help="seconds between the consoles being ready and the feed starting")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # stopped: everything started goes
    import psycopg
    from centraldb import accounts
    from centraldb.schema import migrate
    load_at_start = os.getloadavg()[0]
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-centre-"))
    cluster, pg_root = start_cluster()
    broker = LockedBroker(work / "broker").start()
    procs: list[Proc] = []
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE em")
        dsn = cluster.dsn("em")
        with psycopg.connect(dsn) as conn:
            migrate(conn)
            for j in range(args.consoles):
                accounts.create(conn, f"op{j + 1}", "operator", f"bench-pass-{j + 1}-x9")
        caseload = work / "caseload.json"
        caseload.write_text(json.dumps(make_caseload(args.tags, args.interval)))
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        mon = Proc("monitor", [sys.executable, "-m", "monitorapp", "monitor", "--broker", broker.url_for("monitor"),
                               "--caseload", str(caseload), "--db", dsn, "--instance", "bench-decider",
                               "--stats-interval", "5"], env, work / "monitor.log")
        procs.append(mon)
        t_load = time.time()
        while b"feed_subscribed" not in (work / "monitor.log").read_bytes():
            if mon.proc.poll() is not None or time.time() - t_load > 600:
                raise SystemExit("the monitor did not subscribe: " + (work / "monitor.log").read_text()[-2000:])
            time.sleep(0.5)
        print(f"decider ready in {time.time() - t_load:.1f} s ({args.tags} tags)", flush=True)
        consoles = []
        for j in range(args.consoles):
            home = work / f"console{j + 1}"
            for sub in ("config", "data", "cache", "runtime"):
                (home / sub).mkdir(parents=True)
            (home / "runtime").chmod(0o700)
            pw = home / "pw"
            pw.write_text(f"bench-pass-{j + 1}-x9\n")
            pw.chmod(0o600)
            cenv = dict(env, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
                        XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
                        XDG_RUNTIME_DIR=str(home / "runtime"), QT_QPA_PLATFORM="offscreen")
            consoles.append(Proc(f"console{j + 1}", [
                sys.executable, "main.py", "--db", dsn, "--broker", broker.url,
                "--broker-username", "console", "--broker-password-file", str(broker.password_file("console")),
                "--user", f"op{j + 1}", "--password-file", str(pw), "--caseload", str(caseload)],
                cenv, work / f"console{j + 1}.log"))
        procs += consoles
        for c in consoles:
            c.wait_line(lambda d: d.get("event") == "centre_loaded", 300, "the centre's picture")
            c.wait_line(lambda d: d.get("event") == "map_ready", 300, "the map")
        print(f"{len(consoles)} consoles ready in {time.time() - t_load:.1f} s", flush=True)
        rnd = random.Random(1)
        breachers = {rnd.randrange(args.tags): 5 + j * (args.seconds - 15) / max(1, args.breachers)
                     for j in range(args.breachers)}
        time.sleep(args.settle)          # the consoles finish starting (the basemap drawn)
        t_start = time.time() + 1.0
        before = {p.name: cpu_rss(p.proc.pid) for p in procs}
        rss_max = {p.name: [0, 0] for p in procs}
        pubs = []
        for j in range(args.publishers):
            out = work / f"published-{j}.json"
            pp = mp.get_context("spawn").Process(target=publisher, args=(
                broker.url_for("gateway"), args.tags, args.interval, args.seconds, breachers, str(out),
                t_start, j, args.publishers))
            pp.start()
            pubs.append((pp, out))
        while any(pp.is_alive() for pp, _ in pubs):
            for p in procs:
                m = cpu_rss(p.proc.pid)
                rss_max[p.name] = [max(rss_max[p.name][0], m[1]), max(rss_max[p.name][1], m[3])]
            time.sleep(2.0)
        t_end = time.time()
        after = {p.name: cpu_rss(p.proc.pid) for p in procs}
        published = sum(json.loads(out.read_text())["count"] for _, out in pubs)
        time.sleep(12)              # the consoles' last centre_latency lines (every 10 s)
        result = {"tags": args.tags, "interval_s": args.interval, "seconds": args.seconds,
                  "published": published, "load_at_start": load_at_start,
                  "load_at_end": os.getloadavg()[0], "consoles": {}, "decider": {}}
        for p in procs:
            span = t_end - t_start
            entry = {"cpu_pct": round((after[p.name][0] - before[p.name][0]) / span * 100, 1),
                     "rss_mb_max": round(rss_max[p.name][0] / 2**20, 1),
                     "main_cpu_pct": round((after[p.name][2] - before[p.name][2]) / span * 100, 1),
                     "main_rss_mb_max": round(rss_max[p.name][1] / 2**20, 1)}
            if p is mon:
                result["decider"] = entry
                continue
            for kind in ("alert", "position", "map_batch"):
                entry[kind] = merged(p.lines, kind, t_start)
            result["consoles"][p.name] = entry
        all_pos = [c["position"] for c in result["consoles"].values()]
        print(f"published {published} fixes in {t_end - t_start:.0f} s "
              f"({published / (t_end - t_start):.0f}/s); decider CPU {result['decider']['cpu_pct']} %, "
              f"RSS {result['decider']['rss_mb_max']} MB")
        for name, c in result["consoles"].items():
            a, ps = c["alert"], c["position"]
            print(f"{name}: positions n={ps['n']} p50 ≤ {ps['p50_le']} s, p95 ≤ {ps['p95_le']} s, "
                  f"p99 ≤ {ps['p99_le']} s (worst 10-s p99 {ps['worst_interval_p99']} s, max {ps['max']} s); "
                  f"alerts n={a['n']} p99 ≤ {a['p99_le']} s (max {a['max']} s); "
                  f"map batches n={c['map_batch']['n']} p50 ≤ {c['map_batch']['p50_le']} s, "
                  f"p99 ≤ {c['map_batch']['p99_le']} s (max {c['map_batch']['max']} s); "
                  f"CPU {c['cpu_pct']} % of a core, RSS {c['rss_mb_max']} MB (the Python process alone: "
                  f"{c['main_cpu_pct']} %, {c['main_rss_mb_max']} MB; the rest is QtWebEngine's)")
        if all_pos:
            total = merged([{"event": "centre_latency", "t": t_start, "position": {"hist": x["hist"]}}
                            for x in all_pos], "position", t_start)
            result["positions_all"] = {k: total[k] for k in ("n", "p50_le", "p95_le", "p99_le")}
            print(f"all consoles, positions: p50 ≤ {total['p50_le']} s, p95 ≤ {total['p95_le']} s, "
                  f"p99 ≤ {total['p99_le']} s (target p99 ≤ 1 s)")
        print(json.dumps(result))
    finally:
        for p in reversed(procs):
            p.stop()
        broker.stop()
        stop_cluster(cluster, pg_root)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
