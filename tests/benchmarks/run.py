#!/usr/bin/env python3
"""Gristmill side by side with GNU make, Ninja, Snakemake and doit.

    .venv/bin/python tests/benchmarks/run.py [--quick] [--only spawn,noop,...] [--tools ...]

Writes the same workload for each tool into a work folder, times each tool on
it as a real process (process start included) several times, alternating the
tools, and prints one table of medians with the ratio of every peer to
Gristmill, then where each target of issue 6 stands. The whole result is saved
as JSON (``--json``, default ``<work>/results.json``).

Peers that are not on PATH are installed from PyPI (snakemake, doit, ninja)
into a virtual environment under the work folder, or reported as absent
(``--no-install``). GNU make comes from the system.

Workloads (``--only`` takes these names):
  spawn   2,000 independent trivial tasks, 2 slots: tasks per second
  noop    20,000 copy tasks, all up to date: time to decide there is nothing to do
  change  the same 20,000 with one source touched: time to rebuild just that one
  scale   load and plan 100,000 tasks (fan-out, fan-in): time and peak memory;
          with --big, 1,000,501 tasks (500 groups of 1,000: ~2 GB of small source files)
  pack    40 tasks of mixed lengths, a quarter needing 40% of memory: makespan
          against max(critical path, work / capacity), and memory oversubscription
  app     the desktop app (offscreen): first paint with 20,000 tasks, and the
          longest event-loop stall while it runs 2,000 trivial tasks; the first run
          is followed by `gristmill run` of the same targets (app / CLI)
  app100k the app at 100,000 tasks (issue 18): first paint, and the longest stall
          while 10,000 short tasks finish (2 runs; ~2 min each on a loaded machine)

Real projects' Makefiles (a no-op and a load beside make's, issue 24) are measured by
bench_make_projects.py, on the mirrored projects or the ones vendored under
tests/makefile/projects/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import workloads as W  # noqa: E402

WORKLOADS = ("spawn", "noop", "change", "scale", "pack", "app", "app100k")
PEERS = ("make", "ninja", "snakemake", "doit")
MAKEFILE_FORM = "gristmill-make"   # spawn only: `gristmill run` on the make Makefile
FLOOR = "python-loop"     # spawn only: spawn_floor.py, a bare Python loop that starts the commands
NATIVE = "c-loop"         # spawn only: native_spawn_proto.c, the same loop in C (PROPOSALS 19),
                          # where a C compiler is found


# -- sizes ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sizes:
    spawn: int = 2000
    copy: int = 20000
    scale: W.ScaleShape = W.ScaleShape(50, 1000)
    pack_scale: float = 1.0
    app_tasks: int = 20000
    app_run: int = 2000
    app_big_tasks: int = 100000
    app_big_run: int = 10000
    reps: int = 3
    timeout: float = 60.0        # one invocation of one tool
    budget: float = 30.0         # seconds of samples per tool and workload before it stops repeating


FULL = Sizes()
BIG_SCALE = W.ScaleShape(500, 1000)     # --big: 1,000,501 tasks (issue 18)
QUICK = Sizes(spawn=300, copy=2000, scale=W.ScaleShape(10, 1000), pack_scale=0.5,
              app_tasks=2000, app_run=300, app_big_tasks=20000, app_big_run=2000,
              reps=3, timeout=30.0, budget=10.0)


# -- running one process ------------------------------------------------------------------

@dataclass
class Sample:
    seconds: float
    rss: int                      # bytes: peak RSS of the process (and its reaped children)
    rc: int | None
    timed_out: bool = False
    cpu: float = 0.0              # seconds of CPU, user + system, of the process and its reaped children


def run_timed(cmd: list[str], cwd: Path, env: dict[str, str] | None, timeout: float,
              log: Path | None = None) -> Sample:
    """Run ``cmd`` with stdout to /dev/null; wall time from spawn to reaping; kill its
    process group at ``timeout``."""
    err = open(log, "ab") if log else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        fired = []

        def kill() -> None:
            fired.append(True)
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if fired:   # the leader is gone; make sure the rest of its group is too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return Sample(seconds, usage.ru_maxrss * 1024, proc.returncode, bool(fired),
                      usage.ru_utime + usage.ru_stime)
    finally:
        if log:
            err.close()


# -- the tools ------------------------------------------------------------------------------

@dataclass
class Tool:
    name: str
    argv: list[str] | None         # None: absent
    version: str = ""
    note: str = ""


def _version(argv: list[str], flag: str = "--version") -> str:
    try:
        out = subprocess.run(argv + [flag], capture_output=True, text=True, timeout=60)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0].strip() if text else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def find_tools(work: Path, wanted: tuple[str, ...], install: bool) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    exe = Path(sys.executable).parent / "gristmill"
    gm = [str(exe)] if exe.exists() else [sys.executable, "-m", "gristmill"]
    tools["gristmill"] = Tool("gristmill", gm, _version(gm))
    venv = work / "peers"
    venv_bin = venv / "bin"
    pypi = {"snakemake": "snakemake", "doit": "doit", "ninja": "ninja"}

    def locate(name: str) -> str | None:
        found = shutil.which(name)
        if found:
            return found
        p = venv_bin / name
        return str(p) if p.exists() else None

    missing = [n for n in wanted if n in pypi and locate(n) is None]
    if missing and install:
        print(f"installing {', '.join(missing)} from PyPI into {venv} ...", flush=True)
        try:
            if not (venv_bin / "python").exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv_bin / "python"), "-m", "pip", "install", "-q",
                            *[pypi[n] for n in missing]], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"  could not install: {exc}", file=sys.stderr)
    for name in PEERS:
        if name not in wanted:
            continue
        path = locate(name)
        if path is None:
            tools[name] = Tool(name, None, note="absent" + ("" if install else " (--no-install)"))
            continue
        flag = "--version"
        tools[name] = Tool(name, [path], _version([path], flag))
    return tools


# -- results --------------------------------------------------------------------------------

@dataclass
class Cell:
    """One tool on one workload."""

    status: str = "ok"                   # ok, absent, timeout, error, wrong, skipped
    samples: list[float] = field(default_factory=list)     # seconds per run
    rss: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)         # CPU seconds per run (the whole tree)
    value: float | None = None           # the workload's metric (median)
    extra: dict = field(default_factory=dict)
    note: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


@dataclass
class Workload:
    name: str
    title: str
    metric: str                          # e.g. "tasks/s", "s", "s makespan"
    better: str                          # "higher" or "lower"
    cells: dict[str, Cell] = field(default_factory=dict)
    info: dict = field(default_factory=dict)


def _env_gristmill(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["GRISTMILL_HOME"] = str(home)
    env.pop("QT_QPA_PLATFORM", None)
    return env


class Bench:
    def __init__(self, args, sizes: Sizes, tools: dict[str, Tool]):
        self.args = args
        self.sizes = sizes
        self.tools = tools
        self.work: Path = args.work
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.order = [t for t in ("gristmill", *PEERS) if t in tools]

    # -- helpers ------------------------------------------------------------------------
    def home(self, workload: str) -> Path:
        return self.work / "home" / workload

    def env(self, tool: str, workload: str) -> dict[str, str] | None:
        return _env_gristmill(self.home(workload)) if tool.startswith("gristmill") else None

    def command(self, tool: str, folder: Path, jobs: int, action: str = "build",
                extra: list[str] | None = None) -> list[str]:
        d = str(folder)
        if tool == MAKEFILE_FORM:      # gristmill run on make's own Makefile: make runs it
            argv = list(self.tools["gristmill"].argv or [])
            return argv + ["run", "-C", d] + (["-j", str(jobs)] if jobs else []) + (extra or [])
        argv = list(self.tools[tool].argv or [])
        if tool == "gristmill":
            if action == "plan":
                return argv + ["plan", "-C", d]
            return argv + ["run", "-C", d] + (["-j", str(jobs)] if jobs else []) + (extra or [])
        if tool == "make":
            return argv + ["-C", d] + (["-n"] if action == "plan" else [f"-j{jobs}"] if jobs else [])
        if tool == "ninja":
            return argv + ["-C", d] + (["-n"] if action == "plan" else ["-j", str(jobs)] if jobs else [])
        if tool == "snakemake":
            base = argv + ["-s", "Snakefile", "-d", d, "--cores", str(jobs or 1)]
            return base + (["-n"] if action == "plan" else []) + (extra or [])
        if tool == "doit":
            if action == "plan":
                return argv + ["list", "--all", "-f", str(folder / "dodo.py"), "-d", d]
            return argv + ["-f", str(folder / "dodo.py"), "-d", d] + (["-n", str(jobs)] if jobs and jobs > 1 else [])
        raise ValueError(tool)

    def alternate(self, tools: list[str], reps: int, one, cell_of) -> None:
        """Run ``one(tool)`` ``reps`` times per tool, rotating the order each round; a tool
        stops repeating once it failed, timed out or spent its time budget."""
        spent = {t: 0.0 for t in tools}
        for rep in range(reps):
            k = rep % len(tools)
            for tool in tools[k:] + tools[:k]:
                cell = cell_of(tool)
                if cell.status != "ok" or (cell.samples and spent[tool] > self.sizes.budget):
                    continue
                t0 = time.perf_counter()
                one(tool, rep)
                spent[tool] += time.perf_counter() - t0

    def medians(self, wl: Workload, folders, one) -> Workload:
        """Alternate ``one`` over the tools still ok; each cell's value is its median."""
        self.alternate([t for t in folders if wl.cells[t].status == "ok"], self.sizes.reps, one,
                       lambda t: wl.cells[t])
        for cell in wl.cells.values():
            if cell.samples:
                cell.value = cell.median
        return wl

    def record(self, cell: Cell, s: Sample, tool: str) -> bool:
        if s.timed_out:
            cell.status = "timeout"
            cell.note = f"over {self.sizes.timeout:g} s"
            return False
        if s.rc != 0:
            cell.status = "error"
            cell.note = f"exit {s.rc} (see {self.logs})"
            return False
        cell.samples.append(s.seconds)
        cell.rss.append(s.rss)
        cell.cpu.append(s.cpu)
        return True

    def log(self, workload: str, tool: str) -> Path:
        return self.logs / f"{workload}-{tool}.log"

    def progress(self, text: str) -> None:
        print(text, flush=True)

    def native_loop(self) -> Path | None:
        """native_spawn_proto.c built into the work folder, or None without a compiler."""
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            return None
        exe = self.work / "native_spawn_proto"
        try:
            subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / "native_spawn_proto.c")],
                           check=True, capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return None
        return exe

    # -- 1. spawn -----------------------------------------------------------------------
    def spawn(self) -> Workload:
        n = self.sizes.spawn
        wl = Workload("spawn", f"Spawn: {n:,} trivial tasks, 2 slots", "tasks/s", "higher")
        folders = {}
        for tool in self.order:
            wl.cells[tool] = Cell()
            if self.tools[tool].argv is None:
                wl.cells[tool].status = "absent"
                continue
            folders[tool] = self.work / "spawn" / tool
            shutil.rmtree(folders[tool], ignore_errors=True)
            W.write_spawn(folders[tool], tool, n)

        # The Makefile form: GNU make runs make's own Makefile, each recipe through
        # Gristmill's recipe shell (per-recipe overhead against plain make -j2).
        if "gristmill" in folders and "make" in self.tools and self.tools["make"].argv:
            folders[MAKEFILE_FORM] = self.work / "spawn" / MAKEFILE_FORM
            shutil.rmtree(folders[MAKEFILE_FORM], ignore_errors=True)
            W.write_spawn(folders[MAKEFILE_FORM], "make", n)
            wl.cells[MAKEFILE_FORM] = Cell()

        # The floor: a bare Python loop that only starts and reaps the commands, as
        # Gristmill's executor does, timed beside the tools (not a column of the table).
        folders[FLOOR] = self.work / "spawn" / FLOOR
        (folders[FLOOR] / "out").mkdir(parents=True, exist_ok=True)
        wl.cells[FLOOR] = Cell()
        native = self.native_loop()
        if native:
            folders[NATIVE] = self.work / "spawn" / NATIVE
            (folders[NATIVE] / "out").mkdir(parents=True, exist_ok=True)
            wl.cells[NATIVE] = Cell()

        def one(tool: str, rep: int) -> None:
            out = folders[tool] / "out"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            cell = wl.cells[tool]
            if tool == FLOOR:
                cmd = [sys.executable, str(HERE / "spawn_floor.py"), str(folders[tool]), str(n), "2"]
            elif tool == NATIVE:
                cmd = [str(native), str(folders[tool]), str(n), "2"]
            else:
                cmd = self.command(tool, folders[tool], 2)
            s = run_timed(cmd, folders[tool], self.env(tool, "spawn"), self.sizes.timeout,
                          self.log("spawn", tool))
            if self.record(cell, s, tool):
                made = len(os.listdir(out))
                if made != n:
                    cell.status, cell.note = "wrong", f"made {made} of {n} outputs"
            self.progress(f"  spawn {tool:<10} {s.seconds:8.3f} s  {cell.status}")

        self.alternate(list(folders), self.sizes.reps, one, lambda t: wl.cells[t])
        for cell in wl.cells.values():
            if cell.samples:
                cell.value = n / cell.median
                # CPU of the whole tree (the tool and every command) per task, and how many
                # of the machine's CPUs that kept busy: at 2 slots on 2 CPUs the commands
                # alone nearly fill them, so every tool's own CPU per task shows in its rate.
                cpu = statistics.median(cell.cpu)
                cell.extra["cpu_ms_per_task"] = cpu * 1e3 / n
                cell.extra["cpus_busy"] = cpu / cell.median
        return wl

    # -- 2 and 3. no-op and one change --------------------------------------------------
    def copy_folders(self) -> tuple[dict[str, Path], dict[str, str]]:
        """Folders of the copy workload, built once by each tool (untimed)."""
        if getattr(self, "_copy", None) is not None:
            return self._copy
        n = self.sizes.copy
        folders: dict[str, Path] = {}
        built: dict[str, str] = {}
        for tool in self.order:
            if self.tools[tool].argv is None:
                continue
            f = self.work / "copy" / tool
            shutil.rmtree(f, ignore_errors=True)
            W.write_copy(f, tool, n)
            folders[tool] = f
        # Sources older than anything a build writes.
        past = time.time() - 3600
        for f in folders.values():
            for x in os.scandir(f / "src"):
                os.utime(x.path, (past, past))
        for tool, f in folders.items():
            if tool == "snakemake":
                # Snakemake decides by timestamps alone here, and builds ~20 jobs/s on this
                # kind of machine: its outputs are made by the runner instead.
                for x in W.copy_names(n):
                    shutil.copyfile(f / "src" / x, f / "out" / x)
                built[tool] = "not timed (outputs made by the runner)"
                self.progress(f"  build {n:,} copies with {tool:<10} {built[tool]}")
                continue
            s = run_timed(self.command(tool, f, 2), f, self.env(tool, "copy"),
                          max(self.sizes.timeout, 300.0), self.log("build", tool))
            if s.timed_out or s.rc != 0:
                # Finish the outputs by hand; fine for tools that decide by timestamps alone.
                for x in W.copy_names(n):
                    if not (f / "out" / x).exists():
                        shutil.copyfile(f / "src" / x, f / "out" / x)
                built[tool] = "timeout" if s.timed_out else f"error {s.rc}"
            else:
                built[tool] = f"{s.seconds:.2f}"
            self.progress(f"  build {n:,} copies with {tool:<10} {built[tool]}")
        self._copy = (folders, built)
        return self._copy

    @staticmethod
    def _newest_output(folder: Path) -> int:
        return max((e.stat().st_mtime_ns for e in os.scandir(folder / "out")), default=0)

    def noop(self) -> Workload:
        n = self.sizes.copy
        wl = Workload("noop", f"No-op: {n:,} tasks, all up to date", "s", "lower")
        folders, built = self.copy_folders()
        wl.info["first_build_s"] = built
        for tool in self.order:
            wl.cells[tool] = Cell()
            if tool not in folders:
                wl.cells[tool].status = "absent"
            elif built[tool] == "timeout" and tool in ("ninja", "doit"):
                wl.cells[tool].status, wl.cells[tool].note = "skipped", "its build timed out"
        newest = {t: self._newest_output(f) for t, f in folders.items()}

        def one(tool: str, rep: int) -> None:
            cell = wl.cells[tool]
            s = run_timed(self.command(tool, folders[tool], 2), folders[tool],
                          self.env(tool, "copy"), self.sizes.timeout, self.log("noop", tool))
            if self.record(cell, s, tool) and self._newest_output(folders[tool]) != newest[tool]:
                cell.status, cell.note = "wrong", "it rebuilt something"
            self.progress(f"  no-op {tool:<10} {s.seconds:8.3f} s  {cell.status}")

        return self.medians(wl, folders, one)

    def change(self) -> Workload:
        n = self.sizes.copy
        wl = Workload("change", f"One change: {n:,} tasks, one source touched", "s", "lower")
        folders, built = self.copy_folders()
        for tool in self.order:
            wl.cells[tool] = Cell()
            if tool not in folders:
                wl.cells[tool].status = "absent"
            elif built[tool] == "timeout" and tool in ("ninja", "doit"):
                wl.cells[tool].status, wl.cells[tool].note = "skipped", "its build timed out"
        names = W.copy_names(n)

        def one(tool: str, rep: int) -> None:
            cell = wl.cells[tool]
            f = folders[tool]
            x = names[(rep * 7919 + 17) % n]
            src = f / "src" / x
            with open(src, "a") as fh:       # new content (doit and Snakemake look at it)
                fh.write(f"changed {rep}\n")
            s = run_timed(self.command(tool, f, 2), f, self.env(tool, "copy"),
                          self.sizes.timeout, self.log("change", tool))
            if self.record(cell, s, tool):
                if (f / "out" / x).stat().st_mtime_ns < src.stat().st_mtime_ns:
                    cell.status, cell.note = "wrong", f"out/{x} was not rebuilt"
            self.progress(f"  change {tool:<10} {s.seconds:8.3f} s  {cell.status}")

        return self.medians(wl, folders, one)

    # -- 4. scale -----------------------------------------------------------------------
    def scale(self) -> Workload:
        shape = self.sizes.scale
        wl = Workload("scale", f"Scale: load and plan {shape.tasks:,} tasks", "s", "lower")
        folders: dict[str, Path] = {}
        for tool in self.order:
            wl.cells[tool] = Cell()
            if self.tools[tool].argv is None:
                wl.cells[tool].status = "absent"
                continue
            f = self.work / "scale" / tool
            W.write_scale(f, tool, shape)
            for sub in ("a", "b", "c"):
                shutil.rmtree(f / sub, ignore_errors=True)
                (f / sub).mkdir()
            (f / "report.txt").unlink(missing_ok=True)
            folders[tool] = f
        if "doit" in wl.cells:
            wl.cells["doit"].note = "doit has no dry run: `doit list --all` (load only)"

        cache = self.home("scale") / "cache"

        def one(tool: str, rep: int) -> None:
            cell = wl.cells[tool]
            f = folders[tool]
            shutil.rmtree(f / ".snakemake" / "locks", ignore_errors=True)
            if tool == "gristmill":
                # A first load: no workflow cache (the run stores one as it exits).
                shutil.rmtree(cache, ignore_errors=True)
            s = run_timed(self.command(tool, f, 0, "plan"), f, self.env(tool, "scale"),
                          self.sizes.timeout, self.log("scale", tool))
            self.record(cell, s, tool)
            self.progress(f"  scale {tool:<10} {s.seconds:8.3f} s  {s.rss / 1e6:7.0f} MB  {cell.status}")

        self.alternate(list(folders), self.sizes.reps, one, lambda t: wl.cells[t])
        for cell in wl.cells.values():
            if cell.samples:
                cell.value = cell.median
                cell.extra["peak_rss_mb"] = max(cell.rss) / 1e6
        gm = wl.cells.get("gristmill")
        if gm is not None and gm.status == "ok":
            # The same plan again, from the workflow cache the last run stored.
            deadline = time.time() + 60
            while not list(cache.glob("*.wfc")) and time.time() < deadline:
                time.sleep(0.1)
            warm = [run_timed(self.command("gristmill", folders["gristmill"], 0, "plan"),
                              folders["gristmill"], self.env("gristmill", "scale"),
                              self.sizes.timeout, self.log("scale", "gristmill")).seconds
                    for _ in range(self.sizes.reps)]
            gm.extra["warm_s"] = statistics.median(warm)
            self.progress(f"  scale gristmill from its cache {gm.extra['warm_s']:.3f} s")
        # Gristmill in-process: load + plan, then peak Python allocations.
        if "gristmill" in folders:
            runs = []
            for _ in range(min(3, self.sizes.reps)):
                runs.append(self.inproc(folders["gristmill"]))
            traced = self.inproc(folders["gristmill"], "--tracemalloc")
            if all(runs) and traced:
                med = {k: statistics.median(r[k] for r in runs)
                       for k in ("import", "load", "graph", "scan", "plan", "load_and_plan")}
                wl.info["gristmill_in_process"] = {
                    **{k: round(v, 3) for k, v in med.items()},
                    "tasks": runs[0]["tasks"],
                    "peak_rss_mb": round(max(r["peak_rss"] for r in runs) / 1e6, 1),
                    "tracemalloc_peak_mb": round(traced["tracemalloc_peak"] / 1e6, 1)}
                self.progress(f"  scale gristmill in-process {wl.info['gristmill_in_process']}")
        return wl

    def inproc(self, folder: Path, *flags: str) -> dict | None:
        out = subprocess.run([sys.executable, str(HERE / "bench_inproc.py"), str(folder), *flags],
                             capture_output=True, text=True, timeout=self.sizes.timeout,
                             env=_env_gristmill(self.home("scale")))
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            return None
        return json.loads(out.stdout.strip().splitlines()[-1])

    # -- 5. packing ---------------------------------------------------------------------
    def pack(self) -> Workload:
        shape = W.pack_shape(self.sizes.pack_scale)
        lb = shape.lower_bound()
        wl = Workload("pack", f"Packing: {len(shape.tasks)} tasks, 4 slots, 1/4 need 40% memory",
                      "s makespan", "lower")
        wl.info["lower_bound"] = {k: round(v, 3) for k, v in lb.items()}
        wl.info["equivalents"] = {
            "gristmill": "[capacity] cpu = 4; resources = { cpu = 1, mem = ... } (memory detected)",
            "make": "make -j4 (no memory notion)",
            "ninja": f"ninja -j4, big tasks in pool depth {shape.mem // max(t.mem for t in shape.tasks)}",
            "snakemake": "--cores 4 --resources mem_mb=<machine>, resources: mem_mb per job",
            "doit": "doit -n 4 (no memory notion)"}
        folders: dict[str, Path] = {}
        for tool in self.order:
            wl.cells[tool] = Cell()
            if self.tools[tool].argv is None:
                wl.cells[tool].status = "absent"
                continue
            f = self.work / "pack" / tool
            shutil.rmtree(f, ignore_errors=True)
            W.write_pack(f, tool, shape)
            folders[tool] = f
        spans: dict[str, list[float]] = {t: [] for t in folders}
        peaks: dict[str, list[int]] = {t: [] for t in folders}
        event_checks: list[dict] = []

        def one(tool: str, rep: int) -> None:
            cell = wl.cells[tool]
            f = folders[tool]
            shutil.rmtree(f / "out", ignore_errors=True)
            (f / "out").mkdir()
            (f / "timeline.txt").unlink(missing_ok=True)
            shutil.rmtree(f / ".snakemake" / "locks", ignore_errors=True)
            extra = ["--resources", f"mem_mb={shape.mem // 1000000}"] if tool == "snakemake" else None
            jobs = 0 if tool == "gristmill" else shape.cpu
            s = run_timed(self.command(tool, f, jobs, extra=extra), f, self.env(tool, "pack"),
                          self.sizes.timeout, self.log("pack", tool))
            if self.record(cell, s, tool):
                rows = W.read_timeline(f / "timeline.txt")
                if len(rows) != len(shape.tasks):
                    cell.status, cell.note = "wrong", f"{len(rows)} of {len(shape.tasks)} tasks ran"
                else:
                    spans[tool].append(max(r[2] for r in rows) - min(r[1] for r in rows))
                    peaks[tool].append(W.peak_concurrent_mem(rows))
                    if tool == "gristmill":
                        ev = self.gristmill_run_log(self.home("pack"))
                        if ev:
                            event_checks.append(ev)
            self.progress(f"  pack {tool:<10} {s.seconds:8.3f} s  "
                          f"{spans[tool][-1] if spans[tool] else float('nan'):6.2f} s span  {cell.status}")

        self.alternate(list(folders), min(self.sizes.reps, 3), one, lambda t: wl.cells[t])
        for tool, cell in wl.cells.items():
            if spans.get(tool):
                cell.value = statistics.median(spans[tool])
                peak = max(peaks[tool])
                cell.extra = {"over_bound": round(cell.value / lb["bound"] - 1, 3),
                              "peak_mem_fraction": round(peak / shape.mem, 2),
                              "oversubscribed": peak > shape.mem,
                              "wall_s": round(cell.median, 3)}
        if event_checks:
            wl.info["gristmill_events"] = {
                "makespan_s": [round(e["makespan"], 3) for e in event_checks],
                "peak_mem_fraction": max(e["peak_mem"] for e in event_checks) / shape.mem,
                "oversubscribed": any(e["peak_mem"] > shape.mem for e in event_checks)}
        return wl

    @staticmethod
    def gristmill_run_log(home: Path) -> dict | None:
        """Makespan and peak declared memory of the newest run, from its JSON-lines log."""
        logs = sorted((home / "logs" / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
        if not logs:
            return None
        rows: list[tuple[float, int, int]] = []     # (time, 0 end / 1 start, mem)
        mem_of: dict[str, int] = {}
        from datetime import datetime
        for line in logs[-1].read_text().splitlines():
            rec = json.loads(line)
            t = datetime.fromisoformat(rec["ts"]).timestamp()
            if rec["event"] == "task_started":
                mem_of[rec["task"]] = rec["resources"]["mem"]
                rows.append((t, 1, rec["resources"]["mem"]))
            elif rec["event"] == "task_finished":
                rows.append((t, 0, mem_of.get(rec["task"], 0)))
        if not rows:
            return None
        rows.sort()
        cur = peak = 0
        for _, kind, m in rows:
            cur += m if kind else -m
            peak = max(peak, cur)
        return {"makespan": rows[-1][0] - rows[0][0], "peak_mem": peak}

    # -- 6. the app -----------------------------------------------------------------------
    def app(self) -> Workload:
        return self._app("app", self.sizes.app_tasks, self.sizes.app_run, min(self.sizes.reps, 3))

    def app100k(self) -> Workload:
        """The app at 100,000 tasks (issue 18): first paint, and the longest stall while
        10,000 short tasks finish."""
        return self._app("app100k", self.sizes.app_big_tasks, self.sizes.app_big_run,
                         min(self.sizes.reps, 2), timeout=max(self.sizes.timeout, 300.0))

    def _app(self, name: str, tasks: int, run: int, reps: int,
             timeout: float | None = None) -> Workload:
        wl = Workload(name, f"App: open {tasks:,} tasks, run {run:,}", "s first paint", "lower")
        for tool in self.order:
            wl.cells[tool] = Cell(status="n/a" if tool != "gristmill" else "ok")
        cell = wl.cells["gristmill"]
        folder = self.work / name
        timeout = (timeout or self.sizes.timeout) + 60
        results = []
        script = [sys.executable, str(HERE / "bench_app.py"), str(folder), str(tasks), str(run)]
        subprocess.run(script + ["--prepare"], check=True)
        for rep in range(reps):
            env = _env_gristmill(self.home(name))
            env["QT_QPA_PLATFORM"] = "offscreen"
            try:
                out = subprocess.run(     # the first also times `gristmill run` of the same run
                    script + [repr(time.time())] + (["--cli"] if rep == 0 else []),
                    capture_output=True, text=True, timeout=timeout, env=env)
            except subprocess.TimeoutExpired:
                cell.status, cell.note = "timeout", f"over {timeout:g} s"
                break
            last = out.stdout.strip().splitlines()[-1:] if out.stdout.strip() else []
            try:
                res = json.loads(last[0]) if last else None
            except json.JSONDecodeError:
                res = None
            if res is None:
                cell.status, cell.note = "error", (out.stderr.strip().splitlines() or ["?"])[-1][:200]
                break
            if "unavailable" in res:
                cell.status, cell.note = "absent", f"app not available: {res['unavailable']}"
                break
            results.append(res)
            self.progress(f"  app first paint {res['first_paint_s']:.3f} s, "
                          f"longest stall {res['max_stall_ms']:.0f} ms "
                          f"({res['max_own_stall_ms']:.0f} ms not waiting for a CPU), "
                          f"run {res['run_s']:.2f} s"
                          + (f", CLI {res['cli_run_s']:.2f} s" if "cli_run_s" in res else ""))
        if results:
            cell.samples = [r["first_paint_s"] for r in results]
            cell.value = cell.median
            cell.extra = {"max_stall_ms": max(r["max_stall_ms"] for r in results),
                          "max_own_stall_ms": max(r["max_own_stall_ms"] for r in results),
                          "stall_ms_per_run": [round(r["max_stall_ms"], 1) for r in results],
                          "first_paint_cpu_s": statistics.median(r["first_paint_cpu_s"] for r in results),
                          "run_s": statistics.median(r["run_s"] for r in results),
                          "app_vs_cli": results[0].get("app_vs_cli"),
                          "app_vs_cli_cpu": results[0].get("app_vs_cli_cpu"),
                          "cli_run_s": results[0].get("cli_run_s"),
                          "ran": results[-1].get("ran")}
        return wl


# -- the table and the targets -------------------------------------------------------------

def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "—"
    if metric == "tasks/s":
        return f"{v:,.0f}"
    return f"{v:.3f}" if v < 10 else f"{v:.1f}"


def table(results: list[Workload], tools: list[str]) -> str:
    head = "| workload | metric | " + " | ".join(tools) + " |"
    lines = [head, "|" + "---|" * (len(tools) + 2)]
    for wl in results:
        gm = wl.cells.get("gristmill")
        base = gm.value if gm and gm.status == "ok" else None
        row = [wl.title, f"{wl.metric} ({wl.better} is better)"]
        for t in tools:
            c = wl.cells.get(t)
            if c is None:
                row.append("")
                continue
            if c.status != "ok" or c.value is None:
                row.append(c.status + (f" ({c.note})" if c.note else ""))
                continue
            text = _fmt(c.value, wl.metric)
            if wl.name == "scale" and "peak_rss_mb" in c.extra:
                text += f", {c.extra['peak_rss_mb']:.0f} MB"
                if "warm_s" in c.extra:
                    text += f"; {_fmt(c.extra['warm_s'], 's')} from its cache"
            if wl.name == "pack":
                text += (f", +{c.extra['over_bound'] * 100:.0f}% over bound"
                         + (", OVERSUBSCRIBED" if c.extra["oversubscribed"] else ""))
            if wl.name.startswith("app"):
                text += f", longest stall {c.extra['max_stall_ms']:.0f} ms"
            if t != "gristmill" and base:
                text += f" ({c.value / base:.2f}×)"
            row.append(text)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def spawn_cpu_table(wl: Workload, tools: list[str], cores: int) -> str:
    """Rate, CPU per task and CPUs kept busy for each tool on the spawn workload, and for
    the bare Python loop (``spawn_floor.py``)."""
    cols = [t for t in (*tools, MAKEFILE_FORM, FLOOR, NATIVE) if t in wl.cells]
    rows = [("tasks/s", lambda c: f"{c.value:,.0f}"),
            ("CPU per task: the tool and its commands, ms",
             lambda c: f"{c.extra['cpu_ms_per_task']:.2f}"),
            (f"CPUs kept busy (of {cores})", lambda c: f"{c.extra['cpus_busy']:.2f}")]
    lines = ["| spawn | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for label, cell_text in rows:
        row = [label]
        for t in cols:
            c = wl.cells[t]
            row.append(cell_text(c) if c.status == "ok" and c.value is not None else c.status)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def targets(results: dict[str, Workload]) -> list[tuple[str, str, str]]:
    """(target, met / not met / unknown, the numbers)."""
    out = []

    def v(wl: str, tool: str) -> float | None:
        w = results.get(wl)
        c = w.cells.get(tool) if w else None
        return c.value if c and c.status == "ok" else None

    if "spawn" in results:
        gm, mk, nj = v("spawn", "gristmill"), v("spawn", "make"), v("spawn", "ninja")
        peers = [x for x in (mk, nj) if x is not None]
        ok = gm is not None and peers and all(gm >= p for p in peers)
        out.append(("Spawn: at least make -j2's and ninja's tasks/s", "met" if ok else "NOT met",
                    f"gristmill {_fmt(gm, 'tasks/s')}, make {_fmt(mk, 'tasks/s')}, ninja {_fmt(nj, 'tasks/s')} tasks/s"))
        gmk = v("spawn", MAKEFILE_FORM)
        if gmk is not None and mk is not None:
            out.append(("Spawn, a Makefile: per-recipe overhead of gristmill run against plain "
                        "make -j2 (issue 23)", "measured",
                        f"gristmill-make {_fmt(gmk, 'tasks/s')}, make {_fmt(mk, 'tasks/s')} "
                        f"tasks/s: {1e3 / gmk - 1e3 / mk:+.2f} ms per recipe"))
        fl = v("spawn", FLOOR)
        ok = gm is not None and fl is not None and fl <= 1.2 * gm and (nj is None or gm >= nj)
        out.append(("Spawn: within 1.2× of the Python floor's time, at least ninja's tasks/s (issue 18)",
                    "met" if ok else "NOT met",
                    f"gristmill {_fmt(gm, 'tasks/s')}, python-loop {_fmt(fl, 'tasks/s')}"
                    + (f": {fl / gm:.2f}× the floor's time" if gm and fl else "")))
    if "noop" in results:
        gm, mk, nj = v("noop", "gristmill"), v("noop", "make"), v("noop", "ninja")
        ok = gm is not None and mk is not None and nj is not None and gm < mk and gm <= 2 * nj
        out.append(("No-op: faster than make, within 2× of ninja (issue 18)", "met" if ok else "NOT met",
                    f"gristmill {_fmt(gm, 's')} s, make {_fmt(mk, 's')} s, ninja {_fmt(nj, 's')} s"
                    + (f" ({gm / nj:.1f}× ninja)" if gm and nj else "")))
    if "scale" in results:
        ip = results["scale"].info.get("gristmill_in_process")
        proc = results["scale"].cells.get("gristmill")
        if ip and proc is not None and proc.value is not None:
            # Judged as a process and from cold (no workflow cache), as a user's first run.
            big = ip["tasks"] > 500_000          # --big: issue 18's million
            secs, mb, warm = (10.0, 1000, 3.0) if big else (2.0, 500, None)
            ok = proc.value <= secs and proc.extra.get("peak_rss_mb", 1e9) <= mb and \
                (warm is None or proc.extra.get("warm_s", 1e9) <= warm)
            what = (f"Scale: {ip['tasks']:,} tasks, load + plan ≤ 10 s and 1 GB, from the cache ≤ 3 s"
                    if big else "Scale: load + plan under 2 s and 500 MB")
            out.append((what, "met" if ok else "NOT met",
                        f"as a process (`gristmill plan`, no cache) {_fmt(proc.value, 's')} s, "
                        f"{proc.extra.get('peak_rss_mb', 0):.0f} MB; from its cache "
                        f"{_fmt(proc.extra.get('warm_s'), 's')} s; in-process "
                        f"{ip['load_and_plan']:.2f} s (load {ip['load']:.2f}, graph "
                        f"{ip['graph']:.2f}, scan {ip['scan']:.2f}, plan {ip['plan']:.2f}), peak RSS "
                        f"{ip['peak_rss_mb']:.0f} MB"))
    if "pack" in results:
        c = results["pack"].cells.get("gristmill")
        lb = results["pack"].info["lower_bound"]["bound"]
        if c and c.value is not None:
            ev = results["pack"].info.get("gristmill_events", {})
            over = ev.get("oversubscribed", c.extra["oversubscribed"])
            ok = c.extra["over_bound"] <= 0.10 and not over
            out.append(("Packing: makespan within 10% of the bound, never oversubscribed",
                        "met" if ok else "NOT met",
                        f"makespan {c.value:.2f} s vs bound {lb:.2f} s (+{c.extra['over_bound'] * 100:.1f}%), "
                        f"peak declared memory {c.extra['peak_mem_fraction'] * 100:.0f}% of the machine"))
        else:
            out.append(("Packing", "unknown", c.status if c else "not run"))
    for name, paint in (("app", 1.5), ("app100k", 2.0)):
        if name not in results:
            continue
        c = results[name].cells.get("gristmill")
        if c and c.value is not None:
            ok = c.value <= paint and c.extra["max_stall_ms"] <= 100
            out.append((f"{results[name].title}: first paint ≤ {paint:g} s, no stall over 100 ms",
                        "met" if ok else "NOT met",
                        f"first paint {c.value:.2f} s (CPU {c.extra['first_paint_cpu_s']:.2f} s), "
                        f"longest stall {c.extra['max_stall_ms']:.0f} ms "
                        f"({c.extra['max_own_stall_ms']:.0f} ms of it not waiting for a CPU)"))
            ratio = c.extra.get("app_vs_cli")
            if ratio is not None:
                out.append((f"{results[name].title}: the app's run within 1.2× the CLI's (issue 19)",
                            "met" if ratio <= 1.2 else "NOT met",
                            f"{ratio:.2f}× wall ({c.extra['app_vs_cli_cpu']:.2f}× CPU), "
                            f"the CLI measured right after in the same invocation"))
        else:
            out.append((name, "unknown", f"{c.status}: {c.note}" if c else "not run"))
    return out


def machine() -> dict:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)),
            "memory_gb": round(W.machine_memory() / 1e9, 1), "os": platform.platform(),
            "python": platform.python_version(), "load_at_start": os.getloadavg()}


