"""The evidential PDF of a crime-mapping answer, drawn with QPdfWriter and QPainter.

``write_pdf(path, answer, produced_by, map_image=None)`` writes an A4 report: the query (place,
radius, window, reference, reason, who asked and when), who produced the report and when, the
SHA-256 of the data it rests on (``monitorapp.crime.evidence.data_digest``), the map as the
analyst saw it (when given), a plan of the fixes near the scene drawn to scale from the data
itself (so the report never depends on a map tile server), and the results table with the
spec §5 verdict of every person. Grey and black only; the verdict is a word.

Addresses: the scene and each person's closest fix are named by street and borough
(``monitorapp.places``, reverse geocoding of the shipped OpenStreetMap data, offline). They are
printed as a reading aid, marked as derived from OSM: the verdicts and the digest rest on the
coordinates alone.
"""
from __future__ import annotations

import datetime as dt
import math

from PySide6.QtCore import QMarginsF, QPointF, QRectF, Qt
from PySide6.QtGui import (QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter,
                           QPen)

from monitorapp.crime.evidence import VERDICT_TEXT, data_digest, summary_lines
from monitorapp.feed.timeutil import fmt_time

DPI = 150
MARKS = {"present": "●", "possible": "◐", "not_present": "○", "no_data": "·"}


class _Page:
    """A cursor down A4 pages: text, key-value rows, tables, images; breaks pages itself."""

    def __init__(self, writer: QPdfWriter, footer: str):
        self.w = writer
        self.p = QPainter(writer)
        self.width = writer.width()
        self.height = writer.height()
        self.y = 0.0
        self.page = 1
        self.footer = footer
        self.mm = DPI / 25.4

    def font(self, pt: float, bold: bool = False, mono: bool = False) -> None:
        f = QFont("DejaVu Sans Mono" if mono else "DejaVu Sans")
        f.setPointSizeF(pt)
        f.setBold(bold)
        self.p.setFont(f)

    def need(self, h: float) -> None:
        if self.y + h > self.height - 12 * self.mm:
            self._footer()
            self.w.newPage()
            self.page += 1
            self.y = 0.0

    def _footer(self) -> None:
        self.font(7)
        self.p.setPen(QColor("#444444"))
        self.p.drawText(QRectF(0, self.height - 8 * self.mm, self.width, 6 * self.mm),
                        Qt.AlignmentFlag.AlignLeft, f"{self.footer} — page {self.page}")
        self.p.setPen(QColor("#000000"))

    def text(self, s: str, pt: float = 10, bold: bool = False, mono: bool = False,
             gap: float = 1.5) -> None:
        self.font(pt, bold, mono)
        rect = self.p.boundingRect(QRectF(0, 0, self.width, 10_000),
                                   int(Qt.TextFlag.TextWrapAnywhere if mono else Qt.TextFlag.TextWordWrap), s)
        self.need(rect.height())
        self.p.drawText(QRectF(0, self.y, self.width, rect.height()),
                        int(Qt.TextFlag.TextWrapAnywhere if mono else Qt.TextFlag.TextWordWrap), s)
        self.y += rect.height() + gap * self.mm

    def rows(self, pairs: list[tuple[str, str]], pt: float = 9.5) -> None:
        key_w = 48 * self.mm
        for k, v in pairs:
            self.font(pt)
            rect = self.p.boundingRect(QRectF(0, 0, self.width - key_w, 10_000),
                                       int(Qt.TextFlag.TextWordWrap), v)
            self.need(rect.height())
            self.font(pt, bold=True)
            self.p.drawText(QRectF(0, self.y, key_w, rect.height()), int(Qt.TextFlag.TextWordWrap), k)
            self.font(pt)
            self.p.drawText(QRectF(key_w, self.y, self.width - key_w, rect.height()),
                            int(Qt.TextFlag.TextWordWrap), v)
            self.y += rect.height() + 0.8 * self.mm
        self.y += 2 * self.mm

    def table(self, header: list[str], widths: list[float], rows: list[list[str]], pt: float = 8) -> None:
        xs = [0.0]
        total = sum(widths)
        for w_ in widths:
            xs.append(xs[-1] + self.width * w_ / total)

        def line(cells, bold):
            self.font(pt, bold)
            h = max(self.p.boundingRect(QRectF(0, 0, xs[i + 1] - xs[i] - 1.5 * self.mm, 10_000),
                                        int(Qt.TextFlag.TextWordWrap), c).height() for i, c in enumerate(cells))
            self.need(h + 1.5 * self.mm)
            for i, c in enumerate(cells):
                self.p.drawText(QRectF(xs[i], self.y, xs[i + 1] - xs[i] - 1.5 * self.mm, h),
                                int(Qt.TextFlag.TextWordWrap), c)
            self.y += h + 0.8 * self.mm
            self.p.setPen(QPen(QColor("#999999"), 1))
            self.p.drawLine(QPointF(0, self.y), QPointF(self.width, self.y))
            self.p.setPen(QColor("#000000"))
            self.y += 0.8 * self.mm
        line(header, True)
        for r in rows:
            line(r, False)
        self.y += 3 * self.mm

    def image(self, img: QImage, max_h_mm: float = 110) -> None:
        if img is None or img.isNull():
            return
        w = self.width
        h = w * img.height() / max(1, img.width())
        if h > max_h_mm * self.mm:
            h = max_h_mm * self.mm
            w = h * img.width() / max(1, img.height())
        self.need(h + 2 * self.mm)
        self.p.drawImage(QRectF(0, self.y, w, h), img)
        self.p.setPen(QPen(QColor("#666666"), 1))
        self.p.drawRect(QRectF(0, self.y, w, h))
        self.p.setPen(QColor("#000000"))
        self.y += h + 3 * self.mm

    def finish(self) -> None:
        self._footer()
        self.p.end()


