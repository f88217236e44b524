"""``monitorapp accounts``: manage the people of a PostgreSQL record (spec v2 §8, issue 14).

    monitorapp accounts --db postgresql://ADMIN@HOST/DB create USER --role ROLE [--password-file F]
    monitorapp accounts --db ... reset USER [--password-file F]
    monitorapp accounts --db ... role USER ROLE
    monitorapp accounts --db ... disable USER
    monitorapp accounts --db ... lock USER [--minutes 15]
    monitorapp accounts --db ... unlock USER
    monitorapp accounts --db ... expire-lockouts
    monitorapp accounts --db ... watch-failures --log /var/log/postgresql/postgresql-15-main.log
    monitorapp accounts --db ... list

The command connects as the administrator named in ``--db`` and calls the server's account
functions (``centraldb.accounts``): the server checks that this login is an administrator,
makes the change and audits it with that login's name. Passwords never go on the command line:
a new account's password is typed at a prompt (twice) or read from the first line of
``--password-file`` (which must be readable by its owner only); only its SCRAM-SHA-256 verifier,
computed here, is sent. The administrator's own password comes from libpq (``PGPASSFILE``,
``~/.pgpass``, ``PGPASSWORD``) or, at a terminal, from a prompt; a ``--db`` URL holding a
password is refused, because a command line is visible to every local user.

The first administrator of a new record is made by the cluster's superuser with the same
command (``--db postgresql://postgres@...``): the server lets a superuser call every function.

Lockout: the server refuses a locked login at connect time, but PostgreSQL 15 cannot count wrong
passwords in SQL; ``watch-failures`` reads them from the server's log (it runs on the database
server, as an administrator) and locks an account after 5 within 15 minutes, for 15 minutes
(the embedded store's numbers); each lock is audited by the server.

Exit status: 0 done; 2 refused or bad input (the message says why); 1 an internal error.
"""
from __future__ import annotations

import argparse
import getpass
import os
import stat
import sys
from datetime import datetime, timezone
from urllib.parse import urlsplit

PROG = "monitorapp accounts"


