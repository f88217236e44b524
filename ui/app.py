"""Assembles the console: settings, store, engine, feed, worker thread, map and main window,
for training mode or live mode, and prints structured JSON log lines to stdout (one object per
line, ``{"event": ..., "t": ...}``) that operators' tooling and the end-to-end tests read.
"""
from __future__ import annotations

import json
import pathlib
import sys
import time
from dataclasses import dataclass

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from ui.settings import Settings, data_dir

T0 = time.perf_counter()
CHECKPOINT_S = 60.0      # live mode: engine state into the store, then messages acknowledged


def log_event(event: str, **fields) -> None:
    rec = {"event": event, "t": round(time.time(), 3), "uptime_s": round(time.perf_counter() - T0, 3)}
    rec.update(fields)
    sys.stdout.write(json.dumps(rec, default=str) + "\n")
    sys.stdout.flush()


class ConsoleError(Exception):
    """The console cannot start as asked (the message says why, for the command line)."""


@dataclass
class Options:
    demo: bool = False
    broker: str | None = None
    caseload: str | None = None
    db: str | None = None
    operator: str | None = None
    speed: int | None = None
    offenders: int = 100
    quit_after: float | None = None
    screenshot: str | None = None
    scenario: str | None = None
    user: str | None = None              # non-interactive sign-in (kiosks, end-to-end tests)
    password_file: str | None = None
    sign_in: bool = True
    force_sign_in: bool = False          # training: the dialog even without accounts
    broker_ca: str | None = None         # the broker options, as the monitor's (ui.settings.broker_settings)
    broker_cert: str | None = None
    broker_key: str | None = None
    broker_username: str | None = None
    broker_password_file: str | None = None


