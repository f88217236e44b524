"""Response protocols (issue 21): what an operator does, in order, for each kind of alert.

A centre declares its protocols in a JSON file it edits (the shipped defaults are
``resources/response-protocols.json``)::

    {"version": 1,
     "protocols": {
        "exclusion_entered": {
           "steps": [{"id": "call_police", "title": "Call the borough police control room",
                      "contact": "police", "mandatory": true, "within_min": 5,
                      "reference": true}, ...],
           "risk": {"high": {"steps": [...]}}},
        ...}}

* ``id``: ``[a-z][a-z0-9_]{0,39}``, unique within a protocol; ``other`` is reserved (the free
  step every alert has).
* ``title``: what the operator reads (1–120 characters).
* ``contact``: whom the step calls, one of :data:`CONTACTS` (optional; ``subject``, ``officer``,
  ``police``, ``victim``, ``centre``): the console offers that contact's number with the step.
* ``mandatory``: closing the alert asks for this step done, or for a reason for skipping it.
* ``within_min``: the time limit, minutes after the alert was raised (1–1440; optional).
* ``reference``: the step records a reference number (the police incident number); when true
  a completed step needs one.
* ``risk``: per risk level of the offender, a whole protocol that replaces the default one.

``load_protocols(path)`` reads and validates a file and raises :class:`ProtocolError` with one
line per problem, each naming its place (``exclusion_entered step #2: ...``).
``normalise(doc)`` is the form the store records (``localdb.handling``, the server's
``record_step``/``close_alert_skipping``): ``{"version": 1, "protocols": {type: {"*": [steps],
risk: [steps]}}}`` with every step's fields present and ``within_min`` as ``within_s``.
``steps_for(normalised, alert_type, risk)`` is the ordered steps of one alert.
"""
from __future__ import annotations

import json
import pathlib
import re

from monitorapp.engine.alerts import ALERT_TYPES

DEFAULT_PATH = pathlib.Path(__file__).resolve().parents[2] / "resources" / "response-protocols.json"
CONTACTS = ("subject", "officer", "police", "victim", "centre")
OTHER = "other"
STEP_ID = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_STEPS = 20
MAX_BYTES = 256 * 1024
ANY_RISK = "*"
# what a step's call or action came to; the first four complete a step (the store's rule)
STEP_OUTCOMES = ("reached", "call_made", "message_left", "no_answer", "done", "not_possible")
COMPLETING = ("reached", "call_made", "message_left", "done")
OUTCOME_TEXT = {"reached": "Reached", "call_made": "Call made", "message_left": "Message left",
                "no_answer": "No answer", "done": "Done", "not_possible": "Not possible"}


class ProtocolError(ValueError):
    """A protocol file that cannot be used: ``problems`` has one line each."""

    def __init__(self, problems: list[str], source: str = "response protocols"):
        self.problems, self.source = problems, source
        super().__init__(f"{source}: " + "; ".join(problems))


def _steps(value, where: str, problems: list[str]) -> list[dict]:
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: steps must be a non-empty list")
        return []
    if len(value) > MAX_STEPS:
        problems.append(f"{where}: at most {MAX_STEPS} steps")
        return []
    out, seen = [], set()
    for i, s in enumerate(value, start=1):
        here = f"{where} step #{i}"
        if not isinstance(s, dict):
            problems.append(f"{here}: not an object")
            continue
        unknown = set(s) - {"id", "title", "contact", "mandatory", "within_min", "reference"}
        if unknown:
            problems.append(f"{here}: unknown field {sorted(unknown)[0]!r}")
        sid = s.get("id")
        if not isinstance(sid, str) or not STEP_ID.fullmatch(sid):
            problems.append(f"{here}: id must match [a-z][a-z0-9_]{{0,39}}")
            continue
        if sid == OTHER:
            problems.append(f"{here}: id 'other' is reserved for the free step")
            continue
        if sid in seen:
            problems.append(f"{here}: id {sid} is used twice")
            continue
        seen.add(sid)
        title = s.get("title")
        if not isinstance(title, str) or not title.strip() or len(title) > 120:
            problems.append(f"{here} ({sid}): title must be text of 1–120 characters")
            continue
        contact = s.get("contact")
        if contact is not None and contact not in CONTACTS:
            problems.append(f"{here} ({sid}): contact must be one of {', '.join(CONTACTS)}")
            continue
        for flag in ("mandatory", "reference"):
            if flag in s and not isinstance(s[flag], bool):
                problems.append(f"{here} ({sid}): {flag} must be true or false")
        within = s.get("within_min")
        if within is not None and (isinstance(within, bool) or not isinstance(within, (int, float))
                                   or not 1 <= within <= 1440):
            problems.append(f"{here} ({sid}): within_min must be a number of minutes 1–1440")
            within = None
        out.append({"id": sid, "title": title.strip(), "contact": contact,
                    "mandatory": s.get("mandatory") is True,
                    "within_s": float(within) * 60 if within is not None else None,
                    "reference": s.get("reference") is True})
    return out


