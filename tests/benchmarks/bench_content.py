"""check = "content" against make's timestamps: the no-op of the copy workload
(20,000 tasks ``cp src/X out/X``), and the hash functions a content check may use.

    PYTHONPATH=src python tests/benchmarks/bench_content.py [--tasks 20000] [--reps 5]

Prints, per check, the median wall time of ``gristmill run`` when everything is up to
date (process start included), and the ratio content/mtime (the issue asks <= 1.5);
then the same after every source was touched with the same bytes (content: every file
is hashed once, mtime: everything runs again is not measured, only content); then
BLAKE2b (hashlib) against BLAKE3 (the ``blake3`` package, when importable) in MB/s
on files of 4 KiB and 64 MiB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import write_copy  # noqa: E402

SRC = str(Path(__file__).resolve().parents[2] / "src")


def gm(folder: Path, home: Path, *args: str) -> float:
    env = dict(os.environ, GRISTMILL_HOME=str(home), PYTHONPATH=SRC)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "gristmill", "run", "-j2", *args], cwd=folder,
                       env=env, capture_output=True, text=True)
    took = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(p.stdout[-2000:] + p.stderr[-2000:])
    return took


def prepare(base: Path, check: str, n: int) -> tuple[Path, Path]:
    folder = base / check
    folder.mkdir()
    write_copy(folder, "gristmill", n)
    toml = folder / "gristmill.toml"
    if check == "content":
        toml.write_text(toml.read_text().replace('name = "copy"\n',
                                                 'name = "copy"\ncheck = "content"\n'))
    home = base / f"home-{check}"
    gm(folder, home)                   # the build: every task runs once
    return folder, home


def hash_speed() -> None:
    from hashlib import blake2b
    try:
        import blake3  # type: ignore[import-not-found]
    except ImportError:
        blake3 = None
    for size in (4096, 64 << 20):
        data = os.urandom(size)
        reps = max(1, (256 << 20) // size)
        fns = {"blake2b": lambda d: blake2b(d, digest_size=16).digest()}
        if blake3 is not None:
            fns["blake3"] = lambda d: blake3.blake3(d).digest()
            fns["blake3 (max_threads)"] = lambda d: blake3.blake3(
                d, max_threads=blake3.blake3.AUTO).digest()
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(reps):
                fn(data)
            took = time.perf_counter() - t
            print(f"hash {name:>22} {size:>9} B files: {size * reps / took / 1e6:8.0f} MB/s")
    if blake3 is None:
        print("(blake3 is not importable here: pip install blake3 to compare)")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=20000)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--no-noop", action="store_true", help="only the hash speeds")
    args = p.parse_args()
    if not args.no_noop:
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            made = {check: prepare(base, check, args.tasks) for check in ("mtime", "content")}
            times: dict[str, list[float]] = {"mtime": [], "content": []}
            for folder, home in made.values():
                gm(folder, home)                            # warm: the cache written
            for _ in range(args.reps):    # interleaved: a busy machine slows both alike
                for check, (folder, home) in made.items():
                    times[check].append(gm(folder, home))
            figures = {check: statistics.median(t) for check, t in times.items()}
            for check in made:
                print(f"no-op, {args.tasks} tasks, check = {check:>7}: "
                      f"{figures[check]:.3f} s (median of {args.reps}; "
                      f"{min(times[check]):.3f}-{max(times[check]):.3f})")
            folder, home = made["content"]
            t = time.time() + 10
            for x in (folder / "src").iterdir():
                os.utime(x, (t, t))
            first = gm(folder, home)
            again = statistics.median(gm(folder, home) for _ in range(args.reps))
            print(f"every source touched, same bytes, check = content: first "
                  f"{first:.3f} s (hashes them all), then {again:.3f} s")
            print(f"content / mtime: {figures['content'] / figures['mtime']:.2f}x")
    hash_speed()


if __name__ == "__main__":
    main()
