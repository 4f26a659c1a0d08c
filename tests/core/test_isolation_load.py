"""``isolation``, ``container`` and ``network`` in gristmill.toml, gristmill.json, [workflow]
and Makefile hints: what each task gets, and every bad value at its path:line:col."""

import json
import pickle
import textwrap

import pytest

from gristmill.core.errors import WorkflowError
from gristmill.core.load import cache
from gristmill.core.load.loader import load_workflow
from gristmill.core.workflow import PROCESS, Isolation


def load(folder, text, name="gristmill.toml"):
    (folder / name).write_text(textwrap.dedent(text).lstrip("\n"))
    return load_workflow(folder / name)


def error(folder, text, name="gristmill.toml"):
    with pytest.raises(WorkflowError) as e:
        load(folder, text, name)
    return str(e.value)


def test_each_task_gets_its_isolation_and_the_workflow_default(tmp_path):
    wf = load(tmp_path, """
        [workflow]
        isolation = "sandbox"
        [tasks.boxed]
        cmd = "true"
        [tasks.online]
        cmd = "true"
        network = true
        [tasks.plain]
        cmd = "true"
        isolation = "process"
        [tasks.offline]
        cmd = "true"
        isolation = "process"
        network = false
        [tasks.image]
        cmd = "true"
        container = "debian:12"
        [tasks.table]
        cmd = "true"
        container = { image = "tool:1", engine = "docker", options = ["--ulimit", "host"] }
        network = true
        """)
    t = wf.tasks
    assert t["boxed"].isolation == Isolation("sandbox", network=False)
    assert t["online"].isolation == Isolation("sandbox", network=True)
    assert t["plain"].isolation == PROCESS
    assert t["offline"].isolation == Isolation("process", network=False)
    assert t["image"].isolation == Isolation("container", False, "debian:12")
    assert t["table"].isolation == Isolation("container", True, "tool:1", "docker",
                                             ("--ulimit", "host"))
    assert "no network" in t["boxed"].isolation.describe()


def test_a_workflow_wide_container_and_fan_out(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    wf = load(tmp_path, """
        [workflow]
        isolation = "container"
        container = "img:2"
        [tasks.each]
        foreach = "*.txt"
        cmd = "true"
        [tasks.local]
        cmd = "true"
        isolation = "process"
        """)
    assert wf.tasks["each[a.txt]"].isolation == Isolation("container", False, "img:2")
    assert wf.tasks["local"].isolation == PROCESS


def test_json_says_the_same(tmp_path):
    (tmp_path / "gristmill.json").write_text(json.dumps({
        "tasks": {"a": {"cmd": "true", "isolation": "sandbox", "network": True}}}))
    wf = load_workflow(tmp_path / "gristmill.json")
    assert wf.tasks["a"].isolation == Isolation("sandbox", True)


def test_isolation_survives_the_workflow_cache(tmp_path, monkeypatch):
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.a]\ncmd = "true"\ncontainer = { image = "x:1", options = ["-q"] }\n')
    first = cache.load_cached(tmp_path / "gristmill.toml", None)
    again = cache.load_cached(tmp_path / "gristmill.toml", None)
    assert again.tasks["a"].isolation == first.tasks["a"].isolation == \
        Isolation("container", False, "x:1", "", ("-q",))
    assert pickle.loads(pickle.dumps(first)).tasks["a"] == first.tasks["a"]
    assert cache.FORMAT >= 5


