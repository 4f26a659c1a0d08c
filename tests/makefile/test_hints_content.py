"""``# gristmill: check=content retry_mem=…`` above a rule: the Makefile's tasks decide
by content, through the CLI, with real make, real files and a real history."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gristmill.core.errors import WorkflowError
from gristmill.core.makefile import load_makefile
from make_harness import needs_make

pytestmark = needs_make
SRC = str(Path(__file__).resolve().parents[2] / "src")
MAKEFILE = ("# gristmill: check=content retry_mem=4GB,8GB mem=2GB\n"
            "out.txt: in.txt\n\tcp in.txt out.txt && echo ran >> ran.log\n")


def gm(folder, home, *args):
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=folder,
                          env=dict(os.environ, GRISTMILL_HOME=str(home), PYTHONPATH=SRC),
                          capture_output=True, text=True, timeout=120)


def test_the_hint_sets_check_and_retry_mem_and_a_touch_does_not_rebuild(tmp_path):
    (tmp_path / "Makefile").write_text(MAKEFILE)
    (tmp_path / "in.txt").write_text("x")
    t = load_makefile(tmp_path).tasks["out.txt"]
    assert t.check == "content" and t.retry_mem == (4 * 10**9, 8 * 10**9)
    home = tmp_path / "home"
    assert gm(tmp_path, home, "run").returncode == 0
    later = time.time() + 5
    os.utime(tmp_path / "in.txt", (later, later))
    p = gm(tmp_path, home, "plan", "--all")
    assert "input in.txt was touched but its content is unchanged since the last success" \
        in p.stdout, p.stdout + p.stderr
    assert gm(tmp_path, home, "run").returncode == 0
    assert (tmp_path / "ran.log").read_text().split() == ["ran"]


@pytest.mark.parametrize("hint, words", [
    ("check=hash", "check must be mtime or content"),
    ("retry_mem=1", "a retry_mem factor must be larger than 1, got '1'"),
    ("retry_mem=8GB,4GB", "each retry_mem size must be larger than the one before"),
])
def test_bad_hints_are_told_at_the_hint(tmp_path, hint, words):
    (tmp_path / "Makefile").write_text(f"# gristmill: {hint}\nout: \n\ttouch out\n")
    with pytest.raises(WorkflowError) as err:
        load_makefile(tmp_path)
    assert str(err.value) == f"{tmp_path / 'Makefile'}:1:14: bad gristmill hint {hint!r}: {words}"
