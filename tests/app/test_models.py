"""Every item model passes pytest-qt's model tester; changes arrive as ranged dataChanged."""

from PySide6.QtCore import Qt

from gristmill.app import theme
from gristmill.app.models.history import RunHistoryModel, bars_from_attempts
from gristmill.app.models.task_table import ROLE_NAME, ROLE_STATE, Column, TaskFilterProxy, TaskTableModel
from gristmill.app.runstate import RunState
from gristmill.app.states import IdleState
from gristmill.core.events import (Outcome, RunStarted, RunStatus, TaskState, TaskStateChanged)
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.record.history import AttemptRecord, RunRecord
from gristmill.core.decide.staleness import StalenessScan

from app_helpers import chain_workflow


def make_model(tmp_path, **kw):
    run = RunState()
    model = TaskTableModel(run)
    wf = chain_workflow(tmp_path, **kw)
    model.set_workflow(wf)
    model.set_decisions(StalenessScan(wf, TaskGraph(wf)).scan(list(wf.tasks)))
    return run, model, wf


def test_task_table_model_passes_the_model_tester(qtmodeltester, tmp_path):
    run, model, wf = make_model(tmp_path, fanout=3)
    qtmodeltester.check(model)
    proxy = TaskFilterProxy()
    proxy.setSourceModel(model)
    proxy.set_text("leaf")
    qtmodeltester.check(proxy)
    assert proxy.rowCount() == 3
    model.set_workflow(None)
    qtmodeltester.check(model)


def test_before_a_run_tasks_show_the_scan_as_a_greyed_idle_state(tmp_path):
    run, model, wf = make_model(tmp_path)
    (tmp_path / "t0.out").write_text("x")
    # never "waiting": no run has included it
    assert model.state("t1") is IdleState.STALE and model.run_state("t1") is None
    assert model.data(model.index(1, Column.STATE)) == "will run"
    assert model.data(model.index(1, 0), ROLE_STATE) == "idle:will-run"
    assert model.data(model.index(1, Column.STATE), Qt.ItemDataRole.ForegroundRole) == theme.idle_text_color()
    assert "No run yet" in model.data(model.index(1, Column.STATE), Qt.ItemDataRole.ToolTipRole)
    assert "missing" in model.data(model.index(1, Column.WHY))
    model.set_decisions(StalenessScan(wf, TaskGraph(wf)).scan(list(wf.tasks)))
    model.refresh_outputs()
    assert model.state("t0") is IdleState.FRESH
    assert model.data(model.index(0, Column.STATE)) == "up to date"
    assert model.data(model.index(0, 0), ROLE_STATE) == "idle:up-to-date"
    assert model.data(model.index(0, Column.OUTPUTS)) == "just now"
    assert model.data(model.index(1, Column.OUTPUTS)) == "missing"
    assert model.data(model.index(1, Column.RESOURCES)) == "1 cpu, 1.0 KB"


def test_tasks_outside_the_run_keep_the_scan_state_and_get_no_board_card(tmp_path):
    run, model, wf = make_model(tmp_path, n=4)
    run.apply([RunStarted("r", 0.0, "chain", str(wf.path), ("t1",), ("t0", "t1"))])
    model.apply_changes(run.apply([TaskStateChanged("r", 1.0, "t0", TaskState.DONE)]))
    assert model.state("t0") is TaskState.DONE and model.state("t1") is TaskState.WAITING
    assert model.state("t3") is IdleState.STALE and model.idle_state("t0") is None
    assert model.data(model.index(0, Column.STATE), Qt.ItemDataRole.ForegroundRole) is None
    assert model.data(model.index(3, Column.STATE), Qt.ItemDataRole.ForegroundRole) == theme.idle_text_color()
    assert "Not in the run shown" in model.data(model.index(3, Column.STATE), Qt.ItemDataRole.ToolTipRole)
    # a board column (every run state) sees only the tasks of the run
    board = TaskFilterProxy()
    board.setSourceModel(model)
    board.set_states(theme.BOARD_STATES)
    assert sorted(board.index(r, 0).data(ROLE_NAME) for r in range(board.rowCount())) == ["t0", "t1"]
    # sorting by state puts the run's tasks first, then "will run", then "up to date"
    proxy = TaskFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(Column.STATE)
    assert [proxy.index(r, 0).data(ROLE_NAME) for r in range(4)][:2] == ["t1", "t0"]