@pytest.mark.parametrize("text, line, col, message", [
    ('[tasks.a]\nisolation = "sandbx"\n', 2, 13,
     "tasks.a.isolation: expected one of \"process\", \"sandbox\", \"container\", got 'sandbx' "
     "(did you mean 'sandbox'?)"),
    ('[tasks.a]\nisolation = 1\n', 2, 13, "tasks.a.isolation: expected a string, got an integer (1)"),
    ('[tasks.a]\nnetwork = "no"\n', 2, 11,
     "tasks.a.network: expected a boolean (true or false), got a string ('no')"),
    ('[tasks.a]\nisolation = "container"\n', 2, 13,
     "tasks.a.isolation: isolation = \"container\" needs an image: add container = \"IMAGE\""),
    ('[tasks.a]\ncontainer = "--privileged"\n', 2, 13,
     "tasks.a.container: bad image name '--privileged': expected e.g. \"debian:12\" or "
     "\"registry.example.com/team/tool:1.2\""),
    ('[tasks.a]\ncontainer = 3\n', 2, 13,
     "tasks.a.container: expected an image name or a table { image = \"IMAGE\", engine = "
     "\"podman\", options = [...] }, got an integer (3)"),
    ('[tasks.a]\ncontainer = { engine = "podman" }\n', 2, 1,
     "tasks.a.container: a container table needs image = \"IMAGE\""),
    ('[tasks.a]\ncontainer = { image = "x", engine = "podmn" }\n', 2, 37,
     "tasks.a.container.engine: expected \"podman\" or \"docker\", got 'podmn' (did you mean "
     "'podman'?)"),
    ('[tasks.a]\ncontainer = { image = "x", options = "-q" }\n', 2, 38,
     "tasks.a.container.options: expected an array of strings, got a string ('-q')"),
    ('[tasks.a]\ncontainer = { image = "x", opts = [] }\n', 2, 28,
     "unknown key 'opts' in tasks.a.container (did you mean 'options'?)"),
    ('[tasks.a]\nisolation = "sandbox"\ncontainer = "x"\n', 3, 1,
     "tasks.a.container: a container image is for isolation = \"container\", but tasks.a has "
     "isolation = \"sandbox\""),
    ('[workflow]\nisolation = "container"\n[tasks.a]\n', 2, 13,
     "workflow.isolation: isolation = \"container\" needs an image: add container = \"IMAGE\""),
    ('[workflow]\nnetwork = 0\n', 2, 11,
     "workflow.network: expected a boolean (true or false), got an integer (0)"),
])
def test_bad_values_are_errors_at_their_place(tmp_path, text, line, col, message):
    assert error(tmp_path, text) == f"{tmp_path / 'gristmill.toml'}:{line}:{col}: {message}"


def test_an_included_files_isolation_default_is_ignored_with_a_warning(tmp_path):
    (tmp_path / "more.toml").write_text('[workflow]\nisolation = "sandbox"\n[tasks.b]\ncmd = "true"\n')
    wf = load(tmp_path, '[workflow]\ninclude = "more.toml"\n[tasks.a]\ncmd = "true"\n')
    assert wf.tasks["b"].isolation == PROCESS
    assert any("'isolation' in [workflow] of an included file is ignored" in str(w)
               for w in wf.warnings)


# -- Makefile hints -------------------------------------------------------------------------

def make(folder, text):
    (folder / "Makefile").write_text(textwrap.dedent(text).lstrip("\n"))
    return load_workflow(folder / "Makefile")


def test_makefile_hints_say_the_same(tmp_path):
    wf = make(tmp_path, """
        # gristmill: isolation=sandbox
        a.txt:
        \techo a > $@

        # gristmill: isolation=sandbox network=true
        b.txt:
        \techo b > $@

        # gristmill: container=tool:1 engine=docker mem=1GB
        c.txt:
        \techo c > $@

        d.txt:
        \techo d > $@
        """)
    t = wf.tasks
    assert t["a.txt"].isolation == Isolation("sandbox", False)
    assert t["b.txt"].isolation == Isolation("sandbox", True)
    assert t["c.txt"].isolation == Isolation("container", False, "tool:1", "docker")
    assert t["c.txt"].resources.mem == 10**9
    assert t["d.txt"].isolation == PROCESS


@pytest.mark.parametrize("hint, col, message", [
    ("isolation=jail", 14, "bad gristmill hint 'isolation=jail': isolation must be one of "
                           "process, sandbox, container"),
    ("network=maybe", 14, "bad gristmill hint 'network=maybe': network must be true or false"),
    ("isolation=container", 14, "gristmill hint isolation=container needs container=IMAGE"),
    ("isolation=sandbox container=x", 32,
     "gristmill hint container=x is for isolation=container, not isolation=sandbox"),
    ("engine=podman", 14, "gristmill hint engine=podman needs container=IMAGE"),
    ("container=-rf", 14, "bad gristmill hint 'container=-rf': bad image name '-rf'"),
])
def test_bad_hints_are_errors_at_the_hint(tmp_path, hint, col, message):
    with pytest.raises(WorkflowError) as e:
        make(tmp_path, f"# gristmill: {hint}\na.txt:\n\techo a > $@\n")
    assert str(e.value) == f"{tmp_path / 'Makefile'}:1:{col}: {message}"
