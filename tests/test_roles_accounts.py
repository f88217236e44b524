"""Local accounts: scrypt hashes, first administrator, lockout, roles, handover (real store)."""
from __future__ import annotations

import sqlite3

import pytest

from localdb.accounts import (Accounts, AccountError, MAX_FAILURES, SignInError, verify_password)
from localdb.store import Store
from localdb.verify import verify_store
from ui.roles import RoleRefused, can, check_mode, require, views_for

PW = "correct horse battery"


@pytest.fixture
def accounts(tmp_path):
    store = Store(tmp_path / "acc.sqlite")
    yield Accounts(store)
    store.close()


def test_first_admin_then_no_second_first_run(accounts):
    assert accounts.needs_first_admin()
    s = accounts.create_first_admin("admin.ann", PW)
    assert s.role == "administrator" and not accounts.needs_first_admin()
    with pytest.raises(AccountError, match="already exists"):
        accounts.create_first_admin("eve", PW)
    assert [a["username"] for a in accounts.list()] == ["admin.ann"]


def test_password_stored_as_scrypt_never_plain(accounts, tmp_path):
    accounts.create_first_admin("admin.ann", PW)
    accounts.store.flush()
    raw = (tmp_path / "acc.sqlite").read_bytes() + (tmp_path / "acc.sqlite-wal").read_bytes()
    assert PW.encode() not in raw
    stored = sqlite3.connect(tmp_path / "acc.sqlite").execute(
        "SELECT pw_hash FROM accounts").fetchone()[0]
    from tests.fixtures_accounts import TEST_SCRYPT_N     # production: tests/test_accounts_scrypt.py
    assert stored.startswith(f"scrypt${TEST_SCRYPT_N}$8$1$")
    assert verify_password(PW, stored) and not verify_password(PW + "x", stored)


def test_weak_password_and_bad_names_refused(accounts):
    with pytest.raises(AccountError, match="at least 10"):
        accounts.create_first_admin("admin", "short")
    with pytest.raises(AccountError, match="user name"):
        accounts.create_first_admin("a b c", PW)


def test_only_admin_creates_accounts(accounts):
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "op.jones", "operator", PW)
    op = accounts.sign_in("op.jones", PW)
    with pytest.raises(AccountError, match="only an administrator"):
        accounts.create(op, "x.y", "supervisor", PW)
    with pytest.raises(AccountError, match="unknown role"):
        accounts.create(admin, "x.y", "boss", PW)


def test_lockout_after_failures_and_locked_stays_locked_until_unlocked(accounts):
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "pc.smith", "police_analyst", PW)
    for k in range(MAX_FAILURES - 1):
        with pytest.raises(SignInError, match="attempt") as e:
            accounts.sign_in("pc.smith", "wrong password!")
        assert not e.value.locked
    with pytest.raises(SignInError, match="now locked") as e:
        accounts.sign_in("pc.smith", "wrong password!")
    assert e.value.locked and accounts.get("pc.smith")["locked"]
    # the right password does not open a locked account, however often it is tried
    for _ in range(3):
        with pytest.raises(SignInError, match="locked"):
            accounts.sign_in("pc.smith", PW)
    accounts.unlock(admin, "pc.smith")
    assert accounts.sign_in("pc.smith", PW).role == "police_analyst"
    actions = [r["action"] for r in accounts.store.audit_log()]
    assert actions.count("sign_in_failed") == MAX_FAILURES
    assert "account_locked" in actions and actions.count("sign_in_refused") == 3
    assert "account_unlocked" in actions
    assert all(r.intact for r in verify_store(accounts.store.path))


def test_success_resets_failures_and_unknown_user_same_message(accounts):
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "op.jones", "operator", PW)
    with pytest.raises(SignInError) as e1:
        accounts.sign_in("op.jones", "nope nope nope")
    with pytest.raises(SignInError) as e2:
        accounts.sign_in("nobody", "nope nope nope")
    assert str(e2.value) == "wrong user name or password"
    assert str(e1.value).startswith("wrong user name or password")
    accounts.sign_in("op.jones", PW)
    assert accounts.get("op.jones")["failures"] == 0


def test_handover_saved_and_shown_to_next(accounts):
    admin = accounts.create_first_admin("admin.ann", PW)
    accounts.create(admin, "op.jones", "operator", PW)
    s = accounts.sign_in("op.jones", PW)
    accounts.sign_out(s, {"open": [{"alert_id": "A-1"}], "shelved": [], "notes": "watch OFF-3"})
    h = accounts.last_handover()
    assert h["by"] == "op.jones" and h["notes"] == "watch OFF-3" and h["open"][0]["alert_id"] == "A-1"


def test_role_checks():
    assert not can("police_analyst", "acknowledge")
    assert can("operator", "acknowledge") and can("supervisor", "review")
    assert not can("trainer", "live_mode") and can("trainer", "trainer")
    with pytest.raises(RoleRefused, match="Police analyst may not acknowledge"):
        require("police_analyst", "acknowledge")
    with pytest.raises(RoleRefused, match="live console"):
        check_mode("trainer", training=False)
    check_mode("trainer", training=True)
    assert views_for("police_analyst") == ["crime", "playback"]
    assert views_for("supervisor") == ["review", "kpi", "crime", "playback"]
    assert views_for("trainer") == ["kpi", "trainer"]
    with pytest.raises(KeyError):
        can("operator", "launch_missiles")
