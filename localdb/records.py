"""What the store keeps about the caseload (offenders, tag assignments over time, zone versions,
requirement versions) and the read queries the UI and reports use.

Versions: a zone or requirement whose content changed gets a new version row; the old one
stays, so an alert's ``zone_version`` always names the geometry that decided it. Zone edits
are optimistic: the editor states the version it edited (``base_version``), and the edit is
refused (:class:`ZoneVersionConflict`, naming who saved the newer one) once a newer exists. A tag moved to
another offender closes the old assignment (``valid_to``) and opens a new one.
"""
from __future__ import annotations

import json
import sqlite3

from localdb import hashchain
from localdb.handling import effective_handling
from localdb.schema import StoreError


class ZoneVersionConflict(StoreError):
    """An edit of zone version N refused because N+1 exists: someone saved first. ``current``
    is the stored version, with who saved it and when; reload it and edit again."""

    def __init__(self, zone_id: str, edited: int, current: int, by: str | None,
                 at: float | None):
        import time
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at is not None else "?"
        super().__init__(f"zone {zone_id}: this edit is of version {edited}, but version "
                         f"{current} was saved by {by or 'someone'} at {when}; reload the zone "
                         f"and edit it again")
        self.zone_id, self.edited, self.current, self.by, self.at = (
            zone_id, edited, current, by, at)


def check_base_version(zid: str, base_version, last, who_at) -> None:
    """Optimistic concurrency: ``base_version`` (the version the editor started from; 0 for a
    zone it creates) must still be the newest, else :class:`ZoneVersionConflict`."""
    if base_version is None:
        return
    if isinstance(base_version, bool) or not isinstance(base_version, int) or base_version < 0:
        raise StoreError(f"zone {zid}: the edited version must be a whole number, not "
                         f"{base_version!r}")
    current = last[0] if last is not None else 0
    if current != base_version:
        by, at = who_at() if last is not None else (None, None)
        raise ZoneVersionConflict(zid, base_version, current, by, at)


