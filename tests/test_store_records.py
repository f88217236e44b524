"""What the store keeps: fixes (projected, with rx and used), events, rejected messages (raw bytes),
alerts and every state change, the caseload with versions, and retention."""
from __future__ import annotations

import json
import sqlite3

from monitorapp.engine.alerts import Alert, alert_id
from monitorapp.feed.messages import Event, Fix, Rejection
from tests.fixtures_store import PLACE_X, PLACE_Y, T0, fix_at


def test_fixes_are_kept_with_rx_used_and_grid_metres(store, store_path):
    store.on_fix(fix_at("TAG-1", 1, T0, 0.0, 0.0, acc=7.5), True)
    store.on_fix(fix_at("TAG-1", 1, T0, 0.0, 0.0, acc=7.5), False)   # the duplicate, kept as unused
    store.on_fix(fix_at("TAG-2", 1, T0 + 60, 1000.0, -250.0), True)
    store.flush()
    rows = sqlite3.connect(store_path).execute(
        "SELECT device, seq, t, rx, acc, x, y, used FROM fixes ORDER BY fix_id").fetchall()
    assert [r[0] for r in rows] == ["TAG-1", "TAG-1", "TAG-2"]
    assert rows[0][2] == T0 and rows[0][3] == T0 + 1.0 and rows[0][4] == 7.5
    assert [r[7] for r in rows] == [1, 0, 1]
    assert abs(rows[0][5] - PLACE_X) < 0.01 and abs(rows[0][6] - PLACE_Y) < 0.01
    assert abs(rows[2][5] - (PLACE_X + 1000)) < 0.01 and abs(rows[2][6] - (PLACE_Y - 250)) < 0.01
    tags = sqlite3.connect(store_path).execute(
        "SELECT device, first_seen, last_seen FROM tags ORDER BY device").fetchall()
    assert tags == [("TAG-1", T0, T0), ("TAG-2", T0 + 60, T0 + 60)]


def test_events_and_rejections_keep_their_raw_bytes(store, store_path):
    store.on_event(Event("TAG-1", 3, T0, T0 + 2, "strap_tamper", "strap cut"))
    raw = b'{"v":1,"kind":"fix","lat":\xff}'
    store.on_rejected(Rejection("bad_json", "not UTF-8 JSON", raw, T0 + 5, "em/v1/fix/TAG-1", "TAG-1"))
    store.flush()
    conn = sqlite3.connect(store_path)
    assert conn.execute("SELECT device, seq, t, rx, type, detail FROM events").fetchall() == [
        ("TAG-1", 3, T0, T0 + 2, "strap_tamper", "strap cut")]
    assert conn.execute("SELECT reason, text, raw, topic, device FROM rejected").fetchall() == [
        ("bad_json", "not UTF-8 JSON", raw, "em/v1/fix/TAG-1", "TAG-1")]


def _alert(start=T0) -> Alert:
    return Alert(alert_id("exclusion_entered", "OFF-1", "R-1", start), "exclusion_entered",
                 "critical", "OFF-1", "TAG-1", "R-1", "Z-1", start, start + 40, False,
                 {"fixes": [{"t": "x"}]}, zone_version=2)


def test_alert_and_every_state_change(store, store_path):
    a = _alert()
    store.on_alert(a, "raised")
    a.state, a.cleared_at = "cleared", T0 + 600
    store.on_alert(a, "cleared")
    a.state, a.cleared_at, a.reactivations = "active", None, 1
    store.on_alert(a, "reactivated")
    store.on_alert(a, "raised")         # the same raise again (after a restart): not twice
    store.flush()
    conn = sqlite3.connect(store_path)
    row = conn.execute("SELECT alert_id, state, zone_version, reactivations, evidence FROM alerts").fetchall()
    assert row == [(a.alert_id, "active", 2, 1, json.dumps(a.evidence))]
    changes = conn.execute("SELECT change, n, at, state FROM alert_changes ORDER BY change_id").fetchall()
    assert [c[0] for c in changes] == ["raised", "cleared", "reactivated"]
    assert changes[0][2] == T0 + 40 and changes[1][2] == T0 + 600
    listed = store.alerts()
    assert listed[0]["alert_id"] == a.alert_id and listed[0]["handling"] == "unacknowledged"


