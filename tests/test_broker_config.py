"""``monitorapp broker-config`` and the locked-down broker it configures (issue 15, spec v2 §8),
tested on a real Mosquitto running exactly the written configuration (tests/fixtures_mqtt.py
``LockedBroker``): nobody signs in anonymously or with a wrong password; a console cannot
publish anything; a gateway publishes only feed topics; the monitor gets the feed and publishes
the centre's topics; an oversize message goes nowhere; TLS with client certificates names the
identity. Mosquitto 2.0.11 answers an unauthorised publish with reason code "Not authorized" in
the PUBACK for MQTT 5 and with a plain PUBACK for 3.1.1 (no reason codes), delivers it to
nobody, and then closes that client's connection: both protocols are checked, one connection
per attempt.

Mosquitto 2.0's ACL file does not refuse a SUBSCRIBE (the SUBACK grants it): what it enforces
is at delivery, where a message is sent only to a client with read access to its topic. So
"a gateway cannot subscribe to alerts" is tested as what matters: it receives none, retained
or live."""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from monitorapp.feed.mqttconfig import MqttSettings
from monitorapp.feed.mqttfeed import connect_async, make_client
from monitorapp.service import brokerconfig
from tests.fixtures_mqtt import ROOT, LockedBroker, free_port, wait_until

pytestmark = pytest.mark.usefixtures("no_leftovers")


