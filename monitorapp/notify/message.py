"""The e-mail of a notification: plain text and HTML, headers that data cannot break.

``build_message(notes, current, sender, ...)`` makes one ``EmailMessage`` for one recipient: a
single notification, or a summary of several (the next-working-day batch). What it says is what
an officer needs (spec v2 §9): who (the offender's id, and name if the policy allows), what (the
alert's type and priority), where (the zone and the street and borough of the last position),
since when (local time of the caseload), its current state, what the centre did (the handling
and its notes) and the alert's reference. Nothing else of the record goes out.

Text from data is text: every value from the caseload or the record is escaped in the HTML part
(``html.escape``), and every header value is passed through :func:`header_text`, which turns any
control character (CR, LF, NUL, tab ...) into a space before the header is set, so a hostile
offender or zone name cannot add a header or start the body; addresses are checked plain
addresses, set through ``email.headerregistry.Address``. The standard library's ``SMTP`` policy
refuses a CR or LF in a header as a last line of defence. ``Message-ID`` is the notification's
deterministic id, so a receiving system sees one id however the message travelled.
"""
from __future__ import annotations

import datetime as dt
import html
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from monitorapp.feed.timeutil import parse_time

LABELS = {
    "strap_tamper": "Strap or case tamper",
    "exclusion_entered": "Exclusion zone entered",
    "curfew_absent": "Absent from curfew address",
    "signal_lost": "Tag signal lost",
    "appointment_missed": "Appointment missed",
    "battery_low": "Tag battery low",
    "feed_lost": "Monitoring feed lost",
    "system_fault": "Monitoring centre system fault",
}
STEP_LABELS = {"raised": "raised", "reactivated": "raised again", "closed": "closed",
               "resend": "sent again"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def header_text(value, limit: int = 200) -> str:
    """A value safe for a header: control characters become one space, at most ``limit``."""
    return " ".join(_CONTROL.sub(" ", str(value if value is not None else "")).split())[:limit]


def local_time(rfc3339: str | None, tz: str) -> str:
    if not rfc3339:
        return "-"
    try:
        t = parse_time(rfc3339)
        z = ZoneInfo(tz)
    except Exception:        # noqa: BLE001 - a fact that does not parse is shown as it is
        return str(rfc3339)
    return dt.datetime.fromtimestamp(t, z).strftime("%a %d %b %Y %H:%M:%S %Z")


def step_label(step: str) -> str:
    return STEP_LABELS.get(step.split("#", 1)[0].split(":", 1)[0], step)


def _who(f: dict) -> str:
    if f.get("offender") is None:
        return "(the centre)"
    name = f.get("offender_name")
    return f"{name} ({f['offender']})" if name else str(f["offender"])


def fact_lines(n: dict, current: dict | None) -> list[tuple[str, str]]:
    """(label, value) pairs of one notification, plain text (escaped later for HTML)."""
    f = n["facts"]
    tz = f.get("tz") or "Europe/London"
    cur = current or {}
    rows = [("Alert", f"{LABELS.get(f['type'], f['type'])} ({f['priority']}), {step_label(n['step'])}"),
            ("Who", _who(f))]
    if f.get("device"):
        rows.append(("Tag", str(f["device"])))
    where = []
    if f.get("zone_name") or f.get("zone"):
        where.append(f"zone {f.get('zone_name') or f.get('zone')}")
    if f.get("street"):
        where.append(str(f["street"]))
    elif f.get("borough"):
        where.append(f"borough {f['borough']}")
    if f.get("lat") is not None and f.get("lon") is not None:
        where.append(f"last position {float(f['lat']):.5f}, {float(f['lon']):.5f}")
    if where:
        rows.append(("Where", "; ".join(where)))
    rows.append(("Since", local_time(f.get("start"), tz) + (" (found from late data)" if f.get("late") else "")))
    rows.append(("Raised", local_time(f.get("raised_at"), tz)))
    state = cur.get("state") or "unknown"
    if cur.get("cleared_at"):
        state += f" since {local_time(cur['cleared_at'], tz)}"
    rows.append(("Now", f"{state}; handling: {cur.get('handling') or 'unacknowledged'}"))
    did = [f"{e['action']}" + (f" ({e['action_code']})" if e.get("action_code") else "")
           + (f": {e['note']}" if e.get("note") else "") for e in (cur.get("entries") or [])]
    rows.append(("Centre's action", "; ".join(did) if did else "none yet"))
    if f.get("fault"):
        rows.append(("Fault", f"{f.get('component')}: {f['fault']}"))
    if f.get("resend_reason"):
        rows.append(("Sent again", f"by {f.get('resend_by')}: {f['resend_reason']}"))
    rows.append(("Reference", f["alert_id"]))
    return rows


def subject_of(notes: list[dict]) -> str:
    if len(notes) > 1:
        return header_text(f"[EM] Summary: {len(notes)} notifications from the monitoring centre")
    n = notes[0]
    f = n["facts"]
    return header_text(f"[EM] {f['priority'].upper()} {LABELS.get(f['type'], f['type'])} "
                       f"{step_label(n['step'])}: {_who(f)} ref {f['alert_id']}")


def build_message(notes: list[dict], currents: dict[str, dict], sender, message_id: str,
                  now: float, centre: str = "the monitoring centre") -> EmailMessage:
    """One message to ``notes[0]``'s recipient about every notification in ``notes``.
    ``currents``: alert id -> {"state", "cleared_at", "handling", "entries"} read now."""
    first = notes[0]
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(display_name=header_text(sender.name, 80), addr_spec=sender.address)
    msg["To"] = Address(display_name=header_text(first.get("name") or "", 80),
                        addr_spec=first["address"])
    msg["Subject"] = subject_of(notes)
    msg["Date"] = format_datetime(dt.datetime.fromtimestamp(now, dt.timezone.utc))
    domain = sender.address.rsplit("@", 1)[1]
    msg["Message-ID"] = f"<{message_id}@{domain}>"
    msg["X-EM-Notification"] = header_text(" ".join(n["notification_id"] for n in notes), 900)
    msg["X-EM-Alert"] = header_text(" ".join(dict.fromkeys(n["alert_id"] for n in notes)), 900)
    greet = f"Dear {first.get('name')}," if first.get("name") else "Hello,"
    text = [greet, "", f"This is an automatic notification from {centre}.", ""]
    parts = [f"<p>{html.escape(greet)}</p>",
             f"<p>This is an automatic notification from {html.escape(centre)}.</p>"]
    for n in notes:
        rows = fact_lines(n, currents.get(n["alert_id"]))
        text += [f"{label}: {value}" for label, value in rows] + [""]
        parts.append("<table>" + "".join(
            f"<tr><th align=\"left\">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in rows) + "</table><hr>")
    text.append("Reply to the centre quoting the reference; do not reply with personal data.")
    parts.append("<p>Reply to the centre quoting the reference; do not reply with personal data.</p>")
    msg.set_content("\n".join(text))
    msg.add_alternative("<html><body>" + "".join(parts) + "</body></html>", subtype="html")
    return msg
