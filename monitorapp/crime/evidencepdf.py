"""The evidential PDF of crime mapping (spec §5): one answer, or a batch's hits report.

``write_pdf(path, answer, produced_by, ...)`` reports one incident's answer; ``write_batch_pdf(
report, path, store=None, ...)`` reports a batch (``monitorapp.crime.batch.run_batch``): a summary
table of the incidents and the hits first, then one section per hit. Both are A4, grey and
black (the verdict is a word), drawn by ``monitorapp.crime.pdfcanvas`` without Qt.

What a document handed to police must and must not say:

* **Only the people placed at or near a scene are named** (present, possible). Everyone else
  whose data was checked is a count ("14 other tagged people ... not named here"): data
  minimisation.
* **Each hit**: the verdict and its reason in words (``result["reason"]``, else the basis), the
  closest approach and when, the earliest and latest time the person could have been there,
  the fixes bracketing the window, the map of the scene (``monitorapp.crime.scenemap``: streets,
  the fixes with their accuracy circles, the prism's reach), the fixes near the scene, and the
  SHA-256 of that hit's data.
* **Times** in local time with the offset (``Europe/London`` unless ``tz`` says otherwise: GMT in
  winter, BST in summer) and in UTC.
* **Every page** says "page x of y", the reference and the digest; the last section is a
  **certificate**: who ran the query and when, the reference and reason, who produced the report
  and when, the SHA-256 of the data, and lines for a signature.
"""
from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

from monitorapp.crime.answer import INVOLVED, VERDICT_TEXT, check_answer, data_digest, digest_of
from monitorapp.crime.pdfcanvas import A4_H, PdfCanvas, text_width, wrap
from monitorapp.crime.place import bng, grid_reference, in_grid
from monitorapp.crime.scenemap import draw_scene_map, legend_lines
from monitorapp.feed.timeutil import fmt_time, parse_time

LEFT, RIGHT, TOP, BOTTOM = 15.0, 195.0, 16.0, A4_H - 18.0
WIDTH = RIGHT - LEFT
DEFAULT_TZ = "Europe/London"
MAX_FIX_ROWS = 30


# ---- times ---------------------------------------------------------------------------------
def _epoch(t) -> float | None:
    if t is None or t == "":
        return None
    return float(t) if isinstance(t, (int, float)) else parse_time(t)


def local_time(t, tz: str = DEFAULT_TZ, date: bool = True) -> str:
    """"2026-11-18 21:10:00 GMT+00:00" (the zone's abbreviation and offset); "—" for none."""
    e = _epoch(t)
    if e is None:
        return "—"
    d = dt.datetime.fromtimestamp(e, ZoneInfo(tz))
    off = d.strftime("%z")
    return d.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S") + f" {d.tzname()}{off[:3]}:{off[3:]}"


def both_times(t, tz: str = DEFAULT_TZ) -> str:
    """Local time with its offset, and UTC: "2026-11-18 21:10:00 GMT+00:00 (UTC 2026-11-18 21:10:00Z)"."""
    e = _epoch(t)
    if e is None:
        return "—"
    return f"{local_time(e, tz)} (UTC {fmt_time(e)[:19].replace('T', ' ')}Z)"


