"""The frozen bundle's entry point (PyInstaller runs this as ``__main__``).

``--version`` and ``--self-check`` are answered by ``ui.selfcheck`` before anything else starts;
every other command line goes to the operator console's ``main.main`` unchanged
(``monitorapp --demo``, ``monitorapp --broker URL --caseload FILE``). From source the same is
``python packaging/entry.py ...``.
"""
from __future__ import annotations

import os
import sys


def run() -> int:
    if not getattr(sys, "frozen", False):       # from source: make the project importable
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from ui.selfcheck import handle_cli
    code = handle_cli(sys.argv[1:])
    if code is not None:
        return code
    import main
    return main.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(run())
