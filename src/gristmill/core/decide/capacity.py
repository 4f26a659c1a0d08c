"""What the machine has (cpu, memory, GPUs, named pools), and what is free now."""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from ..errors import WorkflowError
from ..gpu import GpuDevice
from ..sizes import format_size
from ..workflow import CapacityOverride, Resources, Task

EPS = 1e-9


@dataclass(frozen=True)
class Capacity:
    """``gpu`` is the number of devices; ``devices`` says which (made up as ``0 … gpu-1``,
    memory not known, when only a count is given)."""

    cpu: float
    mem: int
    gpu: int = 0
    pools: Mapping[str, int] = field(default_factory=dict)
    jobs: int | None = None            # -j N: at most N tasks at once
    devices: tuple[GpuDevice, ...] = ()
    largest_mem: int | None = None     # a cluster: the most memory one worker has

    def __post_init__(self) -> None:
        if self.devices:
            object.__setattr__(self, "devices", tuple(self.devices))
            object.__setattr__(self, "gpu", len(self.devices))
        elif self.gpu:
            object.__setattr__(self, "devices", counted_devices(int(self.gpu)))

    def describe(self) -> str:
        parts = [f"{self.cpu:g} cpu", f"{format_size(self.mem)} memory", f"{self.gpu} gpu"]
        if self.jobs:
            parts.append(f"{self.jobs} jobs")
        return ", ".join(parts)


def detect_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def detect_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 1000**3


def counted_devices(n: int, after: Sequence[GpuDevice] = ()) -> tuple[GpuDevice, ...]:
    """``n`` devices known only by a count, numbered after those in ``after``."""
    first = max((d.index for d in after), default=-1) + 1
    return tuple(GpuDevice(i, handle=str(i)) for i in range(first, first + n))


def detect_gpus() -> int:
    """How many GPU devices this process may use (``gpus.detect_devices``)."""
    from .gpus import detect_devices
    return len(detect_devices())


def machine_devices(override: CapacityOverride | None = None,
                    found: Sequence[GpuDevice] | None = None) -> tuple[GpuDevice, ...]:
    """The GPUs tasks may be handed: those detected (``found``: already detected) that
    ``[capacity]`` keeps (``gpu_mem_used_below``: only the idle ones; ``gpu = N``: the
    first N, or N made up when fewer are found)."""
    override = override or CapacityOverride()
    if override.gpu == 0:
        return ()
    if found is None:
        from .gpus import detect_devices
        found = detect_devices()
    devices = tuple(found)
    if override.gpu_mem_used_below is not None:
        from .gpus import below_use
        devices = below_use(devices, override.gpu_mem_used_below)
    if override.gpu is not None:
        devices = devices[:override.gpu]
        devices += counted_devices(override.gpu - len(devices), devices)
    return devices


def detect_capacity(override: CapacityOverride | None = None,
                    pools: Mapping[str, int] | None = None,
                    jobs: int | None = None) -> Capacity:
    """The local machine, with the workflow's ``[capacity]`` and ``-j`` applied."""
    override = override or CapacityOverride()
    cpu = override.cpu if override.cpu is not None else float(detect_cpus())
    mem = override.mem if override.mem is not None else detect_memory()
    devices = machine_devices(override)
    return Capacity(cpu=cpu, mem=mem, gpu=len(devices), pools=dict(pools or {}), jobs=jobs,
                    devices=devices)


def _gpu_words(r: Resources) -> str:
    words = f"gpu = {r.gpu:g}" if r.gpu else ""
    if r.gpu_mem:
        words += (" with " if words else "") + f"gpu_mem = {format_size(r.gpu_mem)}"
    return words


def gpu_problem(r: Resources, devices: Sequence[GpuDevice]) -> str | None:
    """Why no set of ``devices``, all free, could ever hold ``r``; None when one can."""
    if not r.wants_gpu:
        return None
    if not devices:
        return f"{_gpu_words(r)}, but the machine has no GPU"
    big = [d for d in devices if d.mem >= r.gpu_mem] if r.gpu_mem else list(devices)
    need = int(r.gpu) if r.gpu >= 1 else 1
    if len(big) >= need:
        return None
    if not r.gpu_mem:
        return f"{_gpu_words(r)}, but the machine has {len(devices)} GPU{'s' * (len(devices) != 1)}"
    largest = max(d.mem for d in devices)
    has = f"the largest has {format_size(largest)}" if largest else \
        "their memory is not known ([capacity] gpu = N counts devices, not memory)"
    if big:
        return f"{_gpu_words(r)}, but only {len(big)} GPU{'s' * (len(big) != 1)} " \
               f"{'have' if len(big) != 1 else 'has'} that much memory"
    return f"{_gpu_words(r)}, but no GPU has that much memory ({has})"


def check_fits(tasks: Iterable[Task], capacity: Capacity, workflow_path: str) -> None:
    """A task asking more than the whole machine can never run: say so before starting."""
    fits: set[int] = set()      # ids of Resources already found to fit (a fan-out shares one)
    for t in tasks:
        r = t.resources
        if id(r) in fits:
            continue
        problem = None
        if r.cpu > capacity.cpu:
            problem = f"cpu = {r.cpu:g}, but the machine has {capacity.cpu:g}"
        elif r.mem > capacity.mem:
            problem = f"mem = {format_size(r.mem)}, but the machine has {format_size(capacity.mem)}"
        elif r.wants_gpu:
            problem = gpu_problem(r, capacity.devices)
        if not problem:
            for name, amount in r.pools:
                size = capacity.pools.get(name)
                if size is None:
                    problem = f"pool {name!r}, which is not declared in [pools]"
                elif amount > size:
                    problem = f"{amount} of pool {name!r}, which holds {size}"
                if problem:
                    break
        if problem:
            raise WorkflowError(f"task {t.name!r} asks for {problem}", t.location,
                                path=workflow_path)
        fits.add(id(r))


