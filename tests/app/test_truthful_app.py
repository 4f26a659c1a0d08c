"""The app tells the truth (issues 22 and 19): cancelling one task, the status bar's books, a
live Explain, every error of a file, what the default targets would run, sizes with units;
cancelled runs, plans, broken folders, the live log, all-phony workflows. Driven through the
app's own actions, offscreen, with the real engine."""

from __future__ import annotations

from pathlib import Path

from gristmill.app import prompts
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


def _events_of_a_run(folder: Path, targets=()) -> list:
    """Every event a real engine run of the workflow in ``folder`` publishes, in order."""
    from gristmill.core.events import EventBus
    from gristmill.core.load.loader import load_workflow
    from gristmill.core.run.engine import Engine, RunOptions
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    Engine(load_workflow(folder), bus, options=RunOptions(structured_log=False)).run(list(targets))
    return events


def test_the_status_bar_shows_the_engines_books_after_every_event(qtbot, tmp_path):
    # 2 CPUs, 40 tasks of 0.25 CPU: at most 8 at once. The engine starts the tasks a
    # finished one's slot lets in before it says that one is done: the status bar read
    # "CPU 3.75/2 · 13 running" in between.
    from PySide6.QtWidgets import QStatusBar
    from gristmill.app.runstate import RunState
    from gristmill.app.views.status import RunStatusWidgets
    from gristmill.core.decide.capacity import Capacity
    tasks = "".join(f'''
[tasks.t{i}]
cmd = "touch t{i}"
outputs = ["t{i}"]
resources = {{ cpu = 0.25 }}
''' for i in range(40))
    folder = _write(tmp_path / "packed", "[capacity]\ncpu = 2\n" + tasks)
    events = _events_of_a_run(folder)
    bar = QStatusBar()
    qtbot.addWidget(bar)
    status = RunStatusWidgets(bar)
    run = RunState()
    capacity = Capacity(cpu=2, mem=8 * 2**30, gpu=0)
    shown_cpu, shown_running = [], []
    for ev in events:
        run.apply([ev])
        status.update(run, {}, capacity)
        cpu_text = status.capacity.text().split(" · ")[0]          # "CPU 1.25/2"
        shown_cpu.append(float(cpu_text.removeprefix("CPU ").split("/")[0]))
        counts = dict(reversed(part.split(" ", 1)) for part in status.counts.text().split(" · ")
                      if part)
        shown_running.append(int(counts.get("running", 0)))
    assert max(shown_cpu) == 2 and max(shown_running) == 8
    assert shown_cpu[-1] == 0 and shown_running[-1] == 0
    assert status.counts.text() == "40 done"


def test_an_open_explain_follows_its_task_live(qtbot, window, tmp_path):
    # Explain opened before the run said "Will it run? Yes" after the task had run.
    folder = _write(tmp_path / "live", '''
[tasks.slow]
cmd = "while [ ! -e go ]; do sleep 0.05; done; touch slow.out"
outputs = ["slow.out"]
''')
    window.settings.trust(folder)
    window.open_path(str(folder))
    window.selection.set(["slow"], "test")
    window.actions["explain"].trigger()
    dialog = window.dialogs["explain"]

    def answer() -> str:
        return dict(dialog.sections)["Will it run?"]
    assert answer().startswith("Yes, the next time")
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: answer() == "It is running now (attempt 1).", timeout=15_000)
    assert "running" in dict(dialog.sections)["In the current run"]
    (folder / "go").touch()
    wait_run_over(qtbot, window)
    # after the run and its scan: the scan's verdict again, and what the run did
    qtbot.waitUntil(lambda: answer() == "No: it is up to date.", timeout=15_000)
    assert dict(dialog.sections)["In the current run"].startswith("done (exit code 0, attempt 1)")
    assert dialog.isVisible() and dialog.windowTitle() == "Explain — slow"
    assert dialog.when.text().startswith("Live: follows the task · as of ")


def test_the_banner_lists_every_error_of_the_file(qtbot, window, tmp_path):
    folder = _write(tmp_path / "typos", '[tasks.a]\ncmd = "true"\nouputs = ["x"]\nretires = 2\n')
    window.open_path(str(folder))
    text = window.banner_text.text()
    assert "<b>The workflow has 2 errors</b>" in text
    toml = folder / "gristmill.toml"
    assert (f"<code>{toml}:3:1: unknown key &#x27;ouputs&#x27; in tasks.a (did you mean "
            f"&#x27;outputs&#x27;?)</code><br><code>{toml}:4:1: unknown key &#x27;retires&#x27; "
            f"in tasks.a (did you mean &#x27;retries&#x27;?)</code>") in text


