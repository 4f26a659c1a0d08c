"""JSON with positions: ``json`` parses; a token scan finds where each key and value sits.

``parse_json(path, text)`` returns the data and a ``Source`` mapping key paths
(``("tasks", "build", "inputs", 0)``) to offsets. A syntax error, a duplicate
key, or anything else ``json`` refuses becomes a ``WorkflowError`` at
``path:line:col``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import Location, WorkflowError
from .source import Source

# A string as an unrolled loop with a possessive repeat: ``(?:a|b)*`` keeps a regex frame
# per character (~90 bytes per byte of a long string).
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*+"|[{}\[\]:,]|[^\s{}\[\]:,"]+', re.DOTALL)


def parse_json(path: str, text: str) -> tuple[Any, Source]:
    """Parse JSON text; every problem is a WorkflowError at ``path:line:col``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowError(f"invalid JSON: {exc.msg}", path=path, line=exc.lineno,
                            col=exc.colno) from None
    except RecursionError:
        raise WorkflowError("invalid JSON: nesting too deep", path=path) from None
    except ValueError as exc:          # e.g. an integer with too many digits
        m = re.search(r"\d{1000,}", text)
        src = Source(path, text, "json")
        loc = src.location_at(m.start()) if m else Location(path)
        raise WorkflowError(f"invalid JSON: {exc}", loc) from None
    if _SURROGATE.search(text):
        at = _lone_surrogate(text)
        if at is not None:
            src = Source(path, text, "json")
            raise WorkflowError(f"invalid JSON: {text[at:at + 6]} is half of a UTF-16 "
                                "surrogate pair, not a character", src.location_at(at))
    keys, values, dups = scan(text)
    src = Source(path, text, "json", keys, values)
    if dups:
        key, off, first = dups[0]
        line, col = src.position(first)
        raise WorkflowError(f"duplicate key {key[-1]!r} (first at line {line}, column {col})",
                            src.location_at(off))
    return data, src


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def _lone_surrogate(text: str) -> int | None:
    """The offset of the first ``\\uD800``-``\\uDFFF`` escape in a string that is not
    half of a pair (``json`` takes it, and no file name or command can hold it)."""
    for m in _TOKEN.finditer(text):
        token = m.group()
        if token[0] != '"' or not _SURROGATE.search(token):
            continue
        high = -1                       # the offset of a high half waiting for its low half
        for e in _ESCAPE.finditer(token):
            code = int(e.group(1), 16) if e.group(1) else -1
            if 0xDC00 <= code <= 0xDFFF and high >= 0 and e.start() == high + 6:
                high = -1
                continue
            if high >= 0:
                return m.start() + high
            if 0xD800 <= code <= 0xDBFF:
                high = e.start()
            elif 0xDC00 <= code <= 0xDFFF:
                return m.start() + e.start()
        if high >= 0:
            return m.start() + high
    return None


def scan(text: str) -> tuple[dict[tuple, int], dict[tuple, int], list[tuple[tuple, int, int]]]:
    """Key offsets, value offsets and duplicate keys ``(path, offset, first offset)``
    of valid JSON text."""
    keys: dict[tuple, int] = {}
    values: dict[tuple, int] = {}
    dups: list[tuple[tuple, int, int]] = []
    # A frame per open container: [path, is_object, expecting_key, key or index, seen keys]
    stack: list[list[Any]] = []
    for m in _TOKEN.finditer(text):
        s = m.group()
        off = m.start()
        c = s[0]
        top = stack[-1] if stack else None
        if c in "}]":
            if stack:
                stack.pop()
            continue
        if c == ":":
            if top is not None:
                top[2] = False
            continue
        if c == ",":
            if top is not None:
                if top[1]:
                    top[2] = True
                else:
                    top[3] += 1
            continue
        if top is not None and top[1] and top[2]:      # a key
            key = _decode(s)
            path = top[0] + (key,)
            seen = top[4]
            if key in seen:
                dups.append((path, off, seen[key]))
            else:
                seen[key] = off
            keys[path] = off
            top[3] = key
            continue
        path = () if top is None else top[0] + (top[3],)
        values[path] = off
        if c == "{":
            stack.append([path, True, True, None, {}])
        elif c == "[":
            stack.append([path, False, False, 0, None])
    return keys, values, dups


def _decode(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    try:
        return json.loads(token)
    except ValueError:
        return body
