"""Soak: the console (offscreen, the real map page, engine thread and store) fed a simulated
week at full speed; the process's resident memory sampled every simulated hour.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_soak.py --tags 5000 --days 7

"Full speed": the feed's clock advances only as fast as the engine takes the messages (one
simulated minute of the simulator's feed at a time), and the engine takes them only as fast as
the store's writer commits them (the worker waits once the writer has 20,000 items queued), so
the console sees a week of real traffic (fixes, heartbeats, incidents, alerts, marker batches,
the queue's ticks) in as little wall time as this machine allows. The main window's clock is
the feed's. An operator (``SoakOperator``) acknowledges every alert and closes the cleared ones
once a simulated hour; ``--unattended`` leaves them all in the queue (which then grows by
design: an unacknowledged alert never leaves it).

One JSON line per simulated hour: ``rss_mb`` (this process), ``renderer_mb`` (the map page's
QtWebEngine processes), ``heap_mb``/``heap_free_mb`` (glibc malloc: in use / free inside its
arenas), ``sqlite_mb`` (SQLite's own heap: its page caches, 64 MB at most per connection),
``py_blocks``/``py_arenas_mb`` (Python's small objects: how many / the arenas they occupy),
``alerts`` (rows in the queue), ``engine_alerts``, ``writer_backlog``, ``msgs``, ``wall_s``,
and what the per-tag and per-alert structures hold (``seq_pairs``, ``history_fixes``,
``engine_timers``, ``queue_open``: see ``_structures``), to tell a window still filling from a
leak. The summary's ``queue`` counts the rows left in the queue by handling, condition and type.
Then a summary: the growth per simulated day after the first (the target is flat) and after
the second (once every 24-h window and the SQLite cache have filled, at 100 tags), the same for
the heap, SQLite and Python, the renderer's, and where resident memory grew between the end of
day 1 and the end (``mappings_growth_kb``, from /proc/self/smaps). ``--trace`` also prints the
top growing allocation sites (tracemalloc) and object types (``gc``) over that span; ``--trim``
calls malloc_trim before each sample (try it with MALLOC_ARENA_MAX=2 to tell fragmentation
from leaks). The store's file is deleted at the end (its size is in ``store_mb``).
"""
from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import json
import os
import pathlib
import shutil
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


class _Native:
    """glibc's and SQLite's own accounts of the heap, to tell a leak from a cache or from
    fragmentation: ``heap_mb`` is what malloc has handed out and not had back (mallinfo2's
    in-use arena bytes plus mmapped blocks), ``heap_free_mb`` what it holds free inside its
    arenas (fragmentation, or memory not yet returned), ``sqlite_mb`` SQLite's own heap (page
    caches, statements). ``trim()`` gives free arena memory back to the system (malloc_trim)."""

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks",
                                                     "keepcost")]

    def __init__(self):
        self.libc = self.sqlite = None
        try:
            self.libc = ctypes.CDLL("libc.so.6")
            self.libc.mallinfo2.restype = self._MallInfo2
            self.libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            self.libc = None
        try:
            import sqlite3  # noqa: F401  (loads the library this process uses)
            self.sqlite = ctypes.CDLL("libsqlite3.so.0")
            self.sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        except (OSError, AttributeError):
            self.sqlite = None

    def sample(self) -> dict:
        out = {}
        if self.libc is not None:
            mi = self.libc.mallinfo2()
            out["heap_mb"] = round((mi.uordblks + mi.hblkhd) / 2**20, 1)
            out["heap_free_mb"] = round(mi.fordblks / 2**20, 1)
        if self.sqlite is not None:
            out["sqlite_mb"] = round(self.sqlite.sqlite3_memory_used() / 2**20, 1)
        return out

    def trim(self) -> None:
        if self.libc is not None:
            self.libc.malloc_trim(0)


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


