"""The schema of gristmill.toml / gristmill.json: check one file's data, key by key.

``read_sections`` checks the top level, ``[workflow]``, ``[vars]``, ``[pools]``
and ``[capacity]`` of one file; ``parse_task`` checks one ``[tasks.NAME]`` and
returns a ``TaskSpec``: still declared (not fanned out), with its placeholders
parsed and the variables already substituted. Every problem is a
``WorkflowError`` pointing at the offending key or value. A check that can go on
after a problem (the next key, the next section, the next task) does, and the
problems are gathered in an ``ErrorCollector``: a file's errors are told at once.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from . import placeholders
from ..errors import ErrorCollector, Location, WorkflowError
from .source import Source, short_number
from .placeholders import FILE_NAMES, ITEM_NAMES, PlaceholderError, Template, did_you_mean
from ..sizes import format_size, parse_duration, parse_gpu, parse_percent, parse_size
from ..workflow import CONTAINER_ENGINES, ISOLATION_KINDS, PROCESS, CapacityOverride, \
    ClusterSettings, Isolation, Resources

TOP_KEYS = ("workflow", "vars", "pools", "capacity", "cluster", "tasks")
ISOLATION_KEYS = ("isolation", "container", "network")
WORKFLOW_KEYS = ("name", "default", "include", "check") + ISOLATION_KEYS
CHECKS = ("mtime", "content")
CAPACITY_KEYS = ("cpu", "mem", "gpu", "gpu_mem_used_below")
TASK_KEYS = ("cmd", "inputs", "outputs", "after", "foreach", "phony", "resources",
             "retries", "timeout", "env", "cwd", "description", "audit", "check",
             "retry_mem", "where") + ISOLATION_KEYS
CLUSTER_KEYS = ("queue", "account", "walltime", "memory", "cores", "gpus", "prologue",
                "directives", "max_workers", "timeout")
WHERE_VALUES = ("local", "cluster")
RESOURCE_KEYS = ("cpu", "mem", "gpu", "gpu_mem", "pools")
JSON_VAR_KEYS = ("json", "path")
CONTAINER_KEYS = ("image", "engine", "options")

_TASK_NAME = re.compile(r"[^\s\[\]{}]+")
Path_ = tuple   # a key path: ("tasks", "build", "inputs", 0)
_EXPECT_STRINGS = "a string or an array of strings"


@dataclass
class FileDoc:
    """One workflow file as read."""

    source: Source
    data: dict[str, Any]
    abspath: str
    folder_abs: str        # the file's folder
    folder: str            # the same, relative to the workflow root ("" for the root)
    main: bool


@dataclass
class JsonVar:
    """``{ json = "file.json", path = "a.b.0" }`` in [vars]."""

    file: str
    file_key: Path_
    path: str
    path_key: Path_


@dataclass
class Sections:
    name: str | None = None
    default: list[tuple[str, Path_]] | None = None
    include: list[tuple[str, Path_]] = field(default_factory=list)
    vars: list[tuple[str, Any, Path_]] = field(default_factory=list)
    pools: list[tuple[str, int, Path_]] = field(default_factory=list)
    capacity: CapacityOverride | None = None
    isolation: "IsolationSpec | None" = None
    check: str | None = None              # [workflow] check: every task's default
    cluster: ClusterSettings | None = None
    tasks: list[tuple[str, dict[str, Any], Path_]] = field(default_factory=list)


@dataclass
class TaskSpec:
    """One declared task, checked, before fan-out."""

    name: str
    doc: FileDoc
    key: Path_
    location: Location
    commands: list[tuple[Template, Path_]] = field(default_factory=list)
    inputs: list[tuple[Template, Path_]] = field(default_factory=list)
    outputs: list[tuple[Template, Path_]] = field(default_factory=list)
    after: list[tuple[str, Path_]] = field(default_factory=list)
    foreach: str | list[tuple[str, Path_]] | None = None    # a glob, or items
    foreach_key: Path_ = ()
    phony: bool = False
    resources: Resources = field(default_factory=Resources)
    retries: int = 0
    timeout: float | None = None
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = ""
    description: str = ""
    audit: bool = False
    isolation: Isolation = Isolation()
    check: str = "mtime"
    retry_mem: tuple = ()
    where: str = ""

    @property
    def source(self) -> Source:
        return self.doc.source


# -- generic checks ---------------------------------------------------------------------

def dotted(path: Path_) -> str:
    parts: list[str] = []
    for k in path:
        if isinstance(k, int):
            if parts:
                parts[-1] += f"[{k}]"
            else:
                parts.append(f"[{k}]")
        else:
            parts.append(str(k))
    return ".".join(parts)


def type_error(src: Source, value: Any, path: Path_, expected: str) -> WorkflowError:
    return src.error(f"{dotted(path)}: expected {expected}, got {src.describe(value)}",
                     path, value=True)


def check_table(src: Source, value: Any, path: Path_) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise type_error(src, value, path, "an object" if src.kind == "json" else "a table")
    return value


def check_keys(src: Source, table: dict[str, Any], path: Path_, allowed: tuple[str, ...]) -> None:
    """Every unknown key of ``table`` is an error (all of them in one ``WorkflowErrors``)."""
    unknown = [key for key in table if key not in allowed]
    if not unknown:
        return
    errors = ErrorCollector()
    where = f" in {dotted(path)}" if path else ""
    for key in unknown:
        errors.add(src.error(f"unknown key {key!r}{where}{did_you_mean(key, allowed)}",
                             path + (key,)))
    errors.raise_any()


def check_str(src: Source, value: Any, path: Path_) -> str:
    if not isinstance(value, str):
        raise type_error(src, value, path, "a string")
    return value


def check_strings(src: Source, value: Any, path: Path_) -> list[tuple[str, Path_]]:
    """A string or an array of strings -> [(string, its key path)]."""
    if isinstance(value, str):
        return [(value, path)]
    if not isinstance(value, list):
        raise type_error(src, value, path, _EXPECT_STRINGS)
    out = []
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise type_error(src, v, path + (i,), "a string")
        out.append((v, path + (i,)))
    return out


def check_bool(src: Source, value: Any, path: Path_) -> bool:
    if not isinstance(value, bool):
        raise type_error(src, value, path, "a boolean (true or false)")
    return value


def check_int(src: Source, value: Any, path: Path_, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise type_error(src, value, path, what)
    if value < minimum:
        raise src.error(f"{dotted(path)}: expected {what}, got {short_number(value)}", path,
                        value=True)
    return value


def check_number(src: Source, value: Any, path: Path_, minimum: float, what: str,
                 strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise type_error(src, value, path, what)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < minimum or (strict and number <= minimum):
        raise src.error(f"{dotted(path)}: expected {what}, got {short_number(value)}", path,
                        value=True)
    return number


def check_check(src: Source, value: Any, path: Path_) -> str:
    """``check = "mtime" | "content"``."""
    word = check_str(src, value, path)
    if word not in CHECKS:
        raise src.error(f"{dotted(path)}: expected \"mtime\" or \"content\", got {word!r}"
                        f"{did_you_mean(word, CHECKS)}", path, value=True)
    return word


def check_retry_mem(src: Source, value: Any, path: Path_) -> tuple:
    """``retry_mem = 2.0`` (a factor over the killed attempt's mem, more than 1) or a list
    of sizes (``["4GB", "8GB"]``, growing), one per retry after an out-of-memory kill."""
    if isinstance(value, list):
        if not value:
            raise src.error(f"{dotted(path)}: expected at least one size", path, value=True)
        sizes = tuple(check_size(src, v, path + (i,)) for i, v in enumerate(value))
        for i in range(1, len(sizes)):
            if sizes[i] <= sizes[i - 1]:
                raise src.error(f"{dotted(path + (i,))}: each size must be larger than the one "
                                "before", path + (i,), value=True)
        return sizes
    factor = check_number(src, value, path, 1.0, "a factor larger than 1 (2.0) or a list of "
                          "sizes", strict=True)
    return (float(factor),)


def check_size(src: Source, value: Any, path: Path_) -> int:
    try:
        size = parse_size(value)
    except (ValueError, OverflowError) as exc:
        raise src.error(f"{dotted(path)}: {_safe(exc)}", path, value=True) from None
    if size >= 2**63:
        raise src.error(f"{dotted(path)}: size too large", path, value=True)
    return size


def check_duration(src: Source, value: Any, path: Path_) -> float:
    try:
        seconds = parse_duration(value)
    except (ValueError, OverflowError) as exc:
        raise src.error(f"{dotted(path)}: {_safe(exc)}", path, value=True) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise src.error(f"{dotted(path)}: a timeout must be longer than 0 seconds", path,
                        value=True)
    return seconds


def _safe(exc: Exception) -> str:
    try:
        return str(exc)
    except ValueError:
        return "bad value"


def no_nul(src: Source, text: str, path: Path_) -> str:
    if "\0" in text:
        raise src.error(f"{dotted(path)}: a NUL character is not allowed here", path,
                        value=True)
    return text


def var_text(value: Any) -> str:
    """How a [vars] value reads when substituted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# -- the sections of one file -----------------------------------------------------------

def read_sections(doc: FileDoc, errors: ErrorCollector | None = None) -> Sections:
    """Check everything but the tasks' contents; included files keep only what applies.

    With ``errors``, problems are gathered there and what could be read is returned;
    without, the problems are raised (all of them) at the end."""
    own = errors is None
    errors = ErrorCollector() if errors is None else errors
    sec = _read_sections(doc, errors)
    if own:
        errors.raise_any()
    return sec


def _read_sections(doc: FileDoc, errors: ErrorCollector) -> Sections:
    src, data = doc.source, doc.data
    sec = Sections()
    going_on = errors.going_on
    for key in data:
        if key not in TOP_KEYS and not (src.kind == "json" and key == "$schema"):
            errors.add(src.error(f"unknown key {key!r}{did_you_mean(key, TOP_KEYS)}", (key,)))

    if "workflow" in data:
        with going_on():
            wf = check_table(src, data["workflow"], ("workflow",))
            with going_on():
                check_keys(src, wf, ("workflow",), WORKFLOW_KEYS)
            if "name" in wf:
                with going_on():
                    sec.name = check_str(src, wf["name"], ("workflow", "name"))
            if "default" in wf:
                with going_on():
                    sec.default = check_strings(src, wf["default"], ("workflow", "default"))
            if "include" in wf:
                with going_on():
                    sec.include = check_strings(src, wf["include"], ("workflow", "include"))
            if "check" in wf:
                with going_on():
                    sec.check = check_check(src, wf["check"], ("workflow", "check"))
            if any(k in wf for k in ISOLATION_KEYS):
                with going_on():
                    sec.isolation = read_isolation(src, wf, ("workflow",), IsolationSpec())
                    sec.isolation.resolve(src, ("workflow",))    # "container" needs an image

    if "vars" in data:
        with going_on():
            table = check_table(src, data["vars"], ("vars",))
            for name, value in table.items():
                with going_on():
                    sec.vars.append(_var(src, name, value))

    if "pools" in data:
        with going_on():
            table = check_table(src, data["pools"], ("pools",))
            for name, value in table.items():
                with going_on():
                    size = check_int(src, value, ("pools", name), 1, "a positive integer")
                    sec.pools.append((name, size, ("pools", name)))

    if "capacity" in data:
        with going_on():
            table = check_table(src, data["capacity"], ("capacity",))
            with going_on():
                check_keys(src, table, ("capacity",), CAPACITY_KEYS)
            cpu = mem = gpu = None
            if "cpu" in table:
                with going_on():
                    cpu = check_number(src, table["cpu"], ("capacity", "cpu"), 0,
                                       "a positive number", strict=True)
            if "mem" in table:
                with going_on():
                    mem = check_size(src, table["mem"], ("capacity", "mem"))
            if "gpu" in table:
                with going_on():
                    gpu = check_int(src, table["gpu"], ("capacity", "gpu"), 0,
                                    "a non-negative integer")
            below = None
            if "gpu_mem_used_below" in table:
                key = ("capacity", "gpu_mem_used_below")
                with going_on():
                    try:
                        below = parse_percent(table["gpu_mem_used_below"])
                    except ValueError as exc:
                        raise src.error(f"{dotted(key)}: {exc}", key, value=True) from None
            sec.capacity = CapacityOverride(cpu, mem, gpu, below)

    if "cluster" in data:
        with going_on():
            sec.cluster = read_cluster(src, data["cluster"], ("cluster",), going_on)

    if "tasks" in data:
        with going_on():
            table = check_table(src, data["tasks"], ("tasks",))
            for name, value in table.items():
                path = ("tasks", name)
                with going_on():
                    if not _TASK_NAME.fullmatch(name):
                        raise src.error(f"bad task name {name!r}: a name cannot be empty or hold "
                                        "spaces, brackets or braces", path)
                    sec.tasks.append((name, check_table(src, value, path), path))
    return sec


def _var(src: Source, name: str, value: Any) -> tuple[str, Any, Path_]:
    """One entry of [vars]: a value, or a ``JsonVar`` to read later."""
    path = ("vars", name)
    if not isinstance(value, dict):
        return name, check_var_value(src, value, path), path
    check_keys(src, value, path, JSON_VAR_KEYS)
    if "json" not in value:
        raise src.error(f"{dotted(path)}: a value read from JSON needs "
                        "json = \"file.json\"", path)
    file = no_nul(src, check_str(src, value["json"], path + ("json",)), path + ("json",))
    where = check_str(src, value.get("path", ""), path + ("path",))
    return name, JsonVar(file, path + ("json",), where, path + ("path",)), path


def read_cluster(src: Source, value: Any, path: Path_, going_on) -> ClusterSettings:
    """A ``[cluster]`` table (the workflow's, or the user's ``cluster.toml``'s)."""
    table = check_table(src, value, path)
    with going_on():
        check_keys(src, table, path, CLUSTER_KEYS)
    got: dict[str, Any] = {}
    said: list[tuple[str, Location]] = []
    for name in CLUSTER_KEYS:
        if name not in table:
            continue
        key = path + (name,)
        v = table[name]
        with going_on():
            if name in ("queue", "account"):
                got[name] = check_str(src, v, key)
            elif name in ("walltime", "timeout"):
                got[name] = check_duration(src, v, key)
            elif name == "memory":
                got[name] = check_size(src, v, key)
            elif name == "cores":
                got[name] = check_number(src, v, key, 0, "a positive number", strict=True)
            elif name == "gpus":
                got[name] = check_int(src, v, key, 0, "a non-negative integer")
            elif name == "max_workers":
                got[name] = check_int(src, v, key, 1, "a positive integer")
            else:       # prologue, directives: a string or an array of strings
                got[name] = tuple(text for text, _ in check_strings(src, v, key))
            said.append((name, src.loc(key, value=True)))
    return ClusterSettings(**got, locations=tuple(said))


def check_var_value(src: Source, value: Any, path: Path_) -> str | int | float | bool:
    if isinstance(value, str):
        return no_nul(src, value, path)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) >= 2**63:
            raise src.error(f"{dotted(path)}: integer too large", path, value=True)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise src.error(f"{dotted(path)}: expected a finite number, got {short_number(value)}",
                            path, value=True)
        return value
    raise type_error(src, value, path, "a string, number or boolean, or "
                     "{ json = \"file.json\", path = \"a.b\" }")


