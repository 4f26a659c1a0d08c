"""The ``gristmill`` command as a user runs it: real processes, real files, temp dirs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "resources" / "examples" / "pipeline"


def gristmill(*args, cwd=None, timeout=120, **kw):
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture
def pipeline(tmp_path):
    dst = tmp_path / "pipeline"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("build"))
    return dst


def ran(output: str) -> list[str]:
    return re.findall(r"^✓ (\S+) \(", output, re.M)


def test_version():
    p = gristmill("--version")
    assert p.returncode == 0 and re.fullmatch(r"gristmill \d+\.\d+\.\d+\n", p.stdout)


def test_example_runs_then_does_nothing_then_reruns_only_downstream(pipeline):
    p = gristmill("run", "-C", pipeline)
    assert p.returncode == 0, p.stdout + p.stderr
    report = (pipeline / "build/report.md").read_text()
    assert "| harbour | 60 |" not in report and "| birds |" in report
    assert len(ran(p.stdout)) == 9          # 4 tidy + 4 summarise + report

    p = gristmill("run", "-C", pipeline)
    assert p.returncode == 0 and ran(p.stdout) == []
    assert "nothing to do" in p.stdout

    later = time.time() + 5
    os.utime(pipeline / "data/raw/birds.csv", (later, later))
    p = gristmill("plan", "-C", pipeline)
    assert p.returncode == 0
    assert re.findall(r"^\s+\d+\. (\S+)$", p.stdout, re.M) == [
        "tidy[data/raw/birds.csv]", "summarise[data/raw/birds.csv]", "report"]
    assert re.search(r"because input data/raw/birds.csv \(\d\d:\d\d:\d\d\) is newer than "
                     r"output build/clean/birds.csv", p.stdout)
    assert "3 to run, 6 up to date." in p.stdout

    p = gristmill("run", "-C", pipeline)
    assert p.returncode == 0
    assert sorted(ran(p.stdout)) == sorted(["tidy[data/raw/birds.csv]",
                                            "summarise[data/raw/birds.csv]", "report"])


def test_history_lists_runs(pipeline):
    gristmill("run", "-C", pipeline)
    p = gristmill("history", "-C", pipeline)
    assert p.returncode == 0
    assert "succeeded" in p.stdout and "9 done" in p.stdout


def test_history_all_says_which_workflow_each_run_was(tmp_path):
    # With several projects, `history --all` listed runs that could not be told apart.
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "gristmill.toml").write_text(
            '[tasks.hello]\ncmd = "echo hi"\nphony = true\n')
        assert gristmill("run", "-C", tmp_path / name).returncode == 0
    p = gristmill("history", "--all", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    head, *rows = p.stdout.splitlines()
    assert head.split()[:3] == ["run", "workflow", "started"]
    assert len(rows) == 2
    shown = [row.split()[1] for row in rows]
    assert sorted(w.rsplit("/", 1)[-1] for w in shown) == ["alpha", "beta"]
    assert all(w.startswith(("/", "~", "…")) for w in shown)
    # one project's history needs no such column
    one = gristmill("history", "-C", tmp_path / "alpha").stdout.splitlines()
    assert one[0].split()[:2] == ["run", "started"] and len(one) == 2


def test_graph_exports(pipeline):
    p = gristmill("graph", "-C", pipeline, "--format", "json")
    data = json.loads(p.stdout)
    names = {t["name"] for t in data["tasks"]}
    assert "report" in names and "tidy[data/raw/birds.csv]" in names
    assert ["summarise[data/raw/birds.csv]", "report"] in data["edges"]
    p = gristmill("graph", "-C", pipeline)
    assert p.stdout.startswith('digraph "weather-pipeline" {')
    assert '"tidy[data/raw/birds.csv]" -> "summarise[data/raw/birds.csv]";' in p.stdout


def test_bad_workflow_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "gristmill.toml").write_text('[tasks.a]\ncmd = "true"\noutptus = ["x"]\n')
    p = gristmill("run", "-C", tmp_path)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert re.match(r".*gristmill\.toml:3:1: .*outptus.*did you mean 'outputs'", p.stderr)


def test_unknown_target_is_a_usage_error(pipeline):
    p = gristmill("run", "-C", pipeline, "nope")
    assert p.returncode == 2 and "no task or output named 'nope'" in p.stderr


def test_failing_task_exits_1_and_shows_its_output(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.bad]\ncmd = "echo half > out.txt; echo it broke; exit 3"\noutputs = ["out.txt"]\n')
    p = gristmill("run", "-C", tmp_path)
    assert p.returncode == 1
    assert "✗ bad failed: exit status 3" in p.stdout and "| it broke" in p.stdout
    assert not (tmp_path / "out.txt").exists()
    [log] = re.findall(r"full log: (\S+)", p.stdout)
    assert Path(log).read_text() == "it broke\n"       # the path it gives is the log


def test_a_failing_task_that_printed_nothing_names_no_log(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.mute]\ncmd = "false"\noutputs = ["out.txt"]\n')
    p = gristmill("run", "-C", tmp_path)
    assert p.returncode == 1
    assert "✗ mute failed: exit status 1" in p.stdout and "(it printed nothing)" in p.stdout
    assert "full log" not in p.stdout


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _long_workflow(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        "[tasks.long]\n"
        "cmd = \"sleep 300 & echo $! > child.pid; echo started > started; wait\"\n"
        "phony = true\n"
        "[workflow]\ndefault = [\"long\"]\n")


def _start_run(tmp_path):
    """``gristmill run`` in ``tmp_path``, once its task wrote ``started``: (process, the pid
    in ``child.pid``)."""
    proc = subprocess.Popen([sys.executable, "-m", "gristmill", "run", "-C", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not (tmp_path / "started").exists():
        assert time.time() < deadline and proc.poll() is None
        time.sleep(0.05)
    return proc, int((tmp_path / "child.pid").read_text())


def test_ctrl_c_kills_everything_and_records_cancelled(tmp_path):
    _long_workflow(tmp_path)
    proc, child = _start_run(tmp_path)
    assert _alive(child)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 2.5
    assert proc.returncode == 130
    assert not _alive(child)
    assert "cancelling" in err and "CANCELLED" in out
    h = gristmill("history", "-C", tmp_path)
    assert "cancelled" in h.stdout


def test_second_ctrl_c_kills_a_task_that_ignores_sigterm_and_still_reports(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        "[tasks.stubborn]\n"
        "cmd = \"trap '' TERM; echo $$ > child.pid; echo started > started; sleep 300\"\n"
        "phony = true\n"
        "[workflow]\ndefault = [\"stubborn\"]\n")
    proc, child = _start_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    assert _alive(child)             # it ignores the SIGTERM of the first Ctrl-C
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130
    assert not _alive(child)
    assert "Traceback" not in err
    assert "cancelling" in err and "killing every running task now" in err
    assert "⊘ stubborn stopped: the run was cancelled (attempt 1, " in out
    assert re.search(r"^gristmill: run CANCELLED in \S+ m?s: 1 stopped$", out, re.M), out
    assert "failed" not in out
    assert "cancelled" in gristmill("history", "-C", tmp_path).stdout


def test_crashed_run_is_marked_interrupted(tmp_path):
    _long_workflow(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "gristmill", "run", "-C", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while not (tmp_path / "started").exists():
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.3)      # let history write the run's start
    proc.kill()
    proc.wait()
    os.kill(int((tmp_path / "child.pid").read_text()), signal.SIGKILL)
    h = gristmill("history", "-C", tmp_path)
    assert h.returncode == 0 and "interrupted" in h.stdout


def test_shell_metacharacters_in_file_names_run_nothing(tmp_path):
    (tmp_path / "in").mkdir()
    nasty = "a b;$(touch pwned).txt"
    (tmp_path / "in" / nasty).write_text("data")
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.copy]\nforeach = "in/*.txt"\ncmd = "cp {input} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["out/{name}"]\n')
    p = gristmill("run", "-C", tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (tmp_path / "out" / nasty).read_text() == "data"
    assert not (tmp_path / "pwned").exists()


STAMP_PY = ("import sys, time\nout = open(sys.argv[1] + '.t', 'a')\n"
            "out.write(f'{time.time()}\\n'); out.flush(); time.sleep(0.3)\n"
            "out.write(f'{time.time()}\\n')\n")


def _stamping(folder, body):
    (folder / "stamp.py").write_text(STAMP_PY)
    (folder / "gristmill.toml").write_text(body)


def _spans(folder, items):
    spans = []
    for i in items:
        start, end = map(float, (folder / f"{i}.t").read_text().split())
        spans.append((start, end))
    return sorted(spans)


def test_capacity_in_the_file_keeps_big_tasks_apart(tmp_path):
    _stamping(tmp_path, '[capacity]\nmem = "1GB"\ncpu = 8\n'
              '[tasks.big]\nforeach = ["a", "b", "c"]\nphony = true\n'
              'cmd = "python3 stamp.py {item}"\nresources = { mem = "600MB" }\n'
              '[workflow]\ndefault = ["big"]\n')
    p = gristmill("run", "-C", tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    spans = _spans(tmp_path, "abc")
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2)), spans


def test_jobs_flag_caps_parallelism_and_a_json_log_is_written(tmp_path, gristmill_home):
    _stamping(tmp_path, '[tasks.t]\nforeach = ["a", "b", "c"]\nphony = true\n'
              'cmd = "python3 stamp.py {item}"\n[workflow]\ndefault = ["t"]\n')
    p = gristmill("run", "-C", tmp_path, "-j", "1")
    assert p.returncode == 0, p.stdout + p.stderr
    spans = _spans(tmp_path, "abc")
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2)), spans
    logs = list((gristmill_home / "logs" / "runs").glob("*.jsonl"))
    assert len(logs) == 1
    lines = [json.loads(line) for line in logs[0].read_text().splitlines()]
    assert lines[0]["event"] == "run_started" and lines[-1]["event"] == "run_finished"
    finished = [x for x in lines if x["event"] == "task_finished"]
    assert {x["task"] for x in finished} == {"t[a]", "t[b]", "t[c]"}
    assert all(x["run"] == lines[0]["run"] and x["attempt"] == 1 for x in finished)


def test_every_error_of_a_bad_workflow_is_printed_and_exit_2(tmp_path):
    # Only `ouputs` was named; `retires` on the next line was told after it was fixed.
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.a]\ncmd = "true"\nouputs = ["x"]\nretires = 2\n')
    for command in ("run", "plan"):
        p = gristmill(command, "-C", tmp_path)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        lines = p.stderr.splitlines()
        assert len(lines) == 2, p.stderr
        assert re.fullmatch(r".*gristmill\.toml:3:1: unknown key 'ouputs' in tasks\.a "
                            r"\(did you mean 'outputs'\?\)", lines[0])
        assert re.fullmatch(r".*gristmill\.toml:4:1: unknown key 'retires' in tasks\.a "
                            r"\(did you mean 'retries'\?\)", lines[1])


def test_a_workflow_of_phony_tasks_alone_runs_every_task(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.hello]\ncmd = "echo hi > said"\nphony = true\n\n'
        '[tasks.bye]\ncmd = "echo bye >> said"\nphony = true\nafter = ["hello"]\n')
    p = gristmill("plan", "-C", tmp_path)
    assert p.returncode == 0 and "2 to run" in p.stdout, p.stdout
    p = gristmill("run", "-C", tmp_path)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "said").read_text() == "hi\nbye\n"


def test_a_folder_with_no_workflow_is_named_without_a_line_and_column(tmp_path):
    p = gristmill("run", "-C", tmp_path)
    assert p.returncode == 2
    assert p.stderr.strip() == (f"{tmp_path}: no workflow file here: expected gristmill.toml, "
                                "gristmill.json or a Makefile")


def test_help_names_the_path_the_app_opens():
    p = gristmill("--help")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: gristmill [PATH]\n")


def test_history_columns_line_up_whatever_the_counts(tmp_path):
    # a run whose counts ("12 done, 10 failed, 10 skipped") are wider than a short one's
    toml = "".join(f'[tasks.ok{i}]\ncmd = "true"\nphony = true\n' for i in range(12))
    toml += "".join(f'[tasks.bad{i}]\ncmd = "exit 3"\noutputs = ["b{i}"]\n'
                    f'[tasks.later{i}]\ncmd = "true"\nphony = true\ninputs = ["b{i}"]\n'
                    for i in range(10))
    (tmp_path / "gristmill.toml").write_text(toml)
    gristmill("run", "-C", tmp_path, "ok0")
    every = [f"ok{i}" for i in range(12)] + [f"later{i}" for i in range(10)]
    gristmill("run", "-C", tmp_path, "-k", "-j", "4", *every)
    lines = gristmill("history", "-C", tmp_path).stdout.splitlines()
    head, rows = lines[0], lines[1:]
    assert len(rows) == 2
    for column in ("status", "tasks", "targets"):
        at = head.index(column)
        for row in rows:   # each row's cell starts under its heading, after a space
            assert row[at - 1] == " " and row[at] != " ", (column, head, row)


def test_the_app_with_no_display_says_so_in_one_line_and_exits_2(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    p = gristmill(tmp_path, env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    [line] = p.stderr.splitlines()
    assert "no display" in line and "gristmill run" in line


def test_the_app_without_libxcb_cursor_names_what_to_install():
    from gristmill.cli import display_problem
    said = display_problem({"DISPLAY": ":0"}, "linux", find_library=lambda name: None)
    assert "libxcb-cursor0" in said and "gristmill run" in said
    assert display_problem({"DISPLAY": ":0"}, "linux", find_library=lambda name: "x.so") is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None


def test_an_unknown_target_gets_did_you_mean(pipeline):
    # (checked for issue 19: as unknown keys do)
    p = gristmill("run", "-C", pipeline, "reprt")
    assert p.returncode == 2 and "(did you mean 'report'?)" in p.stderr
