"""GPU memory and utilisation per attempt, sampled on a thread of its own.

The engine tells the sampler when a GPU task starts (``begin``) and asks for its
figures when it ends (``end``: never waits, the figures are what the samples so far
say). The sampler's thread asks NVML (else ``nvidia-smi --query-compute-apps`` and
``--query-gpu=uuid,utilization.gpu``) every ``every`` seconds which processes use
which device, and gives each process to the attempt whose environment it carries
(``GRISTMILL_RUN_ID``, ``GRISTMILL_TASK``, ``GRISTMILL_ATTEMPT``, read from
``/proc/PID/environ``): a task's commands and their children, whatever process
groups they make.

Peak memory: the most, over the samples, that the attempt's processes held on all
its devices together (memory they hold on other devices is not counted). Utilisation: the mean, over the samples, of its devices' mean
utilisation (a shared device's figure is the whole device's). An attempt that ended
before any sample has neither.
"""

from __future__ import annotations

import threading
from typing import Callable

from ..decide.gpus import sample_use

Key = tuple[str, int]          # (task, attempt)
EVERY = 0.5                    # seconds between samples


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            blob = f.read()
    except OSError:
        return {}
    out = {}
    for item in blob.split(b"\0"):
        name, eq, value = item.partition(b"=")
        if eq and name.startswith(b"GRISTMILL_"):
            out[name.decode(errors="replace")] = value.decode(errors="replace")
    return out


class _Figures:
    __slots__ = ("uuids", "mem_uuids", "peak", "util_sum", "util_n", "samples")

    def __init__(self, uuids: tuple[str, ...], mem_uuids: tuple[str, ...]):
        self.uuids = uuids
        self.mem_uuids = mem_uuids
        self.peak: int | None = None
        self.util_sum = 0.0
        self.util_n = 0
        self.samples = 0


class GpuSampler:
    def __init__(self, run_id: str, every: float = EVERY,
                 read: Callable = sample_use, environ: Callable[[int], dict] = _environ):
        self.run_id = run_id
        self.every = every
        self._read = read
        self._environ = environ
        self._lock = threading.Lock()
        self._active: dict[Key, _Figures] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def begin(self, task: str, attempt: int, uuids: tuple[str, ...],
              parents: tuple[str, ...] = ()) -> None:
        """``parents``: the GPUs of MIG instances among ``uuids`` (nvidia-smi may report a
        MIG instance's processes under its GPU's UUID); their memory counts, their
        utilisation (the whole GPU's) does not."""
        uuids = tuple(u for u in uuids if u)
        if not uuids:
            return
        mem_uuids = uuids + tuple(p for p in parents if p and p not in uuids)
        with self._lock:
            self._active[(task, attempt)] = _Figures(uuids, mem_uuids)
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="gristmill-gpu-sampler",
                                            daemon=True)
            self._thread.start()

    def end(self, task: str, attempt: int) -> tuple[int | None, float | None]:
        """(peak bytes, mean utilisation percent) of the attempt; None where unknown."""
        with self._lock:
            f = self._active.pop((task, attempt), None)
        if f is None or not f.samples:
            return None, None
        return f.peak, (f.util_sum / f.util_n if f.util_n else None)

    def close(self) -> None:
        """Stop sampling (does not wait for a sample under way)."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sample()
            except Exception:      # a sampler must never take the run down
                pass

    def sample(self) -> None:
        with self._lock:
            uuids = {u for f in self._active.values() for u in f.mem_uuids}
        if not uuids:
            return
        got = self._read(sorted(uuids))
        if got is None:
            return
        procs, util = got
        used: dict[tuple[Key, str], int] = {}     # (attempt, device UUID) -> bytes
        for pid, uuid, nbytes in procs:
            env = self._environ(pid)
            if env.get("GRISTMILL_RUN_ID") != self.run_id:
                continue
            try:
                key = (env["GRISTMILL_TASK"], int(env["GRISTMILL_ATTEMPT"]))
            except (KeyError, ValueError):
                continue
            used[(key, uuid)] = used.get((key, uuid), 0) + nbytes
        with self._lock:
            for key, f in self._active.items():
                f.samples += 1
                mem = sum(used.get((key, u), 0) for u in f.mem_uuids)
                f.peak = mem if f.peak is None or mem > f.peak else f.peak
                seen = [util[u] for u in f.uuids if u in util]
                if seen:
                    f.util_sum += sum(seen) / len(seen)
                    f.util_n += 1
