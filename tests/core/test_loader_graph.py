"""The graph the loader builds from the edges it found is the graph TaskGraph builds."""

import textwrap

import pytest

from gristmill.core.errors import WorkflowError
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.load.loader import load_workflow

WORKFLOWS = {
    "fan-out and fan-in": """
        [workflow]
        default = ["report"]
        [tasks.report]
        cmd = "cat {inputs} > {output}"
        inputs = ["c/*.txt", "notes.md"]
        outputs = ["report.txt"]
        [tasks.c]
        foreach = "b/*.txt"
        inputs = ["{item}", "b/a.txt"]
        outputs = ["c/{name}"]
        [tasks.b]
        foreach = "src/*.txt"
        inputs = ["a/{name}"]
        outputs = ["b/{name}"]
        [tasks.a]
        foreach = "src/*.txt"
        inputs = ["{item}"]
        outputs = ["a/{name}"]
    """,
    "after, phony, list fan-out, own output as input": """
        [tasks.fetch]
        cmd = "true"
        phony = true
        [tasks.prep]
        foreach = ["x", "y"]
        cmd = "true"
        after = ["fetch"]
        outputs = ["p/{item}"]
        [tasks.train]
        cmd = "true"
        inputs = ["p/x", "p/y", "model.pt", "p/x"]
        outputs = ["model.pt"]
        after = ["prep", "prep[x]", "fetch", "train"]
        [tasks.lone]
        cmd = "true"
        inputs = ["notes.md"]
        [tasks.none]
        cmd = "true"
    """,
}


@pytest.mark.parametrize("text", WORKFLOWS.values(), ids=WORKFLOWS.keys())
def test_the_loaders_graph_is_the_graph_of_the_loaded_tasks(tmp_path, text):
    for name in ("src/a.txt", "src/b.txt", "notes.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "gristmill.toml").write_text(textwrap.dedent(text))
    wf = load_workflow(tmp_path)
    built = TaskGraph.of(wf)            # the loader's, kept with the workflow
    fresh = TaskGraph(wf)
    assert built is not fresh
    assert built.producer == fresh.producer
    assert list(built._deps.items()) == list(fresh._deps.items())
    assert list(built._dependants.items()) == list(fresh._dependants.items())
    assert built.order == fresh.order


def test_a_cycle_found_by_the_loader_names_it(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.a]\ncmd = "true"\ninputs = ["b.txt"]\noutputs = ["a.txt"]\n'
        '[tasks.b]\ncmd = "true"\ninputs = ["a.txt"]\noutputs = ["b.txt"]\n')
    with pytest.raises(WorkflowError, match=r"gristmill.toml:1:1: dependency cycle: (a -> b -> a|b -> a -> b)"):
        load_workflow(tmp_path)
