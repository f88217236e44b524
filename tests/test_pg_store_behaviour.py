"""The store's behaviour, one suite over both backends (engineering guide: "one store interface,
two backends"): the embedded SQLite ``localdb.store.Store`` and the PostgreSQL
``centraldb.store.PgStore`` on a throw-away cluster (tests/fixtures_pg.py).

What is asserted is what the record must hold: every fix, event and alert the real engine
reported while replaying examples/feed.ndjson, nothing more; a run stopped after its last
checkpoint and resumed stores exactly what an uninterrupted run stores; every handling
refusal of spec §4/§8; both hash chains verify; two operators acknowledging at once over two
connections: exactly one wins, the other is told who.

Both backends enforce every rule of spec v2 §4/§8 in the store's own layer (localdb/handling.py,
the server functions of centraldb/schema.py); no case is excused on either.
"""
from __future__ import annotations

import json
import threading

import pytest

from centraldb import open_store
from localdb.handling import HandlingError
from localdb.hashchain import verify_chain
from monitorapp.engine.alerts import Alert, alert_id
from monitorapp.engine.caseload import load_caseload
from monitorapp.engine.engine import Engine
from tests.fixtures_store import T0
from tests.fixtures_clock import Clock

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def clock():
    return Clock(T0 + 3600)


@pytest.fixture(params=BACKENDS)
def target(request, tmp_path):
    """Where a store lives: a file path, or a postgresql:// URL of a fresh database."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite")
    return request.getfixturevalue("pg_dsn")


@pytest.fixture
def backend(target):
    return "postgresql" if target.startswith("postgresql://") else "sqlite"


def make_store(request, target, clock, **kw):
    """A store of the target. On PostgreSQL each person a test names acts through a login of
    their own and the server's clock is frozen at ``clock`` (tests/fixtures_pgpeople.py): the
    server, not the caller, establishes who acted and when."""
    if target.startswith("postgresql://"):
        from tests.fixtures_pgpeople import PeopleStore
        return PeopleStore(request.getfixturevalue("people"), clock, **kw)
    return open_store(target, clock=clock, **kw)


@pytest.fixture
def store(request, target, clock):
    s = make_store(request, target, clock)
    yield s
    s.close()


def rows(store, sql):
    """Rows of a query without parameters, the same on both backends' reader connections."""
    return [tuple(r) for r in store.reader().execute(sql).fetchall()]


# ---- the engine's output, stored ----------------------------------------------------------------

class Recorder:
    """What the engine reported, in the shape the stores keep it."""

    def __init__(self, engine):
        self.fixes, self.events, self.alerts = [], [], {}
        engine.add_listener(on_fix=self.on_fix, on_event=self.on_event, on_alert=self.on_alert)

    def on_fix(self, f, used):
        self.fixes.append((f.device, f.seq, f.t, f.lat, f.lon, f.acc, bool(used)))

    def on_event(self, e):
        self.events.append((e.device, e.seq, e.t, e.type))

    def on_alert(self, a, change):
        self.alerts[a.alert_id] = (a.alert_id, a.type, a.start, a.raised_at, a.state)


def _stored(store):
    fixes = [(d, s, t, la, lo, acc, bool(u)) for d, s, t, la, lo, acc, u in rows(
        store, "SELECT device, seq, t, lat, lon, acc, used FROM fixes ORDER BY device, t, seq, used")]
    events = rows(store, "SELECT device, seq, t, type FROM events ORDER BY device, t, seq")
    alerts = rows(store, "SELECT alert_id, type, start, raised_at, state FROM alerts ORDER BY alert_id")
    raised = rows(store, "SELECT alert_id, count(*) FROM alert_changes WHERE change='raised'"
                         " GROUP BY alert_id ORDER BY alert_id")
    return fixes, events, alerts, raised


def _expected(rec):
    return (sorted(rec.fixes, key=lambda r: (r[0], r[2], r[1], r[6])),
            sorted(rec.events, key=lambda r: (r[0], r[2], r[1])),
            sorted(rec.alerts.values()), [(a, 1) for a in sorted(rec.alerts)])


