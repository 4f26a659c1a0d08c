"""Intermediate files as GNU make treats them: deleted after the build that made them
(``rm a.c``), not remade while missing when what is made from them is newer than
their prerequisites, kept by ``.SECONDARY`` and ``.PRECIOUS``. Each case runs GNU
make and ``gristmill run`` on copies of one folder and compares."""

from __future__ import annotations

import os
import time

import pytest

from make_harness import assert_same_files, needs_make
from test_everyday import _twins, gristmill, home, make  # noqa: F401  (fixture)

pytestmark = needs_make

CHAIN = """
    all: prog
    prog: a.o
    > cp a.o prog
    %.o: %.c
    > cp $< $@
    %.c: %.y
    > cp $< $@
    """


def _later(path):
    t = time.time() + 5
    os.utime(path, (t, t))


def test_the_intermediate_file_is_deleted_after_the_build_as_make_deletes_it(tmp_path, home):
    mk, gm = _twins(tmp_path, CHAIN, **{"a.y": "y\n"})
    m, g = make(mk), gristmill(gm)
    assert g.returncode == 0, g.stdout + g.stderr
    assert "rm a.c" in m.stdout and "rm a.c" in g.stdout
    assert not (gm / "a.c").exists() and (gm / "prog").exists()
    assert_same_files(mk, gm, "first build")


def test_a_missing_intermediate_is_not_remade_until_its_source_changes(tmp_path, home):
    mk, gm = _twins(tmp_path, CHAIN, **{"a.y": "y\n"})
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    m, g = make(mk), gristmill(gm)
    assert "cp" not in m.stdout
    assert "cp a.y a.c" not in g.stdout and "cp a.c a.o" not in g.stdout, g.stdout
    for folder in (mk, gm):
        (folder / "a.y").write_text("changed\n")
        _later(folder / "a.y")
    m, g = make(mk), gristmill(gm)
    assert "cp a.y a.c" in m.stdout and "cp a.y a.c" in g.stdout, g.stdout
    assert (gm / "prog").read_text() == "changed\n"
    assert not (gm / "a.c").exists()
    assert_same_files(mk, gm, "after changing a.y")


@pytest.mark.parametrize("keep", [".SECONDARY: a.c", ".SECONDARY:", ".PRECIOUS: %.c",
                                  ".PRECIOUS: a.c"])
def test_secondary_and_precious_files_are_kept(tmp_path, home, keep):
    mk, gm = _twins(tmp_path, CHAIN + f"\n    {keep}\n", **{"a.y": "y\n"})
    m, g = make(mk), gristmill(gm)
    assert g.returncode == 0, g.stdout + g.stderr
    assert "rm a.c" not in m.stdout and "rm a.c" not in g.stdout
    assert (gm / "a.c").exists()
    assert_same_files(mk, gm, keep)


def test_an_intermediate_that_was_there_before_is_left_alone(tmp_path, home):
    mk, gm = _twins(tmp_path, CHAIN, **{"a.y": "y\n", "a.c": "old\n"})
    for folder in (mk, gm):
        _later(folder / "a.y")        # a.c is there but older: it is remade, and kept
    m, g = make(mk), gristmill(gm)
    assert g.returncode == 0, g.stdout + g.stderr
    assert "rm a.c" not in m.stdout and "rm a.c" not in g.stdout
    assert_same_files(mk, gm, "a.c there before")


def test_declared_intermediate_deleted_after_a_failed_build_too(tmp_path, home):
    text = """
        all: out bad
        out: mid
        > cp mid out
        mid:
        > echo m > mid
        bad:
        > false
        .INTERMEDIATE: mid
        """
    mk, gm = _twins(tmp_path, text)
    m, g = make(mk, "-k"), gristmill(gm, "-k")
    assert m.returncode != 0 and g.returncode != 0
    assert "rm mid" in m.stdout and "rm mid" in g.stdout, g.stdout
    assert_same_files(mk, gm, ".INTERMEDIATE, failed build")
