"""The decider's work on the main thread (``monitorapp monitor``, spec §7 and v2 §8).

``LiveProcessor`` evaluates the feed's batches with the engine, stores everything, writes
``--alerts-out``, publishes each alert change with the record's handling (``DeciderPublisher``),
applies what operators did in the record (``RecordWatch``: handling steps are republished with
their alerts, zone versions applied to the engine), journals and acknowledges the feed, and
checkpoints. It also raises and clears the ``system_fault`` alerts of the parts that fail.
``FeedStats`` makes the stats line.
"""
from __future__ import annotations

import logging
import time

import orjson

from monitorapp.feed.messages import Rejection
from monitorapp.feed.mqttfeed import OWNTRACKS, TRACCAR, V1, FeedClient
from monitorapp.service.journal import AlertsFile, QuarantineList
from monitorapp.service.recordwatch import handling_of

log = logging.getLogger("monitorapp.service.monitor")
MAX_PAYLOAD = 64 * 1024
BROKER_UNREACHABLE_S = 60.0


class LiveProcessor:
    """The main thread's work: batches into the engine, alert changes out to the store, the
    file and the broker, handling and zone versions in from the record, checkpoints and
    broker acks. ``out`` is the ``DeciderPublisher`` (None: publish nothing), ``watch`` the
    ``RecordWatch`` (None: nothing is read from the record)."""

    def __init__(self, engine, store, feed: FeedClient, out, alerts_out: AlertsFile | None,
                 position: dict, journal, feed_clock: bool = False,
                 quarantine: "QuarantineList | None" = None, adapters=None,
                 owntracks_topic: str | None = None, source_silence_s: float = 0.0,
                 watch=None):
        from monitorapp.feed.adapters import AdapterState
        self.engine, self.store, self.feed, self.out, self.watch = engine, store, feed, out, watch
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
        self.acked_messages = int(position.get("messages") or 0)
        self.entries: dict[str, list] = {}    # the record's ack-log entries per published alert
        self.shelved: dict[str, float] = {}   # alert id -> until: republished when it ends
        self.record_error: str | None = None
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
        engine.add_listener(on_alert=self._on_alert,
                            on_position=self._on_position if out is not None else None)

    def _on_alert(self, alert, change: str) -> None:
        self.changed[alert.alert_id] = alert
        if change == "raised":
            self.raised.append(alert)

    def _on_position(self, device: str, fix) -> None:
        tag = self.engine.tags.get(device)
        self.out.note_position(device, tag.offender.id if tag is not None else None, fix)

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
        if self.out is not None:
            for a in changed.values():
                self.publish_alert(a)

    def publish_alert(self, alert) -> None:
        """``em/v1/alert/{id}``: the alert with the record's handling of it."""
        rec = alert.to_record()
        entries = self.entries.get(alert.alert_id)
        if entries is None and self.watch is not None:
            try:
                entries = self.watch.entries_of(alert.alert_id)
            except Exception as e:        # noqa: BLE001 - annunciated; the alert still goes out
                self.record_fault(e)
                entries = None
            else:
                self.entries[alert.alert_id] = entries
        h = handling_of(entries or [], time.time())
        rec["handling"] = h
        if h["state"] == "shelved" and h["shelved_until"]:
            self.shelved[alert.alert_id] = float(h["shelved_until"])
        else:
            self.shelved.pop(alert.alert_id, None)
        self.out.publish_alert(rec)

    def write_journal(self) -> bool:
        """Append what was processed since the last call to the journal. A journal that cannot
        be written (disk full) raises ``system_fault``; evaluation goes on in memory, and what
        was not written is tried again at the next commit (and only then acknowledged)."""
        if not self.unjournaled:
            return True
        try:
            self.journal.append(self.unjournaled)
        except OSError as e:
            self.fault("journal", "write", f"{self.journal.where()}: {e}")
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
            self.fault("journal", "sync", f"{self.journal.where()}: {e}")
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
            self.fault("journal", "sync", f"{self.journal.where()}: {e}")
            return False
        try:
            record = ({"ack_seq": self.watch.ack_seq, "zone_versions": self.watch.zone_versions}
                      if self.watch is not None else {})
            self.store.checkpoint(self.engine, {
                **pos, "messages": self.acked_messages, "adapters": self.adapters.state(),
                **record, "at": time.time()})
        except (StoreError, OSError) as e:
            self.fault("store", "checkpoint", str(e))
            return False
        self.ok("store", "checkpoint")
        self.uncommitted.extend(self.unjournaled)     # the checkpoint holds what they did
        self.unjournaled = []
        try:
            self.journal.release(pos)
        except OSError as e:
            log.warning("old journal not removed", extra={"fields": {"error": str(e)}})
        self._dirty_position = False
        log.info("checkpoint", extra={"fields": {**pos, "messages": self.acked_messages}})

    _dirty_position = False

    # --- handling and zone versions from the record ------------------------------------------
    def record_fault(self, e) -> None:
        self.record_error = f"{e.__class__.__name__}: {e}"[:300]
        self.fault("record", "read", e)

    def read_record(self, force: bool = False) -> bool:
        """What operators did in the record since the last read: handling steps republished
        with their alerts, zone versions applied to the engine. Returns whether it read."""
        if self.watch is None:
            return False
        try:
            got = self.watch.poll(force=force)
        except Exception as e:          # noqa: BLE001 - the record unreachable: annunciated
            self.record_fault(e)
            return False
        if got is None:
            return False
        self.record_error = None
        self.ok("record", "read")
        entries, zones = got
        for e in entries:
            self._apply_entry(e)
        if zones:
            self.apply_zones(zones)
        return True

    def _apply_entry(self, e: dict) -> None:
        aid = e["alert_id"]
        a = self.engine.alerts.get(aid)
        if a is None:
            log.info("handling of an alert the engine does not hold", extra={"fields": {
                "alert_id": aid, "step": e["action"], "operator": e["operator"]}})
            return
        known = self.entries.get(aid)
        if known is None:
            self.entries[aid] = self.watch.entries_of(aid)
        elif not known or known[-1]["seq"] < e["seq"]:
            known.append(e)
        log.info("record handling", extra={"fields": {
            "alert_id": aid, "step": e["action"], "operator": e["operator"], "seq": e["seq"]}})
        self.changed[aid] = a

    def check_shelved(self, now: float) -> None:
        """A shelving whose time is up has ended: the alert goes out again with its handling."""
        for aid in [aid for aid, until in self.shelved.items() if until <= now]:
            del self.shelved[aid]
            a = self.engine.alerts.get(aid)
            if a is not None:
                self.changed[aid] = a

    def apply_zones(self, recs: list[dict]) -> None:
        """Zone versions from the record into the engine as one batch (every zone of the
        caseload on a first start or a takeover, one operator's save otherwise): each version
        checked and applied, or refused, on its own (``apply_zone``), the engine's rules then
        reinstalled once for the batch (``Engine.edits``), then each applied version published
        on ``em/v1/state/zone/{id}``, and the batch checkpointed once, at the next turn of the
        loop and before any message is evaluated against it."""
        applied, refused = [], []
        with self.engine.edits():
            for rec in recs:
                reason = self.apply_zone(rec)
                if reason is None:
                    applied.append(rec)
                else:
                    refused.append((rec, reason))
        if len(recs) > 1:
            log.info("zone versions read", extra={"fields": {
                "versions": len(recs), "applied": len(applied), "refused": len(recs) - len(applied)}})
        if self.out is not None:
            for rec in applied:
                self.out.publish_zone({**rec, "feature": None if rec["removed"] else rec["feature"]})
            for rec, reason in refused:       # saved in the record, not enforced: said so
                self.out.publish_zone_refused(rec, reason)
        self._dirty_position = True

    def apply_zone(self, rec: dict) -> str | None:
        """One zone version into the engine (with the record's version number), logged as
        applied, or refused whatever it raises (the engine keeps the zone it had); returns None
        when it was applied, else why it was refused. ``apply_zones`` publishes and
        checkpoints."""
        zid, version = rec["zone_id"], rec["version"]
        refusal = None
        before = self.engine.zone_versions.get(zid)
        try:
            self.engine.zone_versions[zid] = version - 1
            if rec["removed"]:
                self.engine.remove_zone(zid)
            else:
                attach = zone_requirement(rec["feature"], self.engine.caseload)
                if attach is None:
                    self.engine.update_zone(rec["feature"])
                else:       # the zone and the requirements checked before either changes
                    self.engine.attach_zone(rec["feature"], attach[0], attach[1])
        except Exception as err:      # noqa: BLE001 - refused; one bad version never stops the others
            if before is None:                # the engine keeps the zone it had
                self.engine.zone_versions.pop(zid, None)
            else:
                self.engine.zone_versions[zid] = before
            refusal = str(err)[:300] or type(err).__name__
            log.warning("zone version refused", extra={"fields": {
                "zone_id": zid, "version": version, "reason": refusal}})
        else:
            log.info("zone version applied", extra={"fields": {
                "zone_id": zid, "version": version, "removed": rec["removed"],
                "saved_by": rec["saved_by"], "requirement": None if rec["removed"] or attach is None
                else {"offender": attach[0], "id": attach[2]["id"], "type": attach[2]["type"]}}})
        self.watch.zone_versions[zid] = version
        return refusal


