"""Typed, immutable events the engine publishes, and the bus that carries them.

The CLI printer, the JSON-lines run log, history and the app's bridge are all
subscribers. ``EventBus.publish`` calls subscribers synchronously on the
engine's thread, so a subscriber must be quick (the app's bridge only puts the
event on a queue).
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .gpu import GpuDevice
from .findings import AuditFinding
from .reasons import Reason
from .workflow import Resources


class TaskState(enum.Enum):
    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    UP_TO_DATE = "up-to-date"
    CANCELLED = "cancelled"        # the user cancelled this task alone; the run went on

    @property
    def words(self) -> str:
        """The state as a user reads it: "up to date", never the id's "up-to-date"."""
        return self.value.replace("-", " ")

    @property
    def finished(self) -> bool:
        return self in (TaskState.DONE, TaskState.FAILED, TaskState.SKIPPED, TaskState.UP_TO_DATE,
                        TaskState.CANCELLED)


class RunStatus(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"     # the process died mid-run; found on next open


def run_status_words(status: RunStatus, counts: Mapping[str, int]) -> str:
    """A finished run's status in words: "succeeded", or "succeeded, with 1 task
    cancelled" when the user cancelled tasks one by one and the run went on; a
    cancelled run says what it stopped and what never started ("cancelled: 2
    stopped, 1 not started")."""
    words = status.value
    cancelled = counts.get(TaskState.CANCELLED.value, 0)
    if status is RunStatus.CANCELLED:
        skipped = counts.get(TaskState.SKIPPED.value, 0)
        parts = [f"{n} {what}" for n, what in ((cancelled, "stopped"), (skipped, "not started"))
                 if n]
        if parts:
            words += ": " + ", ".join(parts)
    elif cancelled:
        words += f", with {cancelled} task{'s' if cancelled != 1 else ''} cancelled"
    return words


class Outcome(enum.Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Event:
    run_id: str
    time: float          # time.time() when it happened


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    workflow: str                     # workflow name
    workflow_path: str
    targets: tuple[str, ...]
    tasks: tuple[str, ...]            # every task in the plan, in topological order
    dry_run: bool = False
    log_path: str = ""                # the JSON-lines run log
    started_by: str = ""              # "" (asked for), or "watch": started by a change on disk
    changed: tuple[str, ...] = ()     # the files whose change started it (watch), root-relative


@dataclass(frozen=True, slots=True)
class TaskStateChanged(Event):
    """A task's new state. RUNNING and DONE are told by ``TaskStarted`` and a succeeded
    ``TaskFinished`` instead (``told_state``); a DONE comes as well only with reasons (how
    a success came after out-of-memory kills)."""
    task: str
    state: TaskState
    reasons: tuple[Reason, ...] = ()
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class TasksUpToDate(Event):
    """At a run's start, every task of the plan found up to date, in one event.

    A no-op run of 20,000 tasks is this one event, not 20,000 ``TaskStateChanged``;
    each named task is in ``TaskState.UP_TO_DATE`` from here on (a task rechecked
    later, after its dependencies ran, still gets its own ``TaskStateChanged``).
    """

    tasks: tuple[str, ...]
    reasons: tuple[tuple[Reason, ...], ...]   # per task, in the order of ``tasks``


@dataclass(frozen=True, slots=True)
class TaskStarted(Event):
    task: str
    attempt: int                      # 1 for the first attempt
    slot: int                         # a lane for timelines: lowest free slot index
    resources: Resources = field(default_factory=Resources)
    gpus: tuple[int, ...] = ()        # the devices' indices (a MIG instance: its GPU's)
    log_path: str = ""                # this attempt's output
    command: str = ""                 # the commands, one per line
    definition_hash: str = ""         # Task.definition_hash, remembered by history on success
    devices: tuple[GpuDevice, ...] = ()   # the GPU devices it was handed (index, UUID, …)
    pgid: int = 0                     # the process group of its first command (0: none, remote)
    process_start: str = ""           # that group leader's start token (store.process_start)


@dataclass(frozen=True, slots=True)
class TaskProcess(Event):
    """A later command of a running attempt started, in a process group of its own."""
    task: str
    attempt: int
    pgid: int
    process_start: str = ""


@dataclass(frozen=True, slots=True)
class OutputLine(Event):
    task: str
    attempt: int
    text: str                         # one line, without its newline


@dataclass(frozen=True, slots=True)
class TaskFinished(Event):
    task: str
    attempt: int
    outcome: Outcome
    exit_code: int | None             # None when killed by a signal before exiting
    duration: float                   # seconds
    peak_mem: int | None = None       # bytes (max RSS of the process tree), when known
    will_retry: bool = False
    removed_outputs: tuple[str, ...] = ()   # partial outputs removed after a failure
    message: str = ""
    gpu_peak_mem: int | None = None   # bytes: the most GPU memory its processes held, sampled
    gpu_util: float | None = None     # percent: its devices' mean utilisation while it ran


@dataclass(frozen=True, slots=True)
class FilesHashed(Event):
    """Hashes of files (``check = "content"``), for history to keep: with ``task``, the
    inputs of its successful ``attempt`` as it read them (the next scan compares with
    them); without, files the scan hashed (kept so that they are not hashed again)."""
    files: tuple[tuple[str, int, int, str], ...]   # (path, size, mtime_ns, hash)
    task: str = ""
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class IntermediatesRemoved(Event):
    """A Makefile's intermediate files this run made, deleted at its end as make does."""
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunNotice(Event):
    """Something about the run as a whole that the user must see (once), not one
    attempt's output: what this machine cannot enforce of what tasks declare, a Dask
    worker taken out of rotation, the circuit breaker's verdict, a lost scheduler. The
    console prints it, the app's status bar shows it; the run log keeps it."""
    message: str
    kind: str = ""                    # "worker-out", "circuit-breaker", "scheduler-lost"


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    status: RunStatus
    duration: float
    counts: Mapping[str, int] = field(default_factory=dict)   # TaskState.value -> count


@dataclass(frozen=True, slots=True)
class TaskAudited(Event):
    """The dependency audit of one finished attempt (``--audit``, ``audit = true``),
    published after its ``TaskFinished``."""

    task: str
    attempt: int
    findings: tuple[AuditFinding, ...] = ()
    traced: bool = True               # False: it could not be traced (nothing ran under strace)


def told_state(event: Event) -> TaskState | None:
    """The state ``event`` puts its task in, or None: a ``TaskStateChanged``'s, RUNNING
    for a ``TaskStarted`` and DONE for a succeeded ``TaskFinished`` (the engine publishes
    no ``TaskStateChanged`` for those two: issue 18)."""
    kind = type(event)
    if kind is TaskStateChanged:
        return event.state                                  # type: ignore[attr-defined]
    if kind is TaskStarted:
        return TaskState.RUNNING
    if kind is TaskFinished and event.outcome is Outcome.SUCCEEDED:   # type: ignore[attr-defined]
        return TaskState.DONE
    return None


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to any number of subscribers, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers = self._subscribers + (fn,)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not fn)
        return unsubscribe

    def publish(self, event: Event) -> None:
        for fn in self._subscribers:
            fn(event)
