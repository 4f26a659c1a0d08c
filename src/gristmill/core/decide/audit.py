"""The dependency audit's verdict: what a traced task touched against what it declares.

Pure: ``Auditor.audit`` takes the accesses ``run/trace.py`` read from strace and gives
the findings. It looks only inside the workflow's folder and leaves out the task's own
log, version-control and byte-code folders (``.git``, ``__pycache__``), virtual
environments (a folder holding ``pyvenv.cfg``), files the task made and removed again
(temporaries), folders listed or made, reads of its own outputs, and what a phony task
with no outputs writes (``install``: it has none to declare; a later reader of such a
file still learns who wrote it), unless it is another task's output.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Iterable

from ..findings import (LIST, MISSING_EDGE, MKDIR, MOVE_AWAY, PROBE, READ, REMOVE,
                        UNDECLARED_READ, UNDECLARED_WRITE, UNREAD_INPUT, WRITE, Access,
                        AuditFinding)
from ..workflow import Task, Workflow
from .graph import TaskGraph

_SKIP_PARTS = frozenset({".git", ".hg", ".svn", "__pycache__"})


class Auditor:
    """The audit of one workflow's tasks (built once per run)."""

    def __init__(self, workflow: Workflow, graph: TaskGraph | None = None):
        self.wf = workflow
        self.graph = graph or TaskGraph.of(workflow)
        root = os.path.normpath(str(workflow.root))
        self.roots = tuple(dict.fromkeys((root, os.path.realpath(root))))
        self.producer = {o: t.name for t in workflow.tasks.values() for o in t.outputs}
        # Files audited tasks of this run wrote without declaring them: a later reader's
        # producer (its missing edge) though no task declares the file.
        self.written: dict[str, str] = {}
        self._venv: dict[str, bool] = {}
        self._ancestors: dict[str, set[str]] = {}

    # -- paths ---------------------------------------------------------------------------
    def rel(self, path: str) -> str | None:
        """``path`` relative to the workflow's folder, or None outside it (or skipped)."""
        for root in self.roots:
            if path == root:
                return None          # the folder itself
            if path.startswith(root + "/"):
                rel = path[len(root) + 1:]
                parts = rel.split("/")
                if _SKIP_PARTS.intersection(parts) or self._in_venv(root, parts):
                    return None
                return rel
        return None

    def _in_venv(self, root: str, parts: list[str]) -> bool:
        for i in range(1, len(parts)):
            folder = root + "/" + "/".join(parts[:i])
            known = self._venv.get(folder)
            if known is None:
                known = self._venv[folder] = os.path.isfile(folder + "/pyvenv.cfg")
            if known:
                return True
        return False

    def _abs(self, rel: str) -> str:
        return os.path.join(self.roots[0], rel)

    def ancestors(self, name: str) -> set[str]:
        """Every task ``name`` depends on, directly or not."""
        known = self._ancestors.get(name)
        if known is None:
            seen: set[str] = set()
            stack = list(self.graph.deps(name))
            while stack:
                n = stack.pop()
                if n not in seen:
                    seen.add(n)
                    stack.extend(self.graph.deps(n))
            known = self._ancestors[name] = seen
        return known

    # -- the audit -----------------------------------------------------------------------
    def audit(self, task: Task, accesses: Iterable[Access], complete: bool = True,
              ignore: Iterable[str] = ()) -> tuple[AuditFinding, ...]:
        """The findings of one attempt. ``complete``: it succeeded (only then is a
        declared input it never read a finding); ``ignore``: absolute paths left out
        (its log)."""
        ignored = {os.path.normpath(p) for p in ignore}
        rel = self.rel
        reads: dict[str, None] = {}
        probes: dict[str, None] = {}
        touched: set[str] = set()          # read, listed, probed or written: "used"
        wrote: dict[str, None] = {}
        for a in accesses:
            if a.path in ignored:
                continue
            r = rel(a.path)
            if r is None:
                continue
            op = a.op
            if op == READ:
                touched.add(r)
                if r not in wrote:
                    reads.setdefault(r)
            elif op == PROBE:
                touched.add(r)
                if r not in wrote:
                    probes.setdefault(r)
            elif op == LIST:
                touched.add(r)
            elif op == WRITE:
                touched.add(r)
                wrote.setdefault(r)
            elif op in (REMOVE, MOVE_AWAY):
                wrote.pop(r, None)       # made and gone again: a temporary (or a clean)
            elif op == MKDIR:
                touched.add(r)
        inputs = set(task.inputs)
        outputs = set(task.outputs)
        own_dirs = tuple(o + "/" for o in task.outputs)
        in_dirs = tuple(i + "/" for i in task.inputs)

        def mine(r: str) -> bool:
            return r in outputs or r.startswith(own_dirs)

        def declared(r: str) -> bool:
            return r in inputs or r.startswith(in_dirs) or mine(r)

        found: list[AuditFinding] = []
        ancestors = None
        for r in reads:
            if declared(r) or os.path.isdir(self._abs(r)):
                continue
            producer = self.producer.get(r) or self.written.get(r, "")
            if producer == task.name:
                continue
            if ancestors is None:
                ancestors = self.ancestors(task.name)
            kind = MISSING_EDGE if producer and producer not in ancestors else UNDECLARED_READ
            found.append(self._finding(kind, r, task, producer))
        for r in probes:
            if r in reads or declared(r):
                continue
            producer = self.producer.get(r, "")
            if not producer or producer == task.name:
                continue     # a compiler looking along its include path: nothing to say
            if ancestors is None:
                ancestors = self.ancestors(task.name)
            if producer not in ancestors:
                found.append(self._finding(MISSING_EDGE, r, task, producer))
        for r in wrote:
            if mine(r):
                continue
            p = self._abs(r)
            if not os.path.lexists(p) or os.path.isdir(p):
                continue
            self.written.setdefault(r, task.name)
            producer = self.producer.get(r, "")
            if task.phony and not task.outputs and not producer:
                continue     # install, dist...: a phony task has no outputs to declare
            found.append(self._finding(UNDECLARED_WRITE, r, task, producer))
        if complete:
            for i in task.inputs:
                if i in touched or i.startswith("../"):
                    continue
                p = self._abs(i)
                if not os.path.lexists(p) or os.path.isdir(p):
                    continue      # outside the folder, gone, or a folder: not judged
                found.append(self._finding(UNREAD_INPUT, i, task, self.producer.get(i, "")))
        return tuple(found)

    # -- what to change ------------------------------------------------------------------
    def _finding(self, kind: str, r: str, task: Task, producer: str) -> AuditFinding:
        fix, where = self.fix(kind, r, task)
        return AuditFinding(kind, r, task.name, producer, fix, where)

    def fix(self, kind: str, r: str, task: Task) -> tuple[str, str]:
        """(the line to add or the edit to make, where it goes: path:line)."""
        loc = task.location
        where = f"{loc.path}:{loc.line}" if loc is not None else ""
        if self.wf.kind == "make":
            target = task.name
            path = os.path.relpath(self._abs(r), task.cwd) if task.cwd else r
            if kind in (UNDECLARED_READ, MISSING_EDGE):
                return f"{target}: {path}", where
            if kind == UNDECLARED_WRITE:
                return f"{' '.join((*task.outputs, path))} &: …  (grouped targets)", where
            return f"remove {path} from the prerequisites of {target}", where
        edit = file_edit(self.wf, task, kind, r)
        if self.wf.kind == "json":
            value, of = json.dumps(edit.value, ensure_ascii=False), json.dumps(edit.table)
            if edit.remove:
                return f'remove {value} from "{edit.key}" of task {of}', where
            return f'add {value} to "{edit.key}" of task {of}', where
        op = "-=" if edit.remove else "+="
        table = edit.table if _BARE.fullmatch(edit.table) else _toml_string(edit.table)
        return f"[tasks.{table}] {edit.key} {op} {_toml_string(edit.value)}", where


@dataclass(frozen=True, slots=True)
class FileEdit:
    """A finding's fix in a gristmill.toml or gristmill.json: in ``file``, the task table
    ``table``, add ``value`` to (or ``remove`` it from) the list ``key``."""

    file: str
    table: str
    key: str
    value: str
    remove: bool = False


def file_edit(workflow: Workflow, task: Task, kind: str, path: str) -> FileEdit:
    """The edit that answers a finding of ``kind`` about ``path`` (relative to the
    workflow's folder): the path as the declaring file's folder sees it."""
    loc = task.location
    file = loc.path if loc is not None else str(workflow.path)
    folder = os.path.dirname(os.path.abspath(file))
    value = os.path.relpath(os.path.join(str(workflow.root), path), folder).replace(os.sep, "/")
    key = "outputs" if kind == UNDECLARED_WRITE else "inputs"
    return FileEdit(file, task.group or task.name, key, value, kind == UNREAD_INPUT)


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _toml_string(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)
