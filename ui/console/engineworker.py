"""Runs the engine and its feed off the GUI thread and hands results to the main thread.

``EngineWorker`` owns the engine thread (a Python thread with its own loop). Every 100 ms it
drains the feed source (the simulator in training mode, the MQTT ``FeedClient`` live), submits
every message to the engine, advances the processing clock, and collects what the engine reports
through its listeners. A few times a second it emits *one* batch per kind through Qt signals,
which reach the main thread as queued calls: alert changes, latest positions, feed statistics.
The main thread never calls the engine; it queues commands (zone edits, details of one offender)
and gets answers as signals. The engine itself is built in that thread.

Addresses (the nearest named street and the borough of a fix, ``monitorapp.places.Places``) are
computed here too, in the engine thread and vectorised per batch, never in the GUI thread:
each moved position carries ``address`` ("Kentish Town Road, Camden") and ``address_text``
(what the operator reads out: "near Kentish Town Road, Camden (80 m)"); ``addresses`` gives
the location of each alert of a batch (from its evidence fix) just before ``alertBatch``.

Positions and feed statistics wait for the main thread: a batch of each is emitted only once
the main thread has taken the one before (``_taken``); until then the moved positions go on
being merged into one per tag (what the map and the caseload list show) and the statistics are
read afresh at the next emit. A main thread held up (a long query, a busy machine) so finds one
batch waiting when it comes back, the latest, instead of a queued signal per 250 ms each holding
every tag's position (330 s of a held-up main thread at 1,000 tags queued 100 MB of them in the
soak, benchmarks/bench_soak.py). Alert changes are never merged nor held back.

Feed sources are plain objects with ``now()``, ``poll(max_items)`` and ``connected``:
``SimulatedFeed`` (training) and ``MqttFeed`` (live).

Nothing stops monitoring silently (spec §2, §4 ``system_fault``). The engine quarantines a
message that makes it fail. Whatever else fails in the engine thread (the feed source, a tick)
raises ``system_fault`` through the engine, so it reaches the queue as a critical alert with
sound; once a second the thread also checks the store writer (started again if it died), the
broker (a fault after 60 s unreachable) and timer failures. If the engine thread itself dies,
the worker's watchdog (a timer in the main thread, every second) puts a ``system_fault`` into
the queue at once, tells the status bar (``stats`` with ``engine_down``), and starts the
thread again on an engine rebuilt from the dead one's state (or the store's checkpoint); the
restarted engine records the fault and clears it, and ``restarted`` says so.
"""
from __future__ import annotations

import collections
import copy
import json
import math
import queue
import threading
import time

from PySide6.QtCore import QObject, QTimer, Signal

import numpy as np
import shapely
from shapely.geometry import shape

from ui.console.fixhistory import FixHistory

HISTORY_S = 24 * 3600
HISTORY_MAX = 3000          # fixes kept per tag for the details charts
WATCHDOG_MS = 1000          # the main thread checks the engine thread this often
HEALTH_S = 1.0              # the engine thread checks the store and the broker this often
BROKER_UNREACHABLE_S = 60.0
FORGET_CLEARED_S = 12 * 3600   # the engine forgets alerts cleared this long ago (the queue keeps its rows)
TICK_MS = 100               # drain the feed this often
EMIT_MS = 250               # ... and hand results to the GUI this often
CHUNK = 400                 # messages submitted between checks of the time budget
BUDGET_S = 0.040            # longest stretch of ingestion before yielding to the event loop
WRITER_BACKLOG_MAX = 20_000  # items the store writer may have queued before the feed waits for it


class _ScaledClock:
    """A simulated clock from ``start`` that runs ``speed`` times real time; the speed can change
    without the clock jumping."""

    def _start_clock(self, start: float, speed: float) -> None:
        self.start = start
        self.speed = float(speed)
        self._base = start
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._base + (time.monotonic() - self._mono0) * self.speed

    def set_speed(self, speed: float) -> None:
        self._base = self.now()
        self._mono0 = time.monotonic()
        self.speed = float(speed)


class SimulatedFeed(_ScaledClock):
    """Training mode: the simulator's messages on a clock that runs ``speed`` times real time."""

    def __init__(self, simulator, start: float, speed: float = 1.0):
        self.sim = simulator
        self._start_clock(start, speed)
        self.connected = True
        self._pending: collections.deque = collections.deque()

    def poll(self, max_items: int) -> list[tuple[float | None, bytes, str | None]]:
        if len(self._pending) < max_items:
            self._pending.extend((rx, raw, None) for rx, raw in self.sim.step_until(self.now()))
        n = min(max_items, len(self._pending))
        return [self._pending.popleft() for _ in range(n)]

    @property
    def ended_at(self) -> float | None:
        """The simulated time the simulator's feed ends by design (its period over, every message
        given out), or None while it runs: the worker stops the engine's clock there, so a
        scenario's end is "scenario ended", never a ``feed_lost`` alert."""
        if self._pending or not getattr(self.sim, "finished", False):
            return None
        return float(getattr(self.sim, "end", None) or self.sim.now)

    def ack(self, items) -> None:
        pass

    def stop(self) -> None:
        pass


