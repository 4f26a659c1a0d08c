"""The engine with real processes in temp dirs, observed through its events."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from gristmill.core.decide.capacity import Capacity
from gristmill.core.run.engine import Engine, RunOptions
from gristmill.core.errors import WorkflowError
from gristmill.core.events import (EventBus, Outcome, OutputLine, RunFinished, RunStarted,
                                   RunStatus, TaskFinished, TaskStarted, TaskState,
                                   TaskStateChanged, TasksUpToDate, told_state)
from gristmill.core.reasons import ReasonKind

from wf import Recorder as _Recorder, task, workflow

GB = 1000**3


class Recorder(_Recorder):
    def states(self, name):
        """Each state the events put ``name`` in (``told_state``)."""
        return [s for e in self.events if getattr(e, "task", None) == name
                for s in (told_state(e),) if s is not None]

    def final(self):
        out = {}
        for e in self.events:
            if isinstance(e, TasksUpToDate):
                out.update(dict.fromkeys(e.tasks, TaskState.UP_TO_DATE))
            elif told_state(e) is not None:
                out[e.task] = told_state(e)
        return out


def run(wf, targets=(), **opts):
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    cap = opts.pop("capacity", Capacity(cpu=4, mem=8 * GB, gpu=0))
    result = Engine(wf, bus=bus, options=RunOptions(capacity=cap, **opts)).run(list(targets))
    return result, rec


def test_runs_in_dependency_order_and_second_run_does_nothing(tmp_path):
    (tmp_path / "src.txt").write_text("abc\n")
    wf = workflow(tmp_path,
                  task("upper", "tr a-z A-Z < src.txt > out/up.txt", inputs=["src.txt"],
                       outputs=["out/up.txt"]),
                  task("count", "wc -c < out/up.txt > n.txt", inputs=["out/up.txt"],
                       outputs=["n.txt"]))
    result, rec = run(wf)
    assert result.status is RunStatus.SUCCEEDED
    assert (tmp_path / "out/up.txt").read_text() == "ABC\n"
    assert (tmp_path / "n.txt").read_text().strip() == "4"
    started = [e.task for e in rec.of(TaskStarted)]
    assert started == ["upper", "count"]
    result, rec = run(wf)
    assert rec.of(TaskStarted) == []
    assert rec.final() == {"upper": TaskState.UP_TO_DATE, "count": TaskState.UP_TO_DATE}
    # A no-op is one event for all its tasks, each with the reason it is up to date.
    assert rec.of(TaskStateChanged) == []
    [fresh] = rec.of(TasksUpToDate)
    assert fresh.tasks == ("upper", "count")
    assert [r[0].kind for r in fresh.reasons] == [ReasonKind.UP_TO_DATE] * 2
    assert "every input is older than output out/up.txt" in fresh.reasons[0][0].message


def test_events_of_a_task_come_in_order(tmp_path):
    wf = workflow(tmp_path, task("hello", "echo one; echo two >&2; printf three",
                                 outputs=["x"], phony=True))
    result, rec = run(wf)
    kinds = [type(e).__name__ for e in rec.events]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert rec.states("hello") == [TaskState.WAITING, TaskState.READY, TaskState.RUNNING,
                                   TaskState.DONE]
    lines = [e.text for e in rec.of(OutputLine)]
    assert lines == ["one", "two", "three"]
    # Told once each (issue 18): the start by TaskStarted, the success by TaskFinished,
    # with no TaskStateChanged to running or done carrying the same facts.
    told = [type(e).__name__ + (f" {e.state.value}" if isinstance(e, TaskStateChanged) else "")
            for e in rec.events if getattr(e, "task", None) == "hello"
            and not isinstance(e, OutputLine)]
    assert told == ["TaskStateChanged waiting", "TaskStateChanged ready", "TaskStarted",
                    "TaskFinished"]
    fin = rec.of(TaskFinished)[0]
    assert fin.outcome is Outcome.SUCCEEDED and fin.exit_code == 0 and fin.duration >= 0
    assert fin.peak_mem and fin.peak_mem > 100_000
    log = Path(rec.of(TaskStarted)[0].log_path)
    assert log.read_text() == "one\ntwo\nthree"
    assert kinds.index("OutputLine") < kinds.index("TaskFinished")


def test_touching_an_input_reruns_exactly_its_downstream(tmp_path):
    for n in "ab":
        (tmp_path / f"{n}.in").write_text(n)
    wf = workflow(tmp_path,
                  task("a", "cp a.in a.out", inputs=["a.in"], outputs=["a.out"]),
                  task("b", "cp b.in b.out", inputs=["b.in"], outputs=["b.out"]),
                  task("both", "cat a.out b.out > both", inputs=["a.out", "b.out"],
                       outputs=["both"]))
    run(wf)
    later = time.time() + 5
    os.utime(tmp_path / "a.in", (later, later))
    result, rec = run(wf)
    assert [e.task for e in rec.of(TaskStarted)] == ["a", "both"]
    assert rec.final()["b"] is TaskState.UP_TO_DATE
    first = [e for e in rec.of(TaskStateChanged) if e.task == "a"][0]
    assert first.reasons[0].kind is ReasonKind.INPUT_NEWER
    assert "input a.in" in first.reasons[0].message and "newer than output a.out" in \
        first.reasons[0].message


def test_unchanged_output_does_not_rerun_dependants(tmp_path):
    # Like make and ninja's restat: a dependency that ran without touching its output.
    (tmp_path / "in").write_text("x")
    wf = workflow(tmp_path,
                  task("gen", "cmp -s in mid || cp in mid", inputs=["in"], outputs=["mid"]),
                  task("use", "cp mid out", inputs=["mid"], outputs=["out"]))
    run(wf)
    later = time.time() + 5
    os.utime(tmp_path / "in", (later, later))
    result, rec = run(wf)
    # gen runs (its input is newer) but leaves mid alone, so use stays up to date.
    assert [e.task for e in rec.of(TaskStarted)] == ["gen"]
    # gen's output is now older than its input, but that is gen's affair: use is up to date.
    assert rec.final()["use"] is TaskState.UP_TO_DATE


def test_failure_removes_partial_outputs_and_skips_dependants(tmp_path):
    (tmp_path / "keep.txt").write_text("old")
    wf = workflow(tmp_path,
                  task("bad", "echo half > half.txt; echo new > keep.txt; exit 4",
                       outputs=["half.txt", "keep.txt"]),
                  task("after", "cp half.txt x", inputs=["half.txt"], outputs=["x"]),
                  task("other", "echo ok > other.txt", outputs=["other.txt"]))
    result, rec = run(wf, keep_going=True)
    assert result.status is RunStatus.FAILED and result.exit_code == 1
    assert not (tmp_path / "half.txt").exists()
    assert not (tmp_path / "keep.txt").exists()     # modified by the failed attempt
    assert (tmp_path / "other.txt").exists()        # an independent branch went on
    final = rec.final()
    assert final["bad"] is TaskState.FAILED
    assert final["after"] is TaskState.SKIPPED
    skip = [e for e in rec.of(TaskStateChanged) if e.task == "after"][-1]
    assert skip.reasons[0].kind is ReasonKind.UPSTREAM_FAILED and "bad" in skip.reasons[0].message
    fin = rec.of(TaskFinished)
    bad = [f for f in fin if f.task == "bad"][0]
    assert bad.exit_code == 4 and set(bad.removed_outputs) == {"half.txt", "keep.txt"}


def test_unchanged_existing_output_survives_a_failure(tmp_path):
    (tmp_path / "data.txt").write_text("precious")
    wf = workflow(tmp_path, task("bad", "exit 1", outputs=["data.txt"], phony=False,
                                 inputs=[]))
    os.utime(tmp_path / "data.txt", (1, 1))
    run(wf, force_all=True)
    assert (tmp_path / "data.txt").read_text() == "precious"


def test_without_keep_going_nothing_new_starts_after_a_failure(tmp_path):
    wf = workflow(tmp_path,
                  task("bad", "exit 1", phony=True),
                  task("late", "touch late", outputs=["late"], after=["bad2"]),
                  task("bad2", "sleep 0.3", phony=True))
    result, rec = run(wf, jobs=1)
    assert result.status is RunStatus.FAILED
    assert not (tmp_path / "late").exists()
    assert rec.final()["late"] is TaskState.SKIPPED


def test_retries_with_backoff_until_success(tmp_path):
    # Fails twice, then succeeds: the attempt number comes from the environment.
    wf = workflow(tmp_path, task("flaky", '[ "$GRISTMILL_ATTEMPT" -ge 3 ] && touch ok',
                                 outputs=["ok"], retries=2))
    result, rec = run(wf)
    assert result.status is RunStatus.SUCCEEDED
    fins = rec.of(TaskFinished)
    assert [f.attempt for f in fins] == [1, 2, 3]
    assert [f.will_retry for f in fins] == [True, True, False]
    starts = [e.time for e in rec.of(TaskStarted)]
    assert starts[2] - starts[1] >= starts[1] - starts[0] >= 0.45   # backoff doubles


def test_timeout_kills_the_task(tmp_path):
    wf = workflow(tmp_path, task("slow", "sleep 30", phony=True, timeout=0.5))
    t0 = time.monotonic()
    result, rec = run(wf)
    assert time.monotonic() - t0 < 5
    fin = rec.of(TaskFinished)[0]
    assert fin.outcome is Outcome.TIMED_OUT and "timed out" in fin.message
    assert result.status is RunStatus.FAILED


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _run_until(engine, *files):
    """Start ``engine.run([])`` on a thread; return (the thread, {"r": its result}) once
    every one of ``files`` exists."""
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("r", engine.run([])))
    th.start()
    deadline = time.time() + 10
    while not all(f.exists() for f in files):
        assert time.time() < deadline
        time.sleep(0.02)
    return th, result


def test_cancel_kills_every_process_tree_within_two_seconds(tmp_path):
    script = "sh -c 'sleep 300 & echo $! > {n}.child; trap \"\" TERM; sleep 300' & echo $! > {n}.pid; wait"
    wf = workflow(tmp_path, *[task(f"t{i}", script.format(n=f"t{i}"), phony=True)
                              for i in range(2)],
                  task("later", "touch later", outputs=["later"], after=["t0", "t1"]))
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    engine = Engine(wf, bus=bus, options=RunOptions(capacity=Capacity(4, 8 * GB)))
    th, result = _run_until(engine, *[tmp_path / f"t{i}.child" for i in range(2)])
    pids = [int((tmp_path / f"t{i}.{k}").read_text()) for i in range(2) for k in ("pid", "child")]
    assert all(_alive(p) for p in pids)
    t0 = time.monotonic()
    engine.cancel()
    # Every process of both trees is gone within two seconds of the cancel.
    while any(_alive(p) for p in pids) and time.monotonic() - t0 < 2.0:
        time.sleep(0.01)
    assert not any(_alive(p) for p in pids)
    th.join(10)
    assert not th.is_alive()
    assert result["r"].status is RunStatus.CANCELLED
    assert rec.final()["later"] is TaskState.SKIPPED
    assert rec.of(RunFinished)[0].status is RunStatus.CANCELLED
    # What the cancel stopped is cancelled, not failed (issue 19): its own outcome.
    assert rec.final()["t0"] is TaskState.CANCELLED and rec.final()["t1"] is TaskState.CANCELLED
    assert rec.of(RunFinished)[0].counts == {"skipped": 1, "cancelled": 2}
    assert result["r"].failed == ()
    stopped = [e for e in rec.of(TaskStateChanged) if e.task == "t0"][-1]
    assert stopped.reasons[0].kind is ReasonKind.RUN_CANCELLED
    assert stopped.reasons[0].message == "stopped when the run was cancelled"


def test_abort_after_cancel_kills_without_waiting_out_the_grace(tmp_path, monkeypatch):
    # A task that ignores SIGTERM outlives a cancel's grace; an abort kills it at once.
    from gristmill.core.run import local as executor
    monkeypatch.setattr(executor, "KILL_GRACE", 30.0)
    wf = workflow(tmp_path, task("stubborn", "trap '' TERM; echo $$ > pid; sleep 300", phony=True))
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    engine = Engine(wf, bus=bus, options=RunOptions(capacity=Capacity(2, 8 * GB)))
    th, result = _run_until(engine, tmp_path / "pid")
    pid = int((tmp_path / "pid").read_text())
    engine.cancel()
    time.sleep(0.3)
    assert _alive(pid)          # SIGTERM is ignored: the grace is running
    t0 = time.monotonic()
    engine.abort()
    th.join(10)
    assert not th.is_alive()
    assert time.monotonic() - t0 < 3.0     # not the 5 s a cancel waits before it gives up
    assert not _alive(pid)
    assert result["r"].status is RunStatus.CANCELLED
    finished = rec.of(TaskFinished)
    assert [f.task for f in finished] == ["stubborn"] and finished[0].outcome is Outcome.CANCELLED


def _intervals(tmp_path: Path, names):
    out = {}
    for n in names:
        start, end = (tmp_path / f"{n}.t").read_text().split()
        out[n] = (float(start), float(end))
    return out


STAMP = "python3 -c 'import time;print(time.time())' > {n}.t; sleep 0.3; " \
        "python3 -c 'import time;print(time.time())' >> {n}.t"


def test_memory_heavy_tasks_never_overlap(tmp_path):
    cap = Capacity(cpu=8, mem=10 * GB)
    names = ["big1", "big2", "small1", "small2"]
    wf = workflow(tmp_path,
                  *[task(n, STAMP.format(n=n), phony=True,
                         mem=(6 if n.startswith("big") else 1) * GB) for n in names])
    result, rec = run(wf, capacity=cap)
    assert result.status is RunStatus.SUCCEEDED
    iv = _intervals(tmp_path, names)
    a, b = iv["big1"], iv["big2"]
    assert a[1] <= b[0] or b[1] <= a[0], f"60% tasks overlapped: {a} {b}"
    # Replaying the events, memory in use never exceeds the machine's.
    in_use, peak = 0, 0
    for e in rec.events:
        if isinstance(e, TaskStarted):
            in_use += e.resources.mem
            peak = max(peak, in_use)
        elif isinstance(e, TaskFinished):
            in_use -= wf.tasks[e.task].resources.mem
    assert peak <= cap.mem
    assert peak >= 7 * GB      # a big and a small task did share the machine


def test_replaying_the_events_never_double_books_a_slot(tmp_path):
    # A freed slot is refilled before the finished task's plan is updated; the events
    # still tell it in order: its TaskFinished before the TaskStarted that reuses the slot.
    names = [f"t{i:02d}" for i in range(40)]
    wf = workflow(tmp_path, *[task(n, f"touch {n}.out", outputs=[f"{n}.out"]) for n in names])
    result, rec = run(wf, jobs=2)
    assert result.status is RunStatus.SUCCEEDED
    assert all((tmp_path / f"{n}.out").exists() for n in names)
    busy: dict[int, str] = {}
    for e in rec.events:
        if isinstance(e, TaskStarted):
            assert e.slot not in busy and len(busy) < 2
            busy[e.slot] = e.task
        elif isinstance(e, TaskFinished):
            assert e.task in busy.values()
            busy = {s: t for s, t in busy.items() if t != e.task}
    for n in names:
        # (a ready task told why it waits is ready again, with that reason)
        states = [s for i, s in enumerate(rec.states(n)) if i == 0 or s != rec.states(n)[i - 1]]
        assert states == [TaskState.WAITING, TaskState.READY, TaskState.RUNNING,
                          TaskState.DONE]
        kinds = [type(e).__name__ for e in rec.events
                 if getattr(e, "task", None) == n and not isinstance(e, TaskStateChanged)]
        assert kinds == ["TaskStarted", "TaskFinished"]


def test_gpu_tasks_never_share_a_device(tmp_path):
    cap = Capacity(cpu=8, mem=8 * GB, gpu=2)
    names = [f"g{i}" for i in range(5)]
    cmd = "echo $CUDA_VISIBLE_DEVICES > {n}.dev; " + STAMP
    wf = workflow(tmp_path, *[task(n, cmd.format(n=n), phony=True, gpu=1) for n in names],
                  task("cpu", "echo \"[$CUDA_VISIBLE_DEVICES]\" > cpu.dev", phony=True))
    result, rec = run(wf, capacity=cap)
    assert result.status is RunStatus.SUCCEEDED
    iv = _intervals(tmp_path, names)
    dev = {n: (tmp_path / f"{n}.dev").read_text().strip() for n in names}
    assert set(dev.values()) <= {"0", "1"}
    for x in names:
        for y in names:
            if x < y and dev[x] == dev[y]:
                (a, b), (c, d) = iv[x], iv[y]
                assert b <= c or d <= a, f"{x} and {y} shared GPU {dev[x]}"
    started = {e.task: e.gpus for e in rec.of(TaskStarted)}
    assert all(len(started[n]) == 1 for n in names)
    assert (tmp_path / "cpu.dev").read_text().strip() == "[]"   # a CPU task sees no GPU


def test_pools_limit_concurrency(tmp_path):
    names = [f"n{i}" for i in range(4)]
    wf = workflow(tmp_path, *[task(n, STAMP.format(n=n), phony=True, pools=[("net", 1)])
                              for n in names], pools={"net": 1})
    result, _ = run(wf, capacity=Capacity(cpu=8, mem=8 * GB, pools={"net": 1}))
    iv = sorted(_intervals(tmp_path, names).values())
    assert all(iv[i][1] <= iv[i + 1][0] for i in range(len(iv) - 1))


def test_critical_path_starts_first(tmp_path):
    # With one slot, the head of the long chain goes before the lone short task
    # even though the short one is declared first.
    wf = workflow(tmp_path,
                  task("lone", "true", phony=True),
                  task("c1", "touch c1", outputs=["c1"]),
                  task("c2", "touch c2", inputs=["c1"], outputs=["c2"]),
                  task("c3", "touch c3", inputs=["c2"], outputs=["c3"]))
    result, rec = run(wf, jobs=1)
    assert [e.task for e in rec.of(TaskStarted)][0] == "c1"


def test_task_larger_than_the_machine_is_a_workflow_error(tmp_path):
    wf = workflow(tmp_path, task("huge", "true", phony=True, mem=64 * GB))
    with pytest.raises(WorkflowError) as exc:
        run(wf, capacity=Capacity(cpu=2, mem=8 * GB))
    assert str(exc.value).startswith("gristmill.toml:1:1: task 'huge' asks for mem = 64.0 GB")


def test_dry_run_runs_nothing(tmp_path):
    wf = workflow(tmp_path, task("t", "touch t", outputs=["t"]))
    result, rec = run(wf, dry_run=True)
    assert not (tmp_path / "t").exists()
    assert rec.of(TaskStarted) == []
    assert rec.of(RunStarted)[0].dry_run
    assert rec.final() == {"t": TaskState.WAITING}


def test_multiple_commands_stop_at_the_first_failure(tmp_path):
    wf = workflow(tmp_path, task("t", ["echo a > a", "false", "echo c > c"], phony=True))
    result, rec = run(wf)
    assert (tmp_path / "a").exists() and not (tmp_path / "c").exists()
    assert rec.of(TaskFinished)[0].exit_code == 1


def test_ignored_errors_go_on(tmp_path):
    from dataclasses import replace
    t = replace(task("t", ["false", "echo c > c"], phony=True), ignore_errors=(True, False))
    wf = workflow(tmp_path, t)
    result, rec = run(wf)
    assert result.status is RunStatus.SUCCEEDED and (tmp_path / "c").exists()


def test_env_and_cwd(tmp_path):
    (tmp_path / "sub").mkdir()
    from dataclasses import replace
    t = replace(task("t", "echo $GREETING > here.txt; pwd >> here.txt", phony=True,
                     env=[("GREETING", "hi there")]), cwd=str(tmp_path / "sub"))
    wf = workflow(tmp_path, t)
    run(wf)
    text = (tmp_path / "sub/here.txt").read_text().split("\n")
    assert text[0] == "hi there" and text[1].endswith("/sub")


def test_history_notices_a_changed_command(tmp_path):
    from dataclasses import replace
    from gristmill.core.record.history import History
    history = History()
    wf = workflow(tmp_path, task("t", "echo 1 > t", outputs=["t"]))
    Engine(wf, history=history, options=RunOptions(capacity=Capacity(2, GB))).run([])
    wf2 = workflow(tmp_path, replace(wf.tasks["t"], commands=("echo 2 > t",)))
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    Engine(wf2, bus=bus, history=history, options=RunOptions(capacity=Capacity(2, GB))).run([])
    first = [e for e in rec.of(TaskStateChanged) if e.task == "t"][0]
    assert first.reasons[0].kind is ReasonKind.DEFINITION_CHANGED
    assert (tmp_path / "t").read_text() == "2\n"
    history.close()


def test_a_task_over_its_declared_memory_is_killed(tmp_path):
    hog = ("python3 -c 'import time; b = bytearray(400_000_000); b[::4096] = b\"x\" * "
           "len(b[::4096]); time.sleep(30)' > hog.out")
    wf = workflow(tmp_path, task("hog", hog, outputs=["hog.out"], mem=100 * 1000**2),
                  task("fine", "python3 -c 'print(1)' > fine.out", outputs=["fine.out"],
                       mem=100 * 1000**2))
    t0 = time.monotonic()
    result, rec = run(wf, keep_going=True)
    assert time.monotonic() - t0 < 10
    fin = {f.task: f for f in rec.of(TaskFinished)}
    assert fin["hog"].outcome is Outcome.FAILED
    assert "declared mem (100.0 MB)" in fin["hog"].message
    # A cgroup's kernel stops it at its limit; the sampler finds it past it.
    assert fin["hog"].peak_mem > 95 * 1000**2
    assert not (tmp_path / "hog.out").exists()      # its partial output went too
    assert fin["fine"].outcome is Outcome.SUCCEEDED


def test_a_small_memory_limit_is_never_shown_as_zero(tmp_path):
    # A limit of a few hundred KB was reported as "over its declared mem of 0 MB".
    hog = "python3 -c 'import time; b = bytearray(50_000_000); time.sleep(30)'"
    wf = workflow(tmp_path, task("hog", hog, phony=True, mem=200_000))
    result, rec = run(wf)
    [fin] = rec.of(TaskFinished)
    assert "declared mem (200.0 KB)" in fin.message
    # Said by the sampler ("killed: the task used …") or, under a cgroup, of the kernel.
    lines = [e.text for e in rec.of(OutputLine)
             if e.text.startswith("gristmill: ") and "killed" in e.text]
    assert lines and "its declared mem of 200.0 KB" in lines[0], lines
    assert "of 0 MB" not in lines[0] and " 0 MB" not in lines[0]   # ("65.0 MB" is fine)


def test_commands_are_echoed_unless_silent(tmp_path):
    # Makefile recipes without "@" show their command first, as make prints them.
    wf = workflow(tmp_path, task("loud", ["echo one", "echo two"], phony=True, silent=False),
                  task("quiet", "echo three", phony=True))
    result, rec = run(wf)
    lines = {}
    for e in rec.of(OutputLine):
        lines.setdefault(e.task, []).append(e.text)
    assert lines == {"loud": ["echo one", "one", "echo two", "two"], "quiet": ["three"]}


def test_an_echoed_command_is_logged_only_with_output_or_a_failure(tmp_path):
    # A Makefile recipe that succeeds silently leaves no log file (history keeps its
    # command); one that speaks or fails has its command first in the file.
    wf = workflow(tmp_path, task("mute", "true", phony=True, silent=False),
                  task("speaks", "echo hi", phony=True, silent=False),
                  task("fails", ["true", "false"], phony=True, silent=False))
    result, rec = run(wf, keep_going=True)
    logs = {e.task: Path(e.log_path) for e in rec.of(TaskStarted)}
    assert not logs["mute"].exists()
    assert logs["speaks"].read_text() == "echo hi\nhi\n"
    assert logs["fails"].read_text() == "true\nfalse\n"
    said = [e.text for e in rec.of(OutputLine) if e.task == "mute"]
    assert said == ["true"]                  # still shown live and in the console


def test_plain_commands_run_without_a_shell_and_shell_ones_with_it(tmp_path):
    from gristmill.core.run.local import direct_argv
    sh = ("/bin/sh", "-c")
    assert direct_argv(sh, "touch out/a.txt") == ["touch", "out/a.txt"]
    for needs_shell in ("echo hi", "cp a b > c", "x=1 cmd", "ls *.txt", "a && b", "cat 'q'",
                        "cd sub", "rm ~/x", "printf $HOME"):
        assert direct_argv(sh, needs_shell) is None, needs_shell
    assert direct_argv(("/bin/bash", "-c"), "touch a") is None
    wf = workflow(tmp_path, task("direct", "touch made", outputs=["made"]),
                  task("missing", "no-such-program-here arg", phony=True))
    result, rec = run(wf, keep_going=True)
    assert (tmp_path / "made").exists()
    fin = {f.task: f for f in rec.of(TaskFinished)}
    assert fin["missing"].exit_code == 127
    assert any("cannot start no-such-program-here" in e.text for e in rec.of(OutputLine))


def test_tasks_in_the_current_folder_start_the_same_way(tmp_path, monkeypatch):
    # Tasks whose cwd is the process's own are started with posix_spawn: the same
    # output, exit codes, missing-program message and kills as the Popen path.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("x\n")
    wf = workflow(tmp_path,
                  task("copy", "cp in.txt out.txt", inputs=["in.txt"], outputs=["out.txt"]),
                  task("talk", "echo to-out; echo to-err >&2; exit 3", phony=True),
                  task("ghost", "no-such-program-here", phony=True),
                  task("slow", "sleep 30", phony=True, timeout=0.3))
    result, rec = run(wf, keep_going=True)
    assert (tmp_path / "out.txt").read_text() == "x\n"
    fin = {f.task: f for f in rec.of(TaskFinished)}
    assert fin["copy"].outcome is Outcome.SUCCEEDED
    assert fin["talk"].exit_code == 3
    assert [e.text for e in rec.of(OutputLine) if e.task == "talk"] == ["to-out", "to-err"]
    assert fin["ghost"].exit_code == 127
    assert fin["slow"].outcome is Outcome.TIMED_OUT


# -- started with posix_spawn: the task runs in the engine's own folder ------------------

def test_a_command_that_closes_its_output_is_still_waited_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wf = workflow(tmp_path, task("quiet", "echo before; exec >&- 2>&-; sleep 0.3; touch done",
                                 outputs=["done"]))
    result, rec = run(wf)
    assert result.status is RunStatus.SUCCEEDED
    assert (tmp_path / "done").exists()
    assert [e.text for e in rec.of(OutputLine)] == ["before"]
    assert Path(rec.of(TaskStarted)[0].log_path).read_text() == "before\n"


def test_a_background_process_holding_the_output_does_not_hold_the_task(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wf = workflow(tmp_path, task("bg", "sleep 60 & echo $! > bg.pid; echo started",
                                 outputs=["bg.pid"]))
    result, rec = run(wf)
    pid = int((tmp_path / "bg.pid").read_text())
    try:
        assert result.status is RunStatus.SUCCEEDED
        os.kill(pid, 0)                 # still alive, with the task's output open
        assert [e.text for e in rec.of(OutputLine)] == ["started"]
    finally:
        os.kill(pid, 9)


def test_commands_do_not_inherit_the_pipes_of_other_jobs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # stdin, stdout, stderr, the folder ls reads, and what this process lets every child have
    expected = {0, 1, 2, 3}
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            if os.get_inheritable(fd):
                expected.add(fd)
        except OSError:
            pass                        # the listing's own descriptor, closed by now
    tasks = [task(f"t{i}", f"sleep 0.2; ls /proc/self/fd > fds{i}", outputs=[f"fds{i}"])
             for i in range(3)]
    result, rec = run(workflow(tmp_path, *tasks), capacity=Capacity(cpu=3, mem=8 * GB, gpu=0))
    assert result.status is RunStatus.SUCCEEDED
    for i in range(3):
        assert set(map(int, (tmp_path / f"fds{i}").read_text().split())) <= expected


def test_an_output_made_after_the_run_started_counts_as_there_before_its_task(tmp_path):
    # Both are ready at the start, one at a time: "fail" finds shared.txt, made by "make"
    # after the run began, and its failure must leave it alone (it did not change it).
    wf = workflow(tmp_path,
                  task("make", "echo kept > shared.txt; touch a.txt", outputs=["a.txt"]),
                  task("fail", "exit 1", outputs=["shared.txt"]))
    result, rec = run(wf, capacity=Capacity(cpu=1, mem=8 * GB, gpu=0), keep_going=True)
    assert [e.task for e in rec.of(TaskStarted)] == ["make", "fail"]
    assert result.failed == ("fail",)
    assert (tmp_path / "shared.txt").read_text() == "kept\n"
    assert rec.of(TaskFinished)[1].removed_outputs == ()


def test_cancelling_one_task_lets_the_rest_of_the_run_go_on_and_succeed(tmp_path):
    # One CPU: "long" (the head of the longest chain) starts first, the others wait for
    # it. Cancelling it is the user's decision about that task alone: without
    # --keep-going the independent tasks still run, its dependant is skipped, and the
    # run ends succeeded with one task cancelled (not failed).
    import io
    from gristmill.console import ConsoleReporter
    wf = workflow(tmp_path,
                  task("long", "echo ready; sleep 300", phony=True),
                  task("after_long", "touch after", outputs=["after"], after=["long"]),
                  task("one", "touch one", outputs=["one"]),
                  task("two", "touch two", outputs=["two"]))
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    out = io.StringIO()
    bus.subscribe(ConsoleReporter(stream=out, live=False))
    engine = Engine(wf, bus=bus, options=RunOptions(capacity=Capacity(1, 8 * GB)))
    bus.subscribe(lambda ev: engine.cancel_task("long")
                  if isinstance(ev, OutputLine) and ev.task == "long" and ev.text == "ready" else None)
    result = engine.run([])
    final = rec.final()
    assert final["long"] is TaskState.CANCELLED
    assert final["after_long"] is TaskState.SKIPPED
    assert final["one"] is TaskState.DONE and final["two"] is TaskState.DONE
    assert (tmp_path / "one").exists() and (tmp_path / "two").exists()
    assert result.status is RunStatus.SUCCEEDED and result.exit_code == 0
    assert result.failed == () and result.cancelled == ("long",)
    finished = rec.of(RunFinished)[0]
    assert finished.status is RunStatus.SUCCEEDED
    assert finished.counts == {"done": 2, "skipped": 1, "cancelled": 1}
    [fin] = [f for f in rec.of(TaskFinished) if f.task == "long"]
    assert fin.outcome is Outcome.CANCELLED and not fin.will_retry
    skipped = [e for e in rec.of(TaskStateChanged) if e.task == "after_long"][-1]
    assert "long, which was cancelled" in skipped.reasons[0].message
    text = out.getvalue()
    assert "FAILED" not in text and "long failed" not in text
    assert "⊘ long cancelled" in text
    last = text.splitlines()[-1]
    assert last.startswith("gristmill: run finished in ")
    assert last.endswith(", with 1 task cancelled: 2 done, 1 cancelled, 1 skipped")
