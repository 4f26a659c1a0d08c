"""Running commands: a small interface and the local process executor.

One loop (the engine's) calls ``start`` for each job and ``wait`` for what
happened since. The local executor multiplexes every running job's output pipe
and exit (Linux pidfd) in one selector, so no thread is spent per task.
Each command runs in its own session, and each job in a cgroup of its own where
the machine allows it (``cgroups``): the kernel then holds the job's whole process
tree, its memory limit and its peak. Elsewhere Gristmill is the subreaper of the
jobs' processes and finds each tree through /proc (``proctree``). Either way a
kill reaches every process of a job, and a job that failed or was killed is
reported only once none of its processes is left.
"""

from __future__ import annotations

import errno
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol

from ..record.store import process_start, start_token
from . import cgroups as cg_mod
from . import proctree
from ..sizes import format_size
from ..workflow import PROCESS, Task

_clock_ns = getattr(time, "clock_gettime_ns", None)
_POSIX_SPAWN = hasattr(os, "posix_spawn") and hasattr(os, "POSIX_SPAWN_DUP2")
KILL_GRACE = 1.0     # seconds between SIGTERM and SIGKILL
SAMPLE_EVERY = 0.25  # seconds between memory samples of running process trees
SAMPLE_AFTER = 0.05  # a tree is sampled once it has run this long (a shorter job: wait4's max RSS)
DRAIN_EVERY = 0.005  # seconds before the first look again at what is left of a killed job
DRAIN_MAX = 0.2      # ... the wait doubles up to this while some of it will not die
DRAIN_GIVE_UP = 30.0 # seconds after which a job whose processes will not die is reported anyway
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# A process's start in /proc/PID/stat is the boot-time clock at its fork, in clock ticks
# (nanoseconds // (10**9 // ticks a second)). Read before and after the spawn, that clock
# names the tick when both fall in the same one; else /proc is read (issue 18: the read
# was 9% of the engine thread at 2,000 short tasks).
_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0
_TICK_NS = 10**9 // _TICKS if _TICKS > 0 and 10**9 % _TICKS == 0 else 0
if _BOOTTIME is None or _clock_ns is None or not os.path.exists("/proc/self/stat"):
    _TICK_NS = 0


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    task: Task
    attempt: int
    env: Mapping[str, str]          # the whole environment of the process
    log_path: str | Path | None = None    # where its output goes (stdout and stderr together)
    mem_limit: int | None = None    # bytes: the process tree is killed above this
    keep_fds: tuple[int, ...] = ()  # descriptors it inherits (a jobserver's pipe)
    echo: bool = True               # False: no command is echoed (make -s)
    trace: tuple[str, str] | None = None   # (strace, file prefix): each command traced (audit)
    root: str = ""                  # the workflow's folder (sandboxes and containers)
    # A recipe line GNU make asked for (core/run/makerun.py): exactly this argv, nothing
    # echoed, its stdin from this fd (-1: /dev/null), its output also copied, byte for
    # byte, to ``tee`` (the stdout make gave the line: a terminal, or -O's temp file).
    argv: tuple[str, ...] = ()
    stdin: int = -1
    tee: int = -1


@dataclass(frozen=True, slots=True)
class JobOutput:
    job_id: int
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JobExited:
    job_id: int
    exit_code: int | None           # the failing command's, or 0; None if killed by a signal
    signal: int | None = None
    peak_mem: int | None = None     # bytes: the largest max-RSS of its commands
    killed: bool = False            # ended by kill()
    message: str = ""
    over_memory: bool = False       # killed for using more than its mem_limit
    log_trouble: str = ""           # what its log file lacks (JobOutputLog.trouble)
    gpu_peak_mem: int | None = None  # bytes, when the executor sampled them (Dask workers)
    gpu_util: float | None = None   # percent, the mean of those samples


@dataclass(frozen=True, slots=True)
class JobSpawned:
    """A later command of a job started, in a process group of its own (the first
    command's group: ``LocalExecutor.process``)."""
    job_id: int
    pgid: int
    process_start: str


@dataclass(frozen=True, slots=True)
class ExecNotice:
    """Word from the executor about the run, not about one job (``RunNotice``). A
    ``fatal`` one says it can run nothing more (a Dask scheduler gone): the run stops,
    failed, and nothing is retried."""
    message: str
    kind: str = ""
    fatal: bool = False


