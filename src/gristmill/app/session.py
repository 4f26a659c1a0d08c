"""The open workflow: load it, keep the last good state on an error, reload when its files change."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from gristmill.core.errors import GristmillError, WorkflowError
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.load.cache import DiskLog, load_cached, write_deferred_in_thread
from gristmill.core.load.loader import find_workflow_file
from gristmill.core.workflow import Workflow

RELOAD_DELAY_MS = 250


def resolve_workflow_path(path: str | os.PathLike[str]) -> Path:
    """A folder or a file -> the workflow file. Raises WorkflowError when there is none."""
    p = Path(path).expanduser()
    try:
        p = p.resolve()
    except OSError:
        pass
    if p.is_dir():
        found = find_workflow_file(p)
        if found is None:
            raise WorkflowError(f"no gristmill.toml, gristmill.json or Makefile in {p}", path=p)
        return Path(found)
    if not p.exists():
        raise WorkflowError(f"no such file or folder: {p}", path=p)
    return p


def _signature(paths: list[Path]) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), None, None))
    return tuple(out)


class WorkflowSession(QObject):
    loaded = Signal(object)     # Workflow: a new good state
    failed = Signal(object)     # GristmillError: the last good state is kept
    openFailed = Signal(object)  # GristmillError: a path with no workflow; nothing changed

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.path: Path | None = None
        self.workflow: Workflow | None = None
        self.graph: TaskGraph | None = None
        self.error: GristmillError | None = None
        self.disk_log = DiskLog()        # what the last load read, listed and asked about
        self._held = False
        self._pending = False
        self._forced = False             # the pending reload is for a change a signature misses
        self._signature: tuple = ()
        self._watcher = QFileSystemWatcher(self)
        self._watcher.fileChanged.connect(self._changed)
        self._watcher.directoryChanged.connect(self._changed)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RELOAD_DELAY_MS)
        self._timer.timeout.connect(self._reload_if_changed)

    def open(self, path: str | os.PathLike[str]) -> bool:
        """Open a folder or a workflow file. A path with no workflow file changes nothing
        (``openFailed``); a workflow file that does not load closes the previous one."""
        try:
            file = resolve_workflow_path(path)
        except GristmillError as e:
            self.openFailed.emit(e)
            return False
        self.path = file
        self.workflow = None
        self.graph = None
        return self.reload()

    def close(self) -> None:
        self.path = self.workflow = self.graph = self.error = None
        self._unwatch()

    def reload(self) -> bool:
        if self.path is None:
            return False
        log = self.disk_log = DiskLog()
        try:
            # From the workflow cache when nothing it read changed, as the CLI does (at
            # 100,000 tasks a third of the time of a load); a fresh load is stored once
            # the window has shown it (``store_cache``).
            workflow = load_cached(self.path, log=log, defer=True)
            graph = TaskGraph.of(workflow)
        except GristmillError as e:
            self.error = e
            self._watch()
            self.failed.emit(e)
            return False
        except OSError as e:
            err = WorkflowError(e.strerror or str(e), path=self.path)
            self.error = err
            self._watch()
            self.failed.emit(err)
            return False
        self.workflow, self.graph, self.error = workflow, graph, None
        self._watch()
        self.loaded.emit(workflow)
        return True

    def store_cache(self) -> None:
        """Store a fresh load in the workflow cache, from a thread (serialising 100,000
        tasks takes a second; the window need not wait for it)."""
        write_deferred_in_thread()

    def hold(self, held: bool) -> None:
        """While held (a run is in progress) changes are noted and reloaded on release."""
        self._held = held
        if not held and self._pending:
            self._pending = False
            self._timer.start()
            self._forced = True

    def changed_on_disk(self) -> None:
        """Something the load looked at changed (a name added to a globbed folder): load
        again, now or, during a run, once it ends."""
        if self.path is None:
            return
        if self._held:
            self._pending = True
            return
        self.reload()

    # -- watching -----------------------------------------------------------------

    def _files(self) -> list[Path]:
        files: list[Path] = []
        if self.path is not None:
            files.append(self.path)
        if self.workflow is not None:
            files += [Path(f) for f in self.workflow.files]
        loc = getattr(self.error, "location", None)
        if loc is not None and loc.path:
            files.append(Path(loc.path))
        return list(dict.fromkeys(files))

    def _unwatch(self) -> None:
        watched = self._watcher.files() + self._watcher.directories()
        if watched:
            self._watcher.removePaths(watched)

    def _watch(self) -> None:
        files = self._files()
        self._signature = _signature(files)
        self._unwatch()
        paths = [str(f) for f in files if f.exists()]
        paths += list(dict.fromkeys(str(f.parent) for f in files if f.parent.exists()))
        if paths:
            self._watcher.addPaths(paths)

    def _changed(self, _path: str) -> None:
        self._timer.start()

    def _reload_if_changed(self) -> None:
        if self.path is None:
            return
        forced, self._forced = self._forced, False
        if _signature(self._files()) == self._signature and not forced:
            # The folder changed, not the workflow; re-add files an editor replaced.
            missing = [str(f) for f in self._files()
                       if f.exists() and str(f) not in self._watcher.files()]
            if missing:
                self._watcher.addPaths(missing)
            return
        if self._held:
            self._pending = True
            return
        self.reload()