def soak(tags: int, days: float, trace: bool, seed: int = 1, trim: bool = False,
         unattended: bool = False) -> dict:
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
    snap_day1 = types_day1 = maps_day1 = None
    native = _Native()
    operator = None if unattended else SoakOperator(ctl)
    while feed.now() < end:
        spin(100)
        if not worker.running:
            raise SystemExit(f"engine thread stopped: {worker.died}")
        while feed.now() >= next_hour and next_hour <= end:
            hour = round((next_hour - start) / 3600)
            if operator is not None:
                operator.work()
            gc.collect()
            if trim:
                native.trim()
            s = {"hour": hour, "rss_mb": round(rss_mb(), 1), "renderer_mb": round(children_rss_mb(), 1),
                 **native.sample(), "py_objects": len(gc.get_objects()), "py_blocks": sys.getallocatedblocks(),
                 "py_arenas_mb": _py_arenas_mb(),
                 "msgs": worker.engine.counters.messages, "alerts": ctl.model.rowCount(),
                 "engine_alerts": len(worker.engine.alerts), "writer_backlog": store.writer.backlog,
                 "wall_s": round(time.perf_counter() - wall0, 1), **_structures(worker, ctl)}
            samples.append(s)
            print(json.dumps(s), flush=True)
            if hour == 24:
                maps_day1 = _mappings()
            if trace and hour == 24:
                import tracemalloc
                snap_day1 = tracemalloc.take_snapshot()
                types_day1 = _type_counts()
            next_hour += 3600
    result = {"tags": tags, "days": days, "plan_s": round(plan_s, 1),
              "wall_s": round(time.perf_counter() - wall0, 1),
              "messages": worker.engine.counters.messages, "alerts_in_queue": ctl.model.rowCount(),
              "markers": mv.marker_count, "operator": "unattended" if operator is None else
              {"acknowledged": operator.acked, "closed": operator.closed}}
    result["queue"] = _queue_breakdown(ctl, feed.now())
    result.update(_growth(samples, "rss_mb"))
    result.update({f"renderer_{k}": v for k, v in _growth(samples, "renderer_mb").items()})
    for key in ("heap_mb", "sqlite_mb", "py_arenas_mb", "py_objects"):
        if samples and key in samples[-1]:
            result[f"{key}_growth_per_day_after_day1"] = _growth(samples, key).get("growth_mb_per_day_after_day1")
    if days >= 3:        # after the fill-up: every 24-h window (history, caches) is full by day 2
        result["growth_mb_per_day_after_day2"] = _growth(samples, "rss_mb", 48).get("growth_mb_per_day_after_day1")
    if maps_day1 is not None:
        result["mappings_growth_kb"] = _mappings_growth(maps_day1, _mappings())
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
    result["store_mb"] = round(sum(f.stat().st_size for f in tmp.glob("soak.sqlite*")) / 2**20, 1)
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def _mappings() -> dict[tuple, int]:
    """This process's memory mappings: (start, size, what) -> resident kB, from /proc/self/smaps."""
    out: dict[tuple, int] = {}
    key = None
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                first = line.split(None, 1)[0]
                if "-" in first and not first.endswith(":"):
                    parts = line.split()
                    a, b = (int(x, 16) for x in first.split("-"))
                    key = (a, b - a, parts[5] if len(parts) > 5 else "")
                elif first == "Rss:" and key is not None:
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def _mappings_growth(before: dict, after: dict) -> list[str]:
    """Where resident memory grew between two ``_mappings``: per file, [heap] (glibc's main
    arena), and anonymous maps (glibc's thread arenas, Python's small-object arenas, Chromium's
    partitions, thread stacks)."""
    def label(k):
        path = k[2]
        return path.rsplit("/", 1)[-1] if path else "[anonymous]"
    total: collections.Counter = collections.Counter()
    for k, kb in after.items():
        total[label(k)] += kb
    for k, kb in before.items():
        total[label(k)] -= kb
    return [f"{name}: {kb / 1024:+.1f} MB" for name, kb in total.most_common(6) if abs(kb) > 256]


