"""Notification latency and a flood (issue 20): from an alert raised to the SMTP relay accepting
its message, and 500 alerts in a minute.

A real SQLite store, the real engine and ``Notifier``, and an ``aiosmtpd`` relay on loopback
(STARTTLS and AUTH with ``--tls``, a certificate made by ``openssl``). Each offender has a
responsible officer and the borough a police contact, so every strap tamper makes two messages.

* latency: ``--latency N`` tampers, one every ``--gap-s`` seconds; for each message, the time from
  the engine raising the alert to the relay having received the final ``.``: p50, p99, max
  (target p99 ≤ 5 s);
* flood: ``--flood N`` tampers spread over ``--flood-s`` seconds (500 in 60 s by default): when
  the last message is accepted, relative to the end of the flood, and the worst delay.

    .venv/bin/python benchmarks/bench_notify.py [--latency 50] [--flood 500] [--tls]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def caseload_doc(n: int) -> dict:
    offenders = [{"id": f"OFF-{i:05d}", "name": f"Subject {i}", "risk": "high", "borough": "Hackney",
                  "device": f"TAG-{i:05d}", "fix_interval_s": 60, "requirements": [],
                  "responsible_officer": {"name": f"Officer {i % 40}", "email": f"po{i % 40}@probation.example",
                                          "team": "Hackney A"}} for i in range(n)]
    return {"version": 1, "tz": "Europe/London", "zones": {"type": "FeatureCollection", "features": []},
            "offenders": offenders}


class Relay:
    def __init__(self, tls: bool, workdir: pathlib.Path):
        from aiosmtpd.controller import Controller
        self.received: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        relay = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                import email
                msg = email.message_from_bytes(envelope.content)
                with relay.lock:
                    relay.received.append((time.time(), msg["X-EM-Alert"]))
                return "250 2.0.0 queued"
        kw = {}
        self.ca = None
        if tls:
            import ssl
            key, crt = workdir / "relay.key", workdir / "relay.crt"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                            "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(str(crt), str(key))
            from aiosmtpd.smtp import AuthResult
            kw = dict(tls_context=ctx, require_starttls=True, auth_required=True, auth_require_tls=True,
                      authenticator=lambda *a: AuthResult(success=True))
            self.ca = str(crt)
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     server_hostname="localhost", **kw)
        self.controller.start()

    def settings(self, tls: bool):
        from monitorapp.notify.relay import RelaySettings
        return RelaySettings("127.0.0.1", self.port, starttls=tls, ca=self.ca, user="bench" if tls else None,
                             password="x" if tls else None)


def run(n_alerts: int, spread_s: float, tls: bool, workdir: pathlib.Path, label: str) -> dict:
    from localdb.store import Store
    from monitorapp.engine.caseload import parse_caseload
    from monitorapp.engine.engine import Engine
    from monitorapp.feed.timeutil import fmt_time
    from monitorapp.notify.policy import DEFAULT_POLICY, NotifyPolicy, merge
    from monitorapp.notify.service import Notifier
    relay = Relay(tls, workdir)
    cl = parse_caseload(caseload_doc(n_alerts))
    store = Store(workdir / f"{label}.sqlite", anchor=False)
    engine = Engine(cl)
    store.record_caseload(cl)
    store.attach(engine)
    policy = NotifyPolicy(merge(DEFAULT_POLICY, {"sender": {"address": "centre@centre.example"},
                                                 "contacts": {"police": {"Hackney": {"email": "police@police.example"}}}}))
    notifier = Notifier(store, cl, policy, relay.settings(tls))
    notifier.attach(engine)
    notifier.start()
    raised: dict[str, float] = {}
    engine.add_listener(on_alert=lambda a, ch: raised.setdefault(a.alert_id, time.time()) if ch == "raised" else None)
    t0 = time.time()
    try:
        for i in range(n_alerts):
            due = t0 + i * spread_s / max(1, n_alerts)
            while time.time() < due:
                notifier.tick()
                time.sleep(min(0.01, max(0.0, due - time.time())))
            now = time.time()
            engine.submit(json.dumps({"v": 1, "kind": "event", "device": f"TAG-{i:05d}", "seq": 1, "t": fmt_time(now),
                                      "rx": fmt_time(now), "type": "strap_tamper"}), now)
            notifier.tick()
        end_of_raising = time.time()
        want = 2 * n_alerts
        deadline = time.time() + 600
        while len(relay.received) < want and time.time() < deadline:
            notifier.tick()
            time.sleep(0.05)
        done = time.time()
    finally:
        notifier.stop()
        store.close()
        relay.controller.stop()
    delays = sorted(at - raised[aid] for at, aid in relay.received if aid in raised)
    out = {"what": label, "alerts": n_alerts, "messages": len(relay.received), "tls": tls,
           "spread_s": spread_s, "p50_s": round(statistics.median(delays), 3) if delays else None,
           "p99_s": round(delays[int(len(delays) * 0.99) - 1 if len(delays) > 1 else 0], 3) if delays else None,
           "max_s": round(delays[-1], 3) if delays else None,
           "last_after_raising_s": round(done - end_of_raising, 3)}
    print(json.dumps(out), flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--latency", type=int, default=50, help="tampers for the latency run (0: none)")
    p.add_argument("--gap-s", type=float, default=0.2)
    p.add_argument("--flood", type=int, default=500, help="tampers in the flood (0: none)")
    p.add_argument("--flood-s", type=float, default=60.0)
    p.add_argument("--tls", action="store_true", help="STARTTLS and AUTH, as a real relay")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        if args.latency:
            run(args.latency, args.latency * args.gap_s, args.tls, pathlib.Path(d), "latency")
        if args.flood:
            run(args.flood, args.flood_s, args.tls, pathlib.Path(d), "flood")
    return 0


if __name__ == "__main__":
    sys.exit(main())
