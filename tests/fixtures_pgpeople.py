"""People on the throw-away PostgreSQL cluster: real logins with real passwords, and stores
signed in as them (tests/fixtures_pg.py gives the cluster and a fresh database per test).

``People(cluster, dsn)``: ``login(name, role)`` makes an account through the server's own
``create_account`` (as the cluster's superuser: the bootstrap path of a new centre) and returns
its password; ``store(name, role)`` opens a :class:`PgStore` signed in as that person;
``connect(name)`` a plain psycopg connection as them. ``freeze_clock(t)`` makes the record's
clock (``record_now()``) read ``t``, by redefining it as the superuser: the server's clock is the
time of every handling and audit record, and a test that injects a clock needs the server to
agree. Logins are cluster-wide: ``drop()`` removes the ones made (the ``people`` fixture does).
"""
from __future__ import annotations

import secrets
import threading

import psycopg
import pytest

from centraldb import accounts
from centraldb.store import PgStore


class People:
    def __init__(self, cluster, dsn: str):
        self.cluster, self.dsn = cluster, dsn
        self.passwords: dict[str, str] = {}
        self.stores: list[PgStore] = []
        self._clock_lock = threading.Lock()
        self._frozen: float | None = None

    def admin(self) -> psycopg.Connection:
        """The superuser's connection to this record."""
        return psycopg.connect(self.dsn)

    def login(self, name: str, role: str = "operator") -> str:
        if name not in self.passwords:
            password = secrets.token_urlsafe(12)
            with self.admin() as conn:
                accounts.create(conn, name, role, password)
            self.passwords[name] = password
        return self.passwords[name]

    def connect(self, name: str, role: str = "operator", **kw) -> psycopg.Connection:
        password = self.login(name, role)
        return psycopg.connect(self.dsn, user=name, password=password, **kw)

    def store(self, name: str, role: str = "operator", **kw) -> PgStore:
        password = self.login(name, role)
        kw.setdefault("anchor", False)
        s = PgStore(self.dsn, credentials=(name, password), **kw)
        self.stores.append(s)
        return s

    def freeze_clock(self, t: float | None) -> None:
        """The record's clock reads ``t`` (None: the real clock again)."""
        with self._clock_lock:
            if self._frozen != t:
                self._freeze(t)
                self._frozen = t

    def _freeze(self, t: float | None) -> None:
        body = ("SELECT extract(epoch FROM clock_timestamp())" if t is None
                else f"SELECT {float(t)!r}::float8")
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE OR REPLACE FUNCTION record_now() RETURNS double precision"
                         f" LANGUAGE sql STABLE AS $$ {body} $$")

    def drop(self) -> None:
        for s in self.stores:
            try:
                s.close()
            except Exception:          # noqa: BLE001 - a test may have closed it, or killed it
                pass
        with psycopg.connect(self.cluster.dsn(), autocommit=True) as conn:
            for name in self.passwords:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE usename = %s", (name,))
                conn.execute(f'DROP ROLE IF EXISTS "{name}"')


@pytest.fixture
def people(pg_cluster, pg_dsn):
    p = People(pg_cluster, pg_dsn)
    yield p
    p.drop()


class PeopleStore:
    """A record as the store-behaviour suite uses it, with the server establishing who acts:
    the feeding store (the cluster's superuser, as the decider's own writes) takes the engine's
    output and is read from; each step naming a person (handling, sign-in, an audit record, a
    zone save) is made by a store signed in as that person, with the record's clock frozen at
    the injected clock. A name that is not a string, or empty, goes to the feeding store, which
    refuses it like any other store."""

    HANDLING = ("acknowledge", "close_alert", "shelve", "unshelve")
    ROLE_OF = {"trainer": "trainer"}           # everyone else an operator

    def __init__(self, people: People, clock, **kw):
        from centraldb import open_store
        self.people, self.clock, self.kw = people, clock, kw
        self.decider = open_store(people.dsn, clock=clock, **kw)
        self._persons: dict[str, PgStore] = {}
        self._frozen = None
        self._lock = threading.Lock()

    def person(self, who: str) -> PgStore:
        with self._lock:
            if who not in self._persons:
                self._persons[who] = self.people.store(who, self.ROLE_OF.get(who, "operator"),
                                                       clock=self.clock, **self.kw)
            self.people.freeze_clock(self.clock.t)
            return self._persons[who]

    def _by(self, who):
        self.decider.flush()                   # what the decider stored is there first
        if not isinstance(who, str) or not who.strip():
            return self.decider
        return self.person(who.strip())

    def __getattr__(self, name):
        if name in self.HANDLING:
            return lambda alert_id, who, *a, **k: getattr(self._by(who), name)(alert_id, who, *a, **k)
        return getattr(self.decider, name)

    def close(self, alert_id=None, operator=None, note=None):
        if alert_id is not None:
            return self._by(operator).close_alert(alert_id, operator, note)
        for s in self._persons.values():
            s.close()
        self.decider.close()

    def sign_in(self, who):
        return self._by(who).sign_in(who)

    def audit(self, who, action, detail=None):
        return self._by(who).audit(who, action, detail)

    def audit_log(self):
        """The audit log without the ``account_created`` records of the accounts this wrapper
        made for the test's people (the setting of a test, not what it does)."""
        made = set(self.people.passwords)
        return [r for r in self.decider.audit_log()
                if not (r["action"] == "account_created" and r["detail"].get("username") in made)]

    def record_zone_edit(self, feature, who, *a, **k):
        return self._by(who).record_zone_edit(feature, who, *a, **k)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
