"""What the server enforces at connect time (PostgreSQL 15), on a cluster of its own configured as
a centre's should be (``shared_preload_libraries = 'auth_delay'``): every wrong password is
answered only after the delay, so guessing is slow whatever client guesses; the failure is in the
server's log with the login's name (what a watcher that locks accounts reads); a locked login is
refused by the server itself, right password or not, and an application's ``sign_in()`` is
refused for a login that has no account in the record."""
from __future__ import annotations

import time

import psycopg
import pytest

from centraldb import accounts
from centraldb.schema import migrate
from tests.fixtures_pg import _missing, start_cluster, stop_cluster

DELAY_MS = 700


@pytest.fixture(scope="module")
def delayed_cluster():
    why = _missing()
    if why:
        pytest.skip(why)
    cluster, root = start_cluster(settings={
        "fsync": "off", "shared_preload_libraries": "'auth_delay'",
        "auth_delay.milliseconds": str(DELAY_MS)})
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE centre")
        with psycopg.connect(cluster.dsn("centre")) as conn:
            migrate(conn)
            conn.commit()
            accounts.create(conn, "olly", "operator", "olly-right-password")
        yield cluster
    finally:
        stop_cluster(cluster, root)


def _try(cluster, password) -> tuple[float, str | None]:
    t0 = time.monotonic()
    try:
        with psycopg.connect(cluster.dsn("centre"), user="olly", password=password):
            return time.monotonic() - t0, None
    except psycopg.OperationalError as e:
        return time.monotonic() - t0, str(e).strip().splitlines()[-1]


def test_every_wrong_password_waits_and_is_logged_by_name(delayed_cluster):
    ok_s, why = _try(delayed_cluster, "olly-right-password")
    assert why is None
    for _ in range(3):
        took, why = _try(delayed_cluster, "a-guess-at-it")
        assert "password authentication failed" in why
        assert took >= DELAY_MS / 1000 * 0.9
    assert ok_s < DELAY_MS / 1000           # the right password is not slowed
    log = (delayed_cluster.socket_dir / "log").read_text(errors="replace")
    assert log.count('password authentication failed for user "olly"') >= 3


def test_a_locked_login_is_refused_by_the_server_and_an_account_is_needed(delayed_cluster):
    with psycopg.connect(delayed_cluster.dsn("centre")) as conn:
        accounts.lock(conn, "olly", 5)
    _, why = _try(delayed_cluster, "olly-right-password")
    assert why is not None and "not permitted to log in" in why
    with psycopg.connect(delayed_cluster.dsn("centre")) as conn:
        accounts.unlock(conn, "olly")
        # a database login that is not an account of this record: sign_in() refuses it
        conn.execute("CREATE ROLE stray LOGIN PASSWORD 'stray-password' IN ROLE monitorapp_operator")
        conn.commit()
    with psycopg.connect(delayed_cluster.dsn("centre"), user="olly",
                         password="olly-right-password") as conn:
        assert accounts.sign_in(conn) == ("olly", "operator")
    with psycopg.connect(delayed_cluster.dsn("centre"), user="stray",
                         password="stray-password") as conn:
        with pytest.raises(accounts.AccountError, match="has no monitorapp account"):
            accounts.sign_in(conn)


def test_five_wrong_passwords_lock_the_account_through_the_servers_log(delayed_cluster):
    """The watcher reads the server's own log: after five failures olly is locked (the server
    then refuses even the right password); earlier failures do not count after an unlock."""
    import os
    import subprocess
    import sys
    from tests.conftest import ROOT
    c = delayed_cluster
    with psycopg.connect(c.dsn("centre")) as conn:
        accounts.create(conn, "ada", "administrator", "ada-s-long-passphrase")

    def watch():
        env = dict(os.environ, PGPASSWORD="ada-s-long-passphrase")
        return subprocess.run(
            [sys.executable, "-m", "monitorapp.cli", "accounts", "--db",
             f"postgresql://ada@{c.host}:{c.port}/centre", "watch-failures",
             "--log", str(c.socket_dir / "log")],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    for _ in range(2):
        _try(c, "guess")
    assert watch().stdout.strip().splitlines()[-1] == "0 account(s) locked"
    assert _try(c, "olly-right-password")[1] is None
    for _ in range(3):                          # with the earlier ones: five within 15 minutes
        _try(c, "guess")
    r = watch()
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("account olly locked until ") and "after 5 failed" in r.stdout
    assert "not permitted to log in" in _try(c, "olly-right-password")[1]
    with psycopg.connect(c.dsn("centre")) as conn:
        assert conn.execute("SELECT who, action FROM audit_log ORDER BY seq DESC LIMIT 1"
                            ).fetchone() == ("ada", "account_locked")
        accounts.unlock(conn, "olly")
    assert watch().stdout.strip().splitlines()[-1] == "0 account(s) locked"     # a fresh count
    assert _try(c, "olly-right-password")[1] is None
