"""The injected wall clock of the tests: a callable that reads ``t``, which the test moves."""
from __future__ import annotations


class Clock:
    def __init__(self, t: float = 1_796_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t
