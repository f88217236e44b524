"""The installation self-check (``--self-check``) and ``--version`` of the desktop application.

IT runs ``monitorapp --self-check`` after installing the bundle on a workstation (and
``make test`` runs it from source). It starts the application without showing a window and
checks, in order, printing one line per check::

    ok   runtime: monitorapp 0.1.0, Python 3.11.9, PySide6 6.12.0 / Qt 6.12.0, platform offscreen, compiled decoder, from source
    ok   resources: 7 web assets, alert sound, application icon under /opt/monitorapp/_internal/resources
    ok   map: page loaded and bridge ready (1.2 s)
    ok   store: scratch store opened (/tmp/monitorapp-selfcheck-x1y2/selfcheck.sqlite)
    ok   engine: 30 min of simulated feed for 12 tags: 605 messages, 420 fixes, alerts exclusion_entered, strap_tamper (0.3 s)
    ok   stored: 423 fixes, 2 alerts, 4 alert changes and 1 hash-chained acknowledgement read back
    ok   map markers: 12 tag positions drawn by the page (40 ms)
    self-check passed: 7 checks in 3.1 s

A failed check prints ``FAIL <check>: <what went wrong>``; checks that need it print
``skip <check>: ...``; the exit status is then 1 (2 for a bad option). Nothing touches the
operator's settings or stores: the scratch store lives in a temporary directory (under
``--scratch-dir`` or ``$MONITORAPP_SELFCHECK_DIR`` if given) that is removed afterwards.

The simulated feed is the training simulator's (``monitorapp.sim.simulator.LiveSimulator``) over
the demo caseload (``monitorapp.sim.demo``), with two scripted incidents (an exclusion breach and a
strap tamper) so the check can insist that the engine raised exactly those alerts.

``resource_path(*parts)`` finds files of ``resources/`` both from source and from the
PyInstaller bundle (``sys._MEIPASS``).
"""
from __future__ import annotations

import argparse
import logging
import os
import pathlib
import platform
import sys
import tempfile
import time

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SCRATCH_ENV = "MONITORAPP_SELFCHECK_DIR"
FEED_START = "2026-11-26T12:00:00Z"        # a Thursday noon: exclusion zones always active
FEED_MINUTES = 30
FEED_OFFENDERS = 12
EXPECTED_ALERTS = ("exclusion_entered", "strap_tamper")
MAP_TIMEOUT_S = 60.0
JS_TIMEOUT_S = 15.0
OPERATOR = "selfcheck"


def resource_path(*parts: str) -> pathlib.Path:
    """A file shipped with the application: under the bundle's data directory when frozen by
    PyInstaller (``sys._MEIPASS``), else under the source tree (the parent of ``ui/``)."""
    base = getattr(sys, "_MEIPASS", None)
    root = pathlib.Path(base) if base else pathlib.Path(__file__).resolve().parent.parent
    return root.joinpath(*parts)


def app_version() -> str:
    """The application's version (``monitorapp.__version__``, kept equal to pyproject's)."""
    from monitorapp import __version__
    return __version__


def installed_version() -> str | None:
    """The version pip recorded for the installed distribution, or None (not installed)."""
    from importlib import metadata
    try:
        return metadata.version("monitorapp")
    except metadata.PackageNotFoundError:
        return None


