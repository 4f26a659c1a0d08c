"""Every malformed workflow is a WorkflowError at the exact ``path:line:col``."""

import textwrap
from pathlib import Path

import pytest

from gristmill.core.errors import WorkflowError
from gristmill.core.load.loader import load_workflow


def write(folder: Path, name: str, text: str = "") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error(folder: Path, text: str, name: str = "gristmill.toml", variables=None) -> str:
    write(folder, name, text)
    with pytest.raises(WorkflowError) as e:
        load_workflow(folder / name, variables)
    return str(e.value)


def at(folder: Path, line: int, col: int, message: str, name: str = "gristmill.toml") -> str:
    return f"{folder / name}:{line}:{col}: {message}"


# -- syntax -----------------------------------------------------------------------------

def test_toml_syntax_error(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = "x" y\n') == at(
        tmp_path, 2, 11, "invalid TOML: Expected newline or end of document after a statement")


def test_toml_error_at_end_of_document(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = ') == at(tmp_path, 2, 7, "invalid TOML: Invalid value")


def test_toml_duplicate_key_points_at_the_second(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = "x"\n  cmd = "y"\n') == at(
        tmp_path, 3, 3, "tasks.a.cmd is defined twice (first at line 2, column 1)")


def test_toml_duplicate_table(tmp_path):
    assert error(tmp_path, '[tasks.a]\n\n[tasks.a]\n') == at(
        tmp_path, 3, 1, "tasks.a is defined twice (first at line 1, column 1)")


def test_json_syntax_error(tmp_path):
    assert error(tmp_path, '{\n  "tasks": {,}\n}', "gristmill.json") == at(
        tmp_path, 2, 13, "invalid JSON: Expecting property name enclosed in double quotes",
        "gristmill.json")


def test_json_duplicate_key(tmp_path):
    text = '{"tasks": {\n  "a": {},\n  "a": {"cmd": "x"}\n}}'
    assert error(tmp_path, text, "gristmill.json") == at(
        tmp_path, 3, 3, "duplicate key 'a' (first at line 2, column 3)", "gristmill.json")


@pytest.mark.parametrize("text, line, col, escape", [
    ('{"tasks": {\n  "a\\ud800": {"cmd": "true"}}}', 2, 5, "\\ud800"),
    ('{"tasks": {"a": {\n "cmd": "echo \\\\ud800 \\udc00x"}}}', 2, 23, "\\udc00"),
    ('{"tasks": {"a": {"cmd": "\\ud83d\\ude00 \\uD83D"}}}', 1, 39, "\\uD83D"),
])
def test_json_lone_surrogate_is_an_error_at_its_escape(tmp_path, text, line, col, escape):
    assert error(tmp_path, text, "gristmill.json") == at(
        tmp_path, line, col, f"invalid JSON: {escape} is half of a UTF-16 surrogate pair, "
        "not a character", "gristmill.json")


def test_json_surrogate_pairs_and_escaped_backslashes_load(tmp_path):
    write(tmp_path, "gristmill.json", '{"tasks": {"a": {"cmd": "echo \\ud83d\\ude00 \\\\ud800"}}}')
    assert load_workflow(tmp_path / "gristmill.json").tasks["a"].commands == ("echo 😀 \\ud800",)


def test_json_top_level_must_be_an_object(tmp_path):
    (tmp_path / "gristmill.json").write_text('\n  [1]')
    with pytest.raises(WorkflowError) as e:
        load_workflow(tmp_path)
    assert str(e.value) == at(tmp_path, 2, 3, "expected an object at the top level, got an array",
                              "gristmill.json")


def test_not_utf8(tmp_path):
    (tmp_path / "gristmill.toml").write_bytes(b'[tasks.a]\ncmd = "\xff"\n')
    with pytest.raises(WorkflowError) as e:
        load_workflow(tmp_path)
    assert str(e.value) == at(tmp_path, 2, 8, "not valid UTF-8 text")


def test_folder_without_a_workflow(tmp_path):
    with pytest.raises(WorkflowError) as e:
        load_workflow(tmp_path)
    assert str(e.value) == (f"{tmp_path}: no workflow file here: expected gristmill.toml, "
                            "gristmill.json or a Makefile")
    with pytest.raises(WorkflowError) as e:
        load_workflow(tmp_path / "nope.toml")
    assert str(e.value) == f"{tmp_path / 'nope.toml'}: no such file or folder"


# -- unknown keys -----------------------------------------------------------------------

def test_unknown_top_level_key(tmp_path):
    assert error(tmp_path, '[task.a]\ncmd = "x"\n') == at(
        tmp_path, 1, 2, "unknown key 'task' (did you mean 'tasks'?)")


def test_unknown_task_key(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmdd = "x"\n') == at(
        tmp_path, 2, 1, "unknown key 'cmdd' in tasks.a (did you mean 'cmd'?)")


def test_unknown_key_without_a_close_match(tmp_path):
    assert error(tmp_path, '[tasks.a]\nzzz = 1\n') == at(tmp_path, 2, 1, "unknown key 'zzz' in tasks.a")


def test_unknown_key_in_an_inline_table(tmp_path):
    assert error(tmp_path, '[tasks.a]\nresources = { cpu = 1, memory = "1GB" }\n') == at(
        tmp_path, 2, 24, "unknown key 'memory' in tasks.a.resources (did you mean 'mem'?)")


def test_unknown_key_in_workflow_and_capacity(tmp_path):
    assert error(tmp_path, '[workflow]\nincludes = []\n') == at(
        tmp_path, 2, 1, "unknown key 'includes' in workflow (did you mean 'include'?)")
    assert error(tmp_path, '[capacity]\ngpus = 1\n') == at(
        tmp_path, 2, 1, "unknown key 'gpus' in capacity (did you mean 'gpu'?)")


@pytest.mark.parametrize("value, col, message", [
    ('10', 22, 'capacity.gpu_mem_used_below: expected a percentage such as "10%", got 10'),
    ('"ten%"', 22,
     "capacity.gpu_mem_used_below: expected a percentage such as \"10%\", got 'ten%'"),
    ('"0%"', 22,
     "capacity.gpu_mem_used_below: a percentage must be more than 0% and at most 100%, "
     "got '0%'"),
])
def test_gpu_mem_used_below_is_a_percentage(tmp_path, value, col, message):
    assert error(tmp_path, f'[capacity]\ngpu_mem_used_below = {value}\n') == at(
        tmp_path, 2, col, message)


def test_a_gpu_request_with_capacity_gpu_0_is_an_error_at_load(tmp_path):
    text = '[capacity]\ngpu = 0\n[tasks.a]\ncmd = "x"\nresources = { gpu_mem = "1GB" }\n'
    assert error(tmp_path, text) == at(
        tmp_path, 5, 25, "task 'a' asks for a GPU but [capacity] has gpu = 0")
    text = '[capacity]\ngpu = 1\n[tasks.a]\ncmd = "x"\nresources = { gpu = 2 }\n'
    assert error(tmp_path, text) == at(
        tmp_path, 5, 21, "task 'a' asks for gpu = 2 but [capacity] has gpu = 1")


def test_unknown_key_in_json(tmp_path):
    text = '{\n  "tasks": {\n    "a": {"cmd": "x", "output": []}\n  }\n}'
    assert error(tmp_path, text, "gristmill.json") == at(
        tmp_path, 3, 23, "unknown key 'output' in tasks.a (did you mean 'outputs'?)",
        "gristmill.json")


# -- wrong types ------------------------------------------------------------------------

@pytest.mark.parametrize("line, col, message", [
    ('cmd = 5', 7, "tasks.a.cmd: expected a string or an array of strings, got an integer (5)"),
    ('cmd = ["a", 2]', 13, "tasks.a.cmd[1]: expected a string, got an integer (2)"),
    ('inputs = { a = 1 }', 10,
     "tasks.a.inputs: expected a string or an array of strings, got a table"),
    ('phony = "yes"', 9, "tasks.a.phony: expected a boolean (true or false), got a string ('yes')"),
    ('retries = 1.5', 11, "tasks.a.retries: expected a non-negative integer, got a number (1.5)"),
    ('retries = true', 11,
     "tasks.a.retries: expected a non-negative integer, got a boolean (true)"),
    ('resources = { cpu = "two" }', 21,
     "tasks.a.resources.cpu: expected a non-negative number, got a string ('two')"),
    ('resources = { gpu = 1.5 }', 21,
     "tasks.a.resources.gpu: gpu = 1.5: more than one GPU must be a whole number (a share is "
     "less than 1, such as 0.25)"),
    ('resources = { gpu = "1" }', 21,
     "tasks.a.resources.gpu: expected a number such as 1 or 0.25, got a string ('1')"),
    ('resources = { gpu = -0.5 }', 21, "tasks.a.resources.gpu: gpu must be 0 or more, got -0.5"),
    ('resources = { gpu_mem = 20 }', 25,
     "tasks.a.resources.gpu_mem: size 20 has no unit: add one of B, KB, MB, GB, TB, KiB, MiB, "
     'GiB, TiB (e.g. "20MB" or "20GB")'),
    ('resources = 4', 13, "tasks.a.resources: expected a table, got an integer (4)"),
    ('env = { A = [1] }', 13, "tasks.a.env.A: expected a string, got an array"),
    ('description = 1979-05-27', 15, "tasks.a.description: expected a string, got a date"),
    ('foreach = 3', 11, "tasks.a.foreach: expected a glob string or an array of strings, "
                        "got an integer (3)"),
    ('cwd = false', 7, "tasks.a.cwd: expected a string, got a boolean (false)"),
])
def test_wrong_types_in_a_task(tmp_path, line, col, message):
    assert error(tmp_path, f'[tasks.a]\n{line}\n') == at(tmp_path, 2, col, message)


def test_a_task_must_be_a_table(tmp_path):
    assert error(tmp_path, '[tasks]\na = "echo"\n') == at(
        tmp_path, 2, 5, "tasks.a: expected a table, got a string ('echo')")


def test_wrong_types_at_the_top(tmp_path):
    assert error(tmp_path, 'tasks = []\n') == at(tmp_path, 1, 9, "tasks: expected a table, got an array")
    assert error(tmp_path, '[workflow]\nname = 3\n') == at(
        tmp_path, 2, 8, "workflow.name: expected a string, got an integer (3)")
    assert error(tmp_path, '[pools]\nnet = 0\n') == at(
        tmp_path, 2, 7, "pools.net: expected a positive integer, got 0")
    assert error(tmp_path, '[capacity]\ncpu = -2\n') == at(
        tmp_path, 2, 7, "capacity.cpu: expected a positive number, got -2")
    assert error(tmp_path, '[vars]\nv = [1, 2]\n') == at(
        tmp_path, 2, 5, 'vars.v: expected a string, number or boolean, or '
        '{ json = "file.json", path = "a.b" }, got an array')


def test_wrong_type_in_json(tmp_path):
    text = '{"tasks": {"a": {\n  "outputs": ["x", null]}}}'
    assert error(tmp_path, text, "gristmill.json") == at(
        tmp_path, 2, 20, "tasks.a.outputs[1]: expected a string, got null", "gristmill.json")


def test_bad_task_name(tmp_path):
    assert error(tmp_path, '[tasks."a b"]\n') == at(
        tmp_path, 1, 1, "bad task name 'a b': a name cannot be empty or hold spaces, brackets "
        "or braces")


# -- sizes, durations, numbers ----------------------------------------------------------

def test_bad_size(tmp_path):
    assert error(tmp_path, '[tasks.a]\nresources = { mem = "lots" }\n') == at(
        tmp_path, 2, 21, "tasks.a.resources.mem: bad size 'lots': use a number with B, KB, MB, "
        "GB, TB (or KiB, MiB, GiB, TiB)")
    assert error(tmp_path, '[capacity]\nmem = "1 XB"\n') == at(
        tmp_path, 2, 7, "capacity.mem: bad size '1 XB': use a number with B, KB, MB, GB, TB "
        "(or KiB, MiB, GiB, TiB)")


UNITS = 'add one of B, KB, MB, GB, TB, KiB, MiB, GiB, TiB (e.g. "1MB" or "1GB")'


@pytest.mark.parametrize("value", ['1', '"1"', '" 1 "'])
def test_a_size_without_a_unit_is_an_error_naming_the_units(tmp_path, value):
    shown = "1" if value == "1" else "'1'"
    assert error(tmp_path, f'[tasks.a]\nresources = {{ mem = {value} }}\n') == at(
        tmp_path, 2, 21, f"tasks.a.resources.mem: size {shown} has no unit: {UNITS}")
    assert error(tmp_path, f'[capacity]\nmem = {value}\n') == at(
        tmp_path, 2, 7, f"capacity.mem: size {shown} has no unit: {UNITS}")


def test_a_size_without_a_unit_in_json_points_at_it(tmp_path):
    text = '{"tasks": {"a": {\n  "resources": {"mem": 1}\n}}}'
    assert error(tmp_path, text, "gristmill.json") == at(
        tmp_path, 2, 24, f"tasks.a.resources.mem: size 1 has no unit: {UNITS}", "gristmill.json")


def test_zero_and_sizes_with_a_unit_need_no_more(tmp_path):
    write(tmp_path, "gristmill.toml", '[tasks.a]\nresources = { mem = 0 }\n'
          '[tasks.b]\nresources = { mem = "512B" }\n[tasks.c]\nresources = { mem = "1GB" }\n')
    wf = load_workflow(tmp_path / "gristmill.toml")
    assert [wf.tasks[n].resources.mem for n in "abc"] == [0, 512, 1_000_000_000]


def test_bad_duration(tmp_path):
    assert error(tmp_path, '[tasks.a]\ntimeout = "soon"\n') == at(
        tmp_path, 2, 11, "tasks.a.timeout: bad duration 'soon': use e.g. \"90s\", \"30m\", "
        "\"1h30m\", \"2d\"")
    assert error(tmp_path, '[tasks.a]\ntimeout = "0s"\n') == at(
        tmp_path, 2, 11, "tasks.a.timeout: a timeout must be longer than 0 seconds")


def test_negative_retries(tmp_path):
    assert error(tmp_path, '[tasks.a]\nretries = -1\n') == at(
        tmp_path, 2, 11, "tasks.a.retries: expected a non-negative integer, got -1")


def test_huge_numbers_do_not_break_messages(tmp_path):
    assert error(tmp_path, f'[tasks.a]\nretries = -{"9" * 30}\n') == at(
        tmp_path, 2, 11, "tasks.a.retries: expected a non-negative integer, got a very large "
        "negative integer")
    assert error(tmp_path, f'[tasks.a]\nresources = {{ cpu = 1e999 }}\n') == at(
        tmp_path, 2, 21, "tasks.a.resources.cpu: expected a non-negative number, got inf")


# -- outputs and inputs -----------------------------------------------------------------

def test_two_tasks_writing_one_output(tmp_path):
    text = '[tasks.a]\noutputs = ["out.txt"]\n[tasks.b]\noutputs = ["x", "./out.txt"]\n'
    assert error(tmp_path, text) == at(
        tmp_path, 4, 17, f"tasks 'a' (declared at {tmp_path / 'gristmill.toml'}:1:1) and 'b' "
        "both write output 'out.txt'")


def test_two_instances_writing_one_output(tmp_path):
    text = '[tasks.a]\nforeach = ["x/1", "y/1"]\noutputs = ["out/{name}"]\n'
    assert error(tmp_path, text) == at(
        tmp_path, 3, 12, f"tasks 'a[x/1]' (declared at {tmp_path / 'gristmill.toml'}:1:1) and "
        "'a[y/1]' both write output 'out/1'")


def test_missing_input(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.c").touch()
    text = '[tasks.a]\ninputs = ["src/main.c", "src/mian.c"]\n'
    assert error(tmp_path, text) == at(
        tmp_path, 2, 25, "input 'src/mian.c' of task 'a' neither exists nor is produced by any "
        "task (did you mean 'src/main.c'?)")


def test_missing_input_of_a_fan_out_instance(tmp_path):
    text = '[tasks.a]\nforeach = ["x"]\ninputs = ["{item}.txt"]\n'
    assert error(tmp_path, text) == at(
        tmp_path, 3, 11, "input 'x.txt' of task 'a[x]' neither exists nor is produced by any task")


def test_an_output_cannot_be_the_folder(tmp_path):
    assert error(tmp_path, '[tasks.a]\noutputs = ["x/.."]\n') == at(
        tmp_path, 2, 12, "output 'x/..' of task 'a' is the workflow folder itself, not a file")


def test_empty_path(tmp_path):
    assert error(tmp_path, '[tasks.a]\ninputs = [""]\n') == at(
        tmp_path, 2, 11, "tasks.a.inputs[0]: a path cannot be empty")


def test_bad_glob(tmp_path):
    assert error(tmp_path, '[tasks.a]\ninputs = ["x[z-a].txt"]\n').startswith(
        at(tmp_path, 2, 11, "bad glob pattern 'x[z-a].txt': bad character range z-a"))


# -- after, default ---------------------------------------------------------------------

def test_after_unknown_task(tmp_path):
    text = '[tasks.fetch]\n[tasks.b]\nafter = ["fecth"]\n'
    assert error(tmp_path, text) == at(
        tmp_path, 3, 10, "after: unknown task 'fecth' (did you mean 'fetch'?)")


def test_default_unknown_task(tmp_path):
    text = '[workflow]\ndefault = ["all"]\n[tasks.a]\n'
    assert error(tmp_path, text) == at(tmp_path, 2, 12, "default: unknown task 'all'")


# -- pools and capacity -----------------------------------------------------------------

def test_undeclared_pool(tmp_path):
    text = '[pools]\nnetwork = 2\n[tasks.a]\nresources = { pools = { netwrok = 1 } }\n'
    assert error(tmp_path, text) == at(
        tmp_path, 4, 25, "unknown pool 'netwrok' (did you mean 'network'?)")
    text = '[tasks.a]\nresources = { pools = { gpu = 1 } }\n'
    assert error(tmp_path, text) == at(tmp_path, 2, 25, "unknown pool 'gpu'; declare it in [pools]")


def test_pool_request_above_its_size(tmp_path):
    text = '[pools]\nnetwork = 2\n[tasks.a]\nresources = { pools = { network = 3 } }\n'
    assert error(tmp_path, text) == at(
        tmp_path, 4, 35, "task 'a' asks for 3 of pool 'network', which has 2")


@pytest.mark.parametrize("resources, col, message", [
    ("{ cpu = 16 }", 21, "task 'a' asks for cpu = 16 but [capacity] has cpu = 8"),
    ('{ mem = "64GB" }', 21, "task 'a' asks for mem = 64.0 GB but [capacity] has mem = 32.0 GB"),
    ("{ gpu = 2 }", 21, "task 'a' asks for gpu = 2 but [capacity] has gpu = 1"),
])
def test_task_above_declared_capacity(tmp_path, resources, col, message):
    text = f'[capacity]\ncpu = 8\nmem = "32GB"\ngpu = 1\n[tasks.a]\nresources = {resources}\n'
    assert error(tmp_path, text) == at(tmp_path, 6, col, message)


def test_default_cpu_above_declared_capacity_points_at_the_task(tmp_path):
    assert error(tmp_path, '[capacity]\ncpu = 0.5\n\n[tasks.a]\n') == at(
        tmp_path, 4, 1, "task 'a' asks for cpu = 1 but [capacity] has cpu = 0.5")


def test_pools_declared_twice_with_different_sizes(tmp_path):
    write(tmp_path, "inc.toml", "[pools]\nnet = 3\n")
    text = '[workflow]\ninclude = ["inc.toml"]\n[pools]\nnet = 2\n'
    assert error(tmp_path, text) == at(
        tmp_path, 2, 7, f"pool 'net' is already declared with size 2 at "
        f"{tmp_path / 'gristmill.toml'}:4:1", "inc.toml")


# -- includes ---------------------------------------------------------------------------

def test_missing_include(tmp_path):
    assert error(tmp_path, '[workflow]\ninclude = ["ml/gristmill.toml"]\n') == at(
        tmp_path, 2, 12, "included file 'ml/gristmill.toml' not found")


def test_include_of_a_folder_without_a_workflow(tmp_path):
    (tmp_path / "ml").mkdir()
    assert error(tmp_path, '[workflow]\ninclude = ["ml"]\n') == at(
        tmp_path, 2, 12, "included folder 'ml' has no gristmill.toml or gristmill.json")


def test_include_of_another_kind_of_file(tmp_path):
    write(tmp_path, "rules.mk", "all:\n")
    assert error(tmp_path, '[workflow]\ninclude = ["rules.mk"]\n') == at(
        tmp_path, 2, 12, "cannot include 'rules.mk': only .toml and .json files can be included")


def test_a_file_including_itself(tmp_path):
    assert error(tmp_path, '[workflow]\ninclude = ["./gristmill.toml"]\n') == at(
        tmp_path, 2, 12, f"{tmp_path / 'gristmill.toml'} includes itself")


def test_include_cycle(tmp_path):
    write(tmp_path, "a.toml", '[workflow]\ninclude = ["sub/b.toml"]\n')
    write(tmp_path, "sub/b.toml", '[workflow]\n\ninclude = ["../gristmill.toml"]\n')
    main = tmp_path / "gristmill.toml"
    assert error(tmp_path, '[workflow]\ninclude = ["a.toml"]\n') == at(
        tmp_path, 3, 12, f"include cycle: {main} -> {tmp_path / 'a.toml'} -> "
        f"{tmp_path / 'sub/b.toml'} -> {main}", "sub/b.toml")


def test_task_declared_in_two_files(tmp_path):
    write(tmp_path, "inc.json", '{"tasks": {\n "build": {}}}')
    text = '[workflow]\ninclude = ["inc.json"]\n[tasks.build]\n'
    assert error(tmp_path, text) == at(
        tmp_path, 2, 2, f"task 'build' is already declared at {tmp_path / 'gristmill.toml'}:3:1",
        "inc.json")


def test_errors_in_an_included_file_name_that_file(tmp_path):
    write(tmp_path, "inc.toml", '[tasks.x]\nphony = 1\n')
    assert error(tmp_path, '[workflow]\ninclude = ["inc.toml"]\n') == at(
        tmp_path, 2, 9, "tasks.x.phony: expected a boolean (true or false), got an integer (1)",
        "inc.toml")


# -- cycles -----------------------------------------------------------------------------

def test_dependency_cycle_through_files(tmp_path):
    text = ('[tasks.a]\ninputs = ["c.out"]\noutputs = ["a.out"]\n'
            '[tasks.b]\ninputs = ["a.out"]\noutputs = ["b.out"]\n'
            '[tasks.c]\ninputs = ["b.out"]\noutputs = ["c.out"]\n')
    assert error(tmp_path, text) == at(tmp_path, 1, 1, "dependency cycle: a -> b -> c -> a")


def test_dependency_cycle_through_after(tmp_path):
    text = '[tasks.a]\nafter = ["b"]\n[tasks.b]\nafter = ["a"]\n'
    assert error(tmp_path, text) == at(tmp_path, 1, 1, "dependency cycle: a -> b -> a")


def test_fan_outs_that_feed_each_other_without_end(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.a").touch()
    text = ('[tasks.p]\nforeach = "d/*.a"\noutputs = ["d/{name}.b"]\n'
            '[tasks.q]\nforeach = "d/*.b"\noutputs = ["d/{name}.a"]\n')
    assert error(tmp_path, text) == at(
        tmp_path, 5, 11, "foreach of task 'q' keeps matching new outputs of task 'p': "
        "fan-outs that feed each other never end")


# -- placeholders -----------------------------------------------------------------------

def test_unknown_placeholder_points_inside_the_string(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = "cc {inptu} -o x"\n') == at(
        tmp_path, 2, 11, "unknown placeholder '{inptu}' (did you mean 'input'?)")


def test_unknown_placeholder_in_a_multi_line_string(tmp_path):
    text = '[tasks.a]\ncmd = """\nstep one\nawk {print}\n"""\n'
    assert error(tmp_path, text) == at(
        tmp_path, 4, 5, "unknown placeholder '{print}' (write '{{' and '}}' for literal braces)")


def test_unknown_placeholder_in_a_list_element(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = ["ok", "x {bad}"]\n') == at(
        tmp_path, 2, 17, "unknown placeholder '{bad}' (write '{{' and '}}' for literal braces)")


def test_placeholder_after_an_escape_points_at_the_string(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = "\\t {bad}"\n') == at(
        tmp_path, 2, 7, "unknown placeholder '{bad}' (write '{{' and '}}' for literal braces)")


def test_unknown_variable(tmp_path):
    text = '[vars]\nsize = 1\n[tasks.a]\noutputs = ["out-{vars.sise}"]\n'
    assert error(tmp_path, text) == at(
        tmp_path, 4, 17, "unknown variable 'sise' in '{vars.sise}' (did you mean 'size'?)")


def test_item_placeholder_without_foreach(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = "echo {stem}"\n') == at(
        tmp_path, 2, 13, "'{stem}' needs foreach: task 'a' has no fan-out")


def test_file_placeholders_only_in_cmd(tmp_path):
    assert error(tmp_path, '[tasks.a]\noutputs = ["{input}.o"]\n') == at(
        tmp_path, 2, 13, "'{input}' cannot be used in outputs, only in cmd")


def test_input_placeholder_without_inputs(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = "cat {input}"\n') == at(
        tmp_path, 2, 12, "'{input}' in cmd, but task 'a' has no inputs")
    assert error(tmp_path, '[tasks.a]\ncmd = ["x", "cp a {output}"]\n') == at(
        tmp_path, 2, 19, "'{output}' in cmd, but task 'a' has no outputs")


def test_only_vars_in_foreach(tmp_path):
    assert error(tmp_path, '[tasks.a]\nforeach = ["{item}"]\n') == at(
        tmp_path, 2, 13, "'{item}' cannot be used in foreach, only {vars.NAME}")


def test_unmatched_brace(tmp_path):
    assert error(tmp_path, '[tasks.a]\ncmd = "echo ${HOME"\n') == at(
        tmp_path, 2, 14, "unmatched '{' (write '{{' for a literal brace)")


def test_placeholder_error_in_json_points_inside_the_string(tmp_path):
    text = '{"tasks": {"a": {\n  "cmd": "run {vars.x}"}}}'
    assert error(tmp_path, text, "gristmill.json") == at(
        tmp_path, 2, 15, "unknown variable 'x' in '{vars.x}'", "gristmill.json")


# -- foreach ----------------------------------------------------------------------------

def test_duplicate_foreach_item(tmp_path):
    assert error(tmp_path, '[tasks.a]\nforeach = ["x", "y", "x"]\n') == at(
        tmp_path, 2, 22, "tasks.a.foreach[2]: item 'x' is already listed (at line 2, column 12)")


def test_empty_foreach_glob(tmp_path):
    assert error(tmp_path, '[tasks.a]\nforeach = ""\n') == at(
        tmp_path, 2, 11, "tasks.a.foreach: a glob cannot be empty")


# -- vars from JSON ---------------------------------------------------------------------

def test_json_var_file_missing(tmp_path):
    assert error(tmp_path, '[vars]\nm = { json = "conf.json", path = "a" }\n') == at(
        tmp_path, 2, 14, "JSON file 'conf.json' not found")


def test_json_var_key_missing(tmp_path):
    write(tmp_path, "conf.json", '{"model": {"name": "x"}}')
    assert error(tmp_path, '[vars]\nm = { json = "conf.json", path = "model.nmae" }\n') == at(
        tmp_path, 2, 34, "conf.json has no key 'nmae' in model (did you mean 'name'?)")


def test_json_var_not_a_scalar(tmp_path):
    write(tmp_path, "conf.json", '{"model": {"layers": [1, 2]}}')
    assert error(tmp_path, '[vars]\nm = { json = "conf.json", path = "model.layers" }\n') == at(
        tmp_path, 2, 34, "conf.json: model.layers is an array; expected a string, number or boolean")
    assert error(tmp_path, '[vars]\nm = { json = "conf.json", path = "model.layers.5" }\n') == at(
        tmp_path, 2, 34, "conf.json: '5' is not an index of the array at model.layers "
        "(it has 2 items)")


def test_json_var_needs_a_file(tmp_path):
    assert error(tmp_path, '[vars]\nm = { path = "a" }\n') == at(
        tmp_path, 2, 1, 'vars.m: a value read from JSON needs json = "file.json"')
    assert error(tmp_path, '[vars]\nm = { json = "a.json", pth = "a" }\n') == at(
        tmp_path, 2, 24, "unknown key 'pth' in vars.m (did you mean 'path'?)")


def test_syntax_error_in_a_json_var_file_names_that_file(tmp_path):
    write(tmp_path, "conf.json", '{\n  "a": tru\n}')
    assert error(tmp_path, '[vars]\nm = { json = "conf.json", path = "a" }\n') == at(
        tmp_path, 2, 8, "invalid JSON: Expecting value", "conf.json")


# -- every error of a file, in one pass -------------------------------------------------

def test_every_error_of_a_file_is_told_in_one_pass_in_file_order(tmp_path):
    write(tmp_path, "more.toml", '''
        [tasks.two]
        cmd = "x"
        phony = "yes"
        ''')
    text = error(tmp_path, '''
        [workflow]
        include = ["more.toml"]
        nmae = "w"

        [tasks.one]
        cmd = "touch out"
        timeout = -1
        ouputs = ["out"]
        retires = 3
        resources = { cpu = "a", mem = 1 }

        [capacity]
        cpu = 0
        ''')
    more = tmp_path / "more.toml"
    assert text.splitlines() == [
        at(tmp_path, 3, 1, "unknown key 'nmae' in workflow (did you mean 'name'?)"),
        at(tmp_path, 7, 11, "tasks.one.timeout: bad duration: -1"),
        at(tmp_path, 8, 1, "unknown key 'ouputs' in tasks.one (did you mean 'outputs'?)"),
        at(tmp_path, 9, 1, "unknown key 'retires' in tasks.one (did you mean 'retries'?)"),
        at(tmp_path, 10, 21, "tasks.one.resources.cpu: expected a non-negative number, "
                             "got a string ('a')"),
        at(tmp_path, 10, 32, 'tasks.one.resources.mem: size 1 has no unit: add one of B, KB, '
                             'MB, GB, TB, KiB, MiB, GiB, TiB (e.g. "1MB" or "1GB")'),
        at(tmp_path, 13, 7, "capacity.cpu: expected a positive number, got 0"),
        f"{more}:3:9: tasks.two.phony: expected a boolean (true or false), got a string ('yes')",
    ]


def test_the_errors_of_a_json_file_are_all_told_too(tmp_path):
    text = error(tmp_path, '{"tasks": {\n  "a": {"cmd": "x", "ouputs": []},\n'
                           '  "b": {"retires": 1}\n}}', "gristmill.json")
    assert text.splitlines() == [
        at(tmp_path, 2, 21, "unknown key 'ouputs' in tasks.a (did you mean 'outputs'?)",
           "gristmill.json"),
        at(tmp_path, 3, 9, "unknown key 'retires' in tasks.b (did you mean 'retries'?)",
           "gristmill.json"),
    ]


def test_a_file_with_many_errors_lists_twenty_and_counts_the_rest(tmp_path):
    from gristmill.core.errors import WorkflowErrors
    path = write(tmp_path, "gristmill.toml", "".join(
        f'[tasks.t{i}]\ncmd = "x"\nretires = 1\n\n' for i in range(25)))
    with pytest.raises(WorkflowErrors) as e:
        load_workflow(path)
    assert len(e.value.errors) == 25
    lines = str(e.value).splitlines()
    assert len(lines) == 21 and lines[-1] == "… and 5 more errors"
    assert lines[0] == at(tmp_path, 3, 1, "unknown key 'retires' in tasks.t0 "
                                          "(did you mean 'retries'?)")
    assert lines[19].startswith(f"{path}:79:1: unknown key 'retires' in tasks.t19 ")
    # the first error is the error's own place, as for one error
    assert str(e.value.location) == f"{path}:3:1"


def test_once_the_tasks_are_sound_every_missing_input_unknown_after_and_default_is_told(tmp_path):
    import pickle
    from gristmill.core.errors import WorkflowErrors
    path = write(tmp_path, "gristmill.toml", '''
        [workflow]
        default = ["build", "nope"]

        [tasks.build]
        cmd = "touch out"
        inputs = ["missing.txt"]
        outputs = ["out"]
        after = ["fetc"]

        [tasks.fetch]
        cmd = "x"
        inputs = ["gone.csv"]
        ''')
    with pytest.raises(WorkflowErrors) as e:
        load_workflow(path)
    assert str(e.value).splitlines() == [
        at(tmp_path, 2, 21, "default: unknown task 'nope'"),
        at(tmp_path, 6, 11, "input 'missing.txt' of task 'build' neither exists nor is "
                            "produced by any task"),
        at(tmp_path, 8, 10, "after: unknown task 'fetc' (did you mean 'fetch'?)"),
        at(tmp_path, 12, 11, "input 'gone.csv' of task 'fetch' neither exists nor is produced "
                             "by any task"),
    ]
    again = pickle.loads(pickle.dumps(e.value))
    assert str(again) == str(e.value) and again.location == e.value.location
