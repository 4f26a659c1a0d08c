"""Explain: why a task will run, or will not, in plain words."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

from ..explain import explain_html


class ExplainDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("explain-dialog")
        self.setWindowTitle("Explain")
        self.resize(560, 480)
        self.text = QTextBrowser(self)
        self.text.setOpenLinks(False)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self.sections: list[tuple[str, str]] = []

    def show_task(self, name: str, sections: list[tuple[str, str]]) -> None:
        self.sections = sections
        self.setWindowTitle(f"Explain — {name}")
        self.text.setHtml(explain_html(name, sections))