def plan_image(answer: dict, size: int = 900) -> QImage:
    """A to-scale plan of the scene, its radius and the fixes near it, from the data alone."""
    q = answer["query"]
    img = QImage(size, size, QImage.Format.Format_RGB32)
    img.fill(QColor("#ffffff"))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    k = 111_320.0
    coslat = math.cos(math.radians(q["lat"]))
    pts = [(r, f) for r in answer["results"] for f in (r.get("fixes") or [])]
    extent = max([q["radius_m"] * 2.5] + [f["distance_m"] * 1.15 for _, f in pts])
    scale = (size / 2 - 30) / extent

    def xy(lat, lon):
        return QPointF(size / 2 + (lon - q["lon"]) * k * coslat * scale,
                       size / 2 - (lat - q["lat"]) * k * scale)
    p.setPen(QPen(QColor("#000000"), 3, Qt.PenStyle.DashLine))
    c = QPointF(size / 2, size / 2)
    p.drawEllipse(c, q["radius_m"] * scale, q["radius_m"] * scale)
    p.setPen(QPen(QColor("#000000"), 2))
    p.drawLine(c + QPointF(-12, 0), c + QPointF(12, 0))
    p.drawLine(c + QPointF(0, -12), c + QPointF(0, 12))
    by_dev: dict[str, list] = {}
    for r, f in pts:
        by_dev.setdefault(r["device"], []).append((f["t"], f, r))
    font = QFont("DejaVu Sans")
    font.setPixelSize(16)
    p.setFont(font)
    shades = ["#222222", "#555555", "#777777", "#999999"]
    for i, (dev, fixes) in enumerate(sorted(by_dev.items())):
        fixes.sort(key=lambda x: x[0])
        shade = QColor(shades[i % len(shades)])
        p.setPen(QPen(shade, 2))
        for (_, a, _), (_, b, _) in zip(fixes, fixes[1:]):
            p.drawLine(xy(a["lat"], a["lon"]), xy(b["lat"], b["lon"]))
        for _, f, r in fixes:
            pt = xy(f["lat"], f["lon"])
            p.setBrush(shade if f.get("in_window") else QColor("#ffffff"))
            p.drawEllipse(pt, 5, 5)
        _, last, r = fixes[-1]
        p.drawText(xy(last["lat"], last["lon"]) + QPointF(8, -8), f"{r['offender'] or dev}")
    # scale bar
    bar_m = 10 ** math.floor(math.log10(max(extent / 2, 1)))
    p.setPen(QPen(QColor("#000000"), 3))
    y = size - 25
    p.drawLine(QPointF(20, y), QPointF(20 + bar_m * scale, y))
    p.drawText(QPointF(20, y - 8), f"{bar_m:.0f} m")
    p.drawText(QPointF(size - 330, size - 15), "filled: fix in the window · open: around it")
    p.drawText(QPointF(20, 24), f"Scene, radius {q['radius_m']:.0f} m (dashed); north up")
    p.end()
    return img


