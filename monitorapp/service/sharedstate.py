"""What the workstations of one centre share through the broker: alert handling, zone edits, and
the alerts themselves (spec §4 handling, issue 4). Qt-free; the desktop app and the headless
monitor both use it.

Topics (all retained, JSON, QoS 1):

* ``em/v1/alert/{alert_id}``: ``alert.to_record()`` plus ``handling`` (published by monitors).
* ``em/v1/ack/{alert_id}``: the alert's handling record ``{"alert_id", "entries": [...]}``,
  every step any operator took on it (acknowledge, close, shelve, unshelve), each entry
  ``{"id", "step", "operator", "workstation", "at", ...}``.
* ``em/v1/zone/{zone_id}``: the latest edit ``{"zone_id", "feature", "removed", "operator",
  "workstation", "at"}``.

Convergence: a handling record is a grow-only set of entries. A workstation that receives a record
merges it with what it knows; if what it knows has entries the record lacks, it publishes the
union, so the retained message ends up holding every step whichever workstation wrote last.
Entries are ordered by (at, workstation, id); the first ``acknowledge`` is the owner. A later
``acknowledge`` by another operator is a **conflict**: ``publish_ack`` refuses it when the alert is
already known to be taken (it returns the conflict instead of publishing), and when two operators
raced, every workstation that learns of both reports it through ``on_conflict``, so nobody
handles an alert twice without knowing. Zone edits: the latest (at, workstation) wins; a workstation that sees an older edit retained
than one it knows publishes the newer again. ``on_remote_zone`` is called for every edit received,
this workstation's own included: edits are applied from the broker.

Callbacks run on the network thread; the receiver hands them to its own thread.
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from typing import Callable

import orjson

from monitorapp.feed.mqttconfig import MqttSettings
from monitorapp.feed.mqttfeed import connect_async, make_client

log = logging.getLogger("monitorapp.mqtt")
ACK_TOPIC, ZONE_TOPIC, ALERT_TOPIC = "em/v1/ack/", "em/v1/zone/", "em/v1/alert/"
STEPS = ("acknowledge", "close", "shelve", "unshelve")
_counter = itertools.count(1)


def entry_key(e: dict) -> tuple:
    return (float(e.get("at", 0.0)), str(e.get("workstation", "")), str(e.get("id", "")))


def handling_of(entries: list[dict]) -> dict:
    """The handling an operator sees from the merged entries: state, owner, conflicts."""
    state, owner, conflicts = "unacknowledged", None, []
    for e in sorted(entries, key=entry_key):
        step = e.get("step")
        if step == "acknowledge":
            if owner is None:
                owner = e
                if state != "closed":
                    state = "acknowledged"
            elif e.get("operator") != owner.get("operator"):
                conflicts.append({"first": owner, "second": e})
        elif step == "close" and state != "closed":
            state = "closed"
        elif step == "shelve" and state != "closed":
            state = "shelved"
        elif step == "unshelve" and state == "shelved":
            state = "acknowledged" if owner else "unacknowledged"
    return {"state": state, "owner": owner and {k: owner.get(k) for k in ("operator", "workstation", "at")},
            "conflicts": conflicts}


class SharedState:
    """One workstation's connection for shared handling and zone edits."""

    def __init__(self, settings: MqttSettings, workstation: str, *,
                 on_remote_ack: Callable[[str, dict, dict], None] | None = None,
                 on_remote_zone: Callable[[dict], None] | None = None,
                 on_conflict: Callable[[str, dict], None] | None = None):
        self.settings = settings
        self.workstation = workstation
        self.on_remote_ack = on_remote_ack
        self.on_remote_zone = on_remote_zone
        self.on_conflict = on_conflict
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, dict]] = {}      # alert_id -> entry id -> entry
        self._zones: dict[str, dict] = {}                    # zone_id -> latest edit
        self._reported: set[tuple] = set()
        self._client = None
        self._subscribed = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        c = make_client(self.settings, clean=True)
        c.max_inflight_messages_set(200)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_disconnect = lambda *a: self._subscribed.clear()
        c.on_message = self._on_message
        self._client = c
        connect_async(c, self.settings, clean=True)

    def wait_ready(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            c.disconnect()
            c.loop_stop()

    # --- publishing --------------------------------------------------------------------------
    def publish_ack(self, alert_id: str, operator: str, action: str, note: str | None = None,
                    *, force: bool = False) -> dict:
        """Acknowledge an alert with an action code and a note. Returns ``{"published": bool,
        "entry", "conflict"}``; when another operator already took the alert it does not publish
        (unless ``force``) and ``conflict`` says who and when."""
        known = handling_of(self.entries(alert_id))
        owner = known["owner"]
        conflict = owner if owner and owner["operator"] != operator else None
        if conflict and not force:
            return {"published": False, "entry": None, "conflict": conflict}
        entry = self._publish_step(alert_id, "acknowledge", operator, action=action, note=note)
        return {"published": True, "entry": entry, "conflict": conflict}

    def publish_close(self, alert_id: str, operator: str, note: str | None = None) -> dict:
        return self._publish_step(alert_id, "close", operator, note=note)

    def publish_shelve(self, alert_id: str, operator: str, reason: str, until: float) -> dict:
        return self._publish_step(alert_id, "shelve", operator, reason=reason, until=until)

    def publish_unshelve(self, alert_id: str, operator: str) -> dict:
        return self._publish_step(alert_id, "unshelve", operator)

    def _publish_step(self, alert_id: str, step: str, operator: str, **fields) -> dict:
        if not isinstance(alert_id, str) or not alert_id or "/" in alert_id or "#" in alert_id or "+" in alert_id:
            raise ValueError(f"not an alert id: {alert_id!r}")
        if not isinstance(operator, str) or not operator.strip():
            raise ValueError("an operator is required")
        entry = {"id": f"{self.workstation}-{time.time_ns()}-{next(_counter)}", "step": step,
                 "operator": operator.strip(), "workstation": self.workstation, "at": time.time(), **fields}
        with self._lock:
            entries = self._entries.setdefault(alert_id, {})
            entries[entry["id"]] = entry
            record = self._record(alert_id)
        self._publish(ACK_TOPIC + alert_id, record)
        return entry

    def publish_zone(self, feature: dict, operator: str = "system", removed: bool = False) -> dict:
        """Publish a zone edit (a GeoJSON Feature with an id) for every workstation."""
        zid = feature.get("id") if isinstance(feature, dict) else None
        if not isinstance(zid, str) or not zid or any(ch in zid for ch in "/#+"):
            raise ValueError("a zone edit needs a Feature with a string id without / # +")
        rec = {"zone_id": zid, "feature": feature, "removed": bool(removed), "operator": operator,
               "workstation": self.workstation, "at": time.time()}
        self._publish(ZONE_TOPIC + zid, rec)
        return rec

    def publish_alert(self, record: dict) -> None:
        """Publish an alert record (``to_record()`` plus handling), retained."""
        self._publish(ALERT_TOPIC + record["alert_id"], record)

    def _publish(self, topic: str, obj: dict) -> None:
        c = self._client
        if c is None:
            raise RuntimeError("shared state is not started")
        c.publish(topic, orjson.dumps(obj), qos=1, retain=True)

    # --- reading -----------------------------------------------------------------------------
    def entries(self, alert_id: str) -> list[dict]:
        with self._lock:
            return sorted(self._entries.get(alert_id, {}).values(), key=entry_key)

    def handling(self, alert_id: str) -> dict:
        return handling_of(self.entries(alert_id))

    def _record(self, alert_id: str) -> dict:
        return {"alert_id": alert_id,
                "entries": sorted(self._entries.get(alert_id, {}).values(), key=entry_key)}

    # --- network thread ----------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("shared state connect refused", extra={"fields": {"reason": str(reason_code)}})
            return
        client.subscribe([(ACK_TOPIC + "#", 1), (ZONE_TOPIC + "#", 1)])

    def _on_message(self, client, userdata, msg):
        try:
            obj = orjson.loads(msg.payload) if msg.payload else None
            if msg.topic.startswith(ACK_TOPIC):
                self._ack_message(msg.topic[len(ACK_TOPIC):], obj)
            elif msg.topic.startswith(ZONE_TOPIC):
                self._zone_message(msg.topic[len(ZONE_TOPIC):], obj)
        except Exception as e:   # bad input from the broker never stops this client
            log.warning("shared state message rejected", extra={"fields": {
                "topic": msg.topic[:200], "error": f"{type(e).__name__}: {e}"[:300]}})

    def _ack_message(self, alert_id: str, obj) -> None:
        if not isinstance(obj, dict) or not isinstance(obj.get("entries"), list):
            raise ValueError("handling record without an 'entries' list")
        new, republish = [], False
        with self._lock:
            mine = self._entries.setdefault(alert_id, {})
            theirs = set()
            for e in obj["entries"]:
                if not (isinstance(e, dict) and isinstance(e.get("id"), str) and e.get("step") in STEPS
                        and isinstance(e.get("operator"), str) and isinstance(e.get("at"), (int, float))):
                    raise ValueError("handling entry without id, step, operator and at")
                theirs.add(e["id"])
                if e["id"] not in mine:
                    mine[e["id"]] = e
                    new.append(e)
            if set(mine) - theirs:
                republish = True      # we know steps the retained record lacks: publish the union
            record = self._record(alert_id)
            entries = record["entries"]
        if republish:
            self._publish(ACK_TOPIC + alert_id, record)
        for e in sorted(new, key=entry_key):
            if e.get("workstation") != self.workstation and self.on_remote_ack:
                self.on_remote_ack(alert_id, e, handling_of(entries))
        for c in handling_of(entries)["conflicts"]:
            key = (alert_id, c["first"]["id"], c["second"]["id"])
            if key not in self._reported:
                self._reported.add(key)
                log.warning("handling conflict", extra={"fields": {
                    "alert_id": alert_id, "first": c["first"]["operator"], "second": c["second"]["operator"]}})
                if self.on_conflict:
                    self.on_conflict(alert_id, c)

    def _zone_message(self, zone_id: str, obj) -> None:
        if obj is None:
            return       # a cleared retained message
        if not isinstance(obj, dict) or not isinstance(obj.get("feature"), dict) or obj.get("zone_id") != zone_id:
            raise ValueError("zone edit without a feature for this zone")
        with self._lock:
            prev = self._zones.get(zone_id)
            if prev is not None and entry_key(prev) >= entry_key(obj):
                if entry_key(prev) > entry_key(obj):
                    self._publish(ZONE_TOPIC + zone_id, prev)   # the retained edit is older: correct it
                return
            self._zones[zone_id] = obj
        if self.on_remote_zone:
            self.on_remote_zone(obj)
