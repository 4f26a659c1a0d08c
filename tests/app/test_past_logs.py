"""Before a task runs in this session, the log shows its latest recorded output, labelled."""

from pathlib import Path

from gristmill.app.past_logs import LatestAttempts
from gristmill.core.events import Outcome, RunStatus
from gristmill.core.record.history import AttemptRecord, RunRecord

from conftest import wait_run_over


def _run(i: int) -> RunRecord:
    return RunRecord(id=f"run-{i:02d}", workflow_path="/wf/gristmill.toml", workflow_name="wf", targets=(),
                     started=1000.0 - i, ended=1001.0 - i, status=RunStatus.SUCCEEDED, counts={},
                     task_count=1, pid=1, hostname="h", log_path="")


def _attempt(run_id: str, task: str, n: int = 1) -> AttemptRecord:
    return AttemptRecord(run_id, task, n, 0.0, 1.0, 1.0, Outcome.SUCCEEDED, 0, None, 0, "", "", (), "", "")


class RecordingHistory:
    """Runs newest first (run-00 is the newest); records every query."""

    def __init__(self, n_runs: int, tasks_by_run: dict[int, list[tuple[str, int]]]):
        self._runs = [_run(i) for i in range(n_runs)]
        self._tasks = tasks_by_run
        self.calls: list[tuple] = []

    def runs(self, workflow_path=None, limit=50):
        self.calls.append(("runs", workflow_path, limit))
        return self._runs[:limit]

    def attempts(self, run_id):
        self.calls.append(("attempts", run_id))
        i = int(run_id.split("-")[1])
        return [_attempt(run_id, t, n) for t, n in self._tasks.get(i, [])]


def test_latest_attempts_reads_runs_newest_first_and_only_as_far_as_needed():
    history = RecordingHistory(50, {2: [("report", 1), ("report", 2)], 30: [("old", 1)]})
    finder = LatestAttempts(history, "/wf/gristmill.toml", page=10)
    found = finder.find("report")
    assert found.run.id == "run-02" and [a.attempt for a in found.attempts] == [1, 2]
    assert history.calls == [("runs", "/wf/gristmill.toml", 10), ("attempts", "run-00"),
                             ("attempts", "run-01"), ("attempts", "run-02")]
    assert finder.find("report") is found and len(history.calls) == 4          # remembered
    # a task further back pages in more runs; runs already read are not read again
    assert finder.find("old").run.id == "run-30"
    assert ("attempts", "run-02") not in history.calls[4:]
    assert [c for c in history.calls if c[0] == "runs"][-1] == ("runs", "/wf/gristmill.toml", 40)
    # a task no run started: every run is read once, then the answer is remembered
    assert finder.find("never") is None
    calls = len(history.calls)
    assert finder.find("never") is None and len(history.calls) == calls
    # after a run ends the cache is dropped
    finder.forget()
    finder.find("report")
    assert len(history.calls) > calls


def test_latest_attempts_without_history_or_when_history_fails():
    assert LatestAttempts(None, "/wf/gristmill.toml").find("a") is None

    class Broken:
        def runs(self, *a, **k):
            raise RuntimeError("database is locked")

    assert LatestAttempts(Broken(), "/wf/gristmill.toml").find("a") is None


def test_a_new_session_shows_each_tasks_latest_recorded_log(qtbot, make_window, example):
    first = make_window()
    first.settings.trust(example)
    first.open_path(str(example))
    first.actions["run_default"].trigger()
    wait_run_over(qtbot, first)
    run_id = first.bench.run.run_id
    first.close()

    again = make_window(str(example))
    assert again.bench.run.status is None            # no run in this session yet
    again.selection.set(["report"], "test")
    log = again.log
    assert "report of 4 stations" in log.text.toPlainText()
    assert log.heading.text() == f"report — attempt 1 (succeeded, exit 0) · run {run_id} (from history)"
    # a task no recorded run started says so
    again.selection.set(["clean"], "test")
    assert log.text.toPlainText() == ""
    assert log.heading.text() == "clean — no run yet in this session, and none recorded"

    # run one task: it shows live; a task outside this run still shows its recorded log
    birds = "tidy[data/raw/birds.csv]"
    (example / "data" / "raw" / "birds.csv").touch()
    again.selection.set([birds], "test")
    assert log.heading.text().endswith(f"· run {run_id} (from history)")
    again.actions["run_selected"].trigger()
    wait_run_over(qtbot, again)
    assert again.bench.run.plan == (birds,)
    assert log.heading.text() == f"{birds} — attempt 1"
    again.selection.set(["report"], "test")
    assert log.heading.text().endswith(f"· run {run_id} (from history)")


def test_retried_attempts_from_history_can_each_be_shown(qtbot, make_window, tmp_path):
    folder = tmp_path / "flaky"
    folder.mkdir()
    (folder / "gristmill.toml").write_text(
        '[tasks.flaky]\ncmd = "echo try $GRISTMILL_ATTEMPT; exit 3"\noutputs = ["never"]\nretries = 1\n')
    first = make_window()
    first.settings.trust(folder)
    first.open_path(str(folder))
    first.actions["run_default"].trigger()
    wait_run_over(qtbot, first)
    assert first.bench.run.status is RunStatus.FAILED
    run_id = first.bench.run.run_id
    first.close()

    again = make_window(str(folder))
    again.selection.set(["flaky"], "test")
    log = again.log
    assert [log.attempt_box.itemData(i) for i in range(log.attempt_box.count())] == [1, 2]
    assert log.heading.text() == f"flaky — attempt 2 (failed, exit 3) · run {run_id} (from history)"
    log.attempt_box.setCurrentIndex(0)
    log.attempt_box.activated.emit(0)
    assert log.heading.text() == f"flaky — attempt 1 (failed, exit 3) · run {run_id} (from history)"
    assert log.text.toPlainText().startswith("try")
    assert Path(again.bench.latest_attempts("flaky").attempts[0].log_path).exists()
