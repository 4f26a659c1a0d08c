"""Where keys and values sit: the TOML scan, the JSON scan, and Source's fallbacks."""

import pytest

from gristmill.core.errors import Location, WorkflowError
from gristmill.core.load.jsonpos import parse_json
from gristmill.core.load.source import Source
from gristmill.core.load.tomlpos import parse_toml

TOML = '''\
# a comment with [tasks.fake] in it
[workflow]
name = "x"   # trailing comment

[tasks.build]
cmd = """
[tasks.not_a_header]
echo {input}
"""
inputs = [
  "a.c",   # first
  'b.c',
]
resources = { cpu = 2, pools = { net = 1 } }
env.SEED = "1"

[tasks."with space"]
"quoted key" = 1

[[arr]]
k = 1
[[arr]]
k = 2
'''


def pos(src: Source, path, value=False):
    loc = src.loc(path, value)
    return loc.line, loc.col


def test_toml_positions():
    data, src = parse_toml("w.toml", TOML)
    assert data["tasks"]["build"]["inputs"] == ["a.c", "b.c"]
    assert pos(src, ("workflow",)) == (2, 1)
    assert pos(src, ("workflow", "name")) == (3, 1)
    assert pos(src, ("workflow", "name"), value=True) == (3, 8)
    assert pos(src, ("tasks",)) == (5, 2)
    assert pos(src, ("tasks", "build")) == (5, 1)
    assert pos(src, ("tasks", "build", "cmd"), value=True) == (6, 7)
    assert ("tasks", "not_a_header") not in src.keys
    assert pos(src, ("tasks", "build", "inputs", 0), value=True) == (11, 3)
    assert pos(src, ("tasks", "build", "inputs", 1), value=True) == (12, 3)
    assert pos(src, ("tasks", "build", "resources", "cpu"), value=True) == (14, 21)
    assert pos(src, ("tasks", "build", "resources", "pools", "net")) == (14, 34)
    assert pos(src, ("tasks", "build", "env")) == (15, 1)
    assert pos(src, ("tasks", "build", "env", "SEED")) == (15, 5)
    assert pos(src, ("tasks", "with space")) == (17, 1)
    assert pos(src, ("tasks", "with space", "quoted key")) == (18, 1)
    assert pos(src, ("arr", 1, "k"), value=True) == (23, 5)


def test_unknown_paths_fall_back_to_the_nearest_enclosing_key():
    _, src = parse_toml("w.toml", TOML)
    assert pos(src, ("tasks", "build", "outputs", 3), value=True) == (5, 1)
    assert pos(src, ("nothing", "here")) == (1, 1)


def test_position_inside_a_string():
    data, src = parse_toml("w.toml", TOML)
    cmd = data["tasks"]["build"]["cmd"]
    assert src.loc_in_string(("tasks", "build", "cmd"), cmd, cmd.index("{input}")) == \
        Location("w.toml", 8, 6)


def test_crlf_line_endings():
    data, src = parse_toml("w.toml", '[tasks.a]\r\ncmd = "x {bad}"\r\n')
    assert pos(src, ("tasks", "a", "cmd"), value=True) == (2, 7)
    assert src.loc_in_string(("tasks", "a", "cmd"), data["tasks"]["a"]["cmd"], 2).col == 10


def test_toml_syntax_error_location():
    with pytest.raises(WorkflowError) as e:
        parse_toml("w.toml", "a = 1\nb = = 2\n")
    assert str(e.value) == "w.toml:2:5: invalid TOML: Invalid value"


def test_toml_integer_with_too_many_digits():
    with pytest.raises(WorkflowError) as e:
        parse_toml("w.toml", "a = 1\nb = " + "9" * 5000 + "\n")
    assert str(e.value).startswith("w.toml:2:5: invalid TOML: Exceeds the limit")


def test_toml_nesting_too_deep():
    with pytest.raises(WorkflowError) as e:
        parse_toml("w.toml", "a = " + "[" * 5000 + "]" * 5000)
    assert str(e.value) == "w.toml:1:1: invalid TOML: nesting too deep"


