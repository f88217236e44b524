"""A small, Qt-free PDF writer for the evidential reports: A4 pages of text, lines and circles.

The evidential PDF is written by the command line (``monitorapp crimecheck --pdf``, the daily
run) as well as by the application, so it cannot need Qt. What a report needs is little: text in
the PDF standard fonts (Helvetica, Helvetica-Bold, Courier; WinAnsi encoding, so text stays
searchable and ``pdftotext`` reads it back exactly), lines, polygons, circles, grey fills with
transparency and a clip rectangle. Nothing is rasterised: the map of a hit is vector drawing and
stays sharp at any zoom.

Coordinates are millimetres from the page's top-left corner; ``PdfCanvas.save(path, footer)``
calls ``footer(canvas, page, pages)`` on every page once the number of pages is known, which is
how each page gets its "page x of y". A character the standard fonts cannot show is written as
"?" (names from the data are ASCII tag and offender ids; place names are Latin).
"""
from __future__ import annotations

import math
import zlib

A4_W, A4_H = 210.0, 297.0
PT = 72.0 / 25.4            # points per millimetre
FONTS = {"R": "Helvetica", "B": "Helvetica-Bold", "M": "Courier"}

# Adobe's metrics of the standard fonts (units of 1/1000 em), characters 32..126.
_HELV = [278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
         556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
         1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
         667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
         333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
         556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584]
_HELV_B = [278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
           556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
           975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
           667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
           333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
           611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584]
_EXTRA = {"\u2014": 1000, "\u2013": 556, "\u2026": 1000, "\u00b1": 584, "\u00b7": 278,
          "\u00a7": 556, "\u00b0": 400, "\u2019": 222, "\u2018": 222, "\u201c": 333, "\u201d": 333,
          "\u2022": 350, "\u00d7": 584}


def text_width(s: str, size: float, font: str = "R") -> float:
    """Width in millimetres of ``s`` set in ``font`` at ``size`` points."""
    if font == "M":
        return len(s) * 0.6 * size / PT
    table = _HELV_B if font == "B" else _HELV
    units = 0
    for ch in s:
        o = ord(ch)
        units += table[o - 32] if 32 <= o <= 126 else _EXTRA.get(ch, 556)
    return units * size / 1000.0 / PT


def wrap(s: str, width: float, size: float, font: str = "R") -> list[str]:
    """Lines of ``s`` no wider than ``width`` mm: broken at spaces, long words cut."""
    out: list[str] = []
    for para in str(s).split("\n"):
        line = ""
        for word in para.split(" "):
            cand = word if not line else f"{line} {word}"
            if text_width(cand, size, font) <= width:
                line = cand
                continue
            if line:
                out.append(line)
            while text_width(word, size, font) > width and len(word) > 1:   # a digest, a long id
                k = len(word)
                while k > 1 and text_width(word[:k], size, font) > width:
                    k -= 1
                out.append(word[:k])
                word = word[k:]
            line = word
        out.append(line)
    return out


def _pdf_string(s: str) -> bytes:
    raw = str(s).encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") \
        .replace(b"\r", b"\\r").replace(b"\n", b" ") + b")"


def _n(v: float) -> str:
    return "%.2f" % v


