"""Lockout that expires: five wrong passwords lock an account for ``LOCKOUT_S`` (15 minutes),
after which it opens again (the only administrator too); an administrator can unlock it sooner,
audited with who and when. In the dialogs, Return in the password field is one attempt (the
default button used to fire as well, so every wrong password counted twice)."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from localdb.accounts import LOCKOUT_S, MAX_FAILURES, Accounts, SignInError
from localdb.store import Store
from localdb.verify import verify_store
from tests.fixtures_roles import Clock

PW = "correct horse battery"
T0 = 1_795_000_000.0

offscreen_dialog = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def clocked(tmp_path):
    clock = Clock(T0)
    store = Store(tmp_path / "acc.sqlite", clock=clock)
    accounts = Accounts(store)
    yield accounts, clock
    store.close()


def lock_out(accounts, user):
    for _ in range(MAX_FAILURES):
        with pytest.raises(SignInError):
            accounts.sign_in(user, "wrong password!")
    assert accounts.get(user)["locked"]


def test_lockout_is_a_documented_fifteen_minutes():
    assert LOCKOUT_S == 15 * 60


def test_the_only_administrator_gets_back_after_the_lockout(clocked):
    accounts, clock = clocked
    accounts.create_first_admin("admin.ann", PW)
    lock_out(accounts, "admin.ann")
    assert accounts.get("admin.ann")["locked_until"] == T0 + LOCKOUT_S
    clock.t = T0 + LOCKOUT_S - 61
    with pytest.raises(SignInError, match="for 2 more minutes") as e:
        accounts.sign_in("admin.ann", PW)           # the right password, still locked
    assert e.value.locked
    clock.t = T0 + LOCKOUT_S
    assert not accounts.get("admin.ann")["locked"]
    assert accounts.sign_in("admin.ann", PW).role == "administrator"
    log = accounts.store.audit_log()
    expired = [r for r in log if r["action"] == "lockout_expired"]
    assert len(expired) == 1 and expired[0]["who"] == "admin.ann" and expired[0]["at"] == T0 + LOCKOUT_S
    assert all(r.intact for r in verify_store(accounts.store.path))


def test_after_expiry_the_count_starts_again(clocked):
    accounts, clock = clocked
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "op.jones", "operator", PW)
    lock_out(accounts, "op.jones")
    clock.t = T0 + LOCKOUT_S + 1
    with pytest.raises(SignInError, match="4 attempts left") as e:
        accounts.sign_in("op.jones", "wrong password!")
    assert not e.value.locked
    for _ in range(MAX_FAILURES - 1):                 # four more lock it again
        with pytest.raises(SignInError):
            accounts.sign_in("op.jones", "wrong password!")
    assert accounts.get("op.jones")["locked_until"] == T0 + LOCKOUT_S + 1 + LOCKOUT_S


def test_an_administrator_unlocks_at_once_audited_with_who_and_when(clocked):
    accounts, clock = clocked
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "pc.smith", "police_analyst", PW)
    lock_out(accounts, "pc.smith")
    clock.t = T0 + 60
    accounts.unlock(admin, "pc.smith")
    assert accounts.sign_in("pc.smith", PW).role == "police_analyst"
    rec = [r for r in accounts.store.audit_log() if r["action"] == "account_unlocked"]
    assert len(rec) == 1 and rec[0]["who"] == "admin.ann" and rec[0]["at"] == T0 + 60
    assert rec[0]["detail"] == {"username": "pc.smith", "was_locked": True, "failures": MAX_FAILURES}


@offscreen_dialog
def test_accounts_dialog_shows_the_lock_and_unlocks(qtbot, clocked, own):
    from ui.session.signin import AccountsDialog
    accounts, clock = clocked
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "op.jones", "operator", PW)
    lock_out(accounts, "op.jones")
    dlg = own(AccountsDialog(accounts, admin))
    assert "LOCKED until" in dlg.listing.toPlainText()
    QTest.keyClicks(dlg.user, "op.jones")
    QTest.mouseClick(dlg.unlock_button, Qt.MouseButton.LeftButton)
    assert "op.jones unlocked" in dlg.message.text()
    assert "LOCKED" not in dlg.listing.toPlainText()


def failures(accounts) -> int:
    return sum(1 for r in accounts.store.audit_log() if r["action"] == "sign_in_failed")


@offscreen_dialog
def test_return_in_the_password_field_counts_one_attempt(qtbot, clocked, own):
    from ui.session.signin import SignInDialog
    accounts, _ = clocked
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "op.jones", "operator", PW)
    dlg = own(SignInDialog(accounts))
    dlg.show()
    qtbot.waitExposed(dlg)
    QTest.keyClicks(dlg.user, "op.jones")
    QTest.keyClick(dlg.user, Qt.Key.Key_Return)       # Return in the name field: to the password
    assert failures(accounts) == 0 and dlg.focusWidget() is dlg.password
    QTest.keyClicks(dlg.password, "wrong password!")
    QTest.keyClick(dlg.password, Qt.Key.Key_Return)
    assert failures(accounts) == 1
    assert accounts.get("op.jones")["failures"] == 1
    assert "4 attempts left" in dlg.error.text()
    QTest.keyClicks(dlg.password, PW)
    QTest.keyClick(dlg.password, Qt.Key.Key_Return)
    assert dlg.session is not None and dlg.session.username == "op.jones"


@offscreen_dialog
def test_return_in_the_lock_screen_counts_one_attempt(qtbot, clocked, own):
    from ui.session.signin import IdleLock
    accounts, _ = clocked
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "op.jones", "operator", PW)
    session = accounts.sign_in("op.jones", PW)
    lock = IdleLock(accounts, session, idle_s=3600)
    lock.lock_now()
    own(lock.screen)
    qtbot.waitExposed(lock.screen)
    QTest.keyClicks(lock.screen.password, "wrong password!")
    QTest.keyClick(lock.screen.password, Qt.Key.Key_Return)
    assert failures(accounts) == 1 and lock.is_locked
    lock.stop()
