"""Tools > Workers: the cluster's workers, each with its resources, what it runs now and
its health (the bad-worker ejection and the circuit breaker of ``WorkerHealth``), with
buttons to take one out of rotation or put it back by hand; a session cluster's lifetime.

It reads ``Compute`` (the app's seam to Dask) on a thread, once a second while shown."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from gristmill.core.sizes import format_size

from ..compute import CLUSTER, Compute, WorkerRow

COLUMNS = ("Worker", "CPU", "Memory", "GPU", "Running now", "Health")
POLL_MS = 1000


def health_words(row: WorkerRow) -> str:
    return f"out of rotation: {row.why}" if row.out else "in rotation"


class WorkersDialog(QDialog):
    _read = Signal(object)          # (list[WorkerRow] | None, error text)

    def __init__(self, compute: Compute, parent: QWidget | None = None):
        super().__init__(parent)
        self.compute = compute
        self.setObjectName("workers-dialog")
        self.setWindowTitle("Workers")
        self.resize(820, 320)
        self.rows: list[WorkerRow] = []
        self._reading = False
        self.where = QLabel(self)
        self.where.setObjectName("workers-where")
        self.where.setWordWrap(True)
        self.lifetime = QLabel(self)
        self.lifetime.setObjectName("workers-lifetime")
        self.lifetime.setWordWrap(True)
        self.breaker = QLabel(self)
        self.breaker.setObjectName("workers-breaker")
        self.breaker.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setObjectName("workers-table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.take_out = QPushButton("Take Out of Rotation", self)
        self.take_out.setObjectName("workers-take-out")
        self.take_out.setToolTip("Send no more of this run's tasks to the selected worker; "
                                 "what runs there now runs on")
        self.put_back = QPushButton("Put Back", self)
        self.put_back.setObjectName("workers-put-back")
        self.put_back.setToolTip("The selected worker gets tasks again, its strikes forgotten")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.take_out)
        buttons.addWidget(self.put_back)
        layout = QVBoxLayout(self)
        layout.addWidget(self.where)
        layout.addWidget(self.lifetime)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.breaker)
        layout.addLayout(buttons)
        self.timer = QTimer(self)
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.refresh)
        self._read.connect(self._show)
        self.take_out.clicked.connect(self._take_out)
        self.put_back.clicked.connect(self._put_back)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()
        self.timer.start()

    def hideEvent(self, event) -> None:
        self.timer.stop()
        super().hideEvent(event)

    def refresh(self) -> None:
        """Read the workers on a thread; the table changes when they come."""
        if self._reading:
            return
        self._reading = True

        def work() -> None:
            try:
                rows, error = self.compute.workers(), ""
            except Exception as exc:          # the scheduler went away meanwhile
                rows, error = None, f"{type(exc).__name__}: {exc}"
            try:
                self._read.emit((rows, error))
            except RuntimeError:              # the dialog is gone
                pass

        threading.Thread(target=work, name="gristmill-workers", daemon=True).start()

    def _show(self, result) -> None:
        self._reading = False
        rows, error = result
        c = self.compute
        held = c.connection is not None
        if c.remote:
            # (a cluster for the run: its lifetime, below, says whether one is up)
            self.where.setText(f"Runs go to {c.describe()}." + (
                "" if held or c.kind == CLUSTER else
                " Not connected now: it connects when a run starts.")
                + (f" ({error})" if error else ""))
        else:
            self.where.setText("Runs go to this machine: no workers. Choose a Dask scheduler "
                               "or a cluster for the run in the toolbar's Run on, or in "
                               "Preferences.")
        self.lifetime.setText(c.lifetime())
        self.lifetime.setVisible(bool(c.lifetime()))
        h = c.health
        self.breaker.setText(f"Circuit breaker tripped: {h.tripped_why}; no more workers are "
                             "taken out of rotation in this run." if h.tripped else
                             "Circuit breaker: not tripped.")
        self.set_rows(rows or [])

    def set_rows(self, rows: list[WorkerRow]) -> None:
        selected = self.selected_worker()
        self.rows = list(rows)
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            cells = (r.name and r.name != r.address and f"{r.address} ({r.name})" or r.address,
                     f"{r.cpu:g}", format_size(r.mem), str(r.gpu),
                     ", ".join(r.running) or "—", health_words(r))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if j == 0:
                    item.setData(Qt.ItemDataRole.UserRole, r.address)
                self.table.setItem(i, j, item)
            if r.address == selected:
                self.table.selectRow(i)
        self._update_buttons()

    def selected_worker(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def select_worker(self, address: str) -> None:
        for i, r in enumerate(self.rows):
            if r.address == address:
                self.table.selectRow(i)

    def _update_buttons(self) -> None:
        w = self.selected_worker()
        out = w is not None and w in self.compute.health.out
        self.take_out.setEnabled(w is not None and not out)
        self.put_back.setEnabled(out)

    def _take_out(self) -> None:
        w = self.selected_worker()
        if w is not None:
            self.compute.health.take_out(w)
            self.refresh()
            self._update_buttons()

    def _put_back(self) -> None:
        w = self.selected_worker()
        if w is not None:
            self.compute.health.put_back(w)
            self.refresh()
            self._update_buttons()
