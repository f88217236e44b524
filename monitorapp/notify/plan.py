"""Which notifications an alert's step makes: recipients resolved, ids, due times, facts.

``plan(alert, step, at, ...)`` returns one :class:`Notification` per recipient that the policy
names for the alert's type and step. Its id is deterministic,
``N-`` + SHA-256(alert id, step, recipient) (the recipient is the address; a recipient without
a known address is ``role:police:Camden`` and the notification is recorded as ``failed`` with
"no contact", so a gap in the contacts is seen on the alert rather than lost). The same alert
raised again after a restart plans the same ids, which the outbox keeps once.

A re-activation is its own step each time: ``reactivated#2`` is the second one. ``facts`` is
what the message needs and no more than the policy's ``personal_data`` allows, copied when
the step happened (the message is built from them, with the alert's current state and
handling read at sending time).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from monitorapp.feed.timeutil import fmt_time
from monitorapp.notify.policy import Contact, NotifyPolicy, parse_contact


def notification_id(alert_id: str, step: str, recipient: str) -> str:
    key = "|".join((alert_id, step, recipient.lower()))
    return "N-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass
class Notification:
    notification_id: str
    alert_id: str
    step: str
    role: str                  # responsible_officer | team | police | duty_manager
    name: str | None
    address: str | None
    alert_type: str
    priority: str
    delivery: str              # now | next_working_day
    event_at: float            # when the step happened (raise, re-activation, close)
    due_at: float
    facts: dict = field(default_factory=dict)
    status: str = "pending"
    error: str | None = None


def officer_of(offender) -> Contact | None:
    """The offender's responsible officer from the caseload (spec §3), or None."""
    raw = getattr(offender, "raw", None) or {}
    problems: list[str] = []
    c = parse_contact(raw.get("responsible_officer"), "responsible_officer", problems)
    return c


def resolve(role: str, offender, policy: NotifyPolicy) -> tuple[Contact | None, str]:
    """(contact or None, a description of whom the role means for this alert)."""
    if role == "duty_manager":
        return policy.duty_manager, "role:duty_manager"
    if offender is None:
        return None, f"role:{role}"
    if role == "responsible_officer":
        return officer_of(offender), f"role:responsible_officer:{offender.id}"
    if role == "team":
        team = ((getattr(offender, "raw", None) or {}).get("responsible_officer") or {}).get("team")
        return (policy.teams.get(team) if isinstance(team, str) else None), f"role:team:{team}"
    if role == "police":
        return policy.police.get(offender.borough), f"role:police:{offender.borough}"
    return None, f"role:{role}"


def step_name(change: str, alert) -> str | None:
    """The policy step of an engine change (None: the change notifies nobody)."""
    if change == "raised":
        return "raised"
    if change == "reactivated":
        return f"reactivated#{alert.reactivations}"
    return None


def facts_of(alert, offender, zone_name: str | None, policy: NotifyPolicy, tz: str) -> dict:
    """What a message about this alert may say (``personal_data``: ``id_only`` leaves out the
    offender's name)."""
    d = {"alert_id": alert.alert_id, "type": alert.type, "priority": alert.priority,
         "offender": alert.offender, "device": alert.device, "requirement": alert.requirement,
         "zone": alert.zone, "zone_name": zone_name, "start": fmt_time(alert.start),
         "raised_at": fmt_time(alert.raised_at), "late": bool(alert.late), "tz": tz}
    if offender is not None:
        d["borough"] = offender.borough
        if policy.personal_data == "name":
            d["offender_name"] = offender.name
    pos = last_position(alert.evidence or {})
    if pos is not None:
        d["lat"], d["lon"] = pos
    if alert.type == "system_fault":
        d["fault"] = str((alert.evidence or {}).get("error", ""))[:500]
        d["component"] = alert.requirement
    return d


def last_position(evidence: dict) -> tuple[float, float] | None:
    """The latest position in an alert's evidence (its fixes, or the fix that decided it)."""
    cands = []
    fixes = evidence.get("fixes")
    if isinstance(fixes, list) and fixes:
        cands.append(fixes[-1])
    cands += [evidence.get(k) for k in ("fix", "closest_fix", "last_fix")]
    for c in cands:
        if isinstance(c, dict) and isinstance(c.get("lat"), (int, float)) and isinstance(c.get("lon"), (int, float)):
            return float(c["lat"]), float(c["lon"])
    return None


def plan(alert, step: str, at: float, offender, zone_name: str | None, policy: NotifyPolicy,
         tz: str = "Europe/London", extra: dict | None = None) -> list[Notification]:
    """The notifications of ``alert`` at ``step`` (which happened at ``at``)."""
    rule = policy.rule(alert.type, step.split("#", 1)[0])
    if rule is None:
        return []
    facts = facts_of(alert, offender, zone_name, policy, tz)
    if extra:
        facts.update(extra)
    due = at if rule.when == "now" else policy.next_working_start(at)
    out: list[Notification] = []
    seen: set[str] = set()
    for role in rule.to:
        contact, who = resolve(role, offender, policy)
        recipient = contact.address if contact is not None else who
        if recipient.lower() in seen:          # the officer is also the team mailbox: once
            continue
        seen.add(recipient.lower())
        n = Notification(notification_id(alert.alert_id, step, recipient), alert.alert_id, step,
                         role, contact.name if contact else None,
                         contact.address if contact else None, alert.type, alert.priority,
                         rule.when, at, due, facts)
        if contact is None:
            n.status, n.error = "failed", f"no contact for {who[5:]} in the caseload or the policy"
        out.append(n)
    return out