class TrainingFeed(SimulatedFeed):
    """The simulator's feed on the run's accelerated clock, which also keeps the *trainee's*
    clock: real seconds of the run, pauses excluded. Scoring and escalation use it, so 50 real
    seconds to acknowledge read 0:50 at any speed, and at ×60 a critical alert escalates after
    its limit in real seconds, not after one real second."""

    def __init__(self, simulator, start: float, speed: float):
        super().__init__(simulator, start, speed)
        self._segments: list[tuple[float, float, float]] = [(float(start), float(speed), 0.0)]

    def set_speed(self, speed: float) -> None:     # the engine thread applies it
        super().set_speed(speed)
        s0, v0, r0 = self._segments[-1]
        sim = self._base
        self._segments.append((sim, float(speed), r0 + ((sim - s0) / v0 if v0 > 0 else 0.0)))

    def real_s(self, t: float) -> float:
        """Real seconds of the run (pauses excluded) at simulated time ``t``."""
        segs = self._segments
        seg = segs[0]
        for s in segs:
            if s[0] <= t:
                seg = s
            else:
                break
        s0, v, r0 = seg
        return r0 + ((t - s0) / v if v > 0 else 0.0)

    def real_between(self, t0: float, t1: float) -> float:
        return self.real_s(t1) - self.real_s(t0)


class ReplayFeed(_ScaledClock):
    """Recorded messages ``[(rx, raw)]`` played on a clock from the first ``rx`` (or ``start``)
    at ``speed`` times real time: a replay file in the console, and scripted scenarios."""

    def __init__(self, messages, start: float | None = None, speed: float = 1.0):
        self._msgs = collections.deque(sorted(messages, key=lambda m: m[0]))
        first = self._msgs[0][0] if self._msgs else 0.0
        self._start_clock(first if start is None else start, speed)
        self.connected = True

    def poll(self, max_items: int):
        now = self.now()
        out = []
        while self._msgs and len(out) < max_items and self._msgs[0][0] <= now:
            rx, raw = self._msgs.popleft()
            out.append((rx, raw, None))
        return out

    def remaining(self) -> int:
        return len(self._msgs)

    def ack(self, items) -> None:
        pass

    def stop(self) -> None:
        pass


class MqttFeed:
    """Live mode: the broker's messages through ``monitorapp.feed.mqttfeed.FeedClient``."""

    def __init__(self, client):
        self.client = client
        self._started = False

    @property
    def connected(self) -> bool:
        return self.client.connected

    def now(self) -> float:
        return time.time()

    def poll(self, max_items: int):
        if not self._started:
            self.client.start()
            self._started = True
        return self.client.get_batch(max_items, timeout=0)

    def ack(self, items) -> None:
        self.client.ack(items)

    def stop(self) -> None:
        if self._started:
            self.client.stop()


class _EngineThread(threading.Thread):
    def isRunning(self) -> bool:  # noqa: N802 (the QThread spelling, for existing callers)
        return self.is_alive()


