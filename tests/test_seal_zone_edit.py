"""A zone edit the engine refuses is not recorded: the console sends an edit to the engine first
and writes the zone version (and its audit record) only when the engine has applied it, with
the engine's version number, so store and engine never diverge; the operator sees the engine's
reason. Real main window, real map page (edits arrive through its bridge, as the page sends
them), real engine thread and SQLite store."""
from __future__ import annotations

import json

import pytest

import ui.map.view  # noqa: F401  (registers the map's URL schemes before the QApplication)
from tests.fixtures_ui import EXCL, breach_script
from ui.settings import Settings

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse")


@pytest.fixture
def window(qtbot, ui_rig):
    from ui.console.mainwindow import MainWindow
    from ui.map.view import MapView
    rig = ui_rig(breach_script(), start=False, speed=60)
    rig.store.record_caseload(rig.caseload)          # as the console does at start (version 1)
    events = []
    mv = MapView()
    settings = Settings()
    settings.set("zones/approval", "none")    # no second person here (tests/test_zones_manager.py)
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload,
                   store=rig.store, settings=settings, map_widget=mv, clock=rig.feed.now,
                   operator="op.jones")
    w.event.connect(lambda name, fields: events.append((name, fields)))
    rig.start(feed_controller=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: mv.is_ready and rig.engine is not None, timeout=30000)
    w.rig, w.events = rig, events
    yield w
    w.close()


def zone_rows(store, zid):
    return store.reader().execute("SELECT version, created_by, removed FROM zones WHERE zone_id=?"
                                  " ORDER BY version", (zid,)).fetchall()


def zone_audit(store):
    return [r for r in store.audit_log() if r["action"] in ("zone_edit", "zone_removed")]


def edited(ring) -> str:
    return json.dumps({"type": "Feature", "id": "Z-EX-1", "properties": {"name": "Victim's street"},
                       "geometry": {"type": "Polygon", "coordinates": [ring]}})


def test_a_refused_zone_edit_is_not_recorded(qtbot, window):
    w, store = window, window.rig.store
    assert zone_rows(store, "Z-EX-1") == [(1, "system", 0)]
    # the operator drags a vertex onto another: a ring of three positions, which the engine refuses
    w.map.bridge.zoneEdited(edited([EXCL[0], EXCL[1], EXCL[0]]))
    qtbot.waitUntil(lambda: any(n == "zone_refused" for n, _ in w.events), timeout=10000)
    refused = dict(w.events)["zone_refused"]
    assert refused["zone"] == "Z-EX-1" and "at least 4 positions" in refused["reason"]
    # the operator sees why
    warning = dict(w.events)["warning"]["text"]
    assert "Z-EX-1" in warning and "refused" in warning and "at least 4 positions" in warning
    assert "at least 4 positions" in w.statusBar().currentMessage()
    # nothing reached the record: no version 2, no audit record, and the engine is at version 1
    store.flush()
    assert zone_rows(store, "Z-EX-1") == [(1, "system", 0)] and zone_audit(store) == []
    assert w.rig.engine.zone_versions["Z-EX-1"] == 1

    # an edit the engine accepts is recorded, as the engine's version, audited with who
    bigger = [[-0.1060, 51.5295], [-0.0990, 51.5295], [-0.0990, 51.5335], [-0.1060, 51.5335],
              [-0.1060, 51.5295]]
    w.map.bridge.zoneEdited(edited(bigger))
    qtbot.waitUntil(lambda: any(n == "zone_recorded" for n, _ in w.events), timeout=10000)
    assert w.rig.engine.zone_versions["Z-EX-1"] == 2
    assert zone_rows(store, "Z-EX-1") == [(1, "system", 0), (2, "op.jones", 0)]
    audit = zone_audit(store)
    assert len(audit) == 1 and audit[0]["who"] == "op.jones" and audit[0]["detail"]["version"] == 2


def test_a_refused_new_zone_is_not_recorded_and_a_later_edit_is_matched_to_its_own(qtbot, window):
    """Edits are matched to the engine's answers in order: a refused one never takes the place
    of the accepted one that follows it."""
    w, store = window, window.rig.store
    bad = {"type": "Feature", "id": "Z-OP-0001", "properties": {"name": "Market"},
           "geometry": {"type": "LineString", "coordinates": [[-0.09, 51.54], [-0.085, 51.54]]}}
    good = {"type": "Feature", "id": "Z-OP-0001", "properties": {"name": "Market square"},
            "geometry": {"type": "Polygon", "coordinates": [[[-0.09, 51.54], [-0.085, 51.54],
                                                              [-0.085, 51.543], [-0.09, 51.543],
                                                              [-0.09, 51.54]]]}}
    req = {"id": "R-OP-1", "type": "exclusion", "zone": "Z-OP-0001", "schedule": None}
    w.save_zone(bad, "OFF-2", req)
    w.save_zone(good, "OFF-2", req)
    qtbot.waitUntil(lambda: any(n == "zone_saved" for n, _ in w.events), timeout=10000)
    assert [n for n, _ in w.events if n in ("zone_refused", "zone_saved")] == ["zone_refused", "zone_saved"]
    rows = store.reader().execute("SELECT version, feature FROM zones WHERE zone_id='Z-OP-0001'").fetchall()
    assert len(rows) == 1 and json.loads(rows[0][1])["properties"]["name"] == "Market square"
    assert rows[0][0] == w.rig.engine.zone_versions["Z-OP-0001"]
