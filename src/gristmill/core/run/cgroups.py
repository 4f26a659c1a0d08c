"""A cgroup per task: the kernel holds a task's whole process tree and its limits.

``Cgroups.detect()`` finds what this machine lets Gristmill use, once per process:

- **cgroup v2**: a subtree we may write. Root uses its own cgroup, or the
  hierarchy's top where its own cannot have controllers below it; a user
  whose own cgroup is delegated (``systemd-run --user --scope -p Delegate=yes``, a
  service with ``Delegate=yes``) and holds no other process moves itself into a leaf
  of it and uses the rest. Without the memory controller (this hybrid machine's v2
  mount has none), a cgroup still holds the tree (``cgroup.procs``, ``cgroup.kill``)
  and memory is sampled.
- **cgroup v1**: the memory hierarchy (and, for cpu quotas, the cpu hierarchy) below
  Gristmill's own cgroup, as root.

``GRISTMILL_CGROUPS=off`` (or ``v1``, ``v2``) overrides the choice; ``auto`` is the
default. ``GRISTMILL_CPU_QUOTA=1`` turns declared ``cpu`` into a kernel quota.

A run's executor makes one folder (``gristmill-PID-PIDNS-N``) and a cgroup per job
below it (``job-ID``), removed when the job ends; the folders of a Gristmill of the
same pid namespace that died are swept, their processes killed. How a new process
gets in before it can fork (see docs/ARCHITECTURE.md, "A task's cgroup"):

- v1: the spawning *thread* moves itself into the job's cgroup (v1 places threads one
  by one: ``tasks``), spawns (the child is born there), and moves back. Nothing runs
  in the child outside the cgroup, and no extra program starts.
- v2 places whole processes only, and Python has no ``clone3(CLONE_INTO_CGROUP)``:
  the child's own shell writes ``$$`` into ``cgroup.procs`` before it runs the
  command: a prefix of the script when the command goes to ``/bin/sh -c`` anyway,
  else a ``/bin/sh`` that enters and ``exec``s the program.
"""

from __future__ import annotations

import errno
import itertools
import os
import shlex
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

ENV = "GRISTMILL_CGROUPS"
CPU_ENV = "GRISTMILL_CPU_QUOTA"
CPU_PERIOD = 100_000      # µs
_SH = "/bin/sh"
_counter = itertools.count(1)
_LEAF = "gristmill-self"   # v2: where Gristmill moves itself in a delegated cgroup of its own


# -- what the kernel offers ---------------------------------------------------------------

@dataclass(frozen=True)
class Mount:
    kind: str                     # "cgroup" (v1) or "cgroup2"
    point: str                    # where it is mounted
    root: str                     # the hierarchy path seen at that mount point
    controllers: frozenset[str]   # v1: the hierarchy's controllers (v2: empty)


def mounts(mountinfo: str = "/proc/self/mountinfo") -> list[Mount]:
    found = []
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.readlines()
    except OSError:
        return found
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        rfields = right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        kind = rfields[0]
        if kind not in ("cgroup", "cgroup2"):
            continue
        point = fields[4].replace("\\040", " ")
        opts = set(rfields[2].split(",")) if kind == "cgroup" else set()
        found.append(Mount(kind, point, fields[3], frozenset(opts)))
    return found


def own_cgroups(path: str = "/proc/self/cgroup") -> dict[str, str]:
    """controller -> this process's cgroup path in that hierarchy ("" -> the v2 one)."""
    found: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, names, where = parts
        if not names:
            found[""] = where
        else:
            for n in names.split(","):
                found[n] = where
    return found


def _dir(mount: Mount, where: str) -> str:
    """The folder of cgroup ``where`` under ``mount``, or "" if that mount hides it."""
    root = mount.root.rstrip("/")
    if root and not (where == root or where.startswith(root + "/")):
        return ""
    rel = where[len(root):].lstrip("/")
    return os.path.join(mount.point, rel) if rel else mount.point


