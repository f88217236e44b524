"""The compiled decoder fast path (monitorapp/feed/_speedups.c) gives exactly what the pure-Python
decoder gives: the same Fix, the same rejection reason, the same epoch seconds."""
from __future__ import annotations

import datetime as dt
import json
import os
import pathlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from monitorapp.feed import decoder as decoder_module, timeutil
from monitorapp.feed.accel import speedups
from monitorapp.feed.decoder import FixDecoder
from monitorapp.feed.messages import Fix, Rejection
from monitorapp.feed.timeutil import TimeFormatError

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
KNOWN = {"TAG-01001", "TAG-2"}
GOOD_FIX = {"v": 1, "kind": "fix", "device": "TAG-01001", "seq": 7, "t": "2026-11-27T17:00:13.78Z",
            "rx": "2026-11-27T17:00:14.95Z", "lat": 51.5805347, "lon": -0.1071383, "acc": 20, "src": "gps",
            "batt": 0.813, "spd": 1.2, "hdg": 90, "sats": 9}

needs_speedups = pytest.mark.skipif(speedups is None, reason="the compiled module is not loaded")


def test_the_compiled_module_is_built_and_loaded():
    """`make venv` installs a compiler and the Python headers, so a missing module is a build fault
    (set MONITORAPP_PURE_PYTHON=1 to run the suite on the pure-Python paths on purpose)."""
    if os.environ.get("MONITORAPP_PURE_PYTHON") == "1":
        pytest.skip("pure-Python run asked for")
    assert speedups is not None
    assert decoder_module._fast_fix_c is speedups.fast_fix


def _decode_both(raw: bytes, known=KNOWN, **kw):
    compiled = FixDecoder(known).decode(raw, **kw)
    saved = decoder_module._fast_fix_c
    decoder_module._fast_fix_c = None
    try:
        pure = FixDecoder(known).decode(raw, **kw)
    finally:
        decoder_module._fast_fix_c = saved
    return compiled, pure


def _same(compiled, pure) -> None:
    assert type(compiled) is type(pure)
    if isinstance(pure, Rejection):
        assert (compiled.reason, compiled.text) == (pure.reason, pure.text)
    else:
        assert compiled == pure
        if isinstance(pure, Fix):   # the same types too: 20 == 20.0, but acc is always a float
            assert [type(getattr(compiled, f)) for f in Fix.__slots__] == \
                   [type(getattr(pure, f)) for f in Fix.__slots__]


# ---------------------------------------------------------------------------------- times
@needs_speedups
@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59)),
       st.text(alphabet="0123456789", min_size=0, max_size=9))
def test_the_usual_utc_form_reads_the_same_to_the_bit(when, fraction):
    s = when.strftime("%Y-%m-%dT%H:%M:%S")
    s = s if len(s) == 19 else s.zfill(19)          # years before 1000 keep four digits
    s += ("." + fraction if fraction else "") + "Z"
    minute = dt.datetime(when.year, when.month, when.day, when.hour, when.minute, tzinfo=dt.timezone.utc)
    expected = minute.timestamp() + float(s[17:-1])  # the pure path's cached-minute arithmetic
    assert speedups.parse_utc(s) == expected
    assert timeutil.parse_time(s) == expected


time_like = st.one_of(
    st.text(alphabet="0123456789-:T.Zzt +", max_size=32),
    st.builds(lambda d, sep, frac, zone: d.isoformat(sep)[:19] + frac + zone,
              st.datetimes(), st.sampled_from("T t"), st.sampled_from(["", ".", ".5", ".1234567891"]),
              st.sampled_from(["Z", "z", "+01:00", "-00:30", ""])),
    st.sampled_from(["2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "2026-11-27T24:00:00Z",
                     "2026-11-27T23:60:00Z", "2026-11-27T23:59:60Z", "2026-11-27T23:59:60.5Z",
                     "2026-11-27T23:59:61Z", "0000-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00",
                     "2000-01-01T00:00:00Z", "1999-12-31T23:59:59.999999999Z", "2100-01-01T00:00:00Z",
                     "2100-01-01T00:00:00.000001Z", "9999-12-31T23:59:59Z",
                     "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-27T17:00:13.Z",
                     "２０２６-11-27T17:00:13Z"]),
    st.integers(), st.none(), st.floats())


