"""The workbench: the open workflow, its scan, the run state and the engine bridge.

The window shows it and calls its methods; views never touch the engine.
"""

from __future__ import annotations

import gc
import os
import shutil
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QWidget

from gristmill.core import paths
from gristmill.core.decide.capacity import Capacity, detect_cpus, detect_memory, machine_devices
from gristmill.core.decide.gpus import detect_devices
from gristmill.core.workflow import CapacityOverride
from gristmill.core.run.engine import Engine, RunOptions
from gristmill.core.run.leftovers import leftover_words, stop_leftovers
from gristmill.core.run.makerun import engine_for
from gristmill.core.errors import GristmillError
from gristmill.core.events import EventBus, TaskState
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.record.history import AttemptRecord, History, RunRecord
from gristmill.core.record.runlock import RunLock, RunLocked
from gristmill.core.record.retention import Retention
from gristmill.core.load.loader import is_makefile, load_workflow
from gristmill.core.makefile.assemble import UNREAD_RECIPE
from gristmill.core.sizes import parse_size
from gristmill.core.decide.staleness import Decision, StalenessScan
from gristmill.core.workflow import Task, Workflow

from gristmill.core.watch.loop import STARTED_BY, describe
from gristmill.core.watch.scope import INPUT, RELOAD, RESCOPE, WatchScope
from gristmill.core.watch.watcher import Change

from . import prompts
from .bridge import EngineBridge, RunEnded
from .compute import CLUSTER, ClusterEngine, Compute
from .diskwatch import DiskWatch
from .models.task_table import ScanSummary, TaskTableModel, output_times, summarise
from .past_logs import LatestAttempts, TaskAttempts
from .runstate import Changes, RunState
from .session import WorkflowSession, resolve_workflow_path
from .settings import Settings

CLEAN_TASK = "clean"
CACHE_STORE_DELAY_MS = 1000     # a fresh load is stored in the workflow cache this long after


@lru_cache(maxsize=1)
def _machine() -> tuple[float, int, tuple]:
    """The machine's cpu, memory and GPU devices, detected once (nvidia-smi is slow)."""
    return float(detect_cpus()), detect_memory(), detect_devices()


@dataclass(frozen=True)
class PastRun:
    record: RunRecord
    attempts: tuple[AttemptRecord, ...]


@dataclass(frozen=True)
class _Scan:
    """A staleness scan, and all the window needs from it, made ready on any thread."""
    workflow: Workflow
    decisions: Mapping[str, Decision] | None
    error: str | None
    durations: Mapping[str, float]       # task -> seconds of its last success
    changed: list[str] | None            # rows that differ from the shown scan; None: all
    outputs: Mapping[str, float | None]  # output times of the changed rows (all if None)
    generation: int = 0
    ended: object = None                 # the RunEnded it completes, after a run
    taken: float = 0.0                   # time.time() as the scan began
    summary: ScanSummary | None = None   # what the table keeps of it besides the decisions


