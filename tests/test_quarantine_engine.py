"""Quarantine, not crash (spec v2 §2 "never stops the feed"): a message that makes a later stage
fail (a listener such as the store, a timer fired by its clock) becomes a ``processing_error``
rejection kept with its raw bytes and the error, counted, and the next message is processed; the
store writer quarantines one row it cannot write and writes the rest, and holds its data while
the file is locked by another connection, until it can write again. Real engine, real SQLite."""
from __future__ import annotations

import json
import sqlite3
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdb.store import Store
from monitorapp.engine.caseload import load_caseload
from monitorapp.engine.engine import Engine
from monitorapp.feed.messages import Fix
from monitorapp.feed.timeutil import fmt_time

T0 = 1_795_000_000.0       # 2026-11-18T11:06:40Z


def msg(kind, seq, t, device="TAG-01001", **kw):
    m = {"v": 1, "kind": kind, "device": device, "seq": seq, "t": fmt_time(t), "rx": fmt_time(t + 0.5)}
    if kind == "fix":
        m.update(lat=51.58, lon=-0.107, acc=12, src="gps")
    m.update(kw)
    return json.dumps(m).encode()


@pytest.fixture
def engine(example_caseload_path):
    return Engine(load_caseload(example_caseload_path))


def test_a_listener_that_raises_quarantines_that_message_and_the_feed_goes_on(engine, tmp_path):
    store = Store(tmp_path / "s.db")
    store.attach(engine)
    alerts = []
    engine.add_listener(on_alert=lambda a, ch: alerts.append((a.type, ch)))

    def hostile(fix, used):       # a stage that fails on one message only
        if fix.seq == 2:
            raise OverflowError("cannot store this")
    engine.add_listener(on_fix=hostile)
    poison = msg("fix", 2, T0 + 30)
    for raw in (msg("fix", 1, T0), poison, msg("fix", 3, T0 + 60),
                msg("event", 4, T0 + 90, type="strap_tamper")):
        engine.submit(raw)           # never raises
    c = engine.counters
    assert (c.messages, c.fixes, c.events, c.rejected) == (4, 2, 1, 1)
    assert c.rejected_by_reason == {"processing_error": 1}
    assert ("strap_tamper", "raised") in alerts, "a later real tamper is still raised"
    store.flush()
    rows = store.reader().execute("SELECT reason, text, raw FROM rejected").fetchall()
    store.close()
    assert len(rows) == 1
    reason, text, raw = rows[0]
    assert reason == "processing_error" and "OverflowError: cannot store this" in text
    assert raw == poison                 # the raw bytes as received


def test_a_timer_that_raises_stops_neither_other_timers_nor_the_feed(engine):
    engine.advance(T0)
    fired = []

    class Broken:
        def on_timer(self, due, token):
            raise ZeroDivisionError("a rule's bug")

    class Fine:
        def on_timer(self, due, token):
            fired.append(due)
    engine.schedule(T0 + 10, Broken())
    engine.schedule(T0 + 20, Fine())
    engine.advance(T0 + 30)              # outside any message: kept for the host
    assert fired == [T0 + 20]
    errors = engine.take_errors()
    assert len(errors) == 1 and "ZeroDivisionError: a rule's bug" in errors[0]
    engine.schedule(T0 + 40, Broken())
    engine.schedule(T0 + 41, Fine())
    r = engine.submit(msg("fix", 1, T0 + 60))   # its clock fires the broken timer: quarantined
    assert r.kind == "rejected" and r.reason == "processing_error" and "timer Broken" in r.text
    assert fired == [T0 + 20, T0 + 41]
    ok = engine.submit(msg("event", 2, T0 + 70, type="strap_tamper"))
    assert ok.kind == "event" and engine.active_alert("strap_tamper", "OFF-0001", None) is not None


def test_system_fault_is_one_critical_alert_per_part_with_a_deterministic_id(engine):
    engine.advance(T0)
    a = engine.raise_system_fault("store", "write", "database or disk is full", T0 + 1)
    again = engine.raise_system_fault("store", "write", "still full", T0 + 2)
    other = engine.raise_system_fault("journal", "sync", "No space left on device", T0 + 3)
    assert again is a and other is not a
    assert a.priority == "critical" and a.offender is None and a.evidence["error"] == "database or disk is full"
    e2 = Engine(engine.caseload)
    e2.advance(T0)
    assert e2.raise_system_fault("store", "write", "x", T0 + 1).alert_id == a.alert_id
    assert engine.clear_system_fault("store", "write", T0 + 5) and a.state == "cleared"
    assert [f.requirement for f in engine.system_faults()] == ["journal:sync"]


