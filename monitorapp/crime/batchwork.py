"""A batch's incidents decided on several CPUs (``run_batch(..., workers=N)``).

Once the batch has read its tracks and built its index (``monitorapp.crime.batch``), every
incident is independent of the others: its hits are decided from the same arrays by the same
code. ``decide_all`` hands runs of incidents to forked worker processes, which inherit the
arrays (copy-on-write: nothing is copied or sent to them), decide their incidents, read the
details of the fixes their hits show through a connection of their own (a SQLite connection
must not cross a fork; the PostgreSQL record's window slice answers from arrays and needs
none) and send the hits back as JSON (orjson: the hits are JSON data, and a JSON round trip
of them is exact and several times faster than pickling the dictionaries). The parent keeps
the incidents' order.

Forking is used only where it is safe: a process that is not a GUI (``monitorapp crimecheck``
and the daily run; the analyst's view decides in its own worker thread, with one worker), on
a platform with ``fork``. With ``workers=1`` the same code runs in the calling process.
"""
from __future__ import annotations

import multiprocessing
import os

import numpy as np
import orjson

from monitorapp.crime.results import fix_details

CHUNK = 10            # incidents a worker is given at a time (progress moves per run)
_STATE: dict | None = None       # what a forked worker reads: set just before the fork


def default_workers() -> int:
    """The CPUs this process may use, at most 4 (the batch's own arrays are shared, each
    worker's hits are its own memory)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _decide(state: dict, k0: int, k1: int, conn) -> list[list[dict]]:
    decided = []
    for k in range(k0, k1):
        inc, t0, t1 = state["checked"][k]
        proj, grid = state["projs"][k]
        cx, cy = proj.to_xy(float(inc["lon"]), float(inc["lat"]))
        decided.append(state["decide"](state["tr"], state["index"], state["key_list"],
                                    state["local"][state["of"][k]], inc, t0, t1, cx, cy,
                                    None if grid else proj, state["v"]))
    want = np.concatenate([d.want for d in decided]) if decided else np.zeros(0, dtype=np.int64)
    details = fix_details(conn, want.tolist()) if len(want) else {}
    return [d.results(conn, details) for d in decided]


def _worker(job: tuple[int, int]) -> bytes:
    state = _STATE
    conn = state["connect"]()
    try:
        return orjson.dumps(_decide(state, job[0], job[1], conn))
    finally:
        if conn is not state["conn"]:
            conn.close()


def decide_all(state: dict, workers: int, progress=None) -> list[list[dict]]:
    """Every incident's hits, in the incidents' order. ``state``: ``checked``, ``projs``,
    ``tr``, ``index``, ``key_list``, ``local``, ``of``, ``v``, ``decide`` (the batch's
    ``IncidentHits``: what decides one incident), ``conn`` (the batch's reader)
    and ``connect`` (a fresh reader for a worker; returns ``conn`` where one may be shared).
    ``progress(done, total)`` counts incidents."""
    global _STATE
    n = len(state["checked"])
    jobs = [(k, min(k + CHUNK, n)) for k in range(0, n, CHUNK)]
    if workers <= 1 or len(jobs) < 2 or not can_fork():
        out: list[list[dict]] = []
        for k0, k1 in ((k, k + 1) for k in range(n)):
            out += _decide(state, k0, k1, state["conn"])
            if progress is not None:
                progress(k1, n)
        return out
    _STATE = state
    try:
        ctx = multiprocessing.get_context("fork")
        out = []
        with ctx.Pool(min(workers, len(jobs))) as pool:
            for (k0, k1), part in zip(jobs, pool.imap(_worker, jobs)):
                out += orjson.loads(part)
                if progress is not None:
                    progress(k1, n)
        return out
    finally:
        _STATE = None
