"""Why a task will run, or will not: every decision carries its reasons."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ReasonKind(enum.Enum):
    MISSING_OUTPUT = "missing-output"
    INPUT_NEWER = "input-newer"
    DEPENDENCY_RUNS = "dependency-runs"
    DEFINITION_CHANGED = "definition-changed"
    LAST_RUN_FAILED = "last-run-failed"
    NOT_TRUSTED = "not-trusted"          # its last attempt did not succeed: outputs untrusted
    PHONY = "phony"
    FORCED = "forced"
    NO_OUTPUTS = "no-outputs"
    UP_TO_DATE = "up-to-date"
    UPSTREAM_FAILED = "upstream-failed"
    CANCELLED = "cancelled"
    RUN_CANCELLED = "run-cancelled"      # it was running when the whole run was cancelled
    RETRY = "retry"
    MEMORY = "memory"                    # it starts with the mem a retry found to work
    WAITING = "waiting"                  # ready, not started: what it waits for


@dataclass(frozen=True, slots=True)
class Reason:
    kind: ReasonKind
    message: str          # plain words, with the paths and times involved

    def __str__(self) -> str:
        return self.message
