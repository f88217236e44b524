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

import orjson

from monitorapp.engine.engine import Engine

FEED = "replay"


def replay_with_store(caseload, feed, out, db: str, checkpoint_every: int = 5000) -> Engine:
    """Replay ``feed`` (a binary file) into a new or resumed engine that stores into ``db``;
    append raised alerts to ``out`` (a binary file opened for appending). Returns the engine.
    Raises StoreError (the store cannot be used) or OSError (a file cannot be read/written)."""
    from localdb.store import Store

    every = max(1, int(checkpoint_every))
    store = Store(db)
    try:
        snapshot, position = store.load_checkpoint(FEED)
        if snapshot is not None:
            engine = Engine(caseload, state=snapshot)
            skip, out_len = int(position["line"]), int(position["out_bytes"])
        else:
            engine = Engine(caseload)
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
