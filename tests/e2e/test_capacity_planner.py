"""`gristmill plan --on`: the capacity planner predicts, from history, how long the stale
tasks take on another machine; checked against real runs of the same workflow."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

WORKFLOW = """
    [capacity]
    cpu = 8

    [tasks.s]
    foreach = ["1", "2", "3", "4", "5"]
    cmd = "sleep 0.6; touch s{item}.txt"
    outputs = ["s{item}.txt"]

    [tasks.c1]
    cmd = "sleep 0.3; touch c1.txt"
    outputs = ["c1.txt"]

    [tasks.c2]
    cmd = "sleep 0.9; touch c2.txt"
    inputs = ["c1.txt"]
    outputs = ["c2.txt"]
    """


@pytest.fixture
def project(tmp_path):
    (tmp_path / "gristmill.toml").write_text(textwrap.dedent(WORKFLOW))
    return tmp_path


def gm(folder, *words):
    env = {**os.environ, "GRISTMILL_HOME": str(folder / "home")}
    return subprocess.run([sys.executable, "-m", "gristmill", *words, "-C", str(folder)],
                          capture_output=True, text=True, timeout=120, env=env)


def last_makespan(folder) -> float:
    with sqlite3.connect(folder / "home" / "data" / "history.sqlite3") as db:
        started, ended = db.execute(
            "SELECT started, ended FROM runs ORDER BY started DESC LIMIT 1").fetchone()
    return ended - started


def predict(folder, *on) -> dict[str, dict]:
    words = [w for spec in on for w in ("--on", spec)]
    p = gm(folder, "plan", "-B", "--json", *words)
    assert p.returncode == 0, p.stderr
    return {pr["on"]: pr for pr in json.loads(p.stdout)["predictions"]}


def test_predictions_are_within_ten_percent_of_real_runs(project):
    for _ in range(2):        # history: each task's recent successes
        assert gm(project, "run", "-B", "-j", "2").returncode == 0
    predicted = predict(project, "jobs=2", "jobs=4")
    for jobs in (2, 4):
        assert gm(project, "run", "-B", "-j", str(jobs)).returncode == 0
        real = last_makespan(project)
        guess = predicted[f"jobs={jobs}"]["makespan"]
        assert abs(guess - real) / real < 0.10, (jobs, guess, real)
    # Twice the slots: the five 0.6 s tasks and the 1.2 s chain pack better.
    assert predicted["jobs=4"]["makespan"] < predicted["jobs=2"]["makespan"]


def test_the_critical_path_and_a_sweep_are_told_in_words(project):
    assert gm(project, "run", "-j", "2").returncode == 0
    p = gm(project, "plan", "-B", "--on", "jobs=1..8")
    assert p.returncode == 0, p.stderr
    assert "durations: 7 from history" in p.stdout
    for n in (1, 2, 4, 8):
        assert f"jobs={n}" in p.stdout
    assert "critical path: c1 → c2" in p.stdout
    # With 8 slots everything starts at once: the chain c1 → c2 sets the makespan.
    line = next(l for l in p.stdout.splitlines() if l.startswith("jobs=8:"))
    assert "buys nothing: the critical path is" in line, p.stdout


def test_a_task_never_run_is_estimated_from_its_siblings_or_guessed(project):
    assert gm(project, "run", "-j", "2", "s[1]").returncode == 0
    data = json.loads(gm(project, "plan", "-B", "--json", "--on", "cpu=2").stdout)
    assert data["durations"]["siblings"] == 4          # s[2..5], from s[1]
    assert data["durations"]["guessed"] == ["c1", "c2"]
    p = gm(project, "plan", "-B", "--on", "cpu=2")
    assert "2 guessed at 1.0 s (never run)" in p.stdout


@pytest.mark.parametrize("spec, said", [
    ("cpu=lots", "cpu=lots is not a number"), ("disk=1", "expected cpu=N"),
    ("mem=3", "mem=3 is not a number with a unit"), ("cpu=8..2", "not a range"),
])
def test_a_bad_capacity_is_a_clear_error(project, spec, said):
    p = gm(project, "plan", "--on", spec)
    assert p.returncode == 2 and said in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
