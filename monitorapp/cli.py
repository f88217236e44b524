"""The ``monitorapp`` command (spec §7). Each sub-command lives in its own module, which
exposes ``cli_main(argv) -> int``; this module only dispatches, so ``monitorapp replay`` does
not import the broker client and ``monitorapp crimecheck`` does not import the simulator.

Errors are one line on stderr. Each sub-command reports the bad input it knows about itself
(exit 2: a file that cannot be read, a caseload that is not valid, a query out of range). This
module adds the two outer layers:

* a command line without a command, or with an unknown one, is one line and exit 2;
* the last resort: an exception that a sub-command did not turn into a message is still one
  line, ``monitorapp NAME: internal error: Type: text (at file:line)``, with exit status 1
  (not 2: it is a fault of the program, not a diagnosed bad input, and a supervisor should
  tell the two apart). ``MONITORAPP_TRACEBACK=1`` prints the whole traceback as well, for a
  bug report. Ctrl-C is exit 130 without a traceback.
"""
from __future__ import annotations

import importlib
import os
import sys
import traceback

COMMANDS = {
    "replay": ("monitorapp.service.replay", "evaluate a replay file headless and write alerts.ndjson"),
    "simulate": ("monitorapp.sim.simulator", "a realistic simulated feed, to a file or a broker"),
    "monitor": ("monitorapp.service.monitor", "the headless live engine on an MQTT broker"),
    "broker-config": ("monitorapp.service.brokerconfig", "write a locked-down Mosquitto configuration for a live centre"),
    "crimecheck": ("monitorapp.crime.batchcli", "crime mapping: who was near a place and time, or a list of incidents (--incidents FILE, --incidents-dir DIR)"),
    "verify-log": ("monitorapp.service.verifylog", "check the logs' hash chains and their ends against the anchored heads"),
    "migrate-store": ("centraldb.carry", "carry a SQLite store into an empty PostgreSQL record"),
    "compact-store": ("centraldb.compaction", "rebuild the track index of a PostgreSQL record's closed months (the administrator's, nightly)"),
    "accounts": ("monitorapp.service.accounts_cli", "manage a PostgreSQL record's accounts and roles (audited)"),
    "protocols": ("monitorapp.response.recordcmd", "check the response protocols file, or record it in a store (audited)"),
    "basemap": ("monitorapp.places.build", "build the offline vector basemap, boroughs and streets from OSM data"),
    "compliance": ("monitorapp.response.compliancepdf", "a compliance report of one offender for a period, for probation and courts (PDF, CSV, JSON; audited)"),
}
TRACEBACK_ENV = "MONITORAPP_TRACEBACK"


def usage() -> str:
    lines = ["usage: monitorapp COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<13} {text}" for name, (_, text) in COMMANDS.items()]
    lines.append("\n'monitorapp COMMAND --help' describes each command.")
    return "\n".join(lines)


def internal_error_line(prog: str, exc: BaseException) -> str:
    """One line for an exception nobody turned into a message: its type, its text (first line,
    at most 300 characters) and the innermost place of our own code it came from."""
    text = " ".join(str(exc).split())[:300]
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if any(k in f.filename for k in ("monitorapp", "localdb",
                                                                "centraldb"))] or frames
    if ours:
        f = ours[-1]
        parts = f.filename.replace("\\", "/").split("/")
        where = f" (at {'/'.join(parts[-2:])}:{f.lineno})"
    return f"{prog}: internal error: {type(exc).__name__}: {text}{where}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = ", ".join(COMMANDS)
    if not argv:
        print(f"monitorapp: give a command ({names}); 'monitorapp --help' describes them",
              file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] == "--version":
        from monitorapp import __version__
        print(__version__)
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"monitorapp: unknown command {name[:60]!r} (commands: {names}; "
              "'monitorapp --help' describes them)", file=sys.stderr)
        return 2
    prog = f"monitorapp {name}"
    try:
        module = importlib.import_module(COMMANDS[name][0])
        return int(module.cli_main(argv[1:]) or 0)
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise                      # argparse's --help and its usage errors keep their own status
    except BaseException as e:     # noqa: BLE001 - the last resort: one line, never a traceback page
        if os.environ.get(TRACEBACK_ENV):
            traceback.print_exc()
        print(internal_error_line(prog, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
