"""The make invocations people type every day, through the real `gristmill` command,
each checked against GNU make on a copy of the same folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from make_harness import GNU_MAKE, _PARENT, assert_same_files, copy_case, needs_make
from test_make_loader import write_makefile

pytestmark = needs_make


def gristmill(folder, *words, env=None):
    environ = {k: v for k, v in os.environ.items() if k not in _PARENT}
    environ.update(env or {})
    return subprocess.run([sys.executable, "-m", "gristmill", "run", "-C", str(folder), *words],
                          capture_output=True, text=True, timeout=120, env=environ)


def make(folder, *words, env=None):
    environ = {k: v for k, v in os.environ.items() if k not in _PARENT}
    environ.update(env or {})
    return subprocess.run([GNU_MAKE, "-C", str(folder), *words], capture_output=True,
                          text=True, timeout=120, env=environ)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRISTMILL_HOME", str(tmp_path / "home"))


def _twins(tmp_path, text, **files):
    write_makefile(tmp_path / "src", text, **files)
    return copy_case(tmp_path / "src", tmp_path / "make"), copy_case(tmp_path / "src", tmp_path / "gm")


CLEAN_ALL = """
    .PHONY: all clean
    all: out.txt
    out.txt: in.txt
    > cat in.txt > out.txt
    clean:
    > rm -f out.txt
    """


def test_clean_all_cleans_then_builds_what_clean_removed(tmp_path, home):
    mk, gm = _twins(tmp_path, CLEAN_ALL, **{"in.txt": "hello\n"})
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    assert make(mk, "clean", "all").returncode == 0
    p = gristmill(gm, "clean", "all")
    assert p.returncode == 0, p.stdout + p.stderr
    assert (gm / "out.txt").read_text() == "hello\n"
    assert_same_files(mk, gm, "clean all")
    # and with an output as the second goal
    assert make(mk, "clean", "out.txt").returncode == 0
    assert gristmill(gm, "clean", "out.txt").returncode == 0
    assert_same_files(mk, gm, "clean out.txt")


def test_an_unknown_goal_among_several_is_make_s_error_with_a_word_first(tmp_path, home):
    mk, gm = _twins(tmp_path, CLEAN_ALL, **{"in.txt": "hello\n"})
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    m, p = make(mk, "clean", "nope"), gristmill(gm, "clean", "nope")
    assert p.returncode == m.returncode == 2
    assert "gristmill: no task or output named 'nope'" in p.stderr
    assert "No rule to make target 'nope'" in p.stderr
    assert_same_files(mk, gm, "clean nope")       # make ran clean first, as make does


ORDER = """
    all: a b c
    a:
    > @echo a
    b: d
    > @echo b
    c:
    > @echo c
    d:
    > @echo d
    .PHONY: all a b c d
    """


def _recipe_lines(text):
    return [line.strip() for line in text.splitlines() if line.strip() in {"a", "b", "c", "d"}]


def test_without_j_tasks_run_in_makes_own_order_every_time(tmp_path, home):
    mk, gm = _twins(tmp_path, ORDER)
    expected = _recipe_lines(make(mk).stdout)
    assert expected == ["a", "d", "b", "c"]
    for _ in range(2):                   # the second run has durations in history
        p = gristmill(gm)
        assert p.returncode == 0, p.stderr
        assert _recipe_lines(p.stdout) == expected


# `use` reads what `gen` writes: not parallel-safe, as many hand-written Makefiles.
UNSAFE = """
    .PHONY: all gen use
    all: gen use
    gen:
    > sleep 0.3; echo made > gen.txt
    use:
    > cat gen.txt > used.txt
    """

# Each recipe waits (up to 5 s) for the other to have started: it succeeds only when
# both run at once.
TOGETHER = """
    .PHONY: all a b
    all: a b
    a:
    > touch a.started; for i in $$(seq 50); do test -f b.started && exit 0; sleep 0.1; done; exit 1
    b:
    > touch b.started; for i in $$(seq 50); do test -f a.started && exit 0; sleep 0.1; done; exit 1
    """


def test_without_j_a_makefile_that_is_not_parallel_safe_builds(tmp_path, home):
    mk, gm = _twins(tmp_path, UNSAFE)
    assert make(mk).returncode == 0
    p = gristmill(gm)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (gm / "used.txt").read_text() == "made\n"


def test_j_or_makeflags_ask_for_parallel_runs(tmp_path, home):
    _, gm = _twins(tmp_path, TOGETHER)
    assert gristmill(gm).returncode != 0              # serial: each waits for the other in vain
    for f in ("a.started", "b.started"):
        (gm / f).unlink(missing_ok=True)
    assert gristmill(gm, "-j2").returncode == 0
    for f in ("a.started", "b.started"):
        (gm / f).unlink()
    assert gristmill(gm, env={"MAKEFLAGS": "-j2"}).returncode == 0
    for f in ("a.started", "b.started"):
        (gm / f).unlink()
    assert gristmill(gm, env={"MAKEFLAGS": "k -j"}).returncode == 0   # make's own form, no limit


def test_goals_written_as_paths_name_their_targets(tmp_path, home):
    mk, gm = _twins(tmp_path, CLEAN_ALL, **{"in.txt": "hello\n"})
    assert make(mk, "./out.txt").returncode == 0
    p = gristmill(gm, "./out.txt")
    assert p.returncode == 0, p.stderr
    assert_same_files(mk, gm, "./out.txt")
    (gm / "out.txt").unlink()
    assert gristmill(gm, str(gm / "out.txt")).returncode == 0
    assert (gm / "out.txt").read_text() == "hello\n"


def test_an_unknown_goal_gets_a_suggestion(tmp_path, home):
    _, gm = _twins(tmp_path, CLEAN_ALL, **{"in.txt": "hello\n"})
    p = gristmill(gm, "al")
    assert p.returncode == 2 and "(did you mean 'all'?)" in p.stderr


def test_q_is_makes_question_and_builds_nothing(tmp_path, home):
    mk, gm = _twins(tmp_path, CLEAN_ALL, **{"in.txt": "hello\n"})
    for words in ([], ["out.txt"], ["clean"]):
        assert gristmill(gm, "-q", *words).returncode == make(mk, "-q", *words).returncode == 1
    assert not (gm / "out.txt").exists()              # nothing was built
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    for words, status in (([], 0), (["out.txt"], 0), (["clean"], 1)):
        p = gristmill(gm, "-q", *words)
        assert p.returncode == make(mk, "-q", *words).returncode == status, words
        assert p.stdout == ""
    quiet = gristmill(gm, "--quiet", "clean")         # quiet has a long name only
    assert quiet.returncode == 0 and not (gm / "out.txt").exists()


def test_help_lists_the_short_options_that_differ_from_makes(tmp_path):
    p = subprocess.run([sys.executable, "-m", "gristmill", "run", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0
    assert "short options that differ from make's:" in p.stdout
    assert "  -n  " in p.stdout and "  -v  " in p.stdout


LOUD = """
    all: out.txt
    out.txt:
    > @for i in $$(seq 1 1500); do echo "test line $$i"; done; touch out.txt
    broken:
    > @echo compiling; echo "x.c:3: error: expected ';'"; for i in $$(seq 1 60); do echo "note $$i"; done; exit 1
    .PHONY: all broken
    """


def test_everything_a_recipe_prints_is_shown(tmp_path, home):
    mk, gm = _twins(tmp_path, LOUD)
    made = make(mk).stdout
    p = gristmill(gm)
    assert p.returncode == 0
    lines = [line.strip() for line in p.stdout.splitlines() if line.strip().startswith("test line")]
    assert lines == [line for line in made.splitlines() if line.startswith("test line")]
    assert len(lines) == 1500


def test_a_failure_shows_make_s_output_as_it_came_and_names_the_attempt_s_log(tmp_path, home):
    """make runs the recipe: its output is on the console as make prints it, make's
    own error line says what failed, and Gristmill adds one line with the log."""
    mk, gm = _twins(tmp_path, LOUD)
    m, p = make(mk, "broken"), gristmill(gm, "broken")
    assert p.returncode == m.returncode == 2
    def recipes(text):
        return [line for line in text.splitlines() if not line.startswith("make")]
    assert recipes(p.stdout) == recipes(m.stdout)
    assert "note 60" in p.stdout and "x.c:3: error: expected ';'" in p.stdout
    assert "make: *** [Makefile:" in p.stderr
    told = [line for line in p.stderr.splitlines() if line.startswith("gristmill: ✗ broken")]
    assert len(told) == 1 and "exit status 1" in told[0], p.stderr
    log = told[0].split("full log: ")[1]
    assert "note 60" in open(log).read()


def test_a_goal_only_a_built_in_rule_makes_is_built(tmp_path, home):
    m, g = _twins(tmp_path, "all:\n\t@echo nothing\n",
                  **{"hello.c": '#include <stdio.h>\nint main(void){puts("hi");return 0;}\n'})
    assert make(m, "hello").returncode == 0
    r = gristmill(g, "hello")
    assert r.returncode == 0, r.stderr
    assert subprocess.run([str(g / "hello")], capture_output=True, text=True).stdout == "hi\n"
    assert_same_files(m, g, "a goal from a built-in rule")


def test_info_at_read_time_and_in_recipes_is_shown_as_make_shows_it(tmp_path, home):
    text = ("$(info reading the Makefile)\nall: out.txt\nout.txt:\n\t$(info building out)\n"
            "\techo x > $@\nhelp:\n\t$(info usage: make [all|help])\n")
    m, g = _twins(tmp_path, text)
    r = gristmill(g, "help")
    assert r.returncode == 0, r.stderr
    assert "reading the Makefile" in r.stdout and "usage: make [all|help]" in r.stdout
    r = gristmill(g)
    assert r.returncode == 0, r.stderr
    assert "building out" in r.stdout
    assert make(m).returncode == 0
    assert_same_files(m, g, "$(info) in a recipe")
    # up to date: the recipe is not expanded, so its $(info ...) is not printed
    r = gristmill(g)
    assert "building out" not in r.stdout and "reading the Makefile" in r.stdout
