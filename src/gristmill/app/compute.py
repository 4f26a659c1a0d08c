"""Where the app's runs go: this machine, a Dask scheduler, or a cluster started for the run.

The app's one seam to ``core.run.dask*`` and ``core.run.clusters``. ``Compute`` holds
the chosen kind, the live connection (kept for a scheduler's address; for a session
cluster, the core's ``SessionCluster`` while its run lasts) and the ``WorkerHealth``
its executors share, so that the Workers view shows and changes the same books the
run reads. ``ClusterEngine`` is what the bridge runs: on the engine thread it connects
to a scheduler and runs the engine with a ``DaskExecutor``, or, for a cluster for the
run, builds the engine through ``clusters.session_engine`` (the code path of
``gristmill run --cluster KIND``: sized from the run's plan, started as the run starts,
closed as it ends, fails or is cancelled).

Every kind of ``clusters.KINDS`` can be chosen where its package is installed
(``cluster_missing`` says what is not); settings come from the workflow's
``[cluster]`` over the user's ``cluster.toml``. Pure Python.
"""

from __future__ import annotations

import importlib.util
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

from gristmill.core.errors import UsageError

HERE, DASK, CLUSTER = "here", "dask", "cluster"
RUN_ON_TITLES = {HERE: "This machine", DASK: "A Dask scheduler", CLUSTER: "A cluster for the run"}
CLUSTER_KINDS = ("local", "slurm", "pbs", "sge", "lsf", "kubernetes")
# What each kind needs besides distributed: (module, the package to install).
_BACKENDS = {"local": ("distributed", "pip install 'gristmill[dask]'"),
             "kubernetes": ("dask_kubernetes", "pip install dask-kubernetes")}


def cluster_missing(kind: str) -> str:
    """Why a ``kind`` cluster cannot be started here ("" when it can): the package that
    is not installed, and how to install it. Nothing is imported to find out."""
    module, how = _BACKENDS.get(kind, ("dask_jobqueue", "pip install 'gristmill[cluster]'"))
    for name in dict.fromkeys(("distributed", module)):
        if importlib.util.find_spec(name) is None:
            package = name.replace("_", "-")
            return f"a {kind} cluster needs {package}, which is not installed here: {how}"
    return ""


def cluster_available(kind: str) -> bool:
    return kind in CLUSTER_KINDS and not cluster_missing(kind)


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
        self.connection = None            # a DaskConnection or SessionCluster while held
        self.starting = False             # a session cluster waits for its first worker
        self.started_at: float | None = None    # the session cluster's start
        self.ended_at: float | None = None      # ... and its end
        self.session = None               # the latest run's SessionCluster (kept for words)
        self.health = WorkerHealth()
        self.executors: list = []         # the DaskExecutors of the latest remote run
        self.here: frozenset[str] = frozenset()   # ... and the tasks it kept on this machine
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
        session = self.session
        if self.starting:
            return (f"Starting a {self.cluster_kind} cluster for this run: waiting for its "
                    "first worker…")
        if self.started_at is None or session is None:
            return "No cluster now: one is started when a run starts, and closed when it ends."
        what = f"A {session.kind} cluster of {session.plan.words()}"
        jobs = sorted(session.job_ids, key=lambda j: (len(j), j))
        if jobs:
            what += f" (batch job{'s' if len(jobs) != 1 else ''} {', '.join(jobs)})"
        if self.ended_at is not None:
            return (f"{what}: the last run's cluster lived "
                    f"{format_duration(self.ended_at - self.started_at)}; it was closed when "
                    "the run ended.")
        return (f"{what}. Started {format_duration((now or time.time()) - self.started_at)} "
                "ago for this run; closed when the run ends, fails or is cancelled.")

    # -- the connection ------------------------------------------------------------
    def open(self):
        """The connection to a Dask scheduler for a run (called on the engine thread)."""
        from gristmill.core.run.dask_health import WorkerHealth
        with self._lock:
            if self.kind != DASK:
                raise UsageError(f"runs go to {self.describe()}: no scheduler to connect to")
            if not self.address:
                raise UsageError("Run on a Dask scheduler: no address is set "
                                 "(Edit > Preferences, e.g. tcp://host:8786)")
            if self.connection is None or getattr(self.connection.client, "status",
                                                  "") != "running":
                from gristmill.core.run.dask_cluster import connect
                self.connection = connect(self.address)
            # The books of one run; a worker a person took out of a scheduler's
            # rotation stays out in the next run on it.
            self.executors, self.here = [], frozenset()
            old, self.health = self.health, WorkerHealth()
            for worker in sorted(old.out & old.by_hand):
                self.health.take_out(worker, old.why.get(worker, "taken out by hand"))
            return self.connection

    def begin_session(self) -> None:
        """A run on a cluster started for it begins (engine thread): new books, no
        connection until the cluster has its first worker."""
        from gristmill.core.run.dask_health import WorkerHealth
        with self._lock:
            self.close()
            self.executors = []
            self.here = frozenset()
            self.health = WorkerHealth()
            self.session = None
            self.started_at = self.ended_at = None
            self.starting = True

    def session_started(self, executor) -> None:
        """The core's ``SessionExecutor`` has its cluster (engine thread): the Workers
        view and the timeline read it from now on."""
        with self._lock:
            self.session = executor.session
            self.connection = executor.session
            self.started_at, self.ended_at = executor.session.started, None
            self.starting = False
            self.executors = [executor.remote]
            self.here = frozenset(executor.local_names)

    def run_ended(self) -> None:
        """A session cluster goes with its run (the core has closed it already; closing
        again is a no-op); a scheduler's connection is kept."""
        if self.kind == CLUSTER:
            self.close()
            self.starting = False
            if self.started_at is not None:
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
        note_jobs = getattr(conn, "note_jobs", None)     # a session cluster's batch jobs
        if note_jobs is not None:
            note_jobs()
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


