"""Issue 16: Tools > Capacity Planner, through the app's action: the curve (one series per
GPU count, the core's predicted points), the simulated schedule in the timeline widget,
and the core's bottleneck sentence."""

from __future__ import annotations

from gristmill.core.decide.simulate import estimate_durations, explain, parse_on, simulate
from gristmill.app.planner import deciding_capacity
from gristmill.core.run.engine import Engine, RunOptions

FAN = """\
[workflow]
default = ["report"]

[tasks.a]
cmd = "sleep 1"
outputs = ["a.out"]

[tasks.b]
cmd = "sleep 1"
outputs = ["b.out"]

[tasks.c]
cmd = "sleep 1"
outputs = ["c.out"]

[tasks.train]
cmd = "sleep 1"
outputs = ["model.out"]
resources = { gpu = 1 }

[tasks.report]
cmd = "cat a.out b.out c.out model.out > report.txt"
inputs = ["a.out", "b.out", "c.out", "model.out"]
outputs = ["report.txt"]
"""


def _core(window, spec):
    """What the core predicts for ``spec``, as `gristmill plan --on` does."""
    bench = window.bench
    wf, graph = bench.workflow, bench.graph
    base = bench.capacity()
    _, decisions, _ = Engine(wf, None, bench.history, RunOptions(capacity=deciding_capacity(base)),
                             graph=graph).decide([])
    stale = [n for n, d in decisions.items() if d.stale]
    durations = estimate_durations(wf, stale, {}).seconds
    caps = parse_on(spec, base)
    return explain([simulate(wf, graph, stale, durations, cap, label) for label, cap in caps],
                   wf, graph, stale, durations)


def _open_planner(qtbot, window, gpus="1, 2", lo=1, hi=4):
    window.actions["planner"].trigger()
    dialog = window.dialogs["planner"]
    dialog.cpu_lo.setValue(lo)
    dialog.cpu_hi.setValue(hi)
    dialog.gpus.setText(gpus)
    dialog.go.click()
    qtbot.waitUntil(lambda: dialog.result is not None and not dialog.busy, timeout=20_000)
    return dialog


def test_the_curve_has_one_series_per_gpu_count_with_the_predicted_points(
        qtbot, make_window, tmp_path):
    (tmp_path / "gristmill.toml").write_text(FAN)
    window = make_window(tmp_path)
    assert window.actions["planner"].isEnabled()
    dialog = _open_planner(qtbot, window)
    assert not dialog.result.error, dialog.result.error
    series = {item.name(): item.getData() for item in dialog.plot.listDataItems()}
    assert set(series) == {"1 GPU", "2 GPUs"}
    for g, name in ((1, "1 GPU"), (2, "2 GPUs")):
        want = _core(window, f"cpu=1..4,gpu={g}")
        xs, ys = series[name]
        assert list(xs) == [p.capacity.cpu for p in want] == [1, 2, 4]
        assert list(ys) == [p.makespan for p in want]
    assert list(series["1 GPU"][1]) == [5.0, 3.0, 2.0]    # 4 one-second tasks, then report


def test_the_timeline_shows_the_chosen_points_slices_and_its_bottleneck_sentence(
        qtbot, make_window, tmp_path):
    (tmp_path / "gristmill.toml").write_text(FAN)
    window = make_window(tmp_path)
    dialog = _open_planner(qtbot, window, gpus="1")
    want = {p.label: p for p in _core(window, "cpu=1..4,gpu=1")}
    shown = dialog.selected()                       # the most cores by default
    assert shown.label == "cpu=4,gpu=1"
    bars = dialog.timeline.canvas.bars
    t0 = dialog.timeline.canvas.t0
    assert sorted((b.task, b.slot, round(b.start - t0, 6), round(b.end - t0, 6)) for b in bars) \
        == sorted((s.task, s.slot, s.start, s.end) for s in want["cpu=4,gpu=1"].schedule)
    assert dialog.bottleneck.text() == want["cpu=4,gpu=1"].bottleneck
    assert "critical path" in dialog.bottleneck.text()
    # another point: its schedule and its sentence
    dialog.point.setCurrentIndex(0)
    assert dialog.selected().label == "cpu=1,gpu=1"
    assert len(dialog.timeline.canvas.bars) == len(want["cpu=1,gpu=1"].schedule) == 5
    assert {b.slot for b in dialog.timeline.canvas.bars} == {0}
    assert dialog.bottleneck.text() == want["cpu=1,gpu=1"].bottleneck


def test_bad_inputs_are_said_and_nothing_is_simulated(qtbot, make_window, tmp_path):
    (tmp_path / "gristmill.toml").write_text(FAN)
    window = make_window(tmp_path)
    window.actions["planner"].trigger()
    dialog = window.dialogs["planner"]
    dialog.gpus.setText("one")
    dialog.go.click()
    assert dialog.error.isVisible() and "GPU counts" in dialog.error.text()
    assert dialog.result is None and not dialog.busy


def test_clicking_a_point_of_a_curve_shows_its_schedule(qtbot, make_window, tmp_path):
    from PySide6.QtCore import Qt
    (tmp_path / "gristmill.toml").write_text(FAN)
    window = make_window(tmp_path)
    dialog = _open_planner(qtbot, window, gpus="1, 2")
    qtbot.waitExposed(dialog)
    qtbot.wait(200)          # the plot's first layout, before mapping a point to the screen
    item = next(i for i in dialog.plot.listDataItems() if i.name() == "2 GPUs")
    spot = item.scatter.points()[1]                       # cpu=2 on the 2-GPU curve
    view = dialog.plot.plotItem.vb
    at = dialog.plot.mapFromScene(view.mapViewToScene(spot.pos()))
    qtbot.mouseClick(dialog.plot.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: dialog.selected().label == "cpu=2,gpu=2", timeout=5_000)
    want = {p.label: p for p in _core(window, "cpu=1..4,gpu=2")}["cpu=2,gpu=2"]
    assert len(dialog.timeline.canvas.bars) == len(want.schedule)
    assert dialog.bottleneck.text() == want.bottleneck
