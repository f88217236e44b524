"""The feed client against a real Mosquitto with the locked configuration ``monitorapp
broker-config`` writes (the feed read as the ``monitor`` identity, published as ``gateway``):
batches, the persistent session, manual acknowledgement, a broker restart mid-stream, TLS with
client certificates, passwords."""
from __future__ import annotations

import logging
import threading

import orjson
import paho.mqtt.client as mqtt
import pytest

from monitorapp.feed.mqttconfig import MqttConfigError, MqttSettings, redact_url
from monitorapp.feed.mqttfeed import FeedClient, Subscription, default_subscriptions
from monitorapp.sim.publish import publish_feed, topic_for
from tests.fixtures_mqtt import wait_until


def fix_lines(n: int, device: str = "TAG-01001", start_seq: int = 1, t0: float = 1_790_000_000.0):
    out = []
    for i in range(n):
        seq = start_seq + i
        obj = {"v": 1, "kind": "fix", "device": device, "seq": seq,
               "t": "2026-11-27T17:00:%02d.000Z" % (seq % 60), "lat": 51.5, "lon": -0.1, "acc": 10, "src": "gps"}
        out.append((t0 + seq, orjson.dumps(obj)))
    return out


class Collector:
    """Drains a FeedClient on a thread of its own (as the monitor does), acking as it goes."""

    def __init__(self, feed: FeedClient, ack: bool = True, ack_limit: int | None = None):
        self.feed, self.ack, self.ack_limit = feed, ack, ack_limit
        self.items, self.batch_sizes, self.acked = [], [], 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="collector")
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            batch = self.feed.get_batch(max_items=200, timeout=0.1)
            if not batch:
                continue
            self.items.extend(batch)
            self.batch_sizes.append(len(batch))
            if self.ack:
                take = batch if self.ack_limit is None else batch[: max(0, self.ack_limit - self.acked)]
                self.acked += self.feed.ack(take)

    def seqs(self) -> set[int]:
        return {orjson.loads(d.payload)["seq"] for d in self.items}

    def close(self):
        self._stop.set()
        self._t.join(5)


@pytest.fixture
def feeds():
    made = []

    def make(url, client_id="ws-test", **kw):
        f = FeedClient(url if isinstance(url, MqttSettings) else MqttSettings.from_url(url, client_id=client_id, **kw))
        made.append(f)
        f.start()
        assert f.wait_subscribed(15), f"feed did not subscribe: {f.last_error}"
        return f
    yield make
    for f in made:
        f.stop()


def test_messages_arrive_in_batches_with_topic_payload_and_arrival(locked_broker, feeds):
    broker = locked_broker
    feed = feeds(broker.url_for("monitor"))
    col = Collector(feed)
    try:
        lines = fix_lines(600)
        stats = publish_feed(lines, broker.url_for("gateway"), speed=0)
        assert stats["published"] == 600
        wait_until(lambda: len(col.items) >= 600, 20, "600 messages")
    finally:
        col.close()
    assert col.seqs() == set(range(1, 601))
    assert max(col.batch_sizes) > 1, "messages should reach the consumer in batches"
    first = col.items[0]
    assert first.topic == "em/v1/fix/TAG-01001" and first.adapter == "v1"
    assert isinstance(first.payload, bytes) and first.arrival > 1.7e9
    assert feed.received == 600


def test_workstation_topics_are_not_feed_messages(locked_broker, feeds, publisher_factory):
    """The monitor reads its own alert topic (the ACL lets it); the feed client skips it."""
    broker = locked_broker
    feed = feeds(broker.url_for("monitor"))
    col = Collector(feed)
    try:
        publisher_factory(broker.settings_for("monitor", client_id="alert-pub")).publish(
            [("em/v1/alert/A-1", b"{}"), ("em/v1/alert/A-2", b"{}")])
        publisher_factory(broker.url_for("gateway")).publish([("em/v1/fix/TAG-01001", fix_lines(1)[0][1])])
        wait_until(lambda: len(col.items) >= 1 and feed.control_skipped >= 2, 10, "the fix")
    finally:
        col.close()
    assert [d.topic for d in col.items] == ["em/v1/fix/TAG-01001"]


