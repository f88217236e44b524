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
                base_version: int | None = None) -> int:
    """Store a zone Feature as a new version if it changed; return the current version.
    With ``base_version``, refuse the edit unless that is still the newest version."""
    if not isinstance(feature, dict) or not isinstance(feature.get("id"), str):
        raise StoreError("a zone must be a GeoJSON Feature with a string id")
    zid = feature["id"]
    body = _canon(feature)
    # one edit of a zone at a time (optimistic concurrency is decided under this lock); the
    # zones' lock shared, so that a caseload being recorded waits for edits and they for it,
    # while edits of different zones go on side by side
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
    """Record a caseload: zones, offenders, tag assignments and requirements that are new or
    changed get a new row or version, unchanged ones nothing; the counts of each. The rules and
    rows of ``localdb.records.record_caseload``, in a few statements a table whatever the size
    (a national caseload has tens of thousands of offenders, and a statement a row kept the
    decider from starting for most of a minute): what is stored is read once, the caseload's
    entries are compared with it here in the caseload's order, and new rows go in by ``COPY``."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('monitorapp.caseload'))")
    # every zone's edits excluded by one lock, not one lock per zone: a national caseload has
    # tens of thousands of zones, and a lock each overflows the server's lock table ("out of
    # shared memory", found starting the monitor on 20,000 offenders)
    conn.execute(f"SELECT pg_advisory_xact_lock(hashtext('{ZONES_LOCK}'))")
    features = (doc.get("zones") or {}).get("features") or []
    for feature in features:            # a caseload with a zone that is not one: nothing written
        if not isinstance(feature, dict) or not isinstance(feature.get("id"), str):
            raise StoreError("a zone must be a GeoJSON Feature with a string id")
    entries = [_CaseloadEntry(off) for off in doc.get("offenders") or []]
    ids = list(dict.fromkeys(e.oid for e in entries))
    zones = _record_zones(conn, features, who, at)
    changed = {"offenders": _record_offenders(conn, entries, ids, at),
               "assignments": _record_assignments(conn, entries, ids, at),
               "zones": zones, "requirements": _record_requirements(conn, entries, ids, at)}
    if any(changed.values()):
        audit(conn, at, who, "caseload_loaded", _canon(changed))
    return changed


class _CaseloadEntry:
    """What the record keeps of one offender of a caseload."""

    def __init__(self, off: dict) -> None:
        self.oid = off["id"]
        self.row = (off.get("name"), off.get("risk"), off.get("borough"),
                    float(off.get("fix_interval_s") or 60))
        self.device = off.get("device")
        self.requirements = [(req.get("id"), _canon(req)) for req in off.get("requirements") or []]


def _copy(conn, table: str, rows: list[tuple]) -> None:
    if rows:
        with conn.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as cp:
            for row in rows:
                cp.write_row(row)


def _record_zones(conn, features: list[dict], who: str, at: float) -> int:
    """A new version of each zone that is new or differs from its newest version (a removed
    zone in the caseload again is restored); how many zones were given one."""
    newest = {zid: (version, body, removed) for zid, version, body, removed in conn.execute(
        "SELECT DISTINCT ON (zone_id) zone_id, version, feature, removed FROM zones"
        " WHERE zone_id = ANY(%s) ORDER BY zone_id, version DESC",
        (list(dict.fromkeys(f["id"] for f in features)),))}
    rows = []
    for feature in features:
        zid, body = feature["id"], _canon(feature)
        last = newest.get(zid)
        if last is not None and last[1] == body and not last[2]:
            continue
        version = last[0] + 1 if last is not None else 1
        newest[zid] = (version, body, False)
        rows.append((zid, version, (feature.get("properties") or {}).get("name"), body, at, who,
                     False))
    _copy(conn, "zones (zone_id, version, name, feature, created_at, created_by, removed)", rows)
    return len(rows)


def _record_offenders(conn, entries: list[_CaseloadEntry], ids: list[str], at: float) -> int:
    """Each offender's name, risk, borough and fix interval, written where they changed."""
    stored = {oid: tuple(row) for oid, *row in conn.execute(
        "SELECT offender_id, name, risk, borough, fix_interval_s FROM offenders"
        " WHERE offender_id = ANY(%s)", (ids,))}
    written: dict[str, tuple] = {}
    count = 0
    for e in entries:
        if stored.get(e.oid) != e.row:
            stored[e.oid] = written[e.oid] = e.row
            count += 1
    if written:
        name, risk, borough, interval = (list(c) for c in zip(*written.values()))
        conn.execute("INSERT INTO offenders SELECT o.*, %s::float8 FROM unnest(%s::text[],"
                     " %s::text[], %s::text[], %s::text[], %s::float8[]) AS o ON CONFLICT"
                     " (offender_id) DO UPDATE SET name=excluded.name, risk=excluded.risk,"
                     " borough=excluded.borough, fix_interval_s=excluded.fix_interval_s,"
                     " updated_at=excluded.updated_at",
                     (at, list(written), name, risk, borough, interval))
    return count


