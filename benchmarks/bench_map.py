"""Benchmark of the operator console map (the real QtWebEngine page, offscreen).

5,000 tags, each sending one fix every 10 s (random phase, a slow random walk, about 1 % of
tags in alert at any time, some going stale). Fixes are handed to ``MapView.update_markers``
as they fall due (every 50 ms); the view's QTimer throttle coalesces them into batches. For
each batch the page measures, with ``performance.now()``, the time to apply it and paint the
canvas, and reports it over the bridge (``jsTiming``). Also printed: start to first map paint,
the first 5,000-marker batch, event-loop lateness, and resident memory (Python process and
the QtWebEngine helper processes).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_map.py [--seconds 30] [--tags 5000]
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_map.py --screenshot docs/map.png
    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_map.py --pan [--seconds 12]

``--pan``: frame time while panning across Camden at street zoom (16) over the shipped vector
basemap: the mouse drags the map (real mouse events on the page's widget, 8 px every 16 ms, west
to east and back) while the page records the interval between animation frames
(``requestAnimationFrame``); printed with p50/p95/max (target p95 <= 50 ms), the tiles served and
the size of the shipped basemap.
"""
from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import pathlib  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
if "--no-sandbox" not in flags and os.geteuid() == 0:
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --no-sandbox").strip()
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ui.map.view import MapView  # noqa: E402  (before QApplication: registers the URL schemes)
from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

PRIORITIES = ["critical", "high", "medium", "low"]


def rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                for child in fh.read().split():
                    out.append(int(child))
                    out.extend(descendants(int(child)))
    except OSError:
        pass
    return out


def memory_mib() -> tuple[float, float]:
    own = rss_kib(os.getpid())
    helpers = sum(rss_kib(p) for p in descendants(os.getpid()))
    return own / 1024, helpers / 1024


def wait(app: QApplication, predicate, timeout_s: float) -> bool:
    """Run the event loop until ``predicate()`` holds (benchmark only; never in the app)."""
    loop = QEventLoop()
    deadline = time.perf_counter() + timeout_s
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: loop.quit() if predicate() or time.perf_counter() > deadline else None)
    timer.start()
    if not predicate():
        loop.exec()
    timer.stop()
    return predicate()


def js_value(app: QApplication, view: MapView, script: str):
    box: list = []
    view.run_js_for_test(script, box.append)
    wait(app, lambda: bool(box), 10)
    return box[0] if box else None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


class Fleet:
    """Simulated tags around North/East London: position, phase, alert and stale state."""

    def __init__(self, n: int, seed: int = 7):
        self.rng = random.Random(seed)
        self.tags = []
        for i in range(n):
            self.tags.append({
                "device": f"TAG-{i:05d}", "lat": 51.51 + self.rng.random() * 0.16,
                "lon": -0.20 + self.rng.random() * 0.26, "acc": 5 + self.rng.random() * 20,
                "label": f"Offender {i:05d}", "priority": None, "stale": False,
                "phase": self.rng.random() * 10.0,
            })

    def due(self, t0: float, t1: float) -> list[dict]:
        """Fixes of every tag whose 10 s slot falls in (t0, t1]."""
        out = []
        rng = self.rng
        for tag in self.tags:
            if (t1 - tag["phase"]) // 10 <= (t0 - tag["phase"]) // 10:
                continue
            tag["lat"] += rng.gauss(0, 0.0004)
            tag["lon"] += rng.gauss(0, 0.0006)
            tag["acc"] = 5 + rng.random() * 20
            roll = rng.random()
            if roll < 0.002:
                tag["priority"] = rng.choice(PRIORITIES)
            elif roll < 0.004:
                tag["priority"] = None
            tag["stale"] = rng.random() < 0.01
            tag["t"] = t1
            out.append({k: v for k, v in tag.items() if k != "phase"})
        return out


