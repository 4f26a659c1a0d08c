"""RunLog: real JSON-lines files in temp dirs, fed with the real event classes."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from gristmill.core import paths
from gristmill.core.events import (OutputLine, Outcome, RunFinished, RunStarted, RunStatus,
                                   TaskFinished, TaskStarted, TaskState, TaskStateChanged)
from gristmill.core.reasons import Reason, ReasonKind
from gristmill.core.record.runlog import RunLog, event_record, run_log_path
from gristmill.core.workflow import Resources

MISSING = Reason(ReasonKind.MISSING_OUTPUT, "out.txt is missing")


def one_run(run_id: str, log_path: str = "", task: str = "a") -> list:
    return [
        RunStarted(run_id, 1000.0, "demo", "/p/gristmill.toml", ("all",), (task,),
                   log_path=log_path),
        TaskStateChanged(run_id, 1000.5, task, TaskState.WAITING, (MISSING,)),
        TaskStarted(run_id, 1001.0, task, 1, 0, Resources(cpu=2, mem=300, pools=(("net", 1),)),
                    gpus=(0,), command="make a", definition_hash="abc"),
        OutputLine(run_id, 1001.5, task, 1, "héllo {json} \"quoted\""),
        TaskFinished(run_id, 1002.0, task, 1, Outcome.FAILED, 2, 1.0, peak_mem=4096,
                     will_retry=False, removed_outputs=("out.txt",), message="exit 2"),
        RunFinished(run_id, 1003.0, RunStatus.FAILED, 3.0, {"failed": 1}),
    ]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def runlog(tmp_path: Path):
    log = RunLog(tmp_path / "runs")
    yield log
    log.close()


def test_default_path_is_under_the_logs_dir():
    assert run_log_path("r1") == paths.logs_dir() / "runs" / "r1.jsonl"
    assert run_log_path("a/../b c", Path("/x")) == Path("/x/a_.._b_c.jsonl")
    with RunLog() as log:
        assert log.run_log_path("r1") == run_log_path("r1")


def test_each_event_is_one_json_line_with_run_task_attempt_and_event(runlog: RunLog,
                                                                    tmp_path: Path):
    path = tmp_path / "elsewhere" / "r1.jsonl"
    for event in one_run("r1", log_path=str(path)):
        runlog.on_event(event)
    assert runlog.flush(timeout=30)

    lines = read_lines(path)              # RunStarted.log_path wins over the directory
    assert not (tmp_path / "runs").exists()
    assert [line["event"] for line in lines] == [        # no output: the attempt log has it
        "run_started", "task_state_changed", "task_started", "task_finished", "run_finished"]
    for line in lines:
        assert list(line)[:5] == ["ts", "run", "task", "attempt", "event"]
        assert line["run"] == "r1"
        assert datetime.fromisoformat(line["ts"]).tzinfo is not None
    started, changed, task_started, finished, run_finished = lines
    assert datetime.fromisoformat(started["ts"]).timestamp() == 1000.0
    assert (started["task"], started["attempt"]) == (None, None)
    assert started["targets"] == ["all"] and started["workflow_path"] == "/p/gristmill.toml"
    assert changed["state"] == "waiting" and changed["attempt"] == 0
    assert changed["reasons"] == [{"kind": "missing-output", "message": "out.txt is missing"}]
    assert (task_started["task"], task_started["attempt"]) == ("a", 1)
    assert task_started["resources"] == {"cpu": 2, "mem": 300, "gpu": 0, "pools": [["net", 1]],
                                         "gpu_mem": 0}
    assert task_started["gpus"] == [0] and task_started["definition_hash"] == "abc"
    assert finished["outcome"] == "failed" and finished["exit_code"] == 2
    assert finished["peak_mem"] == 4096 and finished["removed_outputs"] == ["out.txt"]
    assert run_finished["status"] == "failed" and run_finished["counts"] == {"failed": 1}
    assert "time" not in finished and "run_id" not in finished


def test_without_a_log_path_the_file_goes_in_the_directory(runlog: RunLog, tmp_path: Path):
    for event in one_run("r2"):
        runlog.on_event(event)
    assert runlog.flush(timeout=30)
    assert runlog.run_log_path("r2") == tmp_path / "runs" / "r2.jsonl"
    assert len(read_lines(tmp_path / "runs" / "r2.jsonl")) == 5


def test_the_file_is_open_during_the_run_and_closed_at_its_end(runlog: RunLog):
    events = one_run("r1")
    runlog.on_event(events[0])
    assert runlog.flush(timeout=30)
    assert runlog.open_runs == {"r1"}
    assert len(read_lines(runlog.run_log_path("r1"))) == 1     # flushed, though still open
    for event in events[1:]:
        runlog.on_event(event)
    assert runlog.flush(timeout=30)
    assert runlog.open_runs == frozenset()
    assert len(read_lines(runlog.run_log_path("r1"))) == 5


def test_interleaved_runs_go_to_their_own_files(runlog: RunLog):
    for e1, e2 in zip(one_run("r1", task="a"), one_run("r2", task="b")):
        runlog.on_event(e1)
        runlog.on_event(e2)
    assert runlog.flush(timeout=30)
    for run_id, task in (("r1", "a"), ("r2", "b")):
        lines = read_lines(runlog.run_log_path(run_id))
        assert len(lines) == 5
        assert {line["run"] for line in lines} == {run_id}
        assert {line["task"] for line in lines} == {None, task}


def test_a_burst_of_20000_events_is_all_written_in_order(runlog: RunLog):
    runlog.on_event(RunStarted("burst", 1.0, "demo", "/p", (), ()))
    for i in range(20_000):
        runlog.on_event(TaskStateChanged("burst", 2.0, str(i), TaskState.WAITING))
    runlog.on_event(RunFinished("burst", 3.0, RunStatus.SUCCEEDED, 2.0))
    assert runlog.flush(timeout=60)
    lines = read_lines(runlog.run_log_path("burst"))
    assert len(lines) == 20_002
    assert [line["task"] for line in lines[1:-1]] == [str(i) for i in range(20_000)]


def test_a_log_that_cannot_be_opened_does_not_stop_the_others(runlog: RunLog, tmp_path: Path,
                                                             caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for event in one_run("bad", log_path=str(blocker / "bad.jsonl")):
        runlog.on_event(event)
    for event in one_run("good"):
        runlog.on_event(event)
    assert runlog.flush(timeout=30)
    assert len(read_lines(runlog.run_log_path("good"))) == 5
    assert "cannot open" in caplog.text
    assert runlog.open_runs == frozenset()


def test_close_writes_what_was_queued_and_closes_the_files(tmp_path: Path):
    log = RunLog(tmp_path)
    events = one_run("r1")
    for event in events[:-1]:                 # the run never finishes
        log.on_event(event)
    log.close()
    log.close()
    assert log.open_runs == frozenset()
    log.on_event(events[-1])                  # ignored after close
    assert log.flush(timeout=1)
    assert len(read_lines(tmp_path / "r1.jsonl")) == 4


def test_event_record_is_the_line_as_a_dict():
    record = event_record(TaskStateChanged("r", 0.0, "a", TaskState.UP_TO_DATE))
    assert record == {"ts": "1970-01-01T00:00:00.000000+00:00", "run": "r", "task": "a",
                      "attempt": 0, "event": "task_state_changed", "state": "up-to-date",
                      "reasons": []}


def test_tasks_found_up_to_date_share_one_line(tmp_path):
    import json as _json
    from gristmill.core.events import (RunFinished, RunStarted, RunStatus, TaskState,
                                       TaskStateChanged, TasksUpToDate)
    from gristmill.core.reasons import Reason, ReasonKind
    from gristmill.core.record.runlog import RunLog
    log = RunLog(tmp_path)
    up = (Reason(ReasonKind.UP_TO_DATE, "every input is older"),)
    log.on_event(RunStarted("r1", 1.0, "wf", "/w", (), ("a", "b", "c")))
    log.on_event(TasksUpToDate("r1", 1.0, ("a", "b"), (up, up)))
    log.on_event(TaskStateChanged("r1", 1.0, "c", TaskState.WAITING, up))
    log.on_event(RunFinished("r1", 2.0, RunStatus.SUCCEEDED, 1.0, {}))
    log.close()
    lines = [_json.loads(x) for x in (tmp_path / "r1.jsonl").read_text().splitlines()]
    assert [x["event"] for x in lines] == ["run_started", "tasks_up_to_date",
                                          "task_state_changed", "run_finished"]
    assert lines[1]["tasks"] == ["a", "b"] and lines[1]["run"] == "r1"
    assert "reasons" not in lines[1]          # a no-op of 20,000 tasks stays one short line
    assert lines[2]["task"] == "c" and lines[2]["state"] == "waiting"


def _as_dumped(event) -> str:
    return json.dumps(event_record(event), ensure_ascii=False)


def test_each_line_is_written_as_the_general_json_dump_would_write_it():
    from gristmill.core.record.runlog import encode_event
    events = one_run("run/é") + [
        TaskStateChanged("r", 1_700_000_000.9999996, "b[x \"y\"]", TaskState.READY,
                         (MISSING, Reason(ReasonKind.RETRY, "tab\there, ✓, \x01"))),
        TaskFinished("r", 0.0, "b", 2, Outcome.TIMED_OUT, None, float("inf"), None, True),
        TaskFinished("r", -1.5, "b", 2, Outcome.SUCCEEDED, 0, 1e-7, 2**70),
        TaskStarted("r", 1234.5, "c", 1, 3, Resources(), (), "/logs/c.1.log", "a\nb", ""),
        TaskStarted("r", 1234.5, "c", 1, 3, Resources(cpu=1), (), "", "", ""),   # 1, not 1.0
        TaskStarted("r", 1234.5, "c", 1, 3, Resources(), (), "", "", ""),
        RunStarted("r", 5.25, "w", "/p", (), (), True, ""),
    ]
    for event in events:
        assert encode_event(event) == _as_dumped(event)


def test_timestamps_round_to_the_microsecond_as_datetime_does():
    from hypothesis import given, strategies as st
    from gristmill.core.record.runlog import encode_event

    @given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False))
    def check(t):
        event = OutputLine("r", t, "a", 1, "x")
        assert encode_event(event) == _as_dumped(event)
    check()
