"""A light reading of the Makefile text, for what make's data base leaves out.

Make says where a recipe starts, not where its rule is; it says nothing about
comments. This scanner finds, per file: which lines are rules, which recipe
lines belong to which rule, the ``# gristmill:`` hint comments and the line
each one annotates, and the rules whose targets are written literally. It
never decides what gets built; that is make's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

HINT_RE = re.compile(r"^\s*#\s*gristmill\s*:(?P<text>.*)$")
_TARGET_VAR = re.compile(r"^:?\s*(?:(?:override|export|private|unexport)\s+)*[^\s=:#;|]+\s*(?:=|:=|::=|\+=|\?=|!=)")
_DIRECTIVES = ("ifeq", "ifneq", "ifdef", "ifndef", "else", "endif", "define", "endef", "include",
               "-include", "sinclude", "export", "unexport", "override", "vpath", "undefine",
               "private", "load", "-load")


@dataclass(frozen=True, slots=True)
class Hint:
    """A ``# gristmill:`` comment and the line it annotates."""

    line: int                   # the comment's line
    col: int                    # where the hint text starts
    text: str                   # after "gristmill:"
    anchor: int | None          # the line it annotates (the next non-comment line), None at EOF


@dataclass(slots=True)
class SourceFile:
    """What the scan found in one makefile."""

    path: str                                           # as make names it
    rule_lines: set[int] = field(default_factory=set)
    recipe_owner: dict[int, int] = field(default_factory=dict)   # recipe line -> its rule's line
    hints: list[Hint] = field(default_factory=list)
    literal_targets: dict[str, list[int]] = field(default_factory=dict)  # target -> rule lines
    mentions_makecmdgoals: bool = False

    def rule_for(self, recipe_line: int) -> int:
        """The line of the rule a recipe (starting at ``recipe_line``) belongs to."""
        if recipe_line in self.rule_lines:
            return recipe_line
        return self.recipe_owner.get(recipe_line, recipe_line)

    def hint_for(self, line: int) -> Hint | None:
        if not self.hints:
            return None
        for h in self.hints:
            if h.anchor == line:
                return h
        return None


def scan_file(path: Path, name: str, recipe_prefix: str = "\t") -> SourceFile:
    """Scan one makefile; ``recipe_prefix`` is ``.RECIPEPREFIX`` (a tab unless the Makefile says)."""
    src = SourceFile(name)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return src
    src.mentions_makecmdgoals = "MAKECMDGOALS" in text
    physical = text.split("\n")
    pending_hints: list[Hint] = []
    in_define = 0
    rule_context: int | None = None      # the line of the rule whose recipe may follow
    i = 0
    while i < len(physical):
        start = i + 1
        line = physical[i]
        # Join backslash continuations into one logical line.
        logical = line
        while _continues(logical) and i + 1 < len(physical):
            i += 1
            logical = logical[:-1] + " " + physical[i].lstrip() if not line.startswith(recipe_prefix) \
                else logical + "\n" + physical[i]
        i += 1
        if in_define:
            word = logical.strip().split(None, 1)[0] if logical.strip() else ""
            if word == "endef":
                in_define -= 1
            elif _starts_define(logical):
                in_define += 1
            continue
        if line.startswith(recipe_prefix) and rule_context is not None:
            src.recipe_owner[start] = rule_context
            continue
        stripped = logical.strip()
        hm = HINT_RE.match(logical)
        if hm:
            raw = hm.group("text")
            col = hm.start("text") + (len(raw) - len(raw.lstrip())) + 1
            pending_hints.append(Hint(start, col, raw.strip(), None))
            continue
        if not stripped or stripped.startswith("#"):
            if not stripped:
                # A blank line ends a hint block; the hint annotated nothing.
                src.hints.extend(pending_hints)
                pending_hints = []
            continue
        for h in pending_hints:
            src.hints.append(Hint(h.line, h.col, h.text, start))
        pending_hints = []
        if _starts_define(logical):
            in_define = 1
            rule_context = None
            continue
        targets = rule_targets(_strip_comment(logical))
        if targets is not None:
            src.rule_lines.add(start)
            rule_context = start
            for t in targets:
                src.literal_targets.setdefault(t, []).append(start)
        elif not line.startswith(recipe_prefix):
            first = stripped.split(None, 1)[0]
            if first not in ("ifeq", "ifneq", "ifdef", "ifndef", "else", "endif"):
                rule_context = None
    src.hints.extend(pending_hints)
    return src


def _continues(text: str) -> bool:
    k = len(text) - len(text.rstrip("\\"))
    return k % 2 == 1


def _starts_define(logical: str) -> bool:
    words = logical.split()
    while words and words[0] in ("override", "export", "private"):
        words = words[1:]
    return bool(words) and words[0] == "define"


def _strip_comment(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i:i + 2])
            i += 2
            continue
        if c == "#":
            break
        out.append(c)
        i += 1
    return "".join(out)


def rule_targets(text: str) -> list[str] | None:
    """The literal target words of a rule line, or None when the line is not a rule.

    Words holding a ``$`` reference are left out (make knows what they expand to).
    """
    s = text.strip()
    if not s or text.startswith("\t"):
        return None
    first = s.split(None, 1)[0]
    if first in _DIRECTIVES:
        return None
    depth = 0
    i = 0
    while i < len(s):
        c = s[i]
        if c == "$" and i + 1 < len(s) and s[i + 1] in "({":
            depth += 1
            i += 2
            continue
        if depth and c in ")}":
            depth -= 1
        elif not depth:
            if c == "\\" and i + 1 < len(s):
                i += 2
                continue
            if c == "=":
                return None           # "X = y", "X ?= y", "X += y", "X != y"
            if c == ":":
                rest = s[i + 1:]
                if rest.startswith("=") or rest.startswith(":=") or rest.startswith("::="):
                    return None       # "X := y", "X ::= y", "X :::= y"
                if _TARGET_VAR.match(rest):
                    return None       # "target: VAR = value" sets a variable, it is no rule
                head = s[:i].strip().removesuffix("&")
                return [w for w in re.split(r"(?<!\\)\s+", head.strip()) if w and "$" not in w]
        i += 1
    return None
