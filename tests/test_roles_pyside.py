"""A PySide defect that kills every long-running view: in PySide6 6.12.0 on CPython 3.11 each
signal emission to a Python slot drops one reference to ``True``, and after a few thousand
emissions the process aborts ("Fatal Python error: bool_dealloc"). pyproject.toml excludes that
release; this test fails if a PySide6 with the defect is ever installed again."""
from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal()


def test_signal_emission_keeps_true_refcount(qapp):
    e = _Emitter()
    calls = []
    e.fired.connect(lambda: calls.append(1))
    before = sys.getrefcount(True)
    for _ in range(200):
        e.fired.emit()
    after = sys.getrefcount(True)
    assert len(calls) == 200
    assert after >= before - 5
