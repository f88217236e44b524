"""Fixtures for the MQTT tests: a real Mosquitto of the test's own on a free port with the
locked-down configuration ``monitorapp broker-config`` writes (``locked_broker``; with a TLS
listener, a CA and certificates made at test time with the ``openssl`` command:
``locked_tls_broker``), a plain anonymous one (``broker``), a publisher, the
``monitorapp monitor`` program as a subprocess read through its JSON log lines, and a guard that
fails a test leaving a paho thread or a broker connection behind."""
from __future__ import annotations

import json
import os
import pathlib
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def mosquitto_binary() -> str:
    path = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if path is None:
        pytest.fail("mosquitto is not installed: run 'make broker' (Debian package mosquitto)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout: float, what: str, interval: float = 0.02):
    """Poll ``cond`` until it returns a true value; fail the test naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def established_connections(port: int) -> int:
    """TCP connections to 127.0.0.1:port in state ESTABLISHED (from /proc/net/tcp)."""
    n = 0
    hexport = f"{port:04X}"
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = pathlib.Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[1].endswith(":" + hexport) and f[3] == "01":
                n += 1
    return n


class Certificates:
    """A CA and a server certificate for 127.0.0.1/localhost; ``client_for(cn)`` makes client
    certificates (the locked broker takes the common name as the identity)."""

    def __init__(self, d: pathlib.Path):
        self.dir = d
        d.mkdir(parents=True, exist_ok=True)
        self.ca, self.ca_key = d / "ca.crt", d / "ca.key"
        self.server, self.server_key = d / "server.crt", d / "server.key"
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._run(["req", "-x509", *ec, "-keyout", self.ca_key, "-out", self.ca, "-days", "2",
                   "-subj", "/CN=monitorapp test CA",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        self._leaf("server", "localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "extendedKeyUsage=serverAuth\n")

    def _leaf(self, name: str, cn: str, ext: str):
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        csr, extfile = self.dir / f"{name}.csr", self.dir / f"{name}.ext"
        extfile.write_text(ext)
        self._run(["req", *ec, "-keyout", self.dir / f"{name}.key", "-out", csr, "-subj", f"/CN={cn}"])
        self._run(["x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
                   "-out", self.dir / f"{name}.crt", "-days", "2", "-extfile", extfile])

    def client_for(self, cn: str) -> tuple[pathlib.Path, pathlib.Path]:
        """A client certificate and key whose common name is ``cn`` (made once, then reused)."""
        crt, key = self.dir / f"client-{cn}.crt", self.dir / f"client-{cn}.key"
        if not crt.exists():
            self._leaf(f"client-{cn}", cn, "extendedKeyUsage=clientAuth\n")
        return crt, key

    @staticmethod
    def _run(args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


class Broker:
    """A plain, anonymous Mosquitto process of our own, persistence in its own directory. Live
    tests use ``LockedBroker`` (the configuration ``monitorapp broker-config`` writes); this
    one is for what the locked configuration cannot express."""

    def __init__(self, workdir: pathlib.Path):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.certs = None
        self.proc: subprocess.Popen | None = None
        lines = [f"listener {self.port} 127.0.0.1", "persistence true",
                 f"persistence_location {self.dir}/", f"log_dest file {self.dir / 'mosquitto.log'}",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "max_queued_messages 0", "persistent_client_expiration 1d"]
        if os.geteuid() == 0:
            lines.append("user root")
        lines.append("allow_anonymous true")
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "Broker":
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def accepting():
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.proc.stderr.read().decode(errors='replace')}"
                                     f"{self.log()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_until(accepting, timeout, f"mosquitto to accept on port {self.port}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Mosquitto saves its persistence file and exits."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text(errors="replace") if p.exists() else ""


LOCKED_IDENTITIES = {"gateway": "gateway", "monitor": "monitor", "console": "console", "console2": "console"}
# what the tests' gateways also publish besides em/v1/{fix,event,heartbeat}/#: the Traccar and
# OwnTracks topics the monitor can be told to read
LOCKED_FEED_TOPICS = ("traccar/#", "owntracks/#")


class LockedBroker(Broker):
    """Mosquitto with exactly the configuration ``monitorapp broker-config`` writes (issue 15):
    no anonymous access, hashed passwords, the ACL by role, the packet size limit; identities
    ``gateway``, ``monitor``, ``console`` and ``console2``. With ``certs``, also its TLS
    listener (client certificates whose CN is the identity). As root, the one line ``user
    root`` is added to a copy (``mosquitto-run.conf``), as ``Broker`` does; nothing else."""

    def __init__(self, workdir: pathlib.Path, certs: Certificates | None = None,
                 feed_topics: tuple[str, ...] = LOCKED_FEED_TOPICS):
        from monitorapp.cli import main as monitorapp_main
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if certs else None
        self.certs = certs
        self.proc = None
        self.config_dir = self.dir / "config"
        args = ["broker-config", "--out", str(self.config_dir), "--listen", f"127.0.0.1:{self.port}",
                "--log-file", str(self.dir / "mosquitto.log")]
        for name, role in LOCKED_IDENTITIES.items():
            args += [f"--{role}", name]
        for t in feed_topics:
            args += ["--feed-topic", t]
        if certs:
            args += ["--tls-listen", f"127.0.0.1:{self.tls_port}", "--tls-ca", str(certs.ca),
                     "--tls-cert", str(certs.server), "--tls-key", str(certs.server_key)]
        rc = monitorapp_main(args)
        assert rc == 0, f"monitorapp broker-config failed ({rc})"
        self.written = self.config_dir / "mosquitto.conf"
        self.conf = self.written
        if os.geteuid() == 0:
            self.conf = self.dir / "mosquitto-run.conf"
            self.conf.write_text(self.written.read_text() + "user root\n")

    @property
    def url(self) -> str:
        """The plain listener, without credentials (an anonymous client: refused)."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        assert self.tls_port, "this LockedBroker has no TLS listener (give certs)"
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def password_file(self, identity: str) -> pathlib.Path:
        """``credentials/IDENTITY.password`` as broker-config wrote it (for --password-file)."""
        assert identity in LOCKED_IDENTITIES, identity
        return self.config_dir / "credentials" / f"{identity}.password"

    def password(self, identity: str) -> str:
        return self.password_file(identity).read_text().strip()

    def url_for(self, identity: str) -> str:
        """``mqtt://identity:password@127.0.0.1:port``."""
        from urllib.parse import quote
        return f"mqtt://{identity}:{quote(self.password(identity), safe='')}@127.0.0.1:{self.port}"

    def cert_for(self, identity: str) -> tuple[pathlib.Path, pathlib.Path]:
        """A client certificate (CN = identity) and key for the TLS listener."""
        assert self.certs and identity in LOCKED_IDENTITIES, identity
        return self.certs.client_for(identity)

    def settings_for(self, identity: str, client_id: str | None = None, tls: bool = False,
                     protocol: int | None = None):
        """MqttSettings for ``identity``: user name and password on the plain listener, or
        (``tls=True``) the CA and the identity's client certificate on the TLS listener."""
        import uuid
        from monitorapp.feed.mqttconfig import MqttSettings
        cid = client_id or f"t-{identity}-{uuid.uuid4().hex[:8]}"
        if tls:
            crt, key = self.cert_for(identity)
            return MqttSettings.from_url(self.tls_url, client_id=cid, ca_file=str(self.certs.ca),
                                         cert_file=str(crt), key_file=str(key), protocol=protocol)
        return MqttSettings.from_url(self.url, client_id=cid, username=identity,
                                     password=self.password(identity), protocol=protocol)


def _paho_threads() -> set:
    return {t for t in threading.enumerate() if t.name.startswith("paho-mqtt")}


@pytest.fixture
def no_leftovers():
    """Fails the test if it leaves a paho network thread running."""
    before = _paho_threads()
    yield
    try:
        wait_until(lambda: not (_paho_threads() - before), 5, "paho threads to stop")
    except AssertionError:
        pytest.fail(f"test left MQTT threads running: {[t.name for t in _paho_threads() - before]}")


def _broker_fixture(tmp_path, certs=None, locked=False):
    where = tmp_path / f"broker-{free_port()}"
    b = (LockedBroker(where, certs) if locked else Broker(where)).start()
    ports = [b.port] + ([b.tls_port] if locked and b.tls_port else [])
    try:
        yield b
        if b.proc is not None:
            try:
                wait_until(lambda: sum(established_connections(p) for p in ports) == 0, 5,
                           "clients to disconnect from the broker")
            except AssertionError:
                pytest.fail(f"test left {sum(established_connections(p) for p in ports)} connection(s) "
                            "open to the broker")
    finally:
        b.stop()


@pytest.fixture
def locked_broker(tmp_path, no_leftovers):
    """``LockedBroker``: the configuration ``monitorapp broker-config`` writes, plain listener."""
    yield from _broker_fixture(tmp_path, locked=True)


@pytest.fixture
def locked_tls_broker(tmp_path, certificates, no_leftovers):
    """``LockedBroker`` with its TLS listener as well (``tls_url``, ``settings_for(id, tls=True)``)."""
    yield from _broker_fixture(tmp_path, certs=certificates, locked=True)


@pytest.fixture
def broker(tmp_path, no_leftovers):
    """A plain ``mqtt://`` Mosquitto of this test's own."""
    yield from _broker_fixture(tmp_path)


@pytest.fixture
def certificates(tmp_path) -> Certificates:
    return Certificates(tmp_path / "certs")


class Publisher:
    """A plain paho publisher (QoS 1) for tests: ``publish`` waits until the broker has it."""

    def __init__(self, url, client_id: str = "test-publisher"):
        """``url``: a broker URL (credentials may be in it) or MqttSettings."""
        import paho.mqtt.client as mqtt
        from monitorapp.feed.mqttconfig import MqttSettings
        from monitorapp.feed.mqttfeed import connect_async, make_client
        self.settings = url if isinstance(url, MqttSettings) else MqttSettings.from_url(url, client_id=client_id)
        self.client = make_client(self.settings, clean=True)
        self.client.max_inflight_messages_set(100)
        self._connected = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: self._connected.set()
        connect_async(self.client, self.settings, clean=True)
        if not self._connected.wait(10):
            self.close()
            raise AssertionError(f"publisher could not connect to {url}")
        self._mqtt = mqtt

    def publish(self, items, retain: bool = False, timeout: float = 30) -> None:
        infos = [self.client.publish(topic, payload, qos=1, retain=retain) for topic, payload in items]
        for info in infos:
            info.wait_for_publish(timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher_factory():
    made = []

    def make(url, client_id="test-publisher"):
        p = Publisher(url, client_id)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


class MonitorProcess:
    """``python -m monitorapp monitor ...`` as a subprocess; its stdout (stats lines) and stderr
    (JSON log lines) are read into queues so a test can wait on them."""

    def __init__(self, args: list[str], cwd: pathlib.Path):
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen([sys.executable, "-m", "monitorapp", "monitor", *args], cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.stats: list[dict] = []
        self.logs: list[dict] = []
        self.raw_err: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stdout, self.stats), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.logs), daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, stream, sink):
        for line in iter(stream.readline, b""):
            text = line.decode(errors="replace").strip()
            try:
                sink.append(json.loads(text))
            except ValueError:
                self.raw_err.append(text)

    def wait_log(self, event: str, timeout: float = 30, start: int = 0) -> dict:
        def found():
            if self.proc.poll() is not None and not any(r.get("event") == event for r in self.logs[start:]):
                raise AssertionError(f"monitor exited ({self.proc.returncode}) before {event!r}: "
                                     f"{self.logs[-5:]} {self.raw_err[-20:]}")
            return next((r for r in self.logs[start:] if r.get("event") == event), None)
        return wait_until(found, timeout, f"monitor log event {event!r}")

    def wait_stats(self, cond, timeout: float = 60) -> dict:
        def found():
            for s in reversed(self.stats):
                if cond(s):
                    return s
            if self.proc.poll() is not None:
                raise AssertionError(f"monitor exited ({self.proc.returncode}): {self.logs[-5:]} {self.raw_err[-20:]}")
            return None
        return wait_until(found, timeout, "a monitor stats line")

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self._join()
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._join()

    def _join(self):
        for t in self._threads:
            t.join(5)


