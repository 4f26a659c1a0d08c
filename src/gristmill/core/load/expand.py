"""From declared tasks (``TaskSpec``) to concrete ``Task``s.

1. Fan-out: a task with ``foreach = [...]`` gets one instance per item; a task
   with ``foreach = "glob"`` one per match among the files on disk and the
   outputs of every other task. Outputs are known per instance, and an output
   of one fan-out can be an item of another, so glob fan-outs are expanded in
   rounds until no new item appears (a chain of N fan-outs needs N rounds; more
   means fan-outs feed each other without end, which is an error).
2. Outputs: substituted, normalised to root-relative paths, and each claimed by
   exactly one task.
3. Inputs: a literal path must exist or be an output; a glob is compiled once
   and matched against the disk and the sorted outputs.
4. Commands: placeholders substituted, shell-quoted, paths relative to the
   task's cwd.
5. Edges: what each task depends on, found as its inputs are resolved, for
   ``TaskGraph.from_deps``.

Cost is linear in the number of instances, inputs and outputs: no pair of
tasks is ever compared. The templates of a declared task are compiled once (per
shape) into functions that render an instance's outputs, inputs and commands:
each value of the item worked out once, each string one concatenation.
"""

from __future__ import annotations

import os
import posixpath
from operator import attrgetter
from typing import Any

from ..errors import ErrorCollector, WorkflowError
from ..decide.graph import task_deps
from .globs import BadGlob, Disk, OutputIndex, glob_regex, has_magic, join_root, \
    literal_prefix, relative_to
from .spec import Path_, TaskSpec
from .placeholders import Template, did_you_mean, item_dir, item_name, item_stem, quote, \
    quote_path, quote_paths
from ..workflow import Task, WorkflowWarning, new_task

_SHELL = Task.__dataclass_fields__["shell"].default


class _Instance:
    __slots__ = ("name", "spec", "item", "item_root", "outputs")

    def __init__(self, name: str, spec: TaskSpec, item: str | None, item_root: str | None):
        self.name = name
        self.spec = spec
        self.item = item
        self.item_root = item_root          # the item as a root-relative path (glob fan-out)
        self.outputs: tuple[str, ...] = ()


class _Plan:
    """Per declared task: what its templates need, computed once."""

    __slots__ = ("cmd_names", "const_commands", "cwd_rel", "const_inputs",
                 "after", "glob", "instances", "input_modes", "folder", "out_keys",
                 "out_render", "in_render", "inputs", "render")

    def __init__(self, spec: TaskSpec, root: str):
        self.cmd_names = cmd = frozenset().union(*(t.names for t, _ in spec.commands))
        self.const_commands = (tuple(t.render({}) for t, _ in spec.commands)
                               if not self.cmd_names else None)
        rel = os.path.relpath(spec.cwd, root).replace(os.sep, "/")
        self.cwd_rel = "" if rel == "." else rel
        self.const_inputs: dict[int, tuple[str, ...]] = {}
        self.after: tuple[str, ...] = ()
        self.glob = isinstance(spec.foreach, str)
        self.instances: list[_Instance] = []
        self.folder = spec.doc.folder
        # The outputs' texts of an instance: out_render(item, task) (see _path_renderer),
        # one per output key.
        self.out_keys = tuple(key for _, key in spec.outputs)
        self.out_render = _path_renderer(tuple(t for t, _ in spec.outputs)) \
            if spec.outputs else None
        # Per input: (mode, k, template, key), the mode 0 a literal (resolved once), 1
        # exactly "{item}" of a glob fan-out (the item is a file or an output by
        # construction), 2 a template, the k-th text of in_render(item, task).
        self.input_modes = tuple(
            0 if t.is_literal else 1 if (self.glob and t.text == "{item}") else 2
            for t, _ in spec.inputs)
        templated = [t for mode, (t, _) in zip(self.input_modes, spec.inputs) if mode == 2]
        self.in_render = _path_renderer(tuple(templated)) if templated else None
        count = iter(range(len(templated)))
        self.inputs = tuple((mode, next(count) if mode == 2 else -1, t, key)
                            for mode, (t, key) in zip(self.input_modes, spec.inputs))
        # The commands of an instance: render(inst, inputs, missing) (see _command_renderer).
        self.render = _command_renderer(tuple(t for t, _ in spec.commands), self.cwd_rel) \
            if cmd else None