def benchmark(args) -> int:
    app = QApplication(sys.argv[:1])
    view = MapView(throttle_ms=args.throttle_ms)
    view.resize(1280, 800)
    view.show()
    if not wait(app, lambda: view.is_ready, 60):
        print("map page did not become ready", file=sys.stderr)
        return 1
    t_ready = time.perf_counter() - T_START
    js_value(app, view, "requestAnimationFrame(() => { window.__painted = performance.now(); }); true")
    wait(app, lambda: js_value(app, view, "window.__painted || 0") != 0, 10)
    t_paint = time.perf_counter() - T_START

    timings: list[float] = []
    view.jsTiming.connect(timings.append)
    fleet = Fleet(args.tags)
    initial = fleet.due(-10.0, 0.0)
    view.update_markers(initial)
    view.flush_markers()
    wait(app, lambda: len(timings) >= 1, 60)
    first_batch = timings[0]
    timings.clear()

    # Live: fixes fall due every 50 ms of wall time; the throttle makes the batches.
    lateness: list[float] = []
    clock = QElapsedTimer()
    clock.start()
    state = {"sim": 0.0, "last_tick": 0, "sent": 0}

    def feed():
        now = clock.elapsed() / 1000.0
        fixes = fleet.due(state["sim"], now)
        state["sim"] = now
        state["sent"] += len(fixes)
        if fixes:
            view.update_markers(fixes)

    def probe():
        now = clock.elapsed()
        if state["last_tick"]:
            lateness.append(max(0.0, now - state["last_tick"] - 10))
        state["last_tick"] = now

    feeder, prober = QTimer(), QTimer()
    feeder.setInterval(50)
    feeder.timeout.connect(feed)
    prober.setInterval(10)
    prober.timeout.connect(probe)
    feeder.start()
    prober.start()
    wait(app, lambda: clock.elapsed() >= args.seconds * 1000, args.seconds + 30)
    feeder.stop()
    prober.stop()
    view.flush_markers()
    wait(app, lambda: False, 0.5)       # let the last batch report its timing
    state_js = js_value(app, view, "JSON.stringify(EM.state())")
    own, helpers = memory_mib()

    batches = len(timings)
    print(f"map benchmark: {args.tags} tags, one fix per 10 s each, {args.seconds:.0f} s, "
          f"throttle {args.throttle_ms} ms")
    print(f"  start to map ready (page loaded, bridge handshake): {t_ready:.2f} s")
    print(f"  start to first map paint:                          {t_paint:.2f} s")
    print(f"  first batch of {len(initial)} markers (JS apply + paint): {first_batch:.1f} ms")
    print(f"  live: {state['sent']} fixes in {batches} batches "
          f"(~{state['sent'] / max(batches, 1):.0f} markers per batch)")
    if timings:
        print(f"  JS time per batch: min {min(timings):.1f} ms, p50 {statistics.median(timings):.1f} ms, "
              f"p95 {pct(timings, 0.95):.1f} ms, max {max(timings):.1f} ms")
    if lateness:
        print(f"  event-loop lateness (10 ms timer): p50 {statistics.median(lateness):.1f} ms, "
              f"p99 {pct(lateness, 0.99):.1f} ms, max {max(lateness):.1f} ms")
    print(f"  resident memory: Python/Qt process {own:.0f} MiB, QtWebEngine processes {helpers:.0f} MiB, "
          f"total {own + helpers:.0f} MiB")
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  page state: {state_js[:120]}")
    view.shutdown()
    return 0


