"""The engine: one loop that fills free capacity, waits for a finish, records it.

It owns the plan, the executor and the run's books, and only *publishes
events*; the CLI, the app, history and the run log are subscribers. ``run``
blocks: call it on a worker thread from a GUI. ``cancel`` is thread-safe.
"""

from __future__ import annotations

import bisect
import os
import re
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Mapping

from .. import paths
from ..decide.capacity import (Capacity, FreeCapacity, check_fits, detect_capacity, learned_mem,
                               retry_size, with_mem)
from ..events import (EventBus, FilesHashed, IntermediatesRemoved, Outcome, OutputLine, RunFinished,
                     RunNotice, RunStarted, RunStatus, TaskFinished, TaskProcess, TaskStarted,
                     TaskState, TaskStateChanged, TasksUpToDate)
from .jobserver import Jobserver, with_make_letter
from .local import ExecNotice, Executor, Job, JobExited, JobOutput, JobSpawned, LocalExecutor
from ..decide.graph import TaskGraph
from ..decide.plan import Plan
from ..reasons import Reason, ReasonKind
from ..record.runlog import RunLog, run_log_path
from ..decide.scheduler import EXPLAIN_WAITING, critical_path, make_order, schedule, why_waiting
from ..sizes import format_size
from ..decide.staleness import Decision, StalenessScan
from ..workflow import Task, Workflow, blake2b

STOPPED = "stopped when the run was cancelled"
RETRY_BASE = 0.5       # seconds before the first retry; doubles each time
RETRY_MAX = 30.0


@dataclass(frozen=True)
class RunOptions:
    jobs: int | None = None              # -j N: at most N tasks at once
    keep_going: bool = False             # -k: independent branches go on after a failure
    force: tuple[str, ...] = ()          # task names to run even if up to date
    force_all: bool = False              # every task in the plan runs
    dry_run: bool = False                # decide and publish the plan; run nothing
    capacity: Capacity | None = None     # use this instead of detecting the machine
    log_dir: Path | None = None          # run logs; default: paths.logs_dir()/runs
    structured_log: bool = True          # write the JSON-lines run log
    make_order: bool = False             # start tasks in a serial make's order (a Makefile
                                         # without -j), not by critical path
    silent: bool = False                 # -s: no command is echoed into the output
    audit: bool = False                  # --audit: trace every task's file accesses
    started_by: str = ""                 # "watch": the run was started by a change on disk
    changed: tuple[str, ...] = ()        # the changed files that started it (history keeps them)
    rerun: tuple[tuple[str, str], ...] = ()   # (task, why): run it, for this reason (watch: an
                                         # input changed while its last attempt ran)


@dataclass(frozen=True)
class RunResult:
    run_id: str
    status: RunStatus
    counts: Mapping[str, int]
    failed: tuple[str, ...] = ()
    decisions: Mapping[str, Decision] = field(default_factory=dict)
    cancelled: tuple[str, ...] = ()      # tasks cancelled one by one (``cancel_task``)
    code: int | None = None              # a Makefile's run: make's own exit status

    @property
    def exit_code(self) -> int:
        if self.code is not None:
            return self.code
        return 0 if self.status is RunStatus.SUCCEEDED else 1


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + os.urandom(3).hex()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def log_file_name(task: str, attempt: int) -> str:
    safe = _UNSAFE.sub("_", task)[:80]
    if safe != task:
        safe += "-" + blake2b(task.encode("utf-8", "surrogateescape"), digest_size=4).hexdigest()
    return f"{safe}.{attempt}.log"


@dataclass(slots=True)
class _Active:
    task: Task
    attempt: int
    started: float
    deadline: float | None
    gpus: tuple[int, ...]
    slot: int
    before: dict[str, tuple[int, int, bool] | None]   # output -> (mtime_ns, size, is_dir)
    timed_out: bool = False
    trace: str = ""                  # its strace files' prefix, when audited
    hashes: tuple = ()               # (path, size, mtime_ns, hash) of the inputs it compares
                                     # by content, as they were at its start


