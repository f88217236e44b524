"""Traccar as it really forwards (spec §6, issue 17): payloads as Traccar's serialisation writes
them for GT06 (no accuracy), Teltonika (hdop) and OsmAnd (accuracy), event forwarding with
and without a position, 4.x dates, and a whole track through the monitor's own processing path
giving the alerts of the same track in protocol v1."""
from __future__ import annotations

import orjson
import pytest

from monitorapp.engine.caseload import parse_caseload
from monitorapp.engine.engine import Engine
from monitorapp.feed.adapters import AccuracyDefaults, AdapterError, AdapterState, traccar_to_v1
from monitorapp.feed.decoder import FixDecoder
from monitorapp.feed.messages import DERIVED_SEQ_BASE, AdaptedFix, Event
from monitorapp.feed.mqttfeed import TRACCAR, Delivery
from monitorapp.feed.timeutil import parse_time
from monitorapp.service.monitor import LiveProcessor
from tests.adaptkit import jdate, to_traccar, traccar_device, traccar_event, traccar_position

T0 = parse_time("2026-11-27T17:00:00Z")
DEC = FixDecoder(None)


def decode(d: dict):
    return DEC.decode_obj(d, adapted=True)


def test_gt06_without_accuracy_derives_it_from_hdop_or_the_stated_default():
    with_hdop = {"position": traccar_position(protocol="gt06", fix_t=T0, lat=51.5, lon=-0.1,
                                              attributes={"hdop": 1.4, "sat": 9, "batteryLevel": 80}),
                 "device": traccar_device("359710049090941", model="GT06N")}
    [fix] = [decode(m) for m in traccar_to_v1(with_hdop, None, T0 + 1)]
    assert isinstance(fix, AdaptedFix) and fix.acc == pytest.approx(7.0) and fix.acc_derived == "hdop"
    assert fix.src == "gps" and fix.sats == 9 and fix.batt == pytest.approx(0.8) and fix.valid
    bare = {"position": traccar_position(protocol="gt06", fix_t=T0, lat=51.5, lon=-0.1, attributes={}),
            "device": traccar_device("359710049090941", model="GT06N")}
    assert decode(traccar_to_v1(bare, None, T0 + 1)[0]).acc == 30.0          # the builtin, pessimistic
    state = AdapterState(AccuracyDefaults.parse(["traccar:gt06=25", "model:GT06N=20"]))
    f = decode(traccar_to_v1(bare, None, T0 + 1, state=state)[0])
    assert (f.acc, f.acc_derived) == (20.0, "default")                      # the device model wins
    bare["device"]["model"] = None
    assert decode(traccar_to_v1(bare, None, T0 + 1, state=state)[0]).acc == 25.0


def test_teltonika_hdop_osmand_accuracy_and_4x_dates():
    tel = {"position": traccar_position(protocol="teltonika", fix_t=T0, lat=51.5, lon=-0.1, speed_kn=3.2,
                                        course=270.0, style="4.x",
                                        attributes={"hdop": 0.8, "sat": 12, "io69": 1, "priority": 0}),
           "device": traccar_device("352093081234567")}
    f = decode(traccar_to_v1(tel, None, T0 + 1)[0])
    assert f.t == T0 and f.acc == pytest.approx(4.0) and f.spd == pytest.approx(3.2 * 1852 / 3600)
    assert f.hdg == 270.0
    osm = {"position": traccar_position(protocol="osmand", fix_t=T0, lat=51.5, lon=-0.1, accuracy=6.2,
                                        attributes={"batteryLevel": 64.0, "charge": True}),
           "device": traccar_device("831465")}
    out = [decode(m) for m in traccar_to_v1(osm, None, T0 + 1)]
    assert out[0].acc == 6.2 and out[0].acc_derived is None
    assert isinstance(out[1], Event) and out[1].type == "charging_started"
    assert jdate(T0).endswith(".000+00:00") and jdate(T0, "4.x").endswith(".000+0000")


def test_cell_and_wifi_positions_are_labelled_by_what_traccar_says():
    for net, src in (({"cellTowers": [{"cellId": 1}]}, "cell"), ({"wifiAccessPoints": [{"macAddress": "x"}]}, "wifi")):
        p = {"position": traccar_position(protocol="gt06", fix_t=T0, lat=51.5, lon=-0.1, accuracy=0.0,
                                          attributes={"approximate": True}, network=net),
             "device": traccar_device("1")}
        f = decode(traccar_to_v1(p, None, T0)[0])
        assert f.src == src and f.acc == 1000.0 and f.acc_derived == "default"