class EngineWorker(QObject):
    """The engine's thread. Create it, ``start()`` it, talk to it only through its methods
    (which queue commands) and its signals (emitted from the engine thread, so delivered to
    main-thread receivers as queued calls).

    The thread is a Python ``threading.Thread`` with its own loop, not a ``QThread``: PROJ
    (through pyproj, in the engine's projector and zones) keeps per-thread state in
    ``threading.local``, which a QThread's Python thread state does not keep between slot
    calls; pyproj then crashed the process in zone edits and details requests.
    """

    alertBatch = Signal(list, float)       # [(change, Alert copy)], processing clock
    positions = Signal(list)               # [{device, lat, lon, acc, t, batt}]
    stats = Signal(dict)                   # feed health
    details = Signal(dict)                 # answer to request_details
    ready = Signal()                       # the engine is built (in the engine thread)
    restored = Signal(list, float)         # [(change, Alert)] open when the engine was restored
    zoneApplied = Signal(str, int)         # zone id, new version
    failed = Signal(str)                   # a request the engine refused (message)
    zoneRefused = Signal(str, str)         # zone id, the engine's reason (also sent as failed)
    restarted = Signal(str)                # the watchdog started the engine thread again (why)
    addresses = Signal(dict)               # alert id -> its location text, before its alertBatch

    def __init__(self, make_engine, source, *, store=None, checkpoint_s: float | None = None,
                 places=None):
        """``make_engine()`` builds the engine in the engine thread; the store, when given, is
        attached to the engine there too. (An already built ``Engine`` is accepted as well, for
        callers that attach the store themselves; zone geometry it made in another thread is
        then used from this one, which pyproj does not promise to survive.)"""
        super().__init__()
        self._make_engine = make_engine
        self.places = places                 # Places (thread-safe), or None: no addresses
        self._address_error: str | None = None
        self.engine = None
        self.caseload = None
        self.source = source
        self.store = store
        self._alerts: list = []
        self._moved: dict[str, dict] = {}
        # set while the main thread has taken the last batch of positions / statistics
        self._taken = {"positions": threading.Event(), "stats": threading.Event()}
        for ev in self._taken.values():
            ev.set()
        self.positions.connect(self._positions_taken)
        self.stats.connect(self._stats_taken)
        self._history: dict[str, FixHistory] = {}
        self._msgs_window: collections.deque = collections.deque()
        self._lag_s = 0.0
        self._last_emit = 0.0
        self._cmds: queue.SimpleQueue = queue.SimpleQueue()
        # live mode: checkpoint the engine in the store every checkpoint_s and acknowledge the
        # feed's messages to the broker only then (a crash loses nothing the broker handed us)
        self.checkpoint_s = checkpoint_s
        self._unacked: list = []
        self._last_checkpoint = time.monotonic()
        self.thread = _EngineThread(target=self._main, name="engine", daemon=True)
        self._exclusion_by_offender: dict[str, list[str]] = {}
        self._zone_history: dict[str, list[ZoneVersion]] = {}     # see _build_shapes
        self._stopping = False
        self.died: str | None = None         # why the engine thread stopped, until restarted
        self._died_at: float | None = None
        self.restarts = 0
        self._next_health = 0.0
        self._next_forget = 0.0
        self._disconnected_since: float | None = None
        self._engine_error_at: float | None = None
        self._last_stats: dict = {}
        self._last_msg_at: float | None = None
        self.watchdog = QTimer(self)
        self.watchdog.setInterval(WATCHDOG_MS)
        self.watchdog.timeout.connect(self._watch)

    # ----- the main thread's side ----------------------------------------------------------
    def start(self) -> None:
        self.thread.start()
        self.watchdog.start()

    def _watch(self) -> None:
        """The watchdog (main thread): an engine thread that died is annunciated at once and
        started again."""
        if self._stopping or self.thread.is_alive() or self.engine is None:
            return
        now = self.source.now()
        why = self.died or "the engine thread stopped"
        self._died_at = now
        from monitorapp.engine.alerts import PRIORITY, Alert, alert_id
        from monitorapp.feed.timeutil import fmt_time
        req = "engine:thread"
        a = Alert(alert_id("system_fault", None, req, now), "system_fault", PRIORITY["system_fault"],
                  None, None, req, None, now, now, False,
                  {"component": "engine", "kind": "thread", "error": why, "since": fmt_time(now)})
        self.alertBatch.emit([("raised", a)], now)
        self.stats.emit({**self._last_stats, "now": now, "connected": False,
                         "engine_down": f"engine stopped: {why}"})
        self.restarts += 1
        self.thread = _EngineThread(target=self._main, args=(True,), name="engine", daemon=True)
        self.thread.start()
        self.restarted.emit(f"engine thread restarted after: {why}")

    def _positions_taken(self, _moved: list) -> None:      # the main thread: queued, in order
        self._taken["positions"].set()

    def _stats_taken(self, _stats: dict) -> None:
        self._taken["stats"].set()

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout_ms: int = 5000) -> None:
        self._stopping = True
        self.watchdog.stop()
        if self.thread.is_alive():
            self._cmds.put(("stop",))
            self.thread.join(timeout_ms / 1000)
        elif self.engine is not None:      # died and not restarted: the feed still goes
            self.source.stop()

    def request_details(self, offender_id: str) -> None:
        self._cmds.put(("details", offender_id))

    def update_zone(self, feature: dict) -> None:
        self._cmds.put(("update_zone", feature))

    def remove_zone(self, zone_id: str) -> None:
        self._cmds.put(("remove_zone", zone_id))

    def attach_zone(self, feature: dict, offender_id: str, requirement: dict) -> None:
        """A new zone and the requirement of ``offender_id`` that uses it."""
        self._cmds.put(("attach_zone", feature, offender_id, requirement))

    def set_speed(self, speed: float) -> None:
        self._cmds.put(("speed", float(speed)))

    # ----- the engine thread ---------------------------------------------------------------
    def _main(self, restart: bool = False) -> None:
        try:
            self._run(restart)
        except BaseException as e:   # noqa: BLE001 - the watchdog annunciates it and restarts
            self.died = f"{e.__class__.__name__}: {e}"     # the thread ends here

    def _rebuilt_engine(self):
        """A fresh engine, built in this thread, from the dead engine's state (or, if that
        cannot be read, the store's checkpoint)."""
        from monitorapp.engine.engine import Engine
        old = self.engine
        try:
            state = old.snapshot()
        except Exception:      # noqa: BLE001 - fall back to the last checkpoint
            state = self.store.load_checkpoint(discard_after=False)[0] if self.store is not None else None
        engine = Engine(old.caseload, state=state) if state is not None else Engine(old.caseload, start=old.now)
        if self.store is not None:
            self.store.attach(engine)
        return engine

    def _run(self, restart: bool = False) -> None:
        try:
            if restart:
                engine = self._rebuilt_engine()
            elif hasattr(self._make_engine, "submit"):        # an Engine built by the caller
                engine = self._make_engine
            else:
                engine = self._make_engine()
                if self.store is not None:
                    self.store.attach(engine)
        except Exception as e:     # a caseload the engine refuses, a store already fed elsewhere
            self.failed.emit(f"the engine could not start: {e}")
            return
        if restart:      # the fault in the record, with the id the queue already shows; it works again
            why, at = self.died or "the engine thread stopped", self._died_at
            self.died = None
            engine.add_listener(on_alert=self._on_alert, on_position=self._on_position)
            engine.raise_system_fault("engine", "thread", why, at)
            engine.clear_system_fault("engine", "thread", max(at or 0.0, self.source.now()))
            self.engine = engine
            self.caseload = engine.caseload
            self._build_shapes()
            self._loop()
            return
        engine.add_listener(on_alert=self._on_alert, on_position=self._on_position)
        self.engine = engine
        self.caseload = engine.caseload      # the engine edits it; read it only in this thread
        self._build_shapes()
        self.ready.emit()
        keep = []
        if engine.alerts:        # restored from a checkpoint: the queue shows what was open
            keep = [("raised", copy.copy(a)) for a in engine.alerts.values()
                    if a.state == "active" or (engine.now or 0) - (a.cleared_at or 0) < 12 * 3600]
        if self.store is not None and self.checkpoint_s:
            # live: the store's record is the queue's truth too. Alerts it holds open that the
            # checkpoint does not (no checkpoint yet, an older one, another writer) are shown.
            keep += self._open_in_store({a.alert_id for _c, a in keep} | set(engine.alerts),
                                        float(engine.now or self.source.now()))
        if keep:
            self._emit_addresses(keep)
            self.restored.emit(keep, float(engine.now or self.source.now()))
        self._loop()

    def _open_in_store(self, known: set, now: float) -> list:
        """[("raised", Alert)] for the store's alerts not closed (and not cleared more than 12 h
        ago) that are not in ``known``."""
        from monitorapp.engine.alerts import Alert
        try:
            records = self.store.alerts()
        except Exception as e:     # noqa: BLE001 - said, and the console goes on
            self.failed.emit(f"open alerts not read from the store: {e}")
            return []
        out = []
        for d in records:
            if d["alert_id"] in known or d.get("handling") == "closed":
                continue
            if d["state"] != "active" and now - (d.get("cleared_at") or 0) >= 12 * 3600:
                continue
            out.append(("raised", Alert(
                d["alert_id"], d["type"], d["priority"], d.get("offender_id"), d.get("device"),
                d.get("requirement_id"), d.get("zone_id"), float(d["start"]), float(d["raised_at"]),
                bool(d.get("late")), d.get("evidence") or {}, d["state"], d.get("cleared_at"),
                int(d.get("reactivations") or 0), d.get("zone_version"))))
        return out

    def _loop(self) -> None:
        handlers = {"details": self._details, "update_zone": self._update_zone,
                    "remove_zone": self._remove_zone, "attach_zone": self._attach_zone,
                    "speed": self._set_speed}
        next_tick = time.monotonic()
        while True:          # an exception other than Exception ends the thread: the watchdog
            try:
                cmd = self._cmds.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                cmd = None
            if cmd is not None:
                if cmd[0] == "stop":
                    break
                try:
                    handlers[cmd[0]](*cmd[1:])
                except Exception as e:     # one bad request never stops the engine
                    self.failed.emit(f"{cmd[0]} failed: {e.__class__.__name__}: {e}")
                continue
            try:
                self._tick()
            except Exception as e:     # noqa: BLE001 - annunciated; the engine goes on
                self._fault("engine", "tick", e)
            next_tick = max(next_tick + TICK_MS / 1000, time.monotonic() + 0.005)
        try:                 # stopped on purpose: checkpoint, then let the feed go
            if self.checkpoint_s:
                self._checkpoint()
        finally:
            self.source.stop()

    def _checkpoint(self) -> None:
        """Engine state and feed position into the store, then acknowledge to the broker."""
        try:
            self.store.checkpoint(self.engine, {"at": self.source.now()})
        except Exception as e:
            self.failed.emit(f"checkpoint failed: {e}")
            return
        pending, self._unacked = self._unacked, []
        if pending:
            self.source.ack(pending)
        self._last_checkpoint = time.monotonic()

    def _on_alert(self, alert, change: str) -> None:
        self._alerts.append((change, copy.copy(alert)))

    def _on_position(self, device: str, fix) -> None:
        self._moved[device] = {"device": device, "lat": fix.lat, "lon": fix.lon, "acc": fix.acc,
                               "t": fix.t, "batt": fix.batt}
        h = self._history.get(device)
        if h is None:      # the details charts show 24 h: keep no more (ui/console/fixhistory.py)
            h = self._history[device] = FixHistory(HISTORY_MAX, HISTORY_S)
        h.append(fix.t, fix.lat, fix.lon, fix.acc, fix.spd, fix.batt)

    def _fault(self, component: str, kind: str, error) -> None:
        text = error if isinstance(error, str) else f"{error.__class__.__name__}: {error}"
        self.engine.raise_system_fault(component, kind, text, self.source.now())

    def _ok(self, component: str, kind: str) -> None:
        self.engine.clear_system_fault(component, kind, self.source.now())

    def _writer_behind(self) -> bool:
        """The store's writer has more than WRITER_BACKLOG_MAX items queued and is healthy: the
        feed waits (the broker, or the simulator, holds the messages) rather than this process
        holding an ever longer queue of fixes in memory, and an acknowledgement (which commits
        after everything queued before it) never waits long. A writer that cannot write is not
        waited for: monitoring goes on and the writer holds what it was given (its health says
        so)."""
        w = getattr(self.store, "writer", None) if self.store is not None else None
        if w is None or getattr(w, "error", None) is not None or not getattr(w, "alive", False):
            return False
        return getattr(w, "backlog", 0) > WRITER_BACKLOG_MAX

    def _check_health(self) -> None:
        """Once a second, in the engine thread: the store writer, the broker, engine timers;
        every 10 minutes of the processing clock, the engine forgets alerts cleared more than
        12 h ago (weeks of them would otherwise stay in memory and in every checkpoint)."""
        now = self.engine.now
        if now is not None and now >= self._next_forget:
            self._next_forget = now + 600.0
            self.engine.forget_cleared(now - FORGET_CLEARED_S)
        if self.store is not None:
            w = self.store.writer
            problem = w.health()
            if problem and w.restart():
                self._fault("store", "writer", problem + "; restarted")
                self.failed.emit(f"store writer restarted ({problem})")
            elif problem:
                self._fault("store", "write" if w.error is not None else "writer", problem)
            else:
                self._ok("store", "write")
                self._ok("store", "writer")
        mono = time.monotonic()
        if self.source.connected:
            self._disconnected_since = None
            self._ok("broker", "unreachable")
        else:
            if self._disconnected_since is None:
                self._disconnected_since = mono
            if mono - self._disconnected_since > BROKER_UNREACHABLE_S:
                client = getattr(self.source, "client", None)
                self._fault("broker", "unreachable", f"no connection for {mono - self._disconnected_since:.0f} s"
                            f" ({getattr(client, 'last_error', None) or 'not connected'})")
        errors = self.engine.take_errors()
        if errors:
            self._engine_error_at = mono
            self._fault("engine", "timer", errors[-1])
        elif self._engine_error_at is not None and mono - self._engine_error_at > 60.0:
            self._engine_error_at = None
            self._ok("engine", "timer")

    def _poll(self, n: int) -> list:
        try:
            batch = self.source.poll(n)
        except Exception as e:      # noqa: BLE001 - a feed source that fails is annunciated
            self._fault("feed", "poll", e)
            return []
        self._ok("feed", "poll")
        return batch

    def _tick(self) -> None:
        t0 = time.monotonic()
        if t0 >= self._next_health:
            self._next_health = t0 + HEALTH_S
            self._check_health()
        if self._writer_behind():       # nothing new taken, the clock held; the GUI still hears
            mono = time.monotonic()
            if mono - self._last_emit >= EMIT_MS / 1000:
                self._last_emit = mono
                self._emit()
            return
        submit = self.engine.submit
        n = 0
        while True:
            batch = self._poll(CHUNK)
            for item in batch:
                rx, raw, topic = item[0], item[1], item[2]
                if hasattr(item, "arrival"):          # an MQTT Delivery
                    rx, raw, topic = item.arrival, item.payload, item.topic
                submit(raw, rx=rx, topic=topic)
            if batch:
                self._last_msg_at = self.source.now()     # the status bar's "no data for N min"
                if self.checkpoint_s:
                    self._unacked.extend(batch)
                else:
                    self.source.ack(batch)
                n += len(batch)
                last = batch[-1]
                rx = getattr(last, "arrival", None) or last[0]
                if rx:
                    self._lag_s = max(0.0, self.source.now() - rx)
            if len(batch) < CHUNK or time.monotonic() - t0 > BUDGET_S or self._writer_behind():
                break
        now = self.source.now()
        ended = getattr(self.source, "ended_at", None)     # a training feed over by design
        self.engine.advance(now if ended is None else min(now, ended))
        mono = time.monotonic()
        if self.checkpoint_s and mono - self._last_checkpoint >= self.checkpoint_s:
            self._checkpoint()
        self._msgs_window.append((mono, n))
        while self._msgs_window and mono - self._msgs_window[0][0] > 5.0:
            self._msgs_window.popleft()
        if mono - self._last_emit >= EMIT_MS / 1000:
            self._last_emit = mono
            self._emit()

    def _emit(self) -> None:
        now = self.source.now()
        if self._alerts:
            batch, self._alerts = self._alerts, []
            self._emit_addresses(batch)
            self.alertBatch.emit(batch, now)
        if self._moved and self._taken["positions"].is_set():
            moved, self._moved = list(self._moved.values()), {}
            self._add_addresses(moved)
            self._taken["positions"].clear()
            self.positions.emit(moved)
        if not self._taken["stats"].is_set():
            return
        span = max(1e-3, (self._msgs_window[-1][0] - self._msgs_window[0][0])) if len(self._msgs_window) > 1 else 1.0
        rate = sum(n for _, n in self._msgs_window) / span
        c = self.engine.counters
        lost = getattr(self.engine, "feed_is_lost", None)
        silent = bool(lost()) if callable(lost) else False     # no message for 60 s: spec §4 feed_lost
        faults = [f"{a.evidence.get('component')}: {a.evidence.get('error')}"
                  for a in self.engine.system_faults()]
        self._last_stats = {"now": now, "connected": bool(self.source.connected) and not silent, "msgs_per_s": rate,
                            "lag_s": self._lag_s, "messages": c.messages, "rejected": c.rejected,
                            "alerts": c.alerts, "speed": getattr(self.source, "speed", 1.0),
                            "faults": faults, "engine_down": None, "last_msg_at": self._last_msg_at,
                            "ended_at": getattr(self.source, "ended_at", None)}
        self._taken["stats"].clear()
        self.stats.emit(dict(self._last_stats))

    # ----- addresses (reverse geocoding, in this thread) ---------------------------------------
    def _lookup(self, lonlats: list[tuple[float, float]]) -> list | None:
        """Places.addresses for [(lon, lat)], or None (no Places, or it failed: said once)."""
        if self.places is None or not lonlats:
            return None
        try:
            return self.places.addresses([p[0] for p in lonlats], [p[1] for p in lonlats])
        except Exception as e:     # noqa: BLE001 - positions go on without addresses
            text = f"addresses not available: {e.__class__.__name__}: {e}"
            if text != self._address_error:
                self._address_error = text
                self.failed.emit(text)
            return None

    def _add_addresses(self, moved: list[dict]) -> None:
        found = self._lookup([(m["lon"], m["lat"]) for m in moved])
        for m, a in zip(moved, found or ()):
            m["address"] = str(a)
            m["address_text"] = a.describe()

    def _emit_addresses(self, changes: list) -> None:
        ids, points = [], []
        for _change, alert in changes:
            at = alert_lonlat(alert)
            if at is not None:
                ids.append(alert.alert_id)
                points.append(at)
        found = self._lookup(points)
        if found:
            self.addresses.emit({aid: a.describe() for aid, a in zip(ids, found) if str(a)})

    def _set_speed(self, speed: float) -> None:
        if hasattr(self.source, "set_speed"):
            self.source.set_speed(speed)

    def _update_zone(self, feature: dict) -> None:
        try:
            version = self.engine.update_zone(feature)
        except Exception as e:     # a bad zone is refused with its reason, the engine goes on
            self.failed.emit(f"zone {feature.get('id')!r} refused: {e}")
            self.zoneRefused.emit(str(feature.get("id")), str(e))
            return
        self._build_shapes()
        self.zoneApplied.emit(str(feature.get("id")), int(version or 0))

    def _attach_zone(self, feature: dict, offender_id: str, requirement: dict) -> None:
        try:        # zone and requirements checked together: a refusal changes neither
            off = self.engine.caseload.offenders[offender_id]
            reqs = [dict(r) for r in off.raw.get("requirements", [])]
            reqs = [r for r in reqs if r.get("id") != requirement["id"]] + [requirement]
            version = self.engine.attach_zone(feature, offender_id, reqs)
        except Exception as e:
            self.failed.emit(f"zone {feature.get('id')!r} for {offender_id} refused: {e}")
            self.zoneRefused.emit(str(feature.get("id")), str(e))
            return
        self._build_shapes()
        self.zoneApplied.emit(str(feature.get("id")), int(version or 0))

    def _remove_zone(self, zone_id: str) -> None:
        try:
            self.engine.remove_zone(zone_id)
        except Exception as e:
            self.failed.emit(f"zone {zone_id!r} not removed: {e}")
            self.zoneRefused.emit(str(zone_id), str(e))
            return
        self._build_shapes()
        self.zoneApplied.emit(zone_id, 0)

    # ----- details of one offender -----------------------------------------------------------
    def _build_shapes(self) -> None:
        """Exclusion zones per offender and every version of each zone, for the distance-to-
        boundary chart: the past is measured against the version in force at that time (as the
        engine decided the alerts), never against today's geometry. A version is in force from
        the processing clock at which the engine applied it. (The chart's fixes are this run's,
        kept in memory, so this run's versions are all it needs; the first is in force from the
        start. The store keeps every version for the record, localdb/records.py.)"""
        zones = self.caseload.zones
        at = float(self.engine.now if self.engine is not None and self.engine.now is not None
                   else self.source.now())
        for zid in set(self._zone_history) | set(zones):
            z = zones.get(zid)
            key = None if z is None else _zone_key(z.geometry, z.radius_m)
            hist = self._zone_history.setdefault(zid, [])
            if hist and hist[-1].key == key:
                continue
            if not hist and key is None:
                continue
            shape_ = None if z is None else BoundaryDistance(z.geometry, z.radius_m)
            hist.append(ZoneVersion(at if hist else -math.inf, key, shape_))
        self._exclusion_by_offender = {
            o.id: [r.zone for r in o.requirements if r.type == "exclusion" and r.zone in self._zone_history]
            for o in self.caseload.offenders.values()}

    def _distance_m(self, offender_id: str, ts, lons, lats) -> list[float]:
        """Metres outside the nearest exclusion boundary (< 0: inside) at each fix, against the
        zone versions in force at each fix's time; NaN where no exclusion zone was in force."""
        return distance_in_force(self._zone_history, self._exclusion_by_offender.get(offender_id, []),
                                 ts, lons, lats)

    def _details(self, offender_id: str) -> None:
        o = self.caseload.offenders.get(offender_id)
        if o is None:
            self.details.emit({"offender": offender_id, "error": "unknown offender"})
            return
        now = self.source.now()
        h = self._history.get(o.device)
        hist = h.rows(since=now - HISTORY_S) if h is not None else []
        ts = [h[0] for h in hist]
        lons = np.fromiter((h[2] for h in hist), float, len(hist))
        lats = np.fromiter((h[1] for h in hist), float, len(hist))
        dist = self._distance_m(o.id, ts, lons, lats)
        zone_changes = sorted(v.t_from for z in self._exclusion_by_offender.get(o.id, [])
                              for v in self._zone_history.get(z, [])[1:] if ts and v.t_from >= ts[0])
        speed = []
        prev = None
        for t, lat, lon, acc, spd, batt in hist:
            if spd is not None:
                speed.append(spd)
            elif prev is not None and t > prev[0]:
                d = _haversine_m(prev[1], prev[2], lat, lon)
                speed.append(d / (t - prev[0]))
            else:
                speed.append(0.0)
            prev = (t, lat, lon)
        batt = [h[5] if h[5] is not None else math.nan for h in hist]
        tag = self.engine.tags.get(o.device)
        tag_info = {}
        if tag is not None:
            for name in ("last_fix", "last_rx", "battery", "batt", "acc", "last_t", "signal", "sats", "src"):
                v = getattr(tag, name, None)
                if v is not None and not callable(v):
                    tag_info[name] = v
        last = hist[-1] if hist else None
        self.details.emit({
            "offender": o.id, "name": o.name, "borough": o.borough, "risk": o.risk, "device": o.device,
            "fix_interval_s": o.fix_interval_s,
            "requirements": [{"id": r.id, "type": r.type, "zone": r.zone,
                              "zone_name": self.caseload.zones[r.zone].name if r.zone in self.caseload.zones else r.zone,
                              "schedule": r.schedule, "start": r.start, "end": r.end} for r in o.requirements],
            "now": now, "t": ts, "distance_m": dist, "zone_changes": zone_changes, "speed_ms": speed, "battery": batt,
            "last": {"t": last[0], "lat": last[1], "lon": last[2], "acc": last[3], "batt": last[5],
                     "address": _describe(self._lookup([(last[2], last[1])]))} if last else None,
            "tag": _jsonable(tag_info),
            "trail": [{"lat": h[1], "lon": h[2], "t": h[0], "acc": h[3]} for h in hist[-720:]],
        })


