"""The compliance report written out (issue 21): CSV for a spreadsheet, PDF for a breach hearing.

``write_compliance_csv(report, path)``: one row per alert of ``monitorapp.response.compliance``'s
report, times RFC 3339 UTC, durations in seconds, the alert's timeline flattened (one item per
line in ``timeline``; ``steps`` and ``skipped`` sum it up; a cell a spreadsheet would run as a
formula gets a leading apostrophe).

``write_compliance_pdf(report, path, store=None)``: A4, drawn with the evidential report's own
parts (``monitorapp.crime.pdfcanvas``, ``monitorapp.crime.evidencepdf``'s ``Flow``, times in
local time with their offset and UTC, "page x of y" and the digest on every page): a title page
with the offender, the order, the responsible officer and the period; a summary table (per type:
alerts, acknowledged, closed, time away from curfew, time inside exclusion zones); one section
per alert with its handling and its whole timeline; for each curfew absence and exclusion breach
a small map drawn from the data (the zone version that decided it, the fixes in time order, the
named streets where the shipped OpenStreetMap data covers them: ``monitorapp.crime.scenemap``);
and the certificate with the SHA-256 of the report's data and lines for a signature. Text from
the data is written as PDF strings (escaped), never as drawing operators. With ``store``, the
export is audited (``compliance_export``).
"""
from __future__ import annotations

import csv
import os

from monitorapp.crime.evidencepdf import (DEFAULT_TZ, LEFT, WIDTH, Flow, _footer, both_times,
                                          local_time, shipped_places)
from monitorapp.crime.pdfcanvas import PdfCanvas
from monitorapp.crime.scenemap import _nice, _streets, projector_at
from monitorapp.feed.timeutil import fmt_time
from monitorapp.response.compliance import CONTEXT_ONLY, duration_text

TYPE_TEXT = {"curfew_absent": "Curfew absence", "exclusion_entered": "Exclusion zone entered",
             "strap_tamper": "Strap tamper", "signal_lost": "Signal lost",
             "appointment_missed": "Appointment missed", "battery_low": "Battery low"}
CSV_FIELDS = ("alert_id", "type", "priority", "offender", "offender_name", "device", "requirement",
              "zone", "start", "raised_at", "cleared_at", "late", "handling", "acked_by", "acked_at",
              "action_code", "ack_note", "closed_by", "closed_at", "outcome", "away_from", "away_to",
              "away_s", "entered_at", "left_at", "inside_s", "deepest_m", "steps", "skipped", "timeline")


def _t(v) -> str:
    return fmt_time(v) if isinstance(v, (int, float)) else ""


def _num(v) -> str:
    return "" if v is None else f"{float(v):.0f}"


def csv_rows(report: dict) -> list[dict]:
    off = report["offender"]
    out = []
    for a in report["alerts"]:
        b = a.get("breach") or {}
        row = {k: a.get(k) for k in CSV_FIELDS if k in a}
        row.update(offender=off["id"], offender_name=off.get("name") or "", late="yes" if a["late"] else "no",
                   steps=sum(1 for i in a["timeline"] if i["kind"] == "step"),
                   skipped="; ".join(f"{i['step_id']}: {i['reason']}" for i in a["timeline"] if i["kind"] == "skip"),
                   timeline="\n".join(f"{_t(i['at'])} {i['operator']}: {i['text']}" for i in a["timeline"]),
                   away_s=_num(b.get("away_s")), inside_s=_num(b.get("inside_s")),
                   deepest_m=_num(b.get("deepest_m")))
        for k in ("start", "raised_at", "cleared_at", "acked_at", "closed_at"):
            row[k] = _t(a.get(k))
        for k in ("away_from", "away_to", "entered_at", "left_at"):
            row[k] = _t(b.get(k))
        out.append(row)
    return out


def write_compliance_csv(report: dict, path) -> int:
    """One row per alert (see the module docstring); returns the number of rows."""
    rows = csv_rows(report)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: _cell(v) for k, v in r.items()})
    return len(rows)


