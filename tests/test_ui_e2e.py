"""End to end: ``main.py --demo`` as a subprocess reports the map ready and alerts raised
(its structured JSON log lines), uses its own training store, and refuses a live broker."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_console(args, wait_for, timeout=90.0, on_event=None):
    """Start main.py, collect its JSON lines until every event in wait_for was seen;
    ``on_event(events)`` is called (on the reader thread) after each line."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events: list[dict] = []
    done = threading.Event()

    def reader():
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                events.append(json.loads(line))
                if on_event is not None:
                    on_event(events)
                if all(any(e["event"] == w for e in events) for w in wait_for):
                    done.set()
        done.set()
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    done.wait(timeout)
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    th.join(10)
    err = proc.stderr.read()
    proc.stderr.close()
    proc.stdout.close()
    return proc.returncode, events, err


def test_demo_reports_map_ready_and_alerts_raised(tmp_path):
    # the trainers' strap-cut preset: a tamper 5 simulated minutes in (5 s at x60)
    rc, events, err = run_console(["--demo", "--scenario", "strap_cut", "--speed", "60", "--operator", "trainee.1",
                                   "--quit-after", "60"], ["map_ready", "alert_raised"])
    names = [e["event"] for e in events]
    assert "map_ready" in names, (names, err[-2000:])
    assert "alert_raised" in names, (names, err[-2000:])
    started = next(e for e in events if e["event"] == "console_started")
    assert started["mode"] == "training" and started["operator"] == "trainee.1"
    # its own store, in the user data directory (isolated by conftest), never a live one
    store = pathlib.Path(started["store"])
    assert store.name == "training.sqlite" and store.is_relative_to(tmp_path)
    raised = [e for e in events if e["event"] == "alert_raised"]
    assert any(e["type"] == "strap_tamper" and e["priority"] == "critical" for e in raised), raised


def test_demo_full_day_reports_map_ready(tmp_path):
    rc, events, err = run_console(["--demo", "--quit-after", "30"], ["map_ready"])
    started = next(e for e in events if e["event"] == "console_started")
    assert started["offenders"] == 100 and "map_ready" in [e["event"] for e in events], err[-2000:]


def test_demo_refuses_a_live_broker():
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--demo", "--broker", "mqtt://localhost:1883"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert proc.returncode == 2 and "cannot use a live broker" in proc.stderr


def test_live_mode_without_caseload_says_what_is_missing():
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--broker", "mqtt://localhost:1883",
                           "--quit-after", "5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert proc.returncode == 2 and "needs a caseload" in proc.stderr
