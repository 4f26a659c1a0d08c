"""What runs on a Dask worker: one job's commands, as ``LocalExecutor`` runs them.

``DaskExecutor`` submits ``run_job`` for each job. It runs the task's commands
in order on the worker, each as the argv the engine's side chose for it
(``[*shell, command]``, or the words of a plain command, as locally) in the
task's folder with the job's environment, in its own session (process group),
echoing each command first unless the task is silent, and stops at the first
failure unless that command's errors are ignored. Output is sent back
as it comes, in batches (at most every ``flush`` seconds), with
``Worker.log_event`` on the client's own topic; the last message of a job is
its end. Memory is sampled per process group as the local executor does: the
peak is reported and a tree over its declared ``mem`` is killed.

A kill arrives through ``Client.run(kill_jobs, tokens)`` on every worker: it
marks the tokens killed in the worker's books (so a job that has not started
yet never starts) and sends SIGTERM to their process groups; the job's own
loop sends SIGKILL after a grace period, as locally.

A worker that dies (SIGKILL, out of memory) leaves its jobs' process trees running:
they are in sessions of their own. Every command has its job's token in its
environment (``GRISTMILL_DASK_JOB``), and so has all it starts; ``fence_jobs`` (run
through ``Client.run`` on the nannies and the workers, which outlive a dead worker
on its machine) finds the processes of lost jobs by it, kills them with SIGKILL and
waits until they are gone, before the engine may start a retry anywhere.

This module imports only the standard library and ``distributed``, and the
executor ships it to workers by value (cloudpickle), so workers need Python
and ``distributed``, not Gristmill. For the same reason, state that must
outlive one call lives on the worker object (``_state``), not in module
globals: every call brings its own copy of this module's globals.
"""

from __future__ import annotations

import math
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time

KILL_GRACE = 1.0      # seconds between SIGTERM and SIGKILL
SAMPLE_EVERY = 0.25   # seconds between memory samples
FLUSH_BYTES = 64 * 1024
_STATE_ATTR = "gristmill_jobs"
JOB_VAR = "GRISTMILL_DASK_JOB"   # in every command's environment: the job's token
FENCE_WAIT = 5.0      # seconds to wait for a fenced job's processes to be gone


