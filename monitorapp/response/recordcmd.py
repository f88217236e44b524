"""Record a centre's response protocols in its store: ``monitorapp protocols
--db STORE [--file protocols.json] [--who NAME] [--check]``.

``--db`` is a store file or a ``postgresql://`` record (``centraldb.open_store``; on PostgreSQL
the DSN's login records it, as a supervisor, an administrator or the decider, and the server
audits it under that login). Without ``--file`` the shipped defaults
(``resources/response-protocols.json``) are recorded. ``--check`` only validates the file and
prints its protocols. A new version is written only when the protocols changed; the output is
one line: the version in force. Exit status 0, 2 for a file or store that cannot be used (the
reason on one line each).
"""
from __future__ import annotations

import argparse
import sys

from monitorapp.response.protocols import ProtocolError, load_protocols


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="monitorapp protocols",
                                description="Record the centre's response protocols in a store.")
    p.add_argument("--db", help="store file, or postgresql:// record")
    p.add_argument("--file", help="protocol file (default: the shipped defaults)")
    p.add_argument("--who", default="administrator", help="who records it (SQLite; audited)")
    p.add_argument("--check", action="store_true", help="only validate the file")
    return p


def cli_main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        doc = load_protocols(args.file)
    except ProtocolError as e:
        print(f"{e.source}: {len(e.problems)} problem(s)", file=sys.stderr)
        for line in e.problems:
            print(f"  {line}", file=sys.stderr)
        return 2
    if args.check or not args.db:
        for type_, by_risk in sorted(doc["protocols"].items()):
            for risk, steps in by_risk.items():
                ids = ", ".join(s["id"] + ("*" if s["mandatory"] else "") for s in steps)
                print(f"{type_}{'' if risk == '*' else ' (risk ' + risk + ')'}: {ids}")
        return 0
    from centraldb import open_store
    from localdb.schema import StoreError
    try:
        store = open_store(args.db)
    except (StoreError, OSError) as e:
        print(f"cannot open the store: {e}", file=sys.stderr)
        return 2
    try:
        version = store.record_protocols(doc, args.who)
    except (StoreError, ValueError) as e:
        print(f"not recorded: {e}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(f"response protocols version {version} in force")
    return 0


if __name__ == "__main__":
    sys.exit(cli_main())
