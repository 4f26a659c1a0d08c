"""The task editor writes gristmill.toml back without losing comments or formatting."""

import pytest

from gristmill.app.tomledit import TaskForm, read_task, validate, write_task
from gristmill.core.load.loader import load_workflow

SOURCE = '''\
# My pipeline — keep this comment
[workflow]
name = "demo"   # the name

[tasks.fetch]  # downloads things
cmd = "echo fetch > raw.txt"   # one command
outputs = ["raw.txt"]
resources = { cpu = 1, mem = "100MB", pools = { network = 1 } }

# The main step
[tasks.build]
cmd = ["echo a", "echo b > out.txt"]
inputs = ["raw.txt"]
outputs = ["out.txt"]

[pools]
network = 2
'''


@pytest.fixture
def toml_file(tmp_path):
    p = tmp_path / "gristmill.toml"
    p.write_text(SOURCE)
    return p


def test_reading_a_task_fills_the_form(toml_file):
    form = read_task(toml_file, "fetch")
    assert form.commands == ["echo fetch > raw.txt"]
    assert form.outputs == ["raw.txt"] and form.cpu == "1" and form.mem == "100MB"
    build = read_task(toml_file, "build")
    assert build.commands == ["echo a", "echo b > out.txt"] and build.inputs == ["raw.txt"]


def test_changing_a_task_keeps_comments_and_untouched_lines(toml_file):
    form = read_task(toml_file, "fetch")
    form.mem = "200MB"
    form.retries = "2"
    write_task(toml_file, form, "fetch")
    text = toml_file.read_text()
    for kept in ("# My pipeline — keep this comment", 'name = "demo"   # the name',
                 "[tasks.fetch]  # downloads things", 'cmd = "echo fetch > raw.txt"   # one command',
                 "# The main step", 'cmd = ["echo a", "echo b > out.txt"]'):
        assert kept in text
    assert 'mem = "200MB"' in text and "pools = { network = 1 }" in text
    assert "retries = 2" in text
    wf = load_workflow(toml_file)
    assert wf.tasks["fetch"].retries == 2 and wf.tasks["fetch"].resources.mem == 200_000_000


def test_an_unchanged_form_leaves_the_file_byte_for_byte(toml_file):
    write_task(toml_file, read_task(toml_file, "build"), "build")
    assert toml_file.read_text() == SOURCE


def test_adding_and_renaming_tasks(toml_file):
    write_task(toml_file, TaskForm(name="report", commands=["cat out.txt > report.txt"],
                                   inputs=["out.txt"], outputs=["report.txt"], timeout="5m"))
    form = read_task(toml_file, "build")
    form.name = "compile"
    write_task(toml_file, form, "build")
    wf = load_workflow(toml_file)
    assert set(wf.tasks) == {"fetch", "compile", "report"}
    assert wf.tasks["report"].timeout == 300
    assert "# My pipeline — keep this comment" in toml_file.read_text()


def test_validation_names_each_bad_field():
    problems = validate(TaskForm(name="bad name", commands=[], mem="lots", timeout="soon", gpu="x",
                                 cpu="-1", retries="two", after=["ghost"]), {"a"})
    assert set(problems) == {"name", "commands", "mem", "timeout", "gpu", "cpu", "retries", "after"}
    assert validate(TaskForm(name="a", commands=["true"]), {"a"}, original=None)["name"].startswith("a task named")
    assert validate(TaskForm(name="a", commands=["true"]), {"a"}, original="a") == {}
    assert validate(TaskForm(name="p", phony=True), set()) == {}
