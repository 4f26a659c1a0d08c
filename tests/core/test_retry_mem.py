"""retry_mem: a task killed for using more than its declared mem retries with more, and
the next run and the planner start it with the size that worked. Real allocations, real
kills by the kernel (a cgroup's memory.max), a real history."""

from __future__ import annotations

import sqlite3

import pytest

from gristmill.core.decide.capacity import Capacity
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.simulate import simulate, with_learned_mem
from gristmill.core.events import EventBus, Outcome, RunStatus, TaskStarted, TaskState, \
    TaskStateChanged
from gristmill.core.reasons import ReasonKind
from gristmill.core.record.history import History
from gristmill.core.run import cgroups
from gristmill.core.run.engine import Engine, RunOptions

from wf import Recorder, task, workflow

MB = 1000**2
GB = 1000**3
# 250 MB held, then the output written: over 100 and 200 MB, under 300 and 400 MB.
ALLOC = ("python3 -c 'b = b\"x\" * (250 * 1000 * 1000); open(\"out\", \"w\").write(\"ok\")'")


@pytest.fixture(autouse=True)
def memory_cgroups():
    offer = cgroups.offer(refresh=True)
    if not (offer.version and offer.memory):
        pytest.skip(f"no cgroup with the memory controller here: {offer.why_not}")


def _run(wf, history, cap_mem=8 * GB, **opts):
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    engine = Engine(wf, bus=bus, history=history, options=RunOptions(
        capacity=Capacity(cpu=4, mem=cap_mem, gpu=0), structured_log=False, **opts))
    return engine.run([]), rec


def _mems(rec, name):
    return [e.resources.mem for e in rec.of(TaskStarted) if e.task == name]


def _done_reasons(rec, name):
    (done,) = [e for e in rec.of(TaskStateChanged)
               if e.task == name and e.state is TaskState.DONE]
    return [r.message for r in done.reasons]


def test_an_oom_kill_retries_with_twice_the_memory_until_it_fits(tmp_path):
    wf = workflow(tmp_path, task("hog", ALLOC, outputs=["out"], mem=100 * MB,
                                 retry_mem=(2.0,)))
    history = History(tmp_path / "h.sqlite3")
    try:
        result, rec = _run(wf, history)
        assert result.status is RunStatus.SUCCEEDED
        assert _mems(rec, "hog") == [100 * MB, 200 * MB, 400 * MB]
        outcomes = [(e.outcome, e.will_retry) for e in rec.finished("hog")]
        assert outcomes == [(Outcome.FAILED, True), (Outcome.FAILED, True),
                            (Outcome.SUCCEEDED, False)]
        assert rec.finished("hog")[0].message.startswith(
            "killed for using more than its declared mem (100.0 MB)")
        waits = [r.message for e in rec.of(TaskStateChanged) if e.task == "hog"
                 and e.state is TaskState.WAITING for r in e.reasons
                 if r.kind is ReasonKind.RETRY]
        assert waits[0].startswith("attempt 1 killed at 100.0 MB for using more memory; "
                                   "retrying with 200.0 MB in ")
        assert _done_reasons(rec, "hog") == [
            "attempt 1 killed at 100.0 MB; attempt 2 killed at 200.0 MB; "
            "attempt 3 had 400.0 MB and succeeded"]
        history.flush()
        rows = sqlite3.connect(tmp_path / "h.sqlite3").execute(
            "SELECT attempt, mem, outcome FROM attempts ORDER BY attempt").fetchall()
        assert rows == [(1, 100 * MB, "failed"), (2, 200 * MB, "failed"),
                        (3, 400 * MB, "succeeded")]

        # The next run starts it at the size that worked, and says so.
        (tmp_path / "out").unlink()
        result, rec = _run(wf, history)
        assert result.status is RunStatus.SUCCEEDED
        assert _mems(rec, "hog") == [400 * MB]
        (ready,) = [e for e in rec.of(TaskStateChanged)
                    if e.task == "hog" and e.state is TaskState.READY]
        assert ready.reasons[-1].kind is ReasonKind.MEMORY
        assert ready.reasons[-1].message.startswith("it starts with 400.0 MB of memory "
                                                    "(it declares 100.0 MB)")

        # The planner packs it at that size too.
        learned = with_learned_mem(wf, history.attempt_mems(str(wf.path)), 8 * GB)
        assert learned.tasks["hog"].resources.mem == 400 * MB
        p = simulate(learned, TaskGraph.of(learned), ["hog"], {"hog": 1.0},
                     Capacity(cpu=4, mem=8 * GB, gpu=0))
        assert p.makespan == pytest.approx(1.0)
    finally:
        history.close()


