"""Make's errors, and bad hints, as ``Makefile:line:col: message`` — never a traceback."""

from __future__ import annotations

import pytest

from gristmill.core.errors import UsageError, WorkflowError
from gristmill.core.makefile import load_makefile

from make_harness import needs_make
from test_make_loader import load, write_makefile


def error_of(folder, variables=None) -> WorkflowError:
    with pytest.raises(WorkflowError) as info:
        load(folder, variables)
    return info.value


@needs_make
def test_syntax_error(tmp_path):
    write_makefile(tmp_path, "X = 1\nall:\n    echo spaces instead of a tab\n")
    e = error_of(tmp_path)
    assert str(e).startswith(f"{tmp_path}/Makefile:3:1: missing separator")


@needs_make
def test_paths_in_messages_are_as_given(tmp_path, monkeypatch):
    write_makefile(tmp_path / "proj", "all:\n    oops\n")
    monkeypatch.chdir(tmp_path)
    assert str(error_of("proj")).startswith("proj/Makefile:2:1: missing separator")
    assert str(error_of("proj/Makefile")).startswith("proj/Makefile:2:1: ")


@needs_make
def test_error_function_while_reading(tmp_path):
    write_makefile(tmp_path, "ifndef CONFIG\n$(error CONFIG must be set)\nendif\nall:\n> @true\n")
    e = error_of(tmp_path)
    assert (e.location.line, e.location.col, e.message) == (2, 1, "CONFIG must be set")
    assert load(tmp_path, {"CONFIG": "1"}).default == ("all",)


@needs_make
def test_missing_include(tmp_path):
    write_makefile(tmp_path, "all:\n> @true\ninclude settings.mk\n")
    e = error_of(tmp_path)
    assert (e.location.line, e.message) == (3, "settings.mk: No such file or directory")


@needs_make
def test_missing_include_in_an_included_file(tmp_path):
    write_makefile(tmp_path, "include mk/a.mk\nall:\n> @true\n", **{"mk__a.mk": "\n\ninclude nothere.mk\n"})
    e = error_of(tmp_path)
    assert e.location.path.endswith("mk/a.mk") and e.location.line == 3


@needs_make
def test_no_rule_for_a_prerequisite_of_the_default_goal(tmp_path):
    write_makefile(tmp_path, "all: prog\n\nprog: main.o\n> cc -o $@ $^\n")
    e = error_of(tmp_path)
    assert e.message == "No rule to make target 'main.o', needed by 'prog'"
    assert (e.location.line, e.location.col) == (3, 1)


@needs_make
def test_error_in_a_recipe_of_the_default_goal(tmp_path):
    write_makefile(tmp_path, "all:\n> echo $(error no way)\n")
    e = error_of(tmp_path)
    assert (e.location.line, e.message) == (2, "no way")


def test_no_gnu_make_says_so(tmp_path, monkeypatch):
    write_makefile(tmp_path, "all:\n> @true\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("GRISTMILL_MAKE", raising=False)
    with pytest.raises(WorkflowError) as info:
        load_makefile(tmp_path)
    assert "needs GNU make" in str(info.value)
    assert str(info.value).startswith(f"{tmp_path}/Makefile:1:1: ")


def test_a_make_that_is_not_gnu_make_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "make"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'bmake 20200710'\n")
    fake.chmod(0o755)
    write_makefile(tmp_path, "all:\n> @true\n")
    monkeypatch.setenv("PATH", str(fake.parent))
    monkeypatch.delenv("GRISTMILL_MAKE", raising=False)
    with pytest.raises(WorkflowError) as info:
        load_makefile(tmp_path)
    assert "is not GNU make" in str(info.value)


def test_no_makefile(tmp_path):
    with pytest.raises(WorkflowError) as info:
        load_makefile(tmp_path)
    assert "no GNUmakefile, makefile or Makefile" in str(info.value)
    with pytest.raises(WorkflowError):
        load_makefile(tmp_path / "Makefile")


@needs_make
def test_bad_variable_name_is_a_usage_error(tmp_path):
    write_makefile(tmp_path, "all:\n> @true\n")
    with pytest.raises(UsageError):
        load(tmp_path, {"A B": "1"})


@needs_make
@pytest.mark.parametrize("hint, col, words", [
    ("mem=lots", 14, "bad size"),
    ("mem=1", 14, "size '1' has no unit: add one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"),
    ("cpu=2 mem=512", 20, "size '512' has no unit"),
    ("cpu=1 gpu=two", 20, "whole number"),
    ("cpu=1 gpu=1.5", 20, "more than one GPU must be a whole number"),
    ("gpu=1 gpu_mem=20", 20, "size '20' has no unit"),
    ("cpu=0", 14, "positive"),
    ("ram=4GB", 14, "unknown gristmill hint 'ram'"),
    ("timeout=soon", 14, "bad duration"),
    ("mem", 14, "expected KEY=VALUE"),
    ("pool=a:b:c", 14, "whole number"),
    ("cpu=1 cpu=2", 20, "given twice"),
])
def test_bad_hints(tmp_path, hint, col, words):
    write_makefile(tmp_path, f"all: x\n# gristmill: {hint}\nx:\n> @true\n")
    e = error_of(tmp_path)
    assert (e.location.line, e.location.col) == (2, col), str(e)
    assert words in e.message


@needs_make
def test_a_pool_with_two_sizes(tmp_path):
    write_makefile(tmp_path, "all: a b\n# gristmill: pool=p:1\na:\n> @true\n# gristmill: pool=p:2\nb:\n> @true\n")
    e = error_of(tmp_path)
    assert "pool 'p'" in e.message and e.location.line in (2, 5)


@needs_make
def test_a_pool_without_a_size(tmp_path):
    write_makefile(tmp_path, "all: a\n# gristmill: pool=p\na:\n> @true\n")
    e = error_of(tmp_path)
    assert "pool 'p' has no size" in e.message and e.location.line == 2
