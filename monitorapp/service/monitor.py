"""``monitorapp monitor``: the headless live engine on an MQTT broker (spec §7, issue 4).

It subscribes to the feed (``FeedClient``), evaluates every message with the engine, stores
everything (``localdb.Store``), publishes each alert and each change of its state to
``em/v1/alert/{alert_id}`` (retained), applies acknowledgements and zone edits that arrive
through the broker (``SharedState``), appends raised alerts to ``--alerts-out`` (the replay
format) and prints one JSON stats line every ``--stats-interval`` seconds and at exit.
Its log goes to stderr as JSON lines ``{"ts", "level", "event", ...}``.

Nothing is lost: every received message is appended to the feed journal (``FeedJournal``)
next to the store; every ``--commit-interval`` seconds the journal is fsync'd and only then are
its messages acknowledged to the broker. The engine's state is checkpointed in the store every
``--checkpoint-interval`` seconds (at start and at SIGTERM too), where the journal starts a new
file. A process killed at any point restarts from its last checkpoint, replays the journal
with the original arrival times, and the broker hands it every message it had not
acknowledged; alert ids are deterministic, so what is raised again updates the same row, the
same retained message, and ``--alerts-out`` (whose ids are read back at start) gets no second
line. SIGTERM/SIGINT: finish the batch, checkpoint, acknowledge, disconnect, exit 0.

Nothing stops monitoring (spec §2, §4): a message the engine quarantines (``processing_error``)
is recorded in ``{db}.quarantine`` and skipped when a restart meets it again; a journal that
cannot be written or synced (disk full), a store that cannot be written, a store writer that
died (restarted by the watchdog), the broker unreachable for more than 60 s, timer failures and
a failing main-loop step each raise one ``system_fault`` (published, stored, in --alerts-out),
cleared when the part works again, while the engine goes on evaluating in memory. The journal,
the quarantine list and --alerts-out are created 0600. A checkpoint that is not an engine state
stops the start with one line and status 2.

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
import queue
import hashlib
import signal
import struct
import sys
import threading
import time

import orjson

from monitorapp.feed.messages import Rejection
from monitorapp.feed.mqttconfig import MqttConfigError, MqttSettings
from monitorapp.feed.mqttfeed import OWNTRACKS, TRACCAR, V1, FeedClient, default_subscriptions
from monitorapp.feed.timeutil import fmt_time
from monitorapp.service.replaystore import CheckpointError, open_private, restore_engine

log = logging.getLogger("monitorapp.service.monitor")
MAX_PAYLOAD = 64 * 1024
MAX_HANDLED_IDS = 100_000
BROKER_UNREACHABLE_S = 60.0


class AlertsFile:
    """``--alerts-out``: one replay-format line per raised alert, never twice for one id (the
    ids already in the file are read at start; a line cut short by a crash is removed)."""

    def __init__(self, path: str):
        self.path = path
        self.ids: set[str] = set()
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            keep = data[: data.rfind(b"\n") + 1]
            for line in keep.splitlines():
                try:
                    self.ids.add(orjson.loads(line)["alert_id"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    raise OSError(f"{path}: line {line[:60]!r} is not an alert line") from None
            if len(keep) != len(data):
                with open(path, "r+b") as f:
                    f.truncate(len(keep))
        self._f = os.fdopen(open_private(path), "ab")

    def write(self, alert) -> bool:
        if alert.alert_id in self.ids:
            return False
        self.ids.add(alert.alert_id)
        self._f.write(orjson.dumps(alert.to_json()) + b"\n")
        return True

    def flush(self) -> None:
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()


class FeedJournal:
    """The messages received since the last engine checkpoint, on disk next to the store.

    A message is acknowledged to the broker once it is in the journal and the journal is
    fsync'd (every commit interval, half a second by default); the engine's state is
    checkpointed in the store only every few minutes, because a checkpoint of a large caseload
    takes up to a second (20,000 tags: 14 MB of JSON). A restart loads the checkpoint and
    replays the journal after it, with the original arrival times, so the engine ends exactly
    where it was; the broker then delivers
    what was not acknowledged. Files ``{db}.journal.{generation}``; a record is
    ``<d arrival><B adapter><H topic length><I payload length>`` + topic + payload; a record
    cut short by a crash is dropped.
    """
    _HEAD = struct.Struct("<dBHI")
    _ADAPTERS = (V1, TRACCAR, OWNTRACKS)

    def __init__(self, db_path: str):
        self.base = str(db_path) + ".journal."
        gens = self.generations()
        self.generation = gens[-1] if gens else 1
        self._f: int | None = None     # the open file's descriptor (unbuffered: errors show at once)
        self.broken = False

    def generations(self) -> list[int]:
        d = os.path.dirname(os.path.abspath(self.base)) or "."
        prefix = os.path.basename(self.base)
        return sorted(int(n[len(prefix):]) for n in os.listdir(d)
                      if n.startswith(prefix) and n[len(prefix):].isdigit())

    def path(self, gen: int) -> str:
        return f"{self.base}{gen}"

    def replay(self, position: dict):
        """Yield the deliveries after the checkpoint's position, oldest first."""
        from monitorapp.feed.mqttfeed import Delivery
        start_gen, offset = int(position.get("journal", 1)), int(position.get("offset", 0))
        for gen in self.generations():
            if gen < start_gen:
                continue
            with open(self.path(gen), "rb") as f:
                data = f.read()
            pos = offset if gen == start_gen else 0
            head = self._HEAD
            while pos + head.size <= len(data):
                arrival, ad, tl, pl = head.unpack_from(data, pos)
                end = pos + head.size + tl + pl
                if end > len(data) or ad >= len(self._ADAPTERS):
                    break
                topic = data[pos + head.size: pos + head.size + tl].decode("utf-8", "replace")
                yield Delivery(topic, data[pos + head.size + tl: end], arrival, self._ADAPTERS[ad], None)
                pos = end
            if pos < len(data):                       # a record cut short by a crash
                with open(self.path(gen), "r+b") as f:
                    f.truncate(pos)

    def open(self) -> None:
        self._f = open_private(self.path(self.generation))
        self.broken = False

    def append(self, batch) -> None:
        """Append the batch's records. Raises OSError (disk full, I/O error) with the file cut
        back to where it was where possible, and the next append starts a new file, so a failed
        append never leaves a torn record in the middle of what is replayed."""
        if self.broken or self._f is None:
            self.rotate_fresh()
        pack, idx = self._HEAD.pack, self._ADAPTERS.index
        parts = []
        for d in batch:
            t = d.topic.encode()
            parts += (pack(d.arrival, idx(d.adapter), len(t), len(d.payload)), t, d.payload)
        data = b"".join(parts)
        fd = self._f
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except OSError:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            self.broken = True           # the next append starts a fresh file
            raise

    def sync(self) -> None:
        if self._f is None:
            raise OSError(f"{self.path(self.generation)}: the journal is not open")
        os.fsync(self._f)

    def rotate(self) -> dict:
        """Start a new file; returns the position a checkpoint taken now stands at."""
        self.sync()
        return self.rotate_fresh()

    def rotate_fresh(self) -> dict:
        """Close the current file (without syncing it) and start the next generation."""
        if self._f is not None:
            os.close(self._f)
            self._f = None
        self.generation += 1
        try:
            self.open()
        except OSError:
            self.broken = True
            raise
        return {"journal": self.generation, "offset": 0}

    def drop_before(self, gen: int) -> None:
        for g in self.generations():
            if g < gen:
                os.unlink(self.path(g))

    def close(self) -> None:
        if self._f is not None:
            os.close(self._f)
            self._f = None


