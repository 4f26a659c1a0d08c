"""The reader's parts on their own: data base, messages, source scan, prefixes, hints, MAKEFLAGS."""

from __future__ import annotations

import textwrap

import pytest

from gristmill.core.errors import Location, WorkflowError
from gristmill.core.makefile.database import extract_database, parse_database, split_names
from gristmill.core.makefile.diagnostics import parse_stderr
from gristmill.core.makefile.hints import parse_hint
from gristmill.core.makefile.prefixes import analyse_line, assign_noerror
from gristmill.core.makefile.recording import _mk_target, clean_env, makeflags_for
from gristmill.core.makefile.source import rule_targets, scan_file
from gristmill.core.workflow import Resources

DB = textwrap.dedent("""\
    # GNU Make 4.3
    # Built for x86_64-pc-linux-gnu

    # Make data base, printed on Sun Nov 22 02:52:51 2026

    # Variables

    # default
    CC = cc
    # makefile (from 'Makefile', line 2)
    OBJS := main.o util.o
    # 'override' directive (from 'Makefile', line 3)
    Y = 2
    # makefile (from 'Makefile', line 4)
    define canned
    @echo one
    -echo two
    endef
    # default
    .DEFAULT_GOAL := all
    # Pattern-specific Variable Values

    %.o :
    # makefile (from 'Makefile', line 7)
    # CPPFLAGS := -DPAT

    # 1 pattern-specific variable values

    # Files

    # Not a target:
    .c.o:
    #  Builtin rule
    #  recipe to execute (built-in):
    \t$(COMPILE.c) $(OUTPUT_OPTION) $<

    # makefile (from 'Makefile', line 9)
    prog: CFLAGS += -O2
    # makefile private (from 'Makefile', line 10)
    prog: LDX = 1
    prog: main.o util.o | outdir
    #  Implicit rule search has not been done.
    #  File does not exist.
    #  File has been updated.
    # automatic
    # @ := prog
    #  recipe to execute (from 'Makefile', line 12):
    \t$(Q)echo LD $@ \\
    \t  more
    \t-$(CC) -o $@ $^

    clean::
    #  Phony target (prerequisite of .PHONY).
    #  recipe to execute (from 'Makefile', line 20):
    \trm -f prog

    clean::
    #  Phony target (prerequisite of .PHONY).
    #  recipe to execute (from 'Makefile', line 22):
    \trm -rf outdir

    x.tab.c: x.y
    #  Implicit/static pattern stem: 'x'
    #  File is an intermediate prerequisite.
    #  Also makes: x.tab.h
    #  recipe to execute (from 'Makefile', line 30):
    \ttouch $*.tab.c $*.tab.h

    a:b: d
    #  Implicit rule search has not been done.

    # files hash-table stats:
    # VPATH Search Paths

    vpath %.h inc

    # General ('VPATH' variable) search path:
    # src:lib

    # Finished Make data base on Sun Nov 22 02:52:51 2026
    """)


def test_the_data_base():
    before, text = extract_database("echo hi\n" + DB)
    assert before == "echo hi\n"
    db = parse_database(text)
    assert db.value("CC") == "cc" and db.variables["CC"].origin == "default"
    objs = db.variables["OBJS"]
    assert (objs.value, objs.flavor, objs.file, objs.line) == ("main.o util.o", "simple", "Makefile", 2)
    assert db.variables["Y"].origin == "override"
    assert db.variables["canned"].value == "@echo one\n-echo two"
    assert db.default_goal == "all"
    assert db.pattern_vars[0].pattern == "%.o" and db.pattern_vars[0].variable.value == "-DPAT"
    prog = db.files["prog"]
    assert prog.prereqs == ["main.o", "util.o"] and prog.order_only == ["outdir"]
    assert [(v.name, v.op, v.value, v.private) for v in prog.target_vars] == [
        ("CFLAGS", "+=", "-O2", False), ("LDX", "=", "1", True)]
    rule = prog.rules[0]
    assert rule.recipe == ["$(Q)echo LD $@ \\\n  more", "-$(CC) -o $@ $^"]
    assert (rule.recipe_file, rule.recipe_line, rule.recipe_physical) == ("Makefile", 12, 3)
    assert prog.exists is False and prog.updated and prog.is_target
    clean = db.files["clean"]
    assert clean.double_colon and clean.phony and len(clean.rules) == 2
    assert [r.recipe_line for r in clean.rules] == [20, 22]
    assert db.files["x.tab.c"].also_makes == ["x.tab.h"] and db.files["x.tab.c"].stem == "x"
    assert db.files["x.tab.c"].intermediate
    assert not db.files[".c.o"].is_target and db.files[".c.o"].rules[0].builtin
    assert db.files["a:b"].prereqs == ["d"]
    assert db.vpath == ["vpath %.h inc", "VPATH src:lib"]


