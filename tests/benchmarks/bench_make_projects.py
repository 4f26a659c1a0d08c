"""Real projects' Makefiles: a no-op and a load under Gristmill beside GNU make's own.

    python tests/benchmarks/bench_make_projects.py [--reps N] [--load-only] [PROJECT|NAME=DIR ...]

Each project is fetched in the setup (``git clone --depth 1`` of its repository on
GitHub into a scratch folder) unless ``NAME=DIR`` names a copy already here (a
``git archive`` of it: the script works on a copy and never writes into DIR). The
project is built once by make (after ``./configure`` where it has one, as zlib's
Makefile needs; ``--load-only`` skips the build and the no-op, for git), then, best of N:

- ``make`` no-op against ``gristmill run`` no-op (issue 24: within make's time + 0.1 s);
- ``make -pn`` against Gristmill's reads of the Makefile, in process (issue 25: within
  2x of ``make -pn``): the graph read (``load_makefile(recipes=False)``: one make run,
  no recipe expanded: what plan, graph, the app and a run in which make runs the
  recipes need) and the full read (the default goal's recipes recorded: what today's
  run path executes). Wall seconds, and CPU seconds (the process and its children:
  make, the recording shells) beside them, since the machine is shared.

The first lines say where a no-op's time goes besides the read: the interpreter, and
the imports (``python -c 'import gristmill.cli'``).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PROJECTS = {                     # name: repository (hand-written Makefiles, small first)
    "lua": "https://github.com/lua/lua",
    "zlib": "https://github.com/madler/zlib",
    "hiredis": "https://github.com/redis/hiredis",
    "cJSON": "https://github.com/DaveGamble/cJSON",
    "git": "https://github.com/git/git",
}


_LOAD = ("import resource, sys, time; from gristmill.core.makefile import load_makefile\n"
         "def cpu():\n"
         "    c = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
         "    return time.process_time() + c.ru_utime + c.ru_stime\n"
         "t, c = time.perf_counter(), cpu()\n"
         "load_makefile(sys.argv[1], recipes=sys.argv[2] == 'full')\n"
         "print(time.perf_counter() - t, cpu() - c)")


def best_load(py: list[str], folder: Path, how: str, reps: int, env: dict[str, str]):
    """(wall, CPU) of the read, each the best of ``reps`` runs."""
    runs = [subprocess.run([*py, "-c", _LOAD, str(folder), how], cwd=folder, env=env,
                           capture_output=True, text=True, check=True).stdout.split()
            for _ in range(reps)]
    return min(float(w) for w, _ in runs), min(float(c) for _, c in runs)


def best_cpu(argv: list[str], cwd: Path, reps: int, env: dict[str, str]):
    """(wall, CPU of the child) of a command, each the best of ``reps``."""
    walls, cpus = [], []
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(best(argv, cwd, 1, env))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(walls), min(cpus)


def best(argv: list[str], cwd: Path, reps: int, env: dict[str, str]) -> float:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
        out.append(time.perf_counter() - t)
        if p.returncode:
            raise SystemExit(f"{' '.join(argv)} in {cwd} failed:\n{p.stderr.decode()[-2000:]}")
    return min(out)


def setup(name: str, source: str | None, work: Path, build: bool = True) -> Path:
    dest = work / name
    if source:
        shutil.copytree(source, dest, symlinks=True)
    else:
        subprocess.run(["git", "clone", "-q", "--depth", "1", PROJECTS[name], str(dest)], check=True)
    if (dest / "configure").exists() and not (dest / "Makefile").exists():
        subprocess.run(["./configure"], cwd=dest, check=True, capture_output=True)
    if build and subprocess.run(["make", "-j4"], cwd=dest, capture_output=True).returncode:
        # (cJSON's Makefile is not safe in parallel: its shared libraries link too soon)
        subprocess.run(["make"], cwd=dest, check=True, capture_output=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--load-only", action="store_true",
                    help="no build and no no-op: the reads against make -pn only (git)")
    ap.add_argument("projects", nargs="*", default=["lua", "zlib", "hiredis", "cJSON"])
    args = ap.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    py = [sys.executable]
    # The bytecode an installed Gristmill has (see run.py's byte_compile_gristmill):
    # with PYTHONDONTWRITEBYTECODE set, each process would compile every module again.
    subprocess.run([*py, "-m", "compileall", "-q", str(SRC / "gristmill")], check=True)
    with tempfile.TemporaryDirectory(prefix="gm-make-projects-") as tmp:
        work = Path(tmp)
        env["GRISTMILL_HOME"] = str(work / "home")
        bare = best([*py, "-c", "pass"], work, args.reps, env)
        imports = best([*py, "-c", "import gristmill.cli"], work, args.reps, env)
        print(f"interpreter: {bare:.3f} s; interpreter + imports of a run: {imports:.3f} s")
        print(f"{'project':<9} {'make no-op':>10} {'gm no-op':>9} {'+s':>6}  "
              f"{'make -pn':>13} {'graph read':>13} {'x':>4} {'full read':>13} {'x':>5}"
              "   (wall s / CPU s)")
        for spec in args.projects:
            name, _, source = spec.partition("=")
            folder = setup(name, source or None, work, build=not args.load_only)
            noop = "-"
            if not args.load_only:
                gm = [*py, "-m", "gristmill", "run"]
                subprocess.run(gm, cwd=folder, env=env, capture_output=True)   # history, first run
                make_noop = best(["make"], folder, args.reps, env)
                gm_noop = best(gm, folder, args.reps, env)
                noop = f"{make_noop:>9.3f}s {gm_noop:>8.3f}s {gm_noop - make_noop:>+6.2f}"
            pn = best_cpu(["make", "-pn"], folder, args.reps, env)
            graph = best_load(py, folder, "graph", args.reps, env)
            full = best_load(py, folder, "full", args.reps, env)
            print(f"{name:<9} {noop:>27}  {pn[0]:>6.2f}/{pn[1]:<6.2f} {graph[0]:>6.2f}/{graph[1]:<6.2f}"
                  f" {graph[0] / max(pn[0], 1e-3):>4.1f} {full[0]:>6.2f}/{full[1]:<6.2f}"
                  f" {full[0] / max(pn[0], 1e-3):>5.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
