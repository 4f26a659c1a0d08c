"""Compute that lives as long as the run: a Dask cluster started for one run.

``plan_cluster`` sizes it from the capacity planner (``decide.simulate``): as many
workers as the run's peak useful parallelism (capped by ``max_workers``), each
shaped to hold the largest task that goes to it (CPU, MEM, GPU as Dask worker
resources, as ``run.dask`` asks for them). ``check_placement`` refuses, before the
run, a task no single worker can hold (each worker, not their sum). ``place``
says which tasks stay on this machine (``where = "local"``, or tiny ones whose
inputs are here). ``start_cluster(kind, settings, plan) -> SessionCluster``
starts it (``local``: a ``LocalCluster``; ``slurm``/``pbs``/``sge``/``lsf``:
dask-jobqueue; ``kubernetes``: dask-kubernetes where installed), waits for its
first worker (``timeout``; the queued jobs are cancelled when none comes) and
turns on Dask's adaptive scaling, so workers go as the remaining plan narrows.
``SessionExecutor`` is the engine's executor for such a run: the cluster starts
when the run does and is closed when it ends, fails or is cancelled.

``session_engine`` is the one code path from a workflow and its targets to an
``Engine`` of such a run (decide, size, place, books, executor): ``run --cluster``
and the app's "a cluster for the run" both call it.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from ..decide.capacity import Capacity, detect_cpus, detect_memory
from ..decide.graph import TaskGraph
from ..decide.simulate import simulate
from ..errors import GristmillError, UsageError, WorkflowError
from ..gpu import GpuDevice
from ..sizes import format_duration, format_size
from ..workflow import ClusterSettings, Task, Workflow
from .local import ExecNotice, Job, JobExited, LocalExecutor

KINDS = ("local", "slurm", "pbs", "sge", "lsf", "kubernetes")
BATCH = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster",
         "lsf": "LSFCluster"}
CANCEL = {"slurm": "scancel", "pbs": "qdel", "sge": "qdel", "lsf": "bkill"}
# The jobs a batch system still holds (pending, running, being cancelled), as argv.
LISTED = {"slurm": ["squeue", "-h", "-o", "%i", "-t",
                    "PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED"],
          "sge": ["qstat", "-u", "*"]}
LET_GO_SECONDS = 30.0         # at most this long for cancelled jobs to leave the queue
DEFAULT_TIMEOUT = 300.0       # seconds for the first worker to join
DEFAULT_JOB_MEMORY = 1 << 30  # a batch job's memory when no task says how much
TINY_SECONDS = 0.5            # a task this quick (from history) may stay here


class ClusterError(GristmillError):
    """The cluster could not be had: the reason, in words."""


@dataclass(frozen=True)
class WorkerShape:
    """What one worker offers."""

    cpu: float
    mem: int
    gpu: int = 0

    def holds(self, t: Task) -> bool:
        r = t.resources
        return r.cpu <= self.cpu + 1e-9 and r.mem <= self.mem and math.ceil(r.gpu) <= self.gpu

    def words(self) -> str:
        parts = [f"cpu = {self.cpu:g}", f"mem = {format_size(self.mem)}"]
        if self.gpu:
            parts.append(f"gpu = {self.gpu}")
        return ", ".join(parts)


@dataclass(frozen=True)
class ClusterPlan:
    """How big a cluster the run asks for."""

    workers: int                 # the peak useful parallelism, capped by max_workers
    shape: WorkerShape
    peak: int                    # the peak before the cap
    remote: tuple[str, ...] = ()   # the tasks that go to the cluster
    local: tuple[str, ...] = ()    # the tasks that stay here

    def capacity(self, pools: Mapping[str, int] | None = None, jobs: int | None = None,
                 here: Capacity | None = None) -> Capacity:
        """The engine's books: the planned workers (their GPUs device by device), plus
        this machine's CPUs and memory when tasks stay here."""
        n, s = self.workers, self.shape
        devices = tuple(GpuDevice(w * s.gpu + i, handle=str(i), name=f"worker {w}")
                        for w in range(n) for i in range(s.gpu))
        cpu, mem = n * s.cpu, n * s.mem
        if self.local and here is not None:
            cpu, mem = cpu + here.cpu, mem + here.mem
        return Capacity(cpu=float(cpu), mem=int(mem), gpu=len(devices),
                        pools=dict(pools or {}), jobs=jobs, devices=devices)

    def words(self) -> str:
        capped = f" (the plan could use {self.peak}; max_workers caps it)" \
            if self.peak > self.workers else ""
        here = f"; {len(self.local)} task{'s stay' if len(self.local) != 1 else ' stays'} here" \
            if self.local else ""
        return (f"{self.workers} worker{'s' if self.workers != 1 else ''} of "
                f"{self.shape.words()}{capped}{here}")


