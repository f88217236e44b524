"""A console runs for weeks (issue 16's soak, benchmarks/bench_soak.py): writing a batch of
fixes costs the store's writer the same whatever the number of fixes already stored. (Each
batch used to widen the tags' time spans with a query SQLite answered by scanning the whole
fixes index: at 1,000 tags the writer slowed day by day and acknowledgements waited minutes.)
Measured in SQLite virtual-machine steps on the writer's own connection, not in seconds. Real
store, real writer thread."""
from __future__ import annotations

from localdb.store import Store
from monitorapp.feed.messages import Fix

T0 = 1_795_000_000.0
TAGS = 20


class _Steps:
    """Counts the SQLite VM steps of the writer's connection (a progress handler every 100)."""

    def __init__(self, store: Store):
        self.n = 0
        store.writer.call(lambda conn: conn.set_progress_handler(self._tick, 100))

    def _tick(self) -> int:
        self.n += 1
        return 0


def _minute(store: Store, minute: int) -> None:
    """One fix of each tag at ``minute``, through the engine's listener (the writer's queue)."""
    for k in range(TAGS):
        t = T0 + 60 * minute + k
        store.on_fix(Fix(f"TAG-{k}", minute + 1, t, t + 1, 51.5 + 1e-5 * k, -0.1, 8.0, "gps"), True)


def _steps_to_write(store: Store, steps: _Steps, minute: int) -> int:
    store.flush()
    before = steps.n
    _minute(store, minute)
    store.flush()
    return steps.n - before


def test_writing_a_batch_of_fixes_costs_the_same_in_a_big_store(tmp_path):
    store = Store(tmp_path / "console.sqlite", clock=lambda: T0)
    try:
        steps = _Steps(store)
        small = min(_steps_to_write(store, steps, m) for m in range(3))
        for m in range(3, 3 + 5000):                 # 100,000 fixes: days of a few tags
            _minute(store, m)
        store.flush()
        big = min(_steps_to_write(store, steps, 6000 + m) for m in range(3))
        assert big <= 2 * small + 20, (small, big)
        spans = {d: (a, b) for d, a, b in store.reader().execute(
            "SELECT device, first_seen, last_seen FROM tags")}
        assert len(spans) == TAGS
        assert spans["TAG-3"] == (T0 + 3, T0 + 60 * 6002 + 3)    # the first fix and the newest
        assert store.counts()["fixes"] == TAGS * (3 + 5000 + 3)
    finally:
        store.close()
