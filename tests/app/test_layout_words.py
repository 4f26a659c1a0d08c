"""Issue 19, layout, words and small things: what a first-time user saw wrong at a glance."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication, QStyleOptionViewItem

from gristmill.app.models.task_table import Column
from gristmill.app.runstate import Bar
from gristmill.app.selection import Selection
from gristmill.app.settings import Settings
from gristmill.app.views.timeline import TimelinePane
from gristmill.core.events import Outcome

from conftest import wait_run_over


def shown_name(window, name: str) -> str:
    """The text the Tasks table draws for ``name``, at its column's width now."""
    view = window.table.view
    row = window.bench.tasks.row_of(name)
    index = window.table.proxy.mapFromSource(window.bench.tasks.index(row, Column.NAME))
    option = QStyleOptionViewItem()
    option.rect = view.visualRect(index)
    option.fontMetrics = view.fontMetrics()
    window.table.names.initStyleOption(option, index)
    return option.text


def test_the_tasks_panel_keeps_a_usable_width_after_a_small_window_and_a_restart(
        qtbot, make_window, example):
    window = make_window(str(example))
    qtbot.waitUntil(lambda: window.tasks_dock.isVisible(), timeout=2000)
    window.resize(500, 400)                 # as small as the window goes
    qtbot.wait(50)
    window.resize(780, 700)                 # back to a size this screen holds
    qtbot.wait(50)
    assert window.tasks_dock.width() >= 250
    # a window that fits a small screen: a long graph legend does not make it wider
    assert window.minimumSizeHint().width() <= 800
    window.close()                          # the layout is saved
    again = make_window(str(example))
    qtbot.waitUntil(lambda: again.tasks_dock.isVisible(), timeout=2000)
    assert again.tasks_dock.width() >= 250
    assert again.log_dock.height() >= 100


def test_a_saved_layout_that_does_not_fit_this_screen_is_reset(qtbot, make_window, example):
    window = make_window(str(example))
    window.resize(700, 600)
    window.move(0, 0)
    window.close()
    room = QApplication.primaryScreen().availableGeometry()
    # the layout of a bigger monitor than this one
    settings = Settings()
    settings.set_window_state(size=f"{room.width() + 900}x{room.height() + 600}")
    again = make_window(str(example))
    assert again.size().width() == 1280 and again.size().height() == 800    # the defaults
    # a layout saved on a screen this size is kept
    settings.set_window_state(size="700x600")
    kept = make_window(str(example))
    assert (kept.width(), kept.height()) == (700, 600)


def test_the_why_column_is_not_cut_at_the_default_size(qtbot, window, example):
    window.open_path(str(example))
    qtbot.waitUntil(lambda: window.table.view.isVisible(), timeout=2000)
    qtbot.wait(50)
    view = window.table.view
    header = view.horizontalHeader()
    right = header.sectionPosition(Column.WHY) + header.sectionSize(Column.WHY)
    assert right <= view.viewport().width()
    assert header.sectionSize(Column.WHY) >= 120


def test_a_name_cut_short_keeps_its_item_and_elides_the_folder(qtbot, window, example):
    window.open_path(str(example))
    qtbot.waitUntil(lambda: window.table.view.isVisible(), timeout=2000)
    fm = window.table.view.fontMetrics()
    # room for a letter of the folder, not for the folder: the cut is at the slash
    room = fm.horizontalAdvance("summarise[…w/harbour.csv]") + 8 + 1
    window.table.view.setColumnWidth(Column.NAME, room)
    assert shown_name(window, "summarise[data/raw/harbour.csv]") == "summarise[…/harbour.csv]"


def test_timeline_bars_keep_what_tells_instances_apart_and_the_axis_is_the_run(qtbot):
    pane = TimelinePane(Selection())
    qtbot.addWidget(pane)
    pane.resize(800, 300)
    pane.show()
    items = ("birds", "harbour", "hilltop", "meadow")
    bars = [Bar(f"tidy[data/raw/{x}.csv]", 1, i, 100.0, 100.2, Outcome.SUCCEEDED, 0)
            for i, x in enumerate(items)]
    bars.append(Bar("report", 1, 0, 100.25, 100.303, Outcome.SUCCEEDED, 0))
    pane.show_run(bars, 100.0, 100.303, None, "Current run")
    canvas = pane.canvas
    assert canvas.t1 - canvas.t0 == pytest.approx(0.303)     # not padded to a second
    fm = QFontMetrics(canvas.font())
    width = fm.horizontalAdvance("tidy[harbour…]")
    labels = [canvas.label(b, fm, width) for b in bars[:4]]
    for item, label in zip(items, labels):
        assert item[:3] in label and fm.horizontalAdvance(label) <= width, label
    assert len(set(labels)) == 4


def test_the_same_state_reads_the_same_everywhere(qtbot, window, example):
    from gristmill.app import prompts  # noqa: F401  (trust is answered by conftest)
    window.open_path(str(example))
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    window.actions["run_default"].trigger()          # everything is up to date now
    wait_run_over(qtbot, window)
    window.selection.set(["report"], "test")
    window.actions["explain"].trigger()
    sections = dict(window.dialogs["explain"].sections)
    text = "\n".join(sections.values()) + window.log.heading.text()
    runs = window.bench.past_runs()
    text += "\n".join(r.counts_text for r in runs)
    assert "up to date" in text and "up-to-date" not in text


