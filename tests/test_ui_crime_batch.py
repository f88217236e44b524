"""The police analyst's view driven as an analyst drives it: digits typed into the date-time
fields, a place typed as a grid reference or a street, an incidents file loaded and run as a
batch (progress, hits listed in a checked model), a hit opened in the single-incident view with
its place and window filled in, and the hits exported (JSON, CSV, PDF), all audited."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest
from PySide6.QtCore import QDateTime, Qt, QTimeZone
from PySide6.QtTest import QTest

from monitorapp.crime.place import bng, grid_reference
from monitorapp.feed.timeutil import fmt_time, parse_time
from ui.console.formdialog import utc_datetime_edit
from ui.views.crime import CrimePanel
from ui.views.crimebatch import HitsModel

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


def _panel(own, crime_store):
    panel = CrimePanel(crime_store.store, crime_store.sessions["police_analyst"], embed_map=False)
    own(panel)
    panel.resize(1300, 900)
    panel.show()
    QTest.qWaitForWindowExposed(panel)
    return panel


def test_digits_typed_into_the_date_time_field(qtbot, own):
    w = own(utc_datetime_edit(parse_time("2026-03-10T12:00:00Z"), seconds=True))
    w.show()
    QTest.qWaitForWindowExposed(w)
    le = w.lineEdit()
    # a click on the hour and two digits: the hour is overwritten (Qt's own field refused them)
    x = le.fontMetrics().horizontalAdvance("2026-03-10 1")
    QTest.mouseClick(le, Qt.MouseButton.LeftButton, pos=le.rect().center().__class__(x + 2, le.height() // 2))
    qtbot.waitUntil(lambda: le.hasSelectedText(), timeout=2000)
    QTest.keyClicks(w, "07")
    assert w.text() == "2026-03-10 07:00:00 UTC"
    # everything selected and a whole time typed, with its separators
    QTest.keyClick(w, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(w, "2024-01-02 03:04:05")
    assert w.text() == "2024-01-02 03:04:05 UTC"
    # and the digits alone
    QTest.keyClick(w, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(w, "20261201143000")
    assert w.dateTime() == QDateTime.fromSecsSinceEpoch(int(parse_time("2026-12-01T14:30:00Z")), QTimeZone.utc())


def test_place_typed_as_grid_reference_or_street(qtbot, crime_store, own):
    panel = _panel(own, crime_store)
    ref = grid_reference(*bng(crime_store.lat, crime_store.lon))
    panel.place_text.setFocus()
    QTest.keyClicks(panel.place_text, ref)
    QTest.keyClick(panel.place_text, Qt.Key.Key_Return)
    assert abs(panel.lat.value() - crime_store.lat) < 2e-5 and abs(panel.lon.value() - crime_store.lon) < 2e-5
    assert "grid reference" in panel.message.text()
    panel.place_text.clear()
    QTest.keyClicks(panel.place_text, "camden high st")
    QTest.mouseClick(panel.find_place, Qt.MouseButton.LeftButton)
    assert "Camden High Street" in panel.message.text()
    assert 51.53 < panel.lat.value() < 51.545 and -0.15 < panel.lon.value() < -0.13
    panel.place_text.clear()
    QTest.keyClicks(panel.place_text, "ZZ 1 2 3")
    QTest.keyClick(panel.place_text, Qt.Key.Key_Return)
    assert panel.message.text().startswith("Place not set")
    panel.shutdown()


def test_batch_loaded_run_hit_opened_and_exported(qtbot, qtmodeltester, crime_store, own, tmp_path):
    e, n = bng(crime_store.lat, crime_store.lon)
    path = tmp_path / "incidents.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["reference", "easting", "northing", "radius_m", "from", "to"])
        w.writerow(["CAD-7", f"{e:.1f}", f"{n:.1f}", "100", fmt_time(crime_store.t0), fmt_time(crime_store.t1)])
        w.writerow(["CAD-8", f"{e + 20000:.1f}", f"{n:.1f}", "50", fmt_time(crime_store.t0),
                    fmt_time(crime_store.t0 + 600)])
    panel = _panel(own, crime_store)
    b = panel.batch
    panel.tabs.setCurrentIndex(1)
    assert not b.run_button.isEnabled()
    assert b.load(str(path))                  # what the file dialog hands over
    assert "2 incidents" in b.file_label.text() and b.run_button.isEnabled()
    QTest.mouseClick(b.run_button, Qt.MouseButton.LeftButton)
    assert "reason is required" in b.message.text()
    assert not [r for r in crime_store.store.audit_log() if r["action"] == "crime_batch"]
    b.reason.setFocus()
    QTest.keyClicks(b.reason, "Daily incident list")
    with qtbot.waitSignal(b.finished, timeout=30_000) as done:
        QTest.keyClick(b.reason, Qt.Key.Key_Return)
    report = done.args[0]
    assert b.progress.value() == b.progress.maximum() == 2
    hits = [(h["reference"], h["offender"]) for h in report["hits"]]
    assert ("CAD-7", "OFF-A") in hits and not [h for h in hits if h[0] == "CAD-8"]
    qtmodeltester.check(b.model)
    m = b.model
    assert m.rowCount() == len(hits)
    assert [m.data(m.index(i, 0)) for i in range(m.rowCount())] == [h[0] for h in hits]
    audit = [r for r in crime_store.store.audit_log() if r["action"] == "crime_batch"]
    assert len(audit) == 1 and audit[0]["detail"]["reason"] == "Daily incident list"
    # a hit opened: the single-incident view, filled in with the incident, runs and selects the person
    row = [h[1] for h in hits].index("OFF-A")
    rect = b.table.visualRect(m.index(row, 2))
    opened = []
    b.openHit.connect(lambda inc, hit: opened.append(hit["offender"]))
    with qtbot.waitSignal(panel.answered, timeout=30_000) as ans:
        QTest.mouseClick(b.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        QTest.mouseDClick(b.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        assert opened == ["OFF-A"], (opened, panel.message.text())
    assert panel.tabs.currentIndex() == 0
    q = ans.args[0]["query"]
    assert q["ref"] == "CAD-7" and q["reason"] == "Daily incident list" and q["radius_m"] == 100
    assert abs(q["lat"] - crime_store.lat) < 1e-5 and abs(q["lon"] - crime_store.lon) < 1e-5
    assert parse_time(q["from"]) == crime_store.t0 and parse_time(q["to"]) == crime_store.t1
    sel = panel.table.selectionModel().selectedRows()
    assert sel and panel.model.result(sel[0].row())["offender"] == "OFF-A"
    # the exports
    jpath, cpath, ppath = tmp_path / "hits.json", tmp_path / "hits.csv", tmp_path / "hits.pdf"
    assert b.export("json", str(jpath)) and json.loads(jpath.read_text())["hits"] == report["hits"]
    assert b.export("csv", str(cpath))
    assert [r["reference"] for r in csv.DictReader(cpath.open())] == [h[0] for h in hits]
    with qtbot.waitSignal(b.exported, timeout=60_000) as written:       # drawn off the GUI thread
        assert b.export("pdf", str(ppath)) == str(ppath)
    assert written.args[:2] == ["pdf", str(ppath)] and ppath.read_bytes()[:5] == b"%PDF-"
    kinds = [r["detail"]["kind"] for r in crime_store.store.audit_log() if r["action"] == "evidence_export"]
    assert kinds[-3:] == ["batch_json", "batch_csv", "batch_pdf"]
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(ppath), "-"], capture_output=True, text=True,
                              check=True, timeout=60).stdout
        assert "CAD-7" in text and "Certificate" in text and "OFF-D" not in text
    panel.shutdown()


def test_a_bad_incidents_file_is_refused_with_its_line(qtbot, crime_store, own, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("reference,lat,lon,radius_m,from,to\nCAD-1,51.5,-0.1,100,yesterday,2026-03-10T13:00:00Z\n")
    panel = _panel(own, crime_store)
    assert not panel.batch.load(str(path))
    assert "2" in panel.batch.message.text() and not panel.batch.run_button.isEnabled()
    panel.shutdown()


def test_hits_model_is_empty_before_a_batch(qtmodeltester):
    m = HitsModel()
    qtmodeltester.check(m)
    assert m.rowCount() == 0 and m.data(m.index(0, 0)) is None
