"""Issue 18: a million tasks. The scan and the graph keep less per task (a missing
output's decision makes its words when asked; the sort counts down only tasks with
several dependencies; no closure is walked when the targets need every task); the
plans and their reasons must be exactly those of the long way, on loaded fan-out
workflows with real files."""

from __future__ import annotations

import os
import pickle
import random
import time
import tracemalloc
from pathlib import Path

from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.staleness import FileStamps, StalenessScan
from gristmill.core.load.loader import load_workflow

FANOUT = """
[workflow]
name = "fan"
default = ["report"]

[tasks.a]
foreach = "src/*.txt"
cmd = "cp {input} {output}"
inputs = ["{item}"]
outputs = ["a/{name}"]

[tasks.b]
foreach = "src/*.txt"
cmd = "cp {input} {output}"
inputs = ["a/{name}"]
outputs = ["b/{name}"]

[tasks.both]
foreach = "src/*.txt"
cmd = "cat {inputs} > {output}"
inputs = ["a/{name}", "b/{name}", "conf.ini"]
outputs = ["both/{name}", "both/{stem}.log"]

[tasks.c0]
cmd = "cat {inputs} > {output}"
inputs = ["b/0_*.txt"]
outputs = ["c/0.txt"]

[tasks.c1]
cmd = "cat {inputs} > {output}"
inputs = ["b/1_*.txt"]
outputs = ["c/1.txt"]
after = ["setup"]

[tasks.setup]
cmd = "true"
outputs = ["setup.done"]

[tasks.each]
foreach = ["x", "y"]
cmd = "echo {item} > {output}"
outputs = ["each/{item}.txt"]

[tasks.report]
cmd = "cat {inputs} > {output}"
inputs = ["c/*.txt", "each/*.txt"]
outputs = ["report.txt"]
"""


def _fanout(root: Path, n: int = 30) -> None:
    (root / "gristmill.toml").write_text(FANOUT)
    (root / "src").mkdir()
    for g in range(2):
        for i in range(n):
            (root / "src" / f"{g}_{i:03d}.txt").write_text(f"{g} {i}\n")
    (root / "conf.ini").write_text("k = v\n")


