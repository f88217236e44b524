"""The caseload in the PostgreSQL record (offenders, tag assignments over time, zone and
requirement versions) and the read queries: the same rules as ``localdb.records``, in
PostgreSQL's dialect. Writes run inside the writer's transaction; audit records are appended
by the server (``audit_append``), which also computes their hash.
"""
from __future__ import annotations

import json

from localdb.records import ZoneVersionConflict, check_base_version  # noqa: F401
from localdb.records import read_alerts as _local_read_alerts
from localdb.schema import StoreError
from localdb.hashchain import CHAINS


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def audit(conn, at: float, who: str, action: str, detail_text: str) -> dict:
    cur = conn.execute("SELECT * FROM audit_append(%s, %s, %s, %s)", (who, action, detail_text, at))
    return dict(zip([c.name for c in cur.description], cur.fetchone()))


ZONES_LOCK = "monitorapp.zones"      # held shared by a zone edit, exclusively by a caseload


def record_zone(conn, feature: dict, who: str, at: float, version: int | None = None,
                removed: bool = False, audit_it: bool = False,
                base_version: int | None = None, lock: bool = True) -> int:
    """Store a zone Feature as a new version if it changed; return the current version.
    With ``base_version``, refuse the edit unless that is still the newest version.
    ``lock=False``: the caller holds ``ZONES_LOCK`` exclusively (a whole caseload's zones)."""
    if not isinstance(feature, dict) or not isinstance(feature.get("id"), str):
        raise StoreError("a zone must be a GeoJSON Feature with a string id")
    zid = feature["id"]
    body = _canon(feature)
    if lock:
        # one edit of a zone at a time (optimistic concurrency is decided under this lock);
        # the zones' lock shared, so that a caseload being recorded waits for edits and they
        # for it, while edits of different zones go on side by side
        conn.execute(f"SELECT pg_advisory_xact_lock_shared(hashtext('{ZONES_LOCK}'))")
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('zone:' || %s))", (zid,))
    last = conn.execute("SELECT version, feature, removed FROM zones WHERE zone_id=%s"
                        " ORDER BY version DESC LIMIT 1", (zid,)).fetchone()
    check_base_version(zid, base_version, last, lambda: conn.execute(
        "SELECT created_by, created_at FROM zones WHERE zone_id=%s AND version=%s",
        (zid, last[0])).fetchone())
    if last is not None and last[1] == body and bool(last[2]) == removed and version in (None, last[0]):
        return last[0]
    if version is not None and last is not None and version <= last[0]:
        same = conn.execute("SELECT feature, removed FROM zones WHERE zone_id=%s AND version=%s",
                            (zid, version)).fetchone()
        if same is not None and same[0] == body and bool(same[1]) == removed:
            return version
    new = version if version is not None else (last[0] + 1 if last else 1)
    if last is not None and new <= last[0]:
        raise StoreError(f"zone {zid}: version {new} is not newer than stored version {last[0]}")
    name = (feature.get("properties") or {}).get("name")
    conn.execute("INSERT INTO zones (zone_id, version, name, feature, created_at, created_by,"
                 " removed) VALUES (%s,%s,%s,%s,%s,%s,%s)",
                 (zid, new, name, body, at, who, removed))
    if audit_it:
        audit(conn, at, who, "zone_removed" if removed else "zone_edit",
              _canon({"zone": zid, "version": new, "name": name}))
    return new


def record_caseload(conn, doc: dict, who: str, at: float) -> dict:
    changed = {"offenders": 0, "assignments": 0, "zones": 0, "requirements": 0}
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('monitorapp.caseload'))")
    # every zone's edits excluded by one lock, not one lock per zone: a national caseload has
    # tens of thousands of zones, and a lock each overflows the server's lock table ("out of
    # shared memory", found starting the monitor on 20,000 offenders)
    conn.execute(f"SELECT pg_advisory_xact_lock(hashtext('{ZONES_LOCK}'))")
    for feature in ((doc.get("zones") or {}).get("features") or []):
        before = conn.execute("SELECT max(version) FROM zones WHERE zone_id=%s",
                              (feature.get("id"),)).fetchone()[0]
        if record_zone(conn, feature, who, at, lock=False) != before:
            changed["zones"] += 1
    for off in doc.get("offenders") or []:
        oid = off["id"]
        row = (off.get("name"), off.get("risk"), off.get("borough"),
               float(off.get("fix_interval_s") or 60))
        old = conn.execute("SELECT name, risk, borough, fix_interval_s FROM offenders"
                           " WHERE offender_id=%s", (oid,)).fetchone()
        if old != row:
            conn.execute("INSERT INTO offenders VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT"
                         " (offender_id) DO UPDATE SET name=excluded.name, risk=excluded.risk,"
                         " borough=excluded.borough, fix_interval_s=excluded.fix_interval_s,"
                         " updated_at=excluded.updated_at", (oid, *row, at))
            changed["offenders"] += 1
        device = off.get("device")
        cur = conn.execute("SELECT assignment_id, device FROM assignments WHERE offender_id=%s"
                           " AND valid_to IS NULL", (oid,)).fetchone()
        if device and (cur is None or cur[1] != device):
            if cur is not None:
                conn.execute("UPDATE assignments SET valid_to=%s WHERE assignment_id=%s",
                             (at, cur[0]))
            conn.execute("UPDATE assignments SET valid_to=%s WHERE device=%s AND valid_to IS NULL",
                         (at, device))
            first = cur is None and conn.execute(
                "SELECT 1 FROM assignments WHERE device=%s", (device,)).fetchone() is None
            conn.execute("INSERT INTO assignments (offender_id, device, valid_from, valid_to)"
                         " VALUES (%s,%s,%s,NULL)", (oid, device, float("-inf") if first else at))
            changed["assignments"] += 1
        for req in off.get("requirements") or []:
            body = _canon(req)
            last = conn.execute("SELECT version, body FROM requirements WHERE offender_id=%s AND"
                                " requirement_id=%s ORDER BY version DESC LIMIT 1",
                                (oid, req.get("id"))).fetchone()
            if last is None or last[1] != body:
                conn.execute("INSERT INTO requirements VALUES (%s,%s,%s,%s,%s)",
                             (oid, req.get("id"), (last[0] + 1) if last else 1, body, at))
                changed["requirements"] += 1
    if any(changed.values()):
        audit(conn, at, who, "caseload_loaded", _canon(changed))
    return changed


# the alerts with their handling: the same SQL and the same reading on both backends
read_alerts = _local_read_alerts


def read_chain(conn, table: str, alert_id: str | None) -> list[dict]:
    cols = CHAINS[table] + ("prev_hash", "hash")
    sql = f"SELECT {', '.join(cols)} FROM {table}"
    args: tuple = ()
    if alert_id is not None:
        sql += " WHERE alert_id=%s"
        args = (alert_id,)
    rows = [dict(zip(cols, r)) for r in conn.execute(sql + " ORDER BY seq", args)]
    if table == "audit_log":
        for r in rows:
            r["detail"] = json.loads(r["detail"])
    return rows