def distance_in_force(history: dict, zone_ids: list[str], ts, lons, lats) -> list[float]:
    """Metres outside the nearest of ``zone_ids`` (< 0: inside) at each fix, against the
    ``ZoneVersion`` of ``history`` in force at each fix's time; NaN where none was in force."""
    if not zone_ids or not len(ts):
        return []
    ts = np.asarray(ts, float)
    best = np.full(len(ts), np.inf)
    for zid in zone_ids:
        versions = history.get(zid, [])
        for i, v in enumerate(versions):
            end = versions[i + 1].t_from if i + 1 < len(versions) else np.inf
            mask = (ts >= v.t_from) & (ts < end)
            if v.shape is None or not mask.any():
                continue
            best[mask] = np.minimum(best[mask], v.shape.outside_m(lons[mask], lats[mask]))
    return np.where(np.isfinite(best), best, np.nan).round(1).tolist()


class ZoneVersion(collections.namedtuple("ZoneVersion", "t_from key shape")):
    """One version of a zone for the details chart: in force from ``t_from`` (processing
    clock; -inf for the first known), ``key`` its geometry (None: removed), ``shape`` its
    ``BoundaryDistance`` (None: removed or unreadable)."""


def _zone_key(geometry: dict, radius_m) -> tuple:
    return (json.dumps(geometry, sort_keys=True), None if radius_m is None else float(radius_m))


