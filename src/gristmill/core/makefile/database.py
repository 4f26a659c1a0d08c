"""Parse the data base GNU make prints with ``-p``.

GNU make is the ground truth: it has already evaluated variables,
conditionals, functions and includes, searched implicit rules and sorted
prerequisites into normal and order-only. This module only reads what it
printed. Recipes are kept unexpanded, as make prints them; the expanded
commands come from the recording pass (``recording``).

The format is make's own (``make -p``, GNU make 4.x): a ``# Variables``
section, ``# Pattern-specific Variable Values``, ``# Implicit Rules``, then
``# Files`` with one blank-line separated entry per file (double-colon
targets have one entry per rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# "# makefile (from 'Makefile', line 2)", "# 'override' directive", "# makefile private (...)"
_ORIGIN_RE = re.compile(
    r"^# (?P<origin>default|environment override|environment|makefile|command line|"
    r"'override' directive|override|automatic)(?P<private> private)?"
    r"(?: \(from '(?P<file>.*)', line (?P<line>\d+)\))?$")
_ASSIGN_RE = re.compile(r"^(?P<name>[^\s=]+?) (?P<op>:=|::=|\+=|\?=|=) ?(?P<value>.*)$")
_TARGET_VAR_RE = re.compile(r"^(?P<target>.+?): (?P<name>[^\s=]+?) (?P<op>:=|::=|\+=|\?=|=) ?(?P<value>.*)$")
# "#  recipe to execute (from 'Makefile', line 12):" or "... (built-in):"; and
# "#  Implicit/static pattern stem: 'foo'": read with str methods (16,000 of each in git's).
_RECIPE = "#  recipe to execute ("
_BUILTIN_RECIPE = "#  recipe to execute (built-in):"
_STEM = "#  Implicit/static pattern stem: '"
_ALSO_RE = re.compile(r"^#  Also makes: (?P<names>.*)$")

# The sentences make prints under most files, looked up whole: (attribute, value) to
# set, or () for one that says nothing the reader keeps.
_INFO_FLAGS: dict[str, tuple] = {
    "#  Implicit rule search has not been done.": (),
    "#  File has not been updated.": (),
    "#  Modification time never checked.": (),
    "#  Phony target (prerequisite of .PHONY).": ("phony", True),
    "#  Precious file (prerequisite of .PRECIOUS or .SECONDARY).": ("precious", True),
    "#  File does not exist.": ("exists", False),
    "#  Implicit rule search has been done.": ("implicit_done", True),
    "#  File has been updated.": ("updated", True),
    "#  Needs to be updated (-q is set).": ("updated", True),
    "#  Command line target.": ("command_line", True),
    "#  Builtin rule": (),
}

SPECIAL_TARGETS = frozenset({
    ".PHONY", ".SUFFIXES", ".DEFAULT", ".PRECIOUS", ".INTERMEDIATE", ".NOTINTERMEDIATE",
    ".SECONDARY", ".SECONDEXPANSION", ".DELETE_ON_ERROR", ".IGNORE", ".LOW_RESOLUTION_TIME",
    ".SILENT", ".EXPORT_ALL_VARIABLES", ".NOTPARALLEL", ".ONESHELL", ".POSIX", ".WAIT",
    ".EXTRA_PREREQS",
})


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable as make printed it (global, target- or pattern-specific)."""

    name: str
    value: str                  # as printed: expanded for ":=", unexpanded for "="
    origin: str                 # "default", "environment", "makefile", "command line", "override", ...
    flavor: str                 # "simple" or "recursive"
    file: str | None = None     # where it was set, when make says
    line: int | None = None
    private: bool = False
    op: str = "="               # for target- and pattern-specific values: "=", ":=", "+=", "?="


@dataclass(slots=True)
class Rule:
    """One rule of a file: a single-colon file has one, a double-colon file one per ``::`` rule."""

    prereqs: list[str] = field(default_factory=list)
    order_only: list[str] = field(default_factory=list)
    recipe: list[str] = field(default_factory=list)   # logical lines, unexpanded; "\n" joins continuations
    recipe_physical: int = 0                          # physical lines the recipe spans
    recipe_file: str | None = None
    recipe_line: int | None = None
    builtin: bool = False

    @property
    def has_recipe(self) -> bool:
        return self.recipe_file is not None or self.builtin


