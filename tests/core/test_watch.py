"""Watch with real file events in temp dirs: a change reruns exactly what it makes stale."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from gristmill.core.events import EventBus, Outcome, TaskFinished, TaskStarted
from gristmill.core.record.history import History
from gristmill.core.run.engine import RunOptions
from gristmill.core.watch.loop import Watch
from gristmill.core.watch.scope import is_editor_temp

CHAIN = """\
[workflow]
name = "chain"
default = ["ab"]

[tasks.a]
cmd = "cp data/a.txt out/a.txt"
inputs = ["data/a.txt"]
outputs = ["out/a.txt"]

[tasks.b]
cmd = "cp data/b.txt out/b.txt"
inputs = ["data/b.txt"]
outputs = ["out/b.txt"]

[tasks.ab]
cmd = "cat out/a.txt out/b.txt > out/ab.txt"
inputs = ["out/a.txt", "out/b.txt"]
outputs = ["out/ab.txt"]
"""


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Watching:
    """A Watch on its own thread, with what it said and which tasks each run started."""

    def __init__(self, folder: Path, debounce: float = 0.15, history=None, **kw):
        self.bus = EventBus()
        self.lines: list[str] = []
        self.started: dict[str, list[tuple[str, int]]] = {}   # run id -> (task, attempt)
        self.finished: list[TaskFinished] = []
        self.bus.subscribe(self._event)
        self.watch = Watch(folder, bus=self.bus, history=history, debounce=debounce,
                           say=self.lines.append, options=RunOptions(structured_log=False), **kw)
        self.thread = threading.Thread(target=self.watch.run, daemon=True)

    def _event(self, ev) -> None:
        if isinstance(ev, TaskStarted):
            self.started.setdefault(ev.run_id, []).append((ev.task, ev.attempt))
        elif isinstance(ev, TaskFinished):
            self.finished.append(ev)

    def __enter__(self) -> "Watching":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.watch.stop()
        self.thread.join(15)
        assert not self.thread.is_alive()

    @property
    def runs(self):
        return self.watch.runs

    def settled(self, runs: int, quiet: float = 0.6) -> bool:
        """``runs`` runs have ended and the watch waits for a change, with nothing pending,
        for ``quiet`` seconds (so a second run that would follow has had its chance)."""
        w = self.watch
        if not wait_for(lambda: len(w.runs) >= runs and w.idle.is_set()):
            return False
        time.sleep(quiet)
        return w.idle.is_set() and not w._watcher.pending()

    def tasks_of(self, run_index: int) -> list[str]:
        return sorted(t for t, _ in self.started.get(self.runs[run_index].run_id, []))


def chain(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a1\n")
    (tmp_path / "data" / "b.txt").write_text("b1\n")
    (tmp_path / "gristmill.toml").write_text(CHAIN)
    return tmp_path


def later(path: Path, text: str | None = None) -> None:
    """Change a file so that its mtime is surely newer than the outputs made from it."""
    time.sleep(0.02)
    if text is None:
        path.touch()
    else:
        path.write_text(text)


def test_it_runs_once_at_start_then_a_touch_reruns_exactly_its_downstream(tmp_path):
    folder = chain(tmp_path)
    history = History()
    try:
        with Watching(folder, history=history) as w:
            assert w.settled(1)
            assert w.tasks_of(0) == ["a", "ab", "b"]
            later(folder / "data" / "a.txt")
            assert w.settled(2)
            assert w.tasks_of(1) == ["a", "ab"]
            assert any(line.startswith("changed: data/a.txt") for line in w.lines)
        history.flush()
        runs = history.runs(str(folder / "gristmill.toml"))
        assert len(runs) == 2
        newest = runs[0]
        assert newest.started_by == "watch" and newest.changed == ("data/a.txt",)
        assert runs[1].started_by == "watch" and runs[1].changed == ()
        reasons = [a.reasons_text for a in history.attempts(newest.id) if a.task == "a"]
        assert "data/a.txt" in reasons[0]
    finally:
        history.close()


def test_a_burst_of_200_writes_in_a_second_gives_one_run(tmp_path):
    folder = chain(tmp_path)
    # A quiet period of 0.4 s: on a busy machine the writer below may stall for longer
    # than the default 0.15 s between two writes.
    with Watching(folder, debounce=0.4) as w:
        assert w.settled(1)
        target = folder / "data" / "b.txt"
        for i in range(200):
            target.write_text(f"b{i}\n")
            time.sleep(0.005)
        assert w.settled(2, quiet=1.0)
        assert len(w.runs) == 2
        assert w.tasks_of(1) == ["ab", "b"]
    assert (folder / "out" / "ab.txt").read_text() == "a1\nb199\n"


def test_an_atomic_save_triggers_once(tmp_path):
    folder = chain(tmp_path)
    with Watching(folder) as w:
        assert w.settled(1)
        time.sleep(0.02)
        # as editors save: the new text in a temporary file, renamed over the old one
        tmp = folder / "data" / "a.txt.gm3Xq9"
        tmp.write_text("a2\n")
        os.replace(tmp, folder / "data" / "a.txt")
        assert w.settled(2)
        assert len(w.runs) == 2
        assert w.tasks_of(1) == ["a", "ab"]
    assert (folder / "out" / "ab.txt").read_text() == "a2\nb1\n"


def test_editor_temp_files_never_trigger(tmp_path):
    folder = chain(tmp_path)
    assert all(is_editor_temp(n) for n in (".a.txt.swp", "a.txt~", ".#a.txt", "4913", "#a.txt#"))
    assert not is_editor_temp("a.txt")
    with Watching(folder) as w:
        assert w.settled(1)
        for name in (".a.txt.swp", "a.txt~", ".#a.txt", "4913"):
            (folder / "data" / name).write_text("x")
        assert w.settled(1)
        assert len(w.runs) == 1 and w.watch.passes == 1


GLOB = """\
[workflow]
name = "glob"
default = ["all"]

