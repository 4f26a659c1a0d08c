"""The real-project sweep (sweep_projects.py) on the small projects vendored under projects/.

Each project is built by GNU make and by ``python -m gristmill run`` in two fresh copies, and
what a user can observe is compared: the trees after a full build, the files a rebuild after a
touch changes, ``-n``'s lines, ``clean``, ``install DESTDIR=…`` and a failing build. The
sweep's table for the projects fetched from GitHub is in CONFORMANCE.md ("Real projects").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from make_harness import needs_cc, needs_make
from sweep_projects import PROJECTS, Result, sweep_project

pytestmark = [needs_make, needs_cc, pytest.mark.slow]
SRC = Path(__file__).resolve().parents[2] / "src"

# cJSON's own Makefile fails under make when a library it links is rebuilt (`ln -s` onto the
# symlink a previous build made: "File exists"); that difference is in CONFORMANCE.md. Here
# the touched file is one whose rebuild make finishes, so the rebuild sets can be compared.
CASES = {"sds": PROJECTS["sds"], "cJSON": dataclasses.replace(PROJECTS["cJSON"], touch="test.c")}


def explain(res: Result, column: str) -> str:
    c = res.checks[column]
    return f"{res.project} {column}: {c.cell}\n" + "\n".join(c.diffs)


@pytest.fixture(scope="module", params=sorted(CASES))
def swept(request, tmp_path_factory) -> Result:
    project = CASES[request.param]
    res = sweep_project(project, tmp_path_factory.mktemp(project.name), SRC, jobs=2,
                        log=lambda _m: None, vendored=True)
    assert res.source.startswith("vendored"), res.source
    assert not res.error, res.error
    return res


def test_full_build_makes_the_same_tree(swept):
    c = swept.checks["full build"]
    assert c.parts == {"exit": True, "tree": True}, explain(swept, "full build")


def test_a_touch_rebuilds_what_make_rebuilds(swept):
    c = swept.checks["touch"]
    assert c.parts == {"exit": True, "set": True, "tree": True}, explain(swept, "touch")
    assert "1 vs 1" in c.cell or swept.project != "cJSON", c.cell      # cJSON_test alone


def test_a_no_op_changes_nothing(swept):
    c = swept.checks["no-op"]
    assert c.parts == {"exit": True, "set": True}, explain(swept, "no-op")
    assert "nothing" in c.cell


def test_dry_run_prints_make_s_lines(swept):
    c = swept.checks["-n"]
    assert c.parts == {"exit": True, "lines": True}, explain(swept, "-n")


def test_clean_leaves_the_same_tree(swept):
    c = swept.checks["clean"]
    assert c.parts == {"exit": True, "tree": True}, explain(swept, "clean")


def test_install_with_destdir_installs_the_same_files(swept):
    if PROJECTS[swept.project].install is None:
        pytest.skip(f"{swept.project}'s Makefile has no install target")
    c = swept.checks["install"]
    assert c.parts == {"exit": True, "tree": True}, explain(swept, "install")
    assert "(8 paths)" in c.cell, c.cell     # include/cjson/*.h, lib/*.so* under DESTDIR/usr/local


def test_a_failing_build_exits_as_make_does(swept):
    for column in ("fail", "fail -k"):
        c = swept.checks[column]
        assert c.parts["exit"], explain(swept, column)
        assert c.cell.split(";")[0].endswith("exit 2 vs 2"), c.cell
    assert swept.checks["fail -k"].parts["set"], explain(swept, "fail -k")


def test_the_comparison_names_what_differs(tmp_path):
    """The sweep's own yardstick: two trees that differ in a file's text, a mode and a link are
    reported path by path; the copy's own folder in a text file is not a difference."""
    from sweep_projects import snapshot, tree_diff, two_copies

    src = tmp_path / "src"
    src.mkdir()
    for name in ("same.txt", "text.txt", "mode.sh"):
        (src / name).write_text("one\n")
    mk, gm = two_copies(src, tmp_path / "w")
    (mk / "where.txt").write_text(f"built in {mk}\n")
    (gm / "where.txt").write_text(f"built in {gm}\n")
    (gm / "text.txt").write_text("two\n")
    (gm / "mode.sh").chmod(0o755)
    (mk / "link").symlink_to("same.txt")
    (gm / "link").symlink_to("text.txt")
    (gm / "extra.o").write_bytes(b"\x7fELF")
    found = tree_diff(snapshot(mk), snapshot(gm))
    assert [line.split(":")[0] for line in found] == ["extra.o", "link", "mode.sh", "text.txt"], found
    assert "-one" in found[3] and "+two" in found[3], found[3]