@dataclass(slots=True)
class FileEntry:
    """A file of make's data base: its rules and what make says of it."""

    name: str
    is_target: bool = True
    double_colon: bool = False
    rules: list[Rule] = field(default_factory=list)
    phony: bool = False
    precious: bool = False
    intermediate: bool = False
    also_makes: list[str] = field(default_factory=list)
    stem: str | None = None
    implicit_done: bool = False
    exists: bool | None = None          # None: make never looked
    updated: bool = False               # make ran (or would have run) its rule
    command_line: bool = False
    target_vars: list[Variable] = field(default_factory=list)

    @property
    def prereqs(self) -> list[str]:
        rules = self.rules
        if len(rules) == 1:            # nearly every file: its one rule's list, as printed
            names = rules[0].prereqs
            if len(names) < 2 or len(set(names)) == len(names):
                return names
        return _merge(r.prereqs for r in rules)

    @property
    def order_only(self) -> list[str]:
        rules = self.rules
        if len(rules) == 1:
            names = rules[0].order_only
            if len(names) < 2 or len(set(names)) == len(names):
                return names
        return _merge(r.order_only for r in rules)

    @property
    def has_recipe(self) -> bool:
        return any(r.has_recipe for r in self.rules)


def _merge(lists) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for n in names:
            seen.setdefault(n, None)
    return list(seen)


@dataclass(slots=True)
class PatternVariable:
    """A pattern-specific value: ``%.o: CFLAGS += -g``."""

    pattern: str
    variable: Variable


@dataclass(slots=True)
class Database:
    """What ``make -p`` printed: variables, pattern values, files, VPATH."""

    variables: dict[str, Variable] = field(default_factory=dict)
    pattern_vars: list[PatternVariable] = field(default_factory=list)
    files: dict[str, FileEntry] = field(default_factory=dict)
    vpath: list[str] = field(default_factory=list)      # "vpath PATTERN DIRS" lines and the VPATH search path
    order: list[str] = field(default_factory=list)      # file names in printed order

    def value(self, name: str) -> str | None:
        v = self.variables.get(name)
        return None if v is None else v.value

    @property
    def default_goal(self) -> str:
        return (self.value(".DEFAULT_GOAL") or "").strip()

    def special(self, name: str) -> FileEntry | None:
        return self.files.get(name)

    def special_prereqs(self, name: str) -> list[str] | None:
        """Prerequisites of a special target, or None when it is not defined."""
        f = self.files.get(name)
        return None if f is None else f.prereqs


def split_names(text: str) -> list[str]:
    """Names as make prints them: separated by blanks, ``\\ `` is a literal blank."""
    if "\\" not in text:
        return list(filter(None, text.replace("\t", " ").split(" ")))
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] == " ":
            cur.append(" ")
            i += 2
            continue
        if c in " \t":
            if cur:
                out.append("".join(cur))
                cur = []
        else:
            cur.append(c)
        i += 1
    if cur:
        out.append("".join(cur))
    return out


def extract_database(stdout: str) -> tuple[str, str]:
    """Split make's stdout into (what came before the data base, the data base)."""
    marker = "\n# Make data base, printed on "
    i = stdout.rfind(marker)
    if i < 0:
        if stdout.startswith(marker[1:]):
            return "", stdout
        return stdout, ""
    # The data base starts with a "# GNU Make x.y" banner a few lines earlier.
    j = stdout.rfind("\n# GNU Make ", 0, i)
    start = j + 1 if j >= 0 else i + 1
    return stdout[:start], stdout[start:]