def byte_compile_gristmill() -> str:
    """Write the bytecode of Gristmill's modules, as ``pip install`` does for an installed
    package (and the peers installed into .work/peers have theirs).

    An editable install writes it at the first import, unless PYTHONDONTWRITEBYTECODE
    is set (it is on some of our machines): then every ``gristmill`` process would compile
    all its modules again (~0.4 s of a 0.8 s no-op), which no user of an installed
    Gristmill pays.
    """
    import compileall
    import gristmill
    folder = Path(gristmill.__file__).parent
    ok = compileall.compile_dir(str(folder), quiet=1, workers=1)
    return f"byte-compiled {folder}" + ("" if ok else " (with errors)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller workloads (~2.5 min here)")
    p.add_argument("--only", default=",".join(WORKLOADS),
                   help=f"comma-separated workloads: {','.join(WORKLOADS)}")
    p.add_argument("--tools", default="gristmill," + ",".join(PEERS),
                   help="comma-separated tools (gristmill is always included)")
    p.add_argument("--reps", type=int, default=None, help="runs per tool (default 3)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per tool invocation")
    p.add_argument("--work", type=Path, default=HERE / ".work", help="work folder (default: %(default)s)")
    p.add_argument("--json", type=Path, default=None, help="save results here (default <work>/results.json)")
    p.add_argument("--no-install", action="store_true", help="report missing peers as absent")
    p.add_argument("--big", action="store_true",
                   help="scale at 1,000,501 tasks (issue 18; ~2 GB of disk for its 500,000 "
                        "sources, 120 s per invocation)")
    args = p.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.big:
        from dataclasses import replace
        sizes = replace(sizes, scale=BIG_SCALE, timeout=max(sizes.timeout, 120.0))
    if args.reps or args.timeout:
        from dataclasses import replace
        sizes = replace(sizes, reps=args.reps or sizes.reps, timeout=args.timeout or sizes.timeout)
    only = [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in only if w not in WORKLOADS]
    if bad:
        p.error(f"unknown workload(s): {', '.join(bad)}")
    wanted = tuple(dict.fromkeys(["gristmill"] + [t.strip() for t in args.tools.split(",") if t.strip()]))
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    tools = find_tools(args.work, wanted, not args.no_install)
    info = machine()
    print(f"machine: {info['cpu']}, {info['usable_cores']} cores, {info['memory_gb']} GB, "
          f"{info['os']}, Python {info['python']}")
    for t in tools.values():
        print(f"  {t.name:<10} {t.version or t.note}  {' '.join(t.argv or [])}")
    info["bytecode"] = byte_compile_gristmill()
    print(f"  {info['bytecode']}")
    bench = Bench(args, sizes, tools)
    results: dict[str, Workload] = {}
    for name in only:
        print(f"\n== {name}", flush=True)
        results[name] = getattr(bench, name)()
    names = [t for t in ("gristmill", *PEERS) if t in tools]
    text = table(list(results.values()), names)
    print("\nMedians; a peer's (N×) is its value divided by Gristmill's.\n")
    print(text)
    if "spawn" in results:
        print("\nSpawn: what each run cost in CPU (medians; python-loop is spawn_floor.py).\n")
        print(spawn_cpu_table(results["spawn"], names, info["usable_cores"]))
    tg = targets(results)
    print("\nTargets:" + (" (--quick: smaller sizes than the targets are set for; indicative only)"
                          if args.quick else ""))
    for what, status, numbers in tg:
        print(f"  [{status}] {what}: {numbers}")
    for wl in results.values():
        if wl.info:
            print(f"  {wl.name}: {json.dumps(wl.info)}")
    out = args.json or args.work / "results.json"
    doc = {"machine": info, "quick": args.quick, "sizes": asdict(sizes),
           "seconds": round(time.time() - t_start, 1),
           "tools": {t.name: {"argv": t.argv, "version": t.version, "note": t.note} for t in tools.values()},
           "workloads": {k: {"title": w.title, "metric": w.metric, "better": w.better, "info": w.info,
                             "cells": {t: {**asdict(c), "median_s": c.median} for t, c in w.cells.items()}}
                         for k, w in results.items()},
           "targets": [{"target": a, "status": b, "numbers": c} for a, b, c in tg],
           "table": text}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"\nsaved {out} ({time.time() - t_start:.0f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
