"""The compliance report for probation and courts (issue 21): one offender, one period, from the
record the real engine wrote (a curfew absence and an exclusion breach on the same outing, both
handled with their protocol's steps). The report carries the right alerts, their handling and
whole timeline, the time away from curfew and inside the zone, and the totals; the CSV has one row
per alert; the PDF reads back (pdftotext) with "page x of y", the offender's name and the
digest, and survives hostile names; the command exits 2 with one line on a bad offender or
period; a PostgreSQL supervisor (no fixes) gets the figures from the alerts' context; and a
supervisor writes the PDF from the application's dialog with keyboard and mouse."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess

import pytest

from localdb.store import Store
from monitorapp.engine.caseload import parse_caseload
from monitorapp.engine.engine import Engine
from monitorapp.response.compliance import CONTEXT_ONLY, FIXES, ComplianceError, compliance_report
from monitorapp.response.compliancepdf import CSV_FIELDS, cli_main, write_compliance_csv, write_compliance_pdf
from monitorapp.response.protocols import load_protocols
from tests.fixtures_ui import EXCL, INSIDE, T0, fix, heartbeats
from tests.fixtures_clock import Clock

HOME = (51.5200, -0.1200)            # the curfew address, 1.4 km from the exclusion zone
ELSEWHERE = (51.5250, -0.1100)       # neither home nor the zone
NAME = "Alex (Al) \\ Example"
poppler = pytest.mark.skipif(not shutil.which("pdftotext"), reason="poppler-utils not installed")


def caseload_doc(name=NAME):
    zones = [{"type": "Feature", "id": "Z-EX-1", "properties": {"name": "Victim's street"},
              "geometry": {"type": "Polygon", "coordinates": [EXCL]}},
             {"type": "Feature", "id": "Z-HOME-1", "properties": {"name": "Home address", "radius_m": 120},
              "geometry": {"type": "Point", "coordinates": [HOME[1], HOME[0]]}}]
    return {"version": 1, "tz": "Europe/London",
            "zones": {"type": "FeatureCollection", "features": zones},
            "offenders": [{"id": "OFF-1", "name": name, "risk": "high", "borough": "Islington",
                           "device": "TAG-1", "fix_interval_s": 30,
                           "order": {"start": "2026-09-01", "end": "2027-03-01", "court_ref": "T2026/0815",
                                     "court": "Highbury Corner Magistrates' Court"},
                           "responsible_officer": {"name": "Pat Officer", "email": "pat@probation.example",
                                                   "team": "Islington North"},
                           "requirements": [
                               {"id": "R-1-X", "type": "exclusion", "zone": "Z-EX-1", "schedule": None},
                               {"id": "R-1-C", "type": "curfew", "zone": "Z-HOME-1", "grace_s": 600,
                                "schedule": [{"days": "daily", "start": "10:00", "end": "14:00"}]}]}]}


def outing():
    """TAG-1 at home for 5 minutes, in the exclusion zone for 10, elsewhere for 10, home again
    (curfew 10:00-14:00; T0 is 11:06:40): away 20 minutes, inside the zone 10 minutes."""
    msgs = heartbeats(T0, T0 + 2100)
    for k in range(70):
        t = T0 + 30 * k
        place = HOME if k < 10 else INSIDE if k < 30 else ELSEWHERE if k < 50 else HOME
        msgs.append(fix("TAG-1", k + 1, t, *place))
    return sorted(msgs, key=lambda m: m[0])


def fill(store, clock, name=NAME):
    """The engine's alerts of the outing in ``store``, handled with their protocols' steps."""
    caseload = parse_caseload(caseload_doc(name), "test caseload")
    store.record_caseload(caseload)
    store.record_protocols(load_protocols(), "sup.khan")
    engine = Engine(caseload, start=T0)
    store.attach(engine)
    for rx, raw in outing():
        engine.submit(raw, rx=rx)
    engine.advance(T0 + 2200)
    store.flush()
    alerts = {a["type"]: a for a in store.alerts()}
    ex, cu = alerts["exclusion_entered"], alerts["curfew_absent"]
    clock.t = ex["raised_at"] + 40
    store.acknowledge(ex["alert_id"], "op.patel", "police_informed", "999 called")
    clock.t += 60
    store.record_step(ex["alert_id"], "op.patel", "call_police", "reached", "CAD 4711", "unit sent")
    store.record_step(ex["alert_id"], "op.patel", "warn_victim", "reached", None, "victim indoors")
    clock.t = cu["raised_at"] + 30
    store.acknowledge(cu["alert_id"], "op.jones", "contacted_subject", "subject says: at the shop")
    store.record_step(cu["alert_id"], "op.jones", "call_subject", "reached", None, "going home now")
    clock.t = T0 + 2300
    store.close_alert(ex["alert_id"], "op.patel", "left the zone; police attended",
                      skipped={"inform_officer": "e-mailed the team out of hours"})
    store.record_step(cu["alert_id"], "op.jones", "inform_officer", "message_left", None, None)
    store.close_alert(cu["alert_id"], "op.jones", "home at 11:41; officer informed")
    store.flush()
    return caseload, ex, cu


@pytest.fixture
def record(tmp_path):
    clock = Clock(T0)
    store = Store(tmp_path / "c.sqlite", clock=clock, anchor=False)
    caseload, ex, cu = fill(store, clock)
    clock.t = T0 + 86400
    yield store, caseload, ex, cu
    store.close()


def test_the_report_has_the_alerts_their_timelines_and_the_time_away(record):
    store, caseload, ex, cu = record
    r = compliance_report(store, "OFF-1", T0 - 3600, T0 + 7200, "sup.khan", "breach hearing 2 Dec",
                          caseload=caseload)
    assert r["offender"]["name"] == NAME and r["offender"]["order"]["court_ref"] == "T2026/0815"
    assert r["offender"]["responsible_officer"]["name"] == "Pat Officer"
    assert [a["type"] for a in r["alerts"]] == ["exclusion_entered", "curfew_absent"]
    assert r["fixes_source"] == FIXES
    e, c = r["alerts"]
    assert e["acked_by"] == "op.patel" and e["action_code"] == "police_informed"
    assert e["outcome"] == "left the zone; police attended" and e["closed_by"] == "op.patel"
    assert [(i["kind"], i["step_id"]) for i in e["timeline"]] == [
        ("acknowledge", None), ("step", "call_police"), ("step", "warn_victim"),
        ("skip", "inform_officer"), ("close", None)]
    assert "Reached (ref CAD 4711) — unit sent" in e["timeline"][1]["text"]
    assert {s["id"]: s["state"] for s in e["checklist"]}["inform_officer"] == "skipped"
    assert e["breach"]["entered_at"] == T0 + 300 and e["breach"]["left_at"] == T0 + 900
    assert e["breach"]["inside_s"] == 600 and e["breach"]["deepest_m"] > 50
    assert c["breach"]["away_from"] == T0 + 300 and c["breach"]["away_to"] == T0 + 1500
    assert c["breach"]["away_s"] == 1200 and r["curfew_away_s"] == 1200
    assert r["totals"] == {"exclusion_entered": {"alerts": 1, "acknowledged": 1, "closed": 1, "inside_s": 600},
                           "curfew_absent": {"alerts": 1, "acknowledged": 1, "closed": 1, "away_s": 1200}}
    audit = [x for x in store.audit_log() if x["action"] == "compliance_report"]
    assert len(audit) == 1 and audit[0]["who"] == "sup.khan"
    assert audit[0]["detail"]["offender"] == "OFF-1" and audit[0]["detail"]["reason"] == "breach hearing 2 Dec"
    assert audit[0]["detail"]["sha256"] == r["sha256"]
    # a period that ends half-way through the absence counts only its part
    part = compliance_report(store, "OFF-1", T0 - 3600, T0 + 900, "sup.khan", "part", caseload=caseload)
    assert part["curfew_away_s"] == 600
    # a period before the outing has no alert
    assert compliance_report(store, "OFF-1", T0 - 7200, T0, "sup.khan", "before")["alerts"] == []


def test_csv_has_one_row_per_alert_with_the_timeline_flattened(record, tmp_path):
    store, caseload, ex, cu = record
    r = compliance_report(store, "OFF-1", T0 - 3600, T0 + 7200, "sup.khan", "hearing", caseload=caseload)
    path = tmp_path / "c.csv"
    assert write_compliance_csv(r, path) == 2
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_FIELDS
        rows = list(reader)
    assert [x["type"] for x in rows] == ["exclusion_entered", "curfew_absent"]
    assert rows[0]["offender_name"] == NAME and rows[0]["steps"] == "2"
    assert rows[0]["skipped"] == "inform_officer: e-mailed the team out of hours"
    assert rows[0]["inside_s"] == "600" and rows[1]["away_s"] == "1200"
    lines = rows[0]["timeline"].splitlines()
    assert len(lines) == 5 and lines[1].endswith("op.patel: Call the borough police control room: "
                                                 "Reached (ref CAD 4711) — unit sent")
    assert rows[1]["outcome"] == "home at 11:41; officer informed" and rows[1]["acked_by"] == "op.jones"


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout


@poppler
def test_pdf_reads_back_with_pages_the_name_the_timeline_and_the_digest(record, tmp_path):
    import re
    store, caseload, ex, cu = record
    r = compliance_report(store, "OFF-1", T0 - 3600, T0 + 7200, "sup.khan", "hearing", caseload=caseload)
    path = tmp_path / "c.pdf"
    assert write_compliance_pdf(r, path, store, places=False) == r["sha256"]
    data = path.read_bytes()
    assert data.startswith(b"%PDF-1.4")
    pages = pdf_text(path).split("\f")[:-1]
    n = len(pages)
    assert n >= 2 and f"/Count {n}".encode() in data
    for i, page in enumerate(pages, 1):
        assert re.search(rf"page {i} of {n}\s*$", page.rstrip()), page[-200:]
    flat = " ".join(" ".join(pages).split())
    for text in (NAME, "T2026/0815", "Pat Officer", "Time away from curfew in the period: 20 min",
                 "CAD 4711", "e-mailed the team out of hours", "Certificate", r["sha256"][:32]):
        assert text in flat, text
    assert [x["action"] for x in store.audit_log()][-1] == "compliance_export"


@poppler
def test_hostile_names_stay_text_in_the_pdf(tmp_path):
    hostile = "Robert'); ET /F1 99 Tf (pwned) Tj BT \\( <<evil>> \u00e9\u4e2d"
    clock = Clock(T0)
    store = Store(tmp_path / "h.sqlite", clock=clock, anchor=False)
    try:
        caseload, ex, cu = fill(store, clock, name=hostile)
        r = compliance_report(store, "OFF-1", T0 - 3600, T0 + 7200, "sup<b>", "a (reason) \\ ) (",
                              caseload=caseload)
        path = tmp_path / "h.pdf"
        write_compliance_pdf(r, path, places=False)
        flat = " ".join(pdf_text(path).split())
        assert "Robert'); ET /F1 99 Tf (pwned) Tj BT \\( <<evil>> \u00e9?" in flat
        assert "a (reason) \\ ) (" in flat and "sup<b>" in flat
    finally:
        store.close()


def test_cli_writes_the_report_and_exits_2_on_a_bad_offender_or_period(record, tmp_path, capsys):
    store, caseload, ex, cu = record
    store.flush()
    db = str(store.path)
    cl = tmp_path / "caseload.json"
    cl.write_text(json.dumps(caseload_doc()), encoding="utf-8")
    base = ["--db", db, "--from", "2026-11-18T10:00:00Z", "--to", "2026-11-18T13:00:00Z",
            "--reason", "hearing", "--operator", "sup.khan"]
    out = tmp_path / "r.json"
    assert cli_main(base + ["--offender", "OFF-1", "--caseload", str(cl), "--out-json", str(out),
                            "--out-csv", str(tmp_path / "r.csv")]) == 0
    doc = json.loads(out.read_text())
    assert doc["curfew_away_s"] == 1200 and doc["alerts"][0]["start"] == "2026-11-18T11:11:40.000Z"
    assert doc["offender"]["order"]["court"] == "Highbury Corner Magistrates' Court"
    capsys.readouterr()
    for args, text in (
            (base + ["--offender", "OFF-NOBODY"], "no offender 'OFF-NOBODY'"),
            (["--db", db, "--offender", "OFF-1", "--from", "yesterday", "--to", "2026-11-18T13:00:00Z",
              "--reason", "x"], "the period must be two RFC 3339 times"),
            (["--db", db, "--offender", "OFF-1", "--from", "2026-11-18T13:00:00Z",
              "--to", "2026-11-18T10:00:00Z", "--reason", "x"], "the period must end after it starts"),
            (base + ["--offender", "OFF-1", "--reason", " "], "a reason is required"),
            (["--db", str(tmp_path / "none.sqlite"), "--offender", "OFF-1", "--from", "2026-11-18T10:00:00Z",
              "--to", "2026-11-18T13:00:00Z", "--reason", "x"], "no such store")):
        assert cli_main(args) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("monitorapp compliance: ") and text in err[0], err
    with pytest.raises(ComplianceError, match="no offender"):
        compliance_report(store, "OFF-2", T0, T0 + 1, "x", "y")


# ---- PostgreSQL: each person their own login; a supervisor reads no fixes ---------------------
@pytest.fixture
def pg_record(request, people):
    from tests.fixtures_pgpeople import PeopleStore

    class ResponseStore(PeopleStore):
        HANDLING = PeopleStore.HANDLING + ("record_step",)
        ROLE_OF = {"sup.khan": "supervisor"}

        def record_protocols(self, doc, who="sup.khan"):
            return self._by(who).record_protocols(doc, who)
    clock = Clock(T0)
    s = ResponseStore(people, clock)
    caseload, ex, cu = fill(s, clock)
    people.freeze_clock(T0 + 86400)
    yield s, caseload, people
    s.close()


def test_a_supervisor_on_postgresql_gets_the_figures_from_the_alerts_context(pg_record):
    s, caseload, people = pg_record
    sup = people.store("sam.sup", "supervisor")
    r = compliance_report(sup, "OFF-1", T0 - 3600, T0 + 7200, "ignored: the login is who", "hearing",
                          caseload=caseload)
    assert r["fixes_source"] == CONTEXT_ONLY
    assert [a["type"] for a in r["alerts"]] == ["exclusion_entered", "curfew_absent"]
    assert r["alerts"][0]["acked_by"] == "op.patel" and len(r["alerts"][0]["timeline"]) == 5
    # without the fixes, an absence ends when the alert cleared: at most a fix or two later
    assert 1200 <= r["totals"]["curfew_absent"]["away_s"] <= 1200 + 61
    assert 600 <= r["totals"]["exclusion_entered"]["inside_s"] <= 600 + 61
    rec = [x for x in sup.audit_log() if x["action"] == "compliance_report"]
    assert len(rec) == 1 and rec[0]["who"] == "sam.sup" and rec[0]["detail"]["offender"] == "OFF-1"
    analyst = people.store("pc.smith", "police_analyst")
    with pytest.raises(ComplianceError, match="may not read the alerts"):
        compliance_report(analyst, "OFF-1", T0 - 3600, T0 + 7200, "pc.smith", "curious", caseload=caseload)


# ---- the application: Views › Compliance report…, driven by a supervisor ----------------------
@pytest.mark.qt_log_ignore(r"This plugin does not support (propagateSizeHints|raise)\(\)")   # offscreen
def test_a_supervisor_writes_the_pdf_from_the_views_menu(qtbot, record, tmp_path, own):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QMainWindow
    from tests.fixtures_roles import accounts_for_every_role
    from ui.session.wiring import install_role_views
    store, caseload, ex, cu = record
    accounts, sessions = accounts_for_every_role(store)
    w = own(QMainWindow())
    w.caseload = caseload
    w.show()
    assert "compliance" not in install_role_views(w, store, None, None, sessions["operator"], idle_s=0)
    w.role_views.end()
    actions = install_role_views(w, store, None, None, sessions["supervisor"], idle_s=0)
    assert actions["compliance"].text() == "Co&mpliance report…"
    actions["compliance"].trigger()
    dlg = w.role_views.compliance
    qtbot.waitUntil(dlg.isVisible, timeout=3000)
    assert dlg.offender.currentData() == "OFF-1" and NAME in dlg.offender.currentText()
    dlg.date_from.setFocus()
    QTest.keyClicks(dlg.date_from, "2026-11-18")
    QTest.keyClicks(dlg.date_to, "2026-11-18")
    assert dlg.period() == (T0 - (11 * 3600 + 400), T0 - (11 * 3600 + 400) + 86400)
    QTest.mouseClick(dlg.pdf_button, Qt.MouseButton.LeftButton)          # no reason yet
    assert "reason" in dlg.message.text()
    QTest.keyClicks(dlg.reason, "breach hearing, 2 December")
    out = tmp_path / "OFF-1-compliance"
    QTest.keyClicks(dlg.path, str(out))
    with qtbot.waitSignal(dlg.written, timeout=30_000) as got:
        QTest.mouseClick(dlg.pdf_button, Qt.MouseButton.LeftButton)
    kind, path, digest = got.args
    assert kind == "pdf" and path == str(out) + ".pdf" and (tmp_path / "OFF-1-compliance.pdf").is_file()
    assert dlg.message.text().startswith(f"PDF written to {path}: 2 alerts, time away from curfew 20 min")
    assert (tmp_path / "OFF-1-compliance.pdf").read_bytes().startswith(b"%PDF")
    audit = [x for x in store.audit_log() if x["action"] == "compliance_report"]
    assert audit[-1]["who"] == "sup.khan" and audit[-1]["detail"]["sha256"] == digest
    w.role_views.end()
