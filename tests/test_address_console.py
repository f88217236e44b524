"""Addresses in the console: a breach on Camden High Street reads as "Camden High Street,
Camden" in the alert queue's Location column, on the map's alert label, in the details panel
and in the acknowledgement dialog the operator reads out to the police (opened with the A key).
The real engine, worker thread, store, map page and shipped OSM data; the lookups run in the
engine thread."""
from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

import ui.map.view  # noqa: F401  (registers the map's URL schemes before the QApplication)
from monitorapp.places import Places
from tests import fixtures_ui
from tests.fixtures_map import run_js, wait_state
from tests.fixtures_ui import T0, fix, heartbeats
from ui.console.ackdialog import AckDialog
from ui.console.alertmodel import COL_LOCATION, COLUMNS
from ui.settings import Settings

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints", r"QRhi", r"RHI", r"Vulkan", r"GBM",
                                       r"GPUInfo", r"dbus", r"OpenGL", r"libpulse")

ON_HIGH_STREET = (51.5390, -0.1426)        # Camden High Street by Camden Town station
OUTSIDE = (51.5445, -0.1405)               # Royal College Street, 700 m north-east
ZONE = [[-0.1436, 51.5384], [-0.1416, 51.5384], [-0.1416, 51.5396], [-0.1436, 51.5396], [-0.1436, 51.5384]]


def camden_caseload(n_extra: int = 4) -> dict:
    doc = ORIGINAL_DOC(n_extra)
    doc["zones"]["features"][0]["geometry"]["coordinates"] = [ZONE]
    doc["offenders"][0]["borough"] = "Camden"
    return doc


ORIGINAL_DOC = fixtures_ui.ui_caseload_doc


def camden_breach() -> list[tuple]:
    msgs = heartbeats(T0, T0 + 420)
    for k in range(15):
        lat, lon = OUTSIDE if k < 4 else ON_HIGH_STREET
        msgs.append(fix("TAG-1", k + 1, T0 + 30 * k, lat, lon))
    return msgs


class CountingPlaces(Places):
    """The shipped Places, remembering which threads asked it for addresses."""

    def __init__(self, base: Places):
        super().__init__(base.boroughs_path, base.streets_path)
        self.threads: set[str] = set()

    def addresses(self, lons, lats, max_m=150.0):
        self.threads.add(threading.current_thread().name)
        return super().addresses(lons, lats, max_m)


@pytest.fixture
def camden_window(qtbot, ui_rig, monkeypatch):
    from ui.console.mainwindow import MainWindow
    from ui.map.view import MapView
    monkeypatch.setattr(fixtures_ui, "ui_caseload_doc", camden_caseload)
    places = CountingPlaces(Places.shipped())
    rig = ui_rig(camden_breach(), start=False, speed=120, n_extra=4)
    rig.worker.places = places                 # as ui.app passes its one Places in
    mv = MapView(places=places)
    w = MainWindow(controller=rig.controller, worker=rig.worker, caseload=rig.caseload, store=rig.store,
                   settings=Settings(), map_widget=mv, clock=rig.feed.now, operator="op.jones")
    rig.start(feed_controller=False)
    qtbot.addWidget(w)
    w.resize(1500, 900)
    w.show()
    qtbot.waitUntil(lambda: mv.is_ready, timeout=30_000)
    w.rig, w.places = rig, places
    yield w
    w.close()


def test_breach_reads_as_a_street_and_a_borough_everywhere(qtbot, camden_window):
    w = camden_window
    qtbot.waitUntil(lambda: bool(w.rig.alerts("exclusion_entered")), timeout=30_000)
    row = w.rig.alerts("exclusion_entered")[0]
    aid = row.alert.alert_id
    model = w.rig.controller.model
    assert COLUMNS[COL_LOCATION] == "Location"
    qtbot.waitUntil(lambda: model.row(aid).location == "Camden High Street, Camden", timeout=10_000)
    # the queue's Location column, as the operator sees it in the table
    proxy = w.queue.table.model()
    r = next(i for i in range(proxy.rowCount()) if proxy.index(i, 0).data(Qt.ItemDataRole.UserRole + 1) == aid)
    assert proxy.index(r, COL_LOCATION).data() == "Camden High Street, Camden"
    assert not w.queue.table.isColumnHidden(COL_LOCATION)
    assert "At Camden High Street, Camden" in proxy.index(r, 0).data(Qt.ItemDataRole.ToolTipRole)
    # the free-text filter finds alerts by street
    w.queue.filter.setFocus()
    QTest.keyClicks(w.queue.filter, "high street")
    qtbot.waitUntil(lambda: proxy.rowCount() >= 1, timeout=5000)
    assert all("High Street" in (proxy.index(i, COL_LOCATION).data() or "") for i in range(proxy.rowCount()))
    w.queue.filter.clear()

    # the map's alert label names the street
    qtbot.waitUntil(lambda: (run_js(qtbot, w.map, "EM.markerData('TAG-1')") or {}).get("priority") == "critical",
                    timeout=10_000)
    label = run_js(qtbot, w.map, "EM.markerData('TAG-1')")["tooltip"]
    assert "CRITICAL" in label and "Camden High Street, Camden" in label

    # the details panel's location
    assert w.queue.select_alert(aid)
    qtbot.waitUntil(lambda: w.details.offender == "OFF-1" and "Camden High Street" in w.details.body.text(),
                    timeout=10_000)
    assert "<b>Location:</b> Camden High Street, Camden" in w.details.body.text()

    # the acknowledgement dialog, opened with the A key on the queue: what is read out
    seen = []

    def read():
        dlg = QApplication.activeModalWidget()
        if isinstance(dlg, AckDialog):
            seen.append(dlg.location.text())
            dlg.reject()
    QTimer.singleShot(300, read)
    w.queue.table.setFocus()
    QTest.keyClick(w.queue.table, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen[0].startswith("Last fix: Camden High Street, Camden at ")
    # the lookups ran in the engine thread, never in the GUI thread
    assert w.places.threads == {"engine"}
    assert w.map.js_errors == []
