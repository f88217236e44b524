"""``monitorapp broker-config``: a locked-down Mosquitto 2.0 configuration for a live centre
(spec v2 §8, issue 15).

It writes into ``--out DIR``:

* ``mosquitto.conf``: the listener(s) (plain MQTT with passwords, and/or TLS with client
  certificates whose common name is the identity), no anonymous access, the password file,
  the ACL file, ``max_packet_size`` (the monitor's 64 KiB payload limit plus 1 KiB for the
  topic and headers), persistence in ``DIR/data/`` and queues deep enough for the monitor's
  persistent session;
* ``acl``: what each identity may do, by role (``role_acl``). Mosquitto 2.0 applies an ACL
  file to everyone: a user with no lines in it can publish nothing and receives nothing. (It
  grants every SUBSCRIBE; what it enforces is at delivery: a message goes only to a client
  with read access to its topic. An unauthorised PUBLISH is answered "Not authorized" in
  MQTT 5, acknowledged as usual in 3.1.1, never delivered, and the connection is closed.)
* ``passwd``: the identities' passwords, hashed by ``mosquitto_passwd -U`` (the plain text
  never goes on a command line);
* ``credentials/NAME.password``: each identity's password, one line, mode 0600, for the
  programs' ``--password-file`` options (random unless ``--password-from FILE`` gives them).

Everything that holds a secret is 0600 and the directories 0700. An existing configuration is
not overwritten without ``--force``. Bad input is one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile

PROG = "monitorapp broker-config"
MESSAGE_SIZE_LIMIT = 65536                   # bytes of payload: the monitor's MAX_PAYLOAD
# Mosquitto 2.0.11 recommends max_packet_size over message_size_limit (it logs a note for the
# latter). It bounds the whole packet, so it is the payload limit plus room for the topic and
# the headers; a client sending a bigger packet is disconnected and its message goes nowhere.
MAX_PACKET_SIZE = MESSAGE_SIZE_LIMIT + 1024
# What the broker keeps for a persistent session that is down (the monitor between its death
# and the standby's take-over): no count limit (Mosquitto's default of 1000 would drop fixes
# after a fraction of a second at 20,000 tags), bounded in bytes: 1 GiB per client is about
# 3 hours of 20,000 tags at one 300-byte fix a minute, 12 minutes at one every 4 s.
MAX_QUEUED_MESSAGES = 0
MAX_QUEUED_BYTES = 1 << 30
SESSION_EXPIRY = "7d"                        # mqttconfig.DEFAULT_SESSION_EXPIRY_S
FEED_TOPICS = ("em/v1/fix/#", "em/v1/event/#", "em/v1/heartbeat/#")
CENTRE_TOPICS = ("em/v1/alert/#", "em/v1/state/#")
NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
FILES = ("mosquitto.conf", "acl", "passwd")


class ConfigError(ValueError):
    """Bad input, with a sentence naming it."""


def valid_filter(topic: str) -> bool:
    """An MQTT topic filter: no spaces, ``+`` only as a whole level, ``#`` only as the last."""
    levels = topic.split("/")
    if not topic or any(c.isspace() or c == "\0" for c in topic):
        return False
    return all(("+" not in lv or lv == "+") and ("#" not in lv or (lv == "#" and i == len(levels) - 1))
               for i, lv in enumerate(levels))


def role_acl(role: str, extra_feed: tuple[str, ...] = ()) -> list[str]:
    """The ACL lines for one identity of ``role`` (gateway, monitor, console)."""
    feed = (*FEED_TOPICS, *extra_feed)
    if role == "gateway":           # publish its feed, subscribe nothing
        return [f"topic write {t}" for t in feed]
    if role == "monitor":           # read the feed; publish and read the centre's topics
        return [f"topic read {t}" for t in feed] + [f"topic readwrite {t}" for t in CENTRE_TOPICS]
    if role == "console":           # read the centre's topics, publish nothing
        return [f"topic read {t}" for t in CENTRE_TOPICS]
    raise ValueError(role)


def acl_text(identities: list[tuple[str, str]], extra_feed: tuple[str, ...] = ()) -> str:
    lines = ["# Written by monitorapp broker-config. With an acl_file, Mosquitto lets a user do only",
             "# what its lines allow: a user not named here publishes nothing and receives nothing.",
             "# gateway: write the feed topics; monitor: read the feed, read/write alert and state;",
             "# console: read alert and state only. No anonymous lines: allow_anonymous is false.", ""]
    for name, role in identities:
        lines += [f"# {role}", f"user {name}", *role_acl(role, extra_feed), ""]
    return "\n".join(lines)


def _hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{what} {text!r} must be ADDRESS:PORT, e.g. 127.0.0.1:1883")
    if any(c.isspace() for c in host):
        raise ConfigError(f"{what} {text!r}: the address has a space")
    return host.strip("[]"), int(port)


