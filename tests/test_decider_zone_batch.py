"""Zone versions read from the record together (a first start, a standby taking over, a caseload
import of many zones) are applied by the decider as one batch (issue 15): each version checked
and refused on its own, the engine's rules reinstalled once for the batch. The engine must end
exactly where applying them one by one leaves it, for a zone moved, a zone removed, zones
drawn with a requirement, and versions refused, and must decide the same alerts afterwards.
A refused version leaves the engine exactly as it was, alone or in a batch. A checkpoint
restores the rules in force, also for requirements naming a zone removed after they were set.
``RecordWatch`` reads the rows of many zone versions in a few queries, on both backends."""
from __future__ import annotations

import copy
import logging

import orjson
import pytest

from monitorapp.engine.engine import Engine
from monitorapp.service.decider import LiveProcessor
from monitorapp.service.recordwatch import ZONES_PER_READ, RecordWatch
from tests.enginekit import FeedBuilder, T, caseload, lonlat, square

NIGHT = T("2026-11-27T19:00:00Z")


@pytest.fixture
def decider_log():
    """The decider's log records (its logger, whatever another test did to propagation)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("monitorapp.service.monitor")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _lines(records) -> list[tuple[str, dict]]:
    return [(r.getMessage(), r.fields) for r in records
            if r.getMessage() in ("zone version applied", "zone version refused")]


def _drawn(zid: str, x: float, y: float, offender: str, req_id: str, kind: str = "exclusion") -> dict:
    return {"type": "Feature", "id": zid,
            "properties": {"name": f"drawn {zid}", "offender": offender,
                           "requirement": {"id": req_id, "type": kind, "zone": zid, "schedule": None}},
            "geometry": {"type": "Polygon", "coordinates": square(x, y, 100)}}


def _version(zid: str, version: int, feature: dict | None, removed: bool = False) -> dict:
    return {"zone_id": zid, "version": version, "feature": feature, "removed": removed,
            "saved_by": "alice", "at": NIGHT}


def _record_versions() -> list[dict]:
    """What one read of the record returns: a moved zone, a removed one, four drawn with a
    requirement (three for one offender), and four refused (an offender the caseload does not
    hold, a self-crossing polygon for a zone the engine holds, a requirement naming another
    zone, a feature that is not an object)."""
    moved = {"type": "Feature", "id": "Z-EXCL", "properties": {"name": "Victim's street, moved"},
             "geometry": {"type": "Polygon", "coordinates": square(-2000, 0, 150)}}
    bowtie = [[list(lonlat(0, 0)), list(lonlat(50, 50)), list(lonlat(50, 0)), list(lonlat(0, 50)),
               list(lonlat(0, 0))]]
    crossed = {"type": "Feature", "id": "Z-HOME", "properties": {"name": "Home", "radius_m": 100},
               "geometry": {"type": "Polygon", "coordinates": bowtie}}
    other_zone = _drawn("Z-DRAWN-3", 4000, 0, "OFF-1", "R-Z-DRAWN-3")
    other_zone["properties"]["requirement"]["zone"] = "Z-HOME"
    return [
        _version("Z-EXCL", 2, moved),
        _version("Z-DRAWN-2", 1, _drawn("Z-DRAWN-2", 0, 3000, "OFF-1", "R-Z-DRAWN-2")),
        _version("Z-DRAWN-9", 1, _drawn("Z-DRAWN-9", 3000, 0, "OFF-9999", "R-Z-DRAWN-9")),
        _version("Z-OFFICE", 2, None, removed=True),
        _version("Z-DRAWN-1", 1, _drawn("Z-DRAWN-1", 3000, 0, "OFF-2", "R-Z-DRAWN-1")),
        _version("Z-HOME", 2, crossed),
        _version("Z-DRAWN-4", 1, _drawn("Z-DRAWN-4", 0, -3000, "OFF-2", "R-Z-DRAWN-4")),
        _version("Z-DRAWN-3", 1, other_zone),
        _version("Z-LIST", 1, ["not", "a", "feature"]),
        _version("Z-DRAWN-5", 1, _drawn("Z-DRAWN-5", 0, 5000, "OFF-2", "R-Z-DRAWN-5")),
    ]


def _feed(fb_seed: int, t0: float, t1: float, tag1, tag2) -> list[bytes]:
    fb = FeedBuilder(fb_seed)
    fb.track("TAG-1", t0, t1, tag1)
    fb.track("TAG-2", t0, t1, tag2)
    fb.heartbeats(t0, t1)
    return [line for _rx, _n, line in sorted(fb.out)]


def _decider(cl) -> tuple[Engine, LiveProcessor]:
    """An engine that has seen the evening (OFF-1 out during the curfew: its absence pending,
    an appointment at the office ahead) and the decider's processor over it, no broker."""
    eng = Engine(cl)
    for line in _feed(3, NIGHT - 1800, NIGHT + 1500, lambda t: (0, 0) if t < NIGHT + 600 else (600, 300),
                      lambda t: (-3000, 0)):
        eng.submit(line)
    watch = RecordWatch(None, False, 0, {"Z-HOME": 1, "Z-EXCL": 1, "Z-OFFICE": 1})
    return eng, LiveProcessor(eng, None, None, None, None, {}, None, watch=watch)


