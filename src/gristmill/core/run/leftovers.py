"""Task trees a killed Gristmill left running, found again and stopped.

Each running attempt's process group and its leader's start time are in history
(``attempts.pgid``, ``attempts.process_start``). When Gristmill itself is killed
(kill -9, a power-cut-style kill of its process), its tasks run on in their own
sessions; the next ``run`` of the workflow finds the groups that still live (the same
groups: the start time matches) and stops them before it decides anything, and a
``plan`` says which are still running. Their outputs are not trusted either way: the
attempt never finished.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Iterable

from ..record.store import Leftover, group_alive

GRACE = 1.0       # seconds between SIGTERM and SIGKILL
GIVE_UP = 5.0     # seconds after SIGKILL before a group is reported as not stopped


def _signal(group: Leftover, sig: int) -> None:
    try:
        os.killpg(group.pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_leftovers(groups: Iterable[Leftover]) -> list[Leftover]:
    """SIGTERM each group, SIGKILL what is left after ``GRACE``; the groups that could
    not be stopped are returned."""
    alive = [g for g in groups if group_alive(g.pgid, g.process_start)]
    for g in alive:
        _signal(g, signal.SIGTERM)
    for sig, wait in ((signal.SIGKILL, GRACE), (None, GIVE_UP)):
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.02)
            alive = [g for g in alive if group_alive(g.pgid, g.process_start)]
        if sig is not None:
            for g in alive:
                _signal(g, sig)
    return alive


def leftover_words(group: Leftover) -> str:
    return (f"task {group.task} of interrupted run {group.run_id} "
            f"(process group {group.pgid})")
