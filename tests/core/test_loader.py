"""Loading gristmill.toml / gristmill.json: every feature, with real files in tmp_path."""

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from gristmill.core.errors import Location
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.load.loader import find_workflow_file, load_workflow
from gristmill.core.workflow import CapacityOverride, Resources


def write(folder: Path, name: str, text: str = "") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def touch(folder: Path, *names: str) -> None:
    for name in names:
        write(folder, name)


DESIGN_EXAMPLE = """
[workflow]
name = "thumbnails"
default = ["train"]

[vars]
size = 256
model = { json = "config/model.json", path = "model.name" }

[pools]
network = 2

[capacity]
cpu = 8
mem = "32GB"
gpu = 1

[tasks.thumb]
foreach = "images/*.png"
cmd = "python resize.py {input} {output} --size {vars.size}"
inputs = ["{item}", "resize.py"]
outputs = ["thumbs/{stem}.png"]
resources = { cpu = 1, mem = "300MB" }

[tasks.fetch]
cmd = "curl -o data.bin https://example.org/{vars.model}"
outputs = ["data.bin"]
resources = { pools = { network = 1 } }

[tasks.train]
cmd = ["python train.py", "python check.py model.pt"]
inputs = ["train.py", "thumbs/*.png"]
after = ["fetch"]
outputs = ["model.pt"]
resources = { cpu = 2, mem = "4GB", gpu = 1, pools = { network = 1 } }
retries = 2
timeout = "30m"
env = { SEED = "1" }
cwd = "."
description = "Train the model"

[tasks.clean]
cmd = "rm -rf thumbs model.pt"
phony = true
"""


@pytest.fixture
def example(tmp_path):
    write(tmp_path, "gristmill.toml", DESIGN_EXAMPLE)
    write(tmp_path, "config/model.json", '{"model": {"name": "resnet", "layers": 50}}')
    touch(tmp_path, "images/a.png", "images/b.png", "resize.py", "train.py")
    return tmp_path


# -- finding the file -------------------------------------------------------------------

def test_find_workflow_file_order(tmp_path):
    assert find_workflow_file(tmp_path) is None
    names = ["Makefile", "makefile", "GNUmakefile", "gristmill.json", "gristmill.toml"]
    for name in names:
        touch(tmp_path, name)
    for name in reversed(names):
        found = find_workflow_file(tmp_path)
        assert found == tmp_path / name
        found.unlink()
    assert find_workflow_file(tmp_path / "missing") is None


def test_find_workflow_file_ignores_a_folder_named_like_one(tmp_path):
    (tmp_path / "gristmill.toml").mkdir()
    touch(tmp_path, "Makefile")
    assert find_workflow_file(tmp_path) == tmp_path / "Makefile"


def test_makefiles_go_to_the_makefile_reader(tmp_path, monkeypatch):
    import gristmill.core.makefile as makefile
    seen = []
    monkeypatch.setattr(makefile, "load_makefile", lambda p, v, goals=(): seen.append((p, v)) or "wf")
    touch(tmp_path, "Makefile", "rules.mk")
    assert load_workflow(tmp_path, {"A": "1"}) == "wf"
    assert load_workflow(tmp_path / "rules.mk") == "wf"
    assert seen == [(tmp_path / "Makefile", {"A": "1"}), (tmp_path / "rules.mk", None)]


# -- the example of the original design document -------------------------------------

def test_design_example_workflow(example):
    wf = load_workflow(example)
    assert wf.name == "thumbnails"
    assert wf.kind == "toml"
    assert wf.path == example / "gristmill.toml"
    assert wf.root == example
    assert wf.files == (example / "gristmill.toml", example / "config/model.json")
    assert list(wf.tasks) == ["thumb[images/a.png]", "thumb[images/b.png]", "fetch", "train",
                              "clean"]
    assert wf.default == ("train",)
    assert dict(wf.pools) == {"network": 2}
    assert wf.capacity == CapacityOverride(cpu=8.0, mem=32_000_000_000, gpu=1)
    assert dict(wf.vars) == {"size": 256, "model": "resnet"}
    assert wf.warnings == ()


