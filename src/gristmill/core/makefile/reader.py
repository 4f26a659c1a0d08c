"""``load_makefile``: GNU make reads the Makefile, Gristmill records what it would do.

1. A first read (``make -p -q`` of a no-op goal, real shell): make reads the
   Makefile and, as before every run, remakes makefiles that have rules. Its
   data base says where SHELL is set per target or per pattern.
2. One recording pass, ``make -p -B -k`` under the recording shell, for the
   goals asked (none: the default goal): exactly what ``make GOALS`` builds,
   with the ``MAKECMDGOALS`` make gives it. No other target's recipe is
   expanded (a ``$(shell ...)`` in ``clean``'s recipe never runs while reading);
   those targets are tasks of the graph whose recipe was not read, and running
   one reads the Makefile again with it as a goal. A missing prerequisite or
   a ``$(error ...)`` in a recipe of a goal asked for does not stop the read:
   make would only fail when that target is built, and so does Gristmill (a
   warning says so). In the default goal's closure, the same problems are errors.
"""

from __future__ import annotations

import gc
import os
import re
import tempfile
from pathlib import Path

from ..errors import Location, WorkflowError
from ..workflow import Workflow, WorkflowWarning
from .assemble import WorkflowAssembler
from .facts import MakeFacts, makefile_list
from .database import SPECIAL_TARGETS, Database, FileEntry, extract_database, parse_database
from .diagnostics import Diagnostic, parse_stderr
from .gnumake import GnuMake, base_env, find_gnu_make, find_makefile, run_make, variable_args
from .recording import Recorder, Recording, printed_by_recipes, printed_while_reading, split_by_rule
from .source import SourceFile, scan_file

_MAX_RETRIES = 25
_NOOP = "__gristmill_noop__"


def load_makefile(path: str | Path, variables: dict[str, str] | None = None,
                  goals: list[str] | tuple[str, ...] = (), recipes: bool = True) -> Workflow:
    """Read a GNU Makefile (or a folder holding one) as a Workflow of kind "make".

    ``goals`` are targets the user named: one that no rule names but a built-in or
    pattern rule can make (``make hello`` with ``hello.c`` beside it) is read too.

    ``recipes=False`` reads the graph only, in one make run (the first read): every
    target, its prerequisites, hints and recipe as written, no recipe expanded and no
    recording pass. Each task with a recipe gets the "not read" stand-in, as the
    targets off the goals' paths have: for a run in which make runs the recipes
    itself, and for the graph, plan and the app.
    """
    makefile_path = _locate(Path(path))
    parent = str(makefile_path.parent)
    display_base = "" if parent in ("", ".") else parent.rstrip("/") + "/"
    folder = makefile_path.parent.resolve()
    name = makefile_path.name
    make = find_gnu_make(display_base + name)
    user_vars = variable_args(variables)
    env = base_env()
    # The read makes a few objects per file of make's data base and frees none until it
    # ends: the cyclic collector would only walk them again and again (a quarter of the
    # read's own time on git's 18,000 files), as in the TOML loader.
    enabled = gc.isenabled()
    gc.disable()
    try:
        with tempfile.TemporaryDirectory(prefix="gristmill-make-") as tmp:
            reader = _Reader(make, folder, name, display_base, user_vars, env, Path(tmp))
            reader.asked = [_make_goal(os.path.normpath(g)) for g in goals if g and not os.path.isabs(g)]
            return reader.read() if recipes else reader.read_graph()
    finally:
        if enabled:
            gc.enable()


def _locate(path: Path) -> Path:
    if path.is_dir():
        found = find_makefile(path)
        if found is None:
            raise WorkflowError("no GNUmakefile, makefile or Makefile in this folder", path=str(path))
        return found
    if not path.is_file():
        raise WorkflowError("no such Makefile", path=str(path))
    return path


