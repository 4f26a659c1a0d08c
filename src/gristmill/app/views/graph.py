"""The graph: the DAG in layers, nodes coloured by state and updated live.

Cheap items in a QGraphicsScene (one item per node, one path for all edges);
big fan-outs are one group node until expanded (double-click).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Iterable

from PySide6.QtCore import QPointF, QRectF, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPainterPath, QPalette, QPen, QWheelEvent
from PySide6.QtWidgets import (QCompleter, QGraphicsItem, QGraphicsPathItem, QGraphicsScene,
                               QGraphicsView, QHBoxLayout, QLabel, QLineEdit, QMenu, QSizePolicy,
                               QStyle, QStyleOptionGraphicsItem,
                               QToolButton, QVBoxLayout, QWidget)

from gristmill.core.events import TaskState
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.workflow import Workflow

from .. import icons, states, theme
from ..graph_layout import NODE_H, NODE_W, Layout, Node, build_layout
from ..selection import Selection
from ..states import IdleCounts, IdleState, ShownState

ORIGIN = "graph"
SEARCH = "graph-search"          # the search box selects as another view would: the graph reveals it
COLLAPSE_ABOVE = 12
MIN_ZOOM, MAX_ZOOM = 0.02, 4.0   # the zoom's range, widened to whatever Fit needs
GROUP_EVERY_MS = 150             # mid-run, a fan-out's node is recoloured at most this often
SMOOTH_ABOVE = 0.3               # antialiasing only from this scale up
TEXT_FROM = 0.45                 # names are drawn from this scale up (level of detail)
READABLE = 0.6                   # a task revealed (search, the table) is shown at least this big
# Which state a group node shows: the most pressing one among its members (in the run first).
GROUP_PRIORITY: tuple[ShownState, ...] = (
    TaskState.FAILED, TaskState.RUNNING, TaskState.READY, TaskState.WAITING,
    TaskState.CANCELLED, TaskState.SKIPPED, TaskState.DONE, TaskState.UP_TO_DATE, IdleState.STALE, IdleState.FRESH)


def group_state(shown: Iterable[ShownState | None]) -> tuple[ShownState | None, Counter]:
    counts = Counter(shown)
    counts.pop(None, None)
    for s in GROUP_PRIORITY:
        if counts.get(s):
            return s, counts
    return None, counts


class NodeItem(QGraphicsItem):
    """A rounded box with the task's name; a group node looks like a stack of cards.

    A task in the run is filled with its state's colour. A task outside it is
    greyed: a dashed outline when it would run, a plain faint one when it is up
    to date.
    """

    def __init__(self, node: Node):
        super().__init__()
        self.node = node
        self.state: ShownState | None = None
        self.summary = ""
        self.reason = ""
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setAcceptHoverEvents(False)
        self._update_tooltip()

    def boundingRect(self) -> QRectF:
        return QRectF(-2, -2, NODE_W + 10, NODE_H + 10)

    def set_state(self, state: ShownState | None, summary: str = "", reason: str = "") -> None:
        if state is not self.state or summary != self.summary or reason != self.reason:
            self.state, self.summary, self.reason = state, summary, reason
            self._update_tooltip()
            self.update()

    def _update_tooltip(self) -> None:
        node = self.node
        if node.is_group:
            tip = f"{node.group}: {len(node.members)} instances (double-click to expand)"
            if self.summary:
                tip += f"\n{self.summary}"
        else:
            tip = node.id
            if self.state is not None:
                where = " (not in the run shown)" if isinstance(self.state, IdleState) else ""
                tip += f"\n{states.title(self.state).lower()}{where}"
            if self.reason:
                tip += f"\n{self.reason}"
        self.setToolTip(tip)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        idle = isinstance(self.state, IdleState)
        fill = theme.state_color(self.state)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette = widget.palette() if widget is not None else QPalette()
        plain_edge = theme.idle_edge_color() if idle else fill.darker(150)
        edge = palette.color(QPalette.ColorRole.Highlight) if selected else plain_edge
        rect = QRectF(0, 0, NODE_W, NODE_H)
        if lod < 0.2:
            painter.fillRect(rect, fill if not selected else edge)
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, lod > 0.5)
        if self.node.is_group:
            painter.setPen(QPen(plain_edge, 1))
            painter.setBrush(fill.lighter(108) if not idle else fill)
            painter.drawRoundedRect(rect.translated(6, 6), 6, 6)
            painter.drawRoundedRect(rect.translated(3, 3), 6, 6)
        pen = QPen(edge, 3 if selected else 1.2 if idle else 1)
        if self.state is IdleState.STALE and not selected:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(fill)
        painter.drawRoundedRect(rect, 6, 6)
        if lod < TEXT_FROM:
            return
        painter.setPen(theme.idle_text_color() if idle else theme.text_on(fill))
        fm = painter.fontMetrics()
        inner = rect.adjusted(8, 0, -8, 0)
        if self.node.is_group and self.summary:
            top = QRectF(inner.left(), 2, inner.width(), NODE_H / 2)
            bottom = QRectF(inner.left(), NODE_H / 2 - 2, inner.width(), NODE_H / 2)
            painter.drawText(top, Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(self.node.label, Qt.TextElideMode.ElideMiddle, int(inner.width())))
            painter.drawText(bottom, Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(self.summary, Qt.TextElideMode.ElideRight, int(inner.width())))
        else:
            painter.drawText(inner, Qt.AlignmentFlag.AlignVCenter,
                             fm.elidedText(self.node.label, Qt.TextElideMode.ElideMiddle, int(inner.width())))


def _order_only(wf: Workflow, graph: TaskGraph) -> Callable[[str], Iterable[str]]:
    """A task's dependencies through ``after`` alone: no input of it is their output."""
    tasks, producer = wf.tasks, graph.producer

    def only(name: str) -> Iterable[str]:
        task = tasks.get(name)
        if task is None or not task.after:
            return ()
        data = {producer.get(i) for i in task.inputs}
        return {a for a in task.after if a not in data}
    return only


