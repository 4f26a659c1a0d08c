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
