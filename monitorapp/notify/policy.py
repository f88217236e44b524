"""The notification policy (spec v2 §9): whom to tell of which alert, at which step, how soon.

Declared in one place: :data:`DEFAULT_POLICY` below is the built-in policy, and a centre's own
file (``monitorapp monitor --notify-policy FILE``, JSON; ``resources/notify-policy.example.json``
is one) is laid over it. The centre file's ``rules`` replace the defaults per alert type and
step (a step set to ``null`` notifies nobody); ``contacts``, ``sender``, ``working_day``,
``retry`` and ``personal_data`` replace the defaults key by key. Anything malformed stops the
start with :class:`PolicyError` naming the file and every problem (a policy that silently
notified nobody would be the worst failure of all).

Steps: ``raised`` (the alert is raised), ``reactivated`` (the same cause came back after it had
cleared) and ``closed`` (an operator closed it; the message says the outcome: the action code
and notes). Recipients: ``responsible_officer`` (the offender's, from the caseload, spec §3),
``team`` (the officer's team mailbox, from ``contacts.teams``), ``police`` (the police contact
of the offender's borough, ``contacts.police``) and ``duty_manager`` (the centre's,
``contacts.duty_manager``). ``when`` is ``now`` or ``next_working_day``: batched into one
summary per recipient at ``working_day.start`` of the next working day (for low priorities).
``personal_data`` is ``name`` (the offender's name and id in the message) or ``id_only``.
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitorapp.engine.alerts import ALERT_TYPES

STEPS = ("raised", "reactivated", "closed")
RECIPIENTS = ("responsible_officer", "team", "police", "duty_manager")
WHEN = ("now", "next_working_day")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PERSONAL_DATA = ("name", "id_only")

_BOTH = ["responsible_officer", "police"]
_OFFICER = ["responsible_officer"]
_DUTY = ["duty_manager"]


def _rule(to, when="now"):
    return {"to": list(to), "when": when}


DEFAULT_POLICY: dict = {
    "version": 1,
    "sender": {"address": "monitoring-centre@localhost", "name": "Monitoring centre"},
    "personal_data": "name",
    "working_day": {"tz": "Europe/London", "days": ["mon", "tue", "wed", "thu", "fri"],
                    "start": "08:00"},
    # back-off from first_s doubling to max_s; a system_fault once the relay has refused every
    # attempt for fault_after_s; a notification not sent after give_up_after_s is failed
    "retry": {"first_s": 5.0, "max_s": 300.0, "fault_after_s": 300.0, "give_up_after_s": 86400.0},
    "rules": {
        "strap_tamper": {s: _rule(_BOTH) for s in STEPS},
        "exclusion_entered": {s: _rule(_BOTH) for s in STEPS},
        "curfew_absent": {s: _rule(_OFFICER) for s in STEPS},
        "signal_lost": {s: _rule(_OFFICER) for s in STEPS},
        "appointment_missed": {"raised": _rule(_OFFICER),
                               "closed": _rule(_OFFICER, "next_working_day")},
        "battery_low": {"raised": _rule(_OFFICER, "next_working_day")},
        "feed_lost": {"raised": _rule(_DUTY), "closed": _rule(_DUTY)},
        "system_fault": {s: _rule(_DUTY) for s in STEPS},
    },
    "contacts": {"duty_manager": None, "police": {}, "teams": {}},
}

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


class PolicyError(ValueError):
    """A policy file that cannot be used: the text names the file and every problem."""


def valid_address(value) -> bool:
    """A plain e-mail address (no display name, no CR/LF, no angle brackets): what may go into
    an envelope and an ``Address`` header."""
    return isinstance(value, str) and len(value) <= 254 and _EMAIL.match(value) is not None


@dataclass(frozen=True)
class Contact:
    """Someone to notify: a name (for the greeting and the To header) and an address."""
    name: str
    address: str


def parse_contact(obj, where: str, problems: list[str]) -> Contact | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        problems.append(f"{where}: a contact is an object with name and email")
        return None
    email, name = obj.get("email"), obj.get("name", "")
    if not valid_address(email):
        problems.append(f"{where}: email must be a plain address (name@domain), not {str(email)[:80]!r}")
        return None
    if not isinstance(name, str):
        problems.append(f"{where}: name must be text")
        return None
    return Contact(" ".join(name.split())[:120], email)


@dataclass(frozen=True)
class Rule:
    to: tuple[str, ...]
    when: str


class NotifyPolicy:
    """The parsed policy: ``rule(type, step)``, the contacts, the working day and the retry."""

    def __init__(self, doc: dict, source: str = "the built-in policy"):
        problems: list[str] = []
        self.source = source
        self.doc = doc
        self.rules: dict[tuple[str, str], Rule] = {}
        for type_, steps in (doc.get("rules") or {}).items():
            if type_ not in ALERT_TYPES:
                problems.append(f"rules: unknown alert type {type_!r} (one of {', '.join(ALERT_TYPES)})")
                continue
            if not isinstance(steps, dict):
                problems.append(f"rules.{type_}: an object of steps ({', '.join(STEPS)})")
                continue
            for step, r in steps.items():
                where = f"rules.{type_}.{step}"
                if step not in STEPS:
                    problems.append(f"{where}: unknown step (one of {', '.join(STEPS)})")
                elif r is None:
                    continue
                elif not isinstance(r, dict) or not isinstance(r.get("to"), list):
                    problems.append(f"{where}: {{\"to\": [recipients], \"when\": ...}} or null")
                elif bad := [x for x in r["to"] if x not in RECIPIENTS]:
                    problems.append(f"{where}: unknown recipient {bad[0]!r} (one of {', '.join(RECIPIENTS)})")
                elif r.get("when", "now") not in WHEN:
                    problems.append(f"{where}: when is one of {', '.join(WHEN)}")
                else:
                    self.rules[(type_, step)] = Rule(tuple(dict.fromkeys(r["to"])), r.get("when", "now"))
        sender = doc.get("sender") or {}
        self.sender = parse_contact({"email": sender.get("address"), "name": sender.get("name", "")},
                                    "sender", problems)
        self.personal_data = doc.get("personal_data", "name")
        if self.personal_data not in PERSONAL_DATA:
            problems.append(f"personal_data: one of {', '.join(PERSONAL_DATA)}")
        contacts = doc.get("contacts") or {}
        self.duty_manager = parse_contact(contacts.get("duty_manager"), "contacts.duty_manager", problems)
        self.police: dict[str, Contact] = {}
        self.teams: dict[str, Contact] = {}
        for key, into in (("police", self.police), ("teams", self.teams)):
            table = contacts.get(key) or {}
            if not isinstance(table, dict):
                problems.append(f"contacts.{key}: an object of name -> contact")
                continue
            for name, c in table.items():
                got = parse_contact(c, f"contacts.{key}.{name}", problems)
                if got is not None:
                    into[name] = got
        wd = doc.get("working_day") or {}
        try:
            self.tz = ZoneInfo(str(wd.get("tz", "Europe/London")))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"working_day.tz: unknown time zone {wd.get('tz')!r}")
            self.tz = ZoneInfo("UTC")
        days = wd.get("days", list(DAYS[:5]))
        if not isinstance(days, list) or not days or any(d not in DAYS for d in days):
            problems.append(f"working_day.days: a non-empty list of {', '.join(DAYS)}")
            days = list(DAYS[:5])
        self.working_days = {DAYS.index(d) for d in days}
        m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", str(wd.get("start", "08:00")))
        if m is None:
            problems.append("working_day.start: HH:MM")
        self.day_start = dt.time(int(m.group(1)), int(m.group(2))) if m else dt.time(8, 0)
        retry = doc.get("retry") or {}
        self.retry = {}
        for k in ("first_s", "max_s", "fault_after_s", "give_up_after_s"):
            v = retry.get(k, DEFAULT_POLICY["retry"][k])
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 30 * 86400:
                problems.append(f"retry.{k}: a number of seconds > 0")
                v = DEFAULT_POLICY["retry"][k]
            self.retry[k] = float(v)
        if problems:
            raise PolicyError(f"{source}: " + "; ".join(problems))

    def rule(self, type_: str, step: str) -> Rule | None:
        return self.rules.get((type_, step))

    def next_working_start(self, t: float) -> float:
        """The start of the first working day strictly after the day of ``t`` (local time),
        or later today if ``t`` is a working day before its start: when a summary goes out."""
        local = dt.datetime.fromtimestamp(t, self.tz)
        day = local.date()
        if local.weekday() in self.working_days and local.time() < self.day_start:
            cand = day
        else:
            cand = day + dt.timedelta(days=1)
            while cand.weekday() not in self.working_days:
                cand += dt.timedelta(days=1)
        return dt.datetime.combine(cand, self.day_start, self.tz).timestamp()


def merge(base: dict, centre: dict) -> dict:
    """The centre's document laid over the built-in one (see the module docstring)."""
    out = copy.deepcopy(base)
    for key, value in centre.items():
        if key == "rules" and isinstance(value, dict):
            for type_, steps in value.items():
                if isinstance(steps, dict) and isinstance(out["rules"].get(type_), dict):
                    out["rules"][type_].update(copy.deepcopy(steps))
                else:
                    out["rules"][type_] = copy.deepcopy(steps)
        elif key in ("contacts", "working_day", "retry", "sender") and isinstance(value, dict):
            out[key] = {**(out.get(key) or {}), **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_policy(path: str | Path | None = None) -> NotifyPolicy:
    """The built-in policy, with the centre's file at ``path`` (if given) laid over it."""
    if path is None:
        return NotifyPolicy(copy.deepcopy(DEFAULT_POLICY))
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise PolicyError(f"{path}: cannot read the notification policy: {e.strerror}") from None
    except ValueError as e:
        raise PolicyError(f"{path}: the notification policy is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("version", 1) != 1:
        raise PolicyError(f"{path}: a notification policy is a JSON object with \"version\": 1")
    return NotifyPolicy(merge(DEFAULT_POLICY, doc), str(path))