def _state(eng: Engine, proc: LiveProcessor | None) -> dict:
    rules = {d: [(type(r).__name__, r.req.id, r.req.zone, r.shape is eng.zone_shapes.get(r.req.zone),
                  getattr(r, "retired", False)) for r in tag.rules]
             for d, tag in eng.tags.items()}
    return {"zones": {zid: (z.feature(), z.version) for zid, z in eng.caseload.zones.items()},
            "shapes": sorted(eng.zone_shapes),
            "requirements": {oid: [r.raw for r in off.requirements] for oid, off in eng.caseload.offenders.items()},
            "offenders_raw": {oid: off.raw for oid, off in eng.caseload.offenders.items()},
            "zone_versions": dict(eng.zone_versions), "rules": rules,
            "snapshot": orjson.loads(orjson.dumps(eng.snapshot())),
            "watch": dict(proc.watch.zone_versions) if proc is not None else None}


def _alerts(eng: Engine) -> list[tuple]:
    return sorted((a.alert_id, a.type, a.requirement, a.start, a.raised_at, a.state, a.zone_version)
                  for a in eng.alerts.values())


def _appointment_caseload():
    return caseload(appointment=("2026-11-27T22:00:00Z", "2026-11-27T23:00:00Z"))


def test_a_batch_of_zone_versions_leaves_the_engine_as_applying_them_one_by_one(decider_log):
    versions = _record_versions()
    one_eng, one = _decider(_appointment_caseload())
    for rec in copy.deepcopy(versions):
        one.apply_zone(rec)                    # each edit reinstalls the rules it touches at once
    one_lines = _lines(decider_log)
    decider_log.clear()
    batch_eng, batch = _decider(_appointment_caseload())
    batch.apply_zones(copy.deepcopy(versions))
    assert batch._dirty_position              # the batch is checkpointed before the next message
    batch_lines = _lines(decider_log)
    assert batch_lines == one_lines
    assert [(m, f["zone_id"]) for m, f in batch_lines] == [
        ("zone version applied", "Z-EXCL"), ("zone version applied", "Z-DRAWN-2"),
        ("zone version refused", "Z-DRAWN-9"), ("zone version applied", "Z-OFFICE"),
        ("zone version applied", "Z-DRAWN-1"), ("zone version refused", "Z-HOME"),
        ("zone version applied", "Z-DRAWN-4"), ("zone version refused", "Z-DRAWN-3"),
        ("zone version refused", "Z-LIST"), ("zone version applied", "Z-DRAWN-5")]
    reasons = {f["zone_id"]: f["reason"] for m, f in batch_lines if m == "zone version refused"}
    assert "OFF-9999" in reasons["Z-DRAWN-9"] and "not valid" in reasons["Z-HOME"] \
        and "not this zone" in reasons["Z-DRAWN-3"] and "list" in reasons["Z-LIST"], reasons
    summary = [r.fields for r in decider_log if r.getMessage() == "zone versions read"]
    assert summary == [{"versions": 10, "applied": 6, "refused": 4}]
    got, want = _state(batch_eng, batch), _state(one_eng, one)
    for key in want:
        assert got[key] == want[key], key
    # and what that state is: the removed zone's appointment has no rule, the refused versions
    # changed nothing, the drawn requirements are in force, every rule on its zone's new shape
    assert got["zone_versions"] == {"Z-HOME": 1, "Z-EXCL": 2, "Z-OFFICE": 2, "Z-DRAWN-1": 1, "Z-DRAWN-2": 1,
                                    "Z-DRAWN-4": 1, "Z-DRAWN-5": 1}
    assert got["watch"] == {"Z-HOME": 2, "Z-EXCL": 2, "Z-OFFICE": 2, "Z-DRAWN-9": 1, "Z-DRAWN-1": 1,
                            "Z-DRAWN-2": 1, "Z-DRAWN-3": 1, "Z-DRAWN-4": 1, "Z-LIST": 1, "Z-DRAWN-5": 1}
    assert got["rules"]["TAG-1"] == [("ExclusionRule", "R-X", "Z-EXCL", True, False),
                                     ("CurfewRule", "R-C", "Z-HOME", True, False),
                                     ("ExclusionRule", "R-Z-DRAWN-2", "Z-DRAWN-2", True, False)]
    assert got["rules"]["TAG-2"] == [("ExclusionRule", "R-Z-DRAWN-1", "Z-DRAWN-1", True, False),
                                     ("ExclusionRule", "R-Z-DRAWN-4", "Z-DRAWN-4", True, False),
                                     ("ExclusionRule", "R-Z-DRAWN-5", "Z-DRAWN-5", True, False)]
    assert "Z-OFFICE" not in got["shapes"] and "Z-DRAWN-9" not in got["shapes"]
    # the same night afterwards: the same alerts from both (the curfew absence that was
    # pending before the batch, the drawn zone entered, the moved zone entered)
    later = _feed(5, NIGHT + 1500, NIGHT + 5 * 3600,
                  lambda t: (600, 300) if t < NIGHT + 5400 else (-2000, 0),
                  lambda t: (-3000, 0) if t < NIGHT + 3600 else (3000, 0))
    for eng in (one_eng, batch_eng):
        for line in later:
            eng.submit(line)
        eng.flush()
    assert _alerts(batch_eng) == _alerts(one_eng)
    kinds = {(a[1], a[2]) for a in _alerts(batch_eng)}
    assert {("curfew_absent", "R-C"), ("exclusion_entered", "R-Z-DRAWN-1"), ("exclusion_entered", "R-X")} <= kinds
    assert not [a for a in _alerts(batch_eng) if a[1] == "appointment_missed"]     # its zone was removed


