"""One workflow (or JSON variable) file as read: its text, its data, and where each key sits.

A ``Source`` answers "where is this?" for a key path such as
``("tasks", "build", "inputs", 2)``: the key itself (``loc``) or its value
(``loc(..., value=True)``), falling back to the nearest enclosing key it
knows. Positions are kept as character offsets and turned into line and
column only when asked, so a big file costs one scan.
"""

from __future__ import annotations

import bisect
import datetime
import math
from typing import NoReturn

from ..errors import Location, WorkflowError

KeyPath = tuple  # of str (keys) and int (array indices)


class Source:
    """A parsed file with the offsets of its keys and values."""

    def __init__(self, path: str, text: str, kind: str,
                 keys: dict[KeyPath, int] | None = None,
                 values: dict[KeyPath, int] | None = None):
        self.path = path
        self.text = text
        self.kind = kind                      # "toml" or "json"
        self.keys = keys if keys is not None else {}
        self.values = values if values is not None else {}
        self._lines: list[int] | None = None

    # -- positions ---------------------------------------------------------------------

    def position(self, offset: int) -> tuple[int, int]:
        """(line, column) of a character offset, both counting from 1."""
        if self._lines is None:
            starts = [0]
            find = self.text.find
            i = find("\n")
            while i >= 0:
                starts.append(i + 1)
                i = find("\n", i + 1)
            self._lines = starts
        line = bisect.bisect_right(self._lines, offset)
        return line, offset - self._lines[line - 1] + 1

    def location_at(self, offset: int) -> Location:
        line, col = self.position(offset)
        return Location(self.path, line, col)

    def offset(self, path: KeyPath, value: bool = False) -> int:
        """The offset of ``path``'s value (or key), else of the nearest enclosing key."""
        path = tuple(path)
        if value and path in self.values:
            return self.values[path]
        while path:
            off = self.keys.get(path)
            if off is not None:
                return off
            off = self.values.get(path)
            if off is not None:
                return off
            path = path[:-1]
        return 0

    def loc(self, path: KeyPath, value: bool = False) -> Location:
        return self.location_at(self.offset(path, value))

    def loc_in_string(self, path: KeyPath, value: str, index: int) -> Location:
        """The location of ``value[index]`` where ``value`` is the string at ``path``.

        Exact when the string is written without escapes; else the string's start.
        """
        start = self.values.get(tuple(path))
        if start is None:
            return self.loc(path, value=True)
        text = self.text
        quote = 1
        for q in ('"""', "'''"):
            if text.startswith(q, start):
                quote = 3
                break
        begin = start + quote
        if quote == 3:
            if text.startswith("\r\n", begin):
                begin += 2
            elif text.startswith("\n", begin):
                begin += 1
        if text.startswith(value, begin) and 0 <= index <= len(value):
            return self.location_at(begin + index)
        return self.location_at(start)

    # -- errors ------------------------------------------------------------------------

    def error(self, message: str, path: KeyPath = (), value: bool = False) -> WorkflowError:
        return WorkflowError(message, self.loc(path, value))

    def fail(self, message: str, path: KeyPath = (), value: bool = False) -> NoReturn:
        raise self.error(message, path, value)

    # -- describing values -------------------------------------------------------------

    def describe(self, value: object) -> str:
        """``a string ('x')``, ``an integer (5)``, ``a table``... for "expected X, got Y"."""
        return describe(value, self.kind)


def describe(value: object, kind: str = "toml") -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({short_number(value)})"
    if isinstance(value, float):
        return f"a number ({short_number(value)})"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:40] + "..."
        return f"a string ({text!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object" if kind == "json" else "a table"
    if isinstance(value, datetime.datetime):
        return "a date-time"
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, datetime.time):
        return "a time"
    return type(value).__name__


def short_number(value: int | float) -> str:
    """``repr`` of a number that never fails (very long integers cannot be printed)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**18:
        return "a very large integer" if value > 0 else "a very large negative integer"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    return repr(value)
