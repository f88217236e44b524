"""Operator handling of alerts (spec §4): acknowledge, close, shelve, unshelve.

Every step appends a record to the hash-chained acknowledgement log and updates the alert's
current handling state in the same transaction. The functions here run inside the store
writer's transaction (``StoreWriter.call``); a refused step raises :class:`HandlingError` and
is rolled back alone.

Handling states: ``unacknowledged`` → ``acknowledged`` (with an action code and a note) →
``closed``. ``shelved`` (with a reason and an expiry) hides an alert until the expiry or an
``unshelve``; it then returns to the state it had. A closed alert takes no further steps.

The rules of spec v2 §4/§8 are enforced here, in the store's own layer, so no caller (the
console, the monitor's handling topic, a script) can skip them; the PostgreSQL record enforces
the same rules in its server functions (``centraldb.schema``), with the same messages:

* the first acknowledgement wins; a second is refused with :class:`AlreadyAcknowledged`,
  which names who took it and when (from the acknowledgement log's first record for it);
* a critical or high alert is acknowledged only with a note saying what was done;
* an alert is closed only once acknowledged and once its condition has cleared;
* ``strap_tamper`` and ``exclusion_entered`` alerts are never shelved; a shelving lasts at
  most :data:`MAX_SHELVE_S` (8 hours).

**The alert's timeline** (issue 21): after the acknowledgement, each thing an operator does is a
``step`` record in the same chain: ``action_code`` is the protocol's step id (or ``other``, which
needs a note), ``reason`` the step's detail as canonical JSON (``{"outcome", "reference"}``, the
outcome one of ``STEP_OUTCOMES``), ``note`` the operator's note. A step is recorded only on an
acknowledged alert that is not closed, by the operator who took it or by a supervisor (another
operator is refused with who holds it); a completed step whose protocol asks for a reference
(the police incident number) needs one. Closing asks for every mandatory step of the alert's
protocol (the newest recorded in ``response_protocols``, by alert type and the offender's risk)
to be completed, or for a reason for skipping it: each skip is a ``skip`` record (its step id
in ``action_code``, the reason in ``note``) written with the ``close`` in one transaction.
"""
from __future__ import annotations

import json
import math
import sqlite3

from localdb import hashchain
from monitorapp.response.protocols import (COMPLETING, OTHER, STEP_OUTCOMES, canonical, checked,
                                           steps_for)

ACTION_CODES = ("contacted_subject", "contacted_probation", "police_informed",
                "false_alarm_gps", "device_fault", "other")
HANDLING_STATES = ("unacknowledged", "acknowledged", "shelved", "closed")
MAX_SHELVE_S = 8 * 3600                        # spec v2 §8: shelving at most 8 hours
NEVER_SHELVED = ("strap_tamper", "exclusion_entered")
NOTE_REQUIRED = ("critical", "high")


class HandlingError(ValueError):
    """An operator step that is not allowed (unknown alert, wrong state, missing field)."""


class AlreadyAcknowledged(HandlingError):
    """A second acknowledgement: another operator took the alert first (``by``, ``at``)."""

    def __init__(self, message: str, by: str | None, at: float | None):
        super().__init__(message)
        self.by, self.at = by, at


def _utc(at: float) -> str:
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _alert(conn, alert_id) -> tuple[str, str, str]:
    """(type, priority, state) of a stored alert, or HandlingError."""
    row = conn.execute("SELECT type, priority, state FROM alerts WHERE alert_id=?",
                       (alert_id,)).fetchone()
    if row is None:
        raise HandlingError(f"no such alert: {alert_id}")
    return row


def _require_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise HandlingError(f"{what} is required")
    return value.strip()


