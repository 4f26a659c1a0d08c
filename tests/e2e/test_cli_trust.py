"""Nothing half-written is ever trusted: an output is trusted only if the attempt that
last wrote it succeeded. And the faults of the process itself: kill -9 of Gristmill
(the task trees it left are found again), a closed terminal (SIGHUP) and SIGTERM
handled as Ctrl-C, and one run of a workflow at a time.

Real processes (the CLI killed with real signals, a real pty hung up), real files,
real SQLite. Every wait is for a condition (a marker file, a row), with a deadline
that only stands for "it hangs".
"""

from __future__ import annotations

import json
import os
import pty
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
HANG = 60.0      # seconds that stand for "it hangs"


def env_for(home: Path) -> dict[str, str]:
    return dict(os.environ, GRISTMILL_HOME=str(home), PYTHONPATH=SRC)


def gristmill(*args, cwd, home, timeout=HANG):
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                          env=env_for(home), capture_output=True, text=True, timeout=timeout)


def start(*args, cwd, home, **kw) -> subprocess.Popen:
    """``gristmill ARGS`` in a session of its own (a signal to it is not ours)."""
    log = Path(cwd).parent / f"gm-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                                env=env_for(home), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, **kw)
    proc.log = log          # what it printed
    return proc


def wait_for(condition, what: str):
    deadline = time.monotonic() + HANG
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


def alive(pid: int) -> bool:
    """Whether the process lives (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        return False


def history_rows(home: Path, sql: str, args=()) -> list[tuple]:
    conn = sqlite3.connect(home / "data" / "history.sqlite3")
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


# A task that writes half its output, says it did (its group's pid in a marker) and,
# when the file `slow` is there (it takes it: only that attempt), waits until it is
# killed before it writes the rest.
HALF = """\
[tasks.half]
cmd = "echo first > out.txt; if [ -e slow ]; then rm slow; touch hold.$$; fi; echo $$ > half.pid; while [ -e hold.$$ ]; do sleep 0.05; done; echo second >> out.txt"
inputs = ["in.txt"]
outputs = ["out.txt"]
"""


@pytest.fixture
def leftovers():
    """Process groups a test leaves behind on purpose (a kill -9 of Gristmill): killed
    at the end whatever happens."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def half_project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "gristmill.toml").write_text(HALF)
    (root / "in.txt").write_text("in\n")
    return root


def kill9_mid_run(root: Path, home: Path, leftovers: list[int]) -> int:
    """Start a run, wait until the task wrote half its output, kill -9 the CLI."""
    (root / "slow").touch()
    (root / "half.pid").unlink(missing_ok=True)
    cli = start("run", cwd=root, home=home)
    pgid = int(wait_for(lambda: (root / "half.pid").exists()
                        and (root / "half.pid").read_text().strip(), "the task to start"))
    leftovers.append(pgid)
    # Its process group is in history once its start is written.
    wait_for(lambda: history_rows(home, "SELECT 1 FROM attempts WHERE pgid = ?", (pgid,)),
             "the attempt's process group in history")
    cli.kill()
    cli.wait(timeout=HANG)
    assert (root / "out.txt").read_text() == "first\n"      # half of it
    return pgid


def test_kill9_mid_run_the_half_written_output_is_stale_and_rebuilt(tmp_path, leftovers):
    home = tmp_path / "home"
    root = half_project(tmp_path)
    pgid = kill9_mid_run(root, home, leftovers)
    [(run_id,)] = history_rows(home, "SELECT id FROM runs")

    p = gristmill("plan", cwd=root, home=home)
    assert p.returncode == 0, p.stderr
    assert "Traceback" not in p.stderr
    assert f"because its last attempt, in run {run_id}, never finished: the run was " \
           "interrupted" in p.stdout, p.stdout
    assert "1 to run, 0 up to date." in p.stdout

    p = gristmill("plan", "--json", cwd=root, home=home)
    plan = json.loads(p.stdout)
    [task] = plan["tasks"]
    assert task["name"] == "half" and task["stale"]
    assert {"kind": "not-trusted", "message": f"its last attempt, in run {run_id}, never "
            "finished: the run was interrupted"} in task["reasons"]
    # The task tree the killed Gristmill left is still running, and is named.
    assert plan["still_running"] == [{"task": "half", "run": run_id, "attempt": 1,
                                      "process_group": pgid}]
    assert alive(pgid)

    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"stopped task half of interrupted run {run_id} (process group {pgid})" in p.stderr
    assert not alive(pgid)
    assert (root / "out.txt").read_text() == "first\nsecond\n"
    p = gristmill("plan", cwd=root, home=home)
    assert "Nothing to run" in p.stdout, p.stdout