def _lines(path):
    return [ln.rstrip(b"\r\n") for ln in path.read_bytes().splitlines() if ln.strip()]


def test_replay_stores_what_the_engine_reported(store, example_caseload_path, example_feed_path):
    caseload = load_caseload(example_caseload_path)
    engine = Engine(caseload)
    store.record_caseload(caseload)
    store.attach(engine)
    rec = Recorder(engine)
    for line in _lines(example_feed_path):
        engine.submit(line)
    store.checkpoint(engine, {"line": "end"})
    assert len(rec.fixes) >= 960 and len(rec.alerts) == 1     # at least the replay summary's fixes
    assert _stored(store) == _expected(rec)
    counts = store.counts()
    assert counts["fixes"] == len(rec.fixes) and counts["alerts"] == 1 and counts["rejected"] == 0
    assert counts["offenders"] == len(caseload.raw["offenders"])
    assert counts["zones"] == len(caseload.raw["zones"]["features"])
    assert [r["action"] for r in store.audit_log()] == ["caseload_loaded"]
    # the same caseload again changes nothing
    assert not any(store.record_caseload(caseload).values())


def test_a_second_feeder_is_refused(store, target, example_caseload_path):
    from localdb.schema import StoreError
    store.attach(Engine(load_caseload(example_caseload_path)))
    with open_store(target) as other:
        with pytest.raises(StoreError, match="already being fed"):
            other.attach(Engine(load_caseload(example_caseload_path)))


def _run(target, caseload_path, lines, stop_at=None, every=500):
    with open_store(target) as store:
        snapshot, position = store.load_checkpoint()
        caseload = load_caseload(caseload_path)
        engine = Engine(caseload, state=snapshot) if snapshot is not None else Engine(caseload)
        if snapshot is None:
            store.record_caseload(caseload)
        store.attach(engine)
        start = position["line"] if position else 0
        end = len(lines) if stop_at is None else stop_at
        for n in range(start, end):
            engine.submit(lines[n])
            if (n + 1) % every == 0:
                store.checkpoint(engine, {"line": n + 1})
        if stop_at is None:
            store.checkpoint(engine, {"line": end})
        return _stored(store)


def test_resume_from_checkpoint_stores_what_an_uninterrupted_run_stores(
        target, example_caseload_path, example_feed_path):
    lines = _lines(example_feed_path)
    engine = Engine(load_caseload(example_caseload_path))
    rec = Recorder(engine)
    for line in lines:
        engine.submit(line)
    # stopped at 1,700 lines, 200 after its last checkpoint: those are stored, then discarded
    _run(target, example_caseload_path, lines, stop_at=1700)
    assert _run(target, example_caseload_path, lines) == _expected(rec)


def test_checkpoint_round_trip(store, example_caseload_path):
    engine = Engine(load_caseload(example_caseload_path))
    assert store.load_checkpoint() == (None, None)
    store.checkpoint(engine, {"line": 42, "file": "feed.ndjson"})
    snapshot, position = store.load_checkpoint()
    assert position == {"line": 42, "file": "feed.ndjson"}
    assert snapshot == engine.snapshot() or set(snapshot) == set(engine.snapshot())


# ---- handling -----------------------------------------------------------------------------------

def raise_alert(store, type_="curfew_absent", priority="high", start=T0, cleared=False) -> str:
    a = Alert(alert_id(type_, "OFF-1", "R-1", start), type_, priority, "OFF-1", "TAG-1", "R-1",
              "Z-1", start, start + 60)
    store.on_alert(a, "raised")
    if cleared:
        a.state, a.cleared_at = "cleared", start + 300
        store.on_alert(a, "cleared")
    return a.alert_id


