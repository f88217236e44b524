"""Builds the map page once, with folium, pointing only at local assets.

folium writes a Leaflet page whose ``<script>``/``<link>`` tags name CDNs; we give the map our
own ``default_js``/``default_css`` (Leaflet from ``node_modules`` via ``emapp://``), add Geoman,
Qt's ``qwebchannel.js`` and our scripts from ``resources/web/manifest.json``, and finally refuse
to return a page that still names any remote URL. The page is generated once per view, never
per update: live data goes through the bridge (``ui.map.view``).
"""
from __future__ import annotations

import json
import pathlib
import re

import folium
from branca.element import Element, MacroElement
from jinja2 import Template

from ui.map.scheme import WEB_DIR

MANIFEST = WEB_DIR / "manifest.json"

# The eight North/East London boroughs of the demo caseload, at approximate centres: drawn by
# the fallback basemap so an operator without tiles still knows where a marker is.
BOROUGHS = [
    {"name": "Camden", "lat": 51.5517, "lon": -0.1588},
    {"name": "Enfield", "lat": 51.6538, "lon": -0.0799},
    {"name": "Haringey", "lat": 51.5892, "lon": -0.1091},
    {"name": "Islington", "lat": 51.5465, "lon": -0.1058},
    {"name": "Hackney", "lat": 51.5490, "lon": -0.0550},
    {"name": "Newham", "lat": 51.5255, "lon": 0.0352},
    {"name": "Tower Hamlets", "lat": 51.5150, "lon": -0.0300},
    {"name": "Waltham Forest", "lat": 51.5908, "lon": -0.0134},
]
DEFAULT_CENTRE = (51.570, -0.065)
DEFAULT_ZOOM = 12

_REMOTE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


class WebAssetsMissing(RuntimeError):
    """node_modules lacks a file the page needs; ``make web`` installs them."""


def load_manifest(path: pathlib.Path = MANIFEST) -> dict:
    with open(path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    for key in ("packages", "own"):
        if key not in manifest:
            raise WebAssetsMissing(f"{path}: manifest lacks {key!r}")
    return manifest


def asset_urls(manifest: dict, web_dir: pathlib.Path = WEB_DIR) -> tuple[list[str], list[str]]:
    """(css urls, js urls) in load order, after checking every local file exists."""
    css: list[str] = []
    js: list[str] = []
    missing: list[str] = []
    for package, files in manifest["packages"].items():
        for kind, out in (("css", css), ("js", js)):
            for rel in files.get(kind, []):
                if not (web_dir / "node_modules" / package / rel).is_file():
                    missing.append(f"node_modules/{package}/{rel}")
                out.append(f"emapp://map/vendor/{package}/{rel}")
    js.extend(manifest.get("qt", {}).get("js", []))
    for kind, out in (("css", css), ("js", js)):
        for rel in manifest["own"].get(kind, []):
            if not (web_dir / rel).is_file():
                missing.append(rel)
            out.append(f"emapp://map/app/{rel}")
    if missing:
        raise WebAssetsMissing(
            f"map web assets missing under {web_dir}: {', '.join(missing)}; run `make web`"
        )
    return css, js


class _InitScript(MacroElement):
    """Calls ``EM.init(map, options)`` right after folium has created the Leaflet map."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            EM.init({{ this._parent.get_name() }}, {{ this.options_json }});
        {% endmacro %}
    """)

    def __init__(self, options: dict):
        super().__init__()
        self._name = "EmInit"
        self.options_json = json.dumps(options)


def build_page(theme: str = "light", centre: tuple[float, float] = DEFAULT_CENTRE,
               zoom: int = DEFAULT_ZOOM, web_dir: pathlib.Path = WEB_DIR,
               manifest: dict | None = None) -> str:
    """The complete HTML of the map page (no remote URL in it)."""
    manifest = manifest if manifest is not None else load_manifest(web_dir / "manifest.json")
    css, js = asset_urls(manifest, web_dir)
    m = folium.Map(
        location=list(centre),
        zoom_start=zoom,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
        zoom_control=True,
        fade_animation=False,      # calm, and removed labels go at once
    )
    # In manifest order: Leaflet first (folium's map script and Geoman need it).
    m.default_js = [(f"js{i}", url) for i, url in enumerate(js)]
    m.default_css = [(f"css{i}", url) for i, url in enumerate(css)]
    m.get_root().header.add_child(Element('<meta name="color-scheme" content="light dark">'))
    m.add_child(_InitScript({"theme": theme, "boroughs": BOROUGHS}))
    html = m.get_root().render()
    html = html.replace("<body>", f'<body class="theme-{theme}">', 1)
    remote = _REMOTE.search(html)
    if remote:
        raise WebAssetsMissing(f"the map page still names a remote URL near {html[remote.start():remote.start() + 80]!r}")
    return html