# ---- the flow of a document ----------------------------------------------------------------
class Flow:
    """A cursor down the pages of a ``PdfCanvas``: headings, paragraphs, rows, tables."""

    def __init__(self, canvas: PdfCanvas):
        self.c = canvas
        self.y = TOP

    def need(self, h: float) -> None:
        if self.y + h > BOTTOM:
            self.page_break()

    def page_break(self) -> None:
        if self.y > TOP:
            self.c.new_page()
            self.y = TOP

    def space(self, h: float = 2.0) -> None:
        self.y += h

    def heading(self, s: str, size: float = 12.0) -> None:
        self.need(size * 0.55 + 12)       # a heading keeps a few lines with it
        self.y += size * 0.45
        self.c.text(LEFT, self.y, s, size=size, font="B")
        self.y += size * 0.2 + 1.5

    def para(self, s: str, size: float = 8.5, font: str = "R", grey: float = 0.0, indent: float = 0.0) -> None:
        lh = size * 0.42
        for line in wrap(s, WIDTH - indent, size, font):
            self.need(lh)
            self.y += lh
            self.c.text(LEFT + indent, self.y, line, size=size, font=font, grey=grey)
        self.y += 1.2

    def rows(self, pairs, key_w: float = 44.0, size: float = 8.5) -> None:
        lh = size * 0.42
        for k, v in pairs:
            lines = wrap(str(v), WIDTH - key_w, size, "M" if k.startswith("SHA-256") else "R")
            self.need(lh * len(lines))
            self.c.text(LEFT, self.y + lh, k, size=size, font="B")
            for line in lines:
                self.y += lh
                self.c.text(LEFT + key_w, self.y, line, size=size, font="M" if k.startswith("SHA-256") else "R")
            self.y += 0.9
        self.y += 1.5

    def table(self, header, widths, rows, size: float = 7.5, whole=()) -> None:
        """A table whose cells wrap (nothing is clipped); the header repeats on a new page. The
        columns in ``whole`` (ids) are widened to their widest cell, never broken, taking the
        room from the widest other column."""
        total = sum(widths)
        ws = [WIDTH * w / total for w in widths]
        lh = size * 0.42
        for k in whole:
            need = max([text_width(str(r[k]), size) for r in rows] + [text_width(str(header[k]), size, "B")]) + 2.0
            if need > ws[k]:
                donor = max((i for i in range(len(ws)) if i not in whole), key=lambda i: ws[i])
                give = min(need - ws[k], ws[donor] * 0.5)
                ws[k] += give
                ws[donor] -= give

        def cells_of(row, font):
            return [wrap(str(c), w - 1.5, size, font) for c, w in zip(row, ws)]

        def draw(cells, font):
            x = LEFT
            for lines, w in zip(cells, ws):
                for i, line in enumerate(lines):
                    self.c.text(x, self.y + lh * (i + 1), line, size=size, font=font)
                x += w
            self.y += lh * max(len(lines) for lines in cells) + 1.0
            self.c.line(LEFT, self.y, RIGHT, self.y, grey=0.6, width=0.15)
            self.y += 0.8

        head = cells_of(header, "B")
        head_h = lh * max(len(x) for x in head) + 1.8
        self.need(head_h + lh * 2)
        draw(head, "B")
        for row in rows:
            cells = cells_of(row, "R")
            h = lh * max(len(x) for x in cells) + 1.8
            if self.y + h > BOTTOM:
                self.page_break()          # a new page, and the header again
                draw(head, "B")
            draw(cells, "R")
        self.y += 2.0


def _footer(title: str, digest: str):
    def footer(c: PdfCanvas, page: int, pages: int) -> None:
        y = A4_H - 10
        c.line(LEFT, y - 3.5, RIGHT, y - 3.5, grey=0.6, width=0.15)
        c.text(LEFT, y, f"{title} · SHA-256 {digest[:16]}…", size=7, grey=0.25)
        c.text(RIGHT, y, f"page {page} of {pages}", size=7, grey=0.25, align="right")
    return footer


# ---- the parts of a report -----------------------------------------------------------------
def _place_rows(q: dict, places) -> list[tuple[str, str]]:
    lat, lon = float(q["lat"]), float(q["lon"])
    out = [("Place", f"{lat:.6f}, {lon:.6f} (WGS84)")]
    e, n = bng(lat, lon)
    if in_grid(e, n) and -9 <= lon <= 3 and 49 <= lat <= 61:
        out.append(("British National Grid", f"E {e:.0f}, N {n:.0f} (grid reference {grid_reference(e, n)})"))
    scene = _address(places, lon, lat)
    if scene:
        out.append(("Scene address", f"{scene} (nearest named street, from OpenStreetMap data)"))
    return out


