"""No crash loop on restart: a message the live monitor quarantined is recorded, so a restart
that meets it again in the journal (or redelivered by the broker) skips it without evaluating
it; and a journal that cannot be written (the kernel's ``/dev/full``: every write fails with
ENOSPC) raises ``system_fault`` while evaluation goes on, and clears it once a write succeeds.
The monitor's own ``LiveProcessor`` with a real engine, a real SQLite store and real journal
files; the failing stage is a real listener (part of the engine's public API)."""
from __future__ import annotations

import json
import os

from localdb.store import Store
from monitorapp.engine.caseload import load_caseload
from monitorapp.engine.engine import Engine
from monitorapp.feed.mqttconfig import MqttSettings
from monitorapp.feed.mqttfeed import Delivery, FeedClient
from monitorapp.feed.timeutil import fmt_time
from monitorapp.service.monitor import FeedJournal, LiveProcessor, QuarantineList

T0 = 1_795_000_000.0


def delivery(kind, seq, t, device="TAG-01001", **kw):
    m = {"v": 1, "kind": kind, "device": device, "seq": seq, "t": fmt_time(t)}
    if kind == "fix":
        m.update(lat=51.58, lon=-0.107, acc=12, src="gps")
    m.update(kw)
    return Delivery(f"em/v1/{kind}/{device}", json.dumps(m).encode(), t + 0.5)


def processor(tmp_path, caseload, store, listener=None):
    engine = Engine(caseload)
    store.attach(engine)
    if listener:
        engine.add_listener(on_event=listener)
    feed = FeedClient(MqttSettings.from_url("mqtt://127.0.0.1:1", client_id="t"))   # never started
    journal = FeedJournal(tmp_path / "m.db")
    proc = LiveProcessor(engine, store, feed, None, None, {}, journal, quarantine=QuarantineList(tmp_path / "m.db"))
    return engine, journal, proc


def test_a_quarantined_message_is_skipped_when_the_journal_replays_it(tmp_path, example_caseload_path):
    caseload = load_caseload(example_caseload_path)
    calls = []

    def fails_on_the_poison(ev):
        calls.append(ev.seq)
        if ev.detail == "poison":
            raise RuntimeError("rule bug")
    store = Store(tmp_path / "m.db")
    engine, journal, proc = processor(tmp_path, caseload, store, fails_on_the_poison)
    journal.open()
    poison = delivery("event", 2, T0 + 10, type="device_fault", detail="poison")
    proc.process([delivery("fix", 1, T0), poison])
    proc.write_journal()
    journal.sync()
    journal.close()                      # killed here: no checkpoint after the poison
    assert engine.counters.rejected_by_reason == {"processing_error": 1}
    store.close()

    calls.clear()
    store = Store(tmp_path / "m.db")
    engine, journal, proc = processor(tmp_path, caseload, store, fails_on_the_poison)
    replayed = list(journal.replay({}))
    assert [d.payload for d in replayed][-1] == poison.payload
    proc.process(replayed, journal=False)          # the restart meets it again
    assert calls == [], "the quarantined message was evaluated again"
    assert proc.skipped == 1 and engine.counters.rejected_by_reason == {"processing_error": 1}
    proc.process([delivery("event", 3, T0 + 20, type="strap_tamper")], journal=False)
    assert engine.active_alert("strap_tamper", "OFF-0001", None) is not None
    store.close()


def test_a_full_disk_under_the_journal_raises_system_fault_and_evaluation_goes_on(tmp_path, example_caseload_path):
    caseload = load_caseload(example_caseload_path)
    store = Store(tmp_path / "m.db")
    engine, journal, proc = processor(tmp_path, caseload, store)
    alerts = []
    engine.add_listener(on_alert=lambda a, ch: alerts.append((a.type, a.requirement, ch)))
    journal.open()
    os.symlink("/dev/full", journal.path(journal.generation + 1))
    journal.rotate()                      # the next file is on a full disk
    proc.process([delivery("fix", 1, T0)])
    proc.commit()
    assert ("system_fault", "journal:write", "raised") in alerts
    fault = engine.active_alert("system_fault", None, "journal:write")
    assert "No space left on device" in fault.evidence["error"]
    assert proc.uncommitted == [] and len(proc.unjournaled) == 1     # nothing acknowledged
    proc.process([delivery("event", 2, T0 + 5, type="strap_tamper")])
    assert engine.active_alert("strap_tamper", "OFF-0001", None) is not None   # still evaluating
    os.unlink(journal.path(journal.generation))      # room again: the retry takes a fresh file
    proc.commit()
    assert ("system_fault", "journal:write", "cleared") in alerts
    assert len(proc.uncommitted) == 0 and proc.unjournaled == []      # written, synced, acknowledged
    got = [d.payload for d in FeedJournal(tmp_path / "m.db").replay({"journal": journal.generation})]
    assert len(got) == 2
    journal.close()
    store.close()
