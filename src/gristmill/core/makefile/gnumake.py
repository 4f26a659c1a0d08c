"""Finding GNU make and running it the way the reader needs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import Location, UsageError, WorkflowError

MAKEFILE_NAMES = ("GNUmakefile", "makefile", "Makefile")   # make's own search order

# Variables that carry a parent make's state (jobserver fds, flags); a fresh
# top-level read must not inherit them.
_PARENT_MAKE_VARS = ("MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
                     "MAKE_RESTARTS", "MAKE_TERMOUT", "MAKE_TERMERR")


@dataclass(frozen=True, slots=True)
class GnuMake:
    """The GNU make Gristmill runs."""

    command: str              # what $(MAKE) expands to: the name we ran it by
    version: tuple[int, int]


@dataclass(frozen=True, slots=True)
class MakeRun:
    """One make run's exit status and output."""

    returncode: int
    stdout: str
    stderr: str


def find_makefile(folder: Path) -> Path | None:
    """The file GNU make would read in ``folder`` with no ``-f``."""
    for name in MAKEFILE_NAMES:
        p = folder / name
        if p.is_file():
            return p
    return None


def find_gnu_make(makefile: str) -> GnuMake:
    """GNU make 4.x on PATH (``GRISTMILL_MAKE`` names another), or a clear WorkflowError."""
    key = (os.environ.get("GRISTMILL_MAKE", ""), os.environ.get("PATH", ""))
    found = _FOUND.get(key)
    if found is None:
        found = _find_gnu_make(makefile)
        _FOUND[key] = found
    return found


_FOUND: dict[tuple[str, str], GnuMake] = {}


def _find_gnu_make(makefile: str) -> GnuMake:
    candidates = [os.environ["GRISTMILL_MAKE"]] if os.environ.get("GRISTMILL_MAKE") else ["make", "gmake"]
    seen_other = ""
    for name in candidates:
        if shutil.which(name) is None:
            continue
        try:
            out = subprocess.run([name, "--version"], capture_output=True, text=True,
                                 timeout=30, env=base_env()).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.match(r"GNU Make (\d+)\.(\d+)", out)
        if not m:
            seen_other = f" ('{name}' on PATH is not GNU make)"
            continue
        version = (int(m.group(1)), int(m.group(2)))
        if version < (4, 0):
            seen_other = f" ('{name}' is GNU make {version[0]}.{version[1]})"
            continue
        return GnuMake(name, version)
    raise WorkflowError(
        "reading a Makefile needs GNU make 4.0 or newer on PATH, and none was found"
        f"{seen_other}; install GNU make, or set GRISTMILL_MAKE to its path",
        Location(makefile, 1, 1))


def base_env() -> dict[str, str]:
    """The environment make runs in: ours, minus a parent make's flags, messages in English."""
    env = {k: v for k, v in os.environ.items()
           if k not in _PARENT_MAKE_VARS and not k.startswith("GRISTMILL_TARGET")}
    env["LC_MESSAGES"] = "C"
    env.pop("LANGUAGE", None)
    return env


def run_make(make: GnuMake, folder: Path, args: list[str], env: dict[str, str],
             timeout: float = 600) -> MakeRun:
    try:
        proc = subprocess.run([make.command, *args], cwd=folder, env=env, capture_output=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise WorkflowError(f"GNU make took more than {timeout:.0f}s to read the Makefile "
                            "(a $(shell ...) that never ends?)", path=str(folder)) from None
    except OSError as exc:
        raise WorkflowError(f"could not run GNU make: {exc}", path=str(folder)) from None
    return MakeRun(proc.returncode, proc.stdout.decode("utf-8", "surrogateescape"),
                   proc.stderr.decode("utf-8", "surrogateescape"))


def variable_args(variables: dict[str, str] | None) -> list[str]:
    """Command-line assignments, as ``make NAME=value`` takes them."""
    out = []
    for name, value in (variables or {}).items():
        if not name or any(c in name for c in " \t\n=#:"):
            raise UsageError(f"bad make variable name {name!r}")
        out.append(f"{name}={value}")
    return out
