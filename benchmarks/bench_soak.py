"""Soak: the console (offscreen, the real map page, engine thread and store) fed a simulated
week at full speed; the process's resident memory sampled every simulated hour.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_soak.py --tags 5000 --days 7

"Full speed": the feed's clock advances only as fast as the engine takes the messages (one
simulated minute of the simulator's feed at a time), so the console sees a week of real
traffic (fixes, heartbeats, incidents, alerts, marker batches, the queue's ticks) in as little
wall time as this machine allows. The main window's clock is the feed's. One JSON line per
simulated hour (``{"hour", "rss_mb", "renderer_mb", "msgs", "alerts", "wall_s"}``), then a
summary: the growth of the main process per simulated day after the first (the target is flat),
and of the map page's renderer process. ``--trace`` also prints the top growing allocation sites
(tracemalloc) and object types (``gc``) between the end of day 1 and the end of the run.
"""
from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if hasattr(os, "geteuid") and os.geteuid() == 0 and "--no-sandbox" not in os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", ""):
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "") + " --no-sandbox").strip()

START = "2026-11-23T00:00:00Z"        # a Monday, winter time


def rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_rss_mb() -> float:
    """The resident memory of this process's descendants (QtWebEngine's renderer and GPU)."""
    me, total = str(os.getpid()), 0.0
    parents = {me}
    procs = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = f.read().rsplit(")", 1)[1].split()[1]
                procs.append((p, ppid))
            except OSError:
                continue
    changed = True
    while changed:
        changed = False
        for p, pp in procs:
            if pp in parents and p not in parents:
                parents.add(p)
                changed = True
    for p in parents - {me}:
        total += rss_mb(p)
    return total


class FullSpeedFeed:
    """The live simulator's feed, one simulated ``step_s`` at a time, as fast as it is taken."""

    def __init__(self, simulator, start: float, step_s: float = 60.0):
        self.sim = simulator
        self.t = float(start)
        self.step_s = step_s
        self.connected = True
        self.speed = 0.0             # "full speed": not a multiple of real time
        self._pending: collections.deque = collections.deque()

    def now(self) -> float:
        return self.t

    def poll(self, max_items: int):
        while len(self._pending) < max_items and not self.sim.finished:
            self.t += self.step_s
            self._pending.extend(self.sim.step_until(self.t))
        if self.sim.finished and not self._pending:
            self.t += self.step_s            # the clock goes on after the feed's end
        n = min(max_items, len(self._pending))
        return [(*self._pending.popleft(), None) for _ in range(n)]

    def ack(self, items) -> None:
        pass

    def stop(self) -> None:
        pass


