"""The spawn workload with nothing but the spawning: a floor for any Python runner.

    python spawn_floor.py FOLDER N [JOBS] [--cgroup]

Runs ``touch out/tNNNNN`` for N names in FOLDER, JOBS at a time (2 by default), the
way Gristmill's local executor starts a command, minus everything else it does:
``os.posix_spawn`` of the program found once on PATH, in its own session, stdout and
stderr into a pipe, exits watched through a pidfd in one epoll, reaped with wait4.
No graph, no scheduler, no history, no run log, no console, no output kept.

``--cgroup``: each command in a cgroup of its own, as the executor gives one
(``gristmill.core.run.cgroups``: with a 50 MB limit, entered before the spawn, its
peak read after the exit and the cgroup emptied for the next command, or removed):
the bare cost of a cgroup.

The runner times it beside the tools: what it costs per task, in the parent and in
all, is what a Python process pays to start a command on this machine before it
keeps any books.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import sys


def main(argv: list[str]) -> int:
    use_cgroup = "--cgroup" in argv
    argv = [a for a in argv if a != "--cgroup"]
    folder, n = argv[1], int(argv[2])
    jobs = int(argv[3]) if len(argv) > 3 else 2
    groups = None
    if use_cgroup:
        from gristmill.core.run import cgroups
        offer = cgroups.offer()
        if not offer.version:
            print(f"spawn_floor: no cgroup: {offer.why_not}", file=sys.stderr)
            return 2
        groups = cgroups.Cgroups(offer)
    os.chdir(folder)
    exe = shutil.which("touch")
    if exe is None:
        print("spawn_floor: touch is not on PATH", file=sys.stderr)
        return 127
    env = dict(os.environ)
    devnull = os.open(os.devnull, os.O_RDONLY)
    ep = select.epoll()
    running: dict[int, tuple] = {}     # pidfd -> (pid, read end, write end, cgroup)
    started = failed = 0
    while started < n or running:
        while len(running) < jobs and started < n:
            r, w = os.pipe()
            argv_, exe_ = ["touch", f"out/t{started:05d}"], exe
            cg = groups.create(started, 50_000_000, None) if groups is not None else None
            if cg is not None and groups.version == 2:
                argv_ = cg.argv([exe, *argv_[1:]])
                exe_ = argv_[0]
            with cg.entered() if cg is not None else contextlib.nullcontext():
                pid = os.posix_spawn(exe_, argv_, env, setsid=True,
                                     file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                                   (os.POSIX_SPAWN_DUP2, w, 1),
                                                   (os.POSIX_SPAWN_DUP2, w, 2)])
            pidfd = os.pidfd_open(pid)
            ep.register(pidfd, select.EPOLLIN)
            running[pidfd] = (pid, r, w, cg)
            started += 1
        for fd, _ in ep.poll():
            pid, r, w, cg = running.pop(fd)
            _, status, _ = os.wait4(pid, 0)
            failed += status != 0
            if cg is not None:
                cg.peak()
                if not cg.done():
                    cg.remove()
            ep.unregister(fd)
            for x in (fd, r, w):
                os.close(x)
    if groups is not None:
        groups.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
