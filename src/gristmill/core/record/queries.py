"""The reading side of history: queries and maintenance, from any thread.

Each calling thread gets a connection of its own (the database is in WAL mode, so
the GUI reads while the recorder writes, and a CLI run and the app can share it).
``mark_interrupted`` finds the 'running' rows whose process died; ``prune`` deletes
old runs and their logs.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from .. import paths
from ..events import RunStatus
from .store import (_ATTEMPT_COLUMNS, _HOSTNAME, _RUN_COLUMNS, AttemptRecord, HistoryError,
                    RunRecord, TaskRecord, _attempt_record, _chunks, _norm_path,
                    _process_alive, _run_record, connect, db_text, from_db)

log = logging.getLogger("gristmill.core.record.history")


class HistoryReader:
    """Queries of the history database at ``path``. ``active_runs`` says which runs this
    process is still writing (they are never marked interrupted nor pruned)."""

    def __init__(self, path: Path, active_runs: Callable[[], set[str]] = set) -> None:
        self.path = path
        self._active_runs = active_runs
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_closed = False

    def _conn(self) -> sqlite3.Connection:
        """This thread's query connection."""
        if self._readers_closed:
            raise HistoryError("history is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close_readers(self) -> None:
        with self._readers_lock:
            self._readers_closed = True
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()

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
        return {from_db(row[0]): make((from_db(row[0]),) + row[1:]) for row in rows}

    def definition_hashes(self, workflow_path: str | os.PathLike[str]) -> dict[str, str]:
        """Task name -> ``definition_hash`` at its last success: what a staleness scan needs."""
        return {from_db(task): h for task, h in self._conn().execute(
            "SELECT task, definition_hash FROM last_success WHERE workflow_path = ?",
            (_norm_path(workflow_path),))}

    def last_success(self, workflow_path: str | os.PathLike[str], task: str) -> TaskRecord | None:
        row = self._conn().execute(
            "SELECT task, definition_hash, time, duration, run_id FROM last_success "
            "WHERE workflow_path = ? AND task = ?",
            (_norm_path(workflow_path), db_text(task))).fetchone()
        return TaskRecord(task, *row[1:]) if row else None

    def durations(self, workflow_path: str | os.PathLike[str]) -> dict[str, float]:
        """Task name -> seconds its last success took."""
        rows = self._conn().execute(
            "SELECT task, duration FROM last_success WHERE workflow_path = ?",
            (_norm_path(workflow_path),))
        return {from_db(task): d for task, d in rows.fetchall()}

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
        active = self._active_runs()
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
        active = self._active_runs()
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
