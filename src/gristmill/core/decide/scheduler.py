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


def make_order(graph: TaskGraph, targets: Sequence[str], names: Iterable[str]) -> dict[str, float]:
    """Priorities that start ``names`` in the order a serial GNU make runs them.

    make walks each goal in turn, left to right, and each target's prerequisites in
    the order written (normal ones, then order-only), depth first: a target's recipe
    runs after those of all its prerequisites. The first task of that walk gets the
    highest priority. Hand-written Makefiles that are not parallel-safe (``all: gen
    use``, where ``use`` reads what ``gen`` writes) build right in this order.
    """
    members = set(names)
    deps = graph.dependencies_of()
    seen: set[str] = set()
    walk: list[str] = []
    for goal in targets:
        if goal in seen:
            continue
        seen.add(goal)
        stack = [(goal, iter(deps[goal]))]
        while stack:
            name, pending = stack[-1]
            for d in pending:
                if d not in seen:
                    seen.add(d)
                    stack.append((d, iter(deps[d])))
                    break
            else:
                stack.pop()
                if name in members:
                    walk.append(name)
    top = float(len(walk))
    return {name: top - i for i, name in enumerate(walk)}


def by_priority(tasks: Iterable[Task], priority: Mapping[str, float]) -> list[Task]:
    """Highest priority first; ties keep the given order."""
    return sorted(tasks, key=lambda t: -priority.get(t.name, 0.0))


def schedule(ready: Sequence[Task], free: FreeCapacity) -> list[int]:
    """Indices into ``ready`` (already in priority order) of the tasks to start now.

    Walks the queue once; a task that does not fit is passed over so smaller ones
    behind it can fill the gap. Reserves nothing: the caller takes the capacity.
    """
    cpu, mem, jobs = free.cpu, free.mem, free.jobs
    pools = dict(free.pools)
    share = gpu_mem = None         # the GPU books, copied at the first task that asks
    chosen: list[int] = []
    misfits: set = set()       # resource shapes already found not to fit this time
    for i, t in enumerate(ready):
        if jobs < 1:
            break
        r = t.resources
        if r in misfits:
            continue
        if (r.cpu > cpu + 1e-9 or r.mem > mem
                or any(amount > pools.get(name, 0) for name, amount in r.pools)):
            misfits.add(r)
            continue
        if r.gpu or r.gpu_mem:
            if share is None:
                share, gpu_mem = list(free.share), list(free.gpu_mem)
            where = free.pick(r, share, gpu_mem)
            if where is None:
                misfits.add(r)
                continue
            free.book(r, where, share, gpu_mem)
        cpu -= r.cpu
        mem -= r.mem
        jobs -= 1
        for name, amount in r.pools:
            pools[name] -= amount
        chosen.append(i)
    return chosen