def current(conn: sqlite3.Connection, alert_id: str) -> dict:
    if conn.execute("SELECT 1 FROM alerts WHERE alert_id=?", (alert_id,)).fetchone() is None:
        raise HandlingError(f"no such alert: {alert_id}")
    row = conn.execute("SELECT handling, acknowledged, shelved_until FROM alert_handling"
                       " WHERE alert_id=?", (alert_id,)).fetchone()
    if row is None:
        return {"handling": "unacknowledged", "acknowledged": False, "shelved_until": None}
    return {"handling": row[0], "acknowledged": bool(row[1]), "shelved_until": row[2]}


def effective_handling(handling: str | None, acknowledged: bool, shelved_until: float | None,
                       now: float) -> str:
    """The handling state an operator sees: an expired shelving has ended by itself."""
    if handling is None:
        return "unacknowledged"
    if handling == "shelved" and shelved_until is not None and shelved_until <= now:
        return "acknowledged" if acknowledged else "unacknowledged"
    return handling


def _set(conn, alert_id, handling, operator, at, *, action_code=None, acknowledged=False,
         reason=None, until=None) -> None:
    conn.execute(
        "INSERT INTO alert_handling (alert_id, handling, operator, at, action_code, acknowledged,"
        " shelved_reason, shelved_until) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(alert_id) DO UPDATE"
        " SET handling=excluded.handling, operator=excluded.operator, at=excluded.at,"
        " action_code=coalesce(excluded.action_code, action_code),"
        " acknowledged=max(acknowledged, excluded.acknowledged),"
        " shelved_reason=excluded.shelved_reason, shelved_until=excluded.shelved_until",
        (alert_id, handling, operator, at, action_code, 1 if acknowledged else 0, reason, until))


def acknowledge(conn, alert_id: str, operator: str, action_code: str, note: str | None,
                at: float) -> dict:
    operator = _require_text(operator, "operator")
    if action_code not in ACTION_CODES:
        raise HandlingError(f"unknown action code {action_code!r}; one of {', '.join(ACTION_CODES)}")
    if note is not None and not isinstance(note, str):
        raise HandlingError("note must be text")
    if action_code == "other" and not (note or "").strip():
        raise HandlingError("action code 'other' needs a note saying what was done")
    _type, priority, _state = _alert(conn, alert_id)
    if priority in NOTE_REQUIRED and not (note or "").strip():
        raise HandlingError(f"a {priority} alert needs a note saying what was done")
    cur = current(conn, alert_id)
    state = effective_handling(**cur, now=at)
    if state == "closed":
        raise HandlingError(f"alert {alert_id} is closed")
    if cur["acknowledged"]:
        first = conn.execute("SELECT operator, at FROM ack_log WHERE alert_id=? AND"
                             " action='acknowledge' ORDER BY seq LIMIT 1", (alert_id,)).fetchone()
        by, when = first if first else (None, None)
        raise AlreadyAcknowledged(
            f"alert {alert_id} was already acknowledged by {by or 'someone'}"
            + (f" at {_utc(when)}" if when is not None else ""), by, when)
    row = hashchain.append(conn, "ack_log", {
        "alert_id": alert_id, "at": at, "operator": operator, "action": "acknowledge",
        "action_code": action_code, "note": note})
    _set(conn, alert_id, "acknowledged", operator, at, action_code=action_code, acknowledged=True)
    return row


def close(conn, alert_id: str, operator: str, note: str | None, at: float,
          skipped: dict | None = None) -> dict:
    """Close an alert; ``skipped``: {step id: reason} for mandatory steps not completed."""
    operator = _require_text(operator, "operator")
    _type, _priority, alert_state = _alert(conn, alert_id)
    state = effective_handling(**current(conn, alert_id), now=at)
    if state == "closed":
        raise HandlingError(f"alert {alert_id} is already closed")
    if state != "acknowledged":
        raise HandlingError(f"alert {alert_id} must be acknowledged before it is closed")
    if alert_state != "cleared":
        raise HandlingError(f"alert {alert_id} is still active: it can be closed once it has"
                            f" cleared")
    reasons = _skips(conn, alert_id, skipped)
    for step_id, reason in reasons:
        hashchain.append(conn, "ack_log", {
            "alert_id": alert_id, "at": at, "operator": operator, "action": "skip",
            "action_code": step_id, "note": reason})
    row = hashchain.append(conn, "ack_log", {
        "alert_id": alert_id, "at": at, "operator": operator, "action": "close", "note": note})
    _set(conn, alert_id, "closed", operator, at, acknowledged=True)
    return row


