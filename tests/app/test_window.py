"""The app driven through its actions, offscreen, with the real engine."""

import os
import time
from pathlib import Path

from PySide6.QtCore import Qt

from gristmill.app import prompts
from gristmill.app.settings import Settings
from gristmill.app.states import IdleState
from gristmill.core.events import RunStatus, TaskState

from conftest import process_alive, wait_for, wait_run_over

SHOTS = Path("/tmp/gristmill-shots")


def test_no_argument_shows_the_welcome_view_with_the_examples(window):
    assert window.windowTitle() == "Gristmill"
    assert window.stack.currentWidget() is window.welcome
    assert window.welcome.examples.count() >= 1
    assert not window.actions["run_default"].isEnabled()
    assert not window.windowIcon().isNull()


def test_every_action_has_a_tooltip_and_the_run_keys(window):
    for action in window.actions.values():
        assert action.toolTip(), action.objectName()
    assert window.actions["run_default"].shortcut().toString() == "F5"
    assert window.actions["open"].shortcut().toString() == "Ctrl+O"
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Edit", "Run", "View", "Tools", "Help"]


def example_item(window, name):
    examples = window.welcome.examples
    items = [examples.item(i) for i in range(examples.count())]
    return next(i for i in items if Path(i.data(Qt.ItemDataRole.UserRole + 1)).name == name)


def test_open_trust_and_run_the_bundled_example(qtbot, window, auto_answers):
    # Opening the example from the welcome view opens a writable copy.
    window.welcome.examples.itemActivated.emit(example_item(window, "pipeline"))
    wf = window.bench.workflow
    assert wf is not None and wf.name == "weather-pipeline"
    assert window.windowTitle() == "weather-pipeline — Gristmill"
    assert str(wf.root).startswith(os.environ["GRISTMILL_HOME"])
    # before any run: the scan's verdict, not a run state
    assert window.bench.tasks.state("report") is IdleState.STALE
    assert window.bench.tasks.run_state("report") is None
    assert "missing" in window.bench.tasks.reasons_text("report")
    assert sum(window.board.counts().values()) == 0
    qtbot.waitUntil(lambda: window.board.outside.text().startswith(
        "No run yet in this session (9 would run, 1 only when asked for)"),
                    timeout=2000)

    window.actions["run_default"].trigger()          # F5
    wait_run_over(qtbot, window)
    assert [p[0] for p in prompts.LOG].count(prompts.TRUST) == 1
    assert window.settings.is_trusted(wf.root)
    run = window.bench.run
    assert run.status is RunStatus.SUCCEEDED
    assert {run.state_of(n) for n in run.plan} == {TaskState.DONE}
    assert window.bench.tasks.state("report") is TaskState.DONE
    assert window.board.counts()[TaskState.DONE] == len(run.plan) == 9
    # the phony clean task was not in the run: no card, and "will run" (not "waiting") everywhere
    assert "clean" not in run.plan and "clean" not in window.board.names_on_board()
    assert window.bench.tasks.state("clean") is IdleState.STALE
    assert window.graph.items["clean"].state is IdleState.STALE
    qtbot.waitUntil(lambda: "Not in it: 1 (1 only when asked for)" in window.board.outside.text(), timeout=2000)
    assert (wf.root / "build" / "report.md").exists()
    assert len(run.bars) == len(run.plan)
    # the log of the selected task
    window.selection.set(["report"], "test")
    assert "report of 4 stations" in window.log.text.toPlainText()
    assert "attempt 1" in window.log.heading.text()
    # after the run the scan finds the outputs fresh, and a second F5 does not ask again
    assert not window.bench.decisions["report"].stale
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    assert [p[0] for p in prompts.LOG].count(prompts.TRUST) == 1
    assert window.bench.run.state_of("report") is TaskState.UP_TO_DATE
    assert window.board.counts()[TaskState.UP_TO_DATE] == 9


