"""Isolation from the command line: a machine without the tool a task's isolation needs
is told what is missing and how to install it, exit status 2, before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def gristmill(*args, path="", timeout=120):
    env = {**os.environ, "PATH": path, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("isolation, missing", [
    ('isolation = "sandbox"', "needs bubblewrap (bwrap), not found on PATH: install bubblewrap "
                              "(Debian/Ubuntu: apt-get install bubblewrap"),
    ('network = false', "has network = false (a network of its own), which needs bubblewrap "
                        "(bwrap), not found on PATH"),
    ('container = "debian:12"', "which needs podman or docker, not found on PATH: install "
                                "podman (Debian/Ubuntu: apt-get install podman"),
    ('container = { image = "debian:12", engine = "docker" }',
     "which needs docker, not found on PATH: install docker"),
])
def test_a_missing_tool_is_named_with_how_to_install_it_and_nothing_runs(tmp_path, isolation,
                                                                         missing):
    empty = tmp_path / "empty-path"
    empty.mkdir()
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.first]\ncmd = "/bin/touch ran.txt"\noutputs = "ran.txt"\n'
        f'[tasks.boxed]\ncmd = "true"\nafter = "first"\n{isolation}\n')
    p = gristmill("run", "-C", tmp_path, path=str(empty))
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    line, = p.stderr.strip().splitlines()
    assert line.startswith(f"{tmp_path / 'gristmill.toml'}:4:1: task 'boxed' ")
    assert missing in line
    assert not (tmp_path / "ran.txt").exists()
    p = gristmill("plan", "-C", tmp_path, path=str(empty))
    assert p.returncode == 2 and missing in p.stderr
