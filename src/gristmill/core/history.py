"""Run history in SQLite: a bus subscriber that writes from a background thread.

``History.on_event`` runs on the engine's hot loop, so it only puts the event
on a queue; one writer thread applies many events per transaction. Queries
open one connection per calling thread (the database is in WAL mode, so the
GUI reads while the writer writes, and a CLI run and the app can share it).

What is kept:

- ``runs``: one row per run, written ``running`` at ``RunStarted`` with this
  process's pid and host, finished at ``RunFinished``. ``mark_interrupted``
  finds the rows whose process died.
- ``attempts``: one row per task attempt, with the reasons that put the task
  in the plan, its command, slot, outcome, exit code, duration and peak memory.
- ``last_success``: per (workflow path, task) the definition hash, time and
  duration of the last success. The staleness scan reads it for "the command
  changed since it last succeeded"; the scheduler reads the durations.

Output lines are not stored (the executor writes them to per-attempt log
files). Dry runs are not recorded: nothing ran.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping, NamedTuple

from . import paths
from .events import (Event, Outcome, RunFinished, RunStarted, RunStatus, TaskFinished,
                     TaskStarted, TaskStateChanged)
from .reasons import Reason, ReasonKind
from .writer import BackgroundWriter

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = (   # one statement each; schema SCHEMA_VERSION
    """\
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    workflow_path TEXT NOT NULL,                 -- absolute path of the workflow file
    workflow_name TEXT NOT NULL DEFAULT '',
    targets       TEXT NOT NULL DEFAULT '[]',    -- JSON list of target words
    task_count    INTEGER NOT NULL DEFAULT 0,    -- tasks in the plan
    started       REAL NOT NULL,                 -- unix time
    ended         REAL,                          -- NULL while running
    status        TEXT NOT NULL,                 -- events.RunStatus value
    counts        TEXT NOT NULL DEFAULT '{}',    -- JSON: TaskState value -> count
    pid           INTEGER,
    hostname      TEXT NOT NULL DEFAULT '',
    process_start TEXT,                          -- tells a reused pid from ours
    log_path      TEXT NOT NULL DEFAULT ''       -- the JSON-lines run log
)
""",
    """\
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (workflow_path, started)
""",
    """\
CREATE INDEX IF NOT EXISTS runs_by_started ON runs (started)
""",
    """\
CREATE INDEX IF NOT EXISTS runs_running ON runs (status) WHERE status = 'running'
""",
    """\
CREATE TABLE IF NOT EXISTS attempts (
    run_id          TEXT NOT NULL,
    task            TEXT NOT NULL,
    attempt         INTEGER NOT NULL,            -- 1 for the first attempt
    started         REAL,
    ended           REAL,
    duration        REAL,                        -- seconds, as the executor measured it
    outcome         TEXT,                        -- events.Outcome value, NULL: never reported
    exit_code       INTEGER,
    peak_mem        INTEGER,                     -- bytes
    slot            INTEGER,
    command         TEXT NOT NULL DEFAULT '',
    definition_hash TEXT NOT NULL DEFAULT '',
    reasons         TEXT NOT NULL DEFAULT '[]',  -- JSON list of {kind, message}
    log_path        TEXT NOT NULL DEFAULT '',
    message         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, task, attempt)
)
""",
    """\