def test_kill9_mid_rebuild_after_an_earlier_success_is_not_trusted(tmp_path, leftovers):
    home = tmp_path / "home"
    root = half_project(tmp_path)
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stderr
    later = time.time() + 5
    os.utime(root / "in.txt", (later, later))
    pgid = kill9_mid_run(root, home, leftovers)
    os.killpg(pgid, signal.SIGKILL)           # a power cut: the whole tree is gone
    wait_for(lambda: not alive(pgid), "the task to die")
    # out.txt is now newer than its input: timestamps alone call it up to date.
    os.utime(root / "out.txt", (later + 5, later + 5))
    p = gristmill("plan", cwd=root, home=home)
    assert "never finished: the run was interrupted" in p.stdout, p.stdout
    assert "1 to run" in p.stdout
    assert "still running" not in p.stderr, p.stderr
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stderr
    assert (root / "out.txt").read_text() == "first\nsecond\n"


def test_a_failed_rebuild_of_an_output_folder_that_existed_is_not_trusted(tmp_path):
    home = tmp_path / "home"
    root = tmp_path / "p"
    root.mkdir()
    # The folder is kept after a failure (never removed, by design); the failed attempt
    # changed it (b removed, a rewritten), so it is newer than its input.
    (root / "gristmill.toml").write_text("""\
[tasks.build]
cmd = "mkdir -p outdir; rm -f outdir/b; echo part > outdir/a; if [ -e fail ]; then exit 3; fi; echo done > outdir/b"
inputs = ["in.txt"]
outputs = ["outdir"]
""")
    (root / "in.txt").write_text("in\n")
    past = time.time() - 60
    os.utime(root / "in.txt", (past, past))
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stderr
    os.utime(root / "outdir", (past - 60, past - 60))   # older than its input: it rebuilds
    (root / "fail").touch()
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 1
    assert (root / "outdir").is_dir() and not (root / "outdir/b").exists()   # half-built
    # ...and newer than its input again: timestamps alone call it up to date.
    assert (root / "outdir").stat().st_mtime > past
    [(run_id,)] = history_rows(home, "SELECT id FROM runs WHERE status = 'failed'")

    p = gristmill("plan", cwd=root, home=home)
    assert f"because its last attempt, in run {run_id}, failed (exit status 3)" in p.stdout, \
        p.stdout
    plan = json.loads(gristmill("plan", "--json", cwd=root, home=home).stdout)
    assert [r["kind"] for r in plan["tasks"][0]["reasons"]] == ["not-trusted"]

    (root / "fail").unlink()
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stderr
    assert (root / "outdir/b").read_text() == "done\n"
    assert "Nothing to run" in gristmill("plan", cwd=root, home=home).stdout


def test_without_history_timestamps_decide(tmp_path, leftovers):
    home = tmp_path / "home"
    root = half_project(tmp_path)
    kill9_mid_run(root, home, leftovers)
    for path in (home / "data").glob("history.sqlite3*"):
        path.unlink()
    p = gristmill("plan", cwd=root, home=home)
    assert "Nothing to run" in p.stdout, p.stdout