def shelve(conn, alert_id: str, operator: str, reason: str, until: float, at: float) -> dict:
    operator = _require_text(operator, "operator")
    reason = _require_text(reason, "a reason for shelving")
    if not isinstance(until, (int, float)) or not math.isfinite(until) or until <= at:
        raise HandlingError("a shelving needs an expiry time in the future")
    if until - at > MAX_SHELVE_S:
        raise HandlingError("an alert can be shelved for at most 8 hours")
    type_, _priority, _state = _alert(conn, alert_id)
    if type_ in NEVER_SHELVED:
        raise HandlingError(f"a {type_} alert cannot be shelved")
    cur = current(conn, alert_id)
    state = effective_handling(**cur, now=at)
    if state == "closed":
        raise HandlingError(f"alert {alert_id} is closed")
    row = hashchain.append(conn, "ack_log", {
        "alert_id": alert_id, "at": at, "operator": operator, "action": "shelve",
        "reason": reason, "until": float(until)})
    _set(conn, alert_id, "shelved", operator, at, acknowledged=cur["acknowledged"],
         reason=reason, until=float(until))
    return row


def unshelve(conn, alert_id: str, operator: str, at: float) -> dict:
    operator = _require_text(operator, "operator")
    cur = current(conn, alert_id)
    if effective_handling(**cur, now=at) != "shelved":
        raise HandlingError(f"alert {alert_id} is not shelved")
    row = hashchain.append(conn, "ack_log", {
        "alert_id": alert_id, "at": at, "operator": operator, "action": "unshelve"})
    back = "acknowledged" if cur["acknowledged"] else "unacknowledged"
    _set(conn, alert_id, back, operator, at, acknowledged=cur["acknowledged"])
    return row


# ---- the alert's timeline (issue 21) ------------------------------------------------------------

