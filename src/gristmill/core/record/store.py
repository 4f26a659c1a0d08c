"""The history database itself: its schema, connections, and the records queries return.

Shared by the two sides of ``History``: the recorder (``recorder.py``), which writes
events from a background thread, and the reader (``queries.py``), which answers
queries from any thread. The tables:

- ``runs``: one row per run, written ``running`` at ``RunStarted`` with this
  process's pid and host, finished at ``RunFinished``.
- ``attempts``: one row per task attempt, with the reasons that put the task
  in the plan, its command, slot, outcome, exit code, duration and peak memory;
  the GPU devices it had (JSON), its peak GPU memory and mean GPU utilisation.
- ``last_success``: per (workflow path, task) the definition hash, time and
  duration of the last success.
- ``audits``: per audited attempt, the dependency audit's findings (JSON).
- ``file_hashes``: per (workflow path, file) its hash and the size and mtime it had
  when hashed; ``attempt_files``: per successful attempt of a ``check = "content"``
  task, the hashes its inputs had (added to schema 2 without a version bump).
- ``last_attempt``: per (workflow path, task) its latest attempt and outcome (NULL
  while it runs, or when it never finished): an output is trusted only if the attempt
  that last wrote it succeeded.

Schema 2 added ``audits``, ``last_attempt``, ``runs.seen`` (the last moment the run was
seen alive), ``attempts.pgid``/``attempts.process_start`` (the process group a running
attempt left, to find it again after Gristmill was killed) and the GPU columns of
``attempts``; a schema 1 file is brought up to 2 when it is opened (``create_schema``),
its runs kept as they were.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Iterable, Mapping, NamedTuple

from ..events import Outcome, RunStatus
from ..findings import AuditFinding, findings_from_json
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
    seen          REAL,                          -- last moment the run was seen alive
    started_by    TEXT NOT NULL DEFAULT '',      -- '' asked for; 'watch'
    changed       TEXT NOT NULL DEFAULT '[]'     -- JSON list of the files that started it
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
    gpus            TEXT NOT NULL DEFAULT '[]',  -- JSON list of {index, uuid, name, mem, ...}
    gpu_peak_mem    INTEGER,                     -- bytes, sampled
    gpu_util        REAL,                        -- percent, the mean of the samples
    pgid            INTEGER,                     -- process group of its running command
    process_start   TEXT,                        -- that group leader's start (_process_start)
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
    """\
CREATE TABLE IF NOT EXISTS audits (
    run_id   TEXT NOT NULL,
    task     TEXT NOT NULL,
    attempt  INTEGER NOT NULL,
    traced   INTEGER NOT NULL DEFAULT 1,     -- 0: it could not be traced
    findings TEXT NOT NULL DEFAULT '[]',     -- JSON list of {kind, path, producer, fix, where}
    PRIMARY KEY (run_id, task, attempt)
) WITHOUT ROWID
""",
    """\
CREATE TABLE IF NOT EXISTS last_attempt (
    workflow_path   TEXT NOT NULL,
    task            TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    attempt         INTEGER NOT NULL,
    outcome         TEXT,                        -- NULL: running, or never finished
    PRIMARY KEY (workflow_path, task)
) WITHOUT ROWID
""",
    """\
CREATE INDEX IF NOT EXISTS last_attempt_untrusted ON last_attempt (workflow_path)
    WHERE outcome IS NOT 'succeeded'
""",
    # check = "content": each file's hash with the size and mtime it had then (hashed
    # again only when one differs), and the hashes a successful attempt's inputs had.
    """\
CREATE TABLE IF NOT EXISTS file_hashes (
    workflow_path TEXT NOT NULL,
    path          TEXT NOT NULL,                 -- relative to the workflow's root
    size          INTEGER NOT NULL,
    mtime_ns      INTEGER NOT NULL,
    hash          TEXT NOT NULL,                 -- "b3:" BLAKE3 or "b2:" BLAKE2b, 16 bytes, hex
    PRIMARY KEY (workflow_path, path)
) WITHOUT ROWID
""",
    """\