def edge_path(layout: Layout, edges: Iterable[tuple[str, str]]) -> QPainterPath:
    """Each edge from the right of its source to the left of its target, through the free
    slots the layout kept for it in the layers between (so it passes no box)."""
    path = QPainterPath()
    routes = layout.routes or {}
    for a, b in edges:
        ax, ay = layout.pos[a]
        bx, by = layout.pos[b]
        start = QPointF(ax + NODE_W, ay + NODE_H / 2)
        path.moveTo(start)
        for wx, wy in routes.get((a, b), ()):
            _curve(path, start, QPointF(wx, wy))
            start = QPointF(wx + NODE_W, wy)
            path.lineTo(start)
        _curve(path, start, QPointF(bx, by + NODE_H / 2))
    return path


def _curve(path: QPainterPath, start: QPointF, end: QPointF) -> None:
    dx = max((end.x() - start.x()) / 2, 30.0)
    path.cubicTo(QPointF(start.x() + dx, start.y()), QPointF(end.x() - dx, end.y()), end)


class GraphView(QGraphicsView):
    """Wheel zooms around the cursor; dragging the background pans."""

    nodeDoubleClicked = Signal(object)     # NodeItem

    def __init__(self, scene: QGraphicsScene, parent: QWidget | None = None):
        super().__init__(scene, parent)
        self.setObjectName("graph-view")
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.auto_fit = True        # keep the whole graph in view until the user zooms
        self.fit_scale = 1.0        # the scale Fit last set: zoom always reaches it and beyond

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.auto_fit:
            self.fit()

    def mouseDoubleClickEvent(self, event) -> None:
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, NodeItem):
            self.nodeDoubleClicked.emit(item)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        factor = 1.0015 ** event.angleDelta().y()
        self.zoom(factor)

    def zoom_range(self) -> tuple[float, float]:
        """From half of what Fit shows (however small a big graph makes it) to 4×."""
        return min(MIN_ZOOM, self.fit_scale / 2), MAX_ZOOM

    def zoom(self, factor: float) -> None:
        self.auto_fit = False
        scale = self.transform().m11()
        low, high = self.zoom_range()
        wanted = min(max(scale * factor, low), high)
        if scale > 0 and wanted != scale:
            self.scale(wanted / scale, wanted / scale)
            self._level_of_detail()

    def _level_of_detail(self) -> None:
        """Zoomed out, thousands of edges and boxes are drawn without antialiasing (the
        boxes without text already, in ``NodeItem.paint``)."""
        self.setRenderHint(QPainter.RenderHint.Antialiasing, self.transform().m11() >= SMOOTH_ABOVE)

    def zoom_to(self, scale: float) -> None:
        current = self.transform().m11()
        if current > 0 and scale != current:
            self.zoom(scale / current)

    def fit(self) -> None:
        self.auto_fit = True
        rect = self.scene().itemsBoundingRect().adjusted(-20, -20, 20, 20)
        if rect.isValid():
            self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
            if self.transform().m11() > 1.5:
                self.resetTransform()
                self.centerOn(rect.center())
            self.fit_scale = self.transform().m11()
            self._level_of_detail()