ExecEvent = JobOutput | JobExited | JobSpawned | ExecNotice


class Executor(Protocol):
    def start(self, job: Job) -> None: ...
    def wait(self, timeout: float | None) -> list[ExecEvent]: ...
    def kill(self, job_id: int) -> None: ...
    def kill_all(self, now: bool = False) -> None: ...   # now: no grace, SIGKILL at once
    def wakeup(self) -> None: ...
    def close(self) -> None: ...
    @property
    def running(self) -> int: ...


MAX_LINE = 16384     # bytes of one output line that become an event; the log has it whole
CUT_MARK = " … [cut: the line goes on past 16 KiB; the log file has it whole]"


def _head(line: bytes) -> str:
    """The first ``MAX_LINE`` bytes of an overlong line, cut at a character's start."""
    end = MAX_LINE
    while end > MAX_LINE - 4 and (line[end] & 0xC0) == 0x80:
        end -= 1
    return line[:end].decode("utf-8", "replace") + CUT_MARK


class JobOutputLog:
    """One job's output: appended to its log file (made at the first byte, so a silent
    task costs no file) and cut into whole lines as JobOutput events.

    Lines Gristmill writes itself before the output (the echoed command) are held back
    until the command writes something or the job fails: a silent task that succeeds
    leaves no file (history keeps its command), one that fails or speaks has them first.

    Each chunk is split once and the unterminated rest is kept only up to ``MAX_LINE``
    bytes: a line longer than that becomes one event of its first 16 KiB and a mark,
    and the rest of it goes only to the file (output with no newline at all, such as a
    progress bar redrawn with ``\r``, costs time and memory in proportion to the chunk,
    not to everything before it).

    A write to the file that fails (a full disk) never stops the job: the bytes lost
    are counted, and ``trouble`` says so in one line.
    """

    __slots__ = ("job_id", "path", "file", "partial", "held", "cut", "lost", "error",
                 "cannot_open")

    def __init__(self, job_id: int, path: str | Path | None):
        self.job_id = job_id
        self.path = path
        self.file = None
        self.partial = b""
        self.held: list[bytes] = []
        self.cut = False            # the line under way was cut: the rest of it is dropped
        self.lost = 0               # bytes that could not be written to the file
        self.error = ""             # the first write error's words
        self.cannot_open = False

    @property
    def trouble(self) -> str:
        """"" or one line: how much of the output its log file lacks, and why."""
        if not self.lost:
            return ""
        return (f"its log {self.path} lacks {self.lost:,} bytes of its output, which "
                f"could not be written ({self.error})")

    def _lose(self, size: int, exc: OSError) -> None:
        self.lost += size
        if not self.error:
            self.error = exc.strerror or str(exc)

    def _write(self, data: bytes) -> None:
        if self.file is None:
            if self.path is None:
                return
            if self.held:
                data = b"".join(self.held) + data
                self.held = []
            if self.cannot_open:
                self.lost += len(data)
                return
            try:
                self.file = open(self.path, "ab", buffering=0)
            except OSError as exc:
                self.cannot_open = True
                self._lose(len(data), exc)
                return
        view = memoryview(data)
        while view:
            try:
                n = self.file.write(view)
            except OSError as exc:
                self._lose(len(view), exc)
                return
            if not n:                   # nothing taken (cannot happen on a regular file)
                self.lost += len(view)
                return
            view = view[n:]

    def data(self, data: bytes, events: list) -> None:
        self._write(data)
        *complete, rest = data.split(b"\n")
        lines: list[str] = []
        if complete:
            first = complete[0]
            if self.cut:                    # the end of a line already cut: dropped
                self.cut = False
                complete = complete[1:]
            elif self.partial:
                complete[0] = self.partial + first
            self.partial = b""
            for c in complete:
                lines.append(_head(c) if len(c) > MAX_LINE else
                             c.decode("utf-8", "replace").rstrip("\r"))
        if not self.cut:
            rest = self.partial + rest if self.partial else rest
            if len(rest) > MAX_LINE:
                lines.append(_head(rest))
                self.cut = True
                rest = b""
            self.partial = rest
        if lines:
            events.append(JobOutput(self.job_id, tuple(lines)))

    def line(self, text: str, events: list, held: bool = False) -> None:
        """A line of Gristmill's own; ``held``: written only with what follows it."""
        data = text.encode("utf-8", "surrogateescape") + b"\n"
        if held and self.file is None:
            self.held.append(data)
        else:
            self._write(data)
        events.append(JobOutput(self.job_id, (text,)))

    def close(self, events: list | None = None, keep_held: bool = True) -> None:
        """The last, unterminated line becomes an event; the file is closed. Held lines
        are written first when ``keep_held`` (a job that failed)."""
        if self.partial and events is not None:
            events.append(JobOutput(self.job_id, (self.partial.decode("utf-8", "replace"),)))
        self.partial = b""
        self.cut = False
        if self.held and keep_held:
            self._write(b"")
        self.held = []
        if self.file is not None:
            try:
                self.file.close()
            except OSError as exc:
                self._lose(0, exc)
            self.file = None


