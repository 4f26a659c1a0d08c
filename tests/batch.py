"""The batch systems the tests run for real, single-node (tests/slurm.py, tests/sge.py),
and what each says in its own words. PBS and LSF cannot be had from Debian's packages."""

from __future__ import annotations

import os
import socket
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

KINDS = ("slurm", "sge")

# Their daemons: children of the test process while a session fixture holds them (slurmctld
# forks slurmscriptd, which names itself ": slurmscriptd").
DAEMONS = frozenset({"slurmctld", "slurmd", "slurmstepd", "slurmscriptd", "munged",
                     "sge_qmaster", "sge_execd", "sge_shepherd"})

# A [cluster] directive that holds a job for an hour (its workers never come in time).
LATER = {"slurm": "--begin=now+1hour", "sge": "-a 203012312359"}

# What each one answers a job asking for a queue ("nosuchpartition") it does not have.
REFUSED = {"slurm": "sbatch: error: invalid partition specified: nosuchpartition",
           "sge": "Unable to run job: Job was rejected because job requests unknown queue "
                  "\"nosuchpartition\""}


@dataclass
class BatchSystem:
    """A batch system the tests started: the environment its clients need, its folder,
    and what stops it (in reverse order)."""

    env: dict[str, str]
    folder: Path
    stops: list[Callable[[], None]] = field(default_factory=list)

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **self.env})

    def stop(self) -> None:
        for fn in reversed(self.stops):
            try:
                fn()
            except Exception:
                pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def stopped_if_it_fails(system: BatchSystem, unavailable: type[Exception], what: str):
    """Starting ``system``: whatever fails stops what had started, and is ``unavailable``
    (the tests skip, saying why)."""
    try:
        yield
    except unavailable:
        system.stop()
        raise
    except (OSError, subprocess.SubprocessError) as exc:
        system.stop()
        raise unavailable(f"{what} could not start: {exc}") from None


def ours_left() -> list[str]:
    """The command lines of this process's descendants still running: what a test left
    behind (multiprocessing's resource tracker, and the batch systems' daemons that the
    session's fixtures started, aside)."""
    import psutil
    left = []
    for p in psutil.Process().children(recursive=True):
        try:
            line = " ".join(p.cmdline())
            if p.status() == psutil.STATUS_ZOMBIE or "resource_tracker" in line:
                continue
            if DAEMONS & {p.name(), *line.replace(":", " ").split()[:1]}:
                continue
            left.append(line)
        except psutil.Error:
            pass
    return left
