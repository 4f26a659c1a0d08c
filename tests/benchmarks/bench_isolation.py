"""What isolation costs a task to start, on the spawn workload (one task at a time).

    python tests/benchmarks/bench_isolation.py [--n 300] [--container-n 20] [--reps 3]

- **sandbox**: N tasks ``touch out/tNNNNN`` run by ``gristmill run -j 1``, as plain
  processes and as ``isolation = "sandbox"``; the overhead of a sandboxed task is the
  difference of the medians, divided by N. Beside it, a bare loop of
  ``bwrap --ro-bind / / touch`` (bubblewrap's own cost, nothing of Gristmill's).
  Target: at most 10 ms a task.
- **container**: C tasks ``true`` with ``container = IMAGE`` by ``gristmill run -j 1``,
  against a loop of C ``podman run --rm IMAGE true`` (podman itself), and a loop of
  the very command lines Gristmill runs (its mounts, ``--user``, ``--network none``...).
  Target: within 10 % of podman itself.

The image is the tests' busybox one (``tests/busybox_image.py``). Prints a Markdown table
and a JSON line of every sample.
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
sys.path.insert(0, str(HERE.parent))           # tests/: busybox_image
sys.path.insert(0, str(REPO / "src"))

import busybox_image  # noqa: E402


def write(folder: Path, n: int, isolation: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "out").mkdir(parents=True)
    parts = ['[workflow]\nname = "spawn"\n' + isolation + "\n"]
    for i in range(n):
        parts.append(f'[tasks.t{i:05d}]\ncmd = "touch out/t{i:05d}"\noutputs = "out/t{i:05d}"\n')
    (folder / "gristmill.toml").write_text("".join(parts))


def gristmill_run(folder: Path, home: Path) -> float:
    env = {**os.environ, "GRISTMILL_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "gristmill", "run", "-j", "1", "--quiet",
                        "-C", str(folder), ], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"gristmill run failed in {folder}:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return seconds


def loop(argvs: list[list[str]], cwd: Path) -> float:
    t0 = time.perf_counter()
    for argv in argvs:
        subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def same_sandbox_loop(folder: Path, n: int) -> float:
    """The command lines Gristmill's sandbox runs, with its stage made and moved, in a loop."""
    from gristmill.core.load.loader import load_workflow
    from gristmill.core.run.sandbox import Sandbox
    write(folder, n, 'isolation = "sandbox"')
    wf = load_workflow(folder / "gristmill.toml")
    bwrap = shutil.which("bwrap")
    t0 = time.perf_counter()
    for i, task in enumerate(wf.tasks.values()):
        box = Sandbox(bwrap, task, str(wf.root), i)
        subprocess.run(box.argv(["touch", task.outputs[0]], 0), cwd=folder, check=True,
                       stdin=subprocess.DEVNULL)
        box.finish(True, None)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--container-n", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gristmill-bench-isolation-"))
    samples: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        samples.setdefault(key, []).append(value)
        print(f"  {key:<22} {value:8.3f} s", file=sys.stderr)

    n, c = args.n, args.container_n
    try:
        for rep in range(args.reps):
            for kind in ("process", "sandbox"):
                folder = work / kind
                write(folder, n, f'isolation = "{kind}"')
                add(kind, gristmill_run(folder, work / f"home-{kind}-{rep}"))
            bare = work / "bare"
            shutil.rmtree(bare, ignore_errors=True)
            (bare / "out").mkdir(parents=True)
            add("bwrap-loop", loop([["bwrap", "--ro-bind", "/", "/", "--bind", str(bare), str(bare),
                                     "--chdir", str(bare), "touch", f"out/t{i:05d}"]
                                    for i in range(n)], bare))
            add("bwrap-loop-same-args", same_sandbox_loop(work / "same", n))
        have_podman = busybox_image.available()
        if have_podman:
            image = busybox_image.ensure_image()
            from gristmill.core.load.loader import load_workflow
            from gristmill.core.run.container import Container
            for rep in range(args.reps):
                folder = work / "container"
                write(folder, c, f'container = "{image}"')
                add("container", gristmill_run(folder, work / f"home-container-{rep}"))
                add("podman-loop", loop([["podman", "run", "--rm", image, "touch", f"/tmp/t{i}"]
                                         for i in range(c)], folder))
                wf = load_workflow(folder / "gristmill.toml")
                same = []
                for i, task in enumerate(wf.tasks.values()):
                    box = Container(shutil.which("podman"), task, str(wf.root), f"bench{rep}",
                                    i + 1, {"GRISTMILL_TASK": task.name})
                    same.append(box.argv(["touch", task.outputs[0]], 0))
                add("podman-loop-same-args", loop(same, folder))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in samples.items()}
    lines = ["| what | median | per task (median) | per task (best) |", "|---|---|---|---|"]
    for key, count in (("process", n), ("sandbox", n), ("bwrap-loop", n),
                       ("bwrap-loop-same-args", n), ("container", c), ("podman-loop", c),
                       ("podman-loop-same-args", c)):
        if key in med:
            lines.append(f"| {key} | {med[key]:.3f} s | {med[key] / count * 1000:.2f} ms | "
                         f"{min(samples[key]) / count * 1000:.2f} ms |")
    print("\n".join(lines))
    sandbox_ms = (med["sandbox"] - med["process"]) / n * 1000
    best_ms = (min(samples["sandbox"]) - min(samples["process"])) / n * 1000
    print(f"\nsandbox overhead: {sandbox_ms:.2f} ms a task (medians; best runs: {best_ms:.2f} ms; "
          "target <= 10 ms)")
    if "container" in med:
        ratio = med["container"] / med["podman-loop"]
        print(f"container / podman run --rm IMAGE true: {ratio:.3f} (target <= 1.10); "
              f"container / the same podman command lines: "
              f"{med['container'] / med['podman-loop-same-args']:.3f}")
    print(json.dumps({"n": n, "container_n": c, "samples": samples}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
