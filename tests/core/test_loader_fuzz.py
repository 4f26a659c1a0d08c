"""Fuzz the loader: whatever the text, only a WorkflowError at ``path:line:col: `` escapes."""

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gristmill.core.errors import WorkflowError
from gristmill.core.load.spec import RESOURCE_KEYS, TASK_KEYS, TOP_KEYS, WORKFLOW_KEYS
from gristmill.core.load.loader import load_workflow
from gristmill.core.load.tomlpos import scan as scan_toml

FUZZ = settings(max_examples=250, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
LOCATED = re.compile(r"^(.+?):(\d+):(\d+): \S")

VALID = """
[workflow]
name = "fuzz"
default = ["thumb"]
include = ["inc.toml"]

[vars]
size = 256
model = { json = "data.json", path = "model.name" }

[pools]
network = 2

[capacity]
cpu = 8
mem = "32GB"

[tasks.thumb]
foreach = "images/*.png"
cmd = "resize {input} {output} --size {vars.size} {vars.model}"
inputs = ["{item}"]
outputs = ["thumbs/{stem}.png"]
resources = { cpu = 1, mem = "300MB", pools = { network = 1 } }

[tasks.train]
cmd = ['''train {inputs}''', "check"]
inputs = ["thumbs/*.png"]
outputs = ["model.pt"]
after = ["thumb"]
retries = 2
timeout = "30m"
env = { SEED = "1" }
"""


@pytest.fixture(scope="module")
def folder():
    path = Path(tempfile.mkdtemp(prefix="gristmill-fuzz-"))
    (path / "images").mkdir()
    (path / "images" / "a.png").touch()
    (path / "images" / "b c.png").touch()
    (path / "data.json").write_text('{"model": {"name": "resnet", "layers": [1, 2]}}')
    (path / "inc.toml").write_text('[tasks.inc]\ncmd = "true"\n')
    yield path
    shutil.rmtree(path, ignore_errors=True)


def check(path: Path, folder: Path, variables=None) -> None:
    try:
        load_workflow(path, variables)
    except WorkflowError as exc:
        text = str(exc)
        m = LOCATED.match(text)
        assert m, text
        assert m.group(1).startswith(str(folder)), text
        assert int(m.group(2)) >= 1 and int(m.group(3)) >= 1, text
        assert "internal error" not in text, text


def test_the_valid_document_loads(folder):
    (folder / "gristmill.toml").write_text(VALID)
    wf = load_workflow(folder / "gristmill.toml")
    assert "train" in wf.tasks and "inc" in wf.tasks


# -- random text --------------------------------------------------------------------------

TOMLISH = st.text(alphabet=st.one_of(st.sampled_from(list('[]{}=".,#\n \'\\tasks_cmd01-+:')),
                                     st.characters()), max_size=200)
JSONISH = st.text(alphabet=st.one_of(st.sampled_from(list('[]{}":,\n \\tasks01-eE.ntrufl')),
                                     st.characters()), max_size=200)


@FUZZ
@given(text=TOMLISH)
def test_random_toml_text(folder, text):
    path = folder / "gristmill.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path, folder)
    scan_toml(text)                      # the position scan copes with anything


@FUZZ
@given(text=JSONISH)
def test_random_json_text(folder, text):
    path = folder / "gristmill.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path, folder)


@FUZZ
@given(data=st.binary(max_size=100))
def test_random_bytes(folder, data):
    for name in ("gristmill.toml", "gristmill.json"):
        (folder / name).write_bytes(data)
        check(folder / name, folder)


@FUZZ
@given(cut=st.integers(0, len(VALID)), length=st.integers(0, 12),
       insert=st.text(alphabet=st.sampled_from(list('[]{}=",.#\n {}x*?-0')), max_size=6))
def test_broken_valid_toml(folder, cut, length, insert):
    path = folder / "gristmill.toml"
    path.write_text(VALID[:cut] + insert + VALID[cut + length:])
    check(path, folder)


# -- documents with the right shape and wrong contents --------------------------------------

NAMES = st.sampled_from(["a", "thumb", "train", "net", "size", "x y", "", "a[1]", "{", "t.x"])
STRINGS = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["images/*.png", "images/**", "{item}", "{input}", "{outputs}", "{vars.size}",
                     "thumbs/{stem}.png", "30m", "300MB", "-1", "x.txt", "[", "{", "}}", "data.json",
                     "inc.toml", "gristmill.toml", "gristmill.json", "../x", "a/../..", "model.name",
                     "thumb", "train", "images/a.png", "..", "."]))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), STRINGS)
KEYS = st.one_of(st.sampled_from(TOP_KEYS + WORKFLOW_KEYS + TASK_KEYS + RESOURCE_KEYS +
                                 ("json", "path", "network")), NAMES)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=10)
TASK = st.dictionaries(st.sampled_from(TASK_KEYS + ("cmdd",)), VALUES, max_size=6)
ANY_DOC = st.fixed_dictionaries({}, optional={
    "workflow": st.dictionaries(st.sampled_from(WORKFLOW_KEYS), VALUES, max_size=3) | VALUES,
    "vars": st.dictionaries(NAMES, VALUES, max_size=3) | VALUES,
    "pools": st.dictionaries(NAMES, VALUES, max_size=2) | VALUES,
    "capacity": st.dictionaries(st.sampled_from(("cpu", "mem", "gpu")), VALUES, max_size=3),
    "tasks": st.dictionaries(NAMES, TASK | VALUES, max_size=4),
    "task": VALUES,
})
# Right top level, wrong tasks: reaches fan-out, globs, placeholders and the graph.
TASK_DOC = st.fixed_dictionaries({
    "vars": st.just({"size": 1}),
    "pools": st.just({"network": 2}),
    "tasks": st.dictionaries(st.sampled_from(["a", "thumb", "train", "b"]), TASK, max_size=4),
}, optional={"capacity": st.just({"cpu": 2, "mem": "1GB", "gpu": 0})})
DOC = ANY_DOC | TASK_DOC


def without_none(value):
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value if v is not None]
    return value


@FUZZ
@given(doc=DOC, variables=st.none() | st.dictionaries(NAMES, st.text(max_size=5), max_size=2))
def test_wrong_documents_as_json(folder, doc, variables):
    path = folder / "gristmill.json"
    path.write_text(json.dumps(doc))
    check(path, folder, variables)


@FUZZ
@given(doc=DOC)
def test_wrong_documents_as_toml(folder, doc):
    try:
        text = tomlkit.dumps(without_none(doc))
    except Exception:                    # a document tomlkit cannot write: nothing to test
        return
    path = folder / "gristmill.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    check(path, folder)