def _address(places, lon, lat) -> str:
    if places is None:
        return ""
    try:
        return places.address(lon, lat).describe()
    except Exception:          # noqa: BLE001 - the report is evidence without its reading aid too
        return ""


def shipped_places():
    """The shipped OSM places (streets, boroughs), or None where they are not installed."""
    try:
        from monitorapp.places import SHIPPED_BASEMAP, Places
        if not SHIPPED_BASEMAP.with_suffix("").with_suffix(".boroughs.geojson").is_file():
            return None
        return Places.shipped()
    except Exception:          # noqa: BLE001
        return None


def _reason(r: dict) -> str:
    text = r.get("reason")
    if text:
        return str(text)
    basis = "; ".join(r.get("basis") or [])
    return (basis[:1].upper() + basis[1:] + ".") if basis else ""


def _fix_line(f, tz) -> str:
    if not f:
        return "—"
    acc = f" ±{float(f['acc']):.0f} m" if f.get("acc") is not None else ""
    return f"{both_times(f.get('t'), tz)} at {float(f['lat']):.6f}, {float(f['lon']):.6f}{acc}"


def who_line(r: dict) -> str:
    return f"{r.get('offender') or 'unassigned tag'} (tag {r['device']})"


def _hit_section(flow: Flow, q: dict, r: dict, title: str, tz: str, places) -> None:
    c = flow.c
    flow.need(60)
    flow.heading(title, 11)
    flow.para(f"{VERDICT_TEXT[r['verdict']]}. {_reason(r)}", 9, font="B")
    rows = [("Closest approach", "—" if r.get("closest_m") is None else
             f"{float(r['closest_m']):.0f} m from the scene's centre"
             + ("" if r.get("closest_acc_m") is None else f" (the fix's accuracy ±{float(r['closest_acc_m']):.0f} m)")),
            ("At", both_times(r.get("closest_at"), tz))]
    if r.get("earliest") or r.get("latest"):
        rows.append(("Could have been there", f"from {both_times(r.get('earliest'), tz)} "
                                              f"to {both_times(r.get('latest'), tz)}"))
    if "last_before" in r or "first_after" in r:
        rows += [("Last fix before", _fix_line(r.get("last_before"), tz)),
                 ("First fix after", _fix_line(r.get("first_after"), tz))]
    fixes = r.get("fixes") or []
    rows.append(("Data near the scene", f"{len(fixes)} fixes ({sum(1 for f in fixes if f.get('in_window'))} in "
                                        f"the window), {len(r.get('segments') or [])} track segments, "
                                        f"{len(r.get('gaps') or [])} gaps over 10 minutes"))
    near = _address(places, *(lambda f: (f["lon"], f["lat"]))(min(fixes, key=lambda f: f["distance_m"]))) \
        if fixes and all(f.get("distance_m") is not None for f in fixes) else ""
    if near:
        rows.append(("Street (closest fix)", f"{near} (OpenStreetMap data)"))
    rows.append(("SHA-256 of this hit", digest_of({"query": q, "result": r})))
    flow.rows(rows)
    h = 105.0
    flow.need(h + 14)
    draw_scene_map(c, (LEFT, flow.y, WIDTH, h), q, r, places)
    flow.y += h + 1.5
    flow.para("; ".join(legend_lines(r)) + ".", 6.5, grey=0.3)
    if fixes:
        nearest = sorted(fixes, key=lambda f: (not f.get("in_window"), float(f.get("distance_m") or 0)))
        shown = sorted(nearest[:MAX_FIX_ROWS], key=lambda f: _epoch(f.get("t")) or 0.0)
        flow.table(["Time (local)", "UTC", "Distance", "Accuracy", "In window", "Within radius", "Note"],
                   [28, 22, 11, 11, 10, 11, 14],
                   [[local_time(f.get("t"), tz), (f.get("t") or "")[11:23] + "Z",
                     f"{float(f['distance_m']):.0f} m", f"±{float(f.get('acc') or 0):.0f} m",
                     "yes" if f.get("in_window") else "no", "yes" if f.get("inside") else "no",
                     "single-fix jump" if f.get("jump") else ""] for f in shown], size=7)
        if len(fixes) > len(shown):
            flow.para(f"The {len(shown)} fixes nearest the scene are listed; {len(fixes) - len(shown)} more "
                      "near it are in the GeoJSON export.", 7)


