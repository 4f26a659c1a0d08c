"""Run History: past runs with outcome and duration; open one to see its timeline and logs."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel,
                               QPushButton, QTableView, QVBoxLayout, QWidget)

from gristmill.core.record.history import RunRecord

from ..models.history import ROLE_RUN_ID, RunHistoryModel


class RunHistoryDialog(QDialog):
    openRun = Signal(str)
    refreshRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("history-dialog")
        self.setWindowTitle("Run History")
        self.resize(760, 420)
        self.model = RunHistoryModel(self)
        self.view = QTableView(self)
        self.view.setModel(self.model)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setShowGrid(False)
        self.view.verticalHeader().hide()
        self.view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.view.horizontalHeader().setStretchLastSection(True)
        self.empty = QLabel("No runs recorded yet.", self)
        self.empty.setEnabled(False)
        buttons = QDialogButtonBox(self)
        self.open_button = buttons.addButton("Open", QDialogButtonBox.ButtonRole.AcceptRole)
        self.open_button.setToolTip("Show this run's timeline and logs")
        self.refresh_button = QPushButton("Refresh", self)
        buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(self.empty)
        layout.addWidget(buttons)
        self.open_button.clicked.connect(self._open_selected)
        self.refresh_button.clicked.connect(self.refreshRequested)
        self.view.doubleClicked.connect(lambda index: self._open(index.data(ROLE_RUN_ID)))
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)

    def set_runs(self, runs: Sequence[RunRecord]) -> None:
        self.model.set_runs(runs)
        self.empty.setVisible(not runs)
        if runs:
            self.view.selectRow(0)
        self._update_buttons()

    def _update_buttons(self, *_args) -> None:
        self.open_button.setEnabled(bool(self.view.selectionModel().selectedRows()))

    def _open_selected(self) -> None:
        rows = self.view.selectionModel().selectedRows()
        if rows:
            self._open(rows[0].data(ROLE_RUN_ID))

    def _open(self, run_id: str | None) -> None:
        if run_id:
            self.openRun.emit(run_id)
            self.accept()
