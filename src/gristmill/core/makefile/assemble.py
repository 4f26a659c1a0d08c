"""Turn what GNU make said (data base, recorded commands, messages) into a ``Workflow``.

Each target with a rule becomes a ``Task``: its normal prerequisites are
inputs, order-only prerequisites that are tasks are ``after``, the commands
are the ones make ran for it in the recording pass, and the target is the
output unless it is phony. Targets built together (grouped ``&:`` targets, a
pattern rule with several targets) are one task with several outputs.
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import replace

from ..errors import Location
from ..workflow import PROCESS, Resources, Task, Workflow, WorkflowWarning, new_task
from .cautions import general_cautions, intermediate_files, kept_on_failure, task_cautions
from .database import FileEntry
from .facts import MakeFacts, matches
from .hints import HintBook
from .prefixes import analyse_line, assign_noerror
from .recording import clean_env

_POSIX_SHELLS = {"sh", "bash", "dash", "ksh", "mksh", "zsh", "busybox", "ash"}

NOTPARALLEL_POOL = "make.notparallel"
RULES_POOL = "make.rules:"       # + a target of several "::" rules: one of them at a time
UNREAD_RECIPE = "its recipe, read from the Makefile when it runs:"
NOT_READ = ("gristmill: the recipe of '{}' was not read (it is not on the path of the goals "
            "Gristmill read the Makefile for); run it by name")


def rule_task(target: str, rule: int) -> str:
    """The task of the ``rule``-th (from 0) of a target's several ``::`` rules: ``all::1``."""
    return f"{target}::{rule + 1}"


