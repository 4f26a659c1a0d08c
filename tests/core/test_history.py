"""History: real SQLite files in temp dirs, fed with the real event classes."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from gristmill.core import paths
from gristmill.core.events import (OutputLine, Outcome, RunFinished, RunStarted, RunStatus,
                                   TaskFinished, TaskStarted, TaskState, TaskStateChanged)
from gristmill.core.record.history import SCHEMA_VERSION, History, HistoryError, TaskRecord
from gristmill.core.reasons import Reason, ReasonKind

MISSING = Reason(ReasonKind.MISSING_OUTPUT, "out.txt is missing")
RETRY = Reason(ReasonKind.RETRY, "attempt 1 failed; retrying")
UPSTREAM = Reason(ReasonKind.UPSTREAM_FAILED, "c failed")
FRESH = Reason(ReasonKind.UP_TO_DATE, "d is up to date")


def run_stream(run_id: str, workflow_path: str, t0: float, tasks: dict[str, list[Outcome]],
               *, up_to_date: tuple[str, ...] = (), skipped: tuple[str, ...] = (),
               hashes: dict[str, str] | None = None, duration: float = 2.0,
               log_path: str = "", finish: bool = True, dry_run: bool = False) -> list:
    """The events an engine publishes for one run; each task's attempts end as listed."""
    t = t0
    events: list = [RunStarted(run_id, t, workflow="demo", workflow_path=workflow_path,
                               targets=("all",),
                               tasks=tuple(tasks) + up_to_date + skipped,
                               dry_run=dry_run, log_path=log_path)]
    for name in up_to_date:
        events.append(TaskStateChanged(run_id, t, name, TaskState.UP_TO_DATE, (FRESH,)))
    counts = {"done": 0, "failed": 0, "up-to-date": len(up_to_date), "skipped": len(skipped)}
    for slot, (name, outcomes) in enumerate(tasks.items()):
        events.append(TaskStateChanged(run_id, t, name, TaskState.WAITING, (MISSING,)))
        events.append(TaskStateChanged(run_id, t, name, TaskState.READY))
        for attempt, outcome in enumerate(outcomes, start=1):
            t += 1.0
            retry = attempt < len(outcomes)
            events += [
                TaskStateChanged(run_id, t, name, TaskState.RUNNING, attempt=attempt),
                TaskStarted(run_id, t, name, attempt, slot, command=f"make {name}",
                            definition_hash=(hashes or {}).get(name, f"hash-{name}"),
                            log_path=f"/nowhere/{run_id}/{name}.{attempt}.log"),
                OutputLine(run_id, t + 0.1, name, attempt, f"building {name}"),
                TaskFinished(run_id, t + duration, name, attempt, outcome,
                             exit_code=0 if outcome is Outcome.SUCCEEDED else 1,
                             duration=duration, peak_mem=1000 * attempt, will_retry=retry),
            ]
            if retry:
                events.append(TaskStateChanged(run_id, t + duration, name, TaskState.READY,
                                               (RETRY,), attempt=attempt + 1))
        ok = outcomes[-1] is Outcome.SUCCEEDED
        counts["done" if ok else "failed"] += 1
        events.append(TaskStateChanged(run_id, t + duration, name,
                                       TaskState.DONE if ok else TaskState.FAILED))
    for name in skipped:
        events.append(TaskStateChanged(run_id, t, name, TaskState.SKIPPED, (UPSTREAM,)))
    if finish:
        status = RunStatus.SUCCEEDED if not counts["failed"] else RunStatus.FAILED
        events.append(RunFinished(run_id, t + duration + 1, status, t + duration + 1 - t0,
                                  counts))
    return events


def publish(history: History, events: list) -> None:
    for event in events:
        history.on_event(event)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def history(db: Path):
    h = History(db)
    yield h
    h.close()


@pytest.fixture
def workflow(tmp_path: Path) -> str:
    return str(tmp_path / "proj" / "gristmill.toml")


