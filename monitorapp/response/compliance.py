"""The compliance report of one offender for a period (issue 21): the document a probation
officer takes to a breach hearing.

``compliance_report(store, offender_id, t_from, t_to, who, reason, caseload=None)`` returns a
plain dictionary, from either store backend (``localdb.store.Store``, ``centraldb.store.PgStore``)
through their existing read paths only:

* ``offender``: id, name, risk, borough (the store's caseload) and, from the caseload file when
  one is given (a ``Caseload``, its JSON object or its path), the order (start, end, court
  reference, court) and the responsible officer (spec v2 §3); the tags worn and the requirements.
* ``alerts``: every alert of the offender that was active at some time in the period, oldest
  first, each with its type, priority, start, raise and clear, its handling (who acknowledged it,
  when, with which action code and note; who closed it, when, and the outcome written when
  closing), its response timeline (``monitorapp.response.timeline``: the steps, the skips, the
  protocol's checklist) and its context (``monitorapp.response.context``): for a curfew absence
  the time away from curfew (from the first fix outside to the first fix home again, or the
  alert's clearing, whichever is first: the time outside the home zone during curfew hours,
  clipped to the period); for an exclusion breach entry, exit, time inside and greatest depth.
* ``totals``: per alert type the count, how many were acknowledged and closed, the time away
  from curfew and the time inside exclusion zones.
* ``fixes_source``: ``"fixes"`` when the login may read the record's fixes, else
  ``"alerts' context only"`` (a supervisor on PostgreSQL reads no fixes: the figures come from the
  alerts' own evidence and clearing times, and the report says so).
* ``sha256``: the digest of the report's data (canonical JSON, ``monitorapp.crime.answer``).

Producing a report is audited as one record (``compliance_report``: who, reason, offender,
period, number of alerts, digest). A role that may not read alerts is refused with a one-line
:class:`ComplianceError`. Qt-free.
"""
from __future__ import annotations

import json
import pathlib
import time

from monitorapp.crime.answer import digest_of
from monitorapp.feed.timeutil import fmt_time
from monitorapp.response.context import alert_context, record_inputs
from monitorapp.response.protocols import steps_for
from monitorapp.response.timeline import checklist, describe, timeline

FIXES, CONTEXT_ONLY = "fixes", "alerts' context only"
MARGIN_S = 6 * 3600.0               # fixes read around the period, for breaches across its ends
MAX_PERIOD_S = 400 * 86400.0
TIME_KEYS = {"from", "to", "start", "raised_at", "cleared_at", "acked_at", "closed_at", "at",
             "entered_at", "left_at", "back_at", "away_from", "away_to", "produced_at",
             "valid_from", "valid_to", "due_at"}


class ComplianceError(ValueError):
    """The report cannot be produced (one line: the offender, the period or the record)."""


def _param(store) -> str:
    return "%s" if hasattr(store, "crime_reader") else "?"


def reads_fixes(store) -> bool:
    """Whether this login may read the record's fixes (always on SQLite)."""
    return bool(getattr(store, "reads_fixes", True))


