"""Crime mapping on the PostgreSQL record gives the same answers as on SQLite: the same fixes
written through both stores' real writers, the same caseload (a reassigned tag, an unassigned
tag), then the crime query's own verdict code (``monitorapp.crime.query.assess_all``) run on
the SQLite store and on the slice read from PostgreSQL (``centraldb.crime``), query by query:
every verdict, closest approach, fix, segment, gap, prism and reason must be equal."""
from __future__ import annotations

import numpy as np
import psycopg
import pytest

from centraldb.crime import crime_slice, devices_near, window_rows
from centraldb.store import PgStore
from localdb.store import Store
from monitorapp.crime.query import assess_all
from monitorapp.crime.trail import subjects
from tests.fixtures_store import PLACE_X, PLACE_Y, T0, TrackWriter, fix_at
from tests.fixtures_clock import Clock


def _caseload(devices: dict[str, str]) -> dict:
    return {"version": 1, "tz": "Europe/London",
            "zones": {"type": "FeatureCollection", "features": []},
            "offenders": [{"id": o, "name": o, "risk": "medium", "borough": "Camden",
                           "device": d, "fix_interval_s": 60, "requirements": []}
                          for o, d in devices.items()]}


class Both:
    """The same writes to a SQLite store and a PostgreSQL store."""

    def __init__(self, sqlite_store, pg_store):
        self.stores = (sqlite_store, pg_store)
        self.writers = [TrackWriter(s) for s in self.stores]

    def caseload(self, doc):
        for s in self.stores:
            s.record_caseload(doc)

    def line(self, *a, **kw):
        for w in self.writers:
            w.line(*a, **kw)

    def fix(self, *a, **kw):
        for w in self.writers:
            w.fix(*a, **kw)

    def flush(self):
        for s in self.stores:
            s.flush()


@pytest.fixture
def both(tmp_path, pg_dsn):
    clock = Clock(T0 - 86400)
    s, p = Store(tmp_path / "s.sqlite", clock=clock), PgStore(pg_dsn, clock=clock)
    b = Both(s, p)
    b.clock = clock
    yield b
    s.close()
    p.close()


def _fill(both):
    both.caseload(_caseload({f"OFF-{k}": f"TAG-{k}" for k in range(1, 7)}))
    H = 3600.0
    both.line("TAG-1", T0, T0 + 2 * H, 60, (-3000, 0), (3000, 0))              # straight through
    both.line("TAG-2", T0, T0 + 2 * H, 60, (-3000, 220), (3000, 220), acc=50)  # near, by accuracy
    both.line("TAG-3", T0, T0 + 2 * H, 60, (-3000, 5000), (3000, 5000))        # far: not present
    both.line("TAG-4", T0, T0 + 0.5 * H, 60, (800, 0), (900, 0))               # then a gap
    both.line("TAG-4", T0 + 1.5 * H, T0 + 2 * H, 60, (900, 0), (1000, 0))
    both.line("TAG-5", T0 - 30 * H, T0 - 29 * H, 60, (0, 0), (10, 0))          # long before: no data
    both.line("TAG-6", T0, T0 + 2 * H, 120, (20000, 0), (20000, 100))          # far, sparse
    both.fix("TAG-6", T0 + 3001, 20, 0, acc=5)                                  # a single-fix jump
    both.line("TAG-X", T0, T0 + 2 * H, 60, (100, -100), (150, -100))           # never assigned
    both.flush()
    # TAG-1 moves to a new offender an hour in: two subjects for one tag
    both.clock.t = T0 + H
    both.caseload(_caseload({"OFF-7": "TAG-1", **{f"OFF-{k}": f"TAG-{k}" for k in range(2, 7)}}))
    rng = np.random.default_rng(5)
    for k in range(8):                      # random walks with gaps around the place
        t, x, y = T0 - 1800.0, float(rng.uniform(-2500, 2500)), float(rng.uniform(-2500, 2500))
        while t < T0 + 3 * H:
            t += float(rng.choice([30, 60, 60, 60, 900, 2400], p=[.2, .3, .2, .2, .05, .05]))
            x += float(rng.normal(0, 80))
            y += float(rng.normal(0, 80))
            both.fix(f"TAG-R{k}", t, x, y, acc=float(rng.uniform(5, 60)))
    both.flush()


QUERIES = [  # (dx, dy, radius, from offset, to offset)
    (0, 0, 300, 1800, 3600), (0, 0, 50, 600, 900), (0, 0, 500, 0, 7200),
    (950, 0, 100, 2400, 4000), (0, 5000, 100, 3600, 3700), (20000, 0, 30, 2900, 3100),
    (-1500, 1500, 500, -3600, 1800), (1200, -800, 250, 5000, 9000), (0, 0, 500, -7200, -3600),
    (0, 0, 2000, 1000, 8000),
]


def _assess(conn, cx, cy, radius, tf, tt):
    subs = subjects(conn, tf, tt, clip=False)
    return [((oid, dev), r) for (oid, dev, _, _), r in zip(subs, assess_all(conn, subs, cx, cy,
                                                                              radius, tf, tt))]


