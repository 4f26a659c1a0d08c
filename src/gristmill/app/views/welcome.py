"""The welcome view: open a folder, a recent workflow, or a bundled example."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QGridLayout, QLabel, QListView, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QHBoxLayout, QWidget)

from .. import icons

ROLE_PATH = Qt.ItemDataRole.UserRole + 1


def describe_example(folder: Path) -> str:
    """The first sentence of the leading comment of the example's workflow file."""
    for name in ("gristmill.toml", "Makefile", "gristmill.json"):
        try:
            lines = (folder / name).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        text = []
        for line in lines:
            if not line.startswith("#"):
                break
            text.append(line.lstrip("#").strip())
        blurb = " ".join(t for t in text if t).split(". ")[0].split(":")[0]
        if len(blurb) > 140:               # a long first sentence ends at a word, said so
            blurb = blurb[:140].rsplit(" ", 1)[0] + "…"
        return blurb
    return ""


class WelcomeView(QWidget):
    openFolderRequested = Signal()
    openFileRequested = Signal()
    openPathRequested = Signal(str)
    openExampleRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("welcome")
        self._init_widgets()
        self._connect_signals()

    def _init_widgets(self) -> None:
        logo = QLabel(self)
        logo.setPixmap(icons.app_icon().pixmap(72, 72))
        title = QLabel("<span style='font-size:20pt; font-weight:600'>Gristmill</span>", self)
        tagline = QLabel("Open a folder with a gristmill.toml, gristmill.json or Makefile to see "
                         "its tasks, run them, and find out why they ran.", self)
        tagline.setWordWrap(True)
        self.open_folder = QPushButton(icons.icon("open"), "Open Folder…", self)
        self.open_folder.setToolTip("Open a folder that holds a workflow (Ctrl+O)")
        self.open_folder.setDefault(True)
        self.open_file = QPushButton("Open Workflow File…", self)
        self.open_file.setToolTip("Open a gristmill.toml, gristmill.json or Makefile")
        self.recent = QListWidget(self)
        self.recent.setObjectName("welcome-recent")
        self.recent.setToolTip("Double-click or press Enter to open")
        self.examples = QListWidget(self)
        self.examples.setObjectName("welcome-examples")
        self.examples.setToolTip("Opens a copy you can change and run")
        self.recent_empty = QLabel("No recent workflows yet.", self)
        self.recent_empty.setEnabled(False)

        head = QHBoxLayout()
        head.addWidget(logo)
        text = QVBoxLayout()
        text.addWidget(title)
        text.addWidget(tagline)
        head.addLayout(text, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_folder)
        buttons.addWidget(self.open_file)
        buttons.addStretch(1)
        lists = QGridLayout()
        lists.addWidget(QLabel("<b>Recent</b>", self), 0, 0)
        lists.addWidget(QLabel("<b>Examples</b>", self), 0, 1)
        lists.addWidget(self.recent, 1, 0)
        lists.addWidget(self.recent_empty, 2, 0)
        lists.addWidget(self.examples, 1, 1)
        lists.setColumnStretch(0, 3)
        lists.setColumnStretch(1, 2)

        for lst in (self.recent, self.examples):
            lst.setMaximumHeight(260)
            lst.setAlternatingRowColors(True)
            lst.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.recent.setTextElideMode(Qt.TextElideMode.ElideMiddle)   # a long path keeps its end
        self.examples.setWordWrap(True)                              # a blurb is read whole
        self.examples.setResizeMode(QListView.ResizeMode.Adjust)
        self.examples.setSpacing(3)                                  # wrapped items stay apart
        card = QFrame(self)
        card.setObjectName("welcome-card")
        card.setMaximumWidth(820)
        inner = QVBoxLayout(card)
        inner.setSpacing(14)
        inner.addLayout(head)
        inner.addLayout(buttons)
        inner.addLayout(lists)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 4)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    def _connect_signals(self) -> None:
        self.open_folder.clicked.connect(self.openFolderRequested)
        self.open_file.clicked.connect(self.openFileRequested)
        self.recent.itemActivated.connect(lambda item: self.openPathRequested.emit(item.data(ROLE_PATH)))
        self.examples.itemActivated.connect(
            lambda item: self.openExampleRequested.emit(item.data(ROLE_PATH)))

    def set_recent(self, paths: Sequence[str]) -> None:
        self.recent.clear()
        for p in paths:
            path = Path(p)
            item = QListWidgetItem(str(path))        # the full path: two "src/Makefile" differ
            item.setToolTip(str(path))
            item.setData(ROLE_PATH, str(path))
            self.recent.addItem(item)
        self.recent_empty.setVisible(not paths)

    def set_examples(self, folders: Sequence[Path], copies: Path | None = None) -> None:
        """``copies``: the folder the examples' writable copies go to (said in each tooltip)."""
        self.examples.clear()
        for folder in folders:
            blurb = describe_example(folder)
            item = QListWidgetItem(f"{folder.name} — {blurb}" if blurb else folder.name)
            where = f" (in {copies / folder.name})" if copies is not None else ""
            item.setToolTip(f"Opens a copy of the bundled example “{folder.name}”{where} "
                            "that you can change and run")
            item.setData(ROLE_PATH, str(folder))
            self.examples.addItem(item)