def test_an_interrupted_run_lasts_until_it_was_last_seen(tmp_path, leftovers):
    # A run killed while its task ran for a while was recorded as lasting 1 ms.
    home = tmp_path / "home"
    root = half_project(tmp_path)
    (root / "slow").touch()
    cli = start("run", cwd=root, home=home)
    pgid = int(wait_for(lambda: (root / "half.pid").exists()
                        and (root / "half.pid").read_text().strip(), "the task to start"))
    leftovers.append(pgid)
    # The run is marked seen alive while its task runs.
    wait_for(lambda: history_rows(
        home, "SELECT 1 FROM runs WHERE seen >= started + 1.0"), "the run seen at 1 s")
    cli.kill()
    cli.wait(timeout=HANG)
    p = gristmill("history", cwd=root, home=home)
    assert "interrupted" in p.stdout, p.stdout
    [(started, ended)] = history_rows(home, "SELECT started, ended FROM runs")
    assert ended - started >= 1.0


# -- a closed terminal, SIGTERM --------------------------------------------------------

TWO_SLOW = """\
[tasks.one]
cmd = "echo part > one.txt; echo $$ > one.pid; sleep 60; echo rest >> one.txt"
outputs = ["one.txt"]
[tasks.two]
cmd = "echo part > two.txt; echo $$ > two.pid; sleep 60; echo rest >> two.txt"
outputs = ["two.txt"]
"""


