"""Renders the application icon ``resources/icons/app-icon.svg`` to the 256 px PNG the desktop
entry, the window and Windows' icon use (``app-icon.png``), with Qt's own SVG renderer, so no
image tool is needed: ``python packaging/make_icon.py``. It also writes the Windows
executable's icon ``packaging/app-icon.ico`` (Qt's ICO writer). Run it after editing the SVG and
commit both files."""
from __future__ import annotations

import os
import pathlib
import sys

ICONS = pathlib.Path(__file__).resolve().parent.parent / "resources" / "icons"
ICO = pathlib.Path(__file__).resolve().parent / "app-icon.ico"
SIZE = 256


def render(svg: pathlib.Path = ICONS / "app-icon.svg", png: pathlib.Path = ICONS / "app-icon.png",
           size: int = SIZE) -> pathlib.Path:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 (fonts, image plugins)
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg}: not a valid SVG")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(png), "PNG"):
        raise SystemExit(f"cannot write {png}")
    if png == ICONS / "app-icon.png":
        ico = image.scaled(128, 128, Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.SmoothTransformation)
        if not ico.save(str(ICO), "ICO"):
            raise SystemExit(f"cannot write {ICO} (Qt's ICO image plugin missing?)")
    return png


if __name__ == "__main__":
    print(render(*[pathlib.Path(a) for a in sys.argv[1:3]]))
