"""The centre's record on PostgreSQL with PostGIS (spec v2 §8): the store of a live centre.

``open_store(target, **kw)`` is the one entry point callers use: a ``postgresql://`` (or
``postgres://``) URL gives a :class:`centraldb.store.PgStore`, anything else a file path and
the embedded :class:`localdb.store.Store`. Both have the same public interface. Who may do what
on the record is the server's: ``centraldb.roles`` (migration 4: per-person logins, group roles,
SECURITY DEFINER functions) and ``centraldb.accounts`` (the audited account functions).

May import: ``localdb`` (the store interface it mirrors, the hash chain, the handling
vocabulary and errors), ``monitorapp.feed.messages``, ``monitorapp.feed.timeutil`` and
``monitorapp.gcpause``; never the engine's internals, the service, the simulator, the crime
query's CLI or ``ui``.
"""
from __future__ import annotations

import os


def is_pg_target(target) -> bool:
    return isinstance(target, str) and target.split("://", 1)[0] in ("postgresql", "postgres")


def local_files_base(target) -> str:
    """Where a process keeps its local files of a store (the monitor's feed journal and
    quarantine list): the SQLite file's own path (``STORE.journal.1`` beside it), or for a
    ``postgresql://`` record a per-record name (server, port, database; never the password)
    in this machine's state directory, ``$XDG_STATE_HOME/monitorapp/records/``, made 0700."""
    if not is_pg_target(target):
        return os.fspath(target)
    from urllib.parse import urlsplit
    from pathlib import Path
    u = urlsplit(target)
    name = "_".join(str(x).replace("/", "_") for x in (
        u.hostname or "local", u.port or 5432, u.path.lstrip("/") or u.username or "postgres"))
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    d = base / "monitorapp" / "records"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return str(d / name)


def open_store(target: str | os.PathLike, **kw):
    """A PgStore for a ``postgresql://`` URL, a SQLite ``Store`` for a file path."""
    if is_pg_target(target):
        from centraldb.store import PgStore
        return PgStore(target, **kw)
    from localdb.store import Store
    return Store(target, **kw)
