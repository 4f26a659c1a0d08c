"""Loaded workflows kept on disk, so that a run of an unchanged workflow skips the load.

Parsing and expanding a gristmill.toml of 20,000 task instances takes a fifth of a
second; a no-op run should cost what deciding costs, as in ninja. ``load_cached``
returns the workflow a fresh load would return: an entry is used only while
everything that load looked at is as it was:

- every file it read (the workflow, its includes, JSON files of ``[vars]``): the
  bytes, by their hash;
- every folder whose listing it read (a glob, many existence checks in one folder):
  the folder's mtime, which moves whenever a name is added, removed or renamed in
  it. A folder that changed within ``RACY_NS`` of being listed is listed again
  and compared by its names, since a change in the same clock tick would leave the
  mtime as it was (git's "racy" index entries);
- every other question it asked (does this path exist, is it a folder), asked again;
- the command-line variables, the path as given (it is in every error location),
  and the loader's own code (the version, and its modules' files when run from
  source).

Makefiles are never cached: GNU make's evaluation may depend on anything
(``$(shell)``, the environment), so it runs every time.

An entry is one file in ``paths.cache_dir()``: a marshal header (what was looked at)
and a pickle of the workflow and its graph. The folder is the user's own (mode
0700); a file that cannot be read back for any reason is ignored and replaced.
``GRISTMILL_NO_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import gc
import marshal
import os
import pickle
import signal
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

from ..decide.graph import TaskGraph
from .locate import Probe, is_makefile, read_file, workflow_file
from ..workflow import Workflow, blake2b

FORMAT = 5
MAGIC = b"GMWFC\x00\x00" + bytes([FORMAT])
RACY_NS = 2_000_000_000          # FAT's 2 s timestamps are the coarsest in use
KEEP = 64                        # entries kept; the least recently written go first
# Paths a StampPrefetch stats at most: beyond, the scan stats them itself. The helper's
# list and the mtimes it sends back are a second copy of every path (at a million tasks,
# 1.5 million paths: 180 MB beside the workflow's own, and a dict to build; issue 18).
PREFETCH_MAX = 200_000
# The modules whose code decides what a load returns.
_LOADER_MODULES = ("load/loader", "load/expand", "load/globs", "load/source", "load/spec",
                   "load/placeholders", "load/tomlpos", "load/jsonpos", "workflow",
                   "decide/graph", "errors", "sizes", "frozen", "load/cache")


def _digest(data: bytes) -> bytes:
    return blake2b(data, digest_size=16).digest()


def _names_digest(names: list[str]) -> bytes:
    return _digest("\0".join(sorted(names)).encode("utf-8", "surrogateescape"))


class DiskLog(Probe):
    """A ``Probe`` that remembers every answer, for ``still_valid`` to check later."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}                      # path -> hash of the bytes read
        self.answers: dict[tuple[str, str], bool] = {}          # (question, path) -> answer
        self.listings: dict[str, tuple[int, bytes]] = {}        # folder -> (mtime_ns, names)

    def read(self, path: str, data: bytes) -> None:
        self.files[path] = _digest(data)

    def _ask(self, how: str, path: str) -> bool:
        answer = _QUESTIONS[how](path)
        self.answers[(how, path)] = answer
        return answer

    def isdir(self, path: str) -> bool:  # type: ignore[override]
        return self._ask("isdir", path)

    def isfile(self, path: str) -> bool:  # type: ignore[override]
        return self._ask("isfile", path)

    def exists(self, path: str) -> bool:  # type: ignore[override]
        return self._ask("exists", path)

    def lexists(self, path: str) -> bool:  # type: ignore[override]
        return self._ask("lexists", path)

    def listdir(self, path: str) -> list[str]:  # type: ignore[override]
        mtime = os.stat(path).st_mtime_ns           # before the listing: a change after
        names = sorted(os.listdir(path))            # it shows as a newer mtime
        self.listings[path] = (mtime, _names_digest(names))
        return names                                # sorted: a glob sorts them once more in one pass

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        mtime = os.stat(path).st_mtime_ns
        entries = list(os.scandir(path))
        self.listings[path] = (mtime, _names_digest([e.name for e in entries]))
        for e in entries:
            if e.is_symlink():       # what it points to may change without the folder
                self._ask("isdir", e.path)
        return entries


