"""The definition of a workflow: frozen dataclasses, no run state.

A loader (``loader.load_workflow``; the Makefile reader under ``makefile``)
turns a file into a ``Workflow``. Everything here is concrete: fan-out is
expanded, placeholders are substituted, input globs are resolved against the
files on disk and the outputs of every task. Paths in ``inputs`` and
``outputs`` are POSIX paths relative to ``Workflow.root`` (``..`` allowed);
``cwd`` is absolute.
"""

from __future__ import annotations

try:             # hashlib would load OpenSSL too (2 ms of every command's start)
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - not CPython
    from hashlib import blake2b
import os  # noqa: E402  (after the fast blake2b above)
from dataclasses import dataclass, field, fields
from operator import attrgetter
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from .errors import Location, UsageError
from .frozen import quick_new


@dataclass(frozen=True, slots=True)
class Resources:
    """What one task needs while it runs. ``mem`` and ``gpu_mem`` are in bytes.

    ``gpu``: 0, a share of one device (``0 < gpu < 1``: four tasks of 0.25 may share a
    card) or a whole number of whole devices (an ``int``). ``gpu_mem``: free declared
    memory on the device it gets (with whole devices: each must have that much).
    """

    cpu: float = 1.0
    mem: int = 0
    gpu: int | float = 0
    pools: tuple[tuple[str, int], ...] = ()
    gpu_mem: int = 0

    @property
    def wants_gpu(self) -> bool:
        return self.gpu > 0 or self.gpu_mem > 0

    def pool(self, name: str) -> int:
        for n, amount in self.pools:
            if n == name:
                return amount
        return 0


ISOLATION_KINDS = ("process", "sandbox", "container")
CONTAINER_ENGINES = ("podman", "docker")


@dataclass(frozen=True, slots=True)
class Isolation:
    """How a task runs: ``process`` (a plain process), ``sandbox`` (bubblewrap: it sees
    only the system, its inputs and its outputs) or ``container`` (``image`` run by
    podman or docker; ``engine`` "" means whichever is installed)."""

    kind: str = "process"
    network: bool = True
    image: str = ""
    engine: str = ""
    options: tuple[str, ...] = ()

    def __reduce__(self):
        # The plain process comes back as PROCESS itself (``is PROCESS`` is the executor's
        # quick test), from the workflow cache too.
        return (_isolation, (self.kind, self.network, self.image, self.engine, self.options))

    def describe(self) -> str:
        """One line for people: "sandbox (bubblewrap), no network"."""
        if self.kind == "process":
            text = "process (a plain process)"
        elif self.kind == "sandbox":
            text = "sandbox (bubblewrap: only the system, its inputs and its outputs)"
        else:
            text = f"container {self.image} ({self.engine or 'podman or docker'})"
            if self.options:
                text += " with " + " ".join(self.options)
        if self.kind != "process" or not self.network:
            text += ", network on" if self.network else ", no network"
        return text


PROCESS = Isolation()


def _isolation(*values) -> Isolation:
    isolation = Isolation(*values)
    return PROCESS if isolation == PROCESS else isolation


@dataclass(frozen=True, slots=True)
class CapacityOverride:
    """``[capacity]`` from the workflow file; ``None`` means "detect"."""

    cpu: float | None = None
    mem: int | None = None
    gpu: int | None = None
    gpu_mem_used_below: float | None = None   # a fraction: count only GPUs using less at the start


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """``[cluster]`` from the workflow file or the user's ``cluster.toml``: the batch
    system's words for a cluster started for one run (``gristmill run --cluster``).
    ``None`` means "not said here"; ``merged_over`` fills the gaps from another."""

    queue: str | None = None            # Slurm partition, PBS/SGE/LSF queue
    account: str | None = None
    walltime: float | None = None       # seconds, per batch job
    memory: int | None = None           # bytes per batch job (default: the tasks' largest ask)
    cores: float | None = None          # per batch job (default: the tasks' largest ask)
    gpus: int | None = None             # per batch job (default: the tasks' largest ask)
    prologue: tuple[str, ...] | None = None     # shell lines in the job script, first
    directives: tuple[str, ...] | None = None   # extra lines for the batch system (#SBATCH ...)
    max_workers: int | None = None      # caps the planner's sizing
    timeout: float | None = None        # seconds to wait for the first worker
    locations: tuple[tuple[str, Location], ...] = ()     # key -> where it was said

    def merged_over(self, other: "ClusterSettings") -> "ClusterSettings":
        """These settings, with what they leave unsaid taken from ``other``."""
        names = [f for f in self.__slots__ if f != "locations"]
        values = {n: getattr(self, n) if getattr(self, n) is not None else getattr(other, n)
                  for n in names}
        said = dict(other.locations)
        said.update(self.locations)
        return ClusterSettings(**values, locations=tuple(said.items()))

    def where(self, key: str) -> Location | None:
        return dict(self.locations).get(key)


