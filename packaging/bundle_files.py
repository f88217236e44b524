"""Which of our files go into the PyInstaller bundle, and which of Qt's collected data stay.

Used by ``packaging/monitorapp.spec`` (and its tests). Each function returns PyInstaller
``datas`` pairs: ``(source file, destination folder inside the bundle)``; destinations mirror
the source tree under ``resources/`` so that code finding files relative to its own module
(``ui.map.scheme.WEB_DIR``) or through ``ui.selfcheck.resource_path`` finds them in the bundle.

* ``web_assets(root)``: the map page's assets: ``resources/web/manifest.json``, our own files
  it lists, the npm files it lists, whatever their CSS loads with ``url(...)`` (Leaflet's
  ``images/``), and each npm package's licence. Not the rest of ``node_modules``.
* ``resources(root)``: ``resources/icons``, ``resources/sounds`` and ``resources/basemap`` (the
  offline vector basemap of London, its borough boundaries and streets index: the map, the
  addresses and the search need them; about 3 MB).
* ``places_profile(root)``: the tilemaker profile of ``monitorapp basemap build``
  (``monitorapp/places/profile``), so a bundled console rebuilds a centre's own basemap.
* ``install_files(root)``: the desktop entry, ``install.sh``, and ``syslibs.sh`` with the
  Debian packages it installs (``debian-runtime-packages.txt``), into ``_internal/packaging``,
  so a copied bundle can install itself and the system libraries its Qt needs.
* ``keep_data(dest)``: drops Chromium locales and Qt translations an English console never
  loads (about 60 MB).

Only the standard library is used: the spec runs inside PyInstaller, the tests from source.
"""
from __future__ import annotations

import json
import os
import re

# Chromium's UI strings for these locales only (the console is in English; each locale is
# ~0.8 MB and there are 55): QtWebEngine falls back to en-US for any other system locale.
WEBENGINE_LOCALES = ("en-US.pak", "en-GB.pak")
# Qt's own translations (*.qm): only the English ones.
KEEP_QT_TRANSLATIONS = ("_en.qm",)
WEB_DEST = os.path.join("resources", "web")

_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


class MissingWebAssets(RuntimeError):
    """A file the manifest names is not in node_modules (``make web`` installs them)."""


def _split(rel: str) -> list[str]:
    return [p for p in rel.split("/") if p]


def css_references(pkg_dir: str, css_rel: str) -> set[str]:
    """Files (relative to the package, with /) a stylesheet loads with ``url(...)``; data:
    URIs, #fragments and remote URLs are not files and are skipped."""
    with open(os.path.join(pkg_dir, *_split(css_rel)), encoding="utf-8") as fh:
        text = fh.read()
    base = os.path.dirname(css_rel)
    out = set()
    for ref in _CSS_URL.findall(text):
        ref = ref.strip()
        if ref.startswith(("data:", "#", "%23", "http:", "https:", "//")):
            continue
        ref = ref.split("?")[0].split("#")[0]
        rel = os.path.normpath(os.path.join(base, ref)).replace(os.sep, "/")
        if not rel.startswith(".."):
            out.add(rel)
    return out


def web_assets(root: str) -> list[tuple[str, str]]:
    """The map page's files (see the module docstring); raises MissingWebAssets naming every
    file the manifest lists that is not there."""
    web = os.path.join(root, "resources", "web")
    with open(os.path.join(web, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    pairs = [(os.path.join(web, "manifest.json"), WEB_DEST)]
    missing = []
    for kind in ("css", "js"):
        for rel in manifest["own"].get(kind, []):
            src = os.path.join(web, *_split(rel))
            if not os.path.isfile(src):
                missing.append(src)
            pairs.append((src, os.path.join(WEB_DEST, *_split(os.path.dirname(rel)))))
    for package, files in manifest["packages"].items():
        pkg_dir = os.path.join(web, "node_modules", *_split(package))
        dest_pkg = os.path.join(WEB_DEST, "node_modules", *_split(package))
        wanted = set()
        for kind in ("css", "js"):
            for rel in files.get(kind, []):
                wanted.add(rel)
                if kind == "css" and os.path.isfile(os.path.join(pkg_dir, *_split(rel))):
                    wanted |= css_references(pkg_dir, rel)
        if os.path.isdir(pkg_dir):
            wanted |= {n for n in os.listdir(pkg_dir) if n.upper().startswith(("LICENSE", "LICENCE"))}
        for rel in sorted(wanted):
            src = os.path.join(pkg_dir, *_split(rel))
            if not os.path.isfile(src):
                missing.append(src)
                continue
            pairs.append((src, os.path.join(dest_pkg, *_split(os.path.dirname(rel)))))
    if missing:
        raise MissingWebAssets("map web assets missing (run `make web`): " + ", ".join(missing))
    return pairs


def resources(root: str) -> list[tuple[str, str]]:
    pairs = []
    for sub in ("icons", "sounds", "basemap"):
        folder = os.path.join(root, "resources", sub)
        for name in sorted(os.listdir(folder)):
            if os.path.isfile(os.path.join(folder, name)):
                pairs.append((os.path.join(folder, name), os.path.join("resources", sub)))
    return pairs


def places_profile(root: str) -> list[tuple[str, str]]:
    folder = os.path.join(root, "monitorapp", "places", "profile")
    dest = os.path.join("monitorapp", "places", "profile")
    return [(os.path.join(folder, name), dest) for name in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, name))]


def install_files(root: str) -> list[tuple[str, str]]:
    return [(os.path.join(root, "packaging", name), "packaging")
            for name in ("monitorapp.desktop", "install.sh", "syslibs.sh", "debian-runtime-packages.txt")]


def keep_data(dest: str) -> bool:
    """False for Qt data an English console never loads (other locales and translations)."""
    parts = dest.replace("\\", "/").split("/")
    if "qtwebengine_locales" in parts:
        return parts[-1] in WEBENGINE_LOCALES
    if parts[-1].endswith(".qm") and "translations" in parts:
        return parts[-1].endswith(KEEP_QT_TRANSLATIONS)
    return True
