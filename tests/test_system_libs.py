"""The system libraries Qt needs on a real display are installed (``make syslibs``), and the
package list that installs them (``packaging/debian-runtime-packages.txt``) is the right one.

The tests run offscreen, which needs neither the xcb platform plugin nor a sound server, so a
machine can pass the rest of the suite while ``make demo`` aborts on a real display with
"Could not load the Qt platform plugin xcb". These tests ask ``ldd`` about the files a real
display loads: the xcb platform plugin and its GL integrations, QtWebEngine's helper process
(the map), the multimedia plugin (the alarm sound) and the Wayland plugin. With
``MONITORAPP_BUNDLE`` set (``make package-test``), the packaged bundle's copies get the same
check, as the bundle's Qt finds them: ``_internal`` on the library path, as its bootloader sets it.
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
PACKAGE_LIST = PACKAGING / "debian-runtime-packages.txt"
BUNDLE = os.environ.get("MONITORAPP_BUNDLE")
# What apt itself runs on: on every Debian, so the list leaves them out.
APT_BASE = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "libbz2-1.0", "libudev1"}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"),
                                reason="Qt's system libraries are checked on Linux, with ldd")


def venv_qt() -> pathlib.Path:
    import PySide6
    return pathlib.Path(PySide6.__file__).resolve().parent / "Qt"


def display_files(qt: pathlib.Path) -> list[pathlib.Path]:
    """The files a real display loads; the xcb plugin, the WebEngine helper and a multimedia
    plugin must be there, the GL integrations and the Wayland plugin are checked where present."""
    required = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "libexec" / "QtWebEngineProcess"]
    for f in required:
        assert f.is_file(), f"{f} is missing"
    multimedia = sorted((qt / "plugins" / "multimedia").glob("*.so"))
    assert multimedia, f"no multimedia plugin in {qt / 'plugins' / 'multimedia'} (the alarm sound)"
    optional = [*sorted((qt / "plugins" / "xcbglintegrations").glob("*.so")),
                qt / "plugins" / "platforms" / "libqwayland.so",
                qt / "plugins" / "wayland-graphics-integration-client" / "libqt-plugin-wayland-egl.so"]
    return required + multimedia + [f for f in optional if f.is_file()]


def not_found(files: list[pathlib.Path], env: dict | None = None) -> dict[str, list[str]]:
    """{library ldd cannot find: [files that need it]}"""
    missing: dict[str, list[str]] = {}
    for f in files:
        out = subprocess.run(["ldd", str(f)], capture_output=True, text=True, env=env, timeout=60).stdout
        for lib in re.findall(r"^\s*(\S+) => not found", out, re.M):
            missing.setdefault(lib, []).append(f.name)
    return missing


def listed_packages() -> list[str]:
    words = []
    for line in PACKAGE_LIST.read_text().splitlines():
        words += line.split("#", 1)[0].split()
    return words


def test_qt_finds_every_system_library_a_real_display_needs():
    files = display_files(venv_qt())
    assert {f.name for f in files} >= {"libqxcb.so", "QtWebEngineProcess", "libffmpegmediaplugin.so"}
    assert not_found(files) == {}, "missing system libraries: run `make syslibs` (as root)"


def test_syslibs_script_passes_here_and_names_what_is_missing(tmp_path):
    ok = subprocess.run(["sh", str(PACKAGING / "syslibs.sh"), str(venv_qt())],
                        capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stderr) == (0, "")
    # copies of Qt's files away from Qt's own libraries: their RUNPATH ($ORIGIN/../lib) finds nothing
    fake = tmp_path / "Qt"
    for rel in ("plugins/platforms/libqxcb.so", "libexec/QtWebEngineProcess",
                "plugins/multimedia/libffmpegmediaplugin.so"):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(venv_qt() / rel, fake / rel)
    bad = subprocess.run(["sh", str(PACKAGING / "syslibs.sh"), str(fake)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1, bad.stderr
    assert "libQt6XcbQpa.so.6 (libqxcb.so)" in bad.stderr
    assert "libQt6WebEngineCore.so.6 (QtWebEngineProcess)" in bad.stderr
    assert "apt-get install libx11-6 " in bad.stderr          # says how to install them
    missing = subprocess.run(["sh", str(PACKAGING / "syslibs.sh"), str(tmp_path / "nothing")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "libqxcb.so does not exist" in missing.stderr


def needed(elf: pathlib.Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(elf)], capture_output=True, text=True, timeout=60).stdout
    return re.findall(r"\(NEEDED\).*\[(.+?)\]", out)


@pytest.mark.skipif(not (shutil.which("readelf") and shutil.which("dpkg")),
                    reason="needs readelf (binutils) and dpkg")
def test_the_package_list_is_exactly_the_packages_of_the_libraries_qt_links():
    """Every system library the display files and the Qt libraries they load name as NEEDED
    comes from a listed package (or from apt's own base), and every listed package provides
    one of them: an upgrade of PySide6 that links something new fails here, not on a display."""
    qt = venv_qt()
    todo, seen, system = list(display_files(qt)), set(), {}
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for name in needed(f):
            if (qt / "lib" / name).exists():
                todo.append(qt / "lib" / name)
            else:
                system.setdefault(name, f.name)
    providers = {}
    for lib, user in sorted(system.items()):
        out = subprocess.run(["dpkg", "-S", f"*/{lib}"], capture_output=True, text=True).stdout
        pkgs = {l.split(":")[0] for l in out.splitlines() if ":" in l and "-dev" not in l.split(":")[0]}
        assert pkgs, f"{lib} (needed by {user}) belongs to no installed package: run `make syslibs`"
        providers[lib] = pkgs
    listed = listed_packages()
    assert len(listed) == len(set(listed)), "a package is listed twice"
    unlisted = {lib: p for lib, p in providers.items() if not p & (set(listed) | APT_BASE)}
    assert unlisted == {}, f"add these libraries' packages to {PACKAGE_LIST.name}"
    provided = set().union(*providers.values())
    assert sorted(set(listed) - provided) == []      # nothing listed that Qt does not link


@pytest.mark.skipif(not BUNDLE, reason="no bundle: `make package-test` builds one and sets MONITORAPP_BUNDLE")
def test_the_bundles_qt_finds_every_system_library_a_real_display_needs():
    bundle = pathlib.Path(BUNDLE).resolve()
    internal = bundle / "_internal"
    files = display_files(internal / "PySide6" / "Qt")
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(
        p for p in (str(internal), os.environ.get("LD_LIBRARY_PATH", "")) if p))
    assert not_found(files, env) == {}, "missing system libraries: run `make syslibs` (as root)"
    # the bundle carries the check and its package list, for install.sh on a workstation
    for name in ("syslibs.sh", "debian-runtime-packages.txt"):
        assert (internal / "packaging" / name).read_bytes() == (PACKAGING / name).read_bytes()
    proc = subprocess.run(["sh", str(internal / "packaging" / "syslibs.sh"), str(internal / "PySide6" / "Qt")],
                          env=env, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