def closest_fix(result: dict) -> dict | None:
    """The fix of a result nearest the scene (the one ``closest_m`` is measured to)."""
    fixes = [f for f in (result.get("fixes") or []) if f.get("distance_m") is not None]
    return min(fixes, key=lambda f: f["distance_m"]) if fixes else None


def addresses(answer: dict, places) -> tuple[str, list[str]]:
    """(the scene's address, each result's closest-fix address); empty strings without Places."""
    if places is None:
        return "", [""] * len(answer["results"])
    q = answer["query"]
    points = [(q["lon"], q["lat"])]
    which = []
    for i, r in enumerate(answer["results"]):
        f = closest_fix(r)
        if f is not None:
            which.append(i)
            points.append((f["lon"], f["lat"]))
    try:
        found = places.addresses([p[0] for p in points], [p[1] for p in points])
    except Exception:      # noqa: BLE001 - the report is evidence without its reading aid too
        return "", [""] * len(answer["results"])
    out = [""] * len(answer["results"])
    for i, a in zip(which, found[1:]):
        out[i] = a.describe()
    return found[0].describe(), out


def _shipped_places():
    from monitorapp.places import SHIPPED_BASEMAP, Places
    if not SHIPPED_BASEMAP.with_suffix("").with_suffix(".boroughs.geojson").is_file():
        return None
    return Places.shipped()


def write_pdf(path, answer: dict, produced_by: str, map_image: QImage | None = None,
              produced_at: float | None = None, places=None) -> str:
    """Write the report; returns the SHA-256 of the data printed on it. ``places`` names the
    scene and the closest fixes by street (the shipped OSM data when not given)."""
    digest = data_digest(answer)
    q = answer["query"]
    scene, near = addresses(answer, places if places is not None else _shipped_places())
    when = fmt_time(produced_at if produced_at is not None else dt.datetime.now(dt.timezone.utc).timestamp())
    writer = QPdfWriter(str(path))
    writer.setResolution(DPI)
    writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                     QMarginsF(15, 15, 15, 15), QPageLayout.Unit.Millimeter))
    writer.setTitle(f"Crime mapping report {q['ref']}")
    writer.setCreator("monitorapp")
    page = _Page(writer, f"Crime mapping report {q['ref']} · SHA-256 {digest[:16]}…")
    page.text("Crime mapping — evidential report", 16, bold=True)
    page.text(f"Produced {when} by {produced_by}. Spec §5 verdicts over the stored GPS data.", 9)
    page.rows(summary_lines(answer)
              + ([("Scene address", f"{scene} (nearest named street, from OpenStreetMap data)")] if scene else []))
    page.text("SHA-256 of the data this report rests on (canonical JSON of the query and the "
              "results, as in the GeoJSON export's \"evidence\"):", 9)
    page.text(digest, 10, mono=True, gap=3)
    if map_image is not None and not map_image.isNull():
        page.text("Map as shown to the analyst", 11, bold=True)
        page.image(map_image, 100)
    page.need(130 * page.mm)           # the heading stays with its plan
    page.text("Plan of the fixes near the scene (to scale, from the data)", 11, bold=True)
    page.image(plan_image(answer), 120)
    page.text("Results", 11, bold=True)
    rows = []
    for r, where in zip(answer["results"], near):
        rows.append([f"{MARKS[r['verdict']]} {VERDICT_TEXT[r['verdict']]}", r["offender"] or "(unassigned)",
                     r["device"], "" if r["closest_m"] is None else f"{r['closest_m']:.0f} m",
                     r["closest_at"] or "", where,
                     "" if r.get("closest_acc_m") is None else f"±{r['closest_acc_m']:.0f} m",
                     "; ".join(r.get("basis") or [])])
    page.table(["Verdict", "Offender", "Tag", "Closest", "At (UTC)", "Street (closest fix)", "Accuracy", "Basis"],
               [12, 9, 8, 7, 17, 16, 8, 23], rows)
    page.text("Verdicts (spec §5): present — a fix in the window within the radius; possible — "
              "within the radius plus its accuracy, a track segment through it, or a gap over 10 "
              "minutes from which the place was reachable at 15 m/s; not present — continuous data "
              "keeps the tag out; no data — no fix in or around the window.", 8)
    page.finish()
    return digest