CREATE TABLE IF NOT EXISTS last_success (
    workflow_path   TEXT NOT NULL,
    task            TEXT NOT NULL,
    definition_hash TEXT NOT NULL,               -- '' when the engine did not say
    time            REAL NOT NULL,               -- when it finished
    duration        REAL NOT NULL,
    run_id          TEXT NOT NULL,
    PRIMARY KEY (workflow_path, task)
) WITHOUT ROWID
""",
)

_LOCKED_RETRIES = 5      # whole-batch retries while another process holds the write lock
_BUSY_TIMEOUT_MS = 5000
_CHUNK = 500             # ids per IN (...) list


class HistoryError(RuntimeError):
    """The history database cannot be used (e.g. written by a newer Gristmill)."""


# ---------------------------------------------------------------------------
# Records returned by queries


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    workflow_path: str
    workflow_name: str
    targets: tuple[str, ...]
    started: float                     # unix time
    ended: float | None                # None while running
    status: RunStatus
    counts: Mapping[str, int]          # TaskState value -> count, from RunFinished
    task_count: int                    # tasks in the plan
    pid: int | None
    hostname: str
    log_path: str

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else max(0.0, self.ended - self.started)

    @property
    def counts_text(self) -> str:
        """"12 done, 1 failed" in TaskState order; "" before the run finished."""
        return ", ".join(f"{n} {state}" for state, n in self.counts.items() if n)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    run_id: str
    task: str
    attempt: int
    started: float | None
    ended: float | None
    duration: float | None
    outcome: Outcome | None            # None: still running, or the run was interrupted
    exit_code: int | None
    peak_mem: int | None
    slot: int | None
    command: str
    definition_hash: str
    reasons: tuple[Reason, ...]        # why the task was in the plan (or retried)
    log_path: str
    message: str

    @property
    def reasons_text(self) -> str:
        return "; ".join(r.message for r in self.reasons)


class TaskRecord(NamedTuple):
    """The last success of one task of one workflow (a tuple: a no-op run of 20,000
    tasks reads 20,000 of them, and a tuple is made in a third of the time)."""

    task: str
    definition_hash: str               # '' when unknown
    time: float                        # unix time it finished
    duration: float                    # seconds
    run_id: str


# ---------------------------------------------------------------------------
# Processes: is the one that wrote a 'running' row still alive?


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


_BOOT_ID = (_read_text("/proc/sys/kernel/random/boot_id") or "").strip()


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in ticks since boot) from /proc on Linux, else None."""
    text = _read_text(f"/proc/{pid}/stat")
    if not text or ")" not in text:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _process_start(pid: int) -> str | None:
    """A token that differs between two processes that had the same pid; None if unknown."""
    stat = _proc_stat(pid)
    return f"{_BOOT_ID}:{stat[1]}" if stat and _BOOT_ID else None


def _pid_exists(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":
        import ctypes
        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)   # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)   # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5    # access denied: it exists
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259                # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _process_alive(pid: int, start: str | None) -> bool:
    if not _pid_exists(pid):
        return False
    stat = _proc_stat(pid)
    if stat is not None and stat[0] in ("Z", "X"):
        return False                                # exited, not yet reaped
    if start:
        now = _process_start(pid)
        if now is not None and now != start:
            return False                            # the pid was reused
    return True


_HOSTNAME = socket.gethostname()


# ---------------------------------------------------------------------------
# Small helpers


def _norm_path(path: str | os.PathLike[str] | None) -> str:
    """Workflow paths are stored absolute, so a Path and a str of it match."""
    if path is None:
        return ""
    text = os.fspath(path)
    return os.path.abspath(text) if text else ""


def _reasons_json(reasons: Iterable[Reason]) -> str:
    return json.dumps([{"kind": r.kind.value, "message": r.message} for r in reasons],
                      ensure_ascii=False)


def _reasons_from_json(text: str | None) -> tuple[Reason, ...]:
    out: list[Reason] = []
    for item in json.loads(text or "[]"):
        try:
            out.append(Reason(ReasonKind(item["kind"]), item["message"]))
        except (ValueError, KeyError, TypeError):
            log.debug("history: unreadable reason %r", item)
    return tuple(out)


def _chunks(items: list[str], size: int = _CHUNK) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


_RUN_COLUMNS = ("id, workflow_path, workflow_name, targets, started, ended, status, counts, "
                "task_count, pid, hostname, log_path")


def _run_record(row: tuple) -> RunRecord:
    (id_, wf_path, wf_name, targets, started, ended, status, counts,
     task_count, pid, hostname, log_path) = row
    return RunRecord(
        id=id_, workflow_path=wf_path, workflow_name=wf_name,
        targets=tuple(json.loads(targets or "[]")), started=started, ended=ended,
        status=RunStatus(status), counts=MappingProxyType(json.loads(counts or "{}")),
        task_count=task_count, pid=pid, hostname=hostname, log_path=log_path)


_ATTEMPT_COLUMNS = ("run_id, task, attempt, started, ended, duration, outcome, exit_code, "
                    "peak_mem, slot, command, definition_hash, reasons, log_path, message")