REFUSALS = [
    # (what is tried, the refusal, alert type, priority, cleared, a rule new in spec v2)
    ("unknown code", lambda s, a, c: s.acknowledge(a, "alice", "made_tea", "x"),
     "unknown action code", "curfew_absent", "high", False, False),
    ("no operator", lambda s, a, c: s.acknowledge(a, "", "contacted_subject", "x"),
     "operator is required", "curfew_absent", "high", False, False),
    ("other without note", lambda s, a, c: s.acknowledge(a, "alice", "other", ""),
     "needs a note", "battery_low", "low", False, False),
    ("no such alert", lambda s, a, c: s.acknowledge("A-nosuchalert", "alice", "other", "x"),
     "no such alert", "curfew_absent", "high", False, False),
    ("close unacknowledged", lambda s, a, c: s.close_alert(a, "alice"),
     "must be acknowledged", "curfew_absent", "high", True, False),
    ("unshelve not shelved", lambda s, a, c: s.unshelve(a, "alice"),
     "not shelved", "curfew_absent", "high", False, False),
    ("shelve without reason", lambda s, a, c: s.shelve(a, "alice", "", c.t + 600),
     "reason", "curfew_absent", "high", False, False),
    ("shelve into the past", lambda s, a, c: s.shelve(a, "alice", "known fault", c.t - 1),
     "in the future", "curfew_absent", "high", False, False),
    ("critical without note", lambda s, a, c: s.acknowledge(a, "alice", "police_informed", ""),
     "needs a note", "strap_tamper", "critical", False, True),
    ("high without note", lambda s, a, c: s.acknowledge(a, "alice", "contacted_subject", None),
     "needs a note", "curfew_absent", "high", False, True),
    ("shelve tamper", lambda s, a, c: s.shelve(a, "alice", "engineer booked", c.t + 600),
     "cannot be shelved", "strap_tamper", "critical", False, True),
    ("shelve exclusion", lambda s, a, c: s.shelve(a, "alice", "known", c.t + 600),
     "cannot be shelved", "exclusion_entered", "critical", False, True),
    ("shelve over 8 h", lambda s, a, c: s.shelve(a, "alice", "device swap", c.t + 8 * 3600 + 1),
     "at most 8 hours", "curfew_absent", "high", False, True),
    ("shelve until 2100", lambda s, a, c: s.shelve(a, "alice", "device swap", 4102444800.0),
     "at most 8 hours", "curfew_absent", "high", False, True),
]