def prepare_environment(env=os.environ, platform_name: str = sys.platform,
                        euid: int | None = None) -> None:
    """Before Qt starts: QtWebEngine (Chromium) refuses to run sandboxed as root, and with no
    display at all (an SSH session) the check still runs, on the offscreen platform."""
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1
    if euid == 0:
        flags = env.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        if "--no-sandbox" not in flags.split():
            env["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --no-sandbox").strip()
    if (platform_name.startswith("linux") and not env.get("QT_QPA_PLATFORM")
            and not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY")):
        env["QT_QPA_PLATFORM"] = "offscreen"


class CheckFailed(Exception):
    """A check's clear, specific reason for failing (printed after ``FAIL <check>:``)."""


class CheckReport:
    """Runs checks one after another and prints one line per check."""

    def __init__(self, out=None):
        self.out = out if out is not None else sys.stdout
        self.failed: list[str] = []
        self.count = 0

    def _line(self, status: str, name: str, detail: str) -> None:
        print(f"{status:<4} {name}: {detail}", file=self.out, flush=True)

    def run(self, name: str, check, *args):
        """``check(*args)`` returns ``(detail, value)``; a failure is reported, not raised."""
        self.count += 1
        try:
            detail, value = check(*args)
        except CheckFailed as exc:
            self._fail(name, str(exc))
            return None
        except Exception as exc:     # a self-check reports every fault, it never crashes
            self._fail(name, f"{type(exc).__name__}: {exc}")
            return None
        self._line("ok", name, detail)
        return value

    def _fail(self, name: str, detail: str) -> None:
        self.failed.append(name)
        self._line("FAIL", name, detail)

    def skip(self, name: str, why: str) -> None:
        self.count += 1
        self.failed.append(name)
        self._line("skip", name, why)


# ---- the checks ----------------------------------------------------------------------------

def check_runtime():
    import PySide6
    from PySide6.QtCore import qVersion
    version = app_version()
    recorded = installed_version()
    if recorded is not None and recorded != version:
        raise CheckFailed(f"the installed distribution says {recorded} but the code is {version}; "
                          f"reinstall the application")
    from monitorapp.feed.accel import speedups
    where = "bundle " + str(pathlib.Path(sys.executable).parent) if getattr(sys, "frozen", False) else "from source"
    decoder = "compiled decoder" if speedups is not None else "pure-Python decoder"
    return (f"monitorapp {version}, Python {platform.python_version()}, PySide6 "
            f"{PySide6.__version__} / Qt {qVersion()}, platform "
            f"{os.environ.get('QT_QPA_PLATFORM') or 'default'}, {decoder}, {where}"), None


def check_resources():
    from ui.map import scheme as mapscheme
    from ui.map.page import WebAssetsMissing, asset_urls, load_manifest
    web = resource_path("resources", "web")
    if mapscheme.WEB_DIR.resolve() != web.resolve():
        raise CheckFailed(f"the map serves its assets from {mapscheme.WEB_DIR}, not from {web}")
    manifest_path = web / "manifest.json"
    if not manifest_path.is_file():
        raise CheckFailed(f"{manifest_path} is missing")
    try:
        css, js = asset_urls(load_manifest(manifest_path), web)
    except WebAssetsMissing as exc:
        raise CheckFailed(str(exc)) from None
    missing = [str(p) for p in (resource_path("resources", "sounds", "alert.wav"),
                                resource_path("resources", "icons", "app-icon.png"))
               if not (p.is_file() and p.stat().st_size > 0)]
    if missing:
        raise CheckFailed(f"missing or empty: {', '.join(missing)}")
    local = [u for u in css + js if u.startswith("emapp:")]
    return (f"{len(local)} web assets, alert sound, application icon under "
            f"{resource_path('resources')}"), None


def wait_for(signal, timeout_s: float, abort_signals=()) -> tuple[bool, str | None]:
    """Run the event loop until ``signal`` fires (True) or ``timeout_s`` passes (False).
    ``abort_signals``: ``(signal, describe)`` pairs; when ``describe(*args)`` returns a reason
    the wait ends at once with that reason."""
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    state: dict = {"fired": False, "reason": None}

    def done(*_):
        state["fired"] = True
        loop.quit()

    def make_abort(describe):
        def abort(*args):
            reason = describe(*args)
            if reason:
                state["reason"] = reason
                loop.quit()
        return abort

    timer = QTimer()
    timer.setSingleShot(True)
    timer.timeout.connect(loop.quit)
    connections = [(signal, done)] + [(s, make_abort(d)) for s, d in abort_signals]
    for sig, slot in connections:
        sig.connect(slot)
    timer.start(int(timeout_s * 1000))
    loop.exec()
    timer.stop()
    for sig, slot in connections:
        sig.disconnect(slot)
    return state["fired"], state["reason"]


def check_map(timeout_s: float):
    from PySide6.QtCore import Qt
    from ui.map.view import MapView
    t0 = time.perf_counter()
    view = MapView()
    view.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, True)   # laid out, never on screen
    view.resize(800, 600)
    view.show()
    if view.is_ready:
        return f"page loaded and bridge ready ({time.perf_counter() - t0:.1f} s)", view
    aborts = [
        (view.page.loadFinished, lambda ok: None if ok else "the page did not load (emapp://map/index.html)"),
        (view.page.renderProcessTerminated,
         lambda status, code: f"the QtWebEngine render process ended ({status}, exit code {code})"),
    ]
    ready, reason = wait_for(view.ready, timeout_s, aborts)
    errors = "; ".join(view.js_errors[:3])
    if not ready:
        view.shutdown()
        raise CheckFailed((reason or f"no bridge handshake within {timeout_s:.0f} s")
                          + (f"; page errors: {errors}" if errors else ""))
    if view.js_errors:
        raise CheckFailed(f"the page reported errors: {errors}")
    return f"page loaded and bridge ready ({time.perf_counter() - t0:.1f} s)", view


def open_scratch_store(parent: str | None):
    from localdb.schema import SCHEMA_VERSION
    from localdb.store import Store
    base = parent or tempfile.gettempdir()
    try:
        tmp = tempfile.TemporaryDirectory(prefix="monitorapp-selfcheck-", dir=base)
    except OSError as exc:
        raise CheckFailed(f"cannot create a scratch directory in {base}: {exc.strerror or exc}") from None
    path = pathlib.Path(tmp.name) / "selfcheck.sqlite"
    try:
        store = Store(path)
    except Exception:
        tmp.cleanup()
        raise
    return f"scratch store opened ({path}, schema version {SCHEMA_VERSION})", (store, tmp)