def test_a_batch_becomes_one_data_changed_per_row_range(qtbot, tmp_path):
    run, model, wf = make_model(tmp_path, n=10)
    run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), tuple(wf.tasks))])
    seen = []
    model.dataChanged.connect(lambda a, b, _roles: seen.append((a.row(), b.row())))
    changes = run.apply([TaskStateChanged("r", 1.0, n, TaskState.DONE) for n in ("t1", "t2", "t3", "t7", "t8")])
    model.apply_changes(changes)
    assert seen == [(1, 3), (7, 8)]
    assert model.state("t2") is TaskState.DONE


def test_a_large_change_is_announced_a_chunk_per_event_loop_turn(qtbot, tmp_path):
    from gristmill.app.models.task_table import CHUNK
    n = 2 * CHUNK + 100
    run, model, wf = make_model(tmp_path, n=n)
    done = TaskFilterProxy()
    done.setSourceModel(model)
    done.set_states([TaskState.WAITING])
    seen = []
    model.dataChanged.connect(lambda a, b, _roles: seen.append((a.row(), b.row())))
    model.apply_changes(run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), tuple(wf.tasks))]))
    assert seen == [(0, CHUNK - 1)]             # the window gets a turn before the rest
    assert done.rowCount() == CHUNK
    qtbot.waitUntil(lambda: done.rowCount() == n)
    assert seen == [(0, CHUNK - 1), (CHUNK, 2 * CHUNK - 1), (2 * CHUNK, n - 1)]
    model.set_workflow(None)                    # nothing pending survives a new workflow
    assert not model._pending


def test_state_filter_moves_rows_between_columns(qtmodeltester, tmp_path):
    run, model, wf = make_model(tmp_path, n=4)
    done = TaskFilterProxy()
    done.setSourceModel(model)
    done.set_states([TaskState.DONE])
    run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), tuple(wf.tasks))])
    model.apply_changes(run.apply([TaskStateChanged("r", 1.0, "t0", TaskState.DONE)]))
    assert [done.index(r, 0).data(ROLE_NAME) for r in range(done.rowCount())] == ["t0"]
    qtmodeltester.check(done)


def test_sorting_by_state_uses_board_order(tmp_path):
    run, model, wf = make_model(tmp_path, n=3)
    run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), tuple(wf.tasks))])
    model.apply_changes(run.apply([TaskStateChanged("r", 1.0, "t0", TaskState.FAILED),
                                   TaskStateChanged("r", 1.0, "t1", TaskState.RUNNING)]))
    proxy = TaskFilterProxy()
    proxy.setSourceModel(model)
    proxy.sort(Column.STATE)
    assert [proxy.index(r, 0).data(ROLE_NAME) for r in range(3)] == ["t2", "t1", "t0"]


def _run_record(i: int) -> RunRecord:
    return RunRecord(id=f"run-{i}", workflow_path="/wf/gristmill.toml", workflow_name="wf",
                     targets=("all",) if i else (), started=1000.0 + i, ended=1010.0 + i,
                     status=RunStatus.SUCCEEDED if i else RunStatus.FAILED, counts={"done": 3},
                     task_count=3, pid=1, hostname="h", log_path="")


def test_history_model_passes_the_model_tester(qtmodeltester):
    model = RunHistoryModel()
    model.set_runs([_run_record(0), _run_record(1)])
    qtmodeltester.check(model)
    assert model.index(0, 3).data() == "failed"
    assert model.index(1, 2).data() == "all"
    assert model.index(0, 4).data() == "10.0 s"


def test_past_attempts_become_bars_in_lanes():
    def attempt(task, start, end, slot=None):
        return AttemptRecord("r", task, 1, start, end, end - start, Outcome.SUCCEEDED, 0, None, slot,
                             "", "", (), "", "")
    bars = bars_from_attempts([attempt("a", 0, 5), attempt("b", 1, 3), attempt("c", 3.5, 4), attempt("d", 6, 7, 4)])
    lanes = {b.task: b.slot for b in bars}
    assert lanes == {"a": 0, "b": 1, "c": 1, "d": 4}


