"""The desktop app, offscreen: time to the first painted window, and event-loop stalls.

    QT_QPA_PLATFORM=offscreen python tests/benchmarks/bench_app.py FOLDER TASKS RUN [SPAWNED_AT]
    python tests/benchmarks/bench_app.py FOLDER TASKS RUN --prepare     (only write the files)
    ... --open-only      (only open and paint: the app at 100,000 tasks)
    ... --cli            (then time ``gristmill run`` of the same targets, in the same run)
    ... --probe          (and print where the GUI thread was during each stall over 50 ms)
    ... --rounds N       (N runs, each followed by the CLI's with --cli: medians, alternated)

Writes (once) a workflow of TASKS tasks in FOLDER: ``copy`` fans out over
TASKS - RUN sources, ``tick`` over RUN more, and the default target is
``tick``. Then, as ``gristmill FOLDER`` would, it creates the app and the
main window, opens the workflow, and measures:

- ``first_paint_s``: from SPAWNED_AT (``time.time()`` when the runner started
  this process; else this script's first line) to the first paint of the
  window after the task table holds every task (``first_paint_cpu_s``: the CPU
  seconds this process used until then); ``watched_s``: until the watches of the
  files it reads are in (made on a worker thread after that paint), and
  ``rescanned_s`` until the scan that follows them is shown: the run starts after it;
- ``max_stall_ms``: while the app runs RUN trivial tasks (Run > Run Default,
  through its action), the longest time the event loop did not serve a 5 ms
  precise timer, less those 5 ms; ``max_own_stall_ms`` the same less the time the
  GUI thread was runnable but waited for a CPU that other processes had (the
  kernel's schedstat): on a shared machine, the part of a stall that is the app's;
  ``worst_stalls`` the five longest, each with both parts;
- ``run_s`` and, with ``--cli``, ``cli_run_s``: the app's run, and ``gristmill
  run`` of the same targets on the same folder (its outputs removed first, the
  same history home) measured in the same invocation, after the app's run;
  ``app_vs_cli`` is their ratio (the target: at most 1.2); ``run_cpu_s``,
  ``cli_cpu_s`` and ``app_vs_cli_cpu`` the same in CPU seconds (the process's
  threads and the tasks' processes), steadier on a shared machine.

With ``--probe``, a thread looks at the GUI thread every 10 ms while the run goes on;
when the event loop has not served its timer for over 50 ms it prints (to stderr) what
every thread was doing: the stall probe that found the start-of-run stall.

Prints one JSON line; ``{"unavailable": why}`` when the app cannot be imported.
"""

from __future__ import annotations

import time

T0 = time.time()

import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

TICK_MS = 5


def write_workflow(folder: Path, tasks: int, run: int) -> None:
    marker = folder / f".made-{tasks}-{run}"
    if marker.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    for sub, n in (("src", tasks - run), ("tick", run)):
        d = folder / sub
        d.mkdir(parents=True)
        for i in range(n):
            (d / f"{sub}{i:05d}.txt").write_text(f"{i}\n")
    (folder / "gristmill.toml").write_text(
        '[workflow]\nname = "app-bench"\ndefault = ["tick"]\n\n'
        '[tasks.copy]\nforeach = "src/*.txt"\ncmd = "cp {input} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["out/{name}"]\n\n'
        '[tasks.tick]\nforeach = "tick/*.txt"\ncmd = "cp {input} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["ticked/{name}"]\n')
    marker.write_text("")


