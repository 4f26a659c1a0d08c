"""Explain a task in plain words: whether it will run and why (the core's reasons)."""

from __future__ import annotations

import html
from typing import Mapping

from gristmill.core.events import TaskState
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.staleness import Decision
from gristmill.core.workflow import Workflow

from .runstate import TaskRun

SHOW = 12


def _names(names: tuple[str, ...]) -> str:
    if not names:
        return "nothing"
    shown = ", ".join(names[:SHOW])
    return shown + (f" and {len(names) - SHOW} more" if len(names) > SHOW else "")


def explain(workflow: Workflow, graph: TaskGraph, decisions: Mapping[str, Decision],
            name: str, run: TaskRun | None = None) -> list[tuple[str, str]]:
    """(heading, text) pairs for one task, in the order a person reads them."""
    task = workflow.tasks[name]
    out: list[tuple[str, str]] = []
    d = decisions.get(name)
    if d is None:
        out.append(("Will it run?", "Not known yet: the workflow has not been scanned."))
    elif d.stale:
        out.append(("Will it run?", "Yes, the next time it is a target or a target needs it."))
    else:
        out.append(("Will it run?", "No: it is up to date."))
    if d is not None:
        out.append(("Why", "\n".join(f"• {r.message}" for r in d.reasons) or "• no reason recorded"))
    if run is not None and run.state is not None:
        state = run.state.value
        if run.state in (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED) and run.exit_code is not None:
            state += f" (exit code {run.exit_code}, attempt {run.attempt})"
        text = state
        if run.reasons and run.state in (TaskState.SKIPPED, TaskState.UP_TO_DATE, TaskState.FAILED,
                                         TaskState.CANCELLED):
            text += "\n" + "\n".join(f"• {r.message}" for r in run.reasons)
        if run.message:
            text += f"\n{run.message}"
        out.append(("In the current run", text))
    if task.description:
        out.append(("What it does", task.description))
    out.append(("Needs", _names(graph.deps(name))))
    out.append(("Needed by", _names(graph.dependants(name))))
    if task.commands:
        out.append(("Commands", "\n".join(f"$ {c}" for c in task.commands)))
    if task.inputs:
        out.append(("Inputs", _names(task.inputs)))
    if task.outputs:
        out.append(("Outputs", _names(task.outputs)))
    out.append(("Isolation", task.isolation.describe()))
    if task.location is not None:
        out.append(("Declared at", str(task.location)))
    return out


def explain_text(sections: list[tuple[str, str]]) -> str:
    return "\n\n".join(f"{h}\n{t}" for h, t in sections)


def explain_html(name: str, sections: list[tuple[str, str]]) -> str:
    parts = [f"<h3>{html.escape(name)}</h3>"]
    for heading, text in sections:
        body = html.escape(text).replace("\n", "<br>")
        if heading == "Commands":
            body = f"<code>{body}</code>"
        parts.append(f"<p><b>{html.escape(heading)}</b><br>{body}</p>")
    return "".join(parts)