def test_split_names_keeps_escaped_blanks():
    assert split_names("a b\\ c  d") == ["a", "b c", "d"]


def test_make_messages():
    text = "\n".join([
        "Makefile:5: *** missing separator.  Stop.",
        "make: *** No rule to make target 'x.c', needed by 'x.o'.",
        "make: *** No rule to make target 'y'.  Stop.",
        "make: Target 'all' not remade because of errors.",
        "inc/a.mk:3: warning: overriding recipe for target 'a'",
        "Makefile:3: gen.mk: No such file or directory",
        "Makefile:9: hello from $(warning)",
        "make: Circular b <- a dependency dropped.",
    ])
    d = parse_stderr(text, "make")
    assert [(x.kind, x.file, x.line) for x in d] == [
        ("error", "Makefile", 5), ("no-rule", None, None), ("no-rule", None, None), ("not-remade", None, None),
        ("warning", "inc/a.mk", 3), ("missing-include", "Makefile", 3), ("warning", "Makefile", 9),
        ("warning", None, None)]
    assert d[0].message == "missing separator"
    assert (d[1].target, d[1].needed_by) == ("x.c", "x.o")
    assert d[2].message == "No rule to make target 'y'"
    assert d[5].target == "gen.mk"


def test_rule_lines():
    assert rule_targets("prog: main.o") == ["prog"]
    assert rule_targets("a b &: c") == ["a", "b"]
    assert rule_targets("$(OBJS): %.o: %.c") == []
    assert rule_targets("clean::") == ["clean"]
    for not_a_rule in ("X = a:b", "X := 1", "X ::= 1", "X += y", "X != date", "prog: CFLAGS += -g",
                       "prog: private X = 1", "include a.mk", "ifeq ($(A),b:c)", "\techo a: b", "",
                       "override X := 1", "export PATH := a:b"):
        assert rule_targets(not_a_rule) is None, not_a_rule


def test_source_scan(tmp_path):
    mk = tmp_path / "Makefile"
    mk.write_text(textwrap.dedent("""\
        # gristmill: mem=1GB
        all: prog

        # about prog
        # gristmill: cpu=2
        prog: a.o \\
          b.o
        \t$(CC) -o $@ $^

        \t@echo still prog
        define body
        x: y
        endef
        # gristmill: gpu=1
        X = 1
        # gristmill: pool=a:1

        %.o: %.c ; cc -c $<
        """))
    src = scan_file(mk, "Makefile")
    assert src.rule_lines == {2, 6, 18}
    assert src.recipe_owner == {8: 6, 10: 6}
    assert src.rule_for(8) == 6 and src.rule_for(18) == 18
    assert src.literal_targets == {"all": [2], "prog": [6], "%.o": [18]}
    assert [(h.line, h.col, h.text, h.anchor) for h in src.hints] == [
        (1, 14, "mem=1GB", 2), (5, 14, "cpu=2", 6), (14, 14, "gpu=1", 15), (16, 14, "pool=a:1", None)]
    assert src.hint_for(6).text == "cpu=2"


def _lookup(table):
    return lambda name: table.get(name)