CREATE TABLE IF NOT EXISTS attempt_files (
    run_id  TEXT NOT NULL,
    task    TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    path    TEXT NOT NULL,
    hash    TEXT NOT NULL,
    PRIMARY KEY (run_id, task, attempt, path)
) WITHOUT ROWID
""",
)

# Tables added after schema 2 without a version bump (CREATE TABLE IF NOT EXISTS): a
# history of the same version without them gains them when opened.
_ADDED_TABLES = ("file_hashes", "attempt_files")

# Columns added after schema 1, for files made by an older version (ALTER TABLE): a
# history without them gets them when opened; an older Gristmill names its columns and
# reads such a history still.
_ADDED_COLUMNS = (
    ("runs", "seen", "REAL"),
    ("attempts", "pgid", "INTEGER"),
    ("attempts", "process_start", "TEXT"),
    ("attempts", "gpus", "TEXT NOT NULL DEFAULT '[]'"),    # JSON list of {index, uuid, …}
    ("attempts", "gpu_peak_mem", "INTEGER"),               # bytes
    ("attempts", "gpu_util", "REAL"),                      # percent, mean of samples
    ("runs", "started_by", "TEXT NOT NULL DEFAULT ''"),    # '' asked for; 'watch'
    ("runs", "changed", "TEXT NOT NULL DEFAULT '[]'"),     # JSON: the files that started it
    ("attempts", "mem", "INTEGER"),                        # bytes it was given (retry_mem)
)

# last_attempt for a file made before it existed: each task's latest attempt.
_FILL_LAST_ATTEMPT = (
    "INSERT OR REPLACE INTO last_attempt (workflow_path, task, run_id, attempt, outcome) "
    "SELECT r.workflow_path, a.task, a.run_id, a.attempt, a.outcome FROM attempts a "
    "JOIN runs r ON r.id = a.run_id ORDER BY COALESCE(a.started, r.started), a.attempt")

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
        if version == SCHEMA_VERSION and not _missing_columns(conn) and \
                not _missing_tables(conn) and \
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
                had_attempts = _has_table(conn, "attempts")
                for statement in _SCHEMA:
                    conn.execute(statement)
                for table, column, kind in _ADDED_COLUMNS:
                    if column not in _columns(conn, table):
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                if had_attempts:
                    conn.execute(_FILL_LAST_ATTEMPT)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if _missing_tables(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
            for table, column, declaration in _missing_columns(conn):
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def _missing_columns(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    have: dict[str, set[str]] = {}
    out = []
    for table, column, declaration in _ADDED_COLUMNS:
        if table not in have:
            have[table] = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if have[table] and column not in have[table]:
            out.append((table, column, declaration))
    return out
def _missing_tables(conn: sqlite3.Connection) -> bool:
    have = {row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    return any(t not in have for t in _ADDED_TABLES)


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


class HistoryError(RuntimeError):
    """The history database cannot be used (e.g. written by a newer Gristmill).
    ``locked``: only because another process holds it (moving it aside would not help)."""

    def __init__(self, message: str, locked: bool = False):
        super().__init__(message)
        self.locked = locked


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
        return ", ".join(f"{n} {state.replace('-', ' ')}" for state, n in self.counts.items() if n)


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
    gpus: tuple[Mapping[str, object], ...] = ()   # the devices it had: {index, uuid, name, …}
    gpu_peak_mem: int | None = None
    gpu_util: float | None = None

    @property
    def gpus_text(self) -> str:
        """"0 GPU-5f0e…, 1 GPU-77aa…": each device's index and UUID; "" without any."""
        return ", ".join(f"{g.get('index')} {g.get('uuid')}".strip() for g in self.gpus)

    @property
    def reasons_text(self) -> str:
        return "; ".join(r.message for r in self.reasons)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """The dependency audit of one attempt."""

    run_id: str
    task: str
    attempt: int
    traced: bool
    findings: tuple[AuditFinding, ...]


class LastAttempt(NamedTuple):
    """A task's latest attempt, one that did not succeed: its outputs are not trusted."""

    task: str
    run_id: str
    attempt: int
    outcome: str | None                # an Outcome value; None: it never finished
    run_status: str                    # a RunStatus value ('interrupted': the run died)
    message: str                       # what its end said ("exit status 1")
    started: float | None = None       # when the attempt began (epoch seconds)


class Leftover(NamedTuple):
    """A task's process group still alive after the Gristmill that ran it was killed."""

    run_id: str
    task: str
    attempt: int
    pgid: int
    process_start: str | None


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
    # os.read, not open(): read at every task's start (process_start), where a text file
    # object cost twice the read itself (issue 18).
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        parts = []
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            parts.append(data)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(parts).decode("ascii", "replace")


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


process_start = _process_start


def start_token(ticks: int) -> str | None:
    """The token ``process_start`` reads for a process that started ``ticks`` clock
    ticks after boot (the executor knows that tick from the clock around its spawn)."""
    return f"{_BOOT_ID}:{ticks}" if _BOOT_ID else None


