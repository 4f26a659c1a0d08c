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