def test_default_database_is_under_the_data_dir_in_wal_mode():
    with History() as h:
        assert h.path == paths.history_db()
        assert h.path.is_relative_to(paths.data_dir())
    conn = sqlite3.connect(paths.history_db())
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_run_is_recorded_and_queried_back(history: History, workflow: str):
    events = run_stream("r1", workflow, 1000.0,
                        {"a": [Outcome.SUCCEEDED],
                         "b": [Outcome.FAILED, Outcome.SUCCEEDED],
                         "c": [Outcome.FAILED]},
                        up_to_date=("d",), skipped=("e",), log_path="/logs/runs/r1.jsonl")
    publish(history, events)
    assert history.flush(timeout=30)

    run = history.run("r1")
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.workflow_name == "demo" and run.workflow_path == workflow
    assert run.targets == ("all",) and run.task_count == 5
    assert run.started == 1000.0 and run.ended == events[-1].time
    assert run.duration == pytest.approx(events[-1].time - 1000.0)
    assert dict(run.counts) == {"done": 2, "failed": 1, "up-to-date": 1, "skipped": 1}
    assert run.counts_text == "2 done, 1 failed, 1 up to date, 1 skipped"
    assert run.pid == os.getpid() and run.hostname == socket.gethostname()
    assert run.log_path == "/logs/runs/r1.jsonl"
    assert history.runs() == [run]

    attempts = history.attempts("r1")
    assert [(a.task, a.attempt, a.outcome) for a in attempts] == [
        ("a", 1, Outcome.SUCCEEDED), ("b", 1, Outcome.FAILED),
        ("b", 2, Outcome.SUCCEEDED), ("c", 1, Outcome.FAILED)]
    b1, b2 = attempts[1], attempts[2]
    assert b1.reasons == (MISSING,) and b1.reasons_text == "out.txt is missing"
    assert b2.reasons == (RETRY,)
    assert b1.exit_code == 1 and b2.exit_code == 0
    assert b2.peak_mem == 2000 and b2.duration == 2.0 and b2.slot == 1
    assert b2.ended - b2.started == pytest.approx(2.0)
    assert b2.command == "make b" and b2.definition_hash == "hash-b"
    assert b2.log_path == "/nowhere/r1/b.2.log"

    records = history.task_records(workflow)
    assert set(records) == {"a", "b"}          # c failed; d was up to date; e skipped
    assert records["b"] == TaskRecord("b", "hash-b", b2.ended, 2.0, "r1")
    assert history.durations(workflow) == {"a": 2.0, "b": 2.0}
    assert history.last_success(workflow, "a").definition_hash == "hash-a"
    assert history.last_success(workflow, "c") is None
    assert history.run("nope") is None and history.attempts("nope") == []


def test_two_runs_keep_the_latest_success_of_each_task(history: History, workflow: str,
                                                       tmp_path: Path):
    other = str(tmp_path / "other" / "gristmill.toml")
    publish(history, run_stream("r1", workflow, 1000.0,
                                {"a": [Outcome.SUCCEEDED], "b": [Outcome.SUCCEEDED]}))
    publish(history, run_stream("r2", workflow, 2000.0,
                                {"a": [Outcome.SUCCEEDED], "b": [Outcome.FAILED]},
                                hashes={"a": "hash-a2", "b": "hash-b2"}, duration=5.0))
    publish(history, run_stream("o1", other, 1500.0, {"a": [Outcome.SUCCEEDED]}))
    assert history.flush(timeout=30)

    assert [r.id for r in history.runs()] == ["r2", "o1", "r1"]
    assert [r.id for r in history.runs(workflow)] == ["r2", "r1"]
    assert [r.id for r in history.runs(Path(workflow), limit=1)] == ["r2"]
    assert [r.id for r in history.runs(limit=None)] == ["r2", "o1", "r1"]
    assert history.run("r1").status is RunStatus.SUCCEEDED
    assert history.run("r2").status is RunStatus.FAILED

    records = history.task_records(Path(workflow))
    assert (records["a"].definition_hash, records["a"].duration, records["a"].run_id) == \
        ("hash-a2", 5.0, "r2")
    # b failed in r2: its last success is still the one from r1.
    assert (records["b"].definition_hash, records["b"].run_id) == ("hash-b", "r1")
    assert history.durations(other) == {"a": 2.0}


def test_a_run_is_written_running_at_its_start(history: History, workflow: str):
    events = run_stream("r1", workflow, 1000.0, {"a": [Outcome.SUCCEEDED]}, finish=False)
    publish(history, events[:5])             # RunStarted ... TaskStarted
    assert history.flush(timeout=30)
    run = history.run("r1")
    assert run.status is RunStatus.RUNNING and run.ended is None and run.duration is None
    assert run.counts_text == ""
    [attempt] = history.attempts("r1")
    assert attempt.outcome is None and attempt.ended is None
    assert history.task_records(workflow) == {}


