"""Signing in to a console that is a client of the centre (issue 15): each person with their
own PostgreSQL login of the record (issue 14), typed into the sign-in dialog with real keys.
The server checks the password and says which role the login holds; every role that could sign
in to a live console before still can, a trainer is refused (training records only), a wrong
password is refused, and the name every record call carries is the login's."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from localdb.accounts import SignInError
from ui.session.centresignin import CentreAccounts
from ui.session.signin import SignInDialog

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def record(people):
    """The record as its decider leaves it: opened and marked live (the decider's own login)."""
    from centraldb import open_store
    s = open_store(people.dsn, anchor=False)
    yield people
    s.close()


def type_sign_in(qtbot, accounts, user: str, password: str) -> SignInDialog:
    dlg = SignInDialog(accounts, training=False)
    qtbot.addWidget(dlg)
    dlg.show()
    QTest.keyClicks(dlg.user, user)
    QTest.keyClick(dlg.user, Qt.Key.Key_Return)          # moves to the password
    assert dlg.password.hasFocus() or dlg.focusWidget() is dlg.password
    QTest.keyClicks(dlg.password, password)
    QTest.keyClick(dlg.password, Qt.Key.Key_Return)
    return dlg


@pytest.mark.parametrize("role", ["operator", "supervisor", "police_analyst", "administrator"])
def test_every_live_role_signs_in_with_its_own_login_and_the_server_says_the_role(qtbot, record, role):
    name = f"pat.{role.replace('_', '')}"
    password = record.login(name, role)
    accounts = CentreAccounts(record.dsn, anchor=False)
    try:
        dlg = type_sign_in(qtbot, accounts, name, password)
        qtbot.waitUntil(lambda: dlg.session is not None, timeout=10_000)
        assert (dlg.session.username, dlg.session.role) == (name, role)
        assert accounts.store.login == name and role in accounts.store.roles
        assert not dlg.password.text()                     # the password is not kept
        log = record.admin().execute("SELECT who, action FROM audit_log WHERE action='sign_in'").fetchall()
        assert (name, "sign_in") in log
    finally:
        accounts.close()


def test_a_trainer_a_wrong_password_and_an_unknown_name_are_refused_in_the_dialog(qtbot, record):
    record.login("tess.trainer", "trainer")
    good = record.login("owen.operator", "operator")
    accounts = CentreAccounts(record.dsn, anchor=False)
    try:
        dlg = type_sign_in(qtbot, accounts, "tess.trainer", record.passwords["tess.trainer"])
        assert dlg.session is None and "Trainer may not use the live console" in dlg.error.text()
        assert dlg.isVisible()                          # open for the next person
        dlg.user.clear()
        dlg = type_sign_in(qtbot, accounts, "owen.operator", good + "x")
        assert dlg.session is None and dlg.error.text() == "wrong user name or password"
        dlg = type_sign_in(qtbot, accounts, "nobody.here", good)
        assert dlg.session is None and dlg.error.text() == "wrong user name or password"
        assert accounts.store is None                   # nobody is signed in
    finally:
        accounts.close()


def test_the_person_signed_in_acts_as_themselves_and_a_switch_of_person_changes_the_record_calls(record):
    pw_a, pw_b = record.login("amy.operator", "operator"), record.login("ben.operator", "operator")
    accounts = CentreAccounts(record.dsn, anchor=False)
    switched = []
    accounts.on_person = lambda store, session: switched.append((store.login, session.username))
    try:
        accounts.sign_in("amy.operator", pw_a)
        with pytest.raises(SignInError):
            accounts.sign_in("amy.operator", "not her password")     # unlocking checks again
        assert accounts.sign_in("amy.operator", pw_a).username == "amy.operator"
        assert switched == [("amy.operator", "amy.operator")]         # her unlock changes nothing
        accounts.sign_in("ben.operator", pw_b)                       # over the lock
        assert switched[-1] == ("ben.operator", "ben.operator") and accounts.store.login == "ben.operator"
        from localdb.handling import HandlingError
        with pytest.raises(HandlingError, match="signed in as ben.operator"):
            accounts.store.acknowledge("A-x", "amy.operator", "contacted_subject")
    finally:
        accounts.close()
