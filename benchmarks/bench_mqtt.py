"""Benchmark: the live feed through a real Mosquitto into ``monitorapp monitor``.

20,000 tags each report a fix every 4 s (5,000 fixes/s, evenly spread), published at QoS 1 by
a separate process in real time (``t`` = the publishing time). A few tags (``--breachers``) walk
into their exclusion zone at staggered times. The monitor runs as it does in production
(``python -m monitorapp monitor --clock wall``, its own store, checkpoint-then-ack).

Printed (and as one JSON line at the end):

* the publish rate achieved and the monitor's processing rate over the steady part of the run
  (from its stats lines), its largest backlog and processing lag;
* publish-to-alert-stored latency for every ``exclusion_entered``: from the publication of the
  fix that decided it (the breacher's last fix published before the alert's ``raised_at``) to
  the alert's arrival on ``em/v1/alert/{id}``, which the monitor publishes only after the
  store has committed it. p50, p99, max.

    .venv/bin/python benchmarks/bench_mqtt.py [--seconds 60] [--tags 20000] [--interval 4]
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402

from monitorapp.feed.mqttconfig import MqttSettings  # noqa: E402
from monitorapp.feed.mqttfeed import connect_async, make_client  # noqa: E402
from monitorapp.feed.timeutil import fmt_time  # noqa: E402

CENTRE = (51.51, -0.12)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_broker(d: pathlib.Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = d / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence true",
             f"persistence_location {d}/", "max_queued_messages 0"]
    if os.geteuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    raise SystemExit("mosquitto did not start")


def tag_home(i: int) -> tuple[float, float]:
    rnd = random.Random(i)
    return CENTRE[0] + rnd.uniform(-0.12, 0.12), CENTRE[1] + rnd.uniform(-0.2, 0.2)


def make_caseload(n: int, interval: float) -> dict:
    zones, offenders = [], []
    for i in range(n):
        lat, lon = tag_home(i)
        zid = f"Z-X-{i:05d}"
        zones.append({"type": "Feature", "id": zid, "properties": {"name": f"exclusion {i}", "radius_m": 150},
                      "geometry": {"type": "Point", "coordinates": [lon, lat + 0.01]}})
        offenders.append({"id": f"OFF-{i:05d}", "name": f"Subject {i}", "risk": "medium", "borough": "Camden",
                          "device": f"TAG-{i:05d}", "fix_interval_s": interval,
                          "requirements": [{"id": f"R-{i:05d}", "type": "exclusion", "zone": zid,
                                            "schedule": None}]})
    return {"version": 1, "tz": "Europe/London", "zones": {"type": "FeatureCollection", "features": zones},
            "offenders": offenders}


def publisher(url: str, n: int, interval: float, seconds: float, breachers: dict, out_path: str, t_start: float,
              part: int = 0, parts: int = 1):
    """Runs in its own process: tags part, part + parts, ... of n, one fix each per interval,
    for `seconds` (several processes share the tags when one paho publisher cannot keep up)."""
    settings = MqttSettings.from_url(url, client_id=f"bench-publisher-{part}")
    client = make_client(settings, clean=True)
    client.max_inflight_messages_set(2000)
    ready = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: ready.set()
    connect_async(client, settings, clean=True)
    ready.wait(10)
    mine = list(range(part, n, parts))
    homes = {i: tag_home(i) for i in mine}
    seq = {i: 0 for i in mine}
    published = {}
    slot = interval / len(mine)
    count = 0
    while time.time() < t_start:
        time.sleep(0.001)
    k = 0
    end = t_start + seconds
    chunk = max(1, int(len(mine) / interval / 50))          # publish in 20 ms slices
    while True:
        due = t_start + k * slot
        if due >= end:
            break
        now = time.time()
        if due > now:
            time.sleep(due - now)
        now = time.time()
        ts = fmt_time(now)
        for _ in range(chunk):
            i = mine[k % len(mine)]
            k += 1
            lat, lon = homes[i]
            b = breachers.get(i)
            if b is not None and now >= t_start + b:
                lat += 0.01                                  # inside the exclusion zone
            seq[i] += 1
            dev = f"TAG-{i:05d}"
            payload = orjson.dumps({"v": 1, "kind": "fix", "device": dev, "seq": seq[i], "t": ts,
                                    "lat": lat + random.uniform(-2e-5, 2e-5), "lon": lon, "acc": 8.0,
                                    "src": "gps", "batt": 0.8})
            client.publish("em/v1/fix/" + dev, payload, qos=1)
            count += 1
            if b is not None:
                published.setdefault(dev, []).append(time.time())
    while client.want_write() or len(client._out_messages):
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    pathlib.Path(out_path).write_text(json.dumps({"count": count, "elapsed": time.time() - t_start,
                                                  "published": published}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--tags", type=int, default=20_000)
    ap.add_argument("--interval", type=float, default=4.0)
    ap.add_argument("--breachers", type=int, default=40)
    ap.add_argument("--publishers", type=int, default=1,
                    help="publisher processes sharing the tags (one paho publisher tops out near 3,500/s)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    broker, port = start_broker(work)
    url = f"mqtt://127.0.0.1:{port}"
    caseload = work / "caseload.json"
    caseload.write_text(json.dumps(make_caseload(args.tags, args.interval)))
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    mon = subprocess.Popen([sys.executable, "-m", "monitorapp", "monitor", "--broker", url, "--caseload",
                            str(caseload), "--db", str(work / "bench.db"), "--client-id", "bench-monitor",
                            "--stats-interval", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    stats, subscribed = [], threading.Event()

    def read_out():
        for line in iter(mon.stdout.readline, b""):
            stats.append(json.loads(line))

    def read_err():
        for line in iter(mon.stderr.readline, b""):
            if b"feed_subscribed" in line:
                subscribed.set()
    readers = [threading.Thread(target=read_out, daemon=True), threading.Thread(target=read_err, daemon=True)]
    for t in readers:
        t.start()
    alerts: dict[str, tuple[float, dict]] = {}
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-alerts", protocol=mqtt.MQTTv5)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("em/v1/alert/#", 1)

    def on_alert(c, u, m):
        rec = orjson.loads(m.payload)
        if rec["alert_id"] not in alerts:
            alerts[rec["alert_id"]] = (time.time(), rec)
    sub.on_message = on_alert
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    try:
        t_load = time.time()
        if not subscribed.wait(300):
            raise SystemExit("the monitor did not subscribe")
        print(f"monitor ready in {time.time() - t_load:.1f} s ({args.tags} tags)", flush=True)
        rnd = random.Random(1)
        breachers = {rnd.randrange(args.tags): 5 + j * (args.seconds - 15) / max(1, args.breachers)
                     for j in range(args.breachers)}
        t_start = time.time() + 1.0
        procs = []
        for j in range(args.publishers):
            out = work / f"published-{j}.json"
            proc = mp.get_context("spawn").Process(target=publisher, args=(
                url, args.tags, args.interval, args.seconds, breachers, str(out), t_start, j, args.publishers))
            proc.start()
            procs.append((proc, out))
        pub = {"count": 0, "elapsed": 0.0, "published": {}}
        for proc, out in procs:
            proc.join(args.seconds + 120)
            part = json.loads(out.read_text())
            pub["count"] += part["count"]
            pub["elapsed"] = max(pub["elapsed"], part["elapsed"])
            pub["published"].update(part["published"])
        deadline = time.time() + 120
        while time.time() < deadline and (not stats or stats[-1]["messages"] < pub["count"]):
            time.sleep(0.5)
        time.sleep(3)
    finally:
        mon.send_signal(signal.SIGTERM)
        mon.wait(60)
        for t in readers:
            t.join(5)
        sub.disconnect()
        sub.loop_stop()
        broker.send_signal(signal.SIGTERM)
        broker.wait(10)
    lat = []
    for at, rec in alerts.values():
        if rec["type"] != "exclusion_entered":
            continue
        raised = _parse(rec["raised_at"])
        times = [x for x in pub["published"].get(rec["device"], []) if x <= raised + 0.001]
        if times:
            lat.append(at - times[-1])
    lat.sort()
    steady = [s for s in stats if s.get("rate_per_s") and not s.get("final")][1:-1]
    rate = (sum(s["rate_per_s"] for s in steady) / len(steady)) if steady else None
    final = stats[-1] if stats else {}
    result = {
        "tags": args.tags, "interval_s": args.interval, "seconds": args.seconds,
        "published": pub["count"], "publish_rate": round(pub["count"] / pub["elapsed"], 1),
        "processed": final.get("messages"), "monitor_rate_steady": rate and round(rate, 1),
        "max_backlog": max((s.get("backlog", 0) for s in stats), default=None),
        "max_processing_lag_s": max((s.get("processing_lag_s") or 0 for s in stats), default=None),
        "rejected": final.get("rejected"), "alerts": len(lat),
        "latency_s": {"p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "max": lat[-1] if lat else None},
    }
    print(f"sustained: published {result['publish_rate']} fixes/s, monitor processed {result['monitor_rate_steady']}"
          f" fixes/s (max backlog {result['max_backlog']}, max processing lag {result['max_processing_lag_s']} s)")
    print(f"publish-to-alert-stored latency over {len(lat)} exclusion alerts: p50 {result['latency_s']['p50']} s, "
          f"p99 {result['latency_s']['p99']} s, max {result['latency_s']['max']} s")
    print(json.dumps(result))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _pct(xs, q):
    if not xs:
        return None
    return round(xs[min(len(xs) - 1, int(math.ceil(q * len(xs))) - 1)], 3)


def _parse(s):
    from monitorapp.feed.timeutil import parse_time
    return parse_time(s)


if __name__ == "__main__":
    sys.exit(main())
