"""Why is it waiting? A ready task that does not start says what it waits for, and who
holds it, with its state, once per change of the words. Real processes that hold their
capacity until the test lets them go."""

from __future__ import annotations

import sqlite3
import threading
import time

from gristmill.core.decide.capacity import Capacity
from gristmill.core.events import EventBus, RunStatus, TaskState, TaskStateChanged
from gristmill.core.reasons import ReasonKind
from gristmill.core.record.history import History
from gristmill.core.run.engine import Engine, RunOptions

from wf import Recorder, task, workflow

GB = 1000**3
HOLD = "touch {n}.on; while [ ! -e release ]; do sleep 0.02; done"
HANG = 60.0


def waits(rec, name) -> list[str]:
    return [e.reasons[-1].message for e in rec.of(TaskStateChanged)
            if e.task == name and e.state is TaskState.READY and e.reasons
            and e.reasons[-1].kind is ReasonKind.WAITING]


def run_until_waiting(tmp_path, wf, name, history=None, **opts):
    """Run ``wf`` on a thread; once ``name`` says why it waits, let the holders go."""
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    opts.setdefault("capacity", Capacity(cpu=4, mem=4 * GB, gpu=0))
    engine = Engine(wf, bus=bus, history=history,
                    options=RunOptions(structured_log=False, **opts))
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", engine.run([])))
    thread.start()
    try:
        deadline = time.monotonic() + HANG
        while not waits(rec, name):
            assert time.monotonic() < deadline, "it never said why it waits"
            time.sleep(0.02)
        told = waits(rec, name)[0]
    finally:
        (tmp_path / "release").touch()
        thread.join(HANG)
    assert box["r"].status is RunStatus.SUCCEEDED
    said = waits(rec, name)
    assert all(a != b for a, b in zip(said, said[1:])), said   # only when the words change
    return told, said, rec


def hold(name, **kw):
    return task(name, HOLD.format(n=name), phony=True, **kw)


def test_memory_names_how_much_and_who_holds_it(tmp_path):
    wf = workflow(tmp_path, hold("train_a", mem=1500 * 10**6), hold("train_b", mem=1500 * 10**6),
                  task("big", "true", phony=True, mem=3 * GB))
    history = History(tmp_path / "h.sqlite3")
    try:
        told, _, _ = run_until_waiting(tmp_path, wf, "big", history)
        assert told == "waiting for 3.0 GB of memory (1.0 GB free), held by train_a and train_b"
        history.flush()
        (reasons,) = sqlite3.connect(tmp_path / "h.sqlite3").execute(
            "SELECT reasons FROM attempts WHERE task = 'big'").fetchone()
        assert "waiting for" not in reasons      # history keeps why it ran, not its wait
    finally:
        history.close()


def test_a_pool_at_its_limit(tmp_path):
    wf = workflow(tmp_path, hold("first", pools=[("db", 1)]),
                  task("second", "true", phony=True, pools=[("db", 1)]))
    told, _, _ = run_until_waiting(tmp_path, wf, "second",
                                   capacity=Capacity(cpu=4, mem=4 * GB, gpu=0, pools={"db": 1}))
    assert told == "pool db is at its limit (1 at once), held by first"


def test_cpu_and_who_holds_it(tmp_path):
    wf = workflow(tmp_path, hold("a", cpu=2), hold("b", cpu=1), task("c", "true", phony=True, cpu=2))
    told, _, _ = run_until_waiting(tmp_path, wf, "c",
                                   capacity=Capacity(cpu=3, mem=4 * GB, gpu=0))
    assert told == "waiting for 2 CPU (0 of 3 free), held by a and b"


def test_the_jobs_limit(tmp_path):
    wf = workflow(tmp_path, hold("a"), task("b", "true", phony=True))
    told, said, _ = run_until_waiting(tmp_path, wf, "b", jobs=1)
    assert told == "waiting for a free job: -j 1 lets 1 task run at once"
    assert said == [told]


def test_a_higher_priority_task_first(tmp_path):
    # a heads a longer chain than b: it goes first, and b is told so.
    wf = workflow(tmp_path, task("a", "touch a.out; " + HOLD.format(n="a"), outputs=["a.out"]),
                  task("a2", "true", inputs=["a.out"], phony=True),
                  task("b", "true", phony=True))
    told, said, _ = run_until_waiting(tmp_path, wf, "b",
                                      capacity=Capacity(cpu=1, mem=4 * GB, gpu=0))
    assert told == "higher-priority task started first: a"
