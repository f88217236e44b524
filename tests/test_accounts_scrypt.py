"""scrypt at the production cost (N=2**17, r=8, p=1: current guidance), the parameters stored with
each hash, and the migration: a hash made at the old cost (N=2**14) still verifies and is
replaced by a 2**17 hash at the next successful sign-in, audited. These tests run at the real
cost (``production_scrypt``, see tests/fixtures_accounts.py): each hash takes about a second."""
from __future__ import annotations

import localdb.accounts as accounts_mod
from localdb.accounts import Accounts, SignInError, hash_cost, hash_password, verify_password
from localdb.store import Store
from localdb.verify import verify_store

PW = "correct horse battery"


def stored_hash(store, user) -> str:
    return store.reader().execute("SELECT pw_hash FROM accounts WHERE username=?",
                                  (user,)).fetchone()[0]


def test_the_production_cost_is_at_least_2_17(production_scrypt, tmp_path):
    assert production_scrypt >= 2 ** 17 and accounts_mod.SCRYPT_R == 8 and accounts_mod.SCRYPT_P == 1
    with Store(tmp_path / "s.sqlite") as store:
        Accounts(store).create_first_admin("admin.ann", PW)
        h = stored_hash(store, "admin.ann")
    assert h.startswith(f"scrypt${2 ** 17}$8$1$") and hash_cost(h) == (2 ** 17, 8, 1)
    assert verify_password(PW, h) and not verify_password(PW + "!", h)


def test_an_old_2_14_hash_is_rehashed_to_2_17_at_sign_in(production_scrypt, tmp_path, monkeypatch):
    with Store(tmp_path / "s.sqlite") as store:
        monkeypatch.setattr(accounts_mod, "SCRYPT_N", 2 ** 14)   # the program before this change
        acc = Accounts(store)
        admin = acc.create_first_admin("admin.ann", PW)
        acc.create(admin, "op.jones", "operator", PW)
        old = stored_hash(store, "op.jones")
        assert hash_cost(old) == (2 ** 14, 8, 1)
        monkeypatch.setattr(accounts_mod, "SCRYPT_N", production_scrypt)
        acc = Accounts(store)
        # a failed sign-in changes nothing
        try:
            acc.sign_in("op.jones", "wrong password!")
        except SignInError:
            pass
        assert stored_hash(store, "op.jones") == old
        # the right password: signed in with the old hash, which is replaced
        assert acc.sign_in("op.jones", PW).role == "operator"
        new = stored_hash(store, "op.jones")
        assert hash_cost(new) == (2 ** 17, 8, 1) and new != old
        assert verify_password(PW, new)
        rec = [r for r in store.audit_log() if r["action"] == "password_rehashed"]
        assert len(rec) == 1 and rec[0]["who"] == "op.jones"
        assert rec[0]["detail"] == {"from": {"n": 2 ** 14, "p": 1, "r": 8},
                                    "to": {"n": 2 ** 17, "p": 1, "r": 8}}
        # signing in again keeps the new hash: nothing more to migrate
        acc.sign_in("op.jones", PW)
        assert stored_hash(store, "op.jones") == new
        assert sum(1 for r in store.audit_log() if r["action"] == "password_rehashed") == 1
        assert all(r.intact for r in verify_store(store.path))


def test_a_hash_asking_for_absurd_memory_is_not_tried():
    h = hash_password(PW, n=2 ** 10)
    kind, n, r, p, salt, key = h.split("$")
    assert not verify_password(PW, "$".join((kind, str(2 ** 30), r, p, salt, key)))
