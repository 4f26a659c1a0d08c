"""Run history in SQLite: what every run and attempt did, kept across runs.

``History`` is the one object the engine, the CLI and the app hold. It has two sides,
each in a module of its own:

- the recorder (``recorder.py``): a bus subscriber whose ``on_event`` only queues, and
  a background thread that writes many events per transaction;
- the reader (``queries.py``): runs, attempts, last successes and durations for the
  staleness scan, the scheduler and the views, from any thread; ``mark_interrupted``
  and ``prune``.

The schema and the records both sides use are in ``store.py``. The staleness scan
reads ``last_success`` for "the command changed since it last succeeded"; the
scheduler reads the durations.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable

from .. import paths
from .queries import HistoryReader
from .recorder import Recorder
from .store import (SCHEMA_VERSION, AttemptRecord, AuditRecord, HistoryError, RunRecord,
                    TaskRecord, create_schema, empty_database, is_locked)

__all__ = ["History", "HistoryError", "move_aside", "RunRecord", "AttemptRecord", "AuditRecord",
           "TaskRecord", "SCHEMA_VERSION"]


class History(Recorder, HistoryReader):
    """Run history in SQLite. Subscribe ``on_event`` to the engine's bus.

    Writes happen on a background thread; ``flush()`` waits for them.
    Queries may be called from any thread.
    """

    def __init__(self, path: Path | None = None,
                 on_problem: Callable[[str], None] | None = None) -> None:
        """``on_problem`` is called once (from any thread) with one line when the file
        turns out damaged, locked, read-only or full: from then on queries answer as an
        empty history does, and the run goes on. A file that cannot be opened at all
        raises ``HistoryError`` with that line (``problem_line`` makes it)."""
        path = Path(path) if path is not None else paths.history_db()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            create_schema(path)
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(problem_line(path, exc), is_locked(exc)) from None
        self._on_problem = on_problem
        self._problem_lock = threading.Lock()
        self.problem: str | None = None      # the line told, once something went wrong
        self.problem_locked = False          # ...only because another process holds it
        self._fallback: sqlite3.Connection | None = None
        HistoryReader.__init__(self, path, self.active_runs)
        Recorder.__init__(self, path)

    def _trouble(self, exc: BaseException, what: str = "") -> None:
        with self._problem_lock:
            if self.problem is not None:
                return
            self.problem = problem_line(self.path, exc, what)
            self.problem_locked = is_locked(exc)
        if self._on_problem is not None:
            self._on_problem(self.problem)

    def _conn(self) -> sqlite3.Connection:
        if self._fallback is not None:
            return self._fallback
        return HistoryReader._conn(self)

    def _fall_back(self, exc: sqlite3.Error) -> None:
        """Queries read an empty history from now on; the user is told once."""
        with self._problem_lock:
            if self._fallback is None:
                self._fallback = empty_database()
        self._trouble(exc)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the writer thread and close connections."""
        if self._closed:
            return
        Recorder.close(self, timeout)
        self.close_readers()
        if self._fallback is not None:
            self._fallback.close()


def move_aside(path: Path | None = None) -> Path:
    """Move a history that cannot be used out of the way, with its ``-wal`` and ``-shm``
    files, as ``history.sqlite3.damaged-YYYYMMDD-HHMMSS``: the next ``History()`` starts
    a new one, and nothing of the old is deleted. Returns where it went."""
    path = Path(path) if path is not None else paths.history_db()
    stem = f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    dest = path.with_name(stem)
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{stem}-{n}")
    os.replace(path, dest)
    for side in ("-wal", "-shm"):
        extra = path.with_name(path.name + side)
        if extra.exists():
            os.replace(extra, dest.with_name(dest.name + side))
    return dest


def problem_line(path: Path, exc: BaseException, what: str = "") -> str:
    """The one line that tells the user history cannot be used, and how to mend it."""
    if is_locked(exc):
        why = "it is locked by another process"
        mend = "it is used again once that process lets go"
    else:
        why = str(exc) or type(exc).__name__
        mend = f"to start a new history, move {path} aside"
    what = f" ({what})" if what else ""
    return f"history {path} cannot be used: {why}{what}; the run goes on without it ({mend})"


def _guarded(method):
    """A query that answers as an empty history does when the file fails under it."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        if self._fallback is None:
            try:
                return method(self, *args, **kwargs)
            except sqlite3.DatabaseError as exc:      # damaged, locked, read-only, full
                self._fall_back(exc)
        return method(self, *args, **kwargs)
    return guarded


# Every query and maintenance call of the reader (those added later too) is guarded.
for _name, _method in list(vars(HistoryReader).items()):
    if callable(_method) and not _name.startswith("_") and _name != "close_readers":
        setattr(History, _name, _guarded(_method))
del _name, _method