def test_caseload_versions_zones_requirements_and_assignments(store, example_caseload_path):
    doc = json.loads(example_caseload_path.read_text())
    first = store.record_caseload(doc)
    assert first["offenders"] == 3 and first["assignments"] == 3 and first["zones"] > 0
    assert store.record_caseload(doc) == {"offenders": 0, "assignments": 0, "zones": 0,
                                          "requirements": 0}
    zone = doc["zones"]["features"][0]
    zone["properties"]["radius_m"] = 90
    doc["offenders"][0]["device"] = "TAG-NEW"
    changed = store.record_caseload(doc)
    assert changed["zones"] == 1 and changed["assignments"] == 1
    conn = store.reader()
    versions = conn.execute("SELECT version FROM zones WHERE zone_id=? ORDER BY version",
                            (zone["id"],)).fetchall()
    assert versions == [(1,), (2,)]
    oid = doc["offenders"][0]["id"]
    assigned = conn.execute("SELECT device, valid_to IS NULL FROM assignments WHERE offender_id=?"
                            " ORDER BY assignment_id", (oid,)).fetchall()
    assert assigned == [("TAG-01001", 0), ("TAG-NEW", 1)]
    assert [r["action"] for r in store.audit_log()] == ["caseload_loaded", "caseload_loaded"]


def test_zone_edit_makes_a_version_and_is_audited(store):
    feature = {"type": "Feature", "id": "Z-9", "properties": {"name": "Park", "radius_m": 50},
               "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}}
    assert store.record_zone_edit(feature, "alice") == 1
    feature["properties"]["radius_m"] = 80
    assert store.record_zone_edit(feature, "bob", version=2) == 2
    log = store.audit_log()
    assert [(r["who"], r["action"], r["detail"]["version"]) for r in log] == [
        ("alice", "zone_edit", 1), ("bob", "zone_edit", 2)]


def test_retention_purges_old_fixes_and_audits_it(store):
    day = 86400.0
    for k, age in enumerate((400, 366, 364, 1)):
        store.on_fix(fix_at("TAG-1", k, T0 - age * day, 0, 0), True)
    assert store.purge_fixes(now=T0) == 2
    left = sorted(r[0] for r in store.reader().execute("SELECT t FROM fixes"))
    assert left == [T0 - 364 * day, T0 - 1 * day]
    assert store.purge_fixes(now=T0, retention_days=30) == 1
    purges = [r for r in store.audit_log() if r["action"] == "purge_fixes"]
    assert [p["detail"]["deleted"] for p in purges] == [2, 1]
    assert purges[0]["detail"]["retention_days"] == 365


def test_write_failure_is_reported_not_swallowed(store, store_path):
    """A row the database refuses is quarantined as a processing_error rejection, not dropped,
    and the writer goes on (issue 13: one bad row no longer stops it for good)."""
    store.on_fix(Fix("TAG-1", 1, T0, T0, 51.5, -0.1, 5.0, "gps"), True)
    store.flush()
    bad = Fix("TAG-1", 2, None, T0, 51.5, -0.1, 5.0, "gps")   # t NOT NULL
    store.on_fix(bad, True)
    store.flush()
    (reason, text), = store.reader().execute("SELECT reason, text FROM rejected").fetchall()
    assert reason == "processing_error" and "NOT NULL" in text
    store.on_fix(fix_at("TAG-1", 3, T0, 0, 0), True)
    store.flush()
    assert sorted(r[0] for r in store.reader().execute("SELECT seq FROM fixes")) == [1, 3]
