"""``monitorapp accounts`` on a real PostgreSQL record, run as the real command (a subprocess),
as an administrator would: the cluster's superuser makes the first administrator; she makes an
operator, who signs in with his own password (SCRAM); she changes his role, resets his password,
locks, unlocks and disables him, and the server refuses or lets him in accordingly. Every change
is in the audit log under her login. Passwords come from a prompt or a private file, never the
command line, and only their verifier reaches the server (its statement log is read to check).
"""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from localdb.hashchain import verify_chain

ROOT = Path(__file__).resolve().parents[1]


def _url(cluster, db: str, user: str) -> str:
    return f"postgresql://{user}@{cluster.host}:{cluster.port}/{db}"


def _db(dsn: str) -> str:
    return urlsplit(dsn).path.lstrip("/")


def accounts(cluster, db, user, password, *args, stdin=subprocess.DEVNULL):
    env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="10")
    env.pop("PGPASSFILE", None)
    return subprocess.run([sys.executable, "-m", "monitorapp.cli", "accounts", "--db",
                           _url(cluster, db, user), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
                          stdin=stdin)


def secret_file(tmp_path, name, text, mode=0o600) -> str:
    p = tmp_path / name
    p.write_text(text + "\n")
    p.chmod(mode)
    return str(p)


def can_sign_in(cluster, db, user, password) -> str | None:
    """None if the server lets the person in, else its reason."""
    try:
        with psycopg.connect(_url(cluster, db, user), password=password):
            return None
    except psycopg.OperationalError as e:
        return str(e).strip().splitlines()[-1]


@pytest.fixture
def centre(pg_cluster, pg_dsn, tmp_path):
    """A record whose first administrator, ada, was made by the cluster's superuser."""
    db = _db(pg_dsn)
    r = accounts(pg_cluster, db, pg_cluster.user, pg_cluster.password, "create", "ada",
                 "--role", "administrator",
                 "--password-file", secret_file(tmp_path, "ada.pw", "ada-s-long-passphrase"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"account ada created (administrator) by {pg_cluster.user}"
    yield db
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        for name in ("ada", "olly", "eve"):
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE usename = %s", (name,))
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')


ADA = "ada-s-long-passphrase"


def test_an_administrator_manages_an_account_and_the_server_enforces_it(pg_cluster, centre,
                                                                        tmp_path):
    c, db = pg_cluster, centre
    r = accounts(c, db, "ada", ADA, "create", "olly", "--role", "operator",
                 "--password-file", secret_file(tmp_path, "olly.pw", "olly-first-password"))
    assert r.returncode == 0 and r.stdout.strip() == "account olly created (operator) by ada"
    assert can_sign_in(c, db, "olly", "olly-first-password") is None
    assert "password authentication failed" in can_sign_in(c, db, "olly", "a-wrong-password")

    assert accounts(c, db, "ada", ADA, "role", "olly", "supervisor").stdout.strip() == \
        "olly is now supervisor"
    with psycopg.connect(_url(c, db, "olly"), password="olly-first-password") as conn:
        assert conn.execute("SELECT pg_has_role('monitorapp_supervisor', 'MEMBER'),"
                            " pg_has_role('monitorapp_operator', 'MEMBER')").fetchone() == (True,
                                                                                            False)
    r = accounts(c, db, "ada", ADA, "reset", "olly",
                 "--password-file", secret_file(tmp_path, "olly2.pw", "olly-second-password"))
    assert r.returncode == 0, r.stderr
    assert "password authentication failed" in can_sign_in(c, db, "olly", "olly-first-password")
    assert can_sign_in(c, db, "olly", "olly-second-password") is None

    r = accounts(c, db, "ada", ADA, "lock", "olly", "--minutes", "15")
    assert r.returncode == 0 and r.stdout.startswith("account olly locked until ")
    assert "not permitted to log in" in can_sign_in(c, db, "olly", "olly-second-password")
    assert accounts(c, db, "ada", ADA, "unlock", "olly").stdout.strip() == "account olly unlocked"
    assert can_sign_in(c, db, "olly", "olly-second-password") is None

    # disabling ends the session he has open, and he cannot come back
    olly = psycopg.connect(_url(c, db, "olly"), password="olly-second-password", autocommit=True)
    assert accounts(c, db, "ada", ADA, "disable", "olly").stdout.strip() == \
        "account olly disabled by ada"
    with pytest.raises(psycopg.OperationalError):
        olly.execute("SELECT 1")
    olly.close()
    assert "not permitted to log in" in can_sign_in(c, db, "olly", "olly-second-password")
    assert accounts(c, db, "ada", ADA, "unlock", "olly").stdout.strip() == \
        "account olly unlocked (still disabled)"
    assert "not permitted to log in" in can_sign_in(c, db, "olly", "olly-second-password")

    listing = accounts(c, db, "ada", ADA, "list").stdout.splitlines()
    assert listing[0].split() == ["USER", "ROLE", "LAST", "SIGN-IN", "STATE"]
    assert [ln.split()[:2] + [ln.split()[-1]] for ln in listing[1:]] == [
        ["ada", "administrator", "active"], ["olly", "supervisor", "disabled"]]

    with psycopg.connect(c.dsn(db)) as conn:
        log = conn.execute("SELECT who, action, detail FROM audit_log ORDER BY seq").fetchall()
        assert verify_chain(conn, "audit_log").intact
    assert [(w, a) for w, a, _ in log] == [
        (c.user, "account_created"), ("ada", "account_created"), ("ada", "role_changed"),
        ("ada", "password_reset"), ("ada", "account_locked"), ("ada", "account_unlocked"),
        ("ada", "account_disabled"), ("ada", "account_unlocked")]
    assert '"sessions_ended" : 1' in log[6][2] or '"sessions_ended": 1' in log[6][2]
    assert all("olly-" not in d for _, _, d in log)              # no password in the record


def test_an_operator_cannot_use_the_command(pg_cluster, centre, tmp_path):
    c, db = pg_cluster, centre
    accounts(c, db, "ada", ADA, "create", "olly", "--role", "operator",
             "--password-file", secret_file(tmp_path, "olly.pw", "olly-first-password"))
    r = accounts(c, db, "olly", "olly-first-password", "create", "eve", "--role",
                 "administrator", "--password-file", secret_file(tmp_path, "eve.pw", "x" * 12))
    assert r.returncode == 2
    assert "refused by the record: permission denied for function create_account" in r.stderr
    r = accounts(c, db, "olly", "olly-first-password", "role", "olly", "administrator")
    assert r.returncode == 2 and "permission denied for function set_account_role" in r.stderr
    assert can_sign_in(c, db, "eve", "x" * 12) is not None


def test_passwords_never_travel_on_the_command_line_or_reach_the_server(pg_cluster, centre,
                                                                         tmp_path):
    c, db = pg_cluster, centre
    with psycopg.connect(c.dsn(), autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {db} SET log_statement = 'all'")
    # an administrator's password in --db is refused before anything is sent
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "monitorapp.cli", "accounts", "--db",
                        f"postgresql://ada:{ADA}@{c.host}:{c.port}/{db}", "list"],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 2 and "--db holds a password" in r.stderr and ADA not in r.stderr
    # no terminal and no file: no password from anywhere else
    r = accounts(c, db, "ada", ADA, "create", "olly", "--role", "operator")
    assert r.returncode == 2 and "--password-file" in r.stderr
    # a password file others can read is refused
    loose = secret_file(tmp_path, "loose.pw", "olly-loose-password", mode=0o644)
    r = accounts(c, db, "ada", ADA, "create", "olly", "--role", "operator",
                 "--password-file", loose)
    assert r.returncode == 2 and "readable by others" in r.stderr
    r = accounts(c, db, "ada", ADA, "create", "olly", "--role", "operator",
                 "--password-file", secret_file(tmp_path, "short.pw", "short"))
    assert r.returncode == 2 and "at least 10 characters" in r.stderr
    r = accounts(c, db, "ada", ADA, "create", "olly", "--role", "operator",
                 "--password-file", secret_file(tmp_path, "olly.pw", "olly-secret-password"))
    assert r.returncode == 0, r.stderr
    server_log = (c.socket_dir / "log").read_text(errors="replace")
    assert "create_account" in server_log and "SCRAM-SHA-256$" in server_log
    assert "olly-secret-password" not in server_log and ADA not in server_log


def _type_into(argv, env, answers: list[tuple[bytes, bytes]], timeout=60) -> tuple[int, bytes]:
    """Run argv on a terminal of its own, answering each prompt as a person types."""
    pid, fd = pty.fork()
    if pid == 0:                                  # the child: the command on the terminal
        os.chdir(ROOT)
        os.execvpe(argv[0], argv, env)
    out, deadline = b"", time.monotonic() + timeout
    pending = list(answers)
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if pending and pending[0][0] in out:
                prompt, answer = pending.pop(0)
                out = out.replace(prompt, b"<" + prompt + b">", 1)
                os.write(fd, answer + b"\n")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out


def test_a_password_typed_at_the_prompt(pg_cluster, centre):
    c, db = pg_cluster, centre
    env = dict(os.environ, PGPASSWORD=ADA)
    argv = [sys.executable, "-m", "monitorapp.cli", "accounts", "--db", _url(c, db, "ada"),
            "create", "olly", "--role", "operator"]
    code, out = _type_into(argv, env, [(b"new password for olly: ", b"typed-at-the-prompt"),
                                       (b"again, new password for olly: ", b"typed-at-the-prompt")])
    assert code == 0, out
    assert b"account olly created (operator) by ada" in out
    assert b"typed-at-the-prompt" not in out                      # not echoed
    assert can_sign_in(c, db, "olly", "typed-at-the-prompt") is None
    # the administrator's own password, typed when libpq has none
    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PGPASSFILE")}
    env["PGPASSFILE"] = "/nonexistent"
    code, out = _type_into([sys.executable, "-m", "monitorapp.cli", "accounts", "--db",
                            _url(c, db, "ada"), "list"], env,
                           [(b"password for ada: ", ADA.encode())])
    assert code == 0, out
    assert b"olly" in out and ADA.encode() not in out


def test_a_lock_runs_out_and_expire_lockouts_lets_the_person_back(pg_cluster, centre, tmp_path,
                                                                  people):
    c, db = pg_cluster, centre
    accounts(c, db, "ada", ADA, "create", "olly", "--role", "operator",
             "--password-file", secret_file(tmp_path, "olly.pw", "olly-first-password"))
    accounts(c, db, "ada", ADA, "lock", "olly", "--minutes", "1")
    assert accounts(c, db, "ada", ADA, "expire-lockouts").stdout.strip() == "0 lock(s) expired"
    assert "not permitted" in can_sign_in(c, db, "olly", "olly-first-password")
    people.freeze_clock(time.time() + 120)
    assert accounts(c, db, "ada", ADA, "expire-lockouts").stdout.strip() == "1 lock(s) expired"
    assert can_sign_in(c, db, "olly", "olly-first-password") is None
    with psycopg.connect(c.dsn(db)) as conn:
        assert conn.execute("SELECT who, action FROM audit_log ORDER BY seq DESC LIMIT 1"
                            ).fetchone() == ("ada", "lockout_expired")
