"""Whom an operator calls about an alert (issue 21): the subject, the responsible officer, the
borough's police control room and, where an order protects one, the victim's contact.

The subject's ``phone``, the ``responsible_officer`` (spec v2 §3) and the ``victim_contact``
come from the caseload (``monitorapp.engine.caseload`` validates them). The police control
rooms are the centre's own configuration, a JSON file it edits (the shipped example is
``resources/response-contacts.json``)::

    {"version": 1,
     "police": {"Camden": {"name": "Camden police control room", "phone": "+44 20 7946 0100"},
                "*": {"name": "Met Police central control room", "phone": "+44 20 7946 0000"}},
     "centre": {"name": "Centre duty manager", "phone": "+44 20 7946 0999"}}

``"*"`` is the control room of any borough not named. ``load_centre_contacts(path)`` validates
the file (one line per problem, :class:`ContactsError`); ``contacts_for(offender_raw, borough,
centre)`` is the list the console shows, each ``{"kind", "label", "name", "phone", "email"}``;
``tel_url(phone)`` the ``tel:`` link a softphone takes (RFC 3966: digits and a leading ``+``).
"""
from __future__ import annotations

import json
import pathlib
import re

from monitorapp.engine.caseload import PHONE_RE as PHONE

DEFAULT_PATH = pathlib.Path(__file__).resolve().parents[2] / "resources" / "response-contacts.json"
KIND_TEXT = {"subject": "Subject", "officer": "Responsible officer", "police": "Police",
             "victim": "Victim's contact", "centre": "Centre"}


class ContactsError(ValueError):
    def __init__(self, problems: list[str], source: str = "centre contacts"):
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def valid_phone(value) -> bool:
    return isinstance(value, str) and PHONE.fullmatch(value.strip()) is not None


def tel_url(phone: str) -> str:
    """``tel:+442079460000`` from a written number (spaces, brackets, dashes and dots dropped)."""
    text = phone.strip()
    digits = re.sub(r"[^0-9]", "", text)
    return "tel:" + ("+" if text.startswith("+") else "") + digits


def _entry(value, where: str, problems: list[str]) -> dict | None:
    if not isinstance(value, dict):
        problems.append(f"{where}: must be an object with name and phone")
        return None
    name, phone = value.get("name"), value.get("phone")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        problems.append(f"{where}: name must be text of 1–120 characters")
        return None
    if not valid_phone(phone):
        problems.append(f"{where}: phone must be a telephone number (digits, spaces, + ( ) - .)")
        return None
    return {"name": name.strip(), "phone": phone.strip()}


def parse_centre_contacts(doc: object, source: str = "centre contacts") -> dict:
    problems: list[str] = []
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise ContactsError(["must be a JSON object with \"version\": 1"], source)
    police = doc.get("police", {})
    out = {"police": {}, "centre": None}
    if not isinstance(police, dict):
        problems.append("police must be an object of borough: {name, phone}")
        police = {}
    for borough, v in police.items():
        e = _entry(v, f"police {str(borough)[:40]}", problems)
        if e is not None:
            out["police"][borough] = e
    if "centre" in doc:
        out["centre"] = _entry(doc["centre"], "centre", problems)
    if problems:
        raise ContactsError(problems, source)
    return out


def load_centre_contacts(path: str | pathlib.Path | None = None) -> dict:
    p = pathlib.Path(path) if path is not None else DEFAULT_PATH
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except OSError as e:
        raise ContactsError([f"cannot be read: {e.strerror or e}"], str(p)) from None
    except ValueError as e:
        raise ContactsError([f"is not valid JSON ({e})"], str(p)) from None
    return parse_centre_contacts(doc, str(p))


def contacts_for(offender: dict | None, borough: str | None, centre: dict | None) -> list[dict]:
    """The contacts of one offender's alert, in the order a protocol usually calls them."""
    offender = offender or {}
    centre = centre or {"police": {}, "centre": None}
    out = []

    def add(kind, name, phone, email=None, label=None):
        if phone or email:
            out.append({"kind": kind, "label": label or KIND_TEXT[kind], "name": name or "",
                        "phone": phone or None, "email": email or None})

    police = centre["police"].get(borough or "") or centre["police"].get("*")
    if police:
        add("police", police["name"], police["phone"])
    victim = offender.get("victim_contact")
    if isinstance(victim, dict):
        add("victim", victim.get("name"), victim.get("phone"),
            label="Victim's contact" + (f" ({victim['relation']})" if victim.get("relation") else ""))
    if offender.get("phone"):
        add("subject", offender.get("name"), offender.get("phone"))
    officer = offender.get("responsible_officer")
    if isinstance(officer, dict):
        add("officer", officer.get("name"), officer.get("phone"), officer.get("email"),
            label="Responsible officer" + (f" ({officer['team']})" if officer.get("team") else ""))
    if centre.get("centre"):
        add("centre", centre["centre"]["name"], centre["centre"]["phone"])
    return out
