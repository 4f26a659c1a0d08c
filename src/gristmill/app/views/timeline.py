"""The timeline: a Gantt chart of a run, one lane per running slot, bars coloured by outcome.

Below the slots, a row per GPU device that a task of the run held: each attempt is drawn
again in the row of every device it had (shares of one device overlap there).
"""

from __future__ import annotations

import math
import time
from typing import Sequence

from PySide6.QtCore import QEvent, QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QHelpEvent, QMouseEvent, QPainter, QPalette, QPen, QWheelEvent
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QScrollArea, QToolTip,
                               QVBoxLayout, QWidget)

from gristmill.core.sizes import format_duration

from .. import theme
from ..names import fit_name, group_affixes, short_name, split_name
from ..runstate import Bar
from ..selection import Selection

LANE_H = 24
AXIS_H = 24
GUTTER = 64           # the lane names' column, at least
MAX_GUTTER = 200      # ... and at most (workers' names: host:port · slot)
ORIGIN = "timeline"
MIN_SPAN = 0.01          # seconds: the shortest axis a run with bars gets
OUTCOME_WORDS = {None: "running"}


def nice_step(span: float, pixels: float, min_px: float = 90) -> float:
    """A tick step (1, 2, 5 × 10^k seconds) that puts ticks at least ``min_px`` apart."""
    if span <= 0 or pixels <= 0:
        return 1.0
    raw = span * min_px / pixels
    k = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * k >= raw:
            return m * k
    return 10 * k


def _row_order(name: str) -> tuple:
    """"GPU 2" before "GPU 10", then MIG instances by UUID."""
    head, _, tail = name.partition(" ")
    return (0, int(tail), "") if head == "GPU" and tail.isdigit() else (1, 0, name)


def clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


