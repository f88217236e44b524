"""Local sign-in accounts kept in the store: roles, scrypt password hashes, lockout, handover.

``Accounts(store)`` creates the first administrator (``create_first_admin``, only while there
is no account at all), adds and unlocks accounts (administrators only), and checks a sign-in
(``sign_in`` returns a :class:`Session` or raises :class:`SignInError` with a reason a user can
read). Everything that happens is written to the store's hash-chained audit log: sign-ins,
failures, lockouts, unlocks, new accounts, sign-outs and their handover summaries.

Passwords: ``hashlib.scrypt`` (N=2**17, r=8, p=1: 128 MiB and about half a second per hash, as
current guidance asks; 16-byte random salt, 32-byte key), stored with their parameters as
``scrypt$N$r$p$salt$key`` and compared with ``hmac.compare_digest``. A hash made at a lower cost
(N=2**14 before) still verifies, and is replaced by one at ``SCRYPT_N`` at the next successful
sign-in (audited as ``password_rehashed``). ``SCRYPT_N`` is read when a hash is made; the test
suite lowers it (``tests/fixtures_accounts.py``), production code never does.

A wrong password and an unknown user give the same message. After ``MAX_FAILURES``
consecutive failures the account is locked for ``LOCKOUT_S`` (15 minutes), even for the right
password; after that it opens again with a fresh count, so an only administrator who locked
themselves out is never locked out for good. An administrator can unlock an account at once.
Lockouts, their expiry and unlocks (with who and when) are in the audit log. Writes go through
the store's single writer; reads through ``store.reader()``.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import os
import re
from dataclasses import dataclass

from localdb.migrations_accounts import ACCOUNTS_MIGRATION
from localdb.schema import _statements

ROLES = ("operator", "supervisor", "trainer", "police_analyst", "administrator")
ROLE_TEXT = {"operator": "Operator", "supervisor": "Supervisor", "trainer": "Trainer",
             "police_analyst": "Police analyst", "administrator": "Administrator"}
MAX_FAILURES = 5
LOCKOUT_S = 15 * 60          # how long a lockout lasts (an administrator may unlock sooner)
MIN_PASSWORD = 10
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_LEN = 2 ** 17, 8, 1, 32
MAX_SCRYPT_N = 2 ** 20       # a stored hash asking for more memory than 1 GiB is not tried
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")


class AccountError(ValueError):
    """An account operation that is not allowed (the message says why)."""


class SignInError(AccountError):
    """A sign-in refused: wrong credentials, a locked or disabled account."""

    def __init__(self, message: str, locked: bool = False):
        super().__init__(message)
        self.locked = locked


@dataclass(frozen=True)
class Session:
    """Who is signed in, with which role, since when (store clock)."""
    username: str
    role: str
    signed_in_at: float

    @property
    def role_text(self) -> str:
        return ROLE_TEXT.get(self.role, self.role)


def _maxmem(n: int, r: int, p: int) -> int:
    """The memory scrypt needs (OpenSSL: 128·r·(N + 2) + 128·r·p bytes), with 1 MiB to spare."""
    return 128 * r * (n + 2) + 128 * r * p + 2 ** 20


def hash_password(password: str, salt: bytes | None = None, n: int | None = None,
                  r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$N$r$p$salt$key``; ``n`` defaults to ``SCRYPT_N`` (read now, see the docstring)."""
    n = SCRYPT_N if n is None else n
    salt = os.urandom(16) if salt is None else salt
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_LEN,
                         maxmem=_maxmem(n, r, p))
    b64 = base64.b64encode
    return f"scrypt${n}${r}${p}${b64(salt).decode()}${b64(key).decode()}"


def hash_cost(stored: str) -> tuple[int, int, int] | None:
    """(N, r, p) of a stored hash, or None if it is not a scrypt hash we know."""
    try:
        kind, n, r, p, _salt, _key = stored.split("$")
        return (int(n), int(r), int(p)) if kind == "scrypt" else None
    except (ValueError, AttributeError):
        return None


