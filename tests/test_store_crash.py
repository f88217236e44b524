"""Crash safety: a ``monitorapp replay --db`` killed with SIGKILL in the middle of the stream and
restarted on the same store and input loses no fix up to its last checkpoint, raises no alert
twice, keeps an operator's acknowledgement, and ends with exactly what an uninterrupted run
stores.

The feed reaches the process through a named pipe, so the test decides where "the middle" is:
it waits until a checkpoint has been committed, lets more lines flow, and kills the process
while it is busy with them.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from localdb.store import Store
from monitorapp.feed.timeutil import parse_time

ROOT = Path(__file__).resolve().parent.parent


def _monitorapp(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "monitorapp", *map(str, args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _run(*args, timeout=120):
    p = _monitorapp(*args)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err.decode()
    return out.decode()


def _position_lines(position) -> int:
    """The replay's feed position as a line count (an int, or a dict naming the line)."""
    if isinstance(position, dict):
        for key in ("line", "lines", "line_no", "offset_lines"):
            if key in position:
                return int(position[key])
        raise AssertionError(f"cannot read a line number from the position {position!r}")
    return int(position)


def _checkpoint(db: Path):
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT position, max_fix_id FROM checkpoints").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return None if row is None else (_position_lines(json.loads(row[0])), row[1])


def _wait_for(cond, timeout=60.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _fixes(db: Path) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT device, seq, t FROM fixes ORDER BY device, t, seq").fetchall()
    finally:
        conn.close()


def test_sigkill_mid_stream_then_restart(tmp_path, sim_feed):
    caseload, feed = sim_feed
    lines = feed.read_bytes().splitlines(keepends=True)
    assert len(lines) > 3000

    # the reference: one uninterrupted run
    ref_db, ref_out = tmp_path / "ref.sqlite", tmp_path / "ref-alerts.ndjson"
    _run("replay", "--caseload", caseload, "--feed", feed, "--out", ref_out, "--db", ref_db)
    ref_alerts = [json.loads(x)["alert_id"] for x in ref_out.read_text().splitlines()]
    assert len(ref_alerts) >= 3

    # where to crash: just after an alert raised some way past a checkpoint
    every = 500
    rx = [parse_time(json.loads(x)["rx"]) for x in lines]
    raised_line = {}
    for x in ref_out.read_text().splitlines():
        a = json.loads(x)
        at = parse_time(a["raised_at"])
        raised_line[a["alert_id"]] = next(k for k, r in enumerate(rx) if r >= at) + 1
    victim, line = next((aid, n) for aid, n in sorted(raised_line.items(), key=lambda i: i[1])
                        if n > 2 * every and 50 <= n % every <= every - 100)
    last_cp = line // every * every
    stop_at = line + 50                     # the process gets this far, then is killed

    # the crash: the feed comes through a pipe, so the process is killed mid-stream
    db, out, fifo = tmp_path / "store.sqlite", tmp_path / "alerts.ndjson", tmp_path / "feed.fifo"
    os.mkfifo(fifo)
    proc = _monitorapp("replay", "--caseload", caseload, "--feed", fifo, "--out", out,
                       "--db", db, "--checkpoint-every", every)
    stop = threading.Event()

    def feeder():
        try:
            with open(fifo, "wb") as w:
                w.writelines(lines[:stop_at])
                w.flush()
                stop.wait(120)        # keep the pipe open: the stream is not over
        except BrokenPipeError:
            return

    t = threading.Thread(target=feeder, daemon=True)
    t.start()
    try:
        # the alert past the checkpoint is written out, and stored rows follow the checkpoint
        _wait_for(lambda: out.exists() and victim in out.read_text(), timeout=90,
                  what="the alert after the checkpoint")
        _wait_for(lambda: (_checkpoint(db) or (0,))[0] == last_cp, what="the checkpoint")
        # an operator acknowledges an alert the store already has
        with Store(db) as s:
            stored = s.alerts()
            assert stored, "no alert stored before the crash"
            acked = stored[-1]["alert_id"]
            s.acknowledge(acked, "alice", "contacted_probation", "spoke to the probation officer")

        def written_past_checkpoint():
            cp = _checkpoint(db)
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
            try:
                top = conn.execute("SELECT max(fix_id) FROM fixes").fetchone()[0] or 0
            finally:
                conn.close()
            return cp is not None and top > cp[1]
        _wait_for(written_past_checkpoint, what="writes after the checkpoint")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        t.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # every fix up to the last committed checkpoint is there
    position, max_fix_id = _checkpoint(db)
    assert position == last_cp
    assert victim in out.read_text()          # written after the checkpoint: must not come twice
    before = [json.loads(x) for x in lines[:position]]
    accepted = {(d, s) for d, s, _ in _fixes(ref_db)}          # bad input is not stored
    wanted = {(m["device"], m["seq"]) for m in before if m.get("kind") == "fix"} & accepted
    have = {(d, s) for d, s, _ in _fixes(db)}
    assert wanted <= have, f"{len(wanted - have)} checkpointed fixes lost"

    # restart on the same store and the whole input; it carries on from the checkpoint
    _run("replay", "--caseload", caseload, "--feed", feed, "--out", out, "--db", db)

    assert _fixes(db) == _fixes(ref_db)                     # none lost, none twice
    got = [json.loads(x)["alert_id"] for x in out.read_text().splitlines()]
    assert len(got) == len(set(got)), "an alert was raised twice"
    assert sorted(got) == sorted(ref_alerts)
    conn = sqlite3.connect(db)
    raised = conn.execute("SELECT alert_id, count(*) FROM alert_changes WHERE change='raised'"
                          " GROUP BY alert_id").fetchall()
    assert sorted(a for a, _ in raised) == sorted(ref_alerts)
    assert all(n == 1 for _, n in raised)
    with Store(db) as s:
        handled = {a["alert_id"]: a["handling"] for a in s.alerts()}
        assert handled[acked] == "acknowledged"
        assert [r["operator"] for r in s.ack_log(acked)] == ["alice"]
    assert subprocess.run([sys.executable, "-m", "monitorapp", "verify-log", "--db", str(db)],
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True).returncode == 0
