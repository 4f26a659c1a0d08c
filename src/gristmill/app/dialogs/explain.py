"""Explain: why a task will run, or will not, in plain words."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QTextBrowser, QVBoxLayout, QWidget

from ..explain import explain_html


class ExplainDialog(QDialog):
    """Follows its task live: the window shows it again at each change of the task's
    state and after each scan; the line under the text says when it was last told."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("explain-dialog")
        self.setWindowTitle("Explain")
        self.resize(560, 480)
        self.text = QTextBrowser(self)
        self.text.setOpenLinks(False)
        self.when = QLabel(self)
        self.when.setObjectName("explain-when")
        self.when.setToolTip("Explain follows the task: it changes as the task runs and "
                             "after each scan of the workflow")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(self.when)
        layout.addWidget(buttons)
        self.task: str | None = None
        self.sections: list[tuple[str, str]] = []

    def show_task(self, name: str, sections: list[tuple[str, str]]) -> None:
        if name == self.task and sections == self.sections:
            return
        self.task = name
        self.sections = sections
        self.setWindowTitle(f"Explain — {name}")
        bar = self.text.verticalScrollBar()
        keep = bar.value()
        self.text.setHtml(explain_html(name, sections))
        bar.setValue(keep)
        self.when.setText(f"Live: follows the task · as of {time.strftime('%H:%M:%S')}")