def _canon(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def record_zone(conn: sqlite3.Connection, feature: dict, who: str, at: float,
                version: int | None = None, removed: bool = False, audit: bool = False,
                base_version: int | None = None) -> int:
    """Store a zone Feature as a new version if it changed; return the current version.
    With ``base_version``, refuse the edit unless that is still the newest version."""
    if not isinstance(feature, dict) or not isinstance(feature.get("id"), str):
        raise StoreError("a zone must be a GeoJSON Feature with a string id")
    zid = feature["id"]
    body = _canon(feature)
    last = conn.execute("SELECT version, feature, removed FROM zones WHERE zone_id=?"
                        " ORDER BY version DESC LIMIT 1", (zid,)).fetchone()
    check_base_version(zid, base_version, last, lambda: conn.execute(
        "SELECT created_by, created_at FROM zones WHERE zone_id=? AND version=?",
        (zid, last[0])).fetchone())
    if last is not None and last[1] == body and bool(last[2]) == removed and version in (None, last[0]):
        return last[0]
    if version is not None and last is not None and version <= last[0]:
        same = conn.execute("SELECT feature, removed FROM zones WHERE zone_id=? AND version=?",
                            (zid, version)).fetchone()
        if same is not None and same[0] == body and bool(same[1]) == removed:
            return version          # the same edit recorded again (a restart): nothing new
    new = version if version is not None else (last[0] + 1 if last else 1)
    if last is not None and new <= last[0]:
        raise StoreError(f"zone {zid}: version {new} is not newer than stored version {last[0]}")
    name = (feature.get("properties") or {}).get("name")
    conn.execute("INSERT INTO zones (zone_id, version, name, feature, created_at, created_by,"
                 " removed) VALUES (?,?,?,?,?,?,?)",
                 (zid, new, name, body, at, who, 1 if removed else 0))
    if audit:
        hashchain.append(conn, "audit_log", {
            "at": at, "who": who, "action": "zone_removed" if removed else "zone_edit",
            "detail": _canon({"zone": zid, "version": new, "name": name})})
    return new


def record_caseload(conn: sqlite3.Connection, doc: dict, who: str, at: float) -> dict:
    changed = {"offenders": 0, "assignments": 0, "zones": 0, "requirements": 0}
    for feature in ((doc.get("zones") or {}).get("features") or []):
        before = conn.execute("SELECT max(version) FROM zones WHERE zone_id=?",
                              (feature.get("id"),)).fetchone()[0]
        if record_zone(conn, feature, who, at) != before:
            changed["zones"] += 1
    for off in doc.get("offenders") or []:
        oid = off["id"]
        row = (off.get("name"), off.get("risk"), off.get("borough"),
               float(off.get("fix_interval_s") or 60))
        old = conn.execute("SELECT name, risk, borough, fix_interval_s FROM offenders"
                           " WHERE offender_id=?", (oid,)).fetchone()
        if old != row:
            conn.execute("INSERT OR REPLACE INTO offenders VALUES (?,?,?,?,?,?)",
                         (oid, *row, at))
            changed["offenders"] += 1
        device = off.get("device")
        cur = conn.execute("SELECT assignment_id, device FROM assignments WHERE offender_id=?"
                           " AND valid_to IS NULL", (oid,)).fetchone()
        if device and (cur is None or cur[1] != device):
            if cur is not None:
                conn.execute("UPDATE assignments SET valid_to=? WHERE assignment_id=?", (at, cur[0]))
            # a tag worn by someone else until now is no longer theirs
            conn.execute("UPDATE assignments SET valid_to=? WHERE device=? AND valid_to IS NULL",
                         (at, device))
            first = cur is None and conn.execute(
                "SELECT 1 FROM assignments WHERE device=?", (device,)).fetchone() is None
            # the first assignment of a tag covers its whole history
            conn.execute("INSERT INTO assignments (offender_id, device, valid_from, valid_to)"
                         " VALUES (?,?,?,NULL)", (oid, device, float("-inf") if first else at))
            changed["assignments"] += 1
        for req in off.get("requirements") or []:
            body = _canon(req)
            last = conn.execute("SELECT version, body FROM requirements WHERE offender_id=? AND"
                                " requirement_id=? ORDER BY version DESC LIMIT 1",
                                (oid, req.get("id"))).fetchone()
            if last is None or last[1] != body:
                conn.execute("INSERT INTO requirements VALUES (?,?,?,?,?)",
                             (oid, req.get("id"), (last[0] + 1) if last else 1, body, at))
                changed["requirements"] += 1
    if any(changed.values()):
        hashchain.append(conn, "audit_log", {"at": at, "who": who, "action": "caseload_loaded",
                                             "detail": _canon(changed)})
    return changed


_ALERT_COLS = ("alert_id", "type", "priority", "offender_id", "device", "requirement_id",
               "zone_id", "zone_version", "start", "raised_at", "late", "evidence", "state",
               "cleared_at", "reactivations")


def read_alerts(conn: sqlite3.Connection, now: float, handling_state: str | None,
                limit: int | None) -> list[dict]:
    sql = (f"SELECT {', '.join('a.' + c for c in _ALERT_COLS)}, h.handling, h.acknowledged,"
           " h.shelved_until, h.operator, h.at, h.action_code, h.shelved_reason"
           " FROM alerts a LEFT JOIN alert_handling h USING (alert_id)"
           " ORDER BY a.raised_at DESC, a.alert_id")
    out = []
    for r in conn.execute(sql):
        d = dict(zip(_ALERT_COLS, r[:len(_ALERT_COLS)]))
        d["late"] = bool(d["late"])
        d["evidence"] = json.loads(d["evidence"]) if d["evidence"] else {}
        h, acked, until, op, hat, code, reason = r[len(_ALERT_COLS):]
        d["handling"] = effective_handling(h, bool(acked), until, now)
        d.update(handled_by=op, handled_at=hat, action_code=code,
                 shelved_reason=reason if d["handling"] == "shelved" else None,
                 shelved_until=until if d["handling"] == "shelved" else None)
        if handling_state is None or d["handling"] == handling_state:
            out.append(d)
            if limit is not None and len(out) >= limit:
                break
    return out


def read_chain(conn: sqlite3.Connection, table: str, alert_id: str | None) -> list[dict]:
    cols = hashchain.CHAINS[table] + ("prev_hash", "hash")
    sql = f"SELECT {', '.join(cols)} FROM {table}"
    args: tuple = ()
    if alert_id is not None:
        sql += " WHERE alert_id=?"
        args = (alert_id,)
    rows = [dict(zip(cols, r)) for r in conn.execute(sql + " ORDER BY seq", args)]
    if table == "audit_log":
        for r in rows:
            r["detail"] = json.loads(r["detail"])
    return rows
