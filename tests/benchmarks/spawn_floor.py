"""The spawn workload with nothing but the spawning: a floor for any Python runner.

    python spawn_floor.py FOLDER N [JOBS]

Runs ``touch out/tNNNNN`` for N names in FOLDER, JOBS at a time (2 by default), the
way Gristmill's local executor starts a command, minus everything else it does:
``os.posix_spawn`` of the program found once on PATH, in its own session, stdout and
stderr into a pipe, exits watched through a pidfd in one epoll, reaped with wait4.
No graph, no scheduler, no history, no run log, no console, no output kept.

The runner times it beside the tools: what it costs per task, in the parent and in
all, is what a Python process pays to start a command on this machine before it
keeps any books.
"""

from __future__ import annotations

import os
import select
import shutil
import sys


def main(argv: list[str]) -> int:
    folder, n = argv[1], int(argv[2])
    jobs = int(argv[3]) if len(argv) > 3 else 2
    os.chdir(folder)
    exe = shutil.which("touch")
    if exe is None:
        print("spawn_floor: touch is not on PATH", file=sys.stderr)
        return 127
    env = dict(os.environ)
    devnull = os.open(os.devnull, os.O_RDONLY)
    ep = select.epoll()
    running: dict[int, tuple[int, int, int]] = {}     # pidfd -> (pid, read end, write end)
    started = failed = 0
    while started < n or running:
        while len(running) < jobs and started < n:
            r, w = os.pipe()
            pid = os.posix_spawn(exe, ["touch", f"out/t{started:05d}"], env, setsid=True,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                               (os.POSIX_SPAWN_DUP2, w, 1),
                                               (os.POSIX_SPAWN_DUP2, w, 2)])
            pidfd = os.pidfd_open(pid)
            ep.register(pidfd, select.EPOLLIN)
            running[pidfd] = (pid, r, w)
            started += 1
        for fd, _ in ep.poll():
            pid, r, w = running.pop(fd)
            _, status, _ = os.wait4(pid, 0)
            failed += status != 0
            ep.unregister(fd)
            for x in (fd, r, w):
                os.close(x)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
