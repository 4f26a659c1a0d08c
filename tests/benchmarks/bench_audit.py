#!/usr/bin/env python3
"""The dependency audit's cost: the bundled C example built plain and audited, side by side.

    .venv/bin/python tests/benchmarks/bench_audit.py [--reps N] [--jobs J] [--work DIR]

Each sample is a clean build of a fresh copy of ``resources/examples/make-c`` (11
tasks: five compiles, an archive, a link, three mkdirs, all), timed as a process:

- ``make``                       GNU make -jJ itself
- ``make under strace``          the same under ``strace -f`` with our call list, every
                                 system call stopped (ptrace without a seccomp filter)
- ``make under strace --seccomp-bpf``  only the traced calls stop the tracee
- ``gristmill``                  ``gristmill run -jJ``
- ``gristmill --audit``          ``gristmill run -jJ --audit`` (strace --seccomp-bpf per
                                 command, traces parsed and judged, findings recorded)

The variants are alternated (the order rotates each round); medians are printed with
each one's ratio to its plain run, and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXAMPLE_C = REPO / "resources" / "examples" / "make-c"
sys.path.insert(0, str(REPO / "src"))

from gristmill.core.run.trace import TRACED  # noqa: E402


def variants(jobs: int, strace: str) -> dict[str, list[str]]:
    calls = "trace=" + ",".join("?" + c for c in TRACED)
    make = ["make", f"-j{jobs}"]
    base = [strace, "-f", "-qq", "-y", "-xx", "-e", "signal=none", "-e", calls, "-o"]
    gm = [sys.executable, "-m", "gristmill", "run", "-j", str(jobs)]
    return {
        "make": make,
        "make under strace": base + ["{trace}", "--"] + make,
        "make under strace --seccomp-bpf": base[:2] + ["--seccomp-bpf"] + base[2:]
                                           + ["{trace}", "--"] + make,
        "gristmill": gm,
        "gristmill --audit": gm + ["--audit"],
    }


def one(argv: list[str], work: Path, home: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process tree) of one clean build."""
    folder = work / "make-c"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(EXAMPLE_C, folder)
    trace = str(work / "trace.txt")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env["GRISTMILL_HOME"] = str(home)
    env["PYTHONPATH"] = str(REPO / "src")
    cmd = [a.replace("{trace}", trace) for a in argv]
    log = work / "out.log"
    with open(log, "w") as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        took = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0 or not (folder / "bin" / "shapes").exists():
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{log.read_text()}")
    return took, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args(argv)
    strace = shutil.which("strace")
    if strace is None or shutil.which("make") is None or shutil.which("cc") is None:
        print("needs strace, GNU make and a C compiler (apt install strace make gcc)")
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="gristmill-bench-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    todo = variants(args.jobs, strace)
    names = list(todo)
    one(todo["gristmill"], work, home)         # warm up: bytecode, the page cache
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            w, c = one(todo[name], work, home)
            wall[name].append(w)
            cpu[name].append(c)
    med = {n: statistics.median(s) for n, s in wall.items()}
    med_cpu = {n: statistics.median(s) for n, s in cpu.items()}
    plain = {"make under strace": "make", "make under strace --seccomp-bpf": "make",
             "gristmill --audit": "gristmill"}
    print(f"C example, clean build, -j{args.jobs}, {args.reps} runs each (medians; CPU is "
          "user + system of the whole process tree, steadier than wall time on a busy machine):")
    print(f"  {'':<34} {'wall':>8}            {'CPU':>8}")
    for n in names:
        r = plain.get(n)
        ratio = f"({med[n] / med[r]:.2f}×)" if r else ""
        cratio = f"({med_cpu[n] / med_cpu[r]:.2f}× {r})" if r else ""
        print(f"  {n:<34} {med[n]:7.3f} s {ratio:<9} {med_cpu[n]:7.3f} s {cratio}")
    print(json.dumps({"jobs": args.jobs, "reps": args.reps, "median_wall_s": med,
                      "median_cpu_s": med_cpu, "wall_s": wall, "cpu_s": cpu,
                      "audit_slowdown_wall": med["gristmill --audit"] / med["gristmill"],
                      "audit_slowdown_cpu": med_cpu["gristmill --audit"] / med_cpu["gristmill"]}))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