def _cell(v) -> str:
    """A cell as text; one that a spreadsheet would run as a formula (a name or a note from the
    data beginning with = + @ or -letter) is written with a leading apostrophe."""
    text = "" if v is None else str(v)
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not text[1:2].isdigit() and text[1:2] != ""):
        return "'" + text
    return text


# ---- the PDF ---------------------------------------------------------------------------------
def _zone_rings(feature: dict | None):
    """(polygon rings as [(lon, lat)], circles as (lon, lat, radius_m)) of a zone Feature."""
    rings, circles = [], []
    g = (feature or {}).get("geometry") or {}
    if g.get("type") == "Point":
        r = ((feature or {}).get("properties") or {}).get("radius_m")
        if r:
            circles.append((float(g["coordinates"][0]), float(g["coordinates"][1]), float(r)))
    elif g.get("type") == "Polygon":
        rings += [[(float(p[0]), float(p[1])) for p in ring] for ring in g.get("coordinates") or []]
    elif g.get("type") == "MultiPolygon":
        for poly in g.get("coordinates") or []:
            rings += [[(float(p[0]), float(p[1])) for p in ring] for ring in poly]
    return rings, circles


def draw_breach_map(c: PdfCanvas, box, rec: dict, places=None) -> bool:
    """The zone (hatched grey), the fixes around the breach in time order, streets, scale and
    north; False (nothing drawn) when neither the zone nor a fix has a position."""
    x0, y0, w, h = box
    rings, circles = _zone_rings(rec.get("zone_feature"))
    track = [f for f in rec.get("track") or [] if f and f[1] is not None]
    pts = [p for ring in rings for p in ring] + [(cx, cy) for cx, cy, _ in circles] + [(f[2], f[1]) for f in track]
    if not pts:
        return False
    lon0 = sum(p[0] for p in pts) / len(pts)
    lat0 = sum(p[1] for p in pts) / len(pts)
    proj = projector_at(round(lon0, 3), round(lat0, 3))
    origin = proj.to_xy(lon0, lat0)

    def rel(lon, lat):
        x, y = proj.to_xy(lon, lat)
        return x - origin[0], y - origin[1]
    half = 60.0
    for lon, lat in pts:
        dx, dy = rel(lon, lat)
        half = max(half, abs(dx), abs(dy))
    for lon, lat, r in circles:
        dx, dy = rel(lon, lat)
        half = max(half, abs(dx) + r, abs(dy) + r)
    half *= 1.15
    scale = min(w, h) / (2 * half)
    cx, cy = x0 + w / 2, y0 + h / 2

    def at(dx, dy):
        return cx + dx * scale, cy - dy * scale
    c.rect(x0, y0, w, h, grey=0.4, width=0.3, fill=1.0)
    c.clip(x0, y0, w, h)
    c.polylines([[at(float(px), float(py)) for px, py in zip(xs, ys)]
                 for xs, ys, _name in _streets(places, proj, origin, half)], grey=0.72, width=0.35)
    for ring in rings:
        c.polyline([at(*rel(*p)) for p in ring], grey=0.1, width=0.6, closed=True, fill=0.4, alpha=0.25)
    for lon, lat, r in circles:
        c.circle(*at(*rel(lon, lat)), r * scale, grey=0.1, width=0.6, fill=0.4, alpha=0.25)
    line = [at(*rel(f[2], f[1])) for f in track]
    c.polyline(line, grey=0.15, width=0.35)
    for f, (px, py) in zip(track, line):
        c.circle(px, py, 0.8, grey=0.15, width=0.3, fill=0.15)
    if line:
        c.text(line[0][0] + 1.2, line[0][1] - 1.2, "first", size=5.5, grey=0.3)
        c.text(line[-1][0] + 1.2, line[-1][1] + 2.5, "last", size=5.5, grey=0.3)
    c.unclip()
    _scale_and_north(c, box, _nice(half / 3.0), scale)
    return True