def test_declining_trust_runs_nothing(qtbot, window, example, auto_answers):
    auto_answers[prompts.TRUST] = False
    window.open_path(str(example))
    window.actions["run_default"].trigger()
    qtbot.wait(200)
    assert window.bench.run.status is None and not window.bench.busy
    assert not (example / "build").exists()
    assert not window.settings.is_trusted(example)


def test_plan_runs_nothing_and_needs_no_trust(qtbot, window, example):
    window.open_path(str(example))
    window.actions["plan"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.dry_run
    assert prompts.TRUST not in [p[0] for p in prompts.LOG]
    assert not (example / "build").exists()
    assert window.bench.run.state_of("report") is TaskState.WAITING


def test_run_selected_and_force(qtbot, window, example):
    window.settings.trust(example)
    window.open_path(str(example))
    name = "tidy[data/raw/birds.csv]"
    window.selection.set([name], "test")
    window.actions["run_selected"].trigger()
    wait_run_over(qtbot, window)
    assert set(window.bench.run.plan) == {name}
    assert window.bench.run.state_of(name) is TaskState.DONE
    window.actions["force_selected"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.state_of(name) is TaskState.DONE
    reasons = window.bench.run.tasks[name].reasons
    assert any("forced" in r.message for r in reasons)


def slow_workflow(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['[workflow]\nname = "slow"\n']
    for i in range(n):
        lines.append(f'[tasks.sleep{i}]\ncmd = "echo $$ > pid{i}; sleep 60 & echo $! > child{i}; wait"\n'
                     f'outputs = ["out{i}"]\n')
    (folder / "gristmill.toml").write_text("\n".join(lines))
    return folder


def _pids(folder: Path):
    out = []
    for p in folder.glob("*[0-9]"):
        if p.name.startswith(("pid", "child")):
            try:
                out.append(int(p.read_text().strip()))
            except ValueError:
                pass
    return out


def test_cancel_a_running_workflow_leaves_no_process(qtbot, window, tmp_path):
    folder = slow_workflow(tmp_path / "slow")
    window.settings.trust(folder)
    window.open_path(str(folder))
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: len(_pids(folder)) >= 4, timeout=15_000)
    assert window.actions["cancel"].isEnabled()
    pids = _pids(folder)
    assert all(process_alive(p) for p in pids)
    window.actions["cancel"].trigger()
    wait_run_over(qtbot, window, timeout=20_000)
    assert window.bench.run.status is RunStatus.CANCELLED
    assert wait_for(lambda: not any(process_alive(p) for p in pids), 10)
    assert not window.actions["cancel"].isEnabled()


def test_closing_during_a_run_asks_then_cancels_cleanly(qtbot, window, tmp_path, auto_answers):
    folder = slow_workflow(tmp_path / "slow", n=2)
    window.settings.trust(folder)
    window.open_path(str(folder))
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: len(_pids(folder)) >= 2, timeout=15_000)
    pids = _pids(folder)
    auto_answers[prompts.CLOSE_DURING_RUN] = False          # "Keep Running"
    window.close()
    qtbot.wait(200)
    assert window.isVisible() and window.bench.busy
    auto_answers[prompts.CLOSE_DURING_RUN] = True
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=20_000)
    assert not window.bench.busy
    assert window.bench.run.status is RunStatus.CANCELLED
    assert wait_for(lambda: not any(process_alive(p) for p in pids), 10)


def test_an_invalid_workflow_shows_its_error_and_reloads_when_fixed(qtbot, window, example):
    window.open_path(str(example))
    toml = example / "gristmill.toml"
    good = toml.read_text()
    assert window.bench.workflow.name == "weather-pipeline"
    toml.write_text(good.replace('[tasks.report]', '[tasks.report]\nbogus = 1'))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    error = window.bench.session.error
    assert error is not None and str(error).startswith(f"{toml}:")
    line, col = str(error).split(":")[1:3]
    assert line.isdigit() and col.isdigit()
    assert "bogus" in window.banner_text.text()
    # the banner alone says it: no dialog over it (issue 19)
    assert not any(p[0] == prompts.WORKFLOW_ERROR for p in prompts.LOG)
    # the last good state stays
    assert window.bench.workflow is not None and "report" in window.bench.workflow.tasks
    assert window.bench.tasks.rowCount() == 10
    time.sleep(0.01)
    toml.write_text(good)
    qtbot.waitUntil(lambda: not window.banner.isVisible(), timeout=5000)
    assert window.bench.session.error is None


