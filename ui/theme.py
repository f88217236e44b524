"""ISA-101 look of the console: grey surfaces, colour only for alert priorities.

Two palettes (light for day shifts, dark for night shifts) share one rule: the interface is
shades of grey, and saturated colour appears only where something is wrong. Every priority
colour is backed by a shape and a word (``▲ CRITICAL``) so that an operator who cannot tell red
from orange still reads the priority. Escalation adds a marker (``‼``) and bold text, never a
new colour.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

PRIORITY_SHAPE = {"critical": "▲", "high": "◆", "medium": "■", "low": "●"}
PRIORITY_TEXT = {p: f"{s} {p.upper()}" for p, s in PRIORITY_SHAPE.items()}
ESCALATED_MARK = "‼"


@dataclass(frozen=True)
class Palette:
    name: str
    window: str
    base: str          # table and input backgrounds
    alt_base: str
    panel: str         # docks, toolbars, headers
    text: str
    dim_text: str
    border: str
    selection: str
    selection_text: str
    priority: dict      # priority -> strong colour (text, markers, flashing)
    priority_tint: dict  # priority -> row background for an unacknowledged alert
    watermark: str


LIGHT = Palette(
    name="light", window="#d4d4d4", base="#e4e4e4", alt_base="#dcdcdc", panel="#cbcbcb",
    text="#1c1c1c", dim_text="#5a5a5a", border="#a8a8a8", selection="#8f9aa6",
    selection_text="#000000",
    priority={"critical": "#c8102e", "high": "#c75b00", "medium": "#8a6d00", "low": "#2f5f8a"},
    priority_tint={"critical": "#f2c4c4", "high": "#f3d6ba", "medium": "#ece2b3", "low": "#cfdae6"},
    watermark="#b00020",
)
DARK = Palette(
    name="dark", window="#232323", base="#1b1b1b", alt_base="#202020", panel="#2c2c2c",
    text="#c9c9c9", dim_text="#8a8a8a", border="#444444", selection="#4a5560",
    selection_text="#ffffff",
    priority={"critical": "#ff5a5a", "high": "#ff9a3c", "medium": "#e0c040", "low": "#7fa8d0"},
    priority_tint={"critical": "#4a1616", "high": "#553514", "medium": "#4a4218", "low": "#24364a"},
    watermark="#ff4d4d",
)
PALETTES = {"light": LIGHT, "dark": DARK}
_CURRENT: list[Palette] = [LIGHT]      # the palette apply_theme last applied


def current() -> Palette:
    """The palette in use (views built later, charts and dialogs, follow the theme with it)."""
    return _CURRENT[0]


def style_plot(widget, p: Palette | None = None, title: str | None = None) -> None:
    """A pyqtgraph PlotWidget in the palette: background, axes, their text, the title."""
    import pyqtgraph as pg
    p = p or current()
    widget.setBackground(p.base)
    item = widget.getPlotItem()
    for ax in ("left", "bottom", "right", "top"):
        axis = item.getAxis(ax)
        axis.setPen(pg.mkPen(p.dim_text))
        axis.setTextPen(pg.mkPen(p.text))
        if axis.label is not None and axis.labelText:
            axis.setLabel(axis.labelText, units=axis.labelUnits, color=p.text)
    if title is not None:
        widget.setTitle(title, color=p.text, size="12pt")


def palette(name: str) -> Palette:
    return PALETTES.get(name, LIGHT)


def _count_rules(p: Palette) -> str:
    """A priority's count turns to its colour (and bold) while alerts of it wait unacknowledged."""
    return "\n".join(
        f'QLabel[priorityCount="{pr}"][waiting="1"] {{ color: {p.priority[pr]}; font-weight: bold;'
        f' border: 2px solid {p.priority[pr]}; }}' for pr in PRIORITY_SHAPE)


