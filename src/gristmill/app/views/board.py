"""The board: a Kanban column per task state; cards move as the run goes."""

from __future__ import annotations

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QModelIndex, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHBoxLayout, QLabel, QListView,
                               QScrollArea, QStyle, QStyledItemDelegate, QStyleOptionViewItem,
                               QVBoxLayout, QWidget)

from gristmill.core.events import TaskState

from .. import theme
from ..models.task_table import ROLE_NAME, ROLE_STATE, Column, TaskFilterProxy, TaskTableModel
from ..selection import Selection
from ..names import short_name

CARD_H = 46
COLUMN_W = 150
ORIGIN = "board"


class CardDelegate(QStyledItemDelegate):
    """A card: a state-coloured edge, the task's name, and one line of detail."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(COLUMN_W - 24, CARD_H)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = option.palette
        rect = QRectF(option.rect).adjusted(3, 3, -3, -3)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        state = index.data(ROLE_STATE)
        color = theme.state_color(TaskState(state) if state else None)
        base = palette.color(QPalette.ColorRole.Base)
        border = palette.color(QPalette.ColorRole.Highlight) if selected else palette.color(QPalette.ColorRole.Mid)
        painter.setPen(QPen(border, 2 if selected else 1))
        painter.setBrush(base)
        painter.drawRoundedRect(rect, 5, 5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(QRectF(rect.left() + 1, rect.top() + 1, 5, rect.height() - 2), 2, 2)
        text_rect = rect.adjusted(12, 4, -6, -4).toRect()
        fm = option.fontMetrics
        name = short_name(index.data(ROLE_NAME) or "")
        font = option.font
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(QRect(text_rect.left(), text_rect.top(), text_rect.width(), fm.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, text_rect.width()))
        font.setBold(False)
        painter.setFont(font)
        detail = self._detail(index, state)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(text_rect.left(), text_rect.bottom() - fm.height() + 1, text_rect.width(), fm.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(detail, Qt.TextElideMode.ElideRight, text_rect.width()))
        painter.restore()

    @staticmethod
    def _detail(index: QModelIndex, state: str) -> str:
        if state in (TaskState.DONE.value, TaskState.FAILED.value, TaskState.RUNNING.value):
            last = index.siblingAtColumn(Column.LAST).data()
            if last and state != TaskState.RUNNING.value:
                return last
        return index.siblingAtColumn(Column.WHY).data() or ""


class BoardColumn(QFrame):
    def __init__(self, state: TaskState, model: TaskTableModel, delegate: CardDelegate,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.setObjectName(f"board-{state.value}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(COLUMN_W)
        self.proxy = TaskFilterProxy(self)
        self.proxy.set_states([state])
        self.proxy.setSourceModel(model)
        self.header = QLabel(self)
        self.header.setObjectName("board-header")
        self.header.setToolTip(f"Tasks that are {theme.STATE_TITLES[state].lower()}")
        self.list = QListView(self)
        self.list.setModel(self.proxy)
        self.list.setItemDelegate(delegate)
        self.list.setUniformItemSizes(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setFrameShape(QFrame.Shape.NoFrame)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addWidget(self.list)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                    self.proxy.layoutChanged):
            sig.connect(self.update_header)
        self.update_header()

    def update_header(self, *_args) -> None:
        color = theme.state_color(self.state).name()
        self.header.setText(f"<span style='color:{color}'>●</span>&nbsp;<b>{theme.STATE_TITLES[self.state]}</b>"
                            f"&nbsp;&nbsp;{self.proxy.rowCount()}")

    def names(self) -> list[str]:
        return [i.data(ROLE_NAME) for i in self.list.selectionModel().selectedIndexes()]


class BoardView(QScrollArea):
    activated = Signal(str)

    def __init__(self, model: TaskTableModel, selection: Selection, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("board")
        self._model = model
        self._selection = selection
        self._syncing = False
        self._delegate = CardDelegate(self)
        inner = QWidget(self)
        layout = QHBoxLayout(inner)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        self.columns = [BoardColumn(s, model, self._delegate, inner) for s in theme.BOARD_STATES]
        for c in self.columns:
            layout.addWidget(c, 1)
        self.setWidget(inner)
        self.setWidgetResizable(True)
        self._connect_signals()

    def _connect_signals(self) -> None:
        for c in self.columns:
            c.list.selectionModel().selectionChanged.connect(
                lambda *_a, col=c: self._column_selection_changed(col))
            c.list.doubleClicked.connect(lambda index: self.activated.emit(index.data(ROLE_NAME)))
            c.proxy.rowsInserted.connect(self._reselect)
        self._selection.changed.connect(self._shared_selection_changed)

    def column(self, state: TaskState) -> BoardColumn:
        return next(c for c in self.columns if c.state is state)

    def counts(self) -> dict[TaskState, int]:
        return {c.state: c.proxy.rowCount() for c in self.columns}

    def _column_selection_changed(self, column: BoardColumn) -> None:
        if self._syncing:
            return
        names = column.names()
        if not names:
            return
        self._syncing = True
        try:
            for c in self.columns:
                if c is not column:
                    c.list.clearSelection()
        finally:
            self._syncing = False
        self._selection.set(names, ORIGIN)

    def _reselect(self, *_args) -> None:
        """A selected card moved to another column: keep it selected there."""
        if self._selection.names:
            self._shared_selection_changed(self._selection.names, "")

    def _shared_selection_changed(self, names: tuple, origin: str) -> None:
        if origin == ORIGIN:
            return
        self._syncing = True
        try:
            sources = [self._model.index(r, 0) for r in map(self._model.row_of, names) if r >= 0]
            for c in self.columns:
                sel = QItemSelection()
                for src in sources:
                    index = c.proxy.mapFromSource(src)
                    if index.isValid():
                        sel.select(index, index)
                c.list.selectionModel().select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        finally:
            self._syncing = False
