"""Training is sealed (spec v2 §8): every store is marked live or training once; each mode refuses
the other's store with one line (exit 2 on the command line) and leaves it byte-for-byte as it
was; the built-in trainer exists only in a training store; stores from before the mark are live
when they hold data and take their first opener's mode when they do not."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest

from localdb.accounts import Accounts
from localdb.schema import (APPLICATION_ID, MIGRATIONS, StoreModeError, _statements,
                            read_store_mode)
from localdb.store import Store
from tests.conftest import EXAMPLES, ROOT

CRIME = ["--lat", "51.528", "--lon", "-0.1065", "--radius-m", "200",
         "--from", "2026-11-27T17:00:00Z", "--to", "2026-11-27T18:00:00Z",
         "--ref", "CAD-2291", "--reason", "robbery"]


def run(*args, timeout=120):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def monitorapp(*args):
    return run("-m", "monitorapp", *args)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


@pytest.fixture(scope="module")
def live_store(tmp_path_factory):
    """A live store as the centre keeps it: the example feed replayed into it (offenders,
    zones, assignments, 960 fixes, an alert)."""
    d = tmp_path_factory.mktemp("live")
    db = d / "monitor.sqlite"
    r = monitorapp("replay", "--caseload", str(EXAMPLES / "caseload.json"), "--feed",
                   str(EXAMPLES / "feed.ndjson"), "--out", str(d / "alerts.ndjson"), "--db", str(db))
    assert r.returncode == 0, r.stderr
    return db


def counts(db) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("offenders", "zones", "assignments", "fixes", "alerts", "audit_log")}
    finally:
        conn.close()


def crime_results(db):
    r = monitorapp("crimecheck", "--db", str(db), *CRIME)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["results"]


def test_demo_on_the_live_store_is_refused_and_the_store_is_untouched(live_store):
    """The issue's scenario: main.py --demo --db <live store> wrote simulated data into it."""
    before_results = crime_results(live_store)
    assert any(r["verdict"] == "present" for r in before_results)
    before, n_before = digest(live_store), counts(live_store)
    assert n_before["offenders"] > 0 and n_before["fixes"] > 0
    for extra in ([], ["--scenario", "strap_cut"], ["--user", "trainer", "--password-file", "x"]):
        r = run(str(ROOT / "main.py"), "--demo", "--db", str(live_store), "--quit-after", "5", *extra)
        assert r.returncode == 2, r.stdout + r.stderr
        assert one_line(r.stderr), r.stderr
        assert "is a live store" in r.stderr and str(live_store) in r.stderr
        assert digest(live_store) == before and counts(live_store) == n_before
    # crime mapping still answers from the real data only, the same as before
    after_results = crime_results(live_store)
    assert after_results == before_results


def test_deeper_guards_refuse_the_live_store_without_writing(live_store):
    """Past main.py's own check: the built-in trainer, the training sign-in and the training
    console's store all open the store as a training store, which refuses a live one."""
    from ui.console.training import TrainingError, check_training_args
    from ui.session.signin import builtin_trainer, sign_in_for_console
    before = digest(live_store)
    with pytest.raises(StoreModeError, match="is a live store"):
        builtin_trainer(live_store)
    with pytest.raises(StoreModeError, match="is a live store"):
        sign_in_for_console(live_store, training=True, user="x", password_file=str(live_store))
    with pytest.raises(StoreModeError, match="is a live store"):
        Store(live_store, mode="training")
    with pytest.raises(TrainingError, match="is a live store"):
        check_training_args(None, str(live_store))          # the trainers' scenario stores too
    assert digest(live_store) == before


