"""The centre's record on PostgreSQL with PostGIS (spec v2 §8): the store of a live centre.

``open_store(target, **kw)`` is the one entry point callers use: a ``postgresql://`` (or
``postgres://``) URL gives a :class:`centraldb.store.PgStore`, anything else a file path and
the embedded :class:`localdb.store.Store`. Both have the same public interface.

May import: ``localdb`` (the store interface it mirrors, the hash chain, the handling
vocabulary and errors), ``monitorapp.feed.messages``, ``monitorapp.feed.timeutil`` and
``monitorapp.gcpause``; never the engine's internals, the service, the simulator, the crime
query's CLI or ``ui``.
"""
from __future__ import annotations

import os


def is_pg_target(target) -> bool:
    return isinstance(target, str) and target.split("://", 1)[0] in ("postgresql", "postgres")


def open_store(target: str | os.PathLike, **kw):
    """A PgStore for a ``postgresql://`` URL, a SQLite ``Store`` for a file path."""
    if is_pg_target(target):
        from centraldb.store import PgStore
        return PgStore(target, **kw)
    from localdb.store import Store
    return Store(target, **kw)