class QuarantineList:
    """The messages this monitor has quarantined (``processing_error``), so that a restart that
    meets one again, from the journal or redelivered by the broker, skips it instead of
    evaluating it again: a SHA-256 of (adapter, topic, payload) a line in ``{db}.quarantine``
    (0600), appended and fsync'd as each is quarantined."""

    def __init__(self, db_path: str):
        self.path = str(db_path) + ".quarantine"
        self.ids: set[str] = set()
        if os.path.exists(self.path):
            with open(self.path, "rb") as f:
                self.ids = {ln.strip().decode("ascii", "replace") for ln in f if len(ln.strip()) == 64}

    @staticmethod
    def fingerprint(d) -> str:
        h = hashlib.sha256(d.adapter.encode())
        h.update(b"\0" + d.topic.encode("utf-8", "replace") + b"\0")
        h.update(d.payload)
        return h.hexdigest()

    def __contains__(self, d) -> bool:
        return bool(self.ids) and self.fingerprint(d) in self.ids

    def add(self, d) -> None:
        """Record the delivery (in memory at once; on disk, or OSError if the disk refuses)."""
        fp = self.fingerprint(d)
        if fp in self.ids:
            return
        self.ids.add(fp)
        fd = open_private(self.path)
        try:
            os.write(fd, fp.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)


