"""Which file is a folder's workflow, and the questions a load asks of the disk
(no parsing here: cheap to import)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import WorkflowError

MAKEFILE_NAMES = ("GNUmakefile", "makefile", "Makefile")
WORKFLOW_FILES = ("gristmill.toml", "gristmill.json") + MAKEFILE_NAMES


def find_workflow_file(folder: str | Path) -> Path | None:
    """The workflow file of ``folder``: gristmill.toml, gristmill.json, then a Makefile."""
    folder = Path(folder)
    for name in WORKFLOW_FILES:
        candidate = folder / name
        try:
            if candidate.is_file():
                return candidate
        except OSError:               # e.g. a folder we may not look into
            return None
    return None


def is_makefile(path: str | Path) -> bool:
    """Whether ``path`` (a workflow file) is read as a Makefile, by GNU make."""
    return Path(path).suffix.lower() not in (".toml", ".json")


class NotAFile(OSError):
    """A path that names something other than a regular file (a FIFO, a device, a folder):
    reading it would wait for a writer forever, or never end."""


def kind_of(mode: int) -> str | None:
    """"a FIFO", "a device", ... for a file mode that is not a regular file's; else None."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the regular file at ``path``; ``NotAFile`` (an OSError) for anything
    else. Opened without blocking, so that a FIFO is refused instead of waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        kind = kind_of(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotAFile(errno.EINVAL, f"it is {kind}, not a file" if kind[0] == "a"
                           else f"it is {kind}", os.fspath(path))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            return f.read()
    finally:
        if fd >= 0:
            os.close(fd)


def workflow_file(path: str | Path) -> Path:
    """The workflow file ``path`` names: itself, or the one in a folder. WorkflowError if none."""
    p = Path(path)
    try:
        if p.is_dir():
            found = find_workflow_file(p)
            if found is None:
                raise WorkflowError("no workflow file here: expected gristmill.toml, "
                                    "gristmill.json or a Makefile", path=str(p), line=0, col=0)
            p = found
        elif not p.exists():
            raise WorkflowError("no such file or folder", path=str(p), line=0, col=0)
        else:
            kind = kind_of(p.stat().st_mode)
            if kind is not None:
                raise WorkflowError(f"cannot read: it is {kind}, not a workflow file",
                                    path=str(p))
    except (OSError, ValueError) as exc:
        raise WorkflowError(f"cannot open: {exc}", path=str(p)) from None
    return p


class Probe:
    """The loader's questions to the file system. ``DiskLog`` (in ``wfcache``) answers
    the same and remembers them, so that a cached workflow can tell whether a new load
    would see the same disk."""

    isdir = staticmethod(os.path.isdir)
    isfile = staticmethod(os.path.isfile)
    exists = staticmethod(os.path.exists)
    lexists = staticmethod(os.path.lexists)
    listdir = staticmethod(os.listdir)

    def scandir(self, path: str) -> list[os.DirEntry[str]]:
        return list(os.scandir(path))


DIRECT = Probe()