def test_json_positions():
    text = '{\n  "tasks": {\n    "b\\u0061": {"inputs": ["x", {"k": null}]}\n  },\n  "n": -1.5e3\n}'
    data, src = parse_json("w.json", text)
    assert list(data["tasks"]) == ["ba"]
    assert pos(src, ("tasks",)) == (2, 3)
    assert pos(src, ("tasks", "ba")) == (3, 5)
    assert pos(src, ("tasks", "ba"), value=True) == (3, 16)
    assert pos(src, ("tasks", "ba", "inputs", 1, "k")) == (3, 34)
    assert pos(src, ("tasks", "ba", "inputs", 1, "k"), value=True) == (3, 39)
    assert pos(src, ("n",), value=True) == (5, 8)
    assert pos(src, (), value=True) == (1, 1)


def test_json_duplicate_keys_in_nested_objects_only_count_per_object():
    data, _ = parse_json("w.json", '{"a": {"x": 1}, "b": {"x": 2}}')
    assert data == {"a": {"x": 1}, "b": {"x": 2}}
    with pytest.raises(WorkflowError) as e:
        parse_json("w.json", '{"a": {"x": 1, "x": 2}}')
    assert str(e.value) == "w.json:1:16: duplicate key 'x' (first at line 1, column 8)"


def test_json_errors():
    with pytest.raises(WorkflowError) as e:
        parse_json("w.json", '{"a": [1, 2,]}')
    assert str(e.value) == "w.json:1:13: invalid JSON: Expecting value"
    with pytest.raises(WorkflowError) as e:
        parse_json("w.json", "[" * 100000)
    assert str(e.value) == "w.json:1:1: invalid JSON: nesting too deep"
    with pytest.raises(WorkflowError) as e:
        parse_json("w.json", '{"a":\n ' + "1" * 5000 + "}")
    assert str(e.value).startswith("w.json:2:2: invalid JSON: Exceeds the limit")


def _peak(fn):
    import tracemalloc
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("value", [
    "'''" + "echo 'a' ''b'' \n" * 330_000 + "'''",          # multi-line literal, ~5 MB
    '"""' + 'echo "a" ""b"" \\" \n' * 250_000 + '"""',         # multi-line basic, escapes
    '"' + 'echo \\"a\\" \\t ' * 350_000 + '"',                  # one line, an escape in 3
])
def test_the_scan_of_a_5_mb_string_takes_a_small_multiple_of_the_file(value):
    # It took ~300 bytes per byte of a string (a 50 MB cmd: 14.6 GB), a regex frame per
    # character; now the file, its tokens and little more.
    from gristmill.core.load.tomlpos import scan
    text = f'[tasks.big]\ncmd = {value}\nretries = 2\n\n[tasks.after]\ncmd = "x"\n'
    (keys, values, _), peak = _peak(lambda: scan(text))
    assert peak < 3 * len(text), f"{peak / len(text):.0f} bytes per byte"
    assert values[("tasks", "big", "cmd")] == text.index(value)
    src = Source("g.toml", text, "toml", keys, values)
    line = text[:text.index("retries")].count("\n") + 1
    assert pos(src, ("tasks", "big", "retries")) == (line, 1)
    assert pos(src, ("tasks", "after"))[0] == line + 2


def test_parse_toml_of_a_5_mb_cmd_takes_under_ten_times_the_file():
    value = "'''" + "step --flag 'x' \n" * 300_000 + "'''"
    text = f'[tasks.big]\ncmd = {value}\nretries = 2\n'
    (data, src), peak = _peak(lambda: parse_toml("g.toml", text))
    assert peak < 10 * len(text), f"{peak / len(text):.0f} bytes per byte"
    assert data["tasks"]["big"]["retries"] == 2
    assert pos(src, ("tasks", "big", "retries")) == (text.count("\n"), 1)


def test_the_json_scan_of_a_5_mb_string_takes_a_small_multiple_of_the_file():
    import json
    text = json.dumps({"tasks": {"big": {"cmd": 'echo "a" \\ b ' * 400_000, "retries": 2}}},
                      indent=1)
    (data, src), peak = _peak(lambda: parse_json("g.json", text))
    assert peak < 10 * len(text), f"{peak / len(text):.0f} bytes per byte"
    assert pos(src, ("tasks", "big", "retries")) == (5, 4)     # the key, after 3 spaces
