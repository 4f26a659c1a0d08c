"""The task graph: edges from files (an output read as an input) and from ``after``."""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Container, Iterable, Mapping

from ..errors import WorkflowError
from ..workflow import Workflow


def task_deps(name: str, inputs: Iterable[str], after: Iterable[str],
              producer: Callable[[str], str | None], tasks: Container[str]) -> tuple[str, ...]:
    """What task ``name`` depends on: the producers of its inputs, then the tasks of
    its ``after`` (those in ``tasks``), each once, in that order, never itself."""
    seen = dict.fromkeys(map(producer, inputs))
    seen.pop(None, None)
    seen.pop(name, None)
    for a in after:
        if a in tasks and a != name:
            seen[a] = None
    return tuple(seen)  # type: ignore[arg-type]


class TaskGraph:
    """Dependencies between the tasks of one workflow. Raises WorkflowError on a cycle."""

    @classmethod
    def of(cls, workflow: Workflow) -> "TaskGraph":
        """The graph of ``workflow``, built once and kept with it (workflows are frozen)."""
        graph = workflow.__dict__.get("_task_graph")
        if graph is None:
            graph = cls(workflow)
            object.__setattr__(workflow, "_task_graph", graph)
        return graph

    @classmethod
    def from_deps(cls, workflow: Workflow, producer: dict[str, str],
                  deps: dict[str, tuple[str, ...]]) -> "TaskGraph":
        """The graph of ``workflow`` from its edges worked out already (the loader finds
        them as it resolves inputs): ``producer`` output -> task, ``deps`` task -> what
        ``task_deps`` gives, for every task in order. Kept with the workflow, as ``of``
        keeps it. Raises WorkflowError on a cycle."""
        graph = cls.__new__(cls)
        graph._build(workflow, producer, deps)
        object.__setattr__(workflow, "_task_graph", graph)
        return graph

    def __init__(self, workflow: Workflow):
        tasks = workflow.tasks
        producer: dict[str, str] = {out: name for name, task in tasks.items()
                                    for out in task.outputs}
        find = producer.get
        deps: dict[str, tuple[str, ...]] = {}
        for name, task in tasks.items():
            inputs = task.inputs
            if len(inputs) == 1 and not task.after:        # the common case, quickly
                p = find(inputs[0])
                deps[name] = (p,) if p is not None and p != name else ()
            else:
                deps[name] = task_deps(name, inputs, task.after, find, tasks)
        self._build(workflow, producer, deps)

    def _build(self, workflow: Workflow, producer: dict[str, str],
               deps: dict[str, tuple[str, ...]]) -> None:
        self.workflow = workflow
        self.producer = producer
        below: dict[str, list[str]] = {}       # only the tasks something depends on
        get = below.get
        for name, ds in deps.items():
            for d in ds:
                found = get(d)
                if found is None:
                    below[d] = [name]
                else:
                    found.append(name)
        self._deps = deps
        # Every task, in declaration order; those nothing depends on share one (). Each
        # list is replaced by its tuple as it goes, and the lists are gone before the
        # sort: at a million tasks they were 70 MB of the load's peak (issue 18).
        # A fan-in's inputs (c0 reads b[0_*]) have one dependant, the same for a run
        # of them: they share its tuple (500,000 of them at a million tasks, 24 MB).
        last: tuple[str, ...] = ()
        for d, names in below.items():
            if len(names) == 1 and len(last) == 1 and names[0] is last[0]:
                below[d] = last          # type: ignore[assignment]
            else:
                below[d] = last = tuple(names)   # type: ignore[assignment]
        dependants: dict[str, tuple[str, ...]] = dict.fromkeys(deps, ())
        dependants.update(below)         # type: ignore[arg-type]
        del below, get
        self._dependants = dependants
        self._sinks: tuple[str, ...] | None = None
        self._order = self._toposort()

    def deps(self, name: str) -> tuple[str, ...]:
        return self._deps[name]

    def dependants(self, name: str) -> tuple[str, ...]:
        return self._dependants[name]

    def dependencies_of(self) -> Mapping[str, tuple[str, ...]]:
        """Every task's dependencies at once (read-only): ``deps`` without a call per task."""
        return MappingProxyType(self._deps)

    def dependants_of(self) -> Mapping[str, tuple[str, ...]]:
        """Every task's dependants at once (read-only): ``dependants`` without a call
        per task, for walks over the whole graph."""
        return MappingProxyType(self._dependants)

    def dependency_counts(self) -> dict[str, int]:
        """Task -> how many tasks it depends on, for every task in declaration order."""
        deps = self._deps
        return dict(zip(deps, map(len, deps.values())))

    def edges(self) -> Iterable[tuple[str, str]]:
        """(dependency, dependant) pairs."""
        for name, ds in self._deps.items():
            for d in ds:
                yield d, name

    @property
    def order(self) -> tuple[str, ...]:
        """Every task, dependencies first; ties keep declaration order."""
        return self._order

    def closure(self, targets: Iterable[str]) -> set[str]:
        """The targets and everything they depend on, transitively."""
        out: set[str] = set()
        stack = list(targets)
        while stack:
            n = stack.pop()
            if n in out:
                continue
            out.add(n)
            stack.extend(self._deps[n])
        return out

    def sinks(self) -> tuple[str, ...]:
        """The tasks nothing depends on, in declaration order."""
        sinks = self._sinks
        if sinks is None:
            sinks = self._sinks = tuple([n for n, ds in self._dependants.items() if not ds])
        return sinks

    def reaches_all(self, targets: Iterable[str]) -> bool:
        """Whether ``closure(targets)`` is every task: every task nothing depends on is
        a target (each task leads to one of those). Asks no set of every task."""
        wanted = targets if isinstance(targets, (set, frozenset, dict)) else set(targets)
        return all(s in wanted for s in self.sinks())

    def downstream(self, names: Iterable[str]) -> set[str]:
        """Everything that depends on any of ``names``, transitively (not the names)."""
        out: set[str] = set()
        stack = [d for n in names for d in self._dependants[n]]
        while stack:
            n = stack.pop()
            if n in out:
                continue
            out.add(n)
            stack.extend(self._dependants[n])
        return out

    def levels(self) -> dict[str, int]:
        """Longest distance from a root, for layered drawing."""
        level: dict[str, int] = {}
        deps = self._deps
        for n in self._order:
            ds = deps[n]
            level[n] = 1 + max(map(level.__getitem__, ds)) if ds else 0
        return level

    def _toposort(self) -> tuple[str, ...]:
        """Kahn's sort, a FIFO queue started with the tasks that wait on none in
        declaration order. Only tasks with two or more dependencies are counted down:
        one with a single dependency is ready when that one is (a million tasks are
        mostly such; their counts were a dict of a million entries)."""
        deps = self._deps
        dependants = self._dependants
        order: list[str] = []
        indeg: dict[str, int] = {}
        root = order.append
        for n, ds in deps.items():
            if not ds:
                root(n)
            elif len(ds) > 1:
                indeg[n] = len(ds)
        append = order.append
        count = indeg.get
        for n in order:                  # a FIFO queue: the list grows as it is walked
            for m in dependants[n]:
                k = count(m)
                if k is None or k == 1:
                    append(m)
                else:
                    indeg[m] = k - 1
        if len(order) != len(deps):
            self._raise_cycle(set(deps).difference(order))
        return tuple(order)

    def _raise_cycle(self, remaining: set[str]) -> None:
        # Walk dependencies inside the remaining set until a node repeats.
        start = min(remaining, key=list(self.workflow.tasks).index)
        path: list[str] = []
        index: dict[str, int] = {}
        n = start
        while n not in index:
            index[n] = len(path)
            path.append(n)
            n = next(d for d in self._deps[n] if d in remaining)
        cycle = path[index[n]:] + [n]
        cycle.reverse()   # show it in run order: a -> b means b needs a
        task = self.workflow.tasks[cycle[0]]
        raise WorkflowError("dependency cycle: " + " -> ".join(cycle), task.location
                            or None, path=str(self.workflow.path))
