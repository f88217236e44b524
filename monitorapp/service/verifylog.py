"""``monitorapp verify-log --db D [--anchor FILE]`` on either backend: a SQLite file is checked
by ``localdb.verify``, a ``postgresql://`` record by ``centraldb.verify``; both walk the hash
chains with the same code and check each log's end against its anchor (``localdb.anchor``).
This module only dispatches (localdb may not import centraldb). Exit status: 0 intact and
anchored, 1 broken, truncated, rewritten or not anchored, 2 the store cannot be read.
"""
from __future__ import annotations

import sys

from centraldb import is_pg_target
from localdb import verify
from localdb.schema import StoreError


def cli_main(argv: list[str]) -> int:
    try:
        args = verify.parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if not is_pg_target(args.db):
        return verify.cli_main(argv)
    from centraldb.store import redact
    from centraldb.verify import verify_record
    anchors = verify.Anchored(args.db, args.anchor)
    try:
        reports = verify_record(args.db, anchors)
    except StoreError as e:
        print(f"monitorapp verify-log: {e}", file=sys.stderr)
        return 2
    print(f"record: {redact(args.db)}")
    return verify.report(reports, anchors)
