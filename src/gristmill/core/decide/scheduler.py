"""Which ready tasks to start now: a pure function of (ready queue, free capacity).

The queue is kept in priority order: highest first (the longest remaining path, weighted by durations from
history), then declaration order; a task that does not fit is passed over so
smaller ones can fill the gap (backfilling). No I/O; tested alone.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from .capacity import FreeCapacity
from .graph import TaskGraph
from ..workflow import Task

DEFAULT_DURATION = 1.0   # seconds, for a task history knows nothing about


def critical_path(graph: TaskGraph, names: Iterable[str],
                  durations: Mapping[str, float] | None = None) -> dict[str, float]:
    """For each task, its duration plus the longest chain of dependants after it."""
    members = set(names)
    duration = durations.get if durations else None
    below = graph.dependants_of()
    prio: dict[str, float] = {}
    find = prio.get
    order = graph.order
    for name in reversed(order) if members.issuperset(order) else \
            [n for n in reversed(order) if n in members]:
        tail = 0.0
        for d in below[name]:
            p = find(d)
            if p is not None and p > tail:
                tail = p
        prio[name] = (DEFAULT_DURATION if duration is None else
                      duration(name, DEFAULT_DURATION)) + tail
    return prio


def by_priority(tasks: Iterable[Task], priority: Mapping[str, float]) -> list[Task]:
    """Highest priority first; ties keep the given order."""
    return sorted(tasks, key=lambda t: -priority.get(t.name, 0.0))


def schedule(ready: Sequence[Task], free: FreeCapacity) -> list[int]:
    """Indices into ``ready`` (already in priority order) of the tasks to start now.

    Walks the queue once; a task that does not fit is passed over so smaller ones
    behind it can fill the gap. Reserves nothing: the caller takes the capacity.
    """
    cpu, mem, jobs = free.cpu, free.mem, free.jobs
    gpus = len(free.gpus)
    pools = dict(free.pools)
    chosen: list[int] = []
    misfits: set = set()       # resource shapes already found not to fit this time
    for i, t in enumerate(ready):
        if jobs < 1:
            break
        r = t.resources
        if r in misfits:
            continue
        if (r.cpu > cpu + 1e-9 or r.mem > mem or r.gpu > gpus
                or any(amount > pools.get(name, 0) for name, amount in r.pools)):
            misfits.add(r)
            continue
        cpu -= r.cpu
        mem -= r.mem
        gpus -= r.gpu
        jobs -= 1
        for name, amount in r.pools:
            pools[name] -= amount
        chosen.append(i)
    return chosen
