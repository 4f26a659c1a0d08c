"""The words of the dependency audit: what a traced task touched, and what was wrong.

``run/trace.py`` turns a task's strace output into ``Access`` records; the pure
``decide/audit.py`` compares them with what the task declares and gives
``AuditFinding`` records; the engine publishes them (``events.TaskAudited``), history
keeps them with the attempt, the console and the app show them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

# What a traced process did to a path (``Access.op``).
READ = "read"           # opened for reading, or executed
PROBE = "probe"         # an open for reading that failed (no such file, yet)
LIST = "list"           # a folder opened to list it
WRITE = "write"         # opened for writing, created, truncated, touched, linked to
REMOVE = "remove"       # unlinked or removed as a folder
MOVE_AWAY = "move-away"  # the old name of a rename
MKDIR = "mkdir"         # a folder made


@dataclass(frozen=True, slots=True)
class Access:
    op: str
    path: str            # absolute, normalised (not resolved through symlinks)


# What a finding says (``AuditFinding.kind``).
UNDECLARED_READ = "undeclared-read"    # read a file of the folder it does not declare
MISSING_EDGE = "missing-edge"          # ... which another task makes, with no edge to it
UNDECLARED_WRITE = "undeclared-write"  # wrote a file that is not one of its outputs
UNREAD_INPUT = "unread-input"          # a declared input it never read

KINDS = (UNDECLARED_READ, MISSING_EDGE, UNDECLARED_WRITE, UNREAD_INPUT)


@dataclass(frozen=True, slots=True)
class AuditFinding:
    kind: str
    path: str               # relative to the workflow's folder
    task: str = ""          # the task audited
    producer: str = ""      # the task that makes ``path``, if one does
    fix: str = ""           # the line to add, or the edit to make
    where: str = ""         # path:line of the rule or table the fix goes into

    @property
    def message(self) -> str:
        """One line in words."""
        p = self.path
        if self.kind == MISSING_EDGE:
            return (f"read {p}, which task {self.producer} makes, but does not depend on it: "
                    f"they may run in either order, and a change to it does not rerun this task")
        if self.kind == UNDECLARED_READ:
            if self.producer:
                return (f"read {p} (made by {self.producer}, which runs before it) without "
                        f"declaring it: a change to it does not rerun this task")
            return f"read {p}, which it does not declare: a change to it does not rerun this task"
        if self.kind == UNDECLARED_WRITE:
            if self.producer:
                return f"wrote {p}, which is an output of task {self.producer}, not one of its own"
            return f"wrote {p}, which is not one of its declared outputs"
        if self.kind == UNREAD_INPUT:
            return f"never read its declared input {p}"
        return f"{self.kind}: {p}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "task": self.task,
                "producer": self.producer, "fix": self.fix, "where": self.where,
                "message": self.message}


def findings_json(findings: tuple[AuditFinding, ...] | list[AuditFinding]) -> str:
    return json.dumps([{"kind": f.kind, "path": f.path, "producer": f.producer, "fix": f.fix,
                        "where": f.where} for f in findings], ensure_ascii=False)


def findings_from_json(text: str | None, task: str = "") -> tuple[AuditFinding, ...]:
    out = []
    try:
        items = json.loads(text or "[]")
    except ValueError:
        return ()
    for item in items if isinstance(items, list) else ():
        try:
            out.append(AuditFinding(str(item["kind"]), str(item["path"]), task,
                                    str(item.get("producer", "")), str(item.get("fix", "")),
                                    str(item.get("where", ""))))
        except (KeyError, TypeError, AttributeError):
            continue
    return tuple(out)
