"""The live feed client: the broker's messages handed to the engine in batches (spec §2, §6).

``FeedClient`` connects with paho-mqtt 2 (MQTT 5 preferred, 3.1.1 accepted) and subscribes at
QoS 1 with a *persistent session* under a stable client id: MQTT 5 ``clean_start=False`` with a
session expiry interval, 3.1.1 ``clean_session=False``. What is published while the client is
down waits in the broker and is delivered when it returns.

The network loop runs on paho's own thread (``loop_start``); it only appends each message to a
thread-safe queue as a ``Delivery`` (topic, payload bytes, arrival epoch, adapter, ack token).
The consumer drains the queue in batches with ``get_batch`` and, once what it made of a batch
is committed to the store, calls ``ack(batch)``: the message is acknowledged to the broker only
then (paho's ``manual_ack``), so a process killed at any point loses nothing the broker had
handed it; the broker delivers the unacknowledged messages again on the next connection.
Acknowledgements are only sent on the connection that received the message (a reconnect starts a
new *generation*; the broker re-sends what was in flight, and those copies are acknowledged).

Subscriptions name their adapter: ``v1`` (``em/v1/#``), ``traccar`` (configured topics: position
and event forwarding) and ``owntracks`` (``owntracks/+/+`` or a configured layout). The decider's
own topics under ``em/v1/`` (``alert``, ``state``) and the retired workstation topics (``ack``,
``zone``, which the locked broker lets nobody write) are not feed messages: the feed
acknowledges and skips them. With MQTT 5 and Receive Maximum 65535 the broker may have that many
messages in flight to us, which bounds the queue; the broker holds the rest.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from monitorapp.feed.mqttconfig import MqttSettings

log = logging.getLogger("monitorapp.mqtt")

V1, TRACCAR, OWNTRACKS = "v1", "traccar", "owntracks"
ADAPTERS = (V1, TRACCAR, OWNTRACKS)
V1_TOPIC = "em/v1/#"
OWNTRACKS_TOPIC = "owntracks/+/+"
CONTROL_PREFIXES = ("em/v1/alert/", "em/v1/state/", "em/v1/ack/", "em/v1/zone/")
RECEIVE_MAXIMUM = 65535


class Delivery(NamedTuple):
    """One message as it arrived: ``token`` is (connection generation, mid) for the ack."""
    topic: str
    payload: bytes
    arrival: float
    adapter: str = V1
    token: tuple[int, int] | None = None


@dataclass(frozen=True)
class Subscription:
    topic: str
    adapter: str = V1


def default_subscriptions(traccar_topic: str | list[str] | None = None,
                          owntracks: bool | str = False) -> list[Subscription]:
    """v1, plus Traccar on each of its topics (positions and events may have their own) and
    OwnTracks on its pattern (``True``: ``owntracks/+/+``)."""
    subs = [Subscription(V1_TOPIC, V1)]
    for t in ([traccar_topic] if isinstance(traccar_topic, str) else traccar_topic or []):
        if t:
            subs.append(Subscription(t, TRACCAR))
    if owntracks:
        subs.append(Subscription(owntracks if isinstance(owntracks, str) else OWNTRACKS_TOPIC, OWNTRACKS))
    return subs


class BufferedClient(mqtt.Client):
    """paho's client reading the socket in 64 KiB chunks instead of a system call per header
    byte, and taking every packet that has arrived on each wake-up instead of one.

    paho 2 reads each packet's fixed header one byte at a time and handles one packet per
    ``select``; at thousands of messages a second that is most of the receive cost. Reads now
    go through a user-space buffer, and ``loop_read`` goes on until the socket would block (the
    broker's flow control, MQTT 5 Receive Maximum, bounds how much that can be), so no byte is
    left in the buffer while paho waits in ``select``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(65536)     # raises BlockingIOError when nothing is there
            if not data:
                return data                      # the connection closed
            self._rbuf, self._rpos = data, 0
        end = self._rpos + bufsize
        out = self._rbuf[self._rpos:end]
        self._rpos = min(end, len(self._rbuf))
        return out

    def _sock_close(self) -> None:
        self._rbuf, self._rpos = b"", 0
        super()._sock_close()

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        if self._sock is None:
            return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
        while True:
            if self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN and self._rpos >= len(self._rbuf):
                return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS   # nothing buffered, the socket is dry


def make_client(settings: MqttSettings, *, clean: bool, manual_ack: bool = False) -> mqtt.Client:
    """A paho client configured from the settings (TLS, credentials, reconnect backoff)."""
    if settings.protocol == 5:
        client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                                protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    else:
        client = BufferedClient(mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id,
                                protocol=mqtt.MQTTv311, clean_session=clean, manual_ack=manual_ack)
    ctx = settings.ssl_context()
    if ctx is not None:
        client.tls_set_context(ctx)
    if settings.username:
        client.username_pw_set(settings.username, settings.password)
    client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
    client.max_inflight_messages_set(1000)
    return client


def connect_async(client: mqtt.Client, settings: MqttSettings, *, clean: bool) -> None:
    """Start connecting in the background; paho's loop thread retries with backoff."""
    if settings.protocol == 5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if clean else settings.session_expiry_s
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        client.connect_async(settings.host, settings.port, settings.keepalive_s,
                             clean_start=clean, properties=props)
    else:
        client.connect_async(settings.host, settings.port, settings.keepalive_s)
    client.loop_start()


class FeedClient:
    """Subscribes to the feed and queues what arrives; see the module docstring."""

    def __init__(self, settings: MqttSettings, subscriptions: list[Subscription] | None = None,
                 *, persistent: bool = True):
        self.settings = settings
        self.subscriptions = list(subscriptions or default_subscriptions())
        for s in self.subscriptions:
            if s.adapter not in ADAPTERS:
                raise ValueError(f"subscription {s.topic!r}: unknown adapter {s.adapter!r}")
        self.persistent = persistent
        self._queue: collections.deque[Delivery] = collections.deque()
        self._ready = threading.Condition()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._client: mqtt.Client | None = None
        self._session_present = False
        self._refused = False
        # counters, read by the monitor for its stats line and by the UI
        self.received = 0
        self.control_skipped = 0
        self.connects = 0
        self.disconnects = 0
        self.last_error: str | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._client is not None:
            raise RuntimeError("feed client already started")
        c = make_client(self.settings, clean=not self.persistent, manual_ack=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        for sub in self.subscriptions:
            c.message_callback_add(sub.topic, self._handler(sub.adapter))
        c.on_message = self._handler(V1)
        self._client = c
        log.info("feed connecting", extra={"fields": self.settings.describe()})
        connect_async(c, self.settings, clean=not self.persistent)

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly and join the network thread (unacknowledged messages stay with
        the broker for the next session)."""
        c, self._client = self._client, None
        if c is None:
            return
        c.disconnect()
        c.loop_stop()
        self._connected.clear()
        with self._ready:
            self._ready.notify_all()

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def session_present(self) -> bool:
        return self._session_present

    @property
    def backlog(self) -> int:
        return len(self._queue)

    # --- consumer side ---------------------------------------------------------------------
    def get_batch(self, max_items: int = 5000, timeout: float = 0.5) -> list[Delivery]:
        """Up to ``max_items`` deliveries in arrival order; waits at most ``timeout`` for the
        first one. Returns an empty list when nothing came."""
        q = self._queue
        if not q:
            with self._ready:
                if not q:
                    self._ready.wait(timeout)
        out = []
        pop = q.popleft
        try:
            for _ in range(max_items):
                out.append(pop())
        except IndexError:
            pass
        return out

    def ack(self, deliveries: list[Delivery]) -> int:
        """Acknowledge to the broker the deliveries of the current connection; returns how
        many were sent. Call only after what they carried is committed."""
        c = self._client
        if c is None:
            return 0
        gen = self._generation
        n = 0
        for d in deliveries:
            tok = d.token
            if tok is not None and tok[0] == gen:
                c.ack(tok[1], 1)
                n += 1
        return n

    # --- network thread --------------------------------------------------------------------
    def _handler(self, adapter: str):
        q = self._queue
        ready = self._ready

        def on_message(client, userdata, msg):
            now = time.time()
            topic = msg.topic
            token = (self._generation, msg.mid) if msg.qos else None
            if adapter == V1 and topic.startswith(CONTROL_PREFIXES):
                self.control_skipped += 1
                if msg.qos:
                    client.ack(msg.mid, msg.qos)
                return
            self.received += 1
            q.append(Delivery(topic, msg.payload, now, adapter, token))
            if len(q) == 1:
                with ready:
                    ready.notify()
        return on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            self._refused = True
            log.warning("feed connect refused", extra={"fields": {
                "broker": self.settings.url(), "reason": str(reason_code)}})
            return
        self._generation += 1
        self._refused = False
        self.connects += 1
        self._session_present = bool(flags.session_present)
        self._connected.set()
        log.info("feed connected", extra={"fields": {
            "broker": self.settings.url(), "client_id": self.settings.client_id,
            "session_present": self._session_present, "connection": self._generation}})
        subs = []
        for s in self.subscriptions:
            if self.settings.protocol == 5:
                # retainHandling=2: the feed does not want retained workstation state
                subs.append((s.topic, SubscribeOptions(qos=1, retainHandling=2)))
            else:
                subs.append((s.topic, 1))
        client.subscribe(subs)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        bad = [str(rc) for rc in reason_codes if rc.is_failure]
        if bad:
            self.last_error = "subscription refused: " + ", ".join(bad)
            log.error("feed subscription refused", extra={"fields": {"reasons": bad}})
            return
        self._subscribed.set()
        log.info("feed subscribed", extra={"fields": {
            "topics": [s.topic for s in self.subscriptions], "qos": 1}})

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self._generation += 1   # acks of messages received on the old connection are void
        self._connected.clear()
        self._subscribed.clear()
        self.disconnects += 1
        if reason_code.is_failure and not self._refused:
            self.last_error = f"connection lost: {reason_code}"
        log.info("feed disconnected", extra={"fields": {
            "broker": self.settings.url(), "reason": str(reason_code)}})
