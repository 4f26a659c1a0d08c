"""A folder with only a Makefile opens, draws and runs like any workflow (GNU make reads it)."""

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from gristmill.app import prompts, resources
from gristmill.app.states import IdleState
from gristmill.core.events import RunStatus, TaskState

from conftest import wait_run_over

needs_make = pytest.mark.skipif(shutil.which("make") is None,
                                reason="GNU make is not installed: Makefile workflows are read by make")

MAKEFILE = """\
# Two files from one input, and a clean target.
.PHONY: all clean

all: out/upper.txt out/count.txt

out/upper.txt: words.txt | out
\ttr a-z A-Z < words.txt > $@

out/count.txt: out/upper.txt
\twc -w < out/upper.txt > $@

out:
\tmkdir -p $@

clean:
\trm -rf out
"""


def makefile_folder(root: Path) -> Path:
    folder = root / "words-make"
    folder.mkdir()
    (folder / "Makefile").write_text(MAKEFILE)
    (folder / "words.txt").write_text("one two three\n")
    return folder


@needs_make
def test_a_makefile_only_folder_opens_draws_and_runs(qtbot, window, tmp_path, auto_answers):
    folder = makefile_folder(tmp_path)
    assert window.open_path(str(folder))            # reading a Makefile asks for trust first
    qtbot.waitUntil(lambda: window.bench.workflow is not None, timeout=10000)
    assert [p[0] for p in prompts.LOG] == [prompts.TRUST]
    wf = window.bench.workflow
    assert wf.kind == "make" and wf.path.name == "Makefile" and wf.default == ("all",)
    assert window.windowTitle() == "words-make — Gristmill"
    assert set(wf.tasks) >= {"all", "out/upper.txt", "out/count.txt", "out", "clean"}
    assert not window.actions["edit_task"].isEnabled() and not window.actions["add_task"].isEnabled()
    # drawn: every task a graph node, edges from the prerequisites; nothing on the board yet
    assert set(window.graph.items) == set(wf.tasks)
    assert ("out/upper.txt", "out/count.txt") in window.graph.layout_.edges
    assert window.bench.tasks.state("out/count.txt") is IdleState.STALE
    assert sum(window.board.counts().values()) == 0

    window.actions["run_default"].trigger()          # F5: trusted when opened, so it runs
    wait_run_over(qtbot, window)
    assert [p[0] for p in prompts.LOG].count(prompts.TRUST) == 1
    run = window.bench.run
    assert run.status is RunStatus.SUCCEEDED
    assert (folder / "out" / "upper.txt").read_text() == "ONE TWO THREE\n"
    assert (folder / "out" / "count.txt").read_text().strip() == "3"
    assert {run.state_of(n) for n in ("out/upper.txt", "out/count.txt", "all")} == {TaskState.DONE}
    assert window.board.counts()[TaskState.DONE] == len(run.plan)
    assert window.bench.tasks.state("clean") is IdleState.STALE       # not in the run
    window.selection.set(["out/upper.txt"], "test")
    assert window.log.heading.text() == "out/upper.txt — attempt 1"

    # again: the files are up to date, as make would say
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.state_of("out/count.txt") is TaskState.UP_TO_DATE
    assert window.bench.run.state_of("out/upper.txt") is TaskState.UP_TO_DATE

    # Clean runs make's own clean target, after asking
    window.actions["clean"].trigger()
    qtbot.waitUntil(lambda: window.bench.run.plan == ("clean",), timeout=3000)
    wait_run_over(qtbot, window)
    assert any(p[0] == prompts.CLEAN_TASK and "$ rm -rf out" in p[2] for p in prompts.LOG)
    assert not (folder / "out").exists()
    assert (folder / "words.txt").exists()


@needs_make
def test_clean_runs_a_makefiles_clean_rule_even_when_not_declared_phony(qtbot, window, tmp_path):
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "Makefile").write_text("all: a.txt\n\na.txt:\n\techo hi > a.txt\n\nclean:\n\trm -f a.txt\n")
    window.settings.trust(folder)
    window.open_path(str(folder))
    assert not window.bench.workflow.tasks["clean"].phony
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    assert (folder / "a.txt").exists()
    window.actions["clean"].trigger()
    qtbot.waitUntil(lambda: window.bench.run.plan == ("clean",), timeout=3000)
    wait_run_over(qtbot, window)
    assert prompts.LOG[-1][0] == prompts.CLEAN_TASK and "$ rm -f a.txt" in prompts.LOG[-1][2]
    assert not (folder / "a.txt").exists() and (folder / "Makefile").exists()


def _example_item(window, name):
    examples = window.welcome.examples
    for i in range(examples.count()):
        item = examples.item(i)
        if Path(item.data(Qt.ItemDataRole.UserRole + 1)).name == name:
            return item
    return None


@needs_make
def test_the_make_c_example_is_offered_drawn_and_builds(qtbot, window, auto_answers):
    item = _example_item(window, "make-c")
    assert item is not None and "Makefile" in item.text()
    window.welcome.examples.itemActivated.emit(item)
    qtbot.waitUntil(lambda: window.bench.workflow is not None, timeout=10000)
    assert [p[0] for p in prompts.LOG] == [prompts.TRUST]
    wf = window.bench.workflow
    assert wf is not None and wf.kind == "make"
    assert "bin/shapes" in window.graph.items and len(window.graph.layout_.edges) >= 8
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc): the example opens and draws, but cannot build")
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window, timeout=60_000)
    run = window.bench.run
    assert run.status is RunStatus.SUCCEEDED, [(n, t.state, t.message) for n, t in run.tasks.items()]
    assert (wf.root / "bin" / "shapes").exists()
    assert window.board.counts()[TaskState.DONE] == len(run.plan)
    assert window.bench.tasks.state("install") is IdleState.STALE


@needs_make
def test_an_untrusted_makefile_is_not_read(qtbot, window, tmp_path, auto_answers):
    folder = tmp_path / "sly"
    folder.mkdir()
    (folder / "Makefile").write_text("X := $(shell touch read-by-make)\nall:\n\t@true\n")
    auto_answers[prompts.TRUST] = False
    window.open_path(str(folder))
    qtbot.waitUntil(lambda: len(prompts.LOG) == 1, timeout=5000)
    qtbot.wait(200)
    assert window.bench.workflow is None
    assert not (folder / "read-by-make").exists()
    auto_answers[prompts.TRUST] = True
    window.open_path(str(folder))
    qtbot.waitUntil(lambda: window.bench.workflow is not None, timeout=10000)
    assert (folder / "read-by-make").exists()
