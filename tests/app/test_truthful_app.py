"""The app tells the truth (issue 22): cancelling one task, the status bar's books, a live
Explain, every error of a file, what the default targets would run, sizes with units.
Driven through the app's own actions, offscreen, with the real engine."""

from __future__ import annotations

from pathlib import Path

from gristmill.core.events import RunStatus, TaskState

from conftest import wait_run_over


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gristmill.toml").write_text(text)
    return folder


def test_cancel_selected_task_cancels_it_alone_and_the_run_goes_on(qtbot, window, tmp_path):
    # One CPU: "long" (the head of the longest chain) starts first; the others wait for it.
    folder = _write(tmp_path / "cancel", '''
[capacity]
cpu = 1

[tasks.long]
cmd = "echo $$ > long.pid; sleep 300"
phony = true

[tasks.after_long]
cmd = "touch after"
outputs = ["after"]
after = ["long"]

[tasks.one]
cmd = "touch one"
outputs = ["one"]

[tasks.two]
cmd = "touch two"
outputs = ["two"]

[workflow]
default = ["after_long", "one", "two"]
''')
    window.settings.trust(folder)
    window.open_path(str(folder))
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: (folder / "long.pid").exists()
                    and window.bench.run.state_of("long") is TaskState.RUNNING, timeout=15_000)
    window.selection.set(["long"], "test")
    assert window.actions["cancel_task"].isEnabled()
    window.actions["cancel_task"].trigger()
    wait_run_over(qtbot, window)
    run = window.bench.run
    assert run.state_of("long") is TaskState.CANCELLED
    assert run.state_of("after_long") is TaskState.SKIPPED
    assert run.state_of("one") is TaskState.DONE and run.state_of("two") is TaskState.DONE
    assert (folder / "one").exists() and (folder / "two").exists()
    assert run.status is RunStatus.SUCCEEDED
    # said in words: the status bar, the board's column, the table's state
    assert window.status.eta.text().startswith("succeeded, with 1 task cancelled in ")
    assert "1 cancelled" in window.status.counts.text()
    assert window.board.counts()[TaskState.CANCELLED] == 1
    assert window.board.counts()[TaskState.FAILED] == 0
    assert window.bench.tasks.state("long") is TaskState.CANCELLED


def test_edit_task_refuses_a_bare_number_for_memory_and_names_the_units(qtbot, window, example):
    # Typing "1" for Memory saved mem = "1" (one byte); the next run killed the task.
    window.open_path(str(example))
    toml = example / "gristmill.toml"
    before = toml.read_text()
    window.selection.set(["report"], "test")
    window.actions["edit_task"].trigger()
    dialog = window.dialogs["edit_task"]
    dialog.edits["mem"].setText("1")
    save = dialog.buttons.button(dialog.buttons.StandardButton.Save)
    assert not save.isEnabled()
    message = dialog.errors["mem"]
    assert message.isVisible()
    assert message.text() == ("size '1' has no unit: add one of B, KB, MB, GB, TB, KiB, MiB, "
                              'GiB, TiB (e.g. "1MB" or "1GB")')
    assert not dialog.save()
    assert toml.read_text() == before
    dialog.edits["mem"].setText("1GB")
    assert save.isEnabled() and not message.isVisible()
    assert dialog.save()
    assert 'mem = "1GB"' in toml.read_text()
    qtbot.waitUntil(lambda: window.bench.workflow.tasks["report"].resources.mem == 1_000_000_000,
                    timeout=5000)


def test_preferences_refuse_a_bare_number_for_memory(qtbot, window):
    window.actions["preferences"].trigger()
    dialog = window.dialogs["preferences"]
    dialog.mem.setText("8")
    assert not dialog.save()
    assert "size '8' has no unit: add one of B, KB" in dialog.mem_error.text()
