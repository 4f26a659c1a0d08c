"""`gristmill doctor`, and what `gristmill run` tells of isolation: the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def gristmill(*args, cwd=None, env=None, timeout=120):
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=full)


def test_doctor_says_what_the_machine_offers_and_exits_0():
    p = gristmill("doctor")
    assert p.returncode == 0, p.stderr
    for name in ("cgroups", "bubblewrap", "containers", "strace", "GPUs", "Dask"):
        assert f" {name}: " in p.stdout, name
    assert p.stdout.count("enables:") == 6
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