def stylesheet(p: Palette, queue_font_pt: int = 15) -> str:
    return f"""
QWidget {{ background: {p.window}; color: {p.text}; }}
QMainWindow::separator {{ background: {p.border}; width: 4px; height: 4px; }}
QDockWidget {{ font-weight: bold; }}
QDockWidget::title {{ background: {p.panel}; padding: 4px 8px; border-bottom: 1px solid {p.border}; }}
QTableView, QListView, QTreeView, QLineEdit, QPlainTextEdit, QTextEdit, QComboBox, QSpinBox,
QDateTimeEdit {{ background: {p.base}; border: 1px solid {p.border};
  selection-background-color: {p.selection}; selection-color: {p.selection_text}; }}
QTableView {{ alternate-background-color: {p.alt_base}; gridline-color: {p.border}; }}
QTableView#alertTable {{ font-size: {queue_font_pt}pt; }}
QHeaderView::section {{ background: {p.panel}; color: {p.text}; padding: 4px;
  border: 0; border-right: 1px solid {p.border}; border-bottom: 1px solid {p.border};
  font-weight: bold; }}
QPushButton, QToolButton {{ background: {p.panel}; border: 1px solid {p.border};
  padding: 4px 10px; border-radius: 2px; }}
QPushButton:hover, QToolButton:hover {{ border-color: {p.text}; }}
QPushButton:focus, QToolButton:focus, QTableView:focus, QLineEdit:focus, QComboBox:focus {{
  border: 2px solid {p.text}; }}
QPushButton:disabled {{ color: {p.dim_text}; }}
QMenuBar, QMenu, QStatusBar, QToolBar {{ background: {p.panel}; }}
QMenu::item:selected, QMenuBar::item:selected {{ background: {p.selection}; color: {p.selection_text}; }}
QStatusBar QLabel {{ padding: 0 8px; background: {p.panel}; }}
QLabel#dim {{ color: {p.dim_text}; }}
QLabel#floodBanner {{ background: {p.priority_tint['critical']}; color: {p.text};
  border: 2px solid {p.priority['critical']}; font-size: 12pt; font-weight: bold; padding: 1px 6px; }}
QLabel#trainingBanner {{ background: {p.window}; color: {p.watermark};
  border: 2px dashed {p.watermark}; font-size: 11pt; font-weight: bold; padding: 1px 6px; }}
QLabel#watermark {{ color: {p.watermark}; background: {p.window}; border: 2px solid {p.watermark};
  font-size: 11pt; font-weight: bold; padding: 0 8px; }}
QLabel#shelvedHeader {{ font-weight: bold; }}
QToolButton#shelvedFold {{ border: 0; background: transparent; padding: 0 2px; }}
QLabel#feedLost {{ color: {p.priority['critical']}; font-weight: bold; }}
QLabel[priorityCount] {{ font-size: 12pt; padding: 1px 8px; border: 1px solid {p.border};
  background: {p.panel}; color: {p.dim_text}; }}
{_count_rules(p)}
QStatusBar QLabel[big="true"] {{ font-size: 15pt; font-weight: bold; padding: 0 10px; }}
QStatusBar QLabel[stale="true"] {{ color: {p.priority['critical']}; font-style: italic; }}
QGroupBox {{ border: 1px solid {p.border}; margin-top: 14px; font-weight: bold; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; }}
"""


def apply_theme(app: QApplication, name: str, queue_font_pt: int = 15) -> Palette:
    """Apply a palette and its stylesheet to the whole application. Applying the theme that is
    already applied changes nothing: a new application-wide stylesheet restyles every widget of
    the process, which is slow with many windows open (a trainer's run builds a console of its
    own) and has crashed Qt while other windows were being torn down."""
    p = palette(name)
    sheet = stylesheet(p, queue_font_pt)
    if _CURRENT[0] == p and app.styleSheet() == sheet:
        return p
    qp = QPalette()
    for role, colour in ((QPalette.ColorRole.Window, p.window), (QPalette.ColorRole.Base, p.base),
                         (QPalette.ColorRole.AlternateBase, p.alt_base), (QPalette.ColorRole.Text, p.text),
                         (QPalette.ColorRole.WindowText, p.text), (QPalette.ColorRole.Button, p.panel),
                         (QPalette.ColorRole.ButtonText, p.text), (QPalette.ColorRole.Highlight, p.selection),
                         (QPalette.ColorRole.HighlightedText, p.selection_text),
                         (QPalette.ColorRole.PlaceholderText, p.dim_text)):
        qp.setColor(role, QColor(colour))
    app.setPalette(qp)
    font = QFont(app.font())
    font.setPointSize(11)
    app.setFont(font)
    app.setStyleSheet(sheet)
    _CURRENT[0] = p
    return p