def test_opening_a_broken_folder_shows_that_folder_not_the_previous_tasks(qtbot, window, example,
                                                                          tmp_path):
    # Issue 19: the previous workflow's tasks were shown under the broken folder's name.
    window.settings.trust(example)
    window.open_path(str(example))
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    window.selection.set(["report"], "test")
    assert window.bench.tasks.rowCount() == 10
    broken = _write(tmp_path / "broken", '[tasks.a]\ncmd = "true"\nouputs = ["x"]\n')
    window.open_path(str(broken))
    assert window.windowTitle() == "broken — Gristmill"
    assert window.banner.isVisible()
    assert "nothing of it can be shown until it loads" in window.banner_text.text()
    assert "ouputs" in window.banner_text.text()
    assert window.bench.tasks.rowCount() == 0
    assert window.graph.items == {} and window.graph.info.text() == ""
    assert sum(window.board.counts().values()) == 0
    assert window.bench.run.status is None and window.status.counts.text() == ""
    assert window.selection.names == ()
    # fixed: it loads, as itself
    (broken / "gristmill.toml").write_text('[tasks.a]\ncmd = "true"\noutputs = ["x"]\n')
    window.reload()
    assert window.bench.workflow.root == broken.resolve() and window.bench.tasks.rowCount() == 1
    assert not window.banner.isVisible()


PHONY_OUTSIDE = '''
[workflow]
default = ["build"]

[tasks.build]
cmd = "touch out"
outputs = ["out"]

[tasks.clean]
cmd = "rm -f out"
phony = true

[tasks.install]
cmd = "true"
phony = true
'''


def test_phony_tasks_outside_the_default_are_not_counted_as_would_run(qtbot, window, tmp_path):
    from gristmill.app.views.board import describe_outside
    folder = _write(tmp_path / "phony", PHONY_OUTSIDE)
    window.settings.trust(folder)
    window.open_path(str(folder))
    assert describe_outside(window.bench.tasks).startswith(
        "No run yet in this session (1 would run, 2 only when asked for). ")
    assert window.graph.info.text().endswith(
        "greyed, outside the run: 1 would run (dashed), 2 only when asked for (dashed)")
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.status is RunStatus.SUCCEEDED and (folder / "out").exists()
    assert describe_outside(window.bench.tasks) == (
        "1 task in this run. Not in it: 2 (2 only when asked for), shown greyed in the task "
        "table and the graph.")
    assert "would run" not in window.graph.info.text()


def test_a_workflow_of_phony_tasks_alone_runs_every_task_on_f5(qtbot, window, tmp_path):
    # Issue 19: the table said "will run" for each, and F5 ran nothing.
    folder = _write(tmp_path / "allphony", '''
[tasks.hello]
cmd = "echo hi > said"
phony = true

[tasks.bye]
cmd = "echo bye >> said"
phony = true
after = ["hello"]
''')
    window.settings.trust(folder)
    window.open_path(str(folder))
    from gristmill.app.views.board import describe_outside
    assert describe_outside(window.bench.tasks).startswith("No run yet in this session (2 would run)")
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    run = window.bench.run
    assert run.state_of("hello") is TaskState.DONE and run.state_of("bye") is TaskState.DONE
    assert (folder / "said").read_text() == "hi\nbye\n"


def test_a_cancelled_run_shows_its_tasks_cancelled_not_failed(qtbot, window, tmp_path):
    # Issue 19: a cancelled run's tasks landed under Failed, the status bar said
    # "2 failed", progress 100%, Explain "failed • cancelled cancelled".
    folder = _write(tmp_path / "naps", '''
[capacity]
cpu = 2

[tasks.nap]
foreach = ["a", "b"]
cmd = "echo $$ > {item}.pid; sleep 300"
phony = true

[tasks.after]
cmd = "touch after"
outputs = ["after"]
after = ["nap"]
''')
    window.settings.trust(folder)
    window.open_path(str(folder))
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: window.bench.run.running_count() == 2, timeout=15_000)
    window.actions["cancel"].trigger()
    wait_run_over(qtbot, window)
    run = window.bench.run
    assert run.status is RunStatus.CANCELLED
    assert run.state_of("nap[a]") is TaskState.CANCELLED
    assert run.state_of("nap[b]") is TaskState.CANCELLED
    assert run.state_of("after") is TaskState.SKIPPED
    counts = window.board.counts()
    assert counts[TaskState.CANCELLED] == 2 and counts[TaskState.FAILED] == 0
    assert window.status.counts.text() == "1 skipped · 2 cancelled"
    assert window.status.eta.text().startswith("cancelled: 2 stopped, 1 not started, in ")
    assert window.status.progress.value() == 0          # nothing got done
    window.selection.set(["nap[b]"], "test")
    window.actions["explain"].trigger()
    sections = dict(window.dialogs["explain"].sections)
    assert sections["In the current run"] == "cancelled\n• stopped when the run was cancelled"
    assert sections["Will it run?"].startswith("Yes")
    window.selection.set(["after"], "test")
    assert "failed" not in dict(window.dialogs["explain"].sections)["In the current run"]


