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
from typing import Any

from .errors import WorkflowError
from .load_globs import BadGlob, Disk, OutputIndex, glob_regex, has_magic, join_root, \
    literal_prefix, relative_to
from .load_spec import Path_, TaskSpec
from .placeholders import did_you_mean, item_dir, item_name, item_stem, quote, \
    quote_path, quote_paths
from .workflow import Task, WorkflowWarning, task_from_fields

_SHELL = Task.__dataclass_fields__["shell"].default


class _Instance:
    __slots__ = ("name", "spec", "item", "item_root", "outputs", "ctx")

    def __init__(self, name: str, spec: TaskSpec, item: str | None, item_root: str | None):
        self.name = name
        self.spec = spec
        self.item = item
        self.item_root = item_root          # the item as a root-relative path (glob fan-out)
        self.outputs: tuple[str, ...] = ()
        self.ctx: dict[str, str] = {}


class _Plan:
    """Per declared task: what its templates need, computed once."""

    __slots__ = ("raw_names", "cmd_names", "const_commands", "cwd_rel", "const_inputs",
                 "after", "glob", "instances", "input_modes")

    def __init__(self, spec: TaskSpec, root: str):
        self.raw_names = frozenset().union(*(t.names for t, _ in spec.inputs),
                                           *(t.names for t, _ in spec.outputs))
        self.cmd_names = frozenset().union(*(t.names for t, _ in spec.commands))
        self.const_commands = (tuple(t.render({}) for t, _ in spec.commands)
                               if not self.cmd_names else None)
        rel = os.path.relpath(spec.cwd, root).replace(os.sep, "/")
        self.cwd_rel = "" if rel == "." else rel
        self.const_inputs: dict[int, tuple[str, ...]] = {}
        self.after: tuple[str, ...] = ()
        self.glob = isinstance(spec.foreach, str)
        self.instances: list[_Instance] = []
        # Per input: 0 a literal (resolved once), 1 exactly "{item}" of a glob fan-out (the
        # item is a file or an output by construction), 2 a template.
        self.input_modes = tuple(
            0 if t.is_literal else 1 if (self.glob and t.text == "{item}") else 2
            for t, _ in spec.inputs)


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
        for spec in self.specs:
            plan = self.plans[id(spec)]
            for inst in plan.instances:
                tasks.append(self._task(spec, plan, inst))
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
        names = plan.raw_names
        ctx = inst.ctx
        if names:
            if item is not None:
                if "item" in names:
                    ctx["item"] = item
                if "stem" in names or "name" in names:
                    base = item_name(item)
                    ctx["name"] = base
                    i = base.rfind(".")
                    ctx["stem"] = base[:i] if 0 < i < len(base) - 1 else base
                if "dir" in names:
                    ctx["dir"] = item_dir(item)
            if "task" in names:
                ctx["task"] = name
        if not spec.outputs:
            return inst
        folder, owner = spec.doc.folder, self.owner
        outs = []
        for t, path in spec.outputs:
            text = t.fill(ctx)
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
            pending.extend((spec, p) for p in found)
        candidates = list(self.owner)
        rounds = 0
        owner = self.owner
        items_by_spec: dict[int, list[_Instance]] = {id(s): [] for s in specs}
        while True:
            for spec in specs:
                full, prefix, items = state[id(spec)]
                for out in [o for o in candidates if o.startswith(prefix) and full(o)]:
                    if out not in items and owner[out].spec is not spec:
                        items.add(out)
                        pending.append((spec, out))
            if not pending:
                break
            rounds += 1
            if rounds > len(specs) + 1:
                spec, out = pending[0]
                raise spec.source.error(
                    f"foreach of task {spec.name!r} keeps matching new outputs of task "
                    f"{owner[out].spec.name!r}: fan-outs that feed each other never end",
                    spec.foreach_key, value=True)
            candidates = []
            for spec, path in pending:
                plan = self.plans[id(spec)]
                item = relative_to(path, spec.doc.folder)
                inst = self._make(spec, plan, f"{spec.name}[{item}]", item, path)
                items_by_spec[id(spec)].append(inst)
                candidates.extend(inst.outputs)
            pending = []
        for spec in specs:
            insts = items_by_spec[id(spec)]
            insts.sort(key=lambda i: i.item)
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

    def _task(self, spec: TaskSpec, plan: _Plan, inst: _Instance) -> Task:
        inputs = self._inputs(spec, plan, inst) if spec.inputs else ()
        commands = plan.const_commands
        if commands is None:
            commands = self._commands(spec, plan, inst, inputs)
        # Every field, in Task's order (task_from_fields is twice as quick as Task(...)).
        return task_from_fields((
            inst.name, commands, inputs, inst.outputs, plan.after, spec.phony, spec.resources,
            spec.retries, spec.timeout, spec.env, spec.cwd, spec.name, inst.item, spec.location,
            (),                 # ignore_errors: none
            True,               # silent: commands are not echoed into a task's output (make's @)
            _SHELL, spec.description))

    def _inputs(self, spec: TaskSpec, plan: _Plan, inst: _Instance) -> tuple[str, ...]:
        folder, owner, exists = spec.doc.folder, self.owner, self.disk.exists
        out: list[str] = []
        for k, mode in enumerate(plan.input_modes):
            if mode == 1:
                out.append(inst.item_root)        # type: ignore[arg-type]
                continue
            t, path = spec.inputs[k]
            if mode == 0:
                const = plan.const_inputs.get(k)
                if const is None:
                    const = plan.const_inputs[k] = self._input(spec, inst, t.render({}), path)
                out.extend(const)
                continue
            text = t.fill(inst.ctx)
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
        names = plan.cmd_names
        cwd = plan.cwd_rel
        q: dict[str, str] = {}
        if "input" in names:
            if not inputs:
                self._missing(spec, inst, "input", "inputs")
            q["input"] = quote_path(relative_to(inputs[0], cwd) if cwd else inputs[0])
        if "inputs" in names:
            q["inputs"] = quote_paths([relative_to(p, cwd) for p in inputs] if cwd else inputs)
        if "output" in names:
            if not inst.outputs:
                self._missing(spec, inst, "output", "outputs")
            q["output"] = quote_path(relative_to(inst.outputs[0], cwd) if cwd else inst.outputs[0])
        if "outputs" in names:
            outs = inst.outputs
            q["outputs"] = quote_paths([relative_to(p, cwd) for p in outs] if cwd else outs)
        item = inst.item
        if item is not None:
            if "item" in names:
                root_item = inst.item_root
                if root_item is None:
                    q["item"] = quote(item)
                else:
                    q["item"] = quote_path(relative_to(root_item, cwd) if cwd else root_item)
            if "stem" in names:
                q["stem"] = quote(item_stem(item))
            if "name" in names:
                q["name"] = quote(item_name(item))
            if "dir" in names:
                if inst.item_root is not None:
                    d = posixpath.dirname(inst.item_root)
                    rel = relative_to(d, cwd) if d else (posixpath.relpath(".", cwd) if cwd else ".")
                    q["dir"] = quote_path(rel)
                else:
                    q["dir"] = quote(item_dir(item))
        if "task" in names:
            q["task"] = quote(inst.name)
        return tuple([t.fill(q) for t, _ in spec.commands])

    def _missing(self, spec: TaskSpec, inst: _Instance, field: str, what: str) -> None:
        for t, path in spec.commands:
            for f in t.fields:
                if f.name == field:
                    raise WorkflowError(f"'{{{field}}}' in cmd, but task {inst.name!r} has no {what}",
                                        spec.source.loc_in_string(path, t.text, f.offset))
        raise spec.source.error(f"'{{{field}}}' in cmd, but task {inst.name!r} has no {what}",
                                spec.key)


class _Any:
    @staticmethod
    def fullmatch(_: str) -> bool:
        return True


_ANY: Any = _Any()
