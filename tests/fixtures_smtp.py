"""A real SMTP server of the test's own (``aiosmtpd``) on a free loopback port: the centre's
relay in the notification tests (issue 20).

``smtp_relay`` is a :class:`Relay`: STARTTLS with a certificate made at test time by the
``openssl`` command (``Certificates`` of ``tests.fixtures_mqtt``: ``relay.ca`` checks it),
AUTH required over TLS (``relay.user``, ``relay.password_file``). It records every message it
accepted (``relay.messages``: envelope sender, recipients, the parsed message), exactly when
it receives the final ``.``, before it replies, as a relay that has taken the message on does.
``start()``/``stop()`` bring it up and down on the same port (the relay down for a while).
``hold_data`` makes it wait after recording a message before it replies (``received`` is set:
a test can kill the sender between "the relay has it" and "the sender knows");
``hold_rcpt`` makes it wait at RCPT (the sender killed in the middle of a transaction).
"""
from __future__ import annotations

import email
import email.policy
import ssl
import threading

import pytest

from tests.fixtures_mqtt import Certificates, free_port, wait_until


class _Handler:
    def __init__(self, relay: "Relay"):
        self.relay = relay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        r = self.relay
        if r.hold_rcpt.is_set():
            r.at_rcpt.set()
            import asyncio
            await asyncio.get_running_loop().run_in_executor(None, r.release.wait, 60)
            if r.stopping:                  # going down: the transaction ends before its message
                return "421 4.3.2 shutting down"
        if address in r.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        r = self.relay
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        with r.lock:
            r.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                               "message": msg, "raw": envelope.original_content or envelope.content,
                               "tls": session.ssl is not None,
                               "auth": getattr(session, "authenticated", False)})
        r.received.set()
        if r.hold_data.is_set():
            import asyncio
            await asyncio.get_running_loop().run_in_executor(None, r.release.wait, 60)
        return "250 2.0.0 queued"


class Relay:
    def __init__(self, certs: Certificates, user: str = "decider", password: str = "relay-secret",
                 tmp=None):
        self.certs, self.user, self.password = certs, user, password
        self.port = free_port()
        self.ca = str(certs.ca)
        self.password_file = tmp / "smtp-password"
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        self.messages: list[dict] = []
        self.lock = threading.Lock()
        self.hold_data, self.hold_rcpt = threading.Event(), threading.Event()
        self.received, self.at_rcpt, self.release = threading.Event(), threading.Event(), threading.Event()
        self.refuse: set[str] = set()
        self.stopping = False
        self.controller = None

    def _auth(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult, LoginPassword
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == self.user
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok)

    def start(self) -> "Relay":
        from aiosmtpd.controller import Controller
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.certs.server), str(self.certs.server_key))
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     server_hostname="localhost", tls_context=ctx,
                                     require_starttls=True, authenticator=self._auth,
                                     auth_required=True, auth_require_tls=True,
                                     ready_timeout=10)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.stopping = True
            self.release.set()
            self.controller.stop()
            self.controller = None
            self.release.clear()
            self.stopping = False

    def args(self) -> list[str]:
        """The monitor's options for this relay."""
        return ["--smtp-host", "127.0.0.1", "--smtp-port", str(self.port), "--smtp-starttls",
                "--smtp-ca", self.ca, "--smtp-user", self.user,
                "--smtp-password-file", str(self.password_file)]

    def settings(self):
        from monitorapp.notify.relay import RelaySettings
        return RelaySettings("127.0.0.1", self.port, starttls=True, ca=self.ca, user=self.user,
                             password=self.password, timeout_s=10)

    def to(self, address: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if address in m["to"]]

    def wait_for(self, n: int, timeout: float = 30) -> list[dict]:
        wait_until(lambda: len(self.messages) >= n, timeout, f"{n} message(s) at the relay")
        with self.lock:
            return list(self.messages)


@pytest.fixture
def smtp_relay(tmp_path):
    """A started :class:`Relay` (STARTTLS, AUTH), stopped at the end of the test."""
    r = Relay(Certificates(tmp_path / "smtp-certs"), tmp=tmp_path).start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def smtp_relay_down(tmp_path):
    """A :class:`Relay` not yet started (its port is free): the test starts it."""
    r = Relay(Certificates(tmp_path / "smtp-certs"), tmp=tmp_path)
    try:
        yield r
    finally:
        r.stop()