def _attempt_record(row: tuple) -> AttemptRecord:
    (run_id, task, attempt, started, ended, duration, outcome, exit_code,
     peak_mem, slot, command, definition_hash, reasons, log_path, message) = row
    return AttemptRecord(
        run_id=run_id, task=task, attempt=attempt, started=started, ended=ended,
        duration=duration, outcome=Outcome(outcome) if outcome is not None else None,
        exit_code=exit_code, peak_mem=peak_mem, slot=slot, command=command,
        definition_hash=definition_hash, reasons=_reasons_from_json(reasons),
        log_path=log_path, message=message)


_INSERT_STARTED = (
    "INSERT INTO attempts (run_id, task, attempt, started, slot, command, "
    "definition_hash, reasons, log_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, task, attempt) DO UPDATE SET started = excluded.started, "
    "slot = excluded.slot, command = excluded.command, "
    "definition_hash = excluded.definition_hash, reasons = excluded.reasons, "
    "log_path = excluded.log_path")

_INSERT_FINISHED = (
    "INSERT INTO attempts (run_id, task, attempt, started, ended, duration, outcome, "
    "exit_code, peak_mem, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, task, attempt) DO UPDATE SET ended = excluded.ended, "
    "duration = excluded.duration, outcome = excluded.outcome, "
    "exit_code = excluded.exit_code, peak_mem = excluded.peak_mem, "
    "message = excluded.message")

_INSERT_WHOLE = (          # an attempt whose start and finish are written together
    "INSERT INTO attempts (run_id, task, attempt, started, slot, command, "
    "definition_hash, reasons, log_path, ended, duration, outcome, exit_code, peak_mem, "
    "message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (run_id, task, attempt) DO UPDATE SET started = excluded.started, "
    "slot = excluded.slot, command = excluded.command, "
    "definition_hash = excluded.definition_hash, reasons = excluded.reasons, "
    "log_path = excluded.log_path, ended = excluded.ended, "
    "duration = excluded.duration, outcome = excluded.outcome, "
    "exit_code = excluded.exit_code, peak_mem = excluded.peak_mem, "
    "message = excluded.message")

_UPSERT_SUCCESS = (
    "INSERT INTO last_success (workflow_path, task, definition_hash, time, duration, run_id) "
    "VALUES (?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (workflow_path, task) DO UPDATE SET "
    "definition_hash = excluded.definition_hash, time = excluded.time, "
    "duration = excluded.duration, run_id = excluded.run_id")


def _started_row(event: TaskStarted, reasons: Iterable[Reason]) -> tuple:
    return (event.run_id, event.task, event.attempt, event.time, event.slot, event.command,
            event.definition_hash, _reasons_json(reasons), event.log_path)


def _finished_row(event: TaskFinished) -> tuple:
    return (event.run_id, event.task, event.attempt, event.time - event.duration, event.time,
            event.duration, event.outcome.value, event.exit_code, event.peak_mem,
            event.message)


class _Rows:
    """The rows of task starts and finishes from a stretch of events, written with one
    ``executemany`` per statement: attempts that started and finished in the stretch as
    whole rows, then the other starts, then the other finishes, then successes (an
    attempt's start comes before its finish, in this stretch or an earlier one)."""

    __slots__ = ("started", "finished")

    def __init__(self) -> None:
        self.started: dict[tuple, tuple] = {}                  # (run, task, attempt) -> row
        self.finished: list[tuple[tuple, tuple | None]] = []   # (attempt row, last_success row)

    def start(self, row: tuple) -> None:
        self.started[row[:3]] = row

    def write(self, conn: sqlite3.Connection) -> None:
        started, finished = self.started, self.finished
        if not started and not finished:
            return
        self.started, self.finished = {}, []
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
        except sqlite3.OperationalError:
            raise
        except Exception:
            # A bad row: write them one by one, so that only its event is lost, as when
            # each event was its own statements (all upserts: twice is the same as once).
            for row in started.values():
                _execute_logged(conn, _INSERT_STARTED, row)
            for sql, row, ok in ends:
                if sql is _INSERT_WHOLE:     # as two statements: a bad finish keeps the start
                    _execute_logged(conn, _INSERT_STARTED, row[:9])
                    sql, row = _INSERT_FINISHED, row[:4] + row[9:]
                if _execute_logged(conn, sql, row) and ok is not None:
                    _execute_logged(conn, _UPSERT_SUCCESS, ok)


