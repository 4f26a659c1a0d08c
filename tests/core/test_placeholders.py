"""Placeholders: parsing, substitution, rendering, and shell quoting that survives a real shell."""

import subprocess

import pytest

from gristmill.core.load.placeholders import (Field, PlaceholderError, item_dir, item_name, item_stem,
                                         parse, quote, quote_path, quote_paths)


def test_literal_text_has_no_fields():
    t = parse("make all")
    assert t.is_literal and t.fields == () and t.render({}) == "make all"


def test_fields_with_their_offsets():
    t = parse("cp {input} out/{stem}.png")
    assert t.fields == (Field("input", 3), Field("stem", 15))
    assert t.names == {"input", "stem"}
    assert t.render({"input": "a.png", "stem": "a"}) == "cp a.png out/a.png"


def test_double_braces_are_literal_braces():
    t = parse("awk '{{print $1}}' {input}")
    assert t.render({"input": "x"}) == "awk '{print $1}' x"
    assert parse("{{}}").render({}) == "{}"


def test_values_holding_braces_are_not_parsed_again():
    assert parse("echo {item}").render({"item": "{input}"}) == "echo {input}"


def test_vars_are_checked_against_the_known_variables():
    t = parse("--size {vars.size}", variables=["size"])
    assert t.fields == (Field("vars.size", 7),)
    assert t.render({"vars.size": "256"}) == "--size 256"
    with pytest.raises(PlaceholderError) as e:
        parse("--size {vars.sise}", variables=["size"])
    assert e.value.offset == 7
    assert e.value.message == "unknown variable 'sise' in '{vars.sise}' (did you mean 'size'?)"


def test_vars_are_not_checked_without_a_list():
    assert parse("{vars.anything}").names == {"vars.anything"}


def test_var_names_that_are_not_identifiers_render():
    t = parse("{vars.my-var}/{vars.a.b}")
    assert t.render({"vars.my-var": "x", "vars.a.b": "y"}) == "x/y"


@pytest.mark.parametrize("text, offset, message", [
    ("echo {inptu}", 5, "unknown placeholder '{inptu}' (did you mean 'input'?)"),
    ("echo ${HOME}", 6, "unknown placeholder '{HOME}' (write '{{' and '}}' for literal braces)"),
    ("echo {}", 5, "empty placeholder '{}' (write '{{' and '}}' for literal braces)"),
    ("echo {input", 5, "unmatched '{' (write '{{' for a literal brace)"),
    ("a {b {input}", 2, "unmatched '{' (write '{{' for a literal brace)"),
    ("echo }", 5, "unmatched '}' (write '}}' for a literal brace)"),
    ("{{ {x} }}", 3, "unknown placeholder '{x}' (write '{{' and '}}' for literal braces)"),
])
def test_malformed_placeholders(text, offset, message):
    with pytest.raises(PlaceholderError) as e:
        parse(text)
    assert (e.value.offset, e.value.message) == (offset, message)


def test_substitute_replaces_known_fields_and_keeps_the_rest():
    t = parse("run {vars.x} {item} {task}")
    s = t.substitute({"vars.x": "1", "task": "t"})
    assert s.names == {"item"}
    assert s.text == t.text                       # offsets still refer to the original
    assert s.fields[0].offset == 13
    assert s.render({"item": "i"}) == "run 1 i t"
    assert s.fill({"item": "j"}) == "run 1 j t"
    assert t.substitute({"other": "z"}) is t


def test_item_parts():
    assert (item_name("images/a.png"), item_stem("images/a.png"), item_dir("images/a.png")) == \
        ("a.png", "a", "images")
    assert item_stem("x/a.tar.gz") == "a.tar"
    assert item_stem(".bashrc") == ".bashrc"
    assert item_stem("a.") == "a."
    assert item_dir("a.png") == "."
    assert item_name("small") == "small" and item_dir("small") == "."


@pytest.mark.parametrize("value", ["", "plain", "it's", "a b;$(touch x).txt", "$HOME", "`id`",
                                   "x\ny", "é", "-rf", "*"])
def test_quote_matches_shlex(value):
    import shlex
    assert quote(value) == shlex.quote(value)


def test_quote_path_keeps_a_dash_file_from_reading_as_an_option():
    assert quote_path("-rf") == "./-rf"
    assert quote_path("a b") == "'a b'"
    assert quote_paths(["a", "b c", "-x"]) == "a 'b c' ./-x"
    assert quote_paths([]) == ""


def test_a_hostile_file_name_reaches_a_real_shell_as_one_argument(tmp_path):
    name = "a b;$(touch x).txt"
    cmd = parse("printf '[%s]\\n' {input} {inputs}").render(
        {"input": quote_path(name), "inputs": quote_paths([name, "it's"])})
    out = subprocess.run(["/bin/sh", "-c", cmd], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout
    assert out.splitlines() == [f"[{name}]", f"[{name}]", "[it's]"]
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("paths", [[], ["a"], ["a", "b/c.txt"], ["-x", "a"], ["a/-x"], ["a b", "c"],
                                   ["", "a"], ["/abs/p", "q"], ["a//b"], ["a/", "b"], ["it's", "x"],
                                   ["a", "$(rm -rf)"], ["é.txt"], ["a\nb"], ["x=1,y@2%+:"]])
def test_quote_paths_is_each_path_quoted_then_joined(paths):
    from gristmill.core.load.placeholders import quote_path, quote_paths
    assert quote_paths(paths) == " ".join(quote_path(p) for p in paths)
    assert quote_paths(iter(paths)) == " ".join(quote_path(p) for p in paths)