def test_a_restore_applies_the_checkpoints_zone_edits_together_to_the_same_engine(decider_log):
    """A standby taking over restores the checkpoint's zone edits (after a first start, every
    zone of the caseload) in one batch: the same engine as the one checkpointed."""
    eng, proc = _decider(_appointment_caseload())
    proc.apply_zones(copy.deepcopy(_record_versions()))
    snap = orjson.loads(orjson.dumps(eng.snapshot()))
    assert set(snap["zones"]) == {"Z-EXCL", "Z-OFFICE", "Z-DRAWN-1", "Z-DRAWN-2", "Z-DRAWN-4", "Z-DRAWN-5"}
    restored = Engine(_appointment_caseload(), state=copy.deepcopy(snap))
    assert orjson.loads(orjson.dumps(restored.snapshot())) == snap
    assert [(type(r).__name__, r.req.id, r.shape is restored.zone_shapes[r.req.zone])
            for r in restored.tags["TAG-1"].rules] == [
        ("ExclusionRule", "R-X", True), ("CurfewRule", "R-C", True), ("ExclusionRule", "R-Z-DRAWN-2", True)]
    assert [(r.req.id, r.shape is restored.zone_shapes[r.req.zone]) for r in restored.tags["TAG-2"].rules] == [
        ("R-Z-DRAWN-1", True), ("R-Z-DRAWN-4", True), ("R-Z-DRAWN-5", True)]
    assert restored.take_errors() == []


