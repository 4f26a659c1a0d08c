"""``gristmill run --dask`` as a user runs it: real processes, a real local Dask cluster."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "resources" / "examples" / "pipeline"


def gristmill(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def ran(output: str) -> list[str]:
    return re.findall(r"^✓ (\S+) \(", output, re.M)


def marked(mark: str) -> list[int]:
    """Processes still running with GRISTMILL_TEST_MARK=mark in their environment."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("GRISTMILL_TEST_MARK") == mark and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            pass
    return found


@pytest.fixture
def pipeline(tmp_path):
    dst = tmp_path / "pipeline"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("build"))
    return dst


def test_the_example_runs_on_a_local_cluster_then_does_nothing(pipeline):
    mark = uuid.uuid4().hex
    p = gristmill("run", "--dask", "local", "-C", pipeline, env={"GRISTMILL_TEST_MARK": mark})
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(ran(p.stdout)) == 9          # 4 tidy + 4 summarise + report
    assert "| birds |" in (pipeline / "build/report.md").read_text()
    assert "kept 56 rows" in p.stdout       # task output came back from the workers

    p = gristmill("run", "--dask", "local", "-C", pipeline, env={"GRISTMILL_TEST_MARK": mark})
    assert p.returncode == 0 and ran(p.stdout) == []
    assert "nothing to do" in p.stdout

    deadline = time.monotonic() + 10         # the cluster went away with the command
    while marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked(mark) == []


def test_an_unreachable_scheduler_is_a_usage_error(pipeline):
    p = gristmill("run", "--dask", "tcp://127.0.0.1:9", "-C", pipeline,
                  env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"})
    assert p.returncode == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (pipeline / "build").exists()


def test_ctrl_c_cancels_the_run_and_kills_the_remote_trees(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.slow]\ncmd = "sleep 60 & echo $! > pids; echo $$ >> pids; wait"\nphony = true\n')
    mark = uuid.uuid4().hex
    # Its own process group, as a terminal's Ctrl-C reaches the whole foreground group.
    p = subprocess.Popen([sys.executable, "-m", "gristmill", "run", "--dask", "local",
                          "-C", str(tmp_path), "slow"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True,
                         env={**os.environ, "GRISTMILL_TEST_MARK": mark})
    try:
        deadline = time.monotonic() + 60
        while len((tmp_path / "pids").read_text().split() if (tmp_path / "pids").exists()
                  else ()) < 2:
            assert p.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, out + err
    assert "CANCELLED" in out
    tree = [int(x) for x in (tmp_path / "pids").read_text().split()]
    deadline = time.monotonic() + 10
    while (marked(mark) or any(psutil.pid_exists(x) and psutil.Process(x).status() !=
                               psutil.STATUS_ZOMBIE for x in tree)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked(mark) == []


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "dask"), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def test_a_scheduler_that_dies_mid_run_ends_the_run_failed_in_one_line(tmp_path):
    # It used to cancel the running attempts, send the next task to the closed client and
    # hang there until killed, then print ClosedClientError tracebacks.
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.slow]\ncmd = "echo $$ > started; sleep 30; echo late > out"\n'
        'outputs = ["out"]\nretries = 2\n'
        '[tasks.next]\ncmd = "cp out next.txt"\ninputs = ["out"]\noutputs = ["next.txt"]\n')
    address = f"tcp://127.0.0.1:{_free_port()}"
    scheduler = _dask("scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
                      "--no-dashboard")
    worker = _dask("worker", address, "--nthreads", "2", "--no-dashboard")
    p = None
    try:
        p = subprocess.Popen([sys.executable, "-m", "gristmill", "run", "--dask", address,
                              "-C", str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "20s"})
        deadline = time.monotonic() + 90
        while not (tmp_path / "started").exists():
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.05)
        os.killpg(scheduler.pid, signal.SIGKILL)
        out, err = p.communicate(timeout=60)       # the timeout stands for "it hangs"
    finally:
        for proc in (p, scheduler, worker):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL) if proc is not p else proc.kill()
                proc.wait()
        if (tmp_path / "started").exists():           # the command the worker left
            try:
                os.killpg(int((tmp_path / "started").read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
    assert p.returncode == 1, out + err
    assert "Traceback" not in err and "ClosedClientError" not in out + err, err
    said = [line for line in (out + err).splitlines() if line.startswith("gristmill: ")
            and "scheduler" in line]
    assert said == [f"gristmill: the Dask scheduler at {address} was lost: the run stops; "
                    "1 running command may still run on the workers, and what they write "
                    "is not trusted"], out + err
    assert f"✗ slow failed: the Dask scheduler at {address} was lost (attempt 1" in out
    assert "- next skipped" in out and "gristmill: run FAILED" in out
    assert "attempt 2" not in out + err                # nothing retried on a lost cluster
