"""Load and plan a workflow inside one fresh Python process; print the phases as JSON.

    python tests/benchmarks/bench_inproc.py FOLDER [--tracemalloc] [--profile OUT.html] [--no-freeze]

Phases: ``import`` (the core modules), ``load`` (``load_workflow``), ``graph``
(``TaskGraph.of``: built by the loader already, so ~0), ``scan`` (``StalenessScan.scan``: one stat per path), ``plan``
(``Plan`` and the critical-path priorities the engine computes before starting).
``peak_rss`` is the process's ru_maxrss; with ``--tracemalloc`` the peak of
Python allocations is measured too (tracemalloc slows the phases, so the runner asks
for it in a separate process). As the CLI does, ``gc.freeze()`` is called right after
loading; ``--no-freeze`` leaves it out, to see what it saves.
"""

from __future__ import annotations

import json
import resource
import sys
import time


def main(argv: list[str]) -> int:
    folder = argv[0]
    trace = "--tracemalloc" in argv
    profile = argv[argv.index("--profile") + 1] if "--profile" in argv else None
    if trace:
        import tracemalloc
        tracemalloc.start()
    profiler = None
    if profile:
        from pyinstrument import Profiler
        profiler = Profiler(interval=0.0005)
        profiler.start()
    t = [time.perf_counter()]
    c = [time.process_time()]
    from gristmill.core.decide.graph import TaskGraph
    from gristmill.core.load.loader import load_workflow
    from gristmill.core.decide.plan import Plan
    from gristmill.core.decide.scheduler import critical_path
    from gristmill.core.decide.staleness import StalenessScan
    t.append(time.perf_counter())
    c.append(time.process_time())
    wf = load_workflow(folder)
    if "--no-freeze" not in argv:             # as cli._load does
        import gc
        gc.freeze()
    t.append(time.perf_counter())
    c.append(time.process_time())
    graph = TaskGraph.of(wf)     # as the engine does: the loader built it already
    t.append(time.perf_counter())
    c.append(time.process_time())
    decisions = StalenessScan(wf, graph).scan(wf.default)
    t.append(time.perf_counter())
    c.append(time.process_time())
    stale = [n for n, d in decisions.items() if d.stale]
    plan = Plan(graph, stale)
    critical_path(graph, stale)
    ready = plan.take_ready()
    t.append(time.perf_counter())
    c.append(time.process_time())
    if profiler is not None:
        profiler.stop()
        with open(profile, "w") as f:
            f.write(profiler.output_html())
    names = ("import", "load", "graph", "scan", "plan")
    out = {name: t[i + 1] - t[i] for i, name in enumerate(names)}
    out["load_and_plan"] = t[-1] - t[1]
    # CPU seconds of each phase: on a machine shared with other work, wall time moves
    # with the load; these move less.
    out.update({f"cpu_{name}": c[i + 1] - c[i] for i, name in enumerate(names)})
    out["cpu_load_and_plan"] = c[-1] - c[1]
    out["tasks"] = len(wf.tasks)
    out["stale"] = len(stale)
    out["ready"] = len(ready)
    out["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if trace:
        import tracemalloc
        out["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
