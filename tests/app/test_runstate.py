"""RunState is built only by applying events: fed here by hand."""

from gristmill.app.runstate import RunState
from gristmill.core.events import (OutputLine, Outcome, RunFinished, RunStarted, RunStatus, TaskFinished,
                                   TaskStarted, TaskState, TaskStateChanged, TasksUpToDate)
from gristmill.core.reasons import Reason, ReasonKind
from gristmill.core.workflow import Resources

R = "run-1"
FRESH = Reason(ReasonKind.UP_TO_DATE, "every input is older than output c.txt")


def started(tasks=("a", "b"), t=100.0):
    return RunStarted(R, t, "wf", "/wf/gristmill.toml", (), tuple(tasks))


def test_a_run_moves_tasks_through_states_and_bars():
    run = RunState()
    reason = Reason(ReasonKind.MISSING_OUTPUT, "output a.txt is missing")
    changes = run.apply([started(), TaskStateChanged(R, 100.0, "a", TaskState.READY, (reason,))])
    assert changes.started is not None and {"a", "b"} <= changes.tasks
    assert run.state_of("a") is TaskState.READY
    assert run.tasks["a"].reasons == (reason,)
    changes = run.apply([TaskStarted(R, 101.0, "a", 1, 0, Resources(cpu=2, mem=100)),
                         OutputLine(R, 101.5, "a", 1, "hello"),
                         OutputLine(R, 101.6, "a", 1, "world")])
    assert changes.tasks == {"a"} and changes.bars and len(changes.lines) == 2
    assert run.running_tasks() == ["a"]
    assert run.in_use() == (2.0, 100, 0)
    assert run.log.lines("a", 1) == ["hello", "world"]
    assert run.bars[0].end is None
    run.apply([TaskFinished(R, 103.0, "a", 1, Outcome.SUCCEEDED, 0, 2.0),
               TaskStateChanged(R, 103.0, "a", TaskState.DONE)])
    assert run.bars[0].end == 103.0 and run.bars[0].exit_code == 0
    assert run.tasks["a"].duration == 2.0
    changes = run.apply([RunFinished(R, 104.0, RunStatus.SUCCEEDED, 4.0, {"done": 1})])
    assert changes.finished is not None and run.status is RunStatus.SUCCEEDED and not run.running


def test_events_of_an_older_run_are_ignored_and_a_new_run_resets():
    run = RunState()
    run.apply([started(("a",))])
    assert not run.apply([TaskStateChanged("other", 1.0, "a", TaskState.DONE)])
    run.apply([RunStarted("run-2", 200.0, "wf", "/wf", (), ("b",))])
    assert set(run.tasks) == {"b"} and run.run_id == "run-2"


def test_open_bars_close_as_cancelled_when_the_run_ends():
    run = RunState()
    run.apply([started(("a",)), TaskStarted(R, 101.0, "a", 1, 0)])
    run.apply([RunFinished(R, 105.0, RunStatus.CANCELLED, 5.0)])
    assert run.bars[0].outcome is Outcome.CANCELLED and run.bars[0].end == 105.0


def test_progress_is_weighted_by_estimates():
    run = RunState()
    run.apply([started(("a", "b", "c"), t=0.0)])
    changes = run.apply([TasksUpToDate(R, 0.0, ("c",), ((FRESH,),))])   # weighs nothing
    assert changes.tasks == {"c"}
    assert run.state_of("c") is TaskState.UP_TO_DATE and run.tasks["c"].reasons == (FRESH,)
    est = {"a": 30.0, "b": 10.0}
    assert run.progress(est, 0.0) == (0.0, None)
    run.apply([TaskStarted(R, 0.0, "a", 1, 0), TaskFinished(R, 30.0, "a", 1, Outcome.SUCCEEDED, 0, 30.0),
               TaskStateChanged(R, 30.0, "a", TaskState.DONE)])
    fraction, eta = run.progress(est, 30.0)
    assert fraction == 0.75
    assert eta == 10.0           # 10 estimated seconds left at the observed rate
    run.apply([RunFinished(R, 41.0, RunStatus.SUCCEEDED, 41.0)])
    assert run.progress(est, 41.0) == (1.0, 0.0)


def test_logs_are_bounded():
    from gristmill.app.runstate import LogBook
    book = LogBook(task_limit=3, run_limit=4)
    for i in range(10):
        book.add(OutputLine(R, 0.0, "a", 1, str(i)))
    assert book.lines("a", 1) == ["7", "8", "9"]
    assert len(book.run) == 4


def test_none_survives_many_qt_calls(qapp):
    """PySide6 6.12 on Python 3.11 drops a reference to None on every void call."""
    import sys
    from PySide6.QtWidgets import QWidget
    w = QWidget()
    before = sys.getrefcount(None)
    for _ in range(200_000):
        w.update()
    assert sys.getrefcount(None) > 1_000_000 or sys.getrefcount(None) >= before


def test_without_history_progress_counts_finished_tasks_and_says_it_is_a_guess():
    # Issue 19: with no estimates each task weighed 1 s, so two running 20 s tasks sat
    # at 47% while the ETA grew from 6 s to 22 s.
    run = RunState()
    run.apply([started(("a", "b", "c", "d"), t=0.0),
               TaskStarted(R, 0.0, "a", 1, 0), TaskStarted(R, 0.0, "b", 1, 1)])
    for now in (5.0, 20.0):
        assert run.progress({}, now) == (0.0, None)       # nothing known yet
        assert run.estimate({}, now).guessed == 4
    run.apply([TaskFinished(R, 20.0, "a", 1, Outcome.SUCCEEDED, 0, 20.0),
               TaskFinished(R, 20.0, "b", 1, Outcome.SUCCEEDED, 0, 20.0),
               TaskStarted(R, 20.0, "c", 1, 0), TaskStarted(R, 20.0, "d", 1, 1)])
    e = run.estimate({}, 25.0)
    # half the tasks done; c and d should take 20 s as a and b did: 15 s left, both at once
    assert (e.fraction, e.left, e.guessed) == (0.5, 15.0, 4)
    e = run.estimate({"c": 30.0}, 25.0)        # an estimate wins over the run's mean
    assert (e.fraction, e.left, e.guessed) == (0.5, (25.0 + 15.0) / 2, 3)


def test_the_status_bar_says_when_the_eta_is_a_guess(qapp):
    from gristmill.app.runstate import Estimate
    from gristmill.app.views.status import eta_words
    assert eta_words(Estimate(0.0, None, 4)) == "ETA unknown: no history yet for 4 tasks"
    assert eta_words(Estimate(0.5, 15.0, 1)) == "ETA ~15.0 s (a guess: no history for 1 task)"
    assert eta_words(Estimate(0.5, 15.0, 0)) == "ETA 15.0 s"
