"""Reading a Makefile runs no recipe, and each run reads it for its own goals, as make
does: MAKECMDGOALS, target-specific values, the command line's variables in the
recipes' environment and a failed build's exit status, each against GNU make."""

from __future__ import annotations

import os
import subprocess
import sys

from make_harness import _PARENT, needs_make, snapshot
from test_everyday import _twins, home, make  # noqa: F401  (home: a fixture)
from test_make_loader import GOALS_MK, write_makefile

pytestmark = needs_make


def gm(folder, command, *words):
    env = {k: v for k, v in os.environ.items() if k not in _PARENT}
    return subprocess.run([sys.executable, "-m", "gristmill", command, "-C", str(folder), *words],
                          capture_output=True, text=True, timeout=120, env=env)


NUKE = """
    all: out.txt
    out.txt: in.txt
    > cp in.txt out.txt
    nuke:
    > @echo nuked $(shell rm -f precious.txt)
    """


def test_looking_at_a_workflow_never_changes_the_disk(tmp_path, home):
    mk, folder = _twins(tmp_path, NUKE, **{"in.txt": "x\n", "precious.txt": "keep me\n"})
    before = snapshot(folder)
    assert make(mk, "-n").returncode == 0 and (mk / "precious.txt").exists()
    for command, words in (("plan", ()), ("graph", ()), ("graph", ("--format", "json")),
                           ("run", ("-n",)), ("plan", ("all",)), ("run", ("-n", "all"))):
        p = gm(folder, command, *words)
        assert p.returncode == 0, (command, words, p.stderr)
        assert snapshot(folder) == before, f"gristmill {command} {' '.join(words)} changed the tree"
    from gristmill.core.load.loader import load_workflow
    wf = load_workflow(folder)                  # what the app's open does
    assert "nuke" in wf.tasks and snapshot(folder) == before
    # Running the target itself is make's: its recipe's $(shell) runs then.
    assert make(mk, "nuke").returncode == 0 and gm(folder, "run", "nuke").returncode == 0
    assert not (mk / "precious.txt").exists() and not (folder / "precious.txt").exists()


def test_a_goal_sees_the_makecmdgoals_make_gives_it(tmp_path, home):
    mk, folder = _twins(tmp_path, GOALS_MK)
    for goals in (["test"], ["clean"], ["clean", "test"], []):
        m, g = make(mk, *goals), gm(folder, "run", *goals)
        assert m.returncode == g.returncode == 0, g.stderr
        for f in ("all.log", "test.log", "clean.log"):
            assert (mk / f).exists() == (folder / f).exists()
            if (mk / f).exists():
                assert (mk / f).read_text() == (folder / f).read_text(), (goals, f)


def test_a_target_specific_value_stays_on_its_own_goals_path(tmp_path, home):
    mk, folder = _twins(tmp_path, """
        .PHONY: debug release
        release: CFLAGS += -DNDEBUG
        release: prog
        debug: prog
        prog:
        > echo cc $(CFLAGS) > prog.txt
        """)
    for goal in ("debug", "release", "debug"):
        m, g = make(mk, goal), gm(folder, "run", goal)
        assert m.returncode == g.returncode == 0, g.stderr
        assert (folder / "prog.txt").read_text() == (mk / "prog.txt").read_text(), goal


def test_command_line_variables_reach_the_recipes_environment(tmp_path, home):
    mk, folder = _twins(tmp_path, """
        install:
        > sh ./helper.sh
        """, **{"helper.sh": 'echo "dest=[$DESTDIR] prefix=[$PREFIX]" > seen.txt\n'})
    words = ("install", "DESTDIR=/tmp/stage", "PREFIX=/usr")
    m, g = make(mk, *words), gm(folder, "run", *words)
    assert m.returncode == g.returncode == 0, g.stderr
    assert (folder / "seen.txt").read_text() == (mk / "seen.txt").read_text() \
        == "dest=[/tmp/stage] prefix=[/usr]\n"


def test_a_failed_build_exits_2_as_make_does(tmp_path, home):
    mk, folder = _twins(tmp_path, """
        all: bad good
        bad:
        > false
        good:
        > touch good
        """)
    for words in ((), ("-k",)):
        m, g = make(mk, *words), gm(folder, "run", *words)
        assert m.returncode == g.returncode == 2, (words, g.stderr)
        assert (mk / "good").exists() == (folder / "good").exists()


def test_no_output_folder_is_made_that_make_would_not_make(tmp_path, home):
    mk, folder = _twins(tmp_path, """
        build/out.txt:
        > mkdir build
        > echo made > build/out.txt
        """)
    m, g = make(mk), gm(folder, "run")
    assert m.returncode == g.returncode == 0, g.stdout + g.stderr
    assert (folder / "build/out.txt").read_text() == (mk / "build/out.txt").read_text()


def test_a_recipe_that_reads_the_disk_is_no_command_change_on_a_no_op(tmp_path, home):
    mk, folder = _twins(tmp_path, """
        all: out/a.txt
        out/a.txt: in.txt
        > $(if $(wildcard $(@D)),,mkdir -p $(@D))
        > echo $(GREETING) > $@
        """, **{"in.txt": "x\n"})
    for words in ((), (), ("GREETING=hello",)):
        m, g = make(mk, *words), gm(folder, "run", *words)
        assert m.returncode == g.returncode == 0, g.stdout + g.stderr
        assert ("echo" in m.stdout) == ("out/a.txt" in g.stdout), (words, m.stdout, g.stdout)
        assert (folder / "out/a.txt").read_text() == (mk / "out/a.txt").read_text()


def test_a_makefiles_warnings_are_said_once_and_by_plan_warnings(tmp_path, home):
    write_makefile(tmp_path / "w", """
        all: lib.a
        # gristmill: mem=1GB

        lib.a: a.o
        > ar rcs $@ $?
        a.o:
        > touch $@
        """)
    said = "this gristmill hint is not on the line above a rule"
    first = gm(tmp_path / "w", "run")
    assert first.returncode == 0 and said in first.stderr
    again = gm(tmp_path / "w", "run")
    assert again.returncode == 0 and "warning" not in again.stderr
    assert said in gm(tmp_path / "w", "plan", "--warnings").stderr
