"""Signing in to a console that is a client of the centre (issue 15): each person signs in
with their own PostgreSQL login of the centre's record (issue 14: per-person SCRAM logins,
roles held by the server).

``CentreAccounts(dsn)`` has the interface the sign-in dialog, the lock screen, sign-out and the
accounts dialog use (``ui.session.signin``), so they work unchanged: ``sign_in(user, password)``
opens a ``PgStore`` as that login (the server checks the password: a wrong one, or a disabled
or locked account, is refused at connect time), records the sign-in through the server's
``sign_in()`` and returns a ``Session`` with the role *the server* holds for that login. The
store of the person signed in (``store``) is the one every action of theirs goes through;
``on_person`` is told when another person signs in over the lock (switch user), so the
console's record calls carry the new person's identity. The password is never kept.

Handover notes and screen locks are audit records as that person (``audit_append``). Account
management goes through the server's audited account functions, as the administrator signed
in (``centraldb.accounts``).
"""
from __future__ import annotations

import pathlib

from localdb.accounts import AccountError, Session, SignInError
from localdb.schema import StoreError
from ui.console.centreclient import centre_reachable  # noqa: F401 (the console's start asks it)


def _why(e: Exception) -> str:
    text = str(e)
    if "password authentication failed" in text or "authentication failed" in text:
        return "wrong user name or password"
    if "not permitted to log in" in text:
        return "this account is disabled or locked; an administrator can unlock it"
    if "cannot connect" in text:
        return "the centre's record cannot be reached: " + text.split("cannot connect to the record:", 1)[-1].strip()
    return text


class CentreAccounts:
    """Sign-in against the centre's record; see the module docstring."""

    def __init__(self, dsn: str, *, anchor=None, clock=None):
        self.dsn = dsn
        self.anchor = anchor
        self.clock = clock
        self.store = None                    # the PgStore of the person signed in
        self.session: Session | None = None
        self.on_person = None                # callable(store, session): someone else signed in
        self._old: list = []

    def needs_first_admin(self) -> bool:
        return False                         # the centre's first administrator is made there

    def count(self) -> int:
        return 1

    def _open(self, username: str, password: str):
        from centraldb.store import PgStore
        kw = {"credentials": (username, password), "create": False}
        if self.anchor is not None:
            kw["anchor"] = self.anchor
        if self.clock is not None:
            kw["clock"] = self.clock
        import psycopg
        try:
            return PgStore(self.dsn, **kw)
        except StoreError as e:
            raise SignInError(_why(e)) from None
        except psycopg.Error as e:       # a record its decider has not opened yet, or not ours
            raise SignInError(f"the centre's record is not ready: {str(e).strip()[:200]}") from None

    def sign_in(self, username: str, password: str) -> Session:
        username = (username or "").strip()
        if not username or not password:
            raise SignInError("wrong user name or password")
        if (self.session is not None and username == self.session.username and self.store is not None
                and self.store.writer.health() is None):
            # unlocking one's own screen: the server checks the password again (a connection
            # that died with the link is opened again below, as a new sign-in)
            probe = self._open(username, password)
            probe.close()
            return self.session
        store = self._open(username, password)
        try:
            row = store.sign_in()
        except (StoreError, ValueError) as e:
            store.close()
            raise SignInError(_why(e)) from None
        role = (row.get("detail") or {}).get("role")
        if not role:                              # the server's word, else the group it holds
            held = sorted(store.roles)
            role = held[0] if held else None
        if not role:
            store.close()
            raise SignInError("this login holds no monitorapp role")
        from ui.session.signin import _mode_refusal
        refusal = _mode_refusal(role, False)       # a trainer: training records only
        if refusal:
            try:
                store.audit(store.login, "sign_in_refused", {"reason": "mode", "training": False})
            finally:
                store.close()
            raise SignInError(refusal)
        session = Session(store.login, role, row.get("at") or 0.0)
        previous, self.store, self.session = self.store, store, session
        if previous is not None:
            self._old.append(previous)           # closed at shutdown (calls may still be on it)
        if self.on_person is not None:
            self.on_person(store, session)
        return session

    def create_first_admin(self, username: str, password: str) -> Session:
        raise AccountError("the centre's first administrator is created on the record's server")

    def record_lock(self, session: Session, reason: str = "idle") -> None:
        try:
            self.store.audit(session.username, "screen_locked", {"reason": reason})
        except (StoreError, ValueError):
            pass                                  # the lock itself never waits for the record

    def sign_out(self, session: Session, handover: dict) -> dict:
        if not isinstance(handover, dict):
            raise AccountError("a handover summary is a dict")
        return self.store.audit(session.username, "sign_out", {"role": session.role, "handover": handover})

    def last_handover(self) -> dict | None:
        import json
        try:
            rows = self.store.reader().execute(
                "SELECT at, who, detail FROM audit_log WHERE action='sign_out' ORDER BY seq DESC"
                " LIMIT 200").fetchall()
        except Exception:       # noqa: BLE001 - a role that may not read the audit log
            return None
        for at, who, raw in rows:
            handover = (json.loads(raw) if isinstance(raw, str) else raw or {}).get("handover") or {}
            if handover:
                return {"at": at, "by": who, **handover}
        return None

    # ---- administrators: the server's audited account functions ---------------------------------
    def _admin(self, fn):
        return self.store._call(fn)      # noqa: SLF001 - as the administrator signed in

    def list(self) -> list[dict]:
        from centraldb import accounts
        return [a.__dict__ for a in self._admin(accounts.list_accounts)]

    def create(self, admin: Session, username: str, role: str, password: str) -> None:
        from centraldb import accounts
        self._admin(lambda conn: accounts.create(conn, username, role, password))

    def unlock(self, admin: Session, username: str) -> None:
        from centraldb import accounts
        self._admin(lambda conn: accounts.unlock(conn, username))

    def set_password(self, admin: Session, username: str, password: str) -> None:
        from centraldb import accounts
        self._admin(lambda conn: accounts.reset(conn, username, password))

    def close(self) -> None:
        for s in self._old + ([self.store] if self.store is not None else []):
            try:
                s.close()
            except Exception:    # noqa: BLE001
                pass
        self._old.clear()
        self.store = None


def sign_in_to_centre(dsn: str, *, user: str | None = None, password_file: str | None = None,
                      parent=None):
    """The start-of-shift sign-in against the centre's record: ``(session, accounts)``, or None
    when cancelled. Non-interactive with ``user`` and ``password_file`` (kiosks, tests). Raises
    ``SignInError`` or ``ui.roles.RoleRefused`` (a trainer in live mode)."""
    from ui.roles import check_mode
    from ui.session.signin import sign_in_at_start
    accounts = CentreAccounts(dsn)
    try:
        if user and password_file:
            text = pathlib.Path(password_file).read_text(encoding="utf-8").splitlines()
            session = accounts.sign_in(user, text[0] if text else "")
        else:
            session = sign_in_at_start(accounts, training=False, parent=parent)
            if session is None:
                accounts.close()
                return None
        check_mode(session.role, False)
    except BaseException:
        accounts.close()
        raise
    return session, accounts