_QUESTIONS = {"isdir": os.path.isdir, "isfile": os.path.isfile, "exists": os.path.exists,
              "lexists": os.path.lexists}


def cache_file(path: Path, display: str, variables: dict[str, str] | None,
               folder: Path) -> Path:
    """Where the entry of this load lives."""
    key = repr((os.path.abspath(path), display, sorted((variables or {}).items())))
    return folder / (blake2b(key.encode("utf-8", "surrogateescape"),
                             digest_size=16).hexdigest() + ".wfc")


def code_fingerprint() -> tuple:
    """Changes whenever the code that loads workflows may have changed."""
    from ... import __version__
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # core/
    stamps = []
    for name in _LOADER_MODULES:
        try:
            st = os.stat(os.path.join(here, name + ".py"))
            stamps.append((name, st.st_mtime_ns, st.st_size))
        except OSError:          # a frozen app: its modules are inside the executable
            pass
    if getattr(sys, "frozen", False):
        try:
            st = os.stat(sys.executable)
            stamps.append(("executable", st.st_mtime_ns, st.st_size))
        except OSError:
            pass
    return (FORMAT, __version__, sys.version_info[:2], tuple(stamps))


def load_cached(path: str | Path, variables: dict[str, str] | None = None,
                folder: Path | None = None, defer: bool = False,
                prefetch: list[StampPrefetch] | None = None,
                goals: Sequence[str] = (), log: DiskLog | None = None,
                recipes: bool = True) -> Workflow:
    """``loader.load_workflow(path, variables)``, from the cache when nothing changed.

    A fresh load is stored before this returns, or with ``defer`` when the process
    calls ``write_deferred`` (the CLI, as it exits: see there). With a ``prefetch``
    list, an entry found valid starts a ``StampPrefetch`` of the default target's
    files and appends it there, before the workflow itself is read back. A fresh
    ``log`` is told what the load looked at, read back from the entry when one is used
    (the app watches those files and folders). ``recipes=False``: a Makefile's graph
    read (no recipe expanded: a run in which make runs the recipes).
    """
    p = workflow_file(path)
    if is_makefile(p):
        # Straight to the Makefile reader: the TOML/JSON loader (its schema, templates,
        # tomllib) is no part of reading a Makefile, and a no-op should not import it.
        from ..makefile import load_makefile
        return load_makefile(p, variables, goals, recipes=recipes)
    if os.environ.get("GRISTMILL_NO_CACHE"):
        from .loader import load_workflow
        if log is not None:
            return load_workflow(p, variables, probe=log, goals=goals)
        return load_workflow(p, variables, goals=goals)
    if folder is None:
        from ..paths import cache_dir
        folder = cache_dir()
    else:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    entry = cache_file(p, str(p), variables, folder)
    fingerprint = code_fingerprint()
    found = _read(entry, fingerprint, prefetch, log)
    if found is not None:
        return found
    from .loader import load_workflow
    log = log if log is not None else DiskLog()
    written_at = time.time_ns()
    # The collector stays off until the header is made too: back on in between, its
    # first collection would walk every object the load just made (0.1 s at 100,000
    # tasks), all of them alive.
    enabled = gc.isenabled()
    gc.disable()
    try:
        wf = load_workflow(p, variables, probe=log)
        header = _header(fingerprint, log, written_at)
    finally:
        if enabled:
            gc.enable()
    if defer:
        _deferred.append((entry, header, wf))
    else:
        _serialise(entry, header, wf)
    return wf