def main(argv: list[str]) -> int:
    folder = Path(argv[0]).resolve()
    tasks, run = int(argv[1]), int(argv[2])
    cli = "--cli" in argv
    open_only = "--open-only" in argv
    probe = "--probe" in argv
    rounds = 1
    if "--rounds" in argv:
        at = argv.index("--rounds")
        rounds = max(1, int(argv[at + 1]))
        del argv[at:at + 2]
    argv = [a for a in argv if a not in ("--cli", "--open-only", "--probe")]
    if "--prepare" in argv:
        write_workflow(folder, tasks, run)
        return 0
    spawned = float(argv[3]) if len(argv) > 3 else T0
    if not (folder / f".made-{tasks}-{run}").exists():
        write_workflow(folder, tasks, run)
        spawned = time.time()
    cleared = time.time()        # the last run's outputs: removing 10,000 files is not opening
    shutil.rmtree(folder / "ticked", ignore_errors=True)
    spawned += time.time() - cleared
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PySide6.QtCore import QEvent, QObject, Qt, QTimer
        from gristmill.app.main import create_app, create_window, open_history
        from gristmill.app.settings import Settings
    except Exception as exc:       # the app is not there (yet): say so, do not fail
        print(json.dumps({"unavailable": f"{type(exc).__name__}: {exc}"}))
        return 0

    app = create_app()
    result: dict[str, object] = {"tasks": tasks, "run": run}
    settings = Settings()
    settings.trust(folder)                    # no trust prompt in the way
    state = {"loaded_at": None, "painted_at": None, "painted_cpu": None}

    class PaintWatch(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
            if (event.type() == QEvent.Type.Paint and state["painted_at"] is None
                    and state["loaded_at"] is not None):
                state["painted_at"] = time.time()
                state["painted_cpu"] = time.process_time()
            return False

    watch = PaintWatch()
    app.installEventFilter(watch)
    history = open_history()
    window = create_window(None, settings=settings, history=history)
    window.open_path(str(folder))
    rows = window.bench.tasks.rowCount()
    state["loaded_at"] = time.time()
    result["rows"] = rows
    result["open_s"] = state["loaded_at"] - spawned

    gui = threading.get_native_id()
    ticks: list[float] = []
    sched: list[tuple[int, int]] = []          # the GUI thread's (on CPU, waiting for one) ns
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)

    def tick() -> None:
        ticks.append(time.perf_counter())
        sched.append(schedstat(gui))

    timer.timeout.connect(tick)
    run_at: dict[str, float] = {}
    samples: list[dict[str, object]] = []

    def start_run() -> None:
        app.removeEventFilter(watch)
        ticks.clear()
        sched.clear()
        run_at.clear()
        if probe:
            start_probe(ticks, run_at)
        timer.start()
        run_at["cpu"] = cpu_now()
        run_at["sched"] = schedstat(gui)
        run_at["start"] = time.perf_counter()
        window.actions["run_default"].trigger()

    def ended(_ended) -> None:
        run_at["end"] = time.perf_counter()
        run_at["cpu_end"] = cpu_now()
        run_at["sched_end"] = schedstat(gui)
        timer.stop()
        status = getattr(window.bench.run, "status", None)
        sample = {"status": getattr(status, "value", str(status)),
                  **stalls(run_at, ticks, sched),
                  "run_s": run_at["end"] - run_at["start"],
                  "run_cpu_s": run_at["cpu_end"] - run_at["cpu"],
                  "ran": len(os.listdir(folder / "ticked")) if (folder / "ticked").exists() else 0}
        if cli:         # the same targets by `gristmill run`, right after, in this process's run
            sample["cli_run_s"], sample["cli_cpu_s"] = cli_run(folder)
        samples.append(sample)
        if len(samples) < rounds:
            shutil.rmtree(folder / "ticked", ignore_errors=True)
            QTimer.singleShot(500, start_run)
        else:
            QTimer.singleShot(0, app.quit)

    window.bench.runEnded.connect(ended)

    def after_paint() -> None:
        if state["painted_at"] is None:
            QTimer.singleShot(10, after_paint)
            return
        if open_only:       # after the fresh load is stored in the cache, as it is once shown
            QTimer.singleShot(1500, app.quit)
            return
        # The files it reads are watched from a worker thread after the first paint (a
        # scope of 100,000 tasks: a second of work): the run starts once that is done, as
        # a user's F5 a moment after the window shows, so the stalls are the run's.
        window.bench.disk.wait_watching(120)
        result["watched_s"] = time.time() - spawned
        # and the scan that follows the watches (what changed before they were in) has
        # been shown: at 100,000 tasks a second of a worker thread
        window.bench.scanned.connect(lambda: state.setdefault("rescanned", time.time()))
        wait_rescan()

    def wait_rescan() -> None:
        if "rescanned" not in state and time.time() - spawned < 120:
            QTimer.singleShot(20, wait_rescan)
            return
        result["rescanned_s"] = state.get("rescanned", time.time()) - spawned
        QTimer.singleShot(200, start_run)     # let the first frames settle

    QTimer.singleShot(0, after_paint)
    QTimer.singleShot(1_800_000, app.quit)     # never hang the runner
    app.exec()
    window.bench.wait(10)
    if history is not None:
        history.close()

    if state["painted_at"] is not None:
        result["first_paint_s"] = state["painted_at"] - spawned
        # CPU seconds of this process to the first paint (steadier on a shared machine)
        result["first_paint_cpu_s"] = state["painted_cpu"]
    if open_only and state["painted_at"] is not None:
        print(json.dumps(result))
        return 0
    if state["painted_at"] is None or not samples:
        print(json.dumps({"error": "the window never painted or the run never ended", **result}))
        return 1
    result.update(samples[0])
    if len(samples) > 1:
        result["rounds"] = samples
        for key in ("run_s", "run_cpu_s", "cli_run_s", "cli_cpu_s"):
            if key in samples[0]:
                result[key] = statistics.median(s[key] for s in samples)
        result["max_stall_ms"] = max(s["max_stall_ms"] for s in samples)
        result["max_own_stall_ms"] = max(s["max_own_stall_ms"] for s in samples)
    if cli:
        result["app_vs_cli"] = round(result["run_s"] / result["cli_run_s"], 3)
        result["app_vs_cli_cpu"] = round(result["run_cpu_s"] / result["cli_cpu_s"], 3)
    print(json.dumps(result))
    return 0


