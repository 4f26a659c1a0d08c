"""Output to a full device (`> /dev/full`): one line on stderr and exit status 2, as make's
"write error: stdout", never Python's "Exception ignored" traceback at exit."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_plan_written_to_a_full_device_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "gristmill.toml").write_text('[tasks.a]\ncmd = "true"\noutputs = ["a"]\n')
    env = {**os.environ, "GRISTMILL_HOME": str(tmp_path / "home")}
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "gristmill", "plan", "-C", str(tmp_path)],
                           stdout=full, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().startswith("gristmill: write error") and "No space left" in p.stderr
