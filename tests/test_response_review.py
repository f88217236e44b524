"""The alert's timeline in the supervisor's review and its CSV (issue 21), and the protocol and
caseload files a centre edits: every problem reported at once, one line each; version 1
caseloads without the new fields still valid; the record's fields bounded."""
from __future__ import annotations

import csv
import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from monitorapp.engine.caseload import CaseloadError, load_caseload, parse_caseload
from monitorapp.response.contacts import ContactsError, parse_centre_contacts, tel_url
from monitorapp.response.protocols import ProtocolError, load_protocols, normalise
from ui.views.review import C_RESPONSE, ReviewPanel, handling_records, write_csv

pytestmark = pytest.mark.qt_log_ignore(r"propagateSizeHints")   # the offscreen platform's windows


def _exclusion(h):
    return next(a for a in h.alerts.values() if a["type"] == "exclusion_entered")


@pytest.fixture
def stepped(handled_store):
    """The handled store with the default protocols and a worked exclusion breach."""
    h = handled_store
    h.store.record_protocols(load_protocols(), "sup")
    aid = _exclusion(h)["alert_id"]
    h.clock.t = _exclusion(h)["raised_at"] + 120
    h.store.record_step(aid, "op.patel", "call_police", "no_answer", None, "engaged")
    h.store.record_step(aid, "op.patel", "warn_victim", "reached", None, None)
    h.clock.t += 600                                  # past the 5 minutes of the protocol
    h.store.record_step(aid, "op.patel", "call_police", "reached", "CAD 77", "unit sent")
    h.store.flush()
    return h, aid


def test_review_records_and_csv_carry_the_timeline(stepped, tmp_path):
    h, aid = stepped
    rec = next(r for r in handling_records(h.store) if r["alert_id"] == aid)
    assert rec["steps"] == 3 and rec["late_steps"] == "call_police" and rec["skipped"] == ""
    lines = rec["timeline"].splitlines()
    assert len(lines) == 4 and "op.patel: Acknowledged (police_informed)" in lines[0]
    assert "Call the borough police control room: Reached (ref CAD 77) — unit sent" in lines[3]
    path = tmp_path / "review.csv"
    write_csv(path, handling_records(h.store))
    with open(path, newline="", encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if r["alert_id"] == aid)
    assert row["steps"] == "3" and row["late_steps"] == "call_police"
    assert row["timeline"].splitlines()[1].endswith("Call the borough police control room: No answer — engaged")


def test_the_supervisor_selects_an_alert_and_reads_its_whole_timeline(qtbot, stepped, own):
    h, aid = stepped
    panel = ReviewPanel(h.store, h.sessions["supervisor"])
    own(panel)
    panel.resize(1500, 700)
    panel.show()
    row = next(i for i in range(panel.proxy.rowCount())
               if panel.proxy.visible_records()[i]["alert_id"] == aid)
    cell = panel.proxy.index(row, C_RESPONSE)
    assert panel.proxy.data(cell) == "3 steps · late: call_police"
    rect = panel.table.visualRect(cell)
    QTest.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: "CAD 77" in panel.timeline.toPlainText(), timeout=3000)
    assert "Warn the victim's contact: Reached" in panel.timeline.toPlainText()


def test_a_protocol_file_reports_every_problem_on_its_own_line(tmp_path):
    bad = {"version": 1, "protocols": {
        "exclusion_entered": {"steps": [{"id": "Call Police", "title": "x"},
                                        {"id": "warn", "title": "", "mandatory": True},
                                        {"id": "other", "title": "o"}]},
        "made_up": {"steps": []},
        "curfew_absent": {"steps": [{"id": "a", "title": "A", "within_min": 0, "contact": "mum"}]}}}
    with pytest.raises(ProtocolError) as e:
        normalise(bad)
    assert e.value.problems == [
        "exclusion_entered step #1: id must match [a-z][a-z0-9_]{0,39}",
        "exclusion_entered step #2 (warn): title must be text of 1–120 characters",
        "exclusion_entered step #3: id 'other' is reserved for the free step",
        "'made_up' is not an alert type (one of strap_tamper, exclusion_entered, feed_lost,"
        " system_fault, curfew_absent, signal_lost, appointment_missed, battery_low)",
        "curfew_absent step #1 (a): contact must be one of subject, officer, police, victim, centre"]
    p = tmp_path / "p.json"
    p.write_text("{not json")
    with pytest.raises(ProtocolError, match="is not valid JSON"):
        load_protocols(p)
    shipped = load_protocols()
    assert [s["id"] for s in shipped["protocols"]["exclusion_entered"]["*"]] == [
        "call_police", "warn_victim", "call_subject", "inform_officer"]
    assert shipped["protocols"]["strap_tamper"]["high"][0]["mandatory"] is True


def test_caseload_v1_stays_valid_and_the_record_fields_are_bounded():
    doc = json.load(open("examples/caseload.json", encoding="utf-8"))
    assert parse_caseload(doc).offenders                      # version 1, no new field
    o = doc["offenders"][0]
    o.update(phone="+44 7700 900123", address="1 Road", photo="p.png", offence_category="Theft",
             risk_notes="none", order={"start": "2026-01-01", "end": "2026-06-30", "court_ref": "T1"},
             victim_contact={"name": "V", "phone": "07700 900456", "relation": "ex-partner"})
    assert parse_caseload(doc).offenders[o["id"]].raw["order"]["court_ref"] == "T1"
    o.update(phone="call me", address="x" * 301,
             order={"start": "2026-06-30", "end": "2026-01-01", "court_ref": ""},
             victim_contact={"name": "V"}, responsible_officer="Bob")
    with pytest.raises(CaseloadError) as e:
        parse_caseload(doc)
    where = f"offender {o['id']}"
    for text in (f"{where}: phone must be a telephone number",
                 f"{where}: address must be text of 1–300 characters",
                 f"{where}: order end must not be before its start",
                 f"{where} order: court_ref must be text of 1–80 characters",
                 f"{where} victim_contact: phone must be a telephone number",
                 f"{where}: responsible_officer must be an object"):
        assert any(p.startswith(text) for p in e.value.problems), text
    assert load_caseload("examples/caseload.json").offenders


def test_centre_contacts_file_and_tel_links():
    c = parse_centre_contacts({"version": 1, "police": {"*": {"name": "Met", "phone": "+44 20 7946 0000"}}})
    assert c["police"]["*"]["phone"] == "+44 20 7946 0000"
    with pytest.raises(ContactsError, match="police Camden: phone must be a telephone number"):
        parse_centre_contacts({"version": 1, "police": {"Camden": {"name": "C", "phone": "999!"}}})
    assert tel_url("+44 (20) 7946-0101") == "tel:+442079460101" and tel_url("0207 946") == "tel:0207946"


def test_the_record_command_validates_and_records_a_version_once(tmp_path, capsys):
    from monitorapp.response.recordcmd import cli_main
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "protocols": {"feed_lost": {"steps": [{"id": "x"}]}}}))
    assert cli_main(["--file", str(bad), "--check"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("1 problem(s)") and err[1] == "  feed_lost step #1 (x): title must be text of 1–120 characters"
    db = str(tmp_path / "s.sqlite")
    assert cli_main(["--db", db, "--who", "sup"]) == 0
    assert cli_main(["--db", db, "--who", "sup"]) == 0
    assert capsys.readouterr().out.splitlines() == ["response protocols version 1 in force"] * 2