def _scale_and_north(c: PdfCanvas, box, metres: float, scale: float) -> None:
    """A ticked scale bar in the bottom-right corner and a north arrow in the top-left one."""
    x0, y0, w, h = box
    right, base = x0 + w - 4, y0 + h - 4
    left = right - metres * scale
    c.polyline([(left, base - 1.2), (left, base), (right, base), (right, base - 1.2)], width=0.6)
    label = f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:g} km"
    c.text((left + right) / 2, base - 2, label, size=6, align="center")
    ax, ay = x0 + 5, y0 + 4
    c.line(ax, ay + 8, ax, ay + 1.5, width=0.4)
    c.polyline([(ax - 1.5, ay + 3), (ax, ay), (ax + 1.5, ay + 3)], closed=True, fill=0.0, width=0.2)
    c.text(ax + 2.2, ay + 4, "N", size=6.5, font="B")


def _offender_rows(report: dict, tz: str) -> list[tuple[str, str]]:
    off = report["offender"]
    rows = [("Offender", f"{off.get('name') or '—'} ({off['id']})"),
            ("Risk, borough", f"{off.get('risk') or '—'}, {off.get('borough') or '—'}")]
    order = off.get("order")
    if order:
        rows.append(("Order", f"{order.get('start') or '—'} to {order.get('end') or '—'}, court reference "
                              f"{order.get('court_ref') or '—'}" + (f" ({order['court']})" if order.get("court") else "")))
    else:
        rows.append(("Order", "not in the record (give the caseload file for the order's dates)"))
    officer = off.get("responsible_officer")
    if officer:
        rows.append(("Responsible officer", " · ".join(str(x) for x in (
            officer.get("name"), officer.get("team"), officer.get("email"), officer.get("phone")) if x)))
    tags = ", ".join(t["device"] for t in off.get("tags") or [])
    rows.append(("Tags", tags or "—"))
    for r in off.get("requirements") or []:
        rows.append((f"Requirement {r['id']}", f"{r.get('type')}, zone {r.get('zone_name') or r.get('zone') or '—'}"))
    rows.append(("Period", f"from {both_times(report['period']['from'], tz)} to {both_times(report['period']['to'], tz)}"))
    return rows


def _alert_section(flow: Flow, k: int, n: int, a: dict, tz: str, places) -> None:
    flow.need(50)
    flow.heading(f"Alert {k} of {n}: {TYPE_TEXT.get(a['type'], a['type'])} ({a['priority']})", 11)
    rows = [("Alert", a["alert_id"]), ("Began", both_times(a["start"], tz)),
            ("Raised", both_times(a["raised_at"], tz) + (" (from late data)" if a["late"] else "")),
            ("Cleared", both_times(a.get("cleared_at"), tz) if a.get("cleared_at") else "not cleared"),
            ("Acknowledged", f"by {a['acked_by']} at {both_times(a['acked_at'], tz)}, action "
                             f"{(a['action_code'] or '').replace('_', ' ')}" + (f": {a['ack_note']}" if a.get("ack_note") else "")
             if a.get("acked_at") else "not acknowledged"),
            ("Closed", f"by {a['closed_by']} at {both_times(a['closed_at'], tz)}" if a.get("closed_at") else "not closed"),
            ("Outcome", a.get("outcome") or "—")]
    b = a.get("breach")
    if b and a["type"] == "curfew_absent":
        rows += [("Left home", both_times(b["away_from"], tz)),
                 ("Back", both_times(b["away_to"], tz) if b.get("away_to") else "not back in the period"),
                 ("Time away from curfew", duration_text(b["away_s"])
                  + ("" if b.get("farthest_m") is None else f"; farthest {b['farthest_m']:.0f} m outside"))]
    elif b:
        rows += [("Entered", both_times(b["entered_at"], tz)),
                 ("Left", both_times(b["left_at"], tz) if b.get("left_at") else "still inside at the period's end"),
                 ("Time inside", duration_text(b["inside_s"])
                  + ("" if b.get("deepest_m") is None else f"; greatest depth {b['deepest_m']:.0f} m"))]
    flow.rows(rows)
    if a["timeline"]:
        flow.table(["Time (local)", "By", "What"], [24, 14, 62],
                   [[local_time(i["at"], tz), i.get("operator") or "", i["text"]] for i in a["timeline"]], size=7)
    else:
        flow.para("No handling recorded.", 8)
    open_steps = [s for s in a.get("checklist") or [] if s["mandatory"] and s["state"] not in ("done", "skipped")]
    if open_steps:
        flow.para("Mandatory steps not done: " + ", ".join(s["title"] for s in open_steps) + ".", 8, font="B")
    if b:
        flow.need(80)
        if draw_breach_map(flow.c, (LEFT, flow.y, WIDTH * 0.62, 70.0), a, places):
            flow.y += 71.5
            flow.para("Map: the zone version that decided the alert (shaded), the tag's fixes around the "
                      "breach joined in time order, named streets (OpenStreetMap data); north up.", 6.5, grey=0.3)


