"""Icons from ``resources/icons``: SVGs drawn with ``currentColor`` take the palette's text colour."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication, QStyle

from .resources import icon_path

APP_ICON = "gristmill.svg"
SIZES = (16, 22, 24, 32, 48)

# Fallbacks from the style when the resources folder is not shipped.
_FALLBACK = {
    "run": QStyle.StandardPixmap.SP_MediaPlay,
    "run-selected": QStyle.StandardPixmap.SP_MediaPlay,
    "force": QStyle.StandardPixmap.SP_MediaSeekForward,
    "cancel": QStyle.StandardPixmap.SP_MediaStop,
    "open": QStyle.StandardPixmap.SP_DirOpenIcon,
    "reload": QStyle.StandardPixmap.SP_BrowserReload,
    "plan": QStyle.StandardPixmap.SP_FileDialogDetailedView,
    "clean": QStyle.StandardPixmap.SP_TrashIcon,
    "history": QStyle.StandardPixmap.SP_FileDialogInfoView,
    "explain": QStyle.StandardPixmap.SP_MessageBoxQuestion,
}


def _render(svg: bytes, sizes: tuple[int, ...] = SIZES) -> QIcon:
    renderer = QSvgRenderer(QByteArray(svg))
    icon = QIcon()
    if not renderer.isValid():
        return icon
    for size in sizes:
        pm = QPixmap(size, size)
        pm.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pm)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        icon.addPixmap(pm)
    return icon


@lru_cache(maxsize=None)
def _icon(name: str, color: str) -> QIcon:
    path = icon_path(f"{name}.svg")
    if path is None:
        app = QApplication.instance()
        sp = _FALLBACK.get(name)
        if app is None or sp is None:
            return QIcon()
        return app.style().standardIcon(sp)
    svg = path.read_bytes().replace(b"currentColor", color.encode())
    return _render(svg)


def icon(name: str) -> QIcon:
    """An action icon by name (``run``, ``cancel``, ...), tinted for the current palette."""
    app = QApplication.instance()
    palette = app.palette() if app is not None else QPalette()
    return _icon(name, palette.color(QPalette.ColorRole.WindowText).name())


APP_ICON_SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 128, 256, 512)


def app_icon() -> QIcon:
    """The window icon: the pre-rendered sizes (a simpler drawing below 32 px)."""
    icon = QIcon()
    for size in APP_ICON_SIZES:
        png = icon_path(f"app/gristmill-{size}.png")
        if png is not None:
            icon.addFile(str(png))
    if not icon.isNull():
        return icon
    path = icon_path(APP_ICON)
    if path is None:
        return QIcon()
    return _render(path.read_bytes(), (16, 24, 32, 48, 64, 128, 256))


def clear_cache() -> None:
    """Call after the palette changes."""
    _icon.cache_clear()
