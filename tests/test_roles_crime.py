"""The police analyst's crime-mapping view: refusal without a reason, spec §5 verdicts, the
distance chart with its radius line, the scene and tracks on the real map page, and the
evidential exports (PDF rendered with pdftoppm, GeoJSON digest recomputed, CSV read back),
every query and export audited."""
from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess

import pytest

from monitorapp.crime.evidence import canonical, data_digest
from ui.views.crime import CrimePanel, CrimeResultModel
from ui.roles import RoleRefused
from tests.fixtures_map import map_log_ignore, wait_state

pytestmark = map_log_ignore


def _panel(own, crime_store, role="police_analyst", map_view=None):
    panel = CrimePanel(crime_store.store, crime_store.sessions[role], map_view=map_view, embed_map=False)
    own(panel)
    panel.resize(1200, 900)
    panel.set_place(crime_store.lat, crime_store.lon)
    panel.radius.setValue(int(crime_store.RADIUS))
    panel.set_window(crime_store.t0, crime_store.t1)
    return panel


def _run(qtbot, panel, ref="MET/2026/0415", reason="Burglary at the scene, suspects unknown"):
    panel.ref.setText(ref)
    panel.reason.setText(reason)
    with qtbot.waitSignal(panel.answered, timeout=20_000) as blocker:
        assert panel.run_query()
    return blocker.args[0]


def test_query_without_reason_is_refused_and_not_run(qtbot, crime_store, own):
    panel = _panel(own, crime_store)
    panel.ref.setText("MET/2026/0415")
    with qtbot.waitSignal(panel.refused, timeout=1000) as b:
        assert panel.run_query() is False
    assert "reason are required" in b.args[0]
    panel.ref.clear()
    panel.reason.setText("a reason")
    assert panel.run_query() is False
    assert not [r for r in crime_store.store.audit_log() if r["action"] == "crime_query"]
    assert panel.model.rowCount() == 0
    panel.shutdown()


def test_operator_cannot_open_crime_mapping(crime_store):
    with pytest.raises(RoleRefused):
        CrimePanel(crime_store.store, crime_store.sessions["operator"])


def test_verdicts_chart_and_map(qtbot, crime_store, map_view, own):
    panel = _panel(own, crime_store, map_view=map_view)
    answer = _run(qtbot, panel)
    verdicts = {r["offender"]: r["verdict"] for r in answer["results"]}
    assert verdicts == {"OFF-A": "present", "OFF-C": "possible", "OFF-B": "not_present", "OFF-D": "no_data"}
    m = panel.model
    assert [m.data(m.index(i, 0)) for i in range(m.rowCount())] == ["PRESENT", "POSSIBLE", "not present", "no data"]
    assert m.data(m.index(0, 1)) == "OFF-A"
    # the chart: one curve per present/possible person, dipping below the radius line for OFF-A
    assert set(panel.series) == {"TAG-A", "TAG-C"}
    t, d = panel.series["TAG-A"]
    assert d.min() < crime_store.RADIUS < d.max()
    assert panel.radius_line.value() == crime_store.RADIUS
    assert panel.radius_line in panel.chart.getPlotItem().items
    assert panel.radius_line.label.toPlainText() == f"radius {crime_store.RADIUS:.0f} m"    # as the line says
    # audited with who, ref and reason
    q = [r for r in crime_store.store.audit_log() if r["action"] == "crime_query"][-1]
    assert q["who"] == "pc.smith" and q["detail"]["ref"] == "MET/2026/0415"
    assert q["detail"]["reason"].startswith("Burglary")
    # the scene and the closest fixes on the map; a selected row shows that person's track
    # closest in-window fix of everyone near the scene: OFF-A and OFF-C (OFF-B is 1.2 km off)
    state = wait_state(qtbot, map_view, lambda s: s["markers"] == 2 and s["zones"] and s["zoom"] == 16)
    assert "crime-scene" in json.dumps(state["zones"])
    panel.table.selectRow(0)
    state = wait_state(qtbot, map_view, lambda s: "TAG-A" in json.dumps(s.get("selected")))
    assert state["trail"]
    panel.shutdown()


def test_map_click_sets_place_when_picking(qtbot, crime_store, map_view, own):
    panel = _panel(own, crime_store, map_view=map_view)
    panel.pick.setChecked(True)
    map_view.mapClicked.emit(51.5, -0.1)
    assert (panel.lat.value(), panel.lon.value()) == (51.5, -0.1) and not panel.pick.isChecked()
    map_view.mapClicked.emit(51.6, -0.2)          # not picking: ignored
    assert panel.lat.value() == 51.5
    panel.shutdown()


def test_exports_pdf_geojson_csv(qtbot, crime_store, tmp_path, own):
    panel = _panel(own, crime_store)
    answer = _run(qtbot, panel)
    digest = data_digest(answer)
    assert digest == hashlib.sha256(canonical(answer)).hexdigest()
    # GeoJSON: the evidence inside recomputes to the same digest
    gpath = tmp_path / "crime.geojson"
    assert panel.export("geojson", str(gpath)) == digest
    doc = json.loads(gpath.read_text(encoding="utf-8"))
    assert doc["sha256"] == digest == data_digest(doc["evidence"])
    assert doc["features"][0]["properties"]["role"] == "scene"
    assert any(f["properties"].get("offender") == "OFF-A" and f["properties"]["inside"] for f in doc["features"][1:])
    # CSV reads back
    cpath = tmp_path / "crime.csv"
    assert panel.export("csv", str(cpath)) == digest
    rows = list(csv.DictReader(cpath.open(encoding="utf-8")))
    assert [(r["offender"], r["verdict"]) for r in rows] == [(r["offender"], r["verdict"]) for r in answer["results"]]
    assert float(rows[0]["closest_m"]) <= crime_store.RADIUS
    # PDF: produced, renders, and carries the digest
    ppath = tmp_path / "crime.pdf"
    with qtbot.waitSignal(panel.exported, timeout=60_000) as written:    # drawn off the GUI thread
        assert panel.export("pdf", str(ppath)) == digest
    assert written.args == ["pdf", str(ppath), digest]
    assert ppath.read_bytes()[:5] == b"%PDF-"
    exports = [r["detail"] for r in crime_store.store.audit_log() if r["action"] == "evidence_export"]
    assert [e["kind"] for e in exports] == ["geojson", "csv", "pdf"]
    assert all(e["sha256"] == digest and e["ref"] == "MET/2026/0415" for e in exports)
    if not (shutil.which("pdftoppm") and shutil.which("pdftotext")):
        pytest.skip("poppler-utils (pdftoppm, pdftotext) not installed: apt-get install -y poppler-utils")
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(ppath), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages and pages[0].stat().st_size > 5000
    text = subprocess.run(["pdftotext", "-layout", str(ppath), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout
    flat = "".join(text.split())
    assert digest in flat
    assert "MET/2026/0415" in text and "pc.smith" in text and "PRESENT" in text
    panel.shutdown()


def test_police_cannot_acknowledge_and_results_model(qtmodeltester, crime_store, qtbot, own):
    from ui.roles import can
    assert not can(crime_store.sessions["police_analyst"].role, "acknowledge")
    panel = _panel(own, crime_store)
    answer = _run(qtbot, panel)
    model = CrimeResultModel()
    model.set_results(answer["results"])
    qtmodeltester.check(model)
    panel.shutdown()