class PdfCanvas:
    """Pages of drawing operations; ``save`` writes the file (see the module docstring)."""

    ALPHAS = (0.12, 0.25, 0.5)

    def __init__(self, title: str = "", author: str = ""):
        self.title, self.author = title, author
        self.pages: list[list[str]] = []
        self.new_page()

    @property
    def page(self) -> int:
        return len(self.pages)

    def new_page(self) -> None:
        self.pages.append([])
        self._ops = self.pages[-1]

    def _xy(self, x: float, y: float) -> str:
        return "%.2f %.2f" % (x * PT, (A4_H - y) * PT)

    # -- state --------------------------------------------------------------------------------
    def _alpha_index(self, alpha: float) -> int:
        return min(range(len(self.ALPHAS)), key=lambda i: abs(self.ALPHAS[i] - alpha))

    def _paint(self, path: str, stroke, fill, alpha, width, dash) -> None:
        """One path, painted in its own graphics state (style set before the path)."""
        style = ["q"]
        if fill is not None:
            style.append(f"{_n(fill)} g" + ("" if alpha is None else f" /A{self._alpha_index(alpha)} gs"))
        if stroke is not None:
            style.append(f"{_n(stroke)} G {_n(width * PT)} w "
                         + (f"[{' '.join(_n(d * PT) for d in dash)}] 0 d" if dash else "[] 0 d"))
        op = "B" if (stroke is not None and fill is not None) else ("f" if fill is not None else "S")
        self._ops.append(" ".join(style) + f" {path} {op} Q")

    # -- drawing ------------------------------------------------------------------------------
    def text(self, x: float, y: float, s: str, size: float = 9, font: str = "R", grey: float = 0.0,
             align: str = "left") -> float:
        """``s`` with its baseline at y; align "left", "right" or "center" on x. Returns its width."""
        w = text_width(s, size, font)
        if align == "right":
            x -= w
        elif align == "center":
            x -= w / 2
        self._ops.append(f"BT {_n(grey)} g /F{font} {_n(size)} Tf {self._xy(x, y)} Td "
                         f"{_pdf_string(s).decode('latin-1')} Tj ET")
        return w

    def line(self, x1, y1, x2, y2, grey: float = 0.0, width: float = 0.25, dash=None) -> None:
        self.polyline([(x1, y1), (x2, y2)], grey=grey, width=width, dash=dash)

    def polyline(self, pts, grey: float = 0.0, width: float = 0.25, dash=None, closed: bool = False,
                 fill: float | None = None, alpha: float | None = None, stroke: bool = True) -> None:
        pts = list(pts)
        if len(pts) < 2:
            return
        path = f"{self._xy(*pts[0])} m " + " ".join(f"{self._xy(*p)} l" for p in pts[1:])
        self._paint(path + (" h" if closed else ""), grey if stroke else None, fill, alpha, width, dash)

    def polylines(self, lines, grey: float = 0.0, width: float = 0.25) -> None:
        """Many open polylines stroked alike, as one path (a map's streets)."""
        parts = []
        for pts in lines:
            if len(pts) >= 2:
                parts.append(f"{self._xy(*pts[0])} m " + " ".join(f"{self._xy(*p)} l" for p in pts[1:]))
        if parts:
            self._paint(" ".join(parts), grey, None, None, width, None)

    def rect(self, x, y, w, h, grey: float | None = 0.0, width: float = 0.25, fill: float | None = None,
             alpha: float | None = None) -> None:
        self._paint(f"{self._xy(x, y + h)} {_n(w * PT)} {_n(h * PT)} re", grey, fill, alpha, width, None)

    def circle(self, cx, cy, r, grey: float | None = 0.0, width: float = 0.25, dash=None,
               fill: float | None = None, alpha: float | None = None) -> None:
        k = 0.5523 * r          # four Bezier quarters
        X, Y = cx * PT, (A4_H - cy) * PT
        R, K = r * PT, k * PT
        self._paint(
            f"{_n(X + R)} {_n(Y)} m "
            f"{_n(X + R)} {_n(Y + K)} {_n(X + K)} {_n(Y + R)} {_n(X)} {_n(Y + R)} c "
            f"{_n(X - K)} {_n(Y + R)} {_n(X - R)} {_n(Y + K)} {_n(X - R)} {_n(Y)} c "
            f"{_n(X - R)} {_n(Y - K)} {_n(X - K)} {_n(Y - R)} {_n(X)} {_n(Y - R)} c "
            f"{_n(X + K)} {_n(Y - R)} {_n(X + R)} {_n(Y - K)} {_n(X + R)} {_n(Y)} c h",
            grey, fill, alpha, width, dash)

    def clip(self, x, y, w, h) -> None:
        """Clip what follows to a rectangle, until ``unclip``."""
        self._ops.append(f"q {self._xy(x, y + h)} {_n(w * PT)} {_n(h * PT)} re W n")

    def unclip(self) -> None:
        self._ops.append("Q")

    # -- the file -----------------------------------------------------------------------------
    def save(self, path, footer=None) -> None:
        """Write the PDF; ``footer(canvas, page, pages)`` draws on each page first."""
        if footer is not None:
            total = len(self.pages)
            for i, ops in enumerate(self.pages, 1):
                self._ops = ops
                footer(self, i, total)
        objs: list[bytes] = []

        def add(body: bytes) -> int:
            objs.append(body)
            return len(objs)

        catalog = add(b"")                    # filled in below
        pages_id = add(b"")
        fonts = {k: add(f"<< /Type /Font /Subtype /Type1 /BaseFont /{v} /Encoding /WinAnsiEncoding >>".encode())
                 for k, v in FONTS.items()}
        alphas = {i: add(f"<< /Type /ExtGState /ca {a} /CA 1 >>".encode()) for i, a in enumerate(self.ALPHAS)}
        res = ("<< /Font << " + " ".join(f"/F{k} {v} 0 R" for k, v in fonts.items()) + " >> /ExtGState << "
               + " ".join(f"/A{k} {v} 0 R" for k, v in alphas.items()) + " >> >>")
        kids = []
        for ops in self.pages:
            data = zlib.compress("\n".join(ops).encode("latin-1"))
            content = add(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream")
            kids.append(add(f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {_n(A4_W * PT)} "
                            f"{_n(A4_H * PT)}] /Resources {res} /Contents {content} 0 R >>".encode()))
        objs[catalog - 1] = f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode()
        objs[pages_id - 1] = (f"<< /Type /Pages /Count {len(kids)} /Kids ["
                              + " ".join(f"{k} 0 R" for k in kids) + "] >>").encode()
        info = add(b"<< /Title " + _pdf_string(self.title) + b" /Author " + _pdf_string(self.author)
                   + b" /Producer (monitorapp) >>")
        out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for i, body in enumerate(objs, 1):
            offsets.append(len(out))
            out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
        xref = len(out)
        out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
        out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        out += (b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                % (len(objs) + 1, catalog, info, xref))
        with open(path, "wb") as f:
            f.write(bytes(out))


def ellipse_points(f1, f2, major: float, n: int = 72) -> list[tuple[float, float]]:
    """Points of the ellipse with foci f1, f2 whose distances to them add up to ``major``
    (the footprint of a space-time prism), in the same units as the foci."""
    (x1, y1), (x2, y2) = f1, f2
    c = math.hypot(x2 - x1, y2 - y1) / 2
    a = max(major / 2, c)
    b = math.sqrt(max(a * a - c * c, 0.0))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    th = math.atan2(y2 - y1, x2 - x1)
    ct, st = math.cos(th), math.sin(th)
    return [(cx + a * math.cos(u) * ct - b * math.sin(u) * st, cy + a * math.cos(u) * st + b * math.sin(u) * ct)
            for u in (2 * math.pi * i / n for i in range(n))]