def protocols(conn) -> dict | None:
    """The newest recorded response protocols (normalised), or None when none is recorded."""
    row = conn.execute("SELECT doc FROM response_protocols ORDER BY version DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row else None


def protocol_steps(conn, alert_id: str) -> list[dict]:
    """The ordered steps of an alert's protocol (by its type and its offender's risk)."""
    row = conn.execute("SELECT a.type, o.risk FROM alerts a LEFT JOIN offenders o"
                       " ON o.offender_id = a.offender_id WHERE a.alert_id=?", (alert_id,)).fetchone()
    if row is None:
        raise HandlingError(f"no such alert: {alert_id}")
    return steps_for(protocols(conn), row[0], row[1])


def step_detail(outcome: str, reference: str | None) -> str:
    """The ``reason`` text of a step record (the server writes the same bytes)."""
    return json.dumps({"outcome": outcome, "reference": reference}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)


def _is_supervisor(conn, operator: str) -> bool:
    try:
        row = conn.execute("SELECT role FROM accounts WHERE username=?", (operator,)).fetchone()
    except sqlite3.OperationalError:
        return False
    return bool(row) and row[0] == "supervisor"


def record_step(conn, alert_id: str, operator: str, step_id: str, outcome: str,
                reference: str | None, note: str | None, at: float) -> dict:
    operator = _require_text(operator, "operator")
    if outcome not in STEP_OUTCOMES:
        raise HandlingError(f"unknown outcome {outcome!r}; one of {', '.join(STEP_OUTCOMES)}")
    for value, what in ((reference, "reference"), (note, "note")):
        if value is not None and not isinstance(value, str):
            raise HandlingError(f"{what} must be text")
        if isinstance(value, str) and len(value) > 2000:
            raise HandlingError(f"{what} is longer than 2000 characters")
    reference = (reference or "").strip() or None
    note = (note or "").strip() or None
    steps = {s["id"]: s for s in protocol_steps(conn, alert_id)}
    if step_id != OTHER and step_id not in steps:
        raise HandlingError(f"{step_id!r} is not a step of this alert's protocol"
                            + (f" (one of {', '.join(steps)}, or other)" if steps else " (use other)"))
    if step_id == OTHER and note is None:
        raise HandlingError("step 'other' needs a note saying what was done")
    if steps.get(step_id, {}).get("reference") and outcome in COMPLETING and reference is None:
        raise HandlingError(f"step {step_id} needs the reference number it was given")
    cur = current(conn, alert_id)
    state = effective_handling(**cur, now=at)
    if state == "closed":
        raise HandlingError(f"alert {alert_id} is closed")
    if not cur["acknowledged"]:
        raise HandlingError(f"alert {alert_id} must be acknowledged before steps are recorded")
    owner = conn.execute("SELECT operator FROM ack_log WHERE alert_id=? AND action='acknowledge'"
                         " ORDER BY seq LIMIT 1", (alert_id,)).fetchone()
    owner = owner[0] if owner else None
    if owner is not None and owner != operator and not _is_supervisor(conn, operator):
        raise AlreadyAcknowledged(f"alert {alert_id} is handled by {owner}: only they or a"
                                  f" supervisor record its steps", owner, None)
    return hashchain.append(conn, "ack_log", {
        "alert_id": alert_id, "at": at, "operator": operator, "action": "step",
        "action_code": step_id, "reason": step_detail(outcome, reference), "note": note})


def _skips(conn, alert_id: str, skipped) -> list[tuple[str, str]]:
    """The (step id, reason) skip records a close needs, or HandlingError naming what is missing."""
    if skipped is not None and not isinstance(skipped, dict):
        raise HandlingError("skipped steps must be given as {step id: reason}")
    skipped = dict(skipped or {})
    mandatory = [s["id"] for s in protocol_steps(conn, alert_id) if s["mandatory"]]
    done = set()
    for code, reason in conn.execute("SELECT action_code, reason FROM ack_log WHERE alert_id=?"
                                     " AND action='step'", (alert_id,)):
        try:
            if json.loads(reason or "{}").get("outcome") in COMPLETING:
                done.add(code)
        except ValueError:
            pass
    out, missing = [], []
    for sid in mandatory:
        if sid in done:
            continue
        reason = skipped.pop(sid, None)
        if not isinstance(reason, str) or not reason.strip():
            missing.append(sid)
        else:
            out.append((sid, reason.strip()[:2000]))
    if missing:
        raise HandlingError(f"alert {alert_id} cannot be closed: mandatory step"
                            f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} not done;"
                            f" record {'them' if len(missing) > 1 else 'it'} or give a reason for"
                            f" skipping")
    extra = sorted(set(skipped) - set(mandatory))
    if extra:                 # a reason for a step done meanwhile is not needed, and is dropped
        raise HandlingError(f"{extra[0]!r} is not a mandatory step of this alert's protocol")
    return out


def record_protocols(conn, doc: dict, who: str, at: float) -> int:
    """Record a centre's protocols (``load_protocols``' normalised form; a new version when
    they changed, audited); returns the version in force."""
    who = _require_text(who, "who")
    text = canonical(checked(doc))
    last = conn.execute("SELECT version, doc FROM response_protocols ORDER BY version DESC"
                        " LIMIT 1").fetchone()
    if last is not None and last[1] == text:
        return last[0]
    version = (last[0] + 1) if last else 1
    conn.execute("INSERT INTO response_protocols (version, doc, recorded_at, recorded_by)"
                 " VALUES (?,?,?,?)", (version, text, at, who))
    hashchain.append(conn, "audit_log", {
        "at": at, "who": who, "action": "protocols_recorded",
        "detail": json.dumps({"version": version}, sort_keys=True)})
    return version
