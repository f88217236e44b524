"""What the bundle is made of, checked without building it: the map's web assets the spec
selects, the Qt data it trims, the desktop entry and the application icon."""
from __future__ import annotations

import configparser
import importlib.util
import os
import pathlib
import shutil
import subprocess

import pytest

from ui.map.page import asset_urls, load_manifest
from ui.map.scheme import WEB_DIR

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"


def load_bundle_files():
    # packaging/ is not a Python package (the name would shadow PyPI's `packaging`)
    spec = importlib.util.spec_from_file_location("bundle_files", PACKAGING / "bundle_files.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bundle_files = load_bundle_files()


def bundled(pairs) -> set[str]:
    """Bundle-relative paths (with /) of (source, destination folder) pairs."""
    return {pathlib.PurePath(dest, pathlib.Path(src).name).as_posix() for src, dest in pairs}


def test_every_asset_the_map_page_loads_is_bundled():
    files = bundled(bundle_files.web_assets(str(ROOT)))
    css, js = asset_urls(load_manifest(), WEB_DIR)
    for url in css + js:
        if url.startswith("emapp://map/vendor/"):
            assert "resources/web/node_modules/" + url[len("emapp://map/vendor/"):] in files, url
        elif url.startswith("emapp://map/app/"):
            assert "resources/web/" + url[len("emapp://map/app/"):] in files, url
        else:
            assert url.startswith("qrc:"), url       # Qt's qwebchannel.js lives inside Qt
    assert "resources/web/manifest.json" in files


def test_stylesheet_images_and_licences_come_along_but_not_the_rest_of_node_modules():
    files = bundled(bundle_files.web_assets(str(ROOT)))
    assert "resources/web/node_modules/leaflet/dist/images/layers.png" in files
    assert "resources/web/node_modules/leaflet/dist/images/marker-icon.png" in files
    assert "resources/web/node_modules/leaflet/LICENSE" in files
    vendored = {f.split("/")[3] if not f.split("/")[3].startswith("@") else "/".join(f.split("/")[3:5])
                for f in files if f.startswith("resources/web/node_modules/")}
    assert vendored == set(load_manifest()["packages"])
    assert not any(f.endswith((".map", ".d.ts", "package.json")) for f in files)
    on_disk = sum(1 for p in (WEB_DIR / "node_modules").rglob("*") if p.is_file())
    assert len(files) < on_disk / 10


def test_css_references_skip_inline_and_remote_urls(tmp_path):
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "x.css").write_text(
        ".a{background:url(images/a.png)} .b{background:url('../img/b.svg?v=2#top')}"
        ".c{behavior:url(#default#VML)} .d{background:url(\"data:image/svg+xml,<svg/>\")}"
        ".e{background:url(https://cdn.example/x.png)} .f{mask:url(%23mask)}"
        ".g{background:url(../../outside.png)}")
    assert bundle_files.css_references(str(tmp_path), "dist/x.css") == {"dist/images/a.png", "img/b.svg"}


def test_missing_web_assets_are_named(tmp_path):
    web = tmp_path / "resources" / "web"
    web.mkdir(parents=True)
    shutil.copy(WEB_DIR / "manifest.json", web / "manifest.json")
    for own in ("map.css", "map-basemap.js", "map-layers.js", "bridge.js"):
        shutil.copy(WEB_DIR / own, web / own)
    with pytest.raises(bundle_files.MissingWebAssets, match=r"make web") as err:
        bundle_files.web_assets(str(tmp_path))
    named = str(err.value)
    assert os.path.join("node_modules", "leaflet", "dist", "leaflet.js") in named
    assert "bridge.js" not in named