def _verdict_rules(flow: Flow, speed: float) -> None:
    flow.heading("How the verdicts are reached (spec v2 §5)", 10)
    flow.para("PRESENT: a fix in the window within the radius. POSSIBLE: the data cannot rule the place "
              f"out: a fix within the radius plus its accuracy, or a space-time prism between two fixes "
              f"(every place reachable between them at {speed:g} m/s, accuracy counted) meets the scene. "
              "NOT PRESENT: the data rules the place out for the whole window. NO DATA: nothing bounds "
              "the person within 24 hours. Distances are measured in a metric projection chosen for the place.", 7.5)


def _certificate(flow: Flow, rows: list[tuple[str, str]], digest: str) -> None:
    flow.need(95)
    flow.heading("Certificate", 12)
    flow.rows(rows + [("SHA-256 of the data", digest)])
    flow.para("I certify that this report was produced by the monitoring centre's system from the GPS "
              "data it held at the time stated, by the query recorded in its hash-chained audit log "
              "under the reference above, and that the SHA-256 above is that of the data (the query and "
              "its results, canonical JSON) this report rests on; the GeoJSON export carries the same "
              "data, from which anyone can recompute it.", 8.5)
    flow.space(8)
    c = flow.c
    for label in ("Signature", "Name (capitals)", "Position", "Date and time"):
        flow.need(12)
        flow.y += 9
        c.text(LEFT, flow.y, label, size=8.5, font="B")
        c.line(LEFT + 40, flow.y + 0.5, LEFT + 150, flow.y + 0.5, width=0.3)


def _minimised(n_other: int, what: str) -> str:
    if n_other <= 0:
        return f"No other tagged person's data touches {what}."
    people, were = ("person", "was") if n_other == 1 else ("people", "were")
    return (f"{n_other} other tagged {people} whose data touches {what} {were} not placed at or near "
            "the scene; not named in this report (data minimisation).")


