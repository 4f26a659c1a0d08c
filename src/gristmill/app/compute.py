"""Where the app's runs go: this machine, a Dask scheduler, or a cluster started for the run.

The app's one seam to ``core.run.dask*``. ``Compute`` holds the chosen kind, the live
connection (kept for a scheduler's address; started and closed with each run for a
session cluster) and the ``WorkerHealth`` its executors share, so that the Workers
view shows and changes the same books the run reads. ``ClusterEngine`` connects (or
starts the cluster) on the engine thread, sizes the run from the workers, runs the
engine with a ``DaskExecutor``, and closes a session cluster however the run ends.

Cluster kinds are ``CLUSTER_STARTERS`` (kind -> a callable returning a
``DaskConnection``): ``local`` now; the batch kinds are listed in ``CLUSTER_KINDS``
and greyed in the app until a starter is registered for them. Pure Python.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

from gristmill.core.errors import UsageError

HERE, DASK, CLUSTER = "here", "dask", "cluster"
RUN_ON_TITLES = {HERE: "This machine", DASK: "A Dask scheduler", CLUSTER: "A cluster for the run"}
CLUSTER_KINDS = ("local", "slurm", "pbs", "sge", "lsf", "kubernetes")


def _local():
    from gristmill.core.run.dask_cluster import connect
    return connect("local")


CLUSTER_STARTERS: dict[str, Callable[[], object]] = {"local": _local}


def cluster_available(kind: str) -> bool:
    return kind in CLUSTER_STARTERS


@dataclass(frozen=True)
class WorkerRow:
    """One worker as the Workers view shows it."""
    address: str
    name: str
    cpu: float
    mem: int
    gpu: int
    running: tuple[str, ...]       # the tasks it runs now
    out: bool                      # out of rotation
    why: str                       # why it is out (or "")


def task_of_key(key: object) -> str:
    """A Dask key of ``DaskExecutor.start`` (``<task>-<32 hex token>``) -> the task."""
    text = key if isinstance(key, str) else str(key)
    head, dash, token = text.rpartition("-")
    return head if dash and len(token) == 32 else text


class Compute:
    """The app's choice of where runs go, and the connection it holds for them."""

    def __init__(self):
        from gristmill.core.run.dask_health import WorkerHealth
        self.kind = HERE
        self.address = ""
        self.cluster_kind = "local"
        self.connection = None            # a DaskConnection while one is held
        self.started_at: float | None = None    # the session cluster's start
        self.ended_at: float | None = None      # ... and its end
        self.health = WorkerHealth()
        self.executors: list = []         # the DaskExecutors of the latest remote run
        self._lock = threading.Lock()

    def configure(self, kind: str, address: str = "", cluster_kind: str = "local") -> None:
        """A new choice (Preferences, the toolbar): a held connection that no longer fits
        is closed."""
        kind = kind if kind in RUN_ON_TITLES else HERE
        if (kind, address, cluster_kind) != (self.kind, self.address, self.cluster_kind):
            self.close()
        self.kind, self.address, self.cluster_kind = kind, address.strip(), cluster_kind

    @property
    def remote(self) -> bool:
        return self.kind != HERE

    def describe(self) -> str:
        if self.kind == DASK:
            return f"the Dask scheduler at {self.address or '(no address)'}"
        if self.kind == CLUSTER:
            return f"a {self.cluster_kind} cluster started for the run"
        return "this machine"

    def lifetime(self, now: float | None = None) -> str:
        """The session cluster's lifetime in words ("" for other kinds)."""
        from gristmill.core.sizes import format_duration
        if self.kind != CLUSTER:
            return ""
        if self.started_at is None:
            return "No cluster now: one is started when a run starts, and closed when it ends."
        if self.ended_at is not None:
            return (f"The last run's cluster lived {format_duration(self.ended_at - self.started_at)};"
                    " it was closed when the run ended.")
        return (f"Started {format_duration((now or time.time()) - self.started_at)} ago for "
                "this run; closed when the run ends, fails or is cancelled.")

    # -- the connection ------------------------------------------------------------
    def open(self):
        """The connection for a run (called on the engine thread)."""
        from gristmill.core.run.dask_health import WorkerHealth
        with self._lock:
            if self.kind == DASK:
                if not self.address:
                    raise UsageError("Run on a Dask scheduler: no address is set "
                                     "(Edit > Preferences, e.g. tcp://host:8786)")
                if self.connection is None or getattr(self.connection.client, "status",
                                                      "") != "running":
                    from gristmill.core.run.dask_cluster import connect
                    self.connection = connect(self.address)
            elif self.kind == CLUSTER:
                starter = CLUSTER_STARTERS.get(self.cluster_kind)
                if starter is None:
                    raise UsageError(f"a {self.cluster_kind} cluster is not available here")
                self.close()
                self.connection = starter()
                self.started_at, self.ended_at = time.time(), None
            else:
                raise UsageError("runs go to this machine: no cluster to open")
            # The books of one run; a worker a person took out of a scheduler's
            # rotation stays out in the next run on it.
            self.executors = []
            old, self.health = self.health, WorkerHealth()
            if self.kind == DASK:
                for worker in sorted(old.out & old.by_hand):
                    self.health.take_out(worker, old.why.get(worker, "taken out by hand"))
            return self.connection

    def run_ended(self) -> None:
        """A session cluster goes with its run; a scheduler's connection is kept."""
        if self.kind == CLUSTER:
            self.close()
            self.ended_at = time.time()

    def close(self) -> None:
        conn, self.connection = self.connection, None
        if conn is not None:
            try:
                conn.close()
            except Exception:       # a scheduler already gone: nothing left to close
                pass

    def placed(self) -> dict[tuple[str, int], str]:
        """(task, attempt) -> the worker it ran on, in the latest remote run (any thread)."""
        out: dict[tuple[str, int], str] = {}
        for ex in list(self.executors):
            for _ in range(3):
                try:
                    out.update(dict(ex.placed))
                    break
                except RuntimeError:      # changed by the engine thread meanwhile
                    continue
        return out

    # -- the Workers view ----------------------------------------------------------
    def workers(self) -> list[WorkerRow]:
        """Each worker now: resources, the tasks it runs, its health (any thread)."""
        conn = self.connection
        if conn is None:
            return []
        from gristmill.core.run.dask_cluster import _declared, _worker_amounts
        client = conn.client
        info = client.scheduler_info(n_workers=-1)["workers"]
        processing = client.processing()
        declared = _declared(list(info.values()))
        health = self.health
        rows = []
        for address, w in sorted(info.items()):
            a = _worker_amounts(w, declared)
            rows.append(WorkerRow(address, str(w.get("name", "")), float(a["CPU"]),
                                  int(a["MEM"]), int(a["GPU"]),
                                  tuple(sorted(task_of_key(k) for k in processing.get(address, ()))),
                                  address in health.out, health.why.get(address, "")))
        return rows


