"""``# gristmill: mem=4GB gpu=1 gpu_mem=20GB retries=2 timeout=20m cpu=2 pool=NAME:N
audit=true`` above a rule.

GNU make sees a comment; Gristmill reads what the rule's tasks need.
``pool=NAME:N`` puts the tasks in pool NAME, which lets N of its tasks run at
once (a later hint may repeat the size; two different sizes are an error).
``isolation=sandbox``, ``container=IMAGE`` (``engine=podman|docker``) and
``network=true|false`` say how the tasks run, as in gristmill.toml.
``check=content`` decides by the bytes of files instead of their times;
``retry_mem=2.0`` (a factor) or ``retry_mem=4GB,8GB`` (sizes) retries an out-of-memory
kill with more memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import Location, WorkflowError
from ..sizes import parse_duration, parse_gpu, parse_size
from ..workflow import CONTAINER_ENGINES, ISOLATION_KINDS, PROCESS, Isolation, Resources
from .database import FileEntry
from .facts import MakeFacts

_TOKEN = re.compile(r"\S+")
KEYS = ("cpu", "mem", "gpu", "gpu_mem", "retries", "timeout", "pool", "audit", "isolation",
        "container", "engine", "network", "check", "retry_mem")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
_BOOLS = {"true": True, "yes": True, "on": True, "1": True,
          "false": False, "no": False, "off": False, "0": False}


@dataclass(frozen=True, slots=True)
class TaskHint:
    """What a ``# gristmill:`` hint says a rule's tasks need."""

    resources: Resources
    retries: int = 0
    timeout: float | None = None
    pool_sizes: tuple[tuple[str, int], ...] = ()
    location: Location | None = None
    audit: bool = False             # audit=true: trace the tasks' file accesses
    isolation: Isolation = PROCESS
    check: str = "mtime"
    retry_mem: tuple = ()


def parse_hint(text: str, location: Location) -> TaskHint:
    """Parse the text after ``gristmill:``; ``location`` points at its first character."""
    cpu, mem, gpu, gpu_mem, retries, timeout, audit = 1.0, 0, 0, 0, 0, None, False
    pools: dict[str, int] = {}
    seen: set[str] = set()
    kind = image = engine = ""
    network: bool | None = None
    check, retry_mem = "mtime", ()
    where_of: dict[str, Location] = {}
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
        where_of[key] = where
        try:
            if key == "cpu":
                cpu = float(value)
                if not cpu > 0 or cpu != cpu or cpu == float("inf"):
                    raise ValueError(f"cpu must be a positive number, got {value!r}")
            elif key == "mem":
                mem = parse_size(value)
            elif key == "gpu":
                gpu = parse_gpu(value)
            elif key == "gpu_mem":
                gpu_mem = parse_size(value)
            elif key == "retries":
                retries = _count(value, "retries")
            elif key == "audit":
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError(f"audit must be true or false, got {value!r}")
                audit = value.lower() in ("true", "yes", "1")
            elif key == "timeout":
                timeout = parse_duration(value)
                if timeout <= 0:
                    raise ValueError(f"timeout must be positive, got {value!r}")
            elif key == "isolation":
                kind = value.lower()
                if kind not in ISOLATION_KINDS:
                    raise ValueError("isolation must be one of " + ", ".join(ISOLATION_KINDS))
            elif key == "container":
                if not _IMAGE.fullmatch(value):
                    raise ValueError(f"bad image name {value!r}")
                image = value
            elif key == "engine":
                engine = value.lower()
                if engine not in CONTAINER_ENGINES:
                    raise ValueError("engine must be podman or docker")
            elif key == "check":
                check = value.lower()
                if check not in ("mtime", "content"):
                    raise ValueError("check must be mtime or content")
            elif key == "retry_mem":
                retry_mem = _retry_mem(value)
            elif key == "network":
                if value.lower() not in _BOOLS:
                    raise ValueError("network must be true or false")
                network = _BOOLS[value.lower()]
            else:
                name, colon, size = value.partition(":")
                if not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                    raise ValueError(f"bad pool {value!r}: use pool=NAME:N")
                if name in pools:
                    raise ValueError(f"pool {name!r} given twice")
                pools[name] = _count(size, "pool size", positive=True) if colon else 0
        except ValueError as exc:
            raise WorkflowError(f"bad gristmill hint {tok!r}: {exc}", where) from None
    resources = Resources(cpu=cpu, mem=mem, gpu=gpu, pools=tuple((n, 1) for n in pools),
                          gpu_mem=gpu_mem)
    sizes = tuple((n, s) for n, s in pools.items() if s)
    isolation = _isolation(kind, image, engine, network, where_of)
    return TaskHint(resources, retries, timeout, sizes, location, audit, isolation, check,
                    retry_mem)