class BoundaryDistance:
    """Signed distance in metres from points to one zone's boundary, for the details chart.

    Uses a local tangent plane at the zone's centre (equirectangular on the mean sphere; under
    0.1 % scale error within 10 km) and shapely 2's vectorised functions, with no PROJ
    transformer: those are kept to the engine, which owns the authoritative geometry.
    """

    R = 6371008.8

    def __init__(self, geometry: dict, radius_m: float | None):
        self.circle = geometry["type"] == "Point"
        if self.circle:
            self.lon0, self.lat0 = (float(v) for v in geometry["coordinates"][:2])
            self.radius = float(radius_m or 0)
        else:
            g = shape(geometry)
            c = g.envelope.centroid
            self.lon0, self.lat0 = c.x, c.y
        self.ky = self.R * math.pi / 180
        self.kx = self.ky * math.cos(math.radians(self.lat0))
        if not self.circle:
            geom = shapely.transform(g, lambda p: np.column_stack(self._xy(p[:, 0], p[:, 1])))
            self.geom = geom if geom.is_valid else shapely.make_valid(geom)
            self.boundary = self.geom.boundary
            shapely.prepare(self.geom)

    def _xy(self, lons, lats):
        return (np.asarray(lons) - self.lon0) * self.kx, (np.asarray(lats) - self.lat0) * self.ky

    def outside_m(self, lons, lats) -> np.ndarray:
        x, y = self._xy(lons, lats)
        if self.circle:
            return np.hypot(x, y) - self.radius
        d = shapely.distance(self.boundary, shapely.points(x, y))
        return np.where(shapely.contains_xy(self.geom, x, y), -d, d)


def alert_lonlat(alert) -> tuple[float, float] | None:
    """(lon, lat) of the fix an alert is about, as the decider names it
    (``monitorapp.service.placenames.alert_lonlat``)."""
    from monitorapp.service.placenames import alert_lonlat as of_record
    ev = alert.evidence if isinstance(getattr(alert, "evidence", None), dict) else {}
    return of_record({"evidence": ev})


def _describe(found) -> str | None:
    return found[0].describe() or None if found else None


def _jsonable(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, (int, float, str, bool)):
            out[k] = v
        elif hasattr(v, "lat") and hasattr(v, "lon"):
            out[k] = {"lat": v.lat, "lon": v.lon, "acc": getattr(v, "acc", None), "t": getattr(v, "t", None),
                      "sats": getattr(v, "sats", None), "src": getattr(v, "src", None)}
    return out


def _haversine_m(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371000.0 * math.asin(math.sqrt(a))