@dataclass(slots=True)
class _Running:
    job: Job
    index: int                       # which command is running
    pidfd: int = -1
    out_fd: int = -1
    hold_fd: int = -1                # our copy of the pipe's write end, kept until the exit
    out: JobOutputLog | None = None
    peak: int = 0
    killed: bool = False
    kill_at: float | None = None     # when to send SIGKILL
    pgid: int = 0
    over_memory: bool = False
    started: float = 0.0             # time.monotonic() at the start of its first command
    pgid_start: str = ""             # the group leader's start token (store.process_start)
    iso: object | None = None        # isolate.wrapper(): a sandbox or a container, if any
    cg: cg_mod.TaskCgroup | None = None  # its cgroup, where it has one
    token: str = ""                  # without a cgroup: GRISTMILL_JOB in its environment
    pending: tuple | None = None     # (code, signal): its end, told once its tree is gone
    drain_since: float = 0.0
    drain_next: float = 0.0          # when to look at what is left of it again
    drain_wait: float = DRAIN_EVERY


# A command made only of these runs without a shell, as GNU make does: one process
# fewer per command. Anything a shell would interpret (quotes, $, globs, redirections,
# ;, &, |, backslashes, ~, assignments before the command) goes to the shell.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./,:+@%^-][A-Za-z0-9_./,:+@%^=-]*")
_SHELL_WORDS = frozenset("""
    . : [ alias bg break case cd command continue do done echo elif else esac eval exec exit
    export false fc fg fi for function getopts hash if in jobs kill let local printf pwd read
    readonly return select set shift source test then time times trap true type typeset
    ulimit umask unalias unset until wait while""".split())
_SH = ("/bin/sh", "-c")


def direct_argv(shell: tuple[str, ...], command: str) -> list[str] | None:
    """``command`` as an argv to exec without the shell, or None when it needs one."""
    if tuple(shell) != _SH:
        return None
    words = command.split()
    if not words or words[0] in _SHELL_WORDS or "=" in words[0]:
        return None
    match = _PLAIN_WORD.fullmatch
    for w in words:
        if match(w) is None:
            return None
    return words


