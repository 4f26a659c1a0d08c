"""The board: short card labels elided in the middle, full names in tooltips, columns that fit."""

from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication

from gristmill.app.models.task_table import TaskTableModel
from gristmill.app.names import common_affixes, elide_item, fit_name, group_affixes
from gristmill.app.runstate import RunState
from gristmill.app.selection import Selection
from gristmill.app.views.board import BoardView, CardDelegate
from gristmill.core.events import RunStarted, TaskState, TaskStateChanged
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.staleness import StalenessScan

from app_helpers import chain_workflow
from conftest import wait_run_over


def test_card_labels_are_the_graphs_short_names_elided_in_the_middle(qapp):
    fm = QFontMetrics(QApplication.font())
    name = "summarise[data/raw/harbour.csv]"
    assert CardDelegate.label(name, fm, 1000) == "summarise[harbour.csv]"
    assert CardDelegate.label("report", fm, 1000) == "report"
    width = fm.horizontalAdvance("summarise[harbour.csv]") * 2 // 3
    narrow = CardDelegate.label(name, fm, width)
    assert fm.horizontalAdvance(narrow) <= width
    # the group gives way first; the item keeps its start and its end
    group, item = narrow[:-1].split("[")
    assert group.startswith("s") and group.endswith("…")
    assert item.startswith("h") and item.endswith("sv") and "…" in item
    long = CardDelegate.label("a-long-task-name-without-item", fm, 60)
    assert long.startswith("a-") and long.endswith("em") and "…" in long
    # with its siblings' shared prefix and suffix known, the distinct part stays
    items = [f"sample-{i:02d}-long-name.txt" for i in range(14)]
    affixes = common_affixes(items)
    label = CardDelegate.label("measure[in/sample-04-long-name.txt]", fm, 110, affixes)
    assert fm.horizontalAdvance(label) <= 110 and "04" in label


def test_eliding_an_item_keeps_what_its_siblings_do_not_share():
    items = [f"sample-{i:02d}-long-name.txt" for i in range(14)]
    prefix, suffix = common_affixes(items)
    assert (prefix, suffix) == (len("sample-"), len("-long-name.txt"))

    def within(n):
        return lambda text: len(text) <= n
    assert elide_item(items[4], prefix, suffix, within(30)) == "sample-04-long-name.txt"
    assert elide_item(items[4], prefix, suffix, within(4)) == "…04…"
    assert elide_item(items[4], prefix, suffix, within(8)) == "…04-lon…"          # the shared end first
    assert elide_item(items[4], prefix, suffix, within(17)) == "…04-long-name.txt"
    assert elide_item(items[4], prefix, suffix, within(20)) == "…le-04-long-name.txt"
    # the group keeps its name while the distinct part fits beside it
    paths = {"s": [f"summarise[data/raw/{x}.csv]" for x in ("birds", "harbour", "hilltop", "meadow")]}
    affixes = group_affixes(paths, short=False)["s"]
    assert fit_name("summarise[data/raw/birds.csv]", len, 24, affixes) == "summarise[…/birds.csv]"
    assert fit_name("summarise[data/raw/birds.csv]", len, 40, affixes) == "summarise[data/raw/birds.csv]"
    # nothing distinct to keep, or not even room for it: a plain middle elision
    assert elide_item("harbour.csv", *common_affixes(["harbour.csv", "birds.csv"]), within(6)) == "har…sv"
    assert elide_item("aaaa", *common_affixes(["aaaa", "aaaa"]), within(3)) == "a…a"
    assert common_affixes(["only.csv"]) == (0, 0)


def test_cards_carry_the_full_name_state_and_reason_in_their_tooltip(qtbot, tmp_path):
    wf = chain_workflow(tmp_path, n=1, fanout=2)
    run = RunState()
    model = TaskTableModel(run)
    model.set_workflow(wf)
    model.set_decisions(StalenessScan(wf, TaskGraph(wf)).scan(list(wf.tasks)))
    board = BoardView(model, Selection())
    qtbot.addWidget(board)
    name = "leaf[items/1.txt]"
    model.apply_changes(run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), (name,)),
                                   TaskStateChanged("r", 1.0, name, TaskState.FAILED)]))
    column = board.column(TaskState.FAILED)
    assert column.cards.rowCount() == 1
    tip = CardDelegate.tooltip(column.cards.index(0, 0))
    assert tip.splitlines()[:2] == [name, "failed"]
    # only the task in the run has a card; the others are counted above the columns
    assert board.names_on_board() == {name}
    qtbot.waitUntil(lambda: "Not in it: 2 (2 would run)" in board.outside.text(), timeout=2000)


def test_eight_columns_fit_a_1280_window_and_full_columns_get_the_room(qtbot, window, example):
    window.resize(1280, 800)
    window.settings.trust(example)
    window.open_path(str(example))
    window.show_tab(window.board)
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    qtbot.wait(50)
    board = window.board
    assert len(board.columns) == 8          # waiting … up to date, and cancelled
    assert board.horizontalScrollBar().maximum() == 0          # no sideways scrolling
    done, waiting = board.column(TaskState.DONE), board.column(TaskState.WAITING)
    assert done.width() > 2 * waiting.width()
    # the longest card label fits its column unelided
    font = done.list.font()
    font.setBold(True)
    fm = QFontMetrics(font)
    width = done.list.viewport().width() - 24       # the card's text rectangle
    assert CardDelegate.label("summarise[data/raw/harbour.csv]", fm, width) == "summarise[harbour.csv]"
    assert waiting.header.text().endswith("<b>Waiting</b>")          # an empty column shows no count
    assert done.header.text().endswith("<b>Done</b>&nbsp;&nbsp;9")


def test_a_plan_says_what_its_waiting_column_means(qtbot, window, example):
    window.open_path(str(example))
    window.actions["plan"].trigger()
    wait_run_over(qtbot, window)
    assert window.board.counts()[TaskState.WAITING] == 9
    qtbot.waitUntil(lambda: window.board.outside.text().startswith("Plan (dry run): nothing ran"), timeout=2000)
