"""Which recipe lines ignore errors (make's ``-`` prefix).

The recording shell sees each command after make has stripped its ``@-+``
prefix, and make's echo tells ``@`` apart, but nothing observable tells ``-``
apart until a command fails. So ``-`` is read from the unexpanded recipe line
(as make's data base prints it): the literal prefix, and the leading variable
references, looked up the way make would (target-specific, pattern-specific,
then global values). A leading reference that cannot be followed (a function
call) is "unknown" unless nothing it could expand to contains a ``-``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

_PLAIN_NAME = re.compile(r"[^\s:=#$(){},]+")
_AUTOMATIC = frozenset("@%<?^+|*") | {f"{c}{d}" for c in "@%<?^+|*" for d in "DF"}
UNKNOWN = object()

# name -> (value, flavor) or None when undefined
Lookup = Callable[[str], "tuple[str, str] | None"]


@dataclass(frozen=True, slots=True)
class LineFlags:
    """What a recipe line's prefixes say: ``-`` (ignore errors), ``+`` or $(MAKE)."""

    noerror: bool | None        # None: cannot tell
    recursive: bool             # "+" or $(MAKE): make runs it even under -n
    count: int | None           # commands this line expands to, when plain (None: cannot tell)
    sub_noerror: tuple[bool | None, ...] = ()   # for a canned recipe: each line's flag


def analyse_line(raw: str, lookup: Lookup) -> LineFlags:
    recursive = "$(MAKE)" in raw or "${MAKE}" in raw
    literal_noerror = False
    i = 0
    while i < len(raw) and raw[i] in " \t@-+":
        if raw[i] == "-":
            literal_noerror = True
        if raw[i] == "+":
            recursive = True
        i += 1
    rest = raw[i:]
    if "$" not in rest:
        return LineFlags(literal_noerror, recursive, 1 if rest.strip() else 0)
    # A canned recipe: the line is one reference to a multi-line variable.
    m = re.fullmatch(r"\$[({]([^\s:=#$(){},]+)[)}]\s*", rest)
    if m:
        found = lookup(m.group(1))
        if found is not None and "\n" in found[0]:
            subs = tuple(True if literal_noerror else analyse_line(part, lookup).noerror
                         for part in found[0].split("\n") if part.strip())
            return LineFlags(literal_noerror or None, recursive, len(subs), subs)
    if literal_noerror:
        return LineFlags(True, recursive, None)
    return LineFlags(_expanded_noerror(rest, lookup), recursive, None)


def _expanded_noerror(text: str, lookup: Lookup) -> bool | None:
    noerror = False
    for c in _chars(text, lookup, 0):
        if c is UNKNOWN:
            return None if _may_produce_dash(text, lookup, 0) else noerror
        if c == "-":
            noerror = True
        elif c not in " \t@+":
            return noerror
    return noerror


def _chars(text: str, lookup: Lookup, depth: int) -> Iterator[object]:
    """The leading characters of ``text`` expanded, until something cannot be followed."""
    i = 0
    while i < len(text):
        c = text[i]
        if c != "$":
            yield c
            i += 1
            continue
        if i + 1 >= len(text):
            return
        nxt = text[i + 1]
        if nxt == "$":
            yield "$"
            i += 2
            continue
        if nxt in "({":
            end = _matching(text, i + 1)
            if end < 0:
                yield UNKNOWN
                return
            inner = text[i + 2:end]
            i = end + 1
        else:
            inner = nxt
            i += 2
        if inner in _AUTOMATIC:
            yield "x"           # a file name: not a prefix character
            return
        if not _PLAIN_NAME.fullmatch(inner) or depth > 10:
            yield UNKNOWN
            return
        found = lookup(inner)
        if found is None:
            continue            # undefined: expands to nothing
        value, flavor = found
        if flavor == "simple":
            yield from value
        else:
            yield from _chars(value, lookup, depth + 1)


def _matching(text: str, open_at: int) -> int:
    opener = text[open_at]
    closer = ")" if opener == "(" else "}"
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == opener:
            depth += 1
        elif text[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _may_produce_dash(text: str, lookup: Lookup, depth: int) -> bool:
    if "-" in text or "$(shell" in text or "${shell" in text or "$(file" in text or depth > 10:
        return True
    for name in re.findall(r"\$[({]([^\s:=#$(){},]+)[)}]", text):
        found = lookup(name)
        if found is not None and _may_produce_dash(found[0], lookup, depth + 1):
            return True
    return False


def assign_noerror(lines: list[LineFlags], commands: int) -> tuple[list[bool], bool]:
    """Per recorded command: does it ignore errors? And whether that is certain."""
    predicted: list[bool | None] = []
    plain = True
    for lf in lines:
        if lf.sub_noerror:
            predicted.extend(lf.sub_noerror)
        elif lf.count is None:
            plain = False
            predicted.append(lf.noerror)
        else:
            predicted.extend([lf.noerror] * lf.count)
    if len(predicted) == commands and plain:
        return [bool(p) for p in predicted], all(p is not None for p in predicted)
    if len(predicted) == commands:
        return [bool(p) for p in predicted], all(p is not None for p in predicted)
    known = {p for p in predicted}
    if len(known) == 1 and None not in known:
        return [bool(known.pop())] * commands, True
    return [False] * commands, False
