"""The live console as a client of the centre (issue 15, spec v2 §8): no engine of its own.

``CentreClient`` takes the place of the engine worker in client mode. At start it reads the
current picture from the centre's record (open alerts with their handling, the zones' current
versions) as the signed-in person, then follows what the decider publishes on the broker with
the console identity's credentials: ``em/v1/alert/#`` (each alert with the record's handling)
and ``em/v1/state/#`` (positions, applied zone versions, the decider's own status). Every
console shows the same queue because every console shows the decider's.

Threads: paho's network thread only appends what arrives to an inbox; a 200 ms timer on the
main thread drains it, coalesced (the last record of an alert, the newest position of a tag),
and emits the same batches the engine worker would (``alertBatch``, ``positions``, ``stats``,
``details``), so the window, the map and the caseload list work unchanged. Calls to the record
(the start-up read, every operator action, zone saves) run on one worker thread, never on the
GUI thread, and report back through ``actionDone``/``zoneSaved``.

What the engine worker would compute, the decider's messages give: each alert's Location
(``addresses``, from the decider's ``address``, just before the batch of those alerts), and the
details of one offender (``request_details``: the trail and the 24-hour charts from the
positions this console was shown, ``ui.console.centredetails``, plus the record's fixes where
the signed-in login may read them). ``freshness`` gives, every 10 s, how long the decider's
messages took to reach the queue and to be drawn on the map (``centrestate.Freshness``; the map's
``stampsDrawn`` comes back through ``positions_drawn``).

Degraded honestly: ``DeciderHealth`` (no "active" word from the decider for 10 s, a decider lost
or stopped, the record unreachable, the broker unreachable) or a record call that cannot reach
the server raises this console's own critical ``system_fault`` in its queue (with sound) and
the status bar says "decider unreachable" (or "record unreachable"), never "feed connected".

The local cache (``localdb.cache.ConsoleCache``): what was shown is written there (on the cache's
own thread); a start without the centre shows the cached picture, marked stale with its age.
"""
from __future__ import annotations

import concurrent.futures
import itertools
import os
import queue
import threading
import time

import orjson
from PySide6.QtCore import QObject, QTimer, Signal

from localdb.schema import StoreError
from monitorapp.feed.mqttconfig import MqttSettings
from ui.console.alertmodel import Handling
from ui.console.centredetails import HISTORY_S, TrailHistory, ZoneTimeline, details_of, record_fixes
from ui.console.centrestate import (DeciderHealth, Freshness, address_of, alert_from_record,
                                    console_fault_alert, handling_from_published, handling_from_row,
                                    position_from_published, published_handling)

ALERT_TOPIC, STATE_TOPIC = "em/v1/alert/", "em/v1/state/"
MAX_PAYLOAD = 64 * 1024
DRAIN_MS = 200
HEALTH_MS = 1000
PROBE_S = 5.0                 # the record out of reach: try it again this often
FRESHNESS_S = 10.0            # a centre_latency line this often (decider to screen)
KEEPALIVE_S = 15.0            # the signed-in person's connection to the record: checked this often
UNREACHABLE = ("The centre cannot be reached; nothing was recorded. "
               "Use the centre's fallback procedure.")
_ids = itertools.count(1)


class CentreUnreachable(ValueError):
    """An action refused at once because the centre cannot be reached (nothing was recorded)."""

    def __init__(self, why: str = ""):
        super().__init__(UNREACHABLE + (f" ({why})" if why else ""))


def centre_reachable(dsn: str, timeout_s: float = 5.0) -> bool:
    """Whether the record's server answers at all (a refused password still means it does);
    nothing is signed in and no password is sent."""
    import psycopg
    try:
        psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s)), user="monitorapp_probe",
                        password="", application_name="monitorapp-probe").close()
    except psycopg.OperationalError as e:
        text = str(e)
        return any(w in text for w in ("authentication", "password", "does not exist", "no pg_hba",
                                       "not permitted", "SSL"))
    return True


def console_client_id(base: str | None = None) -> str:
    from monitorapp.feed.mqttconfig import default_client_id
    return f"{(base or default_client_id('console'))[:44]}-{os.getpid()}-{next(_ids)}"