def _record_assignments(conn, entries: list[_CaseloadEntry], ids: list[str], at: float) -> int:
    """A tag given to an offender who did not wear it: the offender's open assignment and the
    tag's (whoever wore it) closed, a new one opened; a tag's first covers its whole history."""
    devices = list(dict.fromkeys(e.device for e in entries if e.device))
    rows: dict = {}                    # assignment id (or ("new", n)) -> [offender, device, to]
    by_offender: dict = {}             # offender -> its open assignment's id
    by_device: dict = {}               # device -> the ids of its open assignments
    for aid, oid, device in conn.execute(
            "SELECT assignment_id, offender_id, device FROM assignments WHERE valid_to IS NULL"
            " AND (offender_id = ANY(%s) OR device = ANY(%s)) ORDER BY assignment_id",
            (ids, devices)):
        rows[aid] = [oid, device, None]
        by_offender.setdefault(oid, aid)
        by_device.setdefault(device, set()).add(aid)
    worn = {d for (d,) in conn.execute(
        "SELECT DISTINCT device FROM assignments WHERE device = ANY(%s)", (devices,))}

    def close(aid) -> None:
        row = rows[aid]
        row[2] = at
        if by_offender.get(row[0]) == aid:
            del by_offender[row[0]]
        by_device[row[1]].discard(aid)

    new: list[tuple] = []
    for e in entries:
        cur = by_offender.get(e.oid)
        if not e.device or (cur is not None and rows[cur][1] == e.device):
            continue
        if cur is not None:
            close(cur)
        for aid in list(by_device.get(e.device, ())):
            close(aid)
        first = cur is None and e.device not in worn
        aid = ("new", len(new))
        rows[aid] = [e.oid, e.device, None]
        new.append((aid, float("-inf") if first else at))
        by_offender[e.oid] = aid
        by_device[e.device] = {aid}
        worn.add(e.device)
    closed = [aid for aid, row in rows.items() if not isinstance(aid, tuple) and row[2] is not None]
    if closed:
        conn.execute("UPDATE assignments SET valid_to=%s WHERE assignment_id = ANY(%s)",
                     (at, closed))
    # in the caseload's order: the assignment ids are those one insert each would have given
    _copy(conn, "assignments (offender_id, device, valid_from, valid_to)",
          [(rows[aid][0], rows[aid][1], valid_from, rows[aid][2]) for aid, valid_from in new])
    return len(new)


def _record_requirements(conn, entries: list[_CaseloadEntry], ids: list[str], at: float) -> int:
    """A new version of each requirement that is new or differs from its newest version."""
    newest = {(oid, rid): (version, body) for oid, rid, version, body in conn.execute(
        "SELECT DISTINCT ON (offender_id, requirement_id) offender_id, requirement_id, version,"
        " body FROM requirements WHERE offender_id = ANY(%s)"
        " ORDER BY offender_id, requirement_id, version DESC", (ids,))}
    rows = []
    for e in entries:
        for rid, body in e.requirements:
            last = newest.get((e.oid, rid))
            if last is None or last[1] != body:
                version = last[0] + 1 if last is not None else 1
                newest[(e.oid, rid)] = (version, body)
                rows.append((e.oid, rid, version, body, at))
    _copy(conn, "requirements (offender_id, requirement_id, version, body, recorded_at)", rows)
    return len(rows)


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
