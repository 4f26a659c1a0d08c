"""The capacity planner: how long the stale tasks would take on a given machine.

It runs the engine's own decisions over simulated time: the same ``Plan`` (what is
ready), the same ``critical_path`` order and the same ``schedule`` (what fits now,
backfilling), the same ``FreeCapacity`` books. Only the processes are replaced by
their durations: each task's median of its recent successes from history; for a
task never run, the median of its fan-out siblings that did run; else
``DEFAULT_DURATION``, and the prediction says which durations were guesses.
No I/O; tested alone, and against real runs.
"""

from __future__ import annotations

import heapq
import re
import statistics
from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping, Sequence

from ..errors import UsageError
from ..sizes import format_duration, format_size, parse_size
from ..workflow import Workflow
from .capacity import Capacity, FreeCapacity
from .graph import TaskGraph
from .plan import Plan
from .scheduler import DEFAULT_DURATION, EXPLAIN_WAITING, critical_path, schedule, \
    why_waiting


@dataclass(frozen=True)
class Durations:
    """Seconds per task, and where each came from."""

    seconds: Mapping[str, float]
    from_history: frozenset[str] = frozenset()
    from_siblings: frozenset[str] = frozenset()
    guessed: frozenset[str] = frozenset()

    def describe(self) -> str:
        parts = [f"{len(self.from_history)} from history"]
        if self.from_siblings:
            parts.append(f"{len(self.from_siblings)} estimated from their fan-out siblings")
        if self.guessed:
            parts.append(f"{len(self.guessed)} guessed at {format_duration(DEFAULT_DURATION)} "
                         "(never run)")
        return ", ".join(parts)


def estimate_durations(workflow: Workflow, names: Iterable[str],
                       known: Mapping[str, float]) -> Durations:
    """Durations for ``names`` from ``known`` (task -> seconds, from history)."""
    tasks = workflow.tasks
    by_group: dict[str, list[float]] = {}
    for name, secs in known.items():
        t = tasks.get(name)
        if t is not None and t.group:
            by_group.setdefault(t.group, []).append(secs)
    seconds: dict[str, float] = {}
    hist, sib, guess = set(), set(), set()
    for name in names:
        if name in known:
            seconds[name] = known[name]
            hist.add(name)
            continue
        t = tasks[name]
        if not t.commands:
            seconds[name] = 0.0      # nothing to run: a goal that only gathers others
            hist.add(name)
            continue
        siblings = by_group.get(t.group) if t.group and t.group != t.name else None
        if siblings:
            seconds[name] = statistics.median(siblings)
            sib.add(name)
        else:
            seconds[name] = DEFAULT_DURATION
            guess.add(name)
    return Durations(seconds, frozenset(hist), frozenset(sib), frozenset(guess))


@dataclass(frozen=True)
class Slice:
    task: str
    start: float
    end: float
    slot: int
    waited: float = 0.0     # seconds it was ready before it started
    why: str = ""           # what it waited for first (``scheduler.why_waiting``)


@dataclass(frozen=True)
class Prediction:
    capacity: Capacity
    label: str                              # "cpu=8" as the user wrote it
    makespan: float
    utilisation: Mapping[str, float]        # "cpu", "mem", "gpu" -> 0..1 of the makespan
    critical_path: tuple[str, ...]
    critical_length: float
    schedule: tuple[Slice, ...] = field(default=(), repr=False)
    bottleneck: str = ""

    def as_json(self) -> dict[str, object]:
        return {"on": self.label, "cpu": self.capacity.cpu, "mem": self.capacity.mem,
                "gpu": self.capacity.gpu, "jobs": self.capacity.jobs,
                "makespan": round(self.makespan, 3),
                "utilisation": {k: round(v, 3) for k, v in self.utilisation.items()},
                "critical_path": list(self.critical_path),
                "critical_length": round(self.critical_length, 3),
                "bottleneck": self.bottleneck,
                "schedule": [{"task": s.task, "start": round(s.start, 3), "end": round(s.end, 3),
                              "slot": s.slot,
                              **({"waited": round(s.waited, 3), "why": s.why} if s.why else {})}
                             for s in self.schedule]}


