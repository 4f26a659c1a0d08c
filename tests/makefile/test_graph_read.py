"""The graph read (``load_makefile(recipes=False)``): one make run, no recipe expanded;
and a target's several double-colon rules as a task each, in ``plan`` and ``graph``."""

from __future__ import annotations

import json
import os
import time

from gristmill.core.decide.graph import TaskGraph
from gristmill.core.makefile import load_makefile

from make_harness import needs_make, snapshot
from test_everyday import home  # noqa: F401  (a fixture)
from test_goals_read import gm
from test_make_loader import write_makefile

pytestmark = needs_make

SHELLS_IN_RECIPES = """
    all: out.txt tool
    out.txt: in.txt | build
    > cp in.txt $@ $(shell rm -f precious.txt)
    build:
    > mkdir -p build
    tool: out.txt
    > @echo tool $(shell touch made-by-reading.txt)
    nuke:
    > @echo nuked $(shell rm -rf keep)
    """


def test_the_graph_read_expands_no_recipe_and_has_every_edge(tmp_path):
    write_makefile(tmp_path, SHELLS_IN_RECIPES, **{"in.txt": "x\n", "precious.txt": "p\n",
                                                   "keep__file": "k\n"})
    before = snapshot(tmp_path)
    wf = load_makefile(tmp_path, recipes=False)
    assert snapshot(tmp_path) == before          # no $(shell ...) of any recipe ran
    full = load_makefile(tmp_path)               # the goals' recipes read (the run's read)
    assert set(wf.tasks) == set(full.tasks) == {"all", "out.txt", "build", "tool", "nuke"}
    for name in wf.tasks:
        assert (wf.tasks[name].inputs, wf.tasks[name].after, wf.tasks[name].outputs) == \
            (full.tasks[name].inputs, full.tasks[name].after, full.tasks[name].outputs), name
    assert wf.default == ("all",)
    assert list(TaskGraph.of(wf).order) == list(TaskGraph.of(full).order)
    # Each recipe as written, with where it is: what the app shows before anything runs.
    out = wf.tasks["out.txt"]
    assert "cp in.txt $@ $(shell rm -f precious.txt)" in out.description
    assert out.location.line == 2


DOUBLE = """
    all: log.txt
    log.txt:: a.out
    > @echo rule one >> $@
    log.txt:: b.out
    > @echo rule two >> $@
    a.out: a.in
    > cp a.in $@
    b.out: b.in
    > cp b.in $@
    """


def test_plan_and_graph_show_each_double_colon_rule(tmp_path, home):
    write_makefile(tmp_path, DOUBLE, **{"a.in": "a\n", "b.in": "b\n"})
    assert gm(tmp_path, "run").returncode == 0
    (tmp_path / "b.in").write_text("b2\n")
    os.utime(tmp_path / "b.in", (time.time() + 5, time.time() + 5))
    p = gm(tmp_path, "plan")
    assert p.returncode == 0, p.stderr
    # The rule on b.out runs after b.out is rebuilt, as make's would; the rule on a.out
    # has nothing newer and is up to date.
    to_run = p.stdout.split(" to run")[0]
    assert "b.out" in to_run and "log.txt::2" in to_run and "log.txt::1" not in to_run, p.stdout
    g = json.loads(gm(tmp_path, "graph", "--format", "json").stdout)
    tasks = {t["name"]: t for t in g["tasks"]}
    assert tasks["log.txt::1"]["inputs"] == ["a.out"] and tasks["log.txt::2"]["inputs"] == ["b.out"]
    assert ["log.txt::1", "log.txt"] in g["edges"] and ["log.txt::2", "log.txt"] in g["edges"]
    assert ["log.txt", "all"] in g["edges"]
    assert gm(tmp_path, "run").returncode == 0
    assert (tmp_path / "log.txt").read_text() == "rule one\nrule two\nrule two\n"
    # A rule by its task's name is its target for make, which runs the target's
    # out-of-date rules: forced, log.txt is older than both rules' prerequisites.
    r = gm(tmp_path, "run", "--force", "log.txt::1")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "log.txt").read_text() == (
        "rule one\nrule two\nrule two\nrule one\nrule two\n")


def test_a_failing_double_colon_rule_skips_no_other_with_k(tmp_path, home):
    # make runs a target's "::" rules one at a time, each on its own: with -k the rule
    # after a failing one still runs (git's git-gui, gitk and templates); without -k,
    # make stops at the failure.
    from test_everyday import make
    text = """
        all:: ; @false
        all:: ; @touch ran-after.txt
        """
    for keep_going in (True, False):
        folder = tmp_path / f"k{keep_going}"
        mk = tmp_path / f"make-k{keep_going}"
        write_makefile(folder, text)
        write_makefile(mk, text)
        words = ["-k"] if keep_going else []
        m, g = make(mk, *words), gm(folder, "run", *words)
        assert m.returncode == g.returncode == 2, g.stderr
        assert (mk / "ran-after.txt").exists() == (folder / "ran-after.txt").exists() == keep_going
