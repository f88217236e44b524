"""The layout's rules, read from the source: data flows one way (feed → engine → store →
service → ui), no import circles, and each stage imports only what its package docstring says.

Every ``import`` and ``from … import`` of our own modules is read with ``ast`` (imports inside
functions too: a lazy import is still a dependency), resolved to a module file, and checked
against the rules below. The test names the importing file, the line and the rule it breaks.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

from tests.conftest import ROOT

PACKAGES = ("monitorapp", "localdb", "centraldb", "ui")

# Each rule: modules under the first prefix never import modules under any of the others.
FORBIDDEN = {
    # the feed is the bottom of the flow
    "monitorapp.feed": ("monitorapp.engine", "monitorapp.sim", "monitorapp.crime", "monitorapp.service",
                        "monitorapp.cli", "localdb", "centraldb", "ui"),
    # the engine decides on decoded messages: never the MQTT client, the store, the simulator...
    "monitorapp.engine": ("monitorapp.feed.mqttfeed", "monitorapp.feed.mqttconfig", "monitorapp.feed.adapters",
                          "monitorapp.sim", "monitorapp.crime", "monitorapp.service", "monitorapp.cli",
                          "localdb", "centraldb", "ui"),
    # the store imports only what it stores
    "localdb": ("monitorapp.feed.mqttfeed", "monitorapp.feed.mqttconfig", "monitorapp.feed.adapters",
                "monitorapp.feed.decoder", "monitorapp.engine.engine", "monitorapp.engine.state",
                "monitorapp.sim", "monitorapp.crime", "monitorapp.service", "monitorapp.cli", "ui",
                "centraldb"),
    # the PostgreSQL store: the same place in the flow as localdb, whose interface it mirrors
    "centraldb": ("monitorapp.feed.mqttfeed", "monitorapp.feed.mqttconfig", "monitorapp.feed.adapters",
                  "monitorapp.feed.decoder", "monitorapp.engine", "monitorapp.sim", "monitorapp.crime",
                  "monitorapp.service", "monitorapp.cli", "ui"),
    "monitorapp.crime": ("monitorapp.engine.engine", "monitorapp.engine.state", "monitorapp.sim",
                         "monitorapp.service", "monitorapp.cli", "ui"),
    # the simulator is a peer outside the flow, as a gateway is
    "monitorapp.sim": ("monitorapp.engine.engine", "monitorapp.engine.state", "monitorapp.crime",
                       "monitorapp.service", "monitorapp.cli", "localdb", "centraldb", "ui"),
    "monitorapp.service": ("monitorapp.sim", "monitorapp.cli", "ui"),
    "monitorapp": ("ui",),
    # inside the desktop application: base (theme, settings, roles, text) < map < console < views < session < shell
    "ui.map": ("ui.console", "ui.views", "ui.session", "ui.app", "ui.selfcheck"),
    "ui.console": ("ui.views", "ui.session", "ui.app", "ui.selfcheck"),
    "ui.views": ("ui.session", "ui.app", "ui.selfcheck"),
    "ui.session": ("ui.app", "ui.selfcheck"),
    "ui.theme": ("ui.map", "ui.console", "ui.views", "ui.session", "ui.app", "ui.selfcheck"),
    "ui.settings": ("ui.map", "ui.console", "ui.views", "ui.session", "ui.app", "ui.selfcheck"),
    "ui.roles": ("ui.map", "ui.console", "ui.views", "ui.session", "ui.app", "ui.selfcheck"),
    "ui.text": ("ui.map", "ui.console", "ui.views", "ui.session", "ui.app", "ui.selfcheck"),
}


# Each rule: modules under the prefix import, of our own code, only these modules (and their own).
ONLY = {
    # places: Qt-free, a leaf beside the engine: the projection and time helpers, nothing else
    "monitorapp.places": ("monitorapp.places", "monitorapp.engine.geo", "monitorapp.feed.timeutil"),
}


def module_files(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = f
    return mods


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imports_of(name: str, path: pathlib.Path, mods: dict) -> list[tuple[str, int]]:
    """Our modules that ``name`` imports, with the line of each import."""
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import Name` imports mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in mods:          # `import a.b.c` of a module: the longest known prefix
                t = t.rpartition(".")[0]
            if t and t != name and t.split(".")[0] in PACKAGES:
                out.append((t, node.lineno))
    return out


def graph(root: pathlib.Path = ROOT) -> dict[str, list[tuple[str, int]]]:
    mods = module_files(root)
    return {m: imports_of(m, f, mods) for m, f in mods.items()}


def violations(g: dict) -> list[str]:
    found = []
    for mod, deps in g.items():
        for dep, line in deps:
            for src, banned in FORBIDDEN.items():
                if _under(mod, src) and any(_under(dep, b) for b in banned) and not _under(dep, src):
                    found.append(f"{mod} (line {line}) imports {dep}: {src} may not import {banned}")
            for src, allowed in ONLY.items():
                if _under(mod, src) and not any(_under(dep, a) for a in allowed):
                    found.append(f"{mod} (line {line}) imports {dep}: {src} may import only {allowed}")
    return found


def cycles(g: dict) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w, _ in g.get(v, ()):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_against_the_flow():
    assert violations(graph()) == []


def test_no_import_circles():
    assert cycles(graph()) == []


def test_every_subpackage_says_what_it_does_and_may_import():
    for pkg in PACKAGES:
        for init in (ROOT / pkg).rglob("__init__.py"):
            if init.parent == ROOT / pkg:
                continue
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc and "import" in doc, f"{init.relative_to(ROOT)} must say what it does and what it may import"


@pytest.mark.parametrize("src, line, rule", [
    ("monitorapp/engine/engine.py", "from monitorapp.feed.mqttfeed import FeedClient\n", "monitorapp.engine may not"),
    ("monitorapp/engine/rules.py", "def f():\n    from monitorapp.sim import demo\n", "monitorapp.engine may not"),
    ("monitorapp/feed/decoder.py", "import monitorapp.engine.alerts\n", "monitorapp.feed may not"),
    ("localdb/store.py", "from monitorapp.service.monitor import cli_main\n", "localdb may not"),
    ("ui/console/mainwindow.py", "from ui.views import review\n", "ui.console may not"),
    ("ui/map/view.py", "from ui.console.alertmodel import TYPE_TEXT\n", "ui.map may not"),
    ("monitorapp/crime/query.py", "from ui.views.crime import CrimeView\n", "monitorapp.crime may not"),
    ("localdb/store.py", "from centraldb.store import PgStore\n", "localdb may not"),
    ("centraldb/store.py", "from monitorapp.service.monitor import cli_main\n", "centraldb may not"),
    ("centraldb/writer.py", "def f():\n    from monitorapp.engine.engine import Engine\n", "centraldb may not"),
    ("monitorapp/places/streets.py", "from monitorapp.engine.caseload import load_caseload\n",
     "monitorapp.places may import only"),
    ("monitorapp/places/__init__.py", "def f():\n    from monitorapp.sim import demo\n", "monitorapp.places may import only"),
    ("monitorapp/places/build.py", "from ui.map.basemap import MBTilesArchive\n", "monitorapp may not"),
])
def test_the_rules_catch_an_import_against_the_flow(tmp_path, src, line, rule):
    """The check itself fails when someone adds such an import (on a copy of the tree)."""
    import shutil
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    (tmp_path / src).write_text((tmp_path / src).read_text() + "\n" + line)
    found = violations(graph(tmp_path))
    assert any(rule in v and src.replace("/", ".")[:-3].removesuffix(".__init__") in v for v in found), found


def test_a_circle_is_caught(tmp_path):
    import shutil
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    state = tmp_path / "monitorapp/engine/state.py"
    state.write_text(state.read_text() + "\ndef f():\n    from monitorapp.engine.engine import Engine\n")
    assert ["monitorapp.engine.engine", "monitorapp.engine.state"] in cycles(graph(tmp_path))