def test_verdicts_are_the_same_on_postgresql_as_on_sqlite(both):
    _fill(both)
    s, p = both.stores
    seen = set()
    for dx, dy, radius, a, b in QUERIES:
        cx, cy, tf, tt = PLACE_X + dx, PLACE_Y + dy, T0 + a, T0 + b
        want = _assess(s.reader(), cx, cy, radius, tf, tt)
        sl = crime_slice(p.reader(), tf, tt) if len(seen) % 2 else p.crime_reader(tf, tt)
        got = _assess(sl, cx, cy, radius, tf, tt)
        assert got == want, (dx, dy, radius, a, b)
        seen |= {r["verdict"] for _, r in want}
        assert ("OFF-7", "TAG-1") in [k for k, _ in want] or b < 3600
    # the data and queries reach every verdict, so the comparison covers every path
    assert seen == {"present", "possible", "not_present", "no_data"}


def test_the_window_read_prunes_months_and_the_area_read_uses_the_spatial_index(both):
    _fill(both)
    s, p = both.stores
    p.on_fix(fix_at("TAG-1", 999, T0 + 86400 * 60, 0, 0), True)    # two months on: another partition
    p.flush()
    conn = p.reader()
    lo, hi = T0, T0 + 7200
    rows = window_rows(conn, lo, hi)
    tracks = {r[0]: r for r in rows["tracks"]}
    assert set(tracks) >= {"TAG-1", "TAG-2", "TAG-X"}
    from centraldb.crime import BRACKET
    from monitorapp.crime.tracks import BRACKET as READ
    assert BRACKET == READ == 2                         # migration 5 reads what the query reads
    for dev, fix_id, seq, t, *_ in rows["tracks"]:     # the window, and two fixes either side
        assert len(t) == len(fix_id) == len(set(fix_id))
        assert sum(1 for v in t if v < lo) <= 2 and sum(1 for v in t if v > hi) <= 2
    assert max(tracks["TAG-1"][3]) == T0 + 86400 * 60         # next seen: two months on
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN SELECT fix_id FROM fixes WHERE device = ANY(%s) AND t BETWEEN %s AND %s",
        (["TAG-1"], lo, hi)))
    assert "fixes_p202603" in plan and "fixes_p202605" not in plan, plan
    near = devices_near(conn, PLACE_X, PLACE_Y, 300, lo, hi)
    assert near[0][0] == "TAG-1" and near[0][1] < 60                # passes right through
    assert {"TAG-2", "TAG-6", "TAG-X"} <= set(dict(near))            # 220 m; a jump; 141 m
    assert "TAG-3" not in dict(near) and "TAG-5" not in dict(near)  # 5 km; other days
    with psycopg.connect(p.dsn) as c:
        c.execute("SET enable_seqscan = off")      # a tiny table: show the index is usable
        plan = "\n".join(r[0] for r in c.execute(
            "EXPLAIN SELECT device FROM fixes WHERE t BETWEEN %s AND %s AND"
            " ST_DWithin(geom, ST_SetSRID(ST_MakePoint(%s, %s), 27700), 300)",
            (lo, hi, PLACE_X, PLACE_Y)))
        assert "fixes_p202603_geom_t_idx" in plan, plan


def test_trail_playback_is_the_same_on_postgresql_as_on_sqlite(both):
    from types import SimpleNamespace

    from monitorapp.crime.trail import trail
    _fill(both)
    s, p = both.stores
    t1, t2 = T0 - 600, T0 + 3 * 3600
    for who in ("OFF-1", "OFF-7", "TAG-1", "TAG-X", "TAG-R3", "OFF-5"):
        via_pg = SimpleNamespace(reader=lambda: p.crime_reader(t1, t2))
        want = trail(s, who, t1, t2)
        assert trail(via_pg, who, t1, t2) == want, who
        assert want or who == "OFF-5"


def test_a_batch_on_postgresql_is_the_batch_on_sqlite(both):
    """``run_batch`` on the record (its window's slice, decided by two forked workers, which
    share the slice's arrays) gives the SQLite store's report, hit for hit."""
    from monitorapp.crime.batch import run_batch
    from monitorapp.feed.timeutil import fmt_time
    from tests.fixtures_store import lonlat
    _fill(both)
    s, p = both.stores
    incidents = []
    for k, (dx, dy, radius, a, b) in enumerate(QUERIES * 3):    # 30 incidents: three runs
        lon, lat = lonlat(dx + 37 * k, dy)
        incidents.append({"reference": f"B-{k}", "lat": lat, "lon": lon, "radius_m": float(radius),
                          "from": fmt_time(T0 + a), "to": fmt_time(T0 + b)})
    want = run_batch(s, incidents, "a day's list", "analyst")
    got = run_batch(p, incidents, "a day's list", "analyst", workers=2)
    assert want["hits"] and got["hits"] == want["hits"] and got["incidents"] == want["incidents"]
