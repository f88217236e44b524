"""Crash safety on the PostgreSQL record: a process feeding ``PgStore`` killed with SIGKILL
mid-stream (with fixes committed after its last checkpoint, and more in flight), then
restarted from ``load_checkpoint()``, ends with exactly what an uninterrupted run stores:
nothing lost, nothing doubled, no alert raised twice; and the dead process's feed lock was
released by the server, so the restarted one may feed the record."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from centraldb.store import PgStore
from monitorapp.engine.caseload import load_caseload
from monitorapp.engine.engine import Engine
from tests.test_pg_store_behaviour import Recorder, _expected, _lines, _stored

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys
from centraldb.store import PgStore
from monitorapp.engine.caseload import load_caseload
from monitorapp.engine.engine import Engine
dsn, caseload_path, feed, every, ready_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
lines = [l.rstrip(b"\r\n") for l in open(feed, "rb").read().splitlines() if l.strip()]
store = PgStore(dsn)
snapshot, position = store.load_checkpoint()
caseload = load_caseload(caseload_path)
engine = Engine(caseload, state=snapshot) if snapshot is not None else Engine(caseload)
if snapshot is None:
    store.record_caseload(caseload)
store.attach(engine)
for n in range((position or {}).get("line", 0), len(lines)):
    engine.submit(lines[n])
    if (n + 1) % every == 0:
        store.checkpoint(engine, {"line": n + 1})
    if n + 1 == ready_at:
        store.flush()                      # committed, but after the last checkpoint
        print("READY", flush=True)
sys.stdin.read()                           # wait to be killed
"""


def test_sigkill_mid_stream_then_restart(pg_dsn, example_caseload_path, example_feed_path):
    lines = _lines(example_feed_path)
    engine = Engine(load_caseload(example_caseload_path))
    rec = Recorder(engine)
    for line in lines:
        engine.submit(line)

    every, ready_at = 400, 1500          # last checkpoint at 1,200: 300 lines stored after it
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, pg_dsn, str(example_caseload_path), str(example_feed_path),
         str(every), str(ready_at)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert child.stdout.readline().strip() == b"READY", child.stderr.read().decode()
        os.kill(child.pid, signal.SIGKILL)          # while it goes on feeding and writing
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
    assert child.returncode == -signal.SIGKILL

    with PgStore(pg_dsn) as store:
        before = store.counts()["fixes"]
        snapshot, position = store.load_checkpoint()
        assert position == {"line": 1200}
        assert store.counts()["fixes"] < before          # what came after it was discarded
        engine = Engine(load_caseload(example_caseload_path), state=snapshot)
        store.attach(engine)                              # the dead process's lock is gone
        for n in range(position["line"], len(lines)):
            engine.submit(lines[n])
        store.checkpoint(engine, {"line": len(lines)})
        assert _stored(store) == _expected(rec)