def _state(worker) -> dict:
    """This worker's books: running process groups, killed tokens, and its GPUs.

    The worker's devices are its own ``CUDA_VISIBLE_DEVICES`` (as the one who started
    it named them), else ``0 … GPU-1``, as many as its ``GPU`` resource; each has a free
    share (1.0: nobody holds any of it) and free memory (its part of ``GPU_MEM``, split
    evenly; None when the worker declares none).
    """
    state = worker.__dict__.get(_STATE_ATTR)
    if state is None:
        total = worker.state.total_resources
        count = int(math.ceil(total.get("GPU", 0) - 1e-9))
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [g.strip() for g in gpus.split(",") if g.strip()] if gpus \
            else [str(i) for i in range(count)]
        ids = ids[:count]
        per_mem = int(total["GPU_MEM"] // len(ids)) if ids and total.get("GPU_MEM") else None
        lock = threading.Lock()
        fresh = {"lock": lock, "pgids": {}, "killed": {}, "gpus": ids,
                 "gpu_freed": threading.Condition(lock),
                 "share": [1.0] * len(ids), "gpu_mem": [per_mem] * len(ids), "per_mem": per_mem}
        state = worker.__dict__.setdefault(_STATE_ATTR, fresh)
    return state


def _pick(state: dict, gpu: float, need: int) -> list[int] | None:
    """Positions of the worker's devices for a task (whole devices: the lowest free;
    a share or memory: the fullest device that still fits); None if none fit now.
    As ``decide.capacity.FreeCapacity.pick`` does in the engine (this module imports
    nothing of gristmill)."""
    share, mem, per = state["share"], state["gpu_mem"], state["per_mem"]
    if gpu >= 1:
        free = [p for p in range(len(share)) if share[p] >= 1 - 1e-9 and mem[p] == per
                and (per is None or per >= need)]
        return free[:int(gpu)] if len(free) >= int(gpu) else None
    fits = [p for p in range(len(share)) if share[p] + 1e-9 >= gpu
            and (not need or mem[p] is None or mem[p] >= need)]
    return [min(fits, key=lambda p: (share[p], mem[p] or 0))] if fits else None


def _book(state: dict, where: list[int], gpu: float, need: int, sign: int) -> None:
    share, mem, per = state["share"], state["gpu_mem"], state["per_mem"]
    for p in where:
        if gpu >= 1:
            share[p] = 0.0 if sign < 0 else 1.0
            mem[p] = (0 if sign < 0 else per) if per is not None else None
        else:
            share[p] = min(1.0, share[p] + sign * gpu)
            if mem[p] is not None:
                mem[p] += sign * need


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4096


def _group_stats(pgid: int):
    """The /proc stat fields (after the name) of each process in one process group."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            yield fields


def _group_memory(pgid: int) -> int:
    """Resident memory (bytes) of one process group, from /proc."""
    page = _page_size()
    return sum(int(fields[21]) * page for fields in _group_stats(pgid))


def _killpg(pgid: int, sig: int) -> None:
    if pgid:
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_jobs(tokens, dask_worker=None) -> list[str]:
    """Kill these jobs' process trees on this worker (run through ``Client.run``).

    A token not running here is remembered as killed, so that the job does
    not start should it arrive later. Returns the tokens whose trees were
    running here and got the signal.
    """
    state = _state(dask_worker)
    now = time.monotonic()
    hit = []
    with state["lock"]:
        for token in tokens:
            state["killed"].setdefault(token, now)
            pgid = state["pgids"].get(token)
            if pgid:
                _killpg(pgid, signal.SIGTERM)
                hit.append(token)
        # Forget marks for jobs that never came (a cancelled queued job): an hour is plenty.
        for token, when in list(state["killed"].items()):
            if now - when > 3600 and token not in state["pgids"]:
                del state["killed"][token]
    return hit


def _job_processes(marks: set[bytes]) -> dict[int, bytes]:
    """pid -> mark, for every live process on this machine whose environment holds one
    of ``marks`` (``GRISTMILL_DASK_JOB=<token>``: a job's commands and all they start)."""
    found = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
        except (OSError, IndexError):
            continue
        for var in env.split(b"\0"):
            if var in marks:
                found[int(entry)] = var
                break
    return found


def fence_jobs(tokens) -> list[str]:
    """Kill, with SIGKILL, every process on this machine that a job of ``tokens`` started
    (run through ``Client.run`` on nannies and workers alike), and wait until they are
    gone; the tokens that had any. For a job whose worker died: its commands live on,
    in sessions of their own, and must not write beside the retry. They are found by
    the mark in their environment, which all they start inherit, whatever session or
    process group they move to."""
    marks = {f"{JOB_VAR}={t}".encode() for t in tokens}
    hit: set[bytes] = set()
    deadline = time.monotonic() + FENCE_WAIT
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:    # twice found none: a fork between
        found = _job_processes(marks)                   # two looks is caught by the second
        quiet = 0 if found else quiet + 1
        for pid, mark in found.items():
            hit.add(mark)
            try:
                _killpg(os.getpgid(pid), signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.02)
    return [t for t in tokens if f"{JOB_VAR}={t}".encode() in hit]


class _Outbox:
    """Output of one job on its way to the client, batched."""

    def __init__(self, worker, topic: str, token: str, flush: float):
        self.worker = worker
        self.topic = topic
        self.token = token
        self.every = flush
        self.items: list[list] = []
        self.size = 0
        self.due: float | None = None
        self.sent = 0

    def send(self, kind: str, **fields) -> None:
        self.worker.log_event(self.topic, {"gristmill": kind, "token": self.token, **fields})

    def data(self, chunk: bytes) -> None:
        self._add(["b", chunk], len(chunk))

    def line(self, text: str) -> None:
        try:
            text.encode("utf-8")
            item = ["l", text]
        except UnicodeEncodeError:   # a name that is not UTF-8: its bytes, as they are
            item = ["L", text.encode("utf-8", "surrogateescape")]
        self._add(item, len(text))

    def _add(self, item: list, size: int) -> None:
        if self.due is None:
            self.due = time.monotonic() + self.every
        self.items.append(item)
        self.size += size
        if self.size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.items:
            self.send("out", seq=self.sent, items=self.items)
            self.sent += 1
        self.items, self.size, self.due = [], 0, None


SAMPLE_EVERY = 0.5        # seconds between a job's GPU samples on the worker


def _smi(*query: str) -> list[list[str]] | None:
    """Rows of ``nvidia-smi QUERY --format=csv,noheader,nounits``; None without it."""
    try:
        out = subprocess.run(["nvidia-smi", *query, "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode:
        return None
    return [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line]


def _device_uuids(state: dict) -> list[str]:
    """The UUID of each of the worker's devices (its words may be indices), asked once."""
    known = state.get("uuids")
    if known is None:
        rows = _smi("--query-gpu=index,uuid,name,memory.total,memory.used") or []
        by_index = {r[0]: r[1] for r in rows if len(r) > 1}
        known = state["uuids"] = [w if w.startswith(("GPU-", "MIG-")) else by_index.get(w, "")
                                  for w in state["gpus"]]
    return known


def _job_of(pid: str, token: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{JOB_VAR}={token}".encode() in f.read().split(b"\0")
    except OSError:
        return False


class _GpuFigures(threading.Thread):
    """Peak GPU memory and mean utilisation of one job's devices, sampled on the worker
    as the engine's sampler does on a machine of its own: the memory of the processes
    that carry the job's token, the utilisation of its devices."""

    def __init__(self, token: str, uuids: list[str]):
        super().__init__(name="gristmill-gpu-figures", daemon=True)
        self.token = token
        self.uuids = [u for u in uuids if u]
        self.peak: int | None = None
        self.util: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY):
            try:
                self.sample()
            except Exception:        # figures are a convenience: never the job's end
                pass

    def sample(self) -> None:
        apps = _smi("--query-compute-apps=pid,gpu_uuid,used_memory")
        if apps is None:
            return
        used = sum(int(float(r[2])) * 1024 * 1024 for r in apps
                   if len(r) > 2 and r[1] in self.uuids and _job_of(r[0], self.token))
        self.peak = used if self.peak is None or used > self.peak else self.peak
        rows = _smi("--query-gpu=uuid,utilization.gpu") or []
        seen = [float(r[1]) for r in rows if len(r) > 1 and r[0] in self.uuids]
        if seen:
            self.util.append(sum(seen) / len(seen))

    def figures(self) -> tuple[int | None, float | None]:
        self.stop.set()
        return self.peak, (sum(self.util) / len(self.util) if self.util else None)


class _Job:
    def __init__(self, spec: dict, worker, state: dict):
        self.spec = spec
        self.token = spec["token"]
        self.state = state
        self.out = _Outbox(worker, spec["topic"], self.token, spec.get("flush", 0.1))
        self.peak = 0
        self.killed = False
        self.kill_at: float | None = None
        self.over_memory = False
        self.pgid = 0

    # -- the books ------------------------------------------------------
    def _was_killed(self) -> bool:
        with self.state["lock"]:
            return self.token in self.state["killed"]

    def _take_gpus(self, gpu: float, need: int) -> list[int]:
        """The devices for this job, waiting while none fit: Dask counts the worker's
        ``GPU`` as one sum, and shares may be spread so that none has room yet."""
        if not (gpu or need) or not self.state["gpus"]:
            return []
        with self.state["gpu_freed"]:
            while True:
                where = _pick(self.state, gpu, need)
                if where is not None:
                    _book(self.state, where, gpu, need, -1)
                    return where
                if self.token in self.state["killed"]:
                    return []
                self.state["gpu_freed"].wait(1.0)

    def _give_gpus(self, where: list[int], gpu: float, need: int) -> None:
        if where:
            with self.state["gpu_freed"]:
                _book(self.state, where, gpu, need, +1)
                self.state["gpu_freed"].notify_all()

    # -- running --------------------------------------------------------
    def run(self) -> dict:
        spec = self.spec
        env = dict(spec["env"])
        env["GRISTMILL_WORKER"] = self.out.worker.address
        env[JOB_VAR] = self.token
        gpu, need = spec.get("gpu", 0), spec.get("gpu_mem", 0)
        where = self._take_gpus(gpu, need) if spec.get("cuda") else []
        if spec.get("cuda"):
            words = ",".join(self.state["gpus"][p] for p in where)
            env["CUDA_VISIBLE_DEVICES"] = words
            env["NVIDIA_VISIBLE_DEVICES"] = words
        watch = None
        if where and shutil.which("nvidia-smi"):
            uuids = _device_uuids(self.state)
            watch = _GpuFigures(self.token, [uuids[p] for p in where])
            watch.start()
        try:
            result = self._commands(env)
        finally:
            if watch is not None:
                result_gpu = watch.figures()
            self._give_gpus(where, gpu, need)
            with self.state["lock"]:
                self.state["pgids"].pop(self.token, None)
                self.state["killed"].pop(self.token, None)
        result["killed"] = self.killed
        result["over_memory"] = self.over_memory
        result["peak"] = self.peak or None
        if watch is not None:
            result["gpu_peak_mem"], result["gpu_util"] = result_gpu
        self.out.flush()
        result["sent"] = self.out.sent
        self.out.send("end", result=result)
        return result

    def _commands(self, env: dict) -> dict:
        spec = self.spec
        ignore = spec.get("ignore_errors", ())
        for index, (cmd, argv) in enumerate(zip(spec["commands"], spec["argvs"])):
            if self._was_killed():
                self.killed = True
                return {"code": None, "signal": signal.SIGTERM, "message": ""}
            if not spec.get("silent"):
                # As make does: the command goes into the output before it runs.
                for line in cmd.splitlines() or [""]:
                    self.out.line(line)
            try:
                proc = subprocess.Popen(
                    argv, cwd=spec["cwd"], env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True)
            except OSError as exc:
                self.out.line(f"gristmill: cannot start {argv[0]}: {exc.strerror or exc}")
                return {"code": 127, "signal": None, "message": _wire(str(exc))}
            code = self._follow(proc)
            ignored = index < len(ignore) and ignore[index]
            if self.killed:
                return {"code": None if code < 0 else code,
                        "signal": -code if code < 0 else None, "message": ""}
            if code != 0 and ignored:
                self.out.line(f"gristmill: exit status {code} ignored")
            if code != 0 and not ignored:
                return {"code": None if code < 0 else code,
                        "signal": -code if code < 0 else None, "message": ""}
        return {"code": 0, "signal": None, "message": ""}

    def _follow(self, proc: subprocess.Popen) -> int:
        """Stream one command's output until it exits; returns its exit code."""
        self.pgid = proc.pid
        with self.state["lock"]:
            self.state["pgids"][self.token] = self.pgid
            if self.token in self.state["killed"]:   # the kill came while it started
                _killpg(self.pgid, signal.SIGTERM)
        out_fd = proc.stdout.fileno()  # type: ignore[union-attr]
        os.set_blocking(out_fd, False)
        pidfd = os.pidfd_open(proc.pid)
        sel = selectors.DefaultSelector()
        sel.register(out_fd, selectors.EVENT_READ, "out")
        sel.register(pidfd, selectors.EVENT_READ, "exit")
        next_sample = time.monotonic() + SAMPLE_EVERY
        status = None
        try:
            while status is None:
                now = time.monotonic()
                due = [next_sample]
                if self.out.due is not None:
                    due.append(self.out.due)
                if self.kill_at is not None:
                    due.append(self.kill_at)
                for key, _ in sel.select(max(0.0, min(due) - now)):
                    if key.data == "out":
                        self._read(out_fd, sel)
                    else:
                        pid, st, usage = os.wait4(proc.pid, os.WNOHANG)
                        if pid:
                            status = os.waitstatus_to_exitcode(st)
                            self.peak = max(self.peak, usage.ru_maxrss * 1024)
                now = time.monotonic()
                if status is None:
                    self._watch(now)
                    if now >= next_sample:
                        next_sample = now + SAMPLE_EVERY
                        self._sample()
                if self.out.due is not None and now >= self.out.due:
                    self.out.flush()
            proc.returncode = status
            # Everything the command wrote is in the pipe: drain it, then let go, so a
            # background grandchild holding the pipe cannot hold the job open.
            while True:
                try:
                    chunk = os.read(out_fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not chunk:
                    break
                self.out.data(chunk)
            if self.killed:
                _killpg(self.pgid, signal.SIGKILL)   # the rest of the tree goes too
        finally:
            sel.close()
            os.close(pidfd)
            proc.stdout.close()  # type: ignore[union-attr]
            with self.state["lock"]:
                self.state["pgids"].pop(self.token, None)
        return status

    def _read(self, fd: int, sel) -> None:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.out.data(chunk)
        else:
            sel.unregister(fd)

    def _watch(self, now: float) -> None:
        """Notice a kill from ``kill_jobs`` and escalate it after the grace period."""
        if not self.killed and self._was_killed():
            self.killed = True
            self.kill_at = now + KILL_GRACE
        elif self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            _killpg(self.pgid, signal.SIGKILL)

    def _sample(self) -> None:
        if self.killed:
            return
        rss = _group_memory(self.pgid)
        self.peak = max(self.peak, rss)
        limit = self.spec.get("mem_limit")
        if limit and rss > limit:
            self.over_memory = True
            self.out.line(f"gristmill: killed: the task used {_size(rss)}, "
                          f"over its declared mem of {_size(limit)}")
            with self.state["lock"]:
                self.state["killed"].setdefault(self.token, time.monotonic())
            self.killed = True
            self.kill_at = time.monotonic() + KILL_GRACE
            _killpg(self.pgid, signal.SIGTERM)


def run_job(spec: dict) -> dict:
    """Run one job's commands on this worker; the body of every Dask task Gristmill submits.

    ``spec``: token, topic, commands, argvs (one per command), silent, cwd, env,
    ignore_errors, mem_limit,
    gpu (whole devices, or a share of one below 1), gpu_mem (bytes on that device),
    cuda (set CUDA_VISIBLE_DEVICES and NVIDIA_VISIBLE_DEVICES to this worker's GPUs),
    flush (seconds between output batches). Commands also get
    ``GRISTMILL_WORKER``, the worker's address. Returns (and sends as the job's
    last message) code, signal, message, killed, over_memory, peak, sent.
    """
    from distributed import get_worker

    worker = get_worker()
    job = _Job(spec, worker, _state(worker))
    job.out.send("start", pid=os.getpid(), worker=worker.address)
    return job.run()


def _wire(text: str) -> str:
    """Text Dask's messages can carry (UTF-8): a non-UTF-8 name's bytes as ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _size(n: int) -> str:
    """As ``sizes.format_size`` (this module imports nothing of gristmill): never "0 MB"
    for a limit of a few bytes."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