def zone_requirement(feature: dict, caseload) -> tuple[str, list[dict], dict] | None:
    """The requirement a zone version carries (a zone drawn or edited for an offender: its
    properties name the ``offender`` and the spec §3 ``requirement`` that uses it), as
    ``(offender id, that offender's requirements with it put in, the requirement)``; None for a
    zone that names none. A version naming an offender the caseload does not hold, a
    requirement of another zone or one spec §3 refuses is refused here (``ValueError``,
    ``CaseloadError``) before the engine changes, and the zone is not applied, as the standalone
    console's engine does not apply it either."""
    props = feature.get("properties") if isinstance(feature, dict) else None
    if not isinstance(props, dict) or props.get("offender") in (None, ""):
        return None
    req, oid = props.get("requirement"), props.get("offender")
    if not isinstance(req, dict):
        return None
    off = caseload.offenders.get(oid) if isinstance(oid, str) else None
    if off is None:
        raise ValueError(f"the zone's offender {str(oid)[:64]!r} is not in the caseload")
    req = dict(req)
    zid = feature.get("id")
    if req.setdefault("zone", zid) != zid:
        raise ValueError(f"the requirement {str(req.get('id'))[:64]!r} is for zone "
                         f"{str(req.get('zone'))[:64]!r}, not this zone")
    if not isinstance(req.get("id"), str) or not req["id"]:
        raise ValueError("the zone's requirement has no id")
    from monitorapp.engine.caseload import parse_caseload
    parse_caseload({"version": 1, "tz": caseload.tz, "offenders": [dict(off.raw, requirements=[req])],
                    "zones": {"type": "FeatureCollection", "features": [feature]}},
                   f"zone {str(zid)[:64]} for {oid}")      # CaseloadError before anything changes
    reqs = [dict(r) for r in off.raw.get("requirements", []) if r.get("id") != req["id"]] + [req]
    return oid, reqs, req


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
            if proc.out is not None:
                d["published"] = dict(proc.out.published)
        if final:
            d["final"] = True
        return d