def test_a_workflow_that_never_loaded_shows_its_error(qtbot, window, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "gristmill.toml").write_text('[tasks.a]\ncmd = "true"\noutputs = ["a"]\ninputs = ["nowhere.txt"]\n')
    window.open_path(str(folder))
    assert window.bench.workflow is None
    assert window.banner.isVisible()
    assert "gristmill.toml:" in window.banner_text.text()
    assert window.windowTitle() == "broken — Gristmill"
    assert any(p[0] == prompts.WORKFLOW_ERROR for p in prompts.LOG)


def test_opening_a_missing_folder_keeps_the_welcome_view(window, tmp_path):
    assert not window.open_path(str(tmp_path / "nothing-here"))
    assert window.stack.currentWidget() is window.welcome
    assert any(p[0] == prompts.WORKFLOW_ERROR for p in prompts.LOG)


def test_edit_task_dialog_round_trips_the_file_with_comments(qtbot, window, example):
    window.open_path(str(example))
    toml = example / "gristmill.toml"
    window.selection.set(["report"], "test")
    window.actions["edit_task"].trigger()
    dialog = window.dialogs["edit_task"]
    assert dialog.isVisible() and dialog.edits["name"].text() == "report"
    dialog.edits["timeout"].setText("later")
    assert "timeout" in dialog.validate()
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Save).isEnabled()
    dialog.edits["timeout"].setText("10m")
    dialog.edits["retries"].setText("1")
    assert dialog.save()
    text = toml.read_text()
    assert text.startswith("# A small data pipeline")
    assert "#   gristmill plan           # what would run, and why" in text
    assert 'timeout = "10m"' in text and "retries = 1" in text
    qtbot.waitUntil(lambda: window.bench.workflow.tasks["report"].timeout == 600, timeout=5000)
    # add a task
    window.actions["add_task"].trigger()
    add = window.dialogs["edit_task"]
    add.edits["name"].setText("archive")
    add.edits["commands"].setPlainText("tar czf build/report.tgz build/report.md")
    add.edits["inputs"].setPlainText("build/report.md")
    add.edits["outputs"].setPlainText("build/report.tgz")
    assert add.save()
    qtbot.waitUntil(lambda: "archive" in window.bench.workflow.tasks, timeout=5000)
    assert window.bench.graph.deps("archive") == ("report",)


def test_preferences_persist_across_restarts(qtbot, make_window):
    w = make_window()
    w.actions["preferences"].trigger()
    dialog = w.dialogs["preferences"]
    dialog.jobs.setValue(3)
    dialog.mem.setText("lots")
    assert not dialog.save()
    dialog.mem.setText("8GB")
    dialog.keep_days.setValue(7)
    assert dialog.save()
    w.resize(700, 500)
    w.close()
    again = make_window()
    prefs = again.settings.preferences
    assert (prefs.jobs, prefs.mem, prefs.keep_days) == (3, "8GB", 7)
    assert again.bench.capacity().jobs == 3 and again.bench.capacity().mem == 8_000_000_000
    assert again.size().width() == 700
    assert Settings().preferences.jobs == 3


def test_recent_workflows_are_remembered(make_window, example):
    w = make_window(str(example))
    w.close()
    again = make_window()
    assert again.settings.recent[0] == str((example / "gristmill.toml").resolve())
    assert again.welcome.recent.count() == 1


def test_explain_says_why_in_plain_words(window, example):
    window.open_path(str(example))
    window.selection.set(["report"], "test")
    window.actions["explain"].trigger()
    dialog = window.dialogs["explain"]
    headings = dict(dialog.sections)
    assert headings["Will it run?"].startswith("Yes")
    assert "build/report.md is missing" in headings["Why"]
    assert "summarise[data/raw/birds.csv]" in headings["Needs"]
    assert headings["Isolation"] == "process (a plain process)"


