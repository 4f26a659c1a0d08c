"""A file name that is not UTF-8 (b'caf\\xe9.csv', as Latin-1 systems and old archives
make them) works end to end: matched by a glob, run, recorded in history and the run log,
printed as the bytes it is, and up to date afterwards. Real files, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gristmill.core.record.history import History

NAME = b"caf\xe9.csv"
TASK = "proc[" + os.fsdecode(NAME) + "]"          # 'proc[caf\udce9.csv]'
TOML = ('[tasks.proc]\nforeach = "*.csv"\ncmd = "cp {item} {item}.out && echo made {item}.out"\n'
        'outputs = ["{item}.out"]\n'
        '[tasks.all]\ncmd = "cat {inputs} > all.txt"\ninputs = ["*.csv.out"]\n'
        'outputs = ["all.txt"]\n')


def gristmill(*args, cwd):
    # As in a UTF-8 locale where printing a lone surrogate raises (the C.UTF-8 locale of
    # the test machine would let Python print it): stdout and stderr strict.
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                          capture_output=True, env=env, timeout=60)


def test_a_file_name_that_is_not_utf8_runs_is_recorded_and_is_up_to_date(tmp_path,
                                                                         gristmill_home):
    root = os.fsencode(tmp_path)
    with open(os.path.join(root, NAME), "wb") as f:
        f.write(b"latin\n")
    (tmp_path / "plain.csv").write_text("plain\n")
    (tmp_path / "gristmill.toml").write_text(TOML)

    p = gristmill("run", cwd=tmp_path)
    assert b"Traceback" not in p.stderr, p.stderr.decode(errors="replace")
    assert p.returncode == 0, (p.stdout + p.stderr).decode(errors="replace")
    assert b"proc[caf\xe9.csv]" in p.stdout            # the name as the bytes it is
    with open(os.path.join(root, NAME + b".out"), "rb") as f:
        assert f.read() == b"latin\n"
    assert (tmp_path / "all.txt").read_bytes() == b"latin\nplain\n"

    p = gristmill("plan", cwd=tmp_path)
    assert p.returncode == 0 and b"Nothing to run: 3 tasks up to date." in p.stdout, p.stdout

    p = gristmill("history", cwd=tmp_path)
    assert p.returncode == 0 and b"succeeded" in p.stdout and b"Traceback" not in p.stderr

    history = History(gristmill_home / "data" / "history.sqlite3")
    try:
        (run,) = history.runs()
        attempts = {a.task: a for a in history.attempts(run.id)}
        assert set(attempts) == {TASK, "proc[plain.csv]", "all"}
        assert attempts[TASK].outcome.value == "succeeded"
        assert os.fsdecode(NAME) in attempts[TASK].command
        assert Path(attempts[TASK].log_path).is_file()
        assert TASK in history.task_records(tmp_path / "gristmill.toml")
        assert history.last_success(tmp_path / "gristmill.toml", TASK) is not None
    finally:
        history.close()
    tasks = set()
    for line in Path(run.log_path).read_text(encoding="utf-8").splitlines():
        tasks.add(json.loads(line).get("task"))
    assert TASK in tasks

    # The command changed: history (not the file times) says so, for that name too.
    (tmp_path / "gristmill.toml").write_text(TOML.replace("cp {item}", "cp -p {item}"))
    p = gristmill("plan", cwd=tmp_path)
    assert (b"1. proc[caf\xe9.csv]\n        because its command or definition changed since "
            b"it last succeeded") in p.stdout, p.stdout
