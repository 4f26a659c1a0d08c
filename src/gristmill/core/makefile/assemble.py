"""Turn what GNU make said (data base, recorded commands, messages) into a ``Workflow``.

Each target with a rule becomes a ``Task``: its normal prerequisites are
inputs, order-only prerequisites that are tasks are ``after``, the commands
are the ones make ran for it in the recording pass, and the target is the
output unless it is phony. Targets built together (grouped ``&:`` targets, a
pattern rule with several targets) are one task with several outputs.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Location, WorkflowError
from ..workflow import Resources, Task, Workflow, WorkflowWarning
from .database import SPECIAL_TARGETS, Database, FileEntry, split_names
from .hints import TaskHint, parse_hint
from .prefixes import analyse_line, assign_noerror
from .recording import Record, clean_env
from .source import SourceFile

NOTPARALLEL_POOL = "make.notparallel"
_RUN_TIME_FUNCS = ("shell", "wildcard", "eval", "file")


@dataclass
class ReadResult:
    """Everything the reading passes learned, for the assembler."""

    folder: Path
    makefile: str                           # as make names it (relative to folder)
    makefile_path: Path                     # the file given
    display_base: str                       # prefix for user-facing paths ("" or "dir/")
    db_a: Database                          # the default goal's pass
    db_b: Database | None                   # the other targets' pass
    db_read: Database                       # make's first read, with the Makefile's own SHELLs
    records: dict[str, list[Record]]        # target -> its commands (pass A wins)
    from_a: set[str]                        # targets make handled in pass A
    real_shell: str
    recorder_path: str
    private_files: set[str]                 # our own post.mk etc., to leave out
    base_env: dict[str, str]
    user_vars: list[str]
    sources: dict[str, SourceFile]
    makefile_list: list[str]
    failing: dict[str, str] = field(default_factory=dict)   # target -> make's error text
    remade_makefiles: list[str] = field(default_factory=list)
    warnings: list[WorkflowWarning] = field(default_factory=list)
    cmdgoals_b: list[str] = field(default_factory=list)
    make_command: str = "make"


class WorkflowAssembler:
    def __init__(self, r: ReadResult):
        self.r = r
        self.warnings: list[WorkflowWarning] = list(r.warnings)
        self.pool_sizes: dict[str, int] = {}
        self.pool_where: dict[str, Location] = {}
        self.used_hints: set[tuple[str, int]] = set()

    # -- places -----------------------------------------------------------------
    def display(self, file: str) -> str:
        if os.path.isabs(file) or not self.r.display_base:
            return file
        return self.r.display_base + file

    def loc(self, file: str, line: int, col: int = 1) -> Location:
        return Location(self.display(file), line, col)

    def warn(self, message: str, location: Location | None = None) -> None:
        w = WorkflowWarning(message, location)
        if w not in self.warnings:
            self.warnings.append(w)

    def rel(self, name: str) -> str:
        """A make file name as a POSIX path relative to the workflow root."""
        if os.path.isabs(name):
            return Path(os.path.relpath(name, self.r.folder)).as_posix()
        return posixpath.normpath(name)

    # -- which file entries are tasks -------------------------------------------
    def entry(self, name: str) -> FileEntry | None:
        r = self.r
        if name in r.from_a or r.db_b is None:
            return r.db_a.files.get(name) or (r.db_b.files.get(name) if r.db_b else None)
        return r.db_b.files.get(name) or r.db_a.files.get(name)

    def _skip_name(self, name: str) -> bool:
        if name in SPECIAL_TARGETS or "%" in name or name in self.r.private_files:
            return True
        return name.startswith(".") and self._is_suffix_rule(name)

    def _is_suffix_rule(self, name: str) -> bool:
        suffixes = self.r.db_a.special_prereqs(".SUFFIXES") or []
        if name in suffixes:
            return True
        return any(name.startswith(s) and name[len(s):] in suffixes for s in suffixes)

    def task_names(self) -> list[str]:
        r = self.r
        names: dict[str, None] = {}
        for db in (r.db_a, r.db_b):
            if db is None:
                continue
            for n in db.order:
                names.setdefault(n, None)
        for n in r.records:
            names.setdefault(n, None)
        out = []
        makefiles = set(r.makefile_list)
        for n in names:
            if self._skip_name(n):
                continue
            e = self.entry(n)
            recorded = n in r.records
            if e is None:
                if recorded:
                    out.append(n)
                continue
            if not (e.is_target or recorded):
                continue        # a plain file, or a suffix rule make never used
            bare = not e.has_recipe and not e.prereqs and not e.order_only and not recorded
            if bare and not e.phony and not e.double_colon and n not in r.failing:
                # "foo.h:" with no recipe and no prerequisites: a plain file while it exists
                # (make never remakes it); a missing one is "always remade" (FORCE).
                if n in makefiles or (r.folder / n).exists():
                    continue
            out.append(n)
        return out

    # -- the workflow -------------------------------------------------------------
    def build(self) -> Workflow:
        r = self.r
        names = self.task_names()
        groups = self._groups(names)
        member_of = {m: rep for rep, ms in groups.items() for m in ms}
        phony = self._phony_names()
        phony |= {n for n in names if self._force_like(n, self.entry(n), self.r.records.get(n, []))}
        notparallel = r.db_read.special_prereqs(".NOTPARALLEL") is not None
        if notparallel:
            self.pool_sizes[NOTPARALLEL_POOL] = 1
        ignore_all = self._ignore_all()
        tasks: dict[str, Task] = {}
        order_key: dict[str, tuple] = {}
        record_order = {t: i for i, t in enumerate(r.records)}
        for rep, members in groups.items():
            task, key = self._task(rep, members, member_of, phony, notparallel, ignore_all)
            tasks[rep] = task
            order_key[rep] = key + (record_order.get(rep, len(record_order)),)
        ordered = dict(sorted(tasks.items(), key=lambda kv: order_key[kv[0]]))
        self._general_warnings(names, groups)
        default_goal = r.db_a.default_goal
        default: tuple[str, ...] = ()
        if default_goal and default_goal not in r.private_files:
            if default_goal in member_of:
                default = (member_of[default_goal],)
            elif default_goal in ordered:
                default = (default_goal,)
        for name, size in self.pool_sizes.items():
            if size <= 0:
                raise WorkflowError(f"pool {name!r} has no size: write pool={name}:N in one hint",
                                    self.pool_where.get(name))
        return Workflow(
            name=r.folder.name,
            path=r.folder / r.makefile,
            root=r.folder,
            tasks=ordered,
            default=default,
            pools=dict(self.pool_sizes),
            vars=self._vars(),
            kind="make",
            warnings=tuple(self.warnings),
            files=tuple(self._files()),
        )

    def _groups(self, names: list[str]) -> dict[str, list[str]]:
        """Targets one recipe run makes together, keyed by the one make ran it for."""
        parent = {n: n for n in names}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for n in names:
            e = self.entry(n)
            if e is None:
                continue
            for other in e.also_makes:
                if other in parent:
                    a, b = find(n), find(other)
                    if a != b:
                        parent[b] = a
        clusters: dict[str, list[str]] = {}
        for n in names:
            clusters.setdefault(find(n), []).append(n)
        out: dict[str, list[str]] = {}
        for members in clusters.values():
            recorded = [m for m in members if m in self.r.records]
            rep = recorded[0] if recorded else members[0]
            out[rep] = [rep] + [m for m in members if m != rep]
        return out

    def _phony_names(self) -> set[str]:
        out = set(self.r.db_a.special_prereqs(".PHONY") or [])
        if self.r.db_b is not None:
            out |= set(self.r.db_b.special_prereqs(".PHONY") or [])
        for n in list(self.r.records):
            e = self.entry(n)
            if e is not None and e.phony:
                out.add(n)
        return out

    def _ignore_all(self) -> bool:
        ig = self.r.db_a.special_prereqs(".IGNORE")
        if ig is not None and not ig:
            return True
        flags = (self.r.db_a.value("MAKEFLAGS") or "").split(" -- ")[0].split()
        return bool(flags) and not flags[0].startswith("-") and "i" in flags[0] or "-i" in flags \
            or "--ignore-errors" in flags

    def _task(self, rep: str, members: list[str], member_of: dict[str, str], phony: set[str],
              notparallel: bool, ignore_all: bool) -> tuple[Task, tuple]:
        r = self.r
        entries = [e for e in (self.entry(m) for m in members) if e is not None]
        main = self.entry(rep)
        recs = r.records.get(rep, [])
        is_phony = rep in phony
        double = main is not None and main.double_colon
        if double and any(not rule.prereqs for rule in main.rules):
            is_phony = True      # a "::" rule with no prerequisites always runs
        if self._force_like(rep, main, recs):
            is_phony = True      # no recipe, no prerequisites, no file: make "remakes" it every time
        shell_path = self._shell_for(main)
        commands = tuple(self._fix_shell(rec.command, shell_path) for rec in recs)
        flags = recs[0].flags if recs else tuple(shlex.split(r.db_a.value(".SHELLFLAGS") or "-c"))
        shell = (shell_path, *flags)
        location = self._location(rep, main)
        if rep in r.failing:
            message = r.failing[rep]
            commands = (f"printf '%s\\n' {shlex.quote(message)} >&2; exit 2",)
            shell = ("/bin/sh", "-c")
            recs = []
        ignore = self._ignore_errors(rep, main, len(commands), ignore_all, location)
        silent = bool(recs) and all(not rec.echoed for rec in recs)
        inputs: dict[str, None] = {}
        after: dict[str, None] = {}
        member_set = set(members)
        for e in entries:
            for p in e.prereqs:
                if p in member_set:
                    continue
                if p in phony and p in member_of:
                    # A phony prerequisite has no file: "after" orders its task first, and as an
                    # input that never exists it makes this target run every time, as in make.
                    after[member_of[p]] = None
                inputs[self.rel(p)] = None
            for p in e.order_only:
                if p in member_of and member_of[p] != rep:
                    after[member_of[p]] = None
        outputs = () if is_phony else tuple(self.rel(m) for m in members)
        sub_make = self._runs_sub_make(main, recs)
        env, unset = clean_env(recs[0].env, r.base_env, r.user_vars, tuple(rec.command for rec in recs),
                               sub_make) if recs else ((), ())
        env = tuple((k, v.replace(r.recorder_path, shell_path)) for k, v in env)
        if unset:
            # "unexport": the engine adds to the environment, so env(1) takes these out again
            shell = (shutil.which("env") or "/usr/bin/env", *(a for n in unset for a in ("-u", n)),
                     *shell)
        hint = self._hint(rep, main, location)
        resources = hint.resources if hint else Resources()
        if notparallel and commands:
            resources = Resources(resources.cpu, resources.mem, resources.gpu,
                                  resources.pools + ((NOTPARALLEL_POOL, 1),))
        self._task_warnings(rep, main, recs, location, member_set)
        task = Task(
            name=rep,
            commands=commands,
            inputs=tuple(inputs),
            outputs=outputs,
            after=tuple(after),
            phony=is_phony,
            resources=resources,
            retries=hint.retries if hint else 0,
            timeout=hint.timeout if hint else None,
            env=env,
            cwd=str(r.folder),
            group=rep,
            location=location,
            ignore_errors=ignore,
            silent=silent,
            shell=shell,
            description=self._description(main),
        )
        key = (0, r.makefile_list.index(_unprefix(location.path, r.display_base))
               if location and _unprefix(location.path, r.display_base) in r.makefile_list else 0,
               location.line) if location else (1, 0, 0)
        return task, key

    def _runs_sub_make(self, e: FileEntry | None, recs: list[Record]) -> bool:
        raws = [raw for rule in e.rules for raw in rule.recipe] if e is not None else []
        make_words = {self.r.make_command, os.path.basename(self.r.make_command), "make", "gmake"}
        return any("$(MAKE)" in raw or "${MAKE}" in raw for raw in raws) or any(
            (rec.command.split() or [""])[0] in make_words for rec in recs)

    def _force_like(self, name: str, e: FileEntry | None, recs: list[Record]) -> bool:
        if e is None or recs or e.has_recipe or e.prereqs or e.order_only or name in self.r.failing:
            return False
        return not (self.r.folder / name).exists()

    def _shell_for(self, e: FileEntry | None) -> str:
        """The shell make runs this target's recipe with: its own SHELL, a pattern's, or the global one."""
        if e is None:
            return self.r.real_shell
        own = self.r.db_read.files.get(e.name)
        found = [v for v in (own.target_vars if own else []) if v.name == "SHELL"]
        if not found:
            found = [pv.variable for pv in self.r.db_read.pattern_vars
                     if pv.variable.name == "SHELL" and _matches(pv.pattern, e.name)]
        if found:
            v = found[-1]
            if "$" not in v.value and v.op in ("=", ":=", "::="):
                return v.value.strip()
            self.warn(f"SHELL for '{e.name}' is not a plain path ({v.value!r}); Gristmill uses "
                      f"{self.r.real_shell}", self.loc(v.file, v.line) if v.file and v.line else None)
        return self.r.real_shell

    def _fix_shell(self, text: str, shell: str) -> str:
        return text.replace(self.r.recorder_path, shell)

    # -- where, and what the hints say ---------------------------------------------
    def _recipe_place(self, e: FileEntry | None) -> tuple[str, int] | None:
        if e is None:
            return None
        for rule in e.rules:
            if rule.recipe_file is not None and rule.recipe_line is not None:
                src = self.r.sources.get(rule.recipe_file)
                line = src.rule_for(rule.recipe_line) if src else rule.recipe_line
                return rule.recipe_file, line
        return None

    def _mentions(self, name: str) -> list[tuple[str, int]]:
        out = []
        for f in self.r.makefile_list:
            src = self.r.sources.get(f)
            if src is not None:
                out.extend((f, line) for line in src.literal_targets.get(name, ()))
        return out

    def _location(self, name: str, e: FileEntry | None) -> Location | None:
        recipe = self._recipe_place(e)
        mentions = self._mentions(name)
        if recipe and (recipe in mentions or not mentions or not (e and e.stem)):
            return self.loc(*recipe)
        if mentions:
            return self.loc(*mentions[0])
        return self.loc(*recipe) if recipe else None

    def _hint(self, name: str, e: FileEntry | None, location: Location | None) -> TaskHint | None:
        places = []
        recipe = self._recipe_place(e)
        if recipe:
            places.append(recipe)
        places.extend(self._mentions(name))
        found: list[TaskHint] = []
        for f, line in places:
            src = self.r.sources.get(f)
            h = src.hint_for(line) if src else None
            if h is not None:
                self.used_hints.add((f, h.line))
                th = parse_hint(h.text, self.loc(f, h.line, h.col))
                if th not in found:
                    found.append(th)
        if not found:
            return None
        if len(found) > 1:
            self.warn(f"target '{name}' has more than one gristmill hint; using the one at "
                      f"{found[0].location}", found[1].location)
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

    def _description(self, e: FileEntry | None) -> str:
        if e is None:
            return ""
        for rule in e.rules:
            if rule.builtin:
                return "make's built-in implicit rule"
            if rule.recipe_file and e.stem:
                recipe = self._recipe_place(e)
                if recipe and recipe not in self._mentions(e.name):
                    return f"pattern rule at {self.loc(*recipe)}"
        return ""

    # -- "-" per command ---------------------------------------------------------------
    def _ignore_errors(self, name: str, e: FileEntry | None, n: int, ignore_all: bool,
                       location: Location | None) -> tuple[bool, ...]:
        if n == 0:
            return ()
        ignored = set(self.r.db_a.special_prereqs(".IGNORE") or [])
        if ignore_all or name in ignored or e is None or name in self.r.failing:
            return tuple([ignore_all or name in ignored] * n)
        lookup = self._lookup(e)
        lines = [analyse_line(raw, lookup) for rule in e.rules for raw in rule.recipe]
        if self.r.db_a.special_prereqs(".ONESHELL") is not None and lines:
            return (bool(lines[0].noerror),) * n
        flags, certain = assign_noerror(lines, n)
        if not certain:
            self.warn(f"cannot tell which commands of '{name}' ignore errors (a '-' that comes from "
                      "a variable or function); Gristmill stops at the first failing one", location)
        return tuple(flags)

    def _lookup(self, e: FileEntry):
        db = self.r.db_a if e.name in self.r.from_a or self.r.db_b is None else self.r.db_b
        tvars = {v.name: v for v in e.target_vars}

        def lookup(name: str):
            v = tvars.get(name)
            if v is not None and v.op in ("=", ":=", "::="):
                return v.value, v.flavor
            g = db.variables.get(name)
            if g is None:
                return None
            if v is not None and v.op == "+=":
                return g.value + " " + v.value, g.flavor
            return g.value, g.flavor
        return lookup

    # -- warnings ------------------------------------------------------------------------
    def _task_warnings(self, name: str, e: FileEntry | None, recs: list[Record],
                       location: Location | None, members: set[str]) -> None:
        if e is None:
            return
        raws = [raw for rule in e.rules for raw in rule.recipe]
        if self._runs_sub_make(e, recs):
            self.warn(f"'{name}' runs a sub-make ($(MAKE)): Gristmill runs it as one step and cannot "
                      "see, schedule or explain the targets inside it", location)
        for raw in raws:
            if _uses_auto(raw, "?"):
                self.warn(f"the recipe of '{name}' uses $? (prerequisites newer than the target): "
                          "Gristmill expands it when it reads the Makefile, to all of them", location)
                break
        for raw in raws:
            used = [f for f in _RUN_TIME_FUNCS if f"$({f} " in raw or f"${{{f} " in raw]
            if used:
                self.warn(f"the recipe of '{name}' calls $({used[0]} ...), which Gristmill expands "
                          "when it reads the Makefile; make expands it just before the recipe runs, "
                          "after the prerequisites are built", location)
                break
        if e.double_colon and len(e.rules) > 1 and any(rule.prereqs for rule in e.rules):
            self.warn(f"'{name}' has {len(e.rules)} double-colon rules: Gristmill runs them together "
                      "as one task when any is out of date (make runs each rule on its own)", location)
        if "(" in name and name.endswith(")"):
            self.warn(f"'{name}' is an archive member: Gristmill cannot read member times and treats it "
                      "as a file of that name", location)
        own = self.r.db_read.files.get(name)
        private_ok = [v for v in (own.target_vars if own else e.target_vars) if not v.private]
        if private_ok:
            deps_with_recipes = [p for p in e.prereqs + e.order_only
                                 if p not in members and p in self.r.records]
            if deps_with_recipes:
                v = private_ok[0]
                where = self.loc(v.file, v.line) if v.file and v.line else location
                self.warn(f"target-specific variable {v.name} of '{name}' also applies to its "
                          f"prerequisites when make builds '{name}'; Gristmill gives each target the "
                          "commands make runs for it on the default goal's path", where)

    def _general_warnings(self, names: list[str], groups: dict[str, list[str]]) -> None:
        r = self.r
        for db in (r.db_a, r.db_b):
            if db is None:
                continue
            secondary = db.special_prereqs(".SECONDARY")
            if secondary is not None and not secondary:
                continue          # ".SECONDARY:" alone: make deletes no intermediate file
            kept = set(secondary or ()) | set(db.special_prereqs(".PRECIOUS") or ())
            for n, e in db.files.items():
                if n in kept or e.precious:
                    continue
                if e.intermediate and e.has_recipe and n in r.records and not self._skip_name(n):
                    self.warn(f"make deletes the intermediate file '{n}' after a build; "
                              "Gristmill keeps it", self._location(n, e))
        precious = [p for p in (r.db_a.special_prereqs(".PRECIOUS") or []) if "%" not in p]
        for p in precious:
            self.warn(f"'{p}' is .PRECIOUS: Gristmill still removes a failed task's partial outputs",
                      self._location(p, self.entry(p)))
        for f, src in r.sources.items():
            for h in src.hints:
                if (f, h.line) not in self.used_hints:
                    self.warn("this gristmill hint is not on the line above a rule of any target; "
                              "it applies to nothing", self.loc(f, h.line, h.col))
            if src.mentions_makecmdgoals and r.cmdgoals_b:
                self.warn("the Makefile reads MAKECMDGOALS: Gristmill read the default goal with it "
                          "empty, and the other targets with MAKECMDGOALS='"
                          + " ".join(r.cmdgoals_b[:6]) + (" ..." if len(r.cmdgoals_b) > 6 else "") + "'",
                          self.loc(f, 1))
        for m in r.remade_makefiles:
            self.warn(f"'{m}' is a makefile with a rule: Gristmill had make remake it while reading, "
                      "as make does before every run", self.loc(r.makefile, 1))

    def _vars(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, v in sorted(self.r.db_a.variables.items()):
            if v.origin in ("makefile", "command line", "override") and not name.startswith("GRISTMILL_") \
                    and name not in ("MAKEFILE_LIST", "SHELL") and v.file not in self.r.private_files:
                out[name] = v.value
        return out

    def _files(self) -> list[Path]:
        out = []
        for f in self.r.makefile_list:
            p = Path(f) if os.path.isabs(f) else self.r.folder / f
            out.append(p)
        return out


def _matches(pattern: str, name: str) -> bool:
    head, pct, tail = pattern.partition("%")
    if not pct:
        return pattern == name
    return len(name) >= len(head) + len(tail) and name.startswith(head) and name.endswith(tail)


def _uses_auto(raw: str, char: str) -> bool:
    return (f"${char}" in raw.replace("$$", "") or f"$({char}" in raw or f"${{{char}" in raw)


def _unprefix(path: str, base: str) -> str:
    return path[len(base):] if base and path.startswith(base) else path


def makefile_list(db: Database, private: set[str]) -> list[str]:
    return [f for f in split_names(db.value("MAKEFILE_LIST") or "") if f not in private]