def test_every_alarm_is_kept_at_device_time_not_the_stale_fix_time():
    stale = T0 - 1800                     # a shielded tag: Traccar keeps the last location
    p = {"position": traccar_position(protocol="gt06", fix_t=stale, device_t=T0, lat=51.5, lon=-0.1,
                                      attributes={"alarm": "removing,sos,powerCut,jamming,fault,lowPower"}),
         "device": traccar_device("1")}
    msgs = [decode(m) for m in traccar_to_v1(p, None, T0 + 1)]
    fix, evs = msgs[0], msgs[1:]
    assert fix.t == stale
    assert {e.type: e.detail for e in evs} == {
        "strap_tamper": "traccar alarm removing", "device_alarm": "traccar alarm sos,powerCut",
        "gps_jamming": "traccar alarm jamming", "device_fault": "traccar alarm fault",
        "power_off": "traccar alarm lowPower"}
    assert all(e.t == T0 for e in evs)
    # the next alarm before any new fix is a new event, not a duplicate of the first
    p2 = {"position": dict(p["position"], deviceTime=jdate(T0 + 60), attributes={"alarm": "removing"}),
          "device": p["device"]}
    [_, again] = [decode(m) for m in traccar_to_v1(p2, None, T0 + 61)]
    assert again.seq != evs[0].seq and again.t == T0 + 60


def test_event_forwarding_with_and_without_a_position():
    pos = traccar_position(protocol="gt06", fix_t=T0, lat=51.5, lon=-0.1, attributes={"alarm": "tampering"},
                           pos_id=77)
    ev = {"event": traccar_event(type_="alarm", event_t=T0 + 2, position_id=77, alarm="tampering"),
          "position": pos, "device": traccar_device("1")}
    via_event = [decode(m) for m in traccar_to_v1(ev, None, T0 + 3)]
    via_position = [decode(m) for m in traccar_to_v1({"position": pos, "device": traccar_device("1")}, None, T0 + 1)]
    # the same alarm on both topics: the same (seq, t), so the second is a duplicate
    assert [(m.kind, m.seq, m.t) for m in via_event] == [(m.kind, m.seq, m.t) for m in via_position]
    offline = {"event": traccar_event(type_="deviceOffline", event_t=T0 + 900), "device": traccar_device("1")}
    [e] = [decode(m) for m in traccar_to_v1(offline, None, T0 + 901)]
    assert e.type == "gateway_event" and e.detail == "traccar event deviceOffline" and e.t == T0 + 900
    bare_alarm = {"event": traccar_event(type_="alarm", event_t=T0 + 5, alarm="powerCut"), "device": traccar_device("1")}
    [e] = [decode(m) for m in traccar_to_v1(bare_alarm, None, T0 + 6)]
    assert (e.type, e.detail, e.t) == ("device_alarm", "traccar alarm powerCut", T0 + 5)


def test_derived_sequence_numbers_need_no_memory():
    p = {"position": traccar_position(protocol="gt06", fix_t=T0, lat=51.5, lon=-0.1, attributes={"hdop": 1}),
         "device": traccar_device("1")}
    a = traccar_to_v1(p, None, T0)[0]["seq"]
    assert a >= DERIVED_SEQ_BASE and a == traccar_to_v1(p, None, T0 + 40)[0]["seq"]   # a retransmission
    p["position"]["fixTime"] = jdate(T0 + 60)
    assert traccar_to_v1(p, None, T0 + 61)[0]["seq"] > a


@pytest.mark.parametrize("payload, words", [
    ({"position": {}}, "uniqueId"), ([1, 2], "not a JSON object"), ({"device": {"uniqueId": "1"}}, "neither"),
    ({"position": {"fixTime": "yesterday"}, "device": {"uniqueId": "1"}}, "fixTime"),
])
def test_what_cannot_be_mapped_is_an_adapter_error(payload, words):
    with pytest.raises(AdapterError, match=words):
        traccar_to_v1(payload, None, T0)