def test_clean_runs_the_workflows_own_clean_task_after_asking(qtbot, window, example, auto_answers):
    window.settings.trust(example)
    window.open_path(str(example))
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    report = example / "build" / "report.md"
    assert report.exists()
    default_run = window.bench.run.run_id
    # declining runs nothing
    auto_answers[prompts.CLEAN_TASK] = False
    window.actions["clean"].trigger()
    qtbot.wait(100)
    assert report.exists() and not window.bench.busy and window.bench.run.run_id == default_run
    prompt = prompts.LOG[-1]
    assert prompt[:2] == (prompts.CLEAN_TASK, "Run the “clean” task?")
    assert "“clean” task of “weather-pipeline”" in prompt[2] and "$ rm -rf build" in prompt[2]
    assert prompts.CLEAN not in [p[0] for p in prompts.LOG]       # it never offers to remove outputs itself
    # accepting runs exactly that task
    auto_answers[prompts.CLEAN_TASK] = True
    window.actions["clean"].trigger()
    qtbot.waitUntil(lambda: window.bench.run.run_id != default_run, timeout=3000)
    wait_run_over(qtbot, window)
    run = window.bench.run
    assert run.status is RunStatus.SUCCEEDED and run.plan == ("clean",)
    assert run.state_of("clean") is TaskState.DONE
    assert not (example / "build").exists()
    assert (example / "data" / "raw" / "birds.csv").exists()
    # the rest was not in this run: it shows the fresh scan ("will run", output missing), not "waiting"
    tasks = window.bench.tasks
    assert tasks.run_state("report") is None and tasks.state("report") is IdleState.STALE
    assert "build/report.md is missing" in tasks.reasons_text("report")
    assert window.board.names_on_board() == {"clean"}


def two_outputs_workflow(folder: Path) -> Path:
    """A workflow without a clean task: two outputs (one in a folder) from one input."""
    folder.mkdir(parents=True)
    (folder / "words.txt").write_text("one two three\n")
    (folder / "gristmill.toml").write_text(
        '[workflow]\nname = "words"\n\n'
        '[tasks.count]\ncmd = "wc -w < words.txt > count.txt"\ninputs = ["words.txt"]\noutputs = ["count.txt"]\n\n'
        '[tasks.upper]\ncmd = "tr a-z A-Z < words.txt > out/upper.txt"\ninputs = ["words.txt"]\n'
        'outputs = ["out/upper.txt"]\n')
    return folder


def test_clean_without_a_clean_task_removes_declared_outputs_after_asking(qtbot, window, tmp_path,
                                                                          auto_answers):
    folder = two_outputs_workflow(tmp_path / "words")
    window.settings.trust(folder)
    window.open_path(str(folder))
    assert "clean" not in window.bench.workflow.tasks
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    outputs = [folder / "count.txt", folder / "out" / "upper.txt"]
    assert all(p.exists() for p in outputs)
    auto_answers[prompts.CLEAN] = False
    window.actions["clean"].trigger()
    qtbot.wait(100)
    assert all(p.exists() for p in outputs)
    prompt = prompts.LOG[-1]
    assert prompt == (prompts.CLEAN, "Remove outputs?", "Remove 2 declared outputs of “words”?")
    auto_answers[prompts.CLEAN] = True
    window.actions["clean"].trigger()
    qtbot.waitUntil(lambda: not any(p.exists() for p in outputs), timeout=3000)
    assert (folder / "words.txt").read_text() == "one two three\n"       # inputs are kept
    assert (folder / "out").is_dir()                                     # only declared outputs go
    assert not window.bench.busy and prompts.CLEAN_TASK not in [p[0] for p in prompts.LOG]
    # the rescan after removing: both will run again, because their outputs are missing
    tasks = window.bench.tasks
    for name, out in (("count", "count.txt"), ("upper", "out/upper.txt")):
        assert window.bench.decisions[name].stale
        assert f"{out} is missing" in tasks.reasons_text(name)
    assert tasks.data(tasks.index(tasks.row_of("count"), 6)) == "missing"
    # nothing left to clean: it says so and asks nothing
    asked = len(prompts.LOG)
    window.actions["clean"].trigger()
    qtbot.wait(50)
    assert len(prompts.LOG) == asked


