"""Synthetic workflows and events for model tests (no engine, no files needed)."""

from __future__ import annotations

from pathlib import Path

from gristmill.core.workflow import Resources, Task, Workflow


def chain_workflow(root: Path, n: int = 5, fanout: int = 0) -> Workflow:
    """t0 -> t1 -> ... ; optionally a fan-out 'leaf[i]' of ``fanout`` instances reading the last task."""
    tasks: dict[str, Task] = {}
    prev = None
    for i in range(n):
        name = f"t{i}"
        tasks[name] = Task(name=name, commands=(f"echo {i} > {name}.out",),
                           inputs=(f"{prev}.out",) if prev else (), outputs=(f"{name}.out",),
                           resources=Resources(cpu=1, mem=1000 * i), group=name, cwd=str(root))
        prev = name
    for i in range(fanout):
        name = f"leaf[items/{i}.txt]"
        tasks[name] = Task(name=name, commands=("true",), inputs=(f"{prev}.out",) if prev else (),
                           outputs=(f"leaf/{i}.out",), group="leaf", item=f"items/{i}.txt", cwd=str(root))
    return Workflow(name="chain", path=root / "gristmill.toml", root=root, tasks=tasks,
                    default=tuple(tasks))