def _py_arenas_mb() -> float | None:
    """Python's small-object allocator: memory in its arenas (sys._debugmallocstats)."""
    import re
    try:
        with tempfile.TemporaryFile("w+") as f:
            saved = os.dup(2)
            try:
                sys.stderr.flush()
                os.dup2(f.fileno(), 2)
                sys._debugmallocstats()
                ctypes.CDLL(None).fflush(None)     # C's stderr may be buffered in this process
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            f.seek(0)
            text = f.read()
    except (OSError, AttributeError):
        return None
    m = re.search(r"(\d[\d,]*) arenas \* (\d+) bytes/arena", text)
    return round(int(m.group(1).replace(",", "")) * int(m.group(2)) / 2**20, 1) if m else None


class SoakOperator:
    """An operator who does the job: every simulated hour acknowledges what waits (action
    "other", a note) and closes what has cleared, so the queue lives as it does in a centre.
    ``--unattended`` leaves every alert in the queue instead (nobody acknowledges: the queue
    then grows by design, as an unacknowledged alert never leaves it)."""

    def __init__(self, ctl):
        self.ctl = ctl
        self.acked = self.closed = 0

    def work(self) -> None:
        for row in list(self.ctl.model.rows()):
            aid = row.alert.alert_id
            try:
                if row.handling.state == "unacknowledged":
                    self.ctl.acknowledge(aid, "other", "soak benchmark operator")
                    self.acked += 1
                if row.alert.state == "cleared" and self.ctl.model.row(aid).handling.state == "acknowledged":
                    self.ctl.close(aid, "soak benchmark operator")
                    self.closed += 1
            except Exception:      # noqa: BLE001 - refused (e.g. a row just changed): next hour
                continue


def _structures(worker, ctl) -> dict:
    """What the console's per-tag and per-alert structures hold, to tell a window filling up
    (it stops at its bound) from a leak: ``seq_pairs`` the (seq, t) pairs the engine's
    duplicate detection has allocated (forgotten head included), ``history_fixes`` the fixes
    the details-chart histories have allocated, ``engine_timers`` the engine's timer heap,
    ``queue_open`` the queue's rows not closed."""
    eng = worker.engine
    seen = list(getattr(eng.seqs, "_seen", {}).values())
    return {"seq_pairs": sum(len(e.seqs) for e in seen),
            "history_fixes": sum(h.allocated() for h in list(worker._history.values())),
            "engine_timers": len(eng._heap),
            "queue_open": sum(1 for r in ctl.model.rows() if r.handling.state != "closed")}


def _queue_breakdown(ctl, now: float) -> dict[str, int]:
    """The queue's rows at the end by handling, condition and type (the closed ones by how long
    ago they were closed), to see which alerts stay and why."""
    c: collections.Counter = collections.Counter()
    for r in ctl.model.rows():
        h, a = r.handling, r.alert
        key = f"{h.state}/{a.state}/{a.type}"
        if h.state == "closed" and h.closed_at is not None:
            key += " closed <6h" if now - h.closed_at < 6 * 3600 else " closed 6-12h+"
        c[key] += 1
    return dict(c.most_common())


def _type_counts() -> dict[str, int]:
    gc.collect()
    c: collections.Counter = collections.Counter(type(o).__name__ for o in gc.get_objects())
    return dict(c)


def _growth(samples: list[dict], key: str, from_hour: int = 24) -> dict:
    """Growth per simulated day after the first: a least-squares slope over hours 24.. ."""
    pts = [(s["hour"], s[key]) for s in samples if s["hour"] >= from_hour and s.get(key) is not None]
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
    ap.add_argument("--trim", action="store_true",
                    help="malloc_trim before each sample: RSS without the free memory glibc keeps")
    ap.add_argument("--unattended", action="store_true",
                    help="nobody acknowledges or closes an alert (the queue grows by design)")
    args = ap.parse_args()
    print(json.dumps(soak(args.tags, args.days, args.trace, trim=args.trim, unattended=args.unattended)),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
