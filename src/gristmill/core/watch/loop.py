"""``Watch``: run the targets once, then again whenever a change makes something stale.

One thread (the caller's, in ``run``) waits for batches of changes; each pass runs an
ordinary ``Engine`` on a thread of its own, so that changes are seen while it runs:

- a change to a file the workflow was read from reloads it first; a broken edit is
  told once (``path:line:col: …``) and watching goes on, picking up when it is fixed;
- the pass decides with the normal staleness scan, so only what the change makes
  stale runs, with the scan's reasons ("input data/a.csv is newer than …"); a batch
  that makes nothing stale starts no run;
- a change to the inputs of a task that is running cancels that attempt (its partial
  outputs removed, as for any cancel) and queues it again in the same run
  (``Engine.restart_task``); the other tasks keep running. A task that finished after
  its input changed but before the batch was told runs again in the next pass;
- a failing task does not stop watching; the next change that touches it tries again;
- every run is an ordinary run in history, with ``started_by="watch"`` and the changed
  files.

``stop`` (Ctrl-C, the app's Watch turned off) cancels what runs, like a cancel of a run.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from ..errors import GristmillError, UsageError, WorkflowError
from ..events import EventBus, Outcome, RunStarted, TaskFinished, TaskStarted
from ..load.cache import DiskLog
from ..load.loader import load_workflow
from ..load.locate import workflow_file
from ..run.engine import Engine, RunOptions, RunResult
from ..workflow import Workflow
from .scope import INPUT, RELOAD, RESCOPE, WatchScope
from .watcher import DEBOUNCE, Change, FileWatcher

STARTED_BY = "watch"
SHOWN = 3                     # changed files named in one line before "and N more"
FULL_SCAN_EVERY = 600.0       # seconds: a pass after this long stats every file again


def describe(changes: Sequence[str]) -> str:
    shown = ", ".join(changes[:SHOWN])
    if len(changes) > SHOWN:
        shown += f" and {len(changes) - SHOWN} more"
    return shown


class Watch:
    """Keep ``targets`` of the workflow at ``path`` up to date until ``stop``.

    ``say``: one line for the user (the CLI prints it); ``tell``: an error of the
    workflow (``path:line:col: …``), told once until it changes (default: ``say``).
    ``runs``: the result of every run started, in order (tests read it)."""

    def __init__(self, path: str | os.PathLike[str], targets: Sequence[str] = (),
                 variables: dict[str, str] | None = None, options: RunOptions = RunOptions(),
                 bus: EventBus | None = None, history: object | None = None,
                 debounce: float = DEBOUNCE, say: Callable[[str], None] = lambda line: None,
                 engine_factory: Callable[..., Engine] = Engine,
                 tell: Callable[[GristmillError], None] | None = None):
        self.path = os.path.abspath(path)
        self.targets = list(targets)
        self.variables = variables
        self.options = options
        self.bus = bus or EventBus()
        self.history = history
        self.debounce = debounce
        self.say = say
        self.tell = tell or (lambda exc: say(str(exc)))     # an error, told once
        self._engine_factory = engine_factory
        self.workflow: Workflow | None = None
        self.error: GristmillError | None = None
        self.scope: WatchScope | None = None
        self._loaded: tuple | None = None     # what the scope is made of (WatchScope.of)
        self._stamps: tuple | None = None     # (workflow, FileStamps, when all were read)
        self.runs: list[RunResult] = []
        self.passes = 0                      # batches handled (tests wait on it)
        self._told: str | None = None        # the error last told, said once
        self._told_folders = -1
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self._watcher: FileWatcher | None = None
        self._running: set[str] = set()      # tasks with an attempt running now
        self._started: dict[str, float] = {} # task -> time its latest attempt started
        self._ok: set[str] = set()           # tasks that succeeded in the latest run
        self.bus.subscribe(self._on_event)
        self.idle = threading.Event()        # set while waiting for a change (tests)

    # -- control ------------------------------------------------------------------

    def stop(self, abort: bool = False) -> None:
        """Stop watching; cancel the run going on (``abort``: without the grace)."""
        self._stop.set()
        with self._lock:
            engine, watcher = self._engine, self._watcher
        if engine is not None:
            engine.abort() if abort else engine.cancel()
        if watcher is not None:
            watcher.stop()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    # -- the loop -------------------------------------------------------------------

    def run(self) -> int:
        """Watch until ``stop``: 0, or 1 if the last run failed; 2 at once when a target
        is unknown at the start (a broken workflow file is watched until it is fixed)."""
        self._load()
        if isinstance(self.error, UsageError):
            return 2
        watcher = FileWatcher(self._classify, self.debounce)
        with self._lock:
            self._watcher = watcher
        if self._stop.is_set():
            return 0
        try:
            watcher.set_folders(self.scope.folders if self.scope else ())
            if watcher.error is not None:
                self.say(f"cannot watch: {watcher.error}")
            pending: list[Change] = []
            first, during = True, False
            while not self._stop.is_set():
                if first or pending:
                    pending, during = self._pass(pending, first, during), True
                    first = False
                    continue
                during = False
                self._tell_watching()
                self.idle.set()
                batch = watcher.next_batch()
                self.idle.clear()
                if batch:
                    pending = self._rescope(batch)
        finally:
            watcher.stop()
        last = self.runs[-1] if self.runs else None
        return last.exit_code if last is not None else 0

    def _pass(self, changes: list[Change], first: bool, during: bool) -> list[Change]:
        """Reload if needed, decide, run what is stale (watching meanwhile). ``during``:
        the changes came while the last run went on. Returns the changes that came
        during this pass's run."""
        self.passes += 1
        shown = [self._shown(c.path) for c in changes]
        if changes:
            self.say(f"changed: {describe(shown)}")
        if any(c.what == RELOAD for c in changes) and not first:
            self._load()
            self._watcher.set_folders(self.scope.folders)   # type: ignore[union-attr]
        wf = self.workflow
        if wf is None or self.error is not None:
            return []
        rerun = self._rerun(changes) if during else {}
        options = replace(self.options, started_by=STARTED_BY, changed=tuple(shown),
                          rerun=tuple(rerun.items()))
        known = self._known_stamps(wf, changes)
        engine = self._engine_factory(wf, bus=self.bus, history=self.history, options=options,
                                      stamps=(lambda: known) if known else None)
        try:
            decided = engine.decide(self.targets)
        except GristmillError as exc:      # a target gone after an edit, a task too big
            self._tell(exc)
            return []
        full_at = time.monotonic() if known is None else self._stamps[2]   # type: ignore[index]
        self._stamps = (wf, decided[2].stamps, full_at)
        stale = [(n, d) for n, d in decided[1].items() if d.stale]
        if not first and not stale:
            if changes:
                self.say("nothing to run: every task is up to date")
            return []
        if changes and stale:
            words = "; ".join(f"{n} ({d.reasons[0].message})" if d.reasons else n
                              for n, d in stale[:SHOWN])
            more = f"; and {len(stale) - SHOWN} more" if len(stale) > SHOWN else ""
            self.say(f"{len(stale)} to run: {words}{more}")
        return self._run_engine(engine, decided)

    def _run_engine(self, engine: Engine, decided) -> list[Change]:
        box: dict = {}

        def work() -> None:
            try:
                box["result"] = engine.run(self.targets, decided)
            except BaseException as exc:    # told below, on the watch's thread
                box["error"] = exc

        with self._lock:
            if self._stop.is_set():
                return []
            self._engine = engine
        thread = threading.Thread(target=work, name="gristmill-watch-run", daemon=True)
        thread.start()
        pending: list[Change] = []
        try:
            while thread.is_alive():
                batch = self._watcher.next_batch(timeout=0.1)   # type: ignore[union-attr]
                batch = self._rescope(batch) if batch else batch
                if batch:
                    self._during_run(engine, batch)
                    pending += batch
        finally:
            thread.join()
            with self._lock:
                self._engine = None
        if "error" in box:
            exc = box["error"]
            if isinstance(exc, GristmillError):
                self._tell(exc)
            else:
                self.say(f"the run could not go on: {exc}")
        else:
            self.runs.append(box["result"])
        return pending

    def _known_stamps(self, wf: Workflow, changes: list[Change]) -> dict | None:
        """The mtimes the last pass's scan read, less what may have changed since: the
        files of this batch and every output (a run writes them). A pass after a save
        then stats a few files, not the 20,000 the targets read; after a reload, or
        ``FULL_SCAN_EVERY`` seconds after the last full scan, all."""
        if self._stamps is None or self._stamps[0] is not wf:
            return None
        if time.monotonic() - self._stamps[2] > FULL_SCAN_EVERY:
            return None          # now and then, all of them: an event the watcher missed
        known = self._stamps[1].known()
        root = str(wf.root)
        for c in changes:
            rel = os.path.relpath(c.path, root).replace(os.sep, "/")
            known.pop(rel, None)
            known.pop(c.path, None)
        for task in wf.tasks.values():
            for out in task.outputs:
                known.pop(out, None)
        return known

    def _rescope(self, batch: list[Change]) -> list[Change]:
        """Watch the folders that appeared (``RESCOPE``); the rest of the batch."""
        if any(c.what == RESCOPE for c in batch) and self._loaded is not None:
            self.scope = WatchScope.of(*self._loaded)
            self._watcher.set_folders(self.scope.folders)     # type: ignore[union-attr]
        return [c for c in batch if c.what != RESCOPE]

    def _during_run(self, engine: Engine, batch: list[Change]) -> None:
        """A change to the inputs of a running task restarts that task alone."""
        for c in batch:
            if c.what != INPUT or self.scope is None:
                continue
            for name in self.scope.readers(c.path):
                if name in self._running:
                    when = time.strftime("%H:%M:%S", time.localtime(c.time))
                    engine.restart_task(name, f"input {self._shown(c.path)} changed at "
                                              f"{when} while it ran")

    def _rerun(self, changes: list[Change]) -> dict[str, str]:
        """Tasks that succeeded in the last run although an input changed while they ran
        (the change came between their start and their end): their outputs are newer
        than the input, so the scan alone would call them up to date."""
        out: dict[str, str] = {}
        if self.scope is None:
            return out
        for c in changes:
            if c.what != INPUT:
                continue
            for name in self.scope.readers(c.path):
                started = self._started.get(name)
                if name in self._ok and started is not None and started < c.time:
                    when = time.strftime("%H:%M:%S", time.localtime(c.time))
                    out.setdefault(name, f"input {self._shown(c.path)} changed at {when}, "
                                         "while its last attempt ran")
        return out

    # -- loading ----------------------------------------------------------------------

    def _load(self) -> None:
        log = DiskLog()
        try:
            file = str(workflow_file(self.path))
        except GristmillError as exc:
            file = self.path
            self._failed(exc, file, log)
            return
        try:
            wf = load_workflow(file, self.variables, probe=log, goals=self.targets)
            if self.targets:
                wf.resolve_targets(self.targets)
        except GristmillError as exc:
            self._failed(exc, file, log)
            return
        except OSError as exc:
            self._failed(WorkflowError(exc.strerror or str(exc), path=file), file, log)
            return
        recovered = self.error is not None
        self.workflow, self.error, self._told = wf, None, None
        for w in wf.warnings:
            self.say(str(w))
        names = wf.resolve_targets(self.targets)
        self._loaded = (wf, file, list(log.files), list(log.listings), _asked(log), names)
        self.scope = WatchScope.of(*self._loaded)
        if recovered:
            self.say(f"{self._shown(file)} reads well again")

    def _failed(self, exc: GristmillError, file: str, log: DiskLog) -> None:
        self.error = exc
        self._tell(exc)
        located = getattr(exc, "location", None)
        read = list(log.files)
        if located is not None and getattr(located, "path", None):
            read.append(str(located.path))
        fresh = WatchScope.of(None, file, read, log.listings, _asked(log))
        old = self.scope
        if old is not None:      # keep watching the inputs too: the fix may come later
            fresh = replace(fresh, folders=fresh.folders | old.folders)
        self.scope = fresh

    def _tell(self, exc: GristmillError) -> None:
        text = str(exc)
        if text != self._told:
            self._told = text
            self.tell(exc)

    # -- helpers ----------------------------------------------------------------------

    def _classify(self, kind: int, path: str) -> str | None:
        scope = self.scope
        return scope.classify(kind, path) if scope is not None else None

    def _shown(self, path: str) -> str:
        scope = self.scope
        return scope.shown(path) if scope is not None else path

    def _tell_watching(self) -> None:
        scope = self.scope
        n = len(scope.folders) if scope else 0
        if n != self._told_folders:
            self._told_folders = n
            self.say(f"watching {n} folder{'s' if n != 1 else ''} for changes (Ctrl-C to stop)")
        else:
            self.say("waiting for changes")

    def _on_event(self, ev) -> None:
        kind = type(ev)
        if kind is TaskStarted:
            self._running.add(ev.task)
            self._started[ev.task] = ev.time
            self._ok.discard(ev.task)
        elif kind is TaskFinished:
            self._running.discard(ev.task)
            if ev.outcome is Outcome.SUCCEEDED:
                self._ok.add(ev.task)
        elif kind is RunStarted:
            self._running.clear()
            self._ok.clear()


def _asked(log: DiskLog) -> list[str]:
    return [path for (_how, path) in log.answers]


__all__ = ["STARTED_BY", "Watch", "describe"]