class GraphPane(QWidget):
    activated = Signal(str)

    def __init__(self, selection: Selection, state_of: Callable[[str], ShownState | None],
                 parent: QWidget | None = None, reason_of: Callable[[str], str] | None = None,
                 states_of: Callable[[Iterable[str]], list[ShownState | None]] | None = None,
                 idle_counts: Callable[[], IdleCounts] | None = None):
        super().__init__(parent)
        self._selection = selection
        self._state_of = state_of
        # Many at once: a group of 18,000 instances is recoloured at every run's start.
        self._states_of = states_of or (lambda names: list(map(state_of, names)))
        self._reason_of = reason_of or (lambda _name: "")
        # (would run, up to date, only if asked) outside the run, for the legend: counted over the
        # run's tasks by the model, not over the workflow's at every run start.
        self._idle_counts = idle_counts or self._count_idle
        self._syncing = False
        self._workflow: Workflow | None = None
        self._graph: TaskGraph | None = None
        self._expanded: set[str] = set()
        self.layout_: Layout | None = None
        self.items: dict[str, NodeItem] = {}
        self._group_ids: set[str] = set()
        self._dirty_groups: set[str] = set()
        self._group_timer = QTimer(self)
        self._group_timer.setSingleShot(True)
        self._group_timer.setInterval(GROUP_EVERY_MS)
        self._group_timer.timeout.connect(self._flush_groups)
        self._info_base = ""
        self._init_widgets()
        self._connect_signals()

    def _init_widgets(self) -> None:
        self.scene = QGraphicsScene(self)
        self.view = GraphView(self.scene, self)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._edges = QGraphicsPathItem()
        self._order_edges = QGraphicsPathItem()
        self._highlight = QGraphicsPathItem()
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        self.info = QLabel(self)
        self.info.setObjectName("graph-info")
        # A long legend never widens the window nor squeezes the Tasks panel (issue 19).
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar.addWidget(self.info, 1)
        self.search = QLineEdit(self)
        self.search.setObjectName("graph-search")
        self.search.setPlaceholderText("Find a task…")
        self.search.setToolTip("Type part of a task's name and press Enter to select it and show it")
        self.search.setClearButtonEnabled(True)
        self.search.setMaximumWidth(220)
        self._completer = QCompleter(QStringListModel(self), self)
        self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.search.setCompleter(self._completer)
        bar.addWidget(self.search)
        self.fit_button = self._tool_button("fit", "Fit to view", "Show the whole graph (Ctrl+0)")
        self.zoom_in_button = self._tool_button("", "+", "Zoom in (or use the mouse wheel)")
        self.zoom_out_button = self._tool_button("", "−", "Zoom out (or use the mouse wheel)")
        self.collapse_button = self._tool_button("", "Collapse groups",
                                                 "Collapse every expanded fan-out into one node")
        for b in (self.collapse_button, self.zoom_out_button, self.zoom_in_button, self.fit_button):
            bar.addWidget(b)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)

    def _tool_button(self, icon_name: str, text: str, tip: str) -> QToolButton:
        b = QToolButton(self)
        b.setText(text)
        b.setToolTip(tip)
        b.setAutoRaise(True)
        if icon_name:
            b.setIcon(icons.icon(icon_name))
            b.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        return b

    def _connect_signals(self) -> None:
        self.scene.selectionChanged.connect(self._scene_selection_changed)
        self._selection.changed.connect(self._shared_selection_changed)
        self.fit_button.clicked.connect(self.view.fit)
        self.zoom_in_button.clicked.connect(lambda: self.view.zoom(1.25))
        self.zoom_out_button.clicked.connect(lambda: self.view.zoom(0.8))
        self.collapse_button.clicked.connect(self.collapse_all)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.nodeDoubleClicked.connect(self.activate)
        self.search.returnPressed.connect(lambda: self.find_task(self.search.text()))
        self._completer.activated.connect(self.find_task)

    # -- building -------------------------------------------------------------------

    def set_workflow(self, workflow: Workflow | None, graph: TaskGraph | None) -> None:
        same = (self._workflow is not None and workflow is not None
                and self._workflow.path == workflow.path)
        if not same:
            self._expanded = set()
        self._workflow, self._graph = workflow, graph
        model = self._completer.model()
        if not same or (workflow is not None and model.rowCount() != len(workflow.tasks)):
            model.setStringList(list(workflow.tasks) if workflow is not None else [])
        self._rebuild(fit=not same)

    def find_task(self, text: str) -> str | None:
        """Select the task named ``text`` (or the first whose name contains it) and show it."""
        wf = self._workflow
        text = text.strip()
        if wf is None or not text:
            return None
        name = text if text in wf.tasks else None
        if name is None:
            low = text.lower()
            name = next((n for n in wf.tasks if low in n.lower()), None)
        if name is None:
            self.info.setText(f"No task matches “{text}”")
            return None
        self._selection.set([name], SEARCH)
        return name

    def reveal(self, name: str) -> None:
        """Centre the view on a task's node (its group's while collapsed), big enough to read."""
        layout = self.layout_
        item = self.items.get(layout.node_of.get(name, "")) if layout is not None else None
        if item is None:
            return
        if self.view.transform().m11() < TEXT_FROM:      # names not drawn: zoom in to read it
            self.view.zoom_to(READABLE)
        self.view.centerOn(item)

    def expand(self, group: str) -> None:
        self._expanded.add(group)
        self._rebuild(fit=False)

    def collapse(self, group: str) -> None:
        self._expanded.discard(group)
        self._rebuild(fit=False)

    def collapse_all(self) -> None:
        if self._expanded:
            self._expanded.clear()
            self._rebuild(fit=True)

    def _rebuild(self, fit: bool) -> None:
        self._syncing = True
        try:
            self.scene.clear()
            self.items = {}
            self.layout_ = None
            self._edges = QGraphicsPathItem()
            self._order_edges = QGraphicsPathItem()
            self._highlight = QGraphicsPathItem()
            wf, graph = self._workflow, self._graph
            if wf is None or graph is None:
                self._info_base = ""
                self.info.setText("")
                return
            layout = build_layout(graph.order, graph.deps, wf.groups(), self._expanded,
                                  COLLAPSE_ABOVE, order_only=_order_only(wf, graph))
            self.layout_ = layout
            dashed = layout.order_only
            self._edges.setPath(edge_path(layout, [e for e in layout.edges if e not in dashed]))
            self._edges.setZValue(-2)
            self.scene.addItem(self._edges)
            self._order_edges.setPath(edge_path(layout, [e for e in layout.edges if e in dashed]))
            self._order_edges.setZValue(-2)
            self.scene.addItem(self._order_edges)
            self._highlight.setZValue(-1)
            self.apply_palette()
            self.scene.addItem(self._highlight)
            for nid, node in layout.nodes.items():
                item = NodeItem(node)
                x, y = layout.pos[nid]
                item.setPos(x, y)
                self.scene.addItem(item)
                self.items[nid] = item
            self.scene.setSceneRect(QRectF(-24, -24, layout.width + 48, layout.height + 48))
            self._group_ids = {nid for nid, n in layout.nodes.items() if n.is_group}
            self._dirty_groups.clear()
            groups = sum(1 for n in layout.nodes.values() if n.is_group)
            text = f"{len(wf.tasks)} tasks, {len(layout.edges)} edges"
            if groups:
                text += f" · {groups} fan-out{'s' if groups != 1 else ''} collapsed (double-click to expand)"
            self._info_base = text
        finally:
            self._syncing = False
        self.update_states(None)
        self._shared_selection_changed(self._selection.names, "")
        if fit:
            self.view.fit()

    def apply_palette(self) -> None:
        """Edge colours follow the palette (light or dark)."""
        mid = self.palette().color(QPalette.ColorRole.WindowText)
        mid.setAlphaF(0.4)
        self._edges.setPen(QPen(mid, 1.2))
        order = QPen(mid, 1.2)
        order.setStyle(Qt.PenStyle.DashLine)
        self._order_edges.setPen(order)
        self._highlight.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 2.2))
        self.view.setBackgroundBrush(self.palette().color(QPalette.ColorRole.Base))

    # -- live updates -----------------------------------------------------------------

    def update_states(self, names: Iterable[str] | None, legend: bool = False,
                      defer_groups: bool = False) -> None:
        """Recolour the nodes of these tasks (all when None); ``legend``: the tasks
        outside the run changed too (a run started), so count them again.
        ``defer_groups``: a group node (a walk over all its members) is recoloured at
        most every ``GROUP_EVERY_MS``, with whatever changed meanwhile, not per batch."""
        layout = self.layout_
        if layout is None:
            return
        if names is None:
            node_ids = set(layout.nodes)
            self._dirty_groups.clear()
        else:
            node_of = layout.node_of
            node_ids = {node_of[n] for n in names if n in node_of}
        if defer_groups:
            groups = {nid for nid in node_ids if nid in self._group_ids}
            if groups:
                node_ids -= groups
                self._dirty_groups |= groups
                if not self._group_timer.isActive():
                    self._group_timer.start()
        self._recolour(node_ids)
        if names is None or legend:
            self._update_info()

    def _flush_groups(self) -> None:
        dirty, self._dirty_groups = self._dirty_groups, set()
        self._recolour(dirty)

    def _recolour(self, node_ids: Iterable[str]) -> None:
        for nid in node_ids:
            item = self.items.get(nid)
            if item is None:
                continue
            node = item.node
            if node.is_group:
                state, counts = group_state(self._states_of(node.members))
                summary = ", ".join(f"{counts[s]} {states.title(s).lower()}"
                                    for s in GROUP_PRIORITY if counts.get(s))
                item.set_state(state, summary)
            else:
                name = node.members[0]
                item.set_state(self._state_of(name), reason=self._reason_of(name))

    def _count_idle(self) -> IdleCounts:
        wf = self._workflow
        counts = Counter(self._states_of(wf.tasks)) if wf is not None else Counter()
        return IdleCounts(counts[IdleState.STALE], counts[IdleState.FRESH], 0)

    def _update_info(self) -> None:
        """The counts line, with a legend for greyed tasks (those not in the run shown)."""
        text = self._info_base
        if self._workflow is not None:
            parts = self._idle_counts().parts(dashed=True)
            if parts:
                text += " · greyed, outside the run: " + ", ".join(parts)
        self.info.setText(text)
        self.info.setToolTip(text)

    # -- selection ----------------------------------------------------------------------

    def _scene_selection_changed(self) -> None:
        if self._syncing:
            return
        names: list[str] = []
        for item in self.scene.selectedItems():
            if isinstance(item, NodeItem):
                names.extend(item.node.members)
        self._update_highlight()
        self._selection.set(names, ORIGIN)

    def _shared_selection_changed(self, names: tuple, origin: str) -> None:
        if origin == ORIGIN or self.layout_ is None:
            return
        self._syncing = True
        try:
            wanted = {self.layout_.node_of[n] for n in names if n in self.layout_.node_of}
            for nid, item in self.items.items():
                item.setSelected(nid in wanted)
            if names and origin:
                self.reveal(names[0])
        finally:
            self._syncing = False
        self._update_highlight()

    def _update_highlight(self) -> None:
        layout = self.layout_
        if layout is None:
            return
        selected = {nid for nid, item in self.items.items() if item.isSelected()}
        self._highlight.setPath(edge_path(layout, [(a, b) for a, b in layout.edges
                                                   if a in selected or b in selected]))

    # -- mouse ----------------------------------------------------------------------------

    def node_at(self, view_pos) -> NodeItem | None:
        item = self.view.itemAt(view_pos)
        return item if isinstance(item, NodeItem) else None

    def activate(self, item: NodeItem) -> None:
        if item.node.is_group:
            self.expand(item.node.group)
        else:
            self.activated.emit(item.node.members[0])

    def _context_menu(self, pos) -> None:
        item = self.node_at(pos)
        if item is None or self._workflow is None:
            return
        menu = QMenu(self)
        node = item.node
        if node.is_group:
            menu.addAction(f"Expand “{node.group}” ({len(node.members)} tasks)",
                           lambda: self.expand(node.group))
        else:
            task = self._workflow.tasks.get(node.members[0])
            if task is not None and task.group in self._expanded:
                menu.addAction(f"Collapse “{task.group}”", lambda: self.collapse(task.group))
            menu.addAction("Explain…", lambda: self.activated.emit(node.members[0]))
        menu.popup(self.view.viewport().mapToGlobal(pos))