def normalise(doc: object, source: str = "response protocols") -> dict:
    """The validated, store form of a protocol document (see the module docstring)."""
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise ProtocolError(["the protocol file must be a JSON object"], source)
    if doc.get("version") != 1:
        problems.append(f"version must be 1, not {doc.get('version')!r}"[:120])
    protocols = doc.get("protocols")
    if not isinstance(protocols, dict):
        problems.append("protocols must be an object of alert type: protocol")
        protocols = {}
    out: dict[str, dict] = {}
    for type_, p in protocols.items():
        if type_ not in ALERT_TYPES:
            problems.append(f"{str(type_)[:40]!r} is not an alert type (one of {', '.join(ALERT_TYPES)})")
            continue
        if not isinstance(p, dict):
            problems.append(f"{type_}: not an object")
            continue
        by_risk = {ANY_RISK: _steps(p.get("steps"), type_, problems)}
        risk = p.get("risk", {})
        if not isinstance(risk, dict):
            problems.append(f"{type_}: risk must be an object of risk level: protocol")
            risk = {}
        for level, rp in risk.items():
            if not isinstance(level, str) or not level or level == ANY_RISK or len(level) > 40:
                problems.append(f"{type_}: risk level {str(level)[:40]!r} is not a level name")
                continue
            if not isinstance(rp, dict):
                problems.append(f"{type_} risk {level}: not an object")
                continue
            by_risk[level] = _steps(rp.get("steps"), f"{type_} risk {level}", problems)
        out[type_] = by_risk
    if problems:
        raise ProtocolError(problems, source)
    return {"version": 1, "protocols": out}


def load_protocols(path: str | pathlib.Path | None = None) -> dict:
    """Read, validate and normalise a protocol file (the shipped defaults when ``path`` is None)."""
    p = pathlib.Path(path) if path is not None else DEFAULT_PATH
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ProtocolError([f"cannot be read: {e.strerror or e}"], str(p)) from None
    if len(data) > MAX_BYTES:
        raise ProtocolError([f"is larger than {MAX_BYTES // 1024} KiB"], str(p))
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ProtocolError(["is not UTF-8 text"], str(p)) from None
    except ValueError as e:
        raise ProtocolError([f"is not valid JSON ({e})"], str(p)) from None
    return normalise(doc, str(p))


def as_file(normalised: dict) -> dict:
    """The file form of a normalised document (``normalise(as_file(n)) == n``)."""
    def steps(lst):
        out = []
        for s in lst:
            d = {"id": s["id"], "title": s["title"], "mandatory": s["mandatory"],
                 "reference": s["reference"]}
            if s.get("contact") is not None:
                d["contact"] = s["contact"]
            if s.get("within_s") is not None:
                d["within_min"] = s["within_s"] / 60
            out.append(d)
        return out
    protocols = {}
    for type_, by_risk in (normalised.get("protocols") or {}).items():
        p = {"steps": steps(by_risk.get(ANY_RISK) or [])}
        levels = {k: {"steps": steps(v)} for k, v in by_risk.items() if k != ANY_RISK}
        if levels:
            p["risk"] = levels
        protocols[type_] = p
    return {"version": normalised.get("version"), "protocols": protocols}


def checked(normalised: object) -> dict:
    """A normalised document checked as a file would be (ProtocolError if it is not one)."""
    if not isinstance(normalised, dict) or not isinstance(normalised.get("protocols"), dict) \
            or not all(isinstance(v, dict) and all(isinstance(x, list) for x in v.values())
                       for v in normalised["protocols"].values()):
        raise ProtocolError(["not a normalised protocol document (use load_protocols)"])
    try:
        again = normalise(as_file(normalised))
    except (KeyError, TypeError, AttributeError):
        raise ProtocolError(["not a normalised protocol document (use load_protocols)"]) from None
    if canonical(again) != canonical(normalised):
        raise ProtocolError(["not a normalised protocol document (use load_protocols)"])
    return again


def canonical(normalised: dict) -> str:
    """The text the store records and compares (sorted keys, no spaces)."""
    return json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def steps_for(normalised: dict | None, alert_type: str, risk: str | None) -> list[dict]:
    """The ordered steps of an alert's protocol: its offender's risk level's, else the type's."""
    if not isinstance(normalised, dict):
        return []
    by_risk = (normalised.get("protocols") or {}).get(alert_type) or {}
    steps = by_risk.get(risk) if risk and risk in by_risk else by_risk.get(ANY_RISK)
    return list(steps or [])