def test_the_writer_quarantines_a_row_it_cannot_store_and_writes_the_rest(tmp_path):
    store = Store(tmp_path / "s.db")
    good = [Fix("TAG-1", k, T0 + k, T0 + k, 51.5, -0.1, 5.0, "gps") for k in (1, 3)]
    store.on_fix(good[0], True)
    store.on_fix(Fix("TAG-1", 2 ** 63, T0 + 2, T0 + 2, 51.5, -0.1, 5.0, "gps"), True)   # SQLite: no
    store.on_fix(good[1], True)
    store.flush()
    conn = store.reader()
    assert [r[0] for r in conn.execute("SELECT seq FROM fixes ORDER BY seq")] == [1, 3]
    (reason, text, raw), = conn.execute("SELECT reason, text, raw FROM rejected").fetchall()
    assert reason == "processing_error" and "could not write this fix" in text
    assert json.loads(raw)["seq"] == 2 ** 63
    assert store.writer.health() is None and store.writer.quarantined == 1
    store.on_fix(Fix("TAG-1", 4, T0 + 4, T0 + 4, 51.5, -0.1, 5.0, "gps"), True)   # not stopped
    store.flush()
    assert conn.execute("SELECT count(*) FROM fixes").fetchone()[0] == 3
    store.close()


def test_a_store_locked_by_another_connection_is_reported_and_written_when_released(tmp_path):
    path = tmp_path / "s.db"
    store = Store(path, busy_timeout_s=0.1)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        store.on_fix(Fix("TAG-1", 1, T0, T0, 51.5, -0.1, 5.0, "gps"), True)
        deadline = time.monotonic() + 10
        while store.writer.health() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "cannot be written" in store.writer.health() and "locked" in store.writer.health()
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.flush()                       # the held fix is written once the lock is gone
    assert store.writer.health() is None
    assert store.reader().execute("SELECT seq FROM fixes").fetchall() == [(1,)]
    store.close()


# ---- property: whatever the decoder accepts, nothing escapes and a tamper is still raised ----
T_MIN, T_MAX = 946_684_800.0, 4_102_444_800.0      # spec §2: 2000-01-01 .. 2100-01-01
times = st.floats(min_value=T_MIN, max_value=T_MAX - 301, allow_nan=False)
lat = st.one_of(st.sampled_from([-90.0, 90.0, 0.0, 51.58]), st.floats(-90, 90, allow_nan=False))
lon = st.one_of(st.sampled_from([-180.0, 180.0, 0.0, -0.107]), st.floats(-180, 180, allow_nan=False))
seq = st.one_of(st.sampled_from([0, 1, 2 ** 53 - 1]), st.integers(0, 2 ** 53 - 1))
device = st.sampled_from(["TAG-01001", "TAG-01002", "TAG-01003"])


@st.composite
def accepted_message(draw):
    t = draw(times)
    rx = t + draw(st.sampled_from([0.0, 0.001, 1.0, 300.0, 86400.0]))
    rx = min(rx, T_MAX - 0.001)
    kind = draw(st.sampled_from(["fix", "event", "heartbeat"]))
    m = {"v": 1, "kind": kind, "t": fmt_time(t), "rx": fmt_time(rx)}
    if kind == "heartbeat":
        m["gateway"] = "GW-1"
        return m
    m.update(device=draw(device), seq=draw(seq))
    if kind == "fix":
        m.update(lat=draw(lat), lon=draw(lon), src=draw(st.sampled_from(["gps", "wifi", "cell"])),
                 acc=draw(st.one_of(st.sampled_from([0.001, 1.0, 5000.0]), st.floats(0.01, 10000))))
        if draw(st.booleans()):
            m["batt"] = draw(st.sampled_from([0.0, 0.15, 0.3, 1.0]))
    else:
        m["type"] = draw(st.sampled_from(["strap_tamper", "strap_restored", "case_tamper", "battery_low",
                                          "battery_critical", "charging_started", "charging_stopped",
                                          "gps_jamming", "device_fault", "power_off"]))
    return m


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(accepted_message(), min_size=1, max_size=12))
def test_property_accepted_messages_never_escape_and_a_later_tamper_is_raised(tmp_path_factory, messages):
    caseload = load_caseload("examples/caseload.json")
    eng = Engine(caseload)
    store = Store(tmp_path_factory.mktemp("prop") / "s.db")
    store.attach(eng)
    try:
        for m in sorted(messages, key=lambda m: m["rx"]):
            eng.submit(json.dumps(m).encode())       # must not raise, whatever it holds
        last = eng.now if eng.now is not None else T0
        t = min(max(last, T0) + 1.0, T_MAX - 10)
        r = eng.submit(msg("event", 2 ** 53 - 2, t, device="TAG-01003", type="strap_tamper"))
        assert r.kind == "event"
        assert eng.active_alert("strap_tamper", "OFF-0003", None) is not None
        store.flush()
        assert store.writer.health() is None
        c = eng.counters
        assert c.messages == len(messages) + 1
    finally:
        store.close()