def test_edit_task_says_why_it_is_off_for_a_makefile(qtbot, window, tmp_path):
    import shutil as sh
    if sh.which("make") is None:
        pytest.skip("GNU make is not installed: Makefile workflows are read by make")
    folder = tmp_path / "mk"
    folder.mkdir()
    (folder / "Makefile").write_text("all: out.txt\nout.txt:\n\techo hi > $@\n")
    window.open_path(str(folder))
    qtbot.waitUntil(lambda: window.bench.workflow is not None, timeout=10_000)
    window.selection.set(["out.txt"], "test")
    edit = window.actions["edit_task"]
    assert not edit.isEnabled()
    assert "Makefile" in edit.toolTip() and "editor" in edit.toolTip()
    # a gristmill.toml's task: the plain tip again
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "gristmill.toml").write_text('[tasks.a]\ncmd = "true"\nphony = true\n')
    window.open_path(str(tmp_path / "t"))
    qtbot.waitUntil(lambda: window.bench.workflow is not None
                    and window.bench.workflow.kind == "toml", timeout=5000)
    assert "Makefile" not in window.actions["edit_task"].toolTip()


def test_the_welcome_view_says_where_an_example_copy_is_and_shows_full_recent_paths(
        qtbot, make_window, example):
    w = make_window(str(example))
    w.close()
    window = make_window()
    window.resize(1280, 800)
    qtbot.wait(20)
    recent = window.welcome.recent.item(0)
    assert recent.text() == str((example / "gristmill.toml").resolve())
    examples = window.welcome.examples
    item = next(examples.item(i) for i in range(examples.count())
                if examples.item(i).text().startswith("pipeline"))
    # the blurb is read whole: no sideways scrolling, no cut words
    assert not examples.horizontalScrollBar().isVisible()
    assert examples.visualItemRect(item).width() <= examples.viewport().width()
    from gristmill.app.workbench import example_copies
    assert str(example_copies() / "pipeline") in item.toolTip()
    examples.itemActivated.emit(item)
    copy = window.bench.workflow.root
    assert window.example_copy.isVisible() or not window.isVisible()
    assert window.example_copy.text().startswith("Example copy: ")
    assert str(copy) in window.example_copy.toolTip()


def test_the_theme_preference_switches_the_palette(qtbot, window):
    from PySide6.QtWidgets import QDialogButtonBox
    from gristmill.app import theme
    before = QApplication.palette()
    try:
        window.actions["preferences"].trigger()
        dialog = window.dialogs["preferences"]
        dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert window.settings.preferences.theme == "dark"
        assert theme.is_dark(QApplication.palette())
        window.actions["preferences"].trigger()
        dialog = window.dialogs["preferences"]
        assert dialog.theme.currentData() == "dark"
        dialog.theme.setCurrentIndex(dialog.theme.findData("system"))
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
        assert theme.is_dark(QApplication.palette()) == theme.is_dark(before)
    finally:
        QApplication.setPalette(before)
        theme._system_palette = None        # the next test's app starts as the system's


def test_a_bad_save_from_another_editor_is_told_by_the_banner_alone(qtbot, window, example):
    from gristmill.app import prompts
    window.open_path(str(example))
    toml = example / "gristmill.toml"
    toml.write_text(toml.read_text().replace("[tasks.report]", "[tasks.report]\nbogus = 1"))
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=5000)
    assert "bogus" in window.banner_text.text()
    assert [p for p in prompts.LOG if p[0] == prompts.WORKFLOW_ERROR] == []


def test_the_log_has_a_header_times_and_the_last_attempt_of_an_up_to_date_task(
        qtbot, window, tmp_path):
    import re
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.quiet]\ncmd = "touch quiet.txt"\noutputs = ["quiet.txt"]\n'
        '[tasks.talk]\ncmd = "echo said; touch talk.txt"\noutputs = ["talk.txt"]\n')
    window.open_path(str(tmp_path))
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    log = window.log
    window.selection.set(["talk"], "test")
    # the header: the command, its exit status and how long it took
    assert log.info.isVisibleTo(window) and log.info.text().startswith("$ echo said; touch talk.txt")
    assert " · exit 0 · " in log.info.text() and log.info.text().endswith(("ms", "s"))
    assert "said" in log.text.toPlainText()
    log.times.setChecked(True)               # each line with the time it came
    assert all(re.match(r"\d\d:\d\d:\d\d\.\d{3}  ", line)
               for line in log.text.toPlainText().splitlines())
    log.times.setChecked(False)
    window.selection.set(["quiet"], "test")
    live = log.text.toPlainText()
    assert live == "touch quiet.txt"         # a quiet success: the command echo, not nothing
    # the next run finds both up to date: the log shows their last recorded attempts
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    window.selection.set(["talk"], "test")
    window.selection.set(["quiet"], "test")
    assert "up to date in this run" in log.heading.text() and "from history" in log.heading.text()
    assert log.text.toPlainText() == live    # a quiet success keeps its echo
    assert "exit 0" in log.info.text()


def test_the_status_texts_do_not_run_into_each_other(qtbot, window, example):
    window.open_path(str(example))
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    window.resize(1280, 800)
    qtbot.wait(50)
    status = window.status
    fm = status.eta.fontMetrics()
    eta_end = (status.eta.geometry().left() + status.eta.contentsMargins().left()
               + fm.horizontalAdvance(status.eta.text()))
    capacity_start = status.capacity.geometry().left() + status.capacity.contentsMargins().left()
    assert status.eta.text().startswith("succeeded in")
    assert capacity_start - eta_end >= 12
