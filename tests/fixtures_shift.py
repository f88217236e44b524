"""Fixtures for the shift-continuity tests: the real console window (real engine thread, real
SQLite store; the map a plain widget) with an account for every role, and people who type:
``type_sign_in`` signs in through the real dialog with real key presses, ``on_modal`` acts on the
next modal dialog (``exec()`` blocks the test until someone answers it)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from tests.fixtures_roles import PASSWORD, ROLE_USERS


class ShiftConsole:
    def __init__(self, window, rig, accounts, qtbot):
        self.window, self.rig, self.accounts, self.qtbot = window, rig, accounts, qtbot

    def install(self, session, **kw):
        from ui.session.wiring import install_role_views
        kw.setdefault("idle_s", 0)
        actions = install_role_views(self.window, self.rig.store, self.rig.worker, None, session,
                                     accounts=self.accounts, **kw)
        self.activate()
        return actions

    def activate(self):
        """The console is the active window again (its shortcuts need it), as after a dialog."""
        from PySide6.QtWidgets import QApplication
        self.window.activateWindow()
        self.qtbot.waitUntil(lambda: QApplication.activeWindow() is self.window, timeout=5000)


@pytest.fixture
def shift_console(ui_rig, qtbot, own):
    """``shift_console(settings=None)``: the console, its engine running the breach script (one
    critical exclusion alert after about two simulated minutes)."""
    from localdb.accounts import Accounts
    from tests.fixtures_ui import breach_script
    from ui.console.mainwindow import MainWindow
    from ui.settings import Settings

    def make(settings=None, speed=120):
        rig = ui_rig(breach_script(), start=False, speed=speed)
        rig.store.record_caseload(rig.caseload, "system")      # as ui.app.Console does at start
        w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                       settings=settings or Settings(), map_widget=QWidget(), clock=rig.feed.now,
                       operator="op.jones")
        own(w)
        accounts = Accounts(rig.store)
        admin = accounts.create_first_admin(ROLE_USERS["administrator"], PASSWORD)
        for role, user in ROLE_USERS.items():
            if role != "administrator":
                accounts.create(admin, user, role, PASSWORD)
        rig.start(feed_controller=False)
        w.show()
        qtbot.waitExposed(w)
        return ShiftConsole(w, rig, accounts, qtbot)
    return make


def type_into_focus(text: str) -> None:
    QTest.keyClicks(QApplication.focusWidget(), text)


def press(key=Qt.Key.Key_Return, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    QTest.keyClick(QApplication.focusWidget(), key, modifier)


@pytest.fixture
def type_sign_in(qtbot, own):
    """``type_sign_in(accounts, user, training=False)``: the sign-in dialog, typed into with real
    keys (user name, Return, password, Return, and Return on the handover's button if shown).
    Returns the dialog."""
    from ui.session.signin import SignInDialog

    def sign_in(accounts, user, password=PASSWORD, training=False):
        dlg = own(SignInDialog(accounts, training=training))
        dlg.show()
        qtbot.waitExposed(dlg)
        dlg.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is dlg, timeout=5000)
        assert QApplication.focusWidget() is dlg.user       # typing starts at once
        type_into_focus(user)
        press()
        assert QApplication.focusWidget() is dlg.password
        type_into_focus(password)
        press()
        if dlg.pages.currentIndex() == 2:                   # the handover: its button has the focus
            dlg.activateWindow()      # (the offscreen platform deactivates it as the page changes)
            qtbot.waitUntil(lambda: QApplication.activeWindow() is dlg, timeout=5000)
            assert QApplication.focusWidget() is dlg.continue_button
            press()
        return dlg
    return sign_in


@pytest.fixture
def on_modal(qtbot):
    """``on_modal(act)``: when the next modal dialog is open, ``act(dialog)`` runs (its result
    kept in the returned list)."""
    def arm(act, seen=None):
        seen = [] if seen is None else seen

        def poll():
            w = QApplication.activeModalWidget()
            if w is None or not w.isVisible():
                QTimer.singleShot(20, poll)
                return
            seen.append(act(w))
        QTimer.singleShot(20, poll)
        return seen
    return arm
