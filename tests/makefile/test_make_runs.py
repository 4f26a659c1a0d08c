"""GNU make runs a Makefile's recipes; Gristmill schedules, records and guards them.

Each test runs the real `gristmill run` (and, where the question is "as make does",
GNU make itself on a copy of the same folder): real processes, real files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from make_harness import _PARENT, assert_same_files
from test_everyday import _twins, gristmill, home, make  # noqa: F401  (fixture)
from make_harness import needs_make

pytestmark = needs_make


def _history(tmp_path):
    from gristmill.core.record.history import History
    return History(tmp_path / "home" / "data" / "history.sqlite3")


def _same(tmp_path, text, *goals, files=None, env=None):
    """make and gristmill on twins of one folder: (make's, gristmill's) results."""
    mk, gm = _twins(tmp_path, text, **(files or {}))
    m, g = make(mk, *goals, env=env), gristmill(gm, *goals, env=env)
    return mk, gm, m, g


def _recipe_lines(text):
    return [line for line in text.splitlines() if not line.startswith(("make", "gristmill:"))]


# -- what make decides is make's ------------------------------------------------------

SUB_PARALLEL = """
    all: a b c d e f
    a b c d e f:
    > @touch ../run/$@; m=0; i=0; while [ $$i -lt 40 ]; do n=$$(ls ../run | wc -l); \\
    >   [ $$n -gt $$m ] && m=$$n; [ $$n -ge 4 ] && break; i=$$((i+1)); sleep 0.05; done; \\
    >   echo $$m > ../seen.$@; sleep 0.3; rm ../run/$@
    """


def test_a_sub_make_under_j4_shares_the_four_slots(tmp_path, home):
    """issue 13: `$(MAKE) -C sub` under `gristmill run -j4` runs the sub-make's recipes
    four at once, and never more than four, counted by the files they write."""
    from test_make_loader import write_makefile
    write_makefile(tmp_path / "w", """
        .PHONY: all sub
        all: sub
        sub:
        > $(MAKE) -C sub
        """)
    write_makefile(tmp_path / "w" / "sub", SUB_PARALLEL)
    (tmp_path / "w" / "run").mkdir()
    g = gristmill(tmp_path / "w", "-j4")
    assert g.returncode == 0, g.stderr
    seen = [int((tmp_path / "w" / f"seen.{t}").read_text()) for t in "abcdef"]
    assert max(seen) == 4, seen
    # the sub-make's targets are tasks of their own in history, named by their folder
    h = _history(tmp_path)
    names = {a.task for a in h.attempts(h.runs()[0].id)}
    assert {f"sub/{t}" for t in "abcdef"} <= names, names


def test_dollar_question_mark_is_what_is_newer_when_the_recipe_runs(tmp_path, home):
    text = """
        out.txt: a.in b.in
        > echo newer: $? > out.txt
        """
    mk, gm = _twins(tmp_path, text, **{"a.in": "a", "b.in": "b"})
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    for d in (mk, gm):
        t = time.time() + 5
        os.utime(d / "b.in", (t, t))
    assert make(mk).returncode == 0
    g = gristmill(gm)
    assert g.returncode == 0, g.stderr
    assert (gm / "out.txt").read_text() == "newer: b.in\n"
    assert_same_files(mk, gm, "$?")


def test_a_wildcard_in_a_later_recipe_sees_what_earlier_recipes_made(tmp_path, home):
    text = """
        all: made list
        made:
        > mkdir -p out && touch out/one out/two
        list: made
        > echo $(wildcard out/*) > list
        .PHONY: all made
        """
    mk, gm, m, g = _same(tmp_path, text)
    assert g.returncode == m.returncode == 0, g.stderr
    assert (gm / "list").read_text().split() == ["out/one", "out/two"]
    assert_same_files(mk, gm, "wildcard")


def test_double_colon_rules_run_independently(tmp_path, home):
    text = """
        out.txt:: a.in
        > echo a >> out.txt
        out.txt:: b.in
        > echo b >> out.txt
        """
    mk, gm = _twins(tmp_path, text, **{"a.in": "a", "b.in": "b"})
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    for d in (mk, gm):
        t = time.time() + 5
        os.utime(d / "a.in", (t, t))
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    assert (gm / "out.txt").read_text() == "a\nb\na\n"
    assert_same_files(mk, gm, "double colon")


def test_a_target_specific_value_of_another_goal_does_not_leak(tmp_path, home):
    text = """
        CFLAGS = -O2
        release: CFLAGS += -DNDEBUG
        release debug: prog
        prog:
        > echo $(CFLAGS) > prog
        .PHONY: release debug
        """
    mk, gm, m, g = _same(tmp_path, text, "debug")
    assert g.returncode == m.returncode == 0, g.stderr
    assert (gm / "prog").read_text() == "-O2\n"


def test_command_line_variables_reach_the_recipes_environment(tmp_path, home):
    text = """
        install:
        > ./install.sh
        .PHONY: install
        """
    files = {"install.sh": "#!/bin/sh\necho \"into [$DESTDIR]\" > where.txt\n"}
    mk, gm = _twins(tmp_path, text, **files)
    for d in (mk, gm):
        os.chmod(d / "install.sh", 0o755)
    assert make(mk, "install", "DESTDIR=/tmp/stage").returncode == 0
    g = gristmill(gm, "install", "DESTDIR=/tmp/stage")
    assert g.returncode == 0, g.stderr
    assert (gm / "where.txt").read_text() == "into [/tmp/stage]\n"


def test_silent_and_plain_lines_echo_as_make_echoes_them(tmp_path, home):
    text = """
        all:
        > @echo quiet
        > echo loud
        > @echo quiet again
        """
    mk, gm, m, g = _same(tmp_path, text)
    assert g.returncode == m.returncode == 0
    assert _recipe_lines(g.stdout) == _recipe_lines(m.stdout) == \
        ["quiet", "echo loud", "loud", "quiet again"]


def test_a_script_without_a_shebang_runs_under_the_shell(tmp_path, home):
    text = """
        out.txt:
        > ./gen > out.txt
        """
    mk, gm = _twins(tmp_path, text, gen="echo made by a script\n")
    for d in (mk, gm):
        os.chmod(d / "gen", 0o755)
    m, g = make(mk), gristmill(gm)
    assert g.returncode == m.returncode == 0, g.stderr
    assert (gm / "out.txt").read_text() == "made by a script\n"


def test_a_dash_ignores_a_command_that_cannot_start(tmp_path, home):
    text = """
        all:
        > -no-such-program-anywhere
        > echo went on > after.txt
        """
    mk, gm, m, g = _same(tmp_path, text)
    assert g.returncode == m.returncode == 0, g.stderr
    assert (gm / "after.txt").read_text() == "went on\n"


def test_notparallel_runs_one_recipe_at_a_time_even_under_j(tmp_path, home):
    text = """
        .NOTPARALLEL:
        all: a b c
        a b c:
        > @echo start $@ >> log; sleep 0.2; echo end $@ >> log
        .PHONY: all a b c
        """
    mk, gm, m, g = _same(tmp_path, text, "-j4")
    assert g.returncode == m.returncode == 0
    assert (gm / "log").read_text() == \
        "start a\nend a\nstart b\nend b\nstart c\nend c\n"


def test_an_empty_makefile_is_make_s_error_with_exit_2(tmp_path, home):
    mk, gm, m, g = _same(tmp_path, "")
    assert m.returncode == 2 and g.returncode == 2, g.stderr
    assert "Traceback" not in g.stderr


def test_a_failed_build_exits_2_as_make_does(tmp_path, home):
    text = """
        out.txt:
        > false
        """
    mk, gm, m, g = _same(tmp_path, text)
    assert m.returncode == g.returncode == 2
    assert "make: *** [Makefile:2: out.txt] Error 1" in g.stderr


# -- Gristmill's additions ---------------------------------------------------------------

def test_a_mem_hint_kills_a_recipe_over_its_limit_in_the_engine_s_words(tmp_path, home):
    text = f"""
        # gristmill: mem=40MB
        big.txt:
        > {sys.executable} -c "b = bytearray(400 * 1024 * 1024); import time; time.sleep(5)"
        > touch big.txt
        """
    _, gm = _twins(tmp_path, text)
    g = gristmill(gm)
    assert g.returncode == 2
    assert "✗ big.txt: killed for using more than its declared mem (40.0 MB" in g.stderr, g.stderr
    assert not (gm / "big.txt").exists()


def test_history_has_one_attempt_per_recipe_with_its_output(tmp_path, home):
    text = """
        all: one two
        one:
        > echo this is one; touch one
        two: one
        > @echo this is two
        > touch two
        """
    _, gm = _twins(tmp_path, text)
    g = gristmill(gm)
    assert g.returncode == 0, g.stderr
    assert "this is one" in g.stdout and "this is two" in g.stdout
    h = _history(tmp_path)
    run = h.runs()[0]
    assert run.status.value == "succeeded"
    attempts = {a.task: a for a in h.attempts(run.id)}
    assert set(attempts) == {"one", "two"}
    assert Path(attempts["two"].log_path).read_text() == "this is two\n"
    assert "this is one" in Path(attempts["one"].log_path).read_text()
    assert all(a.outcome.value == "succeeded" for a in attempts.values())


def test_a_failed_recipe_s_partial_target_is_removed_unless_precious(tmp_path, home):
    text = """
        .PRECIOUS: kept.txt
        all: kept.txt gone.txt
        kept.txt gone.txt:
        > echo partial > $@; false
        """
    mk, gm, m, g = _same(tmp_path, text, "-k")
    assert m.returncode == g.returncode == 2
    assert (mk / "gone.txt").exists()            # make keeps it (no .DELETE_ON_ERROR)
    assert not (gm / "gone.txt").exists()        # Gristmill's clean-up removes it
    assert "removed gone.txt, which the failed recipe changed" in g.stderr
    assert (gm / "kept.txt").read_text() == "partial\n"


def test_a_target_whose_last_attempt_failed_is_made_again(tmp_path, home):
    """The trust rule: make would trust the time of a .PRECIOUS target a failed recipe
    left; Gristmill removes it first, says why, and make makes it again."""
    text = """
        .PRECIOUS: out.txt
        FAIL ?= 1
        out.txt: in.txt
        > echo made > $@; test $(FAIL) = 0
        """
    _, gm = _twins(tmp_path, text, **{"in.txt": "x"})
    assert gristmill(gm).returncode == 2
    assert (gm / "out.txt").exists()
    g = gristmill(gm, "FAIL=0")
    assert g.returncode == 0, g.stderr
    assert "removed out.txt: its last attempt failed" in g.stderr, g.stderr
    assert "echo made > out.txt" in g.stdout


def test_a_shell_call_in_a_recipe_runs_once_as_under_make(tmp_path, home):
    """make expands a recipe when it runs it; reading the Makefile for the run expands
    none (git's `-n` lost its MKDIR lines, a `$(shell ...)` ran twice: sweep D8)."""
    text = """
        out.txt:
        > @echo $(shell echo x >> calls.txt)made > $@
        """
    mk, gm, m, g = _same(tmp_path, text)
    assert m.returncode == g.returncode == 0, g.stderr
    assert (mk / "calls.txt").read_text() == (gm / "calls.txt").read_text() == "x\n"


def test_a_failed_attempt_that_never_wrote_its_target_keeps_it(tmp_path, home):
    """The trust rule is about what a failed attempt may have touched: cJSON's `ln -s`
    fails ("File exists") and leaves the link of the last build as it was; the next
    run keeps it, and a goal off its path (`install`) never loses it either."""
    text = """
        all: link
        real: src
        > cp src real
        link: real
        > ln -s real link
        install: real
        > cp link installed
        """
    _, gm = _twins(tmp_path, text, **{"src": "v1"})
    assert gristmill(gm).returncode == 0
    time.sleep(1.1)
    (gm / "src").write_text("v2")
    g = gristmill(gm)
    assert g.returncode == 2 and "File exists" in g.stdout + g.stderr
    assert os.path.islink(gm / "link")
    g = gristmill(gm, "install")
    assert g.returncode == 0, g.stderr
    assert "removed link" not in g.stderr and os.path.islink(gm / "link")
    assert (gm / "installed").read_text() == "v2"


def test_force_names_a_target_make_then_remakes(tmp_path, home):
    from test_make_options import W_MAKEFILE
    _, gm = _twins(tmp_path, W_MAKEFILE, **{"in.txt": "x"})
    assert gristmill(gm).returncode == 0
    g = gristmill(gm, "--force", "out.txt")
    assert g.returncode == 0, g.stderr
    assert "cp in.txt out.txt" in g.stdout
    g = gristmill(gm, "--force", "other.txt")       # no prerequisites: removed, remade
    assert "echo other > other.txt" in g.stdout and (gm / "other.txt").exists()
    assert "nothing to be done" in gristmill(gm, "all").stdout.lower() or \
        "cp in.txt" not in gristmill(gm).stdout


def test_ctrl_c_stops_every_recipe_and_records_the_run_cancelled(tmp_path, home):
    text = """
        all: a b
        a b:
        > @echo $$$$ > $@.pid; sleep 60 & wait
        .PHONY: all a b
        """
    _, gm = _twins(tmp_path, text)
    environ = {k: v for k, v in os.environ.items() if k not in _PARENT}
    p = subprocess.Popen([sys.executable, "-m", "gristmill", "run", "-C", str(gm), "-j2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ,
                         start_new_session=True)
    deadline = time.time() + 30
    while not ((gm / "a.pid").exists() and (gm / "b.pid").exists()) and time.time() < deadline:
        time.sleep(0.05)
    pids = [int((gm / f"{t}.pid").read_text()) for t in "ab"]
    os.killpg(p.pid, signal.SIGINT)
    p.communicate(timeout=30)
    assert p.returncode == 130
    time.sleep(0.2)
    # nothing of the run is left alive (a zombie that make did not reap before its exit
    # is init's to reap: it runs nothing)
    left = subprocess.run(["ps", "-o", "stat=,args=", "-s", str(p.pid)], capture_output=True,
                          text=True).stdout
    assert [line for line in left.splitlines() if not line.strip().startswith("Z")] == []
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    for proc in Path("/proc").iterdir():        # nothing left that runs in the folder
        try:
            assert os.readlink(proc / "cwd") != str(gm), (proc / "cmdline").read_bytes()
        except OSError:
            pass
    h = _history(tmp_path)
    assert h.runs()[0].status.value == "cancelled"


def test_a_changed_command_rebuilds_only_when_asked_for(tmp_path, home):
    """"command changed" is Gristmill's addition: opt-in for a Makefile."""
    text = """
        MSG ?= one
        out.txt: in.txt
        > echo $(MSG) > out.txt
        """
    _, gm = _twins(tmp_path, text, **{"in.txt": "x"})
    assert gristmill(gm).returncode == 0
    g = gristmill(gm, "MSG=two")
    assert g.returncode == 0 and (gm / "out.txt").read_text() == "one\n"    # make's rule
    g = gristmill(gm, "MSG=two", env={"GRISTMILL_MAKE_COMMAND_CHANGES": "1"})
    assert g.returncode == 0, g.stderr
    assert "out.txt: its command changed since its last success" in g.stderr
    assert (gm / "out.txt").read_text() == "two\n"


def test_without_a_compiler_the_python_recipe_shell_runs_the_same_build(tmp_path, home):
    """No C compiler: the recipe shell is the Python fallback, with the same protocol."""
    from test_make_loader import write_makefile
    write_makefile(tmp_path / "w", """
        all: top.txt sub
        top.txt:
        > @echo made top; echo top > $@
        sub:
        > $(MAKE) -C sub
        .PHONY: all sub
        """)
    write_makefile(tmp_path / "w" / "sub", """
        x.txt:
        > echo x > $@
        """)
    env = {"CC": "/nonexistent/cc"}
    g = gristmill(tmp_path / "w", env=env)
    assert g.returncode == 0, g.stderr
    assert "made top" in g.stdout and (tmp_path / "w" / "sub" / "x.txt").exists()
    doctor = subprocess.run([sys.executable, "-m", "gristmill", "doctor"], capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=60).stdout
    assert "make recipe shell: the Python fallback" in doctor
    h = _history(tmp_path)
    assert {"top.txt", "sub/x.txt"} <= {a.task for a in h.attempts(h.runs()[0].id)}