# -- reading ------------------------------------------------------------------------

def _read(entry: Path, fingerprint: tuple, prefetch: list[StampPrefetch] | None = None,
          log: DiskLog | None = None) -> Workflow | None:
    try:
        # Not blocking: an entry that is a FIFO is passed over, not waited on; one that is
        # a device or a folder is passed over too (and replaced by the next store).
        fd = os.open(entry, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None          # a fresh load's store replaces it (a folder stays)
    with os.fdopen(fd, "rb") as f:
        try:
            os.set_blocking(fd, True)
            identity = (st.st_ino, st.st_size)
            head = f.read(16)
        except OSError:
            return None
        try:
            if head[:8] != MAGIC:
                return None
            size = int.from_bytes(head[8:16], "little")
            header = marshal.loads(f.read(size))
            if header["code"] != fingerprint:
                return None
            valid, settled = _still_valid(header)
            if not valid:
                return None
            if prefetch is not None and header.get("stamps") and not getattr(sys, "frozen", False) \
                    and os.stat in os.supports_dir_fd:
                prefetch.append(StampPrefetch(entry, identity, header["stamps"]))
            # Read from the file as it is unpickled, not read whole first: the bytes of a
            # million tasks (230 MB) were alive beside the objects made from them (issue
            # 18). Kept whole only when the entry is to be stored again.
            payload = f.read() if settled else None
            wf = _unpack(memoryview(payload) if payload is not None else f)
        except Exception:        # truncated, another format, a class that moved: load again
            for started in prefetch or ():
                started.cancel()
            if prefetch:
                del prefetch[:]
            return None
    if log is not None:
        log.files = dict(header["files"])
        log.answers = {(how, path): answer for how, path, answer in header["answers"]}
        log.listings = {path: (mtime, names) for path, mtime, names, _racy in header["listings"]}
    if settled:
        # Folders that were racy when listed are settled now: say so, so that the next
        # run checks their mtime only.
        _store(entry, header, payload)
    return wf


def _still_valid(header: dict) -> tuple[bool, bool]:
    """(whether a load now would see what the entry's load saw, whether racy folders
    could be marked settled)."""
    for path, digest in header["files"]:
        try:
            if _digest(read_file(path)) != digest:
                return False, False
        except OSError:          # gone, or now a FIFO or a device: the load says so
            return False, False
    for how, path, answer in header["answers"]:
        if _QUESTIONS[how](path) != answer:
            return False, False
    settled = False
    now = time.time_ns()
    listings = header["listings"]
    for k, (path, mtime, names, racy) in enumerate(listings):
        try:
            if os.stat(path).st_mtime_ns != mtime:
                return False, False
            if racy:
                if _names_digest(os.listdir(path)) != names:
                    return False, False
                if now - mtime > RACY_NS:
                    listings[k] = (path, mtime, names, False)
                    settled = True
        except OSError:
            return False, False
    return True, settled


def _unpack(payload) -> Workflow:
    """The workflow from ``payload``: a memoryview, or the entry's file at the payload."""
    enabled = gc.isenabled()
    gc.disable()            # as in the loader: nothing here is garbage yet
    try:
        wf, graph_state = pickle.loads(payload) if isinstance(payload, memoryview) \
            else pickle.load(payload)
    finally:
        if enabled:
            gc.enable()
    graph = TaskGraph.__new__(TaskGraph)
    graph.workflow = wf
    graph.producer, graph._deps, graph._dependants, graph._order = graph_state
    graph._sinks = None
    object.__setattr__(wf, "_task_graph", graph)
    return wf


# -- prefetching stamps -------------------------------------------------------------

class StampPrefetch:
    """The mtimes of a workflow's files, read by a helper process while this one reads
    the workflow back and opens history (git's preloaded index, in a process: os.stat
    from a thread would wait for the GIL after every call, and a forked child would
    cost the parent a copy of every page it then touches).

    A no-op run of 20,000 tasks stats 40,000 files, a third of its time; the helper
    (a bare interpreter that reads the list from the cache entry itself) does it on
    the other core. ``result`` waits for it: path -> mtime_ns, or None where the file
    is missing. A file changed between the helper's stat and the scan is the same
    race as between any scan and the run that follows it.
    """

    def __init__(self, entry: Path, identity: tuple[int, int], paths: tuple[str, ...]):
        import subprocess
        self.paths = paths
        self._proc: subprocess.Popen | None = None
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _HELPER, str(entry), str(identity[0]),
                 str(identity[1])], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, close_fds=True)
        except OSError:
            pass

    def result(self) -> dict[str, int | None] | None:
        """path -> mtime_ns or None; None if the helper failed (the scan stats them then)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        try:
            data = proc.stdout.read()            # type: ignore[union-attr]
            proc.wait()
            values = marshal.loads(data)
        except (OSError, EOFError, ValueError, TypeError):
            return None
        finally:
            proc.stdout.close()                  # type: ignore[union-attr]
        if proc.returncode != 0 or not isinstance(values, list) or len(values) != len(self.paths):
            return None
        return dict(zip(self.paths, values))

    def cancel(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            proc.stdout.close()                  # type: ignore[union-attr]


# The helper: the entry named by argv (if it is still the file of that inode and size),
# its header's root and paths, one stat each; out goes a marshal list of mtimes.
_HELPER = """
import marshal, os, sys
entry, ino, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(entry, "rb") as f:
    st = os.fstat(f.fileno())
    if (st.st_ino, st.st_size) != (ino, size):
        sys.exit(1)
    head = f.read(16)
    header = marshal.loads(f.read(int.from_bytes(head[8:16], "little")))
