"""Find a task's latest attempts in the run history, lazily (pure Python, no Qt).

The history has no "latest attempt of a task" query, so this walks the
workflow's runs newest first, reading one run's attempts at a time and keeping
what it read; most lookups touch one or two runs. After a run ends, ``forget``
drops the cache so the new run is seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from gristmill.core.record.history import AttemptRecord, RunRecord

PAGE = 20            # runs read per query
MAX_RUNS = 200       # how far back to look


class HistoryLike(Protocol):
    def runs(self, workflow_path: str | None = None, limit: int | None = 50) -> list[RunRecord]: ...
    def attempts(self, run_id: str) -> list[AttemptRecord]: ...


@dataclass(frozen=True)
class TaskAttempts:
    """The attempts of one task in one past run."""

    run: RunRecord
    attempts: tuple[AttemptRecord, ...]      # by attempt number

    def attempt(self, number: int) -> AttemptRecord | None:
        return next((a for a in self.attempts if a.attempt == number), None)


class LatestAttempts:
    def __init__(self, history: HistoryLike | None, workflow_path: str | None,
                 page: int = PAGE, max_runs: int = MAX_RUNS):
        self._history = history
        self._path = workflow_path
        self._page = page
        self._max = max_runs
        self._runs: list[RunRecord] = []
        self._all_runs_read = False
        self._by_run: dict[str, dict[str, tuple[AttemptRecord, ...]]] = {}
        self._found: dict[str, TaskAttempts | None] = {}

    def forget(self) -> None:
        self._runs, self._all_runs_read = [], False
        self._by_run.clear()
        self._found.clear()

    def find(self, task: str) -> TaskAttempts | None:
        """The attempts of ``task`` in the newest recorded run that started it; None when none did."""
        if task in self._found:
            return self._found[task]
        found = None
        if self._history is not None and self._path is not None:
            try:
                found = self._search(task)
            except Exception:          # history is a convenience, never a blocker
                found = None
        self._found[task] = found
        return found

    def _search(self, task: str) -> TaskAttempts | None:
        i = 0
        while True:
            if i >= len(self._runs) and not self._read_more_runs():
                return None
            run = self._runs[i]
            i += 1
            attempts = self._attempts_of(run.id).get(task)
            if attempts:
                return TaskAttempts(run, attempts)

    def _read_more_runs(self) -> bool:
        if self._all_runs_read or len(self._runs) >= self._max:
            return False
        limit = min(len(self._runs) + self._page, self._max)
        runs = self._history.runs(self._path, limit=limit)
        new = runs[len(self._runs):]
        self._runs.extend(new)
        if len(runs) < limit:
            self._all_runs_read = True
        return bool(new)

    def _attempts_of(self, run_id: str) -> dict[str, tuple[AttemptRecord, ...]]:
        by_task = self._by_run.get(run_id)
        if by_task is None:
            grouped: dict[str, list[AttemptRecord]] = {}
            for a in self._history.attempts(run_id):
                grouped.setdefault(a.task, []).append(a)
            by_task = self._by_run[run_id] = {t: tuple(sorted(v, key=lambda a: a.attempt))
                                              for t, v in grouped.items()}
        return by_task


def attempt_numbers(found: TaskAttempts | None) -> Sequence[int]:
    return [a.attempt for a in found.attempts] if found is not None else []
