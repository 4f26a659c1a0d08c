"""Dask clusters for Gristmill: connecting, starting a local one, and its size.

``connect`` reaches a scheduler (or starts ``local_cluster``); ``cluster_capacity``
sums what the workers declare (``CPU``, ``MEM``, ``GPU``) for the engine's packing.
``distributed`` is imported here only, through ``_distributed``, which says how to
install it when it is missing.
"""

from __future__ import annotations

import math
import signal
import threading
from typing import Mapping

from . import dask_worker as remote
from ..decide.capacity import Capacity, counted_devices, detect_cpus, detect_memory, \
    machine_devices
from ..gpu import GpuDevice
from ..errors import UsageError

INSTALL_HINT = "pip install 'gristmill[dask]'"
UNBOUNDED_MEM = 1 << 60  # a worker with no memory limit and no MEM declared
# Run in each worker of ``local_cluster`` as it starts: a terminal's Ctrl-C reaches the
# whole foreground process group, workers included; the engine cancels the run and
# kills the trees, so the workers must live on. A Python handler (not SIG_IGN) so that
# the commands they start get the default again at exec.
_WORKER_IGNORES_SIGINT = """
import signal
try:
    signal.signal(signal.SIGINT, lambda signum, frame: None)
except ValueError:   # not the main thread
    pass
"""
RESOURCE_NAMES = ("CPU", "MEM", "GPU", "GPU_MEM")


def _distributed():
    """The ``distributed`` package, or a ``UsageError`` saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise UsageError(f"running on Dask needs the 'distributed' package ({exc}); "
                         f"install it with: {INSTALL_HINT}") from None
    import cloudpickle
    # Workers get dask_worker.py by value: they need distributed, not Gristmill.
    if remote.__name__ not in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.register_pickle_by_value(remote)
    return distributed


# -- clusters ----------------------------------------------------------------------

class DaskConnection:
    """A client, and the local cluster behind it when Gristmill started one."""

    def __init__(self, client, cluster=None):
        self.client = client
        self.cluster = cluster

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def close(self) -> None:
        if getattr(self.client, "status", "running") == "connecting":
            # The scheduler is gone (the run has said so, in one line): closing stops the
            # client's attempts to reconnect, which Dask logs as tracebacks.
            import logging
            logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self) -> "DaskConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def local_cluster(n_workers: int = 1, *, cpu: float | None = None, mem: int | None = None,
                  gpu: int | None = None, threads: int | None = None, **kwargs):
    """A ``LocalCluster`` of worker processes that declare CPU, MEM and GPU resources.

    By default one worker holds the whole machine (so packing is the same as
    running locally); ``cpu``, ``mem`` and ``gpu`` are totals split evenly
    between ``n_workers``. GPUs are only declared with one worker, since
    workers of one machine would otherwise hand out the same devices. The worker
    gets the devices this process may use (``gpu`` given: that many, ``0 … gpu-1``):
    ``GPU`` (their count), ``GPU_MEM`` (their memory, when known) and a
    ``CUDA_VISIBLE_DEVICES`` naming them as they are named here.
    """
    distributed = _distributed()
    import dask

    cpu = float(cpu if cpu is not None else detect_cpus())
    mem = int(mem if mem is not None else detect_memory())
    devices: tuple[GpuDevice, ...] = ()
    if gpu is not None:
        devices = counted_devices(int(gpu))
    elif n_workers == 1:
        devices = machine_devices()
    per_cpu, per_mem = cpu / n_workers, mem // n_workers
    resources: dict[str, float] = {"CPU": per_cpu, "MEM": per_mem}
    worker_env: dict[str, str] = {}
    if devices and n_workers == 1:
        resources["GPU"] = len(devices)
        if all(d.mem for d in devices):
            resources["GPU_MEM"] = sum(d.mem for d in devices)
        worker_env["CUDA_VISIBLE_DEVICES"] = ",".join(d.word for d in devices)
    elif devices:
        resources["GPU"] = len(devices) // n_workers
    options = dict(n_workers=n_workers, processes=True, memory_limit=per_mem,
                   threads_per_worker=threads or max(4, 2 * math.ceil(per_cpu)),
                   resources=resources, dashboard_address=":0",
                   preload=[_WORKER_IGNORES_SIGINT])
    if worker_env:
        options["env"] = worker_env
    options.update(kwargs)
    # Worker processes born now ignore SIGINT until their preload takes over.
    main = threading.current_thread() is threading.main_thread()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            return distributed.LocalCluster(**options)
    finally:
        if main:
            signal.signal(signal.SIGINT, old)


def connect(address: str, timeout: float | None = None) -> DaskConnection:
    """Connect to a scheduler (``tcp://host:8786``), or start a local cluster (``local``).

    ``timeout`` (seconds) applies to reaching the scheduler and to waiting for
    its first worker; by default Dask's ``distributed.comm.timeouts.connect``.
    """
    distributed = _distributed()
    if timeout is None:
        import dask
        from dask.utils import parse_timedelta
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"))
    if address == "local":
        cluster = local_cluster()
        return DaskConnection(distributed.Client(cluster), cluster)
    try:
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        client.close()
        raise UsageError(f"the Dask scheduler at {address} has no workers") from None
    return DaskConnection(client)


def _workers(client) -> list[dict]:
    return list(client.scheduler_info(n_workers=-1)["workers"].values())


def _declared(workers: list[dict]) -> set[str]:
    return {name for w in workers for name in (w.get("resources") or {})
            if name in RESOURCE_NAMES}


def _worker_amounts(w: dict, declared: set[str]) -> dict[str, float]:
    """What one worker offers, per resource name, as Gristmill counts it."""
    res = w.get("resources") or {}
    return {
        "CPU": res.get("CPU", 0) if "CPU" in declared else w.get("nthreads", 0),
        "MEM": res.get("MEM", 0) if "MEM" in declared else (w.get("memory_limit") or UNBOUNDED_MEM),
        "GPU": res.get("GPU", 0),
        "GPU_MEM": res.get("GPU_MEM", 0),
    }


def cluster_capacity(client, pools: Mapping[str, int] | None = None,
                     jobs: int | None = None) -> Capacity:
    """The cluster's size, summed over its workers now, for the engine's packing.

    Per worker: declared ``CPU`` (else its threads), declared ``MEM`` (else
    its memory limit; unbounded without one) and declared ``GPU`` (else 0).
    Named pools are the workflow's own (``pools``): Dask does not see them.
    """
    workers = _workers(client)
    declared = _declared(workers)
    cpu = mem = 0.0
    largest = 0.0
    devices: list[GpuDevice] = []
    for w in workers:
        a = _worker_amounts(w, declared)
        cpu += a["CPU"]
        mem += a["MEM"]
        largest = max(largest, a["MEM"])
        count = int(a["GPU"])
        # Its devices, as the engine books them: numbered across the cluster, each with
        # its part of the worker's GPU_MEM. Which of its own each task gets, and under
        # what name, is the worker's to say (dask_worker).
        per = int(a["GPU_MEM"] // count) if count and a["GPU_MEM"] else 0
        for i in range(count):
            devices.append(GpuDevice(len(devices), mem=per, handle=str(i),
                                     name=str(w.get("id") or w.get("name") or "")))
    return Capacity(cpu=float(cpu), mem=int(min(mem, UNBOUNDED_MEM)), gpu=len(devices),
                    pools=dict(pools or {}), jobs=jobs, devices=tuple(devices),
                    largest_mem=int(min(largest, UNBOUNDED_MEM)) if workers else None)
