"""The console's memory is flat after the first simulated day (issue 16's soak,
benchmarks/bench_soak.py): every 24-h window it keeps has reached its full size by then, give or
take the compaction slack, and never grows past it however long the console runs."""
from __future__ import annotations

from tests.fixtures_ui import T0
from ui.console.fixhistory import FixHistory

DAY = 86400.0


def test_a_tags_details_history_stops_growing_soon_after_its_first_day():
    """A tag with a fix a minute: 1,441 fixes in its 24-h window. Compacting at a quarter let
    the arrays grow to 1,920 fixes, which they reached only at hour 32; now they hold at most
    16/15 of the window and reach it before hour 26."""
    h = FixHistory(3000, DAY)
    window = 1441
    peak_by_26h = peak_after = 0
    for i in range(10 * 1440):                     # ten days
        h.append(T0 + 60 * i, 51.5, -0.12, 9.0, None, 0.8)
        if i < 26 * 60:
            peak_by_26h = max(peak_by_26h, h.allocated())
        else:
            peak_after = max(peak_after, h.allocated())
            assert len(h) == window
    assert peak_after <= window * 16 // 15 + 1
    assert peak_after <= peak_by_26h               # nothing more after hour 26
    assert h.rows()[0][0] == T0 + 60 * (10 * 1440 - window)
