"""``# gristmill: mem=4GB gpu=1 retries=2 timeout=20m cpu=2 pool=NAME:N`` above a rule.

GNU make sees a comment; Gristmill reads what the rule's tasks need.
``pool=NAME:N`` puts the tasks in pool NAME, which lets N of its tasks run at
once (a later hint may repeat the size; two different sizes are an error).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import Location, WorkflowError
from ..sizes import parse_duration, parse_size
from ..workflow import Resources

_TOKEN = re.compile(r"\S+")
KEYS = ("cpu", "mem", "gpu", "retries", "timeout", "pool")


@dataclass(frozen=True, slots=True)
class TaskHint:
    resources: Resources
    retries: int = 0
    timeout: float | None = None
    pool_sizes: tuple[tuple[str, int], ...] = ()
    location: Location | None = None


def parse_hint(text: str, location: Location) -> TaskHint:
    """Parse the text after ``gristmill:``; ``location`` points at its first character."""
    cpu, mem, gpu, retries, timeout = 1.0, 0, 0, 0, None
    pools: dict[str, int] = {}
    seen: set[str] = set()
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        where = Location(location.path, location.line, location.col + m.start())
        key, eq, value = tok.partition("=")
        key = key.lower()
        if not eq or not value:
            raise WorkflowError(f"bad gristmill hint {tok!r}: expected KEY=VALUE with KEY one of "
                                + ", ".join(KEYS), where)
        if key not in KEYS:
            raise WorkflowError(f"unknown gristmill hint {key!r}: expected one of " + ", ".join(KEYS), where)
        if key in seen and key != "pool":
            raise WorkflowError(f"gristmill hint {key!r} given twice", where)
        seen.add(key)
        try:
            if key == "cpu":
                cpu = float(value)
                if not cpu > 0 or cpu != cpu or cpu == float("inf"):
                    raise ValueError(f"cpu must be a positive number, got {value!r}")
            elif key == "mem":
                mem = parse_size(value)
            elif key == "gpu":
                gpu = _count(value, "gpu")
            elif key == "retries":
                retries = _count(value, "retries")
            elif key == "timeout":
                timeout = parse_duration(value)
                if timeout <= 0:
                    raise ValueError(f"timeout must be positive, got {value!r}")
            else:
                name, colon, size = value.partition(":")
                if not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                    raise ValueError(f"bad pool {value!r}: use pool=NAME:N")
                if name in pools:
                    raise ValueError(f"pool {name!r} given twice")
                pools[name] = _count(size, "pool size", positive=True) if colon else 0
        except ValueError as exc:
            raise WorkflowError(f"bad gristmill hint {tok!r}: {exc}", where) from None
    resources = Resources(cpu=cpu, mem=mem, gpu=gpu, pools=tuple((n, 1) for n in pools))
    sizes = tuple((n, s) for n, s in pools.items() if s)
    return TaskHint(resources, retries, timeout, sizes, location)


def _count(value: str, what: str, positive: bool = False) -> int:
    if not re.fullmatch(r"\d+", value):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    n = int(value)
    if positive and n < 1:
        raise ValueError(f"{what} must be at least 1, got {value!r}")
    return n
