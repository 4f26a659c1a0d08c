"""What a task shows: its state in the run, or, outside the run, what the staleness scan says.

A task in the run being shown has a ``TaskState`` (waiting … up to date) that
only the run's events change. A task outside it (before any run, or a task the
run did not include, such as a phony ``clean``) has no run state: it shows an
``IdleState``, the scan's verdict, drawn greyed. Pure Python (no Qt).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from gristmill.core.events import TaskState


class IdleState(enum.Enum):
    """The scan's verdict for a task that is not in the run."""

    STALE = "idle:will-run"          # it would run if asked
    FRESH = "idle:up-to-date"        # its outputs are up to date

    @property
    def title(self) -> str:
        return IDLE_TITLES[self]


IDLE_TITLES = {IdleState.STALE: "Will run", IdleState.FRESH: "Up to date"}

ShownState = TaskState | IdleState

RUN_TITLES = {
    TaskState.WAITING: "Waiting",
    TaskState.READY: "Ready",
    TaskState.RUNNING: "Running",
    TaskState.DONE: "Done",
    TaskState.FAILED: "Failed",
    TaskState.SKIPPED: "Skipped",
    TaskState.UP_TO_DATE: "Up to date",
    TaskState.CANCELLED: "Cancelled",
}
RUN_STATES = tuple(RUN_TITLES)         # the board's columns, in order
IDLE_STATES = tuple(IDLE_TITLES)


def title(state: ShownState) -> str:
    return RUN_TITLES[state] if isinstance(state, TaskState) else IDLE_TITLES[state]


def is_idle(state: ShownState | None) -> bool:
    return isinstance(state, IdleState)


class IdleCounts(NamedTuple):
    """The tasks outside the run shown, by what the scan says of them."""

    would_run: int      # stale, and the default targets need it: F5 would run it
    up_to_date: int
    if_asked: int       # stale, but no default target needs it (a phony clean, install)

    @property
    def total(self) -> int:
        return self.would_run + self.up_to_date + self.if_asked

    def parts(self, dashed: bool = False) -> list[str]:
        """Their counts in words, the empty ones left out."""
        out = []
        if self.would_run:
            out.append(f"{self.would_run} would run" + (" (dashed)" if dashed else ""))
        if self.up_to_date:
            out.append(f"{self.up_to_date} up to date")
        if self.if_asked:
            out.append(f"{self.if_asked} only when asked for" + (" (dashed)" if dashed else ""))
        return out