[tasks.up]
foreach = "data/*.txt"
cmd = "tr a-z A-Z < {item} > {output}"
inputs = ["{item}"]
outputs = ["out/{stem}.up"]

[tasks.all]
cmd = "cat out/*.up > all.txt"
inputs = ["out/*.up"]
outputs = ["all.txt"]
"""


def test_a_new_file_matching_a_glob_adds_and_runs_its_instance_and_outputs_never_retrigger(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a\n")
    (tmp_path / "data" / "b.txt").write_text("b\n")
    (tmp_path / "gristmill.toml").write_text(GLOB)
    with Watching(tmp_path) as w:
        assert w.settled(1)
        assert w.tasks_of(0) == ["all", "up[data/a.txt]", "up[data/b.txt]"]
        # the run wrote out/*.up, read by a glob of its own, and all.txt: no second run
        assert w.settled(1, quiet=1.0)
        assert len(w.runs) == 1 and w.watch.passes == 1
        later(tmp_path / "data" / "c.txt", "c\n")
        assert w.settled(2)
        assert "up[data/c.txt]" in w.watch.workflow.tasks
        assert w.tasks_of(1) == ["all", "up[data/c.txt]"]
        assert (tmp_path / "all.txt").read_text() == "A\nB\nC\n"
        (tmp_path / "data" / "b.txt").unlink()
        assert wait_for(lambda: "up[data/b.txt]" not in w.watch.workflow.tasks)


SLOW = """\
[workflow]
name = "slow"
default = ["slow", "other"]

[tasks.slow]
cmd = "echo partial > out/slow.txt; echo $$ >> pids; while [ ! -e gate ]; do sleep 0.02; done; cp data/slow.txt out/slow.txt"
inputs = ["data/slow.txt"]
outputs = ["out/slow.txt"]

