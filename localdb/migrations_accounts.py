"""The accounts table of the store: local sign-in accounts with their role and lockout state.

``ACCOUNTS_MIGRATION`` is idempotent (``IF NOT EXISTS``), so it can run both as a numbered
migration in ``localdb.schema.MIGRATIONS`` and, until it is hooked in there, from
``localdb.accounts.ensure_schema`` through the store's writer. Passwords are never stored:
``pw_hash`` is ``scrypt$N$r$p$salt$key`` (base64), see ``localdb.accounts``.

Sign-ins, failures, lockouts, handover summaries and supervisors' reviews are not tables of
their own: they go to the hash-chained audit log, where they are tamper-evident.
"""
from __future__ import annotations

ACCOUNTS_MIGRATION = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY, role TEXT NOT NULL, pw_hash TEXT NOT NULL,
    created_at REAL NOT NULL, created_by TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0, locked INTEGER NOT NULL DEFAULT 0, locked_at REAL,
    disabled INTEGER NOT NULL DEFAULT 0, last_sign_in REAL, password_changed_at REAL NOT NULL);
"""