class TimelineCanvas(QWidget):
    """Paints lanes and bars; hovering a bar shows its task, times and exit code."""

    clicked = Signal(str)
    zoomed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("timeline-canvas")
        self.setMouseTracking(True)
        self.bars: list[Bar] = []
        self.device_rows: list[str] = []        # GPU rows below the slots, by name
        self._slots = 0
        self.t0 = 0.0
        self.t1 = 1.0
        self.now: float | None = None
        self.zoom = 1.0
        self.selected: set[str] = set()
        self.lane_names: list[str] = []
        self.gutter = GUTTER
        self._affixes: dict[str, tuple[int, int]] = {}

    def set_bars(self, bars: Sequence[Bar], t0: float | None, t1: float | None, now: float | None,
                 lanes: Sequence[str] = ()) -> None:
        """``lanes``: the slot lanes' names (a run on a cluster: a lane per worker slot)."""
        self.bars = list(bars)
        self.lane_names = list(lanes)
        # Wide enough for the lanes' names (a worker's host and port), within bounds.
        fm = self.fontMetrics()
        self.gutter = min(MAX_GUTTER, max([GUTTER] + [fm.horizontalAdvance(n) + 16
                                                       for n in self.lane_names]))
        rows: dict[str, None] = {}
        for b in self.bars:
            rows.update(dict.fromkeys(b.devices))
        self.device_rows: list[str] = sorted(rows, key=_row_order)
        self._slots = max((b.slot for b in self.bars), default=-1) + 1
        starts = [b.start for b in self.bars]
        self.t0 = t0 if t0 is not None else (min(starts) if starts else 0.0)
        ends = [b.end for b in self.bars if b.end is not None]
        # The axis is as long as the run (a 303 ms run is not drawn as a second).
        floor = self.t0 + (MIN_SPAN if self.bars else 1.0)
        last = max([floor] + ends + ([now] if now else []) + ([t1] if t1 else []))
        self.t1 = last
        self.now = now
        groups: dict[str, list[str]] = {}
        for b in self.bars:
            parts = split_name(b.task)
            if parts is not None:
                groups.setdefault(parts[0], []).append(b.task)
        self._affixes = group_affixes({g: sorted(set(n)) for g, n in groups.items()}, short=True)
        self.update()

    def label(self, b: Bar, metrics, width: int) -> str:
        """A bar's text in ``width``: its short name, eliding what its fan-out siblings share
        (``tidy[birds.csv]`` among ``tidy[….csv]`` keeps ``birds``)."""
        parts = split_name(b.task)
        affixes = self._affixes.get(parts[0], (0, 0)) if parts else (0, 0)
        attempt = f" (#{b.attempt})" if b.attempt > 1 else ""
        room = width - metrics.horizontalAdvance(attempt)
        return fit_name(short_name(b.task), metrics.horizontalAdvance, room, affixes) + attempt

    def lanes(self) -> int:
        """Slot lanes and GPU rows."""
        return self._slots + len(self.device_rows)

    def _rects(self, b: Bar) -> list[QRectF]:
        """Where ``b`` is drawn: its slot, then the row of each GPU it had."""
        rects = [self._bar_rect(b)]
        for d in b.devices:
            r = QRectF(rects[0])
            r.moveTop(AXIS_H + (self._slots + self.device_rows.index(d)) * LANE_H + 3)
            rects.append(r)
        return rects

    def sizeHint(self) -> QSize:
        return QSize(600, AXIS_H + max(self.lanes(), 1) * LANE_H + 8)

    def _x(self, t: float) -> float:
        span = max(self.t1 - self.t0, 1e-6)
        return self.gutter + (t - self.t0) / span * (self.width() - self.gutter - 12)

    def _bar_rect(self, b: Bar) -> QRectF:
        end = b.end if b.end is not None else (self.now or b.start)
        x0, x1 = self._x(b.start), self._x(end)
        return QRectF(x0, AXIS_H + b.slot * LANE_H + 3, max(x1 - x0, 2.0), LANE_H - 6)

    def bar_at(self, pos: QPoint) -> Bar | None:
        for b in reversed(self.bars):
            if any(r.adjusted(-1, -1, 1, 1).contains(pos) for r in self._rects(b)):
                return b
        return None

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        pal = self.palette()
        painter.fillRect(self.rect(), pal.color(QPalette.ColorRole.Base))
        text = pal.color(QPalette.ColorRole.Text)
        faint = pal.color(QPalette.ColorRole.Mid)
        lanes = self.lanes()
        alt = pal.color(QPalette.ColorRole.AlternateBase)
        for i in range(lanes):
            if i % 2:
                painter.fillRect(QRect(0, AXIS_H + i * LANE_H, self.width(), LANE_H), alt)
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            name = (self.device_rows[i - self._slots] if i >= self._slots else
                    self.lane_names[i] if i < len(self.lane_names) else f"slot {i + 1}")
            painter.drawText(QRect(6, AXIS_H + i * LANE_H, self.gutter - 10, LANE_H),
                             Qt.AlignmentFlag.AlignVCenter,
                             painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight,
                                                              self.gutter - 10))
        # the time axis
        span = max(self.t1 - self.t0, 1e-6)
        step = nice_step(span, self.width() - self.gutter)
        painter.setPen(QPen(faint, 1))
        painter.drawLine(self.gutter, AXIS_H - 1, self.width(), AXIS_H - 1)
        t = 0.0
        while t <= span + 1e-9:
            x = int(self._x(self.t0 + t))
            painter.setPen(QPen(faint, 1, Qt.PenStyle.DotLine))
            painter.drawLine(x, AXIS_H, x, self.height())
            painter.setPen(text)
            label_rect = QRect(x - 40, 2, 80, AXIS_H - 4)
            if label_rect.right() > self.width() - 2:
                label_rect.moveRight(self.width() - 2)
            painter.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, format_duration(t) if t else "0 s")
            t += step
        if not self.bars:
            painter.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(self.rect().adjusted(self.gutter, AXIS_H, 0, 0), Qt.AlignmentFlag.AlignCenter,
                             "No task has run yet. Run the workflow (F5) to see its timeline.")
            return
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        clip = QRectF(_event.rect())
        highlight = pal.color(QPalette.ColorRole.Highlight)
        fm = painter.fontMetrics()
        for b in self.bars:
            for n, r in enumerate(self._rects(b)):
                if r.intersects(clip):
                    self._paint_bar(painter, b, r, highlight, fm, shared=n > 0)
        if self.now is not None:
            x = int(self._x(self.now))
            painter.setPen(QPen(highlight, 1, Qt.PenStyle.DashLine))
            painter.drawLine(x, AXIS_H, x, self.height())

    def _paint_bar(self, painter: QPainter, b: Bar, r: QRectF, highlight, fm,
                   shared: bool) -> None:
        color = theme.outcome_color(b.outcome)
        if shared:           # a GPU row: see-through, so that shares on one device show
            color = QColor(color)
            color.setAlpha(170)
        selected = b.task in self.selected
        painter.setPen(QPen(highlight, 2) if selected else QPen(color.darker(140), 1))
        painter.setBrush(color)
        painter.drawRoundedRect(r, 3, 3)
        if r.width() > 40:
            painter.setPen(theme.text_on(color))
            painter.drawText(r.adjusted(4, 0, -3, 0), Qt.AlignmentFlag.AlignVCenter,
                             self.label(b, fm, int(r.width() - 7)))

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            help_event: QHelpEvent = event
            b = self.bar_at(help_event.pos())
            if b is None:
                QToolTip.hideText()
                event.ignore()
                return True
            QToolTip.showText(help_event.globalPos(), self.describe(b), self)
            return True
        return super().event(event)

    def describe(self, b: Bar) -> str:
        end = b.end if b.end is not None else (self.now or b.start)
        outcome = b.outcome.value if b.outcome is not None else "running"
        lines = [b.task, f"attempt {b.attempt} · {outcome}",
                 f"{clock(b.start)} → {clock(end) if b.end is not None else 'now'} "
                 f"({format_duration(end - b.start)})"]
        if b.end is not None:
            lines.append(f"exit code {b.exit_code}" if b.exit_code is not None else "no exit code (killed)")
        if b.devices:
            lines.append("on " + ", ".join(b.devices))
        return "\n".join(lines)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        b = self.bar_at(event.position().toPoint())
        if b is not None:
            self.clicked.emit(b.task)
        super().mousePressEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom = min(max(self.zoom * 1.0015 ** event.angleDelta().y(), 1.0), 50.0)
            self.zoomed.emit()
            event.accept()
        else:
            super().wheelEvent(event)


