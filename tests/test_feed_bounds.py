"""The feed's bounds (spec v2 §2), message by message: the time window and the seq limit, live
``rx`` from the arrival clock, a deterministic time parser that reads a leap second, and the
adapters turning hostile times into a rejection instead of an exception.

Each case goes through the decoder as the replay (no arrival time, no topic: the fast path)
and as the live monitor (arrival time and topic: the full path) uses it."""
from __future__ import annotations

import datetime as dt
import random

import orjson
import pytest

from monitorapp.feed import timeutil
from monitorapp.feed.accel import speedups
from monitorapp.feed.adapters import AdapterError, SeqCounter, owntracks_to_v1, traccar_to_v1
from monitorapp.feed.decoder import SEQ_MAX, FixDecoder
from monitorapp.feed.messages import Event, Fix, Heartbeat, Rejection
from monitorapp.feed.timeutil import fmt_time, parse_time

DEV = "TAG-01001"
dec = FixDecoder({DEV})
YEAR = 365 * 86400.0


def fix(**kw) -> dict:
    o = {"v": 1, "kind": "fix", "device": DEV, "seq": 7, "t": "2026-11-27T17:00:13.78Z",
         "rx": "2026-11-27T17:00:14.95Z", "lat": 51.5805347, "lon": -0.1071383, "acc": 20.0, "src": "gps"}
    o.update(kw)
    return o


def event(**kw) -> dict:
    o = {"v": 1, "kind": "event", "device": DEV, "seq": 3, "t": "2026-11-27T17:00:00Z",
         "rx": "2026-11-27T17:00:01Z", "type": "strap_tamper"}
    o.update(kw)
    return o


def heartbeat(**kw) -> dict:
    o = {"v": 1, "kind": "heartbeat", "gateway": "GW-1", "t": "2026-11-27T17:00:00Z", "rx": "2026-11-27T17:00:00.2Z"}
    o.update(kw)
    return o


def replayed(obj):
    return dec.decode(orjson.dumps(obj))


def live(obj, arrival: float):
    topic = f"em/v1/{obj['kind']}/{obj.get('device', obj.get('gateway'))}"
    return dec.decode(orjson.dumps(obj), rx=arrival, topic=topic)


def rejected(msg, reason: str) -> None:
    assert isinstance(msg, Rejection), msg
    assert msg.reason == reason, msg.text
    assert msg.text and "undecodable" not in msg.text     # a reason of its own, not a caught crash


# ---------------------------------------------------------------------------------- the issue's examples
@pytest.mark.parametrize("obj,reason", [
    (event(t="0001-01-01T00:30:00+01:00"), "t_out_of_range"),
    (fix(t="9999-12-31T23:59:59Z", rx="9999-12-31T23:59:59.5Z"), "t_out_of_range"),
    (heartbeat(t="9999-12-31T23:59:59Z", rx="9999-12-31T23:59:59.2Z"), "t_out_of_range"),
    (fix(rx="9999-12-31T23:59:59Z"), "rx_out_of_range"),
    (event(rx="0001-01-01T00:00:00Z"), "rx_out_of_range"),
    (heartbeat(rx="1970-01-01T00:00:00Z"), "rx_out_of_range"),
    (fix(seq=2**63), "bad_seq"),
    (event(seq=2**63), "bad_seq"),
    (fix(seq=2**64 - 1), "bad_seq"),
])
def test_the_issues_poison_messages_are_rejected_with_a_reason(obj, reason):
    r = replayed(obj)
    rejected(r, reason)
    assert r.raw == orjson.dumps(obj)


@pytest.mark.parametrize("obj", [event(t="0001-01-01T00:30:00+01:00"),
                                 fix(t="9999-12-31T23:59:59Z", rx="9999-12-31T23:59:59.5Z"),
                                 heartbeat(t="9999-12-31T23:59:59Z")])
def test_out_of_range_times_are_rejected_live_too(obj):
    rejected(live(obj, parse_time("2026-11-27T17:00:15Z")), "t_out_of_range")


