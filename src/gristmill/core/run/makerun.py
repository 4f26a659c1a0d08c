"""A Makefile's run: GNU make decides and runs every recipe, Gristmill schedules,
observes and guards (docs/ARCHITECTURE.md, "Makefiles: make runs, Gristmill
schedules").

``MakeEngine.run`` starts ``make [-jJ] GOALS`` with ``GRISTMILL_MAKE_SOCKET`` naming a
socket this engine serves (``makeshell``) and ``MAKEFILES`` naming a makefile that sets
SHELL to Gristmill's helper. Each
recipe line make starts comes to the socket; an ordinary line waits here until the
target's declared resources fit (the same ``FreeCapacity`` books as the Engine), then
runs as a job of the ``LocalExecutor`` (cgroup, memory limit, output to the attempt's
log and to the stdout make gave the line), and its status goes back to make. A
recursive line (``$(MAKE)``) runs in the helper itself, holding no capacity: its
sub-make's lines come here too.

An attempt is one target's recipe in one make process: (make's pid, its folder, the
target). It ends when that make, with the last line's helper reaped, sleeps (or exits)
with no child that has not yet connected: make starts a target's next line at once
when it reaps the one before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

from .. import paths
from ..decide.capacity import Capacity, FreeCapacity, detect_capacity
from ..decide.graph import TaskGraph
from ..decide.scheduler import critical_path
from ..events import (EventBus, FilesHashed, Outcome, OutputLine, RunFinished, RunNotice, RunStarted,
                      RunStatus, TaskFinished, TaskProcess, TaskStarted, TaskState,
                      TaskStateChanged, TasksUpToDate)
from ..reasons import Reason, ReasonKind
from ..record.runlog import RunLog, run_log_path
from ..workflow import Resources, Task, Workflow
from . import makeshell
from .engine import Engine, RunOptions, RunResult, hash_inputs, log_file_name, new_run_id
from .local import Job, JobExited, JobOutput, JobSpawned, LocalExecutor, direct_argv

POLL = 0.005          # seconds between looks at make processes with attempts to end
_LINE_FAILED = "the recipe failed"


@dataclass(slots=True)
class _Attempt:
    key: tuple[int, str, str]
    name: str
    task: Task | None              # the Makefile's task, when the top data base knows it
    attempt: int
    started: float
    log_path: str
    path: str                      # the target's file
    before: tuple[int, int] | None
    lines: int = 0
    running: makeshell.Request | None = None
    last: makeshell.Request | None = None
    status: int = 0
    failed: bool = False           # a line failed (not ignored)
    peak: int = 0
    over_memory: bool = False
    killed: bool = False
    message: str = ""
    sub_make: bool = False
    recursive: bool = False        # its line ran a sub-make in the helper
    trace: str = ""                # its strace files' prefix, when audited
    accesses: list | None = None   # what its traced lines read and wrote


@dataclass(slots=True)
class _Line:
    request: makeshell.Request
    attempt: _Attempt
    resources: Resources
    gpus: tuple[int, ...] = ()
    slot: int = 0
    released: bool = False


class MakeEngine:
    """The Engine's interface for a Makefile: ``run(targets) -> RunResult``, ``cancel``,
    ``abort``, ``decide`` (the Engine's reading of make's data base, for ``plan``),
    ``capacity``."""

    def __init__(self, workflow: Workflow, bus: EventBus | None = None,
                 history: object | None = None, options: RunOptions = RunOptions(),
                 make_args: Sequence[str] = (), variables: Mapping[str, str] | None = None,
                 make: str | None = None, graph: TaskGraph | None = None,
                 force: Sequence[str] = (), parallel: bool = False):
        self.workflow = workflow
        self.bus = bus or EventBus()
        self.history = history
        self.options = options
        self.make_args = tuple(make_args)
        self.variables = dict(variables or {})
        self.make = make or _make_program()
        self.graph = graph or TaskGraph.of(workflow)
        self.force = tuple(force)
        self.parallel = parallel or bool(options.jobs)
        self._lock = threading.Lock()
        self._cancel = False
        self._abort = False
        self._executor: LocalExecutor | None = None
        self._capacity: Capacity | None = None
        self.run_id: str | None = None

    # -- the Engine's interface --------------------------------------------
    def cancel(self) -> None:
        with self._lock:
            self._cancel = True
            ex = self._executor
        if ex is not None:
            ex.wakeup()

    def abort(self) -> None:
        with self._lock:
            self._abort = True
        self.cancel()

    def cancel_task(self, name: str) -> None:      # the app's per-task cancel: the run's
        self.cancel()

    def restart_task(self, name: str, why: str) -> None:
        pass                                        # make decides; watch reruns it

    def capacity(self) -> Capacity:
        if self._capacity is None:
            o = self.options
            cap = o.capacity or detect_capacity(self.workflow.capacity, self.workflow.pools,
                                                o.jobs)
            if o.jobs:
                # make's -jN counts jobs: N recipes may run at once whatever they declare.
                cap = replace(cap, jobs=o.jobs, cpu=max(cap.cpu, float(o.jobs)))
            self._capacity = cap
        return self._capacity

    def decide(self, targets):
        return Engine(self.workflow, history=self.history, options=self.options,
                      graph=self.graph).decide(targets)

    def make_jobs(self) -> int:
        """make's -j for a parallel run: the user's -jN as given (MAKEFLAGS, which
        recipes and sub-makes read, say -jN as under make; 2N+2 with Gristmill capping
        at N hid the hand-over to the socket a little better, but changed what recipes
        see). A bare -j: twice Gristmill's slots and two, so that make offers more
        ready recipes than fit and Gristmill picks among them."""
        if self.options.jobs:
            return self.options.jobs
        cap = self.capacity()
        slots = cap.jobs or max(1, int(cap.cpu))
        return 2 * slots + 2

    def run(self, targets: Sequence[str] = (), decided=None) -> RunResult:
        run_id = new_run_id()
        self.run_id = run_id
        runs_dir = self.options.log_dir or paths.logs_dir() / "runs"
        unsubscribe = []
        runlog = None
        if self.history is not None:
            unsubscribe.append(self.bus.subscribe(self.history.on_event))  # type: ignore[attr-defined]
        if self.options.structured_log:
            runlog = RunLog(runs_dir)
            unsubscribe.append(self.bus.subscribe(runlog.on_event))
        try:
            return _MakeRun(self, run_id, runs_dir / run_id,
                            str(run_log_path(run_id, runs_dir))).run(tuple(targets))
        finally:
            for u in unsubscribe:
                u()
            if runlog is not None:
                runlog.close()
            if self.history is not None:
                self.history.flush()  # type: ignore[attr-defined]


def engine_for(workflow: Workflow, bus: EventBus | None = None, history=None,
               options: RunOptions = RunOptions(), graph: TaskGraph | None = None,
               **make) -> "Engine | MakeEngine":
    """The engine that runs ``workflow``: a Makefile's is GNU make through a
    ``MakeEngine`` (a dry run, which only decides, stays the Engine's); a gristmill.toml
    or .json workflow's is the ``Engine``. ``make``: MakeEngine's own arguments."""
    if workflow.kind == "make" and not options.dry_run:
        return MakeEngine(workflow, bus, history, options, graph=graph,
                          force=make.pop("force", options.force), **make)
    return Engine(workflow, bus, history, options, graph=graph)


def _make_program() -> str:
    """make as the user would type it (``$(MAKE)`` expands to it, and the echo of a
    recursive line shows it): GRISTMILL_MAKE, else ``make`` found on PATH."""
    return os.environ.get("GRISTMILL_MAKE") or "make"


def make_argv(make: str, make_args: Sequence[str], variables: Mapping[str, str],
              goals: Sequence[str], makefile: Path | None) -> list[str]:
    """make's command line as the user would type it (and ``-f`` for a Makefile make
    would not find by itself)."""
    argv = [make]
    if makefile is not None:
        argv += ["-f", str(makefile)]
    return [*argv, *make_args, *(f"{k}={v}" for k, v in variables.items()), *goals]


def own_makefile(wf: Workflow) -> Path | None:
    """``-f`` for make when the workflow's Makefile is not the one make finds first."""
    for name in ("GNUmakefile", "makefile", "Makefile"):
        p = wf.root / name
        if p.is_file():
            return None if p == wf.path else wf.path
    return wf.path