def parse_database(text: str, light: bool = False) -> Database:
    """The data base make printed. ``light``: of the files, only those with
    target-specific variables and the special targets (``.PHONY``, ``.NOTPARALLEL``...):
    all a first read asks of it, at a fraction of the cost on a large Makefile."""
    db = Database()
    lines = text.split("\n")
    section = ""
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if line in ("# Variables", "# Pattern-specific Variable Values", "# Directories",
                    "# Implicit Rules", "# Files", "# VPATH Search Paths"):
            section = line[2:]
            i += 1
            continue
        if line.startswith("# Finished Make data base"):
            break
        if section == "Variables":
            i = _parse_variable(lines, i, db.variables)
        elif section == "Pattern-specific Variable Values":
            i = _parse_pattern_var(lines, i, db.pattern_vars)
        elif section == "Files":
            if line.strip() == "" or line.startswith("# files hash-table") or line.startswith("# Load="):
                i += 1
                continue
            if light and line.partition(":")[0] not in SPECIAL_TARGETS and not _origin(line) and not (
                    line == "# Not a target:" and i + 1 < n and _origin(lines[i + 1])):
                try:
                    i = lines.index("", i)      # the entry's end, found in C
                except ValueError:
                    break
                continue
            i = _parse_file_entry(lines, i, db)
        elif section == "VPATH Search Paths":
            if line.startswith("vpath "):
                db.vpath.append(line)
            elif line.startswith("# General ('VPATH' variable) search path:") and i + 1 < n:
                db.vpath.append("VPATH " + lines[i + 1][2:].strip())
                i += 1
            i += 1
        else:
            i += 1
    return db


def _origin(line: str):
    return _ORIGIN_RE.match(line)


def _parse_variable(lines: list[str], i: int, out: dict[str, Variable]) -> int:
    m = _origin(lines[i])
    if not m:
        return i + 1
    origin = m.group("origin")
    if origin == "'override' directive":
        origin = "override"
    file, line = m.group("file"), int(m.group("line")) if m.group("line") else None
    private = bool(m.group("private"))
    if i + 1 >= len(lines):
        return i + 1
    text = lines[i + 1]
    for prefix in ("override define ", "define "):
        if text.startswith(prefix):
            name = text[len(prefix):].strip()
            body: list[str] = []
            j = i + 2
            while j < len(lines) and lines[j] != "endef":
                body.append(lines[j])
                j += 1
            out[name] = Variable(name, "\n".join(body), origin, "recursive", file, line, private)
            return j + 1
    a = _ASSIGN_RE.match(text)
    if not a:
        return i + 1
    flavor = "simple" if a.group("op") in (":=", "::=") else "recursive"
    out[a.group("name")] = Variable(a.group("name"), a.group("value"), origin, flavor, file, line, private)
    return i + 2


def _parse_pattern_var(lines: list[str], i: int, out: list[PatternVariable]) -> int:
    # "%.o :" then "# makefile (from 'M2', line 7)" then "# CPPFLAGS := -DPAT"
    line = lines[i]
    if line.endswith(" :") and not line.startswith("#"):
        pattern = line[:-2]
        j = i + 1
        while j + 1 < len(lines) and _origin(lines[j]):
            m = _origin(lines[j])
            a = _ASSIGN_RE.match(lines[j + 1][2:]) if lines[j + 1].startswith("# ") else None
            if a:
                flavor = "simple" if a.group("op") in (":=", "::=") else "recursive"
                out.append(PatternVariable(pattern, Variable(
                    a.group("name"), a.group("value"), m.group("origin"), flavor, m.group("file"),
                    int(m.group("line")) if m.group("line") else None, bool(m.group("private")),
                    a.group("op"))))
            j += 2
        return j
    return i + 1


