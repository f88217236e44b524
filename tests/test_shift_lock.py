"""The lock is a lock and a change of person never stops the console: Ctrl+L and the idle timer
lock every time; Escape and a close do not dismiss it; every wrong password counts once; a
lockout keeps the console locked and monitoring (alerts arrive and sound behind it); someone
else signs in over it; sign-out leaves the console monitoring for the next person; quitting
with unacknowledged criticals asks (default No); each person keeps their own dock layout."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QMessageBox

from localdb.accounts import MAX_FAILURES
from tests.fixtures_roles import PASSWORD
from tests.fixtures_shift import press, type_into_focus

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")
CTRL = Qt.KeyboardModifier.ControlModifier


def _failures(accounts, user="op.jones"):
    return accounts.get(user)["failures"]


def _lock_screen(qtbot, c):
    lock = c.window.role_views.idle_lock
    qtbot.waitUntil(lambda: lock.screen is not None and lock.screen.isVisible(), timeout=5000)
    screen = lock.screen
    screen.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is screen, timeout=5000)
    return screen


def test_ctrl_l_locks_every_time_and_escape_or_close_does_not_dismiss(qtbot, shift_console):
    c = shift_console()
    op = c.accounts.sign_in("op.jones", PASSWORD)
    c.install(op, idle_s=0)
    for round_ in range(3):                                   # again and again in one session
        QTest.keyClick(c.window, Qt.Key.Key_L, CTRL)
        screen = _lock_screen(qtbot, c)
        assert screen.isModal() and screen.windowModality() == Qt.WindowModality.ApplicationModal
        assert screen.isFullScreen()                          # the whole screen, opaque
        assert QApplication.focusWidget() is screen.password
        QTest.keyClick(screen.password, Qt.Key.Key_Escape)
        assert screen.isVisible()
        screen.close()                                        # what × and Alt+F4 ask for
        assert screen.isVisible() and c.window.role_views.is_locked
        assert not c.window.may_quit()                       # nor does the console quit behind it
        failures = _failures(c.accounts)
        type_into_focus("not the password")
        press()
        assert _failures(c.accounts) == failures + 1          # one Return, one attempt
        assert screen.isVisible()
        type_into_focus(PASSWORD)
        press()
        qtbot.waitUntil(lambda: not c.window.role_views.is_locked, timeout=5000)
        assert not screen.isVisible()
        c.activate()
    locks = [r for r in c.rig.store.audit_log() if r["action"] == "screen_locked"]
    assert len(locks) == 3
    c.window.role_views.shutdown()


def test_the_idle_timer_locks_again_after_each_unlock(qtbot, shift_console):
    c = shift_console()
    op = c.accounts.sign_in("op.jones", PASSWORD)
    c.install(op, idle_s=0.3)
    for _ in range(2):
        screen = _lock_screen(qtbot, c)
        type_into_focus(PASSWORD)
        press()
        qtbot.waitUntil(lambda: not c.window.role_views.is_locked, timeout=5000)
        assert not screen.isVisible()
    _lock_screen(qtbot, c)
    c.window.role_views.shutdown()


def test_a_lockout_keeps_monitoring_and_someone_else_signs_in_over_the_lock(qtbot, shift_console):
    c = shift_console(speed=60)
    w, rig = c.window, c.rig
    op = c.accounts.sign_in("op.jones", PASSWORD)
    c.install(op, idle_s=0)
    QTest.keyClick(w, Qt.Key.Key_L, CTRL)
    screen = _lock_screen(qtbot, c)
    for _ in range(MAX_FAILURES):
        type_into_focus("not the password")
        press()
    assert c.accounts.get("op.jones")["locked"] and screen.isVisible()
    assert "another person can sign in" in screen.error.text()
    assert QApplication.focusWidget() is screen.other_user
    # behind the lock the console keeps monitoring: the breach arrives and sounds
    with qtbot.waitSignal(rig.controller.sounded, timeout=30_000):
        pass
    assert rig.alerts("exclusion_entered") and screen.isVisible()
    # the supervisor takes over, typing at the lock screen
    type_into_focus("sup.khan")
    press()
    type_into_focus(PASSWORD)
    press()
    qtbot.waitUntil(lambda: w.role_views.session is not None and w.role_views.session.username == "sup.khan",
                    timeout=5000)
    assert not screen.isVisible() and not w.role_views.is_locked
    assert w.operator == "sup.khan" and rig.controller.operator == "sup.khan"
    assert "review" in w.role_views.actions
    out = [r for r in rig.store.audit_log() if r["action"] == "sign_out"]
    assert out and out[-1]["who"] == "op.jones" and out[-1]["detail"]["handover"]["automatic"]
    # the supervisor reads the automatic handover: the open breach
    dlg = w.role_views.handover_dialog
    qtbot.waitUntil(dlg.isVisible, timeout=5000)
    assert "Handover from op.jones" in dlg.text.toPlainText() and "Exclusion" in dlg.text.toPlainText()
    dlg.accept()
    w.role_views.shutdown()


def test_sign_out_leaves_the_console_monitoring_for_the_next_person(qtbot, shift_console, on_modal):
    c = shift_console(speed=60)
    w, rig = c.window, c.rig
    op = c.accounts.sign_in("op.jones", PASSWORD)
    c.install(op, idle_s=0)

    def save_and_sign_out(dlg):
        QTest.keyClicks(dlg.notes, "OFF-1 breach: police informed")
        ok = dlg.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        QTest.mouseClick(ok, Qt.MouseButton.LeftButton)
        return dlg.objectName()
    seen = on_modal(save_and_sign_out)
    w.role_views.actions["sign_out"].trigger()
    assert seen == ["signOutDialog"]
    cover = w.role_views.cover
    assert cover is not None and cover.isVisible() and w.isVisible()      # not quit
    assert w.role_views.session is None and not w.may_quit()              # nobody may quit it now
    with qtbot.waitSignal(rig.controller.sounded, timeout=30_000):        # still monitoring
        pass
    cover.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is cover, timeout=5000)
    assert QApplication.focusWidget() is cover.other_user
    type_into_focus("sup.khan")
    press()
    type_into_focus(PASSWORD)
    press()
    qtbot.waitUntil(lambda: w.role_views.session is not None, timeout=5000)
    assert w.role_views.session.username == "sup.khan" and not cover.isVisible()
    dlg = w.role_views.handover_dialog
    qtbot.waitUntil(dlg.isVisible, timeout=5000)
    assert "OFF-1 breach: police informed" in dlg.text.toPlainText()
    dlg.accept()
    w.role_views.shutdown()


def test_quitting_with_unacknowledged_criticals_asks_and_defaults_to_no(qtbot, shift_console, on_modal):
    c = shift_console(speed=60)
    w, rig = c.window, c.rig
    c.install(c.accounts.sign_in("op.jones", PASSWORD), idle_s=0)
    qtbot.waitUntil(lambda: w.unacknowledged_criticals() > 0, timeout=30_000)
    c.activate()

    def answer(key):
        def act(box):
            assert isinstance(box, QMessageBox)
            assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
            text = box.text()
            if key == "yes":
                QTest.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
            else:
                QTest.keyClick(box, key)       # Return takes the default, No
            return text
        return act
    seen = on_modal(answer(Qt.Key.Key_Return))
    QTest.keyClick(w, Qt.Key.Key_Q, CTRL)
    assert seen and "critical alert is not acknowledged" in seen[0]
    assert w.isVisible()
    c.activate()
    seen = on_modal(answer("yes"))
    QTest.keyClick(w, Qt.Key.Key_Q, CTRL)
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=5000)
    assert "critical alert is not acknowledged" in seen[0]


def test_each_person_keeps_their_own_dock_layout(qtbot, shift_console):
    c = shift_console()
    w = c.window
    rv_admin = c.accounts.sign_in("admin.ann", PASSWORD)
    c.install(rv_admin, idle_s=0)
    assert not w.queue_dock.isVisible()                     # an administrator has no queue
    w.caseload_dock.close()                                 # and closes the caseload too
    rv = w.role_views
    rv.end()
    rv.begin(c.accounts.sign_in("op.jones", PASSWORD))      # the next person: their own layout
    assert w.queue_dock.isVisible() and w.caseload_dock.isVisible()
    w.details_dock.close()                                  # the operator's own choice
    rv.end()
    rv.begin(c.accounts.sign_in("admin.ann", PASSWORD))
    assert not w.caseload_dock.isVisible() and not w.queue_dock.isVisible()
    rv.end()
    rv.begin(c.accounts.sign_in("op.jones", PASSWORD))
    assert not w.details_dock.isVisible() and w.queue_dock.isVisible()
    rv.shutdown()