def conf_text(out: str, plain: tuple[str, int] | None, tls: tuple[str, int] | None,
              ca: str | None, cert: str | None, key: str | None, log_file: str | None) -> str:
    lines = ["# Mosquitto 2.0 configuration written by monitorapp broker-config (spec v2 §8).",
             "# Every client must sign in; what each identity may publish and read is in the ACL.",
             "per_listener_settings false",
             "allow_anonymous false",
             f"password_file {os.path.join(out, 'passwd')}",
             f"acl_file {os.path.join(out, 'acl')}",
             f"max_packet_size {MAX_PACKET_SIZE}",
             "persistence true",
             f"persistence_location {os.path.join(out, 'data')}/",
             "autosave_interval 60",
             f"max_queued_messages {MAX_QUEUED_MESSAGES}",
             f"max_queued_bytes {MAX_QUEUED_BYTES}",
             f"persistent_client_expiration {SESSION_EXPIRY}",
             f"log_dest {'file ' + log_file if log_file else 'stderr'}",
             "log_type error", "log_type warning", "log_type notice", "log_type information",
             "connection_messages true", "log_timestamp true", ""]
    if plain:
        lines += ["# plain MQTT: user name and password", f"listener {plain[1]} {plain[0]}",
                  "protocol mqtt", ""]
    if tls:
        lines += ["# TLS: the client's certificate (signed by cafile) names the identity (its CN)",
                  f"listener {tls[1]} {tls[0]}", "protocol mqtt", f"cafile {ca}", f"certfile {cert}",
                  f"keyfile {key}", "tls_version tlsv1.2", "require_certificate true",
                  "use_identity_as_username true", ""]
    return "\n".join(lines)


