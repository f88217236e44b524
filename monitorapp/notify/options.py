"""The monitor's notification options, declared here and added to ``monitorapp monitor``.

``add_arguments(parser)`` declares ``--smtp-host``, ``--smtp-port``, ``--smtp-starttls``,
``--smtp-tls``, ``--smtp-ca``, ``--smtp-user``, ``--smtp-password-file`` (or
``MONITORAPP_SMTP_PASSWORD``), ``--smtp-allow-plain-auth`` and ``--notify-policy``;
``check(args)`` reads the policy and the relay settings before the monitor starts (a bad file
is one line and exit 2); ``start_notifier(...)`` makes, attaches and starts the ``Notifier``
(None when no ``--smtp-host`` is given: notifications are off, and the start says so).
"""
from __future__ import annotations

import logging

log = logging.getLogger("monitorapp.service.monitor")


def add_arguments(p) -> None:
    g = p.add_argument_group("notifications (spec v2 §9)")
    g.add_argument("--smtp-host", help="the centre's SMTP relay; without it no notification is sent")
    g.add_argument("--smtp-port", type=int, default=None, help="relay port (default 25, 465 with --smtp-tls)")
    g.add_argument("--smtp-starttls", action="store_true", help="require STARTTLS on the relay")
    g.add_argument("--smtp-tls", action="store_true", help="implicit TLS (SMTPS) to the relay")
    g.add_argument("--smtp-ca", help="CA file that checks the relay's certificate")
    g.add_argument("--smtp-user", help="relay login (AUTH), over TLS")
    g.add_argument("--smtp-password-file", help="file whose first line is the relay password "
                   "(or set MONITORAPP_SMTP_PASSWORD)")
    g.add_argument("--smtp-allow-plain-auth", action="store_true",
                   help="allow AUTH without TLS (a relay on a trusted loopback or private link)")
    g.add_argument("--notify-policy", help="the centre's notification policy (JSON), laid over the "
                   "built-in one: whom to notify of which alert, contacts, working day, retries")


def check(args):
    """(policy, relay settings or None); raises ValueError (PolicyError is one) with one line."""
    from monitorapp.notify.policy import load_policy
    from monitorapp.notify.relay import RelaySettings
    policy = load_policy(getattr(args, "notify_policy", None))
    relay = None
    if getattr(args, "smtp_host", None):
        relay = RelaySettings.from_args(args)
    return policy, relay


def start_notifier(args, store, caseload, engine, proc):
    """The decider's notifier, attached to ``engine`` and started; None without a relay."""
    policy, relay = getattr(args, "notify", None) or check(args)
    if relay is None:
        log.info("notifications off", extra={"fields": {"reason": "no --smtp-host"}})
        return None
    from monitorapp.notify.service import Notifier
    n = Notifier(store, caseload, policy, relay, fault=proc.fault, ok=proc.ok)
    n.attach(engine)
    n.start()
    log.info("notifications on", extra={"fields": {"relay": relay.describe(), "policy": policy.source}})
    return n