def needs_rehash(stored: str, n: int | None = None) -> bool:
    """Whether a stored hash is cheaper than the current policy (N, r, p)."""
    cost = hash_cost(stored)
    n = SCRYPT_N if n is None else n
    return cost is not None and (cost[0] < n or cost[1] < SCRYPT_R or cost[2] < SCRYPT_P)


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        n, r, p = int(n), int(r), int(p)
        if n > MAX_SCRYPT_N or r > 64 or p > 16:
            return False
        expected = base64.b64decode(key)
        got = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=n,
                             r=r, p=p, dklen=len(expected), maxmem=_maxmem(n, r, p))
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(got, expected)


@functools.lru_cache(maxsize=4)
def _dummy_hash(n: int) -> str:
    """A hash to check an unknown user's password against, so timing does not tell which
    names exist (made once per cost, not once per attempt)."""
    return hash_password("x" * 12, b"0" * 16, n=n)


def password_problem(password: object, username: str = "") -> str | None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        return f"a password needs at least {MIN_PASSWORD} characters"
    if username and password.lower() == username.lower():
        return "the password must not be the user name"
    return None


def ensure_schema(store) -> None:
    """Create the accounts table if the store's own migrations have not (idempotent)."""
    def run(conn):
        for statement in _statements(ACCOUNTS_MIGRATION):
            conn.execute(statement)
    store._call(run)        # the store's single writer (its documented internal entry point)


