"""The task table pane: a filter field over a sortable table; selection follows the shared one."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import QItemSelection, QItemSelectionModel, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QLineEdit, QMenu, QStyledItemDelegate,
                               QStyleOptionViewItem, QTableView, QVBoxLayout, QWidget)

from ..models.task_table import ROLE_NAME, Column, TaskFilterProxy, TaskTableModel
from ..names import fit_name, split_name
from ..selection import Selection

ORIGIN = "table"
MIN_WHY = 120            # px: the Why column is never fitted narrower


class NameDelegate(QStyledItemDelegate):
    """Task names that do not fit keep what tells a fan-out's instances apart (``names.fit_name``)."""

    TEXT_MARGIN = 8          # the style's padding around a cell's text

    def __init__(self, model: TaskTableModel, parent=None):
        super().__init__(parent)
        self._model = model

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:
        super().initStyleOption(option, index)
        name = option.text
        parts = split_name(name)
        affixes = self._model.group_affixes(parts[0], short=False) if parts else (0, 0)
        width = option.rect.width() - self.TEXT_MARGIN
        if width > 0:
            option.text = fit_name(name, option.fontMetrics.horizontalAdvance, width, affixes)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


class TaskTablePane(QWidget):
    activated = Signal(str)        # a task double-clicked

    def __init__(self, model: TaskTableModel, selection: Selection, parent: QWidget | None = None):
        super().__init__(parent)
        self._model = model
        self._selection = selection
        self._syncing = False
        self._context_actions: Sequence[QAction] = ()
        self._init_widgets()
        self._connect_signals()

    def _init_widgets(self) -> None:
        self.filter = QLineEdit(self)
        self.filter.setObjectName("task-filter")
        self.filter.setPlaceholderText("Filter tasks by name, state or reason")
        self.filter.setClearButtonEnabled(True)
        self.filter.setToolTip("Show only tasks whose name, state or reason contains this text")
        self.proxy = TaskFilterProxy(self)
        self.proxy.setSourceModel(self._model)
        self.view = QTableView(self)
        self.view.setObjectName("task-table")
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setAlternatingRowColors(True)
        self.view.setShowGrid(False)
        self.view.setWordWrap(False)
        self.names = NameDelegate(self._model, self.view)
        self.view.setItemDelegateForColumn(Column.NAME, self.names)
        self.view.verticalHeader().hide()
        self.view.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.view.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        widths = {Column.NAME: 170, Column.STATE: 80, Column.WHY: 240, Column.LAST: 70,
                  Column.ESTIMATE: 70, Column.RESOURCES: 120, Column.OUTPUTS: 84}
        for col, w in widths.items():
            self.view.setColumnWidth(col, w)
        self._why_fitted = True      # until the user sizes a column: Why ends at the pane's edge
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.filter)
        layout.addWidget(self.view)

    def _connect_signals(self) -> None:
        self._fitting = False
        self.view.horizontalHeader().sectionResized.connect(self._section_resized)
        self.filter.textChanged.connect(self.proxy.set_text)
        self.view.selectionModel().selectionChanged.connect(self._view_selection_changed)
        self.view.doubleClicked.connect(
            lambda index: self.activated.emit(index.data(ROLE_NAME)))
        self.view.customContextMenuRequested.connect(self._context_menu)
        self._selection.changed.connect(self._shared_selection_changed)
        self._model.modelReset.connect(lambda: self._shared_selection_changed(
            self._selection.names, ""))

    def _section_resized(self, column: int, _old: int, _new: int) -> None:
        if not self._fitting:
            self._why_fitted = False

    def fit_why(self) -> None:
        """The Why column as wide as the room left beside Name and State (never under
        ``MIN_WHY``): at the default size it is read whole, not cut at the pane's edge;
        the columns after it are a scroll away."""
        if not self._why_fitted:
            return
        header = self.view.horizontalHeader()
        room = self.view.viewport().width() - header.sectionPosition(Column.WHY)
        self._fitting = True
        try:
            self.view.setColumnWidth(Column.WHY, max(MIN_WHY, room))
        finally:
            self._fitting = False

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_why()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.fit_why()

    def set_context_actions(self, actions: Sequence[QAction]) -> None:
        self._context_actions = actions

    def _context_menu(self, pos) -> None:
        if not self._context_actions:
            return
        menu = QMenu(self)
        for a in self._context_actions:
            if a is None:
                menu.addSeparator()
            else:
                menu.addAction(a)
        menu.popup(self.view.viewport().mapToGlobal(pos))

    def _view_selection_changed(self, *_args) -> None:
        if self._syncing:
            return
        rows = self.view.selectionModel().selectedRows()
        names = [r.data(ROLE_NAME) for r in sorted(rows, key=lambda i: i.row())]
        current = self.view.currentIndex()
        if current.isValid() and current.data(ROLE_NAME) in names:
            names.remove(current.data(ROLE_NAME))
            names.insert(0, current.data(ROLE_NAME))
        self._selection.set(names, ORIGIN)

    def _shared_selection_changed(self, names: tuple, origin: str) -> None:
        if origin == ORIGIN:
            return
        self._syncing = True
        try:
            sm = self.view.selectionModel()
            selection = QItemSelection()
            first = None
            for name in names:
                row = self._model.row_of(name)
                if row < 0:
                    continue
                index = self.proxy.mapFromSource(self._model.index(row, 0))
                if index.isValid():
                    selection.select(index, index)
                    first = first or index
            flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect
                     | QItemSelectionModel.SelectionFlag.Rows)
            sm.select(selection, flags)
            if first is not None:
                sm.setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
                self.view.scrollTo(first)
        finally:
            self._syncing = False