def test_design_example_fan_out(example):
    wf = load_workflow(example)
    a = wf.tasks["thumb[images/a.png]"]
    assert a.group == "thumb" and a.item == "images/a.png"
    assert a.commands == ("python resize.py images/a.png thumbs/a.png --size 256",)
    assert a.inputs == ("images/a.png", "resize.py")
    assert a.outputs == ("thumbs/a.png",)
    assert a.resources == Resources(cpu=1.0, mem=300_000_000)
    assert a.cwd == str(example)
    assert a.location == Location(str(example / "gristmill.toml"), 17, 1)
    assert wf.groups()["thumb"] == ("thumb[images/a.png]", "thumb[images/b.png]")


def test_design_example_plain_tasks(example):
    wf = load_workflow(example)
    train = wf.tasks["train"]
    assert train.group == "train" and train.item is None
    assert train.commands == ("python train.py", "python check.py model.pt")
    assert train.inputs == ("train.py", "thumbs/a.png", "thumbs/b.png")   # glob over outputs
    assert train.outputs == ("model.pt",)
    assert train.after == ("fetch",)
    assert train.resources == Resources(cpu=2.0, mem=4_000_000_000, gpu=1, pools=(("network", 1),))
    assert (train.retries, train.timeout, train.env) == (2, 1800.0, (("SEED", "1"),))
    assert train.description == "Train the model"
    assert wf.tasks["fetch"].commands == ("curl -o data.bin https://example.org/resnet",)
    assert wf.tasks["clean"].phony and not train.phony
    graph = TaskGraph(wf)
    assert set(graph.deps("train")) == {"fetch", "thumb[images/a.png]", "thumb[images/b.png]"}


def test_default_is_every_task_that_is_not_phony(example):
    text = (example / "gristmill.toml").read_text().replace('default = ["train"]\n', "")
    write(example, "gristmill.toml", text)
    wf = load_workflow(example)
    assert wf.default == ("thumb[images/a.png]", "thumb[images/b.png]", "fetch", "train")


def test_a_workflow_of_phony_tasks_alone_defaults_to_every_task(tmp_path):
    # Issue 19: with no default and nothing but phony tasks, F5 and `run` ran nothing.
    write(tmp_path, "gristmill.toml", '[tasks.hello]\ncmd = "echo hi"\nphony = true\n\n'
                                      '[tasks.bye]\ncmd = "echo bye"\nphony = true\n')
    assert load_workflow(tmp_path).default == ("hello", "bye")
    write(tmp_path, "gristmill.toml", '[tasks.hello]\ncmd = "echo hi"\nphony = true\n\n'
                                      '[tasks.out]\ncmd = "touch out"\noutputs = ["out"]\n')
    assert load_workflow(tmp_path).default == ("out",)


def test_name_defaults_to_the_folder_name(tmp_path):
    folder = tmp_path / "my-project"
    write(folder, "gristmill.toml", '[tasks.a]\ncmd = "true"\n')
    assert load_workflow(folder).name == "my-project"
    assert load_workflow(folder / "gristmill.toml").name == "my-project"


def test_an_empty_file_is_an_empty_workflow(tmp_path):
    write(tmp_path, "gristmill.toml", "")
    wf = load_workflow(tmp_path)
    assert dict(wf.tasks) == {} and wf.default == ()
    assert wf.capacity == CapacityOverride()


def test_default_names_groups_and_instances(tmp_path):
    write(tmp_path, "gristmill.toml", """
        [workflow]
        default = ["b[y]", "a", "b[y]"]
        [tasks.a]
        foreach = ["1", "2"]
        [tasks.b]
        foreach = ["x", "y"]
    """)
    assert load_workflow(tmp_path).default == ("b[y]", "a[1]", "a[2]")


def test_string_for_a_list_of_one(tmp_path):
    touch(tmp_path, "in.txt")
    write(tmp_path, "gristmill.toml", """
        [workflow]
        default = "a"
        [tasks.a]
        cmd = "cp {input} {output}"
        inputs = "in.txt"
        outputs = "out.txt"
        [tasks.b]
        after = "a"
    """)
    wf = load_workflow(tmp_path)
    assert wf.default == ("a",)
    assert wf.tasks["a"].commands == ("cp in.txt out.txt",)
    assert wf.tasks["b"].after == ("a",) and wf.tasks["b"].commands == ()