class Workbench(QObject):
    workflowLoaded = Signal(object)      # Workflow: a new good state
    workflowFailed = Signal(object)      # GristmillError (the last good state stays)
    openFailed = Signal(object)          # GristmillError: no workflow there; nothing changed
    scanned = Signal()                   # decisions and durations refreshed
    changed = Signal(object)             # Changes from one batch of engine events
    busyChanged = Signal(bool)
    runEnded = Signal(object)            # RunEnded
    message = Signal(str)                # a line for the status bar
    runRefused = Signal(str)             # a run could not start: why (another run holds it)
    watchingChanged = Signal(bool)       # Watch turned on or off
    diskChanged = Signal(object)         # list[Change]: files the workflow reads changed
    _scanFinished = Signal(object)       # _Scan from the worker thread (queued to this one)
    _idleScanFinished = Signal(object)   # _Scan of a rescan after a change on disk
    _scopeWatched = Signal(object)       # (workflow) the watches of its scope are in

    def __init__(self, settings: Settings, history: History | None = None,
                 window: QWidget | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self.history = history
        self._window = window
        self.run = RunState()
        self.tasks = TaskTableModel(self.run, self)
        self.session = WorkflowSession(self)
        self.bridge = EngineBridge(self.run, self)
        self.compute = Compute()             # where runs go (Preferences, the toolbar)
        self.remote_run = False              # the run shown went to a cluster
        self.decisions: dict[str, Decision] = {}
        self.decided_at = 0.0                # time.time() as the scan of ``decisions`` began
        self._durations: dict[str, float] = {}
        self.scan_changed: list[str] | None = None   # the tasks the last scan shown changed; None: all
        self._scan_generation = 0
        self._scanning = False
        self._latest = LatestAttempts(history, None)
        self._close_requested = False
        self.audit = False             # Run > Audit Dependencies: runs trace their tasks
        self._run_lock: RunLock | None = None
        # Watching the files the workflow reads (always), and Watch (a toggle): runs of
        # the watched targets whenever a change makes one of them stale.
        self.disk = DiskWatch(self)
        self.watching = False
        self.watch_targets: tuple[str, ...] = ()   # as asked for ("" words: the default)
        self._watch_path: str | None = None        # the workflow Watch was turned on for
        self._changes: list[Change] = []     # changes not yet answered by a scan or a run
        self._idle_generation = 0
        self._rescan_after = False           # a change came while a run's scan was made
        self.disk.changed.connect(self._disk_changed)
        self._idleScanFinished.connect(self._idle_scanned)
        self._scopeWatched.connect(self._scope_watched)
        self.session.loaded.connect(self._loaded)
        self.session.failed.connect(self._failed)
        self.session.openFailed.connect(self.openFailed)
        self.bridge.applied.connect(self._applied)
        self.bridge.ended.connect(self._ended)
        self._scanFinished.connect(self._scanned_after_run)

    # -- questions ----------------------------------------------------------------

    @property
    def workflow(self) -> Workflow | None:
        return self.session.workflow

    @property
    def graph(self) -> TaskGraph | None:
        return self.session.graph

    @property
    def busy(self) -> bool:
        return self.bridge.busy or self._scanning

    def estimates(self) -> Mapping[str, float]:
        return self.tasks.estimates()

    def capacity(self) -> Capacity:
        """Detected machine < preferences < the workflow's own [capacity]."""
        prefs = self.settings.preferences
        cpu, mem, found = _machine()
        gpu = None
        if prefs.cpu > 0:
            cpu = prefs.cpu
        if prefs.mem:
            try:
                mem = parse_size(prefs.mem)
            except ValueError:
                pass
        if prefs.gpu >= 0:
            gpu = prefs.gpu
        wf = self.workflow
        pools: Mapping[str, int] = {}
        if wf is not None:
            cpu = wf.capacity.cpu if wf.capacity.cpu is not None else cpu
            mem = wf.capacity.mem if wf.capacity.mem is not None else mem
            gpu = wf.capacity.gpu if wf.capacity.gpu is not None else gpu
            pools = wf.pools
        below = wf.capacity.gpu_mem_used_below if wf is not None else None
        devices = machine_devices(CapacityOverride(gpu=gpu, gpu_mem_used_below=below), found)
        return Capacity(cpu=cpu, mem=mem, gpu=len(devices), pools=dict(pools),
                        jobs=prefs.jobs or None, devices=devices)

    # -- opening ------------------------------------------------------------------

    def open(self, path: str | os.PathLike[str]) -> bool:
        if self.busy:
            self.message.emit("A run is in progress: cancel it before opening another workflow.")
            return False
        try:
            file = resolve_workflow_path(path)
        except GristmillError:
            return self.session.open(path)          # the session reports the error
        if is_makefile(file) and not self.settings.is_trusted(file.parent):
            return self._open_after_trust(file)
        return self.session.open(file)

    def _open_after_trust(self, file: Path) -> bool:
        """Reading a Makefile runs GNU make (its $(shell …) calls too): ask first."""
        def answered(trust: object) -> None:
            if trust:
                self.settings.trust(file.parent)
                self.session.open(file)
            else:
                self.message.emit("Not opened: the folder is not trusted.")

        prompts.ask(
            self._window, prompts.TRUST, "Trust this folder?",
            f"Opening {file} asks GNU make to read it, and a Makefile can run commands "
            "while it is read ($(shell …), remade includes).",
            [prompts.Choice("Trust and Open", True, prompts.ButtonRole.AcceptRole, default=True),
             prompts.Choice("Don’t Open", False, prompts.ButtonRole.RejectRole, escape=True)],
            answered,
            informative="Only trust folders whose commands you are willing to run. "
                        "Gristmill remembers folders you trust.")
        return True

    def reload(self) -> bool:
        return self.session.reload()

    def close_workflow(self) -> None:
        self.set_watching(False)
        self.disk.watch(None)
        self.session.close()
        self._forget_workflow()

    def _failed(self, error: GristmillError) -> None:
        if self.session.workflow is None and self.tasks.workflow is not None:
            # Another workflow that does not load: what was shown is not of it.
            self._forget_workflow()
        self.workflowFailed.emit(error)

    def _forget_workflow(self) -> None:
        self._latest = LatestAttempts(None, None)
        self.run.reset()
        self.decisions = {}
        self._durations = {}
        self.tasks.set_workflow(None)

    def _loaded(self, workflow: Workflow) -> None:
        if self.run.workflow_path and self.run.workflow_path != str(workflow.path):
            self.run.reset()
        if self.watching and self._watch_path != str(workflow.path):
            self.set_watching(False)           # another workflow: Watch was for the last
        self._latest = LatestAttempts(self.history, str(workflow.path))
        self.settings.add_recent(workflow.path)
        if self.history is not None:
            try:
                self.history.mark_interrupted(workflow.path)
            except Exception:                 # history is a convenience, never a blocker
                pass
        # The rows arrive with their scan, in one reset: a reset and then an every-row
        # change would have each filter look at every row twice.
        scan = self._scan(workflow, self.session.graph, full=True)
        self._take_scan(scan)
        self.scan_changed = None
        self.tasks.set_workflow(workflow, self.decisions, self._durations, scan.outputs,
                                scan.summary)
        self.scanned.emit()
        # What it reads is watched from a worker thread once the window has been painted;
        # when the watches are in, a scan there shows what changed since this one.
        self._watch_files(workflow)
        # A fresh load goes into the workflow cache once the window has shown it.
        QTimer.singleShot(CACHE_STORE_DELAY_MS, self.session.store_cache)
        # Tens of thousands of long-lived objects now: keep the cyclic collector from
        # walking them at every full collection (a pause of ~50 ms that stalls the
        # window mid-run). The previous workflow's objects are released to it first.
        gc.unfreeze()
        gc.freeze()
        self.workflowLoaded.emit(workflow)
        if self.watching and not self.busy:
            self._run_if_stale()

    def rescan(self) -> None:
        """Decide staleness of every task, and read durations from history."""
        wf, graph = self.workflow, self.graph
        if wf is None or graph is None:
            return
        self._apply_scan(self._scan(wf, graph))

    def _scan(self, wf: Workflow, graph: TaskGraph, generation: int = 0,
              ended: object = None, full: bool = False) -> _Scan:
        """Scan, read history, and compare with what is shown: safe on any thread (the
        comparison and the output times of 20,000 tasks would stall the window).
        ``full``: for rows not shown yet (every row counts as changed)."""
        taken = time.time()
        records = {}
        untrusted = {}
        if self.history is not None:
            try:
                records = self.history.task_records(wf.path)
                # The trust rule: a task whose last attempt did not succeed is stale.
                untrusted = self.history.untrusted(wf.path)
            except Exception:
                records = {}
        error = None
        scanner = StalenessScan(wf, graph, records=records, untrusted=untrusted)
        stamp = None
        try:
            decisions = scanner.scan(list(wf.tasks))
            stamp = scanner.stamps.get         # the outputs' times, as the scan read them
        except (GristmillError, OSError) as e:
            decisions, error = None, str(e)
        durations = {name: r.duration for name, r in records.items()}
        before, durations_before = self.decisions, self._durations
        shown = decisions or {}
        if not full and before and set(before) == set(shown):
            # Only the rows whose decision or duration changed (after a run: the tasks
            # it ran), not every row: re-filtering 20,000 rows stalls the window.
            changed: list[str] | None = [
                n for n, d in shown.items()
                if before.get(n) != d or durations_before.get(n) != durations.get(n)]
        else:
            changed = None
        summary = summarise(decisions, graph.closure(wf.default)) if decisions else None
        return _Scan(wf, decisions, error, durations, changed, output_times(wf, changed, stamp),
                     generation, ended, taken, summary)

    def _take_scan(self, scan: _Scan) -> None:
        self.decisions = scan.decisions or {}
        # A decision per task, kept until the next scan: out of the cyclic collector's
        # walks (they hold no cycles; the previous ones are freed as they are dropped).
        gc.freeze()
        self.decided_at = scan.taken
        if scan.error:
            self.message.emit(scan.error)
        self._durations = dict(scan.durations)

    def _apply_scan(self, scan: _Scan) -> None:
        self.scan_changed = scan.changed
        self._take_scan(scan)
        self.tasks.apply_scan(self.decisions, self._durations, scan.outputs, scan.changed,
                              scan.summary)
        self.scanned.emit()

    # -- changes on disk, and Watch ------------------------------------------------

    def _watch_files(self, workflow: Workflow) -> None:
        """Watch what the workflow reads: the folders of every task's inputs, of its globs,
        of its own files. The scope is made on a worker thread (a walk over every input
        and output: a second at 100,000 tasks); a change made before its watches are in
        is found by the scan that follows them (``_scope_watched``)."""
        log = self.session.disk_log
        self.disk.watch_later(
            lambda: WatchScope.of(workflow, workflow.path, log.files, log.listings,
                                  [p for _how, p in log.answers], list(workflow.tasks)),
            lambda: self._tell(self._scopeWatched, workflow))

    def _tell(self, signal, value: object) -> None:
        """Emit from a worker thread (queued to the GUI thread's slot)."""
        try:
            signal.emit(value)
        except RuntimeError:        # the window was closed meanwhile
            pass

    def _scope_watched(self, workflow: Workflow) -> None:
        """The watches are in: what changed before them is found by a scan now."""
        if workflow is self.workflow:
            self._scan_when_idle()

    def _scan_when_idle(self) -> None:
        """A scan on a worker thread now (during a run: the scan after it sees it)."""
        if self.bridge.busy:
            return
        if self._scanning:                         # that scan may have been made already
            self._rescan_after = True
            return
        self._rescan_idle()

    def _disk_changed(self, batch: list[Change]) -> None:
        """A debounced batch of changes to files the workflow reads (GUI thread)."""
        if self.workflow is None:
            return
        if any(c.what == RESCOPE for c in batch):     # a folder it waits for appeared
            self._watch_files(self.workflow)
            batch = [c for c in batch if c.what != RESCOPE]
            if not batch:
                return
        self.diskChanged.emit(batch)
        if self.watching:
            self._changes += batch
        if any(c.what == RELOAD for c in batch):
            self.session.changed_on_disk()         # a glob may match a new file: load again
            return
        if self.bridge.busy:
            if self.watching:
                self._restart_readers(batch)
            return                                 # the scan after the run sees the rest
        self._scan_when_idle()

    def _restart_readers(self, batch: list[Change]) -> None:
        """Watch: a change to the inputs of a running task restarts that task alone."""
        scope = self.disk.scope
        if scope is None:
            return
        running = set(self.run.running_tasks())
        for c in batch:
            if c.what != INPUT:
                continue
            for name in scope.readers(c.path):
                if name in running:
                    self.bridge.restart_task(name, f"input {scope.shown(c.path)} changed "
                                                   "while it ran")

    def _rescan_idle(self) -> None:
        """The scan of every task on a worker thread, its result shown as one batch."""
        wf, graph = self.workflow, self.graph
        if wf is None or graph is None:
            return
        self._idle_generation += 1
        generation = self._idle_generation

        def work() -> None:
            self._tell(self._idleScanFinished, self._scan(wf, graph, generation))

        threading.Thread(target=work, name="gristmill-rescan", daemon=True).start()

    def _idle_scanned(self, scan: _Scan) -> None:
        if scan.generation != self._idle_generation or scan.workflow is not self.workflow:
            return
        if self.bridge.busy or self._scanning:
            self._rescan_after = True    # a run is on: scan again once it has ended
            return
        # Tasks this scan finds stale that the shown one did not: a change the watcher
        # had no watch for yet (one made as the workflow was opened) is found so.
        before = self.decisions
        became_stale = any(not before[n].stale for n in (scan.changed or ())
                           if n in before and scan.decisions and scan.decisions[n].stale)
        self._apply_scan(scan)
        if self.watching:
            self._run_if_stale(became_stale)

    def set_watching(self, on: bool, targets: list[str] | tuple[str, ...] = ()) -> bool:
        """Watch: keep ``targets`` (the default when empty) up to date: run them now, then
        again whenever a change makes one of them stale. Off: what runs is cancelled."""
        if on == self.watching:
            return True
        if not on:
            self.watching = False
            self._changes = []
            if self.busy:
                self.cancel()
            self.watchingChanged.emit(False)
            self.message.emit("Watch is off.")
            return True
        wf = self.workflow
        if wf is None:
            self.message.emit("Open a workflow first.")
            self.watchingChanged.emit(False)
            return False
        try:
            wf.resolve_targets(list(targets))
        except GristmillError as e:
            self.message.emit(str(e))
            self.watchingChanged.emit(False)
            return False
        self.watch_targets = tuple(targets)
        self._watch_path = str(wf.path)
        self.watching = True
        self._changes = []
        self.watchingChanged.emit(True)
        what = " ".join(targets) or "the default targets"
        self.message.emit(f"Watching: {what} run whenever a change makes them stale.")
        if not self.busy:
            self._start_watched(first=True)
        return True

    def _run_if_stale(self, became_stale: bool = False) -> None:
        """Watch, after a scan: run the watched targets if a change made any stale
        (``became_stale``: the scan found one that the watcher did not see)."""
        changes, self._changes = self._changes, []
        wf = self.workflow
        if (not changes and not became_stale) or self.graph is None or wf is None:
            return
        try:        # after an edit: the watched tasks as the workflow names them now
            names = wf.resolve_targets(list(self.watch_targets))
        except GristmillError as e:
            self.message.emit(f"Watch: {e}")
            return
        wanted = self.graph.closure(list(names))
        rerun = self._rerun(changes)
        if not rerun and not any(self.decisions.get(n) is not None and self.decisions[n].stale
                                 for n in wanted):
            return
        self._start_watched(changes=changes, rerun=rerun)

    def _rerun(self, changes: list[Change]) -> dict[str, str]:
        """Tasks the last run finished well though an input changed while they ran."""
        scope, out = self.disk.scope, {}
        if scope is None:
            return out
        for c in changes:
            for name in scope.readers(c.path) if c.what == INPUT else ():
                tr = self.run.tasks.get(name)
                if tr is not None and tr.state is TaskState.DONE and tr.started is not None \
                        and tr.started < c.time:
                    out.setdefault(name, f"input {scope.shown(c.path)} changed while its last "
                                         "attempt ran")
        return out

    def _start_watched(self, first: bool = False, changes: list[Change] = (),
                       rerun: Mapping[str, str] | None = None) -> None:
        scope = self.disk.scope
        shown = tuple(dict.fromkeys(scope.shown(c.path) if scope else c.path for c in changes))
        if shown:
            self.message.emit(f"Changed: {describe(list(shown))}")
        if not self.start_run(list(self.watch_targets), started_by=STARTED_BY, changed=shown,
                              rerun=tuple((rerun or {}).items())):
            if first:
                self.set_watching(False)

    # -- running ------------------------------------------------------------------

    def start_run(self, targets: list[str] | tuple[str, ...] = (), *, force: tuple[str, ...] = (),
                  dry_run: bool = False, started_by: str = "", changed: tuple[str, ...] = (),
                  rerun: tuple[tuple[str, str], ...] = ()) -> bool:
        """Run targets (the default when empty), asking to trust the folder first."""
        wf = self.workflow
        if wf is None:
            self.message.emit("Open a workflow first.")
            return False
        if self.busy:
            self.message.emit("A run is already in progress.")
            return False
        watch = (started_by, changed, rerun)
        if dry_run or self.settings.is_trusted(wf.root):
            return self._start(list(targets), force, dry_run, watch)

        def answered(trust: object) -> None:
            if trust and self.workflow is wf:
                self.settings.trust(wf.root)
                self._start(list(targets), force, dry_run, watch)
            elif not trust:
                self.message.emit("Nothing ran: the folder is not trusted.")
                if started_by:
                    self.set_watching(False)

        prompts.ask(
            self._window, prompts.TRUST, "Trust this folder?",
            f"Running “{wf.name}” runs the shell commands written in\n{wf.path}",
            [prompts.Choice("Trust and Run", True, prompts.ButtonRole.AcceptRole, default=True),
             prompts.Choice("Don’t Run", False, prompts.ButtonRole.RejectRole, escape=True)],
            answered,
            informative="Only trust folders whose commands you are willing to run. "
                        "Gristmill remembers folders you trust.")
        return True

    def _start(self, targets: list[str], force: tuple[str, ...], dry_run: bool,
               watch: tuple = ("", (), ())) -> bool:
        wf, graph = self.workflow, self.graph
        if wf is None or graph is None or self.busy:
            return False
        if wf.kind == "make":
            # Opening read the default goal's recipes only: make reads the Makefile for
            # these goals now, as `make GOALS` would (their MAKECMDGOALS, their recipes).
            try:
                wf = load_workflow(wf.path, goals=targets)
                graph = TaskGraph.of(wf)
            except GristmillError as exc:
                self.message.emit(f"The run did not start: {exc}")
                self.runRefused.emit(str(exc))
                return False
        prefs = self.settings.preferences
        self.configure_compute()
        settings = None
        if self.compute.kind == CLUSTER and not dry_run:
            # Before anything is taken: the cluster's settings (their errors at
            # path:line:col) and its package, imported here on the main thread.
            try:
                settings = self._cluster_settings(wf)
            except GristmillError as exc:
                self.message.emit(f"The run did not start: {exc}")
                self.runRefused.emit(str(exc))
                return False
        started_by, changed, rerun = watch
        options = RunOptions(jobs=prefs.jobs or None, force=tuple(force), dry_run=dry_run,
                             capacity=self.capacity(), audit=self.audit,
                             started_by=started_by, changed=tuple(changed), rerun=tuple(rerun))
        if not dry_run:
            # One run of a workflow at a time: a CLI run (or another window) may hold it.
            lock = RunLock(wf.path, "the Gristmill app")
            try:
                lock.acquire()
            except RunLocked as exc:
                why = f"{exc.who()}: wait for it to end, or stop it first"
                self.message.emit(f"The run did not start: {why}")
                self.runRefused.emit(why)
                return False
            self._run_lock = lock
            self._stop_leftovers(wf)
        # Tasks start with posix_spawn only from the executor's own working folder (Python
        # 3.11 has no chdir action), else through a fork of this whole Qt process: run from
        # the workflow's folder, as `gristmill run` does (every path the app keeps is absolute).
        try:
            if os.getcwd() != str(wf.root):
                os.chdir(wf.root)
        except OSError:
            pass
        bus = EventBus()
        self.remote_run = self.compute.remote and not dry_run
        if self.remote_run:                          # connected on the engine thread
            history, kind = self.history, self.compute.cluster_kind

            def session(targets, health, on_started):
                from gristmill.core.run.clusters import session_engine
                return session_engine(wf, kind, targets, settings, bus=bus, history=history,
                                      options=options, graph=graph, health=health,
                                      on_started=on_started)
            engine = ClusterEngine(self.compute, lambda opts, factory: Engine(
                wf, bus, history, opts, executor_factory=factory, graph=graph), options,
                session if settings is not None else None)
        else:
            # A Makefile: GNU make runs the recipes (packed by Gristmill, -j as the
            # machine allows); anything else, or a plan: the Engine.
            engine = engine_for(wf, bus, None if dry_run else self.history, options,
                                graph=graph, parallel=True)
        self.session.hold(True)
        self.bridge.start(engine, bus, targets)
        self.busyChanged.emit(True)
        what = "Planning" if dry_run else "Running"
        self.message.emit(f"{what} {' '.join(targets) or 'the default targets'}…")
        return True

    def plan_capacity(self, ask):
        """The Capacity Planner's curves for the default targets' stale tasks (any
        thread): the core's simulate over ``ask``'s sweep, durations from history."""
        from .planner import PlannerResult, deciding_capacity, plan_curves
        wf, graph = self.workflow, self.graph
        if wf is None or graph is None:
            return PlannerResult((), None, error="Open a workflow first.")
        base = self.capacity()
        try:
            engine = Engine(wf, None, self.history, RunOptions(capacity=deciding_capacity(base)),
                            graph=graph)
            _, decisions, _ = engine.decide([])
            stale = [n for n, d in decisions.items() if d.stale]
            known = self.history.recent_durations(str(wf.path)) if self.history else {}
            return plan_curves(wf, graph, stale, known, base, ask)
        except GristmillError as exc:
            return PlannerResult((), None, error=str(exc))

    def _cluster_settings(self, wf: Workflow):
        """The settings of a cluster for a run of ``wf`` (its ``[cluster]`` over the
        user's ``cluster.toml``), its package imported now (on the main thread:
        dask-jobqueue sets a signal handler as it is imported). A ``GristmillError``
        says what is wrong, in words."""
        from gristmill.core.load.userconfig import cluster_settings
        from gristmill.core.run.clusters import import_backend
        settings = cluster_settings(wf)
        import_backend(self.compute.cluster_kind)
        return settings

    def configure_compute(self) -> None:
        """Where runs go, from the preferences (a held connection that no longer fits
        is closed)."""
        prefs = self.settings.preferences
        self.compute.configure(prefs.run_on, prefs.dask_address, prefs.cluster_kind)

    def _stop_leftovers(self, wf: Workflow) -> None:
        """Task trees a killed Gristmill left running (found from history): stopped
        before the run decides anything, as the CLI's run does."""
        if self.history is None:
            return
        try:
            found = self.history.leftovers(wf.path)
        except Exception:                 # history is a convenience, never a blocker
            return
        if not found:
            return
        stuck = stop_leftovers(found)
        words = "; ".join(leftover_words(g) for g in found)
        if stuck:
            self.message.emit(f"Could not stop what a killed run left running: {words}")
        else:
            self.message.emit(f"Stopped what a killed run left running: {words}")

    def cancel(self) -> None:
        if self.busy:
            self.bridge.cancel()
            self.message.emit("Cancelling…")

    def cancel_task(self, name: str) -> None:
        if self.busy:
            self.bridge.cancel_task(name)

    def _applied(self, changes: Changes) -> None:
        done = changes.ended
        if done:       # their rows change anyway: read the outputs first, announce once
            self.tasks.refresh_outputs(done, notify=False)
        self.tasks.apply_changes(changes)
        self.changed.emit(changes)

    def _ended(self, ended: RunEnded) -> None:
        self.session.hold(False)
        lock, self._run_lock = self._run_lock, None
        if lock is not None:
            lock.release()
        if self.history is not None:
            self.history.flush(timeout=5)
        self._latest.forget()
        wf, graph = self.workflow, self.graph
        if wf is None or graph is None:
            self._finish_run(ended)
            return
        # The scan of every task reads thousands of files: it runs on a worker thread
        # and its result comes back as one batch, so the window never stalls on it.
        self._scanning = True
        self._scan_generation += 1
        generation = self._scan_generation

        def work() -> None:
            self._tell(self._scanFinished, self._scan(wf, graph, generation, ended))

        threading.Thread(target=work, name="gristmill-rescan", daemon=True).start()

    def _scanned_after_run(self, scan: _Scan) -> None:
        if scan.generation != self._scan_generation:
            return
        self._scanning = False
        if scan.workflow is self.workflow:
            self._apply_scan(scan)
        self._finish_run(scan.ended)

    def _finish_run(self, ended: RunEnded) -> None:
        self._scanning = False
        self.busyChanged.emit(False)
        if ended.error is not None:
            prompts.notify(self._window, prompts.RUN_ERROR, "The run could not start",
                           str(ended.error))
            self.message.emit(f"The run could not start: {ended.error}")
            self.runRefused.emit(str(ended.error))
        elif self.run.dry_run and self.run.status is not None:
            words = self.run.plan_words()
            self.message.emit(f"{words[0].upper()}{words[1:]}: see the Log's Whole run for the order.")
        elif self.run.status is not None:
            self.message.emit(f"Run {self.run.status.value}.")
        self.runEnded.emit(ended)
        if not self.busy and (self._rescan_after or (self.watching and self._changes)):
            # what changed while it ran: a scan made now (the run's own may be older),
            # and with Watch on, a run if it finds a watched target stale
            self._rescan_after = False
            self._rescan_idle()
    def wait(self, timeout: float = 10.0) -> bool:
        return self.bridge.wait(timeout)

    # -- clean ----------------------------------------------------------------------

    def declared_outputs(self) -> list[Path]:
        """Existing declared outputs of non-phony tasks, inside the workflow's folder."""
        wf = self.workflow
        if wf is None:
            return []
        root = wf.root.resolve()
        found: list[Path] = []
        for task in wf.tasks.values():
            if task.phony:
                continue
            for out in task.outputs:
                p = (wf.root / out).resolve()
                if (p == root or root in p.parents) and (p.exists() or p.is_symlink()):
                    found.append(p)
        return list(dict.fromkeys(found))

    def clean(self) -> None:
        """Ask, then run the workflow's own phony ``clean`` task, or else remove the declared outputs.

        Both delete files, so both ask first, naming what will happen.
        """
        wf = self.workflow
        if wf is None or self.busy:
            return
        task = clean_task(wf)
        if task is not None:
            self._ask_clean_task(wf, task)
            return
        outputs = self.declared_outputs()
        if not outputs:
            self.message.emit("Nothing to clean: no declared output exists.")
            return
        shown = "\n".join(str(p.relative_to(wf.root.resolve())) for p in outputs[:30])
        if len(outputs) > 30:
            shown += f"\n… and {len(outputs) - 30} more"

        def answered(yes: object) -> None:
            if yes and self.workflow is wf and not self.busy:
                self._remove(outputs)
            elif not yes:
                self.message.emit("Nothing was removed.")

        prompts.ask(self._window, prompts.CLEAN, "Remove outputs?",
                    f"Remove {len(outputs)} declared output{'s' if len(outputs) != 1 else ''} "
                    f"of “{wf.name}”?",
                    [prompts.Choice("Remove", True, prompts.ButtonRole.DestructiveRole),
                     prompts.Choice("Cancel", False, prompts.ButtonRole.RejectRole,
                                    default=True, escape=True)],
                    answered, detail=shown,
                    informative="The workflow has no “clean” task, so Gristmill removes the files and "
                                "folders its tasks declare as outputs. Inputs are kept.")

    def _ask_clean_task(self, wf: Workflow, task: Task) -> None:
        commands = list(task.commands)
        if wf.kind == "make" and task.description.startswith(UNREAD_RECIPE):
            # Not read yet (reading runs no recipe that is not asked for): as written
            commands = task.description.split("\n")[1:]
        if commands:
            shown = "\n".join(f"$ {c}" for c in commands[:5])
            if len(commands) > 5:
                shown += f"\n… and {len(commands) - 5} more"
        else:
            needs = self.graph.deps(task.name) if self.graph is not None else ()
            shown = ("It has no command of its own; it runs what it needs: " + ", ".join(needs[:8])
                     + (" …" if len(needs) > 8 else "")) if needs else "It has no command."

        def answered(yes: object) -> None:
            if yes and self.workflow is wf and not self.busy:
                self.start_run([task.name])
            elif not yes:
                self.message.emit(f"The “{task.name}” task did not run.")

        prompts.ask(self._window, prompts.CLEAN_TASK, f"Run the “{task.name}” task?",
                    f"Clean runs the “{task.name}” task of “{wf.name}”, which deletes files:\n\n{shown}",
                    [prompts.Choice(f"Run “{task.name}”", True, prompts.ButtonRole.DestructiveRole),
                     prompts.Choice("Cancel", False, prompts.ButtonRole.RejectRole,
                                    default=True, escape=True)],
                    answered, informative=f"Its commands run in {task.cwd}.",
                    icon=prompts.Icon.Warning)

    def _remove(self, outputs: list[Path]) -> None:
        removed = 0
        for p in outputs:
            try:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed += 1
            except OSError as e:
                self.message.emit(f"Could not remove {p}: {e.strerror}")
        self.message.emit(f"Removed {removed} output{'s' if removed != 1 else ''}.")
        self.rescan()

    # -- history ----------------------------------------------------------------------

    def past_runs(self, limit: int = 200) -> list[RunRecord]:
        if self.history is None:
            return []
        wf = self.workflow
        return self.history.runs(wf.path if wf is not None else None, limit=limit)

    def latest_attempts(self, task: str) -> TaskAttempts | None:
        """The task's attempts in the newest recorded run of this workflow that started it."""
        return self._latest.find(task)

    def past_run(self, run_id: str) -> PastRun | None:
        if self.history is None:
            return None
        record = self.history.run(run_id)
        if record is None:
            return None
        return PastRun(record, tuple(self.history.attempts(run_id)))

    def task_audit(self, task: str) -> tuple[object, str] | None:
        """(the task's latest dependency audit, which run it is of in words): the current
        run's, else the newest recorded; None if it was never audited."""
        current = self.run.audits.get(task)
        if current is not None:
            return current, "in the current run"
        wf = self.workflow
        if self.history is None or wf is None:
            return None
        record = self.history.task_audit(wf.path, task)
        return (record, f"of run {record.run_id}") if record is not None else None

    def run_audits(self, run_id: str | None = None) -> tuple[list, str]:
        """(the audits of run ``run_id``, or of the current run, or of the newest audited
        run recorded; which run, in words)."""
        if run_id is not None:
            records = self.history.audits(run_id) if self.history is not None else []
            return records, f"run {run_id}"
        if self.run.audits:
            return list(self.run.audits.values()), f"the current run ({self.run.run_id})"
        wf = self.workflow
        if self.history is None or wf is None:
            return [], ""
        records = self.history.last_audits(wf.path)
        return records, (f"run {records[0].run_id}" if records else "")

    def move_history_aside(self, problems=None):
        """Move the history file that cannot be used aside and start a new one (the
        banner's offer); the path it went to, or None (told why) when it could not be."""
        from gristmill.core.record.history import History, HistoryError, move_aside
        from gristmill.core.paths import history_db
        if self.busy:
            self.message.emit("The history can be moved aside once the run has ended")
            return None
        old = self.history
        path = old.path if old is not None else history_db()
        if old is not None:
            try:
                old.close(timeout=5)
            except Exception:
                pass
        try:
            moved = move_aside(path)
            new = History(path, on_problem=problems.from_history if problems else None)
        except (OSError, HistoryError) as exc:
            self.message.emit(f"The history could not be moved aside: {exc}")
            return None
        if problems is not None:
            problems.history = new
            problems.first = None
        self.history = new
        wf = self.session.workflow
        self._latest = LatestAttempts(new, str(wf.path) if wf is not None else None)
        if wf is not None:
            self.rescan()
        return moved

    def prune_history(self) -> None:
        if self.history is None:
            return
        prefs = self.settings.preferences
        try:
            Retention(prefs.keep_days, prefs.keep_runs).prune(self.history)
        except Exception as e:
            self.message.emit(f"Could not prune the run history: {e}")


def clean_task(wf: Workflow) -> Task | None:
    """The workflow's own cleaner: a phony task named ``clean``, or, in a Makefile, a
    ``clean:`` rule not declared ``.PHONY`` that names no real file (make runs it all the same)."""
    task = wf.tasks.get(CLEAN_TASK)
    if task is None:
        return None
    if task.phony:
        return task
    if (wf.kind == "make" and task.commands and task.outputs == (CLEAN_TASK,)
            and not (wf.root / CLEAN_TASK).exists()):
        return task
    return None


def example_copies() -> Path:
    """Where the bundled examples' writable copies go."""
    return paths.data_dir() / "examples"


def copy_example(source: Path) -> Path:
    """A writable copy of a bundled example under the data dir (made once, then reused)."""
    dest = example_copies() / source.name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("build", "__pycache__", ".gristmill"))
    return dest