def _rows(store, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows of a query, or none where the login may not read that table."""
    try:
        return [tuple(r) for r in store.reader().execute(sql, args).fetchall()]
    except Exception:          # noqa: BLE001 - a table this role may not read: left out
        return []


def _caseload_raw(caseload, offender_id: str) -> dict:
    if caseload is None:
        return {}
    if isinstance(caseload, (str, pathlib.Path)):
        from monitorapp.engine.caseload import CaseloadError, load_caseload
        try:
            caseload = load_caseload(caseload)
        except CaseloadError as e:
            raise ComplianceError(f"{caseload}: {len(e.problems)} problem(s): "
                                  f"{e.problems[0] if e.problems else ''}") from None
    if hasattr(caseload, "offenders"):
        off = caseload.offenders.get(offender_id)
        return dict(getattr(off, "raw", {}) or {}) if off is not None else {}
    for off in (caseload or {}).get("offenders") or []:
        if isinstance(off, dict) and off.get("id") == offender_id:
            return dict(off)
    return {}


def offender_record(store, offender_id: str, caseload=None) -> dict:
    """Who the report is about: the store's caseload, and the caseload file's order and officer."""
    p = _param(store)
    row = _rows(store, f"SELECT name, risk, borough FROM offenders WHERE offender_id={p}", (offender_id,))
    raw = _caseload_raw(caseload, offender_id)
    if not row and not raw:
        raise ComplianceError(f"no offender {offender_id[:80]!r} in the record or the caseload")
    name, risk, borough = row[0] if row else (raw.get("name"), raw.get("risk"), raw.get("borough"))
    tags = [{"device": d, "valid_from": f if f is not None and f > -1e300 else None, "valid_to": t}
            for d, f, t in _rows(store, f"SELECT device, valid_from, valid_to FROM assignments"
                                        f" WHERE offender_id={p} ORDER BY valid_from", (offender_id,))]
    reqs: dict[str, dict] = {}
    for rid, _v, body in _rows(store, f"SELECT requirement_id, version, body FROM requirements"
                                      f" WHERE offender_id={p} ORDER BY requirement_id, version",
                               (offender_id,)):
        reqs[rid] = json.loads(body) if isinstance(body, str) else body
    if not reqs:
        reqs = {r.get("id"): r for r in raw.get("requirements") or [] if isinstance(r, dict)}
    zone_names = dict(_rows(store, "SELECT zone_id, name FROM zones ORDER BY version"))
    officer = raw.get("responsible_officer") if isinstance(raw.get("responsible_officer"), dict) else None
    order = raw.get("order") if isinstance(raw.get("order"), dict) else None
    return {"id": offender_id, "name": name or raw.get("name") or "", "risk": risk, "borough": borough,
            "order": {k: order.get(k) for k in ("start", "end", "court_ref", "court")} if order else None,
            "responsible_officer": {k: officer.get(k) for k in ("name", "team", "email", "phone")}
            if officer else None,
            "tags": tags,
            "requirements": [{"id": rid, "type": r.get("type"), "zone": r.get("zone"),
                              "zone_name": zone_names.get(r.get("zone")), "schedule": r.get("schedule")}
                             for rid, r in sorted(reqs.items()) if isinstance(r, dict)]}


def _fixes_of(store, devices: set, lo: float, hi: float) -> dict[str, list]:
    p = _param(store)
    out: dict[str, list] = {}
    for d in sorted(devices):
        out[d] = [tuple(r) for r in store.reader().execute(
            f"SELECT t, lat, lon, acc FROM fixes WHERE device={p} AND t BETWEEN {p} AND {p} ORDER BY t",
            (d, lo, hi)).fetchall()]
    return out


def _clip(a: float | None, b: float | None, lo: float, hi: float) -> float:
    if a is None or b is None:
        return 0.0
    return max(0.0, min(b, hi) - max(a, lo))


def _breach(alert: dict, ctx: dict, t_from: float, t_to: float) -> dict:
    """The figures of a curfew absence or an exclusion breach, clipped to the period."""
    cleared = alert.get("cleared_at")
    if alert["type"] == "curfew_absent":
        left = ctx.get("left_at") or alert["start"]
        ends = [x for x in (ctx.get("back_at"), cleared) if x is not None]
        back = min(ends) if ends else None
        return {"away_from": left, "away_to": back, "farthest_m": ctx.get("farthest_m"),
                "away_s": _clip(left, back if back is not None else t_to, t_from, t_to),
                "still_away": back is None}
    entered = ctx.get("entered_at") or alert["start"]
    left = ctx.get("left_at") if ctx.get("left_at") is not None else cleared
    return {"entered_at": entered, "left_at": left, "deepest_m": ctx.get("deepest_m"),
            "inside_s": _clip(entered, left if left is not None else t_to, t_from, t_to),
            "still_inside": left is None}


def _handling(entries: list[dict]) -> dict:
    ack = next((e for e in entries if e["action"] == "acknowledge"), None)
    close = next((e for e in reversed(entries) if e["action"] == "close"), None)
    return {"acked_by": ack["operator"] if ack else None, "acked_at": ack["at"] if ack else None,
            "action_code": ack["action_code"] if ack else None, "ack_note": ack["note"] if ack else None,
            "closed_by": close["operator"] if close else None, "closed_at": close["at"] if close else None,
            "outcome": (close["note"] or "closed") if close else None}


def compliance_report(store, offender_id: str, t_from: float, t_to: float, who: str, reason: str,
                      *, caseload=None, now: float | None = None, audit: bool = True) -> dict:
    """The report (see the module docstring); audited as one ``compliance_report`` record."""
    if not isinstance(offender_id, str) or not offender_id.strip():
        raise ComplianceError("an offender id is required")
    if not isinstance(reason, str) or not reason.strip():
        raise ComplianceError("a reason is required (it is recorded in the audit log)")
    if not isinstance(who, str) or not who.strip():
        raise ComplianceError("who produces the report is required")
    t_from, t_to = float(t_from), float(t_to)
    if not t_from < t_to:
        raise ComplianceError("the period must end after it starts")
    if t_to - t_from > MAX_PERIOD_S:
        raise ComplianceError(f"the period is longer than {MAX_PERIOD_S / 86400:.0f} days")
    offender = offender_record(store, offender_id.strip(), caseload)
    oid = offender["id"]
    try:
        alerts = [a for a in store.alerts() if a.get("offender_id") == oid
                  and a["start"] <= t_to and (a.get("cleared_at") is None or a["cleared_at"] >= t_from)]
    except Exception as e:     # noqa: BLE001 - the role may not read alerts: say so in one line
        raise ComplianceError(f"this login may not read the alerts: {str(e).splitlines()[0][:200]}") from None
    alerts.sort(key=lambda a: (a["start"], a["raised_at"], a["alert_id"]))
    now = (store.clock() if hasattr(store, "clock") else time.time()) if now is None else now
    source = FIXES if reads_fixes(store) else CONTEXT_ONLY
    fixes = (_fixes_of(store, {a["device"] for a in alerts if a.get("device")},
                       t_from - MARGIN_S, t_to + MARGIN_S) if source == FIXES else {})
    protocols = store.response_protocols() if hasattr(store, "response_protocols") else None
    out_alerts = []
    for a in alerts:
        entries = store.ack_log(a["alert_id"])
        steps = steps_for(protocols, a["type"], offender.get("risk"))
        titles = {s["id"]: s["title"] for s in steps}
        items = timeline(entries)
        rec = {"alert_id": a["alert_id"], "type": a["type"], "priority": a["priority"],
               "device": a.get("device"), "requirement": a.get("requirement_id"),
               "zone": a.get("zone_id"), "zone_version": a.get("zone_version"),
               "start": a["start"], "raised_at": a["raised_at"], "cleared_at": a.get("cleared_at"),
               "late": bool(a.get("late")), "state": a.get("state"), "handling": a.get("handling"),
               **_handling(entries),
               "timeline": [{**i, "text": describe(i, titles)} for i in items],
               "checklist": [{k: c.get(k) for k in ("id", "title", "mandatory", "state", "at", "by",
                                                    "outcome", "reason", "late")}
                             for c in checklist(steps, entries, a["raised_at"], now)]}
        if a["type"] in ("curfew_absent", "exclusion_entered"):
            evidence, zone = record_inputs(store, {**a, "device": None})    # the zone version in force
            track = fixes.get(a.get("device")) or evidence
            ctx = alert_context(a, track, zone, now=min(now, t_to))
            rec["breach"] = _breach(a, ctx, t_from, t_to)
            rec["zone_feature"] = zone
            rec["track"] = [list(f) for f in track
                            if a["start"] - 1800 <= f[0] <= (a.get("cleared_at") or t_to) + 1800][:500]
        out_alerts.append(rec)
    totals: dict[str, dict] = {}
    for r in out_alerts:
        t = totals.setdefault(r["type"], {"alerts": 0, "acknowledged": 0, "closed": 0})
        t["alerts"] += 1
        t["acknowledged"] += r["acked_at"] is not None
        t["closed"] += r["closed_at"] is not None
        if "breach" in r:
            key = "away_s" if r["type"] == "curfew_absent" else "inside_s"
            t[key] = t.get(key, 0.0) + r["breach"][key]
    report = {"report": "compliance", "offender": offender, "period": {"from": t_from, "to": t_to},
              "who": who.strip(), "reason": reason.strip(), "produced_at": now, "fixes_source": source,
              "alerts": out_alerts, "totals": totals,
              "curfew_away_s": sum(r["breach"]["away_s"] for r in out_alerts
                                   if r["type"] == "curfew_absent")}
    report["sha256"] = digest_of(as_json(report))
    if audit:
        store.audit(who.strip(), "compliance_report",
                    {"offender": oid, "from": fmt_time(t_from), "to": fmt_time(t_to),
                     "reason": reason.strip(), "alerts": len(out_alerts), "sha256": report["sha256"]})
    return report


def as_json(obj, key: str | None = None):
    """The report with its times as RFC 3339 UTC text (for the JSON export and the digest)."""
    if isinstance(obj, dict):
        return {k: as_json(v, k) for k, v in obj.items() if k != "sha256" or key is not None}
    if isinstance(obj, (list, tuple)):
        return [as_json(v) for v in obj]
    if key in TIME_KEYS and isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return fmt_time(obj)
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def duration_text(s: float | None) -> str:
    """"3 h 05 min", "12 min" (a court reads minutes, not seconds)."""
    if s is None:
        return "—"
    m = int(round(float(s) / 60.0))
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"
