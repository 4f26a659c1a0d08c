"""Errors a user sees: always ``path:line:col: message``, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

SHOWN_ERRORS = 20       # errors of a file listed in one report; the rest are counted


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a file a user wrote. Lines and columns count from 1; line 0 is the
    path itself (a folder, a missing file): printed as the path alone."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.col}"


class GristmillError(Exception):
    """Base of every error Gristmill reports to a user (exit status 2)."""


class WorkflowError(GristmillError):
    """A problem in a workflow file, reported as ``path:line:col: message``."""

    def __init__(self, message: str, location: Location | None = None,
                 *, path: str | Path | None = None, line: int = 1, col: int = 1):
        if location is None and path is not None:
            location = Location(str(path), line, col)
        self.message = message
        self.location = location
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.location is None:
            return self.message
        return f"{self.location}: {self.message}"


class WorkflowErrors(WorkflowError):
    """Every error one pass over a workflow's files found, in file order: one line each
    (``path:line:col: message``), at most ``SHOWN_ERRORS`` and "… and N more errors".
    ``location`` and ``message`` are the first error's."""

    def __init__(self, errors: Sequence[WorkflowError]):
        self.errors: tuple[WorkflowError, ...] = tuple(errors)
        first = self.errors[0]
        super().__init__(first.message, first.location)

    def __reduce__(self):
        return (WorkflowErrors, (self.errors,))

    def __str__(self) -> str:
        lines = [WorkflowError.__str__(e) for e in self.errors[:SHOWN_ERRORS]]
        more = len(self.errors) - SHOWN_ERRORS
        if more > 0:
            lines.append(f"… and {more} more error{'s' if more != 1 else ''}")
        return "\n".join(lines)


class ErrorCollector:
    """Gathers the errors of a load that can go on after them (an unknown key, a bad
    value, one bad task), so a file's errors are all told at once, not the first alone."""

    __slots__ = ("errors", "_seen")

    def __init__(self) -> None:
        self.errors: list[WorkflowError] = []
        self._seen: set[str] | None = None

    def add(self, error: WorkflowError) -> None:
        if self._seen is None:
            self._seen = set()
        for e in getattr(error, "errors", (error,)):
            text = WorkflowError.__str__(e)
            if text not in self._seen:
                self._seen.add(text)
                self.errors.append(e)

    def going_on(self) -> "ErrorCollector":
        """``with errors.going_on():`` runs the block; a WorkflowError in it is kept, and
        what follows the block runs. (The collector is its own context manager: no
        generator per block, as a load enters thousands.)"""
        return self

    def __enter__(self) -> "ErrorCollector":
        return self

    def __exit__(self, kind, error, _tb) -> bool:
        if kind is not None and issubclass(kind, WorkflowError):
            self.add(error)
            return True
        return False

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_any(self) -> None:
        """Raise what was gathered: the one error as it is, several as ``WorkflowErrors``
        in the order of the files (as first read), then of lines and columns."""
        if not self.errors:
            return
        if len(self.errors) == 1:
            raise self.errors[0]
        order: dict[str, int] = {}
        for e in self.errors:
            if e.location is not None:
                order.setdefault(e.location.path, len(order))

        def key(e: WorkflowError) -> tuple[int, int, int]:
            loc = e.location
            return (order[loc.path], loc.line, loc.col) if loc is not None else (-1, 0, 0)
        raise WorkflowErrors(sorted(self.errors, key=key))


class UsageError(GristmillError):
    """Bad command-line use: an unknown target, a bad option value."""
