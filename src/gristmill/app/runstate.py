"""The state of one run, as the app sees it: built only by applying engine events.

Pure Python (no Qt), so it is tested by feeding it events by hand. The bridge
applies a batch of events and hands the returned ``Changes`` to the Qt models,
which turn them into ``dataChanged`` over row ranges.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from gristmill.core.events import (Event, OutputLine, Outcome, RunFinished, RunNotice,
                                   RunStarted, RunStatus, TaskFinished, TaskStarted, TaskState,
                                   TaskStateChanged, TasksUpToDate)
from gristmill.core.reasons import Reason
from gristmill.core.workflow import Resources

TASK_LOG_LIMIT = 20_000     # lines kept per task attempt
RUN_LOG_LIMIT = 50_000      # lines kept for the whole run


@dataclass
class TaskRun:
    """What happened to one task in the current run (mutable; owned by RunState)."""

    state: TaskState | None = None
    reasons: tuple[Reason, ...] = ()
    attempt: int = 0
    started: float | None = None
    finished: float | None = None
    duration: float | None = None
    outcome: Outcome | None = None
    exit_code: int | None = None
    slot: int | None = None
    resources: Resources | None = None
    log_path: str = ""
    peak_mem: int | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Bar:
    """One attempt of one task on the timeline. ``end`` is None while it runs."""

    task: str
    attempt: int
    slot: int
    start: float
    end: float | None = None
    outcome: Outcome | None = None
    exit_code: int | None = None
    log_path: str = ""


@dataclass
class Changes:
    """What one batch of events changed."""

    tasks: set[str] = field(default_factory=set)
    lines: list[OutputLine] = field(default_factory=list)
    bars: bool = False
    started: RunStarted | None = None
    finished: RunFinished | None = None
    notices: list[str] = field(default_factory=list)    # RunNotice texts

    def __bool__(self) -> bool:
        return bool(self.tasks or self.lines or self.bars or self.started or self.finished
                    or self.notices)


class LogBook:
    """Output lines per task attempt, and the interleaved output of the whole run."""

    def __init__(self, task_limit: int = TASK_LOG_LIMIT, run_limit: int = RUN_LOG_LIMIT):
        self._task_limit = task_limit
        self._by_attempt: dict[tuple[str, int], deque[str]] = {}
        self.run: deque[tuple[str, int, str]] = deque(maxlen=run_limit)

    def add(self, line: OutputLine) -> None:
        key = (line.task, line.attempt)
        buf = self._by_attempt.get(key)
        if buf is None:
            buf = self._by_attempt[key] = deque(maxlen=self._task_limit)
        buf.append(line.text)
        self.run.append((line.task, line.attempt, line.text))

    def lines(self, task: str, attempt: int) -> list[str]:
        return list(self._by_attempt.get((task, attempt), ()))

    def attempts(self, task: str) -> list[int]:
        return sorted(a for (t, a) in self._by_attempt if t == task)


class RunState:
    """Per-task state, timeline bars and logs of the run being shown."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.run_id: str = ""
        self.workflow_path: str = ""
        self.targets: tuple[str, ...] = ()
        self.plan: tuple[str, ...] = ()
        self.dry_run = False
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.status: RunStatus | None = None
        self.counts: Mapping[str, int] = {}
        self.tasks: dict[str, TaskRun] = {}
        self.bars: list[Bar] = []
        self._open_bars: dict[tuple[str, int], int] = {}
        self.log = LogBook()
        self.notices: list[str] = []     # what the run told about itself (RunNotice)
        self._fallback_of: Mapping[str, float] | None = None
        self._fallback_len = 0
        self._fallback_value = 1.0

    # -- applying events ------------------------------------------------------

    def apply(self, events: Iterable[Event]) -> Changes:
        changes = Changes()
        for ev in events:
            if isinstance(ev, RunStarted):
                self._run_started(ev, changes)
            elif ev.run_id != self.run_id:
                continue       # a straggler from an earlier run
            elif isinstance(ev, TaskStateChanged):
                tr = self._task(ev.task)
                tr.state = ev.state
                if ev.reasons:
                    tr.reasons = ev.reasons
                if ev.attempt:
                    tr.attempt = ev.attempt
                changes.tasks.add(ev.task)
            elif isinstance(ev, TasksUpToDate):
                up_to_date, task = TaskState.UP_TO_DATE, self._task
                for name, reasons in zip(ev.tasks, ev.reasons):
                    tr = task(name)
                    tr.state = up_to_date
                    if reasons:
                        tr.reasons = reasons
                changes.tasks.update(ev.tasks)
            elif isinstance(ev, TaskStarted):
                self._task_started(ev, changes)
            elif isinstance(ev, OutputLine):
                self.log.add(ev)
                changes.lines.append(ev)
            elif isinstance(ev, TaskFinished):
                self._task_finished(ev, changes)
            elif isinstance(ev, RunNotice):
                self.notices.append(ev.text)
                changes.notices.append(ev.text)
            elif isinstance(ev, RunFinished):
                self.status = ev.status
                self.finished_at = ev.time
                self.counts = dict(ev.counts)
                self._close_open_bars(ev.time)
                changes.finished = ev
                changes.bars = True
        return changes

    def _run_started(self, ev: RunStarted, changes: Changes) -> None:
        old = set(self.tasks)
        self.reset()
        self.run_id = ev.run_id
        self.workflow_path = ev.workflow_path
        self.targets = ev.targets
        self.plan = ev.tasks
        self.dry_run = ev.dry_run
        self.started_at = ev.time
        self.status = RunStatus.RUNNING
        for name in ev.tasks:
            self.tasks[name] = TaskRun(state=TaskState.WAITING)
        changes.tasks |= old | set(ev.tasks)
        changes.started = ev
        changes.bars = True

    def _task(self, name: str) -> TaskRun:
        tr = self.tasks.get(name)
        if tr is None:
            tr = self.tasks[name] = TaskRun()
        return tr

    def _task_started(self, ev: TaskStarted, changes: Changes) -> None:
        tr = self._task(ev.task)
        tr.state = TaskState.RUNNING
        tr.attempt = ev.attempt
        tr.started = ev.time
        tr.finished = None
        tr.outcome = None
        tr.exit_code = None
        tr.slot = ev.slot
        tr.resources = ev.resources
        tr.log_path = ev.log_path
        self._open_bars[(ev.task, ev.attempt)] = len(self.bars)
        self.bars.append(Bar(ev.task, ev.attempt, ev.slot, ev.time, log_path=ev.log_path))
        changes.tasks.add(ev.task)
        changes.bars = True

    def _task_finished(self, ev: TaskFinished, changes: Changes) -> None:
        tr = self._task(ev.task)
        tr.finished = ev.time
        tr.duration = ev.duration
        tr.outcome = ev.outcome
        tr.exit_code = ev.exit_code
        tr.peak_mem = ev.peak_mem
        tr.message = ev.message
        index = self._open_bars.pop((ev.task, ev.attempt), None)
        if index is not None:
            b = self.bars[index]
            self.bars[index] = Bar(b.task, b.attempt, b.slot, b.start, ev.time, ev.outcome,
                                   ev.exit_code, b.log_path)
            changes.bars = True
        changes.tasks.add(ev.task)

    def _close_open_bars(self, when: float) -> None:
        for index in self._open_bars.values():
            b = self.bars[index]
            self.bars[index] = Bar(b.task, b.attempt, b.slot, b.start, when, Outcome.CANCELLED,
                                   None, b.log_path)
        self._open_bars.clear()

    # -- questions ------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.status is RunStatus.RUNNING

    def state_of(self, name: str) -> TaskState | None:
        tr = self.tasks.get(name)
        return tr.state if tr else None

    def state_counts(self) -> Counter[TaskState]:
        return Counter(tr.state for tr in self.tasks.values() if tr.state is not None)

    def running_tasks(self) -> list[str]:
        return [n for n, tr in self.tasks.items() if tr.state is TaskState.RUNNING]

    def in_use(self) -> tuple[float, int, int]:
        """(cpu, mem bytes, gpu) declared by the tasks running now."""
        cpu, mem, gpu = 0.0, 0, 0
        for tr in self.tasks.values():
            if tr.state is TaskState.RUNNING and tr.resources is not None:
                cpu += tr.resources.cpu
                mem += tr.resources.mem
                gpu += tr.resources.gpu
        return cpu, mem, gpu

    def _fallback(self, estimates: Mapping[str, float]) -> float:
        """The weight of a task with no estimate: the median estimate. Worked out once
        per estimates mapping (a scan makes a new one), not at every batch of events."""
        if self._fallback_of is not estimates or self._fallback_len != len(estimates):
            known = [v for v in estimates.values() if v and v > 0]
            self._fallback_of, self._fallback_len = estimates, len(estimates)
            self._fallback_value = statistics.median(known) if known else 1.0
        return self._fallback_value

    def progress(self, estimates: Mapping[str, float], now: float) -> tuple[float, float | None]:
        """(fraction done, seconds left or None), weighted by estimated durations.

        Tasks found up to date or skipped weigh nothing; a running task counts
        its elapsed time, capped just below its estimate.
        """
        if not self.plan:
            return 0.0, None
        fallback = self._fallback(estimates)
        total = done = 0.0
        for name in self.plan:
            tr = self.tasks.get(name)
            state = tr.state if tr else None
            if state in (TaskState.UP_TO_DATE, TaskState.SKIPPED):
                continue
            w = max(estimates.get(name) or fallback, 0.05)
            total += w
            if state in (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED):
                done += w
            elif state is TaskState.RUNNING and tr is not None and tr.started is not None:
                done += min(max(now - tr.started, 0.0), 0.95 * w)
        if self.status is not None and self.status is not RunStatus.RUNNING:
            return 1.0, 0.0
        if total <= 0:
            return 1.0 if self.finished_at else 0.0, None
        fraction = min(done / total, 1.0)
        elapsed = now - self.started_at if self.started_at is not None else 0.0
        if done <= 0 or elapsed < 1.0:
            return fraction, None
        rate = done / elapsed            # estimated work-seconds per wall second
        return fraction, max(total - done, 0.0) / rate
