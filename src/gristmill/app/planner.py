"""The Capacity Planner's numbers: the core's ``simulate`` over a sweep of cores, one
curve per GPU count, each point with its bottleneck in the core's words (``explain``).
What ``gristmill plan --on cpu=LO..HI,gpu=G`` computes, for the dialog. Pure Python."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from gristmill.core.decide.capacity import Capacity
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.simulate import (Durations, Prediction, estimate_durations, explain,
                                            parse_on, simulate)
from gristmill.core.errors import UsageError
from gristmill.core.workflow import Workflow


@dataclass(frozen=True)
class PlannerAsk:
    cpu_lo: int = 1
    cpu_hi: int = 16
    gpus: tuple[int, ...] = (0,)
    mem: str = ""               # "" keeps the base capacity's memory

    def specs(self) -> list[tuple[int, str]]:
        """(GPU count, the ``--on`` spec of its sweep)."""
        rng = f"{self.cpu_lo}..{self.cpu_hi}" if self.cpu_hi > self.cpu_lo else f"{self.cpu_lo}"
        mem = f",mem={self.mem}" if self.mem else ""
        return [(g, f"cpu={rng},gpu={g}{mem}") for g in self.gpus]


@dataclass(frozen=True)
class PlannerResult:
    names: tuple[str, ...]                       # the stale tasks simulated
    durations: Durations | None
    curves: Mapping[int, Sequence[Prediction]] = field(default_factory=dict)  # GPUs -> over cores
    error: str = ""

    def predictions(self) -> list[Prediction]:
        return [p for ps in self.curves.values() for p in ps]


def parse_gpus(text: str) -> tuple[int, ...]:
    """``"0, 1, 2"`` -> (0, 1, 2); a ValueError says what is wrong."""
    out = []
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        n = int(part)
        if n < 0:
            raise ValueError(f"{part}: a GPU count is 0 or more")
        out.append(n)
    if not out:
        raise ValueError("name at least one GPU count, e.g. 0, 1")
    return tuple(dict.fromkeys(out))


def deciding_capacity(base: Capacity) -> Capacity:
    """A capacity every task fits, for deciding what is stale: the planner asks about
    machines that are not this one (a GPU task on a laptop)."""
    from dataclasses import replace
    from gristmill.core.decide.simulate import _with_gpus
    return _with_gpus(replace(base, cpu=max(base.cpu, 1 << 20), mem=max(base.mem, 1 << 60),
                              jobs=None), max(base.gpu, 1 << 10))


def plan_curves(workflow: Workflow, graph: TaskGraph, names: Sequence[str],
                known: Mapping[str, float], base: Capacity, ask: PlannerAsk) -> PlannerResult:
    """Every point of every curve, simulated by the core, with its bottleneck."""
    names = tuple(names)
    durations = estimate_durations(workflow, names, known)
    curves: dict[int, list[Prediction]] = {}
    unfit: list[str] = []
    for g, spec in ask.specs():
        caps = parse_on(spec, base)
        try:
            predictions = [simulate(workflow, graph, names, durations.seconds, cap, label)
                           for label, cap in caps]
        except UsageError as exc:       # a task that needs more than this curve has
            unfit.append(f"{g} GPU{'s' if g != 1 else ''}: {exc}")
            continue
        curves[g] = explain(predictions, workflow, graph, names, durations.seconds)
    return PlannerResult(names, durations, curves, "; ".join(unfit))
