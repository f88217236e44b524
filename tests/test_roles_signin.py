"""Signing in: the first administrator, lockout seen in the dialog, the idle lock, and the
handover summary left at sign-out and shown to the next person (real store)."""
from __future__ import annotations

import pytest

from localdb.accounts import Accounts, MAX_FAILURES
from localdb.store import Store
from tests.fixtures_roles import PASSWORD
from ui.session.signin import IdleLock, SignInDialog, SignOutDialog, handover_summary

# the offscreen platform cannot size a shown top-level dialog; not our code
offscreen_dialog = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def fresh_accounts(tmp_path):
    store = Store(tmp_path / "fresh.sqlite")
    yield Accounts(store)
    store.close()


def test_first_run_creates_administrator_then_signs_in(qtbot, fresh_accounts, own):
    dlg = own(SignInDialog(fresh_accounts))
    assert dlg.first_run
    dlg.admin_user.setText("admin.ann")
    dlg.admin_pw.setText(PASSWORD)
    dlg.admin_pw2.setText(PASSWORD + "x")
    dlg.create_button.click()
    assert "differ" in dlg.error.text() and dlg.session is None
    dlg.admin_pw.setText("short")
    dlg.admin_pw2.setText("short")
    dlg.create_button.click()
    assert "at least 10" in dlg.error.text()
    dlg.admin_pw.setText(PASSWORD)
    dlg.admin_pw2.setText(PASSWORD)
    with qtbot.waitSignal(dlg.signedIn, timeout=5000):
        dlg.create_button.click()
    assert dlg.session.role == "administrator" and dlg.result() == dlg.DialogCode.Accepted
    second = own(SignInDialog(fresh_accounts))
    assert not second.first_run
    second.user.setText("admin.ann")
    second.password.setText(PASSWORD)
    second.sign_in_button.click()
    assert second.session.username == "admin.ann"


def test_dialog_locks_account_and_locked_stays_locked(qtbot, handled_store, own):
    dlg = own(SignInDialog(handled_store.accounts))
    for _ in range(MAX_FAILURES):
        dlg.user.setText("pc.smith")
        dlg.password.setText("not the password")
        dlg.sign_in_button.click()
    assert "locked" in dlg.error.text()
    dlg.user.setText("pc.smith")
    dlg.password.setText(PASSWORD)
    dlg.sign_in_button.click()
    assert dlg.session is None and "locked" in dlg.error.text()
    assert dlg.password.text() == ""            # never left in the field


@offscreen_dialog
def test_idle_lock_and_unlock(qtbot, handled_store, own):
    session = handled_store.sessions["operator"]
    lock = IdleLock(handled_store.accounts, session, idle_s=0.05)
    with qtbot.waitSignal(lock.locked, timeout=5000):
        pass
    assert lock.is_locked
    own(lock.screen)
    lock.screen.password.setText("wrong password here")
    assert not lock.screen.try_unlock() and lock.is_locked
    lock.screen.password.setText(PASSWORD)
    with qtbot.waitSignal(lock.unlocked, timeout=5000):
        lock.screen.unlock_button.click()
    assert not lock.is_locked
    lock.stop()
    actions = [r["action"] for r in handled_store.store.audit_log()]
    assert "screen_locked" in actions


@offscreen_dialog
def test_idle_lock_lockout_keeps_the_console_locked_not_signed_out(qtbot, handled_store, own):
    """Five wrong passwords on the lock screen lock the account, but the lock stays: nobody is
    signed out mid-shift, and someone else can sign in over it."""
    lock = IdleLock(handled_store.accounts, handled_store.sessions["operator"], idle_s=3600)
    lock.lock_now()
    own(lock.screen)
    with qtbot.waitSignal(lock.accountLocked, timeout=5000) as b:
        for _ in range(MAX_FAILURES):
            lock.screen.password.setText("wrong password here")
            lock.screen.try_unlock()
    assert "locked" in b.args[0]
    assert lock.is_locked and lock.screen.isVisible()
    assert "another person can sign in" in lock.screen.error.text()
    lock.stop()


def test_handover_at_sign_out_shown_to_next(qtbot, handled_store, own):
    h = handover_summary(handled_store.store)
    n_open = sum(1 for a in handled_store.store.alerts() if a["handling"] not in ("closed", "shelved"))
    assert len(h["open"]) == n_open and h["shelved"] == []
    out = own(SignOutDialog(handled_store.accounts, handled_store.store, handled_store.sessions["operator"]))
    assert f"{n_open} open alerts" in out.summary.toPlainText()
    out.notes.setPlainText("OFF-13 strap tamper still unanswered: phone probation at 08:00")
    out.sign_out()
    nxt = own(SignInDialog(handled_store.accounts))
    nxt.user.setText("sup.khan")
    nxt.password.setText(PASSWORD)
    nxt.sign_in_button.click()
    assert nxt.pages.currentIndex() == 2
    text = nxt.handover.toPlainText()
    assert "Handover from op.jones" in text and "phone probation at 08:00" in text
    nxt.continue_button.click()
    assert nxt.result() == nxt.DialogCode.Accepted


def test_sign_in_for_console_non_interactive(tmp_path):
    from ui.roles import RoleRefused
    from ui.session.signin import sign_in_for_console
    db = tmp_path / "live" / "monitor.sqlite"
    db.parent.mkdir()
    store = Store(db)
    acc = Accounts(store)
    admin = acc.create_first_admin("admin.ann", PASSWORD)
    acc.create(admin, "tr.lee", "trainer", PASSWORD)
    acc.create(admin, "op.jones", "operator", PASSWORD)
    store.close()
    pw = tmp_path / "pw.txt"
    pw.write_text(PASSWORD + "\n", encoding="utf-8")
    session, accounts = sign_in_for_console(db, training=False, user="op.jones", password_file=str(pw))
    assert session.role == "operator"
    accounts.store.close()
    with pytest.raises(RoleRefused, match="live console"):
        sign_in_for_console(db, training=False, user="tr.lee", password_file=str(pw))
    # training signs in against a training store's own accounts, never the live store's
    from localdb.schema import StoreModeError
    with pytest.raises(StoreModeError, match="is a live store"):
        sign_in_for_console(db, training=True, user="tr.lee", password_file=str(pw))
    tdb = tmp_path / "training.sqlite"
    store = Store(tdb, mode="training")
    acc = Accounts(store)
    admin = acc.create_first_admin("admin.ann", PASSWORD)
    acc.create(admin, "tr.lee", "trainer", PASSWORD)
    store.close()
    session, accounts = sign_in_for_console(tdb, training=True, user="tr.lee", password_file=str(pw))
    assert session.role == "trainer"
    accounts.store.close()
    with pytest.raises(StoreModeError, match="is a training store"):
        sign_in_for_console(tdb, training=False, user="op.jones", password_file=str(pw))


def test_idle_lock_counts_actions_as_input(qtbot, handled_store, own):
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QWidget
    window = own(QWidget())
    act = QAction("Acknowledge", window)
    window.addAction(act)
    lock = IdleLock(handled_store.accounts, handled_store.sessions["operator"], idle_s=3600)
    lock.watch(window)
    lock.timer.stop()
    act.trigger()
    assert lock.timer.isActive() and not lock.is_locked     # the idle time starts again
    lock.stop()
