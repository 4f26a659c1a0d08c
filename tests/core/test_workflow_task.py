"""Task objects made by the loader's quick constructors are Tasks like any other."""

import dataclasses
import pickle

import pytest

from gristmill.core.errors import Location
from gristmill.core.workflow import Isolation, Resources, Task, new_task, task_from_fields

VALUES = dict(name="t[a.txt]", commands=("cp a.txt b.txt",), inputs=("a.txt",),
              outputs=("b.txt",), after=("x",), phony=False, resources=Resources(cpu=2),
              retries=1, timeout=3.0, env=(("K", "V"),), cwd="/w", group="t", item="a.txt",
              location=Location("w/gristmill.toml", 3, 1), ignore_errors=(), silent=True,
              shell=("/bin/sh", "-c"), description="copy", audit=True,
              isolation=Isolation("container", False, "img:1", "podman", ("--ulimit", "host")),
              check="content", retry_mem=(2.0,), where="local")


@pytest.mark.parametrize("make", [lambda: task_from_fields(tuple(VALUES.values())),
                                  lambda: new_task(*VALUES.values(), "")])
def test_a_quickly_made_task_is_the_task_init_makes(make):
    task = make()
    expected = Task(**VALUES)
    assert type(task) is Task
    assert task == expected and hash(task) == hash(expected) and repr(task) == repr(expected)
    assert task.definition_hash == expected.definition_hash
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.name = "other"                                    # type: ignore[misc]
    assert pickle.loads(pickle.dumps(task)) == task
    assert dataclasses.replace(task, retries=5).retries == 5


def test_a_known_definition_hash_is_kept():
    task = task_from_fields(tuple(VALUES.values()), "0123abcd")
    assert task.definition_hash == "0123abcd"
    assert new_task(*VALUES.values(), "0123abcd").definition_hash == "0123abcd"


def test_quick_new_makes_reasons_and_decisions_like_their_init():
    from gristmill.core.frozen import quick_new
    from gristmill.core.reasons import Reason, ReasonKind
    from gristmill.core.decide.staleness import Decision
    reason = quick_new(Reason)(ReasonKind.MISSING_OUTPUT, "output a is missing")
    decision = quick_new(Decision)(True, (reason,))
    assert type(reason) is Reason and type(decision) is Decision
    assert reason == Reason(ReasonKind.MISSING_OUTPUT, "output a is missing")
    assert decision == Decision(True, (Reason(ReasonKind.MISSING_OUTPUT, "output a is missing"),))
    assert decision.only_dependency is False and str(reason) == "output a is missing"
    with pytest.raises(dataclasses.FrozenInstanceError):
        reason.message = "x"                                   # type: ignore[misc]


def test_quick_new_refuses_classes_it_cannot_twin():
    from gristmill.core.frozen import quick_new

    @dataclasses.dataclass(frozen=True)
    class WithDict:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class WithPostInit:
        a: int

        def __post_init__(self):
            pass

    for cls in (WithDict, WithPostInit):
        with pytest.raises(TypeError):
            quick_new(cls)


def test_isolation_is_part_of_what_the_task_does():
    plain = Task(**{**VALUES, "isolation": Isolation()})
    boxed = Task(**{**VALUES, "isolation": Isolation("sandbox", False)})
    other = Task(**VALUES)
    assert len({plain.definition_hash, boxed.definition_hash, other.definition_hash}) == 3
    assert pickle.loads(pickle.dumps(other)).isolation == VALUES["isolation"]


def test_a_plain_process_comes_back_from_a_pickle_as_process_itself():
    from gristmill.core.workflow import PROCESS
    task = Task(**{**VALUES, "isolation": Isolation()})
    assert pickle.loads(pickle.dumps(task)).isolation is PROCESS
