"""Each role signs in for real (typed, with real key presses, in the real dialog) and reaches its
views on the real console window: the shortcut or the button a person would use."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.fixtures_roles import PASSWORD, ROLE_USERS

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def _leave_handover(c, note="Phone probation about OFF-1 at 08:00"):
    """An operator signed out earlier and left a handover (the handover exists in the store)."""
    from ui.session.signin import handover_summary
    op = c.accounts.sign_in("op.jones", PASSWORD)
    c.accounts.sign_out(op, handover_summary(c.rig.store, note))


def _shortcut(window, digit):
    QTest.keyClick(window, getattr(Qt.Key, f"Key_{digit}"), CTRL_SHIFT)


def test_operator_signs_in_reads_the_handover_and_handles_the_queue(qtbot, shift_console, type_sign_in):
    c = shift_console()
    _leave_handover(c)
    dlg = type_sign_in(c.accounts, "op.jones")
    assert "Phone probation about OFF-1" in dlg.handover.toPlainText()
    assert dlg.result() == dlg.DialogCode.Accepted and dlg.session.role == "operator"
    c.install(dlg.session)
    w = c.window
    assert w.queue_dock.isVisible() and w.act_ack.isEnabled() and w.map.isVisible()
    _shortcut(w, 4)
    assert w.role_views.views["playback"].isVisible()
    w.role_views.shutdown()


def test_supervisor_signs_in_and_opens_review_kpi_and_crime(qtbot, shift_console, type_sign_in):
    c = shift_console()
    _leave_handover(c)
    dlg = type_sign_in(c.accounts, "sup.khan")
    assert dlg.session.role == "supervisor" and "Handover from op.jones" in dlg.handover.toPlainText()
    c.install(dlg.session)
    w = c.window
    for digit, name in ((1, "review"), (2, "kpi"), (3, "crime")):
        _shortcut(w, digit)
        assert w.role_views.views[name].isVisible(), name
    assert w.queue_dock.isVisible() and w.act_ack.isEnabled()
    w.role_views.shutdown()


@pytest.mark.parametrize("training", [False, True], ids=["live", "training"])
def test_police_analyst_signs_in_without_handover_or_live_map(qtbot, shift_console, type_sign_in, training):
    c = shift_console()
    _leave_handover(c)
    dlg = type_sign_in(c.accounts, "pc.smith", training=training)
    # no operators' handover for the analyst, and the dialog closed signed in (no refusal)
    assert dlg.session is not None and dlg.session.role == "police_analyst"
    assert dlg.pages.currentIndex() != 2 and dlg.result() == dlg.DialogCode.Accepted
    c.install(dlg.session)
    w = c.window
    qtbot.wait(50)
    assert not w.map.isVisible() and not w.caseload_dock.isVisible() and not w.details_dock.isVisible()
    assert not w.queue_dock.isVisible() and not w.act_ack.isEnabled()
    home = w.role_views._home
    assert home.isVisible()
    # the window is there and usable: the analyst clicks the home page's button
    QTest.mouseClick(w.role_views.home_buttons["crime"], Qt.MouseButton.LeftButton)
    crime = w.role_views.views["crime"]
    assert crime.isVisible() and crime.run_button.isEnabled()
    # Ctrl+2 (caseload) does not bring the caseload back
    QTest.keyClick(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert not w.caseload_dock.isVisible()
    w.role_views.shutdown()


def test_police_analyst_plays_back_only_the_people_a_query_returned(qtbot, shift_console, type_sign_in):
    from tests.fixtures_ui import INSIDE
    c = shift_console()
    rig = c.rig
    qtbot.waitUntil(lambda: rig.store.reader().execute("SELECT count(*) FROM fixes WHERE device='TAG-1'")
                    .fetchone()[0] >= 12, timeout=30_000)
    rig.store.flush()
    dlg = type_sign_in(c.accounts, "pc.smith")
    c.install(dlg.session)
    w = c.window
    _shortcut(w, 4)                         # playback before any query: nobody to play back
    playback = w.role_views.views["playback"]
    assert playback.who.count() == 0 and not playback.load_button.isEnabled()
    _shortcut(w, 3)
    crime = w.role_views.views["crime"]
    for box, value in ((crime.lat, INSIDE[0]), (crime.lon, INSIDE[1])):
        box.lineEdit().selectAll()
        QTest.keyClicks(box.lineEdit(), f"{value:.6f}")
    t1 = rig.store.reader().execute("SELECT max(t) FROM fixes").fetchone()[0]
    crime.set_window(t1 - 3600, t1 + 60)
    QTest.keyClicks(crime.ref, "MET-2026-0042")
    QTest.keyClicks(crime.reason, "Burglary near the victim's street")
    with qtbot.waitSignal(crime.answered, timeout=30_000):
        QTest.mouseClick(crime.run_button, Qt.MouseButton.LeftButton)
    results = [crime.model.result(i) for i in range(crime.model.rowCount())]
    row = next(i for i, r in enumerate(results) if r["offender"] == "OFF-1")
    assert crime.model.result(row)["verdict"] == "present"
    button = w.role_views.play_selected
    assert not button.isEnabled()
    rect = crime.table.visualRect(crime.model.index(row, 0))
    QTest.mouseClick(crime.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert button.isEnabled()
    with qtbot.waitSignal(playback.loaded, timeout=10_000) as loaded:
        QTest.mouseClick(button, Qt.MouseButton.LeftButton)
    assert loaded.args[0] > 0 and playback.isVisible()
    # only the people the query placed at or near the scene
    assert [playback.who.itemData(i) for i in range(playback.who.count())] == ["OFF-1"]
    assert playback.load("OFF-2") == 0 and "only the people" in playback.position.text()
    audit = [r for r in rig.store.audit_log() if r["action"] == "trail_playback"]
    assert audit and audit[-1]["detail"]["who"] == "OFF-1" and audit[-1]["who"] == "pc.smith"
    w.role_views.shutdown()


def test_police_analyst_sees_the_live_map_when_the_centre_grants_it(qtbot, shift_console, type_sign_in):
    from ui.settings import Settings
    settings = Settings()
    assert settings.get("privacy/analyst_live_map") is False        # the default: off
    settings.set("privacy/analyst_live_map", True)
    c = shift_console(settings=settings)
    dlg = type_sign_in(c.accounts, "pc.smith")
    c.install(dlg.session)
    w = c.window
    qtbot.wait(50)
    assert w.map.isVisible() and w.caseload_dock.isVisible()
    assert not w.queue_dock.isVisible() and not w.act_ack.isEnabled()      # still no alert handling
    w.role_views.shutdown()


def test_trainer_is_refused_in_live_mode_in_the_dialog_and_signs_in_to_training(qtbot, shift_console,
                                                                               type_sign_in):
    c = shift_console()
    dlg = type_sign_in(c.accounts, "tr.lee", training=False)
    assert dlg.session is None and dlg.isVisible()                 # still open, for the next person
    assert "Trainer may not use the live console" in dlg.error.text()
    dlg.close()
    dlg = type_sign_in(c.accounts, "tr.lee", training=True)
    assert dlg.session.role == "trainer"
    c.install(dlg.session)
    w = c.window
    assert w.queue_dock.isVisible()
    _shortcut(w, 5)
    assert w.role_views.views["trainer"].isVisible()
    w.role_views.shutdown()


def test_administrator_signs_in_and_reaches_accounts(qtbot, shift_console, type_sign_in, on_modal):
    c = shift_console()
    _leave_handover(c)
    dlg = type_sign_in(c.accounts, ROLE_USERS["administrator"])
    assert dlg.session.role == "administrator" and dlg.pages.currentIndex() != 2   # no handover
    c.install(dlg.session)
    w = c.window
    assert not w.queue_dock.isVisible() and w.map.isVisible()
    seen = on_modal(lambda d: (d.objectName(), "pc.smith" in d.listing.toPlainText(), d.close()))
    w.role_views.actions["accounts"].trigger()
    assert seen and seen[0][:2] == ("accountsDialog", True)
    w.role_views.shutdown()


def test_first_run_dialog_accepts_enter(qtbot, tmp_path, own):
    from localdb.accounts import Accounts
    from localdb.store import Store
    from PySide6.QtWidgets import QApplication
    from tests.fixtures_shift import press, type_into_focus
    from ui.session.signin import SignInDialog
    store = Store(tmp_path / "fresh.sqlite")
    try:
        accounts = Accounts(store)
        dlg = own(SignInDialog(accounts, training=False))
        dlg.show()
        qtbot.waitExposed(dlg)
        dlg.activateWindow()
        qtbot.waitUntil(lambda: QApplication.activeWindow() is dlg, timeout=5000)
        assert dlg.first_run and QApplication.focusWidget() is dlg.admin_user
        type_into_focus("admin.ann")
        press(Qt.Key.Key_Enter)                       # the keypad's Enter, as well as Return
        type_into_focus(PASSWORD)
        press()
        type_into_focus(PASSWORD + "typo")
        press()
        assert "differ" in dlg.error.text() and QApplication.focusWidget() is dlg.admin_pw
        type_into_focus(PASSWORD)
        press()
        type_into_focus(PASSWORD)
        press(Qt.Key.Key_Tab)                          # Tab to the button, then Enter on it
        assert QApplication.focusWidget() is dlg.create_button
        press(Qt.Key.Key_Enter)
        assert dlg.session is not None and dlg.session.role == "administrator"
        assert dlg.result() == dlg.DialogCode.Accepted
    finally:
        store.close()