def test_sizes_from_a_list_are_capped_at_what_the_machine_has(tmp_path):
    wf = workflow(tmp_path, task("hog", ALLOC, outputs=["out"], mem=100 * MB,
                                 retry_mem=(200 * MB, 10 * GB)))
    history = History(tmp_path / "h.sqlite3")
    try:
        result, rec = _run(wf, history, cap_mem=300 * MB)
        assert result.status is RunStatus.SUCCEEDED
        assert _mems(rec, "hog") == [100 * MB, 200 * MB, 300 * MB]
    finally:
        history.close()


def test_without_retry_mem_an_oom_kill_is_a_failure_as_before(tmp_path):
    wf = workflow(tmp_path, task("hog", ALLOC, outputs=["out"], mem=100 * MB))
    result, rec = _run(wf, None)
    assert result.status is RunStatus.FAILED
    assert _mems(rec, "hog") == [100 * MB]


def test_retry_mem_is_read_from_gristmill_toml_and_a_bad_one_is_told_at_its_place(tmp_path):
    from gristmill.core.errors import WorkflowError, WorkflowErrors
    from gristmill.core.load.loader import load_workflow
    f = tmp_path / "gristmill.toml"
    f.write_text('[tasks.a]\ncmd = "true"\nretry_mem = 2.0\n'
                 '[tasks.b]\ncmd = "true"\nretry_mem = ["4GB", "8GB"]\n')
    wf = load_workflow(f)
    assert wf.tasks["a"].retry_mem == (2.0,)
    assert wf.tasks["b"].retry_mem == (4 * GB, 8 * GB)
    f.write_text('[tasks.a]\ncmd = "true"\nretry_mem = ["8GB", "4GB"]\n')
    with pytest.raises((WorkflowError, WorkflowErrors)) as err:
        load_workflow(f)
    assert str(err.value).endswith("gristmill.toml:3:21: tasks.a.retry_mem[1]: each size must "
                                   "be larger than the one before")


def test_on_a_cluster_a_retry_is_capped_at_the_largest_worker_not_the_sum(tmp_path):
    # Two workers of 300 MB: 600 MB in all, but no attempt can have more than one holds.
    wf = workflow(tmp_path, task("hog", ALLOC, outputs=["out"], mem=100 * MB,
                                 retry_mem=(4.0,)))
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    cap = Capacity(cpu=4, mem=600 * MB, gpu=0, largest_mem=300 * MB)
    result = Engine(wf, bus=bus, options=RunOptions(capacity=cap, structured_log=False)).run([])
    assert result.status is RunStatus.SUCCEEDED
    assert _mems(rec, "hog") == [100 * MB, 300 * MB]        # not 400 MB: no worker has it


def test_a_clusters_capacity_says_its_largest_worker():
    distributed = pytest.importorskip("distributed")
    from gristmill.core.run.dask_cluster import cluster_capacity, local_cluster
    cluster = local_cluster(2, cpu=2, mem=600 * MB)
    try:
        with distributed.Client(cluster) as c:
            cap = cluster_capacity(c)
    finally:
        cluster.close()
    assert cap.mem == 600 * MB and cap.largest_mem == 300 * MB
