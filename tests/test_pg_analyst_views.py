"""The police analyst at a workstation of the centre (client mode): the crime-mapping and the
playback views on the PostgreSQL record, signed in with the analyst's own login, who may read
positions only through the server's audited path (a reference and a reason, recorded before any
row). Before this, both views read the fixes table directly and failed for the analyst."""
from __future__ import annotations

import pytest

from localdb.accounts import Session
from tests.fixtures_store import PLACE_LAT, PLACE_LON, T0, TrackWriter

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


@pytest.fixture
def record(people):
    """The record with a caseload and two tracks near the scene, written by the decider."""
    from centraldb import open_store
    s = open_store(people.dsn, anchor=False)
    s.record_caseload({"version": 1, "tz": "Europe/London",
                       "zones": {"type": "FeatureCollection", "features": []},
                       "offenders": [{"id": "OFF-A", "name": "Person A", "risk": "high",
                                      "borough": "City", "device": "TAG-A", "requirements": []},
                                     {"id": "OFF-B", "name": "Person B", "risk": "high",
                                      "borough": "City", "device": "TAG-B", "requirements": []}]})
    w = TrackWriter(s)
    w.line("TAG-A", T0 - 1800, T0 + 5400, 60, (-3000, 0), (3000, 0))
    w.line("TAG-B", T0 - 600, T0 + 4200, 60, (-2000, 1200), (2000, 1200))
    s.flush()
    yield people
    s.close()


def _analyst(record):
    store = record.store("pa.khan", "police_analyst")
    assert not store.reads_fixes
    return store, Session("pa.khan", "police_analyst", T0 + 86400)


def test_the_analyst_runs_a_crime_query_through_the_audited_path(qtbot, record):
    from ui.views.crime import CrimePanel
    store, session = _analyst(record)
    panel = CrimePanel(store, session, embed_map=False)
    qtbot.addWidget(panel)
    panel.set_place(PLACE_LAT, PLACE_LON)
    panel.radius.setValue(100)
    panel.set_window(T0, T0 + 3600)
    panel.ref.setText("MET/2026/0415")
    panel.reason.setText("Burglary at the scene")
    with qtbot.waitSignal(panel.answered, timeout=30_000) as blocker:
        assert panel.run_query()
    verdicts = {r["offender"]: r["verdict"] for r in blocker.args[0]["results"]}
    assert verdicts == {"OFF-A": "present", "OFF-B": "not_present"}
    access = record.admin().execute(
        "SELECT who, detail FROM audit_log WHERE action = 'crime_access'").fetchall()
    assert [(who, d["ref"]) for who, d in ((w, __import__("json").loads(d)) for w, d in access)] \
        == [("pa.khan", "MET/2026/0415")]
    panel.shutdown()


def test_the_analyst_plays_back_a_trail_with_a_reference_and_a_reason(qtbot, record):
    from ui.views.playback import PlaybackPanel
    store, session = _analyst(record)
    panel = PlaybackPanel(store, session, embed_map=False)
    qtbot.addWidget(panel)
    assert panel.who.count() == 2 and panel.needs_reason
    assert panel.load("OFF-A", T0, T0 + 3600) == 0           # no reference, no reason: nothing read
    assert "reference number and a reason are required" in panel.position.text()
    panel.ref.setText("MET/2026/0415")
    panel.reason.setText("Burglary at the scene: the person placed there")
    assert panel.load("OFF-A", T0, T0 + 3600) == 61
    access = record.admin().execute(
        "SELECT count(*) FROM audit_log WHERE action = 'crime_access' AND who = 'pa.khan'").fetchone()[0]
    assert access == 1
