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
    assert header.sectionSize(Column.WHY) >= 150


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