def two_slow(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    root.mkdir()
    (root / "gristmill.toml").write_text(TWO_SLOW)
    return root


def task_pids(root: Path) -> list[int]:
    def both():
        try:
            return [int((root / f"{n}.pid").read_text()) for n in ("one", "two")]
        except (OSError, ValueError):
            return None
    return wait_for(both, "both tasks to start")


def assert_stopped_cleaned_recorded(root: Path, home: Path, pids: list[int]) -> None:
    assert not any(alive(pid) for pid in pids)
    assert not (root / "one.txt").exists() and not (root / "two.txt").exists()
    [(status,)] = history_rows(home, "SELECT status FROM runs")
    assert status == "cancelled"
    outcomes = history_rows(home, "SELECT outcome FROM attempts")
    assert outcomes == [("cancelled",), ("cancelled",)]


def test_a_closed_terminal_stops_every_task_like_ctrl_c(tmp_path, leftovers):
    home = tmp_path / "home"
    root = two_slow(tmp_path)
    pid, master = pty.fork()
    if pid == 0:                      # the child: session leader, the pty its terminal
        try:
            os.chdir(root)
            os.execve(sys.executable, [sys.executable, "-m", "gristmill", "run", "-j", "2"],
                      env_for(home))
        finally:
            os._exit(127)
    try:
        pids = task_pids(root)
        leftovers.extend(pids)
        os.close(master)              # the terminal window is closed: SIGHUP
        master = -1

        def exited():
            done, status = os.waitpid(pid, os.WNOHANG)
            return (done, status) if done else None
        _, status = wait_for(exited, "gristmill to exit")
        assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGHUP
        assert_stopped_cleaned_recorded(root, home, pids)
    finally:
        if master >= 0:
            os.close(master)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


def test_sigterm_stops_every_task_like_ctrl_c(tmp_path, leftovers):
    home = tmp_path / "home"
    root = two_slow(tmp_path)
    cli = start("run", "-j", "2", cwd=root, home=home)
    pids = task_pids(root)
    leftovers.extend(pids)
    cli.send_signal(signal.SIGTERM)
    assert cli.wait(timeout=HANG) == 128 + signal.SIGTERM
    assert_stopped_cleaned_recorded(root, home, pids)


# -- one run at a time -------------------------------------------------------------------

GATED = """\
[tasks.gated]
cmd = "echo $$ > gated.pid; while [ -e slow ]; do sleep 0.05; done; echo done > out.txt"
outputs = ["out.txt"]
"""


def a_run_under_way(tmp_path: Path, home: Path, leftovers: list[int]):
    """(its folder, a `gristmill run` whose task waits while `slow` is there)."""
    root = tmp_path / "p"
    root.mkdir()
    (root / "gristmill.toml").write_text(GATED)
    (root / "slow").touch()
    first = start("run", cwd=root, home=home)
    try:
        leftovers.append(int(wait_for(lambda: (root / "gated.pid").exists() and
                                      (root / "gated.pid").read_text().strip(),
                                      "the first run's task")))
    except BaseException:
        first.kill()
        first.wait()
        raise
    return root, first


def test_a_second_run_says_who_holds_the_workflow_and_exits_2(tmp_path, leftovers):
    home = tmp_path / "home"
    root, first = a_run_under_way(tmp_path, home, leftovers)
    try:
        p = gristmill("run", cwd=root, home=home)
        assert p.returncode == 2
        assert "Traceback" not in p.stderr
        line = p.stderr.strip()
        assert line.startswith(f"gristmill: another run of {root / 'gristmill.toml'} is "
                               f"under way (pid {first.pid}, started "), line
        assert "`gristmill run`" in line and "--wait" in line
        assert not (root / "out.txt").exists()

        # A plan takes no lock: it answers, and does not trust what is being written.
        wait_for(lambda: history_rows(home, "SELECT 1 FROM last_attempt WHERE outcome IS NULL"),
                 "the first run's attempt in history")
        p = gristmill("plan", cwd=root, home=home)
        assert p.returncode == 0, p.stderr
        assert "is still running: its outputs may be half-written" in p.stdout, p.stdout

        # --wait waits for the first to end, then finds nothing to do.
        waiter = start("run", "--wait", cwd=root, home=home)
        log = waiter.log
        wait_for(lambda: "waiting for it to end" in log.read_text(), "the waiter to say so")
        assert waiter.poll() is None
        (root / "slow").unlink()
        assert first.wait(timeout=HANG) == 0
        assert waiter.wait(timeout=HANG) == 0, log.read_text()
        assert "nothing to do" in log.read_text()
    finally:
        for proc in (first,):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_the_lock_goes_with_a_killed_run(tmp_path, leftovers):
    home = tmp_path / "home"
    root = half_project(tmp_path)
    kill9_mid_run(root, home, leftovers)       # its task runs on: it holds no lock
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stderr


def test_a_later_command_of_a_task_is_found_after_a_kill9(tmp_path, leftovers):
    # Each command of a task runs in a process group of its own: the one running when
    # Gristmill was killed is the one found, and stopped.
    home = tmp_path / "home"
    root = tmp_path / "p"
    root.mkdir()
    (root / "gristmill.toml").write_text("""\
[tasks.two_steps]
cmd = ["echo one > first.txt", "if [ -e slow ]; then rm slow; touch hold.$$; fi; echo $$ > step.pid; while [ -e hold.$$ ]; do sleep 0.05; done"]
outputs = ["first.txt"]
""")
    (root / "slow").touch()
    cli = start("run", cwd=root, home=home)
    pgid = int(wait_for(lambda: (root / "step.pid").exists()
                        and (root / "step.pid").read_text().strip(), "the second command"))
    leftovers.append(pgid)
    wait_for(lambda: history_rows(home, "SELECT 1 FROM attempts WHERE pgid = ?", (pgid,)),
             "the second command's group in history")
    cli.kill()
    cli.wait(timeout=HANG)
    plan = json.loads(gristmill("plan", "--json", cwd=root, home=home).stdout)
    assert [g["process_group"] for g in plan["still_running"]] == [pgid]
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"stopped task two_steps of interrupted run" in p.stderr
    assert f"(process group {pgid})" in p.stderr
    assert not alive(pgid)


def test_ctrl_c_while_waiting_for_the_lock_exits_130_without_a_traceback(tmp_path, leftovers):
    home = tmp_path / "home"
    root, first = a_run_under_way(tmp_path, home, leftovers)
    try:
        waiter = start("run", "--wait", cwd=root, home=home)
        wait_for(lambda: "waiting for it to end" in waiter.log.read_text(), "the waiter")
        waiter.send_signal(signal.SIGINT)
        assert waiter.wait(timeout=HANG) == 130
        assert "Traceback" not in waiter.log.read_text()
        assert first.poll() is None               # the first run goes on
    finally:
        (root / "slow").unlink(missing_ok=True)
        first.wait(timeout=HANG)