def write_compliance_pdf(report: dict, path, store=None, *, places=None, tz: str = DEFAULT_TZ) -> str:
    """Write the PDF (see the module docstring); returns the report's SHA-256."""
    from monitorapp.crime.answer import EvidenceError
    places = shipped_places() if places is None else (places or None)
    off = report["offender"]
    title = f"Compliance report {off['id']}"
    c = PdfCanvas(title, report.get("who") or "")
    flow = Flow(c)
    flow.heading("Compliance report — probation and courts", 16)
    flow.para(f"Produced {both_times(report['produced_at'], tz)} by {report['who']}. Reason: {report['reason']}. "
              f"Times are local ({tz}) with their offset from UTC, and UTC.", 8.5)
    flow.rows(_offender_rows(report, tz))
    flow.heading("Summary", 11)
    totals = report["totals"]
    if totals:
        flow.table(["Alert type", "Alerts", "Acknowledged", "Closed", "Time away / inside"], [30, 10, 14, 10, 22],
                   [[TYPE_TEXT.get(t, t), str(v["alerts"]), str(v["acknowledged"]), str(v["closed"]),
                     duration_text(v.get("away_s", v.get("inside_s"))) if ("away_s" in v or "inside_s" in v) else ""]
                    for t, v in sorted(totals.items())])
    else:
        flow.para("No alert in the period.", 9, font="B")
    flow.para(f"Time away from curfew in the period: {duration_text(report['curfew_away_s'])}.", 9, font="B")
    if report["fixes_source"] == CONTEXT_ONLY:
        flow.para("This login may not read the record's fixes: the times away and inside come from the alerts' "
                  "context only (their evidence and clearing times).", 8, grey=0.2)
    n = len(report["alerts"])
    for k, a in enumerate(report["alerts"], 1):
        flow.page_break() if k == 1 else flow.space(4)
        _alert_section(flow, k, n, a, tz, places)
    flow.need(90)
    flow.heading("Certificate", 12)
    flow.rows([("Produced by", f"{report['who']} at {both_times(report['produced_at'], tz)}"),
               ("Reason", report["reason"]), ("Alerts", str(n)), ("SHA-256 of the data", report["sha256"])])
    flow.para("I certify that this report was produced by the monitoring centre's system from the alerts, their "
              "hash-chained handling records and the data it held at the time stated, that its production is "
              "recorded in the audit log, and that the SHA-256 above is that of the report's data (canonical "
              "JSON, the --out-json export) from which anyone can recompute it.", 8.5)
    flow.need(30)                          # two signature blocks side by side
    labels = ("Signature", "Name (capitals)", "Position", "Date and time")
    for col, x in enumerate((LEFT, LEFT + WIDTH / 2)):
        for row, label in enumerate(labels[col * 2:col * 2 + 2]):
            y = flow.y + 10 + row * 11
            c.text(x, y, label, size=8.5, font="B")
            c.line(x + 30, y + 0.5, x + WIDTH / 2 - 6, y + 0.5, width=0.3)
    flow.y += 34
    try:
        c.save(path, _footer(title, report["sha256"]))
    except OSError as e:
        raise EvidenceError(f"{path}: cannot write the report: {e.strerror}") from None
    if store is not None:
        store.audit(report["who"], "compliance_export", {"kind": "pdf", "path": os.fspath(path),
                                                         "offender": off["id"], "sha256": report["sha256"]})
    return report["sha256"]