@pytest.fixture
def monitor_factory(tmp_path):
    made = []

    def run(args):
        m = MonitorProcess([str(a) for a in args], tmp_path)
        made.append(m)
        return m
    yield run
    for m in made:
        if m.proc.poll() is None:
            m.kill()


def scenario_lines(t0: float, minutes: int = 30, with_noise: bool = False) -> list[tuple[float, bytes]]:
    """A feed for the example caseload with real breaches: TAG-01002 walks into its exclusion
    zone and out again, TAG-01001 reports a strap tamper and its restoration, TAG-01003's
    battery runs low; every tag reports at its interval and the gateway beats every 10 s.
    ``t0`` is the first ``rx``; ``t`` is 0.5 s before ``rx``."""
    from shapely.geometry import shape
    from monitorapp.feed.timeutil import fmt_time
    caseload = json.loads((ROOT / "examples" / "caseload.json").read_text())
    zones = {z["id"]: z for z in caseload["zones"]["features"]}
    excl = shape(zones["Z-EXCL-0002"]["geometry"]).centroid
    home2 = zones["Z-HOME-0002"]["geometry"]["coordinates"]
    home1 = zones["Z-HOME-0001"]["geometry"]["coordinates"]
    home3 = zones["Z-HOME-0003"]["geometry"]["coordinates"]
    out: list[tuple[float, dict]] = []
    seq = {"TAG-01001": 0, "TAG-01002": 0, "TAG-01003": 0}

    def msg(rx, obj):
        if "device" in obj:
            seq[obj["device"]] += 1
            obj["seq"] = seq[obj["device"]]
        obj.update(v=1, t=fmt_time(rx - 0.5), rx=fmt_time(rx))
        out.append((rx, obj))

    end = t0 + minutes * 60
    for i in range(int((end - t0) // 10)):
        msg(t0 + i * 10 + 0.2, {"kind": "heartbeat", "gateway": "GW-1"})
    for i in range(int((end - t0) // 60)):
        rx = t0 + 5 + i * 60
        inside = 8 <= i < 16
        lon, lat = (excl.x, excl.y) if inside else (home2[0] + 0.01, home2[1])
        msg(rx, {"kind": "fix", "device": "TAG-01002", "lat": lat, "lon": lon, "acc": 8, "src": "gps", "batt": 0.8})
        msg(rx + 20, {"kind": "fix", "device": "TAG-01003", "lat": home3[1] + 0.01, "lon": home3[0], "acc": 10,
                      "src": "gps", "batt": max(0.05, 0.5 - i * 0.03)})
    for i in range(int((end - t0) // 30)):
        msg(t0 + 3 + i * 30, {"kind": "fix", "device": "TAG-01001", "lat": home1[1] + 0.01, "lon": home1[0],
                              "acc": 12, "src": "gps", "batt": 0.7})
    msg(t0 + 400.4, {"kind": "event", "device": "TAG-01001", "type": "strap_tamper"})
    msg(t0 + 700.4, {"kind": "event", "device": "TAG-01001", "type": "strap_restored"})
    out.sort(key=lambda p: p[0])
    return [(rx, json.dumps(o, separators=(",", ":")).encode()) for rx, o in out]


def replay_alerts(tmp_path: pathlib.Path, lines, caseload: pathlib.Path) -> list[dict]:
    """What ``monitorapp replay`` gives for these lines."""
    feed = tmp_path / f"replay-{len(lines)}.ndjson"
    feed.write_bytes(b"".join(line + b"\n" for _, line in lines))
    out = tmp_path / f"replay-{len(lines)}-alerts.ndjson"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "monitorapp", "replay", "--caseload", str(caseload),
                        "--feed", str(feed), "--out", str(out)], capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    return [json.loads(x) for x in out.read_text().splitlines()]


def read_alert_lines(path: pathlib.Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]