fd = os.open(header["root"], os.O_RDONLY)
stat = os.stat
out = []
append = out.append
for p in header["stamps"]:
    try:
        append(stat(p, dir_fd=fd).st_mtime_ns)
    except OSError:
        append(None)
sys.stdout.buffer.write(marshal.dumps(out))
"""


# -- writing ------------------------------------------------------------------------

_deferred: list[tuple[Path, dict, Workflow]] = []


def _header(fingerprint: tuple, log: DiskLog, written_at: int) -> dict:
    return {
        "code": fingerprint,
        "files": list(log.files.items()),
        "answers": [(how, path, answer) for (how, path), answer in log.answers.items()],
        "listings": [(path, mtime, names, mtime >= written_at - RACY_NS)
                     for path, (mtime, names) in log.listings.items()],
    }


def write_deferred_in_thread() -> threading.Thread | None:
    """Store the loads ``load_cached(defer=True)`` made from a thread of their own (a
    process that has other threads and must not wait: the app, after its window shows).
    The thread is not a daemon: a process that exits meanwhile waits for the entry."""
    pending = _deferred[:]
    del _deferred[:]
    if not pending:
        return None
    thread = threading.Thread(target=lambda: [_serialise(*item) for item in pending],
                              name="gristmill-cache-write")
    thread.start()
    return thread


def write_deferred() -> None:
    """Store the loads ``load_cached(defer=True)`` made, from a forked child if safe.

    Serialising 100,000 tasks takes a third as long as loading them; a command should
    not wait for that. Called as the process is about to exit, a fork costs the
    parent only the copy of its page tables, and the child (which has the workflow
    for free) writes the entry after the parent is gone. Forking is safe only with no
    other thread alive (one could hold a lock the child needs); otherwise, and where
    there is no fork, the entry is written here.
    """
    pending = _deferred[:]
    del _deferred[:]
    # An entry another process is writing now (the previous command's child, still at
    # it at nice 19 on a busy machine) is left to it: a million tasks' writer holds
    # 1.4 GB, and every command of a row started one more (issue 18).
    pending = [item for item in pending if not _being_written(item[0])]
    if not pending:
        return
    if not hasattr(os, "fork") or threading.active_count() > 1:
        for item in pending:
            _serialise(*item)
        return
    try:
        sys.stdout.flush()           # the child must not write our buffered output again
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    try:
        pid = os.fork()
    except OSError:
        return                       # no entry this time
    if pid:
        return
    try:                             # the child: write, and leave at once
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a Ctrl-C was for the run
        gc.disable()
        try:                         # behind whatever the user runs next, not beside it
            os.nice(19)
        except OSError:
            pass
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):         # a caller waiting for the end of our output
            os.dup2(devnull, fd)     # must not wait for this child
        os.closerange(3, 1 << 16)
        for item in pending:
            _serialise(*item)
    finally:
        os._exit(0)


def _lock_file(entry: Path) -> int | None:
    """The entry's writer lock (``ENTRY.lock``, flock'ed while it is written), held by
    this process when the descriptor is returned; None when another process holds it."""
    import fcntl
    try:
        fd = os.open(entry.with_name(entry.name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
    except OSError:
        return -1                # no lock to be had (a read-only folder): write anyway
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _being_written(entry: Path) -> bool:
    fd = _lock_file(entry)
    if fd is None:
        return True
    if fd >= 0:
        os.close(fd)             # closing it releases the lock
    return False


def _serialise(entry: Path, header: dict, wf: Workflow) -> None:
    """Write the entry: the header, then the workflow and its graph; nothing when
    another process is writing it."""
    fd = _lock_file(entry)
    if fd is None:
        return
    try:
        _write_entry(entry, header, wf)
    finally:
        if fd >= 0:
            os.close(fd)


def _write_entry(entry: Path, header: dict, wf: Workflow) -> None:
    for task in wf.tasks.values():
        task.definition_hash             # kept in the task: a no-op run compares them all
    graph = TaskGraph.of(wf)
    tasks = wf.tasks
    header["root"] = str(wf.root)
    if len(tasks) <= PREFETCH_MAX:       # more tasks: more paths too, nearly always
        if graph.reaches_all(wf.default):
            order: Sequence[str] = graph.order
        else:
            wanted = graph.closure(wf.default)
            order = [n for n in graph.order if n in wanted]
        stamps = tuple({p: None for name in order for t in (tasks[name],)
                        for p in t.outputs + t.inputs})
        if len(stamps) <= PREFETCH_MAX:
            header["stamps"] = stamps
    try:
        payload = pickle.dumps((wf, (graph.producer, graph._deps, graph._dependants,
                                     graph._order)), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:        # something in the workflow pickle cannot carry: no entry
        return
    _store(entry, header, payload)
    _prune(entry.parent)


def _store(entry: Path, header: dict, payload: bytes) -> None:
    head = marshal.dumps(header)
    tmp = entry.with_name(f"{entry.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(MAGIC + len(head).to_bytes(8, "little") + head)
            f.write(payload)
        os.replace(tmp, entry)        # readers see the old entry or the new, whole
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _prune(folder: Path) -> None:
    """Keep the ``KEEP`` newest entries; remove what a killed writer left behind."""
    try:
        entries = []
        stale = time.time_ns() - 600 * 1_000_000_000
        for e in os.scandir(folder):
            if e.name.endswith(".wfc"):
                entries.append((e.stat().st_mtime_ns, e.path))
            elif e.name.endswith(".tmp") and e.stat().st_mtime_ns < stale:
                os.unlink(e.path)
        entries.sort()
        for _, path in entries[:max(len(entries) - KEEP, 0)]:
            os.unlink(path)
            try:
                os.unlink(path + ".lock")
            except FileNotFoundError:
                pass
    except OSError:
        pass


__all__ = ["DiskLog", "StampPrefetch", "cache_file", "code_fingerprint", "load_cached",
           "write_deferred"]
