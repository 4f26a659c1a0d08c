"""Warnings: everything Gristmill does not do exactly as make would, said with its line."""

from __future__ import annotations

import re

from ..errors import Location
from ..workflow import WorkflowWarning
from .database import FileEntry
from .facts import MakeFacts
from .recording import Record


def task_cautions(f: MakeFacts, name: str, e: FileEntry | None, recs: list[Record],
                  location: Location | None, members: set[str]) -> list[WorkflowWarning]:
    """Nothing, now: GNU make runs the recipes (core/run/makerun.py), so $?,
    $(shell)/$(wildcard) in recipes, double-colon rules, archive members, sub-makes and
    target-specific values are make's at run time, and none differs from make."""
    return []


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