HERE_LANE = "this machine"      # a run with a cluster: the tasks that stay here


def worker_lanes(bars, placed: dict[tuple[str, int], str], here: frozenset[str] = frozenset()):
    """The timeline's bars with a lane per worker slot: each worker's attempts in lanes
    of their own (as many as ran there at once), workers in address order; then the
    tasks of ``here`` (they stay on this machine in a run with a cluster); attempts not
    placed on a worker yet after them. Returns (bars, lane names)."""
    from dataclasses import replace as _replace
    by_worker: dict[str, list] = {}
    for b in bars:
        worker = placed.get((b.task, b.attempt)) or (HERE_LANE if b.task in here else "")
        by_worker.setdefault(worker, []).append(b)
    out, names = [], []
    for worker in sorted(by_worker, key=lambda w: (w == "", w == HERE_LANE, w)):
        ends: list[float] = []            # per lane of this worker: when it is free again
        base = len(names)
        for b in sorted(by_worker[worker], key=lambda b: (b.start, b.task)):
            end = b.end if b.end is not None else float("inf")
            lane = next((i for i, e in enumerate(ends) if e <= b.start), None)
            if lane is None:
                lane = len(ends)
                ends.append(end)
                word = worker if worker == HERE_LANE else lane_word(worker)
                names.append(f"{word} · {lane + 1}" if worker else "not placed")
            else:
                ends[lane] = end
            out.append(_replace(b, slot=base + lane))
    return out, names


class ClusterEngine:
    """An engine run on ``compute``'s cluster: what the bridge runs (``RunnableEngine``).

    Connecting (or deciding, sizing and starting the cluster for the run) happens in
    ``run``, on the engine thread, so the window never waits on the network. An
    unreachable scheduler ends the run with its reason in words (a ``UsageError``); a
    cluster that cannot be had fails the run with its reason (history has it).

    ``make_engine(options, executor_factory)``: an Engine on a scheduler's workers;
    ``make_session(targets, health, on_started)``: the Engine of a run with a cluster
    started for it (``clusters.session_engine``)."""

    def __init__(self, compute: Compute, make_engine: Callable[..., object], options,
                 make_session: Callable[..., object] | None = None):
        self.compute = compute
        self._make = make_engine       # (options, executor_factory) -> Engine
        self._make_session = make_session
        self._options = options
        self._engine = None
        self._cancelled = False
        self._lock = threading.Lock()

    def run(self, targets: list[str]):
        compute = self.compute
        try:
            if compute.kind == CLUSTER:
                if self._make_session is None:
                    raise UsageError("no cluster can be started for this run")
                compute.begin_session()
                engine = self._make_session(targets, compute.health, compute.session_started)
            else:
                engine = self._scheduler_engine(compute)
            with self._lock:
                self._engine = engine
                cancelled = self._cancelled
            if cancelled:
                if compute.kind != CLUSTER:
                    raise UsageError("the run was cancelled before the cluster was ready")
                engine.cancel()       # the run is recorded, cancelled, before any job
            return engine.run(targets)
        finally:
            compute.run_ended()

    def _scheduler_engine(self, compute: Compute):
        from gristmill.core.run.dask import DaskExecutor
        from gristmill.core.run.dask_cluster import cluster_capacity
        conn = compute.open()
        health = compute.health
        capacity = cluster_capacity(conn.client, self._options.capacity.pools,
                                    self._options.jobs)

        def executor():
            ex = DaskExecutor(conn.client, health=health)
            compute.executors.append(ex)
            return ex

        return self._make(replace(self._options, capacity=capacity), executor)

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
