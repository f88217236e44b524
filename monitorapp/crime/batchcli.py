"""``monitorapp crimecheck --incidents FILE`` (a batch, spec §5) and ``--incidents-dir DIR``
(the scheduled daily run a cron job or systemd timer calls, ``packaging/crime-daily.*``).

    monitorapp crimecheck --incidents FILE --reason TEXT [--db D] [--speed-ms V]
                          [--out-json F] [--out-csv F] [--pdf F] [--operator WHO]
    monitorapp crimecheck --incidents-dir DIR --out-dir OUT --reason TEXT [--db D] [--no-pdf]

The file form prints the report as JSON on stdout unless ``--out-json`` names a file, then
one summary line. The directory form checks every ``*.csv``/``*.geojson``/``*.json`` file in
DIR that has no report in OUT yet (``<name>.hits.json``, written last, marks it done; a run
that failed halfway is done again next time), writes ``<name>.hits.json``, ``.hits.csv`` and
``.pdf`` there, and prints one summary line per file. Each file is one batch and one audit
record. A bad file is named on stderr with its problems and the others still run (status 2
at the end); a store that cannot be opened stops the run (status 2).
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path

from monitorapp.crime.batchwork import default_workers
from monitorapp.crime.batch import (IncidentFileError, load_incidents, run_batch, write_hits_csv,
                                    write_hits_json)
from monitorapp.crime.query import REACH_SPEED_MS, CrimeQueryError, _login, _OneLineParser

DEFAULT_DB = os.environ.get("MONITORAPP_DB", "")
PROG = "monitorapp crimecheck"


def _parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog=PROG, description="Batch crime correlation (spec §5): a list of "
                       "incidents against every track, one audited run.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--incidents", help="a CSV or GeoJSON file of incidents")
    src.add_argument("--incidents-dir", help="the daily run: every incidents file in DIR not yet done")
    p.add_argument("--db", default=DEFAULT_DB or None,
                   help="the store: a SQLite file, or postgresql://... (default $MONITORAPP_DB)")
    p.add_argument("--reason", help="why the batch is run (required)")
    p.add_argument("--operator", help="who is asking (default: $USER)")
    p.add_argument("--speed-ms", type=float, default=REACH_SPEED_MS)
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="processes deciding the incidents (default: the CPUs, at most 4)")
    p.add_argument("--out-json", help="write the hits report here (JSON)")
    p.add_argument("--out-csv", help="write the hits here (CSV, one row per hit)")
    p.add_argument("--pdf", help="write the evidential PDF here")
    p.add_argument("--out-dir", help="the daily run: where the reports go")
    p.add_argument("--no-pdf", action="store_true", help="the daily run: no PDF")
    return p


def _pdf(report: dict, path, store) -> None:
    from monitorapp.crime.evidence import write_batch_pdf      # the evidential PDF
    write_batch_pdf(report, str(path), store=store)


def _one(store, path: Path, args, who: str, out_json, out_csv, pdf) -> dict:
    incidents = load_incidents(path)
    report = run_batch(store, incidents, args.reason, who, speed_ms=args.speed_ms,
                       workers=args.workers)
    if out_csv:
        write_hits_csv(report, out_csv)
    if pdf:
        _pdf(report, pdf, store)
    if out_json:
        write_hits_json(report, out_json)
    return report


def _line(path, report) -> str:
    q = report["query"]
    return json.dumps({"incidents_file": str(path), "incidents": q["incidents"], "hits": q["hits"],
                       "asked_at": q["asked_at"]})


def cli_main(argv: list[str]) -> int:
    """``monitorapp crimecheck``: the batch forms here, one place and time in ``query``."""
    if not any(a.split("=")[0] in ("--incidents", "--incidents-dir") for a in argv):
        from monitorapp.crime.query import cli_main as single
        return single(argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if not args.db:
        print(f"{PROG}: --db is required (or set MONITORAPP_DB)", file=sys.stderr)
        return 2
    if not args.reason or not args.reason.strip():
        print(f"{PROG}: a reason (--reason) is required", file=sys.stderr)
        return 2
    if args.incidents_dir and not args.out_dir:
        print(f"{PROG}: --incidents-dir needs --out-dir", file=sys.stderr)
        return 2
    who = args.operator or os.environ.get("USER") or _login()
    from centraldb import open_store
    from localdb.schema import StoreError
    try:
        store = open_store(args.db, create=False)
    except (StoreError, sqlite3.DatabaseError) as e:
        print(f"{PROG}: {args.db}: {e}", file=sys.stderr)
        return 2
    status = 0
    try:
        if args.incidents:
            try:
                report = _one(store, Path(args.incidents), args, who, args.out_json, args.out_csv, args.pdf)
            except (IncidentFileError, CrimeQueryError, StoreError, OSError) as e:
                print(f"{PROG}: {e}", file=sys.stderr)
                return 2
            sys.stdout.write((_line(args.incidents, report) if args.out_json
                              else json.dumps(report, indent=1)) + "\n")
            return 0
        src, out = Path(args.incidents_dir), Path(args.out_dir)
        if not src.is_dir():
            print(f"{PROG}: {src}: not a directory", file=sys.stderr)
            return 2
        out.mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in src.iterdir()
                           if p.is_file() and p.suffix.lower() in (".csv", ".geojson", ".json")):
            done = out / f"{path.stem}.hits.json"
            if done.exists():
                continue
            try:
                report = _one(store, path, args, who, done, out / f"{path.stem}.hits.csv",
                              None if args.no_pdf else out / f"{path.stem}.pdf")
            except (IncidentFileError, CrimeQueryError, OSError) as e:
                print(f"{PROG}: {path.name}: {e}", file=sys.stderr)
                status = 2
                continue
            print(_line(path, report), flush=True)
        return status
    finally:
        store.close()