def _parse_file_entry(lines: list[str], i: int, db: Database) -> int:
    n = len(lines)
    is_target = True
    target_vars: list[Variable] = []
    if lines[i] == "# Not a target:":
        is_target = False
        i += 1
    # Target-specific variables: an origin comment, then "target: NAME op value".
    while i + 1 < n and lines[i].startswith("# ") and _origin(lines[i]) \
            and not lines[i + 1].startswith("#"):
        m = _origin(lines[i])
        tv = _TARGET_VAR_RE.match(lines[i + 1])
        if not tv:
            break
        flavor = "simple" if tv.group("op") in (":=", "::=") else "recursive"
        origin = "override" if m.group("origin") == "'override' directive" else m.group("origin")
        target_vars.append(Variable(
            tv.group("name"), tv.group("value"), origin, flavor, m.group("file"),
            int(m.group("line")) if m.group("line") else None, bool(m.group("private")), tv.group("op")))
        i += 2
    if i >= n:
        return i
    rule_line = lines[i]
    rm = None if rule_line.startswith("#") else _split_rule(rule_line)
    if rm is None:
        return i + 1
    name, double, deps_text = rm
    tokens = split_names(deps_text)
    if "|" in tokens:
        k = tokens.index("|")
        normal, order_only = tokens[:k], tokens[k + 1:]
    else:
        normal, order_only = tokens, []
    rule = Rule(prereqs=normal, order_only=order_only)
    entry = db.files.get(name)
    if entry is None:
        entry = FileEntry(name)
        db.files[name] = entry
        db.order.append(name)
    entry.is_target = entry.is_target and is_target if entry.rules else is_target
    entry.double_colon = double
    entry.rules.append(rule)
    entry.target_vars.extend(target_vars)
    i += 1
    while i < n:
        line = lines[i]
        if line == "":
            break
        if line.startswith("#  "):
            info = line
            flag = _INFO_FLAGS.get(info)
            if flag is not None:        # nearly every line: one of make's fixed sentences
                if flag:
                    setattr(entry, *flag)
            elif info.startswith(_STEM) and info.endswith("'"):
                entry.stem = info[len(_STEM):-1]
            elif info.startswith(_RECIPE) and info.endswith("):"):
                if info == _BUILTIN_RECIPE:
                    rule.builtin = True
                else:
                    file, sep, line_no = info[len(_RECIPE):-2].rpartition("', line ")
                    if not (sep and file.startswith("from '") and line_no.isdigit()):
                        i += 1
                        continue
                    rule.recipe_file = file[len("from '"):]
                    rule.recipe_line = int(line_no)
                i = _parse_recipe(lines, i + 1, rule)
                continue
            elif info.startswith("#  Phony target"):
                entry.phony = True
            elif info.startswith("#  Precious file"):
                entry.precious = True
            elif info.startswith("#  File is an intermediate prerequisite"):
                entry.intermediate = True
            elif info.startswith("#  Command line target"):
                entry.command_line = True
            elif info.startswith("#  Implicit rule search has been done"):
                entry.implicit_done = True
            elif info.startswith("#  File does not exist"):
                entry.exists = False
            elif info.startswith("#  Last modified"):
                entry.exists = True
            elif info.startswith("#  File has been updated") or info.startswith("#  Needs to be updated"):
                entry.updated = True
            elif (am := _ALSO_RE.match(info)):
                for a in split_names(am.group("names")):
                    if a != name and a not in entry.also_makes:
                        entry.also_makes.append(a)
        i += 1
    return i


def _split_rule(line: str) -> tuple[str, bool, str] | None:
    """A rule line ``NAME: DEPS`` or ``NAME:: DEPS`` -> (name, double colon?, DEPS): at the
    first colon (from the second character) whose ``:`` or ``::`` the line's end or a blank
    follows; None if there is none. (The regex ``^(.+?)(::?)(?:\\s(.*))?$`` by hand: its
    lazy name costs a step per character of git's long lines.)"""
    n = len(line)
    j = line.find(":", 1)
    while j >= 0:
        k = j + 1
        if k < n and line[k] == ":":
            if k + 1 == n:
                return line[:j], True, ""
            if line[k + 1].isspace():
                return line[:j], True, line[k + 2:]
        if k == n:
            return line[:j], False, ""
        if line[k].isspace():
            return line[:j], False, line[k + 1:]
        j = line.find(":", k)
    return None


def _parse_recipe(lines: list[str], i: int, rule: Rule) -> int:
    """Recipe lines, each printed after the recipe prefix (a tab, or ``.RECIPEPREFIX``)."""
    logical: list[str] = []
    start, n = i, len(lines)
    cont = False
    while i < n:
        line = lines[i]
        if line == "":
            break
        text = line[1:]
        if cont:
            logical[-1] += "\n" + text
        else:
            logical.append(text)
        cont = text.endswith("\\") and _ends_in_backslash(text)
        i += 1
    rule.recipe = logical
    rule.recipe_physical = i - start
    return i


def _ends_in_backslash(text: str) -> bool:
    k = len(text) - len(text.rstrip("\\"))
    return k % 2 == 1