def soak(tags: int, days: float, trace: bool, seed: int = 1) -> dict:
    import ui.map.view  # noqa: F401  (QtWebEngine before the QApplication)
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from localdb.store import Store
    from monitorapp.engine.caseload import parse_caseload
    from monitorapp.engine.engine import Engine
    from monitorapp.feed.timeutil import parse_time
    from monitorapp.sim.demo import demo_caseload
    from monitorapp.sim.simulator import LiveSimulator
    from ui.app import settle_heap
    from ui.console.alertqueue import AlarmSound, AlertQueueController
    from ui.console.engineworker import EngineWorker
    from ui.console.mainwindow import MainWindow
    from ui.map.view import MapView
    from ui.settings import Settings

    gc.disable()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench_soak_"))
    os.environ["XDG_CONFIG_HOME"] = str(tmp / "cfg")
    os.environ["XDG_DATA_HOME"] = str(tmp / "data")
    app = QApplication.instance() or QApplication([])
    start = parse_time(START)
    t_plan = time.perf_counter()
    doc = demo_caseload(n_offenders=tags, seed=seed, start=start, hours=days * 24)
    caseload = parse_caseload(doc, "soak caseload")
    sim = LiveSimulator(doc, start, seed, hours=days * 24)
    plan_s = time.perf_counter() - t_plan
    feed = FullSpeedFeed(sim, start)
    store = Store(tmp / "soak.sqlite", clock=feed.now, mode="training")
    store.record_caseload(caseload, "soak")
    worker = EngineWorker(lambda: Engine(caseload, start=start), feed, store=store)
    ctl = AlertQueueController(store, "soak", sound=AlarmSound(False))
    mv = MapView()
    w = MainWindow(controller=ctl, worker=worker, caseload=caseload, store=store, settings=Settings(),
                   map_widget=mv, clock=feed.now, operator="soak", training=True)
    w.resize(1600, 1000)
    w.show()

    def spin(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    t = time.time()
    while not mv.is_ready and time.time() - t < 90:
        spin(50)
    settle_heap()
    if trace:
        import tracemalloc
        tracemalloc.start(8)
    worker.start()
    wall0 = time.perf_counter()
    samples: list[dict] = []
    next_hour = start + 3600
    end = start + days * 86400
    snap_day1 = types_day1 = None
    while feed.now() < end:
        spin(100)
        if not worker.running:
            raise SystemExit(f"engine thread stopped: {worker.died}")
        while feed.now() >= next_hour and next_hour <= end:
            hour = round((next_hour - start) / 3600)
            gc.collect()
            s = {"hour": hour, "rss_mb": round(rss_mb(), 1), "renderer_mb": round(children_rss_mb(), 1),
                 "msgs": worker.engine.counters.messages, "alerts": ctl.model.rowCount(),
                 "wall_s": round(time.perf_counter() - wall0, 1)}
            samples.append(s)
            print(json.dumps(s), flush=True)
            if trace and hour == 24:
                import tracemalloc
                snap_day1 = tracemalloc.take_snapshot()
                types_day1 = _type_counts()
            next_hour += 3600
    result = {"tags": tags, "days": days, "plan_s": round(plan_s, 1),
              "wall_s": round(time.perf_counter() - wall0, 1),
              "messages": worker.engine.counters.messages, "alerts_in_queue": ctl.model.rowCount(),
              "markers": mv.marker_count}
    result.update(_growth(samples, "rss_mb"))
    result.update({f"renderer_{k}": v for k, v in _growth(samples, "renderer_mb").items()})
    if trace and snap_day1 is not None:
        import tracemalloc
        top = tracemalloc.take_snapshot().compare_to(snap_day1, "lineno")[:15]
        result["tracemalloc_top"] = [str(s) for s in top]
        now_types = _type_counts()
        grow = sorted(((now_types.get(k, 0) - types_day1.get(k, 0), k) for k in now_types), reverse=True)[:15]
        result["gc_types_growth"] = [f"{k}: +{n}" for n, k in grow if n > 0]
    w.close()
    worker.stop()
    store.close()
    return result


def _type_counts() -> dict[str, int]:
    gc.collect()
    c: collections.Counter = collections.Counter(type(o).__name__ for o in gc.get_objects())
    return dict(c)


def _growth(samples: list[dict], key: str) -> dict:
    """Growth per simulated day after the first: a least-squares slope over hours 24.. ."""
    pts = [(s["hour"], s[key]) for s in samples if s["hour"] >= 24]
    out = {"day1_" + key: next((s[key] for s in samples if s["hour"] == 24), None),
           "end_" + key: samples[-1][key] if samples else None}
    if len(pts) >= 2:
        n = len(pts)
        mx = sum(h for h, _ in pts) / n
        my = sum(v for _, v in pts) / n
        sxx = sum((h - mx) ** 2 for h, _ in pts) or 1.0
        slope = sum((h - mx) * (v - my) for h, v in pts) / sxx
        out["growth_mb_per_day_after_day1"] = round(slope * 24, 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=5000)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--trace", action="store_true", help="tracemalloc and gc growth after day 1")
    args = ap.parse_args()
    print(json.dumps(soak(args.tags, args.days, args.trace)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