def test_a_success_whose_start_another_history_saw_takes_its_hash_from_the_database(
        db: Path, workflow: str):
    events = run_stream("r1", workflow, 1000.0, {"a": [Outcome.SUCCEEDED]},
                        hashes={"a": "hash-a1"})
    finish_at = next(i for i, e in enumerate(events) if isinstance(e, TaskFinished))
    with History(db) as first:               # the run's start and the task's start
        publish(first, events[:finish_at])
    with History(db) as second:              # the rest: it knows neither the run nor the hash
        publish(second, events[finish_at:])
        assert second.flush(timeout=30)
        assert second.task_records(workflow) == {
            "a": TaskRecord("a", "hash-a1", events[finish_at].time, 2.0, "r1")}
        [attempt] = second.attempts("r1")
        assert attempt.outcome is Outcome.SUCCEEDED and attempt.reasons == (MISSING,)


def test_an_event_that_cannot_be_written_costs_only_itself(history: History, workflow: str):
    events = run_stream("r1", workflow, 1000.0,
                        {name: [Outcome.SUCCEEDED] for name in ("a", "b", "c")})
    # SQLite integers stop at 2**63: b's finish cannot be stored, the rest of the batch can.
    events = [replace(e, peak_mem=2 ** 70) if isinstance(e, TaskFinished) and e.task == "b"
              else e for e in events]
    publish(history, events)
    assert history.flush(timeout=30)
    attempts = {a.task: a for a in history.attempts("r1")}
    assert attempts["a"].outcome is attempts["c"].outcome is Outcome.SUCCEEDED
    assert attempts["b"].outcome is None and attempts["b"].definition_hash == "hash-b"
    assert set(history.task_records(workflow)) == {"a", "c"}
    assert history.run("r1").status is RunStatus.SUCCEEDED


def test_output_lines_and_dry_runs_leave_no_trace(history: History, workflow: str):
    for i in range(100):
        history.on_event(OutputLine("r0", float(i), "a", 1, f"line {i}"))
    publish(history, run_stream("dry", workflow, 1000.0, {"a": [Outcome.SUCCEEDED]},
                                dry_run=True))
    assert history.flush(timeout=30)
    assert history.runs() == []
    assert history.attempts("r0") == [] and history.attempts("dry") == []
    assert history.task_records(workflow) == {}
    assert history.mark_interrupted() == []


def test_queries_work_from_other_threads(history: History, workflow: str):
    publish(history, run_stream("r1", workflow, 1000.0, {"a": [Outcome.SUCCEEDED]}))
    assert history.flush(timeout=30)
    seen: list = []

    def query() -> None:
        seen.append((history.run("r1").status, history.durations(workflow)))

    threads = [threading.Thread(target=query) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [(RunStatus.SUCCEEDED, {"a": 2.0})] * 4


# --- interrupted runs -------------------------------------------------------

CHILD = r"""
import os, sys, time
from pathlib import Path
from gristmill.core.events import RunStarted, TaskStarted
from gristmill.core.record.history import History

db, workflow, run_ids = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
h = History(db)
for run_id in run_ids:
    h.on_event(RunStarted(run_id, time.time(), workflow="w", workflow_path=workflow,
                          targets=(), tasks=("a",)))
    h.on_event(TaskStarted(run_id, time.time() + 1, "a", 1, 0))
assert h.flush(timeout=30)
print("ready", flush=True)
sys.stdin.readline()
os._exit(0)          # dies without finishing its runs
"""


def test_runs_of_a_process_that_died_are_marked_interrupted(history: History, db: Path,
                                                           workflow: str, tmp_path: Path):
    other = str(tmp_path / "other" / "gristmill.toml")
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), workflow, "c1", "c2"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        publish(history, run_stream("mine", other, time.time(), {}, finish=False))
        assert history.flush(timeout=30)
        # The child lives: nothing to mark. Our own run is active here.
        assert history.mark_interrupted() == []
        assert history.run("c1").pid == child.pid
        if sys.platform.startswith("linux"):
            # The same pid, but another process's start time: a reused pid.
            with sqlite3.connect(db) as conn:
                conn.execute("UPDATE runs SET process_start = 'x:1' WHERE id = 'c2'")
            assert history.mark_interrupted() == ["c2"]
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        child.stdout.close()

    assert history.mark_interrupted(other) == []          # only that workflow's runs
    assert sorted(history.mark_interrupted(workflow)) == (
        ["c1"] if sys.platform.startswith("linux") else ["c1", "c2"])
    c1 = history.run("c1")
    assert c1.status is RunStatus.INTERRUPTED
    [attempt] = history.attempts("c1")
    assert c1.ended == attempt.started == attempt.ended      # the last moment it was seen
    assert attempt.outcome is None
    assert history.mark_interrupted() == []
    assert history.run("mine").status is RunStatus.RUNNING


