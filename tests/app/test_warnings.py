"""Workflow warnings appear in a yellow banner with a count and a list; it can be dismissed."""

import time

from gristmill.app.views.banners import SHOWN_WARNINGS, WarningBanner, describe_warning
from gristmill.core.errors import Location
from gristmill.core.workflow import WorkflowWarning

GOOD = '[tasks.a]\ncmd = "cat in/*.csv > a.txt"\ninputs = ["in/*.csv"]\noutputs = ["a.txt"]\n'


def write(folder, text):
    time.sleep(0.01)                    # a new mtime for the watcher's signature
    (folder / "gristmill.toml").write_text(text)


def test_an_input_glob_that_matches_nothing_shows_a_dismissible_warning(qtbot, window, tmp_path):
    folder = tmp_path / "globs"
    folder.mkdir()
    write(folder, GOOD)
    window.open_path(str(folder))
    banner = window.warnings
    assert window.bench.workflow is not None and len(window.bench.workflow.warnings) == 1
    assert banner.isVisible()
    assert banner.title.text().startswith("<b>⚠ 1 warning</b>")
    assert banner.lines == ["gristmill.toml:3:11: input glob 'in/*.csv' of task 'a' matches no file "
                            "and no task's output"]
    assert "gristmill.toml:3:11" in banner.list.text() and not banner.more.isVisible()
    # dismissed: a reload with the same warnings stays quiet
    banner.dismiss.click()
    assert not banner.isVisible()
    window.reload()
    assert not banner.isVisible()
    # new warnings show again, with their count
    write(folder, GOOD + '\n[tasks.b]\ncmd = "true"\ninputs = ["raw/*.txt"]\noutputs = ["b.txt"]\n')
    qtbot.waitUntil(lambda: banner.isVisible(), timeout=5000)
    assert banner.title.text().startswith("<b>⚠ 2 warnings</b>") and len(banner.lines) == 2
    # fixed: the banner goes
    (folder / "in").mkdir()
    (folder / "in" / "x.csv").write_text("1\n")
    (folder / "raw").mkdir()
    (folder / "raw" / "y.txt").write_text("1\n")
    window.reload()
    assert window.bench.workflow.warnings == () and not banner.isVisible()


def test_closing_the_workflow_hides_its_warnings(window, tmp_path):
    folder = tmp_path / "globs"
    folder.mkdir()
    write(folder, GOOD)
    window.open_path(str(folder))
    assert window.warnings.isVisible()
    window.actions["close"].trigger()
    assert not window.warnings.isVisible() and window.stack.currentWidget() is window.welcome


def test_many_warnings_list_five_then_show_all(qtbot, tmp_path):
    banner = WarningBanner()
    qtbot.addWidget(banner)
    warnings = [WorkflowWarning(f"warning number {i}", Location(str(tmp_path / "gristmill.toml"), i + 1, 2))
                for i in range(8)]
    banner.set_warnings("wf", warnings, tmp_path)
    banner.show()
    assert banner.title.text().startswith("<b>⚠ 8 warnings</b>")
    assert banner.list.text().count("•") == SHOWN_WARNINGS == 5
    assert banner.more.isVisible() and banner.more.text() == "Show all 8"
    banner.more.click()
    assert banner.list.text().count("•") == 8 and banner.more.text() == "Show fewer"
    assert "gristmill.toml:8:2: warning number 7" in banner.list.toolTip()


def test_warning_locations_are_relative_to_the_workflow_folder(tmp_path):
    inside = WorkflowWarning("m", Location(str(tmp_path / "sub" / "x.toml"), 4, 5))
    outside = WorkflowWarning("m", Location("/elsewhere/y.toml", 1, 1))
    assert describe_warning(inside, tmp_path) == "sub/x.toml:4:5: m"
    assert describe_warning(outside, tmp_path) == "/elsewhere/y.toml:1:1: m"
    assert describe_warning(WorkflowWarning("no place"), tmp_path) == "no place"
