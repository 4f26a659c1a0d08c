"""A task's processes without a cgroup: the subreaper and /proc's links.

Where no cgroup can be had, Gristmill makes itself a *child subreaper*
(``prctl(PR_SET_CHILD_SUBREAPER)``): a process of a task whose parent dies (a
double fork, a daemon) is re-parented to Gristmill, not to init. A task's processes
are then found in one pass over /proc:

- its leader, and every process in the leader's session or process group (the
  leader starts a session of its own: GNU ``timeout``'s own process group is in it);
- every descendant of those, through the parent links;
- every orphan re-parented to Gristmill whose environment carries the job's token
  (``GRISTMILL_JOB``, set by the executor): a double-forked ``setsid`` daemon, whose
  session and parent both changed — and its descendants.

A pid is never reused while a process still has it as its session or group id, so
the leader's pid names the job's session for as long as any of it lives.
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
TOKEN = "GRISTMILL_JOB"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _prctl = _libc.prctl
except (OSError, AttributeError):      # pragma: no cover - not Linux
    _prctl = None


_lock = threading.Lock()
_holders = 0
_was: bool | None = None
# Process-wide: the sessions of every job leader started without a cgroup, and the
# orphans of jobs seen alive, so that their zombies are reaped by whichever executor
# looks next (an app runs one executor per run).
sessions: set[int] = set()
known_orphans: set[int] = set()


def hold_subreaper() -> bool:
    """This process becomes a child subreaper while any executor holds it; False where
    the kernel cannot."""
    global _holders, _was
    with _lock:
        if _holders == 0:
            was = set_subreaper(True)
            if was is None:
                return False
            _was = was
        _holders += 1
        return True


def release_subreaper() -> None:
    global _holders
    with _lock:
        if _holders == 0:
            return
        _holders -= 1
        if _holders == 0 and _was is False:
            set_subreaper(False)


def set_subreaper(on: bool) -> bool | None:
    """Make this process a child subreaper (or not); its previous setting, or None
    where the kernel cannot."""
    if _prctl is None:
        return None
    was = ctypes.c_int(0)
    if _prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(was), 0, 0, 0) != 0:
        return None
    if _prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0) != 0:
        return None
    return bool(was.value)


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    pgrp: int
    session: int
    rss: int          # bytes
    zombie: bool


def snapshot() -> dict[int, Proc]:
    """Every process on the machine, from /proc/*/stat."""
    procs: dict[int, Proc] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return procs
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(entry)
        procs[pid] = Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]),
                          int(fields[21]) * _PAGE, fields[0] == b"Z")
    return procs


def _token_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    key = TOKEN.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(key):
            return item[len(key):].decode("ascii", "replace")
    return None


def members(leaders: dict[int, str], procs: dict[int, Proc] | None = None,
            me: int | None = None) -> dict[int, list[Proc]]:
    """Each job's live processes: ``leaders`` maps a job's leader pid to its token.

    A zombie is no member (it is dead); one that is our child is reaped by ``reap``.
    """
    if procs is None:
        procs = snapshot()
    me = os.getpid() if me is None else me
    by_token = {tok: leader for leader, tok in leaders.items()}
    owner: dict[int, int] = {}          # pid -> the leader of the job it belongs to
    for p in procs.values():
        if p.pid in leaders:
            owner[p.pid] = p.pid
        elif p.session in leaders:
            owner[p.pid] = p.session
        elif p.pgrp in leaders:
            owner[p.pid] = p.pgrp
        elif p.ppid == me and not p.zombie:
            tok = _token_of(p.pid)
            if tok is not None and tok in by_token:
                owner[p.pid] = by_token[tok]
    # Descendants: follow the parent links down from every member.
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    todo = list(owner)
    while todo:
        pid = todo.pop()
        for c in children.get(pid, ()):
            if c not in owner:
                owner[c] = owner[pid]
                todo.append(c)
    found: dict[int, list[Proc]] = {leader: [] for leader in leaders}
    for pid, leader in owner.items():
        p = procs[pid]
        if not p.zombie:
            found[leader].append(p)
    return found


def reap_orphans(procs: dict[int, Proc], sessions: set[int], known: set[int],
                 me: int | None = None) -> None:
    """Reap zombies re-parented to us that belonged to a job (their session is a job
    leader's, they were seen alive as a job's orphan, or they lead a session of their
    own). A zombie child of ours that is none of these (another part of the program
    started it) is left to its own waiter, and so is a job's leader (``sessions``
    holds them: the executor reaps its own)."""
    me = os.getpid() if me is None else me
    own_session = os.getsid(0)
    for p in procs.values():
        if not p.zombie or p.ppid != me or p.pid in sessions:
            continue
        # A session leader that is not a job's: a job's orphan that called setsid and
        # died before it was seen (Gristmill starts no other process in a session of
        # its own; Dask's workers, which do, are processes of their own).
        daemon = p.session == p.pid and p.session != own_session
        if p.session in sessions or p.pid in known or daemon:
            try:
                os.waitpid(p.pid, os.WNOHANG)
            except ChildProcessError:
                pass
            known.discard(p.pid)
    known.intersection_update(procs)       # the gone are forgotten
