"""The operator dialogs and training-mode rules: what they allow, what they refuse and why."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from monitorapp.engine.alerts import PRIORITY, Alert, alert_id
from tests.fixtures_ui import T0
from ui.console.ackdialog import AckDialog, ack_problem
from ui.console.shelvedialog import ShelveDialog, shift_end
from ui.console.training import SPEEDS, TrainingError, TrainingSession, check_training_args, training_start, training_store_path
from ui.console.zonedialog import ZoneDialog, ZoneInputError, zone_and_requirement

SQUARE = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[
    [-0.09, 51.54], [-0.085, 51.54], [-0.085, 51.543], [-0.09, 51.543], [-0.09, 51.54]]]}}


def alert(type_):
    return Alert(alert_id(type_, "OFF-1", None, T0), type_, PRIORITY[type_], "OFF-1", "TAG-1", None, None, T0, T0)


def test_ack_dialog_requires_note_for_critical_not_for_low(qtbot):
    assert ack_problem("critical", "contacted_subject", "") == "A note is required for a critical alert."
    assert ack_problem("low", "contacted_subject", "") is None
    assert ack_problem("low", "other", "") is not None and ack_problem("low", None, "x") is not None
    dlg = AckDialog(alert("strap_tamper"))
    qtbot.addWidget(dlg)
    ok = dlg.buttons.button(dlg.buttons.StandardButton.Ok)
    dlg.action.setCurrentIndex(dlg.action.findData("police_informed"))
    assert not ok.isEnabled() and "note is required" in dlg.problem.text()
    dlg.note.setPlainText("999 call, ref 12")
    assert ok.isEnabled() and dlg.values() == ("police_informed", "999 call, ref 12")


def test_shelve_dialog_offers_at_most_the_limit_and_end_of_shift(qtbot):
    now = T0
    end = shift_end(now, "07:00", ZoneInfo("Europe/London"))
    assert 0 < end - now <= 24 * 3600
    assert dt.datetime.fromtimestamp(end, ZoneInfo("Europe/London")).strftime("%H:%M") == "07:00"
    dlg = ShelveDialog(alert("battery_low"), now, max_hours=2, shift_end_at=now + 3600)
    qtbot.addWidget(dlg)
    untils = [dlg.duration.itemData(i) for i in range(dlg.duration.count())]
    assert max(untils) - now <= 2 * 3600 and now + 3600 in untils
    assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()    # reason required
    dlg.reason.setText("tag replaced tomorrow")
    assert dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()
    with pytest.raises(ValueError, match="HH:MM"):
        shift_end(now, "7 o'clock")


def test_zone_dialog_builds_spec_zone_and_requirement(qtbot):
    z, r = zone_and_requirement(SQUARE, zone_id="Z-OP-0001", name="Market", offender="OFF-1", kind="curfew",
                                always=True, start="19:00", end="07:00", grace_s=300, requirement_id="R-Z-OP-0001")
    assert z["id"] == "Z-OP-0001" and z["properties"]["name"] == "Market" and z["geometry"]["type"] == "Polygon"
    assert r == {"id": "R-Z-OP-0001", "type": "curfew", "zone": "Z-OP-0001",
                 "schedule": [{"days": "daily", "start": "19:00", "end": "07:00"}], "grace_s": 300}
    z, r = zone_and_requirement({"type": "Feature", "properties": {"radius_m": 80},
                                 "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}},
                                zone_id="Z2", name="Park", offender="OFF-1", kind="exclusion", always=True,
                                start="", end="", grace_s=0, requirement_id="R2")
    assert z["properties"]["radius_m"] == 80 and r["schedule"] is None
    with pytest.raises(ZoneInputError, match="name"):
        zone_and_requirement(SQUARE, zone_id="Z3", name=" ", offender="OFF-1", kind="exclusion", always=True,
                             start="", end="", grace_s=0, requirement_id="R3")
    with pytest.raises(ZoneInputError, match="HH:MM"):
        zone_and_requirement(SQUARE, zone_id="Z3", name="x", offender="OFF-1", kind="exclusion", always=False,
                             start="25:00", end="07:00", grace_s=0, requirement_id="R3")
    dlg = ZoneDialog(SQUARE, [("OFF-1", "A"), ("OFF-2", "B")], zone_id="Z-OP-0002", preselect="OFF-2")
    qtbot.addWidget(dlg)
    assert dlg.offender.currentData() == "OFF-2"
    assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()   # no name yet
    dlg.name.setText("School gates")
    assert dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()


def test_training_rules(tmp_path):
    with pytest.raises(TrainingError, match="live broker"):
        check_training_args("mqtt://live:1883", None)
    live = tmp_path / "live.sqlite"
    with pytest.raises(TrainingError, match="live store"):
        check_training_args(None, str(live), str(live))
    with pytest.raises(TrainingError, match="speed"):
        TrainingSession(speed=7)
    with pytest.raises(TrainingError, match="unknown training scenario"):
        TrainingSession(speed=10, scenario="bank_heist")
    assert SPEEDS == (1, 10, 60)
    assert training_store_path().name == "training.sqlite" and training_store_path().is_relative_to(tmp_path)
    start = dt.datetime.fromtimestamp(training_start(T0), ZoneInfo("Europe/London"))
    assert (start.hour, start.minute) == (10, 0)
    s = TrainingSession(speed=60, scenario="strap_cut")
    assert s.feed.speed == 60 and "strap" in s.description.lower() and s.caseload.offenders