def simulate(workflow: Workflow, graph: TaskGraph, names: Sequence[str],
             durations: Mapping[str, float], capacity: Capacity, label: str = "") -> Prediction:
    """The engine's loop over simulated time: ``names`` (the stale tasks) on ``capacity``,
    in the critical-path order of a parallel run."""
    tasks = workflow.tasks
    plan = Plan(graph, names)
    priority = critical_path(graph, names, durations)
    free = FreeCapacity(capacity)
    ready: list = []                       # Tasks, highest priority first
    running: list[tuple[float, int, str, tuple, int]] = []   # (end, seq, name, gpus, slot)
    now = 0.0
    seq = 0
    used = {"cpu": 0.0, "mem": 0.0, "gpu": 0.0}
    slices: list[Slice] = []
    ready_at: dict[str, float] = {}
    why: dict[str, str] = {}               # what each task waited for first

    def take_ready() -> None:
        new = [tasks[n] for n in plan.take_ready()]
        for t in new:
            ready_at[t.name] = now
        if new:
            ready.extend(new)
            ready.sort(key=lambda t: -priority.get(t.name, 0.0))

    def start_ready() -> None:
        nonlocal seq
        chosen = schedule(ready, free) if ready else []
        for i in reversed(chosen):
            t = ready.pop(i)
            gpus, slot = free.take(t.resources)
            d = durations.get(t.name, DEFAULT_DURATION)
            heapq.heappush(running, (now + d, seq, t.name, gpus, slot))
            seq += 1
            r = t.resources
            used["cpu"] += r.cpu * d
            used["mem"] += r.mem * d
            used["gpu"] += r.gpu * d
            slices.append(Slice(t.name, now, now + d, slot, now - ready_at.get(t.name, now),
                                why.pop(t.name, "")))
        if ready:
            holders = [tasks[item[2]] for item in sorted(running, key=lambda it: it[1])]
            for t in ready[:EXPLAIN_WAITING]:     # the next to start, as the engine tells
                if t.name not in why:
                    words = why_waiting(t, free, holders)
                    if words:
                        why[t.name] = words

    take_ready()
    while ready or running:
        start_ready()
        if not running:
            if ready:      # nothing fits even on an empty machine: check_fits says so first
                raise UsageError(f"task {ready[0].name!r} does not fit on {label or 'this capacity'}")
            break
        now = running[0][0]
        done = []
        # Everything that ends at the same moment frees its capacity at once, as the
        # engine's batch of exits does...
        while running and running[0][0] <= now + 1e-12:
            _, _, name, gpus, slot = heapq.heappop(running)
            free.give(tasks[name].resources, gpus, slot)
            done.append(name)
        # ...and, as the engine does, the freed slots go to tasks that were ready
        # already before the finished ones' dependants are counted ready.
        start_ready()
        for name in done:
            plan.finished(name, True)
        take_ready()
    makespan = now
    path, length = _longest_chain(graph, names, durations)
    util = {
        "cpu": used["cpu"] / (capacity.cpu * makespan) if makespan and capacity.cpu else 0.0,
        "mem": used["mem"] / (capacity.mem * makespan) if makespan and capacity.mem else 0.0,
        "gpu": used["gpu"] / (capacity.gpu * makespan) if makespan and capacity.gpu else 0.0,
    }
    slices.sort(key=lambda s: (s.start, s.slot))
    return Prediction(capacity, label, makespan, util, path, length, tuple(slices))


def _longest_chain(graph: TaskGraph, names: Sequence[str],
                   durations: Mapping[str, float]) -> tuple[tuple[str, ...], float]:
    members = set(names)
    best: dict[str, tuple[float, str | None]] = {}
    for name in graph.order:
        if name not in members:
            continue
        before = max(((best[d][0], d) for d in graph.deps(name) if d in best),
                     default=(0.0, None))
        best[name] = (before[0] + durations.get(name, DEFAULT_DURATION), before[1])
    if not best:
        return (), 0.0
    tail = max(best, key=lambda n: best[n][0])
    length = best[tail][0]
    chain = []
    node: str | None = tail
    while node is not None:
        chain.append(node)
        node = best[node][1]
    return tuple(reversed(chain)), length


def explain(predictions: Sequence[Prediction], workflow: Workflow, graph: TaskGraph,
            names: Sequence[str], durations: Mapping[str, float]) -> list[Prediction]:
    """Each prediction with its bottleneck said in words."""
    out = []
    tasks = workflow.tasks
    for p in predictions:
        out.append(replace(p, bottleneck=_bottleneck(p, tasks, workflow, graph, names, durations)))
    return out


