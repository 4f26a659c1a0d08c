"""Why is it waiting, for GPUs: on a machine of fake GPUs (the fake nvidia-smi), a task
that needs a card another task holds says so, naming the holder."""

from __future__ import annotations

import threading
import time

from gristmill.core.events import EventBus, RunStatus, TaskState, TaskStateChanged
from gristmill.core.load.loader import load_workflow
from gristmill.core.reasons import ReasonKind
from gristmill.core.run.engine import Engine, RunOptions

from fake_gpu import gpu
from test_runs import machine  # noqa: F401  (the fixture: a machine of fake GPUs)

HANG = 60.0
HOLD = "touch on; while [ ! -e release ]; do sleep 0.02; done"


def _waits(events, name):
    return [e.reasons[-1].message for e in events if isinstance(e, TaskStateChanged)
            and e.task == name and e.state is TaskState.READY and e.reasons
            and e.reasons[-1].kind is ReasonKind.WAITING]


def _told(folder, tasks: str, name: str) -> str:
    (folder / "gristmill.toml").write_text(
        '[capacity]\ncpu = 8\nmem = "8GB"\n' + tasks)
    events: list = []
    bus = EventBus()
    bus.subscribe(events.append)
    engine = Engine(load_workflow(folder), bus=bus, options=RunOptions(structured_log=False))
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", engine.run([])))
    thread.start()
    try:
        deadline = time.monotonic() + HANG
        while not _waits(events, name):
            assert time.monotonic() < deadline, "it never said why it waits"
            time.sleep(0.02)
    finally:
        (folder / "release").touch()
        thread.join(HANG)
    assert box["r"].status is RunStatus.SUCCEEDED
    return _waits(events, name)[0]


def test_a_whole_gpu_held_by_another_task(tmp_path, machine):
    machine([gpu(0)])
    told = _told(tmp_path, f'''
[tasks.train]
phony = true
cmd = "{HOLD}"
resources = {{ gpu = 1 }}
[tasks.eval]
phony = true
cmd = "true"
resources = {{ gpu = 1 }}
''', "eval")
    assert told == "waiting for 1 whole GPU, held by train"


def test_gpu_memory_held_by_a_share(tmp_path, machine):
    machine([gpu(0, total_mib=40960)])
    told = _told(tmp_path, f'''
[tasks.a]
phony = true
cmd = "{HOLD}"
resources = {{ gpu = 0.5, gpu_mem = "30GiB" }}
[tasks.b]
phony = true
cmd = "true"
resources = {{ gpu = 0.25, gpu_mem = "20GiB" }}
''', "b")
    assert told == "waiting for 0.25 of a GPU with 21.5 GB of its memory free, held by a"
