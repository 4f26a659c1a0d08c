"""Start the desktop app: ``run_app(path)`` is what ``gristmill [PATH]`` calls."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Mapping

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QApplication

from gristmill import __version__
from gristmill.core.record.history import History, HistoryError

from . import icons, resources
from .settings import Settings
from .views.welcome import ROLE_PATH
from .window import MainWindow

# Smoke tests of a build (tests/bundle): report on the window, then quit, with no one there.
SMOKE_QUIT_ENV = "GRISTMILL_SMOKE_QUIT_MS"          # quit this many ms after the window shows
SMOKE_SCREENSHOT_ENV = "GRISTMILL_SMOKE_SCREENSHOT"  # and first save the window as this PNG
SMOKE_PREFIX = "gristmill-smoke: "
SMOKE_PLANNER_ENV = "GRISTMILL_SMOKE_PLANNER"      # and open the Capacity Planner (its chart)


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


class HistoryProblems(QObject):
    """What the history said went wrong, for the window: ``told(line, locked)``, emitted
    from whichever thread found it (queued to the window's). The first problem is kept
    for a window made after it."""

    told = Signal(str, bool)

    def __init__(self) -> None:
        super().__init__()
        self.first: tuple[str, bool] | None = None
        self.history: History | None = None

    def tell(self, line: str, locked: bool = False) -> None:
        if self.first is None:
            self.first = (line, locked)
        self.told.emit(line, locked)

    def from_history(self, line: str) -> None:    # History's on_problem
        self.tell(line, bool(self.history is not None and self.history.problem_locked))


def open_history(problems: HistoryProblems | None = None) -> History | None:
    """The run history, or None when it cannot be opened (the app still works without
    it; ``problems`` is told why, in the one line the CLI prints)."""
    try:
        history = History(on_problem=problems.from_history if problems is not None else None)
    except HistoryError as exc:
        if problems is not None:
            problems.tell(str(exc), exc.locked)
        return None
    except (OSError, Exception):
        return None
    if problems is not None:
        problems.history = history
    return history


def create_window(path: str | None = None, settings: Settings | None = None,
                  history: History | None = None,
                  problems: HistoryProblems | None = None) -> MainWindow:
    window = MainWindow(settings or Settings(), history)
    if problems is not None:
        window.watch_history(problems)
    window.bench.prune_history()
    window.show()
    if path:
        window.open_path(path)
    return window


def smoke_report(window: MainWindow) -> dict:
    """What a smoke test checks: the page shown, the examples offered, the workflow opened."""
    examples = window.welcome.examples
    return {
        "title": window.windowTitle(),
        "page": "welcome" if window.stack.currentWidget() is window.welcome else "workbench",
        "examples": [Path(examples.item(i).data(ROLE_PATH)).name for i in range(examples.count())],
        "tasks": window.bench.tasks.rowCount(),
        "window_icon": not window.windowIcon().isNull(),
        "resources": str(resources.resources_dir()),
    }


def arm_smoke_quit(window: MainWindow, environ: Mapping[str, str] = os.environ) -> int | None:
    """With ``GRISTMILL_SMOKE_QUIT_MS=N``, print ``gristmill-smoke: {json}`` (``smoke_report``)
    N ms after the window shows, save a screenshot if ``GRISTMILL_SMOKE_SCREENSHOT`` names a
    PNG, close the window and quit. Returns N, or None when the variable is unset or bad."""
    try:
        ms = int(environ.get(SMOKE_QUIT_ENV, ""))
    except ValueError:
        return None
    if ms < 0:
        return None
    shot = environ.get(SMOKE_SCREENSHOT_ENV)
    planner = bool(environ.get(SMOKE_PLANNER_ENV))

    def report_and_quit() -> None:
        report = smoke_report(window)
        if planner:     # the charting library is in the bundle and draws
            try:
                window.show_planner()
                plot = window.dialogs["planner"].plot
                report["planner"] = type(plot).__name__
                report["planner_drawn"] = not plot.grab().isNull()
            except Exception as exc:      # said in the report, and the app still quits
                report["planner"] = f"{type(exc).__name__}: {exc}"
        if shot:
            report["screenshot"] = window.grab().save(shot)
        print(SMOKE_PREFIX + json.dumps(report), flush=True)
        window.close()
        QApplication.quit()

    QTimer.singleShot(ms, window, report_and_quit)
    return ms


def run_app(path: str | None = None) -> int:
    """Open the main window (on ``path`` when given) and run the event loop."""
    app = create_app()
    problems = HistoryProblems()
    history = open_history(problems)
    window = create_window(path, history=history, problems=problems)
    arm_smoke_quit(window)
    code = app.exec()
    window.bench.wait(10)           # a run cancelled at close ends before we leave
    if window.bench.history is not None:     # the one it has now (moved aside: a new one)
        window.bench.history.close()
    return code
