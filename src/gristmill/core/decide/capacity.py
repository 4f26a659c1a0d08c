"""What the machine has (cpu, memory, GPUs, named pools), and what is free now."""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..errors import WorkflowError
from ..sizes import format_size
from ..workflow import CapacityOverride, Resources, Task


@dataclass(frozen=True)
class Capacity:
    cpu: float
    mem: int
    gpu: int = 0
    pools: Mapping[str, int] = field(default_factory=dict)
    jobs: int | None = None            # -j N: at most N tasks at once

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


def detect_gpus() -> int:
    """NVIDIA GPUs listed by ``nvidia-smi -L``; 0 when it is absent or fails."""
    import shutil        # here, not at the top: a no-op run never asks
    import subprocess
    exe = shutil.which("nvidia-smi")
    if not exe:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def detect_capacity(override: CapacityOverride | None = None,
                    pools: Mapping[str, int] | None = None,
                    jobs: int | None = None) -> Capacity:
    """The local machine, with the workflow's ``[capacity]`` and ``-j`` applied."""
    override = override or CapacityOverride()
    cpu = override.cpu if override.cpu is not None else float(detect_cpus())
    mem = override.mem if override.mem is not None else detect_memory()
    gpu = override.gpu if override.gpu is not None else detect_gpus()
    return Capacity(cpu=cpu, mem=mem, gpu=gpu, pools=dict(pools or {}), jobs=jobs)


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
        elif r.gpu > capacity.gpu:
            problem = f"gpu = {r.gpu}, but the machine has {capacity.gpu}"
        else:
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
    """Mutable books of what is free now. Never goes below zero by construction."""

    def __init__(self, capacity: Capacity):
        self.total = capacity
        self.cpu = capacity.cpu
        self.mem = capacity.mem
        self.gpus: list[int] = list(range(capacity.gpu))     # free device indices
        self.pools = dict(capacity.pools)
        self.jobs = capacity.jobs if capacity.jobs else 1 << 30
        self.slots: list[int] = []                            # free timeline lanes (heap)
        self._next_slot = 0

    def fits(self, r: Resources) -> bool:
        if self.jobs < 1 or r.cpu > self.cpu + 1e-9 or r.mem > self.mem or r.gpu > len(self.gpus):
            return False
        for name, amount in r.pools:
            if amount > self.pools.get(name, 0):
                return False
        return True

    def take(self, r: Resources) -> tuple[tuple[int, ...], int]:
        """Reserve ``r``; returns (gpu indices, slot)."""
        self.jobs -= 1
        self.cpu -= r.cpu
        self.mem -= r.mem
        gpus = tuple(self.gpus[:r.gpu])
        del self.gpus[:r.gpu]
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
        self.gpus = sorted(self.gpus + list(gpus))
        for name, amount in r.pools:
            self.pools[name] += amount
        heapq.heappush(self.slots, slot)