def _same_engine(got: dict, want: dict, what: str = "") -> None:
    """Two ``_state``s: the same zones, versions, requirements, rules and checkpoint."""
    for key in want:
        if key != "watch":
            assert got[key] == want[key], (what, key)


OFFICE = {"type": "Feature", "id": "Z-OFFICE", "properties": {"name": "Probation office", "radius_m": 60},
          "geometry": {"type": "Point", "coordinates": list(lonlat(0, 2000))}}


def test_a_requirement_whose_zone_was_removed_after_it_was_set_is_restored_as_the_live_engine_holds_it(
        decider_log):
    """OFF-1's requirements edited (a zone drawn for OFF-1), then a zone they name removed (its
    appointment's office): the live engine keeps that requirement with no rule, nothing decided
    for it until a version brings the zone back. A checkpoint of it restores exactly that rather
    than refusing (a decider that cannot restore can neither restart nor be taken over)."""
    eng, proc = _decider(_appointment_caseload())
    proc.apply_zones([_version("Z-DRAWN-2", 1, _drawn("Z-DRAWN-2", 0, 3000, "OFF-1", "R-Z-DRAWN-2")),
                      _version("Z-OFFICE", 2, None, removed=True)])
    assert [r.id for r in eng.caseload.offenders["OFF-1"].requirements] == ["R-X", "R-C", "R-A", "R-Z-DRAWN-2"]
    assert [r.req.id for r in eng.tags["TAG-1"].rules] == ["R-X", "R-C", "R-Z-DRAWN-2"]
    snap = orjson.loads(orjson.dumps(eng.snapshot()))
    assert "Z-OFFICE" in snap["requirements"]["OFF-1"][2].values()
    restored = Engine(_appointment_caseload(), state=copy.deepcopy(snap))
    assert restored.take_errors() == []
    _same_engine(_state(restored, None), _state(eng, None))
    # the same night from both: OFF-1 away from home, then in the zone drawn for it; at 21:00
    # the office's zone brought back (a new version) puts the appointment (22:00-23:00) in
    # force again in both, and OFF-1 never goes there
    fb = FeedBuilder(7)
    fb.track("TAG-1", NIGHT + 1560, NIGHT + 5 * 3600, lambda t: (600, 300) if t < NIGHT + 3600 else (0, 3000))
    fb.track("TAG-2", NIGHT + 1560, NIGHT + 5 * 3600, lambda t: (-3000, 0))
    fb.heartbeats(NIGHT + 1560, NIGHT + 5 * 3600)
    later = sorted(fb.out)
    back_at = NIGHT + 2 * 3600
    for e in (eng, restored):
        for rx, _n, line in later:
            if rx >= back_at and "Z-OFFICE" not in e.caseload.zones:
                assert e.update_zone(copy.deepcopy(OFFICE)) == 3
            e.submit(line)
        e.flush()
    assert [type(r).__name__ for r in restored.tags["TAG-1"].rules] == \
        [type(r).__name__ for r in eng.tags["TAG-1"].rules] == \
        ["ExclusionRule", "CurfewRule", "AppointmentRule", "ExclusionRule"]
    assert _alerts(restored) == _alerts(eng)
    kinds = {(a[1], a[2]) for a in _alerts(eng)}
    assert {("curfew_absent", "R-C"), ("exclusion_entered", "R-Z-DRAWN-2"), ("appointment_missed", "R-A")} <= kinds
    assert orjson.loads(orjson.dumps(restored.snapshot())) == orjson.loads(orjson.dumps(eng.snapshot()))