@pytest.mark.parametrize("what, call, message, type_, priority, cleared, v2",
                         REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_steps_change_nothing(request, backend, store, clock, what, call, message,
                                      type_, priority, cleared, v2):
    aid = raise_alert(store, type_, priority, cleared=cleared)
    with pytest.raises(HandlingError, match=message):
        call(store, aid, clock)
    assert store.ack_log() == []
    assert store.alerts()[0]["handling"] == "unacknowledged"


def test_close_only_once_cleared(request, backend, store, clock):
    aid = raise_alert(store)
    store.acknowledge(aid, "alice", "contacted_subject", "phoned him")
    with pytest.raises(HandlingError, match="still active"):
        store.close_alert(aid, "alice")
    a = Alert(aid, "curfew_absent", "high", "OFF-1", "TAG-1", "R-1", "Z-1", T0, T0 + 60,
              state="cleared", cleared_at=T0 + 900)
    store.on_alert(a, "cleared")
    clock.t += 60
    store.close_alert(aid, "bob", "home again")
    [row] = store.alerts()
    assert row["handling"] == "closed" and row["handled_by"] == "bob"
    with pytest.raises(HandlingError, match="closed"):
        store.close_alert(aid, "bob")


def test_acknowledge_then_close_with_who_and_when(store, clock):
    aid = raise_alert(store, cleared=True)
    row = store.acknowledge(aid, "alice", "contacted_subject", "phoned, he is on his way home")
    assert row["seq"] == 1 and row["operator"] == "alice" and row["at"] == clock.t
    clock.t += 120
    store.close_alert(aid, "bob", "back home")
    [a] = store.alerts()
    assert a["handling"] == "closed" and a["handled_by"] == "bob" and a["handled_at"] == clock.t
    log = store.ack_log(aid)
    assert [(r["action"], r["operator"], r["action_code"]) for r in log] == [
        ("acknowledge", "alice", "contacted_subject"), ("close", "bob", None)]
    assert log[1]["prev_hash"] == log[0]["hash"]


def test_shelving_expires_and_unshelve_returns_to_previous_state(store, clock):
    aid = raise_alert(store)
    store.shelve(aid, "alice", "device swap booked", clock.t + 600)
    [a] = store.alerts()
    assert a["handling"] == "shelved" and a["shelved_reason"] == "device swap booked"
    assert store.alerts(handling_state="unacknowledged") == []
    clock.t += 601
    assert store.alerts()[0]["handling"] == "unacknowledged"     # expired by itself
    store.acknowledge(aid, "bob", "device_fault", "swap booked")
    store.shelve(aid, "bob", "engineer on site", clock.t + 3600)
    store.unshelve(aid, "carol")
    assert store.alerts()[0]["handling"] == "acknowledged"
    assert [r["action"] for r in store.ack_log(aid)] == [
        "shelve", "acknowledge", "shelve", "unshelve"]


def test_a_second_acknowledgement_is_refused_with_who_and_when(request, backend, store, clock):
    aid = raise_alert(store)
    store.acknowledge(aid, "alice", "contacted_subject", "phoned")
    first = clock.t
    clock.t += 30
    with pytest.raises(HandlingError, match="already acknowledged by alice") as e:
        store.acknowledge(aid, "bob", "contacted_probation", "emailed")
    assert getattr(e.value, "by", None) == "alice" and getattr(e.value, "at", None) == first
    assert [r["operator"] for r in store.ack_log(aid)] == ["alice"]


def test_two_operators_acknowledging_at_once_one_wins(request, backend, target, clock):
    """Two workstations (two stores, two connections) press Acknowledge at the same moment."""
    with make_store(request, target, clock) as a, make_store(request, target, clock) as b:
        aid = raise_alert(a)
        a.flush()
        for round_ in range(5):
            if round_:
                aid = raise_alert(a, start=T0 + round_)
                a.flush()
            go = threading.Barrier(2)
            results: dict = {}

            def press(store, who):
                go.wait()
                try:
                    results[who] = store.acknowledge(aid, who, "contacted_subject", f"{who} phoned")
                except HandlingError as e:
                    results[who] = e
            ts = [threading.Thread(target=press, args=(s, w)) for s, w in ((a, "alice"), (b, "bob"))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            won = [w for w, r in results.items() if isinstance(r, dict)]
            lost = [r for r in results.values() if isinstance(r, HandlingError)]
            assert len(won) == 1 and len(lost) == 1, results
            assert f"already acknowledged by {won[0]}" in str(lost[0])
            assert [r["operator"] for r in a.ack_log(aid)] == won
        assert verify_chain(a.reader(), "ack_log").intact


# ---- the logs -----------------------------------------------------------------------------------

def test_chains_verify_after_every_kind_of_record(store, clock):
    aid = raise_alert(store, cleared=True)
    store.sign_in("alice")
    clock.t += 1.25
    store.acknowledge(aid, "alice", "contacted_subject", "naïve “quotes” \"and\" \\ back\nslash\t")
    store.audit("alice", "export", {"what": "pdf", "n": 3, "x": 1.5})
    store.record_zone_edit({"type": "Feature", "id": "Z-9", "properties": {"name": "Park"},
                            "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}}, "alice")
    aid2 = raise_alert(store, start=T0 + 5)
    store.shelve(aid2, "alice", "swap booked", clock.t + 3600)
    store.unshelve(aid2, "bob")
    store.close_alert(aid, "alice")
    for table in ("ack_log", "audit_log"):
        report = verify_chain(store.reader(), table)
        assert report.intact, report
    assert verify_chain(store.reader(), "ack_log").records == 4
    assert [r["action"] for r in store.audit_log()] == ["sign_in", "export", "zone_edit"]
    assert store.audit_log()[1]["detail"] == {"what": "pdf", "n": 3, "x": 1.5}


def test_logs_refuse_update_and_delete(backend, store, target):
    aid = raise_alert(store)
    store.acknowledge(aid, "alice", "contacted_subject", "ok")
    store.sign_in("alice")
    if backend == "sqlite":
        import sqlite3
        conn, errors = sqlite3.connect(target, isolation_level=None), sqlite3.DatabaseError
    else:
        import psycopg
        conn, errors = psycopg.connect(target, autocommit=True), psycopg.Error
    try:
        for sql in ("UPDATE ack_log SET note='nothing to see'", "DELETE FROM ack_log",
                    "DELETE FROM audit_log", "UPDATE audit_log SET who='mallory'"):
            with pytest.raises(errors, match="append-only"):
                conn.execute(sql)
        if backend == "postgresql":
            for sql in ("TRUNCATE ack_log", "TRUNCATE audit_log"):
                with pytest.raises(errors, match="append-only"):
                    conn.execute(sql)
    finally:
        conn.close()
    assert len(store.ack_log()) == 1 and len(store.audit_log()) == 1


def test_the_store_mode_is_sealed(request, target, clock):
    from localdb.schema import StoreModeError
    with make_store(request, target, clock, mode="training") as s:
        s.sign_in("trainer")
    with pytest.raises(StoreModeError, match="training store"):
        open_store(target, mode="live")
    with make_store(request, target, clock, mode="training") as s:
        assert [r["who"] for r in s.audit_log()] == ["trainer"]


# ---- zone edits: optimistic concurrency ---------------------------------------------------------

def _as(target, name, store=None):
    """Who the record says acted: on PostgreSQL the login (the server establishes it: the
    person's own through ``make_store``, the DSN's user through a plain ``open_store``), on
    SQLite the name the caller gives."""
    from urllib.parse import urlsplit
    from tests.fixtures_pgpeople import PeopleStore
    if isinstance(store, PeopleStore) or not target.startswith("postgresql://"):
        return name
    return urlsplit(target).username


def _zone(radius):
    return {"type": "Feature", "id": "Z-PARK", "properties": {"name": "Park", "radius_m": radius},
            "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}}


def test_an_edit_of_version_n_is_refused_once_n_plus_1_exists(target, store, clock):
    from localdb.records import ZoneVersionConflict
    from localdb.schema import StoreError
    assert store.record_zone_edit(_zone(50), "alice", base_version=0) == 1
    # alice and bob both open version 1; bob saves first
    clock.t += 60
    assert store.record_zone_edit(_zone(80), "bob", base_version=1) == 2
    bob = _as(target, "bob", store)
    with pytest.raises(ZoneVersionConflict, match=f"version 2 was saved by {bob}") as e:
        store.record_zone_edit(_zone(120), "alice", base_version=1)
    assert isinstance(e.value, StoreError)
    assert (e.value.edited, e.value.current, e.value.by) == (1, 2, bob)
    with pytest.raises(ZoneVersionConflict):          # creating a zone that exists already
        store.record_zone_edit(_zone(10), "carol", base_version=0)
    # alice reloads version 2 and edits that: accepted
    assert store.record_zone_edit(_zone(120), "alice", base_version=2) == 3
    assert [(r["who"], r["detail"]["version"]) for r in store.audit_log()] == [
        (_as(target, "alice", store), 1), (bob, 2), (_as(target, "alice", store), 3)]


def test_two_editors_saving_version_n_at_once_one_wins(target, clock):
    """Two workstations save their edit of the same version at the same moment."""
    from localdb.records import ZoneVersionConflict
    with open_store(target, clock=clock) as a, open_store(target, clock=clock) as b:
        a.record_zone_edit(_zone(50), "alice", base_version=0)
        for n in range(1, 5):
            go = threading.Barrier(2)
            results: dict = {}

            def save(store, who, radius):
                go.wait()
                try:
                    results[who] = store.record_zone_edit(_zone(radius), who, base_version=n)
                except ZoneVersionConflict as e:
                    results[who] = e
            ts = [threading.Thread(target=save, args=(s, w, r))
                  for s, w, r in ((a, "alice", 60 + n), (b, "bob", 90 + n))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            won = [w for w, r in results.items() if r == n + 1]
            lost = [r for r in results.values() if isinstance(r, ZoneVersionConflict)]
            assert len(won) == 1 and len(lost) == 1, results
            assert lost[0].current == n + 1 and lost[0].by == _as(target, won[0])
        radii = [json.loads(f)["properties"]["radius_m"] for (f,) in rows(
            a, "SELECT feature FROM zones WHERE zone_id='Z-PARK' ORDER BY version")]
        assert len(radii) == 5 and radii[0] == 50      # one version per round, none lost