def test_inline_tables_and_dotted_keys(tmp_path):
    write(tmp_path, "gristmill.toml", """
        [tasks]
        a = { cmd = "echo a", resources.cpu = 0.5 }
        b.cmd = "echo b"
    """)
    wf = load_workflow(tmp_path)
    assert wf.tasks["a"].resources.cpu == 0.5
    assert wf.tasks["a"].location == Location(str(tmp_path / "gristmill.toml"), 2, 1)
    assert wf.tasks["b"].location == Location(str(tmp_path / "gristmill.toml"), 3, 1)


# -- vars -------------------------------------------------------------------------------

def test_vars_kinds_and_command_line_overrides(tmp_path):
    write(tmp_path, "gristmill.toml", """
        [vars]
        n = 3
        ratio = 0.5
        fast = true
        mode = "release"
        [tasks.a]
        cmd = "run {vars.n} {vars.ratio} {vars.fast} {vars.mode} {vars.extra}"
        outputs = ["out-{vars.mode}.txt"]
    """)
    with pytest.raises(Exception):
        load_workflow(tmp_path)                         # {vars.extra} is unknown
    wf = load_workflow(tmp_path, {"extra": "x y", "mode": "debug"})
    assert wf.tasks["a"].commands == ("run 3 0.5 true debug 'x y'",)
    assert wf.tasks["a"].outputs == ("out-debug.txt",)
    assert dict(wf.vars) == {"n": 3, "ratio": 0.5, "fast": True, "mode": "debug", "extra": "x y"}


def test_vars_in_inputs_and_outputs_are_raw(tmp_path):
    touch(tmp_path, "my data/in.txt")
    write(tmp_path, "gristmill.toml", """
        [vars]
        d = "my data"
        [tasks.a]
        cmd = "cp {vars.d}/in.txt {output}"
        inputs = ["{vars.d}/in.txt"]
        outputs = ["{vars.d}/out.txt"]
    """)
    t = load_workflow(tmp_path).tasks["a"]
    assert t.inputs == ("my data/in.txt",) and t.outputs == ("my data/out.txt",)
    assert t.commands == ("cp 'my data'/in.txt 'my data/out.txt'",)


def test_var_from_json(tmp_path):
    write(tmp_path, "conf/c.json", json.dumps({"a": {"b": [10, {"c": "deep"}]}, "top": False}))
    write(tmp_path, "gristmill.toml", """
        [vars]
        n = { json = "conf/c.json", path = "a.b.0" }
        c = { json = "conf/c.json", path = "a.b.1.c" }
        t = { json = "conf/c.json", path = "top" }
        [tasks.a]
        cmd = "echo {vars.n} {vars.c} {vars.t}"
    """)
    wf = load_workflow(tmp_path)
    assert wf.tasks["a"].commands == ("echo 10 deep false",)
    assert wf.files == (tmp_path / "gristmill.toml", tmp_path / "conf/c.json")


def test_a_json_var_overridden_on_the_command_line_is_not_read(tmp_path):
    write(tmp_path, "gristmill.toml", """
        [vars]
        v = { json = "missing.json", path = "x" }
    """)
    assert dict(load_workflow(tmp_path, {"v": "1"}).vars) == {"v": "1"}


# -- fan-out ----------------------------------------------------------------------------

def test_foreach_list_and_item_placeholders(tmp_path):
    write(tmp_path, "gristmill.toml", """
        [tasks.conv]
        foreach = ["data/x.tar.gz", "small"]
        cmd = "conv {item} {stem} {name} {dir} {task}"
        outputs = ["out/{dir}/{stem}.{name}.o"]
    """)
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == ["conv[data/x.tar.gz]", "conv[small]"]
    t = wf.tasks["conv[data/x.tar.gz]"]
    assert t.commands == ("conv data/x.tar.gz x.tar x.tar.gz data 'conv[data/x.tar.gz]'",)
    assert t.outputs == ("out/data/x.tar.x.tar.gz.o",)
    assert (t.group, t.item) == ("conv", "data/x.tar.gz")
    s = wf.tasks["conv[small]"]
    assert s.outputs == ("out/small.small.o",)
    assert s.commands == ("conv small small small . 'conv[small]'",)