class FeedRun:
    """The engine over a few minutes of the training simulator's feed, with a store attached."""

    def __init__(self, store=None):
        from monitorapp.engine.caseload import parse_caseload
        from monitorapp.sim.demo import demo_caseload
        from monitorapp.engine.engine import Engine
        from monitorapp.sim.script import Incident
        from monitorapp.sim.simulator import LiveSimulator
        from monitorapp.feed.timeutil import parse_time
        start = parse_time(FEED_START)
        doc = demo_caseload(FEED_OFFENDERS, seed=1, start=start - 3600, hours=3)
        excl = next(((o, r) for o in doc["offenders"] for r in o["requirements"]
                     if r["type"] == "exclusion" and r.get("schedule") is None), None)
        if excl is None:
            raise CheckFailed("the demo caseload has no always-active exclusion zone to breach")
        other = next(o for o in doc["offenders"] if o["id"] != excl[0]["id"])
        incidents = [Incident("exclusion_breach", excl[0]["id"], start + 60, 0.0, excl[1]["id"]),
                     Incident("strap_tamper", other["id"], start + 120, 600.0)]
        self.start, self.end = start, start + FEED_MINUTES * 60
        self.simulator = LiveSimulator(doc, start, 1, 1.0, incidents=incidents, gaps_per_day=0.0,
                                       multipath_per_day=0.0, p_cell=0.0)
        self.engine = Engine(parse_caseload(doc, "demo caseload"), start=start)
        self.fixes_seen = 0
        self.raised: list[str] = []
        self.positions: dict = {}
        self.engine.add_listener(on_fix=self._on_fix, on_alert=self._on_alert,
                                 on_position=self._on_position)
        if store is not None:
            store.attach(self.engine)

    def _on_fix(self, fix, used):
        self.fixes_seen += 1

    def _on_alert(self, alert, change):
        if change == "raised":
            self.raised.append(alert.type)

    def _on_position(self, device, fix):
        self.positions[device] = fix

    def run(self) -> None:
        for rx, line in self.simulator.step_until(self.end):
            self.engine.advance(rx)
            self.engine.submit(line, rx=rx)
        self.engine.advance(self.end)


def check_engine(store):
    t0 = time.perf_counter()
    feed = FeedRun(store)
    feed.run()
    c = feed.engine.counters
    if c.rejected:
        raise CheckFailed(f"the engine rejected {c.rejected} simulated messages: {c.rejected_by_reason}")
    if c.fixes == 0:
        raise CheckFailed(f"no fix went through the engine ({c.messages} messages)")
    missing = [t for t in EXPECTED_ALERTS if t not in feed.raised]
    if missing:
        raise CheckFailed(f"the scripted incidents raised {sorted(set(feed.raised)) or 'no alert'}; "
                          f"expected {', '.join(EXPECTED_ALERTS)} (missing {', '.join(missing)})")
    return (f"{FEED_MINUTES} min of simulated feed for {FEED_OFFENDERS} tags: {c.messages} messages, "
            f"{c.fixes} fixes, alerts {', '.join(sorted(set(feed.raised)))} "
            f"({time.perf_counter() - t0:.1f} s)"), feed


def check_stored(store, feed: FeedRun):
    from localdb.hashchain import verify_chain
    store.flush()
    counts = store.counts()
    alerts = feed.engine.alerts
    if counts["fixes"] != feed.fixes_seen:
        raise CheckFailed(f"{feed.fixes_seen} fixes went through the engine but {counts['fixes']} were stored")
    if counts["alerts"] != len(alerts):
        raise CheckFailed(f"the engine raised {len(alerts)} alerts but {counts['alerts']} were stored")
    stored_ids = {a["alert_id"] for a in store.alerts()}
    if stored_ids != set(alerts):
        raise CheckFailed(f"stored alert ids differ from the engine's: {sorted(stored_ids ^ set(alerts))}")
    first = min(alerts.values(), key=lambda a: a.raised_at)
    store.acknowledge(first.alert_id, OPERATOR, "other", "installation self-check")
    log = store.ack_log(first.alert_id)
    if len(log) != 1 or log[0]["operator"] != OPERATOR:
        raise CheckFailed(f"the acknowledgement of {first.alert_id} was not read back: {log}")
    report = verify_chain(store.reader(), "ack_log")
    if not report.intact:
        raise CheckFailed(f"the acknowledgement log's hash chain is broken: {report.problem}")
    return (f"{counts['fixes']} fixes, {counts['alerts']} alerts, {counts['alert_changes']} alert "
            f"changes and 1 hash-chained acknowledgement read back"), None


