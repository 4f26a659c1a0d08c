"""gristmill.toml / gristmill.json -> ``Workflow`` (Makefiles go to ``makefile.load_makefile``).

``load_workflow`` reads the main file and its includes (each once; a cycle is
an error), merges ``[vars]`` (the including file wins; command-line
``variables`` win over all), ``[pools]`` and the main file's ``[capacity]``,
checks every ``[tasks.NAME]`` (``load_spec``), expands fan-out, placeholders
and globs (``load_expand``), and builds the ``TaskGraph`` once to reject
dependency cycles. Every problem is a ``WorkflowError`` at ``path:line:col``;
the checks of the files' contents go on after a problem where they safely can, and
all a load found is raised at once (``WorkflowErrors``), before fan-out;
paths in messages are the files' paths as given (the main file's, joined with
each include), while ``Workflow.path``, ``root`` and ``files`` are absolute.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from types import MappingProxyType
from typing import Any, Sequence

from ..errors import ErrorCollector, Location, WorkflowError
from ..decide.graph import TaskGraph
from .jsonpos import parse_json
from .expand import Expander
from .globs import DIRECT, Disk, Probe
from .source import Source, describe
from .spec import FileDoc, JsonVar, Path_, Sections, TaskParser, TaskSpec, check_var_value, \
    read_sections, var_text
from .locate import MAKEFILE_NAMES, WORKFLOW_FILES, find_workflow_file, is_makefile, read_file, \
    workflow_file
from .placeholders import did_you_mean
from .tomlpos import parse_toml
from ..workflow import CapacityOverride, ClusterSettings, Workflow, WorkflowWarning

def load_workflow(path: str | Path, variables: dict[str, str] | None = None,
                  probe: Probe = DIRECT, goals: Sequence[str] = ()) -> Workflow:
    """Load the workflow in ``path`` (a folder or a file); ``variables`` override ``[vars]``.

    Raises WorkflowError (``path:line:col: message``) for every problem in the files.
    Every question a TOML or JSON load asks of the disk goes through ``probe``, and
    every file it reads through ``probe.read`` if it has one (``wfcache`` records them).
    """
    p = workflow_file(path)
    if is_makefile(p):
        # Imported here, not at the top: the Makefile reader is sizeable and a
        # gristmill.toml run should not pay for loading it.
        from ..makefile import load_makefile
        return load_makefile(p, variables, goals)
    # A load makes a few objects per task and frees none: the cyclic garbage collector
    # would only rescan them, again and again (a third of the time for 100,000 tasks).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Loader(p, variables, probe).load()
    except WorkflowError:
        raise
    except RecursionError:
        raise WorkflowError("the workflow is nested too deeply to load", path=str(p)) from None
    except Exception as exc:   # a bug of ours must still reach the user as path:line:col
        raise WorkflowError(f"internal error while loading ({type(exc).__name__}: {exc}); "
                            "please report it", path=str(p)) from exc
    finally:
        if gc_was_enabled:
            gc.enable()


class _Loader:
    def __init__(self, path: Path, variables: dict[str, str] | None, probe: Probe):
        self.probe = probe
        self.display = str(path)
        self.abspath = os.path.abspath(path)
        self.root = os.path.dirname(self.abspath)
        self.overrides = dict(variables or {})
        self.kind = "json" if path.suffix.lower() == ".json" else "toml"
        self.files: dict[str, None] = {}
        self.sections: list[tuple[FileDoc, Sections]] = []
        self.loaded: set[str] = set()
        self.warnings: list[WorkflowWarning] = []
        self.errors = ErrorCollector()
        self._json: dict[str, tuple[Any, Source]] = {}

    # -- reading files --------------------------------------------------------------------

    def _read(self, abspath: str, display: str, at: tuple[Source, Path_] | None) -> str:
        try:
            data = read_file(abspath)
        except OSError as exc:
            if at is not None:
                raise at[0].error(f"cannot read {display}: {exc.strerror}", at[1], value=True) from None
            raise WorkflowError(f"cannot read: {exc.strerror}", path=display) from None
        self.files[abspath] = None
        read = getattr(self.probe, "read", None)
        if read is not None:
            read(abspath, data)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            start = data.rfind(b"\n", 0, exc.start) + 1
            line = data.count(b"\n", 0, exc.start) + 1
            col = len(data[start:exc.start].decode("utf-8", "replace")) + 1
            raise WorkflowError("not valid UTF-8 text", path=display, line=line, col=col) from None

    def _doc(self, abspath: str, display: str, main: bool,
             at: tuple[Source, Path_] | None = None) -> FileDoc:
        text = self._read(abspath, display, at)
        if abspath.lower().endswith(".json"):
            data, src = parse_json(display, text)
            if not isinstance(data, dict):
                raise src.error(f"expected an object at the top level, got {describe(data, 'json')}",
                                (), value=True)
        else:
            data, src = parse_toml(display, text)
        folder_abs = os.path.dirname(abspath)
        folder = os.path.relpath(folder_abs, self.root).replace(os.sep, "/")
        return FileDoc(src, data, abspath, folder_abs, "" if folder == "." else folder, main)

    def _walk(self, doc: FileDoc, stack: list[tuple[str, str]]) -> None:
        """Read ``doc``'s sections, then its includes depth-first (each file once)."""
        sec = read_sections(doc, self.errors)
        self.sections.append((doc, sec))
        for inc, key in sec.include:
            with self.errors.going_on():
                self._include(doc, inc, key, stack)

    def _include(self, doc: FileDoc, inc: str, key: Path_, stack: list[tuple[str, str]]) -> None:
        """One include of ``doc``: read and walked, unless it is not there or already read."""
        src = doc.source
        abspath = os.path.normpath(os.path.join(doc.folder_abs, inc))
        display = os.path.normpath(os.path.join(os.path.dirname(src.path), inc))
        is_dir = False
        try:
            probe = self.probe
            if probe.isdir(abspath):
                is_dir = True
                for name in ("gristmill.toml", "gristmill.json"):
                    if probe.isfile(os.path.join(abspath, name)):
                        abspath = os.path.join(abspath, name)
                        display = os.path.join(display, name)
                        break
            is_file = probe.isfile(abspath)
            real = os.path.realpath(abspath)
        except (OSError, ValueError):
            is_file, real = False, abspath
        if not is_file:
            if is_dir:
                raise src.error(f"included folder {inc!r} has no gristmill.toml or "
                                "gristmill.json", key, value=True)
            raise src.error(f"included file {inc!r} not found", key, value=True)
        if not abspath.lower().endswith((".toml", ".json")):
            raise src.error(f"cannot include {inc!r}: only .toml and .json files can be "
                            "included", key, value=True)
        reals = [r for r, _ in stack]
        if real in reals:
            if real == reals[-1]:
                raise src.error(f"{src.path} includes itself", key, value=True)
            cycle = [d for _, d in stack[reals.index(real):]] + [display]
            raise src.error("include cycle: " + " -> ".join(cycle), key, value=True)
        if real in self.loaded:
            return
        self.loaded.add(real)
        child = self._doc(abspath, display, main=False, at=(src, key))
        self._walk(child, stack + [(real, display)])

    # -- merging ------------------------------------------------------------------------

    def load(self) -> Workflow:
        main = self._doc(self.abspath, self.display, main=True)
        real = os.path.realpath(self.abspath)
        self.loaded.add(real)
        self._walk(main, [(real, self.display)])
        main_sec = self.sections[0][1]
        for doc, sec in self.sections[1:]:
            self._ignored(doc, sec)

        values = self._vars()
        pools = self._pools()
        capacity = main_sec.capacity
        parser = TaskParser({k: var_text(v) for k, v in values.items()}, pools, capacity,
                            main_sec.isolation, main_sec.check)
        specs: list[TaskSpec] = []
        declared: dict[str, TaskSpec] = {}
        for doc, sec in self.sections:
            for name, table, key in sec.tasks:
                with self.errors.going_on():
                    first = declared.get(name)
                    if first is not None:
                        raise doc.source.error(f"task {name!r} is already declared at "
                                               f"{first.location}", key)
                    spec = parser.parse(doc, name, table, key)
                    declared[name] = spec
                    specs.append(spec)
        # What is wrong in the files so far, all of it; fan-out needs every task sound.
        self.errors.raise_any()

        expander = Expander(specs, self.root, Disk(self.root, self.probe), self.errors)
        tasks = expander.run()
        self.warnings.extend(expander.warnings)
        default: tuple[str, ...] = ()
        if main_sec.default is not None:
            with self.errors.going_on():
                default = self._default(main, main_sec, expander.groups())
        else:
            # Every task that is not phony; a workflow of phony tasks alone: every task.
            default = tuple(t.name for t in tasks if not t.phony) or tuple(t.name for t in tasks)
        self.errors.raise_any()         # the tasks' inputs and afters, and the default
        expander.drop_instances()       # the graph needs only producer and deps
        workflow = Workflow(
            name=main_sec.name if main_sec.name is not None else os.path.basename(self.root),
            path=Path(self.abspath), root=Path(self.root),
            tasks=MappingProxyType({t.name: t for t in tasks}), default=default, pools=pools,
            capacity=capacity or CapacityOverride(), vars=values, kind=self.kind,
            warnings=tuple(self.warnings), files=tuple(Path(f) for f in self.files),
            cluster=main_sec.cluster or ClusterSettings())
        # Raises WorkflowError naming a dependency cycle.
        TaskGraph.from_deps(workflow, expander.producer, expander.deps)
        return workflow

    def _ignored(self, doc: FileDoc, sec: Sections) -> None:
        """An included file's name, default and [capacity] do not apply: say so."""
        src = doc.source
        wf = doc.data.get("workflow")
        for key in ("name", "default", "isolation", "container", "network", "check"):
            if isinstance(wf, dict) and key in wf:
                self.warnings.append(WorkflowWarning(
                    f"'{key}' in [workflow] of an included file is ignored", src.loc(("workflow", key))))
        if "cluster" in doc.data:
            self.warnings.append(WorkflowWarning(
                "[cluster] of an included file is ignored; the main file's applies",
                src.loc(("cluster",))))
        if "capacity" in doc.data:
            self.warnings.append(WorkflowWarning(
                "[capacity] of an included file is ignored; the main file's applies",
                src.loc(("capacity",))))

    def _vars(self) -> dict[str, object]:
        values: dict[str, object] = {}
        for doc, sec in self.sections:
            for name, value, key in sec.vars:
                if name in values:
                    continue        # the including file (read first) wins
                if name in self.overrides:
                    values[name] = self.overrides[name]
                elif isinstance(value, JsonVar):
                    values[name] = ""        # if it cannot be read: its error is told
                    with self.errors.going_on():
                        values[name] = self._json_var(doc, value)
                else:
                    values[name] = value
        for name, value in self.overrides.items():
            values.setdefault(name, value)
        return values

    def _json_var(self, doc: FileDoc, ref: JsonVar) -> object:
        src = doc.source
        abspath = os.path.normpath(os.path.join(doc.folder_abs, ref.file))
        display = os.path.normpath(os.path.join(os.path.dirname(src.path), ref.file))
        try:
            is_file = self.probe.isfile(abspath)
        except (OSError, ValueError):
            is_file = False
        if not is_file:
            raise src.error(f"JSON file {ref.file!r} not found", ref.file_key, value=True)
        cached = self._json.get(abspath)
        if cached is None:
            text = self._read(abspath, display, (src, ref.file_key))
            cached = self._json[abspath] = parse_json(display, text)
        value, _ = cached
        walked: list[str] = []
        for part in ref.path.split(".") if ref.path else ():
            here = ".".join(walked) or "the top level"
            if isinstance(value, dict):
                if part not in value:
                    raise src.error(f"{ref.file} has no key {part!r} in {here}"
                                    f"{did_you_mean(part, value)}", ref.path_key, value=True)
                value = value[part]
            elif isinstance(value, list):
                if not part.isdigit() or int(part) >= len(value):
                    raise src.error(f"{ref.file}: {part!r} is not an index of the array at {here} "
                                    f"(it has {len(value)} items)", ref.path_key, value=True)
                value = value[int(part)]
            else:
                raise src.error(f"{ref.file}: {here} is {describe(value, 'json')}, which has no "
                                f"key {part!r}", ref.path_key, value=True)
            walked.append(part)
        if value is None or isinstance(value, (dict, list)):
            raise src.error(f"{ref.file}: {ref.path or 'the document'} is {describe(value, 'json')}; "
                            "expected a string, number or boolean", ref.path_key, value=True)
        return check_var_value(src, value, ref.path_key)

    def _pools(self) -> dict[str, int]:
        pools: dict[str, tuple[int, Location]] = {}
        for doc, sec in self.sections:
            for name, size, key in sec.pools:
                first = pools.get(name)
                if first is None:
                    pools[name] = (size, doc.source.loc(key))
                elif first[0] != size:
                    self.errors.add(doc.source.error(f"pool {name!r} is already declared with size "
                                           f"{first[0]} at {first[1]}", key, value=True))
        return {name: size for name, (size, _) in pools.items()}

    def _default(self, doc: FileDoc, sec: Sections, groups: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        names: set[str] | None = None      # every instance's name, made only if asked:
        out: dict[str, None] = {}          # at a million tasks it was the load's peak
        errors = ErrorCollector()
        for word, key in sec.default or ():
            if word in groups:
                out.update(dict.fromkeys(groups[word]))
                continue
            if names is None:
                names = {n for g in groups.values() for n in g}
            if word in names:
                out[word] = None
            else:
                errors.add(doc.source.error(f"default: unknown task {word!r}"
                                            f"{did_you_mean(word, groups)}", key, value=True))
        errors.raise_any()
        return tuple(out)
