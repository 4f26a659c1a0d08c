"""Explain says how a task runs: a plain process, a sandbox or a container."""

from gristmill.app.explain import explain, explain_html
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.staleness import StalenessScan
from gristmill.core.load.loader import load_workflow


def test_explain_has_a_line_for_the_tasks_isolation(tmp_path):
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.boxed]\ncmd = "true"\nisolation = "sandbox"\n'
        '[tasks.image]\ncmd = "true"\ncontainer = { image = "tool:1", engine = "podman" }\n'
        'network = true\n'
        '[tasks.plain]\ncmd = "true"\n')
    wf = load_workflow(tmp_path / "gristmill.toml")
    graph = TaskGraph.of(wf)
    decisions = StalenessScan(wf, graph).scan(list(wf.tasks))
    said = {name: dict(explain(wf, graph, decisions, name))["Isolation"] for name in wf.tasks}
    assert said == {
        "boxed": "sandbox (bubblewrap: only the system, its inputs and its outputs), no network",
        "image": "container tool:1 (podman), network on",
        "plain": "process (a plain process)",
    }
    assert "<b>Isolation</b><br>sandbox (bubblewrap" in explain_html(
        "boxed", explain(wf, graph, decisions, "boxed"))