class Engine:
    def __init__(self, workflow: Workflow, bus: EventBus | None = None,
                 history: object | None = None, options: RunOptions = RunOptions(),
                 executor_factory: Callable[[], Executor] = LocalExecutor,
                 graph: TaskGraph | None = None,
                 stamps: Callable[[], Mapping[str, int | None] | None] | None = None):
        """``stamps``: gives the mtimes of the workflow's files already read (the CLI's
        ``wfcache.StampPrefetch``); the first scan takes them instead of stat'ing."""
        self.workflow = workflow
        self._stamps = stamps
        self.bus = bus or EventBus()
        self.history = history
        self.options = options
        self.graph = graph or TaskGraph.of(workflow)
        self._executor_factory = executor_factory
        self._executor: Executor | None = None
        self._lock = threading.Lock()
        self._cancel = False
        self._abort = False          # cancel without the grace period
        self._cancel_tasks: set[str] = set()
        self._restart_tasks: dict[str, str] = {}
        self.run_id: str | None = None
        self._capacity: Capacity | None = None
        self._strace: str | None = None      # the strace program, when this run audits

    # -- thread-safe controls ----------------------------------------------
    def cancel(self) -> None:
        """Stop the run: kill every running task's process tree, start nothing more."""
        with self._lock:
            self._cancel = True
            ex = self._executor
        if ex is not None:
            ex.wakeup()

    def abort(self) -> None:
        """Stop the run at once: as ``cancel``, but every running task's process tree is
        killed now (SIGKILL), without the grace a cancel gives it to exit on SIGTERM."""
        with self._lock:
            self._abort = True
        self.cancel()

    def cancel_task(self, name: str) -> None:
        """Cancel one task: kill it if it runs, drop it if it waits for a retry.

        It ends ``TaskState.CANCELLED``, not failed: the user decided about that task
        alone. What depends on it is skipped; everything else goes on (without
        ``--keep-going`` too), and a run with nothing failed ends succeeded."""
        with self._lock:
            self._cancel_tasks.add(name)
            ex = self._executor
        if ex is not None:
            ex.wakeup()

    def restart_task(self, name: str, why: str) -> None:
        """Cancel the running attempt of one task and queue it again (watch: its inputs
        changed while it ran). Its partial outputs are removed as for any cancel; what
        depends on it waits for the new attempt; every other task goes on. A task that is
        not running is left alone (one not started yet will read the new inputs)."""
        with self._lock:
            self._restart_tasks[name] = why
            ex = self._executor
        if ex is not None:
            ex.wakeup()

    # -- deciding ----------------------------------------------------------
    def capacity(self) -> Capacity:
        if self._capacity is None:
            self._capacity = self._detect_capacity()
        return self._capacity

    def _detect_capacity(self) -> Capacity:
        if self.options.capacity is not None:
            cap = self.options.capacity
            if self.options.jobs and not cap.jobs:
                cap = replace(cap, jobs=self.options.jobs)
            return cap
        return detect_capacity(self.workflow.capacity, self.workflow.pools, self.options.jobs)

    def decide(self, targets: list[str] | tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, Decision], StalenessScan]:
        names = self.workflow.resolve_targets(targets)
        forced = self.workflow.resolve_targets(self.options.force) if self.options.force else ()
        stamps, self._stamps = self._stamps, None
        scan = StalenessScan(self.workflow, self.graph, history=self.history,
                             stamps=stamps() if stamps is not None else None)
        rerun = dict(self.options.rerun)
        if rerun:
            forced = tuple(forced) + tuple(n for n in rerun if n in self.workflow.tasks)
        decisions = scan.scan(names, force=forced, force_all=self.options.force_all)
        for name, why in rerun.items():
            d = decisions.get(name)
            if d is not None and name not in self.options.force:
                decisions[name] = Decision(True, (Reason(ReasonKind.INPUT_NEWER, why),) + tuple(
                    r for r in d.reasons if r.kind is not ReasonKind.FORCED))
        tasks = self.workflow.tasks
        stale = [tasks[n] for n, d in decisions.items() if d.stale]     # once: 1M tasks
        check_fits(stale, self.capacity(), str(self.workflow.path))
        from .isolate import check_isolation
        check_isolation(stale, str(self.workflow.path), str(self.workflow.root),
                        not self.options.dry_run, local=self._executor_factory is LocalExecutor)
        return names, decisions, scan

    # -- running -----------------------------------------------------------
    def run(self, targets: list[str] | tuple[str, ...] = (), decided=None) -> RunResult:
        """``decided``: what ``decide(targets)`` returned just now (watch decides first, to
        start no run when nothing is stale); otherwise the run decides."""
        names, decisions, scan = decided if decided is not None else self.decide(targets)
        from .audit import audit_strace
        self._strace = audit_strace(self.workflow, decisions, self.options)   # exit 2 if missing
        capacity = self.capacity()
        run_id = new_run_id()
        self.run_id = run_id
        runs_dir = self.options.log_dir or paths.logs_dir() / "runs"
        log_dir = runs_dir / run_id
        unsubscribe = []
        runlog = None
        if not self.options.dry_run:
            if self.history is not None:
                unsubscribe.append(self.bus.subscribe(self.history.on_event))  # type: ignore[attr-defined]
            if self.options.structured_log:
                runlog = RunLog(runs_dir)
                unsubscribe.append(self.bus.subscribe(runlog.on_event))
        try:
            return self._run(run_id, names, decisions, scan, capacity, log_dir,
                             run_log_path(run_id, runs_dir))
        finally:
            for u in unsubscribe:
                u()
            if runlog is not None:
                runlog.close()
            if self.history is not None and not self.options.dry_run:
                self.history.flush()  # type: ignore[attr-defined]

    def _run(self, run_id, names, decisions, scan, capacity, log_dir, jsonl) -> RunResult:
        publish = self.bus.publish
        t0 = time.time()
        order = tuple(decisions)
        publish(RunStarted(run_id, t0, self.workflow.name, str(self.workflow.path), tuple(names),
                           order, self.options.dry_run, str(jsonl), self.options.started_by,
                           tuple(self.options.changed)))
        waiting, up_to_date = TaskState.WAITING, TaskState.UP_TO_DATE
        stale = [n for n, d in decisions.items() if d.stale]
        states: dict[str, TaskState] = dict.fromkeys(decisions, up_to_date)
        for n in stale:
            states[n] = waiting
            publish(TaskStateChanged(run_id, t0, n, waiting, decisions[n].reasons))
        fresh_hashes = scan.hasher.take_fresh()
        if fresh_hashes:    # hashed by the scan (check = "content"): not hashed again
            publish(FilesHashed(run_id, t0, tuple((p, *e) for p, e in fresh_hashes.items())))
        if len(stale) < len(decisions):
            fresh_names, fresh_reasons = zip(*[(n, d.reasons) for n, d in decisions.items()
                                               if not d.stale])
            publish(TasksUpToDate(run_id, t0, fresh_names, fresh_reasons))
        if self.options.dry_run or not stale:   # nothing will run
            counts = _count(states)
            now = time.time()
            publish(RunFinished(run_id, now, RunStatus.SUCCEEDED, now - t0, counts))
            return RunResult(run_id, RunStatus.SUCCEEDED, counts, (), decisions)
        loop = _RunLoop(self, run_id, log_dir, decisions, scan, capacity, states, names)
        return loop.run(t0)