class _MakeRun:
    """One run's state, on the thread that called ``run``."""

    def __init__(self, engine: MakeEngine, run_id: str, log_dir: Path, jsonl: str):
        self.e = engine
        self.wf = engine.workflow
        self.run_id = run_id
        self.log_dir = log_dir
        self.jsonl = jsonl
        self.root = str(self.wf.root)
        self.plan_names: set[str] | None = None    # the goals' closure, where known
        self.free = FreeCapacity(engine.capacity())
        self.attempts: dict[tuple[int, str, str], _Attempt] = {}
        self.counts: dict[str, int] = {}          # name -> attempts so far
        self.states: dict[str, TaskState] = {}
        self.waiting: list[_Line] = []
        self.lines: dict[int, _Line] = {}          # job id -> line
        self.ending: list[_Attempt] = []           # attempts whose last line ended
        self.known_pids: dict[int, set[int]] = {}  # make pid -> helper pids seen
        self.next_job = 0
        self.priority: dict[str, float] = {}
        self.ignore_all = any(a in ("-i", "--ignore-errors") for a in engine.make_args)
        self.auditor = None
        self.strace = None
        self.scan = None
        tasks = self.wf.tasks.values()
        if engine.options.audit or any(t.audit for t in tasks):
            from .audit import RunAudit
            from .trace import need_strace
            self.strace = need_strace(os.environ.get("PATH"))      # exit 2 if missing
            self.auditor = RunAudit(engine, run_id)
        default = self.wf.tasks.get(self.wf.default[0]) if self.wf.default else None
        self.default_shell = _shell_of(default) if default is not None else "/bin/sh"

    def publish(self, ev) -> None:
        self.e.bus.publish(ev)

    def set_state(self, name: str, state: TaskState, reasons=(), attempt: int = 0) -> None:
        self.states[name] = state
        self.publish(TaskStateChanged(self.run_id, time.time(), name, state, tuple(reasons),
                                      attempt))

    # -- before make starts --------------------------------------------------
    def _untrusted(self) -> None:
        """Gristmill's trust rule: a target whose last attempt failed or was interrupted
        is removed, so that make (which would trust its time) makes it again."""
        history = self.e.history
        if history is None:
            return
        try:
            found = history.untrusted(str(self.wf.path))   # type: ignore[attr-defined]
        except Exception:
            return
        wanted = self.plan_names
        for name, last in found.items():
            task = self.wf.tasks.get(name)
            if task is not None and task.phony:
                continue
            if wanted is not None and name not in wanted:
                continue         # off the goals' path: make will not look at it in this run
            p = os.path.join(self.root, name)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            began = getattr(last, "started", None)
            if began is not None and st.st_mtime < began - 1.0:
                continue         # the failed attempt never wrote it: the file is as before
            if os.path.isfile(p) or os.path.islink(p):
                try:
                    os.unlink(p)
                except OSError:
                    continue
                why = getattr(last, "outcome", "") or "did not finish"
                self.publish(RunNotice(self.run_id, time.time(),
                                       f"removed {name}: its last attempt {why} "
                                       f"(make would trust its time)"))

    def _content(self) -> None:
        """``check=content`` (a hint): a target whose inputs were only touched, their
        content as at its last success, is given its newest input's time before make
        starts, so that make agrees it is up to date (Gristmill's addition); its inputs
        are hashed when its recipe succeeds, for the next run."""
        tasks = [t for t in self.wf.tasks.values() if t.check == "content" and t.outputs]
        if not tasks:
            return
        from ..decide.staleness import StalenessScan
        scan = StalenessScan(self.wf, self.e.graph, history=self.e.history)
        self.scan = scan
        try:
            decisions = scan.scan([t.name for t in tasks])
        except Exception:
            return
        for t in tasks:
            d = decisions.get(t.name)
            if d is None or d.stale:
                continue
            newest = 0
            for i in t.inputs:
                try:
                    newest = max(newest, os.stat(os.path.join(self.root, i)).st_mtime_ns)
                except OSError:
                    pass
            for o in t.outputs:
                p = os.path.join(self.root, o)
                try:
                    if os.stat(p).st_mtime_ns < newest:
                        os.utime(p, ns=(newest, newest))
                except OSError:
                    pass

    def _hash_inputs(self, a: _Attempt) -> None:
        scan = self.scan
        task = a.task
        if scan is None or task is None or task.check != "content":
            return
        files = hash_inputs(scan, task)
        if files:
            self.publish(FilesHashed(self.run_id, time.time(), files, task.name, a.attempt))

    def _forced(self, names: Sequence[str]) -> list[str]:
        """``--force NAMES``: each named target is made out of date for make — one with
        prerequisites gets the epoch as its time, one without is removed (make remakes
        a missing file; a time alone would not do)."""
        words = []
        for name in dict.fromkeys(self._make_name(n) for n in names):
            task = self.wf.tasks.get(name)
            p = os.path.join(self.root, name)
            if task is not None and task.phony or not os.path.lexists(p):
                continue
            try:
                if task is not None and (task.inputs or self.e.graph.deps(name)):
                    os.utime(p, (0, 0))
                else:
                    os.unlink(p)
            except OSError:
                continue
            words.append(name)
        return words

    def _command_changes(self, plan: Sequence[str]) -> None:
        """GRISTMILL_MAKE_COMMAND_CHANGES=1 (opt-in, Gristmill's addition): a target
        whose recipe, as read, differs from the one of its last success is made out of
        date for make, as ``--force`` does, with a line saying so."""
        history = self.e.history
        if history is None or os.environ.get("GRISTMILL_MAKE_COMMAND_CHANGES") != "1":
            return
        known = history.definition_hashes(str(self.wf.path))  # type: ignore[attr-defined]
        tasks = self.wf.tasks
        changed = [n for n in plan if n in known and tasks[n].commands
                   and known[n] != tasks[n].definition_hash]
        for name in self._forced(changed):
            self.publish(RunNotice(self.run_id, time.time(),
                                   f"{name}: its command changed since its last success; "
                                   "made out of date for make"))

    def _make_name(self, name: str) -> str:
        """The target make knows for a task: a double-colon rule's task ``T::2`` is
        ``T`` (make runs a target's out-of-date ``::`` rules together, each on its own)."""
        base, sep, k = name.rpartition("::")
        return base if sep and k.isdigit() and base in self.wf.tasks else name

    # -- the run -------------------------------------------------------------
    def run(self, goals: tuple[str, ...]) -> RunResult:
        e = self.e
        t0 = time.time()
        try:
            names = self.wf.resolve_targets(goals)
            closure = e.graph.closure(names)
            plan = tuple(n for n in e.graph.order if n in closure)
            self.plan_names = set(closure)
        except Exception:
            names, plan = goals, ()
        self.publish(RunStarted(self.run_id, t0, self.wf.name, str(self.wf.path), tuple(goals),
                                tuple(plan), False, self.jsonl, e.options.started_by,
                                tuple(e.options.changed)))
        self._untrusted()
        self._forced(e.force)
        self._command_changes(plan)
        self._content()
        from ..workflow import PROCESS
        isolated = sorted(n for n, t in self.wf.tasks.items() if t.isolation is not PROCESS)
        if isolated:
            self.publish(RunNotice(self.run_id, time.time(),
                                   f"isolation hints are not applied when make runs the "
                                   f"recipes (not yet): {', '.join(isolated[:5])} run as "
                                   f"plain processes"))
        if e.history is not None and plan:
            try:
                durations = e.history.durations(str(self.wf.path))  # type: ignore[attr-defined]
                self.priority = critical_path(e.graph, list(plan), durations)
            except Exception:
                self.priority = {}
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        ex = LocalExecutor()
        with e._lock:
            e._executor = ex
        if ex.notice:
            self.publish(RunNotice(self.run_id, time.time(), ex.notice))
        server = makeshell.Server(ex.wakeup)
        helper, _ = makeshell.helper()
        make_args = [a for a in e.make_args if not a.startswith(("-j", "--jobs"))] \
            if e.parallel else list(e.make_args)
        jobs = e.make_jobs() if e.parallel else 1
        if jobs > 1:          # -j1 is make's default: not said (MAKEFLAGS stays make's)
            make_args.insert(0, f"-j{jobs}")
        # The recipe shell reaches make, and every sub-make, through MAKEFILES (a
        # makefile each make reads first, never the default goal's): MAKEFLAGS and
        # MAKEOVERRIDES stay exactly make's, where SHELL= on the command line would
        # show in both. SHELL is the helper alone (a .ONESHELL recipe takes SHELL as
        # one program); the target comes in the environment, expanded per recipe.
        shell_mk = os.path.join(server.folder, "shell.mk")
        with open(shell_mk, "w") as f:
            f.write(f"override SHELL = {helper}\nexport GRISTMILL_TARGET = $@\n")
        argv = make_argv(e.make, make_args, e.variables,
                         list(dict.fromkeys(self._make_name(g) for g in goals)),
                         own_makefile(self.wf))
        env = dict(os.environ)
        # ours last: a Gristmill run inside a recipe of another one sets its own shell
        env["MAKEFILES"] = " ".join(filter(None, (env.get("MAKEFILES"), shell_mk)))
        env["GRISTMILL_MAKE_SOCKET"] = server.path
        env["GRISTMILL_MAKE_SHELL"] = self.default_shell
        env["GRISTMILL_MAKE_PATH"] = e.make
        env["GRISTMILL_RUN_ID"] = self.run_id
        for k in ("MAKELEVEL", "GRISTMILL_RECIPE", "GRISTMILL_TARGET"):
            env.pop(k, None)
        make_done = threading.Event()
        code = 2
        cancelled = signalled = False
        try:
            proc = subprocess.Popen(argv, cwd=self.root, env=env)
        except OSError as exc:
            self.publish(RunNotice(self.run_id, time.time(), f"cannot start {e.make}: {exc}"))
            proc = None
        if proc is not None:
            def waiter() -> None:
                proc.wait()
                make_done.set()
                ex.wakeup()
            threading.Thread(target=waiter, name="gristmill-make-wait", daemon=True).start()
        try:
            while proc is not None:
                with e._lock:
                    cancelled, aborted = e._cancel, e._abort
                if cancelled and not signalled:
                    signalled = True
                    try:
                        proc.send_signal(signal.SIGINT)     # make deletes what it was making
                    except OSError:
                        pass
                    for r in self.waiting:
                        r.request.answer(-signal.SIGINT)
                    self.waiting = []
                    ex.kill_all(now=aborted)
                elif cancelled and aborted:
                    ex.kill_all(now=True)
                self._take_requests(ex, server, cancelled)
                if not cancelled:
                    self._start_waiting(ex)
                done = make_done.is_set()
                if done and not self.lines and not self.waiting:
                    break
                timeout = POLL if self.ending else (0.1 if not done else 0.02)
                self._handle(ex.wait(timeout))
                self._end_attempts(done)
            if proc is not None:
                code = proc.returncode if proc.returncode is not None else proc.wait()
        finally:
            with e._lock:
                e._executor = None
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
            self._end_attempts(True, everything=True)
            ex.close()
            server.close()
        with e._lock:
            cancelled = e._cancel
        self._rest(plan, code == 0 and not cancelled)
        counts = dict.fromkeys((s.value for s in TaskState), 0)
        for s in self.states.values():
            counts[s.value] += 1
        counts = {k: v for k, v in counts.items() if v}
        status = (RunStatus.CANCELLED if cancelled else
                  RunStatus.SUCCEEDED if code == 0 else RunStatus.FAILED)
        now = time.time()
        self.publish(RunFinished(self.run_id, now, status, now - t0, counts))
        failed = tuple(n for n, s in self.states.items() if s is TaskState.FAILED)
        return RunResult(self.run_id, status, counts, failed, code=code)

    def _rest(self, plan: tuple[str, ...], ok: bool) -> None:
        """The tasks of the plan make ran no recipe for: up to date (make found them so),
        or, a target without a recipe whose prerequisites were made, done; after a
        failure or a cancel, skipped."""
        rest = [n for n in plan if self.states.get(n) in (None, TaskState.WAITING)]
        if not rest:
            return
        if not ok:
            why = Reason(ReasonKind.UPSTREAM_FAILED, "make did not get to it")
            for n in rest:
                self.set_state(n, TaskState.SKIPPED, (why,))
            return
        tasks, graph, done = self.wf.tasks, self.e.graph, TaskState.DONE
        fresh = []
        for n in rest:
            t = tasks.get(n)
            if t is not None and not t.commands and any(
                    self.states.get(d) is done for d in graph.deps(n)):
                self.set_state(n, done, (Reason(ReasonKind.DEPENDENCY_RUNS,
                                                "its prerequisites were made"),))
            else:
                fresh.append(n)
        if fresh:
            why = (Reason(ReasonKind.UP_TO_DATE, "make found it up to date"),)
            self.publish(TasksUpToDate(self.run_id, time.time(), tuple(fresh),
                                       tuple(why for _ in fresh)))
            for n in fresh:
                self.states[n] = TaskState.UP_TO_DATE

    # -- requests ------------------------------------------------------------
    def _name(self, cwd: str, target: str) -> str:
        if os.path.isabs(target) or cwd == self.root:
            return target
        rel = os.path.relpath(cwd, self.root)
        return target if rel == "." else f"{rel}/{target}"

    def _attempt(self, req: makeshell.Request) -> _Attempt:
        key = (req.make_pid, req.cwd, req.target)
        a = self.attempts.get(key)
        if a is not None:
            if a in self.ending:
                self.ending.remove(a)
            return a
        name = self._name(req.cwd, req.target)
        task = self.wf.tasks.get(name)
        n = self.counts.get(name, 0) + 1
        self.counts[name] = n
        path = os.path.join(req.cwd, req.target)
        try:
            st = os.lstat(path)
            before = (st.st_mtime_ns, st.st_size)
        except OSError:
            before = None
        a = _Attempt(key, name, task, n, time.time(),
                     f"{self.log_dir}/{log_file_name(name, n)}", path, before,
                     sub_make=req.level > 1)
        if self.auditor is not None and task is not None:
            a.trace = self.auditor.prefix(task, a.log_path)
        self.attempts[key] = a
        return a

    def _take_requests(self, ex: LocalExecutor, server: makeshell.Server,
                       cancelled: bool) -> None:
        q = server.requests
        while not q.empty():
            req: makeshell.Request = q.get()
            self.known_pids.setdefault(req.make_pid, set()).add(req.pid)
            if req.gone or req.status is not None:
                self._closed(ex, req)
                continue
            if cancelled:
                req.answer(-signal.SIGINT)
                continue
            a = self._attempt(req)
            first = a.lines == 0
            a.lines += 1
            a.running = req
            a.last = req
            recipe = req.env.get("GRISTMILL_RECIPE")
            if recipe:        # a job of ours started a make by itself: its slot goes back
                self._release(int(recipe) if recipe.isdigit() else -1)
            if req.kind == "R":
                a.recursive = True
                if first:
                    self._started(a, Resources(cpu=0), 0, 0, "")
                continue
            res = a.task.resources if a.task is not None else Resources()
            self.waiting.append(_Line(req, a, res))
            if first:
                self.set_state(a.name, TaskState.READY, (), a.attempt)

    def _closed(self, ex: LocalExecutor, req: makeshell.Request) -> None:
        """A connection ended: a recursive line's status, or a helper gone before its
        answer (make killed it: Ctrl-C, or -k ending): its job's tree is killed."""
        a = self.attempts.get((req.make_pid, req.cwd, req.target))
        if req.status is not None:
            if a is not None:
                self._line_done(a, req, req.status)
            return
        if req.answered:
            return
        for job_id, line in list(self.lines.items()):
            if line.request is req:
                ex.kill(job_id)
                line.attempt.killed = True
                return
        self.waiting = [w for w in self.waiting if w.request is not req]
        req.close_fds()
        if a is not None:
            a.killed = True
            self._line_done(a, req, -signal.SIGTERM)

    def _start_waiting(self, ex: LocalExecutor) -> None:
        if not self.waiting:
            return
        pri = self.priority
        self.waiting.sort(key=lambda w: (-pri.get(w.attempt.name, 0.0), w.request.arrival))
        kept = []
        for w in self.waiting:
            if self.free.fits(w.resources):
                self._start(ex, w)
            else:
                kept.append(w)
        self.waiting = kept

    def _start(self, ex: LocalExecutor, w: _Line) -> None:
        req, a = w.request, w.attempt
        w.gpus, w.slot = self.free.take(w.resources)
        job_id = self.next_job
        self.next_job += 1
        task = a.task
        shell = _shell_of(task) if task is not None and task.shell else self.default_shell
        env = dict(req.env)
        env["GRISTMILL_RECIPE"] = str(job_id)
        env["GRISTMILL_TASK"] = a.name
        env["GRISTMILL_ATTEMPT"] = str(a.attempt)
        devices = tuple(self.free.devices[p] for p in w.gpus)
        if w.resources.wants_gpu or self.free.devices:
            words = ",".join(d.word for d in devices)
            env["CUDA_VISIBLE_DEVICES"] = words
            env["NVIDIA_VISIBLE_DEVICES"] = words
        line_task = Task(name=a.name, commands=(req.line,), cwd=req.cwd,
                         resources=w.resources)
        self.lines[job_id] = w
        req.job = job_id
        stdin = req.fds[0] if req.fds else -1
        tee = req.fds[1] if len(req.fds) > 1 else -1
        argv = (shell, *req.args)
        problem = _cannot_exec(shell, req.args, req.cwd, env)
        if problem:
            # make's own words for a simple command it cannot start (make execs one
            # itself), on the stderr make gave the line and in the attempt's log
            for fd in req.fds[2:3]:
                _say_to(fd, problem)
            try:
                with open(a.log_path, "a") as f:
                    f.write(problem)
            except OSError:
                pass
            argv = ("/bin/sh", "-c", "exit 127")
        trace = (self.strace, f"{a.trace}-{a.lines}") if a.trace else None
        ex.start(Job(job_id, line_task, a.attempt, env, a.log_path, w.resources.mem or None,
                     echo=False, trace=trace, root=self.root, argv=argv,
                     stdin=stdin, tee=tee))
        process = ex.process(job_id)
        pgid, pstart = process if process is not None else (0, "")
        if a.lines == 1 and self.states.get(a.name) is not TaskState.RUNNING:
            self._started(a, w.resources, w.slot, pgid, pstart, devices)
        elif pgid:
            self.publish(TaskProcess(self.run_id, time.time(), a.name, a.attempt, pgid, pstart))

    def _started(self, a: _Attempt, res: Resources, slot: int, pgid: int, pstart: str,
                 devices=()) -> None:
        a.started = time.time()
        self.set_state(a.name, TaskState.RUNNING, (), a.attempt)
        task = a.task
        self.publish(TaskStarted(self.run_id, a.started, a.name, a.attempt, slot, res,
                                 tuple(d.index for d in devices), a.log_path,
                                 a.last.line if a.last is not None else "",
                                 task.definition_hash if task is not None else "",
                                 tuple(devices), pgid, pstart))
        if a.sub_make or a.recursive:
            self.publish(OutputLine(self.run_id, a.started, a.name, a.attempt,
                                    f"gristmill: {'run by a sub-make' if a.sub_make else ''}"
                                    f"{' in ' + a.key[1] if a.sub_make else ''}"
                                    f"{'; ' if a.sub_make and a.recursive else ''}"
                                    f"{'runs a sub-make: ' + a.last.line if a.recursive and a.last else ''}"))

    def _release(self, job_id: int) -> None:
        w = self.lines.get(job_id)
        if w is None or w.released:
            return
        w.released = True
        w.attempt.sub_make = True
        self.free.give(w.resources, w.gpus, w.slot)

    # -- what the executor says ------------------------------------------------
    def _handle(self, events) -> None:
        publish = self.publish
        for ev in events:
            w = self.lines.get(getattr(ev, "job_id", -1))
            if w is None:
                continue
            a = w.attempt
            if isinstance(ev, JobOutput):
                now = time.time()
                for text in ev.lines:
                    publish(OutputLine(self.run_id, now, a.name, a.attempt, text))
            elif isinstance(ev, JobSpawned):
                publish(TaskProcess(self.run_id, time.time(), a.name, a.attempt, ev.pgid,
                                    ev.process_start))
            elif isinstance(ev, JobExited):
                del self.lines[ev.job_id]
                if not w.released:
                    self.free.give(w.resources, w.gpus, w.slot)
                a.peak = max(a.peak, ev.peak_mem or 0)
                if ev.over_memory:
                    a.over_memory = True
                if ev.killed:
                    a.killed = True
                if ev.message:
                    a.message = ev.message
                status = (ev.exit_code if ev.exit_code is not None else
                          -(ev.signal or signal.SIGKILL))
                if a.trace:
                    from .trace import collect
                    found = collect(f"{a.trace}-{a.lines}", w.request.cwd)
                    if found is not None:
                        a.accesses = (a.accesses or []) + found
                w.request.answer(status)
                self._line_done(a, w.request, status)

    def _line_done(self, a: _Attempt, req: makeshell.Request, status: int) -> None:
        a.running = None
        a.status = status
        if status != 0 and not self.ignore_all:
            index = a.lines - 1
            ignored = (a.task is not None and index < len(a.task.ignore_errors)
                       and a.task.ignore_errors[index])
            a.failed = not ignored
        elif status == 0:
            a.failed = False
        if a not in self.ending:
            self.ending.append(a)

    # -- ending attempts ---------------------------------------------------------
    def _end_attempts(self, make_done: bool, everything: bool = False) -> None:
        """End the attempts whose recipe is over. In this order, so that no fork of
        make's slips between the looks: the last line's helper was reaped, then make
        sleeps waiting (for a child or a token), then every child of make is a helper
        that connected (make starts a target's next line at once when it reaps one)."""
        if not self.ending:
            return
        if everything:
            for a in self.ending:
                self._finish(a)
            self.ending = []
            return
        maybe = []
        over = []
        for a in self.ending:
            if a.running is not None:
                continue
            if a.task is not None and _read(a.task) and a.lines == len(a.task.commands) \
                    and not a.failed:
                over.append(a)       # the data base's line count: the recipe is over
                continue
            make_pid = a.key[0]
            helper = a.last.pid if a.last is not None else 0
            if helper and _alive(helper):
                continue
            if _alive(make_pid) and not _waiting(make_pid):
                continue
            maybe.append(a)
        if maybe:
            # A child make forked since is younger than the helper that ran the last line.
            parents = _parents(min(a.last.pid if a.last is not None else 0 for a in maybe))
            for a in maybe:
                make_pid = a.key[0]
                known = self.known_pids.get(make_pid, set())
                if not any(pp == make_pid and pid not in known for pid, pp in parents.items()):
                    over.append(a)
        for a in over:
            self.ending.remove(a)
            self._finish(a)

    def _finish(self, a: _Attempt) -> None:
        self.attempts.pop(a.key, None)
        now = time.time()
        removed: tuple[str, ...] = ()
        failed = a.failed or a.over_memory or a.killed
        with self.e._lock:
            cancelled = self.e._cancel
        if a.over_memory:
            outcome = Outcome.FAILED
            mem = a.task.resources.mem if a.task is not None else 0
            from ..sizes import format_size
            message = f"killed for using more than its declared mem ({format_size(mem)})"
            if a.peak:
                message += f"; peak {format_size(a.peak)}"
        elif a.killed or (failed and cancelled):
            outcome, message = Outcome.CANCELLED, "stopped when the run was cancelled"
        elif failed:
            outcome = Outcome.FAILED
            message = (f"exit status {a.status}" if a.status > 0 else
                       f"killed by signal {-a.status}")
            if a.message:
                message += f": {a.message}"
        else:
            outcome, message = Outcome.SUCCEEDED, ""
        if outcome is not Outcome.SUCCEEDED:
            removed = self._remove_partial(a)
        if self.states.get(a.name) is not TaskState.RUNNING:
            self._started(a, Resources(cpu=0), 0, 0, "")
        self.publish(TaskFinished(self.run_id, now, a.name, a.attempt, outcome,
                                  a.status if a.status >= 0 else None, now - a.started,
                                  a.peak or None, False, removed, message))
        if outcome is Outcome.SUCCEEDED:
            self._hash_inputs(a)
        if a.trace and not a.killed and a.task is not None:
            self.auditor.judge(a.task, a.attempt, a.trace, a.accesses,   # type: ignore[union-attr]
                               outcome is Outcome.SUCCEEDED)
        state = {Outcome.SUCCEEDED: TaskState.DONE, Outcome.CANCELLED: TaskState.CANCELLED
                 }.get(outcome, TaskState.FAILED)
        reasons = ()
        if outcome is Outcome.CANCELLED:
            reasons = (Reason(ReasonKind.RUN_CANCELLED, message),)
        elif outcome is not Outcome.SUCCEEDED:
            reasons = (Reason(ReasonKind.LAST_RUN_FAILED, message),)
        self.set_state(a.name, state, reasons, a.attempt)

    def _remove_partial(self, a: _Attempt) -> tuple[str, ...]:
        """Gristmill's addition to make: a failed recipe's target, changed during the
        attempt, is removed (not a ``.PRECIOUS`` or ``.SECONDARY`` one, nor a folder)."""
        if a.task is not None and a.task.phony or _kept(a.name, self.wf.keep_on_failure):
            return ()
        try:
            st = os.lstat(a.path)
        except OSError:
            return ()
        if os.path.isdir(a.path) and not os.path.islink(a.path):
            return ()
        if a.before is not None and (st.st_mtime_ns, st.st_size) == a.before:
            return ()
        try:
            os.unlink(a.path)
        except OSError:
            return ()
        return (a.name,)


