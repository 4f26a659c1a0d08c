"""The app sees changes on disk (with or without Watch), and Watch keeps targets up to date."""

from __future__ import annotations

import os
import time
from pathlib import Path

from gristmill.app.states import IdleState
from gristmill.core.events import RunStatus, TaskState

from conftest import process_alive, wait_run_over

BIRDS = ("tidy[data/raw/birds.csv]", "summarise[data/raw/birds.csv]", "report")


def touch_later(path: Path) -> None:
    later = time.time() + 2              # surely newer than the outputs just made
    os.utime(path, (later, later))


def test_a_touched_input_shows_its_downstream_stale_in_every_view_without_watch(
        qtbot, make_window, example):
    window = make_window(example)
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    tasks = window.bench.tasks
    assert all(tasks.state(n) is TaskState.DONE for n in BIRDS)
    assert not window.bench.watching
    run_id = window.bench.run.run_id

    touch_later(example / "data" / "raw" / "birds.csv")
    qtbot.waitUntil(lambda: tasks.state("report") is IdleState.STALE, timeout=10_000)
    for name in BIRDS:                   # table, graph and board all say "will run"
        assert tasks.state(name) is IdleState.STALE
        assert window.graph.items[name].state is IdleState.STALE
    assert not set(BIRDS) & window.board.names_on_board()
    assert "birds.csv" in tasks.reasons_text("tidy[data/raw/birds.csv]")
    other = "tidy[data/raw/harbour.csv]"
    assert tasks.state(other) is TaskState.DONE and other in window.board.names_on_board()
    # the header counts them, and the run they were done in is still the one shown
    # (the phony clean is run only when asked for: not counted as would run)
    assert tasks.idle_counts()[0] == 3
    qtbot.waitUntil(lambda: "3 would run" in window.board.outside.text(), timeout=2000)
    assert "3 would run" in window.graph.info.text()
    assert window.bench.run.run_id == run_id
    assert window.bench.run.state_of("report") is TaskState.DONE
    assert not window.bench.busy               # it rescanned; nothing ran


def test_the_watch_toggle_runs_now_then_exactly_what_a_change_makes_stale(
        qtbot, make_window, example, history):
    window = make_window(example)
    action = window.actions["watch"]
    assert action.isCheckable() and action.shortcut().toString() == "F7"
    assert action in window.toolbar.actions()
    assert action in next(m for m in window.menuBar().actions()
                          if m.text().replace("&", "") == "Run").menu().actions()
    action.trigger()                           # on: it runs at once
    assert action.isChecked() and window.bench.watching
    wait_run_over(qtbot, window)
    first = window.bench.run.run_id
    assert window.bench.run.status is RunStatus.SUCCEEDED and len(window.bench.run.plan) == 9

    touch_later(example / "data" / "raw" / "birds.csv")
    qtbot.waitUntil(lambda: window.bench.run.run_id != first, timeout=10_000)
    wait_run_over(qtbot, window)
    run = window.bench.run
    ran = {n for n in run.plan if run.state_of(n) is TaskState.DONE}
    assert ran == set(BIRDS)
    history.flush()
    runs = history.runs(str(example / "gristmill.toml"))
    assert [(r.started_by, r.changed) for r in runs] == [
        ("watch", ("data/raw/birds.csv",)), ("watch", ())]

    action.trigger()                           # off
    assert not action.isChecked() and not window.bench.watching
    touch_later(example / "data" / "raw" / "harbour.csv")
    qtbot.waitUntil(lambda: window.bench.tasks.state("report") is IdleState.STALE, timeout=10_000)
    assert window.bench.run.run_id == run.run_id and not window.bench.busy


def test_turning_watch_off_cancels_what_runs_and_leaves_no_process(qtbot, make_window, tmp_path):
    (tmp_path / "in.txt").write_text("x\n")
    (tmp_path / "gristmill.toml").write_text(
        '[workflow]\ndefault = ["slow"]\n'
        '[tasks.slow]\ncmd = "echo $$ > slow.pid; exec sleep 300"\n'
        'inputs = ["in.txt"]\noutputs = ["out.txt"]\n')
    window = make_window(tmp_path)
    window.actions["watch"].trigger()
    qtbot.waitUntil(lambda: (tmp_path / "slow.pid").exists()
                    and window.bench.run.state_of("slow") is TaskState.RUNNING, timeout=10_000)
    pid = int((tmp_path / "slow.pid").read_text())
    window.actions["watch"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.status is RunStatus.CANCELLED
    assert not process_alive(pid)
    assert not window.bench.watching and not window.actions["watch"].isChecked()


GATED = """\
[workflow]
default = ["slow", "other"]

[tasks.slow]
cmd = "echo partial > slow.out; while [ ! -e gate ]; do sleep 0.02; done; cp in.txt slow.out"
inputs = ["in.txt"]
outputs = ["slow.out"]

[tasks.other]
cmd = "while [ ! -e gate ]; do sleep 0.02; done; cp other.txt other.out"
inputs = ["other.txt"]
outputs = ["other.out"]
"""


def test_with_watch_a_change_to_a_running_tasks_input_restarts_just_it(qtbot, make_window, tmp_path):
    (tmp_path / "in.txt").write_text("old\n")
    (tmp_path / "other.txt").write_text("o\n")
    (tmp_path / "gristmill.toml").write_text(GATED)
    window = make_window(tmp_path)
    window.actions["watch"].trigger()
    run = window.bench.run
    qtbot.waitUntil(lambda: run.state_of("slow") is TaskState.RUNNING
                    and run.state_of("other") is TaskState.RUNNING, timeout=10_000)
    first = run.run_id
    (tmp_path / "in.txt").write_text("new\n")
    qtbot.waitUntil(lambda: run.tasks["slow"].attempt == 2
                    and run.state_of("slow") is TaskState.RUNNING, timeout=10_000)
    assert run.tasks["other"].attempt == 1 and run.state_of("other") is TaskState.RUNNING
    (tmp_path / "gate").write_text("")
    wait_run_over(qtbot, window)
    assert run.run_id == first and run.status is RunStatus.SUCCEEDED
    assert (tmp_path / "slow.out").read_text() == "new\n"
    assert [b.attempt for b in run.bars if b.task == "slow"] == [1, 2]


def test_with_watch_a_broken_edit_shows_the_banner_and_watching_goes_on(qtbot, make_window, example):
    window = make_window(example)
    window.actions["watch"].trigger()
    wait_run_over(qtbot, window)
    first = window.bench.run.run_id
    toml = example / "gristmill.toml"
    good = toml.read_text()
    toml.write_text(good.replace("[tasks.report]", "[tasks.report"))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10_000)
    assert "gristmill.toml:" in window.banner_text.text()
    assert window.bench.watching and window.actions["watch"].isChecked()
    toml.write_text(good)
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=10_000)
    touch_later(example / "data" / "raw" / "meadow.csv")
    qtbot.waitUntil(lambda: window.bench.run.run_id != first, timeout=10_000)
    wait_run_over(qtbot, window)
    run = window.bench.run
    assert {n for n in run.plan if run.state_of(n) is TaskState.DONE} == {
        "tidy[data/raw/meadow.csv]", "summarise[data/raw/meadow.csv]", "report"}
