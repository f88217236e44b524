"""Fixtures for the PostgreSQL store's tests: a throw-away PostgreSQL 15 + PostGIS cluster of the
test session's own, and a fresh database per test.

``pg_cluster`` (session) runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/15/bin`` in a
new temporary directory, as an unprivileged user (CI runs as root, and PostgreSQL refuses to
run as root): ``nobody``/``nogroup`` when we are root, ourselves otherwise. The directory is
made under the system temporary directory (not pytest's ``tmp_path``, whose parents are 0700 and
root's) and handed to that user. The server listens on 127.0.0.1 on a free port and on a socket
in the same directory (never the system cluster on 5432 or its socket directory), with
``scram-sha-256`` for every connection and a random superuser password. It is stopped
(``pg_ctl stop -m fast``) and removed at the end of the session.

For speed on a shared two-core machine the test cluster runs with ``fsync=off``: nothing here
tests what survives a power cut (a killed *client* loses nothing that the server committed,
whatever fsync says); the benchmarks start their own cluster with the defaults.

Without the binaries the tests are skipped with the reason, except under ``CI=true``, where a
missing PostgreSQL is a failure (``make test`` installs it).

``pg_template`` (session) is a database migrated once to the current schema; ``pg_dsn``
(function) is a fresh database made from it (``CREATE DATABASE ... TEMPLATE``, a file copy:
tens of milliseconds, not a migration per test) and dropped afterwards.
"""
from __future__ import annotations

import itertools
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("MONITORAPP_PG_BIN", "/usr/lib/postgresql/15/bin"))
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
SUPERUSER = "pgtest"


@dataclass(frozen=True)
class PgCluster:
    """A running throw-away cluster: where it is and how to reach it as its superuser."""
    datadir: Path
    host: str
    port: int
    socket_dir: Path
    user: str
    password: str

    def dsn(self, dbname: str = "postgres") -> str:
        return (f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{dbname}"
                f"?connect_timeout=10")


def _missing() -> str | None:
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return f"PostgreSQL 15 is not installed ({PG_BIN / tool} is missing; `make test` installs it)"
    if not POSTGIS_CONTROL.is_file():
        return f"PostGIS 3 is not installed ({POSTGIS_CONTROL} is missing; `make test` installs it)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg 3 is not installed (pip install -e .)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_as() -> tuple[dict, int | None, int | None]:
    """subprocess.run keyword arguments that drop root to nobody/nogroup (nothing if not root)."""
    if os.geteuid() != 0:
        return {}, None, None
    nobody = pwd.getpwnam("nobody")
    return {"user": "nobody", "group": "nogroup", "extra_groups": []}, nobody.pw_uid, nobody.pw_gid


def start_cluster(base: Path | None = None, *, settings: dict | None = None) -> tuple[PgCluster, Path]:
    """initdb and start a cluster in a new temporary directory; returns it and the directory
    (remove it with ``stop_cluster``). Also used by the benchmarks."""
    as_kw, uid, gid = _run_as()
    root = Path(tempfile.mkdtemp(prefix="monitorapp-pg-", dir=base))
    if uid is not None:
        os.chown(root, uid, gid)
    os.chmod(root, 0o700)
    datadir, pwfile = root / "data", root / "pw"
    password = secrets.token_urlsafe(18)
    pwfile.write_text(password + "\n")
    if uid is not None:
        os.chown(pwfile, uid, gid)
    os.chmod(pwfile, 0o600)
    env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8", HOME=str(root), PGTZ="UTC")
    r = subprocess.run([str(PG_BIN / "initdb"), "-D", str(datadir), "-U", SUPERUSER,
                        f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8",
                        "--locale=C.UTF-8", "--no-instructions"],
                       capture_output=True, text=True, env=env, cwd=root, timeout=120, **as_kw)
    pwfile.unlink()
    if r.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {r.stderr or r.stdout}")
    conf = {"listen_addresses": "'127.0.0.1'", "unix_socket_directories": f"'{root}'",
            "max_connections": "60", "shared_buffers": "'128MB'", "timezone": "'UTC'",
            "log_min_messages": "warning", "logging_collector": "off",
            **(settings or {})}
    last = ""
    for _attempt in range(5):           # a free port can be taken between the check and the start
        port = _free_port()
        with open(datadir / "postgresql.auto.conf", "a") as f:
            for k, v in {**conf, "port": str(port)}.items():
                f.write(f"{k} = {v}\n")
        r = subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-l", str(root / "log"),
                            "-w", "-t", "60", "start"],
                           capture_output=True, text=True, env=env, cwd=root, timeout=90, **as_kw)
        if r.returncode == 0:
            return PgCluster(datadir, "127.0.0.1", port, root, SUPERUSER, password), root
        last = (root / "log").read_text() if (root / "log").exists() else r.stderr
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"pg_ctl start failed: {last[-2000:]}")


def stop_cluster(cluster: PgCluster, root: Path) -> None:
    as_kw, _, _ = _run_as()
    try:
        subprocess.run([str(PG_BIN / "pg_ctl"), "-D", str(cluster.datadir), "-m", "fast", "-w",
                        "stop"], capture_output=True, timeout=60, cwd=root, **as_kw)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster():
    why = _missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs PostgreSQL for the store tests: {why}")
        pytest.skip(why)
    cluster, root = start_cluster(settings={"fsync": "off", "full_page_writes": "off",
                                            "synchronous_commit": "off"})
    try:
        yield cluster
    finally:
        stop_cluster(cluster, root)


@pytest.fixture(scope="session")
def pg_template(pg_cluster):
    """The name of a database with PostGIS and every migration applied (a template)."""
    import psycopg
    from centraldb.schema import migrate
    name = "monitorapp_template"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(pg_cluster.dsn(name)) as conn:
        migrate(conn)
    return name


_db_numbers = itertools.count(1)


@pytest.fixture
def pg_dsn(pg_cluster, pg_template):
    """A fresh, migrated database of its own for one test; dropped afterwards."""
    import psycopg
    name = f"t{os.getpid()}_{next(_db_numbers)}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {pg_template}")
    yield pg_cluster.dsn(name)
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def pg_empty_dsn(pg_cluster):
    """A fresh database without our schema (PostGIS not created either): for migration tests."""
    import psycopg
    name = f"e{os.getpid()}_{next(_db_numbers)}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield pg_cluster.dsn(name)
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
