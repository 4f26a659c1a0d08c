"""Gristmill against GNU make on the same Makefile, in separate temp copies.

For each corpus case: the first build, a rebuild after touching one
prerequisite (or a few at once), a run with nothing to do, and the extra goals
of the case (``clean``, a failing target). Each time: the same targets run
(make's ``--trace`` against the tasks Gristmill started), the same success or
failure, and the same files with the same contents.
"""

from __future__ import annotations

import shutil

import pytest

from make_harness import (Case, assert_same_files, copy_case, corpus_cases, needs_make, run_gristmill,
                          run_make, touch_newer)

pytestmark = needs_make


def _step(case: Case, mk, gm, words: list[str], what: str) -> set[str]:
    """One run of each; ``words`` are goals and NAME=value assignments, as on make's command line."""
    goals = [w for w in words if "=" not in w]
    variables = {**case.variables, **dict(w.split("=", 1) for w in words if "=" in w)}
    m = run_make(mk, goals, variables, case.env)
    g = run_gristmill(gm, goals, variables, case.env)
    assert g.ok == m.ok, f"{what}: make {'succeeded' if m.ok else 'failed'}, Gristmill did not:\n" \
                         f"make said:\n{m.output}\nGristmill's tasks said:\n{g.output}"
    assert g.ran == m.ran, f"{what}: Gristmill ran {sorted(g.ran)}, make ran {sorted(m.ran)}"
    assert_same_files(mk, gm, what)
    return m.ran


@pytest.mark.parametrize("case", corpus_cases(), ids=lambda c: c.name)
def test_builds_like_make(case: Case, tmp_path):
    for tool in case.meta.get("needs", []):
        if shutil.which(tool) is None:
            pytest.skip(f"this case needs {tool}, which is not installed")
    mk = copy_case(case.folder, tmp_path / "make")
    gm = copy_case(case.folder, tmp_path / "gristmill")
    goals = case.goals
    first = _step(case, mk, gm, goals, "first build")
    assert first, "the first build ran nothing: the case tests nothing"
    for touched in case.meta.get("touch", []):
        touch_newer(mk, touched)
        touch_newer(gm, touched)
        _step(case, mk, gm, goals, f"after touching {' '.join(touched)}")
    _step(case, mk, gm, goals, "nothing changed")
    for extra in case.meta.get("goals_after", []):
        _step(case, mk, gm, extra, f"goals {' '.join(extra)}")


def test_a_prerequisite_whose_recipe_makes_no_file_rebuilds_its_target_every_time(tmp_path):
    from test_make_loader import write_makefile
    case = Case("stamp", tmp_path)
    write_makefile(tmp_path / "src", """
        out.txt: stamp in.txt
        > cat in.txt > $@
        stamp:
        > @echo checking
        """, **{"in.txt": "a\\n"})
    mk = copy_case(tmp_path / "src", tmp_path / "make")
    gm = copy_case(tmp_path / "src", tmp_path / "gristmill")
    _step(case, mk, gm, [], "first build")
    _step(case, mk, gm, [], "second build")
