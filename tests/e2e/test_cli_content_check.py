"""check = "content": decisions by the bytes of files, through the CLI, with real files,
real processes and a real history."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")

WORKFLOW = """
[workflow]
name = "content"

[tasks.stats]
check = "content"
inputs = ["a.csv"]
outputs = ["stats.txt"]
cmd = "cat a.csv > stats.txt && echo stats >> ran.log"

[tasks.gen]
check = "content"
inputs = ["conf"]
outputs = ["mid.txt"]
cmd = "printf same > mid.txt && echo gen >> ran.log"

[tasks.use]
inputs = ["mid.txt"]
outputs = ["use.txt"]
cmd = "cat mid.txt > use.txt && echo use >> ran.log"
"""


def gm(*args, cwd, home):
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=cwd,
                          env=dict(os.environ, GRISTMILL_HOME=str(home), PYTHONPATH=SRC),
                          capture_output=True, text=True, timeout=120)


def plan(cwd, home) -> dict[str, dict]:
    p = gm("plan", "--all", "--json", cwd=cwd, home=home)
    assert p.returncode == 0, p.stderr
    return {t["name"]: t for t in json.loads(p.stdout)["tasks"]}


def ran(folder: Path) -> list[str]:
    log = folder / "ran.log"
    out = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return out


def later(path: Path, text: str | None = None) -> None:
    """Give ``path`` a time clearly newer than everything (its bytes, if given)."""
    if text is not None:
        path.write_text(text)
    t = time.time() + 5
    os.utime(path, (t, t))


def setup(tmp_path):
    (tmp_path / "gristmill.toml").write_text(textwrap.dedent(WORKFLOW))
    (tmp_path / "a.csv").write_text("1,2\n")
    (tmp_path / "conf").write_text("v1")
    home = tmp_path / "home"
    p = gm("run", cwd=tmp_path, home=home)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted(ran(tmp_path)) == ["gen", "stats", "use"]
    return home


def test_a_touched_input_with_the_same_bytes_does_not_make_it_stale(tmp_path):
    home = setup(tmp_path)
    later(tmp_path / "a.csv")
    t = plan(tmp_path, home)["stats"]
    assert not t["stale"]
    assert t["reasons"][0]["message"] == ("input a.csv was touched but its content is "
                                         "unchanged since the last success")
    assert gm("run", cwd=tmp_path, home=home).returncode == 0
    assert ran(tmp_path) == []
    # Its hash is kept with the new time: the next scan hashes nothing.
    db = sqlite3.connect(next(home.rglob("history.sqlite3")))
    size, mtime = db.execute("SELECT size, mtime_ns FROM file_hashes WHERE path = 'a.csv'"
                             ).fetchone()
    assert (size, mtime) == (4, os.stat(tmp_path / "a.csv").st_mtime_ns)


def test_changed_bytes_run_it_and_so_does_changing_them_back(tmp_path):
    home = setup(tmp_path)
    later(tmp_path / "a.csv", "3,4\n")
    t = plan(tmp_path, home)["stats"]
    assert t["stale"] and t["reasons"][0]["kind"] == "input-newer"
    assert gm("run", cwd=tmp_path, home=home).returncode == 0
    assert ran(tmp_path) == ["stats"]
    later(tmp_path / "a.csv", "1,2\n")       # back to the bytes of the first run
    assert plan(tmp_path, home)["stats"]["stale"]
    assert gm("run", cwd=tmp_path, home=home).returncode == 0
    assert ran(tmp_path) == ["stats"]
    assert (tmp_path / "stats.txt").read_text() == "1,2\n"


def test_an_output_rewritten_with_the_same_bytes_leaves_its_dependants_alone(tmp_path):
    home = setup(tmp_path)
    later(tmp_path / "conf", "v2")
    p = gm("run", cwd=tmp_path, home=home)
    assert p.returncode == 0, p.stdout + p.stderr
    assert ran(tmp_path) == ["gen"]           # use read mid.txt, rewritten identically
    t = plan(tmp_path, home)["use"]
    assert not t["stale"], t
    assert gm("run", cwd=tmp_path, home=home).returncode == 0
    assert ran(tmp_path) == []


def test_without_history_content_falls_back_to_timestamps_and_says_so(tmp_path):
    setup(tmp_path)
    later(tmp_path / "a.csv")
    t = plan(tmp_path, tmp_path / "fresh-home")["stats"]
    assert t["stale"]
    assert "checked by content, but history has no hashes from its last success: " \
           "decided by timestamps" in t["reasons"][0]["message"]


def test_a_bad_check_word_is_an_error_at_its_place(tmp_path):
    (tmp_path / "gristmill.toml").write_text('[tasks.a]\ncmd = "true"\ncheck = "hash"\n')
    p = gm("plan", cwd=tmp_path, home=tmp_path / "home")
    assert p.returncode == 2
    assert "gristmill.toml:3:9: tasks.a.check: expected \"mtime\" or \"content\"" in p.stderr
    assert "Traceback" not in p.stderr


def test_a_checkout_that_touches_many_files_reruns_nothing(tmp_path):
    # More files than history is asked about one by one: the rest is read at once.
    (tmp_path / "src").mkdir()
    for i in range(40):
        (tmp_path / "src" / f"f{i:02d}.txt").write_text(f"{i}\n")
    (tmp_path / "gristmill.toml").write_text(textwrap.dedent('''
        [workflow]
        check = "content"
        [tasks.copy]
        foreach = "src/*.txt"
        inputs = ["{item}"]
        outputs = ["out/{name}"]
        cmd = "cp {input} {output}"
        '''))
    home = tmp_path / "home"
    assert gm("run", cwd=tmp_path, home=home).returncode == 0
    for f in (tmp_path / "src").iterdir():
        later(f)
    tasks = plan(tmp_path, home)
    assert len(tasks) == 40 and not any(t["stale"] for t in tasks.values())
    assert all("content is unchanged since the last success" in t["reasons"][0]["message"]
               for t in tasks.values())
    later(tmp_path / "src" / "f07.txt", "changed\n")
    assert [n for n, t in plan(tmp_path, home).items() if t["stale"]] == ["copy[src/f07.txt]"]
