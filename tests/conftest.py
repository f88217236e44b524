"""Shared test set-up: Qt offscreen, every test's data and config in tmp_path, and the fixture
modules ``tests/fixtures_*.py`` loaded as plugins (each area of the code keeps its own)."""
from __future__ import annotations

import gc
import itertools
import os
import pathlib
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
if "--no-sandbox" not in flags:
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = (flags + " --no-sandbox").strip()

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
EXAMPLES = ROOT / "examples"       # the project's own reference examples (examples/README.md)

pytest_plugins = sorted(
    f"tests.{p.stem}" for p in (ROOT / "tests").glob("fixtures_*.py")
)

import pytest  # noqa: E402


_tests_done = itertools.count(1)
WHOLE_HEAP_EVERY = 25       # tests between collections of the whole heap


@pytest.fixture(autouse=True)
def _collect_on_the_main_thread():
    """As the application does (``ui.app.settle_heap``): no automatic garbage collection,
    which a worker thread of a test (engine, writer, network) could trigger and so destroy a
    Qt object off the GUI thread; every test's garbage is collected here, on the main thread.

    With nothing collected while the test ran, nothing it made was promoted: its garbage is all
    in the youngest generation, which is what is collected after each test. The whole heap,
    which grows through the suite (the test process reaches 3.7 GB; a pass over the imports
    alone takes 87 ms here), only every ``WHOLE_HEAP_EVERY`` tests, for cycles through older
    objects."""
    gc.disable()
    yield
    gc.collect(0 if next(_tests_done) % WHOLE_HEAP_EVERY else 2)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Nothing reads or writes the developer's real settings or data."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    yield


@pytest.fixture
def example_caseload_path() -> pathlib.Path:
    return EXAMPLES / "caseload.json"


@pytest.fixture
def example_feed_path() -> pathlib.Path:
    return EXAMPLES / "feed.ndjson"