def test_persistent_session_delivers_what_was_published_while_down(locked_broker, feeds):
    broker = locked_broker
    feed = feeds(broker.url_for("monitor"), client_id="ws-persist")
    feed.stop()
    publish_feed(fix_lines(300), broker.url_for("gateway"), speed=0)       # the monitor is down
    feed2 = feeds(broker.url_for("monitor"), client_id="ws-persist")
    assert feed2.session_present
    col = Collector(feed2)
    try:
        wait_until(lambda: len(col.seqs()) >= 300, 20, "the 300 messages kept by the broker")
    finally:
        col.close()
    assert col.seqs() == set(range(1, 301))


def test_unacknowledged_messages_come_again_after_a_crash(locked_broker, feeds):
    """Only what was acknowledged (committed) is gone from the broker."""
    broker = locked_broker
    feed = feeds(broker.url_for("monitor"), client_id="ws-crash")
    col = Collector(feed, ack_limit=100)
    try:
        publish_feed(fix_lines(250), broker.url_for("gateway"), speed=0)
        wait_until(lambda: len(col.items) >= 250, 20, "250 messages")
    finally:
        col.close()
    acked = {orjson.loads(d.payload)["seq"] for d in col.items[:100]}
    feed.stop()
    feed2 = feeds(broker.url_for("monitor"), client_id="ws-crash")
    col2 = Collector(feed2)
    try:
        wait_until(lambda: col2.seqs() >= set(range(1, 251)) - acked, 20, "the 150 unacknowledged messages")
    finally:
        col2.close()
    assert not (col2.seqs() & acked), "acknowledged messages must not come again"


def test_broker_restarted_mid_stream_loses_no_fix(locked_broker, feeds):
    broker = locked_broker
    feed = feeds(broker.url_for("monitor"), client_id="ws-restart")
    col = Collector(feed)
    result = {}
    lines = fix_lines(3000)
    pub = threading.Thread(target=lambda: result.update(publish_feed(lines, broker.url_for("gateway"),
                                                                     speed=1000)))
    pub.start()
    try:
        wait_until(lambda: len(col.items) >= 500, 30, "the first 500 messages")
        broker.restart()
        pub.join(120)
        assert result.get("published") == 3000, result
        wait_until(lambda: col.seqs() >= set(range(1, 3001)), 60,
                   "every fix after the broker restart")
    finally:
        col.close()
        pub.join(5)
    assert feed.connects >= 2 and result["reconnects"] >= 1


def test_tls_with_ca_and_client_certificate(locked_tls_broker, feeds):
    """The client certificate's CN is the identity (use_identity_as_username)."""
    feed = feeds(locked_tls_broker.settings_for("monitor", client_id="ws-tls", tls=True))
    col = Collector(feed)
    try:
        publish_feed(fix_lines(20), locked_tls_broker.settings_for("gateway", client_id="pub-tls", tls=True),
                     speed=0)
        wait_until(lambda: len(col.items) >= 20, 20, "20 messages over TLS")
    finally:
        col.close()
    assert col.seqs() == set(range(1, 21))


def test_tls_broker_refuses_a_client_without_certificate(locked_tls_broker, certificates):
    s = MqttSettings.from_url(locked_tls_broker.tls_url, client_id="no-cert", ca_file=str(certificates.ca))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="no-cert", protocol=mqtt.MQTTv5)
    client.tls_set_context(s.ssl_context())
    with pytest.raises(OSError):
        client.connect("127.0.0.1", locked_tls_broker.tls_port)
        for _ in range(50):   # the broker's refusal arrives with the first read
            if client.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                raise OSError("connection closed by the broker")
    client.disconnect()


