"""The loader's disk globbing (``load_globs.Disk``) against ``glob.glob``, on real files."""

import glob
import os

import pytest

from gristmill.core.load.globs import Disk
from gristmill.core.load.loader import load_workflow

TREE = ["a.txt", "b.txt", ".hidden.txt", "src/z.c", "src/a.c", "src/sub/m.c", "src/sub/deep/n.c",
        "src/.dot/x.c", "docs/readme.md", "docs/sub/notes.txt", "x-1.txt", "x-10.txt", "x-2.txt"]

PATTERNS = ["*.txt", "src/*.c", "src/**/*.c", "**/*.c", "**", "*/sub/*", "x-?.txt",
            "x-[12].txt", "x-[!1].txt", ".*.txt", "src/../docs/*.md", "src/./*.c", "nothing/*.c",
            "*/*/*.c", "src/sub/deep/n.c"]
# Not compared: "src/**" (glob.glob lists "src/" itself too; here a pattern ending in "**"
# is what lies below) and "src//*.c" (the loader normalises patterns before globbing).


@pytest.fixture
def tree(tmp_path):
    for name in TREE:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("")
    return tmp_path


@pytest.mark.parametrize("pattern", PATTERNS)
def test_disk_glob_matches_what_glob_glob_finds_sorted(tree, pattern):
    expected = sorted({os.path.normpath(p) for p in glob.glob(pattern, root_dir=tree, recursive=True)})
    disk = Disk(str(tree))
    assert list(disk.glob(pattern)) == expected
    assert list(disk.glob(pattern)) == expected          # asked again: the same answer
    for p in expected:
        assert disk.exists(p)


def _touch(root, *names):
    """Empty files at ``names`` under ``root``, their folders made."""
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("")


def test_two_fan_outs_over_one_glob_get_the_same_items(tmp_path):
    _touch(tmp_path, *("src/b.txt", "src/a.txt", "src/c.txt"))
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.a]\nforeach = "src/*.txt"\ncmd = "cp {input} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["a/{name}"]\n'
        '[tasks.b]\nforeach = "src/*.txt"\ncmd = "cp {input} {output}"\n'
        'inputs = ["a/{name}"]\noutputs = ["b/{name}"]\n')
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == [f"{g}[src/{x}.txt]" for g in "ab" for x in "abc"]
    assert wf.tasks["b[src/c.txt]"].inputs == ("a/c.txt",)
    assert wf.tasks["b[src/c.txt]"].commands == ("cp a/c.txt b/c.txt",)


def test_every_placeholder_of_a_command_from_a_cwd_below_the_root(tmp_path):
    _touch(tmp_path, *("data/x y.txt", "data/b.txt", "top.txt"))
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.g]\nforeach = "data/*.txt"\ncwd = "work"\n'
        'cmd = ["run {input} {inputs} {output} {outputs}", "{item} {stem} {name} {dir} {task} {{x}}"]\n'
        'inputs = ["{item}", "top.txt"]\noutputs = ["out/{stem}.o", "out/{stem}.p"]\n'
        '[tasks.l]\nforeach = ["a b", "sub/c.d"]\n'
        'cmd = "echo {item} {stem} {name} {dir} {task}"\n'
        '[tasks.t]\ncwd = "data"\ncmd = "cat {inputs} > {output}"\ninputs = ["data/*.txt"]\n'
        'outputs = ["all.txt"]\n')
    wf = load_workflow(tmp_path)
    assert wf.tasks["g[data/x y.txt]"].commands == (
        "run '../data/x y.txt' '../data/x y.txt' ../top.txt '../out/x y.o' '../out/x y.o' "
        "'../out/x y.p'",
        "'../data/x y.txt' 'x y' 'x y.txt' ../data 'g[data/x y.txt]' {x}")
    assert wf.tasks["l[a b]"].commands == ("echo 'a b' 'a b' 'a b' . 'l[a b]'",)
    assert wf.tasks["l[sub/c.d]"].commands == ("echo sub/c.d c c.d sub 'l[sub/c.d]'",)
    assert wf.tasks["t"].commands == ("cat b.txt 'x y.txt' > ../all.txt",)


