"""Placeholders in ``cmd``, ``inputs`` and ``outputs``: ``{input}``, ``{item}``, ``{vars.NAME}``...

A string is parsed once into a ``Template`` (literal text and ``Field``s, each
with its offset in the string, so an error can point at it). Known values can
be substituted early (``Template.substitute``: variables, the task name) and
the rest per fan-out instance (``Template.render``, one ``str.format`` call).
``{{`` and ``}}`` are literal braces.

In a shell command every substituted value is shell-quoted: ``quote_path`` and
``quote_paths`` make a file named ``a b;$(touch x).txt`` reach the command as
one argument that runs nothing.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

#: Every placeholder name except ``vars.NAME``.
NAMES = ("input", "inputs", "output", "outputs", "item", "stem", "name", "dir", "task")
#: The placeholders that describe the fan-out item.
ITEM_NAMES = frozenset(("item", "stem", "name", "dir"))
#: The placeholders that name a task's files (only meaningful in ``cmd``).
FILE_NAMES = frozenset(("input", "inputs", "output", "outputs"))
VARS_PREFIX = "vars."


class PlaceholderError(ValueError):
    """A malformed or unknown placeholder; ``offset`` is its index in the string."""

    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Field:
    """One ``{name}`` in a template; ``offset`` is the index of its ``{``."""

    name: str
    offset: int

    @property
    def text(self) -> str:
        return "{" + self.name + "}"


class Template:
    """A parsed string: literal parts and fields, rendered with ``render(values)``."""

    __slots__ = ("text", "parts", "fields", "names", "fill", "_fmt", "_literal")

    def __init__(self, text: str, parts: tuple[str | Field, ...]):
        self.text = text
        self.parts = parts
        self.fields: tuple[Field, ...] = tuple(p for p in parts if isinstance(p, Field))
        self.names: frozenset[str] = frozenset(f.name for f in self.fields)
        if self.fields:
            self._literal = None
            # str.format reads "a.b" and "a[0]" as attribute and item access: such
            # names (variables) are rendered by a join instead.
            self._fmt = None if not all(f.name.isidentifier() for f in self.fields) else "".join(
                "{" + p.name + "}" if isinstance(p, Field)
                else p.replace("{", "{{").replace("}", "}}") for p in parts)
        else:
            self._literal = "".join(parts)     # type: ignore[arg-type]
            self._fmt = None
        #: The fastest callable that renders: ``fill(values) -> str`` (same as ``render``).
        self.fill = self._fmt.format_map if self._fmt is not None else self.render

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    @property
    def is_literal(self) -> bool:
        return not self.fields

    def substitute(self, values: Mapping[str, str]) -> "Template":
        """A template with the fields named in ``values`` replaced by their value."""
        if not any(f.name in values for f in self.fields):
            return self
        parts: list[str | Field] = []
        for p in self.parts:
            if isinstance(p, Field) and p.name in values:
                p = values[p.name]
            if isinstance(p, str) and parts and isinstance(parts[-1], str):
                parts[-1] += p
            else:
                parts.append(p)
        return Template(self.text, tuple(parts))

    def render(self, values: Mapping[str, str]) -> str:
        """The string with every field replaced; ``values`` must hold every field's name."""
        if self._literal is not None:
            return self._literal
        if self._fmt is None:
            return "".join(values[p.name] if isinstance(p, Field) else p for p in self.parts)
        return self._fmt.format_map(values)


def parse(text: str, variables: Iterable[str] | None = None) -> Template:
    """Parse ``text``; raises PlaceholderError for a malformed or unknown placeholder.

    With ``variables``, ``{vars.NAME}`` must name one of them.
    """
    if "{" not in text and "}" not in text:
        return Template(text, (text,) if text else ())
    known_vars = None if variables is None else set(variables)
    parts: list[str | Field] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "{":
            if text.startswith("{{", i):
                buf.append("{")
                i += 2
                continue
            j = text.find("}", i + 1)
            if j < 0:
                raise PlaceholderError("unmatched '{' (write '{{' for a literal brace)", i)
            inner = text[i + 1:j]
            if "{" in inner:
                raise PlaceholderError("unmatched '{' (write '{{' for a literal brace)", i)
            _check_name(inner, i, known_vars)
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(Field(inner, i))
            i = j + 1
        elif c == "}":
            if text.startswith("}}", i):
                buf.append("}")
                i += 2
                continue
            raise PlaceholderError("unmatched '}' (write '}}' for a literal brace)", i)
        else:
            j = i + 1
            while j < n and text[j] not in "{}":
                j += 1
            buf.append(text[i:j])
            i = j
    if buf:
        parts.append("".join(buf))
    return Template(text, tuple(parts))


def _check_name(inner: str, offset: int, known_vars: set[str] | None) -> None:
    if inner in NAMES:
        return
    if inner.startswith(VARS_PREFIX):
        var = inner[len(VARS_PREFIX):]
        if known_vars is None or var in known_vars:
            return
        hint = did_you_mean(var, known_vars)
        raise PlaceholderError(f"unknown variable {var!r} in '{{{inner}}}'{hint}", offset)
    if not inner:
        raise PlaceholderError("empty placeholder '{}' (write '{{' and '}}' for literal braces)", offset)
    hint = did_you_mean(inner, NAMES, cutoff=0.7)
    if not hint:
        hint = " (write '{{' and '}}' for literal braces)"
    raise PlaceholderError(f"unknown placeholder {_short('{' + inner + '}')}{hint}", offset)


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'X'?)`` when one of ``choices`` is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# -- values for a fan-out item -------------------------------------------------------

def item_name(item: str) -> str:
    """``{name}``: the item's file name."""
    return item.rstrip("/").rpartition("/")[2]


def item_stem(item: str) -> str:
    """``{stem}``: the item's file name without its last suffix (like ``Path.stem``)."""
    name = item_name(item)
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def item_dir(item: str) -> str:
    """``{dir}``: the item's folder, ``.`` when it has none."""
    head = item.rstrip("/").rpartition("/")[0]
    return head or "."


# -- shell quoting ------------------------------------------------------------------

_unsafe = re.compile(r"[^\w@%+=:,./-]", re.ASCII).search


def quote(value: str) -> str:
    """One shell word, whatever the value holds (as ``shlex.quote``)."""
    if value and not _unsafe(value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"


def quote_path(path: str) -> str:
    """A path as one shell word; a relative path starting with ``-`` gets ``./``."""
    if path[:1] == "-":
        path = "./" + path
    if path and not _unsafe(path):
        return path
    return "'" + path.replace("'", "'\"'\"'") + "'"


def quote_paths(paths: Iterable[str]) -> str:
    """Paths as shell words separated by spaces."""
    paths = list(paths)
    if not paths:
        return ""
    # Mostly every path is one plain word already: checked at once, joined as they are.
    probe = "/" + "/".join(paths) + "/"
    if "/-" not in probe and "//" not in probe and not _unsafe(probe):
        return " ".join(paths)
    return " ".join([quote_path(p) for p in paths])
