"""One run at a time per workflow: an OS file lock beside the history.

A run holds ``flock(LOCK_EX)`` on ``<data>/locks/<folder>-<hash>.lock`` for as long
as it runs; the kernel lets go of it when the process dies, however it dies (kill -9
included), so a lock is never left behind. The file says who holds it (pid, when it
started, the command) for the one that cannot take it. The descriptor is never
inherited: a task left running by a killed Gristmill does not hold the lock.

A plan takes no lock: it only reads.
"""

from __future__ import annotations

import errno
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import paths
from ..errors import UsageError
from ..workflow import blake2b

try:
    import fcntl
except ImportError:                     # Windows: no lock (one run at a time is not enforced)
    fcntl = None    # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a workflow's run lock, as it wrote it when it took the lock."""
    pid: int | None
    started: float | None                # unix time the lock was taken
    command: str

    def words(self) -> str:
        parts = []
        if self.pid:
            parts.append(f"pid {self.pid}")
        if self.started:
            parts.append("started " + time.strftime("%Y-%m-%d %H:%M:%S",
                                                    time.localtime(self.started)))
        if self.command:
            parts.append(f"`{self.command}`")
        return ", ".join(parts) or "another process"


class RunLocked(UsageError):
    """Another run of this workflow holds the lock."""

    def __init__(self, workflow_path: str, holder: Holder):
        self.workflow_path = workflow_path
        self.holder = holder
        super().__init__(f"{self.who()}; wait for it to end (gristmill run --wait), or stop "
                         "it first")

    def who(self) -> str:
        """"another run of PATH is under way (pid, started, command)"."""
        return f"another run of {self.workflow_path} is under way ({self.holder.words()})"


def lock_path(workflow_path: str | os.PathLike[str]) -> Path:
    """The lock file of one workflow (its real path, so two spellings share it)."""
    real = os.path.realpath(os.fspath(workflow_path))
    folder = os.path.basename(os.path.dirname(real)) or "root"
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in folder)[:40]
    digest = blake2b(real.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return paths.data_dir() / "locks" / f"{safe}-{digest}.lock"


class RunLock:
    """The run lock of one workflow. ``acquire`` takes it or raises ``RunLocked``."""

    def __init__(self, workflow_path: str | os.PathLike[str], command: str = "") -> None:
        self.workflow_path = os.fspath(workflow_path)
        self.path = lock_path(workflow_path)
        self.command = command
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)

    def acquire(self, wait: bool = False,
                on_wait: Callable[[Holder], None] | None = None) -> None:
        """Take the lock. Held by another process: raise ``RunLocked``, or, with ``wait``,
        tell ``on_wait`` who holds it and block until it is let go."""
        if self._fd is not None or fcntl is None:
            return
        try:
            fd = self._open()
        except OSError:
            return           # no place for the lock (read-only, full): the run goes on
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                holder = self.holder()
                if not wait:
                    raise RunLocked(self.workflow_path, holder) from None
                if on_wait is not None:
                    on_wait(holder)
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        info = json.dumps({"pid": os.getpid(), "started": time.time(),
                           "command": self.command, "workflow": self.workflow_path},
                          ensure_ascii=False).encode("utf-8", "surrogateescape")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info + b"\n", 0)
        except OSError:
            pass             # a full disk: the lock holds, its holder is unnamed

    def holder(self) -> Holder:
        """Who holds the lock, as its file says (the holder writes it once it has it)."""
        for _ in range(20):
            try:
                text = self.path.read_text("utf-8", "replace")
            except OSError:
                text = ""
            if text.strip():
                try:
                    data = json.loads(text)
                    return Holder(data.get("pid"), data.get("started"), data.get("command", ""))
                except (ValueError, AttributeError):
                    pass
            time.sleep(0.01)     # taken a moment ago: its holder is writing who it is
        return Holder(None, None, "")

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)         # closing lets go of the lock

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
