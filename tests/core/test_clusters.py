"""Sizing and placement of a cluster started for a run (run.clusters), without Dask:
the planner's peak, the cap, per-worker fits, and which tasks stay here."""

from __future__ import annotations

import pytest

from gristmill.core.decide.graph import TaskGraph
from gristmill.core.errors import WorkflowError
from gristmill.core.run.clusters import WorkerShape, check_placement, place, plan_cluster
from gristmill.core.workflow import ClusterSettings

from wf import task, workflow

GIB = 1 << 30


def fan(tmp_path, n=4, **kw):
    """n parallel tasks of 10 s, then a join."""
    parts = [task(f"p{i}", "sleep 10", outputs=[f"p{i}.txt"], **kw) for i in range(n)]
    join = task("join", "cat p*.txt > all.txt", inputs=[f"p{i}.txt" for i in range(n)],
                outputs=["all.txt"])
    wf = workflow(tmp_path, *parts, join)
    names = [t.name for t in (*parts, join)]
    return wf, TaskGraph.of(wf), names, {n: 10.0 for n in names}


def test_the_cluster_is_as_wide_as_the_plans_peak_and_shaped_to_its_largest_task(tmp_path):
    wf, graph, names, durations = fan(tmp_path, cpu=2, mem=3 * GIB)
    plan = plan_cluster(wf, graph, names, durations, ClusterSettings())
    assert plan.workers == plan.peak == 4
    assert plan.shape == WorkerShape(2.0, 3 * GIB, 0)
    cap = plan.capacity()
    assert (cap.cpu, cap.mem) == (8.0, 12 * GIB)


def test_max_workers_caps_the_planners_sizing(tmp_path):
    wf, graph, names, durations = fan(tmp_path)
    plan = plan_cluster(wf, graph, names, durations, ClusterSettings(max_workers=3))
    assert (plan.workers, plan.peak) == (3, 4)
    assert "max_workers caps it" in plan.words()


def test_a_chain_needs_one_worker(tmp_path):
    a = task("a", "x", outputs=["a"])
    b = task("b", "x", inputs=["a"], outputs=["b"])
    c = task("c", "x", inputs=["b"], outputs=["c"])
    wf = workflow(tmp_path, a, b, c)
    plan = plan_cluster(wf, TaskGraph.of(wf), ["a", "b", "c"], dict.fromkeys("abc", 5.0),
                        ClusterSettings())
    assert plan.workers == 1


def test_each_worker_is_asked_alone_never_their_sum(tmp_path):
    wf = workflow(tmp_path, task("big", "x", cpu=6))
    with pytest.raises(WorkflowError) as err:
        check_placement(wf, ["big"], [WorkerShape(4, 8 * GIB)] * 2)
    assert "no single worker of the cluster can hold it (2 workers of cpu = 4" in str(err.value)
    check_placement(wf, ["big"], [WorkerShape(4, 8 * GIB), WorkerShape(6, GIB)])


def test_a_gpu_task_needs_a_worker_with_a_gpu(tmp_path):
    wf = workflow(tmp_path, task("train", "x", gpu=1))
    with pytest.raises(WorkflowError, match="gpu = 1"):
        check_placement(wf, ["train"], [WorkerShape(8, 8 * GIB, 0)])
    check_placement(wf, ["train"], [WorkerShape(8, 8 * GIB, 0), WorkerShape(1, GIB, 1)])
    # Sized from the tasks, the cluster's workers get the GPU the task asks for.
    plan = plan_cluster(wf, TaskGraph.of(wf), ["train"], {"train": 5.0}, ClusterSettings())
    assert plan.shape.gpu == 1 and plan.capacity().gpu == 1


def test_settings_smaller_than_a_task_are_an_error_at_the_task(tmp_path):
    wf, graph, names, durations = fan(tmp_path, n=2, cpu=3)
    with pytest.raises(WorkflowError, match="task 'p0' asks for cpu = 3"):
        plan_cluster(wf, graph, names, durations, ClusterSettings(cores=2))


def test_local_tasks_and_tiny_ones_with_local_inputs_stay_here(tmp_path):
    fetch = task("fetch", "x", outputs=["raw"])                   # tiny, inputs here
    crunch = task("crunch", "x", inputs=["raw"], outputs=["out"])  # slow
    after = task("after", "x", inputs=["out"], outputs=["done"])   # tiny, but made there
    report = task("report", "x", inputs=["done"], outputs=["r"], where="local")
    pinned = task("pinned", "x", outputs=["p"], where="cluster")  # tiny, but pinned
    wf = workflow(tmp_path, fetch, crunch, after, report, pinned)
    names = ["fetch", "crunch", "after", "report", "pinned"]
    durations = {"fetch": 0.1, "crunch": 60.0, "after": 0.1, "report": 9.0, "pinned": 0.1}
    remote, local = place(wf, TaskGraph.of(wf), names, durations, known=durations)
    assert local == ["fetch", "report"]
    assert remote == ["crunch", "after", "pinned"]
    # Never run: not known to be tiny, so it goes.
    remote, local = place(wf, TaskGraph.of(wf), names, durations, known=())
    assert local == ["report"]