def hash_inputs(scan: StalenessScan, task: Task) -> tuple:
    """(path, size, mtime_ns, hash) of the inputs ``task`` compares by content, hashed
    as they are now."""
    paths = scan.content_inputs(task)
    if not paths:
        return ()
    scan.hasher.forget(paths)
    out = []
    for p in paths:
        entry = scan.hasher.entry(p)
        if entry is not None:
            out.append((p, *entry))
    return tuple(out)


def _waits_for(words: str) -> str:
    """What a waiting reason waits for, without its figures and holders."""
    return words.split(" (", 1)[0].split(", held by", 1)[0]


def _count(states: Mapping[str, TaskState]) -> dict[str, int]:
    by_id = Counter(map(id, states.values()))      # ints hash in C; an enum's hash is Python
    return {state.value: by_id[id(state)] for state in TaskState if id(state) in by_id}


class _RunLoop:
    """The state of one run, private to the engine thread."""

    def __init__(self, engine: Engine, run_id: str, log_dir: Path,
                 decisions: dict[str, Decision], scan: StalenessScan,
                 capacity: Capacity, states: dict[str, TaskState],
                 goals: tuple[str, ...] = ()):
        self.e = engine
        self.wf = engine.workflow
        self.run_id = run_id
        self.log_dir = log_dir
        self.log_dir_text = str(log_dir)     # attempts' log paths are joined as text
        root = str(engine.workflow.root)
        self.root_prefix = root if root.endswith("/") else root + "/"   # outputs joined as text
        self.root_text = root
        self.decisions = decisions
        self.scan = scan
        self.states = states
        self.free = FreeCapacity(capacity)
        stale = [n for n, d in decisions.items() if d.stale]
        self.plan = Plan(engine.graph, stale)
        if engine.options.make_order:
            self.priority = make_order(engine.graph, goals, stale)
        else:
            durations: Mapping[str, float] = {}
            if engine.history is not None:
                durations = engine.history.durations(str(self.wf.path))  # type: ignore[attr-defined]
            self.priority = critical_path(engine.graph, stale, durations)
        self.ready: list[Task] = []      # in priority order (highest first)
        self.ready_keys: list[float] = []    # -priority of each, for bisect
        self.retry_at: list[tuple[float, str]] = []
        self.active: dict[int, _Active] = {}
        self.by_name: dict[str, int] = {}
        self.attempts: dict[str, int] = {}
        self.failed: list[str] = []
        self.cancelled: list[str] = []         # cancelled one by one, by the user
        self.cancelling: set[str] = set()      # killed by cancel_task, not yet reaped
        self.restarting: dict[str, str] = {}   # killed by restart_task, not yet reaped: why
        self.restarts: Counter = Counter()     # attempts cancelled by restart_task, per task
        self.next_job = 0
        self.stopping = False        # a failure without --keep-going: start nothing more
        self.fatal: str | None = None   # the executor can run nothing more: why
        self.made_dirs: set[str] = set()    # output folders known to exist (made or seen)
        self.made_intermediate: list[str] = []   # a Makefile's, made by this run
        self.base_env = dict(os.environ)
        self.makefile = self.wf.kind == "make"
        self.base_env["GRISTMILL_RUN_ID"] = run_id
        self.process_of: Callable[[int], tuple[int, str] | None] | None = None
        self.capacity = capacity
        self.jobserver: Jobserver | None = None
        self.starved = False          # ready tasks wait for a jobserver token
        self._makeflags: dict[str, str] = {}
        self.sampler: "GpuSampler | None" = None    # made at the first GPU task's start
        if engine._strace:
            from .audit import RunAudit
        self.auditor = RunAudit(engine, run_id) if engine._strace else None
        self._content_anywhere = any(t.check == "content" for t in self.wf.tasks.values())
        # retry_mem: tasks that ask another mem than they declare (name -> that Task),
        # the out-of-memory kills of this run (name -> [(attempt, mem)]) and how many
        # retries those were (they are not counted against ``retries``).
        self.sized: dict[str, Task] = {}
        self.oom_kills: dict[str, list[tuple[int, int]]] = {}
        self.oom_retries: Counter = Counter()
        self.learned: dict[str, int] = {}
        self.waiting_told: dict[str, str] = {}   # ready task -> why it waits, as last told
        self.started_now: list[Task] = []       # started by the last _start_ready
        tasks = self.wf.tasks
        if engine.history is not None and any(tasks[n].retry_mem for n in stale):
            mems = engine.history.attempt_mems(str(self.wf.path))  # type: ignore[attr-defined]
            for n in stale:
                mem = learned_mem(tasks[n], mems, capacity.mem)
                if mem is not None:
                    self.sized[n] = with_mem(tasks[n], mem)
                    self.learned[n] = mem

    def _open_jobserver(self) -> Jobserver | None:
        """A parent make's jobserver when there is one (``gristmill run`` in a recipe of
        ``make -j8``); else, for a Makefile run in parallel, a jobserver of Gristmill's
        own, so that the sub-makes of its tasks share its slots."""
        opts = self.e.options
        joined = Jobserver.join(os.environ.get("MAKEFLAGS", ""))
        if joined is not None:
            return joined
        if self.wf.kind != "make" or opts.make_order or opts.dry_run:
            return None
        jobs = opts.jobs or self.capacity.jobs or int(self.capacity.cpu)
        return Jobserver.serve(jobs) if jobs > 1 else None

    def _sub_make_env(self, env: dict[str, str]) -> None:
        """A sub-make's MAKEFLAGS, as make writes them for a recipe: the jobserver, and
        ``k`` with --keep-going."""
        old = env.get("MAKEFLAGS")
        if old is None:
            return
        new = self._makeflags.get(old)
        if new is None:
            new = old
            if self.e.options.keep_going:
                new = with_make_letter(new, "k")
            if self.e.options.silent:
                new = with_make_letter(new, "s")
            if self.jobserver is not None:
                new = self.jobserver.makeflags(new)
            self._makeflags[old] = new
        env["MAKEFLAGS"] = new

    def set_state(self, name: str, state: TaskState, reasons=(), attempt: int = 0) -> None:
        self.states[name] = state
        self.e.bus.publish(TaskStateChanged(self.run_id, time.time(), name, state,
                                            tuple(reasons), attempt))

    def run(self, t0: float) -> RunResult:
        e = self.e
        ex = e._executor_factory()
        self.process_of = getattr(ex, "process", None)   # local processes: their groups
        with e._lock:
            e._executor = ex
            cancelled = e._cancel
        notice = getattr(ex, "notice", "")
        if notice:
            e.bus.publish(RunNotice(self.run_id, time.time(), notice))
        if self.plan.more():
            try:
                self.log_dir.mkdir(parents=True, exist_ok=True)
            except OSError:
                pass     # a full or read-only disk: each attempt's log says what it lacks
        self.jobserver = self._open_jobserver()
        try:
            self._take_ready()
            self._look_up_outputs(self.ready)
            while not cancelled:
                if not self.stopping:
                    self._start_ready(ex)
                    if self.ready:
                        self._tell_waiting()
                if not self.active and (self.stopping or not self.retry_at):
                    break
                events = ex.wait(self._timeout())
                self._handle(ex, events)
                self._check_timeouts(ex)
                self._due_retries()
                with e._lock:
                    cancelled = e._cancel
                    kill = e._cancel_tasks
                    e._cancel_tasks = set()
                    again = e._restart_tasks
                    e._restart_tasks = {}
                if kill:
                    self._cancel_tasks(ex, kill)
                if again:
                    for name, why in again.items():
                        job = self.by_name.get(name)
                        if job is not None and name not in self.cancelling:
                            self.restarting[name] = why
                            ex.kill(job)
                self._take_ready()
            if cancelled:
                self._cancel_all(ex)
        finally:
            with e._lock:
                e._executor = None
            ex.close()
            if self.jobserver is not None:
                self.jobserver.close()
            if self.sampler is not None:
                self.sampler.close()
        self._remove_intermediates()
        # Whatever never got to run is skipped, with the reason.
        reason = (Reason(ReasonKind.CANCELLED, "the run was cancelled") if cancelled else
                  Reason(ReasonKind.UPSTREAM_FAILED, f"the run stopped: {self.fatal}")
                  if self.fatal else
                  Reason(ReasonKind.UPSTREAM_FAILED, "the run stopped after a failure"))
        for name in self.plan.abandon():
            if self.states[name] in (TaskState.WAITING, TaskState.READY):
                self.set_state(name, TaskState.SKIPPED, (reason,))
        counts = _count(self.states)
        if cancelled:
            status = RunStatus.CANCELLED
        elif self.failed or self.fatal:
            status = RunStatus.FAILED
        else:
            status = RunStatus.SUCCEEDED
        now = time.time()
        e.bus.publish(RunFinished(self.run_id, now, status, now - t0, counts))
        return RunResult(self.run_id, status, counts, tuple(self.failed), self.decisions,
                         tuple(self.cancelled))

    # -- the pieces of the loop ---------------------------------------------
    def _take_ready(self) -> None:
        names = self.plan.take_ready()
        while names:
            for name in names:
                d = self.decisions[name]
                task = self.wf.tasks[name]
                if d.only_dependency:
                    # Its dependencies ran: are its inputs really newer now? (restat)
                    again = self.scan.recheck(task)
                    if not again.stale:
                        self.decisions[name] = again
                        self.set_state(name, TaskState.UP_TO_DATE, again.reasons)
                        self.plan.finished(name, True)
                        continue
                reasons = d.reasons
                if self.sized:
                    task = self.sized.get(name, task)
                    if name in self.learned:
                        reasons = reasons + (Reason(ReasonKind.MEMORY, (
                            f"it starts with {format_size(self.learned[name])} of memory "
                            f"(it declares {format_size(self.wf.tasks[name].resources.mem)}): "
                            "what its last success needed after an out-of-memory kill")),)
                self._enqueue(task)
                self.set_state(name, TaskState.READY, reasons)
            names = self.plan.take_ready()

    def _look_up_outputs(self, tasks: list[Task]) -> None:
        """Look up the outputs of ``tasks`` once, while no task runs yet.

        ``_start`` reads each output's state before the task runs. A lookup of a name
        that is not there takes its folder's lock when the kernel has not cached the
        miss, and the tasks already running take that lock to create their own outputs
        there, so the run loop waits (2,000 ``touch`` tasks into one folder, 2 at a
        time: 0.11 ms a start). Done here first, the lookups at the starts find the
        kernel's cached answer (0.01 ms). The states that count are still read there.
        """
        root = self.root_prefix
        lstat = os.lstat
        for task in tasks:
            for out in task.outputs:
                try:
                    lstat(out if out[:1] == "/" else root + out)
                except OSError:
                    pass

    def _enqueue(self, task: Task) -> None:
        key = -self.priority.get(task.name, 0.0)
        i = bisect.bisect_right(self.ready_keys, key)    # after equals: declaration order
        self.ready_keys.insert(i, key)
        self.ready.insert(i, task)

    def _start_ready(self, ex: Executor) -> None:
        if not self.ready:
            return
        chosen = schedule(self.ready, self.free)
        if not chosen:
            return
        js = self.jobserver
        if js is not None:
            # The sub-makes of running tasks may hold some of the slots: a task beyond
            # the first takes a token from the jobserver, as a make's job does.
            allowed = js.admit(len(self.active), len(chosen))
            self.starved = allowed < len(chosen)
            if not allowed:
                return
            chosen = chosen[:allowed]
        tasks = [self.ready[i] for i in chosen]
        for i in reversed(chosen):
            del self.ready[i]
            del self.ready_keys[i]
        for task in tasks:
            self._start(ex, task)
        self.started_now = tasks

    def _tell_waiting(self) -> None:
        """Why each task at the head of the ready queue did not start, with its state,
        told only when the words change (not once per turn of the loop)."""
        running = [a.task for a in self.active.values()]
        told = self.waiting_told
        now, self.started_now = self.started_now, []
        # The words depend on the task only through what it asks for (and the tasks
        # that started ahead of it): the head of a queue of like tasks is told once.
        words: dict[tuple, str] = {}
        for i, task in enumerate(self.ready[:EXPLAIN_WAITING]):
            key = self.ready_keys[i]
            first = [t for t in now if -self.priority.get(t.name, 0.0) < key] if now else ()
            asked = (task.resources, tuple(t.name for t in first))
            why = words.get(asked)
            if why is None:
                why = words[asked] = why_waiting(task, self.free, running, first)
            if not why and self.starved:
                why = ("waiting for a jobserver token: the sub-makes of running tasks "
                       "hold the slots")
            name = task.name
            if not why:
                continue
            # The next to start is told again whenever the words change (who holds what
            # it needs); the ones behind it when what they wait for does: in a busy run
            # the holders change at every finish, and that would be an event for each.
            was = told.get(name)
            if was == why or (i and was is not None and _waits_for(was) == _waits_for(why)):
                continue
            told[name] = why
            self.set_state(name, TaskState.READY, tuple(
                r for r in self.decisions[name].reasons if r.kind is not ReasonKind.WAITING)
                + (Reason(ReasonKind.WAITING, why),), self.attempts.get(name, 0))

    def _start(self, ex: Executor, task: Task) -> None:
        if self.waiting_told:
            self.waiting_told.pop(task.name, None)
        attempt = self.attempts.get(task.name, 0) + 1
        self.attempts[task.name] = attempt
        gpus, slot = self.free.take(task.resources)
        hashes = self._input_hashes(task)
        root = self.root_prefix
        before: dict[str, tuple[int, int, bool] | None] = {}
        for out in task.outputs:
            p = out if out[:1] == "/" else root + out
            try:
                st = os.lstat(p)
                before[out] = (st.st_mtime_ns, st.st_size, os.path.isdir(p))
            except OSError:
                before[out] = None
                parent = os.path.dirname(p)
                # make creates no folder for a recipe (its own `mkdir build` must not find
                # one there): for a Makefile, the recipe makes what it needs.
                if parent and parent not in self.made_dirs and not self.makefile:
                    os.makedirs(parent, exist_ok=True)
                    self.made_dirs.add(parent)
        env = self.base_env.copy()
        env.update(task.env)
        env["GRISTMILL_TASK"] = task.name
        env["GRISTMILL_ATTEMPT"] = str(attempt)
        keep_fds: tuple[int, ...] = ()
        if task.env and self.wf.kind == "make" and any(k == "MAKEFLAGS" for k, _ in task.env):
            self._sub_make_env(env)
            if self.jobserver is not None:
                keep_fds = self.jobserver.fds
        devices = tuple(self.free.devices[p] for p in gpus)
        if task.resources.wants_gpu or self.free.devices:
            # Its devices, named as the user named them when starting Gristmill; none
            # (the empty string) for a task that asks for no GPU on a machine with some.
            words = ",".join(d.word for d in devices)
            env["CUDA_VISIBLE_DEVICES"] = words
            env["NVIDIA_VISIBLE_DEVICES"] = words
        job_id = self.next_job
        self.next_job += 1
        log_path = f"{self.log_dir_text}/{log_file_name(task.name, attempt)}"
        now = time.time()
        deadline = time.monotonic() + task.timeout if task.timeout else None
        trace = self.auditor.prefix(task, log_path) if self.auditor is not None else ""
        self.active[job_id] = _Active(task, attempt, now, deadline, gpus, slot, before,
                                      trace=trace, hashes=hashes)
        self.by_name[task.name] = job_id
        # The process first, the events after: they are told while it runs. What the
        # executor reports of the job (output, its end) comes from a later wait().
        ex.start(Job(job_id, task, attempt, env, log_path, task.resources.mem or None,
                     keep_fds, not self.e.options.silent,
                     (self.e._strace, trace) if trace else None, self.root_text))
        process = self.process_of(job_id) if self.process_of is not None else None
        pgid, pstart = process if process is not None else (0, "")
        # Running from here: its TaskStarted says so (issue 18: no TaskStateChanged as
        # well, which carried the same facts, for every task of the run).
        self.states[task.name] = TaskState.RUNNING
        if devices and not getattr(ex, "samples_gpus", False):
            if self.sampler is None:
                from .gpu_sampler import GpuSampler
                self.sampler = GpuSampler(self.run_id)
            self.sampler.begin(task.name, attempt, tuple(d.uuid for d in devices),
                               tuple(d.parent for d in devices if d.mig))
        self.e.bus.publish(TaskStarted(self.run_id, now, task.name, attempt, slot,
                                       task.resources, tuple(d.index for d in devices),
                                       log_path, "\n".join(task.commands),
                                       task.definition_hash, devices, pgid, pstart))

    def _input_hashes(self, task: Task) -> tuple:
        """The inputs ``task`` compares by content, hashed as they are at its start (what
        it reads); history keeps them when it succeeds."""
        scan = self.scan
        if task.check != "content" and not (task.inputs and self._content_anywhere):
            return ()
        return hash_inputs(scan, task)

    def _timeout(self) -> float | None:
        now = time.monotonic()
        times = [a.deadline for a in self.active.values() if a.deadline is not None]
        times += [t for t, _ in self.retry_at]
        if self.starved and self.ready:
            times.append(now + 0.05)     # a sub-make gives its tokens back unannounced
        if not times:
            return None
        return max(0.0, min(times) - now)

    def _handle(self, ex: Executor, events) -> None:
        publish = self.e.bus.publish
        succeeded: list[_Active] = []
        for ev in events:
            if type(ev) is ExecNotice:
                self._notice(ev)
                continue
            a = self.active.get(ev.job_id)
            if a is None:
                continue
            if isinstance(ev, JobOutput):
                now = time.time()
                for line in ev.lines:
                    publish(OutputLine(self.run_id, now, a.task.name, a.attempt, line))
            elif isinstance(ev, JobSpawned):
                publish(TaskProcess(self.run_id, time.time(), a.task.name, a.attempt,
                                    ev.pgid, ev.process_start))
            elif isinstance(ev, JobExited):
                if ev.exit_code == 0 and not ev.killed and not ev.over_memory:
                    self._succeeded(a, ev)
                    succeeded.append(a)
                else:
                    self._finished(a, ev)
                if a.trace:
                    self.auditor.finished(a.task, a.attempt, a.trace, ev)   # type: ignore[union-attr]
                del self.active[ev.job_id]
                self.by_name.pop(a.task.name, None)
        if succeeded:
            # The ready tasks that fit in the slots the successes left start before the
            # rest of their books are kept (a freed slot waits for the reap and the
            # TaskFinished, not for the plan). A failure never gets here first: without
            # --keep-going nothing new may start after it. In make's order the next task
            # may be one these successes make ready: it waits for the books.
            if not self.stopping and not self.e._cancel and not self.e.options.make_order:
                self._start_ready(ex)
            done = TaskState.DONE
            for a in succeeded:
                # Done: its TaskFinished (succeeded) said so; a TaskStateChanged only
                # when it has more to say (how it got there after out-of-memory kills).
                story = self._memory_story(a) if self.oom_kills else ()
                if story:
                    self.set_state(a.task.name, done, story, a.attempt)
                else:
                    self.states[a.task.name] = done
                self.plan.finished(a.task.name, True)
        if self.jobserver is not None:
            self.jobserver.settle(len(self.active))

    def _memory_story(self, a: _Active) -> tuple[Reason, ...]:
        """"attempt 1 killed at 2 GB; attempt 2 had 4 GB and succeeded" for a success
        after out-of-memory kills in this run; () for any other."""
        kills = self.oom_kills.get(a.task.name) if self.oom_kills else None
        if not kills:
            return ()
        words = "; ".join(f"attempt {n} killed at {format_size(m)}" for n, m in kills)
        return (Reason(ReasonKind.MEMORY, f"{words}; attempt {a.attempt} had "
                       f"{format_size(a.task.resources.mem)} and succeeded"),)

    def _remove_intermediates(self) -> None:
        """make deletes the intermediate files it made once the build is over (a failed
        one too); a file that was there before the run is left alone."""
        made = [p for p in self.made_intermediate if os.path.lexists(self.root_prefix + p)]
        removed = []
        for p in made:
            try:
                os.unlink(self.root_prefix + p)
                removed.append(p)
            except OSError:
                pass
        if removed:
            self.scan.stamps.forget(removed)
            self.e.bus.publish(IntermediatesRemoved(self.run_id, time.time(), tuple(removed)))

    def _notice(self, ev: ExecNotice) -> None:
        self.e.bus.publish(RunNotice(self.run_id, time.time(), ev.message, ev.kind))
        if ev.fatal:
            self.fatal = self.fatal or ev.message
            self.stopping = True          # nothing more starts, nothing is retried

    def _succeeded(self, a: _Active, ev: JobExited) -> None:
        """A successful attempt: its capacity back and its TaskFinished published."""
        task = a.task
        if self.wf.intermediate:
            self.made_intermediate += [o for o in task.outputs if o in self.wf.intermediate
                                       and a.before.get(o) is None]
        now = time.time()
        self.free.give(task.resources, a.gpus, a.slot)
        gpu_peak, gpu_util = self._gpu_figures(a, ev)
        if self.restarting:
            self.restarting.pop(task.name, None)   # it ended before the kill: watch decides
        self.e.bus.publish(TaskFinished(self.run_id, now, task.name, a.attempt,
                                        Outcome.SUCCEEDED, ev.exit_code, now - a.started,
                                        ev.peak_mem, message=ev.log_trouble,
                                        gpu_peak_mem=gpu_peak, gpu_util=gpu_util))
        fresh = self.scan.hasher.take_fresh()
        if a.hashes or fresh:
            known = {h[0] for h in a.hashes}
            if a.hashes:
                self.e.bus.publish(FilesHashed(self.run_id, now, a.hashes, task.name,
                                               a.attempt))
            rest = tuple((p, *e) for p, e in fresh.items() if p not in known)
            if rest:
                self.e.bus.publish(FilesHashed(self.run_id, now, rest))

    def _gpu_figures(self, a: _Active, ev: JobExited | None = None,
                     ) -> tuple[int | None, float | None]:
        """What was sampled of the attempt's GPUs: by the executor (a Dask worker samples
        its own jobs), else by the engine's sampler."""
        if ev is not None and (ev.gpu_peak_mem is not None or ev.gpu_util is not None):
            return ev.gpu_peak_mem, ev.gpu_util
        if not a.gpus or self.sampler is None:
            return None, None
        return self.sampler.end(a.task.name, a.attempt)

    def _finished(self, a: _Active, ev: JobExited) -> None:
        """A failed, timed-out or cancelled attempt (successes: ``_succeeded``)."""
        task = a.task
        now = time.time()
        duration = now - a.started
        self.free.give(task.resources, a.gpus, a.slot)
        timed_out = a.timed_out
        if ev.over_memory:
            outcome = Outcome.FAILED
            message = f"killed for using more than its declared mem ({format_size(task.resources.mem)})"
            if ev.peak_mem:
                message += f"; peak {format_size(ev.peak_mem)}"
        elif timed_out:
            outcome, message = Outcome.TIMED_OUT, f"timed out after {task.timeout:g} s"
        elif ev.killed and task.name in self.cancelling:
            outcome, message = Outcome.CANCELLED, "cancelled by the user; the run went on"
        elif ev.killed and task.name in self.restarting and not self.stopping \
                and not self._cancelled():
            outcome = Outcome.CANCELLED
            message = f"cancelled: {self.restarting[task.name]}; it starts again"
        elif ev.killed:
            outcome, message = Outcome.CANCELLED, STOPPED
        else:
            outcome = Outcome.FAILED
            if ev.exit_code is not None:
                message = f"exit status {ev.exit_code}"
            elif ev.signal:
                message = f"killed by signal {ev.signal}"
            else:
                message = ""
            if ev.message:
                message = f"{message}: {ev.message}" if message else ev.message
            message = message or "failed"
        if ev.log_trouble:
            message = f"{message}; {ev.log_trouble}"
        removed = self._remove_partial(a)
        why = self.restarting.pop(task.name, None)
        if why is not None and ev.killed and not self._cancelled() and not self.stopping:
            # restart_task: the attempt is given up, and the task is queued again now
            self.restarts[task.name] += 1
            self._gpu_figures(a)         # its devices' sampling ends with it
            self.e.bus.publish(TaskFinished(self.run_id, now, task.name, a.attempt, outcome,
                                            ev.exit_code, duration, ev.peak_mem, True, removed,
                                            message))
            self.scan.stamps.forget(task.inputs)
            self._enqueue(task)
            self.set_state(task.name, TaskState.READY,
                           (Reason(ReasonKind.INPUT_NEWER, why),), a.attempt)
            return
        going = (not self.stopping and not self._cancelled()
                 and task.name not in self.cancelling)
        # At most what one machine has: on a cluster, its largest worker.
        most = self.capacity.largest_mem or self.capacity.mem
        bigger = retry_size(task, task.resources.mem, most) \
            if ev.over_memory and going else None
        retry = (outcome in (Outcome.FAILED, Outcome.TIMED_OUT) and going
                 and a.attempt - self.restarts[task.name] - self.oom_retries[task.name]
                 <= task.retries) or bigger is not None
        if bigger is not None:
            # retry_mem: the next attempt asks more, and the scheduler packs it so
            self.oom_retries[task.name] += 1
            self.oom_kills.setdefault(task.name, []).append((a.attempt, task.resources.mem))
            self.sized[task.name] = with_mem(task, bigger)
        elif ev.over_memory:
            self.oom_kills.setdefault(task.name, []).append((a.attempt, task.resources.mem))
        gpu_peak, gpu_util = self._gpu_figures(a, ev)
        self.e.bus.publish(TaskFinished(self.run_id, now, task.name, a.attempt, outcome,
                                        ev.exit_code, duration, ev.peak_mem, retry, removed,
                                        message, gpu_peak, gpu_util))
        if task.name in self.cancelling and not self._cancelled():
            self._task_cancelled(task.name, a.attempt, message)
            return
        if outcome is Outcome.CANCELLED:
            # Stopped by the run's cancel: cancelled, not failed (what depends on it is
            # skipped with everything else that did not start).
            self.cancelling.discard(task.name)
            self.set_state(task.name, TaskState.CANCELLED,
                           (Reason(ReasonKind.RUN_CANCELLED, message),), a.attempt)
            return
        if retry:
            delay = min(RETRY_MAX, RETRY_BASE * 2 ** (a.attempt - 1))
            self.retry_at.append((time.monotonic() + delay, task.name))
            if bigger is not None:
                words = (f"attempt {a.attempt} killed at {format_size(task.resources.mem)} "
                         f"for using more memory; retrying with {format_size(bigger)} in "
                         f"{delay:g} s")
            else:
                words = f"attempt {a.attempt} failed ({message}); retrying in {delay:g} s"
            self.set_state(task.name, TaskState.WAITING, (Reason(ReasonKind.RETRY, words),),
                           a.attempt)
            return
        self.cancelling.discard(task.name)
        self.failed.append(task.name)
        self.set_state(task.name, TaskState.FAILED,
                       (Reason(ReasonKind.CANCELLED if outcome is Outcome.CANCELLED
                               else ReasonKind.LAST_RUN_FAILED, message),), a.attempt)
        self._skip_dependants(task.name, "failed")
        if not self.e.options.keep_going:
            self.stopping = True

    def _skip_dependants(self, name: str, what: str) -> None:
        skipped = self.plan.finished(name, False)
        skip_reason = Reason(ReasonKind.UPSTREAM_FAILED, f"it depends on {name}, which {what}")
        skipped_set = set(skipped)
        kept = [i for i, t in enumerate(self.ready) if t.name not in skipped_set]
        self.ready = [self.ready[i] for i in kept]
        self.ready_keys = [self.ready_keys[i] for i in kept]
        for m in skipped:
            self.set_state(m, TaskState.SKIPPED, (skip_reason,))

    def _cancel_tasks(self, ex: Executor, names: set[str]) -> None:
        """``cancel_task``: kill the running ones (``_finished`` reaps them); a task
        waiting for its retry or ready to start is cancelled here."""
        for name in names:
            if name in self.by_name:
                self.cancelling.add(name)
                ex.kill(self.by_name[name])
            elif any(n == name for _, n in self.retry_at):
                self.retry_at = [(t, n) for t, n in self.retry_at if n != name]
                self._task_cancelled(name, self.attempts.get(name, 0), "cancelled by the user "
                                     "while it waited for a retry; the run went on")
            elif self.states.get(name) is TaskState.READY:
                kept = [i for i, t in enumerate(self.ready) if t.name != name]
                self.ready = [self.ready[i] for i in kept]
                self.ready_keys = [self.ready_keys[i] for i in kept]
                self._task_cancelled(name, self.attempts.get(name, 0), "cancelled by the user "
                                     "before it started; the run went on")

    def _task_cancelled(self, name: str, attempt: int, message: str) -> None:
        """One task cancelled by the user: not a failure. Its dependants are skipped;
        the rest of the run goes on."""
        self.cancelling.discard(name)
        self.cancelled.append(name)
        self.set_state(name, TaskState.CANCELLED, (Reason(ReasonKind.CANCELLED, message),), attempt)
        self._skip_dependants(name, "was cancelled")

    def _cancelled(self) -> bool:
        with self.e._lock:
            return self.e._cancel

    def _aborted(self) -> bool:
        with self.e._lock:
            return self.e._abort

    def _remove_partial(self, a: _Active) -> tuple[str, ...]:
        """Remove outputs the failed attempt created or changed; leave the rest alone."""
        removed = []
        for out, before in a.before.items():
            p = os.path.join(self.wf.root, out)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            is_dir = os.path.isdir(p) and not os.path.islink(p)
            if before is None:
                changed = True
            elif is_dir:
                changed = False      # never delete a folder that was there before
            else:
                changed = (st.st_mtime_ns, st.st_size) != before[:2]
            if not changed:
                continue
            try:
                if is_dir:
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
                removed.append(out)
            except OSError:
                pass
        if removed:
            self.scan.stamps.forget(removed)
        return tuple(removed)

    def _check_timeouts(self, ex: Executor) -> None:
        now = time.monotonic()
        for job_id, a in self.active.items():
            if a.deadline is not None and now >= a.deadline:
                a.deadline = None
                a.timed_out = True
                ex.kill(job_id)

    def _due_retries(self) -> None:
        if not self.retry_at:
            return
        now = time.monotonic()
        due = [n for t, n in self.retry_at if t <= now]
        self.retry_at = [(t, n) for t, n in self.retry_at if t > now]
        for name in due:
            task = self.sized.get(name) or self.wf.tasks[name]
            self._enqueue(task)
            if name in self.oom_kills and self.oom_kills[name][-1][0] == self.attempts[name]:
                words = (f"retry {self.attempts[name]}, with "
                         f"{format_size(task.resources.mem)} of memory")
            else:
                words = f"retry {self.attempts[name]} of {task.retries}"
            self.set_state(name, TaskState.READY, (Reason(ReasonKind.RETRY, words),),
                           self.attempts[name])

    def _cancel_all(self, ex: Executor) -> None:
        aborted = self._aborted()
        ex.kill_all(now=aborted)
        deadline = time.monotonic() + 5.0
        while self.active and time.monotonic() < deadline:
            if not aborted and self._aborted():   # during the cancelled tasks' grace
                aborted = True
                ex.kill_all(now=True)
            self._handle(ex, ex.wait(0.2))
        self.ready = []
        self.ready_keys = []
        self.retry_at = []
