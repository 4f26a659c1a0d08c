"""File-system events, debounced: ``FileWatcher``.

Events come from watchfiles (its ``RustNotify``: the Rust ``notify`` crate, which uses
inotify on Linux, FSEvents on macOS and ReadDirectoryChangesW on Windows). Every
folder of the scope is one non-recursive watch of a single notify watcher: one
inotify instance however many folders (a watcher per folder, as watchdog's observers
make them, runs into Linux's 128 instances a user may have). A background thread waits
in notify's loop, classifies each changed path with ``classify`` (one call per path;
what does not count is dropped there and never delays a batch) and keeps what counts.

``set_folders`` with other folders replaces the notify watcher: what the old one had
not handed over yet is dropped, so callers scan after it returns (``wait``), and the
scan sees what changed meanwhile.

``next_batch`` waits for the first change that counts, then for a quiet period of
``debounce`` seconds with no new one (an editor's atomic save, a ``git checkout`` of 500
files, 200 writes in a second: one batch). Nothing polls the disk; the thread wakes
every ``STEP_MS`` to look at notify's queue in memory.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

DEBOUNCE = 0.15          # seconds of quiet that end a batch
STEP_MS = 50             # notify's queue is looked at this often (in memory)


@dataclass(frozen=True, slots=True)
class Change:
    path: str            # absolute
    kind: int            # scope.ADDED, MODIFIED, DELETED
    what: str            # scope.RELOAD or scope.INPUT
    time: float          # time.time() of the first change of this path in the batch


class WatchError(RuntimeError):
    """The file watcher could not start (no such folder, too many watches)."""


class FileWatcher:
    def __init__(self, classify: Callable[[int, str], str | None],
                 debounce: float = DEBOUNCE, step_ms: int = STEP_MS):
        self.classify = classify
        self.debounce = debounce
        self.step_ms = max(5, min(step_ms, int(debounce * 1000 / 2) or 5))
        self._cond = threading.Condition()
        self._pending: dict[str, Change] = {}
        self._last = 0.0                         # monotonic time of the newest change kept
        self._folders: frozenset[str] = frozenset()
        self._stopped = False
        self._restart = threading.Event()        # the folders changed: a new notify watcher
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()

    # -- control (any thread) ---------------------------------------------------------

    def set_folders(self, folders: Iterable[str], wait: bool = True) -> None:
        """Watch these folders (the rest no more). Returns once the new watches are in
        (``wait``), or at once (a GUI thread: the first call imports watchfiles)."""
        new = frozenset(f for f in folders if os.path.isdir(f))
        if self._thread is not None and not self._thread.is_alive():
            return                       # it could not start (self.error says why)
        with self._cond:
            if new == self._folders and self._thread is not None:
                return
            self._folders = new
        if self._thread is None:
            self._started.clear()
            self._thread = threading.Thread(target=self._run, name="gristmill-watch",
                                            daemon=True)
            self._thread.start()
        else:
            self._started.clear()
            self._restart.set()
        if wait:
            self._started.wait(10)

    @property
    def folders(self) -> frozenset[str]:
        return self._folders

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._restart.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(5)

    def next_batch(self, timeout: float | None = None) -> list[Change] | None:
        """The next batch of changes that count, once quiet for ``debounce`` seconds;
        None when stopped, or after ``timeout`` seconds with none."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._pending and not self._stopped:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            if self._stopped:
                return None
            # notify hands a change over only after one step with no newer one: that much
            # of the quiet period has gone by when it arrives.
            quiet = max(0.0, self.debounce - self.step_ms / 1000)
            while not self._stopped:
                left = self._last + quiet - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._stopped:
                return None
            batch = sorted(self._pending.values(), key=lambda c: (c.time, c.path))
            self._pending = {}
            return batch

    def pending(self) -> bool:
        with self._cond:
            return bool(self._pending)

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            from watchfiles._rust_notify import RustNotify
        except ImportError as exc:       # a broken install: nothing is watched, said once
            self.error = WatchError(f"file watching is unavailable: {exc}")
            self._started.set()
            return
        while True:
            with self._cond:
                if self._stopped:
                    break
                folders = sorted(self._folders)
            self._restart.clear()
            notify = None
            try:
                if folders:
                    notify = RustNotify(folders, False, False, 300, False, True)
            except Exception as exc:      # a folder gone meanwhile, a limit reached
                self.error = exc
                notify = None
            self._started.set()
            try:
                if notify is None:
                    self._restart.wait()
                    continue
                while not self._restart.is_set():
                    got = notify.watch(10_000_000, self.step_ms, 0, self._restart)
                    if isinstance(got, str):        # "stop", "timeout", "signal"
                        continue
                    self._take(got)
            finally:
                if notify is not None:
                    notify.close()
        self._started.set()

    def _take(self, raw: set[tuple[int, str]]) -> None:
        now = time.time()
        kept: list[Change] = []
        classify = self.classify
        for kind, path in raw:
            try:
                what = classify(kind, path)
            except Exception:            # a scope being replaced: count it, the scan decides
                what = "input"
            if what is not None:
                kept.append(Change(path, kind, what, now))
        if not kept:
            return
        with self._cond:
            for c in kept:
                old = self._pending.get(c.path)
                if old is None:
                    self._pending[c.path] = c
                elif c.what == "reload" and old.what != "reload":
                    self._pending[c.path] = Change(c.path, c.kind, c.what, old.time)
            self._last = time.monotonic()
            self._cond.notify_all()
