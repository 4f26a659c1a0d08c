"""The app shows why a ready task waits: on its board card, in the table's Why column and
in Explain; and how an out-of-memory retry went, in Explain. Events of real runs."""

from __future__ import annotations

import threading
import time

from gristmill.app.explain import explain
from gristmill.app.models.task_table import Column, TaskTableModel
from gristmill.app.runstate import RunState
from gristmill.app.selection import Selection
from gristmill.app.views.board import BoardView, CardDelegate
from gristmill.core.decide.capacity import Capacity
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.staleness import StalenessScan
from gristmill.core.events import EventBus, TaskState
from gristmill.core.load.loader import load_workflow
from gristmill.core.reasons import ReasonKind
from gristmill.core.run.engine import Engine, RunOptions

GB = 1000**3
WAIT = "waiting for 3.0 GB of memory (1.0 GB free), held by train_a and train_b"


def test_a_waiting_card_the_why_column_and_explain_say_what_it_waits_for(qtbot, tmp_path):
    hold = "while [ ! -e release ]; do sleep 0.02; done"
    (tmp_path / "gristmill.toml").write_text(
        f'[tasks.train_a]\nphony = true\ncmd = "{hold}"\nresources = {{ mem = "1.5GB" }}\n'
        f'[tasks.train_b]\nphony = true\ncmd = "{hold}"\nresources = {{ mem = "1.5GB" }}\n'
        '[tasks.big]\nphony = true\ncmd = "true"\nresources = { mem = "3GB" }\n')
    wf = load_workflow(tmp_path / "gristmill.toml")
    graph = TaskGraph.of(wf)
    events: list = []
    bus = EventBus()
    bus.subscribe(events.append)
    engine = Engine(wf, bus=bus, options=RunOptions(
        capacity=Capacity(cpu=4, mem=4 * GB, gpu=0), structured_log=False))
    thread = threading.Thread(target=engine.run, args=([],))
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not any(getattr(e, "task", "") == "big" and getattr(e, "reasons", ())
                      and e.reasons[-1].kind is ReasonKind.WAITING for e in list(events)):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        seen = list(events)
    finally:
        (tmp_path / "release").touch()
        thread.join(60)
    run = RunState()
    model = TaskTableModel(run)
    model.set_workflow(wf)
    decisions = StalenessScan(wf, graph).scan(list(wf.tasks))
    model.set_decisions(decisions)
    board = BoardView(model, Selection())
    qtbot.addWidget(board)
    model.apply_changes(run.apply(seen))
    assert model.run_state("big") is TaskState.READY
    why = model.index(model.row_of("big"), int(Column.WHY)).data()
    assert why.startswith(WAIT + "; ")            # what it waits for first
    column = board.column(TaskState.READY)
    cards = [column.cards.index(i, 0) for i in range(column.cards.rowCount())]
    (card,) = [c for c in cards if CardDelegate.tooltip(c).splitlines()[0] == "big"]
    assert CardDelegate.detail(card).startswith(WAIT)
    said = dict(explain(wf, graph, decisions, "big", run.tasks["big"], newer=True, going=True))
    assert WAIT in said["In the current run"]


def test_explain_tells_how_an_out_of_memory_retry_went(tmp_path):
    import pytest
    from gristmill.core.run import cgroups
    offer = cgroups.offer(refresh=True)
    if not (offer.version and offer.memory):
        pytest.skip(f"no cgroup with the memory controller here: {offer.why_not}")
    alloc = "python3 -c 'b = b\\\"x\\\" * (250 * 1000 * 1000)'"
    (tmp_path / "gristmill.toml").write_text(
        f'[tasks.hog]\nphony = true\ncmd = "{alloc}"\nretry_mem = 2.0\n'
        'resources = { mem = "200MB" }\n')
    wf = load_workflow(tmp_path / "gristmill.toml")
    graph = TaskGraph.of(wf)
    events: list = []
    bus = EventBus()
    bus.subscribe(events.append)
    Engine(wf, bus=bus, options=RunOptions(capacity=Capacity(cpu=4, mem=4 * GB, gpu=0),
                                           structured_log=False)).run([])
    run = RunState()
    run.apply(events)
    decisions = StalenessScan(wf, graph).scan(list(wf.tasks))
    said = dict(explain(wf, graph, decisions, "hog", run.tasks["hog"], newer=True))
    assert "• attempt 1 killed at 200.0 MB; attempt 2 had 400.0 MB and succeeded" \
        in said["In the current run"]
