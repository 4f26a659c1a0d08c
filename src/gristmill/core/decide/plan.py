"""The books of one run: which tasks wait on which, what is ready, what was skipped.

Like ninja's Plan it knows nothing of processes or files; it is stepped by hand
in tests.
"""

from __future__ import annotations

from typing import Iterable

from .graph import TaskGraph


class Plan:
    def __init__(self, graph: TaskGraph, to_run: Iterable[str]):
        self.graph = graph
        members = set(to_run)
        self._members = members
        order = graph.order
        deps = graph.deps
        ready: list[str] = []
        if members.issuperset(order):          # every task of the graph: no filtering
            pending = graph.dependency_counts()
            # Declaration order, which is the graph's order for tasks that wait on none.
            ready = [name for name, n in pending.items() if n == 0]
        else:
            pending = {}
            for name in order:
                if name not in members:
                    continue
                n = sum(1 for d in deps(name) if d in members)
                pending[name] = n
                if n == 0:
                    ready.append(name)
        self._pending = pending
        self._ready = ready
        self._open = set(members)     # not yet finished or skipped

    def __contains__(self, name: str) -> bool:
        return name in self._members

    def __len__(self) -> int:
        return len(self._members)

    def take_ready(self) -> list[str]:
        """Tasks whose dependencies in this plan are all done, each returned once."""
        ready, self._ready = self._ready, []
        return ready

    def finished(self, name: str, ok: bool) -> list[str]:
        """Record a task's end. Returns the tasks skipped because it failed (in order)."""
        self._open.discard(name)
        if ok:
            for m in self.graph.dependants(name):
                if m in self._pending and m in self._open:
                    self._pending[m] -= 1
                    if self._pending[m] == 0:
                        self._ready.append(m)
            return []
        below = self.graph.downstream([name])
        skipped = [m for m in self.graph.order if m in self._open and m in below]
        for m in skipped:
            self._open.discard(m)
        return skipped

    def abandon(self) -> list[str]:
        """Stop the run: every open task not yet ready or running is given up."""
        left = [m for m in self.graph.order if m in self._open]
        self._open.clear()
        self._ready = []
        return left

    def more(self) -> bool:
        return bool(self._open)

    def is_open(self, name: str) -> bool:
        return name in self._open