class Console:
    """Everything one running console owns; ``shutdown()`` stops it in order. With the centre's
    record on PostgreSQL (``--db postgresql://…``, setting ``store/url``) the console is a client
    of the centre (``ui.console.clientmode``): ``accounts`` is where the person signed in."""

    def __init__(self, opts: Options, settings: Settings | None = None, accounts=None):
        from monitorapp.engine.engine import Engine
        from localdb.store import Store
        from ui.console.alertqueue import AlarmSound, AlertQueueController
        from ui.console.clientmode import build_client, centre_dsn
        from ui.console.engineworker import EngineWorker
        from ui.console.mainwindow import MainWindow

        self.opts = opts
        self.settings = settings or Settings()
        if opts.operator:
            self.settings.set("operator/name", opts.operator)
        self.operator = self.settings.operator()
        self.training = opts.demo
        self.centre = None
        self.accounts = accounts
        self._stopped = False
        self.centre_dsn = centre_dsn(opts, self.settings)
        if self.centre_dsn:            # client mode: no engine, no store file of its own
            build_client(self, opts, accounts, log_event=log_event, make_map=_make_map,
                         places=_places, zone=_zone)
            log_event("console_started", mode="client", operator=self.operator, store=self.store_path,
                      caseload=self.caseload_source, offenders=len(self.caseload.offenders),
                      sound=self.controller.sound.backend)
            return
        if self.training:
            from ui.console.training import SPEEDS, TrainingSession, check_training_args, training_store_path
            check_training_args(opts.broker, opts.db, self.settings.get("store/db_path") or None)
            speed = opts.speed or self.settings.get("training/speed")
            session = TrainingSession(n_offenders=opts.offenders, speed=speed, scenario=opts.scenario,
                                      db=opts.db)     # a rerun moves on past what the store holds
            self.caseload, source, speeds = session.caseload, session.feed, SPEEDS
            self.store_path = training_store_path(opts.db)
            start = session.start
            self.training_text = f"TRAINING MODE — {session.description.rstrip('. ')}. Simulated feed, not live."
        else:
            from monitorapp.engine.caseload import load_caseload
            from monitorapp.feed.mqttfeed import FeedClient
            from ui.console.engineworker import MqttFeed
            broker = opts.broker or self.settings.get("feed/broker_url")
            cpath = opts.caseload or self.settings.get("feed/caseload_path")
            if not broker:
                raise ConsoleError("live mode needs a broker: --broker URL (or feed/broker_url in settings); "
                                   "use --demo for training")
            if not cpath:
                raise ConsoleError("live mode needs a caseload: --caseload FILE (or feed/caseload_path)")
            self.caseload = load_caseload(cpath)
            from monitorapp.feed.mqttconfig import MqttConfigError, default_client_id
            from ui.settings import broker_settings
            try:
                mqtt_settings = broker_settings(opts, self.settings, client_id=default_client_id("console"))
            except MqttConfigError as e:
                raise ConsoleError(str(e)) from None
            source = MqttFeed(FeedClient(mqtt_settings))
            self.broker_url = broker
            speeds = ()
            self.store_path = pathlib.Path(opts.db or self.settings.get("store/db_path")
                                           or data_dir() / "monitor.sqlite")
            self.store_path.parent.mkdir(parents=True, exist_ok=True)
            start = None
        self.source = source
        # the store records handling at the console's clock (the simulated one in training)
        # training is sealed: each mode refuses the other's store (localdb.schema, spec v2 §8)
        self.store = Store(self.store_path, clock=source.now,
                           mode="training" if self.training else "live")
        try:
            self.store.record_caseload(self.caseload, "system")
        except Exception as e:     # the caseload history is a record, not a reason to stop
            log_event("warning", text=f"caseload not recorded: {e}")
        self._record_protocols()
        caseload = self.caseload
        snapshot = None
        if not self.training:      # live: carry on from the last checkpoint of this store
            snapshot, _position = self.store.load_checkpoint()
        # built in the engine thread (pyproj transformers stay in the thread that made them)
        # streets and boroughs of the shipped OSM data, once: the map, the engine thread's
        # addresses and the views share it (thread-safe, files read on first use)
        self.places = _places()
        self.worker = EngineWorker(lambda: Engine(caseload, start=start, state=snapshot), source,
                                   store=self.store, checkpoint_s=None if self.training else CHECKPOINT_S,
                                   places=self.places)
        tz = _zone(self.caseload.tz)
        self.controller = AlertQueueController(
            self.store, self.operator, escalation=self.settings.escalation_limits(),
            flood_count=self.settings.get("alarm/flood_count"),
            flood_window_s=self.settings.get("alarm/flood_window_s"),
            max_shelve_hours=self.settings.get("shelve/max_hours"),
            sound=AlarmSound(self.settings.get("alarm/sound")), tz=tz)
        if hasattr(source, "real_between"):      # training: escalation on the trainee's real seconds
            self.controller.model.waited = source.real_between
        self.map = _make_map(self.settings, self.places)
        self.window = MainWindow(controller=self.controller, worker=self.worker, caseload=self.caseload,
                                 store=self.store, settings=self.settings, map_widget=self.map,
                                 clock=source.now, operator=self.operator, training=self.training,
                                 speeds=speeds)
        if self.training:
            self.window.training_banner.setText(self.training_text)
        self.window.event.connect(lambda name, fields: log_event(name, **fields))
        # the watchdog's word: an engine thread that died and was started again (spec §4)
        self.worker.restarted.connect(lambda text: (log_event("engine_restarted", text=text),
                                                    self.window.statusBar().showMessage(text, 15000)))
        log_event("console_started", mode="training" if self.training else "live",
                  scenario=opts.scenario if self.training else None,
                  operator=self.operator, store=str(self.store_path), offenders=len(self.caseload.offenders),
                  sound=self.controller.sound.backend)
        self._stopped = False

    def _record_protocols(self) -> None:
        """The centre's response protocols into the store (issue 21): the configured file, or
        the shipped defaults. A file with problems is not recorded (each problem is logged)
        and the store keeps the version in force, or gets the defaults if it has none: the
        console never starts without a checklist to follow."""
        from monitorapp.response.protocols import ProtocolError, load_protocols
        path = self.settings.get("response/protocols_file") or None
        try:
            doc = load_protocols(path)
        except ProtocolError as e:
            log_event("error", text=f"{e.source}: not recorded: " + "; ".join(e.problems[:5]))
            if self.store.response_protocols() is not None:
                return
            doc = load_protocols(None)
        try:
            self.store.record_protocols(doc, "system")
        except Exception as e:  # noqa: BLE001 - a record refused is logged, the console goes on
            log_event("warning", text=f"response protocols not recorded: {e}")

    def start(self) -> None:
        self.worker.start()
        if getattr(self.window, "start_maximised", False):
            self.window.showMaximized()
        else:
            self.window.show()

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.worker.stop()
        if self.centre is not None:      # client mode: the record is the signed-in person's
            if self.accounts is not None:
                self.accounts.close()
            return
        try:
            self.store.flush()
        finally:
            self.store.close()


def settle_heap() -> None:
    """Move everything built at start-up (caseload, engine, zones, map page objects) out of
    the garbage collector's reach. Without this a full collection walks hundreds of thousands
    of long-lived objects and stalls the event loop for 100-500 ms at 5,000 tags (measured by
    benchmarks/bench_ui.py); with it, full collections only see what was allocated since.

    Automatic collection then stays off and a timer collects on the GUI thread once a second
    (pyqtgraph's ``GarbageCollector``, with the interpreter's own thresholds): a collection
    that the engine, writer or network thread happened to trigger could otherwise destroy a
    Qt object from that thread, which crashes the process (seen in the test suite)."""
    import gc
    global _collector
    gc.collect()
    gc.freeze()
    from pyqtgraph.util.garbage_collector import GarbageCollector
    if _collector is None:
        _collector = GarbageCollector(interval=1.0)     # disables automatic collection


