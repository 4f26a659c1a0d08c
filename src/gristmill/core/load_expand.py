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

Cost is linear in the number of instances, inputs and outputs: no pair of
tasks is ever compared.
"""

from __future__ import annotations

import os
import posixpath
from operator import attrgetter
from typing import Any

from .errors import WorkflowError
from .load_globs import BadGlob, Disk, OutputIndex, glob_regex, has_magic, join_root, \
    literal_prefix, relative_to
from .load_spec import Path_, TaskSpec
from .placeholders import did_you_mean, item_dir, item_name, item_stem, quote, \
    quote_path, quote_paths
from .workflow import Task, WorkflowWarning, new_task

_SHELL = Task.__dataclass_fields__["shell"].default
_NO_VALUES: dict[str, str] = {}      # never written to: the values of a template without any


class _Instance:
    __slots__ = ("name", "spec", "item", "item_root", "outputs", "ctx")

    def __init__(self, name: str, spec: TaskSpec, item: str | None, item_root: str | None):
        self.name = name
        self.spec = spec
        self.item = item
        self.item_root = item_root          # the item as a root-relative path (glob fan-out)
        self.outputs: tuple[str, ...] = ()
        self.ctx: dict[str, str] = _NO_VALUES   # the item's values, when templates use them


class _Plan:
    """Per declared task: what its templates need, computed once."""

    __slots__ = ("raw_names", "cmd_names", "const_commands", "cwd_rel", "const_inputs",
                 "after", "glob", "instances", "input_modes", "folder", "ctx_item", "ctx_base",
                 "ctx_dir", "ctx_task", "outputs", "inputs", "commands", "q_input",
                 "q_inputs", "q_output", "q_outputs", "q_item", "q_stem", "q_name", "q_dir",
                 "q_task")

    def __init__(self, spec: TaskSpec, root: str):
        self.raw_names = names = frozenset().union(*(t.names for t, _ in spec.inputs),
                                                   *(t.names for t, _ in spec.outputs))
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
        # The item's values the inputs and outputs need (an instance's ``ctx``).
        self.ctx_item = "item" in names
        self.ctx_base = "stem" in names or "name" in names
        self.ctx_dir = "dir" in names
        self.ctx_task = "task" in names
        # Per output: (fill, key). Per input: (mode, fill, template, key), the mode 0 a
        # literal (resolved once), 1 exactly "{item}" of a glob fan-out (the item is a
        # file or an output by construction), 2 a template.
        self.outputs = tuple((t.fill, key) for t, key in spec.outputs)
        self.input_modes = tuple(
            0 if t.is_literal else 1 if (self.glob and t.text == "{item}") else 2
            for t, _ in spec.inputs)
        self.inputs = tuple((mode, t.fill, t, key)
                            for mode, (t, key) in zip(self.input_modes, spec.inputs))
        # What the commands need, each value shell-quoted.
        self.commands = tuple(t.fill for t, _ in spec.commands)
        self.q_input = "input" in cmd
        self.q_inputs = "inputs" in cmd
        self.q_output = "output" in cmd
        self.q_outputs = "outputs" in cmd
        self.q_item = "item" in cmd
        self.q_stem = "stem" in cmd
        self.q_name = "name" in cmd
        self.q_dir = "dir" in cmd
        self.q_task = "task" in cmd


class Expander:
    """Expands the declared tasks of one workflow; ``run()`` returns the concrete tasks."""

    def __init__(self, specs: list[TaskSpec], root: str, disk: Disk):
        self.specs = specs
        self.root = root
        self.disk = disk
        self.plans = {id(s): _Plan(s, root) for s in specs}
        self.owner: dict[str, _Instance] = {}
        self.warnings: list[WorkflowWarning] = []
        self._index: OutputIndex | None = None
        self._globs: dict[str, tuple[str, ...]] = {}
        self._groups: dict[str, tuple[str, ...]] | None = None

    # -- the steps --------------------------------------------------------------------

    def run(self) -> list[Task]:
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
        inputs_of, commands_of = self._inputs, self._commands
        for spec in self.specs:
            plan = self.plans[id(spec)]
            # Every field but the instance's own, in Task's order (new_task is three
            # times as quick as Task(...)).
            after, phony, resources, retries = plan.after, spec.phony, spec.resources, spec.retries
            timeout, env, cwd, group, location = spec.timeout, spec.env, spec.cwd, spec.name, \
                spec.location
            description, const = spec.description, plan.const_commands
            has_inputs = bool(spec.inputs)
            for inst in plan.instances:
                inputs = inputs_of(spec, plan, inst) if has_inputs else ()
                append(new_task(
                    inst.name, const if const is not None else commands_of(spec, plan, inst, inputs),
                    inputs, inst.outputs, after, phony, resources, retries, timeout, env, cwd,
                    group, inst.item, location,
                    (),                 # ignore_errors: none
                    True,               # silent: commands are not echoed into a task's output (make's @)
                    _SHELL, description, ""))
        return tasks

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
        if plan.raw_names:
            ctx = inst.ctx = {}
            if item is not None:
                if plan.ctx_item:
                    ctx["item"] = item
                if plan.ctx_base:
                    base = item_name(item)
                    ctx["name"] = base
                    i = base.rfind(".")
                    ctx["stem"] = base[:i] if 0 < i < len(base) - 1 else base
                if plan.ctx_dir:
                    ctx["dir"] = item_dir(item)
            if plan.ctx_task:
                ctx["task"] = name
        else:
            ctx = _NO_VALUES
        if not plan.outputs:
            return inst
        folder, owner = plan.folder, self.owner
        outs = []
        for fill, path in plan.outputs:
            text = fill(ctx)
            p = folder + "/" + text if folder else text
            if "/." in p or "//" in p or p[:1] in "./" or p[-1:] == "/":
                p = join_root(folder, text, self.root)
                if p == ".":
                    raise spec.source.error(f"output {text!r} of task {name!r} is the workflow "
                                            "folder itself, not a file", path, value=True)
            prev = owner.get(p)
            if prev is None:
                owner[p] = inst
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
            found = self.disk.glob(pattern)
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
        names = {n for g in groups.values() for n in g}
        for spec in self.specs:
            if not spec.after:
                continue
            out: dict[str, None] = {}
            for word, path in spec.after:
                if word in groups:
                    out.update(dict.fromkeys(groups[word]))
                elif word in names:
                    out[word] = None
                else:
                    raise spec.source.error(
                        f"after: unknown task {word!r}{did_you_mean(word, groups)}", path,
                        value=True)
            self.plans[id(spec)].after = tuple(out)

    # -- inputs and commands ----------------------------------------------------------

    def _inputs(self, spec: TaskSpec, plan: _Plan, inst: _Instance) -> tuple[str, ...]:
        folder, owner, exists = plan.folder, self.owner, self.disk.exists
        out: list[str] = []
        for k, (mode, fill, t, path) in enumerate(plan.inputs):
            if mode == 1:
                out.append(inst.item_root)        # type: ignore[arg-type]
                continue
            if mode == 0:
                const = plan.const_inputs.get(k)
                if const is None:
                    const = plan.const_inputs[k] = self._input(spec, inst, t.render({}), path)
                out.extend(const)
                continue
            text = fill(inst.ctx)
            p = folder + "/" + text if folder else text
            if "/." in p or "//" in p or p[:1] in "./" or p[-1:] == "/":
                p = join_root(folder, text, self.root)
            if p in owner or exists(p):
                out.append(p)
            else:
                out.extend(self._input(spec, inst, p, path, joined=True))
        if len(out) > 1:
            return tuple(dict.fromkeys(out))
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
        matches = set(self.disk.glob(pattern))
        matches.update(self._index.match(regex, literal_prefix(pattern)))
        found = self._globs[pattern] = tuple(sorted(matches))
        if not found:
            self.warnings.append(WorkflowWarning(
                f"input glob {pattern!r} of task {spec.name!r} matches no file and no task's output",
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

    def _commands(self, spec: TaskSpec, plan: _Plan, inst: _Instance,
                  inputs: tuple[str, ...]) -> tuple[str, ...]:
        cwd = plan.cwd_rel
        q: dict[str, str] = {}
        if plan.q_input:
            if not inputs:
                self._missing(spec, inst, "input", "inputs")
            q["input"] = quote_path(relative_to(inputs[0], cwd) if cwd else inputs[0])
        if plan.q_inputs:
            q["inputs"] = quote_paths([relative_to(p, cwd) for p in inputs] if cwd else inputs)
        if plan.q_output:
            if not inst.outputs:
                self._missing(spec, inst, "output", "outputs")
            q["output"] = quote_path(relative_to(inst.outputs[0], cwd) if cwd else inst.outputs[0])
        if plan.q_outputs:
            outs = inst.outputs
            q["outputs"] = quote_paths([relative_to(p, cwd) for p in outs] if cwd else outs)
        item = inst.item
        if item is not None:
            if plan.q_item:
                root_item = inst.item_root
                if root_item is None:
                    q["item"] = quote(item)
                else:
                    q["item"] = quote_path(relative_to(root_item, cwd) if cwd else root_item)
            if plan.q_stem:
                q["stem"] = quote(item_stem(item))
            if plan.q_name:
                q["name"] = quote(item_name(item))
            if plan.q_dir:
                if inst.item_root is not None:
                    d = posixpath.dirname(inst.item_root)
                    rel = relative_to(d, cwd) if d else (posixpath.relpath(".", cwd) if cwd else ".")
                    q["dir"] = quote_path(rel)
                else:
                    q["dir"] = quote(item_dir(item))
        if plan.q_task:
            q["task"] = quote(inst.name)
        fills = plan.commands
        if len(fills) == 1:
            return (fills[0](q),)
        return tuple([fill(q) for fill in fills])

    def _missing(self, spec: TaskSpec, inst: _Instance, field: str, what: str) -> None:
        for t, path in spec.commands:
            for f in t.fields:
                if f.name == field:
                    raise WorkflowError(f"'{{{field}}}' in cmd, but task {inst.name!r} has no {what}",
                                        spec.source.loc_in_string(path, t.text, f.offset))
        raise spec.source.error(f"'{{{field}}}' in cmd, but task {inst.name!r} has no {what}",
                                spec.key)


_by_item = attrgetter("item")


class _Any:
    @staticmethod
    def fullmatch(_: str) -> bool:
        return True


_ANY: Any = _Any()
