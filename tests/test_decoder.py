"""Feed decoding (spec §2, §6): every field checked, a reason for every rejection, no exception
whatever the bytes."""
from __future__ import annotations

import json
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from monitorapp.feed.adapters import AdapterError, SeqCounter, owntracks_to_v1, traccar_to_v1
from monitorapp.feed.decoder import MAX_BYTES, SEQ_MAX, T_MAX, T_MIN, FixDecoder, SequenceTracker
from monitorapp.feed.messages import Event, Fix, Heartbeat, Rejection
from monitorapp.feed.timeutil import parse_time

GOOD_FIX = {"v": 1, "kind": "fix", "device": "TAG-01001", "seq": 7, "t": "2026-11-27T17:00:13.78Z",
            "rx": "2026-11-27T17:00:14.95Z", "lat": 51.5805347, "lon": -0.1071383, "acc": 20, "src": "gps",
            "batt": 0.813, "spd": 1.2, "hdg": 90, "sats": 9}
dec = FixDecoder({"TAG-01001"})


def decode(obj, **kw):
    return dec.decode(orjson.dumps(obj), **kw)


def test_a_good_fix_decodes_with_every_field():
    f = decode(GOOD_FIX)
    assert isinstance(f, Fix)
    assert (f.device, f.seq, f.lat, f.lon, f.acc, f.src, f.batt, f.spd, f.hdg, f.sats) == \
        ("TAG-01001", 7, 51.5805347, -0.1071383, 20.0, "gps", 0.813, 1.2, 90.0, 9)
    assert f.t == parse_time("2026-11-27T17:00:13.78Z") and f.rx == parse_time("2026-11-27T17:00:14.95Z")


def test_events_and_heartbeats_decode():
    e = decode({"v": 1, "kind": "event", "device": "TAG-01001", "seq": 3, "t": "2026-11-27T17:00:00Z",
                "rx": "2026-11-27T17:00:01Z", "type": "strap_tamper", "detail": "cut"})
    assert isinstance(e, Event) and e.type == "strap_tamper" and e.detail == "cut"
    h = decode({"v": 1, "kind": "heartbeat", "gateway": "GW-1", "t": "2026-11-27T17:00:00+01:00",
                "rx": "2026-11-27T16:00:00.2Z"})
    assert isinstance(h, Heartbeat) and h.t == parse_time("2026-11-27T16:00:00Z")


def test_live_arrival_time_stands_in_for_a_missing_rx():
    obj = dict(GOOD_FIX)
    del obj["rx"]
    assert isinstance(decode(obj), Rejection)
    f = decode(obj, rx=parse_time("2026-11-27T17:00:15Z"))
    assert isinstance(f, Fix) and f.rx == parse_time("2026-11-27T17:00:15Z")


def _with(**kw):
    o = dict(GOOD_FIX)
    for k, v in kw.items():
        if v is ...:
            o.pop(k)
        else:
            o[k] = v
    return o


@pytest.mark.parametrize("obj,reason", [
    (_with(lat=91), "lat_out_of_range"),
    (_with(lat=-90.5), "lat_out_of_range"),
    (_with(lon=180.01), "lon_out_of_range"),
    (_with(acc=0), "acc_out_of_range"),
    (_with(acc=-3), "acc_out_of_range"),
    (_with(batt=1.5), "batt_out_of_range"),
    (_with(lat=...), "missing_field"),
    (_with(acc=...), "missing_field"),
    (_with(seq=...), "missing_field"),
    (_with(device=...), "missing_field"),
    (_with(t=...), "missing_field"),
    (_with(lat="51.5"), "bad_type"),
    (_with(seq=1.5), "bad_type"),
    (_with(seq=-1), "bad_seq"),
    (_with(seq=2**53), "bad_seq"),
    (_with(t="1999-12-31T23:59:59Z"), "t_out_of_range"),
    (_with(rx="2100-01-01T00:00:01Z"), "rx_out_of_range"),
    (_with(t="yesterday"), "bad_time"),
    (_with(t="2026-11-27T17:00:13"), "bad_time"),       # no offset
    (_with(t="2026-11-27T17:10:15Z"), "t_in_future"),   # 10 min after rx
    (_with(device="TAG 1"), "bad_device"),
    (_with(device="x" * 65), "bad_device"),
    (_with(device="TAG-99999"), "unknown_device"),
    (_with(v=2), "bad_version"),
    (_with(kind="position"), "bad_kind"),
    (_with(src="glonass"), "bad_value"),
    (_with(hdg=400), "bad_value"),
    (_with(src=["gps"]), "bad_value"),
])
def test_bad_fields_are_rejected_with_their_reason(obj, reason):
    r = decode(obj)
    assert isinstance(r, Rejection), r
    assert r.reason == reason, r.text
    assert r.raw == orjson.dumps(obj) and r.text
    assert "undecodable" not in r.text      # each bad field is named, not caught as a crash


def test_not_json_not_utf8_oversize_and_non_objects():
    assert dec.decode(b"{not json").reason == "bad_json"
    assert dec.decode(b"[1,2]").reason == "bad_json"
    assert dec.decode(b"\xff\xfe{}").reason in ("bad_encoding", "bad_json")
    big = orjson.dumps(_with(detail="x" * (MAX_BYTES + 1)))
    r = dec.decode(big)
    assert r.reason == "oversize" and r.raw == big
    assert dec.decode(b"").reason == "bad_json"


