"""Who may do what: role → allowed actions and views, checked everywhere with ``can``.

One table (``PERMISSIONS``) says which roles may perform each action; every view and every
action of the application asks ``can(role, action)`` (or ``require``, which raises
:class:`RoleRefused` with a sentence a user can read). Roles come from ``localdb.accounts``.

Decisions (the spec is silent): least privilege. A police analyst reads locations
(crime mapping, playback of the people a query returned, evidential exports) but never handles
alerts, is never shown the operators' handover, and sees no live map of everyone unless the
centre grants it (``privacy/analyst_live_map``, default off: data minimisation, see
``sees_live_map``); a trainer runs the
training scenarios and may acknowledge *training* alerts, but never reaches live mode; an
administrator manages accounts and may look at the supervisors' views, but does not handle
alerts either (an account for that is an operator's or a supervisor's).
"""
from __future__ import annotations

from localdb.accounts import ROLE_TEXT, ROLES

OPERATOR, SUPERVISOR, TRAINER, POLICE, ADMIN = ROLES

PERMISSIONS: dict[str, frozenset[str]] = {
    # the live console
    "live_mode": frozenset({OPERATOR, SUPERVISOR, POLICE, ADMIN}),
    "training_mode": frozenset({OPERATOR, SUPERVISOR, TRAINER, POLICE, ADMIN}),
    "view_queue": frozenset({OPERATOR, SUPERVISOR, TRAINER}),
    # the live map, caseload and details of every tag (a police analyst only if the centre's
    # configuration grants it: ``sees_live_map``)
    "live_map": frozenset({OPERATOR, SUPERVISOR, TRAINER, ADMIN}),
    # shift continuity: the roles that take over the queue read the handover at sign-in and
    # leave one at sign-out
    "handover": frozenset({OPERATOR, SUPERVISOR}),
    "acknowledge": frozenset({OPERATOR, SUPERVISOR, TRAINER}),
    "close": frozenset({OPERATOR, SUPERVISOR, TRAINER}),
    "shelve": frozenset({OPERATOR, SUPERVISOR, TRAINER}),
    "edit_zones": frozenset({OPERATOR, SUPERVISOR}),
    # supervisors
    "review": frozenset({SUPERVISOR, ADMIN}),
    "review_comment": frozenset({SUPERVISOR}),
    "review_export": frozenset({SUPERVISOR, ADMIN}),
    "kpi": frozenset({SUPERVISOR, ADMIN, TRAINER}),
    # the compliance report of one offender for probation and courts (Views › Compliance report…)
    "compliance_report": frozenset({SUPERVISOR, ADMIN}),
    # police
    "crime_query": frozenset({POLICE, SUPERVISOR}),
    "evidence_export": frozenset({POLICE, SUPERVISOR}),
    "playback": frozenset({POLICE, SUPERVISOR, OPERATOR}),
    # trainers
    "trainer": frozenset({TRAINER}),
    # administration
    "manage_accounts": frozenset({ADMIN}),
}

ACTION_TEXT = {
    "live_mode": "use the live console", "training_mode": "use training mode",
    "view_queue": "see the alert queue", "live_map": "see the live map of every tag",
    "handover": "take over the queue at a shift handover", "acknowledge": "acknowledge alerts",
    "close": "close alerts", "shelve": "shelve alerts", "edit_zones": "edit zones",
    "review": "review alert handling", "review_comment": "comment on alert handling",
    "review_export": "export the handling review", "kpi": "see the KPI dashboard",
    "compliance_report": "produce compliance reports for probation and courts",
    "crime_query": "run crime-mapping queries", "evidence_export": "export evidential reports",
    "playback": "play back a trail", "trainer": "run training scenarios",
    "manage_accounts": "manage accounts",
}

# the views each role finds in the "Views" menu, in menu order (see ui.session.wiring)
VIEWS: dict[str, tuple[str, ...]] = {
    "review": ("review",), "kpi": ("kpi",), "crime": ("crime_query",),
    "playback": ("playback",), "trainer": ("trainer",),
}


class RoleRefused(PermissionError):
    """The signed-in role may not do this (the message says who may)."""


def can(role: str | None, action: str) -> bool:
    """Whether ``role`` may perform ``action``. Unknown actions are refused (and a bug)."""
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")
    return role in PERMISSIONS[action]


def require(role: str | None, action: str) -> None:
    if not can(role, action):
        who = ", ".join(ROLE_TEXT[r] for r in ROLES if r in PERMISSIONS[action])
        raise RoleRefused(f"a {ROLE_TEXT.get(role or '', role or 'signed-out user')} may not "
                          f"{ACTION_TEXT[action]} (allowed: {who})")


def views_for(role: str | None) -> list[str]:
    return [v for v, actions in VIEWS.items() if all(can(role, a) for a in actions)]


def sees_live_map(role: str | None, analyst_live_map: bool = False) -> bool:
    """Whether ``role`` is shown the live map, the caseload and the details of every tag.

    A police analyst is not, unless the centre's configuration grants it
    (``privacy/analyst_live_map``, default off). Data minimisation (UK GDPR art. 5(1)(c), Part 3
    of the DPA 2018 for law enforcement): an analyst's lawful basis is an investigation, and a
    crime-mapping query carries its reference and reason in the audit log; a live picture of
    every offender's whereabouts has no such reference, so it is off unless the centre decides
    (and documents) otherwise for its analysts."""
    if can(role, "live_map"):
        return True
    return role == POLICE and bool(analyst_live_map)


def check_mode(role: str | None, training: bool) -> None:
    """Refuse the console mode the role may not use (a trainer never reaches live mode)."""
    require(role, "training_mode" if training else "live_mode")