def test_every_placeholder_of_inputs_and_outputs_in_an_included_file_below_the_root(tmp_path):
    for name in ("sub/data/x.tar.gz", "sub/data/.h", "sub/in/x.tar.gz.cfg", "sub/notes/l[a].md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    (tmp_path / "gristmill.toml").write_text('[workflow]\ninclude = ["sub/gristmill.toml"]\n')
    (tmp_path / "sub" / "gristmill.toml").write_text(
        '[tasks.g]\nforeach = "data/*.gz"\ncmd = "true"\n'
        'inputs = ["{item}", "in/{name}.cfg"]\n'
        'outputs = ["out/{dir}/{stem}-{name}.o", "../top/{task}.log", "o/{item}"]\n'
        '[tasks.l]\nforeach = ["a", "b/c.d"]\ncmd = "true"\ninputs = ["notes/{task}.md"]\n'
        'outputs = ["l/{dir}/{stem}.{name}"]\n'
        '[tasks.a]\nforeach = ["x"]\ncmd = "true"\ninputs = ["notes/l[a].md"]\n'
        'outputs = ["a/{item}"]\n')
    (tmp_path / "sub/notes/l[b").mkdir()
    (tmp_path / "sub/notes/l[b/c.d].md").write_text("")
    wf = load_workflow(tmp_path)
    g = wf.tasks["g[data/x.tar.gz]"]
    assert g.inputs == ("sub/data/x.tar.gz", "sub/in/x.tar.gz.cfg")
    assert g.outputs == ("sub/out/data/x.tar-x.tar.gz.o", "top/g[data/x.tar.gz].log",
                         "sub/o/data/x.tar.gz")
    assert wf.tasks["l[a]"].outputs == ("sub/l/a.a",)         # {dir} of "a" is "."
    assert wf.tasks["l[a]"].inputs == ("sub/notes/l[a].md",)
    assert wf.tasks["l[b/c.d]"].outputs == ("sub/l/b/c.c.d",)
    assert wf.tasks["l[b/c.d]"].inputs == ("sub/notes/l[b/c.d].md",)


def test_values_that_need_quoting_among_values_that_do_not(tmp_path):
    _touch(tmp_path, "in/-lead.txt", "in/ok.txt", "in/it's.txt")
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.l]\nforeach = ["-x", "a b", "p/q"]\ncmd = "echo {item} {name} {dir} {task}"\n'
        '[tasks.g]\nforeach = "in/*.txt"\ncmd = "cp {input} {output} {name}"\ninputs = ["{item}"]\n'
        'outputs = ["out/{name}"]\n'
        '[tasks.h]\nforeach = "*.txt"\ncwd = "in"\ncmd = "cp {input} {output}"\n'
        'inputs = ["{item}"]\noutputs = ["o/{name}"]\n')
    (tmp_path / "-top.txt").write_text("")
    wf = load_workflow(tmp_path)
    assert wf.tasks["l[-x]"].commands == ("echo -x -x . 'l[-x]'",)
    assert wf.tasks["l[a b]"].commands == ("echo 'a b' 'a b' . 'l[a b]'",)
    assert wf.tasks["l[p/q]"].commands == ("echo p/q q p 'l[p/q]'",)
    assert wf.tasks["g[in/-lead.txt]"].commands == ("cp in/-lead.txt out/-lead.txt -lead.txt",)
    assert wf.tasks["g[in/ok.txt]"].commands == ("cp in/ok.txt out/ok.txt ok.txt",)
    assert wf.tasks["g[in/it's.txt]"].commands == (
        "cp 'in/it'\"'\"'s.txt' 'out/it'\"'\"'s.txt' 'it'\"'\"'s.txt'",)
    assert wf.tasks["h[-top.txt]"].commands == ("cp ../-top.txt ../o/-top.txt",)


@pytest.mark.parametrize("item", ["a", "a.txt", "d/a.tar.gz", "d/e/.hidden", "d/", "x.", ".", "..",
                                  "../up/f.c", "a b/c d.e", "/abs/p.q"])
def test_compiled_path_values_are_the_placeholders_functions(item):
    from gristmill.core.load.expand import _path_renderer
    from gristmill.core.load.placeholders import item_dir, item_name, item_stem, parse
    render = _path_renderer((parse("{item}|{name}|{stem}|{dir}|{task}"), parse("{stem}"),
                             parse("{dir}/{name}")))
    assert render(item, "t[x]") == (
        f"{item}|{item_name(item)}|{item_stem(item)}|{item_dir(item)}|t[x]", item_stem(item),
        f"{item_dir(item)}/{item_name(item)}")


def _loop_tree(tmp_path, *links):
    """``data/a.csv`` and ``data/sub/b.csv``, and symbolic links (name, target) below."""
    _touch(tmp_path, "data/a.csv", "data/sub/b.csv")
    for name, target in links:
        os.symlink(target, tmp_path / name)
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.p]\nforeach = "data/**/*.csv"\ncmd = "cp {item} {output}"\n'
        'outputs = ["out/{name}"]\n'
        '[tasks.all]\ncmd = "cat {inputs}"\ninputs = ["data/**/*.csv"]\n')
    return tmp_path


def test_a_link_to_its_own_folder_is_skipped_once_with_a_warning_naming_it(tmp_path):
    # One link to "." used to give 41 nested copies of every file (until the path was too
    # long for the system); here each file once, and the warning says which link.
    _loop_tree(tmp_path, ("data/self", "."))
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == ["p[data/a.csv]", "p[data/sub/b.csv]", "all"]
    assert wf.tasks["all"].inputs == ("data/a.csv", "data/sub/b.csv")
    texts = [str(w) for w in wf.warnings]
    assert any("toml:2:" in t and "'data/self' -> '.'" in t and "loop" in t for t in texts), texts
    # A link to a folder beside it is no loop: followed, as glob.glob does.
    _touch(tmp_path, "other/c.csv")
    os.symlink("../other", tmp_path / "data" / "more")
    disk = Disk(str(tmp_path))
    assert disk.glob("data/**/*.csv") == ("data/a.csv", "data/more/c.csv", "data/sub/b.csv")
    assert disk.skipped_links == {"data/self": "."}


def test_two_links_to_parents_end_and_each_is_named(tmp_path):
    # Two links to folders above them made `plan` run for ever (2^depth paths).
    _loop_tree(tmp_path, ("data/self", "."), ("data/sub/up", "../.."))
    wf = load_workflow(tmp_path)
    assert list(wf.tasks) == ["p[data/a.csv]", "p[data/sub/b.csv]", "all"]
    texts = " ".join(str(w) for w in wf.warnings)
    assert "'data/self' -> '.'" in texts and "'data/sub/up' -> '../..'" in texts

