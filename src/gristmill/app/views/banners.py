"""Banners above the views: the workflow's error (red) and its warnings (yellow, dismissible).

Each draws its own colours, dark text on a light tint, so it reads the same on
light and dark palettes.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from gristmill.core.workflow import WorkflowWarning

SHOWN_WARNINGS = 5       # listed before "Show all"


class ErrorBanner(QFrame):
    """The workflow has an error: the last good state stays; a Reload button."""

    reloadRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("error-banner")
        self.setStyleSheet("#error-banner { background: #f8d7d4; border: 1px solid #d0493e;"
                           " border-radius: 4px; } #error-banner QLabel { color: #5c1610; }")
        self.text = QLabel(self)
        self.text.setObjectName("error-text")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        reload = QPushButton("Reload", self)
        reload.setToolTip("Read the workflow file again (it also reloads when you save it)")
        reload.clicked.connect(self.reloadRequested)
        row = QHBoxLayout(self)
        row.addWidget(self.text, 1)
        row.addWidget(reload)
        self.about_run = False       # it tells of a run (a refusal, a fault), not the file
        self.hide()

    def show_error(self, message: str, count: int = 1, kept: bool = True) -> None:
        """``message``: one error a line (``WorkflowErrors`` lists at most 20 and counts the
        rest); ``count``: how many errors; ``kept``: the last good state is shown."""
        what = "an error" if count == 1 else f"{count} errors"
        state = ("the last good state is shown" if kept else
                 "nothing of it can be shown until it loads")
        self.about_run = False
        lines = "<br>".join(f"<code>{html.escape(line)}</code>" for line in message.splitlines())
        self.text.setText(f"<b>The workflow has {what}</b> — {state}; it reloads when the "
                          f"file is fixed.<br>{lines}")
        self.show()

    def show_refusal(self, message: str) -> None:
        """A run that could not start (another run of the workflow holds its lock, an
        unreachable scheduler, a cluster's settings or package)."""
        self.show_run_fault("The run did not start", message)

    def show_run_fault(self, title: str, message: str) -> None:
        """About a run, not the workflow: hidden when the next run starts."""
        self.about_run = True
        self.text.setText(f"<b>{html.escape(title)}</b><br>{html.escape(message)}")
        self.show()

    def hide_run_fault(self) -> None:
        if self.about_run:
            self.hide()


def describe_warning(warning: WorkflowWarning, root: Path | None) -> str:
    """``gristmill.toml:3:11: message``, with the path relative to the workflow's folder."""
    loc = warning.location
    if loc is None:
        return warning.message
    path = loc.path
    if root is not None and os.path.isabs(path):
        try:
            path = os.path.relpath(path, root)
        except ValueError:
            pass
        if path.startswith(".."):
            path = loc.path
    return f"{path}:{loc.line}:{loc.col}: {warning.message}"


class WarningBanner(QFrame):
    """The workflow loaded with warnings: how many, and what they say. Dismiss hides them
    until the warnings change (a reload with the same warnings stays quiet)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("warning-banner")
        self.setStyleSheet("#warning-banner { background: #fff3cd; border: 1px solid #d9a21b;"
                           " border-radius: 4px; } #warning-banner QLabel { color: #4d3800; }"
                           " #warning-banner QToolButton { color: #4d3800; }")
        self.title = QLabel(self)
        self.title.setObjectName("warning-title")
        self.list = QLabel(self)
        self.list.setObjectName("warning-list")
        self.list.setWordWrap(True)
        self.list.setTextFormat(Qt.TextFormat.RichText)
        self.list.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.more = QToolButton(self)
        self.more.setObjectName("warning-more")
        self.more.setAutoRaise(True)
        self.more.setToolTip("List every warning")
        self.dismiss = QToolButton(self)
        self.dismiss.setObjectName("warning-dismiss")
        self.dismiss.setText("✕")
        self.dismiss.setAutoRaise(True)
        self.dismiss.setToolTip("Dismiss: hide these warnings until they change")
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title, 1)
        head.addWidget(self.more)
        head.addWidget(self.dismiss, 0, Qt.AlignmentFlag.AlignTop)
        column = QVBoxLayout(self)
        column.setContentsMargins(8, 4, 4, 6)
        column.setSpacing(2)
        column.addLayout(head)
        column.addWidget(self.list)
        self.lines: list[str] = []
        self._expanded = False
        self._dismissed: tuple = ()
        self._key: tuple = ()
        self.more.clicked.connect(self._toggle)
        self.dismiss.clicked.connect(self._dismiss)
        self.hide()

    def set_warnings(self, key: object, warnings: Sequence[WorkflowWarning], root: Path | None) -> None:
        """Show these warnings of the workflow ``key`` (its path), unless this same set was dismissed."""
        self.lines = [describe_warning(w, root) for w in warnings]
        self._key = (key, tuple(self.lines))
        self._expanded = False
        if not self.lines or self._key == self._dismissed:
            self.hide()
            return
        n = len(self.lines)
        self.title.setText(f"<b>⚠ {n} warning{'s' if n != 1 else ''}</b> — the workflow loaded, "
                           f"but {'these need' if n != 1 else 'this needs'} a look:")
        self._fill()
        self.show()

    def _fill(self) -> None:
        shown = self.lines if self._expanded else self.lines[:SHOWN_WARNINGS]
        self.list.setText("<br>".join(f"• {html.escape(line)}" for line in shown))
        self.list.setToolTip("\n".join(self.lines))
        hidden = len(self.lines) - SHOWN_WARNINGS
        self.more.setVisible(hidden > 0)
        self.more.setText("Show fewer" if self._expanded else f"Show all {len(self.lines)}")

    def _toggle(self) -> None:
        self._expanded = not self._expanded
        self._fill()

    def _dismiss(self) -> None:
        self._dismissed = self._key
        self.hide()

    def clear(self) -> None:
        self.lines = []
        self._key = ()
        self.hide()


class HistoryBanner(QFrame):
    """The run history cannot be used (damaged, read-only, full, locked): the app goes on
    without it, says so once, and, unless another process merely holds it, offers to
    move the file aside and start a new history (nothing of the old one is deleted)."""

    moveAsideRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("history-banner")
        self.setStyleSheet("#history-banner { background: #fdf1d6; border: 1px solid #c9a33a;"
                           " border-radius: 4px; } #history-banner QLabel { color: #4d3b08; }")
        self.text = QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.move_aside = QPushButton("Move Aside && Start a New History", self)
        self.move_aside.setToolTip("Rename the history file (it is kept, not deleted) and "
                                   "record runs in a new one from now on")
        self.move_aside.clicked.connect(self.moveAsideRequested)
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Hide; runs go on without history")
        close.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.addWidget(self.text, 1)
        row.addWidget(self.move_aside)
        row.addWidget(close)
        self.hide()

    def show_problem(self, line: str, locked: bool) -> None:
        self.text.setText(f"<b>Run history is not being kept</b><br>{html.escape(line)}")
        self.move_aside.setVisible(not locked)
        self.show()