class Expander:
    """Expands the declared tasks of one workflow; ``run()`` returns the concrete tasks."""

    def __init__(self, specs: list[TaskSpec], root: str, disk: Disk,
                 errors: ErrorCollector | None = None):
        """``errors``: where an unknown ``after`` task or a missing input is told, the
        load going on (the caller raises them); without, ``run`` raises them at its end."""
        self.specs = specs
        self.errors = errors
        self.root = root
        self.disk = disk
        self.plans = {id(s): _Plan(s, root) for s in specs}
        self.owner: dict[str, _Instance] = {}
        self.producer: dict[str, str] = {}          # output -> the name of its task
        self.deps: dict[str, tuple[str, ...]] = {}  # task -> its dependencies (after run)
        self.warnings: list[WorkflowWarning] = []
        self._index: OutputIndex | None = None
        self._globs: dict[str, tuple[str, ...]] = {}
        self._groups: dict[str, tuple[str, ...]] | None = None

    # -- the steps --------------------------------------------------------------------

    def run(self) -> list[Task]:
        own = self.errors is None
        if own:
            self.errors = ErrorCollector()
        tasks = self._run()
        if own:
            self.errors.raise_any()
        return tasks

    def _run(self) -> list[Task]:
        errors = self.errors
        assert errors is not None
        glob_specs = []
        for spec in self.specs:
            plan = self.plans[id(spec)]
            if spec.foreach is None:
                plan.instances.append(self._make(spec, plan, spec.name, None, None))
            elif isinstance(spec.foreach, list):
                for item, _ in spec.foreach:
                    plan.instances.append(self._make(spec, plan, f"{spec.name}[{item}]", item, None))
            else:
                glob_specs.append(spec)
        if glob_specs:
            self._expand_globs(glob_specs)
        self._resolve_after()
        tasks: list[Task] = []
        append = tasks.append
        inputs_of = self._inputs
        # The graph's edges, found here while each task's inputs are at hand (TaskGraph
        # would walk every task again): what each task depends on, as task_deps says.
        deps = self.deps
        find = self.producer.get
        for spec in self.specs:
            plan = self.plans[id(spec)]
            # Every field but the instance's own, in Task's order (new_task is three
            # times as quick as Task(...)).
            after, phony, resources, retries = plan.after, spec.phony, spec.resources, spec.retries
            timeout, env, cwd, group, location = spec.timeout, spec.env, spec.cwd, spec.name, \
                spec.location
            description, const, render = spec.description, plan.const_commands, plan.render
            audit = spec.audit
            isolation = spec.isolation
            check, retry_mem = spec.check, spec.retry_mem
            where = spec.where
            has_inputs = bool(spec.inputs)
            only_item = plan.input_modes == (1,)      # inputs = ["{item}"]: the item alone

            def missing(inst: _Instance, field: str, what: str, spec: TaskSpec = spec) -> None:
                self._missing(spec, inst, field, what)
            for inst in plan.instances:
                if only_item:
                    inputs: tuple[str, ...] = (inst.item_root,)   # type: ignore[assignment]
                elif has_inputs:
                    try:
                        inputs = inputs_of(spec, plan, inst)
                    except WorkflowError as exc:     # told with the rest; the load goes on
                        errors.add(exc)
                        inputs = ()
                else:
                    inputs = ()
                name = inst.name
                if len(inputs) == 1 and not after:        # the common case, quickly
                    p = find(inputs[0])
                    deps[name] = (p,) if p is not None and p != name else ()
                elif inputs or after:
                    # Every name in after is a task's (_resolve_after checked them).
                    deps[name] = task_deps(name, inputs, after, find, after)
                else:
                    deps[name] = ()
                append(new_task(
                    inst.name, const if const is not None else render(inst, inputs, missing),
                    inputs, inst.outputs, after, phony, resources, retries, timeout, env, cwd,
                    group, inst.item, location,
                    (),                 # ignore_errors: none
                    True,               # silent: commands are not echoed into a task's output (make's @)
                    _SHELL, description, audit, isolation, check, retry_mem, where, ""))
        return tasks

    def drop_instances(self) -> None:
        """Forget the instances and which one owns each output, once the tasks are made
        (``groups`` is kept): at a million tasks they were a tenth of the load's peak,
        alive while the graph was built (issue 18)."""
        self.groups()
        self.owner = {}
        self._index = None
        for plan in self.plans.values():
            plan.instances = []

    def groups(self) -> dict[str, tuple[str, ...]]:
        """Declared name -> instance names (after ``run``)."""
        if self._groups is None:
            self._groups = {s.name: tuple([i.name for i in self.plans[id(s)].instances])
                            for s in self.specs}
        return self._groups

    def _make(self, spec: TaskSpec, plan: _Plan, name: str, item: str | None,
              item_root: str | None) -> _Instance:
        """An instance with its outputs, each claimed in ``self.owner``."""
        inst = _Instance(name, spec, item, item_root)
        render = plan.out_render
        if render is None:
            return inst
        folder, owner, producer = plan.folder, self.owner, self.producer
        outs = []
        for text, path in zip(render(item, name), plan.out_keys):
            p = folder + "/" + text if folder else text
            if "/." in p or "//" in p or p[:1] in "./" or p[-1:] == "/":
                p = join_root(folder, text, self.root)
                if p == ".":
                    raise spec.source.error(f"output {text!r} of task {name!r} is the workflow "
                                            "folder itself, not a file", path, value=True)
            prev = owner.get(p)
            if prev is None:
                owner[p] = inst
                producer[p] = name
                outs.append(p)
            elif prev is not inst:
                self._duplicate_output(p, prev, inst, path)
        inst.outputs = tuple(outs)
        return inst

    def _duplicate_output(self, path: str, first: _Instance, second: _Instance, key: Path_) -> None:
        loc = first.spec.location
        where = f" (declared at {loc})" if loc else ""
        raise second.spec.source.error(
            f"tasks {first.name!r}{where} and {second.name!r} both write output {path!r}",
            key, value=True)

    def _expand_globs(self, specs: list[TaskSpec]) -> None:
        state: dict[int, tuple[Any, str, set[str]]] = {}
        pending: list[tuple[TaskSpec, str]] = []
        for spec in specs:
            pattern = join_root(spec.doc.folder, spec.foreach, self.root)   # type: ignore[arg-type]
            try:
                regex = glob_regex(pattern)
            except BadGlob as exc:
                raise spec.source.error(str(exc), spec.foreach_key, value=True) from None
            found = self._disk_glob(spec, pattern, spec.foreach_key)
            state[id(spec)] = (regex.fullmatch, literal_prefix(pattern), set(found))
            if found:
                pending.append((spec, found))
        candidates = list(self.owner)
        rounds = 0
        owner = self.owner
        items_by_spec: dict[int, list[_Instance]] = {id(s): [] for s in specs}
        while True:
            for spec in specs:
                full, prefix, items = state[id(spec)]
                new = []
                for out in [o for o in candidates if o.startswith(prefix) and full(o)]:
                    if out not in items and owner[out].spec is not spec:
                        items.add(out)
                        new.append(out)
                if new:
                    pending.append((spec, new))
            if not pending:
                break
            rounds += 1
            if rounds > len(specs) + 1:
                spec, outs = pending[0]
                raise spec.source.error(
                    f"foreach of task {spec.name!r} keeps matching new outputs of task "
                    f"{owner[outs[0]].spec.name!r}: fan-outs that feed each other never end",
                    spec.foreach_key, value=True)
            candidates = []
            make = self._make
            for spec, paths in pending:       # runs of one spec's new items, in order
                plan = self.plans[id(spec)]
                folder, declared = spec.doc.folder, spec.name
                insts = items_by_spec[id(spec)]
                for path in paths:
                    item = relative_to(path, folder) if folder else path
                    inst = make(spec, plan, f"{declared}[{item}]", item, path)
                    insts.append(inst)
                    candidates.extend(inst.outputs)
            pending = []
        for spec in specs:
            insts = items_by_spec[id(spec)]
            insts.sort(key=_by_item)
            self.plans[id(spec)].instances = insts

    def _resolve_after(self) -> None:
        groups = self.groups()
        names: set[str] | None = None
        for spec in self.specs:
            if not spec.after:
                continue
            if names is None:
                names = {n for g in groups.values() for n in g}
            out: dict[str, None] = {}
            for word, path in spec.after:
                if word in groups:
                    out.update(dict.fromkeys(groups[word]))
                elif word in names:
                    out[word] = None
                else:
                    self.errors.add(spec.source.error(   # type: ignore[union-attr]
                        f"after: unknown task {word!r}{did_you_mean(word, groups)}", path,
                        value=True))
            self.plans[id(spec)].after = tuple(out)

    # -- inputs and commands ----------------------------------------------------------

    def _inputs(self, spec: TaskSpec, plan: _Plan, inst: _Instance) -> tuple[str, ...]:
        folder, owner, exists = plan.folder, self.owner, self.disk.exists
        texts = plan.in_render(inst.item, inst.name) if plan.in_render is not None else ()
        out: list[str] = []
        for k, (mode, j, t, path) in enumerate(plan.inputs):
            if mode == 1:
                out.append(inst.item_root)        # type: ignore[arg-type]
                continue
            if mode == 0:
                const = plan.const_inputs.get(k)
                if const is None:
                    const = plan.const_inputs[k] = self._input(spec, inst, t.render({}), path)
                out.extend(const)
                continue
            text = texts[j]
            p = folder + "/" + text if folder else text
            if "/." in p or "//" in p or p[:1] in "./" or p[-1:] == "/":
                p = join_root(folder, text, self.root)
            o = owner.get(p)
            if o is not None:
                # The producer's own string, not an equal copy: at a million tasks every
                # copy of an output path kept in an input is 30 MB (issue 18).
                outs = o.outputs
                out.append(outs[0] if len(outs) == 1 and outs[0] == p else p)
            elif exists(p):
                out.append(p)
            else:
                out.extend(self._input(spec, inst, p, path, joined=True))
        if len(out) > 1:
            return tuple(dict.fromkeys(out))
        if out and len(plan.inputs) == 1:
            # One input, a task's one output: its outputs tuple itself (a chain of
            # fan-outs has one such tuple per instance: 24 MB at a million tasks).
            o = owner.get(out[0])
            if o is not None and o.outputs == (out[0],):
                return o.outputs
        return tuple(out)

    def _input(self, spec: TaskSpec, inst: _Instance, text: str, key: Path_,
               joined: bool = False) -> tuple[str, ...]:
        p = text if joined else join_root(spec.doc.folder, text, self.root)
        if p in self.owner or self.disk.exists(p):
            return (p,)
        if has_magic(p):
            return self._glob_input(spec, p, key)
        raise spec.source.error(
            f"input {p!r} of task {inst.name!r} neither exists nor is produced by any task"
            f"{self._hint(p)}", key, value=True)

    def _glob_input(self, spec: TaskSpec, pattern: str, key: Path_) -> tuple[str, ...]:
        found = self._globs.get(pattern)
        if found is not None:
            return found
        try:
            regex = glob_regex(pattern)
        except BadGlob as exc:
            raise spec.source.error(str(exc), key, value=True) from None
        if self._index is None:
            self._index = OutputIndex(self.owner)
        matches = set(self._disk_glob(spec, pattern, key))
        matches.update(self._index.match(regex, literal_prefix(pattern)))
        found = self._globs[pattern] = tuple(sorted(matches))
        if not found:
            self.warnings.append(WorkflowWarning(
                f"input glob {pattern!r} of task {spec.name!r} matches no file and no task's output",
                spec.source.loc(key, value=True)))
        return found

    def _disk_glob(self, spec: TaskSpec, pattern: str, key: Path_) -> tuple[str, ...]:
        """The files matching ``pattern``; a warning for each link it skipped as a loop."""
        seen = len(self.disk.skipped_links)
        found = self.disk.glob(pattern)
        for link, target in list(self.disk.skipped_links.items())[seen:]:
            self.warnings.append(WorkflowWarning(
                f"glob {pattern!r} of task {spec.name!r} skipped the link {link!r} -> "
                f"{target!r}: it points to a folder it is inside, which would loop",
                spec.source.loc(key, value=True)))
        return found

    def _hint(self, path: str) -> str:
        """`` (did you mean 'X'?)`` from the outputs and files in the same folder."""
        folder = posixpath.dirname(path)
        if self._index is None:
            self._index = OutputIndex(self.owner)
        prefix = folder + "/" if folder else ""
        near = [p for p in self._index.match(_ANY, prefix)[:2000]]
        try:
            listing = os.listdir(os.path.join(self.root, folder) if folder else self.root)[:2000]
            near.extend(prefix + n for n in listing)
        except (OSError, ValueError):
            pass
        return did_you_mean(path, near)

    def _missing(self, spec: TaskSpec, inst: _Instance, field: str, what: str) -> None:
        for t, path in spec.commands:
            for f in t.fields:
                if f.name == field:
                    raise WorkflowError(f"'{{{field}}}' in cmd, but task {inst.name!r} has no {what}",
                                        spec.source.loc_in_string(path, t.text, f.offset))
        raise spec.source.error(f"'{{{field}}}' in cmd, but task {inst.name!r} has no {what}",
                                spec.key)


