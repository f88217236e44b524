"""Broker settings for the live feed and the shared workstation state (spec §2, §7).

One place says what can be set, its type, default and meaning: the broker URL
(``mqtt://host:port`` or ``mqtts://host:port``, optionally with ``user@``), the TLS files, the
user name and password, the protocol version, the persistent-session client id and its expiry.
``MqttSettings.from_args`` builds them from command-line values; every problem is reported as a
``MqttConfigError`` with a sentence that names the setting.

Secrets never reach a log: ``redact_url`` hides a password written into a URL, and
``MqttSettings.describe()`` (what the programs log) holds no password.
"""
from __future__ import annotations

import os
import re
import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
DEFAULT_SESSION_EXPIRY_S = 7 * 24 * 3600   # how long the broker keeps a workstation's session
DEFAULT_KEEPALIVE_S = 30
PASSWORD_ENV = "MONITORAPP_MQTT_PASSWORD"
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


class MqttConfigError(ValueError):
    """A broker setting that cannot work, with a sentence naming it."""


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (user names are kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}:***@{netloc}").geturl()


def default_client_id(role: str = "monitor") -> str:
    """A client id stable per workstation and role: the broker keeps its session under it."""
    host = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname() or "host")[:40]
    return f"em-{role}-{host}"


@dataclass
class MqttSettings:
    """Everything needed to reach the broker. ``password`` is never logged."""
    host: str
    port: int
    tls: bool = False
    ca_file: str | None = None          # CA bundle that signs the broker's certificate
    cert_file: str | None = None        # client certificate (mutual TLS), optional
    key_file: str | None = None         # its private key
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = field(default_factory=default_client_id)
    protocol: int = 5                   # 5 (preferred) or 4 (MQTT 3.1.1)
    session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S
    keepalive_s: int = DEFAULT_KEEPALIVE_S
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30

    @classmethod
    def from_url(cls, url: str, **kw) -> "MqttSettings":
        """Parse ``mqtt[s]://[user[:password]@]host[:port]``; keyword settings override."""
        if not isinstance(url, str) or "://" not in url:
            raise MqttConfigError(f"broker URL {redact_url(str(url))!r} must look like mqtt://host:port "
                                  "or mqtts://host:port")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise MqttConfigError(f"broker URL {redact_url(url)!r} is not valid: {e}") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise MqttConfigError(f"broker URL scheme {scheme!r} is not mqtt or mqtts")
        if not parts.hostname:
            raise MqttConfigError(f"broker URL {redact_url(url)!r} has no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise MqttConfigError(f"broker URL {redact_url(url)!r} must not have a path or query")
        settings = {"host": parts.hostname, "port": port or DEFAULT_PORTS[scheme], "tls": scheme == "mqtts"}
        if parts.username:
            settings["username"] = unquote(parts.username)
        if parts.password is not None:
            settings["password"] = unquote(parts.password)
        settings.update({k: v for k, v in kw.items() if v is not None})
        s = cls(**settings)
        s.validate()
        return s

    @classmethod
    def from_args(cls, url: str, *, client_id: str | None = None, ca: str | None = None,
                  cert: str | None = None, key: str | None = None, username: str | None = None,
                  password_file: str | None = None, protocol: int | None = None,
                  role: str = "monitor") -> "MqttSettings":
        """Settings from command-line values; the password comes from a file or the
        ``MONITORAPP_MQTT_PASSWORD`` environment variable, never from the command line."""
        password = None
        if password_file:
            try:
                with open(password_file, encoding="utf-8") as f:
                    password = f.readline().rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as e:
                why = getattr(e, "strerror", None) or "not UTF-8 text"
                raise MqttConfigError(f"password file {password_file}: {why}") from None
        elif os.environ.get(PASSWORD_ENV):
            password = os.environ[PASSWORD_ENV]
        return cls.from_url(url, client_id=client_id or default_client_id(role), ca_file=ca,
                            cert_file=cert, key_file=key, username=username, password=password,
                            protocol=protocol)

    def validate(self) -> None:
        if not _CLIENT_ID_RE.fullmatch(self.client_id or ""):
            raise MqttConfigError(f"client id {self.client_id!r} must be 1-64 of [A-Za-z0-9_.-]")
        if self.protocol not in (4, 5):
            raise MqttConfigError(f"MQTT protocol {self.protocol!r} must be 5 or 4 (3.1.1)")
        if not 0 < self.port < 65536:
            raise MqttConfigError(f"broker port {self.port} is out of range")
        if self.password is not None and not self.username:
            raise MqttConfigError("a broker password was given without a user name")
        if (self.cert_file is None) != (self.key_file is None):
            raise MqttConfigError("a client certificate needs both --cert and --key")
        for name, path in (("CA file", self.ca_file), ("client certificate", self.cert_file),
                           ("client key", self.key_file)):
            if path is not None:
                if not self.tls:
                    raise MqttConfigError(f"{name} {path} given for a plain mqtt:// URL; use mqtts://")
                if not os.path.isfile(path):
                    raise MqttConfigError(f"{name} {path} does not exist")
        if self.tls:
            self.ssl_context()       # a file that is not a certificate: one line now, not at connect

    def url(self) -> str:
        """The URL without secrets (what logs show)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def describe(self) -> dict:
        """For the log: no password, only whether one is set."""
        return {"broker": self.url(), "client_id": self.client_id, "tls": self.tls,
                "ca": self.ca_file, "client_cert": self.cert_file, "password_set": self.password is not None,
                "protocol": "5" if self.protocol == 5 else "3.1.1"}

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``mqtts://``: verifies the broker against the CA file (or the
        system's CAs) and presents the client certificate when one is set."""
        if not self.tls:
            return None
        try:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
            if self.cert_file:
                ctx.load_cert_chain(self.cert_file, self.key_file)
        except (ssl.SSLError, OSError) as e:
            raise MqttConfigError(f"TLS files could not be loaded: {e}") from None
        return ctx