def test_runs_of_this_process_not_active_in_this_history_are_interrupted(db: Path,
                                                                         workflow: str):
    first = History(db)
    publish(first, run_stream("r1", workflow, 1000.0, {"a": [Outcome.SUCCEEDED]},
                              finish=False))
    assert first.flush(timeout=30)
    assert first.mark_interrupted() == []                   # active in `first`
    first.close()
    with History(db) as second:
        assert second.mark_interrupted() == ["r1"]
        run = second.run("r1")
        assert run.status is RunStatus.INTERRUPTED and run.ended == 1003.0


def test_runs_of_other_hosts_are_left_alone(history: History, db: Path, workflow: str):
    first = History(db)
    publish(first, run_stream("r1", workflow, 1000.0, {}, finish=False))
    first.close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET hostname = 'elsewhere.example' WHERE id = 'r1'")
    assert history.mark_interrupted() == []
    assert history.run("r1").status is RunStatus.RUNNING


def test_a_run_finished_after_closing_is_not_interrupted(history: History, workflow: str):
    events = run_stream("r1", workflow, 1000.0, {"a": [Outcome.SUCCEEDED]})
    publish(history, events)
    # Whether or not the writer got to RunFinished yet, the run is not interrupted.
    assert history.mark_interrupted() == []
    assert history.flush(timeout=30)
    assert history.run("r1").status is RunStatus.SUCCEEDED


# --- retention --------------------------------------------------------------


def test_prune_deletes_old_runs_their_attempts_and_their_logs(history: History, workflow: str,
                                                              tmp_path: Path):
    logs = paths.logs_dir()
    outside = tmp_path / "outside.log"
    outside.write_text("keep me")
    now = time.time()
    day = 86400.0
    files: dict[str, list[Path]] = {}
    for run_id, age in [("old1", 10), ("old2", 8), ("mid", 3), ("new", 1)]:
        run_log = logs / "runs" / f"{run_id}.jsonl"
        task_log = logs / "tasks" / run_id / "a.1.log"
        for f in (run_log, task_log):
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("x")
        files[run_id] = [run_log, task_log]
        events = run_stream(run_id, workflow, now - age * day, {"a": [Outcome.SUCCEEDED]},
                            log_path=str(run_log))
        started = events[4]
        events[4] = TaskStarted(run_id, started.time, "a", 1, 0,
                                log_path=str(outside if run_id == "old1" else task_log))
        publish(history, events)
    publish(history, run_stream("stuck", workflow, now - 20 * day, {}, finish=False))
    assert history.flush(timeout=30)

    assert history.prune() == []
    assert sorted(history.prune(keep_days=5)) == ["old1", "old2"]
    assert [r.id for r in history.runs()] == ["new", "mid", "stuck"]
    assert history.attempts("old1") == [] and history.attempts("old2") == []
    for f in files["old1"][:1] + files["old2"]:
        assert not f.exists()
    assert not (logs / "tasks" / "old2").exists()            # its emptied folder went too
    assert (logs / "runs").is_dir()                           # folders right under logs stay
    assert outside.read_text() == "keep me"                   # not under the logs dir
    assert all(f.exists() for f in files["mid"] + files["new"])
    assert "a" in history.task_records(workflow)             # last successes stay

    assert history.prune(keep_runs=1) == ["mid"]              # "stuck" is still running
    assert [r.id for r in history.runs()] == ["new", "stuck"]
    assert not any(f.exists() for f in files["mid"])
    assert len(history.attempts("new")) == 1


# --- flushing, bursts, lifecycle -------------------------------------------


