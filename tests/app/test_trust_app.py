"""Issue 21 in the app: a task whose last attempt did not succeed is stale, and Explain
says why in the core's words; a run the workflow's lock refuses says who holds it.
Real engine, real CLI processes, real SQLite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gristmill.app.explain import explain
from gristmill.core.events import RunStatus

from conftest import process_alive, wait_for, wait_run_over

SRC = str(Path(__file__).resolve().parents[2] / "src")


def start_cli_run(folder: Path) -> subprocess.Popen:
    """`gristmill run` in ``folder``, in a session of its own (this test's home)."""
    return subprocess.Popen([sys.executable, "-m", "gristmill", "run"], cwd=folder,
                            env=dict(os.environ, PYTHONPATH=SRC), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def leftover_group(pgid: int) -> bool:
    import sqlite3
    from gristmill.core import paths
    conn = sqlite3.connect(paths.history_db())
    try:
        return conn.execute("SELECT 1 FROM attempts WHERE pgid = ?", (pgid,)).fetchone() is not None
    finally:
        conn.close()


def _write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gristmill.toml").write_text(text)
    return folder


def test_a_failed_rebuild_of_a_folder_is_stale_and_explain_says_why(qtbot, window, tmp_path):
    folder = _write(tmp_path / "folder", """
[tasks.build]
cmd = "mkdir -p outdir; rm -f outdir/b; echo part > outdir/a; if [ -e fail ]; then exit 3; fi; echo done > outdir/b"
inputs = ["in.txt"]
outputs = ["outdir"]
""")
    (folder / "in.txt").write_text("in\n")
    past = (folder / "in.txt").stat().st_mtime - 60
    os.utime(folder / "in.txt", (past, past))
    window.settings.trust(folder)
    window.open_path(str(folder))
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.status is RunStatus.SUCCEEDED
    os.utime(folder / "outdir", (past - 60, past - 60))      # older than its input
    (folder / "fail").touch()
    window.bench.rescan()
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.status is RunStatus.FAILED
    run_id = window.bench.run.run_id
    # The half-built folder is newer than its input: by timestamps alone, up to date.
    assert (folder / "outdir").stat().st_mtime > past
    qtbot.waitUntil(lambda: window.bench.decisions["build"].stale, timeout=15_000)
    words = f"its last attempt, in run {run_id}, failed (exit status 3)"
    assert [r.message for r in window.bench.decisions["build"].reasons] == [words]
    why = dict(explain(window.bench.workflow, window.bench.graph, window.bench.decisions,
                       "build"))["Why"]
    assert words in why


def test_the_app_says_who_holds_the_workflow_when_it_cannot_run(qtbot, window, tmp_path):
    folder = _write(tmp_path / "held", """
[tasks.gated]
cmd = "echo $$ > gated.pid; while [ -e slow ]; do sleep 0.05; done; echo done > out.txt"
outputs = ["out.txt"]
""")
    (folder / "slow").touch()
    cli = start_cli_run(folder)
    try:
        assert wait_for(lambda: (folder / "gated.pid").exists(), timeout=60)
        window.settings.trust(folder)
        window.open_path(str(folder))
        window.actions["run_default"].trigger()
        assert not window.bench.busy                       # nothing started
        assert window.banner.isVisibleTo(window)
        text = window.banner_text.text()
        assert "The run did not start" in text
        assert f"another run of {folder / 'gristmill.toml'} is under way (pid {cli.pid}" in text
        assert "`gristmill run`" in text
        assert window.statusBar().currentMessage().startswith("The run did not start: ")
        (folder / "slow").unlink()
        assert cli.wait(timeout=60) == 0
        (folder / "out.txt").unlink()
        window.bench.rescan()
        window.actions["run_default"].trigger()            # the lock is free again
        wait_run_over(qtbot, window)
        assert window.bench.run.status is RunStatus.SUCCEEDED
        assert (folder / "out.txt").read_text() == "done\n"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()


def test_a_run_from_the_app_stops_what_a_killed_cli_run_left(qtbot, window, tmp_path):
    folder = _write(tmp_path / "left", """
[tasks.half]
cmd = "echo first > out.txt; if [ -e slow ]; then rm slow; touch hold.$$; fi; echo $$ > half.pid; while [ -e hold.$$ ]; do sleep 0.05; done; echo second >> out.txt"
outputs = ["out.txt"]
""")
    (folder / "slow").touch()
    cli = start_cli_run(folder)
    pgid = 0
    try:
        assert wait_for(lambda: (folder / "half.pid").exists()
                        and (folder / "half.pid").read_text().strip(), timeout=60)
        pgid = int((folder / "half.pid").read_text())
        history = window.bench.history
        assert wait_for(lambda: any(a.task == "half" for r in history.runs()
                                    for a in history.attempts(r.id)), timeout=60)
        # its process group is written with its start
        assert leftover_group(pgid)
        cli.kill()
        cli.wait()
        window.settings.trust(folder)
        window.open_path(str(folder))
        assert window.bench.decisions["half"].stale          # never finished: not trusted
        said = []
        window.bench.message.connect(said.append)
        window.actions["run_default"].trigger()
        assert not process_alive(pgid)
        assert any(m.startswith("Stopped what a killed run left running: task half of "
                                "interrupted run ") and f"(process group {pgid})" in m
                   for m in said), said
        wait_run_over(qtbot, window)
        assert window.bench.run.status is RunStatus.SUCCEEDED
        assert (folder / "out.txt").read_text() == "first\nsecond\n"
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        if pgid:
            try:
                os.killpg(pgid, 9)
            except OSError:
                pass
