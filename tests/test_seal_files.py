"""Files holding personal data are readable by their owner only (spec v2 §8): the store and its
-wal/-shm, settings.ini and window-state.ini are 0600 and the application's own directories
0700, whatever the umask. A zero-length store file (truncated) and a file that is not SQLite are
refused with one line, exit 2, and left as they are: never silently started afresh."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from localdb.schema import StoreError
from localdb.store import Store
from tests.conftest import EXAMPLES, ROOT


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)          # the usual desktop umask: files 0644, directories 0755
    yield
    os.umask(old)


def test_store_and_its_wal_and_shm_are_private(tmp_path, open_umask):
    db = tmp_path / "s.sqlite"
    with Store(db) as s:
        s.audit("alice", "sign_in")
        s.reader().execute("SELECT count(*) FROM audit_log").fetchone()
        for p in (db, f"{db}-wal", f"{db}-shm"):
            assert os.path.exists(p) and mode_of(p) == 0o600, p


def test_an_existing_store_others_could_read_is_made_private(tmp_path, open_umask):
    db = tmp_path / "s.sqlite"
    Store(db).close()
    os.chmod(db, 0o644)
    Store(db).close()
    assert mode_of(db) == 0o600


def test_settings_files_and_directories_are_private(tmp_path, open_umask):
    from ui.console.training import training_store_path
    from ui.settings import Settings, config_dir, data_dir, window_state
    s = Settings()
    s.set("feed/broker_url", "mqtts://user@gateway:8883")
    ws = window_state()
    ws.setValue("window/x", 1)
    ws.sync()
    assert mode_of(s.path) == 0o600 and mode_of(config_dir() / "window-state.ini") == 0o600
    assert mode_of(config_dir()) == 0o700
    training_store_path()
    assert mode_of(data_dir()) == 0o700
    # a settings file left world-readable by an older version is made private when opened
    os.chmod(s.path, 0o644)
    Settings()
    assert mode_of(s.path) == 0o600


def test_a_zero_length_store_is_refused_not_started_afresh(tmp_path):
    db = tmp_path / "monitor.sqlite"
    db.write_bytes(b"")
    with pytest.raises(StoreError, match="empty .0 bytes.*truncated"):
        Store(db)
    with pytest.raises(StoreError, match="empty"):
        Store(db, mode="training")
    assert db.stat().st_size == 0 and not os.path.exists(f"{db}-wal")


def _run(*args, env_extra=None):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **(env_extra or {}))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("content,words", [(b"", "empty (0 bytes)"),
                                           (b"shopping list\n" * 300, "not a SQLite database")])
def test_bad_store_files_exit_2_with_one_line(tmp_path, content, words):
    db = tmp_path / "monitor.sqlite"
    db.write_bytes(content)
    live = ["--broker", "mqtt://127.0.0.1:1", "--caseload", str(EXAMPLES / "caseload.json")]
    runs = {
        "console live": _run(str(ROOT / "main.py"), *live, "--db", str(db), "--quit-after", "5"),
        "console training": _run(str(ROOT / "main.py"), "--demo", "--db", str(db), "--quit-after", "5"),
        "replay": _run("-m", "monitorapp", "replay", "--caseload", str(EXAMPLES / "caseload.json"),
                       "--feed", str(EXAMPLES / "feed.ndjson"), "--out", str(tmp_path / "a.ndjson"),
                       "--db", str(db)),
    }
    for name, r in runs.items():
        assert r.returncode == 2, (name, r.stdout[-500:], r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and str(db) in lines[0], (name, r.stderr)
    assert db.read_bytes() == content


def test_the_default_live_store_empty_is_refused_past_main_py(tmp_path):
    """No --db: the store from the data directory is checked where it is opened (sign-in)."""
    data = tmp_path / "data"
    (data / "monitorapp").mkdir(parents=True)
    db = data / "monitorapp" / "monitor.sqlite"
    db.write_bytes(b"")
    r = _run(str(ROOT / "main.py"), "--broker", "mqtt://127.0.0.1:1", "--caseload",
             str(EXAMPLES / "caseload.json"), "--quit-after", "5",
             env_extra={"XDG_DATA_HOME": str(data), "XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert r.returncode == 2, r.stdout[-500:] + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "empty (0 bytes)" in r.stderr
    assert db.stat().st_size == 0


def test_the_default_data_directory_is_private_after_sign_in(tmp_path, open_umask):
    from localdb.accounts import SignInError
    from ui.session.signin import sign_in_for_console
    from ui.settings import data_dir
    pw = tmp_path / "pw.txt"
    pw.write_text("not an account here\n")
    with pytest.raises(SignInError):
        sign_in_for_console(data_dir() / "monitor.sqlite", training=False, user="op.jones",
                            password_file=str(pw))
    assert mode_of(data_dir()) == 0o700 and mode_of(data_dir() / "monitor.sqlite") == 0o600
