"""Run GNU make and Gristmill side by side on copies of a corpus Makefile, and compare."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "corpus"
EXAMPLE_C = Path(__file__).resolve().parents[2] / "resources" / "examples" / "make-c"


def _gnu_make() -> str | None:
    for name in ("make", "gmake"):
        path = shutil.which(name)
        if path is None:
            continue
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.match(r"GNU Make (\d+)\.", out)
        if m and int(m.group(1)) >= 4:
            return name
    return None


GNU_MAKE = _gnu_make()
needs_make = pytest.mark.skipif(GNU_MAKE is None, reason="GNU make 4.x is not installed: "
                                "reading Makefiles needs it, so these tests cannot run")
needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc) installed")

_PARENT = ("MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
_TRACE = re.compile(r"^(?:<builtin>|\S+?:\d+): (?:update target '(?P<a>.*)' due to: .*|target '(?P<b>.*)' does not exist)$")
_ENTER = re.compile(r"^\S+\[\d+\]: Entering directory ")
_LEAVE = re.compile(r"^\S+\[\d+\]: Leaving directory ")


@dataclass
class Case:
    name: str
    folder: Path
    meta: dict = field(default_factory=dict)

    @property
    def goals(self) -> list[str]:
        return list(self.meta.get("goals", []))

    @property
    def variables(self) -> dict[str, str]:
        return dict(self.meta.get("vars", {}))

    @property
    def env(self) -> dict[str, str]:
        return dict(self.meta.get("env", {}))


def corpus_cases() -> list[Case]:
    out = []
    for d in sorted(CORPUS.iterdir()):
        if d.is_dir() and (d / "case.json").is_file():
            out.append(Case(d.name, d, json.loads((d / "case.json").read_text())))
    return out


def copy_case(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("case.json", "__pycache__"))
    return dest


@contextlib.contextmanager
def environ(extra: dict[str, str]):
    """os.environ as a user would have it for one run (no parent make, plus ``extra``)."""
    saved = dict(os.environ)
    try:
        for k in _PARENT:
            os.environ.pop(k, None)
        os.environ.update(extra)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class Outcome:
    ok: bool
    ran: set[str]
    output: str = ""


def run_make(folder: Path, goals: list[str], variables: dict[str, str], env: dict[str, str],
             question: bool = False) -> Outcome:
    """``make --trace``: which targets it ran a recipe for (sub-makes' own targets left out)."""
    assert GNU_MAKE
    with environ(env):
        proc = subprocess.run([GNU_MAKE, "--trace", *goals, *(f"{k}={v}" for k, v in variables.items())],
                              cwd=folder, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ))
    ran: set[str] = set()
    depth = 0
    for line in proc.stdout.splitlines():
        if _ENTER.match(line):
            depth += 1
        elif _LEAVE.match(line):
            depth -= 1
        elif depth == 0:
            m = _TRACE.match(line)
            if m:
                ran.add(m.group("a") or m.group("b"))
    return Outcome(proc.returncode == 0, ran, proc.stdout + proc.stderr)


def run_gristmill(folder: Path, goals: list[str], variables: dict[str, str], env: dict[str, str],
                  jobs: int | None = None) -> Outcome:
    """Load the Makefile and run it with the engine: which tasks with commands started."""
    from gristmill.core.run.engine import Engine, RunOptions
    from gristmill.core.events import EventBus, OutputLine, TaskStarted
    from gristmill.core.makefile import load_makefile

    with environ(env):
        wf = load_makefile(folder, variables or None, goals)
        bus = EventBus()
        started: list[str] = []
        lines: list[str] = []

        def on_event(ev):
            if isinstance(ev, TaskStarted):
                started.append(ev.task)
            elif isinstance(ev, OutputLine):
                lines.append(f"[{ev.task}] {ev.text}")

        bus.subscribe(on_event)
        result = Engine(wf, bus=bus, options=RunOptions(jobs=jobs, structured_log=False)).run(goals)
    # Named by target, as make's trace names them: each of a target's "::" rules is a task
    # of its own (log.txt::1), whose group is the target.
    ran = {wf.tasks[n].group or n for n in started if wf.tasks[n].commands}
    return Outcome(result.exit_code == 0, ran, "\n".join(lines))


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``folder``."""
    out: dict[str, bytes | None] = {}
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for d in dirs:
            out[(rel / d).as_posix()] = None
        for f in files:
            out[(rel / f).as_posix()] = (Path(root) / f).read_bytes()
    return out


def touch_newer(folder: Path, rels: list[str]) -> None:
    """Make ``rels`` newer than every other file, as an edit now would.

    The tree is first moved into the past (keeping the order of its times), so
    nothing is in the future and the next build leaves everything up to date.
    """
    paths = [p for p in folder.rglob("*")]
    now = time.time_ns()
    newest = max(p.stat().st_mtime_ns for p in paths)
    shift = max(0, newest - now) + 20_000_000_000
    for p in paths:
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns - shift, st.st_mtime_ns - shift))
    # A few seconds ago, not "now": file systems stamp new files with a coarse clock
    # that can lag behind time.time_ns(), and the next build's outputs must be newer.
    edited = now - 5_000_000_000
    for rel in rels:
        os.utime(folder / rel, ns=(edited, edited))


def assert_same_files(mk: Path, gm: Path, context: str) -> None:
    a, b = snapshot(mk), snapshot(gm)
    assert sorted(a) == sorted(b), f"{context}: the files differ from make's"
    for k in a:
        assert a[k] == b[k], f"{context}: {k} differs from make's"
