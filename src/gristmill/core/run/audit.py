"""The dependency audit in a run: which tasks are traced, and their findings published.

The engine asks ``audit_strace`` before a run starts (strace missing: exit 2 before
anything runs), gives each audited attempt a trace prefix (``RunAudit.prefix``: beside
its log), the executor runs its commands under strace (``trace.trace_argv``), and when
the attempt ends ``RunAudit.finished`` reads the traces back, removes them, has
``decide.audit.Auditor`` judge them and publishes ``TaskAudited``.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Mapping

from ..decide.audit import Auditor
from ..decide.staleness import Decision
from ..events import TaskAudited
from ..workflow import Task, Workflow
from .trace import collect, need_strace

SUFFIX = ".strace"


def audited(task: Task, options) -> bool:
    return bool(task.commands) and (task.audit or bool(getattr(options, "audit", False)))


def audit_strace(workflow: Workflow, decisions: Mapping[str, Decision], options) -> str | None:
    """The strace program when a task that will run is audited; None when none is.
    Raises UsageError (exit 2) naming strace and how to install it when it is missing."""
    if getattr(options, "dry_run", False):
        return None
    tasks = workflow.tasks
    if not any(d.stale and audited(tasks[n], options) for n, d in decisions.items()):
        return None
    return need_strace(os.environ.get("PATH"))


class RunAudit:
    """The audit of one run's attempts (engine thread)."""

    def __init__(self, engine, run_id: str):
        self.engine = engine
        self.run_id = run_id
        self.options = engine.options
        self.auditor = Auditor(engine.workflow, engine.graph)

    def prefix(self, task: Task, log_path: str) -> str:
        """The trace files' prefix for an attempt, or "" when it is not audited: beside
        its log, or in the temporary folder when the run's log folder could not be made
        (strace must be able to write it, or the task would fail for it)."""
        if not audited(task, self.options):
            return ""
        if not os.path.isdir(os.path.dirname(log_path)):
            name = f"gristmill-{self.run_id}-{os.path.basename(log_path)}"
            return os.path.join(tempfile.gettempdir(), name) + SUFFIX
        return log_path + SUFFIX

    def finished(self, task: Task, attempt: int, prefix: str, ev) -> None:
        accesses = collect(prefix, task.cwd)
        if ev.killed:
            return               # cancelled or timed out: what it did is not the whole story
        self.judge(task, attempt, prefix, accesses, ev.exit_code == 0)

    def judge(self, task: Task, attempt: int, prefix: str, accesses, ok: bool) -> None:
        """The findings of an attempt's accesses (None: not traced), published."""
        log_path = prefix[:-len(SUFFIX)]     # (its log, when the trace is beside it)
        if accesses is None:
            findings, traced = (), False
        else:
            findings, traced = self.auditor.audit(task, accesses, complete=ok,
                                                  ignore=(log_path,)), True
        self.engine.bus.publish(TaskAudited(self.run_id, time.time(), task.name, attempt,
                                            findings, traced))