def test_the_seq_limit_is_2_to_the_53_minus_1():
    assert SEQ_MAX == 9007199254740991
    for obj in (fix(seq=SEQ_MAX), event(seq=SEQ_MAX)):
        m = replayed(obj)
        assert isinstance(m, (Fix, Event)) and m.seq == SEQ_MAX
    r = replayed(fix(seq=SEQ_MAX + 1))
    rejected(r, "bad_seq")
    assert "2^53" in r.text and str(SEQ_MAX + 1) in r.text
    rejected(live(event(seq=SEQ_MAX + 1), parse_time("2026-11-27T17:00:15Z")), "bad_seq")


@pytest.mark.parametrize("t,ok", [
    ("2000-01-01T00:00:00Z", True),
    ("2000-01-01T01:00:00+01:00", True),          # the same instant with an offset
    ("1999-12-31T23:59:59.999Z", False),
    ("2000-01-01T00:59:59+01:00", False),
    ("2100-01-01T00:00:00Z", True),
    ("2100-01-01T00:00:00.001Z", False),
    ("2099-12-31T23:00:00-01:00", True),
    ("2099-12-31T23:00:01-01:00", False),
])
def test_the_window_edges_are_inclusive(t, ok):
    # rx equal to t, so only the window can reject
    for m in (replayed(fix(t=t, rx=t)), replayed(event(t=t, rx=t)), replayed(heartbeat(t=t, rx=t)),
              live(fix(t=t), parse_time(t))):
        if ok:
            assert isinstance(m, (Fix, Event, Heartbeat)), m
        else:
            rejected(m, "t_out_of_range")
    m = replayed(fix(t="2000-01-01T00:00:00Z", rx=t))
    if ok:
        assert isinstance(m, Fix)
    else:
        rejected(m, "rx_out_of_range")


# ---------------------------------------------------------------------------------- live rx
def test_live_a_payloads_rx_is_not_the_reference_of_the_future_check():
    now = parse_time("2026-11-27T17:00:15Z")
    ahead = fmt_time(now + YEAR)
    obj = fix(t=ahead, rx=ahead)
    assert isinstance(replayed(obj), Fix)        # in a replay file the recorded rx is the clock
    r = live(obj, now)
    rejected(r, "t_in_future")
    assert "arrival" in r.text
    # without a topic the fast path serves; it too measures from the arrival time
    rejected(dec.decode(orjson.dumps(obj), rx=now), "t_in_future")
    rejected(live(event(t=ahead, rx=ahead), now), "t_in_future")
    rejected(live(heartbeat(t=ahead, rx=ahead), now), "t_in_future")


@pytest.mark.parametrize("claim", ["2030-01-01T00:00:00Z", "1999-01-01T00:00:00Z", "not a time", 17, None, ...])
def test_live_the_arrival_time_is_rx_whatever_the_gateway_claims(claim):
    now = parse_time("2026-11-27T17:00:15Z")
    obj = fix()
    if claim is ...:
        del obj["rx"]
    else:
        obj["rx"] = claim
    for m in (live(obj, now), dec.decode(orjson.dumps(obj), rx=now)):
        assert isinstance(m, Fix), m
        assert m.rx == now and type(m.rx) is float
    m = dec.decode(orjson.dumps(obj), rx=int(now))          # an int clock is taken as a float
    assert isinstance(m, Fix) and m.rx == now and type(m.rx) is float


# ---------------------------------------------------------------------------------- the time parser
def _fresh_pure(s: str) -> float:
    timeutil._minute_cache.clear()
    return timeutil._parse_time_py(s)


def test_the_pure_parser_reads_a_minute_the_same_on_its_first_and_later_calls():
    rng = random.Random(13)
    for _ in range(3000):
        when = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=rng.uniform(0, 100 * YEAR))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 9)))
        s = when.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"
        first = _fresh_pure(s)
        later = timeutil._parse_time_py(s)       # from the minute cache the first call filled
        assert later.hex() == first.hex(), s
        minute = when.replace(second=0, microsecond=0).timestamp()
        assert first == minute + float(s[17:-1]), s
        if speedups is not None:
            assert speedups.parse_utc(s).hex() == first.hex(), s
            assert timeutil.parse_time(s) == first


