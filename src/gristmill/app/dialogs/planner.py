"""Tools > Capacity Planner: what more hardware would buy.

The makespan against cores, one line per GPU count (pyqtgraph), the simulated schedule
of one point in the run's own timeline widget, and that point's bottleneck in the
core's words. The numbers are ``Workbench.plan_capacity`` (the core's ``simulate`` and
``explain``), computed on a thread."""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QSpinBox, QSplitter, QVBoxLayout, QWidget)
from PySide6.QtCore import Qt

from gristmill.core.sizes import format_duration, parse_size

from ..planner import PlannerAsk, PlannerResult, parse_gpus
from ..runstate import Bar
from ..selection import Selection
from ..views.timeline import TimelinePane
from gristmill.core.events import Outcome

COLOURS = ("#3b7dd8", "#d8793b", "#3bb273", "#a04bd8", "#d83b5e", "#7d7d7d")


def bars_of(prediction, t0: float) -> list[Bar]:
    """A prediction's schedule as timeline bars, starting at ``t0``."""
    return [Bar(s.task, 1, s.slot, t0 + s.start, t0 + s.end, Outcome.SUCCEEDED)
            for s in prediction.schedule]


class CapacityPlannerDialog(QDialog):
    _done = Signal(object)          # PlannerResult from the thread

    def __init__(self, predict, parent: QWidget | None = None, cpu_hi: int = 16):
        """``predict(PlannerAsk) -> PlannerResult``, called on a thread."""
        super().__init__(parent)
        import pyqtgraph as pg
        self._predict = predict
        self.setObjectName("planner-dialog")
        self.setWindowTitle("Capacity Planner")
        self.resize(900, 640)
        self.result: PlannerResult | None = None
        self.busy = False
        self.cpu_lo = QSpinBox(self)
        self.cpu_lo.setObjectName("planner-cpu-lo")
        self.cpu_lo.setRange(1, 4096)
        self.cpu_lo.setValue(1)
        self.cpu_hi = QSpinBox(self)
        self.cpu_hi.setObjectName("planner-cpu-hi")
        self.cpu_hi.setRange(1, 4096)
        self.cpu_hi.setValue(max(1, cpu_hi))
        self.gpus = QLineEdit("0", self)
        self.gpus.setObjectName("planner-gpus")
        self.gpus.setToolTip("GPU counts, one curve each: e.g. 0, 1, 2")
        self.mem = QLineEdit(self)
        self.mem.setObjectName("planner-mem")
        self.mem.setPlaceholderText("as this machine (e.g. 32GB)")
        self.go = QPushButton("Predict", self)
        self.go.setObjectName("planner-predict")
        self.go.setDefault(True)
        self.error = QLabel(self)
        self.error.setObjectName("planner-error")
        self.error.setStyleSheet("color: #d0493e")
        self.error.setWordWrap(True)
        self.error.hide()
        self.summary = QLabel(self)
        self.summary.setObjectName("planner-summary")
        self.summary.setWordWrap(True)
        self.plot = pg.PlotWidget(self)
        self.plot.setObjectName("planner-curve")
        self.plot.setLabel("bottom", "cores")
        self.plot.setLabel("left", "makespan (s)")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setMouseEnabled(x=False, y=False)
        self.legend = self.plot.addLegend()
        self.point = QComboBox(self)
        self.point.setObjectName("planner-point")
        self.point.setToolTip("The capacity whose simulated schedule and bottleneck are shown")
        self.bottleneck = QLabel(self)
        self.bottleneck.setObjectName("planner-bottleneck")
        self.bottleneck.setWordWrap(True)
        self.bottleneck.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.timeline = TimelinePane(Selection(self), self)
        self.timeline.setObjectName("planner-timeline")

        cores = QHBoxLayout()
        cores.addWidget(self.cpu_lo)
        cores.addWidget(QLabel("to", self))
        cores.addWidget(self.cpu_hi)
        form = QFormLayout()
        form.addRow("Cores:", cores)
        form.addRow("GPU counts:", self.gpus)
        form.addRow("Memory:", self.mem)
        top = QHBoxLayout()
        top.addLayout(form, 1)
        top.addWidget(self.go, 0, Qt.AlignmentFlag.AlignBottom)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Schedule on:", self))
        pick.addWidget(self.point, 1)
        lower = QWidget(self)
        low = QVBoxLayout(lower)
        low.setContentsMargins(0, 0, 0, 0)
        low.addLayout(pick)
        low.addWidget(self.bottleneck)
        low.addWidget(self.timeline, 1)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.plot)
        split.addWidget(lower)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.error)
        layout.addWidget(self.summary)
        layout.addWidget(split, 1)
        self.go.clicked.connect(self.predict)
        self.point.currentIndexChanged.connect(self._show_point)
        self._done.connect(self._finished)

    def ask(self) -> PlannerAsk | None:
        """The inputs, or None with the error shown."""
        problem = ""
        try:
            gpus = parse_gpus(self.gpus.text())
        except ValueError as exc:
            gpus, problem = (), f"GPU counts: {exc}"
        mem = self.mem.text().strip()
        if mem and not problem:
            try:
                parse_size(mem)
            except ValueError as exc:
                problem = f"Memory: {exc}"
        if self.cpu_hi.value() < self.cpu_lo.value() and not problem:
            problem = "Cores: the upper end is below the lower one"
        self.error.setText(problem)
        self.error.setVisible(bool(problem))
        if problem:
            return None
        return PlannerAsk(self.cpu_lo.value(), self.cpu_hi.value(), gpus, mem)

    def predict(self) -> None:
        ask = self.ask()
        if ask is None or self.busy:
            return
        self.busy = True
        self.go.setEnabled(False)
        self.summary.setText("Simulating…")

        def work() -> None:
            try:
                result = self._predict(ask)
            except Exception as exc:        # said in the dialog, never a traceback
                result = PlannerResult((), None, error=f"{type(exc).__name__}: {exc}")
            try:
                self._done.emit(result)
            except RuntimeError:           # the dialog was closed meanwhile
                pass

        threading.Thread(target=work, name="gristmill-planner", daemon=True).start()

    def _finished(self, result: PlannerResult) -> None:
        self.busy = False
        self.go.setEnabled(True)
        self.result = result
        import pyqtgraph as pg
        self.plot.clear()
        self.legend.clear()
        self.point.blockSignals(True)
        self.point.clear()
        self.error.setText(result.error)
        self.error.setVisible(bool(result.error))
        self.summary.setText("")
        if result.durations is not None:
            n = len(result.names)
            self.summary.setText(
                f"{n} task{'s' if n != 1 else ''} to run; durations: "
                f"{result.durations.describe() if result.durations else '–'}.")
        for i, (g, predictions) in enumerate(result.curves.items()):
            xs = [p.capacity.cpu for p in predictions]
            ys = [p.makespan for p in predictions]
            colour = COLOURS[i % len(COLOURS)]
            item = self.plot.plot(xs, ys, pen=pg.mkPen(colour, width=2), symbol="o",
                                  symbolSize=9, symbolBrush=colour,
                                  name=f"{g} GPU{'s' if g != 1 else ''}")
            first_index = self.point.count()
            item.sigPointsClicked.connect(
                lambda _item, points, _ev, first=first_index: self._clicked(first, points))
            for p in predictions:
                self.point.addItem(f"{p.label} — {format_duration(p.makespan)}", p)
        self.point.blockSignals(False)
        first = next(iter(result.curves.values()), [])
        if first:       # the most cores of the first GPU count
            self.point.setCurrentIndex(len(first) - 1)
        self._show_point()

    def _clicked(self, first: int, points) -> None:
        """A point of a curve clicked: its schedule and bottleneck are shown."""
        if len(points):
            self.point.setCurrentIndex(first + int(points[0].index()))

    def selected(self):
        return self.point.currentData()

    def _show_point(self, _index: int = 0) -> None:
        p = self.selected()
        if p is None:
            self.bottleneck.setText("")
            self.timeline.show_run([], 0.0, 1.0, None, "No prediction yet: press Predict")
            return
        self.bottleneck.setText(p.bottleneck)
        t0 = time.time()
        self.timeline.show_run(bars_of(p, t0), t0, t0 + p.makespan, None,
                               f"Simulated schedule on {p.label}: {format_duration(p.makespan)}; "
                               f"critical path {format_duration(p.critical_length)}")