[tasks.other]
cmd = "echo $$ >> pids; while [ ! -e gate ]; do sleep 0.02; done; cp data/other.txt out/other.txt"
inputs = ["data/other.txt"]
outputs = ["out/other.txt"]
"""


def test_a_change_during_a_long_task_cancels_and_restarts_just_it(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "data" / "slow.txt").write_text("old\n")
    (tmp_path / "data" / "other.txt").write_text("other\n")
    (tmp_path / "gristmill.toml").write_text(SLOW)
    with Watching(tmp_path) as w:
        started = lambda: [s for run in w.started.values() for s in run]   # noqa: E731
        assert wait_for(lambda: {t for t, _ in started()} == {"slow", "other"})
        (tmp_path / "data" / "slow.txt").write_text("new\n")
        assert wait_for(lambda: ("slow", 2) in started())
        assert ("other", 2) not in started()
        first = [f for f in w.finished if f.task == "slow" and f.attempt == 1]
        assert first and first[0].outcome is Outcome.CANCELLED and first[0].will_retry
        assert "data/slow.txt changed" in first[0].message
        assert first[0].removed_outputs == ("out/slow.txt",)
        assert not any(f.task == "other" for f in w.finished)      # it kept running
        (tmp_path / "gate").write_text("")
        assert w.settled(1)
        assert len(w.runs) == 1                  # the same run went on; no restart from scratch
        assert sorted(w.started[w.runs[0].run_id]) == [("other", 1), ("slow", 1), ("slow", 2)]
        assert w.runs[0].exit_code == 0
    assert (tmp_path / "out" / "slow.txt").read_text() == "new\n"
    for pid in map(int, (tmp_path / "pids").read_text().split()):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1][:3]


def test_a_broken_workflow_edit_is_told_once_and_watching_recovers(tmp_path):
    folder = chain(tmp_path)
    with Watching(folder) as w:
        assert w.settled(1)
        toml = folder / "gristmill.toml"
        broken = CHAIN.replace('cmd = "cp data/b.txt out/b.txt"', 'cmd = "cp data/b.txt out/b.txt')
        toml.write_text(broken)
        assert wait_for(lambda: w.watch.error is not None and w.watch.idle.is_set())
        time.sleep(0.3)
        toml.write_text(broken + "\n")               # the same error again: not told twice
        assert wait_for(lambda: w.watch.passes >= 3 and w.watch.idle.is_set())
        errors = [line for line in w.lines if line.startswith(f"{toml}:")]
        assert len(errors) == 1, w.lines
        assert errors[0].startswith(f"{toml}:11:31: invalid TOML")
        # a change to an input while it is broken runs nothing
        later(folder / "data" / "a.txt", "a2\n")
        assert w.settled(1)
        # fixed: it reads well again, and what went stale meanwhile runs
        toml.write_text(CHAIN)
        assert w.settled(2)
        assert w.watch.error is None
        assert w.tasks_of(1) == ["a", "ab"]
        later(folder / "data" / "b.txt", "b2\n")
        assert w.settled(3)
        assert w.tasks_of(2) == ["ab", "b"]


def test_a_failing_task_does_not_stop_watching(tmp_path):
    folder = chain(tmp_path)
    (folder / "data" / "b.txt").unlink()
    (folder / "data" / "b.txt").mkdir()          # cp of a folder fails
    with Watching(folder) as w:
        assert w.settled(1)
        assert w.runs[0].exit_code == 1
        (folder / "data" / "b.txt").rmdir()
        (folder / "data" / "b.txt").write_text("b2\n")
        assert w.settled(2)
        assert w.runs[1].exit_code == 0
        assert (folder / "out" / "ab.txt").read_text() == "a1\nb2\n"


@pytest.mark.skipif(not __import__("shutil").which("make"), reason="needs GNU make")
def test_a_makefile_is_watched_and_the_folders_its_run_makes_never_retrigger(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "in.txt").write_text("1\n")
    (tmp_path / "Makefile").write_text(
        "build/sub/out.txt: src/in.txt | build/sub\n\tcp src/in.txt build/sub/out.txt\n"
        "build/sub:\n\tmkdir -p build/sub\n")
    with Watching(tmp_path) as w:
        assert w.settled(1, quiet=1.0)
        assert w.watch.passes == 1                  # making build/ and build/sub started nothing
        assert w.tasks_of(0) == ["build/sub", "build/sub/out.txt"]
        later(tmp_path / "src" / "in.txt", "2\n")
        assert w.settled(2)
        assert w.tasks_of(1) == ["build/sub/out.txt"]
    assert (tmp_path / "build" / "sub" / "out.txt").read_text() == "2\n"


def test_a_workflow_broken_at_the_start_is_watched_until_it_is_fixed(tmp_path):
    folder = chain(tmp_path)
    toml = folder / "gristmill.toml"
    toml.write_text(CHAIN.replace("[tasks.ab]", "[tasks.ab"))
    with Watching(folder) as w:
        assert wait_for(lambda: w.watch.error is not None and w.watch.idle.is_set())
        assert w.runs == [] and any(line.startswith(f"{toml}:") for line in w.lines)
        toml.write_text(CHAIN)
        assert w.settled(1)
        assert w.tasks_of(0) == ["a", "ab", "b"]