def test_board_columns_pass_the_model_tester_and_move_cards_in_table_order(qtmodeltester, tmp_path):
    from gristmill.app.models.board import BoardCards
    run, model, wf = make_model(tmp_path, n=8)
    cards = BoardCards(model, theme.BOARD_STATES)
    waiting, done = cards.column(TaskState.WAITING), cards.column(TaskState.DONE)
    for column in (waiting, done):
        qtmodeltester.check(column)
    assert waiting.rowCount() == 0                    # no run yet: no card anywhere
    inserted = []
    waiting.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))
    model.apply_changes(run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (),
                                              ("t1", "t2", "t3", "t5", "t6"))]))
    assert waiting.names() == ["t1", "t2", "t3", "t5", "t6"]
    assert inserted == [(0, 2), (3, 4)]               # one insert per range of changed rows
    model.apply_changes(run.apply([TaskStateChanged("r", 1.0, n, TaskState.DONE)
                                   for n in ("t6", "t2", "t3")]))
    assert waiting.names() == ["t1", "t5"] and done.names() == ["t2", "t3", "t6"]
    assert done.row_of("t6") == 2 and done.row_of("t1") == -1
    # a card reads its task's row of the table: state, why, how long it took
    assert done.index(0, 0).data(ROLE_NAME) == "t2"
    assert done.index(0, 0).data(ROLE_STATE) == TaskState.DONE.value
    assert done.index(0, Column.STATE).data() == model.index(2, Column.STATE).data()
    changed = []
    done.dataChanged.connect(lambda a, b, _r: changed.append((a.row(), b.row())))
    model.rows_changed(["t3"])                        # a change that moves nothing redraws the card
    assert changed == [(1, 1)]
    # a new run takes the old run's cards away
    model.apply_changes(run.apply([RunStarted("r2", 2.0, "chain", str(wf.path), (), ("t0",))]))
    assert done.names() == [] and waiting.names() == ["t0"]
    model.set_workflow(None)
    assert waiting.rowCount() == 0


def test_idle_counts_are_the_tasks_outside_the_run(tmp_path):
    run, model, wf = make_model(tmp_path, n=6)
    (tmp_path / "t0.out").write_text("x")
    model.set_decisions(StalenessScan(wf, TaskGraph(wf)).scan(list(wf.tasks)))
    assert model.idle_counts() == (5, 1, 0)
    model.apply_changes(run.apply([RunStarted("r", 0.0, "chain", str(wf.path), (), ("t0", "t1", "t2"))]))
    assert model.idle_counts() == (3, 0, 0)
    expected = (sum(model.idle_state(n) is IdleState.STALE for n in wf.tasks),
                sum(model.idle_state(n) is IdleState.FRESH for n in wf.tasks), 0)
    assert model.idle_counts() == expected


def test_a_workflow_opens_with_its_scan_in_one_reset(qtbot, tmp_path):
    run = RunState()
    model = TaskTableModel(run)
    wf = chain_workflow(tmp_path, n=5)
    decisions = StalenessScan(wf, TaskGraph(wf)).scan(list(wf.tasks))
    resets, changes = [], []
    model.modelReset.connect(lambda: resets.append(model.state("t1")))
    model.dataChanged.connect(lambda a, b, _r: changes.append((a.row(), b.row())))
    model.set_workflow(wf, decisions, {"t1": 2.0}, {"t1": None})
    # the first rows drawn already show the scan, the duration and the outputs
    assert resets == [IdleState.STALE] and changes == []
    assert model.data(model.index(1, Column.LAST)) == model.data(model.index(1, Column.ESTIMATE)) != "—"
    assert model.data(model.index(1, Column.OUTPUTS)) == "missing"


def test_output_times_from_a_scans_stamps_match_the_disk(tmp_path):
    from gristmill.app.models.task_table import output_times
    wf = chain_workflow(tmp_path, n=4)
    (tmp_path / "t0.out").write_text("x")
    scan = StalenessScan(wf, TaskGraph(wf))
    scan.scan(list(wf.tasks))
    from_scan, from_disk = output_times(wf, stamp=scan.stamps.get), output_times(wf)
    assert from_scan.keys() == from_disk.keys()
    assert from_scan["t1"] is None and abs(from_scan["t0"] - from_disk["t0"]) < 1e-6


def test_a_sub_make_s_target_the_workflow_does_not_know_gets_a_row(qtmodeltester, tmp_path):
    """A Makefile's sub-makes run targets the top data base does not know ("sub/x"):
    the run tells of them, and the table shows them as rows of their own."""
    from gristmill.core.events import TaskStarted
    from gristmill.core.workflow import Resources
    run, model, wf = make_model(tmp_path)
    before = model.rowCount()
    changes = run.apply([
        RunStarted("r1", 1.0, wf.name, str(wf.path), (), tuple(wf.tasks)),
        TaskStateChanged("r1", 1.1, "sub/x", TaskState.RUNNING, (), 1),
        TaskStarted("r1", 1.1, "sub/x", 1, 0, Resources(), log_path=str(tmp_path / "x.log")),
    ])
    model.apply_changes(changes)
    assert model.rowCount() == before + 1
    row = model.row_of("sub/x")
    assert model.data(model.index(row, Column.NAME)) == "sub/x"
    assert model.state("sub/x") is TaskState.RUNNING
    qtmodeltester.check(model)