def check_markers(view, feed: FeedRun):
    markers = [{"device": d, "lat": f.lat, "lon": f.lon, "acc": f.acc, "t": f.t}
               for d, f in sorted(feed.positions.items())]
    if not markers:
        raise CheckFailed("the engine reported no tag position to draw")
    timings: list[float] = []
    view.jsTiming.connect(timings.append)
    view.update_markers(markers)
    sent = view.flush_markers()
    drawn, _ = wait_for(view.jsTiming, JS_TIMEOUT_S)
    if not drawn:
        raise CheckFailed(f"the page did not confirm drawing {sent} markers within {JS_TIMEOUT_S:.0f} s"
                          + (f"; page errors: {'; '.join(view.js_errors[:3])}" if view.js_errors else ""))
    if view.js_errors:
        raise CheckFailed(f"the page reported errors: {'; '.join(view.js_errors[:3])}")
    return f"{sent} tag positions drawn by the page ({timings[-1]:.0f} ms)", None


# ---- running it ----------------------------------------------------------------------------

def run_self_check(scratch_dir: str | None = None, map_timeout_s: float = MAP_TIMEOUT_S,
                   out=None) -> int:
    """Every check in order (see the module docstring); 0 when all passed, else 1."""
    prepare_environment()
    out = out if out is not None else sys.stdout
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    report = CheckReport(out)
    report.run("runtime", check_runtime)
    report.run("resources", check_resources)

    import ui.map.view  # noqa: F401  (registers the map's URL schemes before the QApplication)
    from PySide6.QtWidgets import QApplication
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "monitorapp"])
    app.setApplicationName("monitorapp")
    view = report.run("map", check_map, map_timeout_s)

    opened = report.run("store", open_scratch_store, scratch_dir or os.environ.get(SCRATCH_ENV))
    store, tmp = opened if opened else (None, None)
    try:
        feed = report.run("engine", check_engine, store)
        if store is None:
            report.skip("stored", "needs the scratch store")
        elif feed is None:
            report.skip("stored", "needs the engine's simulated feed")
        else:
            report.run("stored", check_stored, store, feed)
        if view is None or feed is None:
            report.skip("map markers", "needs " + ("the map page" if view is None else "the engine's simulated feed"))
        else:
            report.run("map markers", check_markers, view, feed)
    finally:
        if store is not None:
            store.close()
        if tmp is not None:
            tmp.cleanup()
        if view is not None:
            _close_view(view)

    elapsed = time.perf_counter() - t0
    if report.failed:
        print(f"self-check FAILED: {', '.join(report.failed)} ({report.count} checks, {elapsed:.1f} s)",
              file=out, flush=True)
        return EXIT_FAILED
    print(f"self-check passed: {report.count} checks in {elapsed:.1f} s", file=out, flush=True)
    return EXIT_OK


def _close_view(view) -> None:
    """Tear the page down inside the event loop so QtWebEngine exits cleanly."""
    from PySide6.QtCore import QTimer
    view.shutdown()
    view.close()
    view.deleteLater()
    from PySide6.QtCore import QEventLoop
    loop = QEventLoop()
    view.destroyed.connect(loop.quit)
    QTimer.singleShot(5000, loop.quit)
    loop.exec()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monitorapp", add_help=False,
                                description="installation self-check of the operator console")
    p.add_argument("--self-check", action="store_true")
    p.add_argument("--scratch-dir", metavar="DIR",
                   help=f"where to make the scratch store's temporary directory (default ${SCRATCH_ENV} or the system's)")
    p.add_argument("--timeout", type=float, default=MAP_TIMEOUT_S, metavar="SECONDS",
                   help="how long to wait for the map page")
    return p


def handle_cli(argv: list[str]) -> int | None:
    """``--version`` and ``--self-check [--scratch-dir DIR] [--timeout S]``: handled here, the
    exit status returned. Any other command line: None (the console starts as usual)."""
    if "--version" in argv:
        print(f"monitorapp {app_version()}")
        return EXIT_OK
    if "--self-check" not in argv:
        return None
    try:
        args, unknown = _parser().parse_known_args(argv)
    except SystemExit:              # argparse has printed what is wrong with the option
        return EXIT_USAGE
    if unknown:
        print(f"--self-check: unknown option(s) {' '.join(unknown)}; it takes --scratch-dir DIR "
              f"and --timeout SECONDS", file=sys.stderr)
        return EXIT_USAGE
    if not args.timeout > 0:
        print("--self-check: --timeout must be a positive number of seconds", file=sys.stderr)
        return EXIT_USAGE
    return run_self_check(args.scratch_dir, args.timeout)


if __name__ == "__main__":
    sys.exit(handle_cli(sys.argv[1:] or ["--self-check"]) or 0)
