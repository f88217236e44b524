"""``monitorapp monitor``: the centre's one decider on an MQTT broker (spec §7, v2 §8; issues 4, 15).

It subscribes to the feed (``FeedClient``), evaluates every message with the engine, stores
everything in the store (a SQLite file, or the centre's record on PostgreSQL), and publishes its
state for the consoles (``monitorapp.service.publisher``): every alert and each change of it with
the record's handling on ``em/v1/alert/{alert_id}``, positions, applied zone versions and its own
heartbeat on ``em/v1/state/``. It learns what operators did only from the record
(``monitorapp.service.recordwatch``): never from a message a workstation published. It appends
raised alerts to ``--alerts-out`` (the replay format) and prints one JSON stats line every
``--stats-interval`` seconds and at exit. Its log goes to stderr as JSON lines
``{"ts", "level", "event", ...}``.

One decider, with standbys (PostgreSQL record): whoever holds the record's leader lock decides
(``monitorapp.service.leader``). A monitor that cannot take it waits as a standby, announcing
itself on ``em/v1/state/standby/{instance}``; when the active one dies the standby takes the lock,
restores the engine from the record's checkpoint, replays the record's feed journal after it,
and connects to the feed under the same client id, so the broker hands it what the dead one had
not acknowledged. An active decider whose lock connection fails stops deciding at once (a line
``leader_lock_lost`` and status 3): it acknowledges nothing more.

Nothing is lost: every received message is appended to the feed journal (``FeedJournal`` beside
a SQLite store, ``RecordJournal`` in a PostgreSQL record); every ``--commit-interval`` seconds
the journal is made durable and only then are its messages acknowledged to the broker. The
engine's state is checkpointed in the store every ``--checkpoint-interval`` seconds (at start,
after a zone version is applied and at SIGTERM too). A process killed at any point restarts (or
is taken over) from the last checkpoint, replays the journal with the original arrival times,
and the broker hands it every message it had not acknowledged; alert ids are deterministic, so
what is raised again updates the same row, the same retained message, and ``--alerts-out``
(whose ids are read back at start) gets no second line. SIGTERM/SIGINT: finish the batch,
checkpoint, acknowledge, publish "stopped", disconnect, exit 0.

Nothing stops monitoring (spec §2, §4): a message the engine quarantines (``processing_error``)
is recorded in ``{db}.quarantine`` and skipped when a restart meets it again; a journal that
cannot be written or synced (disk full), a store that cannot be written or read, a store writer
that died (restarted by the watchdog), the broker unreachable for more than 60 s, timer failures
and a failing main-loop step each raise one ``system_fault`` (published, stored, in
--alerts-out), cleared when the part works again, while the engine goes on evaluating in memory.
The journal, the quarantine list and --alerts-out are created 0600. A checkpoint that is not an
engine state stops the start with one line and status 2.

The processing clock (``--clock``): ``wall`` (the default, live) takes each message's arrival
time and advances the engine from the wall clock once a second, which is what raises
``feed_lost``; ``feed`` takes each message's own ``rx``, exactly as a replay does, for
accelerated simulations and for checking that the live path gives the replay's alerts.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time

from monitorapp.feed.mqttconfig import MqttConfigError, MqttSettings
from monitorapp.feed.mqttfeed import FeedClient, default_subscriptions
from monitorapp.feed.timeutil import fmt_time
from monitorapp.service.decider import MAX_PAYLOAD, FeedStats, LiveProcessor  # noqa: F401
from monitorapp.service.journal import (AlertsFile, FeedJournal, QuarantineList,  # noqa: F401
                                        RecordJournal)
from monitorapp.service.replaystore import CheckpointError, restore_engine

log = logging.getLogger("monitorapp.service.monitor")
EXIT_LEADER_LOST = 3


class JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        d = {"ts": fmt_time(record.created), "level": record.levelname.lower(),
             "event": record.getMessage().replace(" ", "_")}
        d.update(getattr(record, "fields", None) or {})
        return json.dumps(d, default=str)


def setup_logging(verbose: bool = False) -> None:
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonLogFormatter())
    root = logging.getLogger("monitorapp")
    root.handlers[:] = [h]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="monitorapp monitor", description=__doc__.split("\n\n")[0])
    p.add_argument("--broker", required=True, help="mqtt://host:port or mqtts://host:port")
    p.add_argument("--caseload", required=True, help="caseload file (spec §3)")
    p.add_argument("--db", required=True,
                   help="the store: a SQLite file, or the centre's record as postgresql://...")
    p.add_argument("--alerts-out", help="append each raised alert here (alerts.ndjson format)")
    p.add_argument("--client-id", help="persistent-session client id (default: per workstation; "
                   "with a PostgreSQL record em-decider, shared by the decider and its standby)")
    p.add_argument("--instance", help="this monitor's name in em/v1/state/decider and "
                   "em/v1/state/standby/ (default: the host name)")
    p.add_argument("--ca", help="CA file for mqtts://")
    p.add_argument("--cert", help="client certificate for mqtts://")
    p.add_argument("--key", help="client certificate's key")
    p.add_argument("--username", help="broker user name")
    p.add_argument("--password-file", help="file whose first line is the broker password "
                   "(or set MONITORAPP_MQTT_PASSWORD)")
    p.add_argument("--mqtt-version", choices=("5", "3.1.1"), default="5")
    p.add_argument("--traccar-topic", action="append", default=None, metavar="TOPIC",
                   help="also subscribe to Traccar forwarding on this topic: positions (forward.topic) or "
                        "events (event.forward.topic); give it once per topic")
    p.add_argument("--owntracks", action="store_true", help="also subscribe to OwnTracks (see --owntracks-topic)")
    p.add_argument("--owntracks-topic", default=None, metavar="PATTERN",
                   help="OwnTracks topic layout (default owntracks/+/+): the levels after the fixed root "
                        "name the device, e.g. fleet/tags/+ or owntracks/#; implies --owntracks")
    p.add_argument("--default-acc", action="append", default=None, metavar="KEY=METRES",
                   help="accuracy of fixes whose source gives neither accuracy nor HDOP: KEY is traccar, "
                        "traccar:PROTOCOL (e.g. traccar:gt06), model:DEVICE_MODEL, owntracks or approximate")
    p.add_argument("--source-silence-s", type=float, default=300.0,
                   help="raise system_fault when a source (v1, traccar, owntracks) that delivered before "
                        "is silent this long (0: never; default 300)")
    p.add_argument("--clock", choices=("wall", "feed"), default="wall",
                   help="processing clock: arrival time and wall clock (live), or the messages' rx")
    p.add_argument("--stats-interval", type=float, default=10.0, help="seconds between stats lines")
    p.add_argument("--commit-interval", type=float, default=0.5,
                   help="seconds between journal syncs (messages are acknowledged after them)")
    p.add_argument("--checkpoint-interval", type=float, default=300.0,
                   help="seconds between checkpoints of the engine's state in the store")
    p.add_argument("--places", default=None, metavar="BASEMAP|off",
                   help="name the street and borough of each published alert and position from this "
                        "basemap's side files (default: the shipped London basemap; off: none)")
    p.add_argument("--retention-days", type=float, default=365.0,
                   help="purge stored fixes older than this many days, at start and daily (default 365)")
    p.add_argument("--protocols", default=None, metavar="FILE",
                   help="the centre's response protocols (JSON; default: the shipped ones), "
                        "recorded at start as a new version when they changed")
    p.add_argument("--verbose", action="store_true")
    from monitorapp.notify.options import add_arguments as add_notify_arguments
    add_notify_arguments(p)                 # --smtp-*, --notify-policy (monitorapp/notify)
    return p.parse_args(argv)


def cli_main(argv: list[str]) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from localdb.schema import StoreError
    from monitorapp.engine.caseload import CaseloadError, load_caseload
    try:
        from centraldb import is_pg_target
        settings = MqttSettings.from_args(
            args.broker, client_id=args.client_id or ("em-decider" if is_pg_target(args.db) else None), ca=args.ca, cert=args.cert, key=args.key,
            username=args.username, password_file=args.password_file,
            protocol=5 if args.mqtt_version == "5" else 4, role="monitor")
        caseload = load_caseload(args.caseload)
        from monitorapp.response.protocols import load_protocols
        args.protocols_doc = load_protocols(args.protocols)    # every problem named, exit 2
        from monitorapp.feed.adapters import AccuracyDefaults
        args.acc_defaults = AccuracyDefaults.parse(args.default_acc)
        from monitorapp.notify.options import check as check_notify
        args.notify = check_notify(args)    # a bad policy or relay option: one line, exit 2
        alerts_out = AlertsFile(args.alerts_out) if args.alerts_out else None
    except (MqttConfigError, CaseloadError, OSError, ValueError) as e:
        print(f"monitorapp monitor: {e}", file=sys.stderr)
        return 2
    try:
        from centraldb import open_store
        store = open_store(args.db)
    except StoreError as e:
        print(f"monitorapp monitor: {e}", file=sys.stderr)
        return 2
    try:
        return run(args, settings, caseload, store, alerts_out)
    except CheckpointError as e:
        print(f"monitorapp monitor: {e}", file=sys.stderr)
        return 2
    except StoreError as e:
        log.error("store failed", extra={"fields": {"error": str(e)}})
        print(f"monitorapp monitor: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
        if alerts_out:
            alerts_out.close()


def run(args, settings: MqttSettings, caseload, store, alerts_out) -> int:
    """Take the leader lock (PostgreSQL record; waiting as a standby while another holds it),
    then decide until a signal, or until the lock is lost."""
    from centraldb import is_pg_target
    from monitorapp.service.leader import LeaderLock
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.set())
    instance = (args.instance or socket.gethostname())[:40]
    started = time.time()
    pg = is_pg_target(args.db)
    leader = LeaderLock(store) if pg else None
    try:
        if leader is not None and not wait_for_leadership(leader, settings, instance, started, stop):
            log.info("monitor stopped", extra={"fields": {"standby": True}})
            return 0
        return decide(args, settings, caseload, store, alerts_out, stop, leader, instance, started, pg)
    finally:
        if leader is not None:
            leader.release()


def wait_for_leadership(leader, settings, instance: str, started: float, stop) -> bool:
    """Try the leader lock every second, announcing this standby meanwhile; True once held
    (and no deposed decider still feeds the record), False when stopped first."""
    from monitorapp.service.publisher import StandbyAnnouncer
    announcer = None
    t0 = time.monotonic()
    record_error = None
    try:
        while not stop.is_set():
            try:
                if leader.held or leader.try_acquire():
                    if leader.feed_lock_free():
                        log.info("leader lock taken", extra={"fields": {
                            "instance": instance, "waited_s": round(time.monotonic() - t0, 2)}})
                        return True
                record_error = None
            except Exception as e:         # noqa: BLE001 - the record unreachable: wait on
                if record_error is None:
                    log.warning("record unreachable", extra={"fields": {"error": str(e)[:300]}})
                record_error = str(e)
                if leader.conn is not None:
                    try:
                        leader.conn.close()
                    except Exception:      # noqa: BLE001
                        pass
                    leader.conn = None
            if announcer is None:
                log.info("standby waiting", extra={"fields": {"instance": instance}})
                announcer = StandbyAnnouncer(settings, instance, started)
                announcer.start()
            announcer.tick("unreachable" if record_error else "ok")
            stop.wait(1.0)
        return False
    finally:
        if announcer is not None:
            announcer.stop()


def decide(args, settings, caseload, store, alerts_out, stop, leader, instance, started, pg) -> int:
    from centraldb import local_files_base     # beside a SQLite file; for PostgreSQL, local
    from monitorapp.feed.adapters import AdapterState
    from monitorapp.service.publisher import HEARTBEAT_S, DeciderPublisher
    from monitorapp.service.recordwatch import RecordWatch
    engine, position = restore_engine(caseload, store)
    resumed = position is not None
    if not resumed:
        store.record_caseload(caseload)
    if getattr(args, "protocols_doc", None) is not None:     # the checklists the record enforces
        store.record_protocols(args.protocols_doc)
    store.attach(engine)
    log.info("monitor starting", extra={"fields": {
        **settings.describe(), "db": str(store.path), "caseload": str(args.caseload), "clock": args.clock,
        "resumed_from_checkpoint": resumed, "pid": os.getpid(), "instance": instance}})
    position = position or {}
    from monitorapp.service.placenames import PlaceNamer, load_places
    out = DeciderPublisher(settings, instance, started, namer=PlaceNamer(load_places(args.places)))
    out.start()                         # connected by the time the replay's alerts go out
    watch = RecordWatch(store, pg, position.get("ack_seq"), position.get("zone_versions") or {})
    owntracks = args.owntracks_topic or ("owntracks/+/+" if args.owntracks else None)
    feed = FeedClient(settings, default_subscriptions(args.traccar_topic, owntracks))
    journal = RecordJournal(store) if pg else FeedJournal(local_files_base(args.db))
    proc = LiveProcessor(engine, store, feed, out, alerts_out, position, journal,
                         feed_clock=args.clock == "feed",
                         quarantine=QuarantineList(local_files_base(args.db)),
                         adapters=AdapterState(getattr(args, "acc_defaults", None)),
                         owntracks_topic=owntracks, source_silence_s=args.source_silence_s,
                         watch=watch)
    from monitorapp.notify.options import start_notifier
    notifier = start_notifier(args, store, caseload, engine, proc)     # None without --smtp-host
    replayed = 0
    batch = []
    for d in journal.replay(position):
        batch.append(d)
        if len(batch) >= 5000:
            proc.process(batch, journal=False)
            replayed += len(batch)
            batch = []
    if batch:
        proc.process(batch, journal=False)
        replayed += len(batch)
    try:
        journal.open()
    except OSError as e:      # annunciated, retried at the next append; evaluation goes on
        journal.broken = True
        proc.fault("journal", "write", f"{journal.where()}: {e}")
    if replayed:
        log.info("journal replayed", extra={"fields": {"messages": replayed}})
    proc.read_record(force=True)        # what operators did while no decider was running
    proc.checkpoint()         # from here on, a crash resumes from this point and this journal
    stats = FeedStats(engine, feed)

    watch.start()
    feed.start()
    clock = {"stats": time.monotonic() + args.stats_interval,
             "commit": time.monotonic() + args.commit_interval,
             "checkpoint": time.monotonic() + args.checkpoint_interval,
             "advance": 0.0, "purge": time.monotonic(), "heartbeat": 0.0}   # purge: at start, daily
    lost = None
    try:
        while not stop.is_set():
            if leader is not None and leader.lost:
                lost = leader.reason
                break
            try:
                _loop_once(args, engine, store, feed, proc, stats, clock)
                if notifier is not None:
                    notifier.tick()
                mono = time.monotonic()
                if mono >= clock["heartbeat"]:
                    clock["heartbeat"] = mono + HEARTBEAT_S
                    out.status("active", record_state(proc), feed_state(engine, feed))
            except Exception as e:      # noqa: BLE001 - the live monitor must not silently stop
                log.exception("monitor loop failed")
                proc.fault("monitor", "loop", e)
                stop.wait(0.5)
        if lost is not None:
            # a standby may hold the lock now: nothing more is written, acknowledged or published
            log.error("leader lock lost", extra={"fields": {"reason": lost, "instance": instance}})
            return EXIT_LEADER_LOST
        log.info("monitor stopping", extra={"fields": {"reason": "signal"}})
        proc.publish_changes()
        proc.checkpoint()
        proc.commit()
        out.flush_positions(float("inf"))
    finally:
        feed.stop()
        if notifier is not None:
            notifier.stop()
        watch.stop()
        if lost is not None:
            out.stop(None)                    # the broker publishes the will: "lost"
        else:
            out.stop("stopped", record=record_state(proc), feed=feed_state(engine, feed))
        journal.close()
    emit_stats(stats.line(proc, final=True))
    log.info("monitor stopped", extra={"fields": {"checkpointed": True}})
    return 0


def record_state(proc) -> str:
    """"ok", or "unreachable" when the record cannot be read or written."""
    if proc.record_error is not None or proc.store.writer.health() is not None:
        return "unreachable"
    return "ok"


def feed_state(engine, feed) -> dict:
    c = engine.counters
    return {"connected": feed.connected, "messages": c.messages, "fixes": c.fixes,
            "rejected": c.rejected, "backlog": feed.backlog}


def _loop_once(args, engine, store, feed, proc, stats, clock) -> None:
    """One turn of the main loop: a batch in, what changed in the record, the clock, alerts and
    positions out, the journal committed, checkpoints, stats, retention, the watchdog."""
    batch = feed.get_batch(max_items=5000, timeout=0.2)
    if batch:
        proc.process(batch)
    proc.read_record()
    mono = time.monotonic()
    if mono >= clock["advance"]:
        clock["advance"] = mono + 1.0
        if args.clock == "wall":
            engine.advance(time.time())
        proc.check_health()
        proc.check_sources(time.time())
        proc.check_shelved(time.time())
    proc.publish_changes()
    proc.out.flush_positions(mono)
    if mono >= clock["commit"]:
        clock["commit"] = mono + args.commit_interval
        proc.commit()
    if mono >= clock["checkpoint"] or proc._dirty_position:
        clock["checkpoint"] = time.monotonic() + args.checkpoint_interval
        proc.checkpoint()
    if mono >= clock["stats"]:
        clock["stats"] = mono + args.stats_interval
        emit_stats(stats.line(proc))
    if mono >= clock["purge"]:
        clock["purge"] = mono + 86400.0
        purged = store.purge_fixes("monitor", retention_days=args.retention_days)
        log.info("retention purge", extra={"fields": {"deleted": purged, "retention_days": args.retention_days}})
    proc.ok("monitor", "loop")


def emit_stats(line: dict) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
