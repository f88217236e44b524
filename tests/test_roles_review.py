"""Supervisor acknowledgement review: the table a supervisor sees, filters, late marks,
comments and reviewed marks (audited), CSV export read back, hash chain shown on open."""
from __future__ import annotations

import csv
import sqlite3

import pytest

from ui.views.review import C_LATE, C_REVIEWED, LATE_MARK, ReviewModel, ReviewPanel, handling_records
from ui.roles import RoleRefused


@pytest.fixture
def review(qtbot, handled_store, own):
    panel = ReviewPanel(handled_store.store, handled_store.sessions["supervisor"])
    own(panel)
    panel.resize(1500, 700)
    return panel


def _cells(panel, col):
    p = panel.proxy
    return [p.data(p.index(i, col)) for i in range(p.rowCount())]


def test_records_time_to_ack_close_and_late(handled_store):
    recs = {r["alert_id"]: r for r in handling_records(handled_store.store)}
    assert len(recs) == len(handled_store.alerts)
    for aid in handled_store.late:
        assert recs[aid]["late"] and recs[aid]["tta_s"] == pytest.approx(240.0)
    on_time = [r for r in recs.values() if r["type"] == "strap_tamper" and r["tta_s"] == pytest.approx(30.0)]
    assert on_time and not any(r["late"] for r in on_time)
    closed = [r for r in recs.values() if r["closed_at"] is not None]
    assert closed and all(r["ttc_s"] == pytest.approx(r["tta_s"] + 300) for r in closed)
    # never acknowledged, an hour on: late, no operator
    (open_id,) = handled_store.open
    assert recs[open_id]["late"] and recs[open_id]["tta_s"] is None and recs[open_id]["operator"] == ""


def test_panel_shows_chain_intact_and_late_rows(review, handled_store):
    assert "Acknowledgement log: intact" in review.chain.text()
    assert "Audit log: intact" in review.chain.text()
    late_cells = _cells(review, C_LATE)
    assert late_cells.count(LATE_MARK) == sum(r["late"] for r in handling_records(handled_store.store))
    assert review.proxy.rowCount() == len(handled_store.alerts)


def test_filters_operator_priority_type(review):
    i = review.f_operator.findData("op.patel")
    review.f_operator.setCurrentIndex(i)
    ops = {review.proxy.visible_records()[k]["operator"] for k in range(review.proxy.rowCount())}
    assert ops == {"op.patel"}
    review.f_operator.setCurrentIndex(0)
    review.f_priority.setCurrentIndex(review.f_priority.findData("low"))
    assert [r["type"] for r in review.proxy.visible_records()] == ["battery_low"]
    review.f_priority.setCurrentIndex(0)
    review.f_type.setCurrentIndex(review.f_type.findData("strap_tamper"))
    review.f_late.setChecked(True)
    vis = review.proxy.visible_records()
    assert vis and all(r["late"] and r["type"] == "strap_tamper" for r in vis)
    assert review.f_shift.count() >= 2      # "All" + the shift the alerts fall in
    assert "late" in review.summary.text()


def test_review_comment_is_logged_and_shown(review, handled_store, qtbot):
    aid = handled_store.late[0]
    assert review.select_alert(aid)
    review.comment.setText("Late: operator was on a call. Discussed.")
    with qtbot.waitSignal(review.reviewed, timeout=5000):
        review.review_button.click()
    recs = {r["alert_id"]: r for r in handling_records(handled_store.store)}
    assert recs[aid]["reviewed"] and recs[aid]["reviewed_by"] == "sup.khan"
    assert recs[aid]["comment"].startswith("Late: operator")
    audit = [r for r in handled_store.store.audit_log() if r["action"] == "alert_review"]
    assert audit[-1]["who"] == "sup.khan" and audit[-1]["detail"]["alert_id"] == aid
    assert "✓" in _cells(review, C_REVIEWED)


def test_csv_export_reads_back(review, handled_store, tmp_path):
    review.f_type.setCurrentIndex(review.f_type.findData("strap_tamper"))
    path = tmp_path / "review.csv"
    n = review.export_csv(str(path))
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert n == len(rows) == 12
    assert {r["type"] for r in rows} == {"strap_tamper"}
    late = [r for r in rows if r["late"] == "True"]
    assert {r["alert_id"] for r in late} >= set(handled_store.late)
    assert all(float(r["tta_s"]) == 240.0 for r in late if r["alert_id"] in handled_store.late)
    assert any(r["action"] == "review_export" for r in handled_store.store.audit_log())


def test_broken_chain_named_on_open(qtbot, handled_store, own):
    handled_store.store.flush()
    db = sqlite3.connect(handled_store.path)
    db.execute("DROP TRIGGER ack_log_no_update")
    db.execute("UPDATE ack_log SET note='nothing happened' WHERE seq=3")
    db.commit()
    db.close()
    panel = ReviewPanel(handled_store.store, handled_store.sessions["supervisor"])
    own(panel)
    assert "Acknowledgement log: BROKEN at record 3" in panel.chain.text()
    assert panel.chain.property("broken") is True


def test_roles_for_review(qtbot, handled_store, own):
    with pytest.raises(RoleRefused):
        ReviewPanel(handled_store.store, handled_store.sessions["operator"])
    admin = ReviewPanel(handled_store.store, handled_store.sessions["administrator"])
    own(admin)
    assert not admin.review_button.isEnabled()          # may look, not comment
    with pytest.raises(RoleRefused):
        admin.review(handled_store.late[0], "x")


def test_review_model_passes_modeltester(qtmodeltester, handled_store):
    model = ReviewModel()
    records = handling_records(handled_store.store)
    model.update(records[:5])
    qtmodeltester.check(model)
    model.update(records)
    qtmodeltester.check(model)
