"""``monitorapp replay --db``: the replay, storing what it reads, resumable after a crash.

Everything the engine reports goes into the store (``Store.attach``). Every ``checkpoint_every``
lines, and at the end, the store commits the engine's snapshot with the feed position: the number
of lines read and the length of ``alerts.ndjson`` at that moment (flushed to disk first). Run again
on the same store and input after a crash, the replay restores the engine from the checkpoint,
cuts ``alerts.ndjson`` back to its checkpointed length, skips the lines already read, and
carries on: no fix up to the checkpoint is lost, no alert line is written twice.
"""
from __future__ import annotations

import os
import stat

import orjson

from monitorapp.engine.engine import Engine

FEED = "replay"


def open_private(path: str, flags: int = os.O_WRONLY | os.O_APPEND | os.O_CREAT) -> int:
    """Open for appending a file that holds personal data, readable by its owner only (spec §8):
    created 0600, and a regular file found wider is narrowed to 0600. Returns the descriptor."""
    fd = os.open(path, flags, 0o600)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        raise
    return fd


class CheckpointError(Exception):
    """The store's checkpoint cannot be used (one line: the file and the problem)."""


def restore_engine(caseload, store, feed: str = "default"):
    """(engine, position) from the store's checkpoint, or a fresh engine. A checkpoint that is
    valid JSON but not an engine state raises CheckpointError naming the file."""
    snapshot, position = store.load_checkpoint(feed)
    if snapshot is None:
        return Engine(caseload), None
    try:
        if not isinstance(snapshot, dict) or not isinstance(position, dict):
            raise TypeError(f"a {type(snapshot).__name__} and a {type(position).__name__}, "
                            "not two JSON objects")
        return Engine(caseload, state=snapshot), position
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise CheckpointError(f"{store.path}: the checkpoint of feed {feed!r} is not a usable engine "
                              f"state ({e.__class__.__name__}: {what[:200]}); move the store aside "
                              "to start afresh") from None


def replay_with_store(caseload, feed, out, db: str, checkpoint_every: int = 5000) -> Engine:
    """Replay ``feed`` (a binary file) into a new or resumed engine that stores into ``db``;
    append raised alerts to ``out`` (a binary file opened for appending). Returns the engine.
    Raises StoreError (the store cannot be used), CheckpointError (its checkpoint is not an
    engine state) or OSError (a file cannot be read/written)."""
    from centraldb import open_store

    every = max(1, int(checkpoint_every))
    store = open_store(db)
    try:
        engine, position = restore_engine(caseload, store, FEED)
        if position is not None:
            try:
                skip, out_len = int(position["line"]), int(position["out_bytes"])
            except (KeyError, TypeError, ValueError) as e:
                raise CheckpointError(f"{store.path}: the checkpoint of feed {FEED!r} has no usable "
                                      f"feed position ({e.__class__.__name__}: {e})") from None
        else:
            store.record_caseload(caseload)
            skip, out_len = 0, 0
        out.flush()
        out.truncate(out_len)          # alert lines written after the checkpoint come again
        out.seek(out_len)
        store.attach(engine)

        def on_alert(alert, change: str) -> None:
            if change == "raised":           # one line per alert, out at once (tail -f)
                out.write(orjson.dumps(alert.to_json()) + b"\n")
                out.flush()
        engine.add_listener(on_alert=on_alert)

        def checkpoint(line: int) -> None:
            watch_store(engine, store)
            out.flush()
            os.fsync(out.fileno())
            store.checkpoint(engine, {"line": line, "out_bytes": out.tell()}, FEED)

        submit = engine.submit
        line_no = 0
        for line_no, line in enumerate(feed, 1):
            if line_no <= skip:
                continue
            if line.strip():
                submit(line.rstrip(b"\r\n"))
            if line_no % every == 0:
                checkpoint(line_no)
        checkpoint(max(line_no, skip))
        return engine
    finally:
        store.close()


def watch_store(engine: Engine, store) -> None:
    """The replay's watchdog at each checkpoint: a store writer that died is started again, a
    store that cannot be written raises ``system_fault`` (in the alerts file too), cleared when
    it is written again. Row-level refusals are quarantined by the writer itself."""
    w = store.writer
    problem = w.health()
    if problem and w.restart():
        engine.raise_system_fault("store", "writer", problem + "; restarted")
    elif problem:
        engine.raise_system_fault("store", "write" if w.error is not None else "writer", problem)
    else:
        engine.clear_system_fault("store", "write")
        engine.clear_system_fault("store", "writer")
