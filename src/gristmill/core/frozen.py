"""Quick constructors for frozen, slotted dataclasses (tasks, reasons, decisions).

A frozen dataclass's ``__init__`` stores each field with ``object.__setattr__``, about
70 ns a field; the loader makes 100,000 tasks of 19 fields and a scan a decision and
a reason or two per task. ``quick_new(cls)`` writes, once, a twin class with the very
same slots that is not frozen, and a function that makes a twin, stores each field
directly in its slot and turns the object into a ``cls`` (``__class__`` assignment, which
Python allows between classes of one layout). The object is a ``cls`` like any other:
frozen, equal, hashed, pickled and printed as ``cls`` makes them.
"""

from __future__ import annotations

from typing import Any, Callable


def quick_new(cls: type) -> Callable[..., Any]:
    """``new(*values)``: a ``cls`` with every slot given, in ``cls.__slots__`` order
    (for a ``slots=True`` dataclass, its fields in declaration order, ``init=False``
    ones too). No defaults and no ``__post_init__``: the caller gives every value."""
    slots = tuple(cls.__dict__.get("__slots__", ("__dict__",)))
    if cls.__bases__ != (object,) or "__dict__" in slots or "__weakref__" in slots \
            or "__post_init__" in cls.__dict__:
        raise TypeError(f"{cls.__name__}: not a plain slotted class")
    args = ", ".join(slots)
    body = "".join(f"    obj.{name} = {name}\n" for name in slots)
    source = (f"class Twin:\n    __slots__ = {slots!r}\n"
              f"def new({args}):\n"
              "    obj = make(Twin)\n"       # no __init__ to call: the slots are set here
              f"{body}"
              "    obj.__class__ = cls\n"
              "    return obj\n")
    env: dict[str, Any] = {"cls": cls, "make": object.__new__}
    exec(source, env)
    env["Twin"].__qualname__ = f"{cls.__qualname__}.quick_new"
    new = env["new"]
    # Pickled by reference as module.new_<class> (Task's is workflow.new_task).
    new.__qualname__ = new.__name__ = f"new_{cls.__name__.lower()}"
    new.__module__ = cls.__module__
    new(*(None for _ in slots))          # raises TypeError here if the layouts differ
    return new
