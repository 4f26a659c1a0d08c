"""The board: a Kanban column per run state; cards move as the run goes.

Only tasks in the run shown have a card. Tasks outside it (before any run, or
a task the run did not include) have no run state: the line above the columns
counts them, and the table and the graph show them greyed with their reason.
Columns with cards take the room; empty ones shrink to their header, so the
eight columns fit beside the task table in a 1280-pixel window.
"""

from __future__ import annotations

from PySide6.QtCore import (QEvent, QItemSelection, QItemSelectionModel, QModelIndex, QObject, QRect, QRectF,
                            QSize, Qt, QTimer, Signal)
from PySide6.QtGui import QFontMetrics, QHelpEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHBoxLayout, QLabel, QListView, QScrollArea,
                               QStyle, QStyledItemDelegate, QStyleOptionViewItem, QToolTip, QVBoxLayout,
                               QWidget)

from gristmill.core.events import TaskState

from .. import theme
from ..models.board import BoardCards, BoardColumnModel
from ..models.task_table import ROLE_NAME, ROLE_STATE, Column, TaskTableModel
from ..names import fit_name, short_name, split_name
from ..selection import Selection

CARD_H = 46
CARD_MIN_W = 112          # a column with cards is at least this wide
ORIGIN = "board"
FULL_STRETCH, EMPTY_STRETCH = 4, 1