_by_item = attrgetter("item")


# -- commands -------------------------------------------------------------------------

# How each placeholder of a command is worked out for an instance ``inst`` with its
# ``inputs``, every value shell-quoted; ``rel(p)`` is the path as seen from the task's
# cwd (the path itself when the cwd is the root). Item placeholders exist only in a
# fan-out (load_spec rejects them elsewhere), so ``inst.item`` is set where they are used.
_VALUES = {
    "input": ("if not inputs:\n        missing(inst, 'input', 'inputs')\n"
              "    v_input = quote_path(rel(inputs[0]))"),
    "inputs": "v_inputs = quote_paths(rels(inputs))",
    "output": ("outs = inst.outputs\n    if not outs:\n        missing(inst, 'output', 'outputs')\n"
               "    v_output = quote_path(rel(outs[0]))"),
    "outputs": "v_outputs = quote_paths(rels(inst.outputs))",
    "item": ("r = inst.item_root\n"
             "    v_item = quote(inst.item) if r is None else quote_path(rel(r))"),
    "stem": "v_stem = quote(item_stem(inst.item))",
    "name": "v_name = quote(item_name(inst.item))",
    "dir": ("r = inst.item_root\n    if r is None:\n        v_dir = quote(item_dir(inst.item))\n"
            "    else:\n        d = posixpath.dirname(r)\n"
            "        v_dir = quote_path(rel(d) if d else (posixpath.relpath('.', cwd) if cwd else '.'))"),
    "task": "v_task = quote(inst.name)",
}
_renderers: dict[tuple, Any] = {}