class LiveProcessor:
    """The main thread's work: batches into the engine, alert changes out to the store, the
    file and the broker, remote handling and zone edits in, checkpoints and broker acks."""

    def __init__(self, engine, store, feed: FeedClient, shared, alerts_out: AlertsFile | None,
                 position: dict, journal: FeedJournal, feed_clock: bool = False,
                 quarantine: "QuarantineList | None" = None, adapters=None,
                 owntracks_topic: str | None = None, source_silence_s: float = 0.0):
        from monitorapp.feed.adapters import AdapterState
        self.engine, self.store, self.feed, self.shared = engine, store, feed, shared
        self.quarantine = quarantine
        self.unjournaled: list = []          # processed, but not yet in the journal (disk full)
        self.skipped = 0                     # quarantined before, skipped
        self._disconnected_since: float | None = None
        self._engine_error_at: float | None = None
        self.alerts_out = alerts_out
        self.journal = journal
        self.feed_clock = feed_clock
        self.uncommitted: list = []
        self.changed: dict[str, object] = {}
        self.raised: list = []
        self.zones: dict[str, list] = dict(position.get("zones") or {})
        self.handled: list[str] = list(position.get("handled") or [])
        self._handled_set = set(self.handled)
        self.acked_messages = int(position.get("messages") or 0)
        self.waiting: list[tuple] = []        # remote steps for alerts this store has not got yet
        self.lags: list[float] = []
        self.processing_lag_max = 0.0
        # the adapters' state (charging per device) is checkpointed: a restart does not
        # announce a charging state again; their sequence numbers need no state at all
        self.adapters = adapters if adapters is not None else AdapterState()
        self.adapters.load(position.get("adapters"))
        self.owntracks_topic = owntracks_topic or "owntracks/+/+"
        # liveness per source (v1, traccar, owntracks): arrival of its last message, counts
        self.source_silence_s = source_silence_s
        self.sources: dict[str, dict] = {}
        self.adapter_ignored: dict[str, int] = {}
        engine.add_listener(on_alert=self._on_alert)

    def _on_alert(self, alert, change: str) -> None:
        self.changed[alert.alert_id] = alert
        if change == "raised":
            self.raised.append(alert)

    # --- faults (spec §4 system_fault) ------------------------------------------------------
    def fault(self, component: str, kind: str, error) -> None:
        """A part cannot do its job: one ``system_fault`` per (component, kind), logged once."""
        text = error if isinstance(error, str) else f"{error.__class__.__name__}: {error}"
        if self.engine.active_alert("system_fault", None, f"{component}:{kind}") is None:
            log.error("system fault", extra={"fields": {"component": component, "kind": kind,
                                                        "error": text[:500]}})
        self.engine.raise_system_fault(component, kind, text, time.time() if not self.feed_clock else None)

    def ok(self, component: str, kind: str) -> None:
        """The part works again: its ``system_fault`` (if any) is cleared."""
        if self.engine.clear_system_fault(component, kind, time.time() if not self.feed_clock else None):
            log.info("system fault cleared", extra={"fields": {"component": component, "kind": kind}})

    def check_health(self, now: float | None = None) -> None:
        """The watchdog, once a second: the store writer (restarted if it died), the broker
        connection (a fault after 60 s unreachable) and failures the engine reported."""
        now = time.time() if now is None else now
        w = self.store.writer
        problem = w.health()
        if problem and w.restart():
            log.warning("store writer restarted", extra={"fields": {"error": problem, "restarts": w.restarts}})
            self.fault("store", "writer", problem + "; restarted")
        elif problem and w.error is not None:
            self.fault("store", "write", problem)
        elif problem:
            self.fault("store", "writer", problem)
        else:
            self.ok("store", "write")
            self.ok("store", "writer")
        if self.feed.connected:
            self._disconnected_since = None
            self.ok("broker", "unreachable")
        else:
            if self._disconnected_since is None:
                self._disconnected_since = now
            if now - self._disconnected_since > BROKER_UNREACHABLE_S:
                self.fault("broker", "unreachable", f"no connection to {self.feed.settings.url()} for "
                           f"{now - self._disconnected_since:.0f} s ({self.feed.last_error or 'not connected'})")
        errors = self.engine.take_errors()
        if errors:
            self._engine_error_at = now
            self.fault("engine", "timer", errors[-1])
        elif self._engine_error_at is not None and now - self._engine_error_at > 60.0:
            self._engine_error_at = None
            self.ok("engine", "timer")

    # --- feed --------------------------------------------------------------------------------
    def process(self, batch, journal: bool = True) -> None:
        """Evaluate every message of the batch; with ``journal`` it is held to be written to
        the journal at the next commit (then synced, then acknowledged)."""
        if journal:
            self.unjournaled.extend(batch)
        engine = self.engine
        lags = self.lags
        quarantine = self.quarantine
        sources = self.sources
        for d in batch:
            rx = d.arrival
            src = sources.get(d.adapter)
            if src is None:
                src = sources[d.adapter] = {"messages": 0, "last": rx}
            src["messages"] += 1
            if rx > src["last"]:
                src["last"] = rx
            if quarantine is not None and d in quarantine:       # it failed before: skip it
                self.skipped += 1
                engine.submit_message(Rejection("processing_error", "quarantined before: skipped",
                                                d.payload, rx, d.topic), rx)
                continue
            if d.adapter == V1:
                msgs = (engine.submit(d.payload, None if self.feed_clock else rx, d.topic),)
            else:
                msgs = self._adapted(d)
            for msg in msgs:
                kind = msg.kind
                if kind == "fix" or kind == "event":
                    lags.append(rx - msg.t)
                elif kind == "rejected" and msg.reason == "processing_error" and quarantine is not None:
                    log.warning("message quarantined", extra={"fields": {"topic": d.topic, "error": msg.text[:300]}})
                    try:
                        quarantine.add(d)
                    except OSError as e:
                        self.fault("journal", "quarantine", f"{quarantine.path}: {e}")
        if journal:
            now = time.time()
            self.processing_lag_max = max(self.processing_lag_max, now - batch[0].arrival)

    def _adapted(self, d):
        """A Traccar or OwnTracks delivery: its v1 messages into the engine. Whatever is
        rejected keeps the gateway's bytes and topic as received (spec §2); a payload that maps
        to nothing (an OwnTracks ``transition``, say) is counted and still counts as traffic."""
        from monitorapp.feed.adapters import AdapterError
        from monitorapp.feed.messages import Heartbeat
        from monitorapp.feed.owntracks import owntracks_to_v1
        from monitorapp.feed.traccar import traccar_to_v1
        engine = self.engine
        now = None if self.feed_clock else d.arrival
        if len(d.payload) > MAX_PAYLOAD:
            return [engine.submit_message(Rejection("oversize", f"{len(d.payload)} bytes is more than 64 KiB",
                                                    d.payload, d.arrival, d.topic), d.arrival)]
        try:
            obj = orjson.loads(d.payload)
            if d.adapter == TRACCAR:
                dicts = traccar_to_v1(obj, None, d.arrival, state=self.adapters)
            elif d.adapter == OWNTRACKS:
                dicts = owntracks_to_v1(obj, d.topic, None, d.arrival, state=self.adapters,
                                        pattern=self.owntracks_topic)
            else:  # pragma: no cover - FeedClient checks adapters
                dicts = []
        except (orjson.JSONDecodeError, AdapterError) as e:
            reason = "bad_json" if isinstance(e, orjson.JSONDecodeError) else e.reason
            return [engine.submit_message(Rejection(reason, f"{d.adapter}: {e}", d.payload, d.arrival, d.topic),
                                          d.arrival)]
        except Exception as e:       # noqa: BLE001 - an adapter that fails: quarantined (spec §2)
            return [engine.submit_message(Rejection(
                "processing_error", f"processing error: {d.adapter} adapter: {e.__class__.__name__}: {e}"[:1000],
                d.payload, d.arrival, d.topic), d.arrival)]
        if not dicts:
            kind = obj.get("_type") if isinstance(obj, dict) else None
            key = f"{d.adapter}:{str(kind)[:40]}"
            self.adapter_ignored[key] = self.adapter_ignored.get(key, 0) + 1
            return [engine.submit_message(Heartbeat(f"{d.adapter}:{d.topic}"[:128], d.arrival, d.arrival), d.arrival)]
        out = []
        decode = engine.decoder.decode_obj
        for v in dicts:
            msg = decode(v, now, d.topic, d.payload, adapted=True)
            out.append(engine.submit_message(msg, now, d.payload, d.topic))
        return out

    def check_sources(self, now: float) -> None:
        """A source (v1, traccar, owntracks) that delivered before and has been silent longer
        than ``--source-silence-s``: one ``system_fault`` (component ``source``), cleared by
        its next message. ``feed_lost`` still covers the whole feed."""
        if self.source_silence_s <= 0 or self.feed_clock:
            return
        for name, src in self.sources.items():
            silent = now - src["last"]
            if silent > self.source_silence_s:
                self.fault("source", name, f"no message from the {name} source for {silent:.0f} s")
            else:
                self.ok("source", name)

    # --- out ---------------------------------------------------------------------------------
    def publish_changes(self) -> None:
        """Alert changes since the last call: stored (flush), written, published."""
        if not self.changed:
            return
        if self.store.writer.error is None:      # a store that cannot be written never holds alerts back
            try:
                self.store.flush()
            except Exception as e:      # noqa: BLE001 - annunciated; the alerts still go out
                self.fault("store", "write", f"{e}")
        changed, raised = self.changed, self.raised
        self.changed, self.raised = {}, []
        if self.alerts_out:
            wrote = [a for a in raised if self.alerts_out.write(a)]
            if wrote:
                self.alerts_out.flush()
        for a in raised:
            log.info("alert raised", extra={"fields": {"alert_id": a.alert_id, "type": a.type,
                                                       "offender": a.offender, "late": a.late}})
        for a in changed.values():
            self.publish_alert(a)

    def publish_alert(self, alert) -> None:
        rec = alert.to_record()
        h = self.shared.handling(alert.alert_id)
        rec["handling"] = h["state"]
        rec["handled_by"] = h["owner"]
        rec["handling_conflicts"] = len(h["conflicts"])
        self.shared.publish_alert(rec)

    def write_journal(self) -> bool:
        """Append what was processed since the last call to the journal. A journal that cannot
        be written (disk full) raises ``system_fault``; evaluation goes on in memory, and what
        was not written is tried again at the next commit (and only then acknowledged)."""
        if not self.unjournaled:
            return True
        try:
            self.journal.append(self.unjournaled)
        except OSError as e:
            self.fault("journal", "write", f"{self.journal.path(self.journal.generation)}: {e}")
            return False
        self.uncommitted.extend(self.unjournaled)
        self.unjournaled = []
        self.ok("journal", "write")
        return True

    def commit(self) -> None:
        """Write and sync the journal, then acknowledge to the broker what it holds."""
        self.write_journal()
        if not self.uncommitted:
            return
        try:
            self.journal.sync()
        except OSError as e:        # not durable: nothing is acknowledged, the broker keeps it
            self.fault("journal", "sync", f"{self.journal.path(self.journal.generation)}: {e}")
            return
        self.ok("journal", "sync")
        self.acked_messages += len(self.uncommitted)
        self.feed.ack(self.uncommitted)
        self.uncommitted = []

    def checkpoint(self) -> bool:
        """The engine's state in the store, at a fresh journal file; older files go. A journal
        or store that refuses raises ``system_fault`` and the checkpoint is tried again later
        (the journal since the last good one is kept). Returns whether it was taken."""
        from localdb.schema import StoreError
        self.write_journal()
        try:
            pos = self.journal.rotate()
        except OSError as e:
            self.fault("journal", "sync", f"{self.journal.path(self.journal.generation)}: {e}")
            return False
        try:
            self.store.checkpoint(self.engine, {
                **pos, "messages": self.acked_messages, "zones": self.zones,
                "adapters": self.adapters.state(),
                "handled": self.handled[-MAX_HANDLED_IDS:], "at": time.time()})
        except (StoreError, OSError) as e:
            self.fault("store", "checkpoint", str(e))
            return False
        self.ok("store", "checkpoint")
        self.uncommitted.extend(self.unjournaled)     # the checkpoint holds what they did
        self.unjournaled = []
        try:
            self.journal.drop_before(pos["journal"])
        except OSError as e:
            log.warning("old journal not removed", extra={"fields": {"error": str(e)}})
        self._dirty_position = False
        log.info("checkpoint", extra={"fields": {"journal": pos["journal"], "messages": self.acked_messages}})

    _dirty_position = False

    # --- handling and zones from other workstations ------------------------------------------
    def apply_remote(self, kind: str, key: str, item: dict) -> None:
        if kind == "ack":
            self._apply_step(key, item)
        elif kind == "zone":
            self._apply_zone(key, item)

    def retry_waiting(self) -> None:
        waiting, self.waiting = self.waiting, []
        for alert_id, entry in waiting:
            self._apply_step(alert_id, entry)

    def _apply_step(self, alert_id: str, e: dict) -> None:
        from localdb.handling import HandlingError
        if e["id"] in self._handled_set:
            return
        step, op = e["step"], e["operator"]
        try:
            if step == "acknowledge":
                self.store.acknowledge(alert_id, op, e.get("action"), e.get("note"))
            elif step == "close":
                self.store.close_alert(alert_id, op, e.get("note"))
            elif step == "shelve":
                self.store.shelve(alert_id, op, e.get("reason"), float(e.get("until") or 0))
            elif step == "unshelve":
                self.store.unshelve(alert_id, op)
        except HandlingError as err:
            if "no such alert" in str(err) and alert_id not in self.engine.alerts:
                if len(self.waiting) < 10_000:
                    self.waiting.append((alert_id, e))  # the alert may not have reached us yet
                return
            log.warning("remote handling refused", extra={"fields": {
                "alert_id": alert_id, "step": step, "operator": op, "reason": str(err)}})
        else:
            log.info("remote handling applied", extra={"fields": {
                "alert_id": alert_id, "step": step, "operator": op, "workstation": e.get("workstation")}})
        self.handled.append(e["id"])
        self._handled_set.add(e["id"])
        self._dirty_position = True
        a = self.engine.alerts.get(alert_id)
        if a is not None:
            self.changed[alert_id] = a

    def _apply_zone(self, zone_id: str, rec: dict) -> None:
        from monitorapp.engine.caseload import CaseloadError
        key = [float(rec.get("at", 0)), str(rec.get("workstation", ""))]
        if self.zones.get(zone_id) is not None and list(self.zones[zone_id]) >= key:
            return
        who = str(rec.get("operator") or "unknown")
        try:
            if rec.get("removed"):
                self.engine.remove_zone(zone_id)
                version = None
            else:
                version = self.engine.update_zone(rec["feature"])
            self.store.record_zone_edit(rec["feature"], who, version, bool(rec.get("removed")))
        except (CaseloadError, KeyError, TypeError, ValueError) as err:
            log.warning("zone edit refused", extra={"fields": {"zone_id": zone_id, "reason": str(err)[:300]}})
        else:
            log.info("zone edit applied", extra={"fields": {"zone_id": zone_id, "version": version,
                                                            "operator": who}})
        self.zones[zone_id] = key
        self._dirty_position = True


