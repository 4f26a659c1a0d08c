#!/usr/bin/env python3
"""What holding a task costs at its start: the spawn workload under each isolation mode.

    .venv/bin/python tests/benchmarks/isolation.py [--tasks 1000] [--reps 5]
                                                  [--modes process,cgroup,cgroup-v2]

Each mode runs ``gristmill run -j 2`` on N independent ``touch out/tNNNNN`` tasks (each
declares ``mem = "50MB"``, so a cgroup gets a limit written), the modes alternating
round by round; then the bare loop of ``spawn_floor.py`` without and with a cgroup per
command, every mode and loop in each round. Printed side by side: median wall time,
wall and CPU (the process and its children) per task, and each mode's cost per task
over the same run without a cgroup. A mode the machine
cannot give (no writable v2 cgroup) is reported as absent.

Modes (``GRISTMILL_CGROUPS`` for the run):
  process    no cgroup: Gristmill is the subreaper and finds trees through /proc
  cgroup     what detection picks (v1 as root on a v1 machine, else v2)
  cgroup-v2  a v2 cgroup forced (on a hybrid machine: the tree held, no controllers)

Target (issue 14): a cgroup adds at most 1 ms a task.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "src"))

from run import run_timed  # noqa: E402

MODES = {"process": "off", "cgroup": "auto", "cgroup-v2": "v2"}


def write_workflow(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out").mkdir(exist_ok=True)
    parts = ['[workflow]\nname = "spawn-isolation"\n']
    for i in range(n):
        t = f"t{i:05d}"
        parts.append(f'[tasks.{t}]\ncmd = "touch out/{t}"\noutputs = ["out/{t}"]\n'
                     f'resources = {{ mem = "50MB" }}\n')
    (folder / "gristmill.toml").write_text("\n".join(parts))


def available(mode: str) -> str:
    """"" where the machine gives ``mode``, else why not."""
    from gristmill.core.run import cgroups
    if mode == "process":
        return ""
    os.environ[cgroups.ENV] = MODES[mode]
    try:
        o = cgroups.offer(refresh=True)
    finally:
        del os.environ[cgroups.ENV]
    if not o.version:
        return o.why_not
    if mode == "cgroup-v2" and o.version != 2:
        return "no writable cgroup v2"
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    work = args.work or Path(tempfile.mkdtemp(prefix="gristmill-isolation-"))
    folder = work / "spawn"
    write_workflow(folder, args.tasks)
    home = work / "home"
    absent = {m: why for m in modes if (why := available(m))}
    live = [m for m in modes if m not in absent]
    floors = ["floor", "floor-cgroup"]
    runs = live + floors
    walls: dict[str, list[float]] = {m: [] for m in runs}
    cpus: dict[str, list[float]] = {m: [] for m in runs}
    failed: dict[str, str] = {}
    gristmill = [sys.executable, "-m", "gristmill", "run", "-C", str(folder), "-j", "2", "--quiet"]
    pyenv = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    n = args.tasks
    for rep in range(args.reps):
        # Every mode and both bare loops in each round, the order rotating.
        order = runs[rep % len(runs):] + runs[:rep % len(runs)]
        for m in order:
            if m in failed:
                continue
            where = work / m if m in floors else folder
            shutil.rmtree(where / "out", ignore_errors=True)
            (where / "out").mkdir(parents=True)
            if m in floors:
                cmd = [sys.executable, str(HERE / "spawn_floor.py"), str(where), str(n), "2"]
                cmd += ["--cgroup"] if m == "floor-cgroup" else []
                env = pyenv
            else:
                cmd = gristmill
                env = dict(pyenv, GRISTMILL_HOME=str(home), GRISTMILL_CGROUPS=MODES[m])
            s = run_timed(cmd, where, env, 600)
            if s.rc != 0:
                failed[m] = f"exit status {s.rc}"
                continue
            walls[m].append(s.seconds)
            cpus[m].append(s.cpu)
    print(f"spawn workload: {n:,} tasks of `touch`, 2 slots, mem = 50MB each; "
          f"median of {args.reps} (CPU: the process and its children, user + system)")
    print()
    print("| mode | wall | wall/task | CPU/task | over the mode without, wall/task | "
          "over it, CPU/task |")
    print("|---|---|---|---|---|---|")
    rows = [(m, "process") for m in modes] + [("floor", "floor"), ("floor-cgroup", "floor")]
    for m, base in rows:
        why = absent.get(m) or failed.get(m)
        if why or not walls.get(m):
            print(f"| {m} | absent: {why or 'no sample'} | | | | |")
            continue
        w, c = statistics.median(walls[m]), statistics.median(cpus[m])
        dw = dc = ""
        if walls.get(base) and base != m:
            dw = f"{(w - statistics.median(walls[base])) / n * 1e3:+.3f} ms"
            dc = f"{(c - statistics.median(cpus[base])) / n * 1e3:+.3f} ms"
        print(f"| {m} | {w:.2f} s | {w / n * 1e3:.3f} ms | {c / n * 1e3:.3f} ms | {dw} | {dc} |")
    print("\nfloor: spawn_floor.py, the bare loop; floor-cgroup: the same with a cgroup per "
          "command. Target: a cgroup adds at most 1 ms a task.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
