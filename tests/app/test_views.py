"""Views on their own: the graph stays smooth at 2,000 tasks; the bridge batches; timeline and log."""

import time

from PySide6.QtCore import Qt

from gristmill.app.bridge import EngineBridge
from gristmill.app.graph_layout import build_layout, group_node_id
from gristmill.app.models.task_table import TaskTableModel
from gristmill.app.runstate import Bar, RunState
from gristmill.app.selection import Selection
from gristmill.app.states import IdleState
from gristmill.app.views.graph import GraphPane
from gristmill.app.views.log import LiveLogSource, LogPane, PastLogSource
from gristmill.app.views.timeline import TimelinePane
from gristmill.core.events import (OutputLine, Outcome, RunFinished, RunStarted, RunStatus, TaskFinished,
                                   TaskStarted, TaskState, TaskStateChanged)
from gristmill.core.record.history import AttemptRecord
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.staleness import StalenessScan

from app_helpers import chain_workflow


def test_layout_puts_dependencies_in_earlier_layers(tmp_path):
    wf = chain_workflow(tmp_path, n=4, fanout=3)
    g = TaskGraph(wf)
    layout = build_layout(g.order, g.deps, wf.groups(), collapse_above=12)
    assert [layout.nodes[f"t{i}"].layer for i in range(4)] == [0, 1, 2, 3]
    assert all(layout.pos[f"leaf[items/{i}.txt]"][0] > layout.pos["t3"][0] for i in range(3))
    assert layout.nodes["leaf[items/0.txt]"].label == "leaf[0.txt]"


def test_big_fan_outs_collapse_into_one_group_node_until_expanded(tmp_path):
    wf = chain_workflow(tmp_path, n=3, fanout=2000)
    g = TaskGraph(wf)
    started = time.perf_counter()
    layout = build_layout(g.order, g.deps, wf.groups(), collapse_above=12)
    assert time.perf_counter() - started < 1.0
    assert len(layout.nodes) == 4
    group = layout.nodes[group_node_id("leaf")]
    assert len(group.members) == 2000 and layout.edges[-1] == ("t2", group_node_id("leaf"))
    expanded = build_layout(g.order, g.deps, wf.groups(), expanded={"leaf"}, collapse_above=12)
    assert len(expanded.nodes) == 2003


def test_graph_view_of_2000_tasks_builds_and_updates_quickly(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=2000)           # 2,000 distinct tasks: no group to hide behind
    run = RunState()
    model = TaskTableModel(run)
    model.set_workflow(wf)
    selection = Selection()
    pane = GraphPane(selection, model.state)
    qtbot.addWidget(pane)
    pane.resize(900, 600)
    pane.show()
    started = time.perf_counter()
    pane.set_workflow(wf, TaskGraph(wf))
    qtbot.wait(10)
    assert time.perf_counter() - started < 5.0
    assert len(pane.items) == 2000
    run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), tuple(wf.tasks))])
    changes = run.apply([TaskStateChanged("r", 1.0, f"t{i}", TaskState.DONE) for i in range(2000)])
    started = time.perf_counter()
    pane.update_states(changes.tasks)
    pane.view.viewport().repaint()
    assert time.perf_counter() - started < 2.0
    assert pane.items["t5"].state is TaskState.DONE
    # click to select, shared with everyone
    item = pane.items["t0"]
    pane.view.resetTransform()
    pane.view.centerOn(item)
    pos = pane.view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseClick(pane.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert selection.names == ("t0",)
    selection.set(["t7"], "elsewhere")
    assert pane.items["t7"].isSelected() and not pane.items["t0"].isSelected()


def test_group_node_expands_on_double_click_and_shows_member_states(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=1, fanout=50)
    run = RunState()
    model = TaskTableModel(run)
    model.set_workflow(wf)
    pane = GraphPane(Selection(), model.state)
    qtbot.addWidget(pane)
    pane.set_workflow(wf, TaskGraph(wf))
    assert len(pane.items) == 2
    run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), tuple(wf.tasks)),
               TaskStarted("r", 1.0, "leaf[items/3.txt]", 1, 0)])
    pane.update_states(["leaf[items/3.txt]"])
    group = pane.items[group_node_id("leaf")]
    assert group.state is TaskState.RUNNING and "1 running" in group.summary
    pane.activate(group)
    assert len(pane.items) == 51