# The item's values in inputs and outputs, as they are (paths, not shell words).
# (item_name, item_stem and item_dir, written out: no call per instance.)
_PATH_VALUES = {
    "item": "v_item = item",
    "name": "v_name = item.rstrip('/').rpartition('/')[2]",
    "stem": ("base = item.rstrip('/').rpartition('/')[2]\n    i = base.rfind('.')\n"
             "    v_stem = base[:i] if 0 < i < len(base) - 1 else base"),
    "dir": "v_dir = item.rstrip('/').rpartition('/')[0] or '.'",
    "task": "v_task = task",
}


def _path_renderer(templates: tuple[Template, ...]):
    """``render(item, task) -> texts``, one per template, compiled once for their shape:
    each needed value of the item worked out once, each text one concatenation."""
    return _compile(("paths", _shape(templates)), "item, task", templates, _PATH_VALUES, {})


def _shape(templates: tuple[Template, ...]) -> tuple:
    return tuple(tuple(p if isinstance(p, str) else ("field", p.name) for p in t.parts)
                 for t in templates)


def _compile(key: tuple, params: str, templates: tuple[Template, ...], values: dict[str, str],
             env: dict[str, Any]):
    render = _renderers.get(key)
    if render is not None:
        return render
    unknown = {f.name for t in templates for f in t.fields} - set(values)
    if unknown:           # load_spec substitutes or rejects every other name first
        raise AssertionError(f"placeholders left: {sorted(unknown)}")
    names = [n for n in values if any(n in t.names for t in templates)]
    exprs = []
    for t in templates:
        pieces = [repr(p) if isinstance(p, str) else f"v_{p.name}" for p in t.parts]
        exprs.append(" + ".join(pieces) if pieces else "''")
    source = (f"def render({params}):\n"
              + "".join(f"    {values[n]}\n" for n in names)
              + f"    return ({', '.join(exprs)},)\n")
    env = dict(env)
    exec(source, env)
    if len(_renderers) >= 1024:      # an app that reloads edited workflows for days
        _renderers.clear()
    render = _renderers[key] = env["render"]
    return render


def _command_renderer(templates: tuple[Template, ...], cwd: str):
    """``render(inst, inputs, missing) -> commands``, compiled once for these templates'
    shape (their parts, the cwd): each needed value is worked out once per instance and
    every command is one concatenation. ``missing(inst, field, what)`` raises the error
    of a ``{input}`` or ``{output}`` with nothing to name."""
    if cwd:
        env: dict[str, Any] = {"rel": lambda p: relative_to(p, cwd),
                               "rels": lambda ps: [relative_to(p, cwd) for p in ps]}
    else:
        env = {"rel": _same, "rels": _same}
    env.update(quote=quote, quote_path=quote_path, quote_paths=quote_paths, item_stem=item_stem,
               item_name=item_name, item_dir=item_dir, posixpath=posixpath, cwd=cwd)
    return _compile(("commands", _shape(templates), cwd), "inst, inputs, missing", templates,
                    _VALUES, env)


def _same(x):
    return x


class _Any:
    @staticmethod
    def fullmatch(_: str) -> bool:
        return True


_ANY: Any = _Any()
