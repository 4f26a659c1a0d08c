"""Output at the edges, with real processes: lines with no end, and a log on a full disk."""

from __future__ import annotations

import sys

from gristmill.core.decide.capacity import Capacity
from gristmill.core.events import EventBus, Outcome, OutputLine, RunStatus, TaskFinished
from gristmill.core.run.engine import Engine, RunOptions
from gristmill.core.run.local import CUT_MARK, MAX_LINE

from wf import task, workflow

GB = 1000**3
PY = sys.executable


def run(wf, **opts):
    events = []
    bus = EventBus()
    bus.subscribe(events.append)
    result = Engine(wf, bus=bus, options=RunOptions(capacity=Capacity(cpu=4, mem=8 * GB, gpu=0),
                                                    **opts)).run([])
    return result, events


def test_20_mb_without_a_newline_is_one_cut_line_and_whole_in_the_log(tmp_path):
    size = 20_000_000
    script = tmp_path / "spew.py"
    script.write_text("import sys\n"
                      f"for _ in range({size // 100_000}):\n"
                      "    sys.stdout.write('x' * 99_999 + '\\r')\n"      # a progress bar
                      "sys.stdout.write('done\\nlast line')\n")
    wf = workflow(tmp_path, task("spew", f"{PY} {script}"))
    result, events = run(wf, log_dir=tmp_path / "logs")
    assert result.status is RunStatus.SUCCEEDED
    lines = [e.text for e in events if isinstance(e, OutputLine)]
    # One event for the 20 MB line (its head and a mark), then the rest of the output.
    assert len(lines) == 2, [len(t) for t in lines]
    assert lines[0].endswith(CUT_MARK) and len(lines[0]) == MAX_LINE + len(CUT_MARK)
    assert lines[1] == "last line"
    log = next(tmp_path.glob("logs/*/spew.1.log"))
    assert log.stat().st_size == size + len("done\nlast line")


def test_long_lines_with_newlines_are_each_cut(tmp_path):
    wf = workflow(tmp_path, task("long", f"{PY} -c \"print('é' * 40000); print('short')\""))
    _, events = run(wf, log_dir=tmp_path / "logs")
    lines = [e.text for e in events if isinstance(e, OutputLine)]
    assert lines[1] == "short" and lines[0].endswith(CUT_MARK)
    assert set(lines[0][:-len(CUT_MARK)]) == {"é"}     # cut between characters, not in one


def test_a_full_disk_under_the_attempt_logs_is_counted_and_the_task_runs_on(tmp_path, full_disk):
    out = tmp_path / "out.txt"
    wf = workflow(tmp_path, task(
        "talk", f"{PY} -c \"import sys; [print('line', i) for i in range(100000)]; "
                f"open('{out}', 'w').write('made')\"", outputs=[str(out)]))
    result, events = run(wf, log_dir=full_disk / "runs")
    assert result.status is RunStatus.SUCCEEDED
    assert out.read_text() == "made"
    (finished,) = [e for e in events if isinstance(e, TaskFinished)]
    assert finished.outcome is Outcome.SUCCEEDED
    assert "could not be written (No space left on device)" in finished.message
    assert "bytes of its output" in finished.message
    assert sum(1 for e in events if isinstance(e, OutputLine) for _ in e.text.splitlines()) \
        >= 100000


def test_a_failing_task_whose_log_is_full_fails_cleanly_with_both_reasons(tmp_path, full_disk):
    out = tmp_path / "half.txt"
    wf = workflow(tmp_path, task(
        "half", f"{PY} -c \"open('{out}', 'w').write('half'); print('x' * 100000); "
                "raise SystemExit(3)\"", outputs=[str(out)]))
    result, events = run(wf, log_dir=full_disk / "runs")
    assert result.status is RunStatus.FAILED
    (finished,) = [e for e in events if isinstance(e, TaskFinished)]
    assert finished.message.startswith("exit status 3; its log ")
    assert "No space left on device" in finished.message
    assert finished.removed_outputs == (str(out),) and not out.exists()
