"""The make options a make user types, through the real `gristmill run`, each checked
against GNU make on a copy of the same folder: -n prints the commands, -t touches,
-s echoes nothing, -W pretends a file changed; the rest are refused with what to do
instead, never ignored."""

from __future__ import annotations

import pytest

from make_harness import assert_same_files, needs_make, snapshot
from test_everyday import _twins, gristmill, home, make  # noqa: F401  (fixture)
from test_phony_prerequisites import RECURSIVE as LOUD, SUB

pytestmark = needs_make

RECURSIVE = LOUD.replace("> cat", "> @cat")      # a silent command: -n prints it too
FILES = {"sub__Makefile": SUB, "sub__in.txt": "one\n"}


def _without_dirs(text: str, *folders) -> str:
    """The folders' names as DIR, and without the lines ``make -C`` adds at level 0."""
    for f in folders:
        text = text.replace(str(f), "DIR")
    return "".join(line for line in text.splitlines(True)
                   if not line.startswith(("make: Entering directory", "make: Leaving directory")))


def test_n_prints_the_commands_as_make_n_and_changes_nothing(tmp_path, home):
    mk, gm = _twins(tmp_path, RECURSIVE, **FILES)
    before = snapshot(gm)
    m, g = make(mk, "-n"), gristmill(gm, "-n")
    assert g.returncode == m.returncode == 0, g.stderr
    # Every command, the silent one too, and the sub-make's own, run with -n.
    assert _without_dirs(g.stdout, gm) == _without_dirs(m.stdout, mk)
    assert "cp in.txt sub.txt" in g.stdout and "cat sub/sub.txt > top.txt" in g.stdout
    assert snapshot(gm) == before


def test_t_touches_what_is_out_of_date_as_make_t(tmp_path, home):
    mk, gm = _twins(tmp_path, RECURSIVE, **FILES)
    m, g = make(mk, "-t"), gristmill(gm, "-t")
    assert g.returncode == m.returncode == 0, g.stderr
    assert _without_dirs(g.stdout, gm) == _without_dirs(m.stdout, mk)
    assert (gm / "top.txt").read_text() == "" and (gm / "sub" / "sub.txt").exists()
    assert_same_files(mk, gm, "-t")


def test_s_echoes_no_command_but_keeps_the_output(tmp_path, home):
    text = """
        out.txt: in.txt
        > cp in.txt out.txt
        > echo copied
        """
    mk, gm = _twins(tmp_path, text, **{"in.txt": "x\n"})
    m, g = make(mk, "-s"), gristmill(gm, "-s")
    assert m.returncode == g.returncode == 0, g.stderr
    assert "cp in.txt" not in m.stdout and "cp in.txt" not in g.stdout, g.stdout
    assert "copied" in m.stdout and "copied" in g.stdout
    assert_same_files(mk, gm, "-s")


W_MAKEFILE = """
    all: out.txt other.txt
    out.txt: in.txt
    > cp in.txt out.txt
    other.txt:
    > echo other > other.txt
    """


def test_W_runs_what_reads_the_file_as_if_it_had_changed(tmp_path, home):
    mk, gm = _twins(tmp_path, W_MAKEFILE, **{"in.txt": "x\n"})
    assert make(mk).returncode == 0 and gristmill(gm).returncode == 0
    m, g = make(mk, "-W", "in.txt"), gristmill(gm, "-W", "in.txt")
    assert "cp in.txt out.txt" in m.stdout and "echo other" not in m.stdout
    assert g.returncode == 0, g.stderr
    assert "cp in.txt out.txt" in g.stdout and "echo other" not in g.stdout, g.stdout
    # make decides: a file nothing reads changes nothing, as for make itself
    assert gristmill(gm, "-W", "nothing.txt").returncode == make(mk, "-W", "nothing.txt").returncode


@pytest.mark.parametrize("words", [
    ["-i"], ["-o", "in.txt"], ["-e"], ["--trace"], ["-r"], ["--eval=X=1"], ["-R"], ["-L"],
    ["-O"], ["-w"], ["--debug=b"], ["-l", "50"],
])
def test_every_make_option_goes_to_make_and_does_what_make_does(tmp_path, home, words):
    """GNU make runs the recipes: an option a make user types is make's, as typed."""
    text = """
        out.txt: in.txt
        > cp in.txt out.txt
        """
    mk, gm = _twins(tmp_path, text, **{"in.txt": "x\n"})
    m, g = make(mk, *words), gristmill(gm, *words)
    assert g.returncode == m.returncode, g.stderr
    assert "Traceback" not in g.stderr
    assert_same_files(mk, gm, " ".join(words))
    assert [line for line in g.stdout.splitlines() if "cp in.txt" in line] == \
        [line for line in m.stdout.splitlines() if "cp in.txt" in line]


def test_a_make_option_is_refused_for_a_gristmill_toml_workflow(tmp_path, home):
    (tmp_path / "gristmill.toml").write_text('[tasks.a]\ncmd = "true"\n')
    g = gristmill(tmp_path, "-i")
    assert g.returncode == 2
    assert "make's -i (--ignore-errors) is not supported by gristmill run for a " \
        "gristmill.toml or .json workflow" in g.stderr, g.stderr
