"""Past runs as a table (Tools > Run History…), and a past run's bars for the timeline."""

from __future__ import annotations

import time
from typing import Any, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

from gristmill.core.events import RunStatus, run_status_words
from gristmill.core.record.history import AttemptRecord, RunRecord
from gristmill.core.sizes import format_duration

from ..runstate import Bar, device_rows

Index = QModelIndex | QPersistentModelIndex
ROLE_RUN_ID = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("Started", "Workflow", "Targets", "Status", "Duration", "Tasks")
STATUS_TEXT = {
    RunStatus.RUNNING: "running",
    RunStatus.SUCCEEDED: "succeeded",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.INTERRUPTED: "interrupted",
}


def format_time(t: float | None) -> str:
    if t is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def bars_from_attempts(attempts: Sequence[AttemptRecord]) -> list[Bar]:
    """Timeline bars of a past run; attempts without a slot get the lowest free lane."""
    bars: list[Bar] = []
    lane_free: list[float] = []
    for a in sorted(attempts, key=lambda a: (a.started or 0.0, a.task)):
        if a.started is None:
            continue
        end = a.ended if a.ended is not None else a.started
        slot = a.slot
        if slot is None:
            slot = next((i for i, free in enumerate(lane_free) if free <= a.started), len(lane_free))
        while len(lane_free) <= slot:
            lane_free.append(0.0)
        lane_free[slot] = max(lane_free[slot], end)
        bars.append(Bar(a.task, a.attempt, slot, a.started, end, a.outcome, a.exit_code, a.log_path,
                        device_rows(a.gpus)))
    return bars


class RunHistoryModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._runs: list[RunRecord] = []

    def set_runs(self, runs: Sequence[RunRecord]) -> None:
        self.beginResetModel()
        self._runs = list(runs)
        self.endResetModel()

    def run_at(self, row: int) -> RunRecord:
        return self._runs[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._runs)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(COLUMNS)):
            return COLUMNS[section]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._runs):
            return None
        run = self._runs[index.row()]
        col = index.column()
        if role == ROLE_RUN_ID:
            return run.id
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"Run {run.id}\n{run.workflow_path}\n{run.counts_text}".strip()
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if col == 0:
            return format_time(run.started)
        if col == 1:
            return run.workflow_name
        if col == 2:
            return " ".join(run.targets) or "(default)"
        if col == 3:
            if run.status in (RunStatus.SUCCEEDED, RunStatus.CANCELLED):
                return run_status_words(run.status, run.counts)
            return STATUS_TEXT.get(run.status, run.status.value)
        if col == 4:
            return format_duration(run.duration)
        if col == 5:
            return run.counts_text or str(run.task_count)
        return None
