"""First start: the console fills the available screen (maximised) unless a saved geometry
exists and fits the screen it would open on; a saved geometry larger than the screen is not used."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from tests.fixtures_ui import breach_script
from ui.settings import Settings, window_state

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse")


@pytest.fixture
def make_window(qtbot, ui_rig):
    from ui.console.mainwindow import MainWindow
    rig = ui_rig(breach_script(), start=False)

    def make():
        w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                       settings=Settings(), map_widget=QWidget(), clock=rig.feed.now, operator="op.jones")
        qtbot.addWidget(w)
        return w
    return make


def test_first_start_fills_the_screen(qtbot, make_window):
    w = make_window()
    assert w.start_maximised
    w.showMaximized()
    qtbot.waitUntil(w.isMaximized, timeout=5000)


def test_a_saved_geometry_that_fits_is_used(qtbot, make_window):
    avail = QGuiApplication.primaryScreen().availableGeometry()
    w = make_window()
    w.setGeometry(QRect(avail.x() + 10, avail.y() + 10, avail.width() // 2, avail.height() // 2))
    w.show()
    qtbot.waitExposed(w)
    size = w.size()
    w.close()
    again = make_window()
    assert not again.start_maximised
    assert again.size() == size


def test_a_saved_geometry_larger_than_the_screen_is_not_used(qtbot, make_window):
    avail = QGuiApplication.primaryScreen().availableGeometry()
    w = make_window()
    w.show()
    w.close()                                   # a real saved layout ...
    qs = window_state()                         # ... from a screen twice the size of this one
    qs.setValue("window/normal", QRect(0, 0, avail.width() * 2, avail.height() * 2))
    qs.sync()
    again = make_window()
    assert again.start_maximised