def test_bridge_applies_thousands_of_events_in_few_batches(qtbot):
    state = RunState()
    bridge = EngineBridge(state, interval_ms=20)
    batches = []
    bridge.applied.connect(batches.append)
    names = tuple(f"task{i}" for i in range(3000))
    events = [RunStarted("r", 0.0, "wf", "/wf", (), names)]
    for n in names:
        events += [TaskStateChanged("r", 1.0, n, TaskState.RUNNING),
                   OutputLine("r", 1.0, n, 1, "working"),
                   TaskStateChanged("r", 2.0, n, TaskState.DONE)]
    events.append(RunFinished("r", 3.0, RunStatus.SUCCEEDED, 3.0))
    bridge.feed(events)
    qtbot.waitUntil(lambda: state.status is RunStatus.SUCCEEDED, timeout=5000)
    from gristmill.app.bridge import MAX_BATCH
    assert len(batches) <= -(-len(events) // MAX_BATCH)     # slices of MAX_BATCH, no more
    assert sum(len(b.lines) for b in batches) == 3000
    assert state.state_counts()[TaskState.DONE] == 3000


def test_bridge_runs_an_engine_on_its_own_thread(qtbot):
    import threading
    from gristmill.core.events import EventBus

    class FakeEngine:
        def __init__(self, bus):
            self.bus = bus
            self.thread = None

        def run(self, targets):
            self.thread = threading.current_thread()
            self.bus.publish(RunStarted("r", 0.0, "wf", "/wf", tuple(targets), ("a",)))
            self.bus.publish(RunFinished("r", 1.0, RunStatus.SUCCEEDED, 1.0))
            return "result"

        def cancel(self):
            pass

        def cancel_task(self, name):
            pass

    bus = EventBus()
    engine = FakeEngine(bus)
    state = RunState()
    bridge = EngineBridge(state)
    with qtbot.waitSignal(bridge.ended, timeout=5000) as blocker:
        bridge.start(engine, bus, ["a"])
    assert blocker.args[0].result == "result"
    assert engine.thread is not threading.current_thread()
    assert state.status is RunStatus.SUCCEEDED and not bridge.busy


def test_timeline_hover_shows_task_times_and_exit_code(qtbot):
    pane = TimelinePane(Selection())
    qtbot.addWidget(pane)
    pane.resize(800, 300)
    pane.show()
    bars = [Bar("compile", 1, 0, 100.0, 104.0, Outcome.SUCCEEDED, 0),
            Bar("test", 2, 1, 101.0, 103.0, Outcome.FAILED, 3)]
    pane.show_run(bars, 100.0, 104.0, None, "Current run")
    canvas = pane.canvas
    bar = canvas.bar_at(canvas._bar_rect(bars[1]).center().toPoint())
    assert bar is bars[1]
    text = canvas.describe(bar)
    assert "test" in text and "exit code 3" in text and "attempt 2" in text and "failed" in text
    assert canvas.lanes() == 2
    selection = pane._selection
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=canvas._bar_rect(bars[0]).center().toPoint())
    assert selection.names == ("compile",)


def test_timeline_has_a_row_per_gpu_device_under_the_slots(qtbot):
    from gristmill.core.gpu import GpuDevice
    run = RunState()
    gpu = [GpuDevice(i, f"GPU-{i}", handle=str(i)) for i in (0, 10)]
    run.apply([RunStarted("r", 100.0, "wf", "/wf", (), ("w", "s1", "s2", "c")),
               TaskStarted("r", 100.0, "w", 1, 0, devices=(gpu[1],)),
               TaskStarted("r", 100.0, "s1", 1, 1, devices=(gpu[0],)),
               TaskStarted("r", 101.0, "s2", 1, 2, devices=(gpu[0],)),
               TaskStarted("r", 101.0, "c", 1, 3)])
    pane = TimelinePane(Selection())
    qtbot.addWidget(pane)
    pane.resize(800, 400)
    pane.show()
    pane.show_run(run.bars, 100.0, 104.0, 103.0, "Current run")
    canvas = pane.canvas
    assert canvas.device_rows == ["GPU 0", "GPU 10"]
    assert canvas.lanes() == 4 + 2
    by = {b.task: b for b in run.bars}
    # s1 and s2 share the row of GPU 0; hovering it there finds one of them, named so.
    rects = canvas._rects(by["s2"])
    assert len(rects) == 2 and rects[1].top() == canvas._rects(by["s1"])[1].top()
    assert canvas.bar_at(rects[1].center().toPoint()) is by["s2"]
    assert canvas.describe(by["s2"]).endswith("on GPU 0")
    assert len(canvas._rects(by["c"])) == 1
    assert canvas._rects(by["w"])[1].top() > rects[1].top()