def test_unknown_event_type_and_topic_mismatch():
    ev = {"v": 1, "kind": "event", "device": "TAG-01001", "seq": 3, "t": "2026-11-27T17:00:00Z",
          "rx": "2026-11-27T17:00:01Z", "type": "exploded"}
    assert decode(ev).reason == "bad_event_type"
    assert decode(GOOD_FIX, topic="em/v1/fix/TAG-01002").reason == "topic_mismatch"
    assert isinstance(decode(GOOD_FIX, topic="em/v1/fix/TAG-01001"), Fix)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw):
    r = dec.decode(raw, rx=1.0)
    assert isinstance(r, (Fix, Event, Heartbeat, Rejection))
    if isinstance(r, Rejection):
        assert r.reason and r.raw == raw


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(list(GOOD_FIX) + ["type", "gateway", "x"]), json_values, max_size=12))
def test_arbitrary_json_objects_never_raise(obj):
    r = dec.decode(json.dumps(obj).encode(), rx=parse_time("2026-11-27T17:00:14Z"))
    assert isinstance(r, (Fix, Event, Heartbeat, Rejection))


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({k: st.one_of(st.just(v), json_values) for k, v in GOOD_FIX.items()}))
def test_mutated_good_fixes_are_either_valid_or_rejected_with_a_reason(obj):
    r = dec.decode(json.dumps(obj).encode())
    if isinstance(r, Fix):
        assert -90 <= r.lat <= 90 and -180 <= r.lon <= 180 and r.acc > 0 and not math.isnan(r.acc)
        assert r.t - r.rx <= 300
        assert T_MIN <= r.t <= T_MAX and T_MIN <= r.rx <= T_MAX and 0 <= r.seq <= SEQ_MAX
    else:
        assert isinstance(r, Rejection) and r.reason


def test_sequence_tracker_duplicates_and_gaps():
    s = SequenceTracker()
    assert [s.is_duplicate("A", n) for n in (0, 1, 2, 2, 5, 1)] == [False, False, False, True, False, True]
    assert s.gaps["A"] == 2
    assert s.is_duplicate("A", 3) is False      # a late arrival fills part of the gap
    assert s.gaps["A"] == 1
    assert s.is_duplicate("B", 2) is False


def test_sequence_tracker_tells_counter_restarts_from_retransmissions():
    s = SequenceTracker()
    t0 = parse_time("2026-11-27T10:00:00Z")
    assert [s.see("A", n, t0 + 60 * n) for n in range(5)] == ["new"] * 5
    assert s.see("A", 3, t0 + 180) == "duplicate"              # same seq, same t
    assert s.see("A", 0, t0 + 600) == "reset"                  # rebooted: counts again from 0
    assert [s.see("A", n, t0 + 600 + 60 * n) for n in (1, 2)] == ["new", "new"]   # one restart, counted once
    assert s.see("A", 2, t0 + 120) == "duplicate"              # the old count's retransmission
    assert s.see("A", 4, t0 + 240) == "duplicate"
    assert s.see("A", 7, t0 + 420) == "new"                    # a late message of the old count...
    assert s.highest["A"] == 2                                 # ...leaves the new count's head
    assert s.see("A", 3, t0 + 780) == "new"
    assert s.resets == {"A": 1} and not s.gaps.get("A")
    restored = SequenceTracker()
    restored.restore(s.snapshot())
    assert restored.see("A", 3, t0 + 780) == "duplicate" and restored.see("A", 3, t0 + 180) == "duplicate"
    assert restored.see("A", 0, t0 + 3600) == "reset" and restored.resets == {"A": 2}


def test_traccar_adapter_converts_units_and_alarms():
    seqs = SeqCounter()
    obj = {"device": {"uniqueId": "TAG-01001"},
           "position": {"fixTime": "2026-11-27T17:00:00.000+00:00", "latitude": 51.5, "longitude": -0.1,
                        "accuracy": 12.5, "speed": 10.0, "course": 45,
                        "attributes": {"batteryLevel": 42, "alarm": "tampering"}}}
    msgs = traccar_to_v1(obj, seqs, rx=parse_time("2026-11-27T17:00:01Z"))
    fix = dec.decode(orjson.dumps(msgs[0]))
    assert isinstance(fix, Fix)
    assert fix.spd == pytest.approx(10.0 * 1852 / 3600) and fix.batt == pytest.approx(0.42) and fix.acc == 12.5
    ev = dec.decode(orjson.dumps(msgs[1]))
    assert isinstance(ev, Event) and ev.type == "strap_tamper"
    low = dict(obj, position=dict(obj["position"], attributes={"alarm": "lowBattery"}))
    assert [m.get("type") for m in traccar_to_v1(low, seqs)][1] == "battery_low"
    # the same position again gets the same seq: a duplicate
    assert traccar_to_v1(obj, seqs)[0]["seq"] == msgs[0]["seq"]
    with pytest.raises(AdapterError):
        traccar_to_v1({"position": {}}, seqs)


def test_owntracks_adapter():
    seqs = SeqCounter()
    d = FixDecoder(None)
    msgs = owntracks_to_v1({"_type": "location", "tid": "ab", "tst": 1795798800, "lat": 51.5, "lon": -0.1,
                            "acc": 9, "batt": 55}, "owntracks/alice/phone", seqs, rx=1795798801.0)
    f = d.decode(orjson.dumps(msgs[0]))
    assert isinstance(f, Fix) and f.device == "alice.phone" and f.batt == pytest.approx(0.55)
    assert owntracks_to_v1({"_type": "transition"}, None, seqs) == []
    noacc = owntracks_to_v1({"_type": "location", "tid": "ab", "tst": 1795798800, "lat": 51.5, "lon": -0.1},
                            None, seqs, rx=1795798801.0)
    # OwnTracks omits acc when it is 0 (unknown): a stated default, marked as derived (issue 17)
    derived = d.decode_obj(noacc[0], adapted=True)
    assert isinstance(derived, Fix) and derived.acc == 50.0 and derived.acc_derived == "default"