def test_a_zone_drawn_for_an_offender_and_removed_later_is_restored_without_its_rule(decider_log):
    """The zone an edited requirement names was drawn with it, so the caseload never held it:
    restored, the requirement is kept with no rule, and brought back the zone is in force."""
    eng, proc = _decider(_appointment_caseload())
    drawn = _drawn("Z-DRAWN-2", 0, 3000, "OFF-1", "R-Z-DRAWN-2")
    proc.apply_zones([_version("Z-DRAWN-2", 1, copy.deepcopy(drawn)), _version("Z-DRAWN-2", 2, None, removed=True)])
    restored = Engine(_appointment_caseload(), state=orjson.loads(orjson.dumps(eng.snapshot())))
    _same_engine(_state(restored, None), _state(eng, None))
    assert [r.id for r in restored.caseload.offenders["OFF-1"].requirements][-1] == "R-Z-DRAWN-2"
    assert [r.req.id for r in restored.tags["TAG-1"].rules] == ["R-X", "R-C", "R-A"]
    for e in (eng, restored):
        assert e.update_zone(copy.deepcopy(drawn)) == 3
    _same_engine(_state(restored, None), _state(eng, None))
    assert [r.req.id for r in restored.tags["TAG-1"].rules] == ["R-X", "R-C", "R-A", "R-Z-DRAWN-2"]


def _refused_after_the_office_went() -> list[dict]:
    """Versions the decider refuses once the record's versions are applied (OFF-1's office
    zone removed after its requirements were edited), each a zone that the engine could apply
    on its own: a curfew drawn for OFF-2 without a schedule, a zone drawn for an offender the
    caseload does not hold."""
    curfew = _drawn("Z-DRAWN-7", 0, -7000, "OFF-2", "R-Z-DRAWN-7", kind="curfew")
    return [_version("Z-DRAWN-7", 1, curfew),
            _version("Z-DRAWN-9", 1, _drawn("Z-DRAWN-9", 0, 9000, "OFF-404", "R-Z-DRAWN-9"))]


def test_a_zone_drawn_after_the_offenders_office_went_is_enforced_and_restored(decider_log):
    """OFF-1's requirements still name the removed office (kept with no rule): a zone drawn or
    moved for OFF-1 afterwards is applied and enforced, not saved in the record and ignored
    (a victim's street must not wait for the office to come back), and a restore agrees."""
    eng, proc = _decider(_appointment_caseload())
    proc.apply_zones(copy.deepcopy(_record_versions()))
    assert "Z-OFFICE" not in eng.caseload.zones
    decider_log.clear()
    proc.apply_zones([_version("Z-DRAWN-2", 2, _drawn("Z-DRAWN-2", 0, 3500, "OFF-1", "R-Z-DRAWN-2")),
                      _version("Z-DRAWN-6", 1, _drawn("Z-DRAWN-6", 0, 7000, "OFF-1", "R-Z-DRAWN-6"))])
    assert [(m, f["zone_id"]) for m, f in _lines(decider_log)] == [
        ("zone version applied", "Z-DRAWN-2"), ("zone version applied", "Z-DRAWN-6")]
    assert eng.zone_versions["Z-DRAWN-2"] == 2 and eng.zone_versions["Z-DRAWN-6"] == 1
    rules = {r.req.id: r for r in eng.tags["TAG-1"].rules}
    assert {"R-Z-DRAWN-2", "R-Z-DRAWN-6"} <= set(rules)
    assert rules["R-Z-DRAWN-6"].shape is eng.zone_shapes["Z-DRAWN-6"]
    assert not [r for r in eng.tags["TAG-1"].rules if r.req.zone == "Z-OFFICE"]   # no rule, kept
    assert "Z-OFFICE" in {r.zone for r in eng.caseload.offenders["OFF-1"].requirements}
    restored = Engine(_appointment_caseload(), state=orjson.loads(orjson.dumps(eng.snapshot())))
    _same_engine(_state(restored, None), _state(eng, None))


