"""The files the open workflow reads, watched: batches of changes on the GUI thread.

``DiskWatch`` wraps the core's ``FileWatcher`` (watchfiles; debounced) over a
``WatchScope``: a thread waits for each batch and hands it to the GUI thread as the
``changed`` signal (a queued connection). The workbench rescans on each batch, with or
without Watch: a task the last run finished but that a change made stale shows as
stale in every view.
"""

from __future__ import annotations

import gc
import threading
from typing import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from gristmill.core.watch.scope import WatchScope
from gristmill.core.watch.watcher import DEBOUNCE, FileWatcher


class DiskWatch(QObject):
    changed = Signal(object)         # list[Change], on the GUI thread

    def __init__(self, parent: QObject | None = None, debounce: float = DEBOUNCE):
        super().__init__(parent)
        self.debounce = debounce
        self.scope: WatchScope | None = None
        self._watcher: FileWatcher | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()       # watch() from the GUI thread and a maker's
        self._generation = 0                 # the latest watch or watch_later
        self._made = threading.Event()       # no scope is being made
        self._made.set()
        self._maker: threading.Thread | None = None     # the maker not started yet

    def watch_later(self, make: Callable[[], WatchScope], then: Callable[[], None]) -> None:
        """``watch(make())`` with ``make`` run on a thread of its own (a scope of 100,000
        tasks walks every input and output: a second the window need not wait for);
        ``then()`` is called on that thread once its watches are in. A later ``watch``
        or ``watch_later`` wins over a scope still being made."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._made.clear()

        def work() -> None:
            # What it makes lives as long as the workflow: the cyclic collector stays off
            # meanwhile (a full collection over a half-made scope of 100,000 tasks stalled
            # the window 0.15-0.25 s), and it is kept out of the collector's walks after.
            enabled = gc.isenabled()
            gc.disable()
            try:
                scope = make()
            except Exception:            # the folders went away meanwhile: keep the last
                scope = None
            finally:
                gc.freeze()
                if enabled:
                    gc.enable()
            with self._lock:
                current = generation == self._generation
                if current and scope is not None:
                    self._watch(scope, wait=True)
                if current:
                    self._made.set()
            if current and scope is not None:
                then()

        # Started once the event loop has served what is queued (the window's first paint),
        # or by ``wait_watching``, whichever comes first.
        self._maker = threading.Thread(target=work, name="gristmill-scope", daemon=True)
        QTimer.singleShot(0, self, self._start_maker)

    def _start_maker(self) -> None:
        with self._lock:
            maker, self._maker = self._maker, None
        if maker is not None:
            maker.start()

    def watch(self, scope: WatchScope | None, wait: bool = True) -> None:
        """Watch the folders of ``scope`` (None: nothing). With ``wait``, the new watches
        are in when this returns: a scan made after it misses no change (the watcher
        that is replaced drops what it had not handed over yet)."""
        with self._lock:
            self._generation += 1
            self._made.set()
            self._watch(scope, wait)

    def _watch(self, scope: WatchScope | None, wait: bool) -> None:
        self.scope = scope
        if scope is None:
            if self._watcher is not None:
                self._watcher.set_folders((), wait=False)
            return
        if self._watcher is None:
            self._watcher = FileWatcher(self._classify, self.debounce)
            self._thread = threading.Thread(target=self._wait, args=(self._watcher,),
                                            name="gristmill-diskwatch", daemon=True)
            self._thread.start()
        self._watcher.set_folders(scope.folders, wait=wait)

    def wait_watching(self, timeout: float = 10.0) -> bool:
        """Until the watches of the last ``watch`` or ``watch_later`` are in (tests)."""
        self._start_maker()
        if not self._made.wait(timeout):
            return False
        w = self._watcher
        return w is None or w._started.wait(timeout)

    @property
    def folders(self) -> frozenset[str]:
        return self._watcher.folders if self._watcher is not None else frozenset()

    def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _classify(self, kind: int, path: str) -> str | None:
        scope = self.scope
        return scope.classify(kind, path) if scope is not None else None

    def _wait(self, watcher: FileWatcher) -> None:
        while True:
            batch = watcher.next_batch()
            if batch is None:
                return
            try:
                self.changed.emit(batch)
            except RuntimeError:         # the window is gone
                return
