"""``monitorapp replay``: evaluate a replay file headless (spec §7).

Reads the caseload and the NDJSON replay file, drives the engine with each message's ``rx`` as
the processing clock, writes one ``alerts.ndjson`` line per alert raised (spec §4) and prints
the summary line. With ``--db`` it also stores everything it read (fixes, rejected messages,
alerts) through the local store, checkpointing as it goes so that a killed replay restarted
on the same store and input carries on where its last checkpoint left off.

Exit status: 0 done, whatever the messages hold (a message that makes the engine or the store
fail is quarantined as a ``processing_error`` rejection, spec §2); 2 a file that cannot be read,
a caseload that is not valid, or a store whose checkpoint is not an engine state (one line on
stderr naming the file and the problem). ``alerts.ndjson`` is created 0600 (spec §8).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import orjson

from monitorapp.engine.caseload import CaseloadError, load_caseload
from monitorapp.engine.engine import Engine
from monitorapp.service.replaystore import open_private


def replay_lines(engine: Engine, lines, on_line=None) -> None:
    submit = engine.submit
    for line in lines:
        if line.strip():
            submit(line.rstrip(b"\r\n") if isinstance(line, bytes) else line)
        if on_line is not None:
            on_line()
    engine.flush()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monitorapp replay", description=__doc__.split("\n\n")[0])
    p.add_argument("--caseload", required=True, help="caseload file (spec §3)")
    p.add_argument("--feed", required=True, help="replay file: NDJSON, one message a line, each with rx")
    p.add_argument("--out", required=True, help="where to write alerts.ndjson")
    p.add_argument("--db", help="also store what was read: a SQLite file or postgresql://...")
    p.add_argument("--checkpoint-every", type=int, default=5000, metavar="N",
                   help="with --db: checkpoint every N lines (default 5000)")
    return p


def _fail(msg: str) -> int:
    print(f"monitorapp replay: {msg}", file=sys.stderr)
    return 2


def cli_main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        caseload = load_caseload(args.caseload)
    except CaseloadError as e:
        for p in e.problems[1:]:
            print(f"  {p}", file=sys.stderr)
        return _fail(f"{e.source}: {e.problems[0]}" + (f" (and {len(e.problems) - 1} more problems)" if len(e.problems) > 1 else ""))
    try:
        feed = open(args.feed, "rb")
    except OSError as e:
        return _fail(f"{args.feed}: cannot be read ({e.strerror})")
    try:      # alerts name offenders and places: readable by the owner only (spec §8)
        flags = os.O_RDWR | os.O_CREAT | (os.O_APPEND if args.db else os.O_TRUNC)
        out = os.fdopen(open_private(args.out, flags), "ab" if args.db else "wb")
    except OSError as e:
        return _fail(f"{args.out}: cannot be written ({e.strerror})")
    t0 = time.perf_counter()
    with feed, out:
        if args.db:
            from localdb.schema import StoreError
            from monitorapp.service.replaystore import CheckpointError, replay_with_store
            try:
                engine = replay_with_store(caseload, feed, out, args.db, args.checkpoint_every)
            except (StoreError, CheckpointError) as e:
                return _fail(str(e))
            except OSError as e:
                return _fail(f"{args.feed}: cannot be read ({e.strerror})")
        else:
            engine = Engine(caseload)
            write = out.write
            dumps = orjson.dumps
            engine.add_listener(on_alert=lambda a, ch: write(dumps(a.to_json()) + b"\n") if ch == "raised" else None)
            try:
                replay_lines(engine, feed)
            except OSError as e:
                return _fail(f"{args.feed}: cannot be read ({e.strerror})")
    summary = engine.counters.summary()
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")
    return 0