_collector = None


def _zone(name: str):
    from zoneinfo import ZoneInfo
    try:
        return ZoneInfo(name)
    except Exception:
        return None


def _places():
    """The shipped streets and boroughs (Places), or None when the files are not there."""
    from monitorapp.places import SHIPPED_BASEMAP, Places
    if not SHIPPED_BASEMAP.with_suffix("").with_suffix(".boroughs.geojson").is_file():
        log_event("warning", text="no borough boundaries shipped: no addresses, boroughs or map search")
        return None
    return Places.shipped()


def _make_map(settings: Settings, places=None):
    """The console's map: the configured tile URL or MBTiles file, else the shipped vector
    basemap of London (else the grid fallback when that file is missing)."""
    from ui.map.view import MapView
    basemap = settings.get("map/mbtiles") or settings.get("map/tile_url") or None
    try:
        return MapView(theme=settings.get("ui/theme"), basemap=basemap, places=places)
    except ValueError as e:   # a bad basemap setting: fall back to the shipped basemap, say so
        log_event("warning", text=f"basemap not usable ({e}); using the shipped offline basemap")
        return MapView(theme=settings.get("ui/theme"), places=places)


def _live_config_error(opts: Options, settings: Settings) -> str | None:
    """What live mode lacks before anyone is asked to sign in, or None."""
    if not (opts.broker or settings.get("feed/broker_url")):
        return ("live mode needs a broker: --broker URL (or feed/broker_url in settings); "
                "use --demo for training")
    if not (opts.caseload or settings.get("feed/caseload_path")):
        return "live mode needs a caseload: --caseload FILE (or feed/caseload_path)"
    from monitorapp.feed.mqttconfig import MqttConfigError
    from ui.settings import broker_settings
    try:                 # a CA or password file that cannot work: said before the sign-in
        broker_settings(opts, settings)
    except MqttConfigError as e:
        return str(e)
    return None


def _sign_in(opts: Options):
    """Everyone signs in before the console opens: ``(session, accounts)``, or an exit status.

    Live mode signs in against the accounts of the live store. Training mode touches nothing
    live, so it signs in against the training store's own accounts; a training store with no
    accounts yet (a fresh machine, ``make demo``) opens as the built-in trainer, with no
    password, until an administrator creates accounts there (``--sign-in`` forces the dialog,
    whose first-run path creates that administrator)."""
    if not opts.sign_in:
        return None, None
    from localdb.schema import StoreError
    from ui.console.clientmode import centre_dsn
    from ui.roles import RoleRefused
    from ui.session.signin import sign_in_for_console
    settings = Settings()
    dsn = centre_dsn(opts, settings)
    if dsn:       # client mode: the person's own login of the centre's record
        from ui.session.centresignin import sign_in_to_centre
        if not (opts.broker or settings.get("feed/broker_url")):
            problem = "client mode needs the centre's broker: --broker URL (or feed/broker_url in settings)"
            log_event("error", text=problem)
            print(f"main.py: {problem}", file=sys.stderr)
            return 2
        from ui.session.centresignin import CentreAccounts, centre_reachable
        if not centre_reachable(dsn):
            # cut off at start: nobody can sign in (the server establishes who); the console
            # opens on this workstation's cached picture, marked stale, refusing every action,
            # and asks for a sign-in as soon as the record answers again
            from localdb.cache import ConsoleCache
            from ui.console.clientmode import cache_path
            cached = ConsoleCache(cache_path(dsn))
            try:
                saved = cached.load()["saved_at"]
            finally:
                cached.close()
            if saved is None:
                problem = "the centre's record cannot be reached and this workstation has no cached picture"
                log_event("error", text=problem)
                print(f"main.py: {problem}", file=sys.stderr)
                return 2
            log_event("centre_unreachable_at_start", picture_from=saved)
            return None, CentreAccounts(dsn)
        try:
            signed = sign_in_to_centre(dsn, user=opts.user, password_file=opts.password_file)
        except (RoleRefused, ValueError, OSError, StoreError) as e:
            log_event("error", text=str(e))
            print(f"main.py: {e}", file=sys.stderr)
            return 2
        if signed is None:
            log_event("quit", code=0, reason="sign-in cancelled")
            return 0
        return signed
    if opts.demo:
        from ui.console.training import training_store_path
        accounts_db = training_store_path(opts.db)
        if not opts.user and not opts.force_sign_in:
            from ui.session.signin import builtin_trainer
            try:       # only a training store without accounts has the built-in trainer
                trainer = builtin_trainer(accounts_db, opts.operator)
            except StoreError as e:
                log_event("error", text=str(e))
                print(f"main.py: {e}", file=sys.stderr)
                return 2
            if trainer is not None:
                return trainer, None
    else:
        problem = _live_config_error(opts, settings)
        if problem:
            log_event("error", text=problem)
            print(f"main.py: {problem}", file=sys.stderr)
            return 2
        accounts_db = pathlib.Path(opts.db or settings.get("store/db_path") or data_dir() / "monitor.sqlite")
    try:
        signed = sign_in_for_console(accounts_db, training=opts.demo, user=opts.user,
                                     password_file=opts.password_file)
    except (RoleRefused, ValueError, OSError, StoreError) as e:   # SignInError is a ValueError
        log_event("error", text=str(e))
        print(f"main.py: {e}", file=sys.stderr)
        return 2
    if signed is None:
        log_event("quit", code=0, reason="sign-in cancelled")
        return 0
    return signed


