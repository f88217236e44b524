"""Accounts of the PostgreSQL record: per-person logins, managed only through the server's
audited account functions (``centraldb.roles``).

Every call takes a psycopg connection *signed in as the person acting* (an administrator for
everything but ``sign_in``); the server decides whether that login may act, records who did it
(``session_user``) and when, and refuses the rest. A password never leaves this machine: the
SCRAM-SHA-256 verifier is computed here (``scram_verifier``, libpq's ``PQencryptPasswordConn``)
and only the verifier is sent, so it cannot appear in the server's statement log or
``pg_stat_activity`` in the clear. The server sees a verifier, not a password, so the minimum
length (``MIN_PASSWORD``, the same as the embedded store's) is checked here.

Lockout: PostgreSQL 15 cannot count wrong passwords in SQL (nothing runs on a failed
authentication), but it logs each one with the login's name. ``lock_after_failures`` reads
those (``failed_sign_ins``) and locks an account after ``MAX_FAILURES`` within ``LOCKOUT_S``
(the embedded store's numbers: 5 in 15 minutes, locked 15 minutes); ``monitorapp accounts
watch-failures --log FILE`` runs it on the database server, and ``expire-lockouts`` ends the
locks whose time is up. A locked login is refused by the server at connect time.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import psycopg

from centraldb.roles import PERSON_ROLES, ROLES
from localdb.accounts import LOCKOUT_S, MAX_FAILURES, MIN_PASSWORD, AccountError

ERR_ACCOUNT = "MA003"
ACCOUNT_COLUMNS = ("username", "role", "created_at", "created_by", "disabled", "locked",
                   "locked_until", "last_sign_in", "password_changed_at", "changed_at",
                   "changed_by")

__all__ = ["AccountError", "Account", "PERSON_ROLES", "ROLES", "scram_verifier", "create",
           "set_role", "reset", "disable", "lock", "unlock", "expire_lockouts", "list_accounts",
           "sign_in", "check_password", "failed_sign_ins", "lock_after_failures"]


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    created_at: float
    created_by: str
    disabled: bool
    locked: bool
    locked_until: float | None
    last_sign_in: float | None
    password_changed_at: float
    changed_at: float | None
    changed_by: str | None


def check_password(password) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    if "\x00" in password:
        raise AccountError("a password cannot hold a NUL character")
    return password


def scram_verifier(conn: psycopg.Connection, username: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of ``password`` for ``username``, computed by libpq here."""
    check_password(password)
    return conn.pgconn.encrypt_password(password.encode("utf-8"), username.encode("utf-8"),
                                        b"scram-sha-256").decode("ascii")


def _run(conn: psycopg.Connection, sql: str, args: tuple):
    try:
        with conn.transaction():
            cur = conn.execute(sql, args)
            return cur.fetchall(), [c.name for c in cur.description]
    except psycopg.Error as e:
        state = getattr(e, "sqlstate", None)
        msg = e.diag.message_primary if e.diag and e.diag.message_primary else str(e).strip()
        if state == ERR_ACCOUNT:
            raise AccountError(msg) from None
        if state == "42501":                        # insufficient_privilege
            raise AccountError(f"refused by the record: {msg}") from None
        raise


def _account(conn, sql: str, args: tuple) -> Account:
    rows, cols = _run(conn, sql, args)
    row = dict(zip(cols, rows[0]))
    return Account(**{k: row[k] for k in ACCOUNT_COLUMNS})


def create(conn, username: str, role: str, password: str) -> Account:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    return _account(conn, "SELECT * FROM create_account(%s, %s, %s)",
                    (username, role, scram_verifier(conn, username, password)))


def set_role(conn, username: str, role: str) -> Account:
    return _account(conn, "SELECT * FROM set_account_role(%s, %s)", (username, role))


def reset(conn, username: str, password: str) -> Account:
    return _account(conn, "SELECT * FROM reset_password(%s, %s)",
                    (username, scram_verifier(conn, username, password)))


def disable(conn, username: str) -> Account:
    return _account(conn, "SELECT * FROM disable_account(%s)", (username,))


def lock(conn, username: str, minutes: float = 15.0) -> Account:
    return _account(conn, "SELECT * FROM lock_account(%s, %s)", (username, float(minutes)))


def unlock(conn, username: str) -> Account:
    return _account(conn, "SELECT * FROM unlock_account(%s)", (username,))


def expire_lockouts(conn) -> int:
    rows, _ = _run(conn, "SELECT expire_lockouts()", ())
    return rows[0][0]


def list_accounts(conn) -> list[Account]:
    """The accounts this login may see (row-level security: an administrator sees all)."""
    rows, cols = _run(conn, f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM accounts"
                            " ORDER BY username", ())
    return [Account(**dict(zip(cols, r))) for r in rows]


def sign_in(conn) -> tuple[str, str]:
    """Record this login's sign-in (audited by the server); (username, role) as the server
    established them. Refused for a login without an account, or a disabled or locked one."""
    import json
    rows, _ = _run(conn, "SELECT who, detail FROM sign_in()", ())
    return rows[0][0], json.loads(rows[0][1])["role"]


# ---- lockout after failed sign-ins: read from the server's log -------------------------------
# PostgreSQL 15 runs nothing in SQL when a password is wrong; it logs it (with the default
# log_line_prefix '%m [%p] '), e.g.
#   2026-12-01 10:52:33.222 UTC [4242] FATAL:  password authentication failed for user "olly"
_FAILED = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (UTC|GMT|[+-]\d\d)\b.*?'
                     r'FATAL:\s+password authentication failed for user "([^"]+)"')


def failed_sign_ins(lines) -> list[tuple[float, str]]:
    """(when, user) of every failed password in lines of the server's log (prefix '%m ...')."""
    out = []
    for line in lines:
        m = _FAILED.match(line)
        if m:
            stamp, zone, user = m.groups()
            if zone in ("UTC", "GMT"):
                zone = "+00"
            t = datetime.strptime(f"{stamp}{zone}00", "%Y-%m-%d %H:%M:%S%z" if "." not in stamp
                                  else "%Y-%m-%d %H:%M:%S.%f%z").timestamp()
            out.append((t, user))
    return out


def lock_after_failures(conn, failures, now: float, *, max_failures: int = MAX_FAILURES,
                        window_s: float = LOCKOUT_S, lock_minutes: float = LOCKOUT_S / 60
                        ) -> list[Account]:
    """Lock every account with ``max_failures`` or more failed passwords in the last
    ``window_s`` seconds, counting only failures after the account's last change (so an unlock
    starts a fresh count). Run by an administrator's connection; each lock is audited."""
    known = {a.username: a for a in list_accounts(conn)}
    locked = []
    for user in sorted({u for _, u in failures}):
        a = known.get(user)
        if a is None or a.locked or a.disabled:
            continue
        since = max(now - window_s, a.changed_at or 0.0)
        if sum(1 for t, u in failures if u == user and since < t <= now) >= max_failures:
            locked.append(lock(conn, user, lock_minutes))
    return locked
