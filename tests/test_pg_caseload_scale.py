"""A national caseload's zones in one transaction: recording 10,000 zones at once took a
lock each and overflowed the server's lock table ("out of shared memory", found starting the
monitor on 20,000 offenders); one lock over all zones' edits now excludes them instead."""
from __future__ import annotations

from centraldb.store import PgStore

T0 = 1_767_225_600.0


def _zone(k: int) -> dict:
    x, y = -0.2 + (k % 100) * 0.004, 51.45 + (k // 100) * 0.002
    return {"type": "Feature", "id": f"Z-{k:05d}",
            "properties": {"name": f"Zone {k}", "kind": "exclusion"},
            "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.001, y], [x + 0.001, y + 0.001],
                                                               [x, y + 0.001], [x, y]]]}}


def test_a_caseload_with_more_zones_than_the_lock_table_holds_is_recorded(pg_dsn):
    n = 10000           # more than the test cluster's lock table holds (64 a connection, 60 connections)
    doc = {"version": 1, "tz": "Europe/London",
           "zones": {"type": "FeatureCollection", "features": [_zone(k) for k in range(n)]},
           "offenders": [{"id": f"OFF-{k:05d}", "name": f"S {k}", "risk": "medium", "borough": "Camden",
                          "device": f"TAG-{k:05d}", "fix_interval_s": 60,
                          "requirements": [{"id": f"R-{k:05d}", "type": "exclusion", "zone": f"Z-{k:05d}",
                                            "schedule": "always"}]} for k in range(n)]}
    with PgStore(pg_dsn, clock=lambda: T0) as store:
        store.record_caseload(doc)
        conn = store.reader()
        assert conn.execute("SELECT count(DISTINCT zone_id) FROM zones").fetchone()[0] == n
        # an operator's edit of one zone afterwards takes the zones' lock shared and goes through
        assert store.record_zone_edit(_zone(7) | {"properties": {"name": "Zone 7, moved", "kind": "exclusion"}},
                               "system", base_version=1) == 2