def test_ignore_errors_from_the_recipe_text():
    look = _lookup({"Q": ("@", "recursive"), "IGN": ("-", "simple"), "CC": ("cc", "recursive"),
                    "V": ("", "recursive"), "QQ": ("$(Q)", "recursive"),
                    "canned": ("@echo a\n-false\necho b", "recursive"),
                    "maybe": ("$(if $(V),,-)", "recursive")})
    assert analyse_line("-rm x", look).noerror is True
    assert analyse_line("@-rm x", look).noerror is True
    assert analyse_line("rm x", look).noerror is False
    assert analyse_line("$(Q)rm x", look).noerror is False
    assert analyse_line("$(IGN)rm x", look).noerror is True
    assert analyse_line("$(QQ)-rm x", look).noerror is True
    assert analyse_line("$(CC) -o x", look).noerror is False
    assert analyse_line("$(UNDEFINED)-rm", look).noerror is True
    assert analyse_line("$@ --flag", look).noerror is False
    assert analyse_line("$(if $(V),echo,true) x", look).noerror is False     # no "-" anywhere in it
    assert analyse_line("$(maybe)rm x", look).noerror is None                 # could be "-"
    canned = analyse_line("$(canned)", look)
    assert canned.sub_noerror == (False, True, False) and canned.count == 3
    assert analyse_line("+$(MAKE) -C sub", look).recursive
    assert analyse_line("cd sub && ${MAKE}", look).recursive
    assert not analyse_line("echo make", look).recursive


def test_assigning_ignore_flags_to_commands():
    look = _lookup({})
    lines = [analyse_line(t, look) for t in ("-a", "b", "-c")]
    assert assign_noerror(lines, 3) == ([True, False, True], True)
    same = [analyse_line(t, look) for t in ("-a", "-b")]
    assert assign_noerror(same, 5) == ([True] * 5, True)                   # fewer or more: all alike
    assert assign_noerror(lines, 2) == ([False, False], False)             # cannot tell which is which


def test_hints():
    h = parse_hint("mem=4GB gpu=1 retries=2 timeout=20m cpu=0.5 pool=net:3", Location("M", 4, 14))
    assert h.resources == Resources(cpu=0.5, mem=4_000_000_000, gpu=1, pools=(("net", 1),))
    assert (h.retries, h.timeout, h.pool_sizes) == (2, 1200.0, (("net", 3),))
    assert parse_hint("", Location("M", 1, 1)).resources == Resources()
    # A share of one GPU, and GPU memory: as resources.gpu and resources.gpu_mem.
    assert parse_hint("gpu=0.25 gpu_mem=20GB", Location("M", 1, 14)).resources == \
        Resources(gpu=0.25, gpu_mem=20_000_000_000)
    with pytest.raises(WorkflowError) as info:
        parse_hint("cpu=1  gpu=x", Location("M", 4, 14))
    assert (info.value.location.line, info.value.location.col) == (4, 21)


def test_makeflags_as_a_normal_run_would_pass_them():
    assert makeflags_for("Bkp", []) == ("", "")
    assert makeflags_for("Bkp -- CC=clang", ["CC=clang"]) == (" -- CC=clang", "")
    assert makeflags_for("Bkpr --debug=m --no-print-directory -- A=b\\ c", ["A=b c"]) == (
        "r --no-print-directory -- A=b\\ c", "-r --no-print-directory")
    assert makeflags_for("", ["X=1", "Y=2"]) == (" -- Y=2 X=1", "")


def test_recipe_environment():
    base = {"HOME": "/h", "KEEP": "1", "GONE": "x"}
    recorded = {"HOME": "/h", "KEEP": "1", "NEW": "n", "CC": "clang", "MAKELEVEL": "1", "PWD": "/p",
                "GRISTMILL_TARGET": "t", "MAKEFLAGS": "Bkp -- CC=clang"}
    env, unset = clean_env(recorded, base, ["CC=clang"], ("cc -c x.c",), sub_make=False)
    assert dict(env) == {"NEW": "n", "MAKELEVEL": "1"} and unset == ("GONE",)
    env, _ = clean_env(recorded, base, ["CC=clang"], ("echo $CC",), sub_make=False)
    assert dict(env)["CC"] == "clang"
    env, _ = clean_env(recorded, base, ["CC=clang"], ("make -C sub",), sub_make=True)
    assert dict(env)["MAKEFLAGS"] == " -- CC=clang" and dict(env)["CC"] == "clang"


def test_names_written_back_to_make():
    assert _mk_target("a b:c$#") == "a\\ b\\:c$$\\#"
    assert _mk_target("%.o", pattern=True) == "%.o"
    for bad in ("a%b", "a=b", "a;b", "a\\b", ""):
        with pytest.raises(ValueError):
            _mk_target(bad)
