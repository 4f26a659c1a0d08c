"""The Workflow a Makefile becomes: tasks, edges, commands, defaults, warnings."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from gristmill.core.decide.graph import TaskGraph
from gristmill.core.makefile import load_makefile
from gristmill.core.workflow import Resources

from make_harness import CORPUS, environ, needs_make

pytestmark = needs_make


def write_makefile(folder: Path, text: str, name: str = "Makefile", **files: str) -> Path:
    """A Makefile from indented text; recipe lines are written with a leading "> "."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = textwrap.dedent(text).lstrip("\n").split("\n")
    (folder / name).write_text("\n".join("\t" + l[2:] if l.startswith("> ") else l for l in lines))
    for rel, content in files.items():
        p = folder / rel.replace("__", "/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return folder / name


def load(folder: Path, variables=None, env=None, goals=()):
    with environ(env or {}):
        return load_makefile(folder, variables, goals)


def corpus(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(CORPUS / name, tmp_path / name))


def messages(wf) -> list[str]:
    return [w.message for w in wf.warnings]


def test_a_folder_loads_as_a_make_workflow(tmp_path):
    write_makefile(tmp_path / "proj", """
        all: out.txt
        out.txt: in.txt
        > cp $< $@
        """, in_txt="x")
    (tmp_path / "proj" / "in_txt").rename(tmp_path / "proj" / "in.txt")
    wf = load(tmp_path / "proj")
    assert wf.kind == "make"
    assert wf.name == "proj"
    assert wf.root == (tmp_path / "proj").resolve()
    assert wf.path == (tmp_path / "proj" / "Makefile").resolve()
    assert wf.default == ("all",)
    assert list(wf.tasks) == ["all", "out.txt"]
    t = wf.tasks["out.txt"]
    assert t.commands == ("cp in.txt out.txt",)
    assert t.inputs == ("in.txt",) and t.outputs == ("out.txt",)
    assert t.cwd == str(wf.root)
    assert t.shell == ("/bin/sh", "-c")
    assert t.location is not None and (t.location.line, t.location.col) == (2, 1)
    assert str(t.location).endswith("proj/Makefile:2:1")
    assert "in.txt" not in wf.tasks            # a source is an input, not a task
    assert wf.files == ((tmp_path / "proj" / "Makefile").resolve(),)


@pytest.mark.parametrize("name", ["GNUmakefile", "makefile", "Makefile"])
def test_each_name_make_reads(tmp_path, name):
    write_makefile(tmp_path, "x:\n> @echo hi\n", name=name)
    wf = load(tmp_path)
    assert wf.path.name == name and list(wf.tasks) == ["x"]


def test_flavours_and_command_line_and_environment(tmp_path):
    folder = corpus("flavours", tmp_path)
    wf = load(folder, {"CLI": "c1", "OVERRIDDEN": "cmd", "FORCED": "no"}, {"FROM_ENV": "e1", "D": "d-env"})
    cmd = wf.tasks["out/vars.txt"].commands[0]
    for part in ("'A=recursive-late'", "'B=simple-'", "'C=posix-'", "'D=d-env'", "'E=default-e'",
                 "'F=first second-late'", "'G=simple- appended'", "'H=from-shell'", "'CLI=c1'",
                 "'OVERRIDDEN=cmd'", "'FORCED=forced-by-makefile'", "'FROM_ENV=e1'"):
        assert part in cmd
    assert wf.vars["LATER"] == "late"
    env = dict(wf.tasks["out/vars.txt"].env)
    assert env["CLI"] == "c1"               # the recipe reads $CLI from the environment
    assert "OVERRIDDEN" not in env          # ... but not this one


def test_automatic_variables_are_expanded_by_make(tmp_path):
    wf = load(corpus("automatic", tmp_path))
    out = wf.tasks["out.txt"]
    assert out.commands[0] == ('echo "target=out.txt first=one.in all=one.in two.in '
                               'dup=one.in two.in one.in orderonly=order.dir" > out.txt')
    assert out.inputs == ("one.in", "two.in")
    assert out.after == ("order.dir",)
    assert wf.tasks["stem-a.stem"].commands == ('echo "stem=a target=stem-a.stem src=a.src dir=. file=a" '
                                               '> stem-a.stem',)
    assert not any("uses $?" in m for m in messages(wf))     # make expands it at run time


def test_pattern_static_pattern_grouped_and_vpath(tmp_path):
    wf = load(corpus("patterns", tmp_path))
    assert wf.tasks["a.o"].inputs == ("srcdir/a.txt",)          # found through VPATH
    assert wf.tasks["a.o"].commands == ("sed 's/^/obj:/' srcdir/a.txt > a.o",)
    assert wf.tasks["a.o"].location.line == 11                  # the pattern rule
    assert wf.tasks["upper/x.UP"].after == ("upper",)
    gen = wf.tasks["gen/parser.c"]
    assert gen.outputs == ("gen/parser.c", "gen/parser.h")      # one run makes both
    assert "gen/parser.h" not in wf.tasks
    assert wf.resolve_targets(["gen/parser.h"]) == ("gen/parser.c",)
    graph = TaskGraph(wf)
    assert set(graph.deps("report.txt")) == {"a.o", "b.o"}
    assert wf.warnings == ()


def test_builtin_implicit_rules(tmp_path):
    wf = load(corpus("builtin", tmp_path))
    assert wf.default == ("prog",)
    assert set(wf.tasks) == {"prog", "prog.o", "util.o"}
    assert wf.tasks["prog.o"].commands == ("cc -O0 -DGREETING='\"hello\"'   -c -o prog.o prog.c",)
    assert wf.tasks["prog.o"].inputs == ("prog.c", "util.h")
    assert wf.tasks["prog"].commands == ("cc   prog.o util.o   -o prog",)
    assert wf.tasks["util.o"].description == "make's built-in implicit rule"


def test_phony_order_only_and_force(tmp_path):
    wf = load(corpus("phony", tmp_path))
    assert wf.tasks["all"].phony and wf.tasks["all"].outputs == ()
    assert wf.tasks["clean"].phony
    assert wf.tasks["build/app.txt"].after == ("build",)
    assert "build" not in wf.tasks["build/app.txt"].inputs
    # FORCE: no recipe, no prerequisites, no file: it is remade every time, like a phony
    assert wf.tasks["FORCE"].phony and wf.tasks["FORCE"].commands == ()
    # a phony prerequisite orders its task first and makes the target run every time
    v = wf.tasks["always.txt"]
    assert v.after == ("stamp-phony",) and "stamp-phony" in v.inputs
    assert wf.tasks["stamp-phony"].silent


def test_double_colon_rules_are_a_task_each(tmp_path):
    # Each "::" rule is a task with its own prerequisites and commands, as make runs each
    # rule on its own; the target is a task after all of them that runs nothing itself.
    wf = load(corpus("double_colon", tmp_path))
    a, b, log = wf.tasks["log.txt::1"], wf.tasks["log.txt::2"], wf.tasks["log.txt"]
    assert (a.inputs, a.commands) == (("a.in",), ('echo "from a" >> log.txt',))
    assert (b.inputs, b.commands) == (("b.in",), ('echo "from b" >> log.txt',))
    assert a.outputs == b.outputs == log.outputs == ("log.txt",)
    assert log.commands == () and log.after == ("log.txt::1", "log.txt::2")
    assert [t.location.line for t in (a, b)] == [4, 6]
    assert TaskGraph.of(wf).producer["log.txt"] == "log.txt"     # "all: log.txt" waits for both
    assert wf.resolve_targets(["log.txt"]) == ("log.txt",)
    assert not any("double-colon" in m for m in messages(wf))
    clean = load(tmp_path / "double_colon", goals=["clean"])
    assert [clean.tasks[f"clean::{k}"].commands for k in (1, 2)] == [("rm -f log.txt",), ("echo cleaned",)]
    assert clean.tasks["clean"].phony and clean.tasks["clean::1"].phony
    # The graph read (no recipe expanded) has the same tasks and edges.
    graph = load_makefile(tmp_path / "double_colon", recipes=False)
    assert graph.tasks["log.txt::2"].inputs == ("b.in",)
    assert graph.tasks["log.txt"].after == ("log.txt::1", "log.txt::2")
    assert 'echo "from b" >> $@' in graph.tasks["log.txt::2"].description


def test_includes_conditionals_and_default_goal(tmp_path):
    folder = corpus("include_cond", tmp_path)
    wf = load(folder, {"EXTRA": "x1"})
    assert wf.default == ("result.txt",)
    assert wf.tasks["result.txt"].commands == (
        'echo "mode=fast level=3 extra=x1 opt=yes ndef=ok quoted-form" > result.txt',)
    inc = wf.tasks["included.txt"]
    assert str(inc.location).endswith("mk/rules.mk:1:1")
    assert {p.name for p in wf.files} == {"Makefile", "config.mk", "optional.mk", "rules.mk"}
    assert load(folder).tasks["result.txt"].commands[0].count("no-extra") == 1


def test_functions(tmp_path):
    wf = load(corpus("functions", tmp_path))
    cmd = wf.tasks["out.txt"].commands[0]
    for part in ("'wildcard=src/a.c src/b.c'", "'patsubst=obj/a.o obj/b.o src/a.o src/b.o'",
                 "'subst=bAnAnA'", "'filter=a.c b.h c.c'", "'filter-out=b.h d.txt'", "'sort=a b c'",
                 "'dir=src/ ./'", "'notdir=a.c b'", "'basename=src/a b.tar'", "'suffix=.c .gz'",
                 "'addprefix=p-x p-y'", "'addsuffix=x.s y.s'", "'foreach=<1> <2> <3>'", "'if=no yes'",
                 "'call=hello-world-again'", "'shell=LOUD'", "'strip=[a b]'", "'word=b'", "'words=3'",
                 "'firstword=a'"):
        assert part in cmd


def test_target_specific_variables(tmp_path):
    wf = load(corpus("target_vars", tmp_path))
    assert wf.tasks["a.out"].commands == ('echo "a: -base -a from-all" > a.out',)
    assert wf.tasks["b.out"].commands == ('echo "b: -base pattern from-all" > b.out',)
    assert wf.tasks["c.out"].commands == ('echo "c: s" > c.out',)
    assert wf.tasks["dep.out"].commands == ('echo "dep: [] from-all" > dep.out',)   # private: not inherited
    assert not [x for x in wf.warnings if "MSG" in x.message]   # make applies them at run time


def test_prefixes_silent_ignore_and_multiline(tmp_path):
    wf = load(corpus("prefixes", tmp_path))
    assert wf.tasks["quiet.txt"].silent
    ign = wf.tasks["ignored.txt"]
    assert ign.commands == ("false", "exit 3", 'echo "after ignored failures" > ignored.txt')
    assert ign.ignore_errors == (True, True, True)
    assert not ign.silent                         # "false" is echoed
    multi = wf.tasks["multi.txt"]
    assert multi.commands[0] == 'for i in 1 2 3; do \\\n  echo "line $i"; \\\ndone > multi.txt'
    assert multi.ignore_errors == (False, False)
    assert wf.tasks["plus.txt"].commands == ("echo plus > plus.txt",)
    assert wf.warnings == ()


def test_oneshell_and_shell_flags(tmp_path):
    wf = load(corpus("oneshell", tmp_path))
    t = wf.tasks["out.txt"]
    assert len(t.commands) == 1 and t.commands[0].startswith("x=1\ny=$((x + 1))\n")
    assert t.shell == ("/bin/bash", "-eu", "-o", "pipefail", "-c")
    assert t.silent


def test_sub_make_is_one_opaque_task(tmp_path):
    wf = load(corpus("submake", tmp_path), {"TOPVAR": "t"})
    sub = wf.tasks["sub-build"]
    assert sub.commands == ("make -C sub VALUE=passed",)
    env = dict(sub.env)
    assert env["MAKEFLAGS"] == " -- TOPVAR=t" and env["MAKELEVEL"] == "1"
    assert "MAKEFLAGS" not in dict(wf.tasks["top.txt"].env)
    assert not any("sub-make" in m for m in messages(wf))   # its targets are tasks at run time


def test_canned_recipes_and_prefixes_from_variables(tmp_path):
    wf = load(corpus("canned", tmp_path))
    c = wf.tasks["canned.txt"]
    assert c.commands == ('echo "step for canned.txt" > canned.txt', "false", 'echo "after" >> canned.txt')
    assert c.ignore_errors == (False, True, False)
    v = wf.tasks["var-prefix.txt"]
    assert v.ignore_errors == (True, False)
    assert wf.warnings == ()


def test_export_and_unexport(tmp_path):
    wf = load(corpus("env", tmp_path), env={"FROM_ENV": "e1", "HIDDEN": "h"})
    t = wf.tasks["env.txt"]
    env = dict(t.env)
    assert env["GREETING"] == "hello" and env["FROM_MAKE"] == "e1-seen"
    assert t.shell[-2:] == ("/bin/sh", "-c") and "-u" in t.shell and "HIDDEN" in t.shell


def test_grouped_targets_notparallel_ignore_silent(tmp_path):
    wf = load(corpus("special", tmp_path))
    assert wf.tasks["g1.txt"].outputs == ("g1.txt", "g2.txt")
    assert "g2.txt" not in wf.tasks
    assert wf.pools == {"make.notparallel": 1}
    assert all(t.resources.pool("make.notparallel") == 1 for t in wf.tasks.values() if t.commands)
    assert wf.tasks["tolerant.txt"].ignore_errors == (True, True)
    assert wf.tasks["final.txt"].silent
    assert wf.warnings == ()                       # .SECONDARY: make deletes nothing


def test_intermediate_files_are_known_as_such_and_need_no_warning(tmp_path):
    write_makefile(tmp_path, """
        all: data.out
        %.mid: %.in
        > cp $< $@
        %.out: %.mid
        > cp $< $@
        """, **{"data.in": "d"})
    wf = load(tmp_path)
    assert "data.mid" in wf.tasks
    assert wf.intermediate == {"data.mid"}      # deleted after a build, as make does
    assert not any("intermediate" in m for m in messages(wf))


def test_recipe_functions_are_make_s_at_run_time_and_not_warned_of(tmp_path):
    write_makefile(tmp_path, """
        out.txt:
        > echo $(wildcard *.txt) > $@
        > echo $(shell date +%Y) >> $@
        """)
    wf = load(tmp_path)
    assert not [x for x in wf.warnings if "$(wildcard" in x.message]


def test_precious_targets_are_kept_on_failure_without_a_warning(tmp_path):
    """Gristmill's clean-up keeps .PRECIOUS and .SECONDARY targets (make runs the
    recipes now: nothing to warn about)."""
    write_makefile(tmp_path, """
        .PRECIOUS: big.dat %.keep
        .SECONDARY: mid.o
        big.dat:
        > echo x > $@
        """)
    wf = load(tmp_path)
    assert not any(".PRECIOUS" in m for m in messages(wf))
    assert {"big.dat", "%.keep", "mid.o"} <= wf.keep_on_failure


def test_make_warnings_come_through_with_their_line(tmp_path):
    write_makefile(tmp_path, """
        $(warning look here)
        a:
        > echo 1
        a:
        > echo 2
        """)
    wf = load(tmp_path)
    by_msg = {w.message: w.location for w in wf.warnings}
    assert by_msg["look here"].line == 1
    assert by_msg["overriding recipe for target 'a'"].line == 5
    assert wf.tasks["a"].commands == ("echo 2",)


def test_targets_outside_the_default_goal_are_tasks_too(tmp_path):
    write_makefile(tmp_path, """
        all: a
        a:
        > touch a
        docs: guide.txt
        > cat guide.txt > docs
        guide.txt:
        > echo guide > $@
        clean:
        > rm -f a docs guide.txt
        """)
    wf = load(tmp_path)
    assert set(wf.tasks) == {"all", "a", "docs", "guide.txt", "clean"}
    assert TaskGraph(wf).deps("docs") == ("guide.txt",)


def test_missing_prerequisite_outside_the_default_goal_is_a_warning(tmp_path):
    write_makefile(tmp_path, """
        all: a
        a:
        > touch a
        dist: missing.txt
        > tar cf dist.tar missing.txt
        after-dist: dist
        > echo done
        """)
    wf = load(tmp_path, goals=["after-dist"])
    w = [x for x in wf.warnings if "No rule to make target 'missing.txt'" in x.message]
    assert w and w[0].location.line == 4
    assert wf.tasks["dist"].inputs == ("missing.txt",)
    assert wf.tasks["dist"].commands == ("tar cf dist.tar missing.txt",)
    assert wf.tasks["after-dist"].commands == ("echo done",)     # still read, past the error


def test_error_in_a_recipe_outside_the_default_goal_fails_that_task(tmp_path):
    write_makefile(tmp_path, """
        all:
        > @echo fine
        check-env:
        > $(if $(TOKEN),,$(error TOKEN is not set))
        > echo $(TOKEN)
        """)
    wf = load(tmp_path, goals=["check-env"])
    t = wf.tasks["check-env"]
    assert "TOKEN is not set" in t.commands[0] and "exit 2" in t.commands[0]
    assert any("TOKEN is not set" in w.message and w.location.line == 4 for w in wf.warnings)
    assert load(tmp_path, {"TOKEN": "x"}, goals=["check-env"]).tasks["check-env"].commands == (
        "echo x",)


def test_generated_include_is_remade_for_real_as_make_does(tmp_path):
    write_makefile(tmp_path, """
        include gen.mk
        all: out.txt
        out.txt:
        > echo $(GENERATED) > $@
        gen.mk: gen.src
        > sed 's/^/GENERATED = /' $< > $@
        """, **{"gen.src": "from-generator\n"})
    wf = load(tmp_path)
    assert (tmp_path / "gen.mk").read_text() == "GENERATED = from-generator\n"
    assert wf.tasks["out.txt"].commands == ("echo from-generator > out.txt",)
    assert any("'gen.mk' is a makefile with a rule" in m for m in messages(wf))


GOALS_MK = """
        ifneq ($(filter clean,$(MAKECMDGOALS)),)
        MODE = cleaning
        else
        MODE = building
        endif
        all:
        > @echo all $(MODE) [$(MAKECMDGOALS)] > $@.log
        test:
        > @echo test $(MODE) [$(MAKECMDGOALS)] > $@.log
        clean:
        > @echo clean $(MODE) [$(MAKECMDGOALS)] > $@.log
        """


def test_each_goal_is_read_with_the_makecmdgoals_make_gives_it(tmp_path):
    write_makefile(tmp_path, GOALS_MK)
    assert load(tmp_path).tasks["all"].commands == ("echo all building [] > all.log",)
    assert load(tmp_path, goals=["test"]).tasks["test"].commands == ("echo test building [test] > test.log",)
    assert load(tmp_path, goals=["clean"]).tasks["clean"].commands == (
        "echo clean cleaning [clean] > clean.log",)
    assert load(tmp_path, goals=["clean", "all"]).tasks["all"].commands == (
        "echo all cleaning [clean all] > all.log",)


def test_declaration_order_and_a_loadable_graph(tmp_path):
    wf = load(Path(shutil.copytree(Path(__file__).resolve().parents[2] / "resources/examples/make-c",
                                   tmp_path / "c")))
    names = list(wf.tasks)
    assert names.index("all") < names.index("bin/shapes") < names.index("clean")
    graph = TaskGraph(wf)
    assert set(graph.closure(["all"])) >= {"bin/shapes", "build/libshapes.a", "build/lib/rect.o"}
    assert wf.warnings == ()


def test_resources_from_hints(tmp_path):
    write_makefile(tmp_path, """
        all: a.out b.out c.out

        # gristmill: mem=4GB gpu=1 retries=2 timeout=20m cpu=2 pool=net:3
        a.out:
        > echo a > $@

        # A comment block may say more.
        # gristmill: pool=net
        %.out: %.in
        > cp $< $@

        c.out:
        > echo c > $@
        """, **{"b.in": "b"})
    wf = load(tmp_path)
    a = wf.tasks["a.out"]
    assert a.resources == Resources(cpu=2.0, mem=4_000_000_000, gpu=1, pools=(("net", 1),))
    assert a.retries == 2 and a.timeout == 1200
    assert wf.tasks["b.out"].resources.pools == (("net", 1),)     # the pattern rule's hint
    assert wf.tasks["c.out"].resources == Resources()
    assert wf.pools == {"net": 3}


def test_a_hint_above_nothing_warns(tmp_path):
    write_makefile(tmp_path, """
        # gristmill: mem=1GB
        X = 1

        all:
        > @echo $(X)
        """)
    wf = load(tmp_path)
    assert [(w.location.line, "applies to nothing" in w.message) for w in wf.warnings] == [(1, True)]


def test_gnu_make_ignores_the_hints(tmp_path):
    import subprocess
    write_makefile(tmp_path, """
        # gristmill: mem=4GB gpu=1
        out.txt:
        > echo made > $@
        """)
    proc = subprocess.run(["make"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and (tmp_path / "out.txt").read_text() == "made\n"


def test_loading_twice_gives_the_same_workflow(tmp_path):
    folder = corpus("patterns", tmp_path)
    a, b = load(folder), load(folder)
    assert {n: t.definition_hash for n, t in a.tasks.items()} == \
           {n: t.definition_hash for n, t in b.tasks.items()}


def test_loading_leaves_the_tree_alone(tmp_path):
    from make_harness import snapshot
    folder = corpus("prefixes", tmp_path)
    before = snapshot(folder)
    load(folder)
    assert snapshot(folder) == before
    assert os.listdir(folder)


def test_reading_never_runs_a_recipe(tmp_path):
    """Every way a Makefile can pick a shell still reaches the recording shell."""
    write_makefile(tmp_path, """
        override SHELL := /bin/bash
        all: a b c.x d e
        > touch RAN-all
        a: SHELL = /bin/sh
        a:
        > touch RAN-a
        %.x: SHELL := /bin/bash
        c.x:
        > touch RAN-c
        b: SHELL = /bin/dash
        b: b-dep
        b-dep:
        > touch RAN-b-dep
        d: ; +touch RAN-d
        e: ; $(MAKE) -f /dev/null RAN-e || touch RAN-e
        .DEFAULT:
        > touch RAN-default
        other: missing-file
        > touch RAN-other
        """)
    wf = load(tmp_path)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("RAN-")]
    assert wf.tasks["a"].shell[0] == "/bin/sh"
    assert wf.tasks["b"].shell[0] == "/bin/dash"
    assert wf.tasks["c.x"].shell[0] == "/bin/bash"
    assert wf.tasks["all"].shell[0] == "/bin/bash"
    assert not any("SHELL" in w.message and "'b'" in w.message for w in wf.warnings)
    wf = load(tmp_path, goals=["other"])
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("RAN-")]
    assert wf.tasks["missing-file"].commands == ("touch RAN-default",)


def test_a_makefile_asking_for_parallel_jobs_is_still_read_one_command_at_a_time(tmp_path):
    write_makefile(tmp_path, """
        MAKEFLAGS += -j8
        all: a b c d
        a b c d:
        > @echo $@ > $@
        > @echo $@ again >> $@
        """)
    wf = load(tmp_path)
    for n in "abcd":
        assert wf.tasks[n].commands == (f"echo {n} > {n}", f"echo {n} again >> {n}")
        assert wf.tasks[n].silent
    assert wf.pools == {}


def test_a_recipe_prefix_of_its_own(tmp_path):
    (tmp_path / "Makefile").write_text(".RECIPEPREFIX = >\nall: x\n\nx:\n> echo hi > x\n> -@echo quiet\n")
    wf = load(tmp_path)
    x = wf.tasks["x"]
    assert x.commands == ("echo hi > x", "echo quiet")
    assert x.ignore_errors == (False, True) and x.location.line == 4
    assert wf.warnings == ()


def test_rules_made_by_eval_and_a_hint_above_the_eval(tmp_path):
    write_makefile(tmp_path, """
        define PROG
        $(1): $(1).c
        > cc -o $$@ $$<
        endef
        PROGS = a b
        all: $(PROGS)
        # gristmill: mem=1GB
        $(foreach p,$(PROGS),$(eval $(call PROG,$(p))))
        """, **{"a.c": "", "b.c": ""})
    wf = load(tmp_path)
    assert wf.tasks["a"].commands == ("cc -o a a.c",) and wf.tasks["b"].inputs == ("b.c",)
    assert wf.tasks["a"].location.line == 8 and wf.tasks["a"].resources.mem == 1_000_000_000
    assert wf.warnings == ()


def test_an_empty_makefile_is_an_empty_workflow(tmp_path):
    (tmp_path / "Makefile").write_text("# nothing yet\n")
    wf = load(tmp_path)
    assert wf.tasks == {} and wf.default == () and wf.warnings == ()


def test_each_target_gets_its_own_exported_values(tmp_path):
    write_makefile(tmp_path, """
        export A = global
        export WHO = $@
        all: t1 t2
        t1: A = one
        t1:
        > @echo $$A
        t2:
        > @echo $$A
        """)
    wf = load(tmp_path)
    assert dict(wf.tasks["t1"].env)["A"] == "one" and dict(wf.tasks["t2"].env)["A"] == "global"
    assert dict(wf.tasks["t2"].env)["WHO"] == "t2"


def test_one_environment_for_all_when_no_target_can_differ(tmp_path):
    write_makefile(tmp_path, """
        export A = global
        all: t1 t2
        t1 t2:
        > @echo $$A > $@
        """)
    wf = load(tmp_path)
    assert dict(wf.tasks["t1"].env)["A"] == dict(wf.tasks["t2"].env)["A"] == "global"


def test_recipes_that_read_makefile_list_see_only_the_makefiles(tmp_path):
    write_makefile(tmp_path, """
        help: ## show the targets
        > @grep -h '##' $(MAKEFILE_LIST) | grep -v grep
        """)
    wf = load(tmp_path)
    assert wf.tasks["help"].commands == ("grep -h '##' Makefile | grep -v grep",)
