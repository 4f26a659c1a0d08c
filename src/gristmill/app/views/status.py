"""Status bar widgets: progress weighted by estimated durations, the ETA, capacity in use."""

from __future__ import annotations

import time
from typing import Mapping

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from gristmill.core.decide.capacity import Capacity
from gristmill.core.events import RunStatus, TaskState, run_status_words
from gristmill.core.sizes import format_duration, format_size

from .. import theme
from ..runstate import Estimate, RunState


GAP = 14          # px between two status texts


def eta_words(est: Estimate) -> str:
    """The time left in words, saying when it is a guess (tasks with no history)."""
    if not est.guessed:
        return f"ETA {format_duration(est.left)}" if est.left is not None else "ETA …"
    tasks = f"{est.guessed} task{'s' if est.guessed != 1 else ''}"
    if est.left is None:
        return f"ETA unknown: no history yet for {tasks}"
    return f"ETA ~{format_duration(est.left)} (a guess: no history for {tasks})"


class RunStatusWidgets:
    """Owned by the window; ``update`` is called after each batch and on a slow timer."""

    def __init__(self, bar: QStatusBar):
        self.counts = QLabel(bar)
        self.counts.setObjectName("status-counts")
        self.progress = QProgressBar(bar)
        self.progress.setObjectName("status-progress")
        self.progress.setRange(0, 1000)
        self.progress.setFixedWidth(180)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.progress.setToolTip("Progress of the run, weighted by how long each task is expected to take")
        self.eta = QLabel(bar)
        self.eta.setObjectName("status-eta")
        self.eta.setToolTip("Estimated time left")
        self.capacity = QLabel(bar)
        self.capacity.setObjectName("status-capacity")
        self.capacity.setToolTip("Capacity in use by running tasks, of what this machine offers")
        for w in (self.counts, self.progress, self.eta, self.capacity):
            bar.addPermanentWidget(w)
        for label in (self.counts, self.eta, self.capacity):
            label.setContentsMargins(GAP // 2, 0, GAP // 2, 0)   # texts never run into each other

    def update(self, run: RunState, estimates: Mapping[str, float], capacity: Capacity | None,
               now: float | None = None) -> None:
        now = time.time() if now is None else now
        counts = run.state_counts()
        if run.status is RunStatus.RUNNING:
            counts[TaskState.RUNNING] = run.running_count()     # the engine's books
        titles = dict(theme.STATE_TITLES)
        if run.dry_run:          # a plan: its waiting tasks would run; nothing ran
            titles[TaskState.WAITING] = "Would run"
        parts = [f"{counts[s]} {titles[s].lower()}" for s in theme.BOARD_STATES if counts.get(s)]
        self.counts.setText(" · ".join(parts))
        if run.dry_run and run.status is not RunStatus.RUNNING:
            self.progress.setValue(0)
            self.progress.setVisible(False)     # a plan is not a run: nothing to be done with
            words = run.plan_words()
            self.eta.setText(words[0].upper() + words[1:])
        elif run.status is None:
            self.progress.setValue(0)
            self.progress.setVisible(False)
            self.eta.setText("")
        else:
            est = run.estimate(estimates, now)
            self.progress.setVisible(True)
            self.progress.setValue(int(est.fraction * 1000))
            if run.status is RunStatus.RUNNING:
                self.eta.setText(eta_words(est))
            else:
                took = (run.finished_at or now) - (run.started_at or now)
                words = run_status_words(run.status, run.counts)
                self.eta.setText(f"{words}{', in' if ':' in words else ' in'} "
                                 f"{format_duration(took)}")
        if capacity is None:
            self.capacity.setText("")
            return
        cpu, mem, gpu = run.in_use()
        text = f"CPU {cpu:g}/{capacity.cpu:g} · Mem {format_size(mem) if mem else '0'}/{format_size(capacity.mem)}"
        if capacity.gpu:
            text += f" · GPU {gpu:g}/{capacity.gpu}"
        running = run.running_count()
        if capacity.jobs:
            text += f" · Jobs {running}/{capacity.jobs}"
        self.capacity.setText(text)
