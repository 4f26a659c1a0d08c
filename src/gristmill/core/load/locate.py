"""Which file is a folder's workflow, and the questions a load asks of the disk
(no parsing here: cheap to import)."""

from __future__ import annotations

import os
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


def workflow_file(path: str | Path) -> Path:
    """The workflow file ``path`` names: itself, or the one in a folder. WorkflowError if none."""
    p = Path(path)
    try:
        if p.is_dir():
            found = find_workflow_file(p)
            if found is None:
                raise WorkflowError("no workflow file here: expected gristmill.toml, "
                                    "gristmill.json or a Makefile", path=str(p))
            p = found
        elif not p.exists():
            raise WorkflowError("no such file or folder", path=str(p))
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