def screenshot(args) -> int:
    """The map over the shipped vector basemap of Camden at zoom 15 (street names, the borough
    boundaries): zones (the victim's street coloured by its open critical alert), markers (one
    critical, one medium), a selected tag and its trail. The scene was drawn around Hackney at
    zoom 14; ``at`` moves it to Camden Town at half the scale."""
    old_c, new_c = (51.5535, -0.0850), (51.5405, -0.1440)

    def at(lat: float, lon: float) -> tuple[float, float]:
        return new_c[0] + (lat - old_c[0]) * 0.5, new_c[1] + (lon - old_c[1]) * 0.5

    def ring(points):
        return [[at(lat, lon)[1], at(lat, lon)[0]] for lon, lat in points]

    app = QApplication(sys.argv[:1])
    view = MapView(theme=args.theme, zoom=15, centre=new_c)
    view.resize(1280, 800)
    view.show()
    if not wait(app, lambda: view.is_ready, 60):
        print("map page did not become ready", file=sys.stderr)
        return 1
    view.set_zones([
        {"type": "Feature", "id": "Z-EX-1", "properties": {"kind": "exclusion", "name": "Victim's street, NW1"},
         "geometry": {"type": "Polygon", "coordinates": [ring([[-0.1045, 51.5505], [-0.0935, 51.5520],
                      [-0.0915, 51.5455], [-0.1030, 51.5440], [-0.1045, 51.5505]])]}},
        {"type": "Feature", "id": "Z-HOME-1", "properties": {"kind": "curfew", "name": "Home address",
                                                             "radius_m": 90},
         "geometry": {"type": "Point", "coordinates": list(reversed(at(51.5600, -0.0575)))}},
        {"type": "Feature", "id": "Z-APPT-1", "properties": {"kind": "appointment", "name": "Probation office",
                                                             "radius_m": 60},
         "geometry": {"type": "Point", "coordinates": list(reversed(at(51.5640, -0.1230)))}},
    ])
    view.set_zone_alarms({"Z-EX-1": "critical"})
    rng = random.Random(3)
    markers = []
    for i in range(60):
        lat, lon = at(51.537 + rng.random() * 0.034, -0.135 + rng.random() * 0.10)
        markers.append({"device": f"TAG-{i:03d}", "lat": lat, "lon": lon, "acc": 10, "label": f"Offender {i:03d}",
                        "priority": None, "stale": i % 17 == 5})
    places = view.places

    def where(lat, lon):
        return f" · {places.address(lon, lat)}" if places is not None else ""
    crit, med, sel = at(51.5482, -0.0985), at(51.5665, -0.0640), at(51.5598, -0.0598)
    markers[7].update(lat=crit[0], lon=crit[1], priority="critical", label="D. Hollis" + where(*crit))
    markers[12].update(lat=med[0], lon=med[1], priority="medium", label="K. Amadi" + where(*med))
    markers[3].update(lat=sel[0], lon=sel[1], acc=28, label="J. Doe", t=time.time() - 140)
    view.update_markers(markers)
    view.flush_markers()
    now = time.time()
    trail, lat, lon = [], 51.5470, -0.0800
    for k in range(40):
        t = now - 140 - (39 - k) * 60 - (0 if k > 25 else 420) - (0 if k > 12 else 900)
        lat += 0.0003
        lon += 0.0005
        p_lat, p_lon = at(lat, lon)
        trail.append({"lat": p_lat, "lon": p_lon, "t": t, "acc": 12})
    trail.append({"lat": sel[0], "lon": sel[1], "t": now - 140, "acc": 28})
    view.select_device("TAG-003", trail, now=now)
    wait(app, lambda: (js_value(app, view, "EM.batches") or 0) >= 1, 10)
    loaded = ("(function () { const c = document.querySelectorAll('.em-vector canvas');"
              " return c.length === 0 || Array.from(c).every(t => t.classList.contains('leaflet-tile-loaded')); })()")
    wait(app, lambda: js_value(app, view, loaded) is True, 30)
    wait(app, lambda: False, 0.8)       # the labeller repaints a tile once its neighbours are in
    js_value(app, view, "requestAnimationFrame(() => requestAnimationFrame(() => { window.__shot = 1; })); true")
    wait(app, lambda: js_value(app, view, "window.__shot || 0") == 1, 10)
    wait(app, lambda: False, 0.5)       # let the compositor deliver the last frame
    out = pathlib.Path(args.screenshot)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not view.grab().save(str(out)):
        print(f"could not write {out}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    view.shutdown()
    return 0


def pan(args) -> int:
    """Frame time while dragging the map across Camden at zoom 16 on the vector basemap."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from monitorapp.places import SHIPPED_BASEMAP
    app = QApplication(sys.argv[:1])
    view = MapView(theme=args.theme, zoom=16, centre=(51.5450, -0.1750),      # Belsize Park
                   basemap=None if args.pan_basemap == "vector" else "fallback")
    view.resize(1280, 800)
    view.show()
    if not wait(app, lambda: view.is_ready, 60) or view.basemap.kind != args.pan_basemap:
        print(f"map page not ready or no vector basemap ({view.basemap.kind})", file=sys.stderr)
        return 1
    loaded = ("(function () { const c = document.querySelectorAll('.em-vector canvas');"
              " return c.length > 0 && Array.from(c).every(t => t.classList.contains('leaflet-tile-loaded')); })()")
    if args.pan_basemap == "vector":
        wait(app, lambda: js_value(app, view, loaded) is True, 30)
    view.update_markers([{"device": f"TAG-{i:04d}", "lat": 51.53 + (i % 40) * 0.001, "lon": -0.20 + (i // 40) * 0.002,
                          "acc": 10, "label": f"Offender {i}", "priority": "critical" if i == 7 else None}
                         for i in range(args.pan_tags)])
    view.flush_markers()
    js_value(app, view, """(function () { window.__frames = []; window.__rec = true;
        let last = performance.now();
        function f(t) { window.__frames.push(t - last); last = t; if (window.__rec) requestAnimationFrame(f); }
        requestAnimationFrame(f); return true; })()""")
    target = view.view.focusProxy() or view.view
    centre = QPointF(640, 400)
    state = {"x": 640.0, "dir": -1, "steps": 0, "pressed": False}

    def send(kind, pos, buttons):
        button = Qt.MouseButton.LeftButton if kind != QMouseEvent.Type.MouseMove else Qt.MouseButton.NoButton
        ev = QMouseEvent(kind, pos, target.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(target, ev)

    def step():
        if not state["pressed"]:
            send(QMouseEvent.Type.MouseButtonPress, centre, Qt.MouseButton.LeftButton)
            state.update(pressed=True, x=640.0)
            return
        state["x"] += 8 * state["dir"]
        send(QMouseEvent.Type.MouseMove, QPointF(state["x"], 400), Qt.MouseButton.LeftButton)
        state["steps"] += 1
        if abs(state["x"] - 640) >= 560:          # the end of one drag: release, turn at the edge
            send(QMouseEvent.Type.MouseButtonRelease, QPointF(state["x"], 400), Qt.MouseButton.NoButton)
            state["pressed"] = False
            lng = (js_value(app, view, "EM.map.getCenter().lng") or 0)
            if (state["dir"] < 0 and lng > -0.125) or (state["dir"] > 0 and lng < -0.195):
                state["dir"] *= -1                 # dragging left moves the map east
    timer = QTimer()
    timer.setInterval(16)
    timer.timeout.connect(step)
    served0 = view.tiles.served + view.tiles.empty
    clock = QElapsedTimer()
    clock.start()
    timer.start()
    wait(app, lambda: clock.elapsed() >= args.seconds * 1000, args.seconds + 30)
    timer.stop()
    if state["pressed"]:
        send(QMouseEvent.Type.MouseButtonRelease, QPointF(state["x"], 400), Qt.MouseButton.NoButton)
    frames = js_value(app, view, "(window.__rec = false, JSON.stringify(window.__frames))")
    import json
    frames = json.loads(frames or "[]")[5:]
    centre_now = js_value(app, view, "JSON.stringify(EM.map.getCenter())")
    size = SHIPPED_BASEMAP.stat().st_size
    print(f"pan benchmark: {args.pan_basemap} basemap, zoom 16, Camden, {args.seconds:.0f} s of mouse drags "
          f"({state['steps']} moves of 8 px), {args.pan_tags} tags on the map, theme {args.theme}")
    if frames:
        print(f"  frame time: {len(frames)} frames, p50 {statistics.median(frames):.1f} ms, "
              f"p95 {pct(frames, 0.95):.1f} ms, max {max(frames):.1f} ms (target p95 <= 50 ms)")
    print(f"  tiles served while panning: {view.tiles.served + view.tiles.empty - served0}; map centre at the end {centre_now}")
    print(f"  shipped basemap {SHIPPED_BASEMAP.name}: {size / 1e6:.2f} MB")
    print(f"  load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    errors = view.js_errors
    if errors:
        print(f"  page errors: {errors[:3]}")
    view.shutdown()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tags", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--throttle-ms", type=int, default=250)
    parser.add_argument("--screenshot", metavar="PNG", help="write a screenshot instead of benchmarking")
    parser.add_argument("--theme", choices=["light", "dark"], default="light")
    parser.add_argument("--pan", action="store_true", help="frame time while panning across Camden (vector basemap)")
    parser.add_argument("--pan-tags", type=int, default=2000, help="tags on the map while panning (default 2000)")
    parser.add_argument("--pan-basemap", choices=["vector", "fallback"], default="vector",
                        help="the basemap under the pan (fallback: the grid, for comparison)")
    args = parser.parse_args()
    if args.pan:
        return pan(args)
    return screenshot(args) if args.screenshot else benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
