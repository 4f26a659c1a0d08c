"""What to watch for one loaded workflow, and what a changed path means.

A ``WatchScope`` is made after each load. Its folders are watched one by one (not
recursively): the folders the targets' inputs live in, every folder a glob listed
(so a new file that matches appears as a new instance), and the folders of the
workflow file and of every file the loader read (includes, JSON value files, a
Makefile's includes). A folder that does not exist yet is watched through its
nearest existing parent, so that its creation is seen.

``classify`` says what a change to one path means: ``RELOAD`` (a file the load read,
or a name added to or removed from a listed folder), ``INPUT`` (an input of a task:
the staleness scan decides), or None: the run's own outputs, editor temporary files
and anything no task reads never count.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from ..workflow import Workflow

RELOAD = "reload"
INPUT = "input"
RESCOPE = "rescope"      # a folder the scope waits for appeared, made by a run: watch it too

ADDED, MODIFIED, DELETED = 1, 2, 3       # watchfiles' Change values


def is_editor_temp(name: str) -> bool:
    """Swap, backup and lock files editors write beside the file they save: vim's
    ``.x.swp`` and its ``4913`` probe, emacs' ``x~``, ``#x#`` and ``.#x``, and the
    temporary names of atomic saves (``.goutputstream-*``, ``x.tmp``, ``x.crswap``)."""
    return (name.endswith(("~", ".swp", ".swo", ".swx", ".swpx", ".tmp", ".crswap", ".part"))
            or name.startswith((".#", ".goutputstream-", ".~lock."))
            or (name.startswith("#") and name.endswith("#"))
            or name == "4913")


def _absolute_under(root: str):
    """``os.path.normpath(os.path.join(root, p))``, with the common case (a plain relative
    path: no ``.`` part, no doubled or trailing slash) as one concatenation: a workflow of
    100,000 tasks has 200,000 of them."""
    base = os.path.normpath(root)
    prefix = base.rstrip("/") + "/"
    join, norm = os.path.join, os.path.normpath

    def absolute(p: str) -> str:
        if p and p[0] != "/" and "//" not in p and "/." not in "/" + p and p[-1] != "/":
            return prefix + p
        return norm(join(base, p))
    return absolute


def _parent(p: str) -> str:
    """``os.path.dirname`` of a normalised absolute path, as one slice."""
    return p[:p.rindex("/")] or "/"


def _existing_dirs(paths: Iterable[str]) -> set[str]:
    """Those of ``paths`` that are folders (following links, as ``os.path.isdir``), one
    listing of each parent instead of a ``stat`` of each path."""
    by_parent: dict[str, set[str]] = {}
    for p in paths:
        parent, name = os.path.split(p)
        by_parent.setdefault(parent, set()).add(name)
    found: set[str] = set()
    for parent, names in by_parent.items():
        try:
            with os.scandir(parent) as it:
                for entry in it:
                    if entry.name in names and entry.is_dir():
                        found.add(os.path.join(parent, entry.name))
        except OSError:
            continue
    return found


@dataclass
class WatchScope:
    root: str
    folders: frozenset[str]                        # watched, one by one
    reload_files: frozenset[str]                   # a change reloads the workflow
    listed: frozenset[str]                         # folders a glob listed: a name added or removed reloads
    inputs: Mapping[str, tuple[str, ...]]          # input path -> tasks that read it
    outputs: frozenset[str]                        # never count (nor anything inside them)
    missing: frozenset[str] = frozenset()          # wanted folders not there yet
    any_name_reloads: bool = False                 # a Makefile: $(wildcard) may see any new name
    _output_dirs: frozenset[str] = field(default=frozenset(), repr=False)
    _output_parents: frozenset[str] = field(default=frozenset(), repr=False)

    @classmethod
    def of(cls, workflow: Workflow | None, workflow_path: str | os.PathLike[str],
           read: Iterable[str] = (), listed: Iterable[str] = (), asked: Iterable[str] = (),
           targets: Iterable[str] = ()) -> "WatchScope":
        """The scope of a load: ``read`` the files it read, ``listed`` the folders whose
        listing it read, ``asked`` the paths it asked about (is this a file?), ``targets``
        the task names watched (their closure's inputs are watched)."""
        path = os.path.abspath(workflow_path)
        root = os.path.dirname(path) if workflow is None else str(workflow.root)
        reload_files = {path, *map(os.path.abspath, read)}
        if workflow is not None:
            reload_files.update(os.path.abspath(f) for f in workflow.files)
        listed_set = {os.path.abspath(f) for f in listed}
        inputs: dict[str, list[str]] = {}
        outputs: set[str] = set()
        wanted: set[str] = set()
        if workflow is not None:
            absolute = _absolute_under(root)
            tasks = workflow.tasks
            for t in tasks.values():
                for o in t.outputs:
                    outputs.add(absolute(o))
            from ..decide.graph import TaskGraph
            names = list(targets) or list(workflow.default) or list(tasks)
            closure = TaskGraph.of(workflow).closure([n for n in names if n in tasks])
            for name in closure:
                t = tasks[name]
                for i in t.inputs:
                    inputs.setdefault(absolute(i), []).append(name)
            wanted.update(_parent(p) for p in inputs if p not in outputs)
        wanted.update(os.path.dirname(f) for f in reload_files)
        wanted.update(listed_set)
        abspath = os.path.abspath
        wanted.update(_parent(abspath(a)) for a in dict.fromkeys(asked))
        folders: set[str] = set()
        missing: set[str] = set()
        for f in wanted:
            if os.path.isdir(f):
                folders.add(f)
                continue
            missing.add(f)
            parent = f
            while parent and not os.path.isdir(parent):
                up = os.path.dirname(parent)
                if up == parent:
                    break
                parent = up
            if os.path.isdir(parent):
                folders.add(parent)
        output_dirs = frozenset(o for o in _existing_dirs(outputs) if o not in folders) | (
            outputs & folders)
        parents: set[str] = set()
        for o in outputs:
            up = _parent(o)
            while up not in parents and len(up) > len(root):
                parents.add(up)
                up = _parent(up)
        return cls(root, frozenset(folders), frozenset(reload_files), frozenset(listed_set),
                   {p: tuple(v) for p, v in inputs.items()}, frozenset(outputs),
                   frozenset(missing), workflow is not None and workflow.kind == "make",
                   output_dirs, frozenset(parents))

    def classify(self, change: int, path: str) -> str | None:
        """What a change to ``path`` (absolute) means: RELOAD, INPUT or None."""
        name = os.path.basename(path)
        if is_editor_temp(name):
            return None
        if path in self.reload_files:
            return RELOAD
        if path in self.outputs or (self._output_dirs and self._inside_output(path)):
            return None
        if path in self._output_parents:     # a folder a run makes for its outputs
            return RESCOPE if change == ADDED and self._waited_for(path) else None
        if change != MODIFIED:       # a name added or removed: may a glob see it?
            folder = os.path.dirname(path)
            if folder in self.listed or (self.any_name_reloads and folder in self.folders):
                return RELOAD
        if path in self.inputs:
            return INPUT
        if change != MODIFIED:
            if self._waited_for(path):
                return RELOAD        # a folder we wait for appeared: load again, watch it
        return None

    def _waited_for(self, path: str) -> bool:
        return bool(self.missing) and any(m == path or m.startswith(path + os.sep)
                                          for m in self.missing)

    def _inside_output(self, path: str) -> bool:
        parent = os.path.dirname(path)
        while parent and parent != self.root and len(parent) > 1:
            if parent in self._output_dirs:
                return True
            up = os.path.dirname(parent)
            if up == parent:
                break
            parent = up
        return False

    def readers(self, path: str) -> tuple[str, ...]:
        """The tasks that read ``path`` (absolute)."""
        return self.inputs.get(path, ())

    def shown(self, path: str) -> str:
        """``path`` as the user writes it: relative to the root when inside it."""
        try:
            rel = os.path.relpath(path, self.root)
        except ValueError:
            return path
        return path if rel.startswith("..") else Path(rel).as_posix()