def write_pdf(path, answer: dict, produced_by: str, produced_at: float | None = None, places=None,
              tz: str = DEFAULT_TZ) -> str:
    """Write the report of one answer; returns the SHA-256 of its data (see the module docstring).
    ``places`` names streets (the shipped OSM data when not given; ``False`` for none)."""
    check_answer(answer)
    digest = data_digest(answer)
    q = answer["query"]
    places = shipped_places() if places is None else (places or None)
    when = produced_at if produced_at is not None else dt.datetime.now(dt.timezone.utc).timestamp()
    hits = [r for r in answer["results"] if r["verdict"] in INVOLVED]
    others = len(answer["results"]) - len(hits)
    c = PdfCanvas(f"Crime mapping report {q['ref']}", produced_by)
    flow = Flow(c)
    flow.heading("Crime mapping — evidential report", 16)
    flow.para(f"Reference {q['ref']}. Produced {both_times(when, tz)} by {produced_by}. Times are local "
              f"({tz}) with their offset from UTC, and UTC.", 8.5)
    counts = {v: sum(1 for r in answer["results"] if r["verdict"] == v) for v in VERDICT_TEXT}
    flow.rows([("Reference", q["ref"]), ("Reason", q["reason"]), ("Query asked by", q["who"]),
               ("Query asked at", both_times(q.get("asked_at"), tz))]
              + _place_rows(q, places)
              + [("Radius", f"{float(q['radius_m']):.0f} m"),
                 ("Window", f"from {both_times(q['from'], tz)} to {both_times(q['to'], tz)}"),
                 ("Speed bound", f"{float(q.get('speed_ms') or 15.0):g} m/s"),
                 ("Projection", q.get("projection") or "British National Grid (EPSG:27700)"),
                 ("People placed there", f"{len(hits)}: {counts['present']} present, {counts['possible']} possible"),
                 ("Others checked", _minimised(others, "the window"))])
    flow.rows([("SHA-256 of the data", digest)])
    flow.heading("Summary", 11)
    if hits:
        flow.table(["#", "Verdict", "Offender", "Tag", "Closest", "At (local)", "Accuracy"],
                   [4, 11, 16, 16, 9, 26, 9],
                   [[str(i), VERDICT_TEXT[r["verdict"]], r.get("offender") or "(unassigned)", r["device"],
                     "—" if r.get("closest_m") is None else f"{float(r['closest_m']):.0f} m",
                     local_time(r.get("closest_at"), tz),
                     "—" if r.get("closest_acc_m") is None else f"±{float(r['closest_acc_m']):.0f} m"]
                    for i, r in enumerate(hits, 1)], whole=(2, 3))
    else:
        flow.para("Nobody was placed at or near the scene in the window.", 9, font="B")
    for i, r in enumerate(hits, 1):
        flow.page_break()            # each hit starts a page: it can be handed over on its own
        _hit_section(flow, q, r, f"Hit {i} of {len(hits)}: {who_line(r)}", tz, places)
    _verdict_rules(flow, float(q.get("speed_ms") or 15.0))
    _certificate(flow, [("Query reference", q["ref"]), ("Reason", q["reason"]),
                        ("Query run by", f"{q['who']} at {both_times(q.get('asked_at'), tz)}"),
                        ("Report produced by", f"{produced_by} at {both_times(when, tz)}")], digest)
    _save(c, path, f"Crime mapping report {q['ref']}", digest)
    return digest