def test_password_from_file_and_never_in_the_log(locked_broker, tmp_path, caplog):
    pwfile = locked_broker.password_file("monitor")
    secret = locked_broker.password("monitor")
    caplog.set_level(logging.DEBUG)
    s = MqttSettings.from_args(locked_broker.url, client_id="ws-auth", username="monitor",
                               password_file=str(pwfile))
    assert s.password == secret
    feed = FeedClient(s)
    feed.start()
    try:
        assert feed.wait_subscribed(15), feed.last_error
        publish_feed(fix_lines(5), locked_broker.url_for("gateway"), speed=0)
        col = Collector(feed)
        try:
            wait_until(lambda: len(col.items) >= 5, 20, "5 messages")
        finally:
            col.close()
    finally:
        feed.stop()
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert secret not in text and locked_broker.password("gateway") not in text
    assert "password_set" in text


def test_wrong_password_is_refused_and_reported(locked_broker):
    s = MqttSettings.from_url(f"mqtt://monitor:wrong@127.0.0.1:{locked_broker.port}", client_id="ws-bad")
    feed = FeedClient(s)
    feed.start()
    try:
        wait_until(lambda: feed.last_error, 15, "the refusal")
    finally:
        feed.stop()
    assert "authori" in feed.last_error.lower() or "password" in feed.last_error.lower()
    assert not feed.connected


def test_settings_errors_and_redaction(tmp_path):
    assert redact_url("mqtt://bob:hunter2@h:1883") == "mqtt://bob:***@h:1883"
    assert redact_url("mqtts://h:8883") == "mqtts://h:8883"
    s = MqttSettings.from_url("mqtts://bob:hunter2@broker.example:8884", client_id="x")
    assert (s.host, s.port, s.tls, s.username, s.password) == ("broker.example", 8884, True, "bob", "hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.describe())
    assert MqttSettings.from_url("mqtt://h", client_id="x").port == 1883
    assert MqttSettings.from_url("mqtts://h", client_id="x").port == 8883
    for bad, words in [("http://h", "scheme"), ("h:1883", "mqtt://"), ("mqtt://:1883", "no host"),
                       ("mqtt://h:99999", "not valid"), ("mqtt://h/x", "path")]:
        with pytest.raises(MqttConfigError, match=words):
            MqttSettings.from_url(bad, client_id="x")
    with pytest.raises(MqttConfigError, match="use mqtts"):
        MqttSettings.from_url("mqtt://h", client_id="x", ca_file=str(tmp_path))
    with pytest.raises(MqttConfigError, match="does not exist"):
        MqttSettings.from_url("mqtts://h", client_id="x", ca_file=str(tmp_path / "nope.pem"))
    with pytest.raises(MqttConfigError, match="both"):
        MqttSettings.from_url("mqtts://h", client_id="x", cert_file=str(tmp_path))
    with pytest.raises(MqttConfigError, match="client id"):
        MqttSettings.from_url("mqtt://h", client_id="bad id/with slash")
    with pytest.raises(MqttConfigError, match="password file"):
        MqttSettings.from_args("mqtt://u@h", password_file=str(tmp_path / "missing"))


def test_topics_for_replay_lines_and_subscriptions():
    assert topic_for(b'{"v":1,"kind":"fix","device":"T-1"}') == "em/v1/fix/T-1"
    assert topic_for(b'{"v":1,"kind":"event","device":"T-1"}') == "em/v1/event/T-1"
    assert topic_for(b'{"v":1,"kind":"heartbeat","gateway":"GW-1"}') == "em/v1/heartbeat/GW-1"
    assert topic_for(b'{"kind":"fix","device":"a/b#"}') == "em/v1/fix/a_b_"
    assert topic_for(b"not json") == "em/v1/fix/unknown"
    subs = default_subscriptions(traccar_topic="traccar/positions", owntracks=True)
    assert [(s.topic, s.adapter) for s in subs] == [
        ("em/v1/#", "v1"), ("traccar/positions", "traccar"), ("owntracks/+/+", "owntracks")]
    with pytest.raises(ValueError):
        FeedClient(MqttSettings.from_url("mqtt://h", client_id="x"), [Subscription("x", "kml")])