class CentreClient(QObject):
    alertBatch = Signal(list, float)       # [(change, Alert)], wall clock
    addresses = Signal(dict)               # alert id -> its location text, before its alertBatch
    freshness = Signal(dict)               # Freshness.summary(), every FRESHNESS_S
    positions = Signal(list)
    positionStamps = Signal(dict)         # device -> published_at of a live position, before ``positions``
    stats = Signal(dict)
    details = Signal(dict)
    restored = Signal(list, float)         # unused in client mode (the window connects it)
    zoneApplied = Signal(str, int)         # zone id, record version (published by the decider)
    zoneRefused = Signal(str, str)
    zoneNotEnforced = Signal(str, str, str, str)  # zone id, who saved it, why refused, the short form
    failed = Signal(str)
    restarted = Signal(str)
    loaded = Signal(dict)                  # {"source": "record"|"cache", "saved_at", "alerts"}
    actionDone = Signal(dict)              # {"what", "alert_id", "ok", "error", "by"}
    zoneSaved = Signal(dict)               # {"zone", "ok", "version", "error"}
    faultChanged = Signal(str)             # the text of what is wrong now ("" when all is well)
    centreBack = Signal()                  # nobody signed in (started cut off): the record answers again
    _done = Signal(object, object)         # (callback, result): worker thread -> main thread

    def __init__(self, mqtt: MqttSettings | None, store, caseload, *, cache=None, clock=time.time,
                 silent_s: float | None = None, probe=None, parent=None):
        super().__init__(parent)
        self.mqtt, self.store, self.caseload, self.cache = mqtt, store, caseload, cache
        self.probe = probe              # () -> bool: the record's server answers (no sign-in)
        self.clock = clock
        self.health = DeciderHealth(clock=clock) if silent_s is None else DeciderHealth(silent_s, clock=clock)
        self.alerts: dict[str, object] = {}         # alert id -> Alert shown
        self.handlings: dict[str, Handling] = {}    # alert id -> the record's handling
        self.zone_versions: dict[str, int] = {}     # zone id -> the record's current version
        self.positions_now: dict[str, dict] = {}
        self.trails = TrailHistory()                # each tag's published positions, for details
        self.zone_timeline = ZoneTimeline()
        self.fresh = Freshness()
        self._fresh_at = time.monotonic()
        self._record_trails: dict[str, bool] = {}   # device -> the record's fixes read (or refused)
        self.record_ok: bool | None = None          # None: not tried yet
        self.record_error: str | None = None
        self.stale_since: float | None = None       # the cached picture's time, while shown
        self.connected = False
        self.fault_text = ""
        self._faults: dict[str, object] = {}        # kind -> this console's system_fault Alert
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._client = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="centre-record")
        self._cache_q: queue.SimpleQueue | None = None
        self._caseload_doc: dict | None = None
        self._cache_thread = None
        self._last_probe = 0.0
        self._rate_at: tuple[float, float] | None = None
        self._messages = 0
        self._running = False
        self._done.connect(lambda cb, res: cb(res))
        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(DRAIN_MS)
        self._drain_timer.timeout.connect(self._drain)
        self._health_timer = QTimer(self)
        self._health_timer.setInterval(HEALTH_MS)
        self._health_timer.timeout.connect(self._check_health)

    # ----- life cycle ------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        self._running = True
        self.zone_timeline.note(self.caseload.zones, self.clock())
        if self.cache is not None:
            self._cache_q = queue.SimpleQueue()
            self._cache_thread = threading.Thread(target=self._cache_writer, name="console-cache",
                                                  daemon=True)
            self._cache_thread.start()
            if self._caseload_doc is not None:
                self._cache_q.put(("caseload", self._caseload_doc))
        self._submit(self._read_record, self._record_read)
        if self.mqtt is not None:
            from monitorapp.feed.mqttfeed import connect_async, make_client
            c = make_client(self.mqtt, clean=True)
            c.on_connect = self._on_connect
            c.on_disconnect = self._on_disconnect
            c.on_message = self._on_message
            self._client = c
            connect_async(c, self.mqtt, clean=True)
        self._drain_timer.start()
        self._health_timer.start()

    def stop(self, timeout_ms: int = 5000) -> None:
        if not self._running:
            return
        self._running = False
        self._drain_timer.stop()
        self._health_timer.stop()
        c, self._client = self._client, None
        if c is not None:
            try:
                c.disconnect()
            finally:
                c.loop_stop()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._cache_q is not None:
            self._cache_q.put(None)
            self._cache_thread.join(timeout_ms / 1000)
            self._cache_q = None

    # ----- the record: off the GUI thread ----------------------------------------------------
    def _submit(self, fn, callback) -> None:
        def run():
            try:
                res = ("ok", fn())
            except Exception as e:     # noqa: BLE001 - reported to the main thread, never lost
                res = ("error", e)
            self._done.emit(callback, res)
        if self._running:
            self._pool.submit(run)

    def _read_record(self) -> dict:
        store = self.store
        if store is None:
            raise StoreError("nobody is signed in to the centre's record")
        rows = store.alerts()
        zones = {}
        try:
            for zid, ver, removed in store.reader().execute(
                    "SELECT DISTINCT ON (zone_id) zone_id, version, removed FROM zones"
                    " ORDER BY zone_id, version DESC"):
                zones[zid] = int(ver)
        except Exception:      # noqa: BLE001 - a role that may not read zones still sees the queue
            pass
        return {"rows": rows, "zones": zones}

    def _record_read(self, res) -> None:
        kind, value = res
        if kind == "error":
            self._record_failed(value)
            self._show_cache()
            return
        self._record_back()
        self.zone_versions.update(value["zones"])
        changes = []
        for d in value["rows"]:
            try:
                a = alert_from_record(d)
            except ValueError:
                continue
            h = handling_from_row(d)
            if h.state == "closed" and a.state == "cleared":
                continue                       # done with: not in a live queue
            changes.append(self._take(a, h))
        self.stale_since = None
        self._emit_alerts([c for c in changes if c])
        self.loaded.emit({"source": "record", "saved_at": None, "alerts": len(changes)})

    def _record_failed(self, e) -> None:
        self.record_ok = False
        self.record_error = str(e).splitlines()[0][:300] if str(e) else type(e).__name__

    def _record_back(self) -> None:
        self.record_ok, self.record_error = True, None

    def _show_cache(self) -> None:
        """The record is out of reach at start: the last picture this workstation saw."""
        if self.cache is None or self.alerts:
            return
        try:
            pic = self.cache.load()
        except Exception as e:     # noqa: BLE001 - a broken cache is a warning, not a stop
            self.failed.emit(f"workstation cache not read: {e}")
            return
        if pic["saved_at"] is None:
            return
        self.stale_since = pic["saved_at"]
        changes = []
        for rec in pic["alerts"]:
            try:
                a = alert_from_record(rec)
            except ValueError:
                continue
            changes.append(self._take(a, handling_from_published(rec.get("handling"))))
        self._emit_addresses(pic["alerts"])
        for z in pic["zones"]:
            if isinstance(z.get("version"), int):
                self.zone_versions.setdefault(z["zone_id"], z["version"])
        self._emit_alerts([c for c in changes if c])
        moved = [m for m in (position_from_published(p) for p in pic["positions"]) if m]
        for m in moved:
            self.positions_now[m["device"]] = m
            self.trails.add(m)
        if moved:
            self.positions.emit(moved)
        self.loaded.emit({"source": "cache", "saved_at": pic["saved_at"], "alerts": len(changes),
                          "positions": len(moved)})

    def act(self, what: str, alert_id: str, call) -> None:
        """Run ``call(store)`` (a handling step as the signed-in person) on the record's thread;
        ``actionDone`` reports it. Refused at once (``CentreUnreachable``) while cut off."""
        self.check_reachable()
        store = self.store

        def done(res):
            kind, value = res
            out = {"what": what, "alert_id": alert_id, "ok": kind == "ok", "error": None, "by": None}
            if kind == "error":
                from localdb.handling import HandlingError
                if isinstance(value, HandlingError):
                    self._record_back()
                    out["error"] = str(value)
                    out["by"] = getattr(value, "by", None)
                else:
                    self._record_failed(value)
                    out["error"] = f"{UNREACHABLE} ({self.record_error})"
                    self._check_health()
            else:
                self._record_back()
            self.actionDone.emit(out)
        self._submit(lambda: call(store), done)

    def save_zone(self, feature: dict, who: str, removed: bool = False) -> None:
        """A zone drawn, edited or deleted, to the record as a new version on the version this
        console shows (``base_version``: refused if someone saved another meanwhile). The map
        changes when the decider has applied it (``em/v1/state/zone``)."""
        self.check_reachable()
        zid = str(feature.get("id"))
        base = self.zone_versions.get(zid, 0)      # 0: a zone this console creates
        store = self.store

        def done(res):
            kind, value = res
            if kind == "ok":
                self._record_back()
                self.zoneSaved.emit({"zone": zid, "ok": True, "version": value, "error": None})
            else:
                from localdb.records import ZoneVersionConflict
                if not isinstance(value, (ZoneVersionConflict, StoreError)) or \
                        "cannot connect" in str(value) or "cannot be written" in str(value):
                    self._record_failed(value)
                self.zoneSaved.emit({"zone": zid, "ok": False, "version": None, "error": str(value)})
                self.zoneRefused.emit(zid, f"not saved: {value}")
        self._submit(lambda: store.record_zone_edit(feature, who, removed=removed, base_version=base),
                     done)

    def check_reachable(self) -> None:
        if self.record_ok is False:
            raise CentreUnreachable(self.record_error or "")
        if self.stale_since is not None:
            raise CentreUnreachable("showing the cached picture")
        if self.fault_text:
            raise CentreUnreachable(self.fault_text)

    # ----- the broker: network thread --------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._inbox.put(("link", False, str(reason_code)))
            return
        client.subscribe([(ALERT_TOPIC + "#", 1), (STATE_TOPIC + "#", 1)])
        self._inbox.put(("link", True, ""))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._inbox.put(("link", False, str(reason_code)))

    def _on_message(self, client, userdata, msg):
        if len(msg.payload) <= MAX_PAYLOAD:
            self._inbox.put(("msg", msg.topic, msg.payload, bool(msg.retain)))

    # ----- the main thread ---------------------------------------------------------------------
    def _drain(self) -> None:
        alerts: dict[str, dict] = {}
        moved: dict[str, dict] = {}
        zones: dict[str, dict] = {}
        sent: list[float] = []                            # published_at of the live alerts
        stamps: dict[str, float] = {}                     # device -> published_at, live positions
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                break
            if item[0] == "link":
                self.connected = item[1]
                continue
            _, topic, payload, retained = item
            self._messages += 1
            try:
                obj = orjson.loads(payload) if payload else None
            except orjson.JSONDecodeError:
                continue
            at = obj.get("published_at") if isinstance(obj, dict) and not retained else None
            if topic.startswith(ALERT_TOPIC) and isinstance(obj, dict):
                alerts[topic[len(ALERT_TOPIC):]] = obj
                if isinstance(at, float):
                    sent.append(at)
            elif topic == STATE_TOPIC + "decider":
                self.health.seen(obj, retained)
            elif topic.startswith(STATE_TOPIC + "position/"):
                m = position_from_published(obj)
                if m is not None:
                    moved[m["device"]] = m
                    self.trails.add(m)
                    if isinstance(at, float):
                        stamps[m["device"]] = at
                    else:
                        stamps.pop(m["device"], None)
            elif topic.startswith(STATE_TOPIC + "zone/") and isinstance(obj, dict):
                zones[str(obj.get("zone_id") or topic.rsplit("/", 1)[-1])] = obj
            elif topic.startswith(STATE_TOPIC + "zone_refused/") and isinstance(obj, dict):
                self._zone_refused_by_decider(topic.rsplit("/", 1)[-1], obj)
        if alerts:
            changes, done = [], []
            for aid, rec in alerts.items():
                try:
                    a = alert_from_record(rec)
                except ValueError:
                    continue
                if a.alert_id != aid:
                    continue            # a record under another alert's topic is not that alert
                h = handling_from_published(rec.get("handling"))
                if h.state == "closed" and a.state == "cleared":
                    done.append(aid)    # finished with: not in the cache, not new in the queue
                    if aid not in self.alerts:
                        continue
                changes.append(self._take(a, h))
            self._emit_addresses(alerts.values())
            self._emit_alerts([c for c in changes if c])
            self._to_cache("alerts", [rec for aid, rec in alerts.items() if aid in self.alerts
                                      and aid not in done])
            if done and self._cache_q is not None:
                self._cache_q.put(("drop", done))
            for aid in done:         # shown closed; a later republish of it is not new work
                self.alerts.pop(aid, None)
                self.handlings.pop(aid, None)
        if moved:
            fresh = []
            for dev, m in moved.items():
                held = self.positions_now.get(dev)
                if held is None or m["t"] >= held["t"]:
                    self.positions_now[dev] = m
                    fresh.append(m)
            if fresh:
                live = {m["device"]: stamps[m["device"]] for m in fresh if m["device"] in stamps}
                if live:
                    self.positionStamps.emit(live)
                self.positions.emit(fresh)
                self._to_cache("positions", fresh)
        if zones:
            self._apply_zones(zones)
        if (alerts or moved) and self.stale_since is not None and self.record_ok:
            self.stale_since = None
        if sent:                        # the queue has applied what came
            shown = self.clock()
            self.fresh.add("alert", [shown - at for at in sent])

    def positions_drawn(self, stamps: list[float]) -> None:
        """The map has drawn live positions published at these times (``MapView.stampsDrawn``):
        the decider-to-screen lag of positions is measured up to there."""
        shown = self.clock()
        self.fresh.add("position", [shown - at for at in stamps])

    def _emit_addresses(self, recs) -> None:
        """The queue's Location of each alert record that names a place (the decider's)."""
        found = {}
        for rec in recs:
            where = address_of(rec) if isinstance(rec, dict) else None
            if where is not None and isinstance(rec.get("alert_id"), str):
                found[rec["alert_id"]] = where[1]
        if found:
            self.addresses.emit(found)

    def _take(self, a, h: Handling):
        """(change, alert) for the queue, or None when nothing changed."""
        old = self.alerts.get(a.alert_id)
        same_h = self.handlings.get(a.alert_id) == h
        self.alerts[a.alert_id] = a
        self.handlings[a.alert_id] = h
        if old is None:
            return ("raised", a)
        if a.reactivations > old.reactivations:
            return ("reactivated", a)
        if a.state == "cleared" and old.state != "cleared":
            return ("cleared", a)
        if same_h and a == old:
            return None
        return ("updated", a)

    def handling_for(self, alert_id: str) -> Handling | None:
        return self.handlings.get(alert_id)

    def _emit_alerts(self, changes: list) -> None:
        if changes:
            self.alertBatch.emit(changes, self.clock())

    def _zone_refused_by_decider(self, zid: str, obj: dict) -> None:
        """A version saved in the record that the decider refused: the map keeps the version in
        force, and the operators are told that the saved one is not enforced, and why."""
        ver, reason, by = obj.get("version"), obj.get("reason"), obj.get("saved_by")
        if not isinstance(ver, int) or ver <= 0 or ver < self.zone_versions.get(zid, 0):
            return                       # older than what this console holds: nothing to say
        by = by if isinstance(by, str) else "someone"
        why = reason[:400] if isinstance(reason, str) and reason else "no reason given"
        self.zoneNotEnforced.emit(zid, by, (
            f"version {ver}, saved by {by}, is in the record but the centre refused it, so it is "
            f"not enforced: {why}")[:600],
            f"Zone {zid} NOT ENFORCED: {why} (version {ver}, saved by {by})")

    def _apply_zones(self, zones: dict[str, dict]) -> None:
        from monitorapp.engine.caseload import CaseloadError, parse_caseload
        for zid, z in zones.items():
            ver = z.get("version")
            if not isinstance(ver, int) or ver < self.zone_versions.get(zid, 0) and zid in self.caseload.zones:
                continue
            self.zone_versions[zid] = ver
            feature = z.get("feature")
            held = self.caseload.zones.get(zid)
            if z.get("removed") or not isinstance(feature, dict):
                if self.caseload.zones.pop(zid, None) is None:
                    continue                  # gone already: nothing to show again
            else:
                doc = {"version": 1, "tz": self.caseload.tz, "offenders": [],
                       "zones": {"type": "FeatureCollection", "features": [dict(feature, id=zid)]}}
                try:
                    zone = parse_caseload(doc, "zone").zones[zid]
                except (CaseloadError, KeyError) as e:
                    self.failed.emit(f"zone {zid} from the decider not shown: {e}")
                    continue
                zone.version = ver
                if held is not None and held.version == ver and held.feature() == zone.feature():
                    continue        # the version shown already (every zone at a decider's start)
                self.caseload.zones[zid] = zone
                self._attach_requirement(dict(feature, id=zid))
            self.zoneApplied.emit(zid, ver)
        self.zone_timeline.note(self.caseload.zones, self.clock(), only=zones)
        self._to_cache("zones", [dict(z, zone_id=zid) for zid, z in zones.items()])

    def _attach_requirement(self, feature: dict) -> None:
        """A zone drawn for an offender: its requirement in this console's caseload too (the
        details panel lists it, the distance chart measures it), as the decider applied it."""
        from monitorapp.engine.caseload import CaseloadError, parse_caseload
        from monitorapp.service.decider import zone_requirement
        try:
            attach = zone_requirement(feature, self.caseload)
            if attach is None:
                return
            oid, reqs, _req = attach
            off = self.caseload.offenders[oid]
            doc = {"version": 1, "tz": self.caseload.tz, "offenders": [dict(off.raw, requirements=reqs)],
                   "zones": {"type": "FeatureCollection", "features": [z.feature() for z in self.caseload.zones.values()]}}
            new = parse_caseload(doc, f"offender {oid}").offenders[oid]
        except (CaseloadError, ValueError, KeyError) as e:
            self.failed.emit(f"zone {feature.get('id')}: requirement not shown: {e}")
            return
        off.requirements, off.raw = new.requirements, new.raw

    def _check_health(self) -> None:
        now = self.clock()
        if time.monotonic() - self._fresh_at >= FRESHNESS_S:
            self._fresh_at = time.monotonic()
            self.freshness.emit(self.fresh.summary())
        problem = None if self.mqtt is None else self.health.problem(self.connected)
        if problem is None and self.record_ok is False:
            why = self.record_error or ""
            problem = ("record", why if why.startswith("the centre's record answers")
                       else f"record unreachable — {why}")
        if self.record_ok and self.store is not None and time.monotonic() - self._last_probe > KEEPALIVE_S:
            # the person's own connection: a link that died is found now, not at the next action
            self._last_probe = time.monotonic()
            store = self.store
            self._submit(lambda: store.writer.call(lambda conn: conn.execute("SELECT 1").fetchone()),
                         lambda res: res[0] == "error" and self._record_failed(res[1]))
        if self.record_ok is False and time.monotonic() - self._last_probe > PROBE_S:
            self._last_probe = time.monotonic()
            if self.store is not None and self.store.writer.health() is None:
                self._submit(lambda: self.store.reader().execute("SELECT 1").fetchone(), self._probed)
            elif self.probe is not None:
                # nobody signed in, or the person's connection died with the link: the server
                # must establish who they are again (their password is not kept)
                self._submit(self.probe, self._answered)
        text = problem[1] if problem else ""
        kinds = {problem[0]} if problem else set()
        changes = []
        for kind in list(self._faults):
            if kind not in kinds:
                a = self._faults.pop(kind)
                a.state, a.cleared_at = "cleared", now
                changes.append(("cleared", a))
        for kind in kinds:
            if kind not in self._faults:
                a = console_fault_alert(kind, text, now)
                self._faults[kind] = a
                self.alerts[a.alert_id] = a
                self.handlings[a.alert_id] = Handling()
                changes.append(("raised", a))
        self._emit_alerts(changes)
        if text != self.fault_text:
            self.fault_text = text
            self.faultChanged.emit(text)
        stale = ""
        if self.stale_since is not None:
            stale = f"centre unreachable — picture from {time.strftime('%H:%M', time.localtime(self.stale_since))}, " \
                    f"{max(0, now - self.stale_since) / 60:.0f} min old"
        last = self.health.last or {}
        feed = last.get("feed") if isinstance(last.get("feed"), dict) else {}
        rate = 0.0            # the decider's feed rate, from its message counter
        msgs = feed.get("messages")
        if isinstance(msgs, (int, float)):
            mono = time.monotonic()
            if self._rate_at is not None and mono > self._rate_at[0] and msgs >= self._rate_at[1]:
                rate = (msgs - self._rate_at[1]) / (mono - self._rate_at[0])
            if self._rate_at is None or mono - self._rate_at[0] >= 5.0:
                self._rate_at = (mono, msgs)
        self.stats.emit({"now": now, "connected": not problem and self.connected,
                         "faults": [x for x in (text, stale) if x], "engine_down": None,
                         "last_msg_at": now, "msgs_per_s": rate, "lag_s": 0.0,
                         "messages": feed.get("messages", self._messages), "rejected": feed.get("rejected", 0),
                         "ok_text": f"● {self.health.describe()} — centre connected",
                         "client": True})

    def _answered(self, res) -> None:
        if res != ("ok", True):
            return
        if self.store is not None:
            self.record_error = ("the centre's record answers again: sign in again to act "
                                 "(Lock screen, Ctrl+L, then your password)")
        self.centreBack.emit()

    def _probed(self, res) -> None:
        if res[0] == "ok":
            was_stale = self.stale_since is not None
            self._record_back()
            if was_stale or not self.alerts:
                self._submit(self._read_record, self._record_read)
        else:
            self._record_failed(res[1])

    def set_store(self, store) -> None:
        """Another person signed in (or someone signed in at last): their record calls, and the
        record read again when the console was showing the cached picture."""
        had = self.store
        self.store = store
        self._record_trails.clear()          # what this login may read is the server's to say
        if had is None or self.stale_since is not None or self.record_ok is False:
            self._submit(self._read_record, self._record_read)

    def local_fault(self, alert_id: str) -> bool:
        """Whether ``alert_id`` is this console's own system_fault (handled here, not recorded)."""
        return alert_id.startswith("A-console-")

    # ----- what the window asks ----------------------------------------------------------------
    def request_details(self, offender_id: str) -> None:
        """The details of one offender (``details``), from the positions this console was
        shown; the record's fixes of the last 24 hours are read once per tag, as the signed-in
        person, where that login may read them, and the details given again with them."""
        o = self.caseload.offenders.get(offender_id)
        if o is None:
            self.details.emit({"offender": offender_id, "error": "unknown offender"})
            return
        now = self.clock()
        self.details.emit(details_of(o, self.caseload, self.trails.rows(o.device, now - HISTORY_S), now,
                                     self.zone_timeline, self.positions_now.get(o.device)))
        if self.store is None or o.device in self._record_trails or self.record_ok is False:
            return
        self._record_trails[o.device] = False
        store, device = self.store, o.device
        mine = self.trails.rows(device)
        until = mine[0][0] if mine else now

        def done(res):
            kind, rows = res
            if kind != "ok" or rows is None:      # not this login's to read (or not now): ours only
                if kind != "ok":
                    self._record_trails.pop(device, None)
                return
            self._record_trails[device] = True
            if rows:
                self.trails.merge(device, rows)
                self.request_details(offender_id)
        self._submit(lambda: record_fixes(store, device, now - HISTORY_S, until), done)

    def set_speed(self, speed) -> None:      # training only
        pass

    def update_zone(self, feature: dict) -> None:     # the window saves through save_zone
        raise RuntimeError("client mode: zones are saved to the record (save_zone)")

    remove_zone = attach_zone = update_zone

    # ----- the cache ---------------------------------------------------------------------------
    def _to_cache(self, kind: str, rows: list) -> None:
        if self._cache_q is not None and rows:
            if kind == "alerts":     # with the handling this console shows
                rows = [dict(r, handling=r.get("handling") or published_handling(self.handlings[r["alert_id"]]))
                        for r in rows]
            self._cache_q.put((kind, rows))

    def save_caseload(self, doc: dict) -> None:
        self._caseload_doc = doc
        if self._cache_q is not None:
            self._cache_q.put(("caseload", doc))

    def _cache_writer(self) -> None:
        q = self._cache_q
        while True:
            item = q.get()
            batch = [item]
            while True:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            for it in batch:
                if it is None:
                    self.cache.close()
                    return
                kind, rows = it
                try:
                    {"alerts": self.cache.put_alerts, "positions": self.cache.put_positions,
                     "zones": self.cache.put_zones, "caseload": self.cache.put_caseload,
                     "drop": self.cache.drop_alerts}[kind](rows)
                except Exception as e:      # noqa: BLE001 - the cache is a convenience
                    self.failed.emit(f"workstation cache not written: {e}")