# ---- the command line ------------------------------------------------------------------------
def parser():
    import argparse
    p = argparse.ArgumentParser(prog="monitorapp compliance",
                                description="A compliance report of one offender for a period (PDF, CSV, JSON).")
    p.add_argument("--db", required=True, help="store file, or postgresql:// record")
    p.add_argument("--offender", required=True, help="the offender's id")
    p.add_argument("--from", dest="t_from", required=True, help="period start, RFC 3339")
    p.add_argument("--to", dest="t_to", required=True, help="period end, RFC 3339")
    p.add_argument("--reason", required=True, help="why the report is produced (audited)")
    p.add_argument("--operator", default=os.environ.get("USER") or "cli",
                   help="who produces it (SQLite; on PostgreSQL the login is who)")
    p.add_argument("--caseload", help="caseload file: the order's dates and the responsible officer")
    p.add_argument("--tz", default=DEFAULT_TZ, help=f"local time zone of the PDF (default {DEFAULT_TZ})")
    p.add_argument("--out-pdf")
    p.add_argument("--out-csv")
    p.add_argument("--out-json", help="the report's data (its SHA-256 is the PDF's); '-' for stdout")
    return p


def cli_main(argv: list[str] | None = None) -> int:
    import json
    import sys
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from centraldb import is_pg_target, open_store
    from localdb.schema import StoreError
    from monitorapp.crime.answer import EvidenceError
    from monitorapp.feed.timeutil import TimeFormatError, parse_time
    from monitorapp.response.compliance import ComplianceError, as_json, compliance_report
    args = parser().parse_args(argv)

    def fail(text: str) -> int:
        print(f"monitorapp compliance: {text}", file=sys.stderr)
        return 2
    try:
        t_from, t_to = parse_time(args.t_from), parse_time(args.t_to)
    except TimeFormatError as e:
        return fail(f"the period must be two RFC 3339 times: {e}")
    try:
        ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        return fail(f"unknown time zone {args.tz[:60]!r}")
    if not is_pg_target(args.db) and not os.path.isfile(args.db):
        return fail(f"{args.db}: no such store")
    try:
        store = open_store(args.db, create=False)
    except (StoreError, OSError) as e:
        return fail(f"cannot open the store: {e}")
    try:
        report = compliance_report(store, args.offender, t_from, t_to, args.operator, args.reason,
                                   caseload=args.caseload)
        if args.out_pdf:
            write_compliance_pdf(report, args.out_pdf, store, tz=args.tz)
        if args.out_csv:
            write_compliance_csv(report, args.out_csv)
        doc = {**as_json(report), "sha256": report["sha256"]}
        text = json.dumps(doc, ensure_ascii=False, indent=1)
        if args.out_json and args.out_json != "-":
            with open(args.out_json, "w", encoding="utf-8") as f:
                f.write(text + "\n")
        if args.out_json == "-" or not (args.out_pdf or args.out_csv or args.out_json):
            print(text)
    except (ComplianceError, StoreError, EvidenceError) as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{e.filename}: cannot write: {e.strerror}")
    finally:
        store.close()
    print(f"compliance report {args.offender}: {len(report['alerts'])} alerts, sha256 {report['sha256']}",
          file=sys.stderr)
    return 0


__all__ = ["write_compliance_csv", "write_compliance_pdf", "csv_rows", "draw_breach_map", "cli_main"]
