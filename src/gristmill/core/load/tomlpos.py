"""TOML with positions: ``tomllib`` parses; a light scan finds where each key sits.

``parse_toml(path, text)`` returns the data and a ``Source`` whose ``keys`` and
``values`` map key paths (``("tasks", "build", "inputs", 0)``) to character
offsets: table headers (``[tasks.build]``, at their ``[``), ``key =`` lines,
dotted keys, keys inside inline tables, and the elements of arrays. The scan
never fails on any text; a key it cannot place falls back to the nearest
enclosing one. A syntax error becomes a ``WorkflowError`` at the line and
column tomllib names.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from ..errors import Location, WorkflowError
from .source import Source

_TOKEN = re.compile(r'''
   (?P<nl>\n)
 | (?P<ws>[^\S\n]+)
 | (?P<comment>\#[^\n]*)
 | (?P<mlb>"""[^"\\]*(?:(?:\\.|"{1,2}(?!"))[^"\\]*)*+(?:"{3,5}|\Z))
 | (?P<mll>\'\'\'[^']*(?:'{1,2}(?!')[^']*)*+(?:'{3,5}|\Z))
 | (?P<bs>"[^"\\\n]*(?:\\.[^"\\\n]*)*+"?)
 | (?P<ls>'[^'\n]*'?)
 | (?P<p>[\[\]{}=,.])
 | (?P<bare>[^\s\[\]{}=,.\#"']+)
 | (?P<other>.)
''', re.VERBOSE | re.DOTALL)

# Strings are written as unrolled loops with possessive repeats: ``(?:a|b)*`` makes the
# regex engine keep a frame per character (about 300 bytes per byte of a long string).

_STRINGS = frozenset(("mlb", "mll", "bs", "ls"))
_AT = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


def parse_toml(path: str, text: str) -> tuple[dict[str, Any], Source]:
    """Parse TOML text; every problem is a WorkflowError at ``path:line:col``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path, text, str(exc)) from None
    except RecursionError:
        raise WorkflowError("invalid TOML: nesting too deep", path=path) from None
    except ValueError as exc:          # e.g. an integer with too many digits
        m = re.search(r"\d{1000,}", text)
        src = Source(path, text, "toml")
        loc = src.location_at(m.start()) if m else Location(path)
        raise WorkflowError(f"invalid TOML: {exc}", loc) from None
    keys, values, _ = scan(text)
    return data, Source(path, text, "toml", keys, values)


def _syntax_error(path: str, text: str, message: str) -> WorkflowError:
    src = Source(path, text, "toml")
    m = _AT.search(message)
    if m:
        message = message[:m.start()]
        if m.group(1):
            loc = Location(path, int(m.group(1)), int(m.group(2)))
        else:
            loc = src.location_at(len(text))
    else:
        loc = Location(path)
    if message.startswith(("Cannot overwrite a value", "Cannot declare")):
        _, _, dups = scan(text)
        if dups:
            key, off, first = dups[0]
            line, col = src.position(first)
            return WorkflowError(
                f"{_dotted(key)} is defined twice (first at line {line}, column {col})",
                src.location_at(off))
    return WorkflowError(f"invalid TOML: {message}", loc)


def _dotted(key: tuple) -> str:
    return ".".join(str(k) if _BARE.fullmatch(str(k)) else repr(str(k)) for k in key)


_BARE = re.compile(r"[A-Za-z0-9_-]+")


# -- the scan -------------------------------------------------------------------------

def scan(text: str) -> tuple[dict[tuple, int], dict[tuple, int], list[tuple[tuple, int, int]]]:
    """Key offsets, value offsets and duplicate keys ``(path, offset, first offset)``.

    Tolerant: any text gives some answer, never an exception.
    """
    toks = [(m.lastgroup, m.group(), m.start()) for m in _TOKEN.finditer(text)
            if m.lastgroup not in ("ws", "comment")]
    scanner = _Scanner(toks)
    try:
        scanner.run()
    except RecursionError:
        pass
    return scanner.keys, scanner.values, scanner.dups


class _Scanner:
    def __init__(self, toks: list[tuple[str | None, str, int]]):
        self.toks = toks
        self.n = len(toks)
        self.keys: dict[tuple, int] = {}
        self.values: dict[tuple, int] = {}
        self.dups: list[tuple[tuple, int, int]] = []
        self.assigned: dict[tuple, int] = {}
        self.headers: dict[tuple, int] = {}

    def run(self) -> None:
        toks, n = self.toks, self.n
        table: tuple = ()
        aot: dict[tuple, int] = {}
        i = 0
        while i < n:
            kind, s, off = toks[i]
            if kind == "nl":
                i += 1
                continue
            if kind == "p" and s == "[":
                double = i + 1 < n and toks[i + 1][1] == "[" and toks[i + 1][2] == off + 1
                comps, j = self.read_key(i + 2 if double else i + 1)
                if comps:
                    names = tuple(c for c, _ in comps)
                    for k in range(1, len(names)):
                        self.keys.setdefault(names[:k], comps[k - 1][1])
                    if double:
                        idx = aot.get(names, -1) + 1
                        aot[names] = idx
                        self.keys.setdefault(names, off)
                        names = names + (idx,)
                    elif names in self.headers:
                        self.dups.append((names, off, self.headers[names]))
                    else:
                        self.headers[names] = off
                    self.keys.setdefault(names, off)
                    table = names
                i = self.skip_line(j)
                continue
            comps, j = self.read_key(i)
            if not comps or j >= n or toks[j][1] != "=" or toks[j][0] != "p":
                i = self.skip_line(max(j, i + 1))
                continue
            full = self.record_key(table, comps)
            j = self.read_value(j + 1, full)
            i = self.skip_line(j)

    def record_key(self, base: tuple, comps: list[tuple[str, int]]) -> tuple:
        path = base
        for name, off in comps:
            path = path + (name,)
            self.keys.setdefault(path, off)
        first = self.assigned.get(path)
        if first is not None:
            self.dups.append((path, comps[-1][1], first))
        else:
            self.assigned[path] = comps[-1][1]
        return path

    def read_key(self, i: int) -> tuple[list[tuple[str, int]], int]:
        toks, n = self.toks, self.n
        comps: list[tuple[str, int]] = []
        while i < n:
            kind, s, off = toks[i]
            if kind == "bare":
                comps.append((s, off))
            elif kind in ("bs", "ls"):
                comps.append((_key_text(kind, s), off))
            else:
                break
            i += 1
            if i < n and toks[i][0] == "p" and toks[i][1] == ".":
                i += 1
                continue
            break
        return comps, i

    def skip_line(self, i: int) -> int:
        toks, n = self.toks, self.n
        while i < n and toks[i][0] != "nl":
            i += 1
        return i

    def read_value(self, i: int, path: tuple) -> int:
        """Record the value starting at token ``i``; return the index after it."""
        toks, n = self.toks, self.n
        if i >= n:
            return i
        kind, s, off = toks[i]
        if kind == "nl":
            return i
        self.values.setdefault(path, off)
        if kind in _STRINGS:
            return i + 1
        if kind == "p" and s == "[":
            return self.read_array(i + 1, path)
        if kind == "p" and s == "{":
            return self.read_inline_table(i + 1, path)
        # a scalar: everything up to a delimiter (a date-time may hold a space)
        i += 1
        while i < n and not (toks[i][0] == "nl" or (toks[i][0] == "p" and toks[i][1] in ",]}")):
            i += 1
        return i

    def read_array(self, i: int, path: tuple) -> int:
        toks, n = self.toks, self.n
        idx = 0
        while i < n:
            kind, s, _ = toks[i]
            if kind == "nl" or (kind == "p" and s == ","):
                i += 1
                continue
            if kind == "p" and s == "]":
                return i + 1
            if kind == "p" and s in "}=":
                return i        # broken text: give up on this array
            j = self.read_value(i, path + (idx,))
            idx += 1
            i = max(j, i + 1)
        return i

    def read_inline_table(self, i: int, path: tuple) -> int:
        toks, n = self.toks, self.n
        while i < n:
            kind, s, _ = toks[i]
            if kind == "nl" or (kind == "p" and s == ","):
                i += 1
                continue
            if kind == "p" and s == "}":
                return i + 1
            comps, j = self.read_key(i)
            if not comps or j >= n or toks[j][1] != "=":
                return max(j, i + 1)
            full = self.record_key(path, comps)
            i = max(self.read_value(j + 1, full), j + 1)
        return i


def _key_text(kind: str, s: str) -> str:
    if kind == "ls":
        return s[1:-1] if len(s) >= 2 and s.endswith("'") else s[1:]
    body = s[1:-1] if len(s) >= 2 and s.endswith('"') else s[1:]
    if "\\" not in body:
        return body
    try:
        return tomllib.loads(f"k = {s}")["k"]
    except (tomllib.TOMLDecodeError, ValueError, KeyError):
        return body