def _read(path: str) -> str:
    # os.read, not open(): a text file object costs twice the read itself, and a task's
    # end reads two or three of these files (issue 18).
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts = [os.read(fd, 65536)]
        while parts[-1]:       # /proc and cgroup files may come a page at a time
            parts.append(os.read(fd, 65536))
    finally:
        os.close(fd)
    return b"".join(parts).decode("ascii", "replace")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _pids(path: str) -> list[int]:
    try:
        return [int(p) for p in _read(path).split()]
    except (OSError, ValueError):
        return []


def _pid_namespace() -> str:
    """This process's pid namespace (its inode), so that a folder's owner pid is read
    in the namespace it was written in."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "0"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the machine's offer -------------------------------------------------------------------

@dataclass
class Offer:
    """What detection found: ``version`` 2, 1 or 0 (none) and the words for it."""

    version: int = 0
    home: str = ""                # v2: the cgroup Gristmill's job folders go below
    self_dir: str = ""            # v2: the cgroup Gristmill's process sits in
    memory: bool = False          # limits, peak and OOM kills from the kernel
    cpu: bool = False             # cpu quota possible
    v1_dirs: dict[str, str] = field(default_factory=dict)   # v1: controller -> own folder
    why_not: str = ""             # version 0: why no cgroup can be had
    notes: list[str] = field(default_factory=list)

    def enforced(self) -> str:
        """One line: what is and is not enforced, for the user (told once)."""
        if self.version == 0:
            return (f"no cgroup for tasks ({self.why_not}): a task's processes are found "
                    "through /proc (Gristmill is their subreaper) and killed with it; "
                    "declared mem is enforced by sampling memory every 0.25 s (a fast "
                    "allocation can overshoot it), declared cpu is not enforced")
        where = f"cgroup v{self.version}"
        if self.memory:
            return ""       # everything is enforced: nothing to tell
        return (f"tasks run in {where} cgroups without the memory controller: declared "
                "mem is enforced by sampling memory every 0.25 s (a fast allocation can "
                "overshoot it); the whole process tree is still held and killed")


_offer: Offer | None = None
_offer_lock = threading.Lock()
_told: set[str] = set()


def offer(refresh: bool = False) -> Offer:
    """What this machine offers, detected once per process (``GRISTMILL_CGROUPS``)."""
    global _offer
    with _offer_lock:
        if _offer is None or refresh:
            _offer = _detect(os.environ.get(ENV, "auto").strip().lower() or "auto")
        return _offer


def tell_once(line: str) -> str:
    """``line`` the first time it is asked for in this process, then ""."""
    if not line or line in _told:
        return ""
    _told.add(line)
    return line


def _detect(choice: str) -> Offer:
    if choice in ("off", "0", "no", "none", "false"):
        return Offer(why_not=f"{ENV}={choice}")
    if choice not in ("auto", "v1", "v2", "1", "2"):
        return Offer(why_not=f"{ENV}={choice} is not one of auto, v1, v2, off")
    ms = mounts()
    own = own_cgroups()
    tried: list[str] = []
    v2 = v1 = None
    if choice in ("auto", "v2", "2"):
        v2 = _detect_v2(ms, own, tried)
        if v2 is not None and (v2.memory or choice != "auto"):
            return v2
    if choice in ("auto", "v1", "1"):
        v1 = _detect_v1(ms, own, tried)
        if v1 is not None:
            return v1
    if v2 is not None:
        return v2
    return Offer(why_not="; ".join(tried) or "no cgroup file system is mounted")


def _detect_v1(ms: list[Mount], own: dict[str, str], tried: list[str]) -> Offer | None:
    dirs = {}
    for ctl in ("memory", "cpu"):
        m = next((m for m in ms if m.kind == "cgroup" and ctl in m.controllers), None)
        if m is None or ctl not in own:
            continue
        d = _dir(m, own[ctl])
        if d and _can_make_child(d):
            dirs[ctl] = d
    if "memory" not in dirs:
        tried.append("cgroup v1: no writable memory hierarchy" +
                     ("" if os.geteuid() == 0 else " (it needs root)"))
        return None
    return Offer(version=1, memory=True, cpu="cpu" in dirs, v1_dirs=dirs)


def _can_make_child(d: str) -> bool:
    probe = os.path.join(d, f"gristmill-probe-{os.getpid()}-{next(_counter)}")
    try:
        os.mkdir(probe)
    except OSError:
        return False
    try:
        os.rmdir(probe)
    except OSError:
        pass
    return True


def _detect_v2(ms: list[Mount], own: dict[str, str], tried: list[str]) -> Offer | None:
    m = next((m for m in ms if m.kind == "cgroup2"), None)
    if m is None or "" not in own:
        tried.append("cgroup v2 is not mounted")
        return None
    here = _dir(m, own[""])
    if not here or not os.path.isdir(here):
        tried.append("cgroup v2: Gristmill's own cgroup is not visible")
        return None
    offer = Offer(version=2, home=here, self_dir=here)
    if os.path.basename(here) == _LEAF:
        # Moved into its leaf already (an earlier detection in this process): the jobs
        # go beside it, as then.
        parent = os.path.dirname(here)
        try:
            enabled = set(_read(os.path.join(parent, "cgroup.subtree_control")).split())
        except OSError:
            enabled = set()
        if "memory" in enabled:
            offer.home, offer.memory, offer.cpu = parent, True, "cpu" in enabled
            return offer
    is_root = os.path.realpath(here) == os.path.realpath(m.point)
    if not _can_make_child(here):
        tried.append("cgroup v2: Gristmill's cgroup is not delegated to it (run it under "
                     "`systemd-run --user --scope -p Delegate=yes`, or as root)")
        return None
    try:
        available = set(_read(os.path.join(here, "cgroup.controllers")).split())
        enabled = set(_read(os.path.join(here, "cgroup.subtree_control")).split())
    except OSError:
        available, enabled = set(), set()
    wanted = {"memory", "cpu"} & available
    missing = wanted - enabled
    if missing:
        if not is_root:
            others = [p for p in _pids(os.path.join(here, "cgroup.procs")) if p != os.getpid()]
            if not others and _move_self_to_leaf(here, offer):
                pass
            else:
                wanted -= missing
                offer.notes.append("its cgroup holds other processes: controllers "
                                   "cannot be enabled below it")
        if missing & wanted:
            try:
                _write(os.path.join(here, "cgroup.subtree_control"),
                       " ".join(f"+{c}" for c in sorted(missing & wanted)))
            except OSError as exc:
                wanted -= missing
                offer.notes.append(f"cannot enable {', '.join(sorted(missing))}: "
                                   f"{exc.strerror}")
    offer.memory = "memory" in wanted
    offer.cpu = "cpu" in wanted
    if not offer.memory and not is_root and os.geteuid() == 0:
        # Root, in a cgroup it may not enable controllers below (a login scope that
        # holds a shell): job cgroups go below the hierarchy's top instead.
        top = _v2_home_at_top(m.point)
        if top is not None:
            offer.home, offer.memory, offer.cpu = m.point, "memory" in top, "cpu" in top
    if not offer.memory:
        tried.append("cgroup v2: no memory controller to use" +
                     (f" ({'; '.join(offer.notes)})" if offer.notes else ""))
    return offer


def _v2_home_at_top(point: str) -> set[str] | None:
    """The controllers the top of the v2 hierarchy gives its children (enabling memory
    and cpu there if they are not yet), or None where it gives no memory."""
    try:
        available = set(_read(os.path.join(point, "cgroup.controllers")).split())
        enabled = set(_read(os.path.join(point, "cgroup.subtree_control")).split())
        missing = {"memory", "cpu"} & available - enabled
        if missing:
            _write(os.path.join(point, "cgroup.subtree_control"),
                   " ".join(f"+{c}" for c in sorted(missing)))
            enabled |= missing
    except OSError:
        return None
    if "memory" not in enabled or not _can_make_child(point):
        return None
    return enabled


def _move_self_to_leaf(here: str, offer: Offer) -> bool:
    """A delegated cgroup that holds only Gristmill: Gristmill moves into a leaf of it,
    so that controllers can be enabled for the job cgroups beside that leaf."""
    leaf = os.path.join(here, _LEAF)
    try:
        os.makedirs(leaf, exist_ok=True)
        _write(os.path.join(leaf, "cgroup.procs"), str(os.getpid()))
    except OSError:
        return False
    offer.self_dir = leaf
    return True


# -- one executor's cgroups ----------------------------------------------------------------

class Cgroups:
    """The job cgroups of one executor, below a folder of its own."""

    def __init__(self, offer: Offer):
        self.offer = offer
        self.version = offer.version
        self.cpu_quota = offer.cpu and os.environ.get(CPU_ENV, "") not in ("", "0", "off")
        name = f"gristmill-{os.getpid()}-{_pid_namespace()}-{next(_counter)}"
        self._bases: dict[str, str] = {}      # v1: controller -> our folder; v2: "" -> it
        self._back: dict[str, int] = {}       # v1: controller -> fd of our own "tasks"
        self._idle: list[TaskCgroup] = []     # emptied and reset by ``done``: taken again
        self._made = itertools.count(1)
        if self.version == 2:
            base = os.path.join(offer.home, name)
            os.mkdir(base)
            self._bases[""] = base
            enable = [c for c in ("memory", "cpu") if getattr(offer, c)]
            if enable:
                try:
                    _write(os.path.join(base, "cgroup.subtree_control"),
                           " ".join(f"+{c}" for c in enable))
                except OSError:
                    pass
        else:
            controllers = ["memory"] + (["cpu"] if self.cpu_quota else [])
            try:
                for ctl in controllers:
                    own = offer.v1_dirs[ctl]
                    base = os.path.join(own, name)
                    os.mkdir(base)
                    self._bases[ctl] = base
                    self._back[ctl] = os.open(os.path.join(own, "tasks"), os.O_WRONLY)
            except OSError:
                self.close()
                raise

    @staticmethod
    def sweep_stale() -> str:
        """Folders left by a Gristmill that died (kill -9): their processes are killed
        and the folders removed. "" or a line that says what was stopped."""
        o = offer()
        ns = _pid_namespace()
        stopped: dict[int, int] = {}     # owner pid -> processes killed
        homes = [o.home] if o.version == 2 else list(o.v1_dirs.values())
        for home in homes:
            try:
                names = os.listdir(home)
            except OSError:
                continue
            for n in names:
                parts = n.split("-")
                if len(parts) != 4 or parts[0] != "gristmill" or not parts[1].isdigit():
                    continue
                # Only a Gristmill of this pid namespace can be known dead by its pid.
                if parts[2] != ns or int(parts[1]) == os.getpid() or _pid_alive(int(parts[1])):
                    continue
                base = os.path.join(home, n)
                killed = _remove_tree(base, kill=True, v2=o.version == 2)
                if killed:
                    owner = int(parts[1])
                    stopped[owner] = stopped.get(owner, 0) + killed
        if not stopped:
            return ""
        total = sum(stopped.values())
        owners = ", ".join(map(str, sorted(stopped)))
        return (f"stopped {total} process{'es' if total != 1 else ''} that tasks of a "
                f"Gristmill that died (pid {owners}) had left running")

    def create(self, job_id: int, mem: int | None, cpu: float | None) -> "TaskCgroup":
        """A cgroup for one job, with its limits set; OSError if the kernel refuses.

        One that an earlier job of this executor left empty is taken again (``done``
        reset it), its limits rewritten where they differ: a new cgroup costs a mkdir,
        its limits and an rmdir (~0.2 ms of the engine thread's time a task, and the
        kernel's work to free it after); a reused one a few writes to files held open."""
        while self._idle:
            cg = self._idle.pop()
            try:
                cg.limit(mem, cpu)
                return cg
            except OSError:
                cg.remove()         # the kernel would not take the new limits: a new one
        d = {}
        name = f"job-{next(self._made)}"
        try:
            for ctl, base in self._bases.items():
                path = os.path.join(base, name)
                os.mkdir(path)
                d[ctl] = path
            cg = TaskCgroup(self, d)
        except OSError:
            for path in reversed(d.values()):
                try:
                    os.rmdir(path)
                except OSError:
                    pass
            raise
        try:
            cg.limit(mem, cpu)
        except OSError:
            cg.remove()
            raise
        return cg

    def move_home(self, pids: list[int]) -> None:
        """Move processes out of a job's cgroup into Gristmill's own."""
        if self.version == 2:
            target = os.path.join(self.offer.self_dir, "cgroup.procs")
            targets = [target]
        else:
            targets = [os.path.join(os.path.dirname(b), "cgroup.procs")
                       for b in self._bases.values()]
        for t in targets:
            for pid in pids:
                try:
                    _write(t, str(pid))
                except OSError:
                    pass

    def close(self) -> None:
        for cg in self._idle:
            cg.remove()
        self._idle = []
        for fd in self._back.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._back = {}
        for base in self._bases.values():
            _remove_tree(base, kill=False, v2=self.version == 2)
        self._bases = {}


def _tree(d: str) -> list[str]:
    """``d`` and every cgroup below it, the deepest first."""
    try:
        with os.scandir(d) as entries:
            subs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        subs = []
    found = [t for sub in subs for t in _tree(sub)]
    found.append(d)
    return found


def _remove_tree(base: str, kill: bool, v2: bool) -> int:
    """Remove ``base`` and its job folders (``kill``: killing what is in them first);
    how many processes were killed."""
    killed: set[int] = set()
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for n in names:
        d = os.path.join(base, n)
        if n.startswith("job-") and os.path.isdir(d):
            if kill:
                for _ in range(50):
                    pids = [p for t in _tree(d) for p in _pids(os.path.join(t, "cgroup.procs"))]
                    if not pids:
                        break
                    for pid in pids:
                        try:
                            os.kill(pid, 9)
                            killed.add(pid)
                        except OSError:
                            pass
                    time.sleep(0.002)
            for t in _tree(d):
                try:
                    os.rmdir(t)
                except OSError:
                    pass
    try:
        os.rmdir(base)
    except OSError:
        pass
    return len(killed)


IDLE_MAX = 64               # emptied cgroups an executor keeps for its next jobs
# Bytes still charged to an emptied cgroup above which it is not reused: the inodes and
# dentries of files its jobs made stay charged to it, and so does what the kernel holds
# back per CPU for the next charges (64 pages a CPU).
REUSE_MAX_CHARGE = (1 << 20) + 64 * (os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf")
                                     else 4096) * (os.cpu_count() or 1)


def _open(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC)


class TaskCgroup:
    """One job's cgroup (one folder per v1 hierarchy, or one v2 folder).

    The files read or written at every job's start and end are opened once, when the
    cgroup is made, and kept open while the executor reuses it for job after job
    (``done``, ``Cgroups.create``)."""

    __slots__ = ("owner", "dirs", "mem", "cpu", "procs_path", "_main", "_enter", "_procs",
                 "_leave", "_dirfds", "_peak", "_base", "_oom", "_oom_base", "_mem_set",
                 "_cpu_set", "_reusable")

    def __init__(self, owner: Cgroups, dirs: dict[str, str], mem: int | None = None):
        self.owner = owner
        self.dirs = dirs
        self.mem = mem
        self.cpu: float | None = None
        self._main = dirs.get("memory") or dirs.get("")
        self.procs_path = os.path.join(self._main, "cgroup.procs") if self._main else ""
        self._enter: list[int] = []       # v1: each hierarchy's "tasks", to write a tid in
        self._leave = [owner._back[ctl] for ctl in dirs] if owner.version == 1 else []
        self._procs = self._peak = self._oom = -1
        self._dirfds: list[int] = []
        self._base = 0                    # bytes charged when the peak was last reset
        self._oom_base = 0                # OOM kills counted before this job
        self._mem_set: int | None = None  # the limits the files hold now
        self._cpu_set: float | None = None
        self._reusable = True
        try:
            if owner.version == 1:
                self._enter = [_open(os.path.join(d, "tasks"), os.O_WRONLY)
                               for d in dirs.values()]
            self._procs = _open(self.procs_path, os.O_RDONLY)
            self._dirfds = [_open(d, os.O_RDONLY | os.O_DIRECTORY) for d in dirs.values()]
            peak = self._peak_name()
            if peak:
                try:
                    # Read and write: a write resets it (v1; v2 since Linux 6.12, for
                    # reads through this same descriptor).
                    self._peak = _open(os.path.join(self._main, peak), os.O_RDWR)
                except OSError:
                    self._peak = _open(os.path.join(self._main, peak), os.O_RDONLY)
                    self._reusable = False
                self._oom = _open(os.path.join(self._main, "memory.events"
                                               if owner.version == 2 else
                                               "memory.oom_control"), os.O_RDONLY)
        except OSError:
            self._close_fds()
            raise

    def _peak_name(self) -> str:
        if self.owner.version == 2:
            return "memory.peak" if self.owner.offer.memory else ""
        return "memory.max_usage_in_bytes"

    def _close_fds(self) -> None:
        for fd in [*self._enter, self._procs, self._peak, self._oom, *self._dirfds]:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._enter, self._dirfds = [], []
        self._procs = self._peak = self._oom = -1

    # -- limits ----------------------------------------------------------------------------
    def limit(self, mem: int | None, cpu: float | None) -> None:
        """Set the job's limits (only the files whose value changes); OSError if refused."""
        mem = mem or None
        cpu = cpu if cpu and self.owner.cpu_quota else None
        self.mem, self.cpu = mem, cpu
        if mem != self._mem_set:
            if self.owner.version == 2:
                if self.owner.offer.memory:
                    self._limit_v2(mem)
            else:
                self._limit_v1(mem)
            self._mem_set = mem
        if cpu != self._cpu_set:
            quota = max(1000, int(cpu * CPU_PERIOD)) if cpu else None
            if self.owner.version == 2:
                _write(os.path.join(self._main, "cpu.max"),
                       f"{quota if quota else 'max'} {CPU_PERIOD}")
            elif "cpu" in self.dirs:
                _write(os.path.join(self.dirs["cpu"], "cpu.cfs_quota_us"),
                       str(quota if quota else -1))
            self._cpu_set = cpu
        if mem and self._oom >= 0:
            # The kernel's OOM count only grows: this job's kills are those beyond it.
            self._oom_base = self._oom_count()

    def _limit_v1(self, mem: int | None) -> None:
        d = self.dirs["memory"]
        value = str(mem) if mem else "-1"
        old = self._mem_set
        # Memory with swap may never be below memory alone: a limit that grows writes
        # that one first, a limit that shrinks writes it second.
        grows = mem is None or (old is not None and mem > old)
        files = ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
        for f in files if grows else reversed(files):
            try:
                _write(os.path.join(d, f), value)
            except OSError:
                if f == "memory.limit_in_bytes":
                    raise
                # swap must not hide the limit: without the file there is no swap count

    def _limit_v2(self, mem: int | None) -> None:
        _write(os.path.join(self._main, "memory.max"), str(mem) if mem else "max")
        for f, on, off in (("memory.swap.max", "0", "max"), ("memory.oom.group", "1", "0")):
            try:
                _write(os.path.join(self._main, f), on if mem else off)
            except OSError:
                pass

    # -- placing a new process ---------------------------------------------------------
    def argv(self, argv: list[str]) -> list[str]:
        """v2: ``argv`` made to enter the cgroup in the child before it runs anything
        (v1: unchanged: see ``entered``)."""
        if self.owner.version != 2:
            return argv
        enter = f"echo $$ >{shlex.quote(self.procs_path)} || exit 125"
        if len(argv) == 3 and argv[0] == _SH and argv[1] == "-c":
            return [_SH, "-c", f"{enter}; {argv[2]}"]
        return [_SH, "-c", f'{enter}; exec "$@"', argv[0], *argv]

    @contextmanager
    def entered(self):
        """v1: the calling thread sits in the cgroup meanwhile: a process it spawns is
        born there."""
        if self.owner.version != 1:
            yield
            return
        # "0", not the thread's id: the kernel moves the writing thread then without
        # taking its global threadgroup lock, whose write side waits for an RCU grace
        # period (issue 18: 22 µs for both moves instead of 90–180 µs under load; the
        # CPU is the same ~8 µs).
        moved = 0
        try:
            for fd in self._enter:
                os.write(fd, b"0")
                moved += 1
            yield
        finally:
            for fd in self._leave[:moved]:
                try:
                    os.write(fd, b"0")
                except OSError:
                    pass        # the thread stays in the job's cgroup: harmless for v1

    # -- reading ---------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """Every process in the task's cgroup and in the cgroups below it (a task that
        makes cgroups of its own, such as a Gristmill run inside it)."""
        if not self._main:
            return []
        return [p for d in _tree(self._main) for p in _pids(os.path.join(d, "cgroup.procs"))]

    def _own_pids(self) -> bytes:
        """cgroup.procs of the job's own folder, as the kernel writes it (b"": empty)."""
        try:
            return os.pread(self._procs, 65536, 0)
        except OSError:
            return b"?"

    def peak(self) -> int | None:
        """The largest memory the task's cgroup held during this job, in bytes (None:
        unknown)."""
        if self._peak < 0:
            return None
        try:
            value = int(os.pread(self._peak, 64, 0).split()[0]) - self._base
        except (OSError, ValueError, IndexError):
            return None
        return value if value > 0 else None

    def _oom_count(self) -> int:
        try:
            text = os.pread(self._oom, 4096, 0)
        except OSError:
            return 0
        for line in text.splitlines():
            k, _, v = line.partition(b" ")
            if k == b"oom_kill":
                try:
                    return int(v)
                except ValueError:
                    return 0
        return 0

    def oom_kills(self) -> int:
        """How many of the task's processes the kernel's OOM killer ended in this job."""
        if self._oom < 0:
            return 0
        return max(0, self._oom_count() - self._oom_base)

    def hit_limit(self) -> bool:
        """v1 kernels without an ``oom_kill`` count: the limit was reached at all."""
        if self.owner.version != 1:
            return False
        try:
            return int(_read(os.path.join(self._main, "memory.failcnt"))) > 0
        except (OSError, ValueError):
            return False

    # -- ending --------------------------------------------------------------------------
    def signal(self, sig: int) -> int:
        """Send ``sig`` to every process in the cgroup; how many there were."""
        if sig == 9 and self.owner.version == 2:
            try:
                _write(os.path.join(self._main, "cgroup.kill"), "1")
            except OSError:
                pass
        # Never Gristmill itself: while its spawning thread sits in a v1 job cgroup, that
        # cgroup's process list names Gristmill too.
        me = os.getpid()
        pids = [p for p in self.pids() if p != me]
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        return len(pids)

    def release(self) -> None:
        """Move whatever is left (background processes of a task that succeeded) out
        into Gristmill's own cgroup, so this one can go."""
        me = os.getpid()
        for _ in range(20):
            pids = [p for p in self.pids() if p != me]
            if not pids:
                return
            self.owner.move_home(pids)

    def done(self) -> bool:
        """The job is over: the cgroup goes back to its executor for the next job when
        nothing is left in it (no process, no cgroup below it, little memory still
        charged), its peak and failure counts reset; else it is removed. False when it
        holds a process or a cgroup of its own: then ``release`` and ``remove``."""
        if self._own_pids():
            return False
        try:
            if any(os.fstat(fd).st_nlink > 2 for fd in self._dirfds):
                return False        # a cgroup below it (a folder's links: 2 + its folders)
        except OSError:
            return False
        owner = self.owner
        if not self._reusable or len(owner._idle) >= IDLE_MAX or not self._reset():
            return self.remove()
        owner._idle.append(self)
        return True

    def _reset(self) -> bool:
        """Make the cgroup as a new one would read: no peak, no limit hits."""
        if self._peak >= 0:
            try:
                os.write(self._peak, b"0")
                charged = int(os.pread(self._peak, 64, 0).split()[0])
            except (OSError, ValueError, IndexError):
                return False
            if charged > REUSE_MAX_CHARGE:
                return False
            self._base = charged
        if self._mem_set and self.owner.version == 1:
            try:
                _write(os.path.join(self._main, "memory.failcnt"), "0")
            except OSError:
                return False
        return True

    def remove(self) -> bool:
        self._close_fds()
        ok = True
        for d in [sub for top in self.dirs.values() for sub in _tree(top)]:
            for _ in range(3):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        ok = False
                        break
                    os.sched_yield()
            else:
                ok = False
        return ok
