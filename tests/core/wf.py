"""Build workflows in code for core tests (no loader involved)."""

from __future__ import annotations

from pathlib import Path

from gristmill.core.errors import Location
from gristmill.core.workflow import Resources, Task, Workflow


def task(name: str, cmd: str | list[str] = "", inputs=(), outputs=(), after=(), phony=False,
         cpu: float = 1, mem: int = 0, gpu: int = 0, pools=(), retries=0, timeout=None,
         env=(), root: Path | None = None, **kw) -> Task:
    cmds = tuple([cmd] if isinstance(cmd, str) and cmd else cmd or ())
    return Task(name=name, commands=cmds, inputs=tuple(inputs), outputs=tuple(outputs),
                after=tuple(after), phony=phony,
                resources=Resources(cpu=cpu, mem=mem, gpu=gpu, pools=tuple(pools)),
                retries=retries, timeout=timeout, env=tuple(env),
                cwd=str(root) if root else ".", group=kw.pop("group", name),
                location=Location("gristmill.toml", 1, 1), silent=kw.pop("silent", True), **kw)


def workflow(root: Path, *tasks: Task, default=None, pools=None) -> Workflow:
    fixed = tuple(t if t.cwd != "." else _with_cwd(t, root) for t in tasks)
    return Workflow(name=root.name, path=root / "gristmill.toml", root=root,
                    tasks={t.name: t for t in fixed},
                    default=tuple(default) if default else tuple(t.name for t in fixed),
                    pools=pools or {})


def _with_cwd(t: Task, root: Path) -> Task:
    from dataclasses import replace
    return replace(t, cwd=str(root))


def run_file(folder: Path, text: str, targets=(), **opts):
    """Write ``text`` (dedented) as ``folder``/gristmill.toml, load it, run it with
    ``--keep-going``: (the RunResult, {task: its last TaskFinished}, {task: its lines})."""
    import textwrap
    from gristmill.core.decide.capacity import Capacity
    from gristmill.core.events import EventBus, OutputLine, TaskFinished
    from gristmill.core.load.loader import load_workflow
    from gristmill.core.run.engine import Engine, RunOptions
    (folder / "gristmill.toml").write_text(textwrap.dedent(text).lstrip("\n"))
    wf = load_workflow(folder / "gristmill.toml")
    events: list = []
    bus = EventBus()
    bus.subscribe(events.append)
    opts.setdefault("keep_going", True)
    opts.setdefault("capacity", Capacity(cpu=4, mem=8 * 10**9))
    result = Engine(wf, bus=bus, options=RunOptions(**opts)).run(list(targets))
    finished = {e.task: e for e in events if isinstance(e, TaskFinished) and not e.will_retry}
    output: dict[str, list[str]] = {}
    for e in events:
        if isinstance(e, OutputLine):
            output.setdefault(e.task, []).append(e.text)
    return result, finished, output
class Recorder:
    """A bus subscriber that keeps every event."""

    def __init__(self):
        self.events = []

    def __call__(self, ev):
        self.events.append(ev)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    def finished(self, name):
        from gristmill.core.events import TaskFinished
        return [e for e in self.of(TaskFinished) if e.task == name]
