"""The trainer's view: a named scenario run on the real simulator, engine and a training store,
the trainee acknowledging in the queue, pause, reset, and the trainee report; a trainer never
reaches live mode."""
from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel

from ui.roles import RoleRefused, check_mode
from ui.views.trainer import TraineeReportModel, TrainerPanel, trainee_report
from ui.console.training import TrainingError


def test_strap_cut_run_and_trainee_report(qtbot, handled_store, own, tmp_path):
    panel = own(TrainerPanel(handled_store.sessions["trainer"], store_dir=tmp_path / "training",
                             map_factory=lambda theme: QLabel("no map")))
    panel.set_trainee(handled_store.sessions["operator"])       # signed in (tests/test_trainer_console.py)
    panel.speed.setCurrentIndex(panel.speed.findData(600))
    run = panel.start("strap_cut")
    assert run.store.path.parent == tmp_path / "training"
    (inc,) = run.incidents
    qtbot.waitUntil(lambda: any(r.alert.type == "strap_tamper" for r in run.controller.model.rows()),
                    timeout=30_000)
    row = next(r for r in run.controller.model.rows() if r.alert.type == "strap_tamper")
    run.controller.acknowledge(row.alert.alert_id, "contacted_subject", "called the subject, strap cut")
    panel.pause_button.click()
    assert run.paused and panel.pause_button.text() == "Resume"
    qtbot.waitUntil(lambda: run.feed.speed == 0.0, timeout=5000)     # the engine thread applied it
    frozen = run.feed.now()
    qtbot.wait(200)
    assert run.feed.now() == pytest.approx(frozen, abs=1e-6)
    rows = panel.show_report()
    first = rows[0]
    assert first["incident"] == "strap_tamper" and first["type"] == "strap_tamper"
    assert first["offender"] == inc.offender and first["by"] == "op.jones"
    assert first["action"] == "contacted_subject" and first["tta_s"] >= 0
    m = panel.report
    assert m.data(m.index(0, 2)) == "Strap tamper" and m.data(m.index(0, 7)) == "contacted subject"
    assert m.data(m.index(0, 1)) == "+5:00"
    panel.reset_button.click()
    assert panel.run is None and panel.queue is None and not run.worker.running


def test_trainer_never_reaches_live_mode(handled_store, tmp_path, own):
    trainer = handled_store.sessions["trainer"]
    with pytest.raises(RoleRefused, match="live console"):
        check_mode(trainer.role, training=False)
    live = tmp_path / "live.sqlite"
    panel = own(TrainerPanel(trainer, store_dir=tmp_path, live_store=str(tmp_path / "training-strap_cut.sqlite"),
                             map_factory=lambda theme: QLabel("no map")))
    with pytest.raises(TrainingError, match="live store"):
        panel.start("strap_cut")
    assert panel.run is None and not live.exists()
    with pytest.raises(RoleRefused):
        TrainerPanel(handled_store.sessions["operator"])


def test_report_model_and_missed_incident(qtmodeltester, handled_store):
    from monitorapp.sim.script import Incident
    from tests.fixtures_ui import T0
    incidents = [Incident("strap_tamper", "OFF-2", T0), Incident("exclusion_breach", "OFF-9", T0 + 60)]
    rows = trainee_report(handled_store.store, incidents, T0)
    assert rows[0]["type"] == "strap_tamper" and rows[0]["by"] == "op.jones"
    assert rows[1]["type"] is None                     # nothing raised for OFF-9: shown as such
    model = TraineeReportModel()
    model.set_rows(rows)
    assert model.data(model.index(1, 2)) == "NO ALERT RAISED"
    qtmodeltester.check(model)