def schedstat(tid: int) -> tuple[int, int]:
    """(ns on a CPU, ns waiting for one) of a thread of this process, from the kernel's
    scheduler statistics; (0, 0) where there are none."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            on, waiting, _ = f.read().split()
        return int(on), int(waiting)
    except (OSError, ValueError):
        return 0, 0


def stalls(run_at: dict[str, float], ticks: list[float],
           sched: list[tuple[int, int]]) -> dict[str, object]:
    """The longest gaps between the timer's ticks, less the tick itself, each with the
    share of it the GUI thread spent waiting for a CPU the machine gave to other
    processes (``queued_ms``): ``max_own_stall_ms`` is the longest gap less that."""
    points = [run_at["start"], *ticks, run_at["end"]]
    stats = [run_at["sched"], *sched, run_at["sched_end"]]
    gaps = [b - a for a, b in zip(points, points[1:])]
    queued = [max(0, b[1] - a[1]) / 1e6 for a, b in zip(stats, stats[1:])]
    on_cpu = [max(0, b[0] - a[0]) / 1e6 for a, b in zip(stats, stats[1:])]
    if not gaps:
        return {"max_stall_ms": 0.0, "max_own_stall_ms": 0.0, "worst_stalls": [], "ticks": 0}
    worst = sorted(range(len(gaps)), key=gaps.__getitem__, reverse=True)[:5]
    own = [max(0.0, g * 1000 - TICK_MS - q) for g, q in zip(gaps, queued)]
    return {
        "max_stall_ms": max(0.0, max(gaps) * 1000 - TICK_MS),
        "max_own_stall_ms": max(own),
        "worst_stalls": [{"at_s": round(points[i] - run_at["start"], 3),
                          "ms": round(gaps[i] * 1000 - TICK_MS, 1),
                          "gui_on_cpu_ms": round(on_cpu[i], 1),
                          "queued_ms": round(queued[i], 1)} for i in sorted(worst)],
        "ticks": len(ticks),
    }


def start_probe(ticks: list[float], run_at: dict[str, float]) -> None:
    """Every 10 ms, while the run goes on: if the GUI thread's timer has not ticked for
    50 ms, print every thread's stack to stderr (once per stall)."""
    import threading
    import traceback
    main = threading.main_thread().ident

    def look() -> None:
        told = None
        while "end" not in run_at:
            time.sleep(0.01)
            last = ticks[-1] if ticks else run_at.get("start", time.perf_counter())
            gap = time.perf_counter() - last
            if gap < 0.05 or told == last:
                continue
            told = last
            frames = sys._current_frames()
            lines = [f"--- stall probe: {gap * 1000:.0f} ms without a tick, "
                     f"{last - run_at['start']:.3f} s into the run"]
            for ident, frame in frames.items():
                name = "GUI" if ident == main else next(
                    (t.name for t in threading.enumerate() if t.ident == ident), str(ident))
                stack = traceback.extract_stack(frame)[-8:]
                lines.append(f"  [{name}] " + " <- ".join(
                    f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(stack)))
            print("\n".join(lines), file=sys.stderr, flush=True)

    began: dict[int, float] = {}

    def collected(phase: str, info: dict) -> None:     # the cyclic collector holds the GIL
        if phase == "start":
            began[info["generation"]] = time.perf_counter()
            return
        took = time.perf_counter() - began.pop(info["generation"], time.perf_counter())
        if took > 0.01:
            print(f"--- stall probe: a generation-{info['generation']} collection took "
                  f"{took * 1000:.0f} ms, {time.perf_counter() - run_at['start']:.3f} s into the run",
                  file=sys.stderr, flush=True)

    import gc
    gc.callbacks.append(collected)
    threading.Thread(target=look, name="stall-probe", daemon=True).start()


def cpu_now() -> float:
    """CPU seconds of this process (every thread) and of the children it has reaped (the
    tasks' processes): on a busy machine a steadier measure of the work than wall time."""
    import resource
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def cli_run(folder: Path) -> tuple[float, float]:
    """``gristmill run`` of the default targets on the same folder, its outputs removed
    first: (wall seconds, CPU seconds of it and its tasks)."""
    import subprocess
    shutil.rmtree(folder / "ticked", ignore_errors=True)
    env = dict(os.environ)
    env.pop("QT_QPA_PLATFORM", None)
    cpu = cpu_now()
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gristmill", "run", "-C", str(folder)], env=env,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t, cpu_now() - cpu


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
