"""What the decider publishes on the broker (spec v2 §8, issue 15): its state, for the consoles.

Topics (JSON, UTF-8; times in the state topics and in ``handling`` are epoch seconds):

* ``em/v1/alert/{alert_id}`` retained, QoS 1: ``alert.to_record()`` plus ``handling``, the
  record's handling of the alert (``monitorapp.service.recordwatch.handling_of``), ``address``
  (street and borough of its evidence, ``monitorapp.service.placenames``) and ``published_at``.
* ``em/v1/state/position/{device}`` retained, QoS 0: the tag's latest position, at most one per
  device per second (``note_position`` keeps the newest; ``flush_positions`` sends them), with
  ``address`` and ``published_at`` (epoch seconds: what a console measures its lag from).
* ``em/v1/state/zone/{zone_id}`` retained, QoS 1: a zone version the decider applied.
* ``em/v1/state/decider`` retained, QoS 1: ``{"state": "active", "monitor", "at", "started",
  "record", "feed"}`` every 2 s; ``"stopped"`` on a clean exit; the MQTT last will, published by
  the broker when the connection dies, is ``{"state": "lost", "monitor"}``.
* ``em/v1/state/standby/{instance}`` retained, QoS 1: a standby's ``{"state": "standby", ...}``
  every 2 s (``StandbyAnnouncer``), cleared when it takes over or exits; its will says "lost".

The active decider's connection uses the client id ``{client_id}-state``, shared by every
decider of the centre: a new leader's connection takes the session over on the broker, so a
deposed one cannot go on publishing beside it. A standby's own connection is per instance.
Calls come from the monitor's main thread; paho's loop thread does the network.
"""
from __future__ import annotations

import logging
import threading
import time

import orjson
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from monitorapp.feed.mqttconfig import MqttSettings
from monitorapp.feed.mqttfeed import connect_async, make_client

log = logging.getLogger("monitorapp.service.publisher")
ALERT_TOPIC = "em/v1/alert/"
POSITION_TOPIC = "em/v1/state/position/"
ZONE_TOPIC = "em/v1/state/zone/"
ZONE_REFUSED_TOPIC = "em/v1/state/zone_refused/"
DECIDER_TOPIC = "em/v1/state/decider"
STANDBY_TOPIC = "em/v1/state/standby/"
HEARTBEAT_S = 2.0
POSITION_EVERY_S = 1.0


def _with_id(settings: MqttSettings, client_id: str) -> MqttSettings:
    return MqttSettings(**{**settings.__dict__, "client_id": client_id[:64]})