def test_a_plan_is_shown_as_a_plan_not_as_a_finished_run(qtbot, window, tmp_path):
    # Issue 19: Plan (F6) reported "Run succeeded · 100% · 0 ms".
    folder = _write(tmp_path / "plan", PHONY_OUTSIDE + '''
[tasks.report]
cmd = "cat out > report"
inputs = ["out"]
outputs = ["report"]
''')
    (folder / "gristmill.toml").write_text((folder / "gristmill.toml").read_text().replace(
        'default = ["build"]', 'default = ["report"]'))
    window.open_path(str(folder))
    window.actions["plan"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.dry_run
    assert not (folder / "out").exists()
    assert window.status.eta.text() == "Plan: 2 would run; nothing ran"
    assert not window.status.progress.isVisible() and "succeeded" not in window.status.eta.text()
    assert window.status.counts.text() == "2 would run"
    assert window.timeline.title.text().endswith("plan: 2 would run; nothing ran")
    # the plan in run order, with why, where the log shows the whole run
    assert window.log.whole_run
    assert window.log.text.toPlainText().splitlines() == [
        "   1. build", "        because output out is missing",
        "   2. report", "        because output report is missing",
        "        because it reads the output of build, which will run",
        "Plan: 2 would run; nothing ran."]
    window.selection.set(["report"], "test")
    window.actions["explain"].trigger()
    assert dict(window.dialogs["explain"].sections)["In the plan (dry run)"] == "would run"


def test_the_live_log_never_doubles_lines(qtbot, window, tmp_path):
    # Issue 19: a task's second run showed "tick 1, tick 1, tick 2"; "Whole run" showed
    # start lines twice. A run's first batch of events (its start, the task's start and
    # first lines) was shown by the reload at the run's start, then appended again.
    folder = _write(tmp_path / "ticks", '[tasks.tick]\ncmd = "echo tick 1; echo tick 2"\nphony = true\n')
    window.open_path(str(folder))
    window.selection.set(["tick"], "test")
    for whole in (False, False, True):
        if whole:
            window.log.show_whole_run()
        events = _events_of_a_run(folder)           # a real run's events, in one batch
        window.bench.bridge.feed(events)
        qtbot.waitUntil(lambda: window.bench.run.run_id == events[0].run_id
                        and window.bench.run.status is RunStatus.SUCCEEDED, timeout=10_000)
        expected = ["[tick] tick 1", "[tick] tick 2"] if whole else ["tick 1", "tick 2"]
        assert window.log.text.toPlainText().splitlines() == expected


def test_a_folder_with_no_workflow_leaves_the_open_workflow_as_it_was(qtbot, window, example,
                                                                      tmp_path):
    # The banner said the open workflow "has an error", naming the other folder.
    window.open_path(str(example))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not window.open_path(str(empty))
    assert not window.banner.isVisible()
    assert window.windowTitle() == "weather-pipeline — Gristmill"
    assert window.bench.workflow.name == "weather-pipeline" and window.bench.tasks.rowCount() == 10
    assert prompts.LOG[-1][:2] == (prompts.WORKFLOW_ERROR, "Nothing to open")
    assert f"no gristmill.toml, gristmill.json or Makefile in {empty}" in prompts.LOG[-1][2]
    window.reload()                  # the open workflow is not the one in error
    assert not window.banner.isVisible() and window.bench.session.error is None


def test_a_first_run_says_its_eta_is_unknown_then_a_guess(qtbot, window, tmp_path):
    # Issue 19: with no history, progress sat at 38% while the ETA grew from 6 s to 23 s.
    folder = _write(tmp_path / "first", '''
[capacity]
cpu = 1

[tasks.one]
cmd = "touch one.out"
outputs = ["one.out"]

[tasks.two]
cmd = "while [ ! -e go ]; do sleep 0.05; done; touch two.out"
outputs = ["two.out"]
inputs = ["one.out"]
''')
    window.settings.trust(folder)
    window.open_path(str(folder))
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: window.bench.run.state_of("two") is TaskState.RUNNING, timeout=15_000)
    window._refresh_status()
    assert window.status.progress.value() == 500            # one of two tasks done
    assert window.status.eta.text().startswith("ETA ~")
    assert window.status.eta.text().endswith(" (a guess: no history for 2 tasks)")
    (folder / "go").touch()
    wait_run_over(qtbot, window)
