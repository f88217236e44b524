"""OwnTracks as its apps and recorder send it (spec §6, issue 17), and adapted streams across a
monitor restart: no new position dropped, none doubled."""
from __future__ import annotations

import orjson
import pytest

from monitorapp.engine.caseload import parse_caseload
from monitorapp.engine.engine import Engine
from monitorapp.feed.adapters import AdapterError, AdapterState, device_from_levels, owntracks_to_v1
from monitorapp.feed.decoder import FixDecoder
from monitorapp.feed.messages import AdaptedFix, Event
from monitorapp.service.monitor import LiveProcessor
from tests.adaptkit import owntracks_location, to_owntracks, to_traccar

TST = 1795798800
DEC = FixDecoder(None)


def conv(obj, topic="owntracks/jane/phone", **kw):
    return [DEC.decode_obj(m, adapted=True) for m in owntracks_to_v1(obj, topic, None, TST + 1.0, **kw)]


def test_minus_one_is_unknown_and_numbers_may_be_strings():
    [f] = conv(owntracks_location(tst=TST, lat=51.5, lon=-0.1, acc=12, batt=-1, vel=-1, cog=-1))
    assert isinstance(f, AdaptedFix) and f.acc == 12 and f.batt is None and f.spd is None and f.hdg is None
    [f] = conv(owntracks_location(tst=str(TST), lat="51.5", lon="-0.1", acc="9", batt="55", vel="18"))
    assert (f.t, f.lat, f.lon, f.acc, f.batt) == (TST, 51.5, -0.1, 9.0, 0.55) and f.spd == pytest.approx(5.0)
    [f] = conv(owntracks_location(tst=TST, lat=51.5, lon=-0.1))          # acc omitted: it was 0
    assert (f.acc, f.acc_derived) == (50.0, "default")


def test_charging_from_bs_and_no_false_battery_low_from_minus_one():
    state = AdapterState()
    [_, ev] = conv(owntracks_location(tst=TST, lat=51.5, lon=-0.1, acc=9, batt=80, bs=2), state=state)
    assert isinstance(ev, Event) and ev.type == "charging_started"
    assert len(conv(owntracks_location(tst=TST + 60, lat=51.5, lon=-0.1, acc=9, batt=100, bs=3), state=state)) == 1
    [_, ev] = conv(owntracks_location(tst=TST + 120, lat=51.5, lon=-0.1, acc=9, batt=99, bs=1), state=state)
    assert ev.type == "charging_stopped"


def test_encrypted_payloads_are_rejected_with_a_reason_and_other_types_map_to_nothing():
    with pytest.raises(AdapterError) as e:
        owntracks_to_v1({"_type": "encrypted", "data": "b4Yz...=="}, "owntracks/jane/phone", None, TST)
    assert e.value.reason == "encrypted" and "encrypted" in str(e.value)
    for t in ("transition", "waypoint", "lwt", "card", "status"):
        assert owntracks_to_v1({"_type": t, "tst": TST}, "owntracks/jane/phone", None, TST) == []


def test_topic_root_and_depth_and_any_utf8_name_without_collisions():
    loc = owntracks_location(tst=TST, lat=51.5, lon=-0.1, acc=9)
    assert conv(loc)[0].device == "jane.phone"
    assert conv(loc, "fleet/tags/TAG-7", pattern="fleet/tags/+")[0].device == "TAG-7"
    assert conv(loc, "ot/jane doe/Zoë's phone", pattern="ot/#")[0].device == "jane_20doe.Zo_C3_AB_27s_20phone"
    names = [["a.b", "c"], ["a", "b.c"], ["a_2Eb", "c"], ["a b"], ["a_20b"], ["x" * 70], ["x" * 71]]
    ids = [device_from_levels(n) for n in names]
    assert len(set(ids)) == len(ids) and all(len(i) <= 64 for i in ids)
    assert conv(loc, None)[0].device == "ph"                                  # no topic: the tid


def _run(caseload, deliveries, cut: int | None = None, redeliver: int = 0):
    """The monitor's processing path; with ``cut``, a restart after that many deliveries: the
    engine from its snapshot, the adapters' state from the checkpoint, and the broker handing
    over again the last ``redeliver`` it had not had acknowledged."""
    def proc_for(engine, position):
        return LiveProcessor(engine, None, None, None, None, position, None, feed_clock=True,
                             owntracks_topic="tags/+")
    engine = Engine(parse_caseload(caseload, "sim"))
    raised = []
    engine.add_listener(on_alert=lambda a, ch: raised.append(a.alert_id) if ch == "raised" else None)
    proc = proc_for(engine, {})
    first = deliveries if cut is None else deliveries[:cut]
    for i in range(0, len(first), 5000):
        proc.process(first[i:i + 5000], journal=False)
    if cut is not None:
        snap = orjson.loads(orjson.dumps(engine.snapshot()))
        pos = {"adapters": orjson.loads(orjson.dumps(proc.adapters.state()))}
        engine = Engine(parse_caseload(caseload, "sim"), state=snap)
        engine.add_listener(on_alert=lambda a, ch: raised.append(a.alert_id) if ch == "raised" else None)
        proc = proc_for(engine, pos)
        rest = deliveries[cut - redeliver:]
        for i in range(0, len(rest), 5000):
            proc.process(rest[i:i + 5000], journal=False)
    return engine, raised


def test_a_recorded_track_as_owntracks_gives_the_alerts_of_the_same_track_in_v1(sim_day):
    deliveries, ref_lines = to_owntracks(sim_day.lines)
    ref = Engine(parse_caseload(sim_day.caseload, "sim"))
    want = []
    ref.add_listener(on_alert=lambda a, ch: want.append(a.alert_id) if ch == "raised" else None)
    for _rx, line in ref_lines:
        ref.submit(line)
    ref.flush()
    ref.advance(sim_day.t1)
    engine, got = _run(sim_day.caseload, deliveries)
    engine.flush()
    engine.advance(sim_day.t1)
    assert len(want) > 5 and got == want
    assert engine.counters.rejected == 0 and ref.counters.fixes == engine.counters.fixes


@pytest.mark.parametrize("fmt", ["traccar", "owntracks"])
def test_a_restart_in_the_middle_of_adapted_streams_drops_no_new_position_and_doubles_none(sim_day, fmt):
    deliveries, _ = (to_traccar if fmt == "traccar" else to_owntracks)(sim_day.lines)
    whole, want = _run(sim_day.caseload, deliveries)
    cut = len(deliveries) // 2
    restarted, got = _run(sim_day.caseload, deliveries, cut=cut, redeliver=300)
    for e in (whole, restarted):
        e.flush()
        e.advance(sim_day.t1)
    c0, c1 = whole.counters, restarted.counters
    assert got == want                                   # the same alerts, none twice
    assert c1.fixes == c0.fixes and c1.events == c0.events   # no new position dropped, none doubled
    assert c1.duplicates == c0.duplicates + 300 - sum(     # only the redelivered were duplicates
        1 for d in deliveries[cut - 300:cut] if d.adapter == "v1")