class Accounts:
    """The accounts of one store (see the module docstring)."""

    def __init__(self, store, max_failures: int = MAX_FAILURES, lockout_s: float = LOCKOUT_S):
        self.store = store
        self.max_failures = max_failures
        self.lockout_s = float(lockout_s)
        ensure_schema(store)

    # ---- reads ------------------------------------------------------------------------------
    def count(self) -> int:
        return self.store.reader().execute("SELECT count(*) FROM accounts").fetchone()[0]

    def needs_first_admin(self) -> bool:
        return self.count() == 0

    def get(self, username: str) -> dict | None:
        row = self.store.reader().execute(
            "SELECT username, role, failures, locked, locked_at, disabled, last_sign_in,"
            " created_at, created_by FROM accounts WHERE username=?", (username,)).fetchone()
        if row is None:
            return None
        keys = ("username", "role", "failures", "locked", "locked_at", "disabled",
                "last_sign_in", "created_at", "created_by")
        d = dict(zip(keys, row))
        d["locked"], d["disabled"] = bool(d["locked"]), bool(d["disabled"])
        d["locked_until"] = (d["locked_at"] + self.lockout_s
                             if d["locked"] and d["locked_at"] is not None else None)
        if d["locked"] and self._lock_expired(d["locked_at"], self.store.clock()):
            d["locked"], d["locked_until"] = False, None     # expired; cleared at next sign-in
        return d

    def _lock_expired(self, locked_at: float | None, now: float) -> bool:
        # a lock with no time (never written by this program) is treated as expired: no
        # account is locked for good
        return locked_at is None or now >= locked_at + self.lockout_s

    def list(self) -> list[dict]:
        names = [r[0] for r in self.store.reader().execute(
            "SELECT username FROM accounts ORDER BY username")]
        return [self.get(n) for n in names]

    # ---- creating and managing accounts -------------------------------------------------------
    def _check_new(self, username: str, role: str, password: str) -> str:
        if not isinstance(username, str) or not USERNAME_RE.match(username.strip()):
            raise AccountError("a user name is 2-64 letters, digits, '.', '_' or '-'")
        username = username.strip()
        if role not in ROLES:
            raise AccountError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        problem = password_problem(password, username)
        if problem:
            raise AccountError(problem)
        return username

    def create_first_admin(self, username: str, password: str) -> Session:
        """The first-run path: only while the store has no account at all."""
        username = self._check_new(username, "administrator", password)
        pw = hash_password(password)
        at = self.store.clock()

        def write(conn):
            if conn.execute("SELECT count(*) FROM accounts").fetchone()[0]:
                raise AccountError("an administrator already exists; sign in instead")
            self._insert(conn, username, "administrator", pw, at, "first-run")
            self._audit(conn, at, username, "account_created",
                        {"username": username, "role": "administrator", "first_run": True})
            self._audit(conn, at, username, "sign_in", {"role": "administrator"})
        self.store._call(write)
        return Session(username, "administrator", at)

    def create(self, admin: Session, username: str, role: str, password: str) -> None:
        self._need_admin(admin)
        username = self._check_new(username, role, password)
        pw = hash_password(password)
        at = self.store.clock()

        def write(conn):
            if conn.execute("SELECT 1 FROM accounts WHERE username=?", (username,)).fetchone():
                raise AccountError(f"an account {username!r} already exists")
            self._insert(conn, username, role, pw, at, admin.username)
            self._audit(conn, at, admin.username, "account_created",
                        {"username": username, "role": role})
        self.store._call(write)

    def unlock(self, admin: Session, username: str) -> None:
        self._need_admin(admin)
        at = self.store.clock()

        def write(conn):
            row = conn.execute("SELECT locked, failures FROM accounts WHERE username=?",
                               (username,)).fetchone()
            if row is None:
                raise AccountError(f"no account {username!r}")
            conn.execute("UPDATE accounts SET locked=0, failures=0, locked_at=NULL"
                         " WHERE username=?", (username,))
            self._audit(conn, at, admin.username, "account_unlocked",
                        {"username": username, "was_locked": bool(row[0]), "failures": row[1]})
        self.store._call(write)

    def set_password(self, admin: Session, username: str, password: str) -> None:
        if admin.username != username:
            self._need_admin(admin)
        problem = password_problem(password, username)
        if problem:
            raise AccountError(problem)
        pw, at = hash_password(password), self.store.clock()

        def write(conn):
            if not conn.execute("UPDATE accounts SET pw_hash=?, password_changed_at=?"
                                " WHERE username=?", (pw, at, username)).rowcount:
                raise AccountError(f"no account {username!r}")
            self._audit(conn, at, admin.username, "password_changed", {"username": username})
        self.store._call(write)

    # ---- signing in and out -----------------------------------------------------------------
    def sign_in(self, username: str, password: str) -> Session:
        username = (username or "").strip()
        row = self.store.reader().execute(
            "SELECT role, pw_hash, locked, disabled FROM accounts WHERE username=?",
            (username,)).fetchone()
        # hash even for an unknown user, so timing does not tell which names exist
        stored = row[1] if row else _dummy_hash(SCRYPT_N)
        ok = verify_password(password or "", stored)
        # a hash below the current cost is replaced at this successful sign-in (made here, in
        # the caller's thread, not in the store's writer)
        rehash = hash_password(password) if ok and row and needs_rehash(stored) else None
        at = self.store.clock()
        outcome: dict = {}

        def write(conn):
            cur = conn.execute("SELECT role, failures, locked, disabled, locked_at FROM accounts"
                               " WHERE username=?", (username,)).fetchone()
            who = username or "(blank)"
            if cur is None:
                self._audit(conn, at, who, "sign_in_failed", {"reason": "unknown user"})
                outcome["error"] = SignInError("wrong user name or password")
                return
            role, failures, locked, disabled, locked_at = cur
            if locked and self._lock_expired(locked_at, at):
                conn.execute("UPDATE accounts SET locked=0, failures=0, locked_at=NULL"
                             " WHERE username=?", (username,))
                self._audit(conn, at, who, "lockout_expired",
                            {"locked_at": locked_at, "lockout_s": self.lockout_s})
                locked, failures = 0, 0
            if locked:
                self._audit(conn, at, who, "sign_in_refused", {"reason": "locked"})
                minutes = max(1, math.ceil((locked_at + self.lockout_s - at) / 60))
                outcome["error"] = SignInError(
                    f"this account is locked after repeated failed sign-ins, for {minutes} more "
                    f"minute{'s' if minutes != 1 else ''}; an administrator can unlock it now",
                    locked=True)
                return
            if disabled:
                self._audit(conn, at, who, "sign_in_refused", {"reason": "disabled"})
                outcome["error"] = SignInError("this account is disabled")
                return
            if not ok:
                failures += 1
                lock = failures >= self.max_failures
                conn.execute("UPDATE accounts SET failures=?, locked=?, locked_at=? WHERE username=?",
                             (failures, 1 if lock else 0, at if lock else None, username))
                self._audit(conn, at, who, "sign_in_failed", {"failures": failures})
                if lock:
                    self._audit(conn, at, who, "account_locked",
                                {"failures": failures, "lockout_s": self.lockout_s})
                    minutes = math.ceil(self.lockout_s / 60)
                    outcome["error"] = SignInError(
                        f"wrong password; the account is now locked for {minutes} minutes after "
                        f"{failures} failed sign-ins (an administrator can unlock it sooner)",
                        locked=True)
                else:
                    left = self.max_failures - failures
                    outcome["error"] = SignInError(
                        f"wrong user name or password ({left} attempt{'s' if left != 1 else ''}"
                        " left before the account is locked)")
                return
            conn.execute("UPDATE accounts SET failures=0, last_sign_in=? WHERE username=?",
                         (at, username))
            if rehash is not None and conn.execute(
                    "UPDATE accounts SET pw_hash=? WHERE username=? AND pw_hash=?",
                    (rehash, username, stored)).rowcount:
                old, new = hash_cost(stored), hash_cost(rehash)
                self._audit(conn, at, username, "password_rehashed",
                            {"from": {"n": old[0], "r": old[1], "p": old[2]},
                             "to": {"n": new[0], "r": new[1], "p": new[2]}})
            self._audit(conn, at, username, "sign_in", {"role": role})
            outcome["session"] = Session(username, role, at)
        self.store._call(write)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["session"]

    def record_lock(self, session: Session, reason: str = "idle") -> None:
        """The screen was locked (idle lock); the session continues after a password."""
        self.store.audit(session.username, "screen_locked", {"reason": reason})

    def sign_out(self, session: Session, handover: dict) -> dict:
        """Sign out, saving the handover summary (open and shelved alerts, notes) for the next
        person; returns the audit record."""
        if not isinstance(handover, dict):
            raise AccountError("a handover summary is a dict")
        return self.store.audit(session.username, "sign_out",
                                {"role": session.role, "handover": handover})

    def last_handover(self) -> dict | None:
        """The summary left at the most recent sign-out that has one, with who and when."""
        # a sign-out without a handover (a police analyst, an administrator: roles that do not
        # take over the queue) does not hide the last operator's or supervisor's handover
        for at, who, raw in self.store.reader().execute(
                "SELECT at, who, detail FROM audit_log WHERE action='sign_out' ORDER BY seq DESC"
                " LIMIT 200"):
            handover = json.loads(raw).get("handover") or {}
            if handover:
                return {"at": at, "by": who, **handover}
        return None

    # ---- helpers ----------------------------------------------------------------------------
    @staticmethod
    def _need_admin(admin: Session) -> None:
        if not isinstance(admin, Session) or admin.role != "administrator":
            raise AccountError("only an administrator may manage accounts")

    @staticmethod
    def _insert(conn, username, role, pw, at, by) -> None:
        conn.execute("INSERT INTO accounts (username, role, pw_hash, created_at, created_by,"
                     " password_changed_at) VALUES (?,?,?,?,?,?)", (username, role, pw, at, by, at))

    @staticmethod
    def _audit(conn, at, who, action, detail) -> None:
        from localdb import hashchain
        hashchain.append(conn, "audit_log", {"at": at, "who": who, "action": action,
                                             "detail": json.dumps(detail, sort_keys=True)})