@dataclass(frozen=True, slots=True)
class WorkflowWarning:
    """Something the loader could not honour exactly; shown, never silent."""

    message: str
    location: Location | None = None

    def __str__(self) -> str:
        return f"{self.location}: warning: {self.message}" if self.location else f"warning: {self.message}"


@dataclass(frozen=True, slots=True)
class Task:
    name: str                                  # "thumb" or "thumb[images/a.png]"
    commands: tuple[str, ...] = ()             # shell commands, run in order
    inputs: tuple[str, ...] = ()               # concrete paths relative to the root
    outputs: tuple[str, ...] = ()              # concrete paths relative to the root
    after: tuple[str, ...] = ()                # order-only: concrete task names
    phony: bool = False
    resources: Resources = field(default_factory=Resources)
    retries: int = 0
    timeout: float | None = None               # seconds
    env: tuple[tuple[str, str], ...] = ()
    cwd: str = "."                             # absolute directory
    group: str = ""                            # the declared name ("thumb"); == name if no fan-out
    item: str | None = None                    # the fan-out item, if any
    location: Location | None = None           # where the task is declared
    ignore_errors: tuple[bool, ...] = ()       # per command: a failure is ignored (make's "-")
    silent: bool = False                       # make's "@": the command is not echoed to the log
    shell: tuple[str, ...] = ("/bin/sh", "-c")  # each command runs as [*shell, command]
    description: str = ""
    audit: bool = False                        # trace its file accesses (the dependency audit)
    isolation: Isolation = PROCESS             # process, sandbox or container
    check: str = "mtime"                       # "mtime" (make's timestamps) or "content" (hashes)
    # After an out-of-memory kill: () no retry for it; (factor,) a float that multiplies
    # the mem of the attempt killed; or sizes in bytes (ints), one per retry in order.
    retry_mem: tuple[float, ...] | tuple[int, ...] = ()
    where: str = ""                            # "local": stays on this machine in a cluster run
    # definition_hash, once asked for (kept by the workflow cache, so that a no-op run
    # of 20,000 tasks does not hash them all again); never part of equality.
    # Not an argument of __init__, so that dataclasses.replace() forgets it.
    _definition_hash: str = field(default="", init=False, repr=False, compare=False)

    def __reduce__(self):
        # Every slot, positional, to new_task: pickling the slots one by one (the dataclass
        # default) costs twice as much to load back (the workflow cache loads thousands).
        return (new_task, _task_slots(self))

    @property
    def definition_hash(self) -> str:
        """Changes whenever what the task does changes (commands, outputs, env, cwd, shell,
        isolation).

        Inputs are left out: a new or changed input is caught by its timestamp, and a
        command that names its inputs changes with them anyway. (A Makefile whose
        compiler writes dependency files grows its inputs after the first build; that
        must not rebuild everything.)
        """
        known = self._definition_hash
        if known:
            return known
        blob = repr((self.commands, self.outputs, self.env, self.cwd, self.ignore_errors,
                     self.shell))       # only str, bool and tuples: the same in every run
        if self.isolation != PROCESS:   # another image, sandbox or not: another result
            blob += repr(self.isolation)
        known = blake2b(blob.encode(), digest_size=8).hexdigest()
        object.__setattr__(self, "_definition_hash", known)
        return known


_TASK_FIELDS = tuple(f.name for f in fields(Task) if f.init)


#: ``new_task(name, commands, ..., description, definition_hash)``: a Task from every
#: field in declaration order, three times as quick as ``Task(...)`` (the loader and the
#: workflow cache make 100,000 at a time); see ``frozen.quick_new``.
new_task = quick_new(Task)
assert tuple(Task.__slots__) == _TASK_FIELDS + ("_definition_hash",)
_task_slots = attrgetter(*Task.__slots__)


def task_from_fields(values: tuple, definition_hash: str = "") -> Task:
    """A Task from its fields in declaration order (every field: no defaults)."""
    return new_task(*values, definition_hash)


