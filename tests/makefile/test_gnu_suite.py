"""GNU make's own regression suite, differentially: a fixed sample in CI.

The sample is every second comparable case of ``gnu_cases.json`` (the ``sample``
list there); of those, the ones that passed when CONFORMANCE.md was recorded
(``expected_pass``) must still pass: same exit status (zero or not), same files,
same recipe output as GNU make 4.3.  The full run, which rewrites CONFORMANCE.md,
is ``.venv/bin/python tests/makefile/gnu_suite.py --full``.
"""

from __future__ import annotations

import subprocess

import pytest

import gnu_suite
from gnu_extract import extract
from make_harness import GNU_MAKE, needs_make


def _make_version() -> str:
    if GNU_MAKE is None:
        return ""
    return subprocess.run([GNU_MAKE, "--version"], capture_output=True, text=True).stdout.split("\n")[0]


DATA = gnu_suite.load_data()
GUARDED = [i for i in DATA["sample"] if i in set(DATA["expected_pass"])]


@pytest.fixture(scope="module")
def sample_results():
    if not _make_version().startswith(f"GNU Make {gnu_suite.MAKE_VERSION}"):
        pytest.skip(f"the recorded results are GNU make {gnu_suite.MAKE_VERSION}'s; "
                    f"this machine has {_make_version() or 'no GNU make'}")
    results = gnu_suite.run_cases(DATA["cases"], set(GUARDED), workers=2)
    return {r.id: r for r in results}


def test_the_data_file_holds_the_suite():
    cases = DATA["cases"]
    assert len(cases) > 600 and {c["category"] for c in cases} == set(gnu_suite.CATEGORIES)
    assert len(GUARDED) > 100, "the CI sample guards too few cases"
    ids = {c["id"] for c in cases}
    assert set(DATA["sample"]) <= ids and set(DATA["expected_pass"]) <= ids


@needs_make
@pytest.mark.parametrize("case_id", GUARDED)
def test_a_case_that_passed_still_passes(sample_results, case_id):
    r = sample_results[case_id]
    assert r.status == "pass", (
        f"{case_id} passed when CONFORMANCE.md was recorded and now {r.status}s: {r.detail}\n"
        f"  make ({r.exit_make}):      {r.out_make}\n  gristmill ({r.exit_gm}): {r.out_gm}\n"
        f"rerun: .venv/bin/python tests/makefile/gnu_suite.py --case '{case_id}' -v")


# -- the extractor, on the forms the scripts use ------------------------------------------
SCRIPT = r'''
$description = "A test.\n";
$example = "EXAMPLE_FILE";
touch($example);
run_make_test("
all:
\t\@echo hello $example\n",
              '', 'hello EXAMPLE_FILE');
run_make_test(undef, 'clean', '');
&utouch(-10, 'a.x', "b.x");
run_make_test(q!
x: ; @echo '$@'
!, '-k x', "x\n", 512);
open(MAKEFILE, "> $makefile");
print MAKEFILE <<'EOF';
y: ; @echo $(FOO)
EOF
close(MAKEFILE);
$extraENV{FOO} = 'bar';
&run_make_with_options($makefile, "y", &get_logfile);
if ($port_type eq 'W32') { run_make_test('w:;', '', ''); }
if ($unknown_setting) { run_make_test('u:;', '', ''); }
unlink('a.x');
1;
'''


def test_the_extractor_reads_the_common_forms():
    cases = extract("features", "t", SCRIPT)
    assert [c.index for c in cases] == [1, 2, 3, 4, 5]
    one, two, three, four, five = cases
    assert one.makefile == "\nall:\n\t@echo hello EXAMPLE_FILE\n" and one.args == ""
    assert one.steps[0] == ["touch", ["EXAMPLE_FILE"]] and one.steps[-1][0] == "write"
    assert two.args == "clean" and two.steps == [] and two.makefile == one.makefile   # undef: the same one
    assert three.makefile == "\nx: ; @echo '$@'\n" and three.args == "-k x" and three.exit == 2
    assert three.steps[0] == ["utouch", -10, ["a.x", "b.x"]]
    assert four.makefile == "y: ; @echo $(FOO)\n" and four.env == {"FOO": "bar"} and four.args == "y"
    # The W32 branch is not run; an 'if' the extractor cannot decide is counted, never guessed.
    assert five.unparsed and "condition" in five.unparsed
