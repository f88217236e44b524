"""The installation self-check from source: the real program in a subprocess (offscreen), the
real map page, a real scratch SQLite store and the engine over the simulator's feed."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tomllib

import pytest

from ui import selfcheck

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHECKS = ("runtime", "resources", "map", "store", "engine", "stored", "map markers")
RUN_TIMEOUT_S = 240


def pyproject_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def run(args: list[str], env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", **(env_extra or {}))
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)


def check_lines(stdout: str) -> dict[str, tuple[str, str]]:
    """check name -> (status, detail) from the self-check's output."""
    out = {}
    for line in stdout.splitlines():
        status, _, rest = line.partition(" ")
        if status in ("ok", "FAIL", "skip"):
            name, _, detail = rest.strip().partition(": ")
            out[name] = (status, detail)
    return out


def test_self_check_passes_from_source_through_the_bundle_entry():
    proc = run(["packaging/entry.py", "--self-check"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = check_lines(proc.stdout)
    assert list(lines) == list(CHECKS), proc.stdout
    assert all(status == "ok" for status, _ in lines.values()), proc.stdout
    assert f"monitorapp {pyproject_version()}" in lines["runtime"][1]
    assert "from source" in lines["runtime"][1]
    assert "decoder" in lines["runtime"][1]
    assert "page loaded and bridge ready" in lines["map"][1]
    assert "exclusion_entered" in lines["engine"][1] and "strap_tamper" in lines["engine"][1]
    assert "hash-chained acknowledgement read back" in lines["stored"][1]
    assert "tag positions drawn by the page" in lines["map markers"][1]
    assert proc.stdout.rstrip().splitlines()[-1].startswith("self-check passed: 7 checks")


def test_unwritable_scratch_directory_names_the_store_check(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the scratch directory's parent should be")
    scratch = blocker / "scratch"
    proc = run(["-c", "import sys; from ui.selfcheck import handle_cli; sys.exit(handle_cli(sys.argv[1:]))",
                "--self-check"], {selfcheck.SCRATCH_ENV: str(scratch)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = check_lines(proc.stdout)
    assert lines["store"][0] == "FAIL"
    assert f"cannot create a scratch directory in {scratch}" in lines["store"][1]
    assert lines["stored"] == ("skip", "needs the scratch store")
    # the checks that do not need the store still ran and passed
    for name in ("runtime", "resources", "map", "engine", "map markers"):
        assert lines[name][0] == "ok", proc.stdout
    assert proc.stdout.rstrip().splitlines()[-1].startswith("self-check FAILED: store, stored")
    assert not scratch.exists()


def test_version_is_pyprojects():
    proc = run(["packaging/entry.py", "--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"monitorapp {pyproject_version()}"
    assert selfcheck.app_version() == pyproject_version()


def test_other_command_lines_are_left_to_the_console(capsys):
    assert selfcheck.handle_cli([]) is None
    assert selfcheck.handle_cli(["--demo", "--speed", "10"]) is None
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("argv, message", [
    (["--self-check", "--scratchdir", "/tmp"], "unknown option(s) --scratchdir"),
    (["--self-check", "--timeout", "0"], "--timeout must be a positive number"),
    (["--self-check", "--timeout", "soon"], "invalid float value: 'soon'"),
])
def test_bad_self_check_options_are_usage_errors(argv, message, capsys):
    assert selfcheck.handle_cli(argv) == selfcheck.EXIT_USAGE
    assert message in capsys.readouterr().err


def test_resource_path_follows_the_bundle(monkeypatch, tmp_path):
    assert selfcheck.resource_path("resources", "sounds", "alert.wav") == ROOT / "resources" / "sounds" / "alert.wav"
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert selfcheck.resource_path("resources", "web") == tmp_path / "resources" / "web"


def test_sandbox_and_platform_prepared_before_qt_starts():
    env: dict = {"QTWEBENGINE_CHROMIUM_FLAGS": "--disable-gpu"}
    selfcheck.prepare_environment(env, "linux", euid=0)
    assert env["QTWEBENGINE_CHROMIUM_FLAGS"] == "--disable-gpu --no-sandbox"
    assert env["QT_QPA_PLATFORM"] == "offscreen"          # no DISPLAY, no WAYLAND_DISPLAY
    selfcheck.prepare_environment(env, "linux", euid=0)   # idempotent
    assert env["QTWEBENGINE_CHROMIUM_FLAGS"] == "--disable-gpu --no-sandbox"
    desktop: dict = {"DISPLAY": ":0"}
    selfcheck.prepare_environment(desktop, "linux", euid=1000)
    assert desktop == {"DISPLAY": ":0"}                   # a user's desktop session is left alone
    windows: dict = {}
    selfcheck.prepare_environment(windows, "win32", euid=-1)
    assert windows == {}
