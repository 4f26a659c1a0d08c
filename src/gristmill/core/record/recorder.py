"""The writing side of history: a bus subscriber that writes from a background thread.

``Recorder.on_event`` runs on the engine's hot loop, so it only puts the event on a
queue; one writer thread applies many events per transaction. Output lines are not
stored (the executor writes them to per-attempt log files). Dry runs are not
recorded: nothing ran.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable

from ..events import (Event, FilesHashed, Outcome, RunFinished, RunStarted, RunStatus, TaskAudited,
                      TaskFinished, TaskProcess, TaskStarted, TaskStateChanged)
from ..findings import findings_json
from ..reasons import Reason, ReasonKind
from .store import (_HOSTNAME, WRITER_BUSY_MS, _norm_path, _process_start, _reasons_json,
                    connect, db_text, gpus_json, is_locked)
from .writer import BackgroundWriter

log = logging.getLogger("gristmill.core.record.history")


_INSERT_STARTED = (
    "INSERT INTO attempts (run_id, task, attempt, started, slot, command, "
    "definition_hash, reasons, log_path, gpus, pgid, process_start) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, task, attempt) DO UPDATE SET started = excluded.started, "
    "slot = excluded.slot, command = excluded.command, "
    "definition_hash = excluded.definition_hash, reasons = excluded.reasons, "
    "log_path = excluded.log_path, gpus = excluded.gpus, pgid = excluded.pgid, "
    "process_start = excluded.process_start")

_INSERT_FINISHED = (
    "INSERT INTO attempts (run_id, task, attempt, started, ended, duration, outcome, "
    "exit_code, peak_mem, message, gpu_peak_mem, gpu_util) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, task, attempt) DO UPDATE SET ended = excluded.ended, "
    "duration = excluded.duration, outcome = excluded.outcome, "
    "exit_code = excluded.exit_code, peak_mem = excluded.peak_mem, "
    "message = excluded.message, gpu_peak_mem = excluded.gpu_peak_mem, "
    "gpu_util = excluded.gpu_util")

_INSERT_WHOLE = (          # an attempt whose start and finish are written together
    "INSERT INTO attempts (run_id, task, attempt, started, slot, command, "
    "definition_hash, reasons, log_path, gpus, pgid, process_start, ended, duration, "
    "outcome, exit_code, peak_mem, message, gpu_peak_mem, gpu_util) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, task, attempt) DO UPDATE SET started = excluded.started, "
    "slot = excluded.slot, command = excluded.command, "
    "definition_hash = excluded.definition_hash, reasons = excluded.reasons, "
    "log_path = excluded.log_path, gpus = excluded.gpus, pgid = excluded.pgid, "
    "process_start = excluded.process_start, ended = excluded.ended, "
    "duration = excluded.duration, outcome = excluded.outcome, "
    "exit_code = excluded.exit_code, peak_mem = excluded.peak_mem, "
    "message = excluded.message, gpu_peak_mem = excluded.gpu_peak_mem, "
    "gpu_util = excluded.gpu_util")

_UPSERT_SUCCESS = (
    "INSERT INTO last_success (workflow_path, task, definition_hash, time, duration, run_id) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (workflow_path, task) DO UPDATE SET "
    "definition_hash = excluded.definition_hash, time = excluded.time, "
    "duration = excluded.duration, run_id = excluded.run_id")


# Each task's latest attempt (the trust rule): a start writes it with no outcome, a
# finish with its outcome. A later attempt of the same run is never overwritten by an
# earlier one's finish (a batch writes the starts before the finishes of earlier starts).
_ON_LAST = (
    " ON CONFLICT (workflow_path, task) DO UPDATE SET run_id = excluded.run_id, "
    "attempt = excluded.attempt, outcome = excluded.outcome "
    "WHERE excluded.run_id != last_attempt.run_id OR excluded.attempt >= last_attempt.attempt")
_UPSERT_LAST = (           # (path, task, run, attempt, outcome)
    "INSERT INTO last_attempt (workflow_path, task, run_id, attempt, outcome) "
    "VALUES (?, ?, ?, ?, ?)" + _ON_LAST)
_UPSERT_LAST_JOINED = (    # (task, attempt, outcome, run): the run's path from its row
    "INSERT INTO last_attempt (workflow_path, task, run_id, attempt, outcome) "
    "SELECT workflow_path, ?, id, ?, ? FROM runs WHERE id = ?" + _ON_LAST)

_SET_PROCESS = "UPDATE attempts SET pgid = ?, process_start = ? WHERE run_id = ? AND task = ? AND attempt = ?"
# The mem an attempt was given (its declared mem, or more on an out-of-memory retry).
_SET_MEM = "UPDATE attempts SET mem = ? WHERE run_id = ? AND task = ? AND attempt = ?"




_STARTED_COLUMNS = 12      # the columns of a started row (a whole row: then the finish's)


def _started_row(event: TaskStarted, reasons: Iterable[Reason]) -> tuple:
    return (event.run_id, db_text(event.task), event.attempt, event.time, event.slot,
            db_text(event.command), event.definition_hash, _reasons_json(reasons),
            db_text(event.log_path), gpus_json(event.devices), event.pgid or None,
            event.process_start or None)


def _finished_row(event: TaskFinished) -> tuple:
    return (event.run_id, db_text(event.task), event.attempt, event.time - event.duration,
            event.time, event.duration, event.outcome.value, event.exit_code, event.peak_mem,
            db_text(event.message), event.gpu_peak_mem, event.gpu_util)


class _Rows:
    """The rows of task starts and finishes from a stretch of events, written with one
    ``executemany`` per statement: attempts that started and finished in the stretch as
    whole rows, then the other starts, then the other finishes, then successes (an
    attempt's start comes before its finish, in this stretch or an earlier one)."""

    __slots__ = ("started", "finished", "processes", "paths", "mems")

    def __init__(self, paths: dict[str, str] | None = None) -> None:
        self.paths = paths if paths is not None else {}        # run -> workflow path
        self.started: dict[tuple, tuple] = {}                  # (run, task, attempt) -> row
        self.finished: list[tuple[tuple, tuple | None]] = []   # (attempt row, last_success row)
        self.processes: list[tuple] = []                       # _SET_PROCESS rows
        self.mems: list[tuple] = []                            # _SET_MEM rows

    def start(self, row: tuple) -> None:
        self.started[row[:3]] = row

    def write(self, conn: sqlite3.Connection) -> None:
        started, finished, processes = self.started, self.finished, self.processes
        mems = self.mems
        if not started and not finished and not processes and not mems:
            return
        self.started, self.finished, self.processes, self.mems = {}, [], [], []
        ends: list[tuple[str, tuple, tuple | None]] = []
        for row, ok in finished:
            begun = started.pop(row[:3], None)
            if begun is None:
                ends.append((_INSERT_FINISHED, row, ok))
            else:   # its start's columns, then its finish's (started from the start)
                ends.append((_INSERT_WHOLE, begun + row[4:], ok))
        try:
            conn.executemany(_INSERT_WHOLE, [r for sql, r, _ in ends if sql is _INSERT_WHOLE])
            conn.executemany(_INSERT_STARTED, list(started.values()))
            conn.executemany(_INSERT_FINISHED,
                             [r for sql, r, _ in ends if sql is _INSERT_FINISHED])
            conn.executemany(_UPSERT_SUCCESS, [ok for _, _, ok in ends if ok is not None])
            known, joined = _last_rows(self.paths, started.values(), ends)
            conn.executemany(_UPSERT_LAST, known)
            conn.executemany(_UPSERT_LAST_JOINED, joined)
            conn.executemany(_SET_PROCESS, processes)
            conn.executemany(_SET_MEM, mems)
        except sqlite3.OperationalError:
            raise
        except Exception:
            # A bad row: write them one by one, so that only its event is lost, as when
            # each event was its own statements (all upserts: twice is the same as once).
            for row in started.values():
                _execute_logged(conn, _INSERT_STARTED, row)
            for sql, row, ok in ends:
                if sql is _INSERT_WHOLE:     # as two statements: a bad finish keeps the start
                    _execute_logged(conn, _INSERT_STARTED, row[:_STARTED_COLUMNS])
                    sql, row = _INSERT_FINISHED, row[:4] + row[_STARTED_COLUMNS:]
                if _execute_logged(conn, sql, row) and ok is not None:
                    _execute_logged(conn, _UPSERT_SUCCESS, ok)
            known, joined = _last_rows(self.paths, started.values(), ends)
            for row in known:
                _execute_logged(conn, _UPSERT_LAST, row)
            for row in joined:
                _execute_logged(conn, _UPSERT_LAST_JOINED, row)
            for row in processes:
                _execute_logged(conn, _SET_PROCESS, row)
            for row in mems:
                _execute_logged(conn, _SET_MEM, row)


def _last_rows(paths: dict[str, str], starts: Iterable[tuple],
               ends: list[tuple[str, tuple, tuple | None]]) -> tuple[list[tuple], list[tuple]]:
    """The last_attempt rows of a stretch, starts (no outcome) then finishes: those of
    runs whose path this writer knows, and the others (the path joined from ``runs``)."""
    known: list[tuple] = []
    joined: list[tuple] = []
    items = [(r[0], r[1], r[2], None) for r in starts]
    items += [(row[0], row[1], row[2], row[_STARTED_COLUMNS + 2] if sql is _INSERT_WHOLE
               else row[6]) for sql, row, _ in ends]
    for run_id, task, attempt, outcome in items:
        path = paths.get(run_id)
        if path is not None:
            known.append((path, task, run_id, attempt, outcome))
        else:
            joined.append((task, attempt, outcome, run_id))
    return known, joined


def _execute_logged(conn: sqlite3.Connection, sql: str, row: tuple) -> bool:
    try:
        conn.execute(sql, row)
    except sqlite3.OperationalError:
        raise
    except Exception:
        log.exception("history: could not record %r", row)
        return False
    return True


_WAITING = ReasonKind.WAITING

# Which events history looks at; anything else (output lines) costs one set lookup.
_RECORDED = frozenset({RunStarted, TaskStateChanged, TaskStarted, TaskProcess, TaskFinished,
                       RunFinished, TaskAudited, FilesHashed})


RETRY_EVERY = 0.5     # seconds between tries while another process holds the lock
HEARTBEAT = 1.0       # seconds between marks of a run under way as seen alive
CLOSE_GRACE = 3.0     # seconds a close keeps trying before it gives up what it holds


class Recorder(BackgroundWriter):
    """Writes the events of runs into the history database at ``path``.

    Writes happen on a background thread; ``flush()`` waits for them. ``active_runs()``
    says which runs started here have not had their end written yet.

    A storage fault never reaches the run: while another process holds the lock, the
    events are kept and written when it lets go (a close tries for ``CLOSE_GRACE`` more
    seconds); a damaged, read-only or full database stops the writing. Either way
    ``_trouble`` is told once, in one line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._backlog: list[Event] = []     # events kept while the database was locked
        self._broken = False                # the database cannot be written: events dropped
        super().__init__("gristmill-history")
        self._lock = threading.Lock()
        self._active: set[str] = set()     # runs started here whose end is not yet written
        # Writer-thread state: the latest plan reasons per run and task, each recorded
        # run's workflow path, and the definition hash of each attempt not yet finished.
        self._reasons: dict[str, dict[str, tuple[Reason, ...]]] = {}
        self._dry_runs: set[str] = set()
        self._run_paths: dict[str, str] = {}
        self._hashes: dict[tuple[str, str, int], str] = {}
        self._writer_conn: sqlite3.Connection | None = None
        self._next_seen = 0.0                # monotonic time of the next heartbeat
        self._start_writer()

    def active_runs(self) -> set[str]:
        with self._lock:
            return set(self._active)

    # -- the subscriber (engine thread) ---------------------------------------

    def on_event(self, event: Event) -> None:
        """Queue an event for writing. Never blocks; output lines are ignored."""
        kind = type(event)
        if kind not in _RECORDED or self._closed:
            return
        if kind is TaskStateChanged and (not event.reasons             # type: ignore[attr-defined]
                                         or event.state.finished):     # type: ignore[attr-defined]
            return       # only the reasons that put a task in the plan are kept
        if kind is RunStarted:
            with self._lock:
                self._active.add(event.run_id)
        self._enqueue(event)

    # -- the writer thread ----------------------------------------------------

    def _trouble(self, exc: BaseException, what: str) -> None:
        """Say once, in one line, that history has a problem (``History`` tells the user)."""
        log.warning("history: %s: %s", what, exc)

    def _writer_started(self) -> None:
        try:
            self._writer_conn = connect(self.path, WRITER_BUSY_MS)
        except sqlite3.Error as exc:
            self._broken = True
            self._trouble(exc, "cannot be written")

    def _writer_stopped(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()

    def _retry_in(self) -> float | None:
        if self._broken:
            return None
        if self._backlog:
            return RETRY_EVERY
        if self._hashes:        # an attempt under way: wake up to mark its run seen alive
            return max(0.0, self._next_seen - time.monotonic())
        return None

    def _write_batch(self, events: list[Event]) -> None:
        if self._broken or self._writer_conn is None:
            return
        if self._backlog:
            events, self._backlog = self._backlog + events, []
        if events:
            self._write_events(self._writer_conn, events)
            self._next_seen = time.monotonic() + HEARTBEAT    # the events said it lives
        elif not self._backlog and not self._broken:
            self._mark_seen(self._writer_conn)

    def _mark_seen(self, conn: sqlite3.Connection) -> None:
        """While an attempt runs and no event comes, its run is marked seen alive every
        ``HEARTBEAT`` seconds: a run whose process is killed ends, in history, when it
        was last seen (not when its last task started)."""
        now = time.monotonic()
        if now < self._next_seen:
            return
        runs = {key[0] for key in self._hashes}
        if not runs:
            return
        self._next_seen = now + HEARTBEAT
        wall = time.time()
        try:
            conn.executemany("UPDATE runs SET seen = ? WHERE id = ? AND status = 'running'",
                             [(wall, run_id) for run_id in runs])
        except sqlite3.Error:
            pass        # locked or failing: the next events' write finds out and tells

    def _last_batch(self) -> None:
        deadline = time.monotonic() + CLOSE_GRACE
        while self._backlog and not self._broken and time.monotonic() < deadline:
            time.sleep(RETRY_EVERY / 5)
            self._write_batch([])
        if self._backlog and not self._broken:
            lost, self._backlog = len(self._backlog), []
            self._trouble(sqlite3.OperationalError("database is locked"),
                          f"still locked by another process at the end: {lost} events of "
                          "this run were not recorded")

    def _write_events(self, conn: sqlite3.Connection, events: list[Event]) -> None:
        """Apply events in one transaction. Waiting happens at BEGIN only (another
        process may hold the write lock): events that could not begin are kept for the
        next try, so each event is applied exactly once."""
        finished: list[str] = []
        rows = _Rows(self._run_paths)
        try:
            conn.execute("BEGIN IMMEDIATE")     # waits up to WRITER_BUSY_MS
        except sqlite3.Error as exc:
            if is_locked(exc):
                self._backlog = events
            else:
                self._broken = True
                self._trouble(exc, "cannot be written")
            return
        try:
            for event in events:
                try:
                    if not self._gather(event, rows):
                        rows.write(conn)
                        self._apply(conn, event, finished)
                except sqlite3.OperationalError:
                    raise
                except Exception:
                    log.exception("history: could not record %r", event)
            rows.write(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._broken = True
            self._trouble(exc, f"cannot be written ({len(events)} events not recorded)")
            return
        with self._lock:
            self._active.difference_update(finished)

    def _gather(self, event: Event, rows: _Rows) -> bool:
        """Take in a task's state change, start or finish, adding its rows to ``rows``;
        False for any other event, or one whose rows need a join (``_apply``)."""
        run_id = event.run_id
        if run_id in self._dry_runs:
            return False
        if isinstance(event, TaskStateChanged):
            if not event.state.finished and not (event.reasons
                                                and event.reasons[-1].kind is _WAITING):
                # (what a ready task waits for is not why it is in the plan)
                self._reasons.setdefault(run_id, {})[event.task] = event.reasons
            return True
        if isinstance(event, TaskStarted):
            reasons = self._reasons.get(run_id, {}).get(event.task, ())
            self._hashes[(run_id, event.task, event.attempt)] = event.definition_hash
            rows.start(_started_row(event, reasons))
            if event.resources.mem:
                rows.mems.append((event.resources.mem, run_id, db_text(event.task),
                                  event.attempt))
            return True
        if isinstance(event, TaskProcess):
            rows.processes.append((event.pgid, event.process_start or None, run_id,
                                   event.task, event.attempt))
            return True
        if not isinstance(event, TaskFinished):
            return False
        key = (run_id, event.task, event.attempt)
        success = None
        if event.outcome is Outcome.SUCCEEDED:
            # The last_success row from what this writer saw of the run and of the
            # attempt; only when it did not see them does the database join for them.
            path = self._run_paths.get(run_id)
            definition_hash = self._hashes.get(key)
            if path is None or definition_hash is None:
                return False
            success = (path, db_text(event.task), definition_hash, event.time, event.duration,
                       run_id)
        self._hashes.pop(key, None)
        rows.finished.append((_finished_row(event), success))
        return True

    def _files_hashed(self, conn: sqlite3.Connection, event: FilesHashed) -> None:
        path = self._run_paths.get(event.run_id)
        if path is None:
            row = conn.execute("SELECT workflow_path FROM runs WHERE id = ?",
                               (event.run_id,)).fetchone()
            if row is None:
                return
            path = row[0]
        conn.executemany(
            "INSERT OR REPLACE INTO file_hashes (workflow_path, path, size, mtime_ns, hash) "
            "VALUES (?, ?, ?, ?, ?)",
            [(path, db_text(p), size, mtime, h) for p, size, mtime, h in event.files])
        if event.task:
            conn.executemany(
                "INSERT OR REPLACE INTO attempt_files (run_id, task, attempt, path, hash) "
                "VALUES (?, ?, ?, ?, ?)",
                [(event.run_id, db_text(event.task), event.attempt, db_text(p), h)
                 for p, _, _, h in event.files])

    def _apply(self, conn: sqlite3.Connection, event: Event, finished: list[str]) -> None:
        run_id = event.run_id
        if run_id in self._dry_runs:
            if isinstance(event, RunFinished):
                self._dry_runs.discard(run_id)
                finished.append(run_id)
            return
        if isinstance(event, TaskFinished):     # one whose success needs the join
            self._hashes.pop((run_id, event.task, event.attempt), None)
            conn.execute(_INSERT_FINISHED, _finished_row(event))
            conn.execute(_UPSERT_LAST_JOINED, (event.task, event.attempt, event.outcome.value,
                                               run_id))
            if event.outcome is Outcome.SUCCEEDED:
                conn.execute(
                    "INSERT INTO last_success (workflow_path, task, definition_hash, time, "
                    "duration, run_id) SELECT r.workflow_path, a.task, a.definition_hash, ?, ?, "
                    "r.id FROM runs r JOIN attempts a ON a.run_id = r.id "
                    "WHERE r.id = ? AND a.task = ? AND a.attempt = ? "
                    "ON CONFLICT (workflow_path, task) DO UPDATE SET "
                    "definition_hash = excluded.definition_hash, time = excluded.time, "
                    "duration = excluded.duration, run_id = excluded.run_id",
                    (event.time, event.duration, run_id, db_text(event.task), event.attempt))
        elif isinstance(event, FilesHashed):
            self._files_hashed(conn, event)
        elif isinstance(event, TaskAudited):
            conn.execute(
                "INSERT OR REPLACE INTO audits (run_id, task, attempt, traced, findings) "
                "VALUES (?, ?, ?, ?, ?)", (run_id, db_text(event.task), event.attempt,
                                           int(event.traced), findings_json(event.findings)))
        elif isinstance(event, RunStarted):
            if event.dry_run:
                self._dry_runs.add(run_id)
                return
            self._reasons[run_id] = {}
            self._run_paths[run_id] = _norm_path(event.workflow_path)
            conn.execute(
                "INSERT OR REPLACE INTO runs (id, workflow_path, workflow_name, targets, "
                "task_count, started, status, pid, hostname, process_start, log_path, "
                "started_by, changed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, _norm_path(event.workflow_path), db_text(event.workflow),
                 db_text(json.dumps(list(event.targets), ensure_ascii=False)),
                 len(event.tasks), event.time, RunStatus.RUNNING.value, os.getpid(),
                 _HOSTNAME, _process_start(os.getpid()), db_text(event.log_path),
                 event.started_by,
                 db_text(json.dumps(list(event.changed), ensure_ascii=False))))
        elif isinstance(event, RunFinished):
            self._reasons.pop(run_id, None)
            self._run_paths.pop(run_id, None)
            for key in [k for k in self._hashes if k[0] == run_id]:
                del self._hashes[key]
            conn.execute(
                "UPDATE runs SET status = ?, ended = ?, counts = ? WHERE id = ?",
                (event.status.value, event.time, json.dumps(dict(event.counts)), run_id))
            finished.append(run_id)
