"""The alert's timeline and its protocol checklist, from its acknowledgement-log entries.

Every step of an alert's handling is a record of the hash-chained acknowledgement log
(``localdb.handling``): ``acknowledge``, ``step`` (``action_code`` the protocol step id or
``other``, ``reason`` the JSON detail ``{"outcome", "reference"}``, ``note``), ``skip`` (a
mandatory step closed without it, the reason in ``note``), ``shelve``/``unshelve`` and
``close``. ``timeline(entries)`` is those records as the console, the decider's publication and
the supervisor's review show them; ``checklist(steps, entries, raised_at, now)`` ticks the
alert's protocol: each step ``done`` (a completing outcome), ``tried`` (only no answer / not
possible so far), ``skipped`` (with the reason), or still open, ``due`` or ``overdue`` against
its time limit from the alert's raise (``given_reference``: the reference the completing record
gave). ``open_mandatory`` is what closing still asks for.
"""
from __future__ import annotations

import json

from monitorapp.response.protocols import COMPLETING, OTHER, OUTCOME_TEXT

KIND_TEXT = {"acknowledge": "Acknowledged", "step": "Step", "skip": "Skipped", "close": "Closed",
             "shelve": "Shelved", "unshelve": "Unshelved"}


def _detail(reason) -> dict:
    if not isinstance(reason, str) or not reason.startswith("{"):
        return {}
    try:
        d = json.loads(reason)
    except ValueError:
        return {}
    return d if isinstance(d, dict) else {}


def timeline(entries: list[dict]) -> list[dict]:
    """The entries (ack-log rows or the decider's published entries) as timeline items."""
    out = []
    for e in entries:
        kind = e.get("action") or e.get("step")
        item = {"seq": e.get("seq"), "kind": kind, "at": e.get("at"), "operator": e.get("operator"),
                "step_id": None, "outcome": None, "reference": None, "note": e.get("note"),
                "reason": None, "until": e.get("until"), "action_code": None}
        if kind == "step":
            d = _detail(e.get("reason"))
            item.update(step_id=e.get("action_code"), outcome=d.get("outcome"),
                        reference=d.get("reference"))
        elif kind == "skip":
            item.update(step_id=e.get("action_code"), reason=e.get("note"), note=None)
        elif kind == "acknowledge":
            item["action_code"] = e.get("action_code")
        elif kind == "shelve":
            item["reason"] = e.get("reason")
        out.append(item)
    return out


def checklist(steps: list[dict], entries: list[dict], raised_at: float | None,
              now: float) -> list[dict]:
    """The protocol's steps, in order, each with how far it got (see the module docstring)."""
    items = timeline(entries)
    out = []
    for s in steps:
        mine = [i for i in items if i["step_id"] == s["id"] and i["kind"] in ("step", "skip")]
        done = next((i for i in mine if i["kind"] == "step" and i["outcome"] in COMPLETING), None)
        skip = next((i for i in mine if i["kind"] == "skip"), None)
        tries = [i for i in mine if i["kind"] == "step"]
        due = (raised_at + s["within_s"]) if raised_at is not None and s.get("within_s") else None
        last = done or skip or (tries[-1] if tries else None)
        if done:
            state = "done"
        elif skip:
            state = "skipped"
        elif tries:
            state = "tried"
        else:
            state = "overdue" if due is not None and now > due else "due"
        late = bool(done and due is not None and done["at"] is not None and done["at"] > due)
        out.append({**s, "state": state, "due_at": due, "late": late, "attempts": len(tries),
                    "outcome": last["outcome"] if last else None,
                    "given_reference": done["reference"] if done else None,
                    "at": last["at"] if last else None, "by": last["operator"] if last else None,
                    "reason": skip["reason"] if skip else None})
    return out


def open_mandatory(steps: list[dict], entries: list[dict]) -> list[dict]:
    """The mandatory steps not yet completed (or skipped): what closing asks a reason for."""
    return [c for c in checklist(steps, entries, None, 0.0)
            if c["mandatory"] and c["state"] not in ("done", "skipped")]


def describe(item: dict, titles: dict[str, str] | None = None) -> str:
    """One line of plain text for a timeline item (escape it where markup is rendered)."""
    titles = titles or {}
    kind = item.get("kind")
    if kind == "step":
        sid = item.get("step_id") or OTHER
        what = titles.get(sid) or ("Other" if sid == OTHER else sid)
        text = f"{what}: {OUTCOME_TEXT.get(item.get('outcome'), item.get('outcome') or '?')}"
        if item.get("reference"):
            text += f" (ref {item['reference']})"
    elif kind == "skip":
        sid = item.get("step_id")
        text = f"Skipped {titles.get(sid) or sid}: {item.get('reason') or ''}"
    elif kind == "acknowledge":
        text = f"Acknowledged ({item.get('action_code') or '?'})"
    elif kind == "shelve":
        text = f"Shelved: {item.get('reason') or ''}"
    else:
        text = KIND_TEXT.get(kind, kind or "?")
    if item.get("note") and kind != "skip":
        text += f" — {item['note']}"
    return text