class CardDelegate(QStyledItemDelegate):
    """A card: a state-coloured edge, the task's short name (elided in the middle), one line of detail."""

    def __init__(self, model: TaskTableModel, parent: QObject | None = None):
        super().__init__(parent)
        self._model = model

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        return QSize(CARD_MIN_W - 16, CARD_H)

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
        font = option.font
        font.setBold(True)
        painter.setFont(font)
        bold = painter.fontMetrics()
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(QRect(text_rect.left(), text_rect.top(), text_rect.width(), bold.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self.label_for(index.data(ROLE_NAME) or "", bold, text_rect.width()))
        font.setBold(False)
        painter.setFont(font)
        fm = painter.fontMetrics()
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(text_rect.left(), text_rect.bottom() - fm.height() + 1, text_rect.width(), fm.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(self.detail(index), Qt.TextElideMode.ElideRight, text_rect.width()))
        painter.restore()

    def label_for(self, name: str, metrics: QFontMetrics, width: int) -> str:
        parts = split_name(name)
        affixes = self._model.group_affixes(parts[0], short=True) if parts else (0, 0)
        return self.label(name, metrics, width, affixes)

    @staticmethod
    def label(name: str, metrics: QFontMetrics, width: int, affixes: tuple[int, int] = (0, 0)) -> str:
        """The graph's short label (``summarise[harbour.csv]``), elided in the middle to fit;
        a fan-out's item keeps what tells it from its siblings (``names.fit_name``)."""
        return fit_name(short_name(name), metrics.horizontalAdvance, width, affixes)

    @staticmethod
    def detail(index: QModelIndex) -> str:
        """How long it took once it finished; otherwise why it is in the run."""
        state = index.data(ROLE_STATE)
        if state in (TaskState.DONE.value, TaskState.FAILED.value, TaskState.CANCELLED.value):
            last = index.siblingAtColumn(Column.LAST).data()
            if last:
                return last
        return index.siblingAtColumn(Column.WHY).data() or ""

    @staticmethod
    def tooltip(index: QModelIndex) -> str:
        lines = [index.data(ROLE_NAME) or ""]
        state = index.siblingAtColumn(Column.STATE).data()
        last = index.siblingAtColumn(Column.LAST).data()
        if state:
            lines.append(state + (f" · took {last}" if last and state in ("done", "failed", "cancelled") else ""))
        why = index.siblingAtColumn(Column.WHY).data()
        if why:
            lines.append(why)
        return "\n".join(lines)

    def helpEvent(self, event: QHelpEvent, view: QAbstractItemView, option: QStyleOptionViewItem,
                  index: QModelIndex) -> bool:
        if event.type() == QEvent.Type.ToolTip and index.isValid():
            QToolTip.showText(event.globalPos(), self.tooltip(index), view)
            return True
        return super().helpEvent(event, view, option, index)


class BoardColumn(QFrame):
    def __init__(self, cards: BoardColumnModel, delegate: CardDelegate,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state = cards.state
        self.setObjectName(f"board-{self.state.value}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.cards = cards
        self.header = QLabel(self)
        self.header.setObjectName("board-header")
        self.list = QListView(self)
        self.list.setModel(self.cards)
        self.list.setItemDelegate(delegate)
        self.list.setUniformItemSizes(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setFrameShape(QFrame.Shape.NoFrame)
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setMinimumWidth(0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.setSpacing(4)
        layout.addWidget(self.header)
        layout.addWidget(self.list)
        self._header_shown: tuple[bool, int] | None = None     # (dark, count) of the header
        self._width_key: tuple[bool, int] | None = None
        self.update_header()         # then on each move of cards (BoardView._cards_moved)

    def update_header(self, *_args) -> None:
        """``● Done 9``; an empty column shows no count, so it stays narrow."""
        dark = theme.is_dark()
        count = self.cards.rowCount()
        if (dark, count) == self._header_shown:
            return
        self._header_shown = (dark, count)
        dot = theme.state_color(self.state, dark)
        if dark and dot.lightness() < 90:
            dot = dot.lighter(170)               # dim states still show a visible dot
        elif not dark and dot.lightness() > 200:
            dot = dot.darker(125)
        title = theme.STATE_TITLES[self.state]
        self.header.setText(f"<span style='color:{dot.name()}'>●</span>&nbsp;<b>{title}</b>"
                            + (f"&nbsp;&nbsp;{count}" if count else ""))
        self.header.setToolTip(f"{count} task{'s' if count != 1 else ''} of the run "
                               f"{'is' if count == 1 else 'are'} {title.lower()}" if count else
                               f"No task of the run is {title.lower()}")
        # Laying out the rich text for its width is the dear part: only when the count
        # gains or loses a digit (the digits of a UI font are all one width).
        width_key = (dark, len(str(count)) if count else 0)
        if width_key != self._width_key:
            self._width_key = width_key
            margins = self.contentsMargins().left() + self.contentsMargins().right() + 8
            self.setMinimumWidth(max(self.header.sizeHint().width() + margins,
                                     CARD_MIN_W if count else 0))

    @property
    def empty(self) -> bool:
        return self.cards.rowCount() == 0

    def names(self) -> list[str]:
        return [i.data(ROLE_NAME) for i in self.list.selectionModel().selectedIndexes()]


def describe_outside(model: TaskTableModel) -> str:
    """The line above the columns: which tasks have no card, and where to see them."""
    if model.workflow is None:
        return ""
    counts = model.idle_counts()
    parts = counts.parts()
    run = model.run
    if run.status is None:
        what = ", ".join(parts) or "nothing known yet"
        return (f"No run yet in this session ({what}). Run the default targets (F5) or plan (F6) to fill "
                f"the board; the task table and the graph show each task's state now.")
    plan = "Plan (dry run): nothing ran; waiting tasks would run. " if run.dry_run else ""
    if not parts:
        return plan + f"Every task of the workflow is in this run ({len(run.plan)})."
    total = counts.total
    return (plan + f"{len(run.plan)} task{'s' if len(run.plan) != 1 else ''} in this run. "
            f"Not in it: {total} ({', '.join(parts)}), shown greyed in the task table and the graph.")


class BoardView(QScrollArea):
    activated = Signal(str)

    def __init__(self, model: TaskTableModel, selection: Selection, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("board")
        self._model = model
        self._selection = selection
        self._syncing = False
        self._delegate = CardDelegate(model, self)
        self.cards = BoardCards(model, theme.BOARD_STATES, self)
        inner = QWidget(self)
        outer = QVBoxLayout(inner)
        outer.setContentsMargins(6, 4, 6, 6)
        outer.setSpacing(4)
        self.outside = QLabel(inner)
        self.outside.setObjectName("board-outside")
        self.outside.setWordWrap(True)
        self.outside.setEnabled(False)          # drawn as secondary text
        self.row = QHBoxLayout()
        self.row.setSpacing(6)
        self.columns = [BoardColumn(self.cards.column(s), self._delegate, inner)
                        for s in theme.BOARD_STATES]
        for c in self.columns:
            self.row.addWidget(c, EMPTY_STRETCH)
        outer.addWidget(self.outside)
        outer.addLayout(self.row, 1)
        self.setWidget(inner)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._connect_signals()
        self.refresh()

    def _connect_signals(self) -> None:
        for c in self.columns:
            c.list.selectionModel().selectionChanged.connect(
                lambda *_a, col=c: self._column_selection_changed(col))
            c.list.doubleClicked.connect(lambda index: self.activated.emit(index.data(ROLE_NAME)))
        self.cards.moved.connect(self._cards_moved)
        self._model.modelReset.connect(self._schedule_refresh)
        self._model.dataChanged.connect(self._data_changed)
        self._model.runStarted.connect(self._schedule_refresh)
        self._refresh_timer.timeout.connect(self.refresh)
        self._selection.changed.connect(self._shared_selection_changed)

    def _schedule_refresh(self, *_args) -> None:
        self._refresh_timer.start()

    def _data_changed(self, top: QModelIndex, bottom: QModelIndex, *_roles) -> None:
        # The line above the columns changes only when the tasks in the run do (a run
        # starts) or after a scan; both change every row at once.
        if top.row() == 0 and bottom.row() == self._model.rowCount() - 1:
            self._refresh_timer.start()

    def _cards_moved(self, states: frozenset) -> None:
        """Cards came or went (once per change of the table, however many ranges)."""
        if not self._model.run.running:
            # after the run: a change on disk made tasks it finished stale (they leave)
            self._refresh_timer.start()
        for c in self.columns:
            if c.state in states:
                c.update_header()
        self._restretch()
        self._reselect()

    def _restretch(self, *_args) -> None:
        """Stretch the columns with cards, shrink the empty ones (cheap: on every card move)."""
        for c in self.columns:
            self.row.setStretchFactor(c, EMPTY_STRETCH if c.empty else FULL_STRETCH)

    def refresh(self) -> None:
        """Stretch the columns, and say what has no card (counts every task: only when the
        run's members or the scan change, i.e. on a reset or an every-row change)."""
        self._restretch()
        self.outside.setText(describe_outside(self._model))

    def apply_palette(self) -> None:
        for c in self.columns:
            c.update_header()

    def column(self, state: TaskState) -> BoardColumn:
        return next(c for c in self.columns if c.state is state)

    def counts(self) -> dict[TaskState, int]:
        return {c.state: c.cards.rowCount() for c in self.columns}

    def names_on_board(self) -> set[str]:
        return {name for c in self.columns for name in c.cards.names()}

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
            for c in self.columns:
                sel = QItemSelection()
                for row in map(c.cards.row_of, names):
                    if row >= 0:
                        index = c.cards.index(row, 0)
                        sel.select(index, index)
                c.list.selectionModel().select(sel, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        finally:
            self._syncing = False
