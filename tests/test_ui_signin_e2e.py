"""Signing in before the console opens, end to end through ``main.py``: a wrong password and a
role that may not use live mode are refused with one line and status 2, before anything live
is opened; a fresh training store opens as the built-in trainer."""
from __future__ import annotations

import os
import subprocess
import sys

from localdb.accounts import Accounts
from localdb.store import Store
from tests.conftest import EXAMPLES, ROOT

PASSWORD = "correct horse battery staple 42"


def _accounts_store(path):
    store = Store(path)
    acc = Accounts(store)
    admin = acc.create_first_admin("admin", PASSWORD)
    acc.create(admin, "tina", "trainer", PASSWORD + " trainer")
    store.close()


def _main(*args, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_live_sign_in_refuses_a_wrong_password_and_a_trainer(tmp_path):
    db = tmp_path / "monitor.sqlite"
    _accounts_store(db)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the password\n")
    common = ["--broker", "mqtt://127.0.0.1:1", "--caseload", str(EXAMPLES / "caseload.json"),
              "--db", str(db), "--quit-after", "5"]
    r = _main(*common, "--user", "admin", "--password-file", str(wrong), tmp_path=tmp_path)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "password" in r.stderr.lower()
    right = tmp_path / "trainer.txt"
    right.write_text(PASSWORD + " trainer\n")
    r = _main(*common, "--user", "tina", "--password-file", str(right), tmp_path=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Trainer may not use the live console" in r.stderr
    # both refusals are in the audit log, which is intact
    v = subprocess.run([sys.executable, "-m", "monitorapp", "verify-log", "--db", str(db)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr
    store = Store(db)
    actions = [r["action"] for r in store.audit_log()]
    store.close()
    assert "sign_in_failed" in actions or any("fail" in a for a in actions), actions


def test_a_fresh_training_store_opens_as_the_built_in_trainer(tmp_path):
    r = _main("--demo", "--quit-after", "8", tmp_path=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    import json
    events = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    signed = [e for e in events if e["event"] == "signed_in"]
    assert signed and signed[0]["role"] == "trainer" and signed[0]["built_in"] is True

