"""The night shift's theme reaches the views opened from the console: the KPI, crime-mapping and
playback charts are dark (background, axes and their text from the dark palette), the curves
and dots stay visible on it, and the KPI count axes tick on whole numbers only."""
from __future__ import annotations

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from localdb.accounts import Session
from localdb.store import Store
from ui.theme import DARK, LIGHT, apply_theme

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints")


@pytest.fixture
def dark(qapp):
    apply_theme(QApplication.instance(), "dark")
    yield DARK
    apply_theme(QApplication.instance(), "light")


def background(plot_widget) -> str:
    return plot_widget.backgroundBrush().color().name()


def axis_text(plot_widget, side="left") -> str:
    return plot_widget.getPlotItem().getAxis(side).textPen().color().name()


def test_charts_follow_the_dark_theme(qtbot, tmp_path, dark):
    from ui.views.crime import CrimePanel
    from ui.views.kpi import KpiDashboard
    from ui.views.playback import PlaybackPanel, accuracy_shade
    store = Store(tmp_path / "s.sqlite", clock=lambda: 1_795_000_000.0)
    sup = Session("sup.lee", "supervisor", 0.0)
    try:
        kpi = KpiDashboard(store, sup)
        crime = CrimePanel(store, sup, embed_map=False)
        play = PlaybackPanel(store, sup, embed_map=False)
        for w in (kpi, crime, play):
            qtbot.addWidget(w)
        for plot in (kpi.rate, kpi.tta, kpi.load, kpi.noisy, crime.chart, play.plan):
            assert background(plot) == QColor(DARK.base).name()
            assert axis_text(plot) == QColor(DARK.text).name() and axis_text(plot, "bottom") == QColor(DARK.text).name()
        # the best fixes are the brightest on the dark plan (not black on black)
        assert QColor(accuracy_shade(5)).lightness() > QColor(DARK.base).lightness() + 120
    finally:
        store.close()


def test_kpi_count_axes_tick_on_whole_numbers(qtbot):
    from ui.views.kpi import CountAxis
    axis = CountAxis("left")
    for lo, hi in ((0, 3), (0, 1.5), (0, 7), (0, 40)):
        for spacing, _offset in axis.tickSpacing(lo, hi, 300):
            assert spacing >= 1 and spacing == int(spacing)
        values = axis.tickValues(lo, hi, 300)
        ticks = [v for _spacing, vs in values for v in vs]
        assert ticks and all(float(v).is_integer() for v in ticks)
    assert axis.tickStrings([0.0, 1.0, 2.0], 1.0, 1.0) == ["0", "1", "2"]


def test_light_theme_keeps_the_day_look(qtbot, tmp_path, qapp):
    from ui.views.kpi import KpiDashboard
    apply_theme(QApplication.instance(), "light")
    store = Store(tmp_path / "s.sqlite", clock=lambda: 1_795_000_000.0)
    try:
        kpi = KpiDashboard(store, Session("sup.lee", "supervisor", 0.0))
        qtbot.addWidget(kpi)
        assert background(kpi.rate) == QColor(LIGHT.base).name()
    finally:
        store.close()
