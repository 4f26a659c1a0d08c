"""The capacity planner's simulation, alone: the engine's scheduler over simulated time."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill.core.decide.capacity import Capacity
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.simulate import explain, parse_on, simulate
from gristmill.core.errors import UsageError
from gristmill.core.workflow import Resources, Task, Workflow

GB = 1000 ** 3


def _wf(*tasks: Task) -> Workflow:
    return Workflow("w", Path("/w/gristmill.toml"), Path("/w"), {t.name: t for t in tasks})


def _predict(wf, cap, durations):
    graph = TaskGraph.of(wf)
    names = list(wf.tasks)
    return explain([simulate(wf, graph, names, durations, cap, "c")], wf, graph, names,
                   durations)[0]


def test_a_chain_sets_the_makespan_and_more_cores_buy_nothing():
    wf = _wf(Task("a", ("x",), outputs=("a",)), Task("b", ("x",), inputs=("a",), outputs=("b",)),
             Task("c", ("x",), outputs=("c",)))
    p = _predict(wf, Capacity(cpu=8, mem=8 * GB), {"a": 2.0, "b": 3.0, "c": 1.0})
    assert p.makespan == pytest.approx(5.0)
    assert p.critical_path == ("a", "b") and p.critical_length == pytest.approx(5.0)
    assert p.bottleneck.startswith("more than 2 cores buys nothing: the critical path is 5.0 s")


def test_gpu_bound_says_what_a_second_gpu_saves():
    wf = _wf(*[Task(f"t{i}", ("x",), outputs=(f"t{i}",), resources=Resources(cpu=1, gpu=1))
               for i in range(4)])
    p = _predict(wf, Capacity(cpu=8, mem=8 * GB, gpu=1), {f"t{i}": 1.0 for i in range(4)})
    assert p.makespan == pytest.approx(4.0)
    assert p.utilisation["gpu"] == pytest.approx(1.0)
    assert p.bottleneck == "GPU-bound: a second GPU saves 50%"


def test_memory_bound_names_the_tasks_that_serialise():
    wf = _wf(*[Task(f"m{i}", ("x",), outputs=(f"m{i}",), resources=Resources(cpu=1, mem=9 * GB))
               for i in range(3)])
    p = _predict(wf, Capacity(cpu=8, mem=24 * GB), {f"m{i}": 1.0 for i in range(3)})
    assert p.makespan == pytest.approx(2.0)          # two at once, then the third
    assert p.bottleneck == "memory-bound: 3 tasks of 9.0 GB share 24.0 GB, at most 2 at once"


def test_no_resource_is_ever_oversubscribed_in_the_schedule():
    wf = _wf(*[Task(f"t{i}", ("x",), outputs=(f"t{i}",), resources=Resources(cpu=1.5))
               for i in range(7)])
    p = simulate(wf, TaskGraph.of(wf), list(wf.tasks), {f"t{i}": 1.0 + i / 10 for i in range(7)},
                 Capacity(cpu=4, mem=GB))
    moments = sorted({s.start for s in p.schedule})
    for t in moments:
        running = [s for s in p.schedule if s.start <= t < s.end - 1e-9]
        assert sum(1.5 for _ in running) <= 4


def test_parse_on_sweeps_and_keeps_what_is_not_named():
    base = Capacity(cpu=2, mem=8 * GB, gpu=1)
    caps = parse_on("cpu=1..8,mem=32GB", base)
    assert [c.cpu for _, c in caps] == [1, 2, 4, 8]
    assert all(c.mem == 32 * GB and c.gpu == 1 for _, c in caps)
    assert caps[0][0] == "cpu=1,mem=32GB"
    (label, one), = parse_on("gpu=2", base)
    assert one.gpu == 2 and one.cpu == 2
    with pytest.raises(UsageError, match="not a number with a unit"):
        parse_on("mem=12", base)


def test_the_plan_says_what_a_task_waited_for_and_how_long():
    wf = _wf(*[Task(f"m{i}", ("x",), outputs=(f"m{i}",), resources=Resources(cpu=1, mem=9 * GB))
               for i in range(3)])
    p = simulate(wf, TaskGraph.of(wf), list(wf.tasks), {f"m{i}": 1.0 for i in range(3)},
                 Capacity(cpu=8, mem=24 * GB))
    rows = {r["task"]: r for r in p.as_json()["schedule"]}
    assert "why" not in rows["m0"] and "why" not in rows["m1"]
    assert rows["m2"]["waited"] == pytest.approx(1.0)
    assert rows["m2"]["why"] in ("waiting for 9.0 GB of memory (6.0 GB free), held by m0 and m1",
                                 "waiting for 9.0 GB of memory (6.0 GB free), held by m1 and m0")