def _execute_logged(conn: sqlite3.Connection, sql: str, row: tuple) -> bool:
    try:
        conn.execute(sql, row)
    except sqlite3.OperationalError:
        raise
    except Exception:
        log.exception("history: could not record %r", row)
        return False
    return True


# Which events history looks at; anything else (output lines) costs one set lookup.
_RECORDED = frozenset({RunStarted, TaskStateChanged, TaskStarted, TaskFinished, RunFinished})


# ---------------------------------------------------------------------------


class History(BackgroundWriter):
    """Run history in SQLite. Subscribe ``on_event`` to the engine's bus.

    Writes happen on a background thread; ``flush()`` waits for them.
    Queries may be called from any thread.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else paths.history_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._create_schema()

        super().__init__("gristmill-history")
        self._lock = threading.Lock()
        self._active: set[str] = set()     # runs started here whose end is not yet written
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []

        # Writer-thread state: the latest plan reasons per run and task, each recorded
        # run's workflow path, and the definition hash of each attempt not yet finished.
        self._reasons: dict[str, dict[str, tuple[Reason, ...]]] = {}
        self._dry_runs: set[str] = set()
        self._run_paths: dict[str, str] = {}
        self._hashes: dict[tuple[str, str, int], str] = {}
        self._writer_conn: sqlite3.Connection | None = None
        self._start_writer()

    # -- connections --------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _create_schema(self) -> None:
        conn = self._connect()
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise HistoryError(
                        f"{self.path}: history written by a newer Gristmill "
                        f"(schema {version}; this version reads {SCHEMA_VERSION})")
                if version < SCHEMA_VERSION:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    def _conn(self) -> sqlite3.Connection:
        """This thread's query connection."""
        if self._closed:
            raise HistoryError("history is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

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

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the writer thread and close connections."""
        if self._closed:
            return
        super().close(timeout)
        with self._lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()

    # -- the writer thread ----------------------------------------------------

    def _writer_started(self) -> None:
        self._writer_conn = self._connect()

    def _writer_stopped(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()

    def _write_batch(self, events: list[Event]) -> None:
        assert self._writer_conn is not None
        self._write_events(self._writer_conn, events)

    def _write_events(self, conn: sqlite3.Connection, events: list[Event]) -> None:
        """Apply events in one transaction. Waiting happens at BEGIN only (another
        process may hold the write lock), so each event is applied exactly once."""
        finished: list[str] = []
        rows = _Rows()
        try:
            self._begin(conn)
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
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.exception("history: dropped %d events", len(events))
        with self._lock:
            self._active.difference_update(finished)

    @staticmethod
    def _begin(conn: sqlite3.Connection) -> None:
        for attempt in range(_LOCKED_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")     # waits up to the busy timeout
                return
            except sqlite3.OperationalError:
                if attempt + 1 == _LOCKED_RETRIES:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _gather(self, event: Event, rows: _Rows) -> bool:
        """Take in a task's state change, start or finish, adding its rows to ``rows``;
        False for any other event, or one whose rows need a join (``_apply``)."""
        run_id = event.run_id
        if run_id in self._dry_runs:
            return False
        if isinstance(event, TaskStateChanged):
            if not event.state.finished:
                self._reasons.setdefault(run_id, {})[event.task] = event.reasons
            return True
        if isinstance(event, TaskStarted):
            reasons = self._reasons.get(run_id, {}).get(event.task, ())
            self._hashes[(run_id, event.task, event.attempt)] = event.definition_hash
            rows.start(_started_row(event, reasons))
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
            success = (path, event.task, definition_hash, event.time, event.duration, run_id)
        self._hashes.pop(key, None)
        rows.finished.append((_finished_row(event), success))
        return True

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
            if event.outcome is Outcome.SUCCEEDED:
                conn.execute(
                    "INSERT INTO last_success (workflow_path, task, definition_hash, time, "
                    "duration, run_id) SELECT r.workflow_path, a.task, a.definition_hash, ?, ?, "
                    "r.id FROM runs r JOIN attempts a ON a.run_id = r.id "
                    "WHERE r.id = ? AND a.task = ? AND a.attempt = ? "
                    "ON CONFLICT (workflow_path, task) DO UPDATE SET "
                    "definition_hash = excluded.definition_hash, time = excluded.time, "
                    "duration = excluded.duration, run_id = excluded.run_id",
                    (event.time, event.duration, run_id, event.task, event.attempt))
        elif isinstance(event, RunStarted):
            if event.dry_run:
                self._dry_runs.add(run_id)
                return
            self._reasons[run_id] = {}
            self._run_paths[run_id] = _norm_path(event.workflow_path)
            conn.execute(
                "INSERT OR REPLACE INTO runs (id, workflow_path, workflow_name, targets, "
                "task_count, started, status, pid, hostname, process_start, log_path) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, _norm_path(event.workflow_path), event.workflow,
                 json.dumps(list(event.targets), ensure_ascii=False), len(event.tasks),
                 event.time, RunStatus.RUNNING.value, os.getpid(), _HOSTNAME,
                 _process_start(os.getpid()), event.log_path))
        elif isinstance(event, RunFinished):
            self._reasons.pop(run_id, None)
            self._run_paths.pop(run_id, None)
            for key in [k for k in self._hashes if k[0] == run_id]:
                del self._hashes[key]
            conn.execute(
                "UPDATE runs SET status = ?, ended = ?, counts = ? WHERE id = ?",
                (event.status.value, event.time, json.dumps(dict(event.counts)), run_id))
            finished.append(run_id)

    # -- queries (any thread) ------------------------------------------------

    def runs(self, workflow_path: str | os.PathLike[str] | None = None,
             limit: int | None = 50) -> list[RunRecord]:
        """Runs, newest first; of one workflow when ``workflow_path`` is given."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs"
        args: list[object] = []
        if workflow_path is not None:
            sql += " WHERE workflow_path = ?"
            args.append(_norm_path(workflow_path))
        sql += " ORDER BY started DESC, id DESC LIMIT ?"
        args.append(-1 if limit is None else limit)
        return [_run_record(row) for row in self._conn().execute(sql, args)]

    def run(self, run_id: str) -> RunRecord | None:
        row = self._conn().execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?",
                                   (run_id,)).fetchone()
        return _run_record(row) if row else None

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """Every attempt of one run, in the order they started."""
        rows = self._conn().execute(
            f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE run_id = ? "
            "ORDER BY started, task, attempt", (run_id,))
        return [_attempt_record(row) for row in rows]

    def task_records(self, workflow_path: str | os.PathLike[str]) -> dict[str, TaskRecord]:
        """Task name -> its last success, for every task of a workflow, in one query."""
        rows = self._conn().execute(
            "SELECT task, definition_hash, time, duration, run_id FROM last_success "
            "WHERE workflow_path = ?", (_norm_path(workflow_path),))
        make = TaskRecord._make
        return {row[0]: make(row) for row in rows}

    def definition_hashes(self, workflow_path: str | os.PathLike[str]) -> dict[str, str]:
        """Task name -> ``definition_hash`` at its last success: what a staleness scan needs."""
        return dict(self._conn().execute(
            "SELECT task, definition_hash FROM last_success WHERE workflow_path = ?",
            (_norm_path(workflow_path),)))

    def last_success(self, workflow_path: str | os.PathLike[str], task: str) -> TaskRecord | None:
        row = self._conn().execute(
            "SELECT task, definition_hash, time, duration, run_id FROM last_success "
            "WHERE workflow_path = ? AND task = ?", (_norm_path(workflow_path), task)).fetchone()
        return TaskRecord(*row) if row else None

    def durations(self, workflow_path: str | os.PathLike[str]) -> dict[str, float]:
        """Task name -> seconds its last success took."""
        rows = self._conn().execute(
            "SELECT task, duration FROM last_success WHERE workflow_path = ?",
            (_norm_path(workflow_path),))
        return dict(rows.fetchall())

    # -- maintenance (any thread) ---------------------------------------------

    def mark_interrupted(self, workflow_path: str | os.PathLike[str] | None = None) -> list[str]:
        """Mark 'running' runs whose process is gone as 'interrupted'; return their ids.

        A run belongs to a process on this host (runs from other hosts are left
        alone). It is gone when that pid no longer lives (or now belongs to
        another process), or when it is this very process but the run is not
        active in this History. The end time is the last moment the run was
        seen doing something; attempts it left open get that end time too.
        """
        conn = self._conn()
        sql = "SELECT id, pid, hostname, process_start FROM runs WHERE status = 'running'"
        args: tuple[object, ...] = ()
        if workflow_path is not None:
            sql += " AND workflow_path = ?"
            args = (_norm_path(workflow_path),)
        rows = conn.execute(sql, args).fetchall()
        with self._lock:
            active = set(self._active)
        me = os.getpid()
        gone = [run_id for run_id, pid, host, start in rows
                if host == _HOSTNAME and run_id not in active
                and (pid == me or pid is None or not _process_alive(pid, start))]
        marked: list[str] = []
        if not gone:
            return marked
        conn.execute("BEGIN IMMEDIATE")
        try:
            for run_id in gone:
                (last_seen,) = conn.execute(
                    "SELECT MAX(r.started, COALESCE(MAX(a.ended), 0), COALESCE(MAX(a.started), 0))"
                    " FROM runs r LEFT JOIN attempts a ON a.run_id = r.id WHERE r.id = ?",
                    (run_id,)).fetchone()
                cur = conn.execute(
                    "UPDATE runs SET status = ?, ended = ? WHERE id = ? AND status = 'running'",
                    (RunStatus.INTERRUPTED.value, last_seen, run_id))
                if cur.rowcount:
                    conn.execute("UPDATE attempts SET ended = ? WHERE run_id = ? AND ended IS NULL",
                                 (last_seen, run_id))
                    marked.append(run_id)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return marked

    def prune(self, keep_days: float | None = None, keep_runs: int | None = None) -> list[str]:
        """Delete runs older than ``keep_days`` or beyond the newest ``keep_runs``.

        Their attempts go too, and so do their log files that live under
        ``paths.logs_dir()`` (with folders left empty). Runs still 'running'
        are kept; so is every task's last success. Returns the deleted ids.
        """
        if keep_days is None and keep_runs is None:
            return []
        conn = self._conn()
        cutoff = time.time() - keep_days * 86400.0 if keep_days is not None else None
        with self._lock:
            active = set(self._active)
        doomed: list[str] = []
        rows = conn.execute("SELECT id, started, status FROM runs ORDER BY started DESC, id DESC")
        for index, (run_id, started, status) in enumerate(rows):
            if status == RunStatus.RUNNING.value or run_id in active:
                continue
            if ((keep_runs is not None and index >= keep_runs)
                    or (cutoff is not None and started < cutoff)):
                doomed.append(run_id)
        if not doomed:
            return []
        files: list[str] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for ids in _chunks(doomed):
                marks = ", ".join("?" * len(ids))
                files += [p for (p,) in conn.execute(
                    f"SELECT log_path FROM runs WHERE id IN ({marks}) AND log_path != '' "
                    f"UNION SELECT log_path FROM attempts WHERE run_id IN ({marks}) "
                    "AND log_path != ''", ids + ids)]
                conn.execute(f"DELETE FROM attempts WHERE run_id IN ({marks})", ids)
                conn.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        _remove_logs(files, paths.logs_dir())
        return doomed


def _remove_logs(files: Iterable[str], root: Path) -> None:
    """Delete the files that live under ``root``, then folders they leave empty.

    Folders right under ``root`` (such as ``runs``) stay: writers expect them.
    """
    root = Path(os.path.realpath(root))
    folders: set[Path] = set()
    for name in files:
        path = Path(os.path.realpath(name))
        if path == root or not path.is_relative_to(root):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("history: could not delete %s: %s", path, exc)
            continue
        folders.add(path.parent)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        while folder != root and folder.parent != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                break                               # not empty, or gone
            folder = folder.parent
