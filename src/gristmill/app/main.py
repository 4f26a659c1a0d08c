"""Start the desktop app: ``run_app(path)`` is what ``gristmill [PATH]`` calls."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication

from gristmill import __version__
from gristmill.core.history import History, HistoryError

from . import icons
from .settings import Settings
from .window import MainWindow


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
    app.setApplicationName("Gristmill")
    app.setApplicationDisplayName("Gristmill")
    app.setOrganizationName("Gristmill")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("gristmill")
    app.setWindowIcon(icons.app_icon())
    return app


def open_history() -> History | None:
    """The run history, or None when it cannot be opened (the app still works without it)."""
    try:
        return History()
    except (HistoryError, OSError, Exception):
        return None


def create_window(path: str | None = None, settings: Settings | None = None,
                  history: History | None = None) -> MainWindow:
    window = MainWindow(settings or Settings(), history)
    window.bench.prune_history()
    window.show()
    if path:
        window.open_path(path)
    return window


def run_app(path: str | None = None) -> int:
    """Open the main window (on ``path`` when given) and run the event loop."""
    app = create_app()
    history = open_history()
    window = create_window(path, history=history)
    code = app.exec()
    window.bench.wait(10)           # a run cancelled at close ends before we leave
    if history is not None:
        history.close()
    return code