def _retry_mem(value: str) -> tuple:
    """``2.0`` (a factor) or ``4GB,8GB`` (growing sizes)."""
    if "," not in value and re.fullmatch(r"\d+(\.\d*)?", value):
        factor = float(value)
        if not factor > 1:
            raise ValueError(f"a retry_mem factor must be larger than 1, got {value!r}")
        return (factor,)
    sizes = tuple(parse_size(v) for v in value.split(","))
    if any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ValueError("each retry_mem size must be larger than the one before")
    return sizes


def _isolation(kind: str, image: str, engine: str, network: bool | None,
               where: dict[str, Location]) -> Isolation:
    if image and not kind:
        kind = "container"
    if image and kind != "container":
        raise WorkflowError(f"gristmill hint container={image} is for isolation=container, "
                            f"not isolation={kind}", where["container"])
    if kind == "container" and not image:
        raise WorkflowError("gristmill hint isolation=container needs container=IMAGE",
                            where["isolation"])
    if engine and kind != "container":
        raise WorkflowError(f"gristmill hint engine={engine} needs container=IMAGE",
                            where["engine"])
    kind = kind or "process"
    if network is None:
        network = kind == "process"
    if kind == "process" and network:
        return PROCESS
    return Isolation(kind, network, image, engine)


def _count(value: str, what: str, positive: bool = False) -> int:
    if not re.fullmatch(r"\d+", value):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    n = int(value)
    if positive and n < 1:
        raise ValueError(f"{what} must be at least 1, got {value!r}")
    return n


class HintBook:
    """The hints of a Makefile, handed out per target, with the pools they size."""

    def __init__(self, facts: MakeFacts):
        self.f = facts
        self.pool_sizes: dict[str, int] = {}
        self.pool_where: dict[str, Location] = {}
        self.used: set[tuple[str, int]] = set()
        self.conflicts: list[tuple[str, Location, Location]] = []   # (target, used, ignored)
        self._none = not any(src.hints for src in facts.sources.values())

    def for_target(self, name: str, e: FileEntry | None,
                   places: list[tuple[str, int]] | None = None) -> TaskHint | None:
        """The hint above the rule that gives ``name`` its recipe, or above a rule naming it
        (``places``: above these rule lines only, as for one of several ``::`` rules)."""
        if self._none:
            return None         # a Makefile without hints (most): nothing to look for
        if places is None:
            places = []
            recipe = self.f.recipe_place(e)
            if recipe:
                places.append(recipe)
            places.extend(self.f.mentions(name))
        found: list[TaskHint] = []
        for file, line in places:
            src = self.f.sources.get(file)
            h = src.hint_for(line) if src else None
            if h is not None:
                self.used.add((file, h.line))
                th = parse_hint(h.text, self.f.loc(file, h.line, h.col))
                if th not in found:
                    found.append(th)
        if not found:
            return None
        if len(found) > 1:
            self.conflicts.append((name, found[0].location, found[1].location))
        hint = found[0]
        for pool, size in hint.pool_sizes:
            old = self.pool_sizes.get(pool)
            if old and old != size:
                raise WorkflowError(f"pool {pool!r} is given size {size} here and {old} at "
                                    f"{self.pool_where[pool]}", hint.location)
            self.pool_sizes[pool] = size
            self.pool_where[pool] = hint.location
        for pool, _ in hint.resources.pools:
            self.pool_sizes.setdefault(pool, 0)
            self.pool_where.setdefault(pool, hint.location)
        return hint

    def pools(self) -> dict[str, int]:
        for name, size in self.pool_sizes.items():
            if size <= 0:
                raise WorkflowError(f"pool {name!r} has no size: write pool={name}:N in one hint",
                                    self.pool_where.get(name))
        return dict(self.pool_sizes)