class _Reader:
    def __init__(self, make: GnuMake, folder: Path, name: str, display_base: str,
                 user_vars: list[str], env: dict[str, str], tmp: Path):
        self.make = make
        self.folder = folder
        self.name = name
        self.display_base = display_base
        self.user_vars = user_vars
        self.env = env
        self.recorder = Recorder(tmp)
        self.noop = tmp / "noop.mk"
        self.noop.write_text(f"{_NOOP}: ;\n{self.noop}: ;\n")
        self.private = {str(self.recorder.post), str(self.noop), _NOOP}
        self.warnings: list[WorkflowWarning] = []
        self.sources: dict[str, SourceFile] = {}
        self.recipe_prefix = "\t"
        self.asked: list[str] = []
        self.first_before = ""

    def display(self, file: str | None) -> str:
        file = file or self.name
        return file if file.startswith("/") or not self.display_base else self.display_base + file

    def loc(self, file: str | None, line: int | None) -> Location:
        return Location(self.display(file), line or 1, 1)

    # -- the passes ---------------------------------------------------------------------
    def read(self) -> Workflow:
        first = self._first_read()
        goals = list(dict.fromkeys(self.asked))
        failing: dict[str, str] = {}
        self._scan_sources(makefile_list(first, self.private))
        if goals:
            # Only the goals asked for are recorded, in one make run, as make would get
            # them: MAKECMDGOALS is what the user typed, target-specific values are the
            # ones on these goals' paths, and no other target's recipe is expanded
            # (a $(shell ...) there never runs).
            a, failing = self._record_others(list(goals))
        else:
            a = self._record([], extra=["--debug=m"])
        remade = self._makefile_remakes(a)
        mlist = makefile_list(a.db, self.private)
        self._scan_sources(mlist)
        if not goals:
            self._raise_read_errors(a)
        from_a = {n for n, e in a.db.files.items() if e.updated} | {r.target for r in a.records}
        records = a.by_target()
        info = printed_by_recipes(a.before_db, self.recorder.marker, a.records)
        by_rule = split_by_rule(a.before_db, self.recorder.marker, a.records, {
            n: len(e.rules) for n, e in a.db.files.items() if e.double_colon and len(e.rules) > 1})
        facts = MakeFacts(
            folder=self.folder, makefile=self.name, display_base=self.display_base,
            db_read=first, db_a=a.db, db_b=None, records=records, from_a=from_a,
            real_shell=a.real_shell, recorder_path=str(self.recorder.script),
            private_files=self.private, base_env=self.env, user_vars=self.user_vars,
            sources=self.sources, makefile_list=mlist, make_command=self.make.command,
            failing=failing, remade_makefiles=remade, warnings=self.warnings,
            recipe_info=info, rule_records=by_rule,
            read_messages=printed_while_reading(a.before_db))
        return WorkflowAssembler(facts).build()

    def read_graph(self) -> Workflow:
        """The first read alone, its data base parsed in full: no recording pass."""
        first = self._first_read(light=False)
        mlist = makefile_list(first, self.private)
        self._scan_sources(mlist)
        shell = (first.value("SHELL") or "").strip()
        facts = MakeFacts(
            folder=self.folder, makefile=self.name, display_base=self.display_base,
            db_read=first, db_a=first, db_b=None, records={}, from_a=set(),
            real_shell=shell if shell and "$" not in shell else "/bin/sh",
            recorder_path=str(self.recorder.script), private_files=self.private,
            base_env=self.env, user_vars=self.user_vars, sources=self.sources,
            makefile_list=mlist, make_command=self.make.command, warnings=self.warnings,
            read_messages=printed_while_reading(self.first_before))
        return WorkflowAssembler(facts).build()

    def _record(self, goals: list[str], extra: list[str] = ()) -> Recording:
        rec = self.recorder.record(self.make, self.folder, self.name, self.user_vars, goals,
                                   self.env, list(extra))
        if not rec.db.files and rec.run.returncode != 0:
            self._raise_first(parse_stderr(rec.run.stderr, self.make.command), rec)
        return rec

    def _makefile_remakes(self, a: Recording) -> list[str]:
        """Targets make remade as makefiles (before "Updating goal targets")."""
        cut = a.before_db.find("\nUpdating goal targets....")
        head = a.before_db if cut < 0 else a.before_db[:cut]
        n = head.count(self.recorder.marker)
        seen: dict[str, None] = {}
        for r in a.records[:n]:
            seen.setdefault(r.target, None)
        return list(seen)

    def _first_read(self, light: bool = True) -> Database:
        """Make reads the Makefile with the real shell and builds nothing (``-q``, a no-op goal).

        As before every make run, makefiles that have rules are remade first, for
        real. Its data base says where the Makefile sets SHELL per target or per
        pattern, so the recording passes can take those over too.
        """
        # Without the recording pass, this read says what reading printed ($(info ...)).
        debug = [] if light else ["--debug=m"]
        run = run_make(self.make, self.folder,
                       ["-f", self.name, "-f", str(self.noop), "-p", "-q", *debug, *self.user_vars,
                        "--", _NOOP], self.env)
        self.first_before, text = extract_database(run.stdout)
        db = parse_database(text, light=light)
        self.recipe_prefix = (db.value(".RECIPEPREFIX") or "\t")[:1] or "\t"
        if run.returncode == 2:
            diags = parse_stderr(run.stderr, self.make.command)
            mlist = makefile_list(db, self.private)
            self._scan_sources(mlist or [self.name])
            for d in diags:
                if d.kind in ("missing-include", "error") and d.file:
                    raise WorkflowError(d.message, self.loc(d.file, d.line))
            failed = [d for d in diags if d.kind == "info" and "] Error " in d.message]
            first = failed[0].message if failed else (diags[0].message if diags else "make failed")
            raise WorkflowError(f"remaking an included makefile failed: {first}", self.loc(self.name, 1))
        self.recorder.env_per_target(_env_may_differ(db))
        targets = [n for n, e in db.files.items()
                   if e.target_vars and any(v.name == "SHELL" for v in e.target_vars)]
        patterns = sorted({pv.pattern for pv in db.pattern_vars if pv.variable.name == "SHELL"})
        try:
            self.recorder.shell_scopes(targets, patterns)
        except ValueError as exc:
            raise WorkflowError(f"target '{exc}' sets SHELL, and its name cannot be written back to make; "
                                "Gristmill cannot read this Makefile without running its recipes",
                                self.loc(self.name, 1)) from None
        return db

    def _scan_sources(self, mlist: list[str]) -> None:
        for f in mlist:
            if f not in self.sources:
                p = Path(f) if f.startswith("/") else self.folder / f
                self.sources[f] = scan_file(p, f, self.recipe_prefix)

    def _record_others(self, goals: list[str]) -> tuple[Recording, dict[str, str]]:
        assume_old: list[str] = []
        failing: dict[str, str] = {}
        warned: set[tuple] = set()
        for _ in range(_MAX_RETRIES):
            extra = ["--debug=m", *(f"--assume-old={x}" for x in assume_old)]
            b = self._record(goals, extra)
            progress = False
            for d in parse_stderr(b.run.stderr, self.make.command):
                if d.kind == "no-rule" and d.target not in assume_old:
                    assume_old.append(d.target)
                    progress = True
                    if d.target in self.asked and not d.needed_by:
                        # A goal the user typed that nothing can make: the command line
                        # says so ("unknown target"), not a warning of the Makefile's.
                        goals.remove(d.target)
                        if not goals:
                            return b, failing
                        continue
                    where = self._place_of(d.needed_by, b.db) if d.needed_by else None
                    key = ("no-rule", d.target, d.needed_by)
                    if key not in warned:
                        warned.add(key)
                        self.warnings.append(WorkflowWarning(
                            f"No rule to make target '{d.target}'"
                            + (f", needed by '{d.needed_by}'" if d.needed_by else "")
                            + ": make fails when it builds that target, and so will Gristmill", where))
                elif d.kind == "error" and d.file:
                    owner = self._recipe_owner(d.file, d.line or 0, b.db)
                    if owner is None or owner in failing:
                        raise WorkflowError(d.message, self.loc(d.file, d.line))
                    failing[owner] = f"{d.file}:{d.line}: *** {d.message}.  Stop."
                    assume_old.append(owner)
                    progress = True
                    self.warnings.append(WorkflowWarning(
                        f"{d.message} (make stops here when it builds '{owner}'; so will Gristmill)",
                        self.loc(d.file, d.line)))
                elif d.kind == "error":
                    raise WorkflowError(d.message, self.loc(self.name, 1))
            if not progress:
                self._keep_warnings(parse_stderr(b.run.stderr, self.make.command))
                return b, failing
        raise WorkflowError("GNU make kept failing while Gristmill read the Makefile's targets",
                            self.loc(self.name, 1))

    # -- errors ------------------------------------------------------------------------
    def _raise_read_errors(self, a: Recording) -> None:
        diags = parse_stderr(a.run.stderr, self.make.command)
        fatal = [d for d in diags if d.kind in ("error", "no-rule")
                 and not (d.kind == "error" and d.message == "No targets")]
        if fatal:
            self._raise_first(diags, a)
        self._keep_warnings(diags)

    def _raise_first(self, diags: list[Diagnostic], rec: Recording) -> None:
        for d in diags:
            if d.kind == "missing-include":
                raise WorkflowError(d.message, self.loc(d.file, d.line))
        for d in diags:
            if d.kind == "error" and d.file:
                raise WorkflowError(d.message, self.loc(d.file, d.line))
        for d in diags:
            if d.kind == "no-rule":
                where = self._place_of(d.needed_by, rec.db) if d.needed_by else self.loc(self.name, 1)
                raise WorkflowError(d.message, where)
        for d in diags:
            if d.kind == "error":
                raise WorkflowError(d.message, self.loc(self.name, 1))
        tail = rec.run.stderr.strip().splitlines()
        raise WorkflowError("GNU make could not read this Makefile"
                            + (f": {tail[-1]}" if tail else ""), self.loc(self.name, 1))

    def _keep_warnings(self, diags: list[Diagnostic]) -> None:
        for d in diags:
            if d.kind in ("warning", "missing-include"):
                w = WorkflowWarning(d.message, self.loc(d.file, d.line) if d.file else None)
                if w not in self.warnings:
                    self.warnings.append(w)

    def _place_of(self, target: str, db: Database) -> Location:
        e = db.files.get(target)
        if e is not None:
            for rule in e.rules:
                if rule.recipe_file and rule.recipe_line:
                    src = self.sources.get(rule.recipe_file)
                    line = src.rule_for(rule.recipe_line) if src else rule.recipe_line
                    return self.loc(rule.recipe_file, line)
        for f, src in self.sources.items():
            if target in src.literal_targets:
                return self.loc(f, src.literal_targets[target][0])
        return self.loc(self.name, 1)

    def _recipe_owner(self, file: str, line: int, db: Database) -> str | None:
        """The target whose recipe holds ``file:line`` (make died expanding it)."""
        matches: list[FileEntry] = []
        for e in db.files.values():
            if not _wanted(e):
                continue
            for rule in e.rules:
                if rule.recipe_file == file and rule.recipe_line is not None \
                        and rule.recipe_line <= line < rule.recipe_line + max(rule.recipe_physical, 1):
                    matches.append(e)
                    break
        fresh = [e for e in matches if not e.updated]
        chosen = fresh or matches
        return chosen[0].name if chosen else None


_RULE_TASK = re.compile(r"(.+)::[1-9][0-9]*")


def _make_goal(goal: str) -> str:
    """The goal make is given for a goal the user typed: ``all::2`` (the task of the second
    of ``all``'s double-colon rules) is read as ``all``, whose rules make runs each."""
    m = _RULE_TASK.fullmatch(goal)
    return m.group(1) if m else goal


_AUTOMATIC_REF = re.compile(r"\$(?:[@%<?^+|*]|[({][@%<?^+|*][DF]?[)}])")


def _env_may_differ(db: Database) -> bool:
    """Could two recipes see different environments? Only through per-target values
    (target- or pattern-specific variables) or an exported value that names the target."""
    if db.pattern_vars or db.files.get(".EXPORT_ALL_VARIABLES") is not None:
        return True
    if any(e.target_vars for e in db.files.values()):
        return True
    return any(v.flavor == "recursive" and v.origin in ("makefile", "command line", "override", "environment")
               and _AUTOMATIC_REF.search(v.value) for v in db.variables.values())


def _wanted(e: FileEntry) -> bool:
    return "%" not in e.name and e.name not in SPECIAL_TARGETS