# -- placement and sizing ----------------------------------------------------------

def place(workflow: Workflow, graph: TaskGraph, names: Sequence[str],
          durations: Mapping[str, float], known: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(remote, local): the tasks that go to the cluster and those that stay here.

    Here: ``where = "local"``; a task with nothing to run; and, automatically, a
    tiny one (under ``TINY_SECONDS`` by its history, one CPU at most, no GPU) whose
    inputs are here: none is made on the cluster in this run. ``where = "cluster"``
    never stays.
    """
    tasks = workflow.tasks
    known = set(known)
    members = set(names)
    local: set[str] = set()
    for name in graph.order:
        if name not in members:
            continue
        t = tasks[name]
        if t.where == "local" or not t.commands:
            local.add(name)
            continue
        if t.where == "cluster":
            continue
        r = t.resources
        tiny = (name in known and durations.get(name, 1e9) < TINY_SECONDS
                and r.cpu <= 1 and not r.gpu)
        if tiny and all(d not in members or d in local for d in graph.deps(name)):
            local.add(name)
    remote = [n for n in names if n not in local]
    return remote, [n for n in names if n in local]


def job_shape(tasks: Iterable[Task], settings: ClusterSettings) -> WorkerShape:
    """One worker: what ``[cluster]`` says, else the largest ask of the tasks."""
    tasks = list(tasks)
    cpu = settings.cores if settings.cores is not None else \
        max([math.ceil(t.resources.cpu) for t in tasks] + [1])
    mem = settings.memory if settings.memory is not None else \
        max([t.resources.mem for t in tasks] + [DEFAULT_JOB_MEMORY])
    gpu = settings.gpus if settings.gpus is not None else \
        max([math.ceil(t.resources.gpu) for t in tasks] + [0])
    return WorkerShape(float(cpu), int(mem), int(gpu))


def check_placement(workflow: Workflow, names: Iterable[str],
                    shapes: Sequence[WorkerShape], where: str = "the cluster") -> None:
    """A task no single worker can ever hold is an error at the task, before the run.
    Each worker is asked alone: 8 CPUs in two workers of 4 cannot run a 6-CPU task."""
    if not shapes:
        return
    for name in names:
        t = workflow.tasks[name]
        if not t.commands or any(s.holds(t) for s in shapes):
            continue
        r = t.resources
        asked = [f"cpu = {r.cpu:g}"] + ([f"mem = {format_size(r.mem)}"] if r.mem else []) + \
            ([f"gpu = {r.gpu:g}"] if r.gpu else [])
        kinds = sorted({s.words() for s in shapes})
        raise WorkflowError(
            f"task {name!r} asks for {', '.join(asked)}, but no single worker of {where} "
            f"can hold it ({len(shapes)} worker{'s' if len(shapes) != 1 else ''} of "
            f"{' / '.join(kinds)}); a task runs on one worker, never across several",
            t.location, path=workflow.path)


def plan_cluster(workflow: Workflow, graph: TaskGraph, names: Sequence[str],
                 durations: Mapping[str, float], settings: ClusterSettings,
                 known: Iterable[str] = ()) -> ClusterPlan:
    """Size the cluster to this run: the planner's schedule of the tasks that go to it
    on unbounded workers gives the peak number running at once."""
    remote, local = place(workflow, graph, names, durations, known)
    tasks = [workflow.tasks[n] for n in remote]
    shape = job_shape(tasks, settings)
    fitting = [t.name for t in tasks if shape.holds(t)]
    peak = 0
    if fitting:
        n = len(fitting)
        wide = Capacity(cpu=shape.cpu * n, mem=shape.mem * n, gpu=shape.gpu * n,
                        pools=dict(workflow.pools), jobs=None,
                        devices=tuple(GpuDevice(i) for i in range(shape.gpu * n)))
        timed = {k: max(v, 1e-3) for k, v in durations.items()}
        p = simulate(workflow, graph, fitting, timed, wide, "the cluster")
        edges = sorted([(s.start, 1) for s in p.schedule] + [(s.end, -1) for s in p.schedule],
                       key=lambda e: (e[0], e[1]))
        now = 0
        for _, step in edges:
            now += step
            peak = max(peak, now)
    peak = max(peak, 1)
    workers = min(peak, settings.max_workers) if settings.max_workers else peak
    check_placement(workflow, remote, [shape] * workers)
    return ClusterPlan(workers, shape, peak, tuple(remote), tuple(local))


# -- starting and stopping ---------------------------------------------------------

def _walltime(seconds: float) -> str:
    s = int(math.ceil(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _resources_arg(shape: WorkerShape) -> str:
    parts = [f"CPU={shape.cpu:g}", f"MEM={shape.mem}"]
    if shape.gpu:
        parts.append(f"GPU={shape.gpu}")
    return ",".join(parts)


class SessionCluster:
    """A cluster started for one run: ``.client``, ``.workers()``, ``.close()``."""

    def __init__(self, kind: str, cluster, client, plan: ClusterPlan):
        self.kind = kind
        self.cluster = cluster
        self.client = client
        self.plan = plan
        self.started = time.time()
        self.job_ids: set[str] = set()
        self._closed = False
        self._lock = threading.Lock()
        self.note_jobs()

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def note_jobs(self) -> None:
        """Remember the batch job of each worker the cluster has now (any thread)."""
        for w in list(getattr(self.cluster, "workers", {}).values()):
            job_id = getattr(w, "job_id", None)
            if job_id:
                self.job_ids.add(str(job_id))

    def workers(self) -> list[dict]:
        """Each worker now: its address, name and declared resources."""
        self.note_jobs()
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return [{"address": a, "name": w.get("name"), "resources": dict(w.get("resources") or {}),
                 "nthreads": w.get("nthreads")} for a, w in info.items()]

    def close(self) -> None:
        """Close the client and the cluster; for a batch system, cancel every job it
        submitted that may still be queued or running. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self.note_jobs()
        except Exception:
            pass
        import logging
        for name in ("distributed", "dask_jobqueue", "distributed.client"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        try:
            self.client.close()
        except Exception:
            pass
        try:
            self.cluster.close()
        except Exception:
            pass
        cancel = CANCEL.get(self.kind)
        if cancel and self.job_ids:
            try:
                subprocess.run([cancel, *sorted(self.job_ids)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=30)
            except (OSError, subprocess.SubprocessError):
                pass
            self._let_go()

    def _held(self) -> set[str] | None:
        """This cluster's jobs the batch system still lists (None: it cannot be asked)."""
        argv = LISTED.get(self.kind)
        if argv is None:
            return None
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        if p.returncode:
            return None
        listed = {line.split()[0] for line in p.stdout.splitlines() if line.strip()}
        return listed & self.job_ids

    def _let_go(self) -> None:
        """Wait (at most ``LET_GO_SECONDS``) until the batch system no longer lists a job
        of this cluster: a cancel is asynchronous (Grid Engine's "dr", Slurm's
        completing), and nothing of the run is to be queued when it has ended."""
        deadline = time.monotonic() + LET_GO_SECONDS
        while self._held() and time.monotonic() < deadline:
            time.sleep(0.2)


def import_backend(kind: str):
    """The package that starts clusters of ``kind``, imported now (call it from the
    main thread before the run: dask-jobqueue sets a SIGINT handler as it is imported,
    which only the main thread may, and which would take Ctrl-C from the run; the
    handler that was there is put back). ``UsageError`` when it is not installed."""
    if kind not in KINDS:
        raise UsageError(f"--cluster {kind}: expected one of {', '.join(KINDS)}")
    from .dask_cluster import _distributed
    _distributed()
    if kind == "kubernetes":
        try:
            import dask_kubernetes.operator
        except ImportError:
            raise UsageError("--cluster kubernetes needs dask-kubernetes, which is not "
                             "installed here: pip install dask-kubernetes") from None
        return dask_kubernetes.operator
    if kind not in BATCH:
        return None
    import signal
    main = threading.current_thread() is threading.main_thread()
    old = signal.getsignal(signal.SIGINT) if main else None
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise UsageError(f"--cluster {kind} needs dask-jobqueue ({exc}); install it with: "
                         "pip install 'gristmill[cluster]'") from None
    finally:
        if main and old is not None:
            signal.signal(signal.SIGINT, old)
    return dask_jobqueue


def _batch_cluster(kind: str, settings: ClusterSettings, plan: ClusterPlan, log_dir: str):
    dask_jobqueue = import_backend(kind)
    cls = getattr(dask_jobqueue, BATCH[kind])
    shape = plan.shape
    options: dict = dict(
        cores=max(1, math.ceil(shape.cpu)), memory=f"{shape.mem}B", processes=1,
        job_name=f"gristmill-{os.getpid()}", log_directory=log_dir,
        worker_extra_args=["--resources", _resources_arg(shape)],
        scheduler_options={"dashboard_address": ":0"},
        job_script_prologue=list(settings.prologue or ()),
        job_extra_directives=list(settings.directives or ()))
    if settings.queue:
        options["queue"] = settings.queue
    if settings.account:
        options["account"] = settings.account
    if settings.walltime:
        options["walltime"] = _walltime(settings.walltime)
    if shape.gpu and kind == "slurm":
        options["job_extra_directives"].append(f"--gres=gpu:{shape.gpu}")
    import logging
    for name in ("distributed.deploy", "tornado.application", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)    # told below, in words
    try:
        cluster = cls(**options)
    except Exception as exc:
        raise ClusterError(f"dask-jobqueue could not set up a {kind} cluster: "
                           f"{' '.join(str(exc).split())}") from None
    try:
        # The jobs are submitted now, and waited for (Dask's own scale() submits them
        # in the background, where a refusal is only logged).
        while len(cluster.worker_spec) < plan.workers:
            cluster.worker_spec.update(cluster.new_worker_spec())
        cluster.sync(cluster._correct_state)
    except Exception as exc:    # sbatch/qsub/bsub said no: its own words
        text = str(exc)
        if "stderr:" in text:
            text = text.split("stderr:", 1)[1]
        text = " ".join(text.split())
        try:
            cluster.close()
        except Exception:
            pass
        raise ClusterError(f"the batch system ({kind}) refused the job script: {text}") from None
    return cluster


def _kube_cluster(settings: ClusterSettings, plan: ClusterPlan):
    """A ``KubeCluster`` (dask-kubernetes' operator) of the planned workers. No cluster
    to talk to (no kubeconfig, not inside a pod) is a ``ClusterError`` in words, and a
    half-made cluster is forgotten (dask-kubernetes would try to close it at exit, and
    print a traceback)."""
    try:
        import kr8s
        from dask_kubernetes.operator import KubeCluster
    except ImportError:
        raise UsageError("--cluster kubernetes needs dask-kubernetes, which is not installed "
                         "here: pip install dask-kubernetes") from None
    try:
        kr8s.api()
    except Exception as exc:
        raise ClusterError(
            f"no Kubernetes cluster can be reached from here ({' '.join(str(exc).split())}): "
            "--cluster kubernetes needs a kubeconfig (KUBECONFIG, or ~/.kube/config) or "
            "to run inside a pod, and the Dask operator installed in that cluster") from None
    s = plan.shape
    name = f"gristmill-{os.getpid()}"
    try:
        return KubeCluster(name=name, n_workers=plan.workers,
                           resources={"limits": {"cpu": str(s.cpu), "memory": str(s.mem)}},
                           worker_command=["dask-worker", "--resources", _resources_arg(s)])
    except Exception as exc:
        for cluster in list(getattr(KubeCluster, "_instances", ())):
            if getattr(cluster, "name", None) == name:
                KubeCluster._instances.discard(cluster)
        raise ClusterError(f"Kubernetes refused the cluster: {' '.join(str(exc).split())}") from None


def start_cluster(kind: str, settings: ClusterSettings, plan: ClusterPlan, *,
                  log_dir: str | None = None, cancelled: Callable[[], bool] | None = None,
                  adaptive: bool = True) -> SessionCluster:
    """Start a cluster of ``kind`` sized to ``plan``; wait for its first worker.

    Raises ``UsageError`` (an unknown kind, a missing package) or ``ClusterError``
    (refused, or no worker within ``settings.timeout``: its jobs are cancelled).
    """
    if kind not in KINDS:
        raise UsageError(f"--cluster {kind}: expected one of {', '.join(KINDS)}")
    from .dask_cluster import _distributed, local_cluster
    distributed = _distributed()
    if cancelled is not None and cancelled():      # before any job is submitted
        raise ClusterError("the run was cancelled before its cluster started")
    timeout = settings.timeout if settings.timeout is not None else DEFAULT_TIMEOUT
    if kind == "local":
        s = plan.shape
        # At most what this machine has: workers of one shape, as many as fit.
        fit = max(1, int(min(detect_cpus() // max(s.cpu, 1),
                             detect_memory() // max(s.mem, 1))))
        n = min(plan.workers, fit)
        if s.gpu:       # workers of one machine would hand out the same devices: one
            n = 1
        plan = ClusterPlan(n, s, plan.peak, plan.remote, plan.local)
        cluster = local_cluster(n, cpu=s.cpu * n, mem=s.mem * n,
                                gpu=s.gpu if n == 1 and s.gpu else None)
    elif kind == "kubernetes":
        cluster = _kube_cluster(settings, plan)
    else:
        cluster = _batch_cluster(kind, settings, plan,
                                 log_dir or tempfile.mkdtemp(prefix="gristmill-jobs-"))
    try:
        client = distributed.Client(cluster)
    except Exception as exc:
        cluster.close()
        raise ClusterError(f"cannot reach the cluster's scheduler: {exc}") from None
    session = SessionCluster(kind, cluster, client, plan)
    try:
        deadline = time.monotonic() + timeout
        while not client.scheduler_info(n_workers=-1)["workers"]:
            session.note_jobs()
            if cancelled is not None and cancelled():
                raise ClusterError("the run was cancelled while the cluster started")
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"the {kind} cluster got no worker in {format_duration(timeout)} "
                    f"(its {plan.workers} queued job{'s were' if plan.workers != 1 else ' was'}"
                    " cancelled); raise [cluster] timeout, or look at the queue")
            time.sleep(0.2)
        if adaptive:
            # Dask's target is the work in hand over target_duration, with each unknown
            # task taken as 0.5 s: two tasks of an hour would share one worker and the
            # other planned worker be retired (another batch job later). Gristmill
            # submits a task only when its books have room for it, so every task in the
            # scheduler is asked a slot of its own: the cluster narrows with the plan.
            cluster.adapt(minimum=1, maximum=plan.workers, wait_count=2, interval="500ms",
                          target_duration="1ms")
    except BaseException:
        session.close()
        raise
    return session


# -- the run's executor --------------------------------------------------------------

class SessionExecutor:
    """The engine's executor for a run with a cluster: starts it (as the run starts),
    sends each job to the cluster or keeps it here, and closes the cluster with the
    run. A cluster that cannot be had fails the run with the reason (a fatal notice),
    so history has the whole run."""

    def __init__(self, start: Callable[[], "SessionCluster"], local_names: Iterable[str],
                 on_started: Callable[["SessionExecutor"], None] | None = None,
                 health=None):
        """``on_started(self)``: told once the cluster has its first worker (the app's
        Workers view); ``health``: the ``WorkerHealth`` its ``DaskExecutor`` keeps."""
        self.session: SessionCluster | None = None
        self.problem = ""
        self.local_names = frozenset(local_names)
        self.local = LocalExecutor() if self.local_names else None
        self.remote = None
        self._where: dict[int, object] = {}
        self._pending: list = []
        try:
            self.session = start()
        except GristmillError as exc:
            self.problem = str(exc)
        except Exception as exc:     # whatever else a cluster's package raises: in words
            self.problem = f"the cluster could not start: {type(exc).__name__}: {exc}"
        if self.problem:
            self._pending.append(ExecNotice(self.problem, "cluster", fatal=True))
            return
        from .dask import DaskExecutor
        self.remote = DaskExecutor(self.session.client, health=health)
        if on_started is not None:
            on_started(self)

    @property
    def notice(self) -> str:
        if self.session is None:
            return ""
        return (f"a {self.session.kind} cluster was started for this run: "
                f"{self.session.plan.words()}")

    def process(self, job_id: int):
        ex = self._where.get(job_id)
        return ex.process(job_id) if isinstance(ex, LocalExecutor) else None

    @property
    def running(self) -> int:
        return sum(ex.running for ex in (self.local, self.remote) if ex is not None)

    def start(self, job: Job) -> None:
        if job.task.name in self.local_names and self.local is not None:
            ex = self.local
        elif self.remote is None:
            self._pending.append(JobExited(job.id, None, message=self.problem))
            return
        else:
            ex = self.remote
        self._where[job.id] = ex
        ex.start(job)

    def wait(self, timeout: float | None) -> list:
        if self._pending:
            out, self._pending = self._pending, []
            return out + self._poll(0)
        return self._poll(timeout)

    def _poll(self, timeout: float | None) -> list:
        both = [ex for ex in (self.local, self.remote) if ex is not None]
        if not both:
            return []
        if len(both) == 1:
            return both[0].wait(timeout)
        local, remote = both
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # The busy one blocks, in short slices; the other is looked at between.
            events = remote.wait(0) + local.wait(
                0.05 if deadline is None else max(0.0, min(0.05, deadline - time.monotonic())))
            events += remote.wait(0)
            if events or (deadline is not None and time.monotonic() >= deadline):
                return events

    def kill(self, job_id: int) -> None:
        ex = self._where.get(job_id)
        if ex is not None:
            ex.kill(job_id)

    def kill_all(self, now: bool = False) -> None:
        for ex in (self.local, self.remote):
            if ex is not None:
                ex.kill_all(now)

    def wakeup(self) -> None:
        for ex in (self.local, self.remote):
            if ex is not None:
                ex.wakeup()

    def close(self) -> None:
        try:
            for ex in (self.local, self.remote):
                if ex is not None:
                    ex.close()
        finally:
            if self.session is not None:
                self.session.close()


# -- the one path from a workflow to a run with a cluster -----------------------------

def session_engine(workflow: Workflow, kind: str, targets: Sequence[str],
                   settings: ClusterSettings, *, bus=None, history=None, options=None,
                   graph: TaskGraph | None = None, stamps=None, health=None,
                   on_started: Callable[[SessionExecutor], None] | None = None):
    """An ``Engine`` for a run of ``targets`` on a ``kind`` cluster started for it.

    The run's stale tasks are decided now, the cluster sized to them by the planner
    (``plan_cluster``: a task no worker can hold is a ``WorkflowError`` here, before
    anything runs), the engine's books are the planned workers (and this machine for
    the tasks that stay here), and its executor is a ``SessionExecutor`` that starts
    the cluster as the run starts and closes it as the run ends, fails or is
    cancelled (a cancel while it starts stops the wait for its first worker).
    Call ``import_backend(kind)`` on the main thread first."""
    from dataclasses import replace
    from ..decide.simulate import estimate_durations
    from .engine import Engine, RunOptions
    options = options if options is not None else RunOptions()
    here = Engine(workflow, options=options, graph=graph).capacity()
    # The machine's own fit is not asked (the tasks go to the cluster's workers; what no
    # worker can hold is told by plan_cluster, at the task).
    boundless = Capacity(cpu=1e12, mem=1 << 62, gpu=1024, pools=dict(workflow.pools), jobs=None,
                         devices=tuple(GpuDevice(i) for i in range(1024)))
    probe = Engine(workflow, history=history, options=replace(options, capacity=boundless),
                   stamps=stamps, executor_factory=SessionExecutor, graph=graph)
    _, decisions, _ = probe.decide(list(targets))
    stale = [n for n, d in decisions.items() if d.stale]
    known = history.recent_durations(str(workflow.path)) if history is not None else {}
    durations = estimate_durations(workflow, stale, known)
    plan = plan_cluster(workflow, probe.graph, stale, durations.seconds, settings, known)
    capacity = plan.capacity(workflow.pools, options.jobs, here)
    engine: list = []

    def cancelled() -> bool:
        return bool(engine and engine[0]._cancel)

    def executor() -> SessionExecutor:
        return SessionExecutor(lambda: start_cluster(kind, settings, plan, cancelled=cancelled),
                               plan.local, on_started=on_started, health=health)

    e = Engine(workflow, bus=bus, history=history, options=replace(options, capacity=capacity),
               executor_factory=executor, graph=probe.graph)
    engine.append(e)
    return e
