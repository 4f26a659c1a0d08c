"""A run history that cannot be used: the app says so once, in a banner, goes on without
it, and offers to move the file aside and start a new one (nothing is deleted). Real
damaged SQLite files and a real second process holding the lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import wait_run_over

from gristmill.app.main import HistoryProblems, create_window, open_history
from gristmill.app.settings import Settings
from gristmill.core.paths import history_db


def _window(qtbot, path=None):
    problems = HistoryProblems()
    history = open_history(problems)
    window = create_window(path, settings=Settings(), history=history, problems=problems)
    qtbot.addWidget(window)
    return window, history


def test_a_damaged_history_is_offered_to_be_moved_aside_and_runs_are_kept_again(
        qtbot, example):
    db = history_db()
    garbage = b"this is not a database, " * 100
    db.write_bytes(garbage)
    window, history = _window(qtbot, str(example))
    banner = window.history_banner
    assert history is None and not banner.isHidden()
    assert "cannot be used" in banner.text.text() and "move" in banner.text.text()
    assert not banner.move_aside.isHidden()

    banner.move_aside.click()
    assert banner.isHidden()
    moved = [p for p in db.parent.iterdir() if p.name.startswith("history.sqlite3.damaged-")]
    assert len(moved) == 1 and moved[0].read_bytes() == garbage      # kept, not deleted
    assert window.bench.history is not None
    assert "moved to" in window.statusBar().currentMessage()

    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    runs = window.bench.history.runs(str(window.bench.workflow.path))
    assert len(runs) == 1 and runs[0].status.value == "succeeded"
    window.bench.history.close()


def test_a_history_locked_by_another_process_is_not_offered_to_be_moved(qtbot, tmp_path):
    db = history_db()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, sys
        conn = sqlite3.connect({str(db)!r}, isolation_level=None)
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("CREATE TABLE IF NOT EXISTS held (x)")
        print("held", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        window, history = _window(qtbot)
        banner = window.history_banner
        assert not banner.isHidden(), "the banner says history is not kept"
        assert "locked by another process" in banner.text.text()
        assert banner.move_aside.isHidden()        # moving it would not help
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        if history is not None:
            history.close()


def test_a_sound_history_shows_no_banner(qtbot):
    window, history = _window(qtbot)
    try:
        assert history is not None and window.history_banner.isHidden()
    finally:
        history.close()