def test_foreach_glob_is_sorted_and_skips_hidden_files(tmp_path):
    touch(tmp_path, "in/b.txt", "in/a.txt", "in/.hidden.txt", "in/c.dat")
    write(tmp_path, "gristmill.toml", """
        [tasks.t]
        foreach = "in/*.txt"
        inputs = ["{item}"]
    """)
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == ["t[in/a.txt]", "t[in/b.txt]"]
    assert wf.tasks["t[in/a.txt]"].inputs == ("in/a.txt",)


def test_foreach_glob_matches_outputs_of_other_tasks(tmp_path):
    touch(tmp_path, "images/a.png", "images/b.png")
    write(tmp_path, "gristmill.toml", """
        [tasks.report]
        cmd = "cat {inputs} > {output}"
        inputs = ["meta/*.txt"]
        outputs = ["report.txt"]
        [tasks.meta]
        foreach = "thumbs/*.png"
        cmd = "identify {input} > {output}"
        inputs = ["{item}"]
        outputs = ["meta/{stem}.txt"]
        [tasks.thumb]
        foreach = "images/*.png"
        inputs = ["{item}"]
        outputs = ["thumbs/{stem}.png"]
    """)
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == ["report", "meta[thumbs/a.png]", "meta[thumbs/b.png]",
                              "thumb[images/a.png]", "thumb[images/b.png]"]
    assert wf.tasks["report"].inputs == ("meta/a.txt", "meta/b.txt")
    assert wf.tasks["report"].commands == ("cat meta/a.txt meta/b.txt > report.txt",)
    assert TaskGraph(wf).deps("meta[thumbs/a.png]") == ("thumb[images/a.png]",)


def test_foreach_glob_does_not_match_its_own_outputs(tmp_path):
    touch(tmp_path, "d/a.txt")
    write(tmp_path, "gristmill.toml", """
        [tasks.t]
        foreach = "d/*.txt"
        inputs = ["{item}"]
        outputs = ["d/{stem}.x.txt"]
    """)
    assert list(load_workflow(tmp_path).tasks) == ["t[d/a.txt]"]


def test_foreach_over_disk_and_outputs_counts_each_item_once(tmp_path):
    touch(tmp_path, "gen/a.txt")
    write(tmp_path, "gristmill.toml", """
        [tasks.make]
        outputs = ["gen/a.txt", "gen/b.txt"]
        [tasks.use]
        foreach = "gen/*.txt"
        inputs = ["{item}"]
    """)
    wf = load_workflow(tmp_path)
    assert [t for t in wf.tasks if t.startswith("use")] == ["use[gen/a.txt]", "use[gen/b.txt]"]


def test_foreach_with_no_match_has_no_instances(tmp_path):
    write(tmp_path, "gristmill.toml", """
        [tasks.t]
        foreach = "none/*.txt"
        [tasks.after_t]
        after = ["t"]
        [workflow]
        default = ["t", "after_t"]
    """)
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == ["after_t"]
    assert wf.tasks["after_t"].after == ()
    assert wf.default == ("after_t",)


def test_foreach_glob_can_use_vars(tmp_path):
    touch(tmp_path, "raw/a.csv")
    write(tmp_path, "gristmill.toml", """
        [vars]
        src = "raw"
        [tasks.t]
        foreach = "{vars.src}/*.csv"
    """)
    assert list(load_workflow(tmp_path).tasks) == ["t[raw/a.csv]"]


def test_after_expands_a_group_and_accepts_an_instance(tmp_path):
    write(tmp_path, "gristmill.toml", """
        [tasks.a]
        foreach = ["1", "2"]
        [tasks.b]
        after = ["a", "a[2]", "c[x]"]
        [tasks.c]
        foreach = ["x", "y"]
    """)
    assert load_workflow(tmp_path).tasks["b"].after == ("a[1]", "a[2]", "c[x]")


# -- inputs and globs --------------------------------------------------------------------

