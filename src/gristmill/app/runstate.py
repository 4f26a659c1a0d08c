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
                                   RunStarted, RunStatus, TaskAudited, TaskFinished,
                                   TaskStarted, TaskState,
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
    devices: tuple = ()                    # GpuDevice of the last attempt
    gpu_peak_mem: int | None = None
    gpu_util: float | None = None


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
    devices: tuple[str, ...] = ()      # the GPU rows it is drawn in too: "GPU 0", "MIG-5f0e…"


def device_rows(devices) -> tuple[str, ...]:
    """The timeline's row names of GPU devices (``GpuDevice`` or history's dicts)."""
    out = []
    for d in devices:
        d = d if isinstance(d, Mapping) else d.as_json()
        uuid = str(d.get("uuid") or "")
        out.append(uuid[:12] + "…" if d.get("mig") and uuid else f"GPU {d.get('index')}")
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Estimate:
    """How far a run is: the fraction done, the seconds left (None: not known yet), and
    how many of its tasks have no estimate (no recorded success): then it is a guess."""

    fraction: float
    left: float | None
    guessed: int = 0


@dataclass
class Changes:
    """What one batch of events changed."""

    tasks: set[str] = field(default_factory=set)
    lines: list[OutputLine] = field(default_factory=list)
    bars: bool = False
    started: RunStarted | None = None
    finished: RunFinished | None = None
    notices: list[str] = field(default_factory=list)    # RunNotice texts
    ended: set[str] = field(default_factory=set)        # of ``tasks``, those with an attempt over

    def __bool__(self) -> bool:
        return bool(self.tasks or self.lines or self.bars or self.started or self.finished
                    or self.notices)


# RunNotice kinds that stop the run: the window's banner says them.
FAULTS = frozenset({"cluster", "scheduler-lost"})