# -- isolation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class IsolationSpec:
    """``isolation``, ``container`` and ``network`` as one table says them (``None``:
    not said there), before the workflow's defaults are applied."""

    kind: str | None = None
    network: bool | None = None
    image: str = ""
    engine: str = ""
    options: tuple[str, ...] = ()
    kind_key: Path_ = ()

    def resolve(self, src: Source, key: Path_) -> Isolation:
        kind = self.kind or "process"
        if kind == "container" and not self.image:
            raise src.error(f"{dotted(self.kind_key or key)}: isolation = \"container\" needs an "
                            "image: add container = \"IMAGE\"", self.kind_key or key,
                            value=bool(self.kind_key))
        network = self.network if self.network is not None else kind == "process"
        if kind == "process" and network:
            return PROCESS
        if kind != "container":
            return Isolation(kind, network)
        return Isolation(kind, network, self.image, self.engine, self.options)


_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")


def read_isolation(src: Source, table: dict[str, Any], key: Path_,
                   base: IsolationSpec) -> IsolationSpec:
    """The isolation keys of ``table`` (a task's or ``[workflow]``) over ``base``."""
    kind, kind_key = base.kind, base.kind_key
    network, image, engine, options = base.network, base.image, base.engine, base.options
    if "isolation" in table:
        path = key + ("isolation",)
        kind = check_str(src, table["isolation"], path)
        if kind not in ISOLATION_KINDS:
            raise src.error(f"{dotted(path)}: expected one of "
                            + ", ".join(f'"{k}"' for k in ISOLATION_KINDS)
                            + f", got {kind!r}{did_you_mean(kind, ISOLATION_KINDS)}", path,
                            value=True)
        kind_key = path
    if "container" in table:
        path = key + ("container",)
        value = table["container"]
        engine, options = "", ()
        if isinstance(value, dict):
            check_keys(src, value, path, CONTAINER_KEYS)
            if "image" not in value:
                raise src.error(f"{dotted(path)}: a container table needs image = \"IMAGE\"", path)
            image = _image(src, value["image"], path + ("image",))
            if "engine" in value:
                p = path + ("engine",)
                engine = check_str(src, value["engine"], p)
                if engine not in CONTAINER_ENGINES:
                    raise src.error(f"{dotted(p)}: expected \"podman\" or \"docker\", got "
                                    f"{engine!r}{did_you_mean(engine, CONTAINER_ENGINES)}", p,
                                    value=True)
            if "options" in value:
                p = path + ("options",)
                if not isinstance(value["options"], list):
                    raise type_error(src, value["options"], p, "an array of strings")
                options = tuple(no_nul(src, o, q) for o, q in check_strings(src, value["options"], p))
        elif isinstance(value, str):
            image = _image(src, value, path)
        else:
            raise type_error(src, value, path, "an image name or a table "
                             "{ image = \"IMAGE\", engine = \"podman\", options = [...] }")
        if "isolation" in table and kind != "container":
            raise src.error(f"{dotted(path)}: a container image is for isolation = \"container\", "
                            f"but {dotted(key)} has isolation = \"{kind}\"", path)
        if "isolation" not in table:
            kind, kind_key = "container", path
    if "network" in table:
        network = check_bool(src, table["network"], key + ("network",))
    return IsolationSpec(kind, network, image, engine, options, kind_key)


