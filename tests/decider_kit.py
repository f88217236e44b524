"""Helpers for the decider's end-to-end tests: a client that reads what the decider publishes
(``StateReader``), a hostile publisher (``try_publish``), and the record's side of an operator's
action. Real paho clients on the test's own locked Mosquitto; nothing here fakes our code."""
from __future__ import annotations

import threading

import orjson

from monitorapp.feed.mqttconfig import MqttSettings
from monitorapp.feed.mqttfeed import connect_async, make_client
from tests.fixtures_mqtt import wait_until


class StateReader:
    """Subscribes (QoS 1) to ``topics`` and keeps every message in arrival order (``seen``)
    and the newest per topic (``latest``); an empty retained payload removes the topic."""

    def __init__(self, settings: MqttSettings, *topics: str):
        self.settings, self.topics = settings, topics
        self.seen: list[tuple[str, dict | None]] = []
        self.latest: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = make_client(settings, clean=True)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client, userdata, msg):
        body = orjson.loads(msg.payload) if msg.payload else None
        with self._lock:
            self.seen.append((msg.topic, body))
            if body is None:
                self.latest.pop(msg.topic, None)
            else:
                self.latest[msg.topic] = body

    def __enter__(self) -> "StateReader":
        connect_async(self.client, self.settings, clean=True)
        if not self._subscribed.wait(10):
            self.close()
            raise AssertionError("the state reader could not subscribe")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def alerts(self) -> dict[str, dict]:
        with self._lock:
            return {t.rsplit("/", 1)[1]: b for t, b in self.latest.items() if t.startswith("em/v1/alert/")}

    def get(self, topic: str) -> dict | None:
        with self._lock:
            return self.latest.get(topic)

    def history(self, topic: str) -> list[dict | None]:
        with self._lock:
            return [b for t, b in self.seen if t == topic]


def try_publish(settings: MqttSettings, items) -> list[str]:
    """Publish each (topic, payload) at QoS 1, retained, on a connection of its own (Mosquitto
    closes a connection after a refused publish); returns the broker's reason for each. Every
    one must be refused ("Not authorized"): the test fails otherwise."""
    reasons = []
    for topic, payload in items:
        done = threading.Event()
        got: dict = {}
        c = make_client(settings, clean=True)

        def on_connect(cl, u, f, rc, p, topic=topic, payload=payload):
            if rc.is_failure:
                got["rc"] = str(rc)
                done.set()
            else:
                cl.publish(topic, payload, qos=1, retain=True)

        def on_publish(cl, u, mid, rc, p):
            got["rc"] = str(rc)
            done.set()
        c.on_connect, c.on_publish = on_connect, on_publish
        connect_async(c, settings, clean=True)
        try:
            wait_until(done.is_set, 10, f"the broker's answer to a publish on {topic}")
        finally:
            c.disconnect()
            c.loop_stop()
        reasons.append(got["rc"])
    assert all(r == "Not authorized" for r in reasons), reasons
    return reasons


def fixes_at(device: str, lat: float, lon: float, t0: float, n: int = 5, seq0: int = 10_000,
             every_s: float = 60.0) -> list[tuple[float, bytes]]:
    """``n`` good fixes of ``device`` at one place (an entry is confirmed by several), as
    (rx, v1 payload) lines for ``publish_feed``; ``t`` is 0.5 s before ``rx``."""
    from monitorapp.feed.timeutil import fmt_time
    out = []
    for k in range(n):
        rx = t0 + k * every_s
        out.append((rx, orjson.dumps({"v": 1, "kind": "fix", "device": device, "seq": seq0 + k,
                                      "t": fmt_time(rx - 0.5), "rx": fmt_time(rx), "lat": lat,
                                      "lon": lon, "acc": 8, "src": "gps"})))
    return out
