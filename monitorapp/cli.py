"""The ``monitorapp`` command (spec §7). Each sub-command lives in its own module, which
exposes ``cli_main(argv) -> int``; this module only dispatches, so ``monitorapp replay`` does
not import the broker client and ``monitorapp crimecheck`` does not import the simulator."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "replay": ("monitorapp.service.replay", "evaluate a replay file headless and write alerts.ndjson"),
    "simulate": ("monitorapp.sim.simulator", "a realistic simulated feed, to a file or a broker"),
    "monitor": ("monitorapp.service.monitor", "the headless live engine on an MQTT broker"),
    "crimecheck": ("monitorapp.crime.query", "crime mapping: was anyone tagged near this place and time"),
    "verify-log": ("localdb.verify", "check the hash chains of the acknowledgement and audit logs"),
}


def usage() -> str:
    lines = ["usage: monitorapp COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
    lines.append("\n'monitorapp COMMAND --help' describes each command.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from monitorapp import __version__
        print(__version__)
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print(f"monitorapp: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.cli_main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
