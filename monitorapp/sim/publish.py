"""Publishing a feed to a broker at a chosen speed: ``monitorapp simulate --broker URL --speed X``.

``publish_feed`` takes replay lines ``(rx, line)`` in arrival order, and publishes each line
unchanged, QoS 1, on its protocol v1 topic (``em/v1/{kind}/{device}``, heartbeats on
``em/v1/heartbeat/{gateway}``), paced so that the gaps between messages are the gaps between
their ``rx`` divided by ``speed`` (``speed <= 0`` or ``inf``: as fast as the broker takes them).
A line that is not a v1 object (the simulator's deliberate bad input) goes to
``em/v1/fix/{device}`` when it names a device, else ``em/v1/fix/unknown`` (a gateway identity
may publish only the feed topics), so the monitor sees it, rejects it and counts it.

Every message is kept by paho until the broker has acknowledged it; a broker restart mid-stream
is ridden out (paho reconnects with backoff and re-sends what was not acknowledged), and
``publish_feed`` returns only when the broker has acknowledged every message, or raises
``PublishError`` when it could not within ``drain_timeout`` seconds after the last one.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from typing import Iterable

import orjson

from monitorapp.feed.mqttconfig import MqttSettings, default_client_id
from monitorapp.feed.mqttfeed import connect_async, make_client

log = logging.getLogger("monitorapp.mqtt")
MAX_OUTSTANDING = 20_000     # messages handed to paho but not yet acknowledged by the broker


class PublishError(RuntimeError):
    """The broker did not take the feed."""


def topic_for(line: bytes) -> str:
    """The protocol v1 topic a replay line belongs on."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "em/v1/fix/unknown"
    if not isinstance(obj, dict):
        return "em/v1/fix/unknown"
    kind = obj.get("kind")
    if kind == "heartbeat" and isinstance(obj.get("gateway"), str) and obj["gateway"]:
        return f"em/v1/heartbeat/{_level(obj['gateway'])}"
    device = obj.get("device")
    if isinstance(device, str) and device:
        return f"em/v1/{kind if kind in ('fix', 'event') else 'fix'}/{_level(device)}"
    return "em/v1/fix/unknown"


def _level(name: str) -> str:
    """A topic level: MQTT wildcards and separators are not allowed inside one."""
    return "".join("_" if ch in "/+#\0" else ch for ch in name)[:128]


def publish_feed(lines: Iterable[tuple[float, bytes]], url: str | MqttSettings, speed: float = 1.0,
                 *, client_id: str | None = None, drain_timeout: float = 120.0,
                 stop: threading.Event | None = None) -> dict:
    """Publish the lines; returns ``{"published", "seconds", "rate", "max_behind_s",
    "reconnects"}``. A message the broker refuses (MQTT 5 "not authorised": the
    identity may not publish that topic; Mosquitto then also closes the connection) ends it
    with ``PublishError``; over 3.1.1 a refusal looks like success. ``stop`` (an Event) ends
    the publishing early."""
    settings = url if isinstance(url, MqttSettings) else MqttSettings.from_url(
        url, client_id=client_id or f"{default_client_id('simulator')}-{int(time.time() * 1000) % 10**9}")
    client = make_client(settings, clean=True)
    client.max_inflight_messages_set(1000)
    state = {"acked": 0, "connects": 0, "refused": 0, "connack": None}
    connected = threading.Event()
    answered = threading.Event()          # a CONNACK, accepted or not
    cond = threading.Condition()

    def on_connect(c, u, flags, rc, props):
        state["connack"] = rc
        answered.set()
        if not rc.is_failure:
            state["connects"] += 1
            connected.set()
            log.info("simulator connected", extra={"fields": {"broker": settings.url()}})

    def on_disconnect(c, u, flags, rc, props):
        connected.clear()

    def on_publish(c, u, mid, rc, props):
        with cond:
            state["acked"] += 1
            if rc.is_failure:                 # MQTT 5: "Not authorized" for this identity's ACL
                state["refused"] += 1
            cond.notify_all()

    client.on_connect, client.on_disconnect, client.on_publish = on_connect, on_disconnect, on_publish
    connect_async(client, settings, clean=True)
    published = 0
    max_behind = 0.0
    t0 = time.monotonic()
    try:
        answered.wait(30)
        if state["connack"] is not None and state["connack"].is_failure and not connected.is_set():
            raise PublishError(f"the broker refused the connection as {settings.username or 'anonymous'}: "
                               f"{state['connack']}")
        if not connected.wait(max(0.0, 30 - (time.monotonic() - t0))):
            raise PublishError(f"could not connect to {settings.url()} within 30 s")
        fast = not speed or speed <= 0 or math.isinf(speed)
        rx0 = None
        for rx, line in lines:
            if stop is not None and stop.is_set():
                break
            if isinstance(line, str):
                line = line.encode()
            line = line.rstrip(b"\r\n")
            if not fast:
                if rx0 is None:
                    rx0 = rx
                due = t0 + (rx - rx0) / speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    max_behind = max(max_behind, -delay)
            if state["refused"]:
                break             # Mosquitto also drops the connection: no point going on
            with cond:
                while published - state["acked"] >= MAX_OUTSTANDING:
                    cond.wait(1.0)
            client.publish(topic_for(line), line, qos=1)
            published += 1
        deadline = time.monotonic() + drain_timeout
        with cond:
            while state["acked"] < published and not state["refused"]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise PublishError(f"the broker acknowledged {state['acked']} of {published} messages "
                                       f"within {drain_timeout:.0f} s")
                cond.wait(min(left, 1.0))
        if state["refused"]:
            raise PublishError(f"the broker refused to take messages from "
                               f"{settings.username or 'this identity'} (not authorised for their topics)")
    finally:
        client.disconnect()
        client.loop_stop()
    seconds = time.monotonic() - t0
    return {"published": published, "seconds": round(seconds, 3),
            "rate": round(published / seconds, 1) if seconds > 0 else None,
            "max_behind_s": round(max_behind, 3), "reconnects": max(0, state["connects"] - 1)}