def write_batch_pdf(report: dict, path, store=None, produced_by: str | None = None,
                    produced_at: float | None = None, places=None, tz: str = DEFAULT_TZ) -> str:
    """Write a batch's hits report (``run_batch``'s output): summary tables, then one section per
    hit, then the certificate; returns the SHA-256 of the report. With ``store``, the export is
    recorded in its audit log (``evidence_export``, kind ``batch_pdf``)."""
    if not isinstance(report, dict) or not isinstance(report.get("query"), dict) \
            or not isinstance(report.get("hits"), list) or not isinstance(report.get("incidents"), list):
        from monitorapp.crime.answer import EvidenceError
        raise EvidenceError("a batch PDF needs a hits report {query, incidents, hits}")
    digest = digest_of(report)
    q = report["query"]
    who = produced_by or q.get("who") or "unknown"
    if produced_at is None:
        produced_at = store.clock() if callable(getattr(store, "clock", None)) else \
            dt.datetime.now(dt.timezone.utc).timestamp()
    places = shipped_places() if places is None else (places or None)
    speed = float(q.get("speed_ms") or 15.0)
    incidents = {i["reference"]: i for i in report["incidents"]}
    title = f"Crime mapping batch {q.get('asked_at', '')[:10]}".strip()
    c = PdfCanvas(title, who)
    flow = Flow(c)
    flow.heading("Crime mapping — batch evidential report", 16)
    flow.para(f"Produced {both_times(produced_at, tz)} by {who}. Times are local ({tz}) with their offset "
              "from UTC, and UTC.", 8.5)
    flow.rows([("Reason", q.get("reason", "")), ("Run by", q.get("who", "")),
               ("Run at", both_times(q.get("asked_at"), tz)),
               ("Incidents", str(q.get("incidents", len(report["incidents"])))),
               ("Hits", f"{q.get('hits', len(report['hits']))} (people placed at or near an incident: present or possible)"),
               ("Speed bound", f"{speed:g} m/s"),
               ("Others checked", "Tagged people not placed at an incident are not named in this report "
                                  "(data minimisation)" + (f"; {q['checked']} people's data was checked."
                                                           if q.get("checked") is not None else "."))])
    flow.rows([("SHA-256 of the report", digest)])
    flow.heading("Incidents", 11)
    flow.table(["Reference", "Place", "Radius", "Window (local)", "Hits"], [16, 26, 8, 44, 6],
               [[i["reference"], _short_place(i), f"{float(i['radius_m']):.0f} m",
                 f"{local_time(i['from'], tz)} to {local_time(i['to'], tz, date=_day(i['from'], tz) != _day(i['to'], tz))}",
                 str(i.get("hits", 0))] for i in report["incidents"]], whole=(0,))
    flow.heading("Hits", 11)
    if report["hits"]:
        flow.table(["#", "Incident", "Verdict", "Offender", "Tag", "Closest", "At (local)"],
                   [4, 16, 11, 14, 14, 9, 26],
                   [[str(k), h.get("reference", ""), VERDICT_TEXT[h["verdict"]], h.get("offender") or "(unassigned)",
                     h["device"], "—" if h.get("closest_m") is None else f"{float(h['closest_m']):.0f} m",
                     local_time(h.get("closest_at"), tz)] for k, h in enumerate(report["hits"], 1)],
                   whole=(1, 3, 4))
    else:
        flow.para("No incident placed anyone at or near its scene.", 9, font="B")
    n = len(report["hits"])
    for k, h in enumerate(report["hits"], 1):
        inc = incidents.get(h.get("reference"), {})
        hq = {"ref": h.get("reference", ""), "lat": inc.get("lat", h.get("lat")), "lon": inc.get("lon", h.get("lon")),
              "radius_m": inc.get("radius_m", h.get("radius_m")), "from": inc.get("from"), "to": inc.get("to"),
              "speed_ms": speed}
        if hq["lat"] is None or hq["radius_m"] is None:
            continue
        flow.page_break()            # each hit starts a page: it can be handed over on its own
        _hit_section(flow, hq, h, f"Hit {k} of {n}: incident {hq['ref']}, {who_line(h)}", tz, places)
        flow.para(f"Incident {hq['ref']}: " + " · ".join(f"{a}: {b}" for a, b in _place_rows(hq, places))
                  + f" · radius {float(hq['radius_m']):.0f} m · window {both_times(hq['from'], tz)} to "
                  f"{both_times(hq['to'], tz)}.", 7.5, grey=0.2)
    _verdict_rules(flow, speed)
    _certificate(flow, [("Batch reason", q.get("reason", "")),
                        ("Run by", f"{q.get('who', '')} at {both_times(q.get('asked_at'), tz)}"),
                        ("Incidents and hits", f"{len(report['incidents'])} incidents, {n} hits"),
                        ("Report produced by", f"{who} at {both_times(produced_at, tz)}")], digest)
    _save(c, path, title, digest)
    if store is not None and hasattr(store, "audit"):
        store.audit(who, "evidence_export", {"kind": "batch_pdf", "path": os.fspath(path),
                                             "reason": q.get("reason"), "asked_at": q.get("asked_at"),
                                             "incidents": len(report["incidents"]), "hits": n,
                                             "sha256": digest})
    return digest


def _day(t, tz) -> str:
    return local_time(t, tz)[:10]


def _short_place(i: dict) -> str:
    lat, lon = float(i["lat"]), float(i["lon"])
    e, n = bng(lat, lon)
    if in_grid(e, n) and -9 <= lon <= 3 and 49 <= lat <= 61:
        return f"{lat:.5f}, {lon:.5f} ({grid_reference(e, n, 8)})"
    return f"{lat:.5f}, {lon:.5f}"


def _save(c: PdfCanvas, path, title: str, digest: str) -> None:
    from monitorapp.crime.answer import EvidenceError
    try:
        c.save(path, _footer(title, digest))
    except OSError as e:
        raise EvidenceError(f"{path}: cannot write the report: {e.strerror}") from None


__all__ = ["write_pdf", "write_batch_pdf", "local_time", "both_times", "shipped_places", "text_width"]
