"""run_app is what `gristmill [PATH]` calls; a busy engine never freezes the window."""

import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from gristmill.app import prompts
from gristmill.app.main import run_app
from gristmill.app.window import MainWindow
from gristmill.core.events import RunStatus, TaskState

from conftest import wait_run_over


def test_run_app_opens_the_path_and_returns_when_closed(qapp, example):
    seen = {}

    def close():
        for w in QApplication.topLevelWidgets():
            if isinstance(w, MainWindow) and w.isVisible():
                seen["title"] = w.windowTitle()
                seen["tasks"] = w.bench.tasks.rowCount()
                w.close()
        QTimer.singleShot(2000, QApplication.quit)        # in case another window lingers

    QTimer.singleShot(300, close)
    assert run_app(str(example)) == 0
    assert seen == {"title": "weather-pipeline — Gristmill", "tasks": 10}


def test_a_run_that_cannot_start_says_why(qtbot, window, tmp_path):
    folder = tmp_path / "greedy"
    folder.mkdir()
    (folder / "gristmill.toml").write_text(
        '[tasks.big]\ncmd = "true"\noutputs = ["x"]\nresources = { cpu = 100000 }\n')
    window.settings.trust(folder)
    window.open_path(str(folder))
    if window.bench.workflow is None:          # the loader may already refuse it
        print("loader refused:", prompts.LOG[-1][2])
        assert any(p[0] == prompts.WORKFLOW_ERROR for p in prompts.LOG)
        return
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: not window.bench.busy and any(p[0] == prompts.RUN_ERROR for p in prompts.LOG),
                    timeout=10_000)
    message = next(p[2] for p in prompts.LOG if p[0] == prompts.RUN_ERROR)
    assert "cpu" in message and "gristmill.toml" in message


def test_hundreds_of_tasks_a_second_keep_the_window_responsive(qtbot, window, tmp_path):
    folder = tmp_path / "many"
    (folder / "items").mkdir(parents=True)
    n = 400
    for i in range(n):
        (folder / "items" / f"{i}.txt").write_text("x")
    (folder / "gristmill.toml").write_text(
        '[tasks.copy]\nforeach = "items/*.txt"\ncmd = "cp {item} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["out/{stem}.txt"]\nresources = { cpu = 0.1 }\n\n'
        '[tasks.all]\ncmd = "ls out | wc -l > count.txt"\ninputs = ["out/*.txt"]\noutputs = ["count.txt"]\n')
    window.settings.trust(folder)
    window.open_path(str(folder))
    assert window.bench.tasks.rowCount() == n + 1
    gaps = []
    last = [time.monotonic()]

    def beat():
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    heart = QTimer()
    heart.timeout.connect(beat)
    heart.start(10)
    batches = []
    window.bench.changed.connect(batches.append)
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window, timeout=120_000)
    heart.stop()
    assert window.bench.run.status is RunStatus.SUCCEEDED
    assert window.bench.run.state_counts()[TaskState.DONE] == n + 1
    assert window.board.counts()[TaskState.DONE] == n + 1
    events = 3 * (n + 1)
    assert len(batches) < events / 4          # many events per batch, not one update per event
    print(f"\n{len(batches)} batches for {events} events; longest stall {max(gaps)*1000:.0f} ms")
    assert max(gaps) < 1.0                    # the event loop never stalled
