"""Checkpoints with the real engine: a run stopped after its last checkpoint (with more written
after it) and resumed from ``load_checkpoint()`` stores exactly what an uninterrupted run stores,
raises no alert twice and keeps the operators' handling."""
from __future__ import annotations

import sqlite3

from localdb.store import Store
from monitorapp.engine.caseload import load_caseload
from monitorapp.engine.engine import Engine


def _feed(store: Store, engine: Engine, lines: list[bytes], start: int, stop: int,
          every: int, raised: list[str]) -> None:
    for n in range(start, stop):
        engine.submit(lines[n].rstrip(b"\r\n"))
        if (n + 1) % every == 0:
            store.checkpoint(engine, {"line": n + 1})


def _contents(path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {
            "fixes": conn.execute("SELECT device, seq, t, rx, lat, lon, acc, used FROM fixes"
                                  " ORDER BY device, t, seq, used").fetchall(),
            "events": conn.execute("SELECT device, seq, t, type FROM events ORDER BY device, t").fetchall(),
            "rejected": conn.execute("SELECT rx, reason, raw FROM rejected ORDER BY rx, raw").fetchall(),
            "alerts": conn.execute("SELECT alert_id, type, start, raised_at, state, late FROM alerts"
                                   " ORDER BY alert_id").fetchall(),
            "raised": conn.execute("SELECT alert_id, count(*) FROM alert_changes WHERE change='raised'"
                                   " GROUP BY alert_id ORDER BY alert_id").fetchall(),
        }
    finally:
        conn.close()


def _run(path, caseload_path, lines, stop_at=None, every=500):
    """Run from the store's checkpoint (if any) to stop_at (or the end); return alerts raised."""
    raised: list[str] = []
    with Store(path) as store:
        snapshot, position = store.load_checkpoint()
        caseload = load_caseload(caseload_path)
        engine = Engine(caseload, state=snapshot) if snapshot is not None else Engine(caseload)
        if snapshot is None:
            store.record_caseload(caseload)
        store.attach(engine)
        engine.add_listener(on_alert=lambda a, ch: raised.append(a.alert_id) if ch == "raised" else None)
        start = position["line"] if position else 0
        end = len(lines) if stop_at is None else stop_at
        _feed(store, engine, lines, start, end, every, raised)
        if stop_at is None:
            store.checkpoint(engine, {"line": len(lines)})
    return raised


def test_resume_from_checkpoint_matches_an_uninterrupted_run(tmp_path, sim_feed):
    caseload, feed = sim_feed
    lines = [x for x in feed.read_bytes().splitlines(keepends=True) if x.strip()]
    ref = tmp_path / "ref.sqlite"
    ref_raised = _run(ref, caseload, lines)
    assert len(ref_raised) >= 3 and len(set(ref_raised)) == len(ref_raised)

    db = tmp_path / "store.sqlite"
    stop = len(lines) // 2 + 123            # 123 lines past a checkpoint are stored, then "crash"
    first = _run(db, caseload, lines, stop_at=stop)
    with Store(db) as s:
        before = {a["alert_id"] for a in s.alerts()}
        assert before
        acked = sorted(before)[0]
        s.acknowledge(acked, "alice", "contacted_subject", "spoke to him")
        n_fixes = s.counts()["fixes"]
    second = _run(db, caseload, lines)

    assert _contents(db) == _contents(ref)
    assert sorted(set(first) | set(second)) == sorted(ref_raised)
    assert all(n == 1 for _, n in _contents(db)["raised"])
    with Store(db) as s:
        assert {a["alert_id"]: a["handling"] for a in s.alerts()}[acked] == "acknowledged"
        assert s.counts()["fixes"] > n_fixes


def test_checkpoint_without_one_starts_fresh(store):
    assert store.load_checkpoint() == (None, None)


def test_load_checkpoint_discards_only_what_came_after(store, example_caseload_path,
                                                        example_feed_path):
    engine = Engine(load_caseload(example_caseload_path))
    store.attach(engine)
    lines = example_feed_path.read_bytes().splitlines()
    for line in lines[:1000]:
        engine.submit(line)
    store.checkpoint(engine, 1000)
    kept = store.counts()["fixes"]
    for line in lines[1000:1500]:
        engine.submit(line)
    store.flush()
    assert store.counts()["fixes"] > kept
    snapshot, position = store.load_checkpoint()
    assert position == 1000 and isinstance(snapshot, dict)
    assert store.counts()["fixes"] == kept
    Engine(load_caseload(example_caseload_path), state=snapshot)    # the snapshot restores


def test_a_checkpoint_keeps_the_largest_seq_the_decoder_accepts(tmp_path):
    """Checkpoints are written with orjson; the largest seq the decoder accepts (2**53 - 1, spec
    v2 §2: a larger one is rejected as bad_seq) round-trips."""
    import json
    spec = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples"
    caseload = load_caseload(spec / "caseload.json")
    device = next(iter(caseload.by_device))
    fix = {"v": 1, "kind": "fix", "device": device, "seq": 2**53 - 1, "t": "2026-11-27T17:00:00Z",
           "rx": "2026-11-27T17:00:01Z", "lat": 51.5, "lon": -0.1, "acc": 10.0, "src": "gps"}
    raw = json.dumps(fix).encode()
    with Store(tmp_path / "s.sqlite") as store:
        engine = Engine(caseload)
        assert engine.submit(raw).kind == "fix"
        store.checkpoint(engine, {"line": 1})
        snapshot, position = store.load_checkpoint()
    resumed = Engine(caseload, state=snapshot)
    assert position == {"line": 1}
    assert resumed.seqs.highest[device] == 2**53 - 1
    resumed.submit(raw)
    assert resumed.counters.duplicates == 1          # the same seq again is still a duplicate
