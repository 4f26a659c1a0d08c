"""`gristmill doctor`, and what `gristmill run` tells of isolation: the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


def gristmill(*args, cwd=None, env=None, timeout=120):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=full)


def test_doctor_says_what_the_machine_offers_and_exits_0():
    p = gristmill("doctor")
    assert p.returncode == 0, p.stderr
    for name in ("make recipe shell", "cgroups", "bubblewrap", "containers", "strace", "GPUs",
                 "Dask"):
        assert f" {name}: " in p.stdout, name
    assert p.stdout.count("enables:") == 7
    assert "✓ make recipe shell: compiled helper " in p.stdout      # cc is on this machine
    assert "Traceback" not in p.stderr


def test_doctor_names_the_package_for_what_is_missing(tmp_path):
    # An empty PATH: no bwrap, podman, docker, strace or nvidia-smi to be found.
    empty = tmp_path / "bin"
    empty.mkdir()
    p = gristmill("doctor", env={"PATH": str(empty), "GRISTMILL_CGROUPS": "off"})
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "✗ bubblewrap: not found" in out
    assert "install: apt install bubblewrap / dnf install bubblewrap" in out
    assert "install: apt install strace / dnf install strace" in out
    assert "apt install podman / dnf install podman" in out
    assert "✗ cgroups: no cgroup for tasks: GRISTMILL_CGROUPS=off" in out
    # no cc on that PATH: Makefile recipes go through the Python fallback (or a helper
    # this home compiled before)
    assert "✓ make recipe shell: " in out
    assert "systemd-run --user --scope -p Delegate=yes" in out


def test_run_without_cgroups_tells_once_what_is_not_enforced(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.a]\ncmd = "echo a > a.txt"\noutputs = ["a.txt"]\n'
        '[tasks.b]\ncmd = "echo b > b.txt"\noutputs = ["b.txt"]\n')
    p = gristmill("run", cwd=tmp_path, env={"GRISTMILL_CGROUPS": "off"})
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    assert out.count("no cgroup for tasks (GRISTMILL_CGROUPS=off)") == 1
    assert "declared mem is enforced by sampling memory" in out
    assert (tmp_path / "a.txt").exists() and (tmp_path / "b.txt").exists()


def _cgroups_offer():
    from gristmill.core.run import cgroups
    return cgroups.offer(refresh=True)


def _recorded_group(task: str) -> bool:
    """Whether history holds the process group of ``task``'s running attempt."""
    import sqlite3
    db = os.path.join(os.environ["GRISTMILL_HOME"], "data", "history.sqlite3")
    if not os.path.exists(db):
        return False
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
    try:
        row = conn.execute("SELECT pgid FROM attempts WHERE task = ? AND pgid IS NOT NULL",
                           (task,)).fetchone()
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return row is not None


def test_task_trees_left_by_a_killed_gristmill_are_stopped_by_the_next_run(tmp_path):
    o = _cgroups_offer()
    if not o.version:
        pytest.skip(f"needs a writable cgroup: {o.why_not}")
    marker = f"{4000 + os.getpid() % 1000}.{int(time.time() * 1000) % 1000:03d}"
    (tmp_path / "gristmill.toml").write_text(
        f'[tasks.daemon]\ncmd = "(setsid sleep {marker} &); echo $$ > started; sleep {marker}"\n'
        'phony = true\n'
        '[tasks.other]\ncmd = "echo done > other.txt"\noutputs = ["other.txt"]\n')
    p = subprocess.Popen([sys.executable, "-m", "gristmill", "run", "daemon"], cwd=tmp_path,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists() or not _recorded_group("daemon"):
        # (history writes in batches: a kill before the attempt's row is written leaves
        # only the cgroup sweep to find the tree, which is told differently)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)           # no chance to stop its tasks
    p.wait(10)

    def left() -> list[str]:
        found = []
        for e in os.listdir("/proc"):
            try:
                with open(f"/proc/{e}/cmdline", "rb") as f:
                    if f"sleep\0{marker}".encode() in f.read():
                        found.append(e)
            except OSError:
                pass
        return found
    assert len(left()) == 2                 # the task's sleep and its daemon outlived it
    q = gristmill("run", "other", cwd=tmp_path)
    assert q.returncode == 0, q.stderr
    assert left() == []
    # The shell and its sleep (the task's process group, found from history), then the
    # daemon that left the group, found in the dead Gristmill's cgroups: all three told.
    told = q.stdout + q.stderr
    assert "task daemon of interrupted run" in told and "left running when Gristmill was killed" in told
    assert f"that tasks of a Gristmill that died (pid {p.pid}) had left running" in told


def test_doctor_lists_the_gpus_nvidia_smi_finds(tmp_path):
    # No GPU here: a stand-in nvidia-smi answers -L as the real one does.
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    smi = bin_ / "nvidia-smi"
    smi.write_text("#!/bin/sh\n[ \"$1\" = -L ] || exit 9\n"
                   "echo 'GPU 0: NVIDIA H200 (UUID: GPU-0a1b)'\n"
                   "echo 'GPU 1: NVIDIA H200 (UUID: GPU-2c3d)'\n")
    smi.chmod(0o755)
    p = gristmill("doctor", env={"PATH": f"{bin_}:{os.environ['PATH']}"})
    assert p.returncode == 0, p.stderr
    assert "✓ GPUs: 2: GPU 0: NVIDIA H200 (UUID: GPU-0a1b); GPU 1: NVIDIA H200" in p.stdout


def _live_with(marker: str) -> list[int]:
    found = []
    for e in os.listdir("/proc"):
        try:
            with open(f"/proc/{e}/cmdline", "rb") as f:
                hit = marker.encode() in f.read().replace(b"\0", b" ")
            with open(f"/proc/{e}/stat", "rb") as f:
                zombie = f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
        except OSError:
            continue
        if hit and not zombie:
            found.append(int(e))
    return found


@pytest.mark.parametrize("cgroups", ["auto", "off"])
def test_ctrl_c_leaves_nothing_of_gnu_timeout_nor_a_setsid_daemon(tmp_path, cgroups):
    marker = f"{5000 + os.getpid() % 1000}.{int(time.time() * 1000) % 1000:03d}"
    # GNU timeout makes a process group of its own; the daemon a session of its own.
    (tmp_path / "gristmill.toml").write_text(
        f'[tasks.escape]\ncmd = "(setsid sleep {marker} &); echo started > started; '
        f'timeout 100 sleep {marker}"\nphony = true\n[workflow]\ndefault = ["escape"]\n')
    env = dict(os.environ, GRISTMILL_CGROUPS=cgroups)
    proc = subprocess.Popen([sys.executable, "-m", "gristmill", "run", "-C", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists() or len(_live_with(f"sleep {marker}")) < 2:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert _live_with(f"sleep {marker}") == []
    assert "Traceback" not in err
