"""The centre's SMTP relay: settings, and one message sent in two phases (spec v2 §9).

``RelaySettings`` are the monitor's ``--smtp-*`` options: host, port, STARTTLS (required when
asked for: a relay that does not offer it is refused, never used in clear), implicit TLS
(``--smtp-tls``, port 465), a CA file to check the relay's certificate, a user and a password
file (AUTH only over TLS, unless ``--smtp-allow-plain-auth`` says the relay is on a trusted
loopback or private link).

``SmtpRelay.send(msg, sender, recipient, before_end)`` runs the SMTP transaction itself (MAIL,
RCPT, DATA, the message) with the standard library's ``smtplib`` and calls ``before_end()``
just before it sends the final ``.``: the outbox records ``committing`` there, durably. A relay
takes responsibility for a message only when it receives that ``.``; if the sender dies before
it, the relay discards the transaction, so the notification can be sent again safely. Errors
are :class:`RelayError` with ``permanent`` (a 5xx refusal of the recipient or the message) or
transient (no connection, a 4xx, a timeout), and ``after_end`` when the connection failed after
the ``.`` was sent (the relay may have it: not sent again).
"""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

_DOT = re.compile(rb"(?m)^\.")


class RelayError(Exception):
    def __init__(self, text: str, permanent: bool = False, after_end: bool = False):
        super().__init__(text)
        self.permanent, self.after_end = permanent, after_end


@dataclass
class RelaySettings:
    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    tls: bool = False
    ca: str | None = None
    user: str | None = None
    password: str | None = None
    allow_plain_auth: bool = False
    timeout_s: float = 20.0
    helo: str | None = None

    @classmethod
    def from_args(cls, args) -> "RelaySettings":
        """From the monitor's options; a password file that cannot be read is a ValueError."""
        import os
        password = os.environ.get("MONITORAPP_SMTP_PASSWORD")
        if getattr(args, "smtp_password_file", None):
            try:
                password = Path(args.smtp_password_file).read_text(encoding="utf-8").splitlines()[0]
            except (OSError, IndexError) as e:
                raise ValueError(f"{args.smtp_password_file}: cannot read the SMTP password: "
                                 f"{getattr(e, 'strerror', None) or 'empty file'}") from None
        s = cls(args.smtp_host, args.smtp_port or (465 if args.smtp_tls else 25), bool(args.smtp_starttls),
                bool(args.smtp_tls), args.smtp_ca, args.smtp_user, password,
                bool(args.smtp_allow_plain_auth))
        if s.starttls and s.tls:
            raise ValueError("--smtp-starttls and --smtp-tls exclude each other")
        if s.user and password is None:
            raise ValueError("--smtp-user needs --smtp-password-file (or MONITORAPP_SMTP_PASSWORD)")
        if s.user and not (s.starttls or s.tls or s.allow_plain_auth):
            raise ValueError("SMTP authentication only over TLS: add --smtp-starttls or --smtp-tls "
                             "(or --smtp-allow-plain-auth for a trusted local relay)")
        return s

    def describe(self) -> str:
        return (f"{self.host}:{self.port}" + (" starttls" if self.starttls else "")
                + (" tls" if self.tls else "") + (f" user {self.user}" if self.user else ""))


def _context(ca: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class SmtpRelay:
    """One connection to the relay, opened on demand and kept while messages flow."""

    def __init__(self, settings: RelaySettings):
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        try:
            if s.tls:
                smtp = smtplib.SMTP_SSL(s.host, s.port, local_hostname=s.helo, timeout=s.timeout_s,
                                        context=_context(s.ca))
            else:
                smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.helo, timeout=s.timeout_s)
            smtp.ehlo()
            if s.starttls:
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise RelayError(f"the relay {s.host}:{s.port} does not offer STARTTLS")
                smtp.starttls(context=_context(s.ca))
                smtp.ehlo()
            if s.user:
                smtp.login(s.user, s.password or "")
        except smtplib.SMTPAuthenticationError as e:
            raise RelayError(f"the relay refused the login of {s.user}: {e.smtp_code} "
                             f"{_text(e.smtp_error)}") from None
        except (OSError, smtplib.SMTPException, ssl.SSLError) as e:
            raise RelayError(f"cannot reach the relay {s.host}:{s.port}: {e.__class__.__name__}: {e}") from None
        return smtp

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                try:
                    self.smtp.close()
                except OSError:
                    pass
            self.smtp = None

    def drop(self) -> None:
        """Close the connection without QUIT (a transaction that must not complete)."""
        if self.smtp is not None:
            try:
                self.smtp.close()
            except OSError:
                pass
            self.smtp = None

    def send(self, data: bytes, sender: str, recipient: str, before_end) -> str:
        """One SMTP transaction; returns the relay's reply to the final ``.``."""
        if self.smtp is None:
            self.smtp = self._open()
        else:
            try:
                self.smtp.rset()
            except (OSError, smtplib.SMTPException):
                self.drop()
                self.smtp = self._open()
        smtp = self.smtp
        try:
            code, resp = smtp.mail(sender)
            if code != 250:
                raise RelayError(f"the relay refused the sender: {code} {_text(resp)}", code >= 500)
            code, resp = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise RelayError(f"the relay refused {recipient}: {code} {_text(resp)}", code >= 500)
            smtp.putcmd("data")
            code, resp = smtp.getreply()
            if code != 354:
                raise RelayError(f"the relay refused the message: {code} {_text(resp)}", code >= 500)
            body = _DOT.sub(b"..", data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
            if not body.endswith(b"\r\n"):
                body += b"\r\n"
            smtp.send(body)
        except RelayError:
            self.drop()
            raise
        except (OSError, smtplib.SMTPException) as e:
            self.drop()
            raise RelayError(f"the relay connection failed: {e.__class__.__name__}: {e}") from None
        try:
            before_end()
        except BaseException:
            self.drop()                       # the relay never gets the end: nothing delivered
            raise
        try:
            smtp.send(b".\r\n")
            code, resp = smtp.getreply()
        except (OSError, smtplib.SMTPException, socket.timeout) as e:
            self.drop()
            raise RelayError(f"the relay connection failed after the message was sent: "
                             f"{e.__class__.__name__}: {e}", after_end=True) from None
        if code != 250:
            raise RelayError(f"the relay refused the message: {code} {_text(resp)}", code >= 500)
        return f"{code} {_text(resp)}"


def _text(resp) -> str:
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    return " ".join(str(resp).split())[:300]