def _bottleneck(p: Prediction, tasks, workflow: Workflow, graph: TaskGraph,
                names: Sequence[str], durations: Mapping[str, float]) -> str:
    if not p.makespan:
        return "nothing to run"
    cap = p.capacity
    crit = format_duration(p.critical_length)
    if p.makespan <= p.critical_length * 1.02:
        # The critical path alone sets the makespan: find the fewest cores that keep it.
        enough = cap.cpu
        lo = 1
        while lo < cap.cpu:
            trial = simulate(workflow, graph, names, durations, replace(cap, cpu=float(lo)))
            if trial.makespan <= p.critical_length * 1.02:
                enough = lo
                break
            lo *= 2
        more = f"more than {enough:g} core{'s' if enough != 1 else ''} buys nothing" \
            if enough < cap.cpu else \
            "more capacity buys nothing"
        return f"{more}: the critical path is {crit} ({' → '.join(_short(p.critical_path))})"
    if cap.gpu and p.utilisation.get("gpu", 0) >= max(p.utilisation.get("cpu", 0), 0.5):
        more = simulate(workflow, graph, names, durations, _with_gpus(cap, cap.gpu + 1))
        saved = 1 - more.makespan / p.makespan
        return (f"GPU-bound: {'a second GPU' if cap.gpu == 1 else 'one GPU more'} saves "
                f"{saved:.0%}" if saved > 0.01 else "GPU-bound, but one GPU more saves nothing")
    if p.utilisation.get("mem", 0) > p.utilisation.get("cpu", 0) and cap.mem:
        size = max(tasks[n].resources.mem for n in names)
        big = [n for n in names if tasks[n].resources.mem == size]
        at_once = int(cap.mem // size) if size else 0
        if size and at_once < min(len(big), cap.cpu):
            return (f"memory-bound: {len(big)} task{'s' if len(big) != 1 else ''} of "
                    f"{format_size(size)} share {format_size(cap.mem)}, at most {at_once} "
                    "at once")
        return f"memory-bound: {p.utilisation['mem']:.0%} of {format_size(cap.mem)} in use"
    if cap.jobs and p.utilisation.get("cpu", 0) < 0.9:
        return f"-j {cap.jobs} limits it: more jobs at once would shorten it"
    more = simulate(workflow, graph, names, durations, replace(cap, cpu=cap.cpu * 2))
    saved = 1 - more.makespan / p.makespan
    return (f"CPU-bound: twice the cores ({cap.cpu * 2:g}) saves {saved:.0%}; "
            f"the critical path is {crit}")


def _short(path: Sequence[str], most: int = 5) -> list[str]:
    if len(path) <= most:
        return list(path)
    return [*path[:2], "…", *path[-2:]]


# -- `--on` specifications ------------------------------------------------------------

_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")


def parse_on(spec: str, base: Capacity) -> list[tuple[str, Capacity]]:
    """``cpu=8,mem=32GB,gpu=1`` -> one capacity; a range ``cpu=1..32`` -> a sweep (the
    powers of two between, and the ends). Keys not given keep ``base``'s values."""
    sweep: tuple[str, list[int]] | None = None
    values: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq or key not in ("cpu", "mem", "gpu", "jobs"):
            raise UsageError(f"--on {spec}: expected cpu=N, mem=SIZE, gpu=N or jobs=N, "
                             f"got {part!r}")
        value = value.strip()
        m = _RANGE.match(value)
        if m and key != "mem":
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo < 1 and key != "gpu" or hi < lo:
                raise UsageError(f"--on {spec}: {part} is not a range from low to high")
            if sweep is not None:
                raise UsageError(f"--on {spec}: only one range at a time")
            steps = sorted({lo, hi, *[2 ** k for k in range(0, hi.bit_length() + 1)
                                      if lo <= 2 ** k <= hi]})
            sweep = (key, steps)
            continue
        try:
            if key == "mem":
                values[key] = parse_size(value)
            elif key == "cpu":
                values[key] = float(value)
            else:
                values[key] = int(value)
        except ValueError:
            raise UsageError(f"--on {spec}: {part} is not a number{' with a unit' if key == 'mem' else ''}") from None
        if (values[key] or 0) <= 0 and key in ("cpu", "mem", "jobs"):  # type: ignore[operator]
            raise UsageError(f"--on {spec}: {key} must be more than 0")
    gpus = values.pop("gpu", None)
    cap = replace(base, **{k: v for k, v in values.items()})  # type: ignore[arg-type]
    if gpus is not None:
        cap = _with_gpus(cap, int(gpus))  # type: ignore[arg-type]
    if sweep is None:
        return [(spec, cap)]
    key, steps = sweep
    fixed = ",".join(p for p in spec.split(",") if not p.strip().startswith(key))
    return [(f"{key}={n}" + (f",{fixed}" if fixed else ""),
             _with_gpus(cap, n) if key == "gpu" else
             replace(cap, **{key: float(n) if key == "cpu" else n})) for n in steps]


def _with_gpus(cap: Capacity, n: int) -> Capacity:
    """``cap`` with ``n`` GPUs: the first ``n`` of its devices, or ``n`` devices of
    unknown memory when it has fewer."""
    have = cap.devices
    if n <= len(have):
        return replace(cap, gpu=n, devices=have[:n])
    return replace(cap, gpu=n, devices=())


def with_learned_mem(workflow: Workflow, mems: Mapping[str, int], cap: int = 0) -> Workflow:
    """``workflow`` with each ``retry_mem`` task asking the mem its last success needed
    (history's ``attempt_mems``), as the next run will: the planner packs that size."""
    from .capacity import learned_mem, with_mem
    changed = {}
    for name, t in workflow.tasks.items():
        mem = learned_mem(t, mems, cap) if t.retry_mem else None
        if mem is not None:
            changed[name] = with_mem(t, mem)
    if not changed:
        return workflow
    return replace(workflow, tasks={n: changed.get(n, t) for n, t in workflow.tasks.items()})