def _sign_in_when_the_centre_answers(console, accounts) -> None:
    """Client mode started cut off: the cached picture is shown with nobody signed in; when the
    record answers again the sign-in cover asks for the next person (whose sign-in starts the
    centre's picture again)."""
    from ui.session.signin import IDLE_LOCK_S
    from ui.session.wiring import RoleViews
    w = console.window
    w.status.operator.setText("Nobody signed in — centre unreachable")
    rv = w.role_views = RoleViews(w, None, console.worker, console.map, IDLE_LOCK_S, accounts, False)

    def back():
        if rv.session is None and rv.cover is None:
            log_event("centre_reachable_again")
            rv.show_signed_out()
    console.centre.centreBack.connect(back)


def run(opts: Options) -> int:
    import gc
    gc.disable()     # start-up allocates ~400,000 long-lived objects: no collections meanwhile
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("monitorapp")
    app.setOrganizationName("monitorapp")
    icon = pathlib.Path(__file__).resolve().parent.parent / "resources" / "icons" / "app-icon.png"
    if icon.exists():
        from PySide6.QtGui import QIcon
        app.setWindowIcon(QIcon(str(icon)))
    try:     # the sign-in dialogs already wear the theme of the night shift (or the day's)
        from ui.theme import apply_theme
        prefs = Settings()
        apply_theme(app, prefs.get("ui/theme"), prefs.get("ui/queue_font_pt"))
    except Exception as e:      # noqa: BLE001 - a bad settings file is reported by Console
        log_event("warning", text=f"theme not applied before sign-in: {e}")
    signed = _sign_in(opts)
    if isinstance(signed, int):
        gc.enable()
        return signed
    session, accounts = signed
    if session is not None:
        opts.operator = session.username          # the acknowledgement log's name
        log_event("signed_in", user=session.username, role=session.role, built_in=accounts is None)
    try:
        console = Console(opts, accounts=accounts)
    except ConsoleError as e:
        gc.enable()
        log_event("error", text=str(e))
        print(f"main.py: {e}", file=sys.stderr)
        return 2
    except Exception as e:    # a bad caseload or store file: one clear line, no traceback
        log_event("error", text=f"{e.__class__.__name__}: {e}")
        print(f"main.py: cannot start: {e}", file=sys.stderr)
        return 2
    console.window.map.ready.connect(lambda: log_event("first_paint_ready", seconds=round(time.perf_counter() - T0, 3)))
    if session is not None:
        from ui.session.wiring import install_role_views
        install_role_views(console.window, console.store, console.worker, console.map, session,
                           accounts=accounts)
        if accounts is not None and console.centre is None:
            app.aboutToQuit.connect(accounts.store.close)
    elif console.centre is not None:       # client mode, started cut off: nobody signed in
        _sign_in_when_the_centre_answers(console, accounts)
    settle_heap()
    console.start()
    if opts.quit_after:
        def finish():
            if opts.screenshot:
                console.window.grab().save(opts.screenshot)
                log_event("screenshot", path=opts.screenshot)
            console.window.close()
            app.quit()
        QTimer.singleShot(int(opts.quit_after * 1000), finish)
    app.aboutToQuit.connect(console.shutdown)
    # SIGTERM/SIGINT end the shift cleanly: checkpoint, acknowledge, close the store
    import signal
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: (log_event("signal"), app.quit()))
    wake = QTimer()
    wake.timeout.connect(lambda: None)      # lets Python run signal handlers during exec()
    wake.start(250)
    rc = app.exec()
    console.shutdown()
    log_event("quit", code=rc)
    return rc