def test_a_refused_zone_version_leaves_the_engine_exactly_as_it_was(decider_log):
    eng, proc = _decider(_appointment_caseload())
    proc.apply_zones(copy.deepcopy(_record_versions()))
    for rec in _refused_after_the_office_went():
        before = _state(eng, proc)
        rules = {d: list(t.rules) for d, t in eng.tags.items()}
        decider_log.clear()
        assert proc.apply_zone(copy.deepcopy(rec)) is not None          # the reason it was refused
        _same_engine(_state(eng, proc), before, rec["zone_id"])
        assert {d: list(t.rules) for d, t in eng.tags.items()} == rules           # the very same rules
        assert all(a is b for d in rules for a, b in zip(rules[d], eng.tags[d].rules))
        assert proc.watch.zone_versions[rec["zone_id"]] == rec["version"]         # read, not read again
        (message, fields), = _lines(decider_log)
        assert message == "zone version refused", fields
        assert ("schedule" if rec["zone_id"] == "Z-DRAWN-7" else "OFF-404") in fields["reason"], fields
    assert not {"Z-DRAWN-7", "Z-DRAWN-9"} & set(eng.zone_versions)
    assert [(r.req.id, r.shape is eng.zone_shapes["Z-DRAWN-2"]) for r in eng.tags["TAG-1"].rules
            if r.req.zone == "Z-DRAWN-2"] == [("R-Z-DRAWN-2", True)]


def test_refused_zone_versions_in_a_batch_change_nothing_the_batch_would_not(decider_log):
    moved = {"type": "Feature", "id": "Z-EXCL", "properties": {"name": "Victim's street, moved again"},
             "geometry": {"type": "Polygon", "coordinates": square(-2500, 0, 150)}}
    applied = [_version("Z-EXCL", 3, moved),
               _version("Z-DRAWN-8", 1, _drawn("Z-DRAWN-8", -3000, 3000, "OFF-2", "R-Z-DRAWN-8"))]
    refused = _refused_after_the_office_went()
    with_refused_eng, with_refused = _decider(_appointment_caseload())
    with_refused.apply_zones(copy.deepcopy(_record_versions()))
    decider_log.clear()
    with_refused.apply_zones(copy.deepcopy([refused[0], applied[0], refused[1], applied[1]]))
    assert [(m, f["zone_id"]) for m, f in _lines(decider_log)] == [
        ("zone version refused", "Z-DRAWN-7"), ("zone version applied", "Z-EXCL"),
        ("zone version refused", "Z-DRAWN-9"), ("zone version applied", "Z-DRAWN-8")]
    without_eng, without = _decider(_appointment_caseload())
    without.apply_zones(copy.deepcopy(_record_versions()))
    without.apply_zones(copy.deepcopy(applied))
    _same_engine(_state(with_refused_eng, with_refused), _state(without_eng, without))
    assert with_refused_eng.zone_versions["Z-DRAWN-2"] == 1
    assert not {"Z-DRAWN-7", "Z-DRAWN-9"} & (set(with_refused_eng.caseload.zones) | set(with_refused_eng.zone_shapes))


