"""A target with a phony prerequisite is always remade, as GNU make remakes it: the
restat shortcut never applies through a phony target, even one whose name is also a
folder on disk (a recursive ``sub:`` rule beside ``sub/``). Each case runs GNU make
and ``gristmill run`` on copies of one folder and compares what they rebuilt."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from make_harness import assert_same_files, needs_make
from test_everyday import _twins, gristmill, home, make  # noqa: F401  (fixture)

pytestmark = needs_make

RECURSIVE = """
    .PHONY: all sub
    all: top.txt
    sub:
    > $(MAKE) -C sub
    top.txt: sub
    > cat sub/sub.txt > top.txt
    """
SUB = "sub.txt: in.txt\n\tcp in.txt sub.txt\n"


def _bump(path, text):
    path.write_text(text)
    later = time.time() + 5
    os.utime(path, (later, later))


def test_touching_a_sub_make_input_rebuilds_the_dependant_of_the_phony_rule(tmp_path, home):
    mk, gm = _twins(tmp_path, RECURSIVE, **{"sub__Makefile": SUB, "sub__in.txt": "one\n"})
    for folder in (mk, gm):
        assert (make if folder is mk else gristmill)(folder).returncode == 0
        assert (folder / "top.txt").read_text() == "one\n"
    for folder in (mk, gm):
        _bump(folder / "sub" / "in.txt", "two\n")
    assert make(mk).returncode == 0
    p = gristmill(gm)
    assert p.returncode == 0, p.stdout + p.stderr
    assert (mk / "top.txt").read_text() == "two\n"
    # Before: sub.txt was remade but top.txt kept the old content, called up to date.
    assert (gm / "top.txt").read_text() == "two\n"
    assert_same_files(mk, gm, "after touching sub/in.txt")


def test_an_unchanged_rerun_remakes_the_dependant_of_a_phony_folder_rule(tmp_path, home):
    mk, gm = _twins(tmp_path, RECURSIVE, **{"sub__Makefile": SUB, "sub__in.txt": "one\n"})
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    m = make(mk)
    assert "cat sub/sub.txt > top.txt" in m.stdout            # make remakes it every time
    p = gristmill(gm)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "cat sub/sub.txt > top.txt" in p.stdout


def test_a_phony_prerequisite_without_a_recipe_still_forces_and_says_so(tmp_path, home):
    text = """
        .PHONY: p
        top: p
        > touch top
        p:
        """
    mk, gm = _twins(tmp_path, text, **{"p__keep": ""})      # a folder named p exists
    for _ in range(2):
        assert "touch top" in make(mk, "top").stdout
        p = gristmill(gm, "top")
        assert p.returncode == 0 and "touch top" in p.stdout, p.stdout + p.stderr
    plan = subprocess.run([sys.executable, "-m", "gristmill", "plan", "-C", str(gm), "top"],
                          capture_output=True, text=True, timeout=60)
    assert "depends on phony task p, which always runs" in plan.stdout, plan.stdout


def test_order_only_phony_prerequisite_never_forces(tmp_path, home):
    text = """
        .PHONY: p
        top: | p
        > touch top
        p:
        > @echo p ran
        """
    mk, gm = _twins(tmp_path, text)
    assert make(mk, "top").returncode == 0 and gristmill(gm, "top").returncode == 0
    m, g = make(mk, "top"), gristmill(gm, "top")
    assert "touch top" not in m.stdout and "p ran" in m.stdout
    assert "touch top" not in g.stdout and "p ran" in g.stdout, g.stdout
