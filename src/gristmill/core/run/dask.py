"""Running jobs on a Dask cluster, behind the same ``Executor`` interface.

The engine's one loop does not change: it packs tasks against the cluster's
capacity (``cluster_capacity``), calls ``start``, ``wait``, ``kill``. Each job
becomes one Dask task (``remote.run_job``) that runs the task's commands on a
worker exactly as ``LocalExecutor`` runs them locally, and asks Dask for the
worker resources ``CPU``, ``MEM`` (bytes), ``GPU`` (devices; a share asks its
fraction, ``GPU=0.25``) and ``GPU_MEM`` (bytes of GPU memory) that the task declares,
so that Dask places it on a worker with room for it. Workers started by
``local_cluster`` (``gristmill run --dask local``) declare those resources; on
a cluster of your own, start the workers with them, e.g.::

    dask worker tcp://sched:8786 --nthreads 16 --resources "CPU=8 MEM=32e9 GPU=2 GPU_MEM=160e9"

(start it with ``CUDA_VISIBLE_DEVICES`` naming its GPUs when it may use only some).

A name no worker declares is not asked for (a cluster declaring none gets no
resource constraints at all, and its capacity is counted from threads and
memory limits). Give workers more threads than CPU: a thread only waits on
the task's processes, and the resources do the packing.

What crosses the wire:

- Output comes back while a job runs, in batches (``flush`` seconds apart),
  through the scheduler's event log on the client's own topic; this side
  splits it into lines (``JobOutput``) and writes the attempt's log file at
  ``job.log_path``. Commands run in ``task.cwd`` on the worker: the workflow
  folder must be the same path on every worker (a shared filesystem, as for
  make on NFS), and outputs are checked and cleaned up by the engine here.
- Commands get the engine's whole environment (as ``srun``'s default does),
  the task's env, and ``CUDA_VISIBLE_DEVICES`` (and ``NVIDIA_VISIBLE_DEVICES``) naming
  devices of *their* worker, as its own ``CUDA_VISIBLE_DEVICES`` names them; the worker
  books shares and memory per device (``dask_worker``).
- A kill is ``Client.run(remote.kill_jobs)`` on every worker, from a
  background thread so the engine never blocks on the network; a job not yet
  running is also cancelled.
- A worker that leaves the cluster ends its jobs' attempts as failed
  ("worker tcp://… died"), so the engine's retries place them again; but first
  they are fenced: a worker killed by SIGKILL leaves its commands running (they
  are in sessions of their own), so ``remote.fence_jobs`` runs on every nanny
  and worker and kills, with SIGKILL, every process the lost jobs started on
  their machine (found by ``GRISTMILL_DASK_JOB=<token>`` in their environment,
  which all they start inherit), and the attempt ends only once they are gone.
  Two attempts never write one output.
  A whole machine gone (its nanny too) cannot be fenced: its processes went with it.
- A scheduler that goes away cancels every future: the running attempts fail
  (not cancelled: their commands may still run on the workers, beyond reach,
  and what they write is not trusted), a fatal ``ExecNotice`` says so in one
  line, the engine retries none of them and starts nothing more, and the run
  ends failed at once, without waiting for the client's reconnect timeout. The
  cluster ``local_cluster`` starts has ``allowed-failures: 0`` so Dask does
  not rerun them itself. On your own scheduler set it too
  (``distributed.scheduler.allowed-failures: 0``); otherwise Dask starts the
  job again elsewhere at once, Gristmill kills that rerun, and the attempt
  ends only after it (so the engine's clean-up of partial outputs comes last).
- Bad workers go out of rotation (``WorkerHealth``): after two tasks failed
  on a worker and then succeeded elsewhere (or commands could not start
  there), no more jobs are sent to it in this run; a circuit breaker keeps at
  least half the workers. Each verdict is in the attempt's log and, as an
  ``ExecNotice`` (a ``RunNotice`` event), on the console for the whole run. A
  retry prefers a worker other than the one its last attempt failed on.
  Commands see their worker as ``GRISTMILL_WORKER``.

``distributed`` is an optional extra (``pip install 'gristmill[dask]'``): it is
imported in ``dask_cluster.py`` only, and a clear ``UsageError`` says how to install
it. Connecting and sizing a cluster live there; the bad-worker books in
``dask_health.py``; what runs on the workers in ``dask_worker.py``.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Mapping

from . import dask_worker as remote
from .dask_cluster import DaskConnection, _declared, _distributed, _worker_amounts, connect
from .dask_health import WorkerHealth
from .local import ExecEvent, ExecNotice, Job, JobExited, JobOutputLog, direct_argv
from ..sizes import format_size
from ..workflow import Resources

FLUSH_EVERY = 0.1        # seconds between output batches from a running job
END_GRACE = 5.0          # seconds to wait for a finished job's last output to arrive



# -- one client's subscriptions, shared by its executors ------------------------------

class _Hub:
    """Routes one client's event messages to the executors using that client.

    A client has one handler per topic, so executors on one client share
    these two: the client's own topic (job messages, by token) and ``all``
    (a worker leaving the cluster).
    """

    def __init__(self, client):
        self.client = client
        self.routes: dict[str, "DaskExecutor"] = {}      # token -> executor
        self.executors: set["DaskExecutor"] = set()
        self.lock = threading.Lock()

    def attach(self, ex: "DaskExecutor") -> None:
        with self.lock:
            if not self.executors:
                self.client.subscribe_topic(self.client.id, self._on_job)
                self.client.subscribe_topic("all", self._on_cluster)
            self.executors.add(ex)

    def detach(self, ex: "DaskExecutor") -> None:
        with self.lock:
            self.executors.discard(ex)
            if self.executors:
                return
            for topic in (self.client.id, "all"):
                try:
                    self.client.unsubscribe_topic(topic)
                except Exception:   # a closed client: nothing is subscribed any more
                    pass

    # These run on the client's event-loop thread: hand over, never block.
    def _on_job(self, event) -> None:
        msg = event[1]
        if isinstance(msg, dict) and "gristmill" in msg:
            ex = self.routes.get(msg.get("token"))
            if ex is not None:
                ex._post(("msg", msg))

    def _on_cluster(self, event) -> None:
        msg = event[1]
        action = msg.get("action") if isinstance(msg, dict) else None
        if action == "remove-worker":
            keys = frozenset(msg.get("processing-tasks") or ())
            for ex in list(self.executors):
                ex._post(("gone", msg.get("worker"), keys, bool(msg.get("expected"))))
        elif action == "add-worker":
            for ex in list(self.executors):
                ex._post(("joined", msg.get("worker")))


_HUBS: "weakref.WeakKeyDictionary[object, _Hub]" = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def _hub(client) -> _Hub:
    with _HUBS_LOCK:
        hub = _HUBS.get(client)
        if hub is None:
            hub = _HUBS[client] = _Hub(client)
        return hub


# -- the executor ----------------------------------------------------------------------

@dataclass(slots=True, eq=False)
class _Remote:
    job: Job
    token: str
    future: object = None
    started: bool = False           # its "start" message came: it runs on ``worker``
    worker: str | None = None
    killed: bool = False
    out: JobOutputLog | None = None  # its log file and the line not yet ended
    received: int = 0               # output batches received
    end: dict | None = None         # its result, waiting for output batches still under way
    done: bool = False              # the Dask future finished
    grace_until: float | None = None
    lost: str | None = None         # its worker left: why; it ends once no rerun can be running
    rerun: bool = False             # Dask started it again elsewhere (being killed)
    fenced: bool = False            # what its dead worker left running was killed
    no_rerun: bool = False          # Dask will not (or no longer) run it anywhere


class DaskExecutor:
    """Runs jobs as Dask tasks on a cluster; the engine's loop is the same as locally."""

    samples_gpus = True      # each worker samples its jobs' GPUs (JobExited carries them)

    def __init__(self, client_or_address, *, flush: float = FLUSH_EVERY,
                 health: WorkerHealth | None = None):
        distributed = _distributed()
        self._connection: DaskConnection | None = None
        if isinstance(client_or_address, str):
            self._connection = connect(client_or_address)
            client = self._connection.client
        else:
            client = client_or_address
        self._client = client
        self._killed_worker = distributed.KilledWorker
        self._flush = flush
        self._declared: set[str] = set()
        self._offers: dict[str, dict[str, float]] = {}     # worker address -> what it offers
        self._alive: set[str] = set()
        self.health = health or WorkerHealth()
        # (task, attempt) -> the worker it started on: the app's timeline lanes per worker
        self.placed: dict[tuple[str, int], str] = {}
        self._look_at_workers()
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._jobs: dict[int, _Remote] = {}
        self._by_token: dict[str, _Remote] = {}
        self._events: list[ExecEvent] = []
        self._kills: queue.SimpleQueue = queue.SimpleQueue()
        self._killer: threading.Thread | None = None
        self._closed = False
        self._lost_scheduler: str | None = None     # why nothing can run any more
        try:
            self._address = str(client.scheduler.address)
        except AttributeError:
            self._address = "?"
        self._hub = _hub(client)
        self._hub.attach(self)

    @property
    def client(self):
        return self._client

    @property
    def running(self) -> int:
        return len(self._jobs)

    # -- starting -----------------------------------------------------------------
    def _look_at_workers(self) -> None:
        """What each worker offers; again whenever workers join or leave.

        Workers that left are remembered: one being restarted (by its nanny) must
        not make a task that it can hold look impossible meanwhile.
        """
        workers = self._client.scheduler_info(n_workers=-1)["workers"]
        self._declared |= _declared(list(workers.values()))
        for address, w in workers.items():
            self._offers[address] = _worker_amounts(w, self._declared)
        self._alive = set(workers)
        self._workers_changed = False

    def _placement(self, task_name: str) -> dict:
        """Dask ``workers=`` for a job: never one out of rotation; a retry away from
        the worker its last attempt failed on, where another can take it."""
        allowed = self._alive - self.health.out
        avoid = self.health.failed_on(task_name)
        preferred = allowed - {avoid} if avoid else allowed
        if preferred == self._alive or not preferred:
            if not self.health.out or not allowed:
                return {}
            preferred = allowed
        return {"workers": sorted(preferred), "allow_other_workers": not self.health.out}

    def request(self, r: Resources) -> dict[str, float]:
        """The Dask worker resources a task asks for: only names the cluster declares."""
        wanted = {"CPU": r.cpu, "MEM": r.mem, "GPU": r.gpu, "GPU_MEM": r.gpu_mem}
        return {k: float(v) for k, v in wanted.items() if v and k in self._declared}

    def _unplaceable(self, req: Mapping[str, float]) -> str | None:
        """Why no worker could ever hold ``req`` (the cluster's sum may be big enough)."""
        offers = list(self._offers.values())
        if not req or any(all(o.get(k, 0) >= v for k, v in req.items()) for o in offers):
            return None
        names = {"CPU": "cpu", "MEM": "mem", "GPU": "gpu", "GPU_MEM": "gpu_mem"}
        show = (lambda k, v: format_size(int(v)) if k in ("MEM", "GPU_MEM") else f"{v:g}")
        too_big = []
        for k, v in req.items():
            most = max((o.get(k, 0) for o in offers), default=0)
            if v > most:
                too_big.append(f"{names[k]} = {show(k, v)}, but the largest Dask worker "
                               f"has {show(k, most)}")
        if too_big:
            return "the task asks for " + "; ".join(too_big)
        asked = ", ".join(f"{names[k]} = {show(k, v)}" for k, v in req.items())
        return f"no single Dask worker has {asked} at once"

    def start(self, job: Job) -> None:
        task = job.task
        r = _Remote(job, uuid.uuid4().hex, out=JobOutputLog(job.id, job.log_path))
        self._jobs[job.id] = r
        self._by_token[r.token] = r
        if not task.commands:
            self._finish(r, 0)
            return
        if self._lost_scheduler is None and self._client.status != "running":
            self._scheduler_gone()
        if self._lost_scheduler is not None:
            self._finish(r, None, message=self._lost_scheduler)
            return
        if self._workers_changed:
            try:
                self._look_at_workers()
            except Exception:   # keep what we knew; the submit below will tell
                pass
        req = self.request(task.resources)
        problem = self._unplaceable(req)
        if problem:
            self._line(r, f"gristmill: {problem}")
            self._finish(r, None, message=problem)
            return
        spec = {
            "token": r.token, "topic": self._client.id, "commands": list(task.commands),
            "argvs": [direct_argv(task.shell, c) or [*task.shell, c] for c in task.commands],
            "silent": task.silent or not job.echo, "cwd": task.cwd, "env": dict(job.env),
            "ignore_errors": list(task.ignore_errors), "mem_limit": job.mem_limit,
            "gpu": task.resources.gpu, "gpu_mem": task.resources.gpu_mem,
            "cuda": "GPU" in self._declared, "flush": self._flush,
        }
        self._hub.routes[r.token] = self
        try:
            r.future = self._client.submit(remote.run_job, spec,
                                           key=f"{remote._wire(task.name)}-{r.token}",
                                           resources=req or None, pure=False, retries=0,
                                           **self._placement(task.name))
        except Exception as exc:    # the client lost its scheduler
            message = f"Dask: cannot submit: {type(exc).__name__}: {exc}"
            self._line(r, f"gristmill: {message}")
            self._finish(r, None, message=message)
            return
        r.future.add_done_callback(lambda f, token=r.token: self._post(("done", token, f)))

    # -- waiting ------------------------------------------------------------------
    def _post(self, item: tuple) -> None:
        self._inbox.put(item)

    def wait(self, timeout: float | None) -> list[ExecEvent]:
        """Block until output, an end, or ``wakeup`` (or ``timeout`` seconds); return events."""
        if not self._events:
            graces = [r.grace_until for r in self._jobs.values() if r.grace_until is not None]
            if graces:
                until = max(0.0, min(graces) - time.monotonic())
                timeout = until if timeout is None else min(timeout, until)
            try:
                if timeout is None or timeout > 0:
                    item = self._inbox.get(True, timeout)
                else:
                    item = self._inbox.get_nowait()
            except queue.Empty:
                item = None
            while item is not None:
                self._apply(item)
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    item = None
            self._expire_graces()
        events, self._events = self._events, []
        return events

    def _apply(self, item: tuple) -> None:
        kind = item[0]
        if kind == "msg":
            self._message(item[1])
        elif kind == "done":
            r = self._by_token.get(item[1])
            if r is not None:
                self._future_done(r, item[2])
        elif kind == "gone":
            self._workers_changed = True
            self._alive.discard(item[1])
            self._worker_gone(*item[1:])
        elif kind == "joined":
            self._workers_changed = True
            self._alive.add(item[1])
        elif kind == "killed":
            self._kill_report(*item[1:])

    def _message(self, msg: dict) -> None:
        r = self._by_token.get(msg.get("token"))
        if r is None:
            return
        what = msg["gristmill"]
        if r.lost is not None:
            # A rerun Dask started elsewhere before the kill reached it: it is being
            # killed; its output is not this attempt's. Its end means it is over.
            if what == "start":
                r.rerun = True
            elif what == "end":
                r.no_rerun = True
                if r.fenced:
                    self._finish(r, None, message=r.lost)
            return
        if what == "start":
            r.started = True
            r.worker = msg.get("worker")
            if r.worker:
                self.placed[(r.job.task.name, r.job.attempt)] = r.worker
        elif what == "out":
            r.received += 1
            for kind, data in msg["items"]:
                if kind == "b":
                    self._data(r, data)
                elif kind == "L":       # a line as bytes: a file name that is not UTF-8
                    self._line(r, data.decode("utf-8", "surrogateescape"))
                else:
                    self._line(r, data)
            if r.end is not None and r.received >= r.end.get("sent", 0):
                self._finish_result(r, r.end)
        elif what == "end":
            result = msg["result"]
            if r.received >= result.get("sent", 0):
                self._finish_result(r, result)
            else:   # an output batch is still under way
                r.end = result
                r.grace_until = time.monotonic() + END_GRACE

    def _future_done(self, r: _Remote, future) -> None:
        r.done = True
        status = future.status
        if r.lost is not None:
            if status == "error" and isinstance(self._exception(future), self._killed_worker):
                r.no_rerun = True                         # Dask gave up: no rerun anywhere
                if r.fenced:
                    self._finish(r, None, message=r.lost)
            return
        if status == "finished":
            if r.end is None:   # its "end" message is still under way
                r.grace_until = time.monotonic() + END_GRACE
            return
        if status == "cancelled":
            if not r.killed and self._client.status != "running":
                self._scheduler_gone()      # Dask cancels every future it loses with it
                return
            self._finish(r, None, message="" if r.killed else "the Dask task was cancelled")
            return
        exc = self._exception(future)
        if isinstance(exc, self._killed_worker):
            worker = getattr(getattr(exc, "last_worker", None), "address", None) or r.worker
            r.no_rerun = True
            self._lose([r], f"worker {worker} died")
            return
        message = f"Dask: {type(exc).__name__}: {exc}"
        self._line(r, f"gristmill: {message}")
        self._finish(r, None, message=message)

    def _scheduler_gone(self) -> None:
        """The client lost its scheduler: every running attempt fails (not cancelled:
        their commands may still run on the workers, out of reach, so what they wrote
        is not to be trusted) and nothing more can start. One notice says so, first,
        so that the engine retries none of them."""
        if self._lost_scheduler is not None:
            return
        self._lost_scheduler = f"the Dask scheduler at {self._address} was lost"
        running = [r for r in self._jobs.values() if r.future is not None]
        self._events.append(ExecNotice(
            f"{self._lost_scheduler}: the run stops"
            + (f"; {len(running)} running command{'s' if len(running) != 1 else ''} may "
               "still run on the workers, and what they write is not trusted"
               if running else ""), "scheduler-lost", fatal=True))
        for r in running:
            self._line(r, f"gristmill: {self._lost_scheduler}")
            self._finish(r, None, message=self._lost_scheduler)

    @staticmethod
    def _exception(future) -> BaseException:
        try:
            return future.exception(timeout=END_GRACE)
        except Exception as err:   # the scheduler is gone too
            return err

    def _worker_gone(self, worker: str, keys: frozenset, expected: bool) -> None:
        lost = [r for r in self._jobs.values()
                if r.lost is None and r.future is not None
                and (r.future.key in keys or (r.started and r.worker == worker))]
        if not lost:
            return
        # A scheduler that allows failures starts them again elsewhere at once. The attempt
        # ends only when no such rerun can be running, so the engine's clean-up of partial
        # outputs and its retry never overlap with it: the kill's report says whether one
        # was, and then its end is awaited.
        self._lose(lost, f"worker {worker} {'left the cluster' if expected else 'died'}")

    def _lose(self, lost: list[_Remote], message: str) -> None:
        """These attempts' worker is gone. Their commands may live on there (a worker
        killed by SIGKILL leaves its children), so they are fenced first: their process
        trees killed through the nannies and workers of every machine
        (``remote.fence_jobs``); the attempts end after that, so a retry never writes
        beside them."""
        for r in lost:
            r.lost = message
            r.grace_until = time.monotonic() + 2 * END_GRACE
            if r.future is not None:
                r.future.cancel()
            self._line(r, f"gristmill: {message}")
        self._send_kill([r.token for r in lost], fence=True)

    def _kill_report(self, tokens: list[str], hit: set[str], fenced: set[str]) -> None:
        for token in tokens:
            r = self._by_token.get(token)
            if r is None or r.lost is None or (token not in fenced and not r.fenced):
                continue
            r.fenced = True
            if token in hit and not r.no_rerun:
                r.rerun = True
            elif not r.rerun or r.no_rerun:
                self._finish(r, None, message=r.lost)

    def _expire_graces(self) -> None:
        now = time.monotonic()
        for r in list(self._jobs.values()):
            if r.grace_until is None or now < r.grace_until:
                continue
            r.grace_until = None
            if r.lost is not None:
                self._finish(r, None, message=r.lost)
                continue
            if r.end is not None:       # output was lost on the way: end with what came
                self._finish_result(r, r.end)
                continue
            try:
                result = r.future.result(timeout=END_GRACE)
            except Exception as exc:
                self._finish(r, None, message=f"Dask: {type(exc).__name__}: {exc}")
                continue
            self._finish_result(r, result)

    # -- output -------------------------------------------------------------------
    def _data(self, r: _Remote, data: bytes) -> None:
        r.out.data(data, self._events)  # type: ignore[union-attr]

    def _line(self, r: _Remote, text: str) -> None:
        r.out.line(text, self._events)  # type: ignore[union-attr]

    # -- ending ---------------------------------------------------------------------
    def _finish_result(self, r: _Remote, res: dict) -> None:
        name, workers = r.job.task.name, len(self._alive | self.health.out)
        if res.get("code") == 0 and not res.get("killed"):
            verdict = self.health.succeeded(r.worker, name, workers)
        elif not res.get("killed") and not res.get("over_memory"):
            verdict = self.health.failed(r.worker, name, res.get("code") == 127 and
                                         bool(res.get("message")), workers)
        else:
            verdict = None
        if verdict:       # in the attempt's log, and on the console for the whole run
            self._line(r, f"gristmill: {verdict}")
            self._events.append(ExecNotice(verdict, "circuit-breaker" if verdict.startswith(
                "circuit breaker") else "worker-out"))
        self._finish(r, res.get("code"), res.get("signal"), res.get("peak"),
                     message=res.get("message") or "", over_memory=bool(res.get("over_memory")),
                     killed=r.killed or bool(res.get("killed")) and not res.get("over_memory"),
                     gpu=(res.get("gpu_peak_mem"), res.get("gpu_util")))

    def _finish(self, r: _Remote, code: int | None, sig: int | None = None,
                peak: int | None = None, message: str = "", over_memory: bool = False,
                killed: bool | None = None,
                gpu: tuple[int | None, float | None] = (None, None)) -> None:
        r.out.close(self._events)  # type: ignore[union-attr]
        self._jobs.pop(r.job.id, None)
        self._by_token.pop(r.token, None)
        self._hub.routes.pop(r.token, None)
        r.future = None                 # let Dask forget the key
        killed = r.killed if killed is None else killed
        self._events.append(JobExited(r.job.id, code, sig, peak or None, killed or over_memory,
                                      message, over_memory,
                                      r.out.trouble, *gpu))  # type: ignore[union-attr]

    # -- killing --------------------------------------------------------------------
    def kill(self, job_id: int) -> None:
        r = self._jobs.get(job_id)
        if r is None or r.killed:
            return
        r.killed = True
        if r.future is None:
            return
        self._send_kill([r.token])
        if not r.started:
            # Not running yet (as far as we know): take it out of Dask's queue. Should it
            # have started after all, the kill above reaches its process tree.
            r.future.cancel()

    def kill_all(self, now: bool = False) -> None:
        # ``now`` changes nothing here: the workers' kill handler keeps its own grace.
        live = [r for r in self._jobs.values() if not r.killed]
        for r in live:
            r.killed = True
        tokens = [r.token for r in live if r.future is not None]
        if tokens:
            self._send_kill(tokens)
        for r in live:
            if r.future is not None and not r.started:
                r.future.cancel()

    def _send_kill(self, tokens: list[str], fence: bool = False) -> None:
        if self._killer is None:
            self._killer = threading.Thread(target=self._kill_loop, name="gristmill-dask-kill",
                                            daemon=True)
            self._killer.start()
        self._kills.put((tokens, fence))

    def _kill_loop(self) -> None:
        while True:
            item = self._kills.get()
            if item is None:
                return
            tokens, fence_tokens = list(item[0]), list(item[0]) if item[1] else []
            stop = False
            while True:     # one broadcast for every kill asked for meanwhile
                try:
                    more = self._kills.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                tokens += more[0]
                if more[1]:
                    fence_tokens += more[0]
            fenced = set(fence_tokens)
            if fence_tokens:
                self._fence(fence_tokens)
            hit = self._broadcast_kill(tokens)
            self._post(("killed", tokens, hit, fenced))
            if stop:
                return

    def _fence(self, tokens: list[str]) -> None:
        """Kill what lost jobs left running on any machine of the cluster: through the
        nannies (a dead worker's nanny lives on) and the workers."""
        for nanny in (True, False):
            try:
                self._client.run(remote.fence_jobs, tokens, nanny=nanny, on_error="ignore")
            except Exception:   # no nannies, or the cluster is going away
                pass

    def _broadcast_kill(self, tokens: list[str]) -> set[str]:
        """Kill on every worker; returns the tokens that had a process tree running."""
        try:
            results = self._client.run(remote.kill_jobs, tokens, on_error="ignore")
        except Exception:   # the cluster is going away: nothing left to kill there
            return set()
        return {t for hit in results.values() if isinstance(hit, list) for t in hit}

    def wakeup(self) -> None:
        """Make a blocked ``wait`` return (thread-safe)."""
        self._inbox.put(("wake",))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        live = list(self._jobs.values())
        if live:
            if self._lost_scheduler is None:        # else nobody is there to ask
                self._broadcast_kill([r.token for r in live])
            for r in live:
                if r.future is not None:
                    r.future.cancel()
                r.out.close()  # type: ignore[union-attr]
            self._jobs.clear()
        if self._killer is not None:
            self._kills.put(None)
            self._killer.join(timeout=10 if self._lost_scheduler is None else 1)
        for token in list(self._by_token):
            self._hub.routes.pop(token, None)
        self._by_token.clear()
        self._hub.detach(self)
        if self._connection is not None:
            self._connection.close()
