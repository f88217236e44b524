"""A caseload recorded in the store, again and changed, on both backends (the PostgreSQL store
records a whole caseload in a few statements a table, comparing it with what is stored in
Python): exactly the versions and assignments that one statement a row gives, and a refused
caseload leaves nothing behind."""
from __future__ import annotations

import copy

import pytest

from centraldb import open_store
from localdb.schema import StoreError
from tests.fixtures_clock import Clock

T0 = 1_767_225_600.0


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    return request.getfixturevalue("pg_dsn")


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def store(target, clock):
    s = open_store(target, clock=clock, anchor=False)
    yield s
    s.close()


def _zone(k: int, radius: float = 100.0) -> dict:
    return {"type": "Feature", "id": f"Z-{k}", "properties": {"name": f"Zone {k}", "radius_m": radius},
            "geometry": {"type": "Point", "coordinates": [-0.1 + k * 0.01, 51.5]}}


def _caseload(n: int = 5) -> dict:
    return {"version": 1, "tz": "Europe/London",
            "zones": {"type": "FeatureCollection", "features": [_zone(k) for k in range(n)]},
            "offenders": [{"id": f"OFF-{k}", "name": f"Person {k}", "risk": "high", "borough": "Camden",
                           "device": f"TAG-{k}", "fix_interval_s": 60,
                           "requirements": [{"id": f"R-{k}", "type": "exclusion", "zone": f"Z-{k}",
                                             "schedule": None}]} for k in range(n)]}


def _rows(store, sql: str) -> list[tuple]:
    return [tuple(r) for r in store.reader().execute(sql).fetchall()]


def _zone_versions(store) -> list[tuple]:
    return [(z, v, bool(removed)) for z, v, removed in
            _rows(store, "SELECT zone_id, version, removed FROM zones ORDER BY zone_id, version")]


def _assignments(store) -> list[tuple]:
    return _rows(store, "SELECT offender_id, device, valid_from, valid_to FROM assignments"
                        " ORDER BY assignment_id")


def test_one_zone_changed_gives_that_zone_alone_a_new_version(store, clock):
    doc = _caseload()
    assert store.record_caseload(doc) == {"offenders": 5, "assignments": 5, "zones": 5,
                                          "requirements": 5}
    clock.t += 60
    assert not any(store.record_caseload(copy.deepcopy(doc)).values())
    doc["zones"]["features"][2] = _zone(2, radius=250.0)
    clock.t += 60
    assert store.record_caseload(doc) == {"offenders": 0, "assignments": 0, "zones": 1,
                                          "requirements": 0}
    assert _zone_versions(store) == [(f"Z-{k}", 1, False) for k in range(2)] + [
        ("Z-2", 1, False), ("Z-2", 2, False)] + [(f"Z-{k}", 1, False) for k in range(3, 5)]
    newest = _rows(store, "SELECT feature, created_at FROM zones WHERE zone_id='Z-2' AND version=2")
    assert '"radius_m":250.0' in newest[0][0] and newest[0][1] == T0 + 120
    assert [r["action"] for r in store.audit_log()] == ["caseload_loaded", "caseload_loaded"]


def test_tags_swapped_renewed_and_passed_on_in_one_caseload(store, clock):
    doc = _caseload(4)
    store.record_caseload(doc)
    off = doc["offenders"]
    off[0]["device"], off[1]["device"] = "TAG-1", "TAG-0"      # two offenders swap tags
    off[2]["device"] = "TAG-NEW"                                # a tag never worn, replacing one
    # OFF-3 leaves the caseload and a new offender wears its tag; another a tag never worn
    off[3] = off[3] | {"id": "OFF-9", "requirements": []}
    off.append({"id": "OFF-8", "name": "Eight", "device": "TAG-8", "requirements": []})
    clock.t += 3600
    at = T0 + 3600
    assert store.record_caseload(doc) == {"offenders": 2, "assignments": 5, "zones": 0,
                                          "requirements": 0}
    inf = float("-inf")
    assert _assignments(store) == [("OFF-0", "TAG-0", inf, at), ("OFF-1", "TAG-1", inf, at),
                                   ("OFF-2", "TAG-2", inf, at), ("OFF-3", "TAG-3", inf, at),
                                   ("OFF-0", "TAG-1", at, None), ("OFF-1", "TAG-0", at, None),
                                   ("OFF-2", "TAG-NEW", at, None), ("OFF-9", "TAG-3", at, None),
                                   ("OFF-8", "TAG-8", inf, None)]
    clock.t += 60
    assert not any(store.record_caseload(doc).values())
    assert len(_assignments(store)) == 9


def test_a_zone_an_operator_removed_is_restored_by_the_caseload(store, clock):
    doc = _caseload(2)
    store.record_caseload(doc)
    assert store.record_zone_edit(_zone(1), "system", removed=True, base_version=1) == 2
    clock.t += 60
    assert store.record_caseload(doc) == {"offenders": 0, "assignments": 0, "zones": 1,
                                          "requirements": 0}
    assert _zone_versions(store) == [("Z-0", 1, False), ("Z-1", 1, False), ("Z-1", 2, True),
                                     ("Z-1", 3, False)]


def test_a_caseload_with_an_invalid_zone_is_refused_and_leaves_nothing(store):
    doc = _caseload(4)
    doc["zones"]["features"].insert(3, {"type": "Feature", "properties": {"name": "no id"}})
    with pytest.raises(StoreError, match="string id"):
        store.record_caseload(doc)
    for table in ("zones", "offenders", "assignments", "requirements"):
        assert _rows(store, f"SELECT count(*) FROM {table}") == [(0,)], table
    assert store.audit_log() == []
    # the store goes on: the valid caseload is recorded whole
    del doc["zones"]["features"][3]
    assert store.record_caseload(doc)["zones"] == 4
