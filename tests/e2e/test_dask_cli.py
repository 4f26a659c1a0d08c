"""``gristmill run --dask`` as a user runs it: real processes, a real local Dask cluster."""

from __future__ import annotations

import os
import re
import shutil
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