class FreeCapacity:
    """Mutable books of what is free now. Never goes below zero by construction.

    GPUs are booked per device: ``share[p]`` is the part of device ``p`` not handed out
    (1.0 when free, 0.0 when a task holds it whole), ``gpu_mem[p]`` its declared memory
    not handed out. ``take`` returns positions into ``devices``.
    """

    def __init__(self, capacity: Capacity):
        self.total = capacity
        self.cpu = capacity.cpu
        self.mem = capacity.mem
        self.devices = capacity.devices
        self.share: list[float] = [1.0] * len(self.devices)
        self.gpu_mem: list[int] = [d.mem for d in self.devices]
        self.pools = dict(capacity.pools)
        self.jobs = capacity.jobs if capacity.jobs else 1 << 30
        self.slots: list[int] = []                            # free timeline lanes (heap)
        self._next_slot = 0

    @property
    def gpus(self) -> list[int]:
        """Positions of the devices nobody holds any part of."""
        return [p for p, d in enumerate(self.devices)
                if self.share[p] >= 1.0 - EPS and self.gpu_mem[p] == d.mem]

    def pick(self, r: Resources, share: list[float] | None = None,
             gpu_mem: list[int] | None = None) -> tuple[int, ...] | None:
        """The devices ``r`` would get from these books (default: the real ones); None
        when it does not fit now. Whole devices: the lowest free ones. A share or memory:
        the device that fits with the least left over, so that small tasks pack onto one
        card and whole cards stay free."""
        share = self.share if share is None else share
        gpu_mem = self.gpu_mem if gpu_mem is None else gpu_mem
        devices = self.devices
        need = r.gpu_mem
        if r.gpu >= 1:
            n = int(r.gpu)
            out = [p for p, d in enumerate(devices)
                   if share[p] >= 1.0 - EPS and gpu_mem[p] == d.mem and d.mem >= need][:n]
            return tuple(out) if len(out) == n else None
        best, key = None, None
        for p in range(len(devices)):
            if share[p] + EPS >= r.gpu and (not need or gpu_mem[p] >= need):
                k = (share[p], gpu_mem[p])
                if key is None or k < key:
                    best, key = p, k
        return None if best is None else (best,)

    def book(self, r: Resources, positions: tuple[int, ...], share: list[float],
             gpu_mem: list[int], sign: int = -1) -> None:
        """Take (``sign`` -1) or give back (+1) ``r``'s part of ``positions``."""
        if r.gpu >= 1:
            for p in positions:
                share[p] = 0.0 if sign < 0 else 1.0
                gpu_mem[p] = 0 if sign < 0 else self.devices[p].mem
            return
        for p in positions:
            share[p] = min(1.0, share[p] + sign * r.gpu)
            gpu_mem[p] += sign * r.gpu_mem

    def fits(self, r: Resources) -> bool:
        if self.jobs < 1 or r.cpu > self.cpu + 1e-9 or r.mem > self.mem:
            return False
        if r.wants_gpu and self.pick(r) is None:
            return False
        for name, amount in r.pools:
            if amount > self.pools.get(name, 0):
                return False
        return True

    def take(self, r: Resources) -> tuple[tuple[int, ...], int]:
        """Reserve ``r``; returns (device positions, slot)."""
        self.jobs -= 1
        self.cpu -= r.cpu
        self.mem -= r.mem
        gpus: tuple[int, ...] = ()
        if r.wants_gpu:
            gpus = self.pick(r) or ()
            self.book(r, gpus, self.share, self.gpu_mem)
        for name, amount in r.pools:
            self.pools[name] -= amount
        if self.slots:
            slot = heapq.heappop(self.slots)
        else:
            slot = self._next_slot
            self._next_slot += 1
        return gpus, slot

    def give(self, r: Resources, gpus: tuple[int, ...], slot: int) -> None:
        self.jobs += 1
        self.cpu += r.cpu
        self.mem += r.mem
        if gpus:
            self.book(r, gpus, self.share, self.gpu_mem, +1)
        for name, amount in r.pools:
            self.pools[name] += amount
        heapq.heappush(self.slots, slot)


# -- retry_mem: more memory after an out-of-memory kill ----------------------------------

def retry_size(task: Task, mem_now: int, cap: int) -> int | None:
    """The mem the next attempt of ``task`` gets after one killed at ``mem_now`` for using
    more: ``retry_mem``'s factor times it, or its next larger size; at most ``cap`` (what
    the machine, or the largest worker, has). None: no retry for it (none asked, the
    sizes used up, or already at the cap)."""
    spec = task.retry_mem
    if not spec or mem_now <= 0:
        return None
    if isinstance(spec[0], float):
        new = int(mem_now * spec[0])
    else:
        bigger = [s for s in spec if s > mem_now]
        if not bigger:
            return None
        new = int(bigger[0])
    if cap:
        new = min(new, cap)
    return new if new > mem_now else None


def with_mem(task: Task, mem: int) -> Task:
    """``task`` asking ``mem`` bytes instead of its declared mem."""
    from dataclasses import replace
    return replace(task, resources=replace(task.resources, mem=mem))


def learned_mem(task: Task, mems: Mapping[str, int], cap: int) -> int | None:
    """The mem that last worked for a ``retry_mem`` task, when more than it declares
    (history's ``attempt_mems``); None otherwise."""
    if not task.retry_mem:
        return None
    mem = mems.get(task.name)
    if mem is None or mem <= task.resources.mem:
        return None
    return min(mem, cap) if cap else mem