def _cannot_exec(shell: str, args: tuple[str, ...], cwd: str,
                 env: Mapping[str, str]) -> str:
    """make's message when a simple command (one make would exec itself, without the
    shell) cannot start: "make: prog: No such file or directory"; "" otherwise."""
    if shell != "/bin/sh" or len(args) != 2 or args[0] != "-c":
        return ""
    words = direct_argv(("/bin/sh", "-c"), args[1])
    if not words:
        return ""
    prog = words[0]
    if "/" in prog:
        candidates = [os.path.join(cwd, prog)]
    else:
        candidates = [os.path.join(d or ".", prog) if os.path.isabs(d or ".") else
                      os.path.join(cwd, d or ".", prog)
                      for d in env.get("PATH", os.defpath).split(":")]
    denied = False
    for c in candidates:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return ""
        if os.path.exists(c):
            denied = True
    why = "Permission denied" if denied else "No such file or directory"
    return f"make: {prog}: {why}\n"


def _say_to(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode("utf-8", "surrogateescape"))
    except OSError:
        pass


def _read(task: Task) -> bool:
    """Were ``task``'s recipe lines read (the full read), so that their count is the
    number of lines make runs? The graph read gives a one-line stand-in instead."""
    cmds = task.commands
    return not (len(cmds) == 1 and "gristmill: the recipe of" in cmds[0])


