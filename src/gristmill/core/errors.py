"""Errors a user sees: always ``path:line:col: message``, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Location:
    """A place in a file a user wrote. Lines and columns count from 1."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
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


class UsageError(GristmillError):
    """Bad command-line use: an unknown target, a bad option value."""