class LogBook:
    """Output lines per task attempt, and the interleaved output of the whole run."""

    def __init__(self, task_limit: int = TASK_LOG_LIMIT, run_limit: int = RUN_LOG_LIMIT):
        self._task_limit = task_limit
        self._by_attempt: dict[tuple[str, int], deque[str]] = {}
        self._times: dict[tuple[str, int], deque[float]] = {}     # when each line came
        self.run: deque[tuple[str, int, str]] = deque(maxlen=run_limit)
        self.run_times: deque[float] = deque(maxlen=run_limit)

    def add(self, line: OutputLine) -> None:
        key = (line.task, line.attempt)
        buf = self._by_attempt.get(key)
        if buf is None:
            buf = self._by_attempt[key] = deque(maxlen=self._task_limit)
            self._times[key] = deque(maxlen=self._task_limit)
        buf.append(line.text)
        self._times[key].append(line.time)
        self.run.append((line.task, line.attempt, line.text))
        self.run_times.append(line.time)

    def times(self, task: str, attempt: int) -> list[float]:
        return list(self._times.get((task, attempt), ()))

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
        # The engine's books: what each attempt started and not yet finished holds. Its
        # capacity is taken just before TaskStarted and given back just before
        # TaskFinished, so these are what the engine has allocated after every event.
        self.allocated: dict[tuple[str, int], Resources] = {}
        self.log = LogBook()
        self.audits: dict[str, TaskAudited] = {}      # the dependency audit, per task
        self.notices: list[str] = []     # what the run told about itself (RunNotice)
        self.faults: list[str] = []      # ... of them, why the run stopped (cluster, scheduler)
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
                if tr.finished is not None:
                    changes.ended.add(ev.task)
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
            elif isinstance(ev, TaskAudited):
                self.audits[ev.task] = ev
                changes.tasks.add(ev.task)
                if self.tasks.get(ev.task) is not None and self.tasks[ev.task].finished is not None:
                    changes.ended.add(ev.task)
            elif isinstance(ev, RunNotice):
                self.notices.append(ev.message)
                if ev.kind in FAULTS:
                    self.faults.append(ev.message)
                changes.notices.append(ev.message)
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
        tr.devices = ev.devices
        tr.gpu_peak_mem = tr.gpu_util = None
        self.allocated[(ev.task, ev.attempt)] = ev.resources
        self._open_bars[(ev.task, ev.attempt)] = len(self.bars)
        self.bars.append(Bar(ev.task, ev.attempt, ev.slot, ev.time, log_path=ev.log_path,
                             devices=device_rows(ev.devices)))
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
        tr.gpu_peak_mem = ev.gpu_peak_mem
        tr.gpu_util = ev.gpu_util
        self.allocated.pop((ev.task, ev.attempt), None)
        if ev.outcome is Outcome.SUCCEEDED and tr.state is TaskState.RUNNING:
            # Done, as the engine's TaskStateChanged will say: it may first start the
            # tasks this one's slot lets in, and the task must not count as running then.
            tr.state = TaskState.DONE
        index = self._open_bars.pop((ev.task, ev.attempt), None)
        if index is not None:
            b = self.bars[index]
            self.bars[index] = Bar(b.task, b.attempt, b.slot, b.start, ev.time, ev.outcome,
                                   ev.exit_code, b.log_path, b.devices)
            changes.bars = True
        changes.tasks.add(ev.task)
        changes.ended.add(ev.task)

    def _close_open_bars(self, when: float) -> None:
        for index in self._open_bars.values():
            b = self.bars[index]
            self.bars[index] = Bar(b.task, b.attempt, b.slot, b.start, when, Outcome.CANCELLED,
                                   None, b.log_path)
        self._open_bars.clear()
        self.allocated.clear()

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
        """The tasks with an attempt started and not finished (the engine's books)."""
        return list(dict.fromkeys(task for task, _ in self.allocated))

    def would_run(self) -> list[str]:
        """A plan's (dry run's) tasks that would run, in run order."""
        if not self.dry_run:
            return []
        return [n for n in self.plan if self.state_of(n) is TaskState.WAITING]

    def plan_words(self) -> str:
        """A plan in words: "plan: 3 would run, 2 up to date; nothing ran"."""
        would = len(self.would_run())
        fresh = len(self.plan) - would
        if not would:
            return f"plan: nothing would run ({fresh} up to date); nothing ran"
        up = f", {fresh} up to date" if fresh else ""
        return f"plan: {would} would run{up}; nothing ran"

    def running_count(self) -> int:
        return len(self.allocated)

    def in_use(self) -> tuple[float, int, float]:
        """(cpu, mem bytes, gpu) the engine has allocated now: what the attempts started
        and not yet finished declared."""
        cpu, mem, gpu = 0.0, 0, 0
        for r in self.allocated.values():
            cpu += r.cpu
            mem += r.mem
            gpu += r.gpu
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
        """(fraction done, seconds left or None): ``estimate`` without its honesty."""
        e = self.estimate(estimates, now)
        return e.fraction, e.left

    def estimate(self, estimates: Mapping[str, float], now: float) -> Estimate:
        """How far the run is, and how long it has left.

        With an estimate (a recorded success) for every task it runs: weighted by
        them; tasks found up to date or skipped weigh nothing, a running task counts
        its elapsed time, capped just below its estimate. Without (a guess): the
        tasks finished, counted; the time left is what the running ones have left
        and the waiting ones take, each at its estimate or else at the mean of this
        run's finished tasks, and unknown until one has finished. A cancelled run
        stays at what it got done: what it stopped or never started is not done.
        """
        if not self.plan:
            return Estimate(0.0, None)
        stopped = self.status is RunStatus.CANCELLED
        ended = (TaskState.DONE,) if stopped else (TaskState.DONE, TaskState.FAILED,
                                                  TaskState.CANCELLED)
        counted: list[tuple[str, TaskRun | None]] = []
        guessed = 0
        for name in self.plan:
            tr = self.tasks.get(name)
            state = tr.state if tr else None
            if state is TaskState.UP_TO_DATE or (state is TaskState.SKIPPED and not stopped):
                continue
            counted.append((name, tr))
            if not estimates.get(name):
                guessed += 1
        if guessed:
            return self._guess(counted, estimates, now, ended, stopped, guessed)
        fallback = self._fallback(estimates)
        total = done = 0.0
        for name, tr in counted:
            state = tr.state if tr else None
            w = max(estimates.get(name) or fallback, 0.05)
            total += w
            if state in ended:
                done += w
            elif state is TaskState.RUNNING and tr is not None and tr.started is not None:
                done += min(max(now - tr.started, 0.0), 0.95 * w)
        if stopped:
            return Estimate(done / total if total > 0 else 0.0, 0.0)
        if self.status is not None and self.status is not RunStatus.RUNNING:
            return Estimate(1.0, 0.0)
        if total <= 0:
            return Estimate(1.0 if self.finished_at else 0.0, None)
        fraction = min(done / total, 1.0)
        elapsed = now - self.started_at if self.started_at is not None else 0.0
        if done <= 0 or elapsed < 1.0:
            return Estimate(fraction, None)
        rate = done / elapsed            # estimated work-seconds per wall second
        return Estimate(fraction, max(total - done, 0.0) / rate)

    def _guess(self, counted: list[tuple[str, TaskRun | None]], estimates: Mapping[str, float],
               now: float, ended: tuple[TaskState, ...], stopped: bool, guessed: int) -> Estimate:
        """``estimate`` when some task has no estimate: finished tasks counted."""
        finished = 0
        took = [tr.duration for _, tr in counted
                if tr is not None and tr.state is TaskState.DONE and tr.duration is not None]
        mean = sum(took) / len(took) if took else None
        left: float | None = 0.0
        running = 0
        for name, tr in counted:
            state = tr.state if tr else None
            if state in ended:
                finished += 1
                continue
            expected = estimates.get(name) or mean
            if state is TaskState.RUNNING:
                running += 1
            if expected is None or left is None:
                left = None
                continue
            if state is TaskState.RUNNING and tr is not None and tr.started is not None:
                left += max(expected - max(now - tr.started, 0.0), 0.0)
            else:
                left += expected
        fraction = finished / len(counted) if counted else 0.0
        if stopped:
            return Estimate(fraction, 0.0, guessed)
        if self.status is not None and self.status is not RunStatus.RUNNING:
            return Estimate(1.0, 0.0, guessed)
        if left is not None:
            left /= max(running, 1)          # as many at once as run now
        return Estimate(fraction, left, guessed)
