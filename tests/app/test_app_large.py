"""Issue 18 / 19, the app at 100,000 tasks: a workflow that size opens through File > Open's
path with every task in the table and its fan-outs collapsed in the graph, a fan-out
expands on its own, and what changes on disk while the scope is being watched is seen.
Speed is in tests/benchmarks/bench_app.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gristmill.app.states import IdleState
from gristmill.app.graph_layout import group_node_id

FANOUTS, ITEMS = 40, 2_500          # 100,000 tasks


def large_workflow(folder: Path) -> Path:
    """40 fan-outs over the same 2,500 sources, each instance reading the one before."""
    src = folder / "src"
    src.mkdir(parents=True)
    for i in range(ITEMS):
        (src / f"s{i:04d}.txt").write_text(f"{i}\n")
    lines = ['[workflow]\nname = "large"\n']
    for k in range(FANOUTS):
        before = f"out/f{k - 1:02d}/{{name}}" if k else "{item}"
        lines.append(f'[tasks.f{k:02d}]\nforeach = "src/*.txt"\ncmd = "cp {{input}} {{output}}"\n'
                     f'inputs = ["{before}"]\noutputs = ["out/f{k:02d}/{{name}}"]\n')
    (folder / "gristmill.toml").write_text("\n".join(lines))
    return folder


def test_a_100000_task_workflow_opens_with_all_rows_and_its_fan_outs_collapsed(
        qtbot, make_window, tmp_path):
    folder = large_workflow(tmp_path / "large")
    window = make_window()
    window.open_path(str(folder))
    tasks = window.bench.tasks
    assert tasks.rowCount() == FANOUTS * ITEMS
    assert window.table.proxy.rowCount() == FANOUTS * ITEMS      # the table shows them all
    first = "f00[src/s0000.txt]"
    assert tasks.state(first) is IdleState.STALE                 # scanned: nothing built yet
    # the graph: one node per fan-out, not 100,000 boxes
    graph = window.graph
    assert len(graph.items) == FANOUTS
    assert all(graph.items[group_node_id(f"f{k:02d}")].node.is_group for k in range(FANOUTS))
    assert "40 fan-outs collapsed" in graph.info.text()

    graph.expand("f07")                   # one fan-out opens; the others stay collapsed
    assert len(graph.items) == FANOUTS - 1 + ITEMS
    assert "f07[src/s1234.txt]" in graph.items
    assert group_node_id("f08") in graph.items and "f08[src/s1234.txt]" not in graph.items
    graph.collapse("f07")
    assert len(graph.items) == FANOUTS


def test_a_change_made_as_a_workflow_opens_is_seen_once_its_folders_are_watched(
        qtbot, make_window, tmp_path):
    """The watches go in from a worker thread after the window shows the scan; a source
    touched in between (before any watch) is still found stale, by the scan that follows
    the watches."""
    folder = tmp_path / "small"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "a.txt").write_text("a\n")
    (folder / "gristmill.toml").write_text(
        '[tasks.copy]\nforeach = "src/*.txt"\ncmd = "cp {input} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["out/{name}"]\n')
    (folder / "out").mkdir()
    (folder / "out" / "a.txt").write_text("a\n")
    later = time.time() + 5
    os.utime(folder / "out" / "a.txt", (later, later))       # built, newer than its source
    window = make_window()
    window.open_path(str(folder))
    tasks = window.bench.tasks
    assert tasks.state("copy[src/a.txt]") is IdleState.FRESH
    even_later = later + 5                                   # before the watcher watches it
    os.utime(folder / "src" / "a.txt", (even_later, even_later))
    assert window.bench.disk.wait_watching()
    qtbot.waitUntil(lambda: tasks.state("copy[src/a.txt]") is IdleState.STALE, timeout=10_000)
    assert str(folder / "src") in window.bench.disk.folders


def test_a_tasks_outputs_cell_says_just_now_as_soon_as_its_attempt_ends(
        qtbot, make_window, tmp_path):
    """Output times of finished tasks are read when a row shows them, not per batch on
    the GUI thread: the cell is still right mid-run, before the scan after the run."""
    from gristmill.app.models.task_table import Column
    from gristmill.app.settings import Settings
    from gristmill.core.events import TaskState
    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "gristmill.toml").write_text(
        '[tasks.quick]\ncmd = "echo hi > quick.txt"\noutputs = ["quick.txt"]\n\n'
        '[tasks.slow]\ncmd = "sleep 3; echo hi > slow.txt"\noutputs = ["slow.txt"]\n')
    Settings().trust(folder)
    window = make_window()
    window.open_path(str(folder))
    tasks = window.bench.tasks
    cell = lambda name: tasks.data(tasks.index(tasks.row_of(name), Column.OUTPUTS))  # noqa: E731
    assert cell("quick") == "missing"
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: tasks.state("quick") is TaskState.DONE, timeout=10_000)
    assert window.bench.busy                       # slow still runs: no scan after the run yet
    assert cell("quick") == "just now"
    assert cell("slow") == "missing"
    window.bench.cancel()
    qtbot.waitUntil(lambda: not window.bench.busy, timeout=10_000)
