"""``gristmill watch`` as a user runs it: a real process, real file events, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

WORKFLOW = """\
[workflow]
name = "w"
default = ["copy", "slow"]

[tasks.copy]
cmd = "cp data/a.txt out/a.txt"
inputs = ["data/a.txt"]
outputs = ["out/a.txt"]

[tasks.slow]
cmd = "echo $$ > slow.pid; exec sleep 300"
inputs = ["data/slow.txt"]
outputs = ["out/slow.txt"]
"""


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start_watch(folder: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """``gristmill watch ARGS -C folder``, its stdout to a file (read while it runs)."""
    out_file = folder / "stdout"
    with open(out_file, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gristmill", "watch", *args, "-C",
                                 str(folder)], stdout=out, stderr=subprocess.PIPE, text=True)
    return proc, out_file


def interrupt(proc: subprocess.Popen) -> str:
    """Ctrl-C, then its stderr once it has ended (killed if it does not)."""
    try:
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=20)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_ctrl_c_cancels_what_the_watch_runs_and_leaves_no_process(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("one\n")
    (tmp_path / "data" / "slow.txt").write_text("s\n")
    (tmp_path / "gristmill.toml").write_text(WORKFLOW)
    proc, out_file = start_watch(tmp_path)
    try:
        assert wait_for(lambda: (tmp_path / "out" / "a.txt").exists()
                        and (tmp_path / "slow.pid").exists())
        pid = int((tmp_path / "slow.pid").read_text())
        assert alive(pid)
    finally:
        err = interrupt(proc)
    assert proc.returncode == 130, err
    assert not alive(pid)
    assert "Traceback" not in err and "stopping the watch" in err
    text = out_file.read_text()
    assert "✓ copy" in text and "slow stopped: the run was cancelled" in text and "CANCELLED" in text


def test_watch_runs_what_a_save_makes_stale_and_tells_a_broken_edit_once(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("one\n")
    (tmp_path / "data" / "slow.txt").write_text("s\n")
    (tmp_path / "gristmill.toml").write_text(WORKFLOW.replace("exec sleep 300", "touch out/slow.txt"))
    proc, out_file = start_watch(tmp_path, "copy")
    try:
        assert wait_for(lambda: "watching" in out_file.read_text())
        time.sleep(0.05)
        (tmp_path / "data" / "a.txt").write_text("two\n")
        assert wait_for(lambda: (tmp_path / "out" / "a.txt").read_text() == "two\n")
        assert wait_for(lambda: out_file.read_text().count("✓ copy") == 2)
        toml = tmp_path / "gristmill.toml"
        good = toml.read_text()
        toml.write_text(good.replace("[tasks.slow]", "[tasks.slow"))
        assert wait_for(lambda: "changed: gristmill.toml" in out_file.read_text())
        toml.write_text(good.replace("[tasks.slow]", "[tasks.slow"))    # the same error
        assert wait_for(lambda: out_file.read_text().count("changed: gristmill.toml") == 2)
        toml.write_text(good)
        assert wait_for(lambda: "reads well again" in out_file.read_text())
    finally:
        err = interrupt(proc)
    assert proc.returncode == 130
    lines = [line for line in err.splitlines() if line.startswith(str(tmp_path))]
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path / 'gristmill.toml'}:10:"), err
    assert "Traceback" not in err
    assert "to run: copy (input data/a.txt" in out_file.read_text()
    h = subprocess.run([sys.executable, "-m", "gristmill", "history", "-C", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    rows = h.stdout.splitlines()[1:]
    assert rows[0].endswith("[watch: data/a.txt changed]") and rows[-1].endswith("[watch]"), h.stdout


def test_watch_an_unknown_target_is_a_usage_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("one\n")
    (tmp_path / "data" / "slow.txt").write_text("s\n")
    (tmp_path / "gristmill.toml").write_text(WORKFLOW)
    p = subprocess.run([sys.executable, "-m", "gristmill", "watch", "nope", "-C", str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "no task or output named 'nope'" in p.stderr
    assert "Traceback" not in p.stderr