class FeedStats:
    """The stats line: the replay summary's fields plus rate, lag and the feed's health."""

    def __init__(self, engine, feed: FeedClient):
        self.engine, self.feed = engine, feed
        self.t0 = self.t_last = time.monotonic()
        self.m_last = engine.counters.messages

    def line(self, proc: "LiveProcessor | None" = None, final: bool = False) -> dict:
        now = time.monotonic()
        c = self.engine.counters
        d = {"event": "stats", **c.summary(), "seconds": round(now - self.t0, 3)}
        dt = now - self.t_last
        d["rate_per_s"] = round((c.messages - self.m_last) / dt, 1) if dt > 0 else None
        self.t_last, self.m_last = now, c.messages
        if proc is not None:
            lags = sorted(proc.lags)
            proc.lags = []
            d["lag_s"] = ({"p50": round(lags[len(lags) // 2], 3), "p99": round(lags[int(len(lags) * 0.99)], 3),
                           "max": round(lags[-1], 3)} if lags else None)
            d["processing_lag_s"] = round(proc.processing_lag_max, 3)
            proc.processing_lag_max = 0.0
        d["backlog"] = self.feed.backlog
        d["connected"] = self.feed.connected
        d["feed_lost"] = self.engine.feed_is_lost()
        d["gaps"] = sum(c.gaps.values())
        d["rejected_by_reason"] = dict(c.rejected_by_reason)
        d["system_faults"] = sorted(a.requirement for a in self.engine.system_faults())
        if proc is not None:
            wall = time.time()
            d["sources"] = {name: {"messages": src["messages"], "silent_s": round(max(0.0, wall - src["last"]), 1)}
                            for name, src in sorted(proc.sources.items())}
            d["adapter_ignored"] = dict(proc.adapter_ignored)
            d["store_quarantined"] = proc.store.writer.quarantined
            d["quarantine_skipped"] = proc.skipped
        if final:
            d["final"] = True
        return d


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
    p.add_argument("--client-id", help="persistent-session client id (default: per workstation)")
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
    p.add_argument("--retention-days", type=float, default=365.0,
                   help="purge stored fixes older than this many days, at start and daily (default 365)")
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def cli_main(argv: list[str]) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    from localdb.schema import StoreError
    from monitorapp.engine.caseload import CaseloadError, load_caseload
    try:
        settings = MqttSettings.from_args(
            args.broker, client_id=args.client_id, ca=args.ca, cert=args.cert, key=args.key,
            username=args.username, password_file=args.password_file,
            protocol=5 if args.mqtt_version == "5" else 4, role="monitor")
        caseload = load_caseload(args.caseload)
        from monitorapp.feed.adapters import AccuracyDefaults
        args.acc_defaults = AccuracyDefaults.parse(args.default_acc)
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
    from monitorapp.service.sharedstate import SharedState
    engine, position = restore_engine(caseload, store)
    resumed = position is not None
    if not resumed:
        store.record_caseload(caseload)
    store.attach(engine)
    log.info("monitor starting", extra={"fields": {
        **settings.describe(), "db": str(store.path), "caseload": str(args.caseload), "clock": args.clock,
        "resumed_from_checkpoint": resumed, "pid": os.getpid()}})

    remote: queue.SimpleQueue = queue.SimpleQueue()
    shared_settings = MqttSettings(**{**settings.__dict__, "client_id": (settings.client_id + "-shared")[:64]})
    shared = SharedState(shared_settings, settings.client_id,
                         on_remote_ack=lambda aid, e, h: remote.put(("ack", aid, e)),
                         on_remote_zone=lambda rec: remote.put(("zone", rec["zone_id"], rec)))
    from monitorapp.feed.adapters import AdapterState
    owntracks = args.owntracks_topic or ("owntracks/+/+" if args.owntracks else None)
    feed = FeedClient(settings, default_subscriptions(args.traccar_topic, owntracks))
    from centraldb import local_files_base     # beside a SQLite file; for PostgreSQL, local
    journal = FeedJournal(local_files_base(args.db))
    proc = LiveProcessor(engine, store, feed, shared, alerts_out, position or {}, journal,
                         feed_clock=args.clock == "feed",
                         quarantine=QuarantineList(local_files_base(args.db)),
                         adapters=AdapterState(getattr(args, "acc_defaults", None)),
                         owntracks_topic=owntracks, source_silence_s=args.source_silence_s)
    replayed = 0
    batch = []
    for d in journal.replay(position or {}):
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
        proc.fault("journal", "write", f"{journal.path(journal.generation)}: {e}")
    if replayed:
        log.info("journal replayed", extra={"fields": {"messages": replayed}})
    proc.checkpoint()         # from here on, a crash resumes from this point and this journal
    stats = FeedStats(engine, feed)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: stop.set())

    shared.start()
    feed.start()
    next_stats = time.monotonic() + args.stats_interval
    next_commit = time.monotonic() + args.commit_interval
    next_checkpoint = time.monotonic() + args.checkpoint_interval
    next_advance = 0.0
    next_purge = time.monotonic()          # retention: at start, then once a day
    try:
        while not stop.is_set():
            try:
                next_stats, next_commit, next_checkpoint, next_advance, next_purge = _loop_once(
                    args, engine, store, feed, proc, remote, stats,
                    next_stats, next_commit, next_checkpoint, next_advance, next_purge)
            except Exception as e:      # noqa: BLE001 - the live monitor must not silently stop
                log.exception("monitor loop failed")
                proc.fault("monitor", "loop", e)
                stop.wait(0.5)
        log.info("monitor stopping", extra={"fields": {"reason": "signal"}})
        proc.publish_changes()
        proc.checkpoint()
        proc.commit()
    finally:
        feed.stop()
        shared.stop()
        journal.close()
    emit_stats(stats.line(proc, final=True))
    log.info("monitor stopped", extra={"fields": {"checkpointed": True}})
    return 0


def _loop_once(args, engine, store, feed, proc, remote, stats,
               next_stats, next_commit, next_checkpoint, next_advance, next_purge):
    """One turn of the main loop: a batch in, remote handling, the clock, alerts out, the
    journal committed, checkpoints, stats, retention, and the watchdog's checks."""
    batch = feed.get_batch(max_items=5000, timeout=0.2)
    if batch:
        proc.process(batch)
    while True:
        try:
            kind, key, item = remote.get_nowait()
        except queue.Empty:
            break
        proc.apply_remote(kind, key, item)
    mono = time.monotonic()
    if mono >= next_advance:
        next_advance = mono + 1.0
        if args.clock == "wall":
            engine.advance(time.time())
        proc.check_health()
        proc.check_sources(time.time())
        proc.retry_waiting()
    proc.publish_changes()
    if mono >= next_commit:
        next_commit = mono + args.commit_interval
        proc.commit()
    if mono >= next_checkpoint or proc._dirty_position:
        next_checkpoint = time.monotonic() + args.checkpoint_interval
        proc.checkpoint()
    if mono >= next_stats:
        next_stats = mono + args.stats_interval
        emit_stats(stats.line(proc))
    if mono >= next_purge:
        next_purge = mono + 86400.0
        purged = store.purge_fixes("monitor", retention_days=args.retention_days)
        log.info("retention purge", extra={"fields": {"deleted": purged, "retention_days": args.retention_days}})
    proc.ok("monitor", "loop")
    return next_stats, next_commit, next_checkpoint, next_advance, next_purge


def emit_stats(line: dict) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()
