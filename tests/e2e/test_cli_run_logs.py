"""What a run leaves on disk: the run log holds events, not output (the attempt logs do),
and the CLI forgets old runs by the app's retention. Real runs, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from gristmill.core.record.history import History

LOUD = ('[tasks.loud]\ncmd = "seq 1 200000"\n'          # 1.29 MB of output
        '[tasks.quiet]\ncmd = "true"\nafter = ["loud"]\n')


def gristmill(*args, cwd):
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _history(home: Path) -> History:
    return History(home / "data" / "history.sqlite3")


def test_the_run_log_points_to_the_attempt_log_and_holds_none_of_its_output(tmp_path,
                                                                          gristmill_home):
    # 1.29 MB of output made a 29.9 MB run log (a JSON line per output line).
    (tmp_path / "gristmill.toml").write_text(LOUD)
    p = gristmill("run", "--quiet", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    history = _history(gristmill_home)
    try:
        (run,) = history.runs()
        attempts = {a.task: a for a in history.attempts(run.id)}
    finally:
        history.close()
    output = Path(attempts["loud"].log_path)
    assert output.read_text().splitlines()[-1] == "200000"
    run_log = Path(run.log_path)
    lines = [json.loads(x) for x in run_log.read_text().splitlines()]
    assert os.path.getsize(run_log) < 10_000 < 1_000_000 < os.path.getsize(output)
    started = [x for x in lines if x["event"] == "task_started" and x["task"] == "loud"]
    assert started[0]["log_path"] == str(output)
    assert {x["event"] for x in lines} >= {"run_started", "task_finished", "run_finished"}


def test_runs_beyond_the_retention_are_forgotten_with_their_logs(tmp_path, gristmill_home):
    (tmp_path / "gristmill.toml").write_text('[tasks.a]\ncmd = "echo hi"\n')
    for _ in range(4):
        assert gristmill("run", cwd=tmp_path).returncode == 0
    history = _history(gristmill_home)
    try:
        runs = history.runs()
        logs = {r.id: [Path(r.log_path)] + [Path(a.log_path) for a in history.attempts(r.id)]
                for r in runs}
    finally:
        history.close()
    assert len(runs) == 4 and all(p.is_file() for ps in logs.values() for p in ps)

    # The app's preference ("Keep at most: 3 runs") holds for the CLI too.
    (gristmill_home / "config").mkdir(exist_ok=True)
    (gristmill_home / "config" / "app-settings.json").write_text(
        json.dumps({"preferences": {"keep_runs": 3, "keep_days": 0}}))
    assert gristmill("run", cwd=tmp_path).returncode == 0
    history = _history(gristmill_home)
    try:
        kept = [r.id for r in history.runs()]
    finally:
        history.close()
    assert len(kept) == 3 and kept[1:] == [r.id for r in runs[:2]]   # the newest three
    for old in runs[2:]:
        assert not any(p.exists() for p in logs[old.id]), old.id     # its logs are gone too
    assert all(p.is_file() for r in runs[:2] for p in logs[r.id])

    # An option overrides it for one run.
    assert gristmill("run", "--keep-runs", "1", cwd=tmp_path).returncode == 0
    history = _history(gristmill_home)
    try:
        assert len(history.runs()) == 1
    finally:
        history.close()
    p = gristmill("run", "--keep-runs", "-1", cwd=tmp_path)
    assert p.returncode == 2 and "expected a whole number" in p.stderr
