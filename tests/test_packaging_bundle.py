"""The built bundle (``make package-test``): its --version and --self-check, what is in it,
and an installation with packaging/install.sh into a staging root.

Building takes minutes, so these tests only run against a bundle that exists: set
``MONITORAPP_BUNDLE`` to its folder (``make package-test`` builds it and sets it). In
``make test`` they are skipped with that reason.
"""
from __future__ import annotations

import configparser
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BUNDLE = os.environ.get("MONITORAPP_BUNDLE")
CHECKS = ("runtime", "resources", "map", "store", "engine", "stored", "map markers")
TIMEOUT_S = 300

pytestmark = pytest.mark.skipif(not BUNDLE, reason="no bundle: `make package-test` builds one "
                                "and sets MONITORAPP_BUNDLE")
EXE = "monitorapp-console.exe" if sys.platform == "win32" else "monitorapp"


@pytest.fixture(scope="module")
def bundle() -> pathlib.Path:
    path = pathlib.Path(BUNDLE).resolve()
    assert (path / EXE).is_file(), f"{path} has no {EXE}: build it with `make package`"
    return path


def version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["version"]


def run(exe: pathlib.Path, *args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["QT_QPA_PLATFORM"] = "offscreen"
    return subprocess.run([str(exe), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def assert_self_check_passes(proc: subprocess.CompletedProcess, bundle_dir: pathlib.Path) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [l for l in proc.stdout.splitlines() if l.startswith(("ok ", "FAIL ", "skip "))]
    assert [l.split(": ")[0].split(None, 1)[1] for l in lines] == list(CHECKS), proc.stdout
    assert all(l.startswith("ok   ") for l in lines), proc.stdout
    assert f"bundle {bundle_dir}" in lines[0]
    assert "compiled decoder" in lines[0]          # the C fast path went into the bundle
    assert proc.stdout.rstrip().splitlines()[-1].startswith("self-check passed")


def test_bundle_version_is_pyprojects(bundle, tmp_path):
    proc = run(bundle / EXE, "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"monitorapp {version()}"


def test_bundle_self_check_passes_away_from_the_source_tree(bundle, tmp_path):
    assert_self_check_passes(run(bundle / EXE, "--self-check", cwd=tmp_path), bundle)


def test_bundle_holds_what_the_console_needs_and_not_more(bundle):
    internal = bundle / "_internal"
    names = {p.relative_to(internal).as_posix() for p in internal.rglob("*") if p.is_file()}
    process = "QtWebEngineProcess.exe" if sys.platform == "win32" else "QtWebEngineProcess"
    assert any(n.endswith("/" + process) for n in names)
    assert any(n.endswith("qtwebengine_locales/en-GB.pak") for n in names)
    assert not any(n.endswith("qtwebengine_locales/de.pak") for n in names)
    assert "resources/web/node_modules/leaflet/dist/leaflet.js" in names
    assert not any(n.startswith("resources/web/node_modules/lodash/") for n in names)
    assert "resources/sounds/alert.wav" in names
    assert not any(n.startswith(("tkinter/", "_tkinter", "PySide6/Qt/qml/", "pytest", "tests/"))
                   for n in names), sorted(n for n in names if "qml/" in n or "tkinter" in n)[:5]


@pytest.mark.skipif(sys.platform == "win32", reason="install.sh installs on Linux workstations")
def test_install_script_stages_a_working_installation(bundle, tmp_path):
    stage = tmp_path / "root"
    env = dict(os.environ, DESTDIR=str(stage), PREFIX="/opt/monitorapp", SHARE="/usr/share",
               QT_QPA_PLATFORM="offscreen")
    script = bundle / "_internal" / "packaging" / "install.sh"      # the bundle installs itself
    proc = subprocess.run(["sh", str(script), str(bundle)], env=env, capture_output=True,
                          text=True, timeout=TIMEOUT_S)
    installed = stage / "opt" / "monitorapp"
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"installed monitorapp {version()} in {installed}" in proc.stdout
    assert_self_check_passes(proc, installed)
    desktop = stage / "usr" / "share" / "applications" / "monitorapp.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(desktop)
    assert entry["Desktop Entry"]["Exec"] == "/opt/monitorapp/monitorapp"
    assert (stage / "usr/share/icons/hicolor/256x256/apps/monitorapp.png").is_file()
    assert (stage / "usr/share/icons/hicolor/scalable/apps/monitorapp.svg").is_file()
    if shutil.which("desktop-file-validate"):
        assert subprocess.run(["desktop-file-validate", str(desktop)]).returncode == 0
    # installing again replaces the copy in place
    again = subprocess.run(["sh", str(script), str(bundle)], env=env, capture_output=True,
                           text=True, timeout=TIMEOUT_S)
    assert again.returncode == 0, again.stdout + again.stderr
    assert not (stage / "opt" / "monitorapp.old").exists()
