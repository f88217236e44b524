"""The optional compiled fast paths (``monitorapp/feed/_speedups.c``), loaded once here.

``speedups`` is the compiled module when it was built at install time (``pip install`` compiles
it where a C compiler and the Python headers are found) or ``None``. Callers keep a pure-Python
path that gives the same results; ``MONITORAPP_PURE_PYTHON=1`` makes them take it, which the
benchmark and the equivalence tests use to compare the two.
"""
from __future__ import annotations

import os

speedups = None
if os.environ.get("MONITORAPP_PURE_PYTHON") != "1":
    try:
        from monitorapp.feed import _speedups as speedups
    except ImportError:  # not built on this machine: the pure-Python paths serve
        pass