def proc_stats():
    """(pid, the fields of /proc/<pid>/stat after the command's name) of every process."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        yield int(entry), fields


def live_groups(pgids: set[int]) -> dict[int, list[int]]:
    """Process group -> its live (not zombie) processes, for the groups in ``pgids``,
    from one reading of /proc."""
    found: dict[int, list[int]] = {}
    for pid, fields in proc_stats():
        if len(fields) > 2 and fields[0] not in (b"Z", b"X"):
            pgrp = int(fields[2])
            if pgrp in pgids:
                found.setdefault(pgrp, []).append(pid)
    return found


def group_alive(pgid: int | None, start: str | None,
                live: dict[int, list[int]] | None = None) -> bool:
    """Whether the process group a task left is still there, and is that same group:
    its leader has the start time recorded, or is gone while others of the group live
    (a pid is not given again while a group of that id exists). ``live``: from
    ``live_groups``, when several groups are asked about at once."""
    if not pgid or pgid <= 1:
        return False
    members = (live if live is not None else live_groups({pgid})).get(pgid)
    if not members:
        return False
    if pgid in members and start:
        now = _process_start(pgid)
        if now is not None and now != start:
            return False                    # the pid was given to another process
    return True


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


_ESCAPED = re.compile(r"\\ud[89a-f][0-9a-f]{2}")


def db_text(text: str | None) -> str | None:
    """``text`` as SQLite can store it. A file name that is not UTF-8 reaches the core as
    a str with lone surrogates (``os.fsdecode``), which SQLite cannot take: each becomes
    the six characters ``\\udcXX``, which ``from_db`` turns back (and which, inside
    JSON, is that surrogate's own escape)."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def from_db(text: str | None) -> str | None:
    """What ``db_text`` stored, as it was."""
    if text is None or "\\ud" not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(int(m.group()[2:], 16)), text)


def _norm_path(path: str | os.PathLike[str] | None) -> str:
    """Workflow paths are stored absolute, so a Path and a str of it match."""
    if path is None:
        return ""
    text = os.fspath(path)
    return db_text(os.path.abspath(text)) if text else ""


def _reasons_json(reasons: Iterable[Reason]) -> str:
    return db_text(json.dumps([{"kind": r.kind.value, "message": r.message} for r in reasons],
                              ensure_ascii=False))


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
        id=id_, workflow_path=from_db(wf_path), workflow_name=from_db(wf_name),
        targets=tuple(json.loads(targets or "[]")), started=started, ended=ended,
        status=RunStatus(status), counts=MappingProxyType(json.loads(counts or "{}")),
        task_count=task_count, pid=pid, hostname=hostname, log_path=from_db(log_path),
        started_by=started_by or "",
        changed=tuple(from_db(c) for c in json.loads(changed or "[]")))


_ATTEMPT_COLUMNS = ("run_id, task, attempt, started, ended, duration, outcome, exit_code, "
                    "peak_mem, slot, command, definition_hash, reasons, log_path, message, "
                    "gpus, gpu_peak_mem, gpu_util")


def gpus_json(devices: Iterable) -> str:
    return json.dumps([d.as_json() for d in devices], ensure_ascii=False) if devices else "[]"


def _gpus_from_json(text: str | None) -> tuple[Mapping[str, object], ...]:
    try:
        items = json.loads(text or "[]")
    except ValueError:
        return ()
    return tuple(MappingProxyType(i) for i in items if isinstance(i, dict)) \
        if isinstance(items, list) else ()


def _attempt_record(row: tuple) -> AttemptRecord:
    (run_id, task, attempt, started, ended, duration, outcome, exit_code,
     peak_mem, slot, command, definition_hash, reasons, log_path, message,
     gpus, gpu_peak_mem, gpu_util) = row
    return AttemptRecord(
        run_id=run_id, task=from_db(task), attempt=attempt, started=started, ended=ended,
        duration=duration, outcome=Outcome(outcome) if outcome is not None else None,
        exit_code=exit_code, peak_mem=peak_mem, slot=slot, command=from_db(command),
        definition_hash=definition_hash, reasons=_reasons_from_json(reasons),
        log_path=from_db(log_path), message=from_db(message), gpus=_gpus_from_json(gpus),
        gpu_peak_mem=gpu_peak_mem, gpu_util=gpu_util)


_AUDIT_COLUMNS = "run_id, task, attempt, traced, findings"


def _audit_record(row: tuple) -> AuditRecord:
    run_id, task, attempt, traced, findings = row
    return AuditRecord(run_id, task, attempt, bool(traced), findings_from_json(findings, task))