class LocalExecutor:
    """Runs jobs as local processes; at most as many as the engine starts.

    ``notice``: one line for the user, or "": the first time in this process, what
    is not enforced of what tasks declare (no cgroup: memory sampled, cpu free); and
    what was stopped of the task trees a Gristmill that died left in its cgroups.
    """

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._watched: dict[int, tuple[str, int]] = {}     # fd -> (kind, job id)
        self._jobs: dict[int, _Running] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._watch(self._wake_r, "wake", 0)
        self._events: list[ExecEvent] = []
        self._next_sample = 0.0
        self._devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self._cwd = os.getcwd()
        self._leader = os.getpid()      # the native id of the process's first thread
        self._spawner: _Spawner | None = None   # spawns for the first thread (v1 cgroups)
        self._programs: dict[tuple[str, str], str] = {}   # (name, PATH) -> program
        self._draining: dict[int, _Running] = {}          # killed or failed, tree not gone
        offer = cg_mod.offer()
        self._cgroups: cg_mod.Cgroups | None = None
        enforced = offer.enforced()
        swept = ""
        if offer.version:
            try:
                swept = cg_mod.Cgroups.sweep_stale()
                self._cgroups = cg_mod.Cgroups(offer)
            except OSError as exc:
                enforced = cg_mod.Offer(why_not=f"cannot make a cgroup folder: "
                                                f"{exc.strerror or exc}").enforced()
        self.notice = "; ".join(filter(None, (cg_mod.tell_once(enforced), swept)))
        # Memory is sampled where the kernel does not hold the limit.
        self._sampled = self._cgroups is None or not offer.memory
        # Without a cgroup: orphans of the jobs come to us, and are found through /proc.
        self._subreaper = self._cgroups is None and proctree.hold_subreaper()
        self._token = f"{os.getpid()}-{id(self):x}-"
        self._sessions = proctree.sessions         # every leader started without a cgroup
        self._orphans = proctree.known_orphans     # orphans of jobs seen alive

    @property
    def running(self) -> int:
        return len(self._jobs)

    def process(self, job_id: int) -> tuple[int, str] | None:
        """(process group, its leader's start token) of a running job's command."""
        r = self._jobs.get(job_id)
        if r is None or not r.pgid:
            return None
        return r.pgid, r.pgid_start

    # -- starting ---------------------------------------------------------
    def start(self, job: Job) -> None:
        r = _Running(job=job, index=0, out=JobOutputLog(job.id, job.log_path),
                     started=time.monotonic())
        self._jobs[job.id] = r
        if job.task.isolation is not PROCESS:
            from . import isolate      # only for a sandbox or a container: a no-op imports none
            r.iso = isolate.wrapper(job.task, job.root, job.id, job.attempt, job.env)
        if not job.task.commands:
            self._finish(r, 0)
            return
        if self._cgroups is not None:
            try:
                r.cg = self._cgroups.create(job.id, job.mem_limit,
                                            job.task.resources.cpu or None)
            except OSError as exc:
                self._line(r, f"gristmill: cannot make the task's cgroup "
                              f"({exc.strerror or exc}); it runs without one")
        if r.cg is None:
            r.token = f"{self._token}{job.id}"
        self._spawn(r)

    def _spawn(self, r: _Running) -> None:
        task = r.job.task
        cmd = task.commands[r.index]
        if r.job.argv:
            argv = list(r.job.argv)
        else:
            if not task.silent and r.job.echo:
                # As make does: the command goes into the output before it runs.
                out, events = r.out, self._events
                for line in cmd.splitlines() or [""]:
                    out.line(line, events, held=True)   # type: ignore[union-attr]
            argv = direct_argv(task.shell, cmd) or [*task.shell, cmd]
        env = r.job.env
        cg = r.cg
        if r.token:
            env = dict(env)
            env[proctree.TOKEN] = r.token
        try:
            if r.iso is not None:
                argv = r.iso.argv(argv, r.index)  # type: ignore[attr-defined]
            exe = self._which(argv[0], env)
            if r.job.trace:     # the dependency audit: the command runs under strace
                from .trace import trace_argv
                argv = trace_argv(r.job.trace[0], argv, f"{r.job.trace[1]}.{r.index}")
                exe = argv[0]
            if cg is not None and cg.owner.version == 2:
                argv = cg.argv([exe, *argv[1:]] if argv[0] != exe else argv)
                exe = argv[0]
            if cg is not None and cg.owner.version == 1 and threading.get_native_id() == self._leader:
                # The process's first thread never sits in a job's cgroup, even for the
                # moment of a spawn: the kernel's OOM killer of that cgroup would count
                # the whole of Gristmill as one of the job's processes (it looks at each
                # process's first thread) and could kill it. From a thread of its own,
                # kept for the executor's life (``_Spawner``).
                if self._spawner is None:
                    self._spawner = _Spawner()
                pid, out_fd, before, after = self._spawner.call(self._launch, r, exe, argv,
                                                                env, cg)
            else:
                pid, out_fd, before, after = self._launch(r, exe, argv, env, cg)
        except OSError as exc:
            self._line(r, f"gristmill: cannot start {argv[0]}: {exc.strerror or exc}")
            self._finish(r, 127, message=str(exc))
            return
        r.pgid = pid
        # Recorded in history: after a kill -9 of Gristmill the next start finds the
        # group again (the same group: its leader started at this time).
        tick = before // _TICK_NS if _TICK_NS else -1
        if tick >= 0 and tick == after // _TICK_NS:
            r.pgid_start = start_token(tick) or ""
        else:
            r.pgid_start = process_start(pid) or ""
        if r.index:
            self._events.append(JobSpawned(r.job.id, pid, r.pgid_start))
        if r.token:
            self._sessions.add(pid)
        r.out_fd = out_fd
        os.set_blocking(out_fd, False)
        self._watch(out_fd, "out", r.job.id)
        r.pidfd = os.pidfd_open(pid)
        self._watch(r.pidfd, "exit", r.job.id)

    def _launch(self, r: _Running, exe: str, argv: list[str], env: Mapping[str, str],
                cg: cg_mod.TaskCgroup | None) -> tuple[int, int, int, int]:
        """Start the process (in ``cg``): (pid, its output's read end, the boot-time
        clock before and after the spawn, or 0s)."""
        task = r.job.task
        stdin = r.job.stdin if r.job.stdin >= 0 else self._devnull
        with cg.entered() if cg is not None else nullcontext():
            before = _clock_ns(_BOOTTIME) if _TICK_NS else 0   # type: ignore[misc]
            if task.cwd == self._cwd and _POSIX_SPAWN:
                pid, out_fd, r.hold_fd = self._posix_spawn(exe, argv, env, stdin)
            else:
                proc = subprocess.Popen(
                    argv, executable=exe, cwd=task.cwd, env=dict(env),
                    stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                    start_new_session=True, close_fds=True, pass_fds=r.job.keep_fds)
                pid = proc.pid
                out_fd = os.dup(proc.stdout.fileno())  # type: ignore[union-attr]
                proc.stdout.close()                     # type: ignore[union-attr]
                proc.returncode = 0     # reaped by us with wait4; Popen must not try
            after = _clock_ns(_BOOTTIME) if _TICK_NS else 0    # type: ignore[misc]
        return pid, out_fd, before, after

    def _watch(self, fd: int, kind: str, job_id: int) -> None:
        self._epoll.register(fd, select.EPOLLIN)
        self._watched[fd] = (kind, job_id)

    def _unwatch(self, fd: int) -> None:
        if self._watched.pop(fd, None) is not None:
            self._epoll.unregister(fd)

    def _which(self, name: str, env: Mapping[str, str]) -> str:
        """The program ``name`` names, searched in the task's PATH once per run.

        Searching in the parent, once, spares every child an execve per PATH entry.
        """
        if "/" in name:
            return name
        path = env.get("PATH", os.defpath)
        key = (name, path)
        found = self._programs.get(key)
        if found is None:
            found = shutil.which(name, path=path)
            if found is None:
                raise FileNotFoundError(errno.ENOENT, "command not found", name)
            self._programs[key] = found
        return found

    def _posix_spawn(self, exe: str, argv: list[str], env: Mapping[str, str],
                     stdin: int) -> tuple[int, int, int]:
        """Start ``argv`` in its own session, stdout and stderr into a new pipe:
        (pid, the pipe's read end, the pipe's write end).

        posix_spawn does in C what Popen does in Python (half the parent's cost per
        task); Python 3.11 has no chdir action, so only for the executor's own cwd.
        The caller keeps the write end open until the process exits: the pipe then
        never reads as closed while the process lives, so its exit is one wake-up
        (the pidfd), not two (the pipe's hang-up, then the pidfd).
        """
        out_r, out_w = os.pipe()
        try:
            pid = os.posix_spawn(exe, argv, env, setsid=True, file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, out_w, 2)])
        except BaseException:
            os.close(out_r)
            os.close(out_w)
            raise
        return pid, out_r, out_w

    # -- waiting ----------------------------------------------------------
    def wait(self, timeout: float | None) -> list[ExecEvent]:
        """Block until something happens (or ``timeout`` seconds); return what happened."""
        if not self._events:
            now = time.monotonic()
            due = [r.kill_at for r in self._jobs.values() if r.kill_at is not None]
            if self._jobs and self._sampled:
                due.append(self._next_sample)
            if self._draining:
                due.append(min(r.drain_next for r in self._draining.values()))
            if due:
                until = max(0.0, min(due) - now)
                timeout = until if timeout is None else min(timeout, until)
            # What each ready fd stood for when the wait returned: an fd closed and
            # reused while these are handled still names the job it belonged to.
            watched = self._watched
            ready = [watched.get(fd) for fd, _ in
                     self._epoll.poll(-1 if timeout is None else timeout)]
            for item in ready:
                if item is None:
                    continue
                kind, job_id = item
                if kind == "wake":
                    try:
                        while os.read(self._wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                r = self._jobs.get(job_id)
                if r is None:
                    continue
                if kind == "out":
                    self._read(r)
                else:
                    self._reap(r)
            self._escalate_kills()
            if self._draining and time.monotonic() >= min(
                    r.drain_next for r in self._draining.values()):
                self._drain()
            if self._jobs and self._sampled and time.monotonic() >= self._next_sample:
                self._sample_memory()
        events, self._events = self._events, []
        return events

    def _sample_memory(self) -> None:
        """Track each tree's peak memory; kill a tree that outgrows its limit.

        The tree is the job's cgroup (one without the memory controller), else every
        process /proc links to the job (``proctree.members``): a command that puts
        itself in a process group of its own (GNU ``timeout``) counts too."""
        now = time.monotonic()
        self._next_sample = now + SAMPLE_EVERY
        # Jobs younger than SAMPLE_AFTER are left to the next sample: a run of short tasks
        # (2,000 of ~2 ms) then never reads /proc (~80 files a sample).
        old = now - SAMPLE_AFTER
        live = [r for r in self._jobs.values()
                if r.pgid and not r.killed and r.pending is None and r.started <= old]
        if not live:
            return
        rss: dict[int, int] = {}
        by_tree = [r for r in live if r.cg is None]
        if by_tree:
            procs = proctree.snapshot()
            found = proctree.members({r.pgid: r.token for r in by_tree}, procs)
            for r in by_tree:
                tree = found.get(r.pgid, ())
                rss[r.job.id] = sum(p.rss for p in tree)
                self._orphans.update(p.pid for p in tree if p.pid != r.pgid)
            proctree.reap_orphans(procs, self._sessions, self._orphans)
        for r in live:
            if r.cg is not None:
                rss[r.job.id] = _rss_of(r.cg.pids())
        for r in live:
            used = rss.get(r.job.id, 0)
            r.peak = max(r.peak, used)
            limit = r.job.mem_limit
            if limit and used > limit:
                r.over_memory = True
                self._line(r, f"gristmill: killed: the task used {format_size(used)}, "
                              f"over its declared mem of {format_size(limit)}")
                self.kill(r.job.id)

    def _read(self, r: _Running) -> None:
        try:
            data = os.read(r.out_fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_out(r)
            return
        self._data(r, data)

    def _data(self, r: _Running, data: bytes) -> None:
        r.out.data(data, self._events)  # type: ignore[union-attr]
        if r.job.tee >= 0:
            _write_all(r.job.tee, data)

    def _line(self, r: _Running, text: str) -> None:
        r.out.line(text, self._events)  # type: ignore[union-attr]

    def _close_out(self, r: _Running) -> None:
        self._close_hold(r)
        if r.out_fd >= 0:
            self._unwatch(r.out_fd)
            os.close(r.out_fd)
            r.out_fd = -1

    @staticmethod
    def _close_hold(r: _Running) -> None:
        if r.hold_fd >= 0:
            os.close(r.hold_fd)
            r.hold_fd = -1

    def _reap(self, r: _Running) -> None:
        try:
            pid, status, usage = os.wait4(r.pgid, os.WNOHANG)
        except ChildProcessError:
            pid, status, usage = r.pgid, 0, None
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        if usage is not None:
            r.peak = max(r.peak, usage.ru_maxrss * 1024)
        self._unwatch(r.pidfd)
        os.close(r.pidfd)
        r.pidfd = -1
        # Everything the process wrote is in the pipe already: drain it, then let go,
        # so a background grandchild holding the pipe cannot hold the task open.
        self._close_hold(r)
        while r.out_fd >= 0:
            try:
                data = os.read(r.out_fd, 65536)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            self._data(r, data)
        self._close_out(r)
        task = r.job.task
        cg = r.cg
        if cg is not None and r.job.mem_limit and not r.over_memory and not r.killed:
            if cg.oom_kills() or (code == -signal.SIGKILL and cg.hit_limit()):
                r.over_memory = True
                peak = cg.peak()
                self._line(r, f"gristmill: the kernel killed the task for using more than "
                              f"its declared mem of {format_size(r.job.mem_limit)}"
                              + (f" (peak {format_size(peak)})" if peak else ""))
        sig = -code if code < 0 else None
        ecode = None if code < 0 else code
        if r.killed or r.over_memory:
            # The leader is gone; whatever else is left of its tree goes too, and the
            # job ends once none of it is left.
            self._settle(r, ecode, sig)
            return
        ignored = r.index < len(task.ignore_errors) and task.ignore_errors[r.index]
        if code != 0 and ignored:
            self._line(r, f"gristmill: exit status {code} ignored")
        if (code == 0 or ignored) and r.index + 1 < len(task.commands):
            r.index += 1
            self._spawn(r)
            return
        if code == 0 or ignored:
            self._finish(r, 0)
            return
        # A failed attempt: nothing of it may go on writing after it is reported.
        self._settle(r, ecode, sig)

    def _settle(self, r: _Running, code: int | None, sig: int | None) -> None:
        """End ``r`` once its whole tree is gone: everything left is killed now."""
        r.pending = (code, sig)
        r.kill_at = None
        r.drain_since = time.monotonic()
        self._draining[r.job.id] = r
        self._drain()

    def _drain(self) -> None:
        """Kill what is left of each settling job; end those with nothing left."""
        draining = list(self._draining.values())
        by_tree = [r for r in draining if r.cg is None]
        found: dict[int, list] = {}
        if by_tree:
            procs = proctree.snapshot()
            found = proctree.members({r.pgid: r.token for r in by_tree}, procs)
            for r in by_tree:      # each may become our zombie once its parent is killed
                self._orphans.update(p.pid for p in found.get(r.pgid, ()) if p.pid != r.pgid)
            proctree.reap_orphans(procs, self._sessions, self._orphans)
        now = time.monotonic()
        for r in draining:
            if r.cg is not None:
                left = r.cg.pids()
            else:
                left = [p.pid for p in found.get(r.pgid, ())]
            if left and now - r.drain_since < DRAIN_GIVE_UP:
                self._kill_pids(r, left, signal.SIGKILL)
                r.drain_next = now + r.drain_wait
                r.drain_wait = min(DRAIN_MAX, r.drain_wait * 2)
                continue
            del self._draining[r.job.id]
            code, sig = r.pending  # type: ignore[misc]
            message = ""
            if left:
                message = (f"{len(left)} of its processes would not die "
                           f"(pids {' '.join(map(str, left[:10]))})")
                self._line(r, f"gristmill: {message}")
            self._finish(r, code, sig, message)

    def _finish(self, r: _Running, code: int | None, sig: int | None = None,
                message: str = "") -> None:
        out = r.out
        out.close(self._events, keep_held=code != 0 or r.killed)  # type: ignore[union-attr]
        if r.iso is not None:    # outputs moved into place, or thrown away; what went wrong
            problem = r.iso.finish(code == 0 and not r.killed, r.job.log_path)  # type: ignore[attr-defined]
            code = 1 if problem and code == 0 else code
            message = f"{message}; {problem}" if message and problem else message or problem
        self._jobs.pop(r.job.id, None)
        if r.cg is not None:
            peak = r.cg.peak()
            if peak:
                r.peak = peak
            if not r.cg.done():     # reset for the next job, or removed
                r.cg.release()      # background processes of a success live on, outside it
                r.cg.remove()
            r.cg = None
        self._events.append(JobExited(r.job.id, code, sig, r.peak or None, r.killed, message,
                                      r.over_memory, out.trouble))  # type: ignore[union-attr]

    # -- killing ----------------------------------------------------------
    def kill(self, job_id: int) -> None:
        r = self._jobs.get(job_id)
        if r is None or r.killed:
            return
        r.killed = True
        if r.pending is not None:
            return              # already being put down
        r.kill_at = time.monotonic() + KILL_GRACE
        self._signal(r, signal.SIGTERM)

    def kill_all(self, now: bool = False) -> None:
        """Kill every job; ``now``: SIGKILL at once, without the SIGTERM grace."""
        for job_id, r in list(self._jobs.items()):
            if now:
                r.killed = True
                r.kill_at = None
                self._signal(r, signal.SIGKILL)
            else:
                self.kill(job_id)

    def _signal(self, r: _Running, sig: int) -> None:
        """``sig`` to every process of the job: its cgroup's, else its tree's (and a
        container's engine is told to stop it)."""
        if r.iso is not None:
            r.iso.kill()            # type: ignore[attr-defined]
        if not r.pgid:
            return
        try:
            os.killpg(r.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        if r.cg is not None:
            r.cg.signal(sig)
        else:
            tree = proctree.members({r.pgid: r.token}).get(r.pgid, ())
            self._orphans.update(p.pid for p in tree if p.pid != r.pgid)
            self._kill_pids(r, [p.pid for p in tree], sig)

    def _kill_pids(self, r: _Running, pids: list[int], sig: int) -> None:
        if r.cg is not None:
            r.cg.signal(sig)
            return
        me = os.getpid()
        for pid in pids:
            if pid == me:
                continue
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def _escalate_kills(self) -> None:
        now = time.monotonic()
        for r in list(self._jobs.values()):
            if r.kill_at is not None and now >= r.kill_at:
                r.kill_at = None
                self._signal(r, signal.SIGKILL)

    def wakeup(self) -> None:
        """Make a blocked ``wait`` return (thread-safe)."""
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass
        except OSError as exc:   # closed
            if exc.errno != errno.EBADF:
                raise

    def close(self) -> None:
        for r in list(self._jobs.values()):
            self._signal(r, signal.SIGKILL)
            self._close_hold(r)
            if r.iso is not None:
                r.iso.abandon()     # type: ignore[attr-defined]
        # What was killed is gone before its cgroup goes (briefly: SIGKILL is not caught).
        deadline = time.monotonic() + 2.0
        for r in list(self._jobs.values()):
            if r.cg is not None:
                while r.cg.pids() and time.monotonic() < deadline:
                    r.cg.signal(signal.SIGKILL)
                    time.sleep(0.002)
                r.cg.remove()
                r.cg = None
        if self._cgroups is not None:
            self._cgroups.close()
        if self._spawner is not None:       # after every job is gone: see _Spawner
            self._spawner.close()
            self._spawner = None
        if self._sessions or self._orphans:
            proctree.reap_orphans(proctree.snapshot(), self._sessions, self._orphans)
        if self._subreaper:
            proctree.release_subreaper()
            self._subreaper = False
        self._epoll.close()
        for fd in (self._wake_r, self._wake_w, self._devnull):
            try:
                os.close(fd)
            except OSError:
                pass


class _Spawner:
    """One thread that makes calls for another and hands back their results.

    It lives as long as its executor: a process started from it with a parent-death
    signal (bubblewrap's ``--die-with-parent``: the *thread* that forked it) is killed
    when that thread ends, so a thread per spawn would kill every sandbox at once."""

    def __init__(self) -> None:
        import queue
        self._calls: "queue.SimpleQueue" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="gristmill-spawn",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            call = self._calls.get()
            if call is None:
                return
            fn, args, box, done = call
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:       # noqa: BLE001 - raised again in the caller
                box.append((False, exc))
            done.set()

    def call(self, fn, *args):
        """``fn(*args)`` on the spawner's thread; its result, or its exception raised here."""
        box: list = []
        done = threading.Event()
        self._calls.put((fn, args, box, done))
        done.wait()
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self._calls.put(None)
        self._thread.join(5.0)


def _write_all(fd: int, data: bytes) -> None:
    """``data`` to ``fd`` (a closed or full reader loses it: the log keeps it)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        except OSError:
            return
        view = view[n:]


def _rss_of(pids: list[int]) -> int:
    """Resident memory (bytes) of ``pids``, from /proc."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                total += int(f.read().rsplit(b")", 1)[1].split()[21]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total