def test_log_follows_the_selected_task_and_finds_text(qtbot):
    run = RunState()
    log = LogPane()
    qtbot.addWidget(log)
    log.set_source(LiveLogSource(run))
    run.apply([RunStarted("r", 0.0, "wf", "/wf", (), ("a", "b")), TaskStarted("r", 0.0, "a", 1, 0)])
    log.show_task("a")
    lines = [OutputLine("r", 0.0, "a", 1, f"line {i}") for i in range(500)]
    lines.append(OutputLine("r", 0.0, "b", 1, "not mine"))
    run.apply(lines)
    log.append(lines)
    text = log.text.toPlainText()
    assert "line 499" in text and "not mine" not in text
    bar = log.text.verticalScrollBar()
    assert bar.value() == bar.maximum()
    log.search.setText("line 123")
    assert log.matches.text() == "1 match"
    assert log.find()
    assert not log.follow.isChecked()
    # a retry switches to the new attempt
    retry = [OutputLine("r", 0.0, "a", 2, "second try")]
    run.apply([TaskStarted("r", 1.0, "a", 2, 0)] + retry)
    log.append(retry)
    assert log.attempt == 2 and log.text.toPlainText() == "second try"
    log.mode.setCurrentIndex(0)      # whole run
    assert "[b] not mine" in log.text.toPlainText()


def test_an_empty_log_says_why_it_is_empty(qtbot, tmp_path):
    run = RunState()
    log = LogPane()
    qtbot.addWidget(log)
    log.set_source(LiveLogSource(run))
    assert log.text.placeholderText() == "Select a task to see its output."
    run.apply([RunStarted("r", 0.0, "wf", "/wf", (), ("a", "b"))])
    log.show_task("b")
    assert log.text.placeholderText() == "Nothing to show: it has not run."
    log.show_task("a")
    run.apply([TaskStarted("r", 0.0, "a", 1, 0)])
    log.tasks_changed({"a"})
    assert log.attempt == 1 and log.text.toPlainText() == ""
    assert log.text.placeholderText() == "No output yet."
    run.apply([TaskFinished("r", 1.0, "a", 1, Outcome.SUCCEEDED, 0, 1.0)])
    log.tasks_changed({"a"})
    assert log.text.placeholderText() == "This attempt printed nothing."
    # A past attempt whose command printed nothing has no log file.
    gone = str(tmp_path / "never-made.log")
    log.set_source(PastLogSource([AttemptRecord("r", "a", 1, 0.0, 1.0, 1.0, Outcome.SUCCEEDED, 0,
                                                None, 0, "touch a", "", (), gone, "")]))
    log.show_task("a")
    # it printed nothing but its command echo, which the log shows (issue 19), with a header
    assert log.text.toPlainText() == "touch a"
    assert log.info.text() == "$ touch a · exit 0 · 1.0 s"


def test_a_run_start_greys_what_is_outside_it_in_the_graph_legend(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=6)
    run = RunState()
    model = TaskTableModel(run)
    model.set_workflow(wf, StalenessScan(wf, TaskGraph(wf)).scan(list(wf.tasks)))
    pane = GraphPane(Selection(), model.state, states_of=model.states, idle_counts=model.idle_counts)
    qtbot.addWidget(pane)
    pane.set_workflow(wf, TaskGraph(wf))
    assert pane.info.text().endswith("greyed, outside the run: 6 would run (dashed)")
    changes = run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), ("t0", "t1"))])
    pane.update_states(changes.tasks, legend=True)
    assert pane.items["t0"].state is TaskState.WAITING
    assert pane.items["t4"].state is IdleState.STALE
    assert pane.info.text().endswith("greyed, outside the run: 4 would run (dashed)")