@needs_speedups
@settings(max_examples=800, deadline=None)
@given(time_like)
def test_any_other_text_is_left_to_the_full_parser(s):
    try:
        full = timeutil._parse_full(s)
    except TimeFormatError:
        full = None
    got = speedups.parse_utc(s)
    if full is None:
        assert got is None
    elif got is not None:                          # read by both: equal to the microsecond
        assert abs(got - full) < 1e-6
    try:
        assert timeutil.parse_time(s) == (got if got is not None else full)
    except TimeFormatError:
        assert full is None


# ---------------------------------------------------------------------------------- fixes
values = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.integers(min_value=10**20), st.integers(max_value=-10**20),
    st.sampled_from([2**53 - 2, 2**53 - 1, 2**53, 2**63 - 1, 2**63, 2**64 - 1]),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 1.0000001, 90.0, 90.0000001, -90.0, 180.0, -180.0000001, 360.0,
                     360.5, 999.9, 1000.0, 1000.5, 1e6, 1e6 + 1, -1.0, 1e308]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["gps", "wifi", "cell", "GPS", "", "TAG-01001", "TAG-2", "TAG-3"]),
    time_like.filter(lambda v: isinstance(v, str)),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@needs_speedups
@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(list(GOOD_FIX)), values, max_size=5),
       st.sets(st.sampled_from(list(GOOD_FIX)), max_size=2))
def test_mutated_fixes_decode_the_same_either_way(changes, dropped):
    obj = {**GOOD_FIX, **changes}
    for k in dropped:
        obj.pop(k, None)
    raw = json.dumps(obj).encode()
    _same(*_decode_both(raw))
    _same(*_decode_both(raw, rx=1795798814.0))
    _same(*_decode_both(raw, rx=1795798814))
    _same(*_decode_both(raw, known=None))


@needs_speedups
def test_edge_fixes_decode_the_same_either_way():
    cases = [
        {}, {"seq": 0}, {"seq": -1}, {"seq": 10**30}, {"seq": -10**30}, {"seq": True}, {"v": True},
        {"v": 1.0}, {"v": 10**30}, {"acc": 0}, {"acc": 10**30}, {"acc": 1e6}, {"acc": 1000000},
        {"batt": None}, {"batt": 1}, {"batt": 1.0}, {"spd": None, "hdg": None, "sats": None},
        {"spd": 0}, {"hdg": 360}, {"sats": 1001}, {"sats": 10**30}, {"sats": 9.0},
        {"t": "2026-11-27T17:05:14.96Z"}, {"t": "2026-11-27T17:05:14.95Z"}, {"t": "2026-11-27T18:00:13+01:00"},
        {"rx": "2026-11-27t17:00:14Z"}, {"src": ["gps"]}, {"src": {"a": 1}}, {"device": "TAG-3"},
        {"device": 5}, {"lat": 91}, {"lat": 51}, {"lon": -0.0}, {"extra": "x" * 100},
    ]
    for change in cases:
        raw = json.dumps({**GOOD_FIX, **change}).encode()
        _same(*_decode_both(raw))