def _touch(path: Path, t: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(path.name)
    os.utime(path, (t, t))


def _one_by_one(wf, names) -> dict:
    """The long way: ``decide`` for each task in the scan's order, nothing quick."""
    scan = StalenessScan(wf)
    will_run: set[str] = set()
    out = {}
    for name in names:
        d = out[name] = scan.decide(wf.tasks[name], will_run)
        if d.stale:
            will_run.add(name)
    return out


def _words(decisions: dict) -> list:
    return [(n, d.stale, [(r.kind, r.message) for r in d.reasons]) for n, d in decisions.items()]


def _states(root: Path):
    """A first plan; one half-built (some outputs there, one source touched since);
    then everything built but one conf change."""
    yield "first"
    now = time.time()
    for i in range(0, 30, 2):
        _touch(root / "a" / f"0_{i:03d}.txt", now - 50)
        _touch(root / "b" / f"0_{i:03d}.txt", now - 40)
    _touch(root / "src" / "0_004.txt", now - 10)       # newer than a/0_004.txt
    yield "half built"
    for g in range(2):
        for i in range(30):
            _touch(root / "a" / f"{g}_{i:03d}.txt", now - 30)
            _touch(root / "b" / f"{g}_{i:03d}.txt", now - 29)
            _touch(root / "both" / f"{g}_{i:03d}.txt", now - 28)
            _touch(root / "both" / f"{g}_{i:03d}.log", now - 28)
    for p in ("c/0.txt", "c/1.txt", "setup.done", "each/x.txt", "each/y.txt"):
        _touch(root / p, now - 20)
    _touch(root / "report.txt", now - 5)
    _touch(root / "conf.ini", now - 1)
    yield "built, conf changed"


def test_fan_out_plans_and_reasons_are_those_of_the_long_way(tmp_path):
    _fanout(tmp_path)
    for state in _states(tmp_path):
        wf = load_workflow(tmp_path)
        for targets in (None, ["report"], list(wf.tasks), ["b", "both"], ["c1"]):
            names = wf.resolve_targets(targets or [])
            got = StalenessScan(wf).scan(names)
            want = _one_by_one(wf, list(got))
            assert _words(got) == _words(want), (state, targets)
            assert got == want and list(got) == list(want)
            # The scan's decisions are equal to, hashed, printed and pickled as the plain ones.
            for name, d in got.items():
                assert hash(d) == hash(want[name]) and repr(d) == repr(want[name])
                back = pickle.loads(pickle.dumps(d))
                assert back == want[name] and type(back) is type(want[name])
        if state == "first":
            d = StalenessScan(wf).scan(None)
            assert [r.message for r in d["b[src/0_003.txt]"].reasons] == [
                "output b/0_003.txt is missing",
                "it reads the output of a[src/0_003.txt], which will run"]
            assert d["b[src/0_003.txt]"].only_dependency is False


def test_targets_that_need_every_task_decide_them_all_in_the_graph_order(tmp_path):
    _fanout(tmp_path, n=5)
    wf = load_workflow(tmp_path)
    graph = TaskGraph.of(wf)
    assert set(graph.sinks()) == {"report", "both[src/0_000.txt]", "both[src/0_001.txt]",
                                  "both[src/0_002.txt]", "both[src/0_003.txt]",
                                  "both[src/0_004.txt]", "both[src/1_000.txt]",
                                  "both[src/1_001.txt]", "both[src/1_002.txt]",
                                  "both[src/1_003.txt]", "both[src/1_004.txt]"}
    every = StalenessScan(wf).scan(list(wf.tasks))
    assert list(every) == list(graph.order)
    sinks = StalenessScan(wf).scan(wf.resolve_targets(["report", "both"]))
    assert _words(sinks) == _words(every)
    # The default (report) does not need the `both` fan-out: only its closure is decided.
    default = StalenessScan(wf).scan(wf.default)
    assert set(default) == graph.closure(wf.default)
    assert not any(n.startswith("both[") for n in default)
    assert list(default) == [n for n in graph.order if n in default]


def _kahn(deps: dict[str, tuple[str, ...]]) -> list[str]:
    """The sort as it was: every task's count, a FIFO queue of the tasks at zero."""
    below: dict[str, list[str]] = {n: [] for n in deps}
    for n, ds in deps.items():
        for d in ds:
            below[d].append(n)
    indeg = {n: len(ds) for n, ds in deps.items()}
    order = [n for n, k in indeg.items() if k == 0]
    for n in order:
        for m in below[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                order.append(m)
    return order


def test_the_graph_order_is_kahns_on_workflows_declared_in_any_order(tmp_path):
    rnd = random.Random(18)
    for case in range(12):
        folder = tmp_path / f"w{case}"
        folder.mkdir()
        n = rnd.randint(5, 40)
        # A random DAG over t0..tn-1 (edges from lower to higher), declared shuffled:
        # some tasks are declared before what they depend on.
        parts = ['[workflow]\nname = "dag"\n']
        names = list(range(n))
        rnd.shuffle(names)
        for i in names:
            ups = [j for j in range(i) if rnd.random() < 0.25]
            reads = [f"o{j}" for j in ups if rnd.random() < 0.5]
            after = [f"t{j}" for j in ups if f"o{j}" not in reads]
            parts.append(f'[tasks.t{i}]\ncmd = "true"\noutputs = ["o{i}"]\n'
                         f'inputs = {reads!r}\nafter = {after!r}\n'.replace("'", '"'))
        (folder / "gristmill.toml").write_text("\n".join(parts))
        wf = load_workflow(folder)
        graph = TaskGraph.of(wf)
        assert list(graph.order) == _kahn(dict(graph.dependencies_of())), case
        assert list(TaskGraph(wf).order) == list(graph.order)


def test_a_missing_path_in_a_listed_folder_stays_missing_and_is_found_once_made(tmp_path):
    (tmp_path / "out").mkdir()
    stamps = FileStamps(tmp_path)
    paths = [f"out/f{i:02d}" for i in range(40)]        # past the listing's threshold
    assert [stamps.get(p) for p in paths] == [None] * 40
    assert [stamps.get(p) for p in paths] == [None] * 40        # asked again: the same
    (tmp_path / "out" / "f30").write_text("x")
    assert stamps.get("out/f30") is None                 # as the scan saw it
    stamps.forget(["out/f30"])
    assert stamps.get("out/f30") == (tmp_path / "out" / "f30").stat().st_mtime_ns
    assert stamps.get("out/f31") is None


def test_a_first_plan_of_a_fan_out_keeps_little_per_task(tmp_path):
    """The decisions of 4,000 tasks whose one output is missing: ~60 bytes a task
    (each was a decision, a tuple, one or two reasons and their words: ~340)."""
    (tmp_path / "gristmill.toml").write_text(
        FANOUT.split("[tasks.both]")[0].replace('default = ["report"]', 'default = ["b"]'))
    (tmp_path / "src").mkdir()
    for i in range(2000):
        (tmp_path / "src" / f"0_{i:04d}.txt").write_text("x")
    wf = load_workflow(tmp_path)
    names = wf.resolve_targets(["a", "b"])
    scan = StalenessScan(wf)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        decisions = scan.scan(names)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(decisions) == 4000 and all(d.stale for d in decisions.values())
    assert kept / 4000 < 200, f"{kept / 4000:.0f} bytes a task"