def test_run_history_opens_a_past_run(qtbot, window, example):
    window.settings.trust(example)
    window.open_path(str(example))
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    run_id = window.bench.run.run_id
    window.actions["history"].trigger()
    dialog = window.dialogs["history"]
    assert dialog.model.rowCount() >= 1 and dialog.model.index(0, 3).data() == "succeeded"
    dialog.open_button.click()
    assert window.past_run_id == run_id
    assert window.tabs.currentWidget() is window.timeline
    assert len(window.timeline.canvas.bars) == 9
    window.selection.set(["report"], "test")
    assert "report of 4 stations" in window.log.text.toPlainText()
    window.timeline.back.click()
    assert window.past_run_id is None


def _prompt_box(qtbot, name):
    from PySide6.QtWidgets import QApplication, QMessageBox
    found = []

    def visible():
        found[:] = [w for w in QApplication.topLevelWidgets()
                    if isinstance(w, QMessageBox) and w.objectName() == name and w.isVisible()]
        return bool(found)
    qtbot.waitUntil(visible, timeout=3000)
    return found[0]


def test_trust_prompt_enter_trusts_and_runs_esc_declines(qtbot, window, example, auto_answers):
    from PySide6.QtCore import Qt
    del auto_answers[prompts.TRUST]                # the real, non-blocking question
    window.open_path(str(example))
    window.actions["run_default"].trigger()
    box = _prompt_box(qtbot, "prompt-trust")
    assert not window.bench.busy and window.bench.run.status is None     # nothing runs before yes
    qtbot.keyClick(box, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=3000)
    qtbot.wait(50)
    assert window.bench.run.status is None and not window.settings.is_trusted(example)
    window.actions["run_default"].trigger()
    box = _prompt_box(qtbot, "prompt-trust")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    wait_run_over(qtbot, window)
    assert window.bench.run.status is RunStatus.SUCCEEDED
    assert window.settings.is_trusted(example)


def test_help_system_check_shows_what_gristmill_doctor_says(qtbot, window):
    from gristmill.core.run.doctor import checks
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    entry = next(a for a in help_menu.actions() if a.text().replace("&", "") == "System Check")
    entry.trigger()
    dialog = window.dialogs["system_check"]
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.text.toPlainText().startswith("What this machine"),
                    timeout=30000)
    text = dialog.text.toPlainText()
    for check in checks():
        assert f" {check.name}: " in text
    assert "enables:" in text


def test_a_run_without_cgroups_says_in_the_status_bar_what_is_not_enforced(
        qtbot, window, tmp_path, monkeypatch):
    from gristmill.core.run import cgroups
    monkeypatch.setenv(cgroups.ENV, "off")
    cgroups.offer(refresh=True)
    monkeypatch.setattr(cgroups, "_told", set())
    try:
        folder = tmp_path / "wf"
        folder.mkdir()
        (folder / "gristmill.toml").write_text('[tasks.a]\ncmd = "echo a > a.txt"\n'
                                               'outputs = ["a.txt"]\n')
        window.settings.trust(folder)
        window.open_path(str(folder))
        window.actions["run_default"].trigger()
        wait_run_over(qtbot, window)
        assert window.bench.run.status is RunStatus.SUCCEEDED
        notice = window.notice
        assert notice.isVisible()
        assert notice.text().startswith("⚠ no cgroup for tasks (GRISTMILL_CGROUPS=off)")
        assert notice.toolTip().startswith("no cgroup for tasks (GRISTMILL_CGROUPS=off)")
        assert "declared mem is enforced by sampling" in notice.toolTip()
    finally:
        monkeypatch.undo()
        cgroups.offer(refresh=True)
