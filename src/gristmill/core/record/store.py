"""The history database itself: its schema, connections, and the records queries return.

Shared by the two sides of ``History``: the recorder (``recorder.py``), which writes
events from a background thread, and the reader (``queries.py``), which answers
queries from any thread. The tables:

- ``runs``: one row per run, written ``running`` at ``RunStarted`` with this
  process's pid and host, finished at ``RunFinished``.
- ``attempts``: one row per task attempt, with the reasons that put the task
  in the plan, its command, slot, outcome, exit code, duration and peak memory.
- ``last_success``: per (workflow path, task) the definition hash, time and
  duration of the last success.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping, NamedTuple

from ..events import Outcome, RunStatus
from ..reasons import Reason, ReasonKind

log = logging.getLogger("gristmill.core.record.history")

SCHEMA_VERSION = 2

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
    log_path      TEXT NOT NULL DEFAULT '',      -- the JSON-lines run log
    started_by    TEXT NOT NULL DEFAULT '',      -- schema 2: '' asked for; 'watch'
    changed       TEXT NOT NULL DEFAULT '[]'     -- schema 2: JSON list of the files that started it
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

# Columns added after schema 1, by the version that added them: an older history gets
# them (ALTER TABLE) when this version first opens it; its rows read as the defaults.
_ADDED_COLUMNS = (
    (2, "runs", "started_by", "TEXT NOT NULL DEFAULT ''"),
    (2, "runs", "changed", "TEXT NOT NULL DEFAULT '[]'"),
)

_BUSY_TIMEOUT_MS = 1000   # a query waits this long for another process's lock
WRITER_BUSY_MS = 250      # the recorder, per try: it keeps what it could not write, and tries again
_CHUNK = 500             # ids per IN (...) list



def connect(path: Path | str, busy_ms: int = _BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection in autocommit mode that waits ``busy_ms`` for another writer's lock."""
    conn = sqlite3.connect(path, timeout=busy_ms / 1000, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def empty_database() -> sqlite3.Connection:
    """An empty history in memory: what queries read once the file cannot be used."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    for statement in _SCHEMA:
        conn.execute(statement)
    return conn


def is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` says another process holds the database's lock (it may let go)."""
    return isinstance(exc, sqlite3.OperationalError) and any(
        word in str(exc) for word in ("locked", "busy"))


def create_schema(path: Path) -> None:
    """Create the tables (WAL mode) or check that their schema is one this version reads.

    A history already made by this version is only read here: a ``plan`` needs no write
    lock, and waits on no other process's."""
    conn = connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION and \
                conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()
            return
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise HistoryError(
                    f"{path}: history written by a newer Gristmill "
                    f"(schema {version}; this version reads {SCHEMA_VERSION})")
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA:
                    conn.execute(statement)
                for _added, table, column, decl in _ADDED_COLUMNS:
                    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


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
    started_by: str = ""               # "watch": started by a change on disk; "" asked for
    changed: tuple[str, ...] = ()      # the changed files that started it (watch)

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
                "task_count, pid, hostname, log_path, started_by, changed")


def _run_record(row: tuple) -> RunRecord:
    (id_, wf_path, wf_name, targets, started, ended, status, counts,
     task_count, pid, hostname, log_path, started_by, changed) = row
    return RunRecord(
        id=id_, workflow_path=wf_path, workflow_name=wf_name,
        targets=tuple(json.loads(targets or "[]")), started=started, ended=ended,
        status=RunStatus(status), counts=MappingProxyType(json.loads(counts or "{}")),
        task_count=task_count, pid=pid, hostname=hostname, log_path=log_path,
        started_by=started_by or "", changed=tuple(json.loads(changed or "[]")))


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