def test_input_globs_match_disk_and_outputs_star_stays_in_a_folder(tmp_path):
    touch(tmp_path, "src/a.c", "src/sub/b.c", "src/.hidden.c")
    write(tmp_path, "gristmill.toml", """
        [tasks.gen]
        outputs = ["src/gen.c", "src/sub/gen2.c"]
        [tasks.top]
        inputs = ["src/*.c"]
        [tasks.deep]
        inputs = ["src/**/*.c"]
        [tasks.one]
        inputs = ["src/?.c", "src/[ab].c", "src/a.c"]
    """)
    wf = load_workflow(tmp_path)
    assert wf.tasks["top"].inputs == ("src/a.c", "src/gen.c")
    assert wf.tasks["deep"].inputs == ("src/a.c", "src/gen.c", "src/sub/b.c", "src/sub/gen2.c")
    assert wf.tasks["one"].inputs == ("src/a.c",)        # duplicates dropped


def test_a_path_with_glob_characters_that_exists_is_taken_literally(tmp_path):
    touch(tmp_path, "data[1].txt", "data1.txt")
    write(tmp_path, "gristmill.toml", '[tasks.t]\ninputs = ["data[1].txt"]\n')
    assert load_workflow(tmp_path).tasks["t"].inputs == ("data[1].txt",)


def test_a_glob_matching_nothing_is_empty_with_a_warning(tmp_path):
    write(tmp_path, "gristmill.toml", '[tasks.t]\ncmd = "cat {inputs}"\ninputs = ["none/*.txt"]\n')
    wf = load_workflow(tmp_path)
    assert wf.tasks["t"].inputs == ()
    assert wf.tasks["t"].commands == ("cat ",)
    assert [str(w) for w in wf.warnings] == [
        f"{tmp_path / 'gristmill.toml'}:3:11: warning: input glob 'none/*.txt' of task 't' "
        "matches no file and no task's output"]


def test_paths_are_normalised(tmp_path):
    touch(tmp_path, "a/b.txt", "outside.txt")
    (tmp_path / "w").mkdir()
    write(tmp_path, "w/gristmill.toml", f"""
        [tasks.t]
        inputs = ["./../a//b.txt", "{tmp_path / 'outside.txt'}"]
        outputs = ["x/./y/../z.txt"]
    """)
    t = load_workflow(tmp_path / "w").tasks["t"]
    assert t.inputs == ("../a/b.txt", "../outside.txt")
    assert t.outputs == ("x/z.txt",)


# -- commands ---------------------------------------------------------------------------

def test_cmd_paths_are_relative_to_cwd_and_quoted(tmp_path):
    touch(tmp_path, "data/in file.txt")
    write(tmp_path, "gristmill.toml", """
        [tasks.t]
        cwd = "work"
        cmd = "tool {input} {outputs} {inputs}"
        inputs = ["data/in file.txt"]
        outputs = ["work/out.txt", "res/-x.txt"]
    """)
    t = load_workflow(tmp_path).tasks["t"]
    assert t.cwd == str(tmp_path / "work")
    assert t.commands == ("tool '../data/in file.txt' out.txt ../res/-x.txt '../data/in file.txt'",)


def test_item_and_dir_in_cmd_are_relative_to_cwd(tmp_path):
    touch(tmp_path, "img/a.png", "top.png")
    write(tmp_path, "gristmill.toml", """
        [tasks.t]
        foreach = "**/*.png"
        cwd = "img"
        cmd = "see {item} {dir} {name}"
    """)
    wf = load_workflow(tmp_path)
    assert wf.tasks["t[img/a.png]"].commands == ("see a.png . a.png",)
    assert wf.tasks["t[top.png]"].commands == ("see ../top.png .. top.png",)


def test_literal_braces_in_cmd(tmp_path):
    touch(tmp_path, "in.txt")
    write(tmp_path, "gristmill.toml", """
        [tasks.t]
        cmd = "awk '{{print $1}}' {input} > ${{HOME}}/x"
        inputs = ["in.txt"]
    """)
    assert load_workflow(tmp_path).tasks["t"].commands == ("awk '{print $1}' in.txt > ${HOME}/x",)