def test_qt_data_is_trimmed_to_english():
    keep = bundle_files.keep_data
    assert keep(os.path.join("PySide6", "Qt", "translations", "qtwebengine_locales", "en-US.pak"))
    assert keep(os.path.join("PySide6", "Qt", "translations", "qtwebengine_locales", "en-GB.pak"))
    assert not keep(os.path.join("PySide6", "Qt", "translations", "qtwebengine_locales", "de.pak"))
    assert keep("PySide6\\Qt\\translations\\qtbase_en.qm")                 # Windows separators
    assert not keep("PySide6/Qt/translations/qtbase_fr.qm")
    assert keep(os.path.join("PySide6", "Qt", "resources", "qtwebengine_resources.pak"))
    assert keep(os.path.join("resources", "web", "manifest.json"))


def test_resources_and_install_files_are_bundled():
    files = bundled(bundle_files.resources(str(ROOT)) + bundle_files.install_files(str(ROOT)))
    for f in ("resources/sounds/alert.wav", "resources/icons/app-icon.png", "resources/icons/app-icon.svg",
              "packaging/monitorapp.desktop", "packaging/install.sh", "packaging/syslibs.sh",
              "packaging/debian-runtime-packages.txt"):
        assert f in files


def test_basemap_and_places_profile_are_bundled_and_packaged():
    files = bundled(bundle_files.resources(str(ROOT)) + bundle_files.places_profile(str(ROOT)))
    for f in ("resources/basemap/london.mbtiles", "resources/basemap/london.boroughs.geojson",
              "resources/basemap/london.streets.npz", "resources/basemap/README.md",
              "monitorapp/places/profile/config.json", "monitorapp/places/profile/process.lua"):
        assert f in files, f
    # the bundle finds them where the code looks, relative to its modules
    from monitorapp.places import SHIPPED_BASEMAP
    from monitorapp.places.build import PROFILE
    from ui.map.basemap import SHIPPED_BASEMAP as MAP_BASEMAP
    assert SHIPPED_BASEMAP.relative_to(ROOT).as_posix() == "resources/basemap/london.mbtiles" == \
        MAP_BASEMAP.relative_to(ROOT).as_posix()
    assert PROFILE.relative_to(ROOT).as_posix() == "monitorapp/places/profile"
    spec = (PACKAGING / "monitorapp.spec").read_text(encoding="utf-8")
    assert "places_profile(ROOT)" in spec and "resources(ROOT)" in spec
    import tomllib
    with open(ROOT / "pyproject.toml", "rb") as fh:
        package_data = tomllib.load(fh)["tool"]["setuptools"]["package-data"]
    assert package_data["monitorapp.places"] == ["profile/*"]


def read_desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(PACKAGING / "monitorapp.desktop", encoding="utf-8")
    return parser["Desktop Entry"]


def test_desktop_entry_starts_the_installed_bundle():
    entry = read_desktop_entry()
    assert entry["Type"] == "Application"
    assert entry["Exec"] == "/opt/monitorapp/monitorapp"
    assert entry["Icon"] == "monitorapp"
    assert entry["Terminal"] == "false"
    assert "Monitor" in entry["Categories"].split(";")
    assert entry["Name"]


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate not installed (apt-get install desktop-file-utils)")
def test_desktop_entry_passes_desktop_file_validate():
    proc = subprocess.run(["desktop-file-validate", str(PACKAGING / "monitorapp.desktop")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_application_icon_is_a_256_px_png_and_a_valid_svg(qapp):
    from PySide6.QtGui import QImage
    from PySide6.QtSvg import QSvgRenderer
    png = QImage(str(ROOT / "resources" / "icons" / "app-icon.png"))
    assert (png.width(), png.height()) == (256, 256)
    assert png.hasAlphaChannel() and png.pixelColor(0, 0).alpha() == 0      # transparent corners
    assert png.pixelColor(128, 60).saturation() < 60                       # a calm grey pin
    svg = QSvgRenderer(str(ROOT / "resources" / "icons" / "app-icon.svg"))
    assert svg.isValid() and svg.defaultSize().width() == 256
    ico = QImage(str(PACKAGING / "app-icon.ico"))
    assert not ico.isNull()
