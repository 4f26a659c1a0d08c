"""Watch: from a save to the first dependent task's start, and idle CPU, beside entr + make.

    python tests/benchmarks/bench_watch.py [--files 20000] [--folders 200] [--saves 7] [--idle 10]

Writes FILES input files in FOLDERS folders under ``tests/benchmarks/.work/watch``, and
the same workflow twice: a gristmill.toml (one task per folder, reading its folder's
files through a glob) and a Makefile (one rule per folder, its prerequisites the same
files). Each task's first command appends ``date +%s.%N`` to a stamp file outside the
watched folders. Then, per tool:

- ``gristmill watch`` (a process, as a user starts it) and ``entr -n make`` fed the list
  of the FILES files (entr's own advice for rerunning make; skipped with a note when
  entr is not installed: ``apt-get install entr``);
- after the first build, SAVES times: one input file of a random folder is rewritten;
  the latency is the first new stamp's time less the time the write returned;
- idle CPU: user+system time of the watcher's process (every thread) over IDLE seconds
  with nothing changing, as a share of one core.

Prints a table (medians, min–max) and one JSON line. Not a test: figures go in
RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORK = HERE / ".work" / "watch"
TICK = os.sysconf("SC_CLK_TCK")


def write_tree(root: Path, files: int, folders: int) -> None:
    marker = root / f".made-{files}-{folders}"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    per = files // folders
    for k in range(folders):
        d = root / "data" / f"d{k:03d}"
        d.mkdir(parents=True)
        for j in range(per):
            (d / f"f{j:04d}.txt").write_text(f"{k} {j}\n")
    marker.write_text("")


def write_workflows(tree: Path, folders: int) -> tuple[Path, Path]:
    gm, mk = WORK / "gristmill", WORK / "make"
    for folder in (gm, mk):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (folder / "data").symlink_to(tree / "data")
    lines = ['[workflow]\nname = "watch-bench"\ndefault = ["all"]\n']
    for k in range(folders):
        lines.append(f'[tasks.t{k:03d}]\ncmd = ["date +%s.%N >> {WORK}/stamps/gristmill", '
                     f'"cat data/d{k:03d}/*.txt > out/d{k:03d}.txt"]\n'
                     f'inputs = ["data/d{k:03d}/*.txt"]\noutputs = ["out/d{k:03d}.txt"]\n')
    lines.append('[tasks.all]\ncmd = "cat out/*.txt > all.txt"\ninputs = ["out/*.txt"]\n'
                 'outputs = ["all.txt"]\n')
    (gm / "gristmill.toml").write_text("\n".join(lines))
    outs = " ".join(f"out/d{k:03d}.txt" for k in range(folders))
    rules = [f"all.txt: {outs}\n\tcat $^ > $@\n"]
    for k in range(folders):
        rules.append(f"out/d{k:03d}.txt: $(wildcard data/d{k:03d}/*.txt)\n"
                     f"\t@date +%s.%N >> {WORK}/stamps/make\n\t@mkdir -p out\n\t@cat $^ > $@\n")
    (mk / "Makefile").write_text("\n".join(rules))
    return gm, mk


def stamps(name: str) -> list[float]:
    try:
        return [float(x) for x in (WORK / "stamps" / name).read_text().split()]
    except (OSError, ValueError):
        return []


def cpu_seconds(pid: int) -> float:
    """user + system time of the process and every thread of it (and its reaped children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_quiet(name: str, timeout: float = 120.0) -> None:
    """Until the stamp file has stopped growing for a second (the first build is over)."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = len(stamps(name))
        if n != last:
            last, since = n, time.monotonic()
        elif n > 0 and time.monotonic() - since > 1.0:
            return
        time.sleep(0.05)
    raise SystemExit(f"{name}: the first build did not settle")


def measure(name: str, argv: list[str], cwd: Path, tree: Path, folders: int, saves: int,
            idle: float, stdin=None, env=None) -> dict:
    (WORK / "stamps").mkdir(parents=True, exist_ok=True)
    (WORK / "stamps" / name).write_text("")
    proc = subprocess.Popen(argv, cwd=cwd, stdin=stdin, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
        wait_quiet(name)
        rng = random.Random(7)
        latencies = []
        for i in range(saves):
            time.sleep(1.0)
            k = rng.randrange(folders)
            before = len(stamps(name))
            path = tree / "data" / f"d{k:03d}" / "f0000.txt"
            with open(path, "a") as f:
                f.write(f"save {i}\n")
            t0 = time.time()
            deadline = time.monotonic() + 20
            while len(stamps(name)) == before and time.monotonic() < deadline:
                time.sleep(0.002)
            got = stamps(name)
            if len(got) > before:
                latencies.append(got[before] - t0)
        wait_quiet(name)
        time.sleep(1.0)
        c0 = cpu_seconds(proc.pid)
        time.sleep(idle)
        c1 = cpu_seconds(proc.pid)
        return {"latency_ms": [round(x * 1000, 1) for x in latencies],
                "idle_cpu_percent": round(100 * (c1 - c0) / idle, 3)}
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--folders", type=int, default=200)
    ap.add_argument("--saves", type=int, default=7)
    ap.add_argument("--idle", type=float, default=10.0)
    args = ap.parse_args()
    tree = WORK / "tree"
    write_tree(tree, args.files, args.folders)
    gm, mk = write_workflows(tree, args.folders)
    results: dict[str, dict | str] = {}
    env = dict(os.environ, GRISTMILL_HOME=str(WORK / "home"),
               PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    results["gristmill watch"] = measure(
        "gristmill", [sys.executable, "-m", "gristmill", "watch", "-j", "2"], gm, tree,
        args.folders, args.saves, args.idle, env=env)
    if shutil.which("entr"):
        listing = "\n".join(str(p.relative_to(tree)) for p in sorted((tree / "data").rglob("*.txt")))
        (WORK / "files.txt").write_text(listing + "\n")
        with open(WORK / "files.txt") as names:
            results["entr -n make -j2"] = measure(
                "make", ["entr", "-n", "make", "-j2", "-s"], mk, tree, args.folders,
                args.saves, args.idle, stdin=names)
    else:
        results["entr -n make -j2"] = "skipped: entr is not installed (apt-get install entr)"
    print(f"{args.files} watched files in {args.folders} folders, {args.saves} saves each\n")
    print(f"{'tool':<20} {'save→first task start (ms)':>30} {'idle CPU (% of a core)':>24}")
    for tool, r in results.items():
        if isinstance(r, str):
            print(f"{tool:<20} {r}")
            continue
        lat = r["latency_ms"]
        text = (f"{statistics.median(lat):.0f} ({min(lat):.0f}–{max(lat):.0f})" if lat
                else "no run seen")
        print(f"{tool:<20} {text:>30} {r['idle_cpu_percent']:>24.2f}")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
