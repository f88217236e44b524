"""Console benchmark: event-loop stalls while the engine ingests 5,000 tags at one fix every
10 s (500 fixes/s), resident memory, and the time from starting ``main.py --demo`` to the
first map paint. (The map's JavaScript time per marker batch is measured by the map's own
benchmark; here it is reported only when the page reports batches back.)

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_ui.py [--tags 5000] [--seconds 30]

The load test runs the real main window, map page, engine thread and store (in a temporary
directory). A 5 ms QTimer on the GUI thread measures how late each tick fires: that lateness is
the event-loop stall an operator would feel. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import random
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if hasattr(os, "geteuid") and os.geteuid() == 0 and "--no-sandbox" not in os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", ""):
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "") + " --no-sandbox").strip()


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] if xs else math.nan


class SyntheticFeed:
    """Every tag sends one fix every ``interval`` s near its home, spread evenly; live clock."""

    def __init__(self, homes: dict[str, tuple[float, float]], interval: float = 10.0, seed: int = 1):
        self.homes = homes
        self.devices = sorted(homes)
        self.interval = interval
        self.rng = random.Random(seed)
        self.t0 = time.time()
        self.next_i = 0          # index of the next fix to send, over all tags and rounds
        self.seq: dict[str, int] = {d: 0 for d in self.devices}
        self.connected = True
        self.speed = 1.0

    def now(self) -> float:
        return time.time()

    def poll(self, max_items: int):
        from monitorapp.feed.timeutil import fmt_time
        n = len(self.devices)
        due = int((self.now() - self.t0) / self.interval * n)
        out = []
        while self.next_i < due and len(out) < max_items:
            i = self.next_i
            self.next_i += 1
            dev = self.devices[i % n]
            t = self.t0 + i * self.interval / n
            lon, lat = self.homes[dev]
            self.seq[dev] += 1
            msg = {"v": 1, "kind": "fix", "device": dev, "seq": self.seq[dev], "t": fmt_time(t),
                   "rx": fmt_time(t + 0.3), "lat": lat + self.rng.gauss(0, 0.00008),
                   "lon": lon + self.rng.gauss(0, 0.00012), "acc": 8.0, "src": "gps", "batt": 0.8}
            out.append((t + 0.3, json.dumps(msg).encode(), None))
        return out

    def ack(self, items):
        pass

    def stop(self):
        pass


def load_test(n_tags: int, seconds: float) -> dict:
    import ui.map.view  # noqa: F401
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from localdb.store import Store
    from monitorapp.engine.caseload import parse_caseload
    from monitorapp.sim.demo import demo_caseload
    from monitorapp.engine.engine import Engine
    from ui.console.alertqueue import AlarmSound, AlertQueueController
    from ui.console.engineworker import EngineWorker
    from ui.console.mainwindow import MainWindow
    from ui.map.view import MapView
    from ui.settings import Settings

    import gc
    gc.disable()                        # as ui.app.run does during start-up
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_ui_"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "cfg")
    os.environ["XDG_DATA_HOME"] = str(tmp / "data")
    app = QApplication.instance() or QApplication([])
    rss0 = rss_mb()
    doc = demo_caseload(n_offenders=n_tags, seed=1, start=time.time())
    for o in doc["offenders"]:
        o["fix_interval_s"] = 10
    caseload = parse_caseload(doc, "bench caseload")
    homes = {}
    for o in caseload.offenders.values():
        cur = next((r for r in o.requirements if r.type == "curfew"), None)
        z = caseload.zones[cur.zone] if cur else None
        c = z.geometry["coordinates"] if z and z.geometry["type"] == "Point" else (-0.1, 51.55)
        homes[o.device] = (c[0], c[1])
    feed = SyntheticFeed(homes)
    store = Store(tmp / "bench.sqlite", clock=feed.now)
    t_start0 = time.time()
    worker = EngineWorker(lambda: Engine(caseload, start=t_start0), feed, store=store)
    ctl = AlertQueueController(store, "bench", sound=AlarmSound(False))
    mv = MapView()
    js_ms: list[float] = []
    mv.jsTiming.connect(lambda ms: js_ms.append(ms))
    w = MainWindow(controller=ctl, worker=worker, caseload=caseload, store=store, settings=Settings(),
                   map_widget=mv, clock=feed.now, operator="bench")
    w.show()

    def spin_until(pred, timeout):
        t = time.time()
        while time.time() - t < timeout and not pred():
            loop = QEventLoop()
            QTimer.singleShot(50, loop.quit)
            loop.exec()

    spin_until(lambda: mv.is_ready, 60)
    from ui.app import settle_heap
    settle_heap()                       # as ui.app.run does after start-up
    feed.t0 = time.time()
    worker.start()
    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat():
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000 - 5.0)
        last[0] = now
    probe = QTimer()
    probe.setInterval(5)
    probe.timeout.connect(beat)
    spin_until(lambda: worker.engine is not None and feed.next_i >= n_tags, 60)   # one full round first
    engine = worker.engine
    gaps.clear()
    js_ms.clear()
    sent0, t_start = engine.counters.messages, time.time()
    last[0] = time.perf_counter()
    probe.start()
    spin_until(lambda: False, seconds)
    probe.stop()
    elapsed = time.time() - t_start
    result = {
        "tags": n_tags, "fix_interval_s": 10, "seconds": round(elapsed, 1),
        "ingested_per_s": round((engine.counters.messages - sent0) / elapsed, 1),
        "offered_per_s": round(n_tags / 10, 1),
        "backlog_at_end": max(0, int((time.time() - feed.t0) / 10 * n_tags) - feed.next_i),
        "stall_ms_p50": round(max(0.0, pct(gaps, 50)), 2), "stall_ms_p99": round(max(0.0, pct(gaps, 99)), 2),
        "stall_ms_max": round(max(gaps), 2) if gaps else None,
        "map_batches_reported": len(js_ms),
        "map_js_ms_p50": round(pct(js_ms, 50), 2) if js_ms else None,
        "markers": mv.marker_count, "rss_mb_start": round(rss0, 1), "rss_mb_end": round(rss_mb(), 1),
    }
    w.close()
    worker.stop()
    store.close()
    return result


def first_paint(runs: int = 3) -> dict:
    """Seconds from starting ``main.py --demo`` to its ``map_ready`` line (page loaded and
    handshaken, zones set), each run in a fresh user directory."""
    times = []
    for i in range(runs):
        home = pathlib.Path(tempfile.mkdtemp(prefix="bench_paint_"))
        env = dict(os.environ, XDG_CONFIG_HOME=str(home / "cfg"), XDG_DATA_HOME=str(home / "data"),
                   QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
        t0 = time.perf_counter()
        p = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--demo", "--quit-after", "20"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT)
        for line in p.stdout:
            if line.startswith("{") and json.loads(line)["event"] == "map_ready":
                times.append(time.perf_counter() - t0)
                break
        p.terminate()
        p.wait(20)
        p.stdout.close()
    return {"first_map_paint_s_runs": [round(t, 2) for t in times],
            "first_map_paint_s_median": round(statistics.median(times), 2) if times else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--skip-paint", action="store_true")
    args = ap.parse_args()
    out = {}
    if not args.skip_paint:
        out.update(first_paint())
    out.update(load_test(args.tags, args.seconds))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
