"""The board's columns: the run's tasks in each run state, kept by moving cards.

A column is a small model of its own cards, not a filter over the task table:
a filter proxy asks every one of the table's 20,000 rows whether it belongs, on
every reset and every every-row change (seven columns: 140,000 questions), though
only the run's tasks can ever be on the board. ``BoardCards`` follows the task
table's changes and moves the cards whose state changed, one insert or remove per
contiguous range, so a change costs what it changes.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any, Iterable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal

from gristmill.core.events import TaskState

from .task_table import TaskTableModel

Index = QModelIndex | QPersistentModelIndex


class BoardColumnModel(QAbstractTableModel):
    """The cards of one column: tasks of the run in ``state``, in the task table's order.

    Each row reads through to its task's row of the table (every column of it), so
    a card's index has the siblings a card shows (why, how long it took)."""

    def __init__(self, source: TaskTableModel, state: TaskState, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self._source = source
        self._rows: list[int] = []         # source rows, ascending

    # -- questions ------------------------------------------------------------

    def names(self) -> list[str]:
        return [self._source.name_at(r) for r in self._rows]

    def row_of(self, name: str) -> int:
        """The card's row, or -1 when the task has no card here."""
        srow = self._source.row_of(name)
        if srow < 0:
            return -1
        i = bisect_left(self._rows, srow)
        return i if i < len(self._rows) and self._rows[i] == srow else -1

    # -- Qt ---------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._source.columnCount()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        source = self._source
        return source.data(source.index(self._rows[index.row()], index.column()), role)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        return self._source.headerData(section, orientation, role)

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # -- feeding (by BoardCards) --------------------------------------------------

    def _reset(self, rows: list[int]) -> None:
        self.beginResetModel()
        self._rows = sorted(rows)
        self.endResetModel()

    def _remove(self, rows: Iterable[int]) -> None:
        """Take away the cards of these source rows: one remove per contiguous range."""
        at = sorted((bisect_left(self._rows, r) for r in rows), reverse=True)
        i = 0
        while i < len(at):
            last = first = at[i]
            while i + 1 < len(at) and at[i + 1] == first - 1:
                i += 1
                first = at[i]
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first:last + 1]
            self.endRemoveRows()
            i += 1

    def _insert(self, rows: Iterable[int]) -> None:
        """Add cards for these source rows in order: one insert per run of new cards
        that land between the same two old ones."""
        new = sorted(rows)
        i = 0
        while i < len(new):
            at = bisect_left(self._rows, new[i])
            bound = self._rows[at] if at < len(self._rows) else None
            j = i + 1
            while j < len(new) and (bound is None or new[j] < bound):
                j += 1
            self.beginInsertRows(QModelIndex(), at, at + j - i - 1)
            self._rows[at:at] = new[i:j]
            self.endInsertRows()
            i = j

    def _changed(self, top: int, bottom: int) -> None:
        """The table's rows top..bottom changed: redraw the cards among them."""
        lo, hi = bisect_left(self._rows, top), bisect_right(self._rows, bottom)
        if lo < hi:
            self.dataChanged.emit(self.index(lo, 0), self.index(hi - 1, self.columnCount() - 1))


class BoardCards(QObject):
    """The board's columns over a task table, following its resets and changes."""

    moved = Signal(object)       # frozenset of the states whose columns gained or lost cards

    def __init__(self, source: TaskTableModel, states: Iterable[TaskState],
                 parent: QObject | None = None):
        super().__init__(parent)
        self._source = source
        self.columns = {s: BoardColumnModel(source, s, self) for s in states}
        self._shown: dict[str, TaskState] = {}      # task -> the column its card is in
        source.modelReset.connect(self._rebuild)
        source.dataChanged.connect(self._source_changed)
        self._rebuild()

    def column(self, state: TaskState) -> BoardColumnModel:
        return self.columns[state]

    def _wanted(self, name: str) -> TaskState | None:
        state = self._source.run_state(name)
        return state if state in self.columns else None

    def _rebuild(self) -> None:
        source = self._source
        self._shown = {}
        rows: dict[TaskState, list[int]] = {s: [] for s in self.columns}
        for name in source.run.tasks:
            r = source.row_of(name)
            state = source.run_state(name)
            if r >= 0 and state in rows:
                rows[state].append(r)
                self._shown[name] = state
        for state, column in self.columns.items():
            column._reset(rows[state])
        self.moved.emit(frozenset(self.columns))

    def _source_changed(self, top: QModelIndex, bottom: QModelIndex, *_roles) -> None:
        source, shown = self._source, self._shown
        first, last = top.row(), bottom.row()
        # Only a task of the run, or one with a card, can gain, lose or move a card.
        run_tasks = source.run.tasks
        if last - first + 1 > len(run_tasks) + len(shown):
            candidates: Iterable[str] = [n for n in {**run_tasks, **shown}
                                         if first <= source.row_of(n) <= last]
        else:
            candidates = (source.name_at(r) for r in range(first, last + 1))
        leaving: dict[TaskState, list[int]] = {}
        coming: dict[TaskState, list[int]] = {}
        for name in candidates:
            if name not in run_tasks and name not in shown:
                continue
            old, new = shown.get(name), self._wanted(name)
            if old is new:
                continue
            r = source.row_of(name)
            if old is not None:
                leaving.setdefault(old, []).append(r)
                del shown[name]
            if new is not None:
                coming.setdefault(new, []).append(r)
                shown[name] = new
        for state, rows in leaving.items():
            self.columns[state]._remove(rows)
        for state, rows in coming.items():
            self.columns[state]._insert(rows)
        for column in self.columns.values():
            column._changed(first, last)
        if leaving or coming:
            # Once per change, not per range: the board's headers and stretch follow.
            self.moved.emit(frozenset(leaving) | frozenset(coming))