def test_a_burst_is_accepted_while_the_database_is_locked(history: History, db: Path,
                                                          workflow: str):
    """on_event only enqueues: 20,000 events go in while no write can happen."""
    tasks = [f"t{i}" for i in range(4999)]
    events: list = [RunStarted("burst", 1.0, "demo", workflow, (), tuple(tasks))]
    for i, name in enumerate(tasks):
        events += [TaskStateChanged("burst", 2.0, name, TaskState.READY, (MISSING,)),
                   TaskStarted("burst", 2.0, name, 1, i % 8, definition_hash=f"h{i}"),
                   OutputLine("burst", 2.5, name, 1, "..."),
                   TaskFinished("burst", 3.0, name, 1, Outcome.SUCCEEDED, 0, 1.0)]
    events.append(RunFinished("burst", 4.0, RunStatus.SUCCEEDED, 3.0, {"done": len(tasks)}))
    assert len(events) == 19998

    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")                        # holds the write lock
    try:
        publish(history, events)                              # returns: nothing waits on disk
        assert history.runs() == []                           # nothing could be written
        assert history.flush(timeout=0.2) is False
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert history.flush(timeout=60)
    assert history.run("burst").status is RunStatus.SUCCEEDED
    assert len(history.attempts("burst")) == len(tasks)
    records = history.task_records(workflow)
    assert len(records) == len(tasks) and records["t1234"].definition_hash == "h1234"
    assert history.attempts("burst")[0].reasons == (MISSING,)


def test_close_writes_what_was_queued_and_then_ignores_events(db: Path, workflow: str):
    h = History(db)
    publish(h, run_stream("r1", workflow, 1000.0, {"a": [Outcome.SUCCEEDED]}))
    h.close()
    h.close()                                                 # idempotent
    h.on_event(RunStarted("late", 1.0, "demo", workflow, (), ()))
    assert h.flush(timeout=1)
    with pytest.raises(HistoryError):
        h.runs()
    with History(db) as again:
        assert [r.id for r in again.runs()] == ["r1"]
        assert again.durations(workflow) == {"a": 2.0}


def test_a_database_from_a_newer_version_is_refused(db: Path):
    History(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryError, match="newer"):
        History(db)


def test_each_tasks_latest_attempt_that_did_not_succeed_is_untrusted(history: History,
                                                                      workflow: str):
    # b failed, then its retry succeeded (the retry's start and the failure's end are
    # written in one stretch); c failed; d never finished: its run is still open.
    publish(history, run_stream("r1", workflow, 1000.0,
                                {"a": [Outcome.SUCCEEDED],
                                 "b": [Outcome.FAILED, Outcome.SUCCEEDED],
                                 "c": [Outcome.FAILED]}))
    publish(history, [RunStarted("r2", 2000.0, "demo", workflow, ("d",), ("d",)),
                      TaskStarted("r2", 2001.0, "d", 1, 0, command="make d")])
    assert history.flush(timeout=30)
    untrusted = history.untrusted(workflow)
    assert sorted(untrusted) == ["c", "d"]
    assert (untrusted["c"].run_id, untrusted["c"].outcome) == ("r1", "failed")
    assert (untrusted["d"].outcome, untrusted["d"].run_status) == (None, "running")
    # A later success of c trusts it again.
    publish(history, run_stream("r3", workflow, 3000.0, {"c": [Outcome.SUCCEEDED]}))
    assert history.flush(timeout=30)
    assert sorted(history.untrusted(workflow)) == ["d"]


def test_a_history_of_schema_1_opens_and_keeps_its_runs(db: Path, workflow: str):
    # A file written by the version before: no last_attempt, no seen, no process groups.
    with History(db) as h:
        publish(h, run_stream("old", workflow, 1000.0,
                              {"a": [Outcome.SUCCEEDED], "b": [Outcome.FAILED]}))
    conn = sqlite3.connect(db)
    conn.executescript("""
        DROP TABLE last_attempt;
        ALTER TABLE runs DROP COLUMN seen;
        ALTER TABLE attempts DROP COLUMN pgid;
        ALTER TABLE attempts DROP COLUMN process_start;
        PRAGMA user_version = 1;
    """)
    conn.close()
    with History(db) as h:
        assert [r.id for r in h.runs()] == ["old"]
        assert sorted(h.task_records(workflow)) == ["a"]
        # Each task's latest attempt is read from the attempts it had.
        assert sorted(h.untrusted(workflow)) == ["b"]
        publish(h, run_stream("new", workflow, 2000.0, {"b": [Outcome.SUCCEEDED]}))
        assert h.flush(timeout=30)
        assert h.untrusted(workflow) == {}
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.close()
