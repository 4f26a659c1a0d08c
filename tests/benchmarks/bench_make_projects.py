"""Real projects' Makefiles: a no-op and a load under Gristmill beside GNU make's own.

    python tests/benchmarks/bench_make_projects.py [--reps N] [--gristmill-src DIR] [PROJECT|NAME=DIR ...]

Each project comes, in this order, from ``NAME=DIR`` (a copy already here: the script
works on a copy and never writes into DIR), from its mirror under ``/work/.mirror``
(``git archive``), from the copy vendored under ``tests/makefile/projects/`` (cJSON and sds,
with their licences: what CI has), or from ``git clone --depth 1`` of its repository on
GitHub — the same sources, list and preparation as the real-project sweep
(``tests/makefile/sweep_projects.py``). The project is built once by make (after
``./configure`` where it has one, as zlib's Makefile needs), then, best of N:

- ``make`` no-op against ``gristmill run`` no-op (issue 24: within make's time + 0.1 s);
- ``make -pn`` against Gristmill's graph read of the Makefile (``load_makefile(recipes=False)``:
  what a run, in which make runs the recipes, reads; in
  process: issue 25, within 2x of ``make -pn``).

The table says where a no-op's time goes besides the read: the interpreter and
imports (``python -c 'import gristmill.cli'``), and whether each no-op meets issue 24's
target (make's time + 0.1 s). The default projects are the vendored ones, so it runs anywhere.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "makefile"))
import sweep_projects as sweep  # noqa: E402

TARGET = 0.1                     # issue 24: a no-op within make's own time + 0.1 s


_LOAD = ("import sys, time; from gristmill.core.makefile import load_makefile; "
         "t = time.perf_counter(); load_makefile(sys.argv[1], recipes=False); "
         "print(time.perf_counter() - t)")


def best(argv: list[str], cwd: Path, reps: int, env: dict[str, str]) -> float:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
        out.append(time.perf_counter() - t)
        if p.returncode:
            raise SystemExit(f"{' '.join(argv)} in {cwd} failed:\n{p.stderr.decode()[-2000:]}")
    return min(out)


def setup(name: str, source: str | None, work: Path) -> Path:
    dest = work / name
    if source:
        shutil.copytree(source, dest, symlinks=True)
    elif name in sweep.PROJECTS:
        try:
            return build(sweep.pristine(sweep.PROJECTS[name], dest)[0])
        except FileNotFoundError:    # neither mirrored nor vendored: from GitHub
            owner_repo = sweep.PROJECTS[name].mirror.replace("+", "/")
            subprocess.run(["git", "clone", "-q", "--depth", "1", f"https://github.com/{owner_repo}",
                            str(dest)], check=True)
    else:
        raise SystemExit(f"unknown project {name}: name one of {' '.join(sweep.PROJECTS)}, or NAME=DIR")
    if (dest / "configure").exists() and not (dest / "Makefile").exists():
        subprocess.run(["./configure"], cwd=dest, check=True, capture_output=True)
    return build(dest)


def build(dest: Path) -> Path:
    subprocess.run(["make"], cwd=dest, check=True, capture_output=True)   # serial: cJSON's is not -j safe
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--gristmill-src", type=Path, default=SRC, help="which src/ to measure (default: this one)")
    ap.add_argument("projects", nargs="*", default=["sds", "cJSON"],
                    help=f"of {' '.join(sweep.PROJECTS)}, or NAME=DIR (default: the vendored sds, cJSON)")
    args = ap.parse_args(argv)
    src = args.gristmill_src.resolve()
    env = {**os.environ, "PYTHONPATH": str(src)}
    py = [sys.executable]
    # The bytecode an installed Gristmill has (see run.py's byte_compile_gristmill):
    # with PYTHONDONTWRITEBYTECODE set, each process would compile every module again.
    subprocess.run([*py, "-m", "compileall", "-q", str(src / "gristmill")], check=True)
    with tempfile.TemporaryDirectory(prefix="gm-make-projects-") as tmp:
        work = Path(tmp)
        env["GRISTMILL_HOME"] = str(work / "home")
        imports = best([*py, "-c", "import gristmill.cli"], work, args.reps, env)
        print(f"interpreter + imports: {imports:.3f} s")
        print(f"{'project':<10} {'make no-op':>11} {'gm no-op':>9} {'+s':>6}   "
              f"{'make -pn':>9} {'gm load':>8} {'x':>5}   issue 24")
        for spec in args.projects:
            name, _, source = spec.partition("=")
            folder = setup(name, source or None, work)
            gm = [*py, "-m", "gristmill", "run"]
            subprocess.run(gm, cwd=folder, env=env, capture_output=True)   # history, first run
            make_noop = best(["make"], folder, args.reps, env)
            gm_noop = best(gm, folder, args.reps, env)
            make_pn = best(["make", "-pn"], folder, args.reps, env)
            load = min(float(subprocess.run(
                [*py, "-c", _LOAD, str(folder)], cwd=folder, env=env, capture_output=True,
                text=True, check=True).stdout) for _ in range(args.reps))
            print(f"{name:<10} {make_noop:>10.3f}s {gm_noop:>8.3f}s {gm_noop - make_noop:>+6.2f}   "
                  f"{make_pn:>8.3f}s {load:>7.3f}s {load / max(make_pn, 1e-3):>5.1f}   "
                  f"{'met' if gm_noop <= make_noop + TARGET else 'NOT met'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
