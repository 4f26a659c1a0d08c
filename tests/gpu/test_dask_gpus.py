"""GPUs on a real local Dask cluster: the worker's own devices, shares packed per device."""

from __future__ import annotations

import sys

import pytest

distributed = pytest.importorskip("distributed")

from gristmill.core.events import EventBus, OutputLine, RunStatus  # noqa: E402
from gristmill.core.load.loader import load_workflow  # noqa: E402
from gristmill.core.run.dask import DaskExecutor  # noqa: E402
from gristmill.core.run.dask_cluster import cluster_capacity, local_cluster  # noqa: E402
from gristmill.core.run.engine import Engine, RunOptions  # noqa: E402

from fake_gpu import FakeSmi, gpu, uuid  # noqa: E402

GB = 1000 ** 3
# Each task waits until all of them are on, then says what it was given.
CMD = ('touch on.$GRISTMILL_TASK; while [ "$(ls | grep -c "^on\\.")" -lt {k} ]; '
       'do sleep 0.02; done; echo "[$CUDA_VISIBLE_DEVICES|$NVIDIA_VISIBLE_DEVICES]"')


def test_a_local_workers_devices_are_the_users_and_shares_pack_per_device(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    fake = FakeSmi(tmp_path / "smi", [gpu(i, total_mib=81559) for i in range(8)])
    monkeypatch.setenv("PATH", fake.path())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"3,{uuid(6)}")
    folder = tmp_path / "w"
    folder.mkdir()
    shares = [f"s{i}" for i in range(4)]
    text = f"[workflow]\ndefault = {shares + ['m']!r}\n".replace("'", '"')
    for name in shares:
        text += (f"[tasks.{name}]\nphony = true\ncmd = '''{CMD.format(k=5)}'''\n"
                 "resources = { cpu = 0.1, gpu = 0.5 }\n")
    text += (f"[tasks.m]\nphony = true\ncmd = '''{CMD.format(k=5)}'''\n"
             'resources = { cpu = 0.1, gpu_mem = "10GB" }\n')
    (folder / "gristmill.toml").write_text(text)
    cluster = local_cluster(1, cpu=2, mem=GB, threads=8)
    try:
        with distributed.Client(cluster) as c:
            [worker] = c.scheduler_info()["workers"].values()
            assert worker["resources"]["GPU"] == 2
            assert worker["resources"]["GPU_MEM"] == 2 * 81559 * 1024 ** 2
            cap = cluster_capacity(c)
            assert cap.gpu == 2 and cap.devices[0].mem == 81559 * 1024 ** 2
            events = []
            bus = EventBus()
            bus.subscribe(events.append)
            result = Engine(load_workflow(folder), bus=bus, options=RunOptions(capacity=cap),
                            executor_factory=lambda: DaskExecutor(c)).run([])
            assert result.status is RunStatus.SUCCEEDED
    finally:
        cluster.close()
    said = {e.task: e.text for e in events if isinstance(e, OutputLine)}
    # Two halves on each of the worker's two devices, named as the user named them.
    assert sorted(said[n] for n in shares) == ["[3|3]", "[3|3]", f"[{uuid(6)}|{uuid(6)}]",
                                               f"[{uuid(6)}|{uuid(6)}]"]
    assert said["m"] in ("[3|3]", f"[{uuid(6)}|{uuid(6)}]")


def test_a_worker_samples_its_jobs_gpu_memory_and_utilisation_into_history(tmp_path,
                                                                           monkeypatch):
    from gristmill.core.events import TaskFinished
    from gristmill.core.record.history import History
    monkeypatch.setitem(sys.modules, "pynvml", None)
    fake = FakeSmi(tmp_path / "smi", [gpu(0, util=20), gpu(1, util=60)])
    monkeypatch.setenv("PATH", fake.path())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")      # the worker's one device
    folder = tmp_path / "w"
    folder.mkdir()
    # The task says it holds 1500 MiB on its device, then waits for three more samples
    # (at most 10 s: without a sampler it ends, and the figures are missing).
    cmd = (f'n=$(cat {fake.app_calls} 2>/dev/null | wc -l); echo "$$, {uuid(1)}, 1500" '
           f'>> {fake.apps}; i=0; while [ "$(cat {fake.app_calls} 2>/dev/null | wc -l)" -lt '
           '$((n + 3)) ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done')
    (folder / "gristmill.toml").write_text(
        f"[tasks.g]\nphony = true\ncmd = '''{cmd}'''\nresources = {{ cpu = 0.1, gpu = 1 }}\n")
    cluster = local_cluster(1, cpu=2, mem=GB, threads=2)
    history = History(tmp_path / "history.sqlite3")
    try:
        with distributed.Client(cluster) as c:
            events = []
            bus = EventBus()
            bus.subscribe(events.append)
            result = Engine(load_workflow(folder), bus=bus, history=history,
                            options=RunOptions(capacity=cluster_capacity(c)),
                            executor_factory=lambda: DaskExecutor(c)).run([])
            assert result.status is RunStatus.SUCCEEDED
        history.flush()
        [fin] = [e for e in events if isinstance(e, TaskFinished)]
        assert fin.gpu_peak_mem == 1500 * 1024 ** 2
        assert fin.gpu_util == 60.0                   # its device's, not the other one's
        [attempt] = history.attempts(result.run_id)
        assert attempt.gpu_peak_mem == 1500 * 1024 ** 2 and attempt.gpu_util == 60.0
    finally:
        cluster.close()
        history.close()
