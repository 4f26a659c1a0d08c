"""The plan's books and the scheduler, stepped by hand: no processes, no files."""

from pathlib import Path

from gristmill.core.decide.capacity import Capacity, FreeCapacity
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.plan import Plan
from gristmill.core.decide.scheduler import by_priority, critical_path, schedule

from wf import task, workflow

GB = 1000**3


def diamond(root=Path("/w")):
    return workflow(root,
                    task("a", "x", outputs=["a"]),
                    task("b", "x", inputs=["a"], outputs=["b"]),
                    task("c", "x", inputs=["a"], outputs=["c"]),
                    task("d", "x", inputs=["b", "c"], outputs=["d"]))


def test_plan_releases_tasks_as_dependencies_finish():
    g = TaskGraph(diamond())
    plan = Plan(g, ["a", "b", "c", "d"])
    assert plan.take_ready() == ["a"]
    assert plan.take_ready() == []
    plan.finished("a", True)
    assert sorted(plan.take_ready()) == ["b", "c"]
    plan.finished("b", True)
    assert plan.take_ready() == []
    plan.finished("c", True)
    assert plan.take_ready() == ["d"]
    plan.finished("d", True)
    assert not plan.more()


def test_plan_ignores_dependencies_outside_it():
    g = TaskGraph(diamond())
    plan = Plan(g, ["b", "d"])          # a and c are up to date
    assert plan.take_ready() == ["b"]


def test_failure_skips_everything_downstream_only():
    g = TaskGraph(diamond())
    plan = Plan(g, ["a", "b", "c", "d"])
    plan.take_ready()
    plan.finished("a", True)
    plan.take_ready()
    assert plan.finished("b", False) == ["d"]
    plan.finished("c", True)
    assert plan.take_ready() == []
    assert not plan.more()


def test_critical_path_weights_history_durations():
    g = TaskGraph(diamond())
    prio = critical_path(g, ["a", "b", "c", "d"], {"b": 10.0, "c": 1.0, "d": 1.0, "a": 1.0})
    assert prio == {"d": 1.0, "b": 11.0, "c": 2.0, "a": 12.0}


def test_scheduler_packs_by_memory_and_backfills():
    wf = workflow(Path("/w"),
                  task("big1", "x", mem=6 * GB, phony=True),
                  task("big2", "x", mem=6 * GB, phony=True),
                  task("small", "x", mem=1 * GB, phony=True))
    free = FreeCapacity(Capacity(cpu=8, mem=10 * GB))
    tasks = list(wf.tasks.values())
    queue = by_priority(tasks, {"big1": 3, "big2": 2, "small": 1})
    chosen = [queue[i].name for i in schedule(queue, free)]
    assert chosen == ["big1", "small"]


def test_scheduler_respects_jobs_gpus_and_pools():
    wf = workflow(Path("/w"), *[task(f"g{i}", "x", gpu=1, phony=True) for i in range(3)],
                  *[task(f"p{i}", "x", pools=[("net", 1)], phony=True) for i in range(3)])
    free = FreeCapacity(Capacity(cpu=16, mem=GB, gpu=2, pools={"net": 1}))
    queue = list(wf.tasks.values())
    chosen = [queue[i].name for i in schedule(queue, free)]
    assert chosen == ["g0", "g1", "p0"]
    free = FreeCapacity(Capacity(cpu=16, mem=GB, gpu=2, pools={"net": 1}, jobs=2))
    assert len(schedule(queue, free)) == 2


def test_free_capacity_hands_out_distinct_gpus_and_lowest_slots():
    free = FreeCapacity(Capacity(cpu=4, mem=GB, gpu=3))
    t = task("t", "x", gpu=2).resources
    u = task("u", "x", gpu=1).resources
    g1, s1 = free.take(t)
    g2, s2 = free.take(u)
    assert g1 == (0, 1) and g2 == (2,) and (s1, s2) == (0, 1)
    assert not free.fits(u)
    free.give(t, g1, s1)
    g3, s3 = free.take(u)
    assert g3 == (0,) and s3 == 0


def _shuffled():
    # Declared out of dependency order: ready tasks come in declaration order.
    return workflow(Path("/w"),
                    task("report", "x", inputs=["c1", "c2"], outputs=["r"]),
                    task("c2", "x", inputs=["b"], outputs=["c2"]),
                    task("z", "x", outputs=["z"]),
                    task("c1", "x", outputs=["c1"]),
                    task("b", "x", outputs=["b"], after=["z"]),
                    task("y", "x", outputs=["y"]))


def test_a_plan_of_every_task_is_the_plan_of_the_same_tasks_listed_one_by_one():
    g = TaskGraph(_shuffled())
    every, listed = Plan(g, list(g.order)), Plan(g, ["report", "c2", "z", "c1", "b", "y", "zz"][:-1])
    assert every.take_ready() == ["z", "c1", "y"] == [n for n in g.order if not g.deps(n)]
    assert listed.take_ready() == ["z", "c1", "y"]
    partial = Plan(g, ["report", "c1", "y"])
    assert partial.take_ready() == ["c1", "y"]
    assert g.dependency_counts() == {"report": 2, "c2": 1, "z": 0, "c1": 0, "b": 1, "y": 0}


def test_critical_path_of_some_tasks_counts_only_those():
    g = TaskGraph(_shuffled())
    full = critical_path(g, g.order, {"z": 5.0})
    assert full == {"report": 1.0, "c2": 2.0, "c1": 2.0, "b": 3.0, "z": 8.0, "y": 1.0}
    assert critical_path(g, ["z", "b", "y"], {"z": 5.0}) == {"b": 1.0, "z": 6.0, "y": 1.0}
    assert dict(g.dependants_of()) == {n: g.dependants(n) for n in g.order}