@needs_speedups
def test_a_leap_second_reads_the_same_to_the_bit():
    for s, same in (("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),
                    ("2016-12-31T23:59:60.123456789Z", "2017-01-01T00:00:00.123456789Z"),
                    ("2026-11-27T17:04:60.5Z", "2026-11-27T17:05:00.5Z")):
        timeutil._minute_cache.clear()
        pure_first = timeutil._parse_time_py(s)
        assert speedups.parse_utc(s) == pure_first == timeutil._parse_time_py(s) == timeutil._parse_full(same)


NOW = 1795798814.95     # GOOD_FIX's rx
BOUNDS = [   # (change, what either path must give: None for a Fix, else the rejection's reason)
    ({"t": "2000-01-01T00:00:00Z", "rx": "2000-01-01T00:00:00Z"}, None),
    ({"t": "1999-12-31T23:59:59.999999Z", "rx": "2000-01-01T00:00:00Z"}, "t_out_of_range"),
    ({"t": "2000-01-01T00:00:00Z", "rx": "1999-12-31T23:59:59.999999Z"}, "rx_out_of_range"),
    ({"t": "2100-01-01T00:00:00Z", "rx": "2100-01-01T00:00:00Z"}, None),
    ({"t": "2100-01-01T00:00:00.000001Z", "rx": "2100-01-01T00:00:00Z"}, "t_out_of_range"),
    ({"t": "2099-12-31T23:59:59Z", "rx": "2100-01-01T00:00:00.000001Z"}, "rx_out_of_range"),
    ({"t": "2100-01-01T00:00:00Z", "rx": "2100-01-01T00:00:01Z"}, "rx_out_of_range"),
    ({"t": "0001-01-01T00:30:00+01:00"}, "t_out_of_range"),
    ({"t": "9999-12-31T23:59:59Z", "rx": "9999-12-31T23:59:59Z"}, "t_out_of_range"),
    ({"t": "2026-11-27T17:00:13Z", "rx": "9999-12-31T23:59:59Z"}, "rx_out_of_range"),
    ({"seq": 2**53 - 1}, None),
    ({"seq": 2**53}, "bad_seq"),
    ({"seq": 2**63 - 1}, "bad_seq"),
    ({"seq": 2**63}, "bad_seq"),
    ({"seq": 2**64 - 1}, "bad_seq"),
    ({"t": "2026-11-27T16:59:60Z"}, None),
]


@needs_speedups
@pytest.mark.parametrize("change,reason", BOUNDS)
def test_the_bounds_are_the_same_either_way(change, reason):
    raw = json.dumps({**GOOD_FIX, **change}).encode()
    compiled, pure = _decode_both(raw)
    _same(compiled, pure)
    assert isinstance(pure, Fix) if reason is None else pure.reason == reason, pure
    # live, the arrival time is rx: only t and seq are judged, against it
    arrival = parse_time_ok(change.get("rx", GOOD_FIX["rx"]))
    if arrival is not None and reason != "rx_out_of_range":
        compiled, pure = _decode_both(raw, rx=arrival)
        _same(compiled, pure)
        assert isinstance(pure, Fix) if reason is None else pure.reason == reason, pure


def parse_time_ok(s: str) -> float | None:
    try:
        return timeutil.parse_time(s)
    except TimeFormatError:
        return None


@needs_speedups
def test_live_the_arrival_time_replaces_the_payloads_rx_either_way():
    ahead = "2027-11-27T17:00:13.78Z"
    for change, reason in (({"t": ahead, "rx": ahead}, "t_in_future"), ({"rx": "garbage"}, None),
                           ({"rx": "9999-12-31T23:59:59Z"}, None), ({"rx": None}, None)):
        raw = json.dumps({**GOOD_FIX, **change}).encode()
        compiled, pure = _decode_both(raw, rx=NOW)
        _same(compiled, pure)
        if reason is None:
            assert pure.rx == NOW
        else:
            assert pure.reason == reason
    direct = speedups.fast_fix({**GOOD_FIX, "rx": "garbage", "batt": None, "spd": None, "hdg": None,
                                "sats": None}, KNOWN, NOW)
    assert isinstance(direct, Fix) and direct.rx == NOW
    assert speedups.fast_fix(dict(GOOD_FIX), KNOWN, 5) is None      # an int clock: the full path


@needs_speedups
def test_the_spec_example_feed_decodes_the_same_either_way():
    caseload = json.loads((EXAMPLES / "caseload.json").read_text())
    known = {o["device"] for o in caseload["offenders"]}
    lines = (EXAMPLES / "feed.ndjson").read_bytes().splitlines()
    assert lines
    for raw in lines:
        _same(*_decode_both(raw, known=known))


@needs_speedups
def test_bind_refuses_a_class_it_cannot_fill():
    with pytest.raises(ValueError):
        speedups.bind(Fix, ("device",))
    with pytest.raises(ValueError):
        speedups.bind(dict, tuple(Fix.__slots__))