def test_task_placeholder(tmp_path):
    write(tmp_path, "gristmill.toml", """
        [tasks.build]
        cmd = "echo {task}"
        outputs = ["logs/{task}.log"]
    """)
    t = load_workflow(tmp_path).tasks["build"]
    assert t.commands == ("echo build",) and t.outputs == ("logs/build.log",)


def test_a_hostile_file_name_reaches_the_command_as_one_argument_and_runs_nothing(tmp_path):
    name = "a b;$(touch x).txt"
    touch(tmp_path, f"in/{name}")
    write(tmp_path, "gristmill.toml", """
        [tasks.show]
        foreach = "in/*.txt"
        cmd = "printf '[%s]\\\\n' {input} {item} {name} > {output}"
        inputs = ["{item}"]
        outputs = ["out/{stem}.txt"]
    """)
    wf = load_workflow(tmp_path)
    (task,) = wf.tasks.values()
    assert task.outputs == ("out/a b;$(touch x).txt",)
    (tmp_path / "out").mkdir()
    subprocess.run([*task.shell, task.commands[0]], cwd=task.cwd, check=True)
    assert (tmp_path / task.outputs[0]).read_text().splitlines() == [
        f"[in/{name}]", f"[in/{name}]", f"[{name}]"]
    assert not (tmp_path / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gristmill.toml", "in", "out"]


# -- includes ---------------------------------------------------------------------------

def test_included_tasks_have_root_relative_paths_and_their_own_cwd(tmp_path):
    touch(tmp_path, "ml/data/a.csv", "ml/prep.py")
    write(tmp_path, "gristmill.toml", """
        [workflow]
        include = ["ml/gristmill.toml"]
        [vars]
        n = 1
        [tasks.report]
        inputs = ["ml/clean/*.csv"]
        outputs = ["report.txt"]
    """)
    write(tmp_path, "ml/gristmill.toml", """
        [vars]
        n = 2
        m = 3
        [tasks.prep]
        foreach = "data/*.csv"
        cmd = "python prep.py {input} {output} {vars.n} {vars.m}"
        inputs = ["{item}", "prep.py"]
        outputs = ["clean/{name}"]
    """)
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == ["report", "prep[data/a.csv]"]
    prep = wf.tasks["prep[data/a.csv]"]
    assert prep.item == "data/a.csv"
    assert prep.inputs == ("ml/data/a.csv", "ml/prep.py")
    assert prep.outputs == ("ml/clean/a.csv",)
    assert prep.cwd == str(tmp_path / "ml")
    assert prep.commands == ("python prep.py data/a.csv clean/a.csv 1 3",)   # the main file's n
    assert prep.location == Location(str(tmp_path / "ml/gristmill.toml"), 4, 1)
    assert wf.tasks["report"].inputs == ("ml/clean/a.csv",)
    assert wf.files == (tmp_path / "gristmill.toml", tmp_path / "ml/gristmill.toml")


def test_nested_and_diamond_includes_read_each_file_once(tmp_path):
    write(tmp_path, "gristmill.toml", '[workflow]\ninclude = ["a.toml", "b.json"]\n')
    write(tmp_path, "a.toml", '[workflow]\ninclude = ["lib/c.toml"]\n[tasks.a]\ncmd = "a"\n')
    write(tmp_path, "b.json", '{"workflow": {"include": ["lib/c.toml"]}, "tasks": {"b": {}}}')
    write(tmp_path, "lib/c.toml", '[tasks.c]\ncmd = "c"\n[pools]\nnet = 1\n')
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == ["a", "c", "b"]
    assert wf.tasks["c"].cwd == str(tmp_path / "lib")
    assert dict(wf.pools) == {"net": 1}
    assert wf.files == (tmp_path / "gristmill.toml", tmp_path / "a.toml",
                        tmp_path / "lib/c.toml", tmp_path / "b.json")


def test_including_a_folder_reads_its_workflow_file(tmp_path):
    write(tmp_path, "gristmill.toml", '[workflow]\ninclude = ["sub"]\n')
    write(tmp_path, "sub/gristmill.json", '{"tasks": {"s": {"cmd": "true"}}}')
    assert list(load_workflow(tmp_path).tasks) == ["s"]


def test_what_an_included_file_cannot_set_is_ignored_with_a_warning(tmp_path):
    write(tmp_path, "gristmill.toml", '[workflow]\ninclude = ["inc.toml"]\n')
    write(tmp_path, "inc.toml", """
        [workflow]
        name = "inc"
        default = ["x"]
        [capacity]
        cpu = 1
        [tasks.x]
    """)
    wf = load_workflow(tmp_path)
    inc = tmp_path / "inc.toml"
    assert [str(w) for w in wf.warnings] == [
        f"{inc}:2:1: warning: 'name' in [workflow] of an included file is ignored",
        f"{inc}:3:1: warning: 'default' in [workflow] of an included file is ignored",
        f"{inc}:4:1: warning: [capacity] of an included file is ignored; the main file's applies",
    ]
    assert wf.name == tmp_path.name and wf.capacity == CapacityOverride()


# -- JSON -------------------------------------------------------------------------------

def test_json_workflow_has_the_same_shape(tmp_path):
    touch(tmp_path, "images/a.png")
    write(tmp_path, "gristmill.json", """
        {
          "workflow": {"name": "j", "default": ["thumb"]},
          "vars": {"size": 64},
          "pools": {"net": 1},
          "capacity": {"cpu": 4, "mem": "1GB", "gpu": 0},
          "tasks": {
            "thumb": {
              "foreach": "images/*.png",
              "cmd": "resize {input} {output} {vars.size}",
              "inputs": ["{item}"],
              "outputs": ["thumbs/{stem}.png"],
              "resources": {"cpu": 0.5, "mem": "100MB", "pools": {"net": 1}},
              "retries": 1, "timeout": 90, "env": {"A": "b"}, "phony": false
            }
          }
        }
    """)
    wf = load_workflow(tmp_path)
    assert wf.kind == "json" and wf.name == "j"
    t = wf.tasks["thumb[images/a.png]"]
    assert t.commands == ("resize images/a.png thumbs/a.png 64",)
    assert t.resources == Resources(cpu=0.5, mem=100_000_000, pools=(("net", 1),))
    assert (t.retries, t.timeout, t.env) == (1, 90.0, (("A", "b"),))
    assert t.location == Location(str(tmp_path / "gristmill.json"), 7, 5)
    assert wf.capacity == CapacityOverride(4.0, 1_000_000_000, 0)


def test_json_may_name_its_schema(tmp_path):
    write(tmp_path, "gristmill.json", '{"$schema": "https://example.org/s.json", "tasks": {}}')
    assert dict(load_workflow(tmp_path).tasks) == {}


def test_utf8_bom_is_accepted(tmp_path):
    (tmp_path / "gristmill.json").write_bytes(b'\xef\xbb\xbf{"tasks": {"a": {}}}')
    assert list(load_workflow(tmp_path).tasks) == ["a"]


def test_workflow_is_frozen_and_the_graph_builds(example):
    wf = load_workflow(example)
    with pytest.raises(TypeError):
        wf.tasks["x"] = None                       # type: ignore[index]
    assert TaskGraph(wf).order[-1] in ("train", "clean")


def test_gpu_shares_gpu_memory_and_the_busy_threshold(tmp_path):
    write(tmp_path, "gristmill.toml", textwrap.dedent('''\
        [capacity]
        gpu_mem_used_below = "10%"
        [tasks.share]
        cmd = "true"
        resources = { gpu = 0.25 }
        [tasks.small]
        cmd = "true"
        resources = { gpu_mem = "20GB" }
        [tasks.two]
        cmd = "true"
        resources = { gpu = 2.0, gpu_mem = "40GiB" }
        '''))
    wf = load_workflow(tmp_path)
    assert wf.capacity == CapacityOverride(gpu_mem_used_below=0.1)
    assert wf.tasks["share"].resources == Resources(gpu=0.25)
    assert wf.tasks["small"].resources == Resources(gpu_mem=20_000_000_000)
    two = wf.tasks["two"].resources
    assert (two.gpu, type(two.gpu), two.gpu_mem) == (2, int, 40 * 1024 ** 3)