class Refused(Exception):
    """Bad input or a refusal, reported in one line with exit status 2."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    from centraldb.roles import ROLES
    p = argparse.ArgumentParser(prog=PROG, description="Manage the accounts of a PostgreSQL "
                                "record (every change audited by the server).")
    p.add_argument("--db", required=True, metavar="URL",
                   help="postgresql://ADMIN@HOST[:PORT]/DB: the record, as its administrator "
                        "(password from PGPASSFILE/~/.pgpass/PGPASSWORD or a prompt)")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = sub.add_parser("create", help="a new account with its role and password")
    c.add_argument("user")
    c.add_argument("--role", required=True, choices=ROLES)
    c.add_argument("--password-file", metavar="FILE",
                   help="read the password from the first line of FILE (mode 0600)")
    r = sub.add_parser("reset", help="set a new password")
    r.add_argument("user")
    r.add_argument("--password-file", metavar="FILE")
    g = sub.add_parser("role", help="assign a role")
    g.add_argument("user")
    g.add_argument("role", choices=ROLES)
    d = sub.add_parser("disable", help="disable an account (its sessions end now)")
    d.add_argument("user")
    k = sub.add_parser("lock", help="lock an account for a while")
    k.add_argument("user")
    k.add_argument("--minutes", type=float, default=15.0)
    u = sub.add_parser("unlock", help="unlock a locked account now")
    u.add_argument("user")
    sub.add_parser("expire-lockouts", help="unlock every account whose lock has run out")
    w = sub.add_parser("watch-failures", help="lock accounts after failed passwords in the "
                       "server's log (on the database server)")
    w.add_argument("--log", required=True, metavar="FILE",
                   help="the PostgreSQL server's log (log_line_prefix starting with '%%m ')")
    w.add_argument("--max", type=int, default=5, help="failures that lock (default 5)")
    w.add_argument("--window-min", type=float, default=15.0,
                   help="counted over this many minutes (default 15)")
    w.add_argument("--lock-min", type=float, default=15.0, help="lock for (default 15 minutes)")
    w.add_argument("--follow", action="store_true",
                   help="keep reading the log as it grows (otherwise: once, then exit)")
    sub.add_parser("list", help="the accounts, their roles and states")
    return p.parse_args(argv)


def read_password_file(path: str) -> str:
    try:
        st = os.stat(path)
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise Refused(f"password file {path}: readable by others "
                          f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
        with open(path, encoding="utf-8") as f:
            line = f.readline().rstrip("\r\n")
    except OSError as e:
        raise Refused(f"password file {path}: {e.strerror or e}") from None
    if not line:
        raise Refused(f"password file {path}: the first line is empty")
    return line


def ask_password(user: str, path: str | None) -> str:
    if path:
        return read_password_file(path)
    if not sys.stdin.isatty():
        raise Refused("give the password with --password-file or type it at a terminal "
                      "(never on the command line)")
    first = getpass.getpass(f"new password for {user}: ")
    if getpass.getpass(f"again, new password for {user}: ") != first:
        raise Refused("the two passwords differ")
    return first


def connect(url: str):
    import psycopg
    from centraldb import is_pg_target
    from centraldb.store import redact
    if not is_pg_target(url):
        raise Refused(f"--db must be a postgresql:// URL, not {url[:80]!r}")
    try:
        if urlsplit(url).password is not None:
            raise Refused("--db holds a password: a command line is visible to every local "
                          "user; use PGPASSFILE or ~/.pgpass, or type it at the prompt")
    except ValueError:
        raise Refused("--db is not a valid URL") from None
    try:
        return psycopg.connect(url, application_name=PROG)
    except psycopg.OperationalError as e:
        text = str(e).strip()
        if "no password supplied" in text and sys.stdin.isatty():
            who = urlsplit(url).username or getpass.getuser()
            try:
                return psycopg.connect(url, application_name=PROG,
                                       password=getpass.getpass(f"password for {who}: "))
            except psycopg.OperationalError as e2:
                text = str(e2).strip()
        raise Refused(f"{redact(url)}: cannot connect: {text.splitlines()[-1] if text else e}"
                      ) from None


def _when(t) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _state(a) -> str:
    if a.disabled:
        return "disabled"
    if a.locked:
        return f"locked until {_when(a.locked_until)}"
    return "active"


def run(args, conn) -> str:
    from centraldb import accounts
    act = args.action
    if act == "create":
        password = ask_password(args.user, args.password_file)
        a = accounts.create(conn, args.user, args.role, password)
        return f"account {a.username} created ({a.role}) by {a.created_by}"
    if act == "reset":
        password = ask_password(args.user, args.password_file)
        a = accounts.reset(conn, args.user, password)
        return f"password of {a.username} reset by {a.changed_by}"
    if act == "role":
        a = accounts.set_role(conn, args.user, args.role)
        return f"{a.username} is now {a.role}"
    if act == "disable":
        a = accounts.disable(conn, args.user)
        return f"account {a.username} disabled by {a.changed_by}"
    if act == "lock":
        a = accounts.lock(conn, args.user, args.minutes)
        return f"account {a.username} locked until {_when(a.locked_until)}"
    if act == "unlock":
        a = accounts.unlock(conn, args.user)
        return f"account {a.username} unlocked" + (" (still disabled)" if a.disabled else "")
    if act == "expire-lockouts":
        return f"{accounts.expire_lockouts(conn)} lock(s) expired"
    if act == "watch-failures":
        return watch_failures(args, conn)
    rows = accounts.list_accounts(conn)
    width = max([len(a.username) for a in rows] + [8])
    lines = [f"{'USER':<{width}}  {'ROLE':<14}  {'LAST SIGN-IN':<20}  STATE"]
    lines += [f"{a.username:<{width}}  {a.role:<14}  {_when(a.last_sign_in):<20}  {_state(a)}"
              for a in rows]
    return "\n".join(lines)


def watch_failures(args, conn) -> str:
    """Lock after ``--max`` failed passwords within ``--window-min``; with ``--follow``, for
    ever (each lock is printed as it happens), else once over the log as it is."""
    import time
    from centraldb import accounts
    if args.max < 1 or not args.window_min > 0 or not args.lock_min > 0:
        raise Refused("--max, --window-min and --lock-min must be positive")
    try:
        f = open(args.log, encoding="utf-8", errors="replace")
    except OSError as e:
        raise Refused(f"{args.log}: {e.strerror or e}") from None
    seen: list[tuple[float, str]] = []
    total = 0
    with f:
        while True:
            seen += accounts.failed_sign_ins(f.readlines())
            now = time.time()
            seen = [(t, u) for t, u in seen if t > now - args.window_min * 60]
            for a in accounts.lock_after_failures(conn, seen, now, max_failures=args.max,
                                                  window_s=args.window_min * 60,
                                                  lock_minutes=args.lock_min):
                total += 1
                print(f"account {a.username} locked until {_when(a.locked_until)} "
                      f"after {args.max} failed passwords", flush=True)
            accounts.expire_lockouts(conn)
            if not args.follow:
                return f"{total} account(s) locked"
            time.sleep(2.0)


def cli_main(argv: list[str]) -> int:
    args = parse_args(argv)
    from localdb.accounts import AccountError
    try:
        conn = connect(args.db)
    except Refused as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    try:
        print(run(args, conn))
        return 0
    except (Refused, AccountError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    finally:
        conn.close()
