"""Make's messages on stderr, sorted into errors and warnings with their places."""

from __future__ import annotations

import re
from dataclasses import dataclass

# "Makefile:5: *** missing separator.  Stop."   "Makefile:3: inc.mk: No such file or directory"
_FILE_MSG = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+): (?P<msg>.*)$")
# "make: *** No rule to make target 'x', needed by 'y'.  Stop."   "make[1]: ..."
_MAKE_MSG = re.compile(r"^(?P<prog>[^\s:]+?)(?:\[\d+\])?: (?P<msg>.*)$")
_STOP = re.compile(r"^\*\*\* (?P<msg>.*?)\.?(?:  Stop\.)?$")
_NO_RULE = re.compile(r"^No rule to make target '(?P<target>.*?)'(?:, needed by '(?P<needed>.*?)')?$")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One message make wrote to stderr, classified."""

    kind: str                   # "error", "warning", "no-rule", "not-remade", "info"
    message: str
    file: str | None = None
    line: int | None = None
    target: str | None = None   # for "no-rule": the missing file
    needed_by: str | None = None


def parse_stderr(text: str, make_prog: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line:
            continue
        fm = _FILE_MSG.match(line)
        mm = _MAKE_MSG.match(line)
        if mm and mm.group("prog") in (make_prog, make_prog.rsplit("/", 1)[-1], "make", "gmake") \
                and not (fm and fm.group("file") == mm.group("prog")):
            out.append(_make_message(mm.group("msg")))
        elif fm:
            out.append(_file_message(fm.group("file"), int(fm.group("line")), fm.group("msg")))
        else:
            out.append(Diagnostic("info", line))
    return out


def _make_message(msg: str) -> Diagnostic:
    sm = _STOP.match(msg)
    if sm:
        text = sm.group("msg")
        nr = _NO_RULE.match(text)
        if nr:
            return Diagnostic("no-rule", text, target=nr.group("target"), needed_by=nr.group("needed"))
        return Diagnostic("error", text)
    if msg.startswith("Target '") and msg.endswith("not remade because of errors."):
        return Diagnostic("not-remade", msg)
    if msg.startswith("warning: ") or msg.startswith("Circular "):
        return Diagnostic("warning", msg.removeprefix("warning: "))
    return Diagnostic("info", msg)


def _file_message(file: str, line: int, msg: str) -> Diagnostic:
    sm = _STOP.match(msg)
    if sm:
        return Diagnostic("error", sm.group("msg"), file, line)
    if msg.startswith("warning: "):
        return Diagnostic("warning", msg.removeprefix("warning: "), file, line)
    if msg.endswith(": No such file or directory"):
        return Diagnostic("missing-include", msg, file, line,
                          target=msg.removesuffix(": No such file or directory"))
    # $(warning ...) text, and anything else make says about a line
    return Diagnostic("warning", msg, file, line)
