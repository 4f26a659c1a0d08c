"""Warnings: everything Gristmill does not do exactly as make would, said with its line."""

from __future__ import annotations

import re

from ..errors import Location
from ..workflow import WorkflowWarning
from .database import FileEntry
from .facts import MakeFacts
from .recording import Record

_RUN_TIME_FUNCS = ("shell", "wildcard", "eval", "file")


def task_cautions(f: MakeFacts, name: str, e: FileEntry | None, recs: list[Record],
                  location: Location | None, members: set[str]) -> list[WorkflowWarning]:
    if e is None or name not in f.from_a:
        return []      # not on the path of the goals read: nothing to say on this run
    out: list[WorkflowWarning] = []

    def warn(message: str, where: Location | None = location) -> None:
        out.append(WorkflowWarning(message, where))

    raws = f.raw_recipe(e)
    if f.runs_sub_make(e, recs):
        warn(f"'{name}' runs a sub-make ($(MAKE)): Gristmill runs it as one task (with -j it "
             "shares Gristmill's slots through the jobserver) and cannot show or explain the "
             "targets inside it")
    if any(_uses_auto(raw, "?") for raw in raws):
        warn(f"the recipe of '{name}' uses $? (prerequisites newer than the target): "
             "Gristmill expands it when it reads the Makefile, to all of them")
    for raw in raws:
        used = [fn for fn in _RUN_TIME_FUNCS if f"$({fn} " in raw or f"${{{fn} " in raw]
        if used:
            warn(f"the recipe of '{name}' calls $({used[0]} ...), which Gristmill expands "
                 "when it reads the Makefile; make expands it just before the recipe runs, "
                 "after the prerequisites are built")
            break
    if e.double_colon and len(e.rules) > 1 and any(rule.prereqs for rule in e.rules):
        warn(f"'{name}' has {len(e.rules)} double-colon rules: Gristmill runs them together "
             "as one task when any is out of date (make runs each rule on its own)")
    if "(" in name and name.endswith(")"):
        warn(f"'{name}' is an archive member: Gristmill cannot read member times and treats it "
             "as a file of that name")
    own = f.db_read.files.get(name)
    inherited = [v for v in (own.target_vars if own else e.target_vars) if not v.private]
    if inherited and any(p not in members and p in f.records for p in e.prereqs + e.order_only):
        v = inherited[0]
        warn(f"target-specific variable {v.name} of '{name}' also applies to its "
             f"prerequisites when make builds '{name}'; Gristmill gives each target the "
             "commands make runs for it on the path of the goals asked for",
             f.loc(v.file, v.line) if v.file and v.line else location)
    return out


def intermediate_files(f: MakeFacts) -> frozenset[str]:
    """The files make treats as intermediate, and deletes after a build that made them:
    those only a chain of implicit rules reaches, and those of ``.INTERMEDIATE``; not
    those of ``.SECONDARY`` (or all, for ``.SECONDARY:`` alone) or ``.PRECIOUS``
    (names or ``%`` patterns)."""
    out: set[str] = set()
    for db in (f.db_a, f.db_b):
        if db is None:
            continue
        secondary = db.special_prereqs(".SECONDARY")
        if secondary is not None and not secondary:
            continue          # ".SECONDARY:" alone: make deletes no intermediate file
        # (``.PRECIOUS: %`` is the reader's own: it keeps make from deleting anything
        # while the Makefile is read.)
        precious = [p for p in db.special_prereqs(".PRECIOUS") or () if p != "%"]
        kept = set(secondary or ()) | {p for p in precious if "%" not in p}
        patterns = [re.compile(re.escape(p).replace("%", ".+", 1) + r"\Z")
                    for p in precious if "%" in p]
        declared = set(db.special_prereqs(".INTERMEDIATE") or ())
        for n, e in db.files.items():
            if not (e.intermediate or n in declared) or n in kept or e.precious \
                    or f.skip_name(n):
                continue
            if n in f.records and not any(p.match(n) for p in patterns):
                out.add(n)
    return frozenset(out)


def kept_on_failure(f: MakeFacts) -> frozenset[str]:
    """The targets of ``.PRECIOUS`` and ``.SECONDARY`` (``%`` patterns kept as they are;
    ``%`` alone is the reader's own and left out): a failed recipe's target among them
    is not removed."""
    db = f.db_a
    names = set(db.special_prereqs(".SECONDARY") or ())
    names |= {p for p in db.special_prereqs(".PRECIOUS") or () if p != "%"}
    names |= {n for n, e in db.files.items() if e.precious and not f.skip_name(n)}
    return frozenset(names)


def general_cautions(f: MakeFacts, used_hints: set[tuple[str, int]]) -> list[WorkflowWarning]:
    out: list[WorkflowWarning] = []
    for file, src in f.sources.items():
        for h in src.hints:
            if (file, h.line) not in used_hints:
                out.append(WorkflowWarning("this gristmill hint is not on the line above a rule of any "
                                           "target; it applies to nothing", f.loc(file, h.line, h.col)))
    for m in f.remade_makefiles:
        out.append(WorkflowWarning(f"'{m}' is a makefile with a rule: Gristmill had make remake it while "
                                   "reading, as make does before every run", f.loc(f.makefile, 1)))
    return out


def _uses_auto(raw: str, char: str) -> bool:
    return f"${char}" in raw.replace("$$", "") or f"$({char}" in raw or f"${{{char}" in raw