def read_passwords(path: str) -> dict[str, str]:
    """``NAME:PASSWORD`` lines (blank lines and ``#`` comments skipped)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--password-from {path}: {getattr(e, 'strerror', None) or 'not UTF-8 text'}") from None
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, pw = line.partition(":")
        if not sep or not NAME_RE.fullmatch(name) or not pw:
            raise ConfigError(f"--password-from {path} line {n}: must be NAME:PASSWORD")
        out[name] = pw
    return out


def _write(path: str, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, mode)


def _mosquitto_passwd() -> str:
    path = shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if os.path.exists("/usr/bin/mosquitto_passwd") else None)
    if path is None:
        raise ConfigError("mosquitto_passwd is not installed (Debian package mosquitto)")
    return path


def hashed_password_file(path: str, passwords: dict[str, str]) -> None:
    """``path`` holding ``passwords`` hashed: written as plain text 0600 in the same directory,
    then hashed in place by ``mosquitto_passwd -U`` and moved to ``path``."""
    tool = _mosquitto_passwd()
    fd, tmp = tempfile.mkstemp(prefix=".passwd-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(f"{n}:{p}\n" for n, p in passwords.items()))
        r = subprocess.run([tool, "-U", tmp], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise ConfigError(f"mosquitto_passwd failed: {' '.join((r.stderr or r.stdout).split())[:200]}")
        with open(tmp, encoding="utf-8") as f:
            hashed = f.read().splitlines()
        if len(hashed) != len(passwords) or any(h.split(":", 1)[1] == passwords[h.split(":", 1)[0]]
                                                 for h in hashed):
            raise ConfigError("mosquitto_passwd did not hash every password")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _owner(name: str) -> tuple[int, int]:
    import pwd
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"--owner {name[:40]!r}: no such user") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise ConfigError(f"--owner {name}: only root can give files to another user")
    return entry.pw_uid, entry.pw_gid


def _identities(args) -> list[tuple[str, str]]:
    ids = [(n, "gateway") for n in args.gateway or []]
    ids += [(args.monitor, "monitor")] if args.monitor else []
    ids += [(n, "console") for n in args.console or []]
    if not ids:
        raise ConfigError("give the identities: --gateway NAME, --monitor NAME, --console NAME")
    seen: set[str] = set()
    for name, role in ids:
        if not NAME_RE.fullmatch(name):
            raise ConfigError(f"--{role} {name[:70]!r}: a name is 1-64 of A-Z a-z 0-9 _ . -")
        if name in seen:
            raise ConfigError(f"identity {name!r} is given twice; each identity has one role")
        seen.add(name)
    return ids


def _tls(args) -> tuple[str | None, str | None, str | None]:
    given = [args.tls_ca, args.tls_cert, args.tls_key]
    if not any(given):
        if args.tls_listen:
            raise ConfigError("--tls-listen needs --tls-ca, --tls-cert and --tls-key")
        return None, None, None
    if not all(given):
        raise ConfigError("a TLS listener needs all of --tls-ca, --tls-cert and --tls-key")
    out = []
    for opt, path in (("--tls-ca", args.tls_ca), ("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if not os.path.isfile(path):
            raise ConfigError(f"{opt} {path}: no such file")
        out.append(os.path.abspath(path))
    return out[0], out[1], out[2]


def write_config(args) -> dict:
    """Check ``args``, write the files; returns what was written (no secrets)."""
    ids = _identities(args)
    ca, cert, key = _tls(args)
    plain = None if args.listen in ("off", "none") else _hostport(args.listen, "--listen")
    tls = _hostport(args.tls_listen or "0.0.0.0:8883", "--tls-listen") if ca else None
    if not plain and not tls:
        raise ConfigError("--listen off leaves no listener: give --tls-ca/--tls-cert/--tls-key too")
    if plain and tls and plain[1] == tls[1] and plain[0] == tls[0]:
        raise ConfigError("--listen and --tls-listen are the same address and port")
    extra = tuple(args.feed_topic or ())
    for t in extra:
        if not valid_filter(t) or t.startswith(("em/", "$")):
            raise ConfigError(f"--feed-topic {t!r} must be an MQTT topic filter outside em/ "
                              "(e.g. owntracks/+/+ or traccar/positions)")
    given = read_passwords(args.password_from) if args.password_from else {}
    names = {n for n, _ in ids}
    if args.password_from:
        missing = sorted(names - set(given))
        unknown = sorted(set(given) - names)
        if missing or unknown:
            raise ConfigError(f"--password-from {args.password_from}: "
                              + (f"no password for {', '.join(missing)}" if missing else
                                 f"names no identity given: {', '.join(unknown)}"))
    out = os.path.abspath(args.out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConfigError(f"--out {args.out}: exists and is not a directory")
    present = [f for f in FILES if os.path.exists(os.path.join(out, f))]
    if present and not args.force:
        raise ConfigError(f"--out {args.out} already holds a configuration ({', '.join(present)}); "
                          "give --force to replace it")
    if any(c.isspace() for c in out):
        raise ConfigError(f"--out {args.out}: Mosquitto cannot take a path with a space")
    log_file = os.path.abspath(args.log_file) if args.log_file else None
    owner = _owner(args.owner) if args.owner else None
    passwords = {n: given.get(n) or secrets.token_urlsafe(24) for n, _ in ids}
    try:
        for d in (out, os.path.join(out, "data"), os.path.join(out, "credentials")):
            os.makedirs(d, mode=0o700, exist_ok=True)
            os.chmod(d, 0o700)
        hashed_password_file(os.path.join(out, "passwd"), passwords)
        _write(os.path.join(out, "acl"), acl_text(ids, extra), 0o600)
        for name, pw in passwords.items():
            _write(os.path.join(out, "credentials", f"{name}.password"), pw + "\n", 0o600)
        _write(os.path.join(out, "mosquitto.conf"), conf_text(out, plain, tls, ca, cert, key, log_file), 0o600)
        if owner:              # Mosquitto started as root reads these as the user it becomes
            for f in ("", "data", "passwd", "acl", "mosquitto.conf"):
                os.chown(os.path.join(out, f), *owner)
    except OSError as e:
        raise ConfigError(f"--out {args.out}: {e.strerror or e}") from None
    return {"config": os.path.join(out, "mosquitto.conf"), "identities": dict(ids),
            "listeners": {k: f"{v[0]}:{v[1]}" for k, v in (("mqtt", plain), ("mqtts", tls)) if v},
            "credentials": os.path.join(out, "credentials")}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write the configuration into")
    p.add_argument("--gateway", action="append", metavar="NAME", help="a gateway identity (repeatable)")
    p.add_argument("--monitor", metavar="NAME", help="the monitor's identity (the decider and its standby)")
    p.add_argument("--console", action="append", metavar="NAME", help="a console identity (repeatable)")
    p.add_argument("--listen", default="127.0.0.1:1883", metavar="ADDR:PORT",
                   help="plain MQTT listener with passwords (default 127.0.0.1:1883; 'off' for none)")
    p.add_argument("--tls-listen", metavar="ADDR:PORT", help="TLS listener (default 0.0.0.0:8883)")
    p.add_argument("--tls-ca", metavar="FILE", help="CA that signs the client certificates")
    p.add_argument("--tls-cert", metavar="FILE", help="the broker's certificate")
    p.add_argument("--tls-key", metavar="FILE", help="the broker's private key")
    p.add_argument("--feed-topic", action="append", metavar="FILTER",
                   help="another topic the gateways publish and the monitor reads (Traccar "
                        "forwarding, OwnTracks: e.g. owntracks/+/+); repeatable")
    p.add_argument("--password-from", metavar="FILE",
                   help="NAME:PASSWORD lines instead of random passwords")
    p.add_argument("--log-file", metavar="FILE", help="the broker's log file (default: stderr)")
    p.add_argument("--owner", metavar="USER",
                   help="give the files the broker reads to this user (as root: the user Mosquitto "
                        "runs as, normally mosquitto); credentials/ stays with the caller")
    p.add_argument("--force", action="store_true", help="replace an existing configuration in DIR")
    return p


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ConfigError(message)


def cli_main(argv: list[str]) -> int:
    p = _parser()
    p.__class__ = _Parser
    try:
        args = p.parse_args(argv)
        done = write_config(args)
    except ConfigError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    import json
    print(json.dumps(done))
    return 0


if __name__ == "__main__":
    sys.exit(cli_main(sys.argv[1:]))