class Client:
    """A paho client of one identity that records its CONNACK, SUBACKs, PUBACKs and messages."""

    def __init__(self, settings: MqttSettings, expect_connect: bool = True):
        self.settings = settings
        self.connack = None
        self.subacks: list[list[str]] = []
        self.pubacks: dict[int, str] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self.disconnected = threading.Event()
        self.c = make_client(settings, clean=True)
        self.c.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.append([str(r) for r in rcs])
        # "No matching subscribers" is a success too: recorded as "Success"
        self.c.on_publish = lambda c, u, mid, rc, p: self.pubacks.__setitem__(
            mid, str(rc) if rc.is_failure else "Success")
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, bool(m.retain)))
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnected.set()
        self.c.reconnect_delay_set(30, 60)      # a refused client must not retry during the test
        connect_async(self.c, settings, clean=True)
        wait_until(lambda: self.connack is not None, 10, f"CONNACK for {settings.username or settings.client_id}")
        if expect_connect:
            assert not self.connack.is_failure, f"{settings.url()} refused: {self.connack}"

    def subscribe(self, *topics: str) -> list[str]:
        n = len(self.subacks)
        self.c.subscribe([(t, 1) for t in topics])
        wait_until(lambda: len(self.subacks) > n, 10, "SUBACK")
        return self.subacks[n]

    def publish(self, topic: str, payload: bytes = b'{"v":1}', retain: bool = False) -> int:
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        return info.mid

    def puback(self, mid: int, timeout: float = 10) -> str:
        return wait_until(lambda: self.pubacks.get(mid), timeout, f"PUBACK {mid}")

    def topics(self) -> list[str]:
        return [t for t, _, _ in self.messages]

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients():
    made: list[Client] = []

    def make(settings, expect_connect=True):
        c = Client(settings, expect_connect)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def test_the_written_files_are_what_the_locked_broker_runs(locked_broker):
    d = locked_broker.config_dir
    conf = (d / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and f"password_file {d / 'passwd'}" in conf
    assert f"acl_file {d / 'acl'}" in conf and "max_packet_size 66560" in conf
    assert "allow_anonymous true" not in conf and "user root" not in conf
    run = locked_broker.conf.read_text()
    assert run == conf or run == conf + "user root\n"
    for f in ("mosquitto.conf", "acl", "passwd", "credentials/console.password"):
        assert stat.S_IMODE((d / f).stat().st_mode) == 0o600, f
    for sub in ("", "credentials", "data"):
        assert stat.S_IMODE((d / sub).stat().st_mode) == 0o700, sub
    passwd = (d / "passwd").read_text()
    for name in ("gateway", "monitor", "console", "console2"):
        pw = locked_broker.password(name)
        assert len(pw) >= 24 and pw not in passwd          # hashed, not the plain text
        assert f"{name}:$7$" in passwd
    # no notes or warnings about the configuration from this Mosquitto
    log = locked_broker.log()
    assert "recommended" not in log and "deprecated" not in log.lower(), log


@pytest.mark.parametrize("protocol", [5, 4])
def test_anonymous_and_wrong_password_are_refused(locked_broker, clients, protocol):
    anon = clients(MqttSettings.from_url(locked_broker.url, client_id="anon", protocol=protocol),
                   expect_connect=False)
    assert anon.connack.is_failure and "authori" in str(anon.connack).lower()
    wrong = clients(MqttSettings.from_url(locked_broker.url, client_id="wrong", username="console",
                                          password="not-the-password", protocol=protocol),
                    expect_connect=False)
    assert wrong.connack.is_failure
    unknown = clients(MqttSettings.from_url(locked_broker.url, client_id="who", username="mallory",
                                            password=locked_broker.password("console"), protocol=protocol),
                      expect_connect=False)
    assert unknown.connack.is_failure
    ok = clients(locked_broker.settings_for("console", protocol=protocol))
    assert not ok.connack.is_failure


ALL_KINDS = ("em/v1/fix/TAG-1", "em/v1/event/TAG-1", "em/v1/heartbeat/GW-1", "em/v1/alert/A-1",
             "em/v1/state/decider", "em/v1/state/position/TAG-1", "em/v1/ack/A-1", "em/v1/zone/Z-1",
             "owntracks/u/tag", "em/v2/anything")


def _witness(locked_broker, clients):
    """A monitor subscribed to everything it may read, and a console likewise."""
    mon = clients(locked_broker.settings_for("monitor"))
    assert mon.subscribe("#") == ["Granted QoS 1"]
    con = clients(locked_broker.settings_for("console2"))
    con.subscribe("#")
    return mon, con


def _marker(client, topic="em/v1/fix/MARK"):
    """A message through the broker after the others: once it arrives, anything published
    earlier on the same connection has been routed (MQTT keeps one client's order)."""
    client.puback(client.publish(topic))


def attempt(clients, settings, topic: str, retain: bool = False) -> tuple[str, bool]:
    """Publish one QoS 1 message on a connection of its own: (the PUBACK's verdict, whether
    the broker then closed the connection). Mosquitto 2.0 closes it after a denied publish."""
    c = clients(settings)
    verdict = c.puback(c.publish(topic, b'{"v":1,"kind":"fix"}', retain=retain))
    dropped = c.disconnected.wait(3 if verdict != "Success" or settings.protocol == 4 else 0.3)
    return verdict, dropped


def _check_refused(results: dict, protocol: int):
    for topic, (verdict, dropped) in results.items():
        # MQTT 5 says why; 3.1.1 has no reason codes. Either way the connection is closed.
        assert verdict == ("Not authorized" if protocol == 5 else "Success"), (topic, verdict)
        assert dropped, f"{topic}: the broker kept the connection after a denied publish"


@pytest.mark.parametrize("protocol", [5, 4])
def test_a_console_can_publish_nothing(locked_broker, clients, protocol):
    mon, con = _witness(locked_broker, clients)
    results = {t: attempt(clients, locked_broker.settings_for("console", protocol=protocol), t, retain=True)
               for t in ALL_KINDS}
    _check_refused(results, protocol)
    gw = clients(locked_broker.settings_for("gateway"))
    _marker(gw)
    wait_until(lambda: "em/v1/fix/MARK" in mon.topics(), 10, "the marker at the monitor")
    assert mon.topics() == ["em/v1/fix/MARK"] and con.topics() == []
    # and nothing was kept as retained either: a fresh reader sees none
    late = clients(locked_broker.settings_for("monitor"))
    late.subscribe("#")
    _marker(gw, "em/v1/fix/MARK2")
    wait_until(lambda: "em/v1/fix/MARK2" in late.topics(), 10, "the second marker")
    assert late.topics() == ["em/v1/fix/MARK2"]


@pytest.mark.parametrize("protocol", [5, 4])
def test_a_gateway_publishes_only_feed_topics(locked_broker, clients, protocol):
    mon, con = _witness(locked_broker, clients)
    feed = {"em/v1/fix/TAG-1", "em/v1/event/TAG-1", "em/v1/heartbeat/GW-1", "owntracks/u/tag"}
    gw = clients(locked_broker.settings_for("gateway", protocol=protocol))
    for t in sorted(feed):                  # all on one connection: it stays up
        assert gw.puback(gw.publish(t)) == "Success"
    assert not gw.disconnected.is_set()
    _check_refused({t: attempt(clients, locked_broker.settings_for("gateway", protocol=protocol), t)
                    for t in ALL_KINDS if t not in feed}, protocol)
    _marker(gw)
    wait_until(lambda: "em/v1/fix/MARK" in mon.topics(), 10, "the marker at the monitor")
    assert sorted(mon.topics()) == sorted([*feed, "em/v1/fix/MARK"])
    assert con.topics() == []               # a console reads no feed


def test_the_monitor_publishes_alerts_and_state_that_consoles_read(locked_broker, clients):
    mon = clients(locked_broker.settings_for("monitor"))
    acks = [mon.puback(mon.publish(t, retain=True)) for t in
            ("em/v1/alert/A-1", "em/v1/state/decider", "em/v1/state/position/TAG-1")]
    assert acks == ["Success"] * 3 and not mon.disconnected.is_set()
    _check_refused({t: attempt(clients, locked_broker.settings_for("monitor"), t)       # no forged feed
                    for t in ("em/v1/fix/TAG-1", "em/v1/ack/A-1", "em/v1/zone/Z-1")}, 5)
    con = clients(locked_broker.settings_for("console"))
    con.subscribe("em/v1/alert/#", "em/v1/state/#")
    wait_until(lambda: len(con.messages) >= 3, 10, "the retained alert and state at the console")
    assert sorted(con.topics()) == ["em/v1/alert/A-1", "em/v1/state/decider", "em/v1/state/position/TAG-1"]
    assert all(r for _, _, r in con.messages)


def test_the_monitors_last_will_reaches_the_consoles(locked_broker, clients):
    con = clients(locked_broker.settings_for("console"))
    con.subscribe("em/v1/state/#")
    s = locked_broker.settings_for("monitor")
    c = make_client(s, clean=True)
    c.will_set("em/v1/state/decider", b'{"state":"lost","monitor":"m1"}', qos=1, retain=True)
    up = threading.Event()
    c.on_connect = lambda cl, u, f, rc, p: up.set() if not rc.is_failure else None
    connect_async(c, s, clean=True)
    try:
        assert up.wait(10)
        c._sock.close() if c._sock else None       # dies without DISCONNECT: the will is sent
    finally:
        c.loop_stop()
    got = wait_until(lambda: [p for t, p, _ in con.messages if t == "em/v1/state/decider"], 20, "the will")
    assert json.loads(got[0])["state"] == "lost"


def test_a_gateway_or_console_reads_no_alert_even_when_subscribed(locked_broker, clients):
    mon = clients(locked_broker.settings_for("monitor"))
    mon.subscribe("em/v1/fix/#")
    mon.puback(mon.publish("em/v1/alert/A-9", retain=True))
    gw = clients(locked_broker.settings_for("gateway"))
    # Mosquitto 2.0 grants the SUBSCRIBE; it then delivers nothing the identity may not read
    gw.subscribe("em/v1/alert/#", "em/v1/#", "#")
    con = clients(locked_broker.settings_for("console"))
    con.subscribe("em/v1/#")
    mon.puback(mon.publish("em/v1/alert/A-10"))
    wait_until(lambda: {"em/v1/alert/A-9", "em/v1/alert/A-10"} <= set(con.topics()), 10,
               "the alerts at the console (it may read them)")
    _marker(gw)                      # routed after the alerts: the gateway has had its chance
    wait_until(lambda: "em/v1/fix/MARK" in mon.topics(), 10, "the marker at the monitor")
    assert gw.topics() == []
    assert "em/v1/fix/MARK" not in con.topics()


@pytest.mark.parametrize("protocol", [5, 4])
def test_an_oversize_message_goes_nowhere(locked_broker, clients, protocol):
    mon = clients(locked_broker.settings_for("monitor"))
    mon.subscribe("em/v1/fix/#")
    gw = clients(locked_broker.settings_for("gateway", protocol=protocol))
    ok = gw.publish("em/v1/fix/FITS", b"x" * 65536)         # the monitor's limit: still delivered
    assert gw.puback(ok) == "Success"
    wait_until(lambda: "em/v1/fix/FITS" in mon.topics(), 10, "the 64 KiB message")
    gw.publish("em/v1/fix/BIG", b"x" * (70 * 1024))
    assert gw.disconnected.wait(10), "the broker did not disconnect the sender of an oversize packet"
    gw.close()
    other = clients(locked_broker.settings_for("gateway"))
    _marker(other)
    wait_until(lambda: "em/v1/fix/MARK" in mon.topics(), 10, "the marker")
    assert "em/v1/fix/BIG" not in mon.topics()


def test_tls_client_certificates_name_the_identity(locked_tls_broker, clients, certificates):
    b = locked_tls_broker
    mon = clients(b.settings_for("monitor", tls=True))
    mon.subscribe("em/v1/#")
    gw = clients(b.settings_for("gateway", tls=True))
    assert gw.puback(gw.publish("em/v1/fix/TLS-1")) == "Success"
    assert attempt(clients, b.settings_for("console", tls=True), "em/v1/fix/TLS-EVIL") == (
        "Not authorized", True)                                                 # CN console: a console
    wait_until(lambda: "em/v1/fix/TLS-1" in mon.topics(), 10, "the gateway's fix over TLS")
    # a certificate whose CN is no identity connects but may do nothing
    crt, key = certificates.client_for("workstation-x")
    stranger = MqttSettings.from_url(b.tls_url, client_id="stranger", ca_file=str(certificates.ca),
                                     cert_file=str(crt), key_file=str(key))
    assert attempt(clients, stranger, "em/v1/fix/TLS-X") == ("Not authorized", True)
    _marker(gw)
    wait_until(lambda: "em/v1/fix/MARK" in mon.topics(), 10, "the marker")
    assert "em/v1/fix/TLS-X" not in mon.topics() and "em/v1/fix/TLS-EVIL" not in mon.topics()


def test_tls_listener_refuses_a_client_without_certificate(locked_tls_broker, certificates):
    s = MqttSettings.from_url(locked_tls_broker.tls_url, client_id="no-cert", ca_file=str(certificates.ca),
                              username="monitor", password=locked_tls_broker.password("monitor"))
    c = make_client(s, clean=True)
    try:
        with pytest.raises(Exception):
            c.connect("127.0.0.1", locked_tls_broker.tls_port)
            for _ in range(50):                  # the refusal arrives with the first read
                if c.loop(0.1) != mqtt.MQTT_ERR_SUCCESS:
                    raise ConnectionError("refused")
    finally:
        c.disconnect()
        c.socket() and c.socket().close()


def run_cli(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "monitorapp", "broker-config", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=60)


def test_password_from_file_and_force(tmp_path):
    pw = tmp_path / "pw.txt"
    pw.write_text("# chosen passwords\ngw1:first-gw-pass\nmon:mon:with:colons\nws1:ws one pass\n")
    out = tmp_path / "centre"
    args = ["--out", out, "--gateway", "gw1", "--monitor", "mon", "--console", "ws1", "--password-from", pw]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert (out / "credentials" / "mon.password").read_text() == "mon:with:colons\n"
    assert (out / "credentials" / "ws1.password").read_text() == "ws one pass\n"
    assert "first-gw-pass" not in (out / "passwd").read_text()
    before = (out / "passwd").read_text()
    r = run_cli(*args)
    assert r.returncode == 2 and "--force" in r.stderr and len(r.stderr.splitlines()) == 1
    assert (out / "passwd").read_text() == before
    r = run_cli(*args, "--force")
    assert r.returncode == 0, r.stderr
    assert (out / "passwd").read_text() != before           # new salts: rewritten


def test_a_written_password_signs_in(tmp_path):
    """The credentials file broker-config wrote is what the hashed file accepts (a broker
    started from a fresh directory, no fixture in between)."""
    b = LockedBroker(tmp_path / "b").start()
    try:
        s = MqttSettings.from_args(b.url, client_id="from-file", username="console",
                                   password_file=str(b.password_file("console")))
        c = Client(s)
        c.close()
    finally:
        b.stop()


@pytest.mark.parametrize("args, words", [
    ([], "the identities"),
    (["--gateway", "a b"], "a name is"),
    (["--gateway", "x", "--console", "x"], "given twice"),
    (["--gateway", "x", "--listen", "nowhere"], "ADDRESS:PORT"),
    (["--gateway", "x", "--listen", "127.0.0.1:70000"], "ADDRESS:PORT"),
    (["--gateway", "x", "--tls-ca", "/nonexistent"], "all of --tls-ca"),
    (["--gateway", "x", "--tls-ca", "/nonexistent", "--tls-cert", "/n", "--tls-key", "/n"], "no such file"),
    (["--gateway", "x", "--listen", "off"], "no listener"),
    (["--gateway", "x", "--feed-topic", "em/v1/alert/#"], "outside em/"),
    (["--gateway", "x", "--feed-topic", "a/#/b"], "topic filter"),
    (["--gateway", "x", "--password-from", "/nonexistent"], "--password-from"),
    (["--gateway", "x", "--bogus"], "unrecognized"),
    (["--gateway", "x", "--owner", "no-such-user-here"], "no such user"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    r = run_cli("--out", tmp_path / "c", *args)
    assert r.returncode == 2, r
    assert len(r.stderr.strip().splitlines()) == 1 and words in r.stderr, r.stderr
    assert r.stderr.startswith("monitorapp broker-config: ")
    assert not (tmp_path / "c" / "mosquitto.conf").exists()


def test_password_from_must_cover_every_identity(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("gw:one\n")
    r = run_cli("--out", tmp_path / "c", "--gateway", "gw", "--console", "ws", "--password-from", pw)
    assert r.returncode == 2 and "no password for ws" in r.stderr
    pw.write_text("gw:one\nws:two\nother:three\n")
    r = run_cli("--out", tmp_path / "c", "--gateway", "gw", "--console", "ws", "--password-from", pw)
    assert r.returncode == 2 and "names no identity given: other" in r.stderr


def test_acl_lines_by_role():
    text = brokerconfig.acl_text([("g", "gateway"), ("m", "monitor"), ("c", "console")], ("owntracks/+/+",))
    blocks: dict[str, list[str]] = {}
    user = None
    for line in text.splitlines():
        if line.startswith("user "):
            user = blocks.setdefault(line.split()[1], [])
        elif line.startswith("topic "):
            assert user is not None, "an ACL line before any user line applies to anonymous clients"
            user.append(line)
    assert blocks["g"] == ["topic write em/v1/fix/#", "topic write em/v1/event/#",
                           "topic write em/v1/heartbeat/#", "topic write owntracks/+/+"]
    assert "topic readwrite em/v1/alert/#" in blocks["m"] and "topic read owntracks/+/+" in blocks["m"]
    assert blocks["c"] == ["topic read em/v1/alert/#", "topic read em/v1/state/#"]
    assert "readwrite" not in "".join(blocks["g"] + blocks["c"])
    assert not any(ln.split()[-1] in ("#", "em/v1/#") for b in blocks.values() for ln in b)


# --- the console's broker options (main.py --broker-*, settings feed/broker_*) ----------------

def test_console_broker_options_and_settings_build_the_monitors_settings(tmp_path, certificates):
    from ui.app import Options
    from ui.settings import Settings, broker_settings
    pw = tmp_path / "ws.pw"
    pw.write_text("console-secret\n")
    crt, key = certificates.client_for("console")
    st = Settings(tmp_path / "settings.ini")
    st.set("feed/broker_url", "mqtts://centre.example:8883")
    st.set("feed/broker_ca", str(certificates.ca))
    st.set("feed/broker_cert", str(crt))
    st.set("feed/broker_key", str(key))
    st.set("feed/broker_username", "console")
    st.set("feed/broker_password_file", str(pw))
    s = broker_settings(Options(), st, client_id="ws-1")
    want = MqttSettings.from_args("mqtts://centre.example:8883", client_id="ws-1", ca=str(certificates.ca),
                                  cert=str(crt), key=str(key), username="console", password_file=str(pw))
    assert s == want and s.password == "console-secret" and s.tls
    # an option wins over its setting; the URL's own user is kept when nothing names one
    other = tmp_path / "other.pw"
    other.write_text("other-secret\n")
    s = broker_settings(Options(broker="mqtt://console2@127.0.0.1:1", broker_password_file=str(other)),
                        Settings(tmp_path / "s2.ini"), client_id="ws-2")
    assert (s.username, s.password, s.tls, s.port) == ("console2", "other-secret", False, 1)
    with pytest.raises(ValueError, match="CA file .* does not exist"):
        broker_settings(Options(broker="mqtts://h:8883", broker_ca=str(tmp_path / "missing.crt")),
                        Settings(tmp_path / "s3.ini"))


def test_console_bad_broker_option_is_one_line_before_sign_in(tmp_path, example_caseload_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--broker", "mqtt://127.0.0.1:1",
                        "--caseload", str(example_caseload_path), "--db", str(tmp_path / "live.sqlite"),
                        "--broker-ca", str(tmp_path / "nope.crt")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"main.py: CA file {tmp_path / 'nope.crt'} given for a plain mqtt:// URL; use mqtts://"], r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "main.py"), "--demo", "--broker-username", "console"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "--broker-*" in r.stderr


def signed_in(db, tmp_path, user: str) -> list[str]:
    """An operator account in the live store, and the options that sign in with it."""
    from localdb.accounts import Accounts
    from localdb.store import Store
    store = Store(db)
    acc = Accounts(store)
    admin = acc.create_first_admin("admin", "night shift password 2026 admin")
    acc.create(admin, user, "operator", "night shift password 2026")
    store.close()
    pw = tmp_path / f"{user}.pw"
    pw.write_text("night shift password 2026\n")
    return ["--user", user, "--password-file", str(pw)]


@pytest.mark.parametrize("how", ["password", "certificate"])
def test_single_workstation_console_on_the_locked_broker(tmp_path, locked_tls_broker, how):
    """A live console with its own engine (SQLite store) signs in to the locked broker with the
    new options (as the monitor identity: it is the one that decides), and a gateway's tamper
    reaches its queue."""
    from monitorapp.feed.timeutil import fmt_time
    from monitorapp.sim.publish import publish_feed
    from tests.fixtures_ui import ui_caseload_doc
    from tests.test_ui_e2e import run_console
    b = locked_tls_broker
    caseload = tmp_path / "caseload.json"
    caseload.write_text(json.dumps(ui_caseload_doc(3)))
    db = tmp_path / "live.sqlite"
    if how == "password":
        broker = ["--broker", b.url, "--broker-username", "monitor",
                  "--broker-password-file", str(b.password_file("monitor"))]
    else:
        crt, key = b.cert_for("monitor")
        broker = ["--broker", b.tls_url, "--broker-ca", str(b.certs.ca), "--broker-cert", str(crt),
                  "--broker-key", str(key)]
    published = {}

    def publish_when_ready(events):
        if published or not any(e["event"] == "map_ready" for e in events):
            return
        now = time.time()
        lines = [(now, json.dumps({"v": 1, "kind": "fix", "device": "TAG-2", "seq": 1, "t": fmt_time(now - 1),
                                   "lat": 51.55, "lon": -0.07, "acc": 9.0, "src": "gps", "batt": 0.7}).encode()),
                 (now, json.dumps({"v": 1, "kind": "event", "device": "TAG-2", "seq": 2, "t": fmt_time(now - 0.9),
                                   "type": "strap_tamper"}).encode())]
        published.update(publish_feed(lines, b.settings_for("gateway"), speed=0, drain_timeout=20))

    rc, events, err = run_console([*broker, "--caseload", str(caseload), "--db", str(db),
                                   *signed_in(db, tmp_path, "live.op"), "--quit-after", "60"],
                                  ["map_ready", "alert_raised"], timeout=60, on_event=publish_when_ready)
    names = [e["event"] for e in events]
    assert published.get("published") == 2, (published, names, err[-1500:])
    raised = [e for e in events if e["event"] == "alert_raised"]
    assert any(e["type"] == "strap_tamper" and e["offender"] == "OFF-2" for e in raised), (names, err[-1500:])


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to the mosquitto user needs root")
def test_owner_lets_mosquitto_started_as_root_read_its_files():
    """Started as root, Mosquitto becomes the user ``mosquitto`` before it opens the password
    file: ``--owner mosquitto`` makes the written configuration start as it is, unchanged,
    while the credentials stay the caller's."""
    import pwd
    from tests.fixtures_mqtt import mosquitto_binary
    import pathlib
    import tempfile
    mosq = pwd.getpwnam("mosquitto")
    # pytest's own tmp directories are root's alone (0700): the user mosquitto could not reach
    # any file under them, so this one is a directory of its own in the system's temp dir
    tmp = tempfile.TemporaryDirectory(prefix="em-owner-")
    request_cleanup = tmp.cleanup
    base = pathlib.Path(tmp.name)
    base.chmod(0o755)
    out = base / "centre"
    port = free_port()
    r = run_cli("--out", out, "--listen", f"127.0.0.1:{port}", "--gateway", "gw", "--console", "ws",
                "--owner", "mosquitto")
    assert r.returncode == 0, r.stderr
    assert (out / "passwd").stat().st_uid == mosq.pw_uid and (out / "credentials").stat().st_uid == 0
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(out / "mosquitto.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up():
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_until(up, 15, "mosquitto as user mosquitto")
        pw = (out / "credentials" / "ws.password").read_text().strip()
        c = Client(MqttSettings.from_url(f"mqtt://127.0.0.1:{port}", client_id="ws-own", username="ws",
                                         password=pw))
        c.close()
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
        request_cleanup()