@dataclass(frozen=True)
class Workflow:
    name: str
    path: Path                                  # the workflow file (toml, json or Makefile)
    root: Path                                  # the folder paths are relative to
    tasks: Mapping[str, Task]                   # in declaration order
    default: tuple[str, ...] = ()               # task names (concrete)
    pools: Mapping[str, int] = field(default_factory=dict)
    capacity: CapacityOverride = field(default_factory=CapacityOverride)
    vars: Mapping[str, object] = field(default_factory=dict)
    kind: str = "toml"                          # "toml", "json" or "make"
    warnings: tuple[WorkflowWarning, ...] = ()
    files: tuple[Path, ...] = ()                # every file read (includes), for reload/watch
    messages: tuple[str, ...] = ()              # what reading printed (a Makefile's $(info ...))
    # A Makefile's intermediate files: deleted after the run that made them, and not
    # remade while missing unless what is made from them must be (make's rules).
    intermediate: frozenset[str] = frozenset()
    cluster: ClusterSettings = field(default_factory=ClusterSettings)   # [cluster]
    # A Makefile's .PRECIOUS and .SECONDARY targets (``%`` patterns as patterns): a
    # failed recipe's target among them is kept (core/run/makerun.py).
    keep_on_failure: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # A read-only view is kept as it is: the loader hands over a dict of its own (a
        # copy of a million tasks' dict is 30 MB and a tenth of a second).
        if type(self.tasks) is not MappingProxyType:
            object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        object.__setattr__(self, "pools", MappingProxyType(dict(self.pools)))
        object.__setattr__(self, "vars", MappingProxyType(dict(self.vars)))

    def __reduce__(self):
        # The mappings are read-only views, which do not pickle; the graph cached by
        # TaskGraph.of is left out (``wfcache`` keeps it beside the workflow).
        return (_unpickled_workflow, (self.name, self.path, self.root, dict(self.tasks),
                                      self.default, dict(self.pools), self.capacity,
                                      dict(self.vars), self.kind, self.warnings, self.files,
                                      self.messages, self.intermediate, self.cluster))

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Declared name -> concrete instance names, in order."""
        out: dict[str, list[str]] = {}
        for t in self.tasks.values():
            out.setdefault(t.group or t.name, []).append(t.name)
        return {k: tuple(v) for k, v in out.items()}

    def _as_output(self, word: str) -> str:
        """A path as the user may type it, as the workflow keeps outputs: relative to the
        root, normalised (``./out.txt`` and ``sub/../out.txt`` are ``out.txt``)."""
        path = os.path.normpath(word)
        if os.path.isabs(path):
            root = os.path.normpath(str(self.root))
            if os.path.commonpath([root, path]) != root:
                return word
            path = os.path.relpath(path, root)
        return path.replace(os.sep, "/")

    def _suggest(self, word: str, groups: Mapping[str, tuple[str, ...]]) -> str:
        import difflib
        names = [n for n in groups if not n.startswith(".")]
        close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
        return f" (did you mean {close[0]!r}?)" if close else ""

    def resolve_targets(self, targets: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """Target words (task names, declared fan-out names, or output paths) -> task names.

        No targets means the workflow's default. Unknown targets raise UsageError.
        """
        if not targets:
            return self.default
        groups = self.groups()
        by_output = {o: t.name for t in self.tasks.values() for o in t.outputs}
        result: list[str] = []
        seen: set[str] = set()
        for word in targets:
            if word in self.tasks:
                names: tuple[str, ...] = (word,)
            elif word in groups:
                names = groups[word]
            elif word in by_output:
                names = (by_output[word],)
            elif self._as_output(word) in by_output:          # ./out.txt, /abs/root/out.txt
                names = (by_output[self._as_output(word)],)
            else:
                raise UsageError(f"no task or output named {word!r} in {self.path}"
                                 + self._suggest(word, groups))
            for n in names:
                if n not in seen:
                    seen.add(n)
                    result.append(n)
        return tuple(result)


def _unpickled_workflow(name, path, root, tasks, *rest) -> Workflow:
    """A pickled ``Workflow`` read back: its tasks' dict, new and no one else's, is kept
    as the workflow's own (a copy of a million tasks' dict is 30 MB and 0.3 s)."""
    return Workflow(name, path, root, MappingProxyType(tasks), *rest)
