"""Help: the user guide and the About box."""

from __future__ import annotations

import platform

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QTextBrowser,
                               QVBoxLayout, QWidget)

from gristmill import __version__

from .. import icons
from ..guide import USER_GUIDE


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("about-dialog")
        self.setWindowTitle("About Gristmill")
        logo = QLabel(self)
        logo.setPixmap(icons.app_icon().pixmap(96, 96))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        text = QLabel(
            f"<h2>Gristmill {__version__}</h2>"
            "<p>A desktop workbench for multi-step work: builds, data pipelines,<br>"
            "experiment sweeps. It runs workflows incrementally and in parallel,<br>"
            "packing each task by the CPU, memory and GPU it declares.</p>"
            f"<p><small>Python {platform.python_version()} · Qt {qVersion()} · "
            f"PySide6 {pyside_version}<br>MIT licence</small></p>", self)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        row = QHBoxLayout()
        row.addWidget(logo)
        row.addWidget(text, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(buttons)


class UserGuideDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("guide-dialog")
        self.setWindowTitle("Gristmill User Guide")
        self.resize(680, 620)
        self.text = QTextBrowser(self)
        self.text.setOpenExternalLinks(True)
        self.text.setMarkdown(USER_GUIDE)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
