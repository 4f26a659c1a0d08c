"""The terminal reporter, fed a recorded stream of events."""

import io
import time

from gristmill.console import ConsoleReporter
from gristmill.core.events import (Outcome, OutputLine, RunFinished, RunStarted, RunStatus,
                                   TaskFinished, TaskStarted, TaskState, TaskStateChanged)


def feed(rep, t0=1000.0):
    rep(RunStarted("r", t0, "wf", "/w/gristmill.toml", (), ("a", "b", "c")))
    for n in "abc":
        rep(TaskStateChanged("r", t0, n, TaskState.WAITING))
    rep(TaskStarted("r", t0, "a", 1, 0, log_path="/logs/a.1.log"))
    rep(OutputLine("r", t0, "a", 1, "hello from a"))
    rep(TaskFinished("r", t0 + 1, "a", 1, Outcome.SUCCEEDED, 0, 1.0))
    rep(TaskStarted("r", t0 + 1, "b", 1, 0, log_path="/logs/b.1.log"))
    for i in range(30):
        rep(OutputLine("r", t0 + 1, "b", 1, f"line {i}"))
    rep(TaskFinished("r", t0 + 2, "b", 1, Outcome.FAILED, 2, 1.0, message="exit status 2"))
    rep(TaskStateChanged("r", t0 + 2, "c", TaskState.SKIPPED))
    rep(RunFinished("r", t0 + 2, RunStatus.FAILED, 2.0, {"done": 1, "failed": 1, "skipped": 1}))


def test_plain_output_prints_each_task_then_a_summary():
    out = io.StringIO()
    feed(ConsoleReporter(out, live=False))
    text = out.getvalue()
    assert "✓ a (1.0 s)\n  hello from a\n" in text
    assert "✗ b failed: exit status 2 (attempt 1, 1.0 s)" in text
    assert "".join(f"  | line {i}\n" for i in range(30)) in text       # all of it, in order
    assert "  full log: /logs/b.1.log" in text
    assert text.rstrip().endswith("gristmill: run FAILED in 2.0 s: 1 done, 1 failed, 1 skipped")


def test_eta_uses_history_then_this_runs_mean():
    rep = ConsoleReporter(io.StringIO(), durations={"a": 10.0}, live=False)
    now = time.time()
    rep(RunStarted("r", now, "wf", "/w", (), ("a", "b")))
    rep(TaskStateChanged("r", now, "a", TaskState.WAITING))
    rep(TaskStateChanged("r", now, "b", TaskState.WAITING))
    assert rep.eta() is None                      # b's length is unknown
    rep(TaskStarted("r", now, "a", 1, 0))
    rep(TaskFinished("r", now, "a", 1, Outcome.SUCCEEDED, 0, 4.0))
    assert 3.5 < rep.eta() <= 4.0                 # b is expected to take the mean so far


def test_a_failure_that_printed_nothing_points_to_no_log():
    out = io.StringIO()
    rep = ConsoleReporter(out, live=False)
    rep(RunStarted("r", 1.0, "wf", "/w", (), ("a",)))
    rep(TaskStateChanged("r", 1.0, "a", TaskState.WAITING))
    rep(TaskStarted("r", 1.0, "a", 1, 0, log_path="/logs/a.1.log"))
    rep(TaskFinished("r", 2.0, "a", 1, Outcome.FAILED, 1, 1.0, message="exit status 1"))
    text = out.getvalue()
    assert "✗ a failed: exit status 1" in text and "  (it printed nothing)\n" in text
    assert "full log" not in text


def test_a_long_line_is_printed_cut_with_a_word_and_a_log_trouble_is_said():
    from gristmill.console import LINE_MAX
    out = io.StringIO()
    rep = ConsoleReporter(out, live=False)
    rep(RunStarted("r", 1.0, "wf", "/w", (), ("a",)))
    rep(TaskStateChanged("r", 1.0, "a", TaskState.WAITING))
    rep(TaskStarted("r", 1.0, "a", 1, 0, log_path="/logs/a.1.log"))
    rep(OutputLine("r", 1.0, "a", 1, "y" * 16000))
    rep(TaskFinished("r", 2.0, "a", 1, Outcome.SUCCEEDED, 0, 1.0,
                     message="its log /logs/a.1.log lacks 5 bytes of its output"))
    lines = out.getvalue().splitlines()
    (long,) = [line for line in lines if "yyy" in line]
    assert long == "  " + "y" * LINE_MAX + f" … [cut: {16000 - LINE_MAX:,} more characters]"
    assert "  ! its log /logs/a.1.log lacks 5 bytes of its output" in lines


def test_a_closed_terminal_does_not_stop_the_reporter():
    # A terminal window closed mid-run: every write to it fails with EIO. The reporter is
    # a subscriber on the engine's thread: it must not raise into the run.
    import os
    master, slave = os.openpty()
    stream = open(slave, "w", buffering=1)
    os.close(master)                         # hung up
    try:
        try:
            stream.write("x\n")
            stream.flush()
        except OSError:
            pass
        else:
            import pytest
            pytest.skip("writes to a hung-up pty do not fail here")
        rep = ConsoleReporter(stream=stream, live=True)
        feed(rep)                            # no OSError
        assert rep.live is False
        rep.out.close()
    finally:
        try:
            stream.close()
        except OSError:
            pass
