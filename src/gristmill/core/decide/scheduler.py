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


# -- why a ready task waits ---------------------------------------------------------------

#: How many tasks at the head of the ready queue are told why they wait: the next ones
#: to start. Told for every ready task, each finish of a busy run would change the words
#: of thousands (the tasks holding the CPUs change), an event each.
EXPLAIN_WAITING = 8


def _held_by(names: list[str]) -> str:
    if not names:
        return ""
    if len(names) <= 2:
        return ", held by " + " and ".join(names)
    return f", held by {names[0]}, {names[1]} and {len(names) - 2} more"


def why_waiting(task: Task, free: FreeCapacity,
                running: Sequence[Task] = (), first: Sequence[Task] = ()) -> str:
    """Why ``task``, ready, does not start now, in words naming what it waits for and
    the running tasks that hold it; "" when it would fit (the caller knows why else).
    ``free``: the books after this turn's starts; ``running``: what holds capacity;
    ``first``: the tasks of higher priority that started just now, ahead of it."""
    from ..sizes import format_size
    r = task.resources
    total = free.total
    if first and not r.wants_gpu and free.jobs + len(first) >= 1 and \
            r.cpu <= free.cpu + sum(t.resources.cpu for t in first) + 1e-9 and \
            r.mem <= free.mem + sum(t.resources.mem for t in first) and \
            all(amount <= free.pools.get(name, 0) + sum(t.resources.pool(name) for t in first)
                for name, amount in r.pools):
        names = [t.name for t in first]
        return (f"higher-priority task{'s' if len(names) > 1 else ''} started first"
                f"{_held_by(names).replace(', held by', ':')}")
    if free.jobs < 1:
        n = total.jobs
        return (f"waiting for a free job: -j {n} lets {n} task{'s' if n != 1 else ''} "
                "run at once")
    for name, amount in r.pools:
        have = free.pools.get(name, 0)
        if amount > have:
            size = total.pools.get(name, 0)
            holders = [t.name for t in running if t.resources.pool(name)]
            return (f"pool {name} is at its limit ({size} at once){_held_by(holders)}")
    if r.mem > free.mem:
        holders = [t.name for t in sorted(running, key=lambda t: -t.resources.mem)
                   if t.resources.mem]
        return (f"waiting for {format_size(r.mem)} of memory ({format_size(max(free.mem, 0))} "
                f"free){_held_by(holders)}")
    if r.cpu > free.cpu + 1e-9:
        holders = [t.name for t in running if t.resources.cpu]
        return (f"waiting for {r.cpu:g} CPU ({max(free.cpu, 0):g} of {total.cpu:g} free)"
                f"{_held_by(holders)}")
    if r.wants_gpu and free.pick(r) is None:
        holders = [t.name for t in running if t.resources.wants_gpu]
        if r.gpu >= 1:
            what = f"{int(r.gpu)} whole GPU{'s' if r.gpu > 1 else ''}"
        elif r.gpu:
            what = f"{r.gpu:g} of a GPU"
        else:
            what = "a GPU"
        if r.gpu_mem:
            what += f" with {format_size(r.gpu_mem)} of its memory free"
        return f"waiting for {what}{_held_by(holders)}"
    return ""