def test_live_commands_refuse_a_training_store(tmp_path):
    training = tmp_path / "training.sqlite"
    Store(training, mode="training").close()
    before = digest(training)
    cases = {
        "replay": ["replay", "--caseload", str(EXAMPLES / "caseload.json"), "--feed",
                   str(EXAMPLES / "feed.ndjson"), "--out", str(tmp_path / "a.ndjson"),
                   "--db", str(training)],
        "monitor": ["monitor", "--broker", "mqtt://127.0.0.1:1", "--caseload",
                    str(EXAMPLES / "caseload.json"), "--db", str(training)],
        "crimecheck": ["crimecheck", "--db", str(training), *CRIME],
    }
    for name, args in cases.items():
        r = monitorapp(*args)
        assert r.returncode == 2, (name, r.stdout, r.stderr)
        assert one_line(r.stderr) and "is a training store" in r.stderr, (name, r.stderr)
    r = run(str(ROOT / "main.py"), "--broker", "mqtt://127.0.0.1:1", "--caseload",
            str(EXAMPLES / "caseload.json"), "--db", str(training), "--quit-after", "5")
    assert r.returncode == 2 and one_line(r.stderr) and "is a training store" in r.stderr, r.stderr
    assert digest(training) == before
    assert read_store_mode(training) == "training"


def test_a_new_store_takes_its_creators_mode_once(tmp_path):
    live, training = tmp_path / "live.sqlite", tmp_path / "training.sqlite"
    Store(live).close()                       # live is the default
    Store(training, mode="training").close()
    assert read_store_mode(live) == "live" and read_store_mode(training) == "training"
    with Store(training, mode="training") as s:           # reopened in its own mode: fine
        s.audit("trainer", "sign_in")
    conn = sqlite3.connect(training)
    for sql in ("UPDATE meta SET value='live' WHERE key='mode'", "DELETE FROM meta"):
        with pytest.raises(sqlite3.IntegrityError, match="set once"):
            conn.execute(sql)
    conn.close()
    with pytest.raises(ValueError, match="store mode"):
        Store(tmp_path / "x.sqlite", mode="demo")


def _old_store(path, version: int, *, with_data: bool):
    """A store as schema ``version`` (before the mark) left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    for v in range(1, version + 1):
        for statement in _statements(MIGRATIONS[v]):
            conn.execute(statement)
    conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version={version}")
    if with_data:
        conn.execute("INSERT INTO offenders VALUES ('OFF-1', 'One', 'high', 'Camden', 60, 0)")
    conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_store_with_data_is_live(tmp_path, version):
    db = tmp_path / "old.sqlite"
    _old_store(db, version, with_data=True)
    assert read_store_mode(db) == "live"
    before = digest(db)
    with pytest.raises(StoreModeError, match="is a live store"):
        Store(db, mode="training")
    assert digest(db) == before               # refused before migrating: not touched
    with Store(db) as s:                      # live opens and migrates it
        assert s.reader().execute("SELECT value FROM meta").fetchone() == ("live",)
        assert s.reader().execute("SELECT offender_id FROM offenders").fetchall() == [("OFF-1",)]


def test_an_old_empty_store_takes_the_mode_of_its_first_opener(tmp_path):
    db = tmp_path / "old.sqlite"
    _old_store(db, 2, with_data=False)
    assert read_store_mode(db) is None
    Store(db, mode="training").close()
    assert read_store_mode(db) == "training"
    with pytest.raises(StoreModeError, match="is a training store"):
        Store(db)


def test_the_built_in_trainer_only_in_a_training_store_without_accounts(tmp_path):
    from ui.session.signin import builtin_trainer
    fresh = tmp_path / "new" / "training.sqlite"
    trainer = builtin_trainer(fresh)
    assert trainer.role == "trainer" and read_store_mode(fresh) == "training"
    store = Store(fresh, mode="training")
    Accounts(store).create_first_admin("admin.ann", "correct horse battery")
    store.close()
    assert builtin_trainer(fresh) is None     # accounts exist: everyone signs in
    live = tmp_path / "live.sqlite"
    Store(live).close()                       # a fresh live store has no built-in trainer
    with pytest.raises(StoreModeError):
        builtin_trainer(live)