def _shell_of(task: Task) -> str:
    """The Makefile's SHELL for ``task``'s recipe (its ``shell`` without the env(1)
    that takes ``unexport``ed variables out for the Engine: make does that itself)."""
    words = task.shell
    if os.path.basename(words[0]) == "env":
        i = 1
        while i + 1 < len(words) and words[i] == "-u":
            i += 2
        if i < len(words):
            return words[i]
    return words[0]


def _kept(name: str, keep: frozenset[str]) -> bool:
    """``name`` is .PRECIOUS or .SECONDARY (by name or by a ``%`` pattern)."""
    if name in keep:
        return True
    for p in keep:
        if "%" in p:
            head, _, tail = p.partition("%")
            if len(name) > len(head) + len(tail) and name.startswith(head) \
                    and name.endswith(tail):
                return True
    return False


# The system calls in which make waits for its children or a jobserver token (and in
# which it forks nothing): wait4, waitid, pselect6, select, poll, ppoll, read.
_WAITS = {"x86_64": {61, 247, 270, 23, 7, 271, 0},
          "aarch64": {260, 95, 72, 73, 63}}.get(os.uname().machine, set())


def _alive(pid: int) -> bool:
    """``pid`` exists (a zombie too: its parent has not reaped it)."""
    return os.path.exists(f"/proc/{pid}")


def _waiting(pid: int) -> bool:
    """make ``pid`` sleeps, blocked waiting (not writing the echo of its next line)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        with open(f"/proc/{pid}/syscall") as f:
            word = f.read().split(" ", 1)[0]
    except (OSError, IndexError):
        return True          # gone
    if state != b"S":
        return False
    return not _WAITS or (word.isdigit() and int(word) in _WAITS)


def _parents(above: int = 0) -> dict[int, int]:
    """pid -> parent pid of the processes whose pid is above ``above``, from /proc."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) <= above:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                out[int(entry)] = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return out