class _Connection:
    """One clean-session paho connection with a retained last will."""

    def __init__(self, settings: MqttSettings, will_topic: str, will: dict, what: str):
        self.settings, self.what = settings, what
        self.connected = threading.Event()
        self.client = make_client(settings, clean=True)
        self.client.will_set(will_topic, orjson.dumps(will), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self._started = False
        self._last = None             # the last QoS 1 publication (stop waits for it)

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("publisher connect refused", extra={"fields": {
                "what": self.what, "reason": str(reason_code)}})
            return
        self.connected.set()
        log.info("publisher connected", extra={"fields": {"what": self.what,
                                                          "client_id": self.settings.client_id}})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()

    def start(self) -> None:
        self._started = True
        connect_async(self.client, self.settings, clean=True)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = True):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            self._last = info
        return info

    def stop(self, with_will: bool = False, timeout: float = 5.0) -> None:
        """Disconnect after what was published has gone (QoS 1 acknowledged, up to
        ``timeout``); ``with_will``: ask the broker to publish the last will all the same."""
        if not self._started:
            return
        if self._last is not None and self.connected.is_set():
            try:
                self._last.wait_for_publish(timeout)
            except (RuntimeError, ValueError):      # not queued: nothing to wait for
                pass
        if with_will and self.settings.protocol == 5:
            self.client.disconnect(ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
        else:
            self.client.disconnect()
        self.client.loop_stop()
        self._started = False


class DeciderPublisher:
    """The active decider's publications; see the module docstring."""

    def __init__(self, settings: MqttSettings, instance: str, started: float, namer=None):
        self.instance, self.started = instance, started
        self.namer = namer              # PlaceNamer: street and borough (None: not named)
        self.conn = _Connection(_with_id(settings, settings.client_id + "-state"), DECIDER_TOPIC,
                                {"state": "lost", "monitor": instance, "started": started},
                                "decider")
        self._positions: dict[str, dict] = {}
        self._next_positions = 0.0
        self.published = {"alerts": 0, "positions": 0, "zones": 0}

    def start(self) -> None:
        self.conn.start()

    @property
    def connected(self) -> bool:
        return self.conn.connected.is_set()

    def publish_alert(self, rec: dict) -> None:
        if self.namer is not None:
            self.namer.name_alert(rec)
        rec["published_at"] = time.time()
        self.conn.publish(ALERT_TOPIC + rec["alert_id"], orjson.dumps(rec))
        self.published["alerts"] += 1

    def note_position(self, device: str, offender: str | None, fix) -> None:
        p = {"device": device, "offender": offender, "t": fix.t, "rx": fix.rx, "lat": fix.lat,
             "lon": fix.lon, "acc": fix.acc}
        if fix.batt is not None:
            p["battery"] = fix.batt
        self._positions[device] = p

    def flush_positions(self, now: float | None = None) -> int:
        """Send the newest position of each device that moved, at most once a second."""
        now = time.monotonic() if now is None else now
        if now < self._next_positions or not self._positions:
            return 0
        self._next_positions = now + POSITION_EVERY_S
        pending, self._positions = self._positions, {}
        if self.namer is not None:
            self.namer.name_positions(list(pending.values()))
        at = time.time()
        for device, p in pending.items():
            p["published_at"] = at
            self.conn.publish(POSITION_TOPIC + device, orjson.dumps(p), qos=0)
        self.published["positions"] += len(pending)
        return len(pending)

    def publish_zone(self, rec: dict) -> None:
        self.conn.publish(ZONE_TOPIC + rec["zone_id"], orjson.dumps(rec))
        self.published["zones"] += 1

    def publish_zone_refused(self, rec: dict, reason: str) -> None:
        """A zone version saved in the record that the decider refused: not retained (the
        zone's retained state stays the version in force), for the consoles connected now,
        the one that saved it among them, to say that it is not enforced and why."""
        self.conn.publish(ZONE_REFUSED_TOPIC + rec["zone_id"], orjson.dumps({
            "zone_id": rec["zone_id"], "version": rec["version"], "saved_by": rec.get("saved_by"),
            "reason": reason, "published_at": time.time()}), retain=False)
        self.published["zones_refused"] = self.published.get("zones_refused", 0) + 1

    def status(self, state: str, record: str, feed: dict, **extra) -> None:
        self.conn.publish(DECIDER_TOPIC, orjson.dumps({
            "state": state, "monitor": self.instance, "at": time.time(), "started": self.started,
            "record": record, "feed": feed, **extra}))

    def stop(self, state: str | None = "stopped", **extra) -> None:
        """``state``: the last retained status to leave (None: let the broker publish the will)."""
        if state is not None:
            self.status(state, extra.pop("record", "ok"), extra.pop("feed", {}), **extra)
        self.conn.stop(with_will=state is None)


class StandbyAnnouncer:
    """A standby's ``em/v1/state/standby/{instance}``, on a connection of its own."""

    def __init__(self, settings: MqttSettings, instance: str, started: float):
        self.instance, self.started = instance, started
        self.topic = STANDBY_TOPIC + instance
        self.conn = _Connection(_with_id(settings, f"{settings.client_id}-standby-{instance}"),
                                self.topic, {"state": "lost", "monitor": instance}, "standby")
        self._next = 0.0

    def start(self) -> None:
        self.conn.start()

    def tick(self, record: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now < self._next:
            return
        self._next = now + HEARTBEAT_S
        self.conn.publish(self.topic, orjson.dumps({
            "state": "standby", "monitor": self.instance, "at": time.time(),
            "started": self.started, "record": record}))

    def stop(self) -> None:
        """Clear the retained standby message (this instance is no longer waiting)."""
        self.conn.publish(self.topic, b"")
        self.conn.stop()
