"""The KPI dashboard over a store the real engine filled: what a supervisor sees."""
from __future__ import annotations

import pyqtgraph as pg
import pytest

from ui.views.kpi import KpiDashboard, compute_kpis
from ui.views.review import handling_records
from ui.roles import RoleRefused


def test_kpis_from_the_store(handled_store):
    recs = handling_records(handled_store.store)
    k = compute_kpis(recs, handled_store.clock(), flood_count=10, flood_window_s=600)
    assert int(k["counts"].sum()) == len(recs)
    assert k["threshold"] == 10 and k["flood_bins"] >= 1        # the tamper flood
    assert len(k["tta"]["critical"]) == 11 + 1                  # 11 tampers + the breach
    assert k["tta_median"]["critical"] == pytest.approx(30.0)
    assert k["load"]["op.jones"]["acknowledged"] == 7
    assert k["load"]["op.patel"]["acknowledged"] == 4 + 2
    assert sum(v.get("closed", 0) for v in k["load"].values()) == 4
    assert k["stale"] == []
    noisy = dict(k["noisy"])
    assert len(k["noisy"]) == 10 and noisy["TAG-2"] >= 2        # tamper + battery + signal


def test_stale_after_a_day(handled_store):
    recs = handling_records(handled_store.store)
    later = handled_store.clock() + 2 * 86400
    k = compute_kpis(handling_records(handled_store.store, now=later), later)
    assert len(k["stale"]) == sum(1 for r in recs if r["handling"] != "closed")


def test_dashboard_shows_it(qtbot, handled_store, own):
    dash = own(KpiDashboard(handled_store.store, handled_store.sessions["supervisor"]))
    dash.resize(1400, 900)
    text = dash.headline.text()
    assert f"{len(handled_store.alerts)} alerts" in text and "over the flood" in text
    bars = [i for i in dash.rate.getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 2                     # normal bins, and bins over the threshold
    lines = [i for i in dash.rate.getPlotItem().items if isinstance(i, pg.InfiniteLine)]
    assert lines and lines[0].value() == 10
    assert dash.stale.item(0).text().startswith("None")
    dash.refresh(now=handled_store.clock() + 2 * 86400)
    assert "STRAP" not in dash.stale.item(0).text().upper() or "raised" in dash.stale.item(0).text()
    assert dash.stale.count() == len(dash.kpis["stale"]) > 0


def test_operator_has_no_dashboard(handled_store):
    with pytest.raises(RoleRefused):
        KpiDashboard(handled_store.store, handled_store.sessions["operator"])