def lane_word(worker: str) -> str:
    """A worker's address, short enough for a timeline lane: ``tcp://10.0.0.5:4012`` ->
    ``10.0.0.5:4012``; on this machine, ``:4012``."""
    text = worker.split("://", 1)[-1]
    host, _, port = text.rpartition(":")
    return f":{port}" if host in ("127.0.0.1", "localhost", "::1", "[::1]") else text


def worker_lanes(bars, placed: dict[tuple[str, int], str]):
    """The timeline's bars with a lane per worker slot: each worker's attempts in lanes
    of their own (as many as ran there at once), workers in address order; attempts not
    placed on a worker yet after them. Returns (bars, lane names)."""
    from dataclasses import replace as _replace
    by_worker: dict[str, list] = {}
    for b in bars:
        by_worker.setdefault(placed.get((b.task, b.attempt), ""), []).append(b)
    out, names = [], []
    for worker in sorted(by_worker, key=lambda w: (w == "", w)):
        ends: list[float] = []            # per lane of this worker: when it is free again
        base = len(names)
        for b in sorted(by_worker[worker], key=lambda b: (b.start, b.task)):
            end = b.end if b.end is not None else float("inf")
            lane = next((i for i, e in enumerate(ends) if e <= b.start), None)
            if lane is None:
                lane = len(ends)
                ends.append(end)
                names.append(f"{lane_word(worker)} · {lane + 1}" if worker else "not placed")
            else:
                ends[lane] = end
            out.append(_replace(b, slot=base + lane))
    return out, names


class ClusterEngine:
    """An engine run on ``compute``'s cluster: what the bridge runs (``RunnableEngine``).

    Connecting (or starting the cluster) happens in ``run``, on the engine thread, so
    the window never waits on the network; an unreachable scheduler ends the run with
    its reason in words (a ``UsageError``)."""

    def __init__(self, compute: Compute, make_engine: Callable[..., object], options):
        self.compute = compute
        self._make = make_engine       # (options, executor_factory) -> Engine
        self._options = options
        self._engine = None
        self._cancelled = False
        self._lock = threading.Lock()

    def run(self, targets: list[str]):
        from gristmill.core.run.dask import DaskExecutor
        from gristmill.core.run.dask_cluster import cluster_capacity
        compute = self.compute
        try:
            conn = compute.open()
            health = compute.health
            capacity = cluster_capacity(conn.client, self._options.capacity.pools,
                                        self._options.jobs)
            def executor():
                ex = DaskExecutor(conn.client, health=health)
                compute.executors.append(ex)
                return ex

            engine = self._make(replace(self._options, capacity=capacity), executor)
            with self._lock:
                self._engine = engine
                if self._cancelled:
                    raise UsageError("the run was cancelled before the cluster was ready")
            return engine.run(targets)
        finally:
            compute.run_ended()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            engine = self._engine
        if engine is not None:
            engine.cancel()

    def cancel_task(self, name: str) -> None:
        if self._engine is not None:
            self._engine.cancel_task(name)

    def restart_task(self, name: str, why: str) -> None:
        if self._engine is not None:
            self._engine.restart_task(name, why)
