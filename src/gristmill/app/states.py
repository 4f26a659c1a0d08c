"""What a task shows: its state in the run, or, outside the run, what the staleness scan says.

A task in the run being shown has a ``TaskState`` (waiting … up to date) that
only the run's events change. A task outside it (before any run, or a task the
run did not include, such as a phony ``clean``) has no run state: it shows an
``IdleState``, the scan's verdict, drawn greyed. Pure Python (no Qt).
"""

from __future__ import annotations

import enum

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
