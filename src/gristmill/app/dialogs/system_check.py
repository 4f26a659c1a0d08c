"""Help > System Check: what this machine offers, as ``gristmill doctor`` prints it.

A thin view: the text comes from the core (``core.run.doctor.report``), made on a
thread of its own (it runs a few programs for their versions), shown when ready.
"""

from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QPlainTextEdit, QVBoxLayout, QWidget


class _Result(QObject):
    ready = Signal(str)


class SystemCheckDialog(QDialog):
    def __init__(self, report: Callable[[], str], parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("system-check-dialog")
        self.setWindowTitle("System Check")
        self.resize(760, 520)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("system-check-text")
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlainText("Checking what this machine offers…")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(buttons)
        self._result = _Result(self)
        self._result.ready.connect(self.text.setPlainText)
        self.done_event = threading.Event()
        threading.Thread(target=self._check, args=(report,), daemon=True,
                         name="gristmill-system-check").start()

    def _check(self, report: Callable[[], str]) -> None:
        try:
            text = report()
        except Exception as exc:        # a check that cannot be made is told, not raised
            text = f"The system check could not be made: {exc}"
        self._result.ready.emit(text)
        self.done_event.set()