class WorkflowAssembler:
    def __init__(self, facts: MakeFacts):
        self.f = facts
        self.hints = HintBook(facts)
        self.warnings: list[WorkflowWarning] = list(facts.warnings)
        self._shellflags = tuple(shlex.split(facts.db_read.value(".SHELLFLAGS") or "-c"))
        self._cwd = str(facts.folder)
        self._no_resources = Resources()
        self._tasks_of: dict[str, list[str]] = {}
        self._always: set[str] = set()

    def warn(self, message: str, location: Location | None = None) -> None:
        self._add([WorkflowWarning(message, location)])

    def _add(self, warnings: list[WorkflowWarning]) -> None:
        for w in warnings:
            if w not in self.warnings:
                self.warnings.append(w)

    # -- which files are tasks ---------------------------------------------------------
    def task_names(self) -> list[str]:
        f = self.f
        names: dict[str, None] = {}
        for db in (f.db_a, f.db_b):
            for n in (db.order if db is not None else ()):
                names.setdefault(n, None)
        for n in f.records:
            names.setdefault(n, None)
        makefiles = set(f.makefile_list)
        out = []
        for n in names:
            if f.skip_name(n):
                continue
            e = f.entry(n)
            recorded = n in f.records
            if e is None:
                if recorded:
                    out.append(n)
                continue
            if not (e.is_target or recorded):
                continue        # a plain file, or a suffix rule make never used
            bare = not e.has_recipe and not e.prereqs and not e.order_only and not recorded
            if bare and not e.phony and not e.double_colon and n not in f.failing:
                # "foo.h:" with no recipe and no prerequisites is a plain file while it exists
                # (make never remakes it); a missing one is "always remade" (FORCE).
                if n in makefiles or (f.folder / n).exists():
                    continue
            out.append(n)
        return out

    def _groups(self, names: list[str]) -> dict[str, list[str]]:
        """Targets one recipe run makes together, keyed by the one make ran it for."""
        together = [(n, e.also_makes) for n in names
                    if (e := self.f.entry(n)) is not None and e.also_makes]
        if not together:        # no grouped targets: a task each
            return {n: [n] for n in names}
        parent = {n: n for n in names}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for n, also in together:
            for other in also:
                if other in parent and find(n) != find(other):
                    parent[find(other)] = find(n)
        clusters: dict[str, list[str]] = {}
        for n in names:
            clusters.setdefault(find(n), []).append(n)
        out: dict[str, list[str]] = {}
        for members in clusters.values():
            if len(members) == 1:           # nearly every target: a task of its own
                out[members[0]] = members
                continue
            recorded = [m for m in members if m in self.f.records]
            rep = recorded[0] if recorded else members[0]
            out[rep] = [rep] + [m for m in members if m != rep]
        return out

    def _phony_names(self, names: list[str]) -> set[str]:
        f = self.f
        out = set(f.db_a.special_prereqs(".PHONY") or [])
        if f.db_b is not None:
            out |= set(f.db_b.special_prereqs(".PHONY") or [])
        for n in names:
            e = f.entry(n)
            if e is not None and (e.phony or f.force_like(n, e)):
                out.add(n)
        return out

    # -- the workflow ------------------------------------------------------------------
    def build(self) -> Workflow:
        f = self.f
        names = self.task_names()
        groups = self._groups(names)
        member_of = {m: rep for rep, ms in groups.items() for m in ms}
        phony = self._phony_names(names)
        notparallel = f.db_read.special_prereqs(".NOTPARALLEL") is not None
        if notparallel:
            self.hints.pool_sizes[NOTPARALLEL_POOL] = 1
        tasks: dict[str, Task] = {}
        record_order = {t: i for i, t in enumerate(f.records)}
        split = self._by_rule(groups)
        self._always = {n for n in names if (e := f.entry(n)) is not None and e.double_colon
                        and any(not r.prereqs for r in e.rules)}
        self._tasks_of = {rep: [rule_task(rep, k) for k in range(n)] for rep, n in split.items()}
        for rep, members in groups.items():
            if rep in split:
                for k in range(split[rep]):
                    task = self._task(rep, members, member_of, phony, notparallel, rule=k)
                    tasks[task.name] = task
                tasks[rep] = self._rules_target(rep, member_of, phony)
            else:
                tasks[rep] = self._task(rep, members, member_of, phony, notparallel)
        ordered = dict(sorted(tasks.items(), key=lambda kv: (
            f.order_key(kv[1].location), record_order.get(kv[0], len(record_order)))))
        if split:
            ordered = self._targets_after_rules(ordered)
        for name, used, ignored in self.hints.conflicts:
            self.warn(f"target '{name}' has more than one gristmill hint; using the one at {used}", ignored)
        self._add(general_cautions(f, self.hints.used))
        goal = f.db_a.default_goal
        default = (member_of[goal],) if goal in member_of else ()
        return Workflow(
            name=f.folder.name,
            path=f.folder / f.makefile,
            root=f.folder,
            tasks=ordered,
            default=default,
            pools=self.hints.pools(),
            vars=self._vars(),
            kind="make",
            warnings=tuple(self.warnings),
            files=tuple(f.files()),
            messages=tuple(f.read_messages),
            intermediate=intermediate_files(f) & {o for t in ordered.values() for o in t.outputs},
            keep_on_failure=kept_on_failure(f),
        )

    # -- double-colon rules: a task each ----------------------------------------------
    def _by_rule(self, groups: dict[str, list[str]]) -> dict[str, int]:
        """Targets with several ``::`` rules -> how many: each rule is a task of its own
        (``all::1``, ``all::2``...), as make treats each on its own prerequisites. Where
        the recording could not tell the rules' commands apart, they stay one task."""
        f = self.f
        out: dict[str, int] = {}
        for rep, members in groups.items():
            e = f.entry(rep)
            if e is not None and e.double_colon and len(e.rules) > 1 and len(members) == 1 \
                    and (rep not in f.records or rep in f.rule_records):
                out[rep] = len(e.rules)
        return out

    def _always_runs(self, name: str) -> bool:
        """A target with a ``::`` rule of no prerequisites: that rule runs every time."""
        return name in self._always

    def _targets_after_rules(self, ordered: dict[str, Task]) -> dict[str, Task]:
        """Each target of several ``::`` rules right after its last rule's task: the
        target's task is the producer of its file (the last task naming an output)."""
        last = {rules[-1]: rep for rep, rules in self._tasks_of.items()}
        out: dict[str, Task] = {}
        for name, task in ordered.items():
            if name in self._tasks_of:
                continue
            out[name] = task
            if name in last:
                out[last[name]] = ordered[last[name]]
        return out

    def _rule_view(self, rep: str, e: FileEntry, rule: int) -> tuple[FileEntry, tuple[str, int] | None]:
        """``e`` with only its ``rule``-th ``::`` rule, and the line that rule is on."""
        view = replace(e, rules=[e.rules[rule]])
        place = self.f.recipe_place(view)
        if place is None:
            mentions = self.f.mentions(rep)
            if len(mentions) == len(e.rules):      # every rule written with the name itself
                place = mentions[rule]
        return view, place

    def _rules_target(self, rep: str, member_of: dict[str, str], phony: set[str]) -> Task:
        """The target of several ``::`` rules: after each rule's task, reading all their
        prerequisites, so that it (and what depends on it) is stale when any rule is. It
        runs nothing: its rules' tasks have the commands."""
        e = self.f.entry(rep)
        assert e is not None
        rules = self._tasks_of[rep]
        inputs, after = self._edges(rep, [rep], member_of, phony, e)
        is_phony = rep in phony or self._always_runs(rep)
        return new_task(
            rep, (), inputs, () if is_phony else (self.f.rel(rep),), after, is_phony,
            self._no_resources, 0, None, (), self._cwd, rep, None, self.f.location(rep, e),
            (), False, (self.f.real_shell, *self._shellflags),
            f"made by its {len(rules)} double-colon rules, each a task: " + ", ".join(rules),
            False, PROCESS, "mtime", (), "", "")

    def _task(self, rep: str, members: list[str], member_of: dict[str, str], phony: set[str],
              notparallel: bool, rule: int | None = None) -> Task:
        f = self.f
        main = f.entry(rep)
        recs = f.records.get(rep, [])
        name, place = rep, None
        if rule is not None and main is not None:
            name = rule_task(rep, rule)
            main, place = self._rule_view(rep, main, rule)
            rules = f.rule_records.get(rep)
            recs = rules[rule] if rules else []
        is_phony = rep in phony
        if main is not None and main.double_colon and any(not rule.prereqs for rule in main.rules):
            is_phony = True      # a "::" rule with no prerequisites always runs
        shell_path = self._shell_for(main)
        commands = tuple(self._clean_command(rec.command, shell_path) for rec in recs)
        flags = recs[0].flags if recs else self._shellflags
        shell: tuple[str, ...] = (shell_path, *flags)
        location = f.loc(*place) if place else f.location(rep, main)
        if rep in f.failing:
            commands = (f"printf '%s\\n' {shlex.quote(f.failing[rep])} >&2; exit 2",)
            shell = ("/bin/sh", "-c")
            recs = []
        unread = not recs and rep not in f.failing and rep not in f.from_a and main is not None \
            and any(r.has_recipe for r in main.rules)
        if unread:
            # Not among the goals read: its recipe was never expanded (reading runs no
            # recipe's $(shell ...)). Running it reads the Makefile again with it as a
            # goal; this stand-in only says so, should anything run it as it is.
            commands = (f"printf '%s\\n' {shlex.quote(NOT_READ.format(rep))} >&2; exit 2",)
            # The Makefile's own SHELL stays the task's (make runs its recipe with it).
            shell = (shell_path or "/bin/sh", "-c")
        env: tuple[tuple[str, str], ...] = ()
        if recs:
            env, unset = clean_env(recs[0].env, f.base_env, f.user_vars, commands,
                                   f.runs_sub_make(main, recs))
            env = tuple((k, v.replace(f.recorder_path, shell_path)) for k, v in env)
            if unset:
                # "unexport": the engine adds to its environment, so env(1) takes these out again
                shell = (shutil.which("env") or "/usr/bin/env", *(a for n in unset for a in ("-u", n)),
                         *shell)
        inputs, after = self._edges(rep, members, member_of, phony, main)
        hint = self.hints.for_target(rep, main, [place] if place else None)
        resources = hint.resources if hint else self._no_resources
        if notparallel and commands:
            resources = Resources(resources.cpu, resources.mem, resources.gpu,
                                  resources.pools + ((NOTPARALLEL_POOL, 1),), resources.gpu_mem)
        if rule is not None and commands:
            # make runs one "::" rule of a target at a time ("don't run other :: rules for
            # this target until this rule is finished"), yet each on its own: a pool of one
            # per target, not an order between them (a failed rule skips no other, as -k).
            pool = RULES_POOL + rep
            self.hints.pool_sizes[pool] = 1
            resources = Resources(resources.cpu, resources.mem, resources.gpu,
                                  resources.pools + ((pool, 1),), resources.gpu_mem)
        self._add(task_cautions(f, rep, main, recs, location, set(members)))
        ignore = (False,) if unread else self._ignore_errors(rep, main, len(commands), location)
        # The stand-ins say their one line as make would (make's error, or "not read"):
        # their own printf is not a command of the Makefile, and is not echoed.
        silent = unread or rep in f.failing or (bool(recs) and all(not rec.echoed for rec in recs))
        said = f.recipe_info.get(rep) if rule is None else None
        if said and rep not in f.failing and os.path.basename(shell_path) in _POSIX_SHELLS:
            # make prints a recipe's $(info ...) as it expands it, before the first command
            # runs: the task prints it first, when (and only when) it runs.
            commands = ("printf '%s\\n' " + " ".join(shlex.quote(x) for x in said),) + commands
            ignore = (False,) + tuple(ignore) if ignore else ()
            silent = silent or len(commands) == 1
        # new_task: every field in Task's order (a frozen Task(...) costs three times as much).
        return new_task(
            name, commands, inputs,
            () if is_phony else tuple(f.rel(m) for m in members),    # outputs
            after, is_phony, resources,
            hint.retries if hint else 0,                              # retries
            hint.timeout if hint else None,                           # timeout
            env, self._cwd,
            rep, None,                                                # group, item
            location, ignore, silent, shell,
            (UNREAD_RECIPE + "".join("\n" + raw for raw in f.raw_recipe(main))
             if unread else self._description(main)),                # description
            hint.audit if hint else False,
            hint.isolation if hint else PROCESS,
            hint.check if hint else "mtime",
            hint.retry_mem if hint else (),
            "", "")                                                   # where, definition hash

    def _clean_command(self, text: str, shell_path: str) -> str:
        """The command as a normal run has it: our shell's path and our makefile taken out."""
        text = text.replace(self.f.recorder_path, shell_path)
        for private in self.f.private_files:
            text = text.replace(" " + private, "").replace(private, "")
        return text

    def _edges(self, rep: str, members: list[str], member_of: dict[str, str],
               phony: set[str], main: FileEntry | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        inputs: dict[str, None] = {}
        after: dict[str, None] = {}
        split = self._tasks_of
        rel, known, always = self.f.rel, self.f._rel, self._always
        for e in (main if m == rep else self.f.entry(m) for m in members):
            if e is None:
                continue
            prereqs = e.prereqs
            for p in prereqs:
                if (p in phony or p in always) and p in member_of and p not in members:
                    # A phony prerequisite has no file: "after" orders its task first, and as an
                    # input that never exists it makes this target run every time, as in make.
                    after[member_of[p]] = None
            own = prereqs if rep not in prereqs and len(members) == 1 else \
                [p for p in prereqs if p not in members]
            inputs.update(dict.fromkeys([known.get(p) or rel(p) for p in own]))
            for p in e.order_only:
                if p in member_of and member_of[p] != rep:
                    after[member_of[p]] = None
        if rep in split and main is not None and len(main.rules) > 1:
            # The target of several "::" rules: made when each rule's task has run. It
            # runs nothing itself; reading all their prerequisites, it is stale (and what
            # depends on it runs) when any rule is.
            for t in split[rep]:
                after[t] = None
        return tuple(inputs), tuple(after)

    def _shell_for(self, e: FileEntry | None) -> str:
        """The shell make runs this target's recipe with: its own SHELL, a pattern's, or the global one."""
        f = self.f
        if e is None:
            return f.real_shell
        own = f.db_read.files.get(e.name)
        found = [v for v in (own.target_vars if own else []) if v.name == "SHELL"]
        if not found:
            found = [pv.variable for pv in f.db_read.pattern_vars
                     if pv.variable.name == "SHELL" and matches(pv.pattern, e.name)]
        if found:
            v = found[-1]
            if "$" not in v.value and v.op in ("=", ":=", "::="):
                return v.value.strip()
            self.warn(f"SHELL for '{e.name}' is not a plain path ({v.value!r}); Gristmill uses "
                      f"{f.real_shell}", f.loc(v.file, v.line) if v.file and v.line else None)
        return f.real_shell

    def _description(self, e: FileEntry | None) -> str:
        if e is None:
            return ""
        for rule in e.rules:
            if rule.builtin:
                return "make's built-in implicit rule"
            if rule.recipe_file and e.stem:
                recipe = self.f.recipe_place(e)
                if recipe and recipe not in self.f.mentions(e.name):
                    return f"pattern rule at {self.f.loc(*recipe)}"
        return ""

    # -- "-" per command ---------------------------------------------------------------
    def _ignore_all(self) -> bool:
        ig = self.f.db_a.special_prereqs(".IGNORE")
        if ig is not None and not ig:
            return True
        words = (self.f.db_read.value("MAKEFLAGS") or "").split(" -- ")[0].split()
        letters = words[0] if words and not words[0].startswith("-") else ""
        return "i" in letters or "-i" in words or "--ignore-errors" in words

    def _ignore_errors(self, name: str, e: FileEntry | None, n: int,
                       location: Location | None) -> tuple[bool, ...]:
        if n == 0:
            return ()
        f = self.f
        if self._ignore_all() or name in (f.db_a.special_prereqs(".IGNORE") or ()):
            return (True,) * n
        if e is None or name in f.failing:
            return (False,) * n
        lines = [analyse_line(raw, self._lookup(e)) for raw in f.raw_recipe(e)]
        if f.db_a.special_prereqs(".ONESHELL") is not None and lines:
            return (bool(lines[0].noerror),) * n
        flags, certain = assign_noerror(lines, n)
        if not certain:
            self.warn(f"cannot tell which commands of '{name}' ignore errors (a '-' that comes from "
                      "a variable or function); Gristmill stops at the first failing one", location)
        return tuple(flags)

    def _lookup(self, e: FileEntry):
        """Variable values as make would see them for ``e``'s recipe (near enough for a prefix)."""
        db = self.f.db_a if e.name in self.f.from_a or self.f.db_b is None else self.f.db_b
        own = {v.name: v for v in e.target_vars}

        def lookup(name: str) -> tuple[str, str] | None:
            v = own.get(name)
            if v is not None and v.op in ("=", ":=", "::="):
                return v.value, v.flavor
            g = db.variables.get(name)
            if g is None:
                return None
            if v is not None and v.op == "+=":
                return g.value + " " + v.value, g.flavor
            return g.value, g.flavor
        return lookup

    def _vars(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, v in sorted(self.f.db_read.variables.items()):
            if v.origin in ("makefile", "command line", "override") and not name.startswith("GRISTMILL_") \
                    and name not in ("MAKEFILE_LIST", ".DEFAULT_GOAL") and v.file not in self.f.private_files:
                out[name] = v.value
        return out
