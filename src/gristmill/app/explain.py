"""Explain a task in plain words: whether it will run and why (the core's reasons)."""

from __future__ import annotations

import html
from typing import Mapping

from gristmill.core.events import TaskState
from gristmill.core.gpu import describe_devices
from gristmill.core.reasons import ReasonKind
from gristmill.core.sizes import format_size
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.staleness import Decision
from gristmill.core.workflow import Workflow

from .runstate import TaskRun

SHOW = 12
_RUN_KINDS = (ReasonKind.WAITING, ReasonKind.RETRY, ReasonKind.MEMORY)


def _names(names: tuple[str, ...]) -> str:
    if not names:
        return "nothing"
    shown = ", ".join(names[:SHOW])
    return shown + (f" and {len(names) - SHOW} more" if len(names) > SHOW else "")


def gpu_line(run: TaskRun) -> str:
    """"GPUs: 0 GPU-5f0e… (NVIDIA H200, 141.0 GB); peak 2.1 GB, 37% busy": the devices
    the last attempt had, and what was sampled of them; "" when it had none."""
    if not run.devices:
        return ""
    text = "GPUs: " + describe_devices(run.devices)
    figures = []
    if run.gpu_peak_mem is not None:
        figures.append(f"peak {format_size(run.gpu_peak_mem)}")
    if run.gpu_util is not None:
        figures.append(f"{run.gpu_util:.0f}% busy")
    return text + ("; " + ", ".join(figures) if figures else "")
_NEXT_TIME = "the next time it is a target or a target needs it"


def _in_run_answer(run: TaskRun, going: bool) -> str | None:
    """"Will it run?" told by the run shown, for a task in it, when that run is newer
    than the scan (the scan's answer was given before the task ran)."""
    state = run.state
    if state is TaskState.WAITING:
        return "Yes: it is in the run going on, waiting for what it needs." if going else None
    if state is TaskState.READY:
        return "Yes: it is in the run going on, ready to start." if going else None
    if state is TaskState.RUNNING:
        return f"It is running now (attempt {run.attempt or 1})."
    if state is TaskState.DONE:
        then = (" Whether anything changed since is checked when the run ends." if going
                else "")
        return "No: it ran in this run and succeeded." + then
    if state is TaskState.FAILED:
        return f"Yes: it failed in this run, so it runs again {_NEXT_TIME}."
    if state is TaskState.CANCELLED:
        return f"Yes: it was cancelled in this run, so it runs {_NEXT_TIME}."
    if state is TaskState.SKIPPED:
        return f"Yes: it was skipped in this run, so it runs {_NEXT_TIME}."
    if state is TaskState.UP_TO_DATE:
        return "No: this run found it up to date."
    return None


def explain(workflow: Workflow, graph: TaskGraph, decisions: Mapping[str, Decision],
            name: str, run: TaskRun | None = None, *, newer: bool = False,
            going: bool = False, plan: bool = False) -> list[tuple[str, str]]:
    """(heading, text) pairs for one task, in the order a person reads them.

    ``newer``: the run shown (``run`` is the task's part in it) started after the scan
    that made ``decisions``, so what the run says of the task is the later news;
    ``going``: that run is still going; ``plan``: that run is a plan (a dry run)."""
    task = workflow.tasks[name]
    out: list[tuple[str, str]] = []
    d = decisions.get(name)
    answer = _in_run_answer(run, going) if newer and run is not None and run.state else None
    if answer is not None:
        out.append(("Will it run?", answer))
    elif d is None:
        out.append(("Will it run?", "Not known yet: the workflow has not been scanned."))
    elif d.stale:
        out.append(("Will it run?", f"Yes, {_NEXT_TIME}."))
    else:
        out.append(("Will it run?", "No: it is up to date."))
    if d is not None:
        heading = "Why, as the run started" if answer is not None else "Why"
        out.append((heading, "\n".join(f"• {r.message}" for r in d.reasons) or "• no reason recorded"))
    if run is not None and run.state is not None and plan:
        out.append(("In the plan (dry run)", "would run" if run.state is TaskState.WAITING
                    else run.state.words))
    elif run is not None and run.state is not None:
        state = run.state.words
        if run.state in (TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED) and run.exit_code is not None:
            state += f" (exit code {run.exit_code}, attempt {run.attempt})"
        text = state
        told = {state}
        if run.reasons and run.state in (TaskState.SKIPPED, TaskState.UP_TO_DATE, TaskState.FAILED,
                                         TaskState.CANCELLED):
            text += "\n" + "\n".join(f"• {r.message}" for r in run.reasons)
            told.update(r.message for r in run.reasons)
        elif run.reasons and run.state in (TaskState.READY, TaskState.WAITING, TaskState.DONE):
            # what it waits for (ready, not started), a retry's backoff, and how an
            # out-of-memory retry went: the reasons the run added to the scan's
            extra = [r for r in run.reasons if r.kind in _RUN_KINDS]
            if extra:
                text += "\n" + "\n".join(f"• {r.message}" for r in extra)
                told.update(r.message for r in extra)
        if run.message and run.message not in told:
            text += f"\n{run.message}"
        gpus = gpu_line(run)
        if gpus:
            text += f"\n{gpus}"
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