def _caseload(device: str) -> dict:
    return {"version": 1, "tz": "Europe/London",
            "zones": {"type": "FeatureCollection", "features": [
                {"type": "Feature", "id": "Z1", "properties": {"name": "Victim's street"},
                 "geometry": {"type": "Point", "coordinates": [-0.1, 51.5]}}]},
            "offenders": [{"id": "O1", "name": "A", "risk": "high", "borough": "Camden", "device": device,
                           "fix_interval_s": 60,
                           "requirements": [{"id": "R1", "type": "exclusion", "zone": "Z1", "schedule": None}]}]}


def _processor(caseload: dict, **kw) -> tuple[Engine, list, list]:
    for z in caseload["zones"]["features"]:
        if z["geometry"]["type"] == "Point":
            z["properties"].setdefault("radius_m", 150)
    engine = Engine(parse_caseload(caseload, "test"))
    raised, rejected = [], []
    engine.add_listener(on_alert=lambda a, ch: raised.append(a) if ch == "raised" else None,
                        on_rejected=rejected.append)
    proc = LiveProcessor(engine, None, None, None, None, kw.pop("position", {}), None, feed_clock=True, **kw)
    return proc, raised, rejected


def test_valid_false_is_kept_as_received_and_never_evidence():
    proc, raised, rejected = _processor(_caseload("359710049090941"))
    dels = []
    for k in range(12):                      # twelve fixes in the middle of the exclusion zone
        p = traccar_position(protocol="gt06", fix_t=T0 + 30 * k, lat=51.5, lon=-0.1, valid=False,
                             attributes={"hdop": 1.0})
        dels.append(Delivery("traccar/positions", orjson.dumps({"position": p, "device": traccar_device("359710049090941")}),
                             T0 + 30 * k + 1, TRACCAR))
    proc.process(dels, journal=False)
    proc.engine.advance(T0 + 355)          # 300 s after the first: the tag still talks
    assert [a.type for a in raised] == []                        # no exclusion, and no signal_lost
    assert [r.reason for r in rejected] == ["invalid_fix"] * 12
    assert rejected[0].raw == dels[0].payload and rejected[0].topic == "traccar/positions"


def test_a_rejected_adapted_message_keeps_the_gateways_bytes_and_topic():
    proc, _raised, rejected = _processor(_caseload("TAG-1"))
    p = traccar_position(protocol="gt06", fix_t=T0, lat=95.0, lon=-0.1, attributes={"hdop": 1.0})
    raw = orjson.dumps({"position": p, "device": traccar_device("TAG-1")})
    proc.process([Delivery("traccar/pos", raw, T0 + 1, TRACCAR)], journal=False)
    [r] = rejected
    assert (r.reason, r.raw, r.topic) == ("lat_out_of_range", raw, "traccar/pos")


def test_a_recorded_track_as_traccar_gt06_gives_the_alerts_of_the_same_track_in_v1(sim_day):
    """The simulator's day (a realistic generated track: no recorded one is available) as a
    GT06 tag through Traccar, without accuracy, through the monitor's processing path."""
    deliveries, ref_lines = to_traccar(sim_day.lines)
    ref = Engine(parse_caseload(sim_day.caseload, "sim"))
    want = []
    ref.add_listener(on_alert=lambda a, ch: want.append(a) if ch == "raised" else None)
    for _rx, line in ref_lines:
        ref.submit(line)
    ref.flush()
    ref.advance(sim_day.t1)
    engine = Engine(parse_caseload(sim_day.caseload, "sim"))
    got = []
    engine.add_listener(on_alert=lambda a, ch: got.append(a) if ch == "raised" else None)
    proc = LiveProcessor(engine, None, None, None, None, {}, None, feed_clock=True)
    for i in range(0, len(deliveries), 5000):
        proc.process(deliveries[i:i + 5000], journal=False)
    engine.flush()
    engine.advance(sim_day.t1)
    key = lambda a: (a.alert_id, a.type, a.offender, a.requirement, a.start, a.raised_at, a.late)  # noqa: E731
    assert len(want) > 10 and {a.type for a in want} >= {"exclusion_entered", "strap_tamper", "signal_lost"}
    assert [key(a) for a in got] == [key(a) for a in want]
    assert engine.counters.rejected == 0 and engine.counters.gaps == {}
