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
from .store import (_ATTEMPT_COLUMNS, _AUDIT_COLUMNS, _HOSTNAME, _RUN_COLUMNS, AttemptRecord,
                    AuditRecord, HistoryError, LastAttempt, Leftover, RunRecord, TaskRecord,
                    _attempt_record, _audit_record, _chunks, _norm_path, _process_alive,
                    _run_record, connect, db_text, from_db, group_alive, live_groups)

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

    def audits(self, run_id: str, task: str | None = None) -> list[AuditRecord]:
        """The dependency audits of one run's attempts (of one task when ``task`` is
        given), in task and attempt order."""
        sql = f"SELECT {_AUDIT_COLUMNS} FROM audits WHERE run_id = ?"
        args: list[object] = [run_id]
        if task is not None:
            sql += " AND task = ?"
            args.append(task)
        rows = self._conn().execute(sql + " ORDER BY task, attempt", args)
        return [_audit_record(row) for row in rows]

    def last_audits(self, workflow_path: str | os.PathLike[str]) -> list[AuditRecord]:
        """The audits of the newest run of a workflow that audited any task."""
        row = self._conn().execute(
            "SELECT r.id FROM runs r WHERE r.workflow_path = ? AND EXISTS "
            "(SELECT 1 FROM audits a WHERE a.run_id = r.id) ORDER BY r.started DESC, r.id DESC "
            "LIMIT 1", (_norm_path(workflow_path),)).fetchone()
        return self.audits(row[0]) if row else []

    def task_audit(self, workflow_path: str | os.PathLike[str], task: str) -> AuditRecord | None:
        """A task's newest audit in the runs of a workflow, or None."""
        row = self._conn().execute(
            f"SELECT {', '.join('a.' + c for c in _AUDIT_COLUMNS.split(', '))} FROM audits a "
            "JOIN runs r ON r.id = a.run_id WHERE r.workflow_path = ? AND a.task = ? "
            "ORDER BY r.started DESC, r.id DESC, a.attempt DESC LIMIT 1",
            (_norm_path(workflow_path), task)).fetchone()
        return _audit_record(row) if row else None

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

    def success_hashes(self, workflow_path: str | os.PathLike[str], task: str) -> dict[str, str]:
        """path -> hash of the inputs a ``check = "content"`` task compared, as they were
        at its last success (empty: none kept)."""
        return {from_db(p): h for p, h in self._conn().execute(
            "SELECT f.path, f.hash FROM last_success s JOIN attempt_files f "
            "ON f.run_id = s.run_id AND f.task = s.task "
            "WHERE s.workflow_path = ? AND s.task = ?",
            (_norm_path(workflow_path), db_text(task)))}

    def file_hash(self, workflow_path: str | os.PathLike[str],
                  path: str) -> tuple[int, int, str] | None:
        """(size, mtime_ns, hash) of a file of the workflow when it was last hashed."""
        row = self._conn().execute(
            "SELECT size, mtime_ns, hash FROM file_hashes WHERE workflow_path = ? AND path = ?",
            (_norm_path(workflow_path), db_text(path))).fetchone()
        return tuple(row) if row else None     # type: ignore[return-value]

    def all_content_facts(self, workflow_path: str | os.PathLike[str]) -> tuple[
            dict[str, dict[str, str]], dict[str, tuple[int, int, str]]]:
        """Every task's ``success_hashes`` and every ``file_hash`` of a workflow, at once."""
        path = _norm_path(workflow_path)
        conn = self._conn()
        success: dict[str, dict[str, str]] = {}
        for task, p, h in conn.execute(
                "SELECT s.task, f.path, f.hash FROM last_success s JOIN attempt_files f "
                "ON f.run_id = s.run_id AND f.task = s.task WHERE s.workflow_path = ?", (path,)):
            success.setdefault(from_db(task), {})[from_db(p)] = h
        files = {from_db(p): (size, mtime, h) for p, size, mtime, h in conn.execute(
            "SELECT path, size, mtime_ns, hash FROM file_hashes WHERE workflow_path = ?", (path,))}
        return success, files

    def content_facts(self, workflow_path: str | os.PathLike[str]) -> "ContentFacts":
        """What a staleness scan needs for ``check = "content"``, asked for lazily (a scan
        that compares no content asks nothing)."""
        return ContentFacts(self, str(workflow_path))

    def attempt_mems(self, workflow_path: str | os.PathLike[str]) -> dict[str, int]:
        """Task -> the mem (bytes) its last successful attempt was given, for tasks whose
        attempts recorded it (the size an out-of-memory retry found to work)."""
        rows = self._conn().execute(
            "SELECT s.task, MAX(a.mem) FROM last_success s JOIN attempts a "
            "ON a.run_id = s.run_id AND a.task = s.task AND a.outcome = 'succeeded' "
            "WHERE s.workflow_path = ? AND a.mem IS NOT NULL GROUP BY s.task",
            (_norm_path(workflow_path),))
        return {from_db(task): mem for task, mem in rows}

    def durations(self, workflow_path: str | os.PathLike[str]) -> dict[str, float]:
        """Task name -> seconds its last success took."""
        rows = self._conn().execute(
            "SELECT task, duration FROM last_success WHERE workflow_path = ?",
            (_norm_path(workflow_path),))
        return {from_db(task): d for task, d in rows.fetchall()}

    def recent_durations(self, workflow_path: str | os.PathLike[str],
                         last: int = 5) -> dict[str, float]:
        """Task name -> the median of the seconds its ``last`` most recent successes took
        (the capacity planner's durations)."""
        rows = self._conn().execute(
            "SELECT task, duration FROM ("
            " SELECT a.task, a.duration, ROW_NUMBER() OVER ("
            "  PARTITION BY a.task ORDER BY a.ended DESC) AS n"
            " FROM attempts a JOIN runs r ON r.id = a.run_id"
            " WHERE r.workflow_path = ? AND a.outcome = 'succeeded' AND a.duration IS NOT NULL)"
            " WHERE n <= ?", (_norm_path(workflow_path), last))
        seen: dict[str, list[float]] = {}
        for task, duration in rows:
            seen.setdefault(task, []).append(duration)
        out = {}
        for task, values in seen.items():
            values.sort()
            mid = len(values) // 2
            out[task] = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
        return out

    def untrusted(self, workflow_path: str | os.PathLike[str]) -> dict[str, LastAttempt]:
        """Task name -> its latest attempt, for the tasks whose latest attempt did not
        succeed (failed, cancelled, timed out, never finished): their outputs are not
        trusted. A run still marked running whose process is gone counts as interrupted
        (nothing is written: a plan only reads)."""
        rows = self._conn().execute(
            "SELECT l.task, l.run_id, l.attempt, l.outcome, r.status, a.message, r.pid, "
            "r.hostname, r.process_start, a.started FROM last_attempt l INDEXED BY last_attempt_untrusted "
            "LEFT JOIN runs r ON r.id = l.run_id "
            "LEFT JOIN attempts a ON a.run_id = l.run_id AND a.task = l.task "
            "AND a.attempt = l.attempt "
            "WHERE l.workflow_path = ? AND l.outcome IS NOT 'succeeded'",
            (_norm_path(workflow_path),)).fetchall()
        if not rows:
            return {}
        active = self._active_runs()
        out: dict[str, LastAttempt] = {}
        gone: dict[str, bool] = {}
        for task, run_id, attempt, outcome, status, message, pid, host, start, began in rows:
            if status == RunStatus.RUNNING.value and run_id not in active:
                dead = gone.get(run_id)
                if dead is None:
                    dead = gone[run_id] = host == _HOSTNAME and (
                        pid is None or pid == os.getpid() or not _process_alive(pid, start))
                if dead:
                    status = RunStatus.INTERRUPTED.value
            out[task] = LastAttempt(task, run_id, attempt, outcome, status or "", message or "",
                                    began)
        return out

    def leftovers(self, workflow_path: str | os.PathLike[str]) -> list[Leftover]:
        """Task process groups that a run left running when Gristmill itself was killed:
        each task's latest attempt, one that never finished, of a run whose process is
        gone, whose process group still lives (the same group: its leader's start time
        matches). Only tasks not trusted are looked at, and /proc is read once."""
        rows = self._conn().execute(
            "SELECT l.run_id, l.task, l.attempt, a.pgid, a.process_start, r.status, r.pid, "
            "r.process_start FROM last_attempt l INDEXED BY last_attempt_untrusted "
            "JOIN attempts a ON a.run_id = l.run_id AND a.task = l.task "
            "AND a.attempt = l.attempt JOIN runs r ON r.id = l.run_id "
            "WHERE l.workflow_path = ? AND l.outcome IS NOT 'succeeded' AND l.outcome IS NULL "
            "AND a.pgid IS NOT NULL AND r.hostname = ? "
            "AND r.status IN ('running', 'interrupted')",
            (_norm_path(workflow_path), _HOSTNAME)).fetchall()
        if not rows:
            return []
        active = self._active_runs()
        me = os.getpid()
        candidates: list[Leftover] = []
        runs_alive: dict[str, bool] = {}
        for run_id, task, attempt, pgid, pstart, status, pid, start in rows:
            if run_id in active:
                continue
            if status == RunStatus.RUNNING.value:
                up = runs_alive.get(run_id)
                if up is None:
                    up = runs_alive[run_id] = pid is not None and pid != me \
                        and _process_alive(pid, start)
                if up:
                    continue                    # its Gristmill still runs it
            candidates.append(Leftover(run_id, task, attempt, pgid, pstart))
        if not candidates:
            return []
        live = live_groups({c.pgid for c in candidates})
        return [c for c in candidates if group_alive(c.pgid, c.process_start, live)]

    # -- maintenance (any thread) ---------------------------------------------

    def mark_interrupted(self, workflow_path: str | os.PathLike[str] | None = None) -> list[str]:
        """Mark 'running' runs whose process is gone as 'interrupted'; return their ids.

        A run belongs to a process on this host (runs from other hosts are left
        alone). It is gone when that pid no longer lives (or now belongs to
        another process), or when it is this very process but the run is not
        active in this History. The end time is the last moment the run was
        seen alive (its recorder marks it while it runs) or doing something; attempts it
        left open get that end time too.
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
                    "SELECT MAX(r.started, COALESCE(r.seen, 0), COALESCE(MAX(a.ended), 0), "
                    "COALESCE(MAX(a.started), 0))"
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
                conn.execute(f"DELETE FROM audits WHERE run_id IN ({marks})", ids)
                # (the hashes of a task's last success stay: its content check needs them)
                conn.execute(f"DELETE FROM attempt_files WHERE run_id IN ({marks}) AND NOT "
                             "EXISTS (SELECT 1 FROM last_success s WHERE s.run_id = "
                             "attempt_files.run_id AND s.task = attempt_files.task)", ids)
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


class ContentFacts:
    """``decide.content.ContentFacts`` from history. The first questions are one query
    each (a scan that meets a touched file or two); after ``BULK`` of them, everything
    the workflow has is read at once (a checkout that touched thousands of files)."""

    BULK = 16

    def __init__(self, reader: HistoryReader, workflow_path: str) -> None:
        self._reader = reader
        self._path = workflow_path
        self._asked = 0
        self._success: dict[str, dict[str, str]] | None = None
        self._files: dict[str, tuple[int, int, str]] | None = None

    def _count(self) -> bool:
        self._asked += 1
        if self._asked == self.BULK:
            self._success, self._files = self._reader.all_content_facts(self._path)
        return self._success is not None

    def at_success(self, task: str) -> dict[str, str] | None:
        if self._count():
            return self._success.get(task) or None        # type: ignore[union-attr]
        return self._reader.success_hashes(self._path, task) or None

    def known_hash(self, path: str) -> tuple[int, int, str] | None:
        if self._count():
            return self._files.get(path)                 # type: ignore[union-attr]
        return self._reader.file_hash(self._path, path)
