"""A workflow file or a cache entry that is a FIFO, a device or a folder: refused with a
message or passed over, never waited on nor read forever. Real FIFOs, real /dev/zero."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.core.load.cache import cache_file

TOML = '[tasks.a]\ncmd = "touch a.txt"\noutputs = ["a.txt"]\n'


def gristmill(*args, cwd=None, timeout=60):
    # The timeout stands for "it hangs": a FIFO opened for reading waits for a writer.
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("make, kind", [
    (lambda p: os.mkfifo(p), "a FIFO"),
    (lambda p: p.symlink_to("/dev/zero"), "a device"),
])
def test_a_workflow_file_that_is_no_file_is_refused_at_once(tmp_path, make, kind):
    for name in ("gristmill.toml", "Makefile"):
        make(tmp_path / name)
        p = gristmill("plan", "-f", name, cwd=tmp_path)
        assert p.returncode == 2
        assert p.stderr == f"{tmp_path / name}:1:1: cannot read: it is {kind}, not a workflow file\n"
        (tmp_path / name).unlink()


def test_f_naming_a_folder_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "gristmill.toml").write_text(TOML)
    p = gristmill("plan", "-f", "sub", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith(f"{tmp_path / 'sub'}:1:1: -f names a folder, not a workflow file")


def test_an_include_that_is_a_device_is_not_read_forever(tmp_path):
    (tmp_path / "gristmill.toml").write_text('[workflow]\ninclude = ["more.toml"]\n' + TOML)
    (tmp_path / "more.toml").symlink_to("/dev/zero")
    p = gristmill("plan", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.startswith(f"{tmp_path / 'gristmill.toml'}:2:12: ")


@pytest.mark.parametrize("make", [
    lambda p: os.mkfifo(p),
    lambda p: p.symlink_to("/dev/zero"),
    lambda p: p.mkdir(),
], ids=["fifo", "device", "folder"])
def test_a_cache_entry_that_is_no_file_is_passed_over(tmp_path, gristmill_home, make):
    root = tmp_path / "p"
    root.mkdir()
    (root / "gristmill.toml").write_text(TOML)
    entry = cache_file(root / "gristmill.toml", str(root / "gristmill.toml"), None,
                       gristmill_home / "cache")
    entry.parent.mkdir(parents=True, exist_ok=True)
    make(entry)
    for _ in range(2):                    # and again, after the store tried to replace it
        p = gristmill("plan", "-C", root)
        assert p.returncode == 0, p.stderr
        assert "1. a" in p.stdout and p.stderr == ""
