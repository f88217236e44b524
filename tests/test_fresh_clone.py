"""A newcomer's two commands work on a fresh machine with nothing beside the repository.

* No test, benchmark, build file, packaging script, command in the documentation or module
  reads a file outside the repository (the spec's folder beside it exists on the development
  machines only); the examples they use are the repository's own, in ``examples/``.
* ``examples/caseload.json`` passes the project's own caseload validator.
* ``main.py --demo`` without any display says so in one line and exits 2, instead of Qt's
  abort with a page of advice about platform plugins.
"""
from __future__ import annotations

import importlib
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Where the code lives; Markdown files are read only inside their ``` blocks (commands), so
# that prose may still name the spec beside the repository as the reference contract.
AREAS = ("tests/", "benchmarks/", "packaging/", "monitorapp/", "ui/", "localdb/", "docs/",
         "examples/", ".ci/")
FILES = ("Makefile", "README.md", "main.py", "setup.py", "pyproject.toml")
UP = r"\.\."
OUTSIDE = [
    re.compile(UP + r"[/\\]+shared\b"),                                    # a relative path up and over
    re.compile(r"\bparents?\b(\[\d+\])?(\.parent)*\s*/\s*[\"']shared[\"']"),   # pathlib: X.parent / its name
    re.compile(r"[\"']" + UP + r"[\"']\s*,\s*[\"']shared[\"']"),           # os.path.join(X, "..", its name)
    re.compile(r"/work/" + r"shared\b"),                                   # the development machine's copy
]


def repository_files() -> list[pathlib.Path]:
    """The repository's files (tracked, or new and not ignored) in the areas above."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):          # an exported tree without git
        names = [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*") if p.is_file()
                 and not any(part in (".venv", "node_modules", ".git", "build", "dist")
                             for part in p.relative_to(ROOT).parts)]
    return [ROOT / n for n in sorted(names)
            if (n.startswith(AREAS) or n in FILES) and (ROOT / n).is_file()]


def code_of(path: pathlib.Path) -> str | None:
    """The text to search: the whole file, or a Markdown file's fenced blocks; None for binaries."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return None
    if path.suffix == ".md":
        blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
        return "\n".join(blocks)
    return text


def outside_references(text: str) -> list[str]:
    return [m.group(0) for pattern in OUTSIDE for m in pattern.finditer(text)]


def test_the_search_finds_every_way_of_spelling_a_path_outside(tmp_path):
    name = '"' + "shared" + '"'          # spelt in pieces, so that this file passes its own test
    outside = [f'SPEC = ROOT.parent / {name} / "spec"',
               f'pathlib.Path(__file__).resolve().parents[2] / {name} / "spec"',
               "--caseload " + ".." + "/shared/spec/examples/caseload.json",
               f'os.path.join(ROOT, "..", {name}, "spec")',
               "open('/work/" + "shared/spec/examples/feed.ndjson')"]
    for line in outside:
        assert outside_references(line), line
    inside = ['EXAMPLES = ROOT / "examples"', "the shared 2-core machine", "SharedState(shared, ...)",
              "monitorapp/service/sharedstate.py", "shaped like ``shared/spec/examples/caseload.json``"]
    for line in inside:
        assert not outside_references(line), line
    # Markdown: the commands in its blocks count, a reference in its prose does not
    md = tmp_path / "x.md"
    md.write_text("The contract is `" + ".." + "/shared/spec/monitoring-spec.md`.\n\n```sh\n"
                  "make demo\n```\n\n```sh\ncat " + ".." + "/shared/spec/examples/feed.ndjson\n```\n")
    assert outside_references(code_of(md)) == [".." + "/shared"]


def test_nothing_reads_outside_the_repository():
    files = repository_files()
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"Makefile", "README.md", "main.py", "tests/conftest.py", "examples/caseload.json"} <= names
    assert any(n.startswith("benchmarks/") for n in names) and any(n.startswith("packaging/") for n in names)
    found = {}
    for path in files:
        text = code_of(path)
        if text and (refs := outside_references(text)):
            found[path.relative_to(ROOT).as_posix()] = refs
    assert found == {}, "use examples/ (or another path inside the repository)"


def test_the_example_fixtures_are_the_repositorys_own(example_caseload_path, example_feed_path):
    for path in (example_caseload_path, example_feed_path):
        assert path.resolve().is_relative_to(ROOT / "examples") and path.is_file()


def caseload_module():
    """The project's caseload validator, wherever the layout keeps it."""
    for name in ("monitorapp.engine.caseload", "monitorapp.caseload"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise AssertionError("no caseload module: monitorapp.engine.caseload or monitorapp.caseload")


def test_the_example_caseload_passes_the_projects_validator(tmp_path):
    caseload = caseload_module()
    loaded = caseload.load_caseload(ROOT / "examples" / "caseload.json")
    assert sorted(loaded.by_device) == ["TAG-01001", "TAG-01002", "TAG-01003"]
    # the validator is not a formality: the same file with a requirement on a zone that does not
    # exist is refused, naming the file
    doc = (ROOT / "examples" / "caseload.json").read_text().replace('"zone": "Z-EXCL-0002"',
                                                                   '"zone": "Z-NOWHERE"')
    assert "Z-NOWHERE" in doc
    bad = tmp_path / "bad.json"
    bad.write_text(doc)
    with pytest.raises(caseload.CaseloadError) as error:
        caseload.load_caseload(bad)
    assert "bad.json" in str(error.value) and "Z-NOWHERE" in str(error.value)


def without_display() -> dict:
    return {k: v for k, v in os.environ.items()
            if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}


def run_main(*args: str, env: dict, cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11/Wayland display is Linux's")
def test_demo_without_a_display_says_so_in_one_line(tmp_path):
    expected = ("main.py: no display: set DISPLAY (an X server) or WAYLAND_DISPLAY, or run with "
                "QT_QPA_PLATFORM=offscreen\n")
    proc = run_main("--demo", env=without_display(), cwd=tmp_path)
    assert (proc.returncode, proc.stderr, proc.stdout) == (2, expected, "")
    proc = run_main("--demo", env=dict(without_display(), QT_QPA_PLATFORM="xcb"), cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (2, expected)
    # what needs no display still works without one
    version = run_main("--version", env=without_display(), cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("monitorapp "), version.stderr


def test_which_environments_lack_a_display():
    sys.path.insert(0, str(ROOT))
    import main
    assert main.lacks_display({}, "linux")
    assert main.lacks_display({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert not main.lacks_display({"DISPLAY": ":0"}, "linux")
    assert not main.lacks_display({"WAYLAND_DISPLAY": "wayland-0"}, "linux")
    assert not main.lacks_display({"QT_QPA_PLATFORM": "offscreen"}, "linux")
    assert not main.lacks_display({}, "win32")                  # Windows and macOS always have one
    assert not main.lacks_display({}, "darwin")