class TimelinePane(QWidget):
    backToCurrent = Signal()

    def __init__(self, selection: Selection, parent: QWidget | None = None):
        super().__init__(parent)
        self._selection = selection
        self.canvas = TimelineCanvas()
        self.title = QLabel("Current run", self)
        self.title.setObjectName("timeline-title")
        self.back = QPushButton("Back to Current Run", self)
        self.back.setToolTip("Show the run of this session instead of a past run")
        self.back.hide()
        self.scroll = QScrollArea(self)
        self.scroll.setWidget(self.canvas)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 0)
        bar.addWidget(self.title, 1)
        hint = QLabel("Ctrl+wheel to zoom", self)
        hint.setEnabled(False)
        bar.addWidget(hint)
        bar.addWidget(self.back)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.scroll, 1)
        self._connect_signals()

    def _connect_signals(self) -> None:
        self.canvas.clicked.connect(lambda name: self._selection.set([name], ORIGIN))
        self._selection.changed.connect(self._selection_changed)
        self.back.clicked.connect(self.backToCurrent)
        self.canvas.zoomed.connect(self._fit_width)

    def show_run(self, bars: Sequence[Bar], t0: float | None, t1: float | None,
                 now: float | None, title: str, past: bool = False,
                 lanes: Sequence[str] = ()) -> None:
        self.title.setText(title)
        self.back.setVisible(past)
        self.canvas.set_bars(bars, t0, t1, now, lanes)
        self._fit_width()

    def _fit_width(self) -> None:
        """The canvas fills the viewport; zoomed in, it is wider and scrolls."""
        viewport = self.scroll.viewport().width()
        zoom = self.canvas.zoom
        self.canvas.setMinimumWidth(int(viewport * zoom) if zoom > 1.0 else 0)
        self.canvas.setMinimumHeight(self.canvas.sizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_width()

    def _selection_changed(self, names: tuple, _origin: str) -> None:
        self.canvas.selected = set(names)
        self.canvas.update()
