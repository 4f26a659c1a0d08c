"""The scan that decides which tasks are stale, and says why in plain words.

Make's rules: an output is missing; an input is newer than the oldest output;
a task it reads from will run. Plus: phony, forced, and (when history exists)
"its definition changed since it last succeeded". History only adds facts: a
task with up-to-date outputs and no history is up to date, as in make.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol

from .graph import TaskGraph
from .reasons import Reason, ReasonKind
from .workflow import Task, Workflow

_SHOW = 3   # how many paths to name in one reason before "and N more"


@dataclass(frozen=True, slots=True)
class Decision:
    stale: bool
    reasons: tuple[Reason, ...]

    @property
    def only_dependency(self) -> bool:
        """Stale only because something it reads will run (recheck after it does)."""
        return self.stale and all(r.kind is ReasonKind.DEPENDENCY_RUNS for r in self.reasons)


class TaskRecordLike(Protocol):
    definition_hash: str


def format_mtime(ns: int, now: float | None = None) -> str:
    """``10:31:02`` today, ``2026-11-20 10:31:02`` another day."""
    t = ns / 1e9
    now = time.time() if now is None else now
    lt, ln = time.localtime(t), time.localtime(now)
    if (lt.tm_year, lt.tm_yday) == (ln.tm_year, ln.tm_yday):
        return time.strftime("%H:%M:%S", lt)
    return time.strftime("%Y-%m-%d %H:%M:%S", lt)


class FileStamps:
    """``mtime_ns`` of paths under a root, stat'ed once each; None when missing."""

    def __init__(self, root: os.PathLike | str):
        self.root = os.fspath(root)
        self._cache: dict[str, int | None] = {}

    def get(self, rel: str) -> int | None:
        try:
            return self._cache[rel]
        except KeyError:
            pass
        try:
            value: int | None = os.stat(os.path.join(self.root, rel)).st_mtime_ns
        except OSError:
            value = None
        self._cache[rel] = value
        return value

    def forget(self, paths: Iterable[str]) -> None:
        for p in paths:
            self._cache.pop(p, None)


def _more(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


class StalenessScan:
    def __init__(self, workflow: Workflow, graph: TaskGraph | None = None,
                 history: object | None = None,
                 records: Mapping[str, TaskRecordLike] | None = None):
        self.workflow = workflow
        self.graph = graph or TaskGraph.of(workflow)
        if records is None and history is not None:
            records = history.task_records(str(workflow.path))  # type: ignore[attr-defined]
        self.records = records
        self.stamps = FileStamps(workflow.root)

    def scan(self, targets: Iterable[str] | None = None, force: Iterable[str] = (),
             force_all: bool = False) -> dict[str, Decision]:
        """Decisions for the targets and everything they need, in dependency order."""
        names = self.graph.closure(targets if targets is not None else self.workflow.default)
        forced = set(force)
        will_run: set[str] = set()
        out: dict[str, Decision] = {}
        for name in self.graph.order:
            if name not in names:
                continue
            d = self.decide(self.workflow.tasks[name], will_run,
                            forced=force_all or name in forced)
            if d.stale:
                will_run.add(name)
            out[name] = d
        return out

    def decide(self, task: Task, will_run: set[str], forced: bool = False) -> Decision:
        reasons: list[Reason] = []
        if forced:
            reasons.append(Reason(ReasonKind.FORCED, "forced by the user"))
        if task.phony:
            reasons.append(Reason(ReasonKind.PHONY, "it is phony: it runs whenever asked"))
        elif not task.outputs:
            reasons.append(Reason(ReasonKind.NO_OUTPUTS, "it declares no outputs, so it always runs"))
        reasons.extend(self.file_reasons(task))
        producer = self.graph.producer
        running = [p for p in dict.fromkeys(producer.get(i) for i in task.inputs)
                   if p is not None and p in will_run and p != task.name]
        if running:
            word = "reads the output of" if len(running) == 1 else "reads outputs of"
            reasons.append(Reason(ReasonKind.DEPENDENCY_RUNS,
                                  f"it {word} {_more(running)}, which will run"))
        if not reasons and self.records is not None and task.commands:
            rec = self.records.get(task.name)
            if rec is not None and rec.definition_hash != task.definition_hash:
                reasons.append(Reason(ReasonKind.DEFINITION_CHANGED,
                                      "its command or definition changed since it last succeeded"))
        if reasons:
            return Decision(True, tuple(reasons))
        return Decision(False, (self._up_to_date_reason(task),))

    def file_reasons(self, task: Task) -> list[Reason]:
        """Make's timestamp rules for one task (missing outputs, newer inputs)."""
        if task.phony or not task.outputs:
            return []
        stamps = self.stamps
        missing = [o for o in task.outputs if stamps.get(o) is None]
        if missing:
            noun = "output" if len(missing) == 1 else "outputs"
            verb = "is" if len(missing) == 1 else "are"
            return [Reason(ReasonKind.MISSING_OUTPUT, f"{noun} {_more(missing)} {verb} missing")]
        oldest_out = min(task.outputs, key=lambda o: stamps.get(o) or 0)
        oldest = stamps.get(oldest_out) or 0
        newer: list[str] = []
        gone: list[str] = []
        for i in task.inputs:
            m = stamps.get(i)
            if m is None:
                if i not in self.graph.producer or self.workflow.tasks[self.graph.producer[i]].phony:
                    gone.append(i)
            elif m > oldest:
                newer.append(i)
        reasons = []
        if newer:
            first = newer[0]
            msg = (f"input {first} ({format_mtime(stamps.get(first) or 0)}) is newer than "
                   f"output {oldest_out} ({format_mtime(oldest)})")
            if len(newer) > 1:
                msg += f", and so {'is' if len(newer) == 2 else 'are'} {_more(newer[1:])}"
            reasons.append(Reason(ReasonKind.INPUT_NEWER, msg))
        if gone:
            reasons.append(Reason(ReasonKind.INPUT_NEWER,
                                  f"input {_more(gone)} does not exist as a file"))
        return reasons

    def recheck(self, task: Task) -> Decision:
        """After its dependencies ran: still stale by timestamps? (make and ninja's restat)."""
        self.stamps.forget(task.inputs)
        self.stamps.forget(task.outputs)
        reasons = self.file_reasons(task)
        if reasons:
            return Decision(True, tuple(reasons))
        return Decision(False, (Reason(ReasonKind.UP_TO_DATE,
                                       "its inputs did not change when their tasks ran"),))

    def _up_to_date_reason(self, task: Task) -> Reason:
        if not task.inputs:
            return Reason(ReasonKind.UP_TO_DATE, "its outputs exist and it has no inputs")
        oldest_out = min(task.outputs, key=lambda o: self.stamps.get(o) or 0)
        return Reason(ReasonKind.UP_TO_DATE,
                      f"every input is older than output {oldest_out} "
                      f"({format_mtime(self.stamps.get(oldest_out) or 0)})")