def _image(src: Source, value: Any, path: Path_) -> str:
    image = check_str(src, value, path)
    if not _IMAGE.fullmatch(image):
        raise src.error(f"{dotted(path)}: bad image name {image!r}: expected e.g. "
                        "\"debian:12\" or \"registry.example.com/team/tool:1.2\"", path,
                        value=True)
    return image


# -- one task ---------------------------------------------------------------------------

class TaskParser:
    """Checks ``[tasks.NAME]`` tables against the merged variables, pools and capacity."""

    def __init__(self, variables: dict[str, str], pools: dict[str, int],
                 capacity: CapacityOverride | None, isolation: IsolationSpec | None = None,
                 check: str | None = None):
        self.check = check or "mtime"
        self.isolation = isolation or IsolationSpec()
        # Checked by read_sections already (a container default without an image is an
        # error there, reported with the rest: the tasks are checked as processes then).
        if self.isolation.kind == "container" and not self.isolation.image:
            self.isolation = IsolationSpec()
        self.default_isolation = self.isolation.resolve(None, ())  # type: ignore[arg-type]
        self.variables = variables
        self.raw_vars = {f"vars.{k}": v for k, v in variables.items()}
        self.quoted_vars = {f"vars.{k}": placeholders.quote(v) for k, v in variables.items()}
        self.pools = pools
        self.capacity = capacity

    def parse(self, doc: FileDoc, name: str, table: dict[str, Any], key: Path_) -> TaskSpec:
        """The task's spec; every problem of its table is raised, all at once."""
        src = doc.source
        errors = ErrorCollector()
        going_on = errors.going_on
        with going_on():
            check_keys(src, table, key, TASK_KEYS)
        spec = TaskSpec(name=name, doc=doc, key=key, location=src.loc(key))
        fanout = "foreach" in table

        if fanout:
            with going_on():
                self._foreach(spec, table["foreach"], key + ("foreach",))
        if "cmd" in table:
            with going_on():
                for text, path in check_strings(src, table["cmd"], key + ("cmd",)):
                    with going_on():
                        no_nul(src, text, path)
                        spec.commands.append((self._template(spec, text, path, "cmd", fanout), path))
        for what in ("inputs", "outputs"):
            if what in table:
                with going_on():
                    for text, path in check_strings(src, table[what], key + (what,)):
                        with going_on():
                            no_nul(src, text, path)
                            if not text:
                                raise src.error(f"{dotted(path)}: a path cannot be empty", path,
                                                value=True)
                            getattr(spec, what).append(
                                (self._template(spec, text, path, what, fanout), path))
        if "after" in table:
            with going_on():
                spec.after = check_strings(src, table["after"], key + ("after",))
        if "phony" in table:
            with going_on():
                spec.phony = check_bool(src, table["phony"], key + ("phony",))
        if "retries" in table:
            with going_on():
                spec.retries = check_int(src, table["retries"], key + ("retries",), 0,
                                         "a non-negative integer")
        if "timeout" in table:
            with going_on():
                spec.timeout = check_duration(src, table["timeout"], key + ("timeout",))
        if "audit" in table:
            with going_on():
                spec.audit = check_bool(src, table["audit"], key + ("audit",))
        spec.check = self.check
        if "check" in table:
            with going_on():
                spec.check = check_check(src, table["check"], key + ("check",))
        if "retry_mem" in table:
            with going_on():
                spec.retry_mem = check_retry_mem(src, table["retry_mem"], key + ("retry_mem",))
        if "where" in table:
            with going_on():
                where = check_str(src, table["where"], key + ("where",))
                if where not in WHERE_VALUES:
                    raise src.error(f"{dotted(key + ('where',))}: expected \"local\" or "
                                    f"\"cluster\", not {where!r}", key + ("where",), value=True)
                spec.where = where
        if "description" in table:
            with going_on():
                spec.description = check_str(src, table["description"], key + ("description",))
        if "env" in table:
            with going_on():
                spec.env = self._env(src, table["env"], key + ("env",))
        cwd = ""
        if "cwd" in table:
            with going_on():
                cwd = no_nul(src, check_str(src, table["cwd"], key + ("cwd",)), key + ("cwd",))
        spec.cwd = os.path.normpath(os.path.join(doc.folder_abs, cwd))
        if "resources" in table:
            with going_on():
                spec.resources = self._resources(spec, table["resources"], key + ("resources",))
        with going_on():
            self._check_capacity(spec)
        with going_on():
            if any(k in table for k in ISOLATION_KEYS):
                spec.isolation = read_isolation(src, table, key, self.isolation).resolve(src, key)
            else:
                spec.isolation = self.default_isolation
        errors.raise_any()
        return spec

    def _template(self, spec: TaskSpec, text: str, path: Path_, what: str, fanout: bool) -> Template:
        src = spec.source
        try:
            t = placeholders.parse(text, self.variables)
        except PlaceholderError as exc:
            raise WorkflowError(exc.message, src.loc_in_string(path, text, exc.offset)) from None
        for f in t.fields:
            bad = None
            if what == "foreach":
                if not f.name.startswith("vars."):
                    bad = f"'{f.text}' cannot be used in foreach, only {{vars.NAME}}"
            elif f.name in ITEM_NAMES and not fanout:
                bad = f"'{f.text}' needs foreach: task {spec.name!r} has no fan-out"
            elif f.name in FILE_NAMES and what != "cmd":
                bad = f"'{f.text}' cannot be used in {what}, only in cmd"
            if bad:
                raise WorkflowError(bad, src.loc_in_string(path, text, f.offset))
        known = self.quoted_vars if what == "cmd" else self.raw_vars
        if not fanout:
            task = placeholders.quote(spec.name) if what == "cmd" else spec.name
            known = {**known, "task": task}
        return t.substitute(known)

    def _foreach(self, spec: TaskSpec, value: Any, path: Path_) -> None:
        src = spec.source
        spec.foreach_key = path
        if isinstance(value, str):
            no_nul(src, value, path)
            if not value:
                raise src.error(f"{dotted(path)}: a glob cannot be empty", path, value=True)
            spec.foreach = self._template(spec, value, path, "foreach", True).render({})
            return
        if not isinstance(value, list):
            raise type_error(src, value, path, "a glob string or an array of strings")
        items: list[tuple[str, Path_]] = []
        seen: dict[str, Path_] = {}
        for text, p in check_strings(src, value, path):
            no_nul(src, text, p)
            item = self._template(spec, text, p, "foreach", True).render({})
            if not item:
                raise src.error(f"{dotted(p)}: a foreach item cannot be empty", p, value=True)
            if item in seen:
                first = src.loc(seen[item], value=True)
                raise src.error(f"{dotted(p)}: item {item!r} is already listed "
                                f"(at line {first.line}, column {first.col})", p, value=True)
            seen[item] = p
            items.append((item, p))
        spec.foreach = items

    def _env(self, src: Source, value: Any, path: Path_) -> tuple[tuple[str, str], ...]:
        table = check_table(src, value, path)
        out = []
        for name, v in table.items():
            p = path + (name,)
            if not name or "=" in name or "\0" in name:
                raise src.error(f"bad environment variable name {name!r}", p)
            if not isinstance(v, (str, int, float, bool)):
                raise type_error(src, v, p, "a string")
            text = var_text(check_var_value(src, v, p))
            out.append((name, no_nul(src, text, p)))
        return tuple(out)

    def _resources(self, spec: TaskSpec, value: Any, path: Path_) -> Resources:
        src = spec.source
        table = check_table(src, value, path)
        errors = ErrorCollector()
        going_on = errors.going_on
        with going_on():
            check_keys(src, table, path, RESOURCE_KEYS)
        cpu, mem, gpu, gpu_mem = 1.0, 0, 0, 0
        if "cpu" in table:
            with going_on():
                cpu = check_number(src, table["cpu"], path + ("cpu",), 0, "a non-negative number")
        if "mem" in table:
            with going_on():
                mem = check_size(src, table["mem"], path + ("mem",))
        if "gpu" in table:
            with going_on():
                value = table["gpu"]
                if isinstance(value, str) or isinstance(value, bool):
                    raise type_error(src, value, path + ("gpu",), "a number such as 1 or 0.25")
                try:
                    gpu = parse_gpu(value)
                except ValueError as exc:
                    raise src.error(f"{dotted(path + ('gpu',))}: {exc}", path + ("gpu",),
                                    value=True) from None
        if "gpu_mem" in table:
            with going_on():
                gpu_mem = check_size(src, table["gpu_mem"], path + ("gpu_mem",))
        pools: list[tuple[str, int]] = []
        if "pools" in table:
            with going_on():
                ptable = check_table(src, table["pools"], path + ("pools",))
                for name, n in ptable.items():
                    with going_on():
                        pools.append((name, self._pool(spec, name, n, path + ("pools", name))))
        errors.raise_any()
        return Resources(cpu=cpu, mem=mem, gpu=gpu, pools=tuple(pools), gpu_mem=gpu_mem)

    def _pool(self, spec: TaskSpec, name: str, n: Any, p: Path_) -> int:
        src = spec.source
        if name not in self.pools:
            declared = "; [pools] declares " + ", ".join(map(repr, self.pools)) if self.pools \
                else "; declare it in [pools]"
            hint = did_you_mean(name, self.pools)
            raise src.error(f"unknown pool {name!r}{hint or declared}", p)
        amount = check_int(src, n, p, 1, "a positive integer")
        if amount > self.pools[name]:
            raise src.error(f"task {spec.name!r} asks for {amount} of pool {name!r}, "
                            f"which has {self.pools[name]}", p, value=True)
        return amount

    def _check_capacity(self, spec: TaskSpec) -> None:
        cap = self.capacity
        if cap is None:
            return
        r = spec.resources
        path = spec.key + ("resources",)
        if cap.cpu is not None and r.cpu > cap.cpu:
            raise spec.source.error(f"task {spec.name!r} asks for cpu = {r.cpu:g} but [capacity] "
                                    f"has cpu = {cap.cpu:g}", path + ("cpu",), value=True)
        if cap.mem is not None and r.mem > cap.mem:
            raise spec.source.error(f"task {spec.name!r} asks for mem = {format_size(r.mem)} but "
                                    f"[capacity] has mem = {format_size(cap.mem)}",
                                    path + ("mem",), value=True)
        if cap.gpu is not None and r.gpu > cap.gpu:
            raise spec.source.error(f"task {spec.name!r} asks for gpu = {r.gpu:g} but "
                                    f"[capacity] has gpu = {cap.gpu}", path + ("gpu",),
                                    value=True)
        if cap.gpu == 0 and r.wants_gpu:
            what = "gpu_mem" if not r.gpu else "gpu"
            raise spec.source.error(f"task {spec.name!r} asks for a GPU but [capacity] has "
                                    "gpu = 0", path + (what,), value=True)