def test_a_sub_microsecond_time_reads_the_same_every_way():
    s = "2026-11-27T17:01:13.123456789Z"
    expected = 1795798860.0 + float("13.123456789")
    assert _fresh_pure(s) == expected
    assert timeutil._parse_time_py(s) == expected
    assert timeutil._parse_full(s) == expected
    if speedups is not None:
        assert speedups.parse_utc(s) == expected


@pytest.mark.parametrize("leap,same", [
    ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),
    ("2016-12-31T23:59:60.25Z", "2017-01-01T00:00:00.25Z"),
    ("2017-01-01T00:59:60+01:00", "2017-01-01T00:00:00Z"),
    ("2015-06-30T23:59:60z", "2015-07-01T00:00:00Z"),
])
def test_a_leap_second_is_the_next_second(leap, same):
    expected = timeutil._parse_full(same)
    assert _fresh_pure(leap) == expected
    assert timeutil._parse_time_py(leap) == expected     # cached minute
    assert timeutil.parse_time(leap) == expected
    if speedups is not None and leap.endswith("Z") and "+" not in leap:
        assert speedups.parse_utc(leap) == expected
    m = replayed(fix(t=leap, rx=leap))
    assert isinstance(m, Fix) and m.t == expected


@pytest.mark.parametrize("bad", ["2016-12-31T23:59:61Z", "2016-12-31T24:00:00Z", "2016-12-31T23:60:00Z",
                                 "2017-02-29T00:00:00Z", "2017-01-01T00:00:00+24:00", "2017-01-01T00:00:00Z\n",
                                 "2017-01-01T00:00:１３Z", "2017-01-01T00:00:00.1234567890Z"])
def test_what_is_still_not_a_time(bad):
    with pytest.raises(timeutil.TimeFormatError):
        timeutil._parse_full(bad)
    timeutil._parse_full("2017-01-01T00:00:00Z")          # fill the minute cache
    with pytest.raises(timeutil.TimeFormatError):
        timeutil._parse_time_py(bad)
    with pytest.raises(timeutil.TimeFormatError):
        timeutil.parse_time(bad)
    rejected(replayed(fix(t=bad)), "bad_time")


# ---------------------------------------------------------------------------------- adapters
def _traccar(fix_time: str) -> dict:
    return {"device": {"uniqueId": DEV},
            "position": {"fixTime": fix_time, "latitude": 51.5, "longitude": -0.1, "accuracy": 10}}


@pytest.mark.parametrize("fix_time", ["10000-01-01T00:00:00.000+00:00", "9999-12-31T23:59:59.9999+00:00",
                                      "0001-01-01T00:30:00+01:00", "2100-01-01T00:00:01Z", "1999-12-31T23:59:59Z"])
def test_a_traccar_fix_time_out_of_the_window_is_an_adapter_error(fix_time):
    with pytest.raises(AdapterError, match="fixTime") as e:
        traccar_to_v1(_traccar(fix_time), SeqCounter(), rx=parse_time("2026-11-27T17:00:01Z"))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("tst", [1e20, -1e20, 253402300800, 4102444801, 946684799, 10**30, 0])
def test_an_owntracks_tst_out_of_the_window_is_an_adapter_error(tst):
    obj = {"_type": "location", "tid": "ab", "tst": tst, "lat": 51.5, "lon": -0.1, "acc": 9}
    with pytest.raises(AdapterError, match="tst") as e:
        owntracks_to_v1(obj, "owntracks/alice/phone", SeqCounter(), rx=1795798801.0)
    assert "2000-01-01T00:00:00Z" in str(e.value) and "\n" not in str(e.value)


def test_the_adapters_window_edges_still_convert():
    seqs = SeqCounter()
    d = FixDecoder(None)
    for tst in (946684800, 4102444800):
        [v1] = owntracks_to_v1({"_type": "location", "tid": "ab", "tst": tst, "lat": 51.5, "lon": -0.1, "acc": 9},
                               None, seqs, rx=float(tst))
        m = d.decode(orjson.dumps(v1), rx=float(tst))
        assert isinstance(m, Fix) and m.t == tst
    for fix_time in ("2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00Z"):
        [v1] = traccar_to_v1(_traccar(fix_time), seqs, rx=parse_time(fix_time))
        assert isinstance(d.decode(orjson.dumps(v1), rx=parse_time(fix_time)), Fix)
