"""What the reading passes learned, and the questions the assembler asks of it."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Location
from ..workflow import WorkflowWarning
from .database import SPECIAL_TARGETS, Database, FileEntry, split_names
from .recording import Record
from .source import SourceFile


@dataclass
class MakeFacts:
    """What the reading passes learned."""

    folder: Path
    makefile: str                           # as make names it (relative to folder)
    display_base: str                       # prefix for user-facing paths ("" or "dir/")
    db_read: Database                       # make's first read, with the Makefile's own SHELLs
    db_a: Database                          # the default goal's recording pass
    db_b: Database | None                   # unused: one recording pass (None)
    records: dict[str, list[Record]]        # target -> its commands (pass A wins)
    from_a: set[str]                        # files make handled in pass A
    real_shell: str
    recorder_path: str
    private_files: set[str]                 # our own post.mk etc., to leave out
    base_env: dict[str, str]
    user_vars: list[str]                    # NAME=value, as given to make
    sources: dict[str, SourceFile]
    makefile_list: list[str]
    make_command: str = "make"
    failing: dict[str, str] = field(default_factory=dict)   # target -> make's error text
    remade_makefiles: list[str] = field(default_factory=list)
    warnings: list[WorkflowWarning] = field(default_factory=list)
    recipe_info: dict[str, list[str]] = field(default_factory=dict)  # target -> $(info) of its recipe
    read_messages: list[str] = field(default_factory=list)  # what reading the Makefile printed
    # target -> its commands per "::" rule, in rule order (targets with several "::" rules)
    rule_records: dict[str, list[list[Record]]] = field(default_factory=dict)
    _rel: dict[str, str] = field(default_factory=dict, repr=False)   # rel(), once per name
    _mentions: dict[str, list[tuple[str, int]]] | None = field(default=None, repr=False)
    _file_index: dict[str, int] | None = field(default=None, repr=False)

    # -- places -----------------------------------------------------------------------
    def display(self, file: str) -> str:
        if os.path.isabs(file) or not self.display_base:
            return file
        return self.display_base + file

    def loc(self, file: str, line: int, col: int = 1) -> Location:
        return Location(self.display(file), line, col)

    def rel(self, name: str) -> str:
        """A make file name as a POSIX path relative to the workflow root."""
        known = self._rel.get(name)
        if known is None:
            if os.path.isabs(name):
                known = Path(os.path.relpath(name, self.folder)).as_posix()
            else:
                known = posixpath.normpath(name)
            self._rel[name] = known
        return known

    def recipe_place(self, e: FileEntry | None) -> tuple[str, int] | None:
        """(file, line) of the rule whose recipe make runs for ``e``."""
        if e is None:
            return None
        for rule in e.rules:
            if rule.recipe_file is not None and rule.recipe_line is not None:
                src = self.sources.get(rule.recipe_file)
                line = src.rule_for(rule.recipe_line) if src else rule.recipe_line
                return rule.recipe_file, line
        return None

    def mentions(self, name: str) -> list[tuple[str, int]]:
        """Rule lines that name ``name`` literally as a target."""
        index = self._mentions
        if index is None:
            # One index over every makefile, made on the first question: the assembler
            # asks it two or three times per target (16,000 targets in git's).
            index = self._mentions = {}
            for f in self.makefile_list:
                src = self.sources.get(f)
                if src is not None:
                    for target, lines in src.literal_targets.items():
                        index.setdefault(target, []).extend((f, line) for line in lines)
        return index.get(name, [])

    def location(self, name: str, e: FileEntry | None) -> Location | None:
        recipe = self.recipe_place(e)
        mentions = self.mentions(name)
        if recipe and (recipe in mentions or not mentions or not (e and e.stem)):
            return self.loc(*recipe)
        if mentions:
            return self.loc(*mentions[0])
        return self.loc(*recipe) if recipe else None

    def order_key(self, location: Location | None) -> tuple[int, int, int]:
        if location is None:
            return (1, 0, 0)
        path = location.path[len(self.display_base):] if self.display_base and \
            location.path.startswith(self.display_base) else location.path
        if self._file_index is None:
            self._file_index = {}
            for k, name in enumerate(self.makefile_list):
                self._file_index.setdefault(name, k)
        return (0, self._file_index.get(path, 0), location.line)

    # -- files and targets ------------------------------------------------------------
    def entry(self, name: str) -> FileEntry | None:
        """What make knows of ``name``, from the pass that built it."""
        if name in self.from_a or self.db_b is None:
            return self.db_a.files.get(name) or (self.db_b.files.get(name) if self.db_b else None)
        return self.db_b.files.get(name) or self.db_a.files.get(name)

    def skip_name(self, name: str) -> bool:
        """Special targets, patterns, suffix rules and our own files are never tasks."""
        if name in SPECIAL_TARGETS or "%" in name or name in self.private_files:
            return True
        if not name.startswith("."):
            return False
        suffixes = self.db_a.special_prereqs(".SUFFIXES") or []
        return name in suffixes or any(name.startswith(s) and name[len(s):] in suffixes for s in suffixes)

    def raw_recipe(self, e: FileEntry | None) -> list[str]:
        return [raw for rule in e.rules for raw in rule.recipe] if e is not None else []

    def runs_sub_make(self, e: FileEntry | None, recs: list[Record]) -> bool:
        make_words = {self.make_command, os.path.basename(self.make_command), "make", "gmake"}
        return any("$(MAKE)" in raw or "${MAKE}" in raw for raw in self.raw_recipe(e)) or any(
            (rec.command.split() or [""])[0] in make_words for rec in recs)

    def force_like(self, name: str, e: FileEntry | None) -> bool:
        """No recipe, no prerequisites, no file: make "remakes" it every time (the FORCE idiom)."""
        if e is None or name in self.records or e.has_recipe or e.prereqs or e.order_only \
                or name in self.failing:
            return False
        return not (self.folder / name).exists()

    def files(self) -> list[Path]:
        return [Path(f) if os.path.isabs(f) else self.folder / f for f in self.makefile_list]


def makefile_list(db: Database, private: set[str]) -> list[str]:
    return [f for f in split_names(db.value("MAKEFILE_LIST") or "") if f not in private]


def matches(pattern: str, name: str) -> bool:
    """Does a make pattern (one ``%``) match ``name``?"""
    head, pct, tail = pattern.partition("%")
    if not pct:
        return pattern == name
    return len(name) >= len(head) + len(tail) and name.startswith(head) and name.endswith(tail)