def _national(n: int) -> dict:
    """``n`` offenders with an exclusion zone each, laid out over central London."""
    feats, offenders = [], []
    for k in range(n):
        x, y = -0.2 + (k % 100) * 0.004, 51.45 + (k // 100) * 0.002
        feats.append({"type": "Feature", "id": f"Z-{k:05d}", "properties": {"name": f"Zone {k}"},
                      "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 0.001, y], [x + 0.001, y + 0.001],
                                                                       [x, y + 0.001], [x, y]]]}})
        offenders.append({"id": f"OFF-{k:05d}", "name": f"S {k}", "risk": "medium", "borough": "Camden",
                          "device": f"TAG-{k:05d}", "fix_interval_s": 60,
                          "requirements": [{"id": f"R-{k:05d}", "type": "exclusion", "zone": f"Z-{k:05d}",
                                            "schedule": None}]})
    return {"version": 1, "tz": "Europe/London", "zones": {"type": "FeatureCollection", "features": feats},
            "offenders": offenders}


@pytest.fixture(params=["sqlite", "postgresql"])
def record(request, tmp_path):
    """The record on either backend: (store, whether it is PostgreSQL)."""
    if request.param == "sqlite":
        from localdb.store import Store
        store = Store(tmp_path / "record.db")
    else:
        from centraldb.store import PgStore
        store = PgStore(request.getfixturevalue("pg_dsn"), clock=lambda: NIGHT)
    try:
        yield store, request.param == "postgresql"
    finally:
        store.close()


def test_a_first_start_reads_every_zone_version_of_the_record_and_applies_them_in_one_batch(record, decider_log):
    store, pg = record
    n = 2 * ZONES_PER_READ + 7                    # more than one query's worth
    doc = _national(n)
    store.record_caseload(doc)
    watch = RecordWatch(store, pg, None, {})      # no checkpoint: nothing applied yet
    from monitorapp.engine.caseload import parse_caseload
    eng = Engine(parse_caseload(copy.deepcopy(doc)))
    proc = LiveProcessor(eng, store, None, None, None, {}, None, watch=watch)
    entries, zones = watch.poll(force=True)
    assert entries == []
    assert [(z["zone_id"], z["version"], z["removed"]) for z in sorted(zones, key=lambda z: z["zone_id"])] == \
        [(f"Z-{k:05d}", 1, False) for k in range(n)]
    by_id = {f["id"]: f for f in doc["zones"]["features"]}
    assert all(z["feature"] == by_id[z["zone_id"]] for z in zones)
    proc.apply_zones(zones)
    assert len([1 for m, _f in _lines(decider_log) if m == "zone version applied"]) == n
    assert watch.zone_versions == {f"Z-{k:05d}": 1 for k in range(n)}
    assert eng.zone_versions == watch.zone_versions
    assert all(len(t.rules) == 1 and t.rules[0].shape is eng.zone_shapes[t.rules[0].req.zone]
               for t in eng.tags.values())
    # the same versions one by one reach the same engine
    one = Engine(parse_caseload(copy.deepcopy(doc)))
    one_proc = LiveProcessor(one, store, None, None, None, {}, None, watch=RecordWatch(store, pg, 0, {}))
    for z in copy.deepcopy(zones):
        one_proc.apply_zone(z)
    assert orjson.loads(orjson.dumps(one.snapshot())) == orjson.loads(orjson.dumps(eng.snapshot()))
    # afterwards a read returns only what changed: one zone moved, one removed
    moved = copy.deepcopy(by_id["Z-00007"])
    moved["geometry"]["coordinates"][0] = [[p[0] + 0.01, p[1]] for p in moved["geometry"]["coordinates"][0]]
    store.record_zone_edit(moved, "system", base_version=1)
    store.record_zone_edit(by_id["Z-00011"], "system", removed=True, base_version=1)
    _entries, zones = watch.poll(force=True)
    assert sorted((z["zone_id"], z["version"], z["removed"], z["feature"]["geometry"]) for z in zones) == [
        ("Z-00007", 2, False, moved["geometry"]), ("Z-00011", 2, True, by_id["Z-00011"]["geometry"])]
    proc.apply_zones(zones)
    assert eng.zone_versions["Z-00007"] == 2 and "Z-00011" not in eng.zone_shapes
    assert eng.tags["TAG-00011"].rules == []
    assert watch.poll(force=True) == ([], [])
