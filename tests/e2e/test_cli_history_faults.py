"""Storage faults never stop a run: a history that is garbage, truncated, damaged in the
middle, locked by another process, read-only or on a full disk. The run goes on without
it, its outputs are made, and the user is told once, in one line, how to mend it.

Real SQLite files, a real second process holding the lock, real tmpfs mounts (root, as in
CI; skipped with the reason where mounting is not allowed)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def toml(*names: str) -> str:
    return "".join(f'[tasks.{n}]\ncmd = "touch {n}.txt"\noutputs = ["{n}.txt"]\n'
                   for n in names)


def gristmill(*args, cwd, home, timeout=60):
    # The timeout stands for "it hangs".
    env = dict(os.environ, GRISTMILL_HOME=str(home), PYTHONPATH=SRC)
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=timeout)


def history_file(home: Path) -> Path:
    return home / "data" / "history.sqlite3"


def told(p) -> list[str]:
    """The lines that tell of history on stderr; there is no traceback."""
    assert "Traceback" not in p.stderr, p.stderr
    return [line for line in p.stderr.splitlines() if line.startswith("gristmill: history ")]


def project(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "p"
    root.mkdir(exist_ok=True)
    (root / "gristmill.toml").write_text(toml(*names))
    return root


def a_history(tmp_path: Path, home: Path) -> Path:
    """A real history with one run in it, its WAL folded in."""
    root = project(tmp_path, "a")
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stderr
    path = history_file(home)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)
    return path


def assert_runs_without_history(tmp_path: Path, home: Path, why: str) -> None:
    root = project(tmp_path, "a", "b")
    p = gristmill("run", cwd=root, home=home)
    assert p.returncode == 0, p.stderr
    assert (root / "b.txt").exists()
    lines = told(p)
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith(f"gristmill: history {history_file(home)} cannot be used: ")
    assert why in lines[0]
    assert "the run goes on without it" in lines[0]
    # A plan says the same, once, and answers.
    p = gristmill("plan", cwd=root, home=home)
    assert p.returncode == 0, p.stderr
    assert len(told(p)) == 1, p.stderr


def test_a_history_of_garbage(tmp_path):
    home = tmp_path / "home"
    history_file(home).parent.mkdir(parents=True)
    history_file(home).write_bytes(b"this is no database, " * 500)
    assert_runs_without_history(tmp_path, home, f"move {history_file(home)} aside")


def test_a_truncated_history(tmp_path):
    home = tmp_path / "home"
    path = a_history(tmp_path, home)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 3])
    assert_runs_without_history(tmp_path, home, f"move {path} aside")


def test_a_history_damaged_in_the_middle(tmp_path):
    home = tmp_path / "home"
    path = a_history(tmp_path, home)
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page, len(data), page):      # every page but the first (the header)
        data[start:start + page] = b"\xa5" * page
    path.write_bytes(bytes(data))
    assert_runs_without_history(tmp_path, home, f"move {path} aside")


def test_a_history_locked_by_another_process(tmp_path):
    home = tmp_path / "home"
    path = a_history(tmp_path, home)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sqlite3, sys
        conn = sqlite3.connect({str(path)!r}, isolation_level=None)
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("CREATE TABLE IF NOT EXISTS held (x)")
        print("held", flush=True)
        sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert_runs_without_history(tmp_path, home, "it is locked by another process")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    # Once it lets go, history is used again: this run is recorded.
    root = tmp_path / "p"
    p = gristmill("run", "b", "--force", cwd=root, home=home)
    assert p.returncode == 0 and told(p) == [], p.stderr
    p = gristmill("history", cwd=root, home=home)
    assert p.returncode == 0 and p.stdout.count("succeeded") == 2, p.stdout


@pytest.fixture
def tmpfs(tmp_path):
    mount = tmp_path / "home"
    mount.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip() or p.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_read_only_history(tmp_path, tmpfs):
    a_history(tmp_path, tmpfs)
    p = subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert_runs_without_history(tmp_path, tmpfs, "")


def test_a_history_on_a_full_disk(tmp_path, tmpfs):
    a_history(tmp_path, tmpfs)
    with open(tmpfs / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    assert_runs_without_history(tmp_path, tmpfs, "")
