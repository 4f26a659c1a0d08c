"""``gristmill plan``'s words, line by line, from ``cli.main`` in this process."""

from __future__ import annotations

import gc
import os
import time

from gristmill import cli


def _write(folder, name, text=""):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _project(tmp_path):
    _write(tmp_path, "gristmill.toml",
           '[tasks.a]\nforeach = "src/*.txt"\ncmd = "cp {input} {output}"\n'
           'inputs = ["{item}"]\noutputs = ["a/{name}"]\n'
           '[tasks.all]\ncmd = "cat {inputs} > {output}"\ninputs = ["a/*.txt"]\n'
           'outputs = ["all.txt"]\n')
    old = time.time() - 100
    for x in ("x", "y"):
        os.utime(_write(tmp_path, f"src/{x}.txt", x), (old, old))
    os.utime(_write(tmp_path, "a/x.txt", "x"), (old + 10, old + 10))   # up to date
    return tmp_path


def test_plan_lists_each_task_to_run_with_its_reasons_then_the_counts(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRISTMILL_HOME", str(tmp_path / "home"))
    folder = _project(tmp_path / "w")
    assert cli.main(["plan", "-C", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "   1. a[src/y.txt]",
        "        because output a/y.txt is missing",
        "   2. all",
        "        because output all.txt is missing",
        "        because it reads the output of a[src/y.txt], which will run",
        "2 to run, 1 up to date.",
    ]
    assert cli.main(["plan", "-C", str(folder), "-a"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("   ·  a[src/x.txt] is up to date: every input is older than "
                               "output a/x.txt (")
    assert lines[1:] == ["   1. a[src/y.txt]", "        because output a/y.txt is missing",
                         "   2. all", "        because output all.txt is missing",
                         "        because it reads the output of a[src/y.txt], which will run",
                         "2 to run, 1 up to date."]


def test_plan_with_nothing_to_run_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRISTMILL_HOME", str(tmp_path / "home"))
    folder = tmp_path / "w"
    _write(folder, "gristmill.toml", '[tasks.t]\ncmd = "true"\noutputs = ["o.txt"]\n')
    _write(folder, "o.txt")
    assert cli.main(["plan", "-C", str(folder)]) == 0
    assert capsys.readouterr().out == "Nothing to run: 1 task up to date.\n"


def test_plan_leaves_the_cyclic_collector_as_it_found_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GRISTMILL_HOME", str(tmp_path / "home"))
    folder = _project(tmp_path / "w")
    assert gc.isenabled()
    assert cli.main(["plan", "-C", str(folder)]) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert cli.main(["plan", "-C", str(folder)]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_plan_reads_history_when_there_is_one_and_makes_none_when_there_is_not(
        tmp_path, capsys, monkeypatch):
    from gristmill.core.paths import history_db
    monkeypatch.setenv("GRISTMILL_HOME", str(tmp_path / "home"))
    folder = tmp_path / "w"
    toml = _write(folder, "gristmill.toml", '[tasks.t]\ncmd = "echo one > o.txt"\noutputs = ["o.txt"]\n')
    assert cli.main(["plan", "-C", str(folder)]) == 0
    assert not history_db().exists()
    assert cli.main(["run", "-C", str(folder), "--quiet"]) == 0
    assert history_db().exists()
    toml.write_text('[tasks.t]\ncmd = "echo two > o.txt"\noutputs = ["o.txt"]\n')
    capsys.readouterr()
    assert cli.main(["plan", "-C", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "   1. t", "        because its command or definition changed since it last succeeded",
        "1 to run, 0 up to date."]


def test_plan_lists_three_reasons_of_one_task(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRISTMILL_HOME", str(tmp_path / "home"))
    folder = tmp_path / "w"
    _write(folder, "gristmill.toml",
           '[tasks.make]\ncmd = "true"\noutputs = ["o.txt"]\n'
           '[tasks.show]\ncmd = "cat {input}"\ninputs = ["o.txt"]\nphony = true\n')
    assert cli.main(["plan", "-C", str(folder), "--force", "show"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "   1. make", "        because output o.txt is missing",
        "   2. show", "        because forced by the user",
        "        because it is phony: it runs whenever asked",
        "        because it reads the output of make, which will run",
        "2 to run, 0 up to date."]
