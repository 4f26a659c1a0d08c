"""The main window: assembles the views around the workbench and wires them once."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QByteArray, QEvent, Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QApplication, QDialog, QDockWidget, QFileDialog, QLabel, QMainWindow, QMenu, QStackedWidget,
                               QTabWidget, QVBoxLayout, QWidget)

from gristmill.core.errors import GristmillError
from gristmill.core.events import RunStatus
from gristmill.core.record.history import History
from gristmill.core.workflow import Workflow

from . import actions as act
from . import icons, prompts, resources, theme
# The dialogs (and tomlkit, behind the task editor) are imported when first opened:
# none is needed for the first paint, and the window must show quickly.
from .models.history import STATUS_TEXT, bars_from_attempts, format_time
from .runstate import Changes
from .selection import Selection
from .settings import Settings
from .views.banners import ErrorBanner, HistoryBanner, WarningBanner
from .views.board import BoardView
from .views.graph import GraphPane
from .views.log import LogPane, PastLogSource, SessionLogSource
from .views.status import RunStatusWidgets
from .views.task_table import TaskTablePane
from .views.timeline import TimelinePane, clock
from .views.welcome import WelcomeView
from .workbench import Workbench, copy_example, example_copies

APP_NAME = "Gristmill"
TICK_MS = 250
TASKS_DOCK_W = 440       # leaves the board's eight columns room in a 1280-pixel window
TASKS_DOCK_MIN_W = 260   # a name, a state and the start of why: never a 70-pixel sliver
LOG_DOCK_MIN_H = 110     # the log's heading and a few lines
EXAMPLE_COPY_W = 300     # px: the status bar's note of where the example copy is (all of it in its tooltip)


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None, history: History | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self.selection = Selection(self)
        self.bench = Workbench(self.settings, history, window=self, parent=self)
        self.live_log = SessionLogSource(self.bench.run, self.bench.latest_attempts, self._command_of)
        self.past_run_id: str | None = None
        self.dialogs: dict[str, QDialog] = {}
        self._close_after_run = False
        self._error_shown = False
        self._example_root: str | None = None     # the example copy opened last, if any
        if self.settings.preferences.theme != "system":   # the system's palette is already the app's
            theme.apply_theme(self.settings.preferences.theme)
        self._init_window()
        self._init_actions()
        self._init_views()
        self._init_docks()
        self._init_menus()
        self._init_status()
        self._connect_signals()
        self._restore_layout()
        self.show_welcome()

    def _command_of(self, name: str) -> str:
        wf = self.bench.workflow
        task = wf.tasks.get(name) if wf is not None else None
        return "\n".join(task.commands) if task is not None else ""

    # -- assembly ----------------------------------------------------------------------

    def _init_window(self) -> None:
        self.setObjectName("main-window")
        self.setWindowTitle(APP_NAME)
        self.setWindowIcon(icons.app_icon())
        self.resize(1280, 800)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

    def _init_actions(self) -> None:
        handlers = {
            "open": self.choose_folder, "open_file": self.choose_file, "reload": self.reload,
            "close": self.close_workflow, "quit": self.close,
            "add_task": lambda: self.edit_task(None), "edit_task": lambda: self.edit_task(self.selection.current),
            "preferences": self.show_preferences,
            "run_default": lambda: self.bench.start_run([]),
            "run_selected": lambda: self.bench.start_run(list(self.selection.names)),
            "force_selected": lambda: self.bench.start_run(list(self.selection.names),
                                                           force=tuple(self.selection.names)),
            "plan": lambda: self.bench.start_run([], dry_run=True),
            "watch": lambda: self.toggle_watch(self.actions["watch"].isChecked()),
            "cancel": self.bench.cancel, "cancel_task": self.cancel_selected_tasks,
            "explain": lambda: self.show_explain(self.selection.current),
            "audit": lambda: setattr(self.bench, "audit", self.actions["audit"].isChecked()),
            "audit_findings": self.show_audit_findings,
            "clean": self.bench.clean,
            "show_graph": lambda: self.show_tab(self.graph), "show_board": lambda: self.show_tab(self.board),
            "show_timeline": lambda: self.show_tab(self.timeline),
            "fit_graph": lambda: self.graph.view.fit(),
            "history": self.show_history, "guide": self.show_guide, "about": self.show_about,
            "system_check": self.show_system_check,
            "planner": self.show_planner, "workers": self.show_workers,
        }
        self.actions = act.create_actions(self, handlers)
        self.toolbar = act.build_toolbar(self, self.actions)
        from .views.run_on import RunOnSelector
        self.toolbar.addSeparator()
        self.run_on = RunOnSelector(self.settings, self.toolbar)
        self.toolbar.addWidget(self.run_on)

    def _init_views(self) -> None:
        self.welcome = WelcomeView(self)
        self.graph = GraphPane(self.selection, self.bench.tasks.state, self,
                               reason_of=self.bench.tasks.reasons_text,
                               states_of=self.bench.tasks.states,
                               idle_counts=self.bench.tasks.idle_counts)
        self.board = BoardView(self.bench.tasks, self.selection, self)
        self.timeline = TimelinePane(self.selection, self)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("views")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.graph, "Graph")
        self.tabs.addTab(self.board, "Board")
        self.tabs.addTab(self.timeline, "Timeline")
        self.banner = ErrorBanner(self)
        self.banner_text = self.banner.text
        self.warnings = WarningBanner(self)
        self.history_banner = HistoryBanner(self)
        self.history_banner.moveAsideRequested.connect(self.move_history_aside)
        page = QWidget(self)
        column = QVBoxLayout(page)
        column.setContentsMargins(4, 4, 4, 0)
        column.addWidget(self.history_banner)
        column.addWidget(self.banner)
        column.addWidget(self.warnings)
        column.addWidget(self.tabs, 1)
        self.workbench_page = page
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(page)
        self.setCentralWidget(self.stack)

    def _init_docks(self) -> None:
        self.table = TaskTablePane(self.bench.tasks, self.selection, self)
        a = self.actions
        self.table.set_context_actions([a["explain"], a["run_selected"], a["force_selected"],
                                        None, a["edit_task"], a["cancel_task"]])
        self.log = LogPane(self)
        self.log.set_source(self.live_log)
        self.table.setMinimumWidth(TASKS_DOCK_MIN_W)
        self.log.setMinimumHeight(LOG_DOCK_MIN_H)
        self.tasks_dock = self._dock("Tasks", "dock-tasks", self.table, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.log_dock = self._dock("Log", "dock-log", self.log, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.resizeDocks([self.tasks_dock], [TASKS_DOCK_W], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [220], Qt.Orientation.Vertical)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.toggleViewAction().setToolTip(f"Show or hide the {title} panel")
        self.addDockWidget(area, dock)
        return dock

    def _init_menus(self) -> None:
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.setObjectName("menu-recent")
        self.recent_menu.setToolTipsVisible(True)
        self.menus = act.build_menus(self, self.actions, {("&File", "open_file"): self.recent_menu})
        view = self.menus["&View"]
        view.addSeparator()
        for dock, key in ((self.tasks_dock, "Ctrl+Shift+T"), (self.log_dock, "Ctrl+Shift+L")):
            toggle = dock.toggleViewAction()
            toggle.setShortcut(key)
            view.addAction(toggle)
        toolbar_toggle = self.toolbar.toggleViewAction()
        toolbar_toggle.setText("Toolbar")
        toolbar_toggle.setToolTip("Show or hide the toolbar")
        view.addAction(toolbar_toggle)

    def _init_status(self) -> None:
        self.status = RunStatusWidgets(self.statusBar())
        # What a run told about itself (RunNotice: e.g. limits this machine cannot hold).
        self.notice = QLabel(self)
        self.notice.setObjectName("run-notice")
        self.statusBar().addPermanentWidget(self.notice)
        self.notice.hide()
        # Where the open example's writable copy is (shown while that copy is open).
        self.example_copy = QLabel(self)
        self.example_copy.setObjectName("example-copy")
        self.example_copy.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.statusBar().addPermanentWidget(self.example_copy)
        self.example_copy.hide()
        self._timeline_stale = False
        self._status_at = self._status_cost = 0.0     # the ticker's last status refresh, its cost
        self.ticker = QTimer(self)
        self.ticker.setInterval(TICK_MS)

    def _connect_signals(self) -> None:
        b = self.bench
        b.workflowLoaded.connect(self._workflow_loaded)
        b.workflowFailed.connect(self._workflow_failed)
        b.openFailed.connect(self._open_failed)
        b.scanned.connect(self._scanned)
        b.changed.connect(self._run_changed)
        b.busyChanged.connect(self._busy_changed)
        b.runEnded.connect(self._run_ended)
        b.watchingChanged.connect(self.actions["watch"].setChecked)
        b.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        b.runRefused.connect(self.banner.show_refusal)
        self.selection.changed.connect(self._selection_changed)
        self.table.activated.connect(self.show_explain)
        self.board.activated.connect(self.show_explain)
        self.graph.activated.connect(self.show_explain)
        self.timeline.backToCurrent.connect(self.show_current_run)
        self.welcome.openFolderRequested.connect(self.choose_folder)
        self.welcome.openFileRequested.connect(self.choose_file)
        self.welcome.openPathRequested.connect(self.open_path)
        self.welcome.openExampleRequested.connect(self.open_example)
        self.banner.reloadRequested.connect(self.reload)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self.ticker.timeout.connect(self._tick)
        self.tabs.currentChanged.connect(self._tab_changed)

    def _restore_layout(self) -> None:
        """The layout saved at the last close, unless it no longer fits this screen (a
        smaller monitor, another resolution): then the default one. The docks' minimum
        sizes hold either way (no Tasks panel of 70 px)."""
        geometry = self.settings.window_state("geometry")
        state = self.settings.window_state("state")
        if not geometry or not self._saved_size_fits():
            return
        self.restoreGeometry(QByteArray.fromBase64(geometry.encode()))
        if state:
            self.restoreState(QByteArray.fromBase64(state.encode()))

    def _saved_size_fits(self) -> bool:
        size = self.settings.window_state("size")
        screen = self.screen() or QApplication.primaryScreen()
        if not size or screen is None:
            return False
        try:
            w, h = (int(n) for n in size.split("x"))
        except ValueError:
            return False
        room = screen.availableGeometry()
        return 0 < w <= room.width() and 0 < h <= room.height()

    def _save_layout(self) -> None:
        normal = self.normalGeometry() if self.isMaximized() or self.isFullScreen() else self.geometry()
        self.settings.set_window_state(geometry=bytes(self.saveGeometry().toBase64()).decode(),
                                       state=bytes(self.saveState().toBase64()).decode(),
                                       size=f"{normal.width()}x{normal.height()}")

    # -- opening -------------------------------------------------------------------------

    def show_welcome(self) -> None:
        self.welcome.set_recent([p for p in self.settings.recent if Path(p).exists()])
        self.welcome.set_examples(resources.examples(), example_copies())
        self.stack.setCurrentWidget(self.welcome)
        self._refresh_status()
        self.tasks_dock.hide()
        self.log_dock.hide()
        self.setWindowTitle(APP_NAME)
        self._update_actions()

    def _show_workbench(self) -> None:
        if self.stack.currentWidget() is not self.workbench_page:
            self.stack.setCurrentWidget(self.workbench_page)
            self.tasks_dock.show()
            self.log_dock.show()

    def choose_folder(self) -> None:
        dialog = QFileDialog(self, "Open Folder")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(self.open_path)
        dialog.open()
        self.dialogs["open"] = dialog

    def choose_file(self) -> None:
        dialog = QFileDialog(self, "Open Workflow File")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters(["Workflows (gristmill.toml gristmill.json Makefile makefile GNUmakefile *.toml *.json *.mk)",
                               "All files (*)"])
        dialog.fileSelected.connect(self.open_path)
        dialog.open()
        self.dialogs["open"] = dialog

    def open_path(self, path: str) -> bool:
        if not path:
            return False
        self._error_shown = False
        return self.bench.open(path)

    def open_example(self, folder: str) -> bool:
        try:
            copy = copy_example(Path(folder))
        except OSError as e:
            prompts.notify(self, prompts.NOTICE, "Could not copy the example", str(e))
            return False
        opened = self.open_path(str(copy))
        if opened:      # the copy is where the user's changes go: say where it is
            self._example_root = str(copy)
            self.example_copy.setText(self.example_copy.fontMetrics().elidedText(
                f"Example copy: {copy}", Qt.TextElideMode.ElideMiddle, EXAMPLE_COPY_W))
            self.example_copy.setToolTip(f"Your copy of the bundled example “{Path(folder).name}”: "
                                         f"change and run it there; the bundled one stays as it was.\n{copy}")
            self.example_copy.show()
        return opened

    def reload(self) -> None:
        self._error_shown = False
        self.bench.reload()

    def close_workflow(self) -> None:
        if self.bench.busy:
            return
        self.bench.close_workflow()
        self.graph.set_workflow(None, None)
        self.selection.set([], "window")
        self.banner.hide()
        self.warnings.clear()
        self.show_welcome()

    def _workflow_loaded(self, workflow: Workflow) -> None:
        self.banner.hide()
        if self._example_root != str(workflow.root):
            self.example_copy.hide()
        self._error_shown = False
        self._show_workbench()
        self.setWindowTitle(f"{workflow.name} — {APP_NAME}")
        self.graph.set_workflow(workflow, self.bench.graph)
        self.selection.keep_only(workflow.tasks)
        self.warnings.set_warnings(str(workflow.path), workflow.warnings, workflow.root)
        self.show_current_run()
        self._follow_explain()
        self._update_actions()

    def _open_failed(self, error: GristmillError) -> None:
        """A path with no workflow file: said, and what is shown stays as it was (the
        workflow open is not the one in error)."""
        self.settings.remove_recent(getattr(getattr(error, "location", None), "path", "") or "")
        self.statusBar().showMessage(f"Nothing opened: {error}", 8000)
        prompts.notify(self, prompts.WORKFLOW_ERROR, "Nothing to open", str(error))
        self._update_actions()

    def _workflow_failed(self, error: GristmillError) -> None:
        message = str(error)
        session = self.bench.session
        self._show_workbench()
        kept = self.bench.workflow is not None
        self.banner.show_error(message, len(getattr(error, "errors", (error,))), kept)
        if not kept and session.path is not None:
            # This folder's name, and none of the previous workflow's tasks.
            self.setWindowTitle(f"{session.path.parent.name} — {APP_NAME}")
            self.graph.set_workflow(None, None)
            self.selection.set([], "window")
            self.warnings.clear()
            self.show_current_run()
            self._refresh_status()
        # A workflow that loaded before and broke (a bad save in another editor) is told by
        # the banner alone, over its last good state: no dialog on top of it.
        if not kept and not self._error_shown:
            self._error_shown = True
            prompts.notify(self, prompts.WORKFLOW_ERROR, "The workflow could not be loaded", message)
        self._update_actions()

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.settings.recent
        for path in recent:
            action = self.recent_menu.addAction(path, lambda p=path: self.open_path(p))
            action.setToolTip(f"Open {path}")
        if not recent:
            none = self.recent_menu.addAction("No recent workflows")
            none.setEnabled(False)
        self.recent_menu.addSeparator()
        self.recent_menu.addAction("Clear Recent", self.settings.clear_recent).setEnabled(bool(recent))

    # -- running ---------------------------------------------------------------------------

    def toggle_watch(self, on: bool) -> None:
        """Watch on: keep the selected tasks, or with none the default targets, up to date."""
        self.bench.set_watching(on, list(self.selection.names) if on else [])
        self.actions["watch"].setChecked(self.bench.watching)

    def cancel_selected_tasks(self) -> None:
        for name in self.selection.names:
            self.bench.cancel_task(name)

    def _busy_changed(self, busy: bool) -> None:
        if busy:
            self.banner.hide_run_fault()      # the last run's fault, not this one's
            self.show_current_run()
            self.ticker.start()
        self._update_actions()

    def _run_changed(self, changes: Changes) -> None:
        # A run's start names the old and the new run's tasks: only their nodes change. A
        # fan-out's node (a walk over its members: 10,000 at a run's start) follows within
        # 150 ms, in a turn of the event loop of its own.
        self.graph.update_states(changes.tasks, legend=changes.started is not None,
                                 defer_groups=True)
        if self.past_run_id is None:
            if changes.started is not None:
                # The reload shows what the run holds, this batch's lines too: they
                # must not be appended again (doubled lines at a run's start).
                self.log.set_source(self.live_log)
            else:
                self.log.append(changes.lines)
            self.log.tasks_changed(changes.tasks)
            if changes.bars:
                self._timeline_stale = True
                if changes.started is not None:
                    self._refresh_timeline()
        self._follow_explain(changes.tasks)
        for text in changes.notices:        # e.g. what this machine does not enforce
            self.notice.setText("⚠ " + (text if len(text) <= 60 else text[:59] + "…"))
            self.notice.setToolTip(text)
            self.notice.show()
        # Mid-run, the status bar and the timeline cost a walk over the run's tasks: the
        # ticker redraws them four times a second (and the timeline only while it is shown),
        # not at every batch of events, so the GUI thread leaves the engine its GIL.
        # At a run's start it is redrawn in a turn of the event loop of its own: the batch
        # that starts a run is the largest (every task of it changes state).
        if not self.ticker.isActive():
            self._refresh_status()
        elif changes.started is not None:
            QTimer.singleShot(0, self, self._refresh_status_timed)

    def _run_ended(self, _ended) -> None:
        self.ticker.stop()
        run = self.bench.run
        if run.faults and run.status is RunStatus.FAILED:
            # Why the run stopped (a cluster that could not be had, a lost scheduler).
            self.banner.show_run_fault(f"The run {run.status.value}", "; ".join(run.faults))
        self.graph.update_states(None)
        if self.past_run_id is None:
            if self.bench.run.dry_run:
                self.log.show_whole_run()        # a plan is read there, in run order
            self.log.reload()
        self._refresh_timeline()
        self._refresh_status()
        self._update_actions()
        if self._close_after_run:
            self.close()

    def _scanned(self) -> None:
        # Only the nodes of the tasks whose verdict changed (after a run: the tasks it ran),
        # not a walk over every fan-out's members (90,000 in one at 100,000 tasks).
        changed = self.bench.scan_changed
        self.graph.update_states(changed, legend=changed is not None)
        self._follow_explain()
        self._refresh_status()

    def _tick(self) -> None:
        # Progress and ETA walk every task of the run: with thousands, each costs tens of
        # ms, so the ticker spends at most a twentieth of the GUI thread's time on them.
        if time.perf_counter() - self._status_at >= 20 * self._status_cost:
            self._refresh_status_timed()
        if self.past_run_id is None and self.bench.run.running and (
                self._timeline_stale or self.tabs.currentWidget() is self.timeline):
            self._refresh_timeline()

    def _refresh_status_timed(self) -> None:
        """The status bar redrawn, its cost kept: the ticker waits 20 times as long."""
        now = time.perf_counter()
        self._refresh_status()
        self._status_at = time.perf_counter()
        self._status_cost = self._status_at - now

    def _tab_changed(self, _index: int) -> None:
        if self.tabs.currentWidget() is self.timeline and self._timeline_stale:
            self._refresh_timeline()

    def _refresh_status(self) -> None:
        capacity = self.bench.capacity() if self.bench.workflow is not None else None
        self.status.update(self.bench.run, self.bench.estimates(), capacity)

    def _refresh_timeline(self) -> None:
        if self.past_run_id is not None:
            return
        if self.bench.run.running and self.tabs.currentWidget() is not self.timeline:
            self._timeline_stale = True      # drawn when its tab is shown (or the run ends)
            return
        self._timeline_stale = False
        run = self.bench.run
        if run.status is None:
            title = "No run yet in this session — press F5 to run the default targets"
        else:
            when = clock(run.started_at or time.time())
            if run.dry_run:
                title = f"Plan (dry run) — {when} · {run.plan_words()}"
            else:
                title = f"Current run — started {when} · {run.status.value}"
        bars, lanes = run.bars, ()
        if self.bench.remote_run and not run.dry_run:    # a lane per worker slot
            from .compute import worker_lanes
            compute = self.bench.compute
            bars, lanes = worker_lanes(run.bars, compute.placed(), compute.here)
        self.timeline.show_run(bars, run.started_at, run.finished_at,
                               time.time() if run.running else None, title, lanes=lanes)

    def show_current_run(self) -> None:
        self.past_run_id = None
        self.log.set_source(self.live_log)
        self._refresh_timeline()

    def show_past_run(self, run_id: str) -> bool:
        past = self.bench.past_run(run_id)
        if past is None:
            return False
        self.past_run_id = run_id
        r = past.record
        status = STATUS_TEXT.get(r.status, r.status.value)
        self.timeline.show_run(bars_from_attempts(past.attempts), r.started, r.ended, None,
                               f"Past run {r.id} — {format_time(r.started)} · {status}", past=True)
        self.log.set_source(PastLogSource(past.attempts, r))
        self.show_tab(self.timeline)
        return True

    # -- dialogs ------------------------------------------------------------------------------

    def _keep(self, key: str, dialog: QDialog) -> QDialog:
        old = self.dialogs.get(key)
        if old is not None and old is not dialog:
            old.close()
        self.dialogs[key] = dialog
        dialog.show()
        dialog.raise_()
        return dialog

    def show_explain(self, name: str | None) -> None:
        wf, graph = self.bench.workflow, self.bench.graph
        if not name or wf is None or graph is None or name not in wf.tasks:
            return
        from .dialogs.explain import ExplainDialog
        dialog = self.dialogs.get("explain")
        if not isinstance(dialog, ExplainDialog):
            dialog = ExplainDialog(self)
        dialog.show_task(name, self._explain(name))
        self._keep("explain", dialog)

    def _explain(self, name: str) -> list[tuple[str, str]]:
        from .explain import explain
        wf, graph, run = self.bench.workflow, self.bench.graph, self.bench.run
        assert wf is not None and graph is not None
        newer = (not run.dry_run and run.started_at is not None
                 and run.started_at >= self.bench.decided_at)
        sections = explain(wf, graph, self.bench.decisions, name, run.tasks.get(name),
                           newer=newer, going=run.running, plan=run.dry_run)
        from .audit import audit_section
        audit = self.bench.task_audit(name)
        section = audit_section(*audit) if audit is not None else None
        return sections + [section] if section else sections


    def show_audit_findings(self) -> None:
        from .audit import finding_rows
        from .dialogs.audit import AuditDialog
        dialog = self.dialogs.get("audit")
        if not isinstance(dialog, AuditDialog):
            dialog = AuditDialog(self)
            dialog.applied.connect(lambda _file: self.reload())
        audits, which = self.bench.run_audits(self.past_run_id)   # the past run shown, if one is
        rows = finding_rows(self.bench.workflow, audits)
        if not audits:
            title = (f"No task of {which} was audited." if self.past_run_id else
                     "No audited run yet: check Run > Audit Dependencies and run, or "
                     "run `gristmill run --audit`.")
        else:
            title = (f"The dependency audit of {which}: {len(audits)} task"
                     f"{'s' if len(audits) != 1 else ''} traced, {len(rows)} finding"
                     f"{'s' if len(rows) != 1 else ''}.")
        dialog.set_findings(title, rows)
        self._keep("audit", dialog)

    def _follow_explain(self, names=None) -> None:
        """An open Explain follows its task: shown again when the task's state changed
        (``names``), after a scan or a reload (None)."""
        dialog = self.dialogs.get("explain")
        task = getattr(dialog, "task", None)
        if dialog is None or task is None or not dialog.isVisible():
            return
        if names is not None and task not in names:
            return
        wf = self.bench.workflow
        if wf is None or task not in wf.tasks or self.bench.graph is None:
            dialog.close()
            return
        dialog.show_task(task, self._explain(task))

    def edit_task(self, name: str | None) -> None:
        wf = self.bench.workflow
        if wf is None or wf.kind != "toml":
            return
        path, declared = wf.path, None
        if name is not None and name in wf.tasks:
            task = wf.tasks[name]
            declared = task.group or task.name
            if task.location is not None and task.location.path.endswith(".toml"):
                path = Path(task.location.path)
        from .dialogs.task_editor import TaskEditorDialog
        try:
            dialog = TaskEditorDialog(path, declared, self)
        except (OSError, KeyError, ValueError) as e:
            prompts.notify(self, prompts.NOTICE, "Cannot edit this task", str(e))
            return
        dialog.saved.connect(lambda _n: self.reload())
        self._keep("edit_task", dialog)

    def show_preferences(self) -> None:
        from .dialogs.preferences import PreferencesDialog
        dialog = PreferencesDialog(self.settings, self)
        dialog.accepted.connect(self._preferences_changed)
        self._keep("preferences", dialog)

    def _preferences_changed(self) -> None:
        self.run_on.refresh()
        theme.apply_theme(self.settings.preferences.theme)
        self.bench.prune_history()
        self._refresh_status()

    def watch_history(self, problems) -> None:
        """Show what the history says went wrong (``main.HistoryProblems``), now and later."""
        self._problems = problems
        problems.told.connect(self.history_banner.show_problem)
        if problems.first is not None:
            self.history_banner.show_problem(*problems.first)

    def move_history_aside(self) -> None:
        """The banner's offer: the unusable history file renamed, a new one started."""
        moved = self.bench.move_history_aside(getattr(self, "_problems", None))
        if moved is None:
            return
        self.history_banner.hide()
        self.statusBar().showMessage(f"The old history was moved to {moved}; runs are "
                                     "recorded in a new one from now on", 15000)

    def show_history(self) -> None:
        from .dialogs.history import RunHistoryDialog
        dialog = self.dialogs.get("history")
        if not isinstance(dialog, RunHistoryDialog):
            dialog = RunHistoryDialog(self)
            dialog.openRun.connect(self.show_past_run)
            dialog.refreshRequested.connect(lambda: dialog.set_runs(self.bench.past_runs()))
        dialog.set_runs(self.bench.past_runs())
        self._keep("history", dialog)

    def show_planner(self) -> None:
        from .dialogs.planner import CapacityPlannerDialog
        dialog = self.dialogs.get("planner")
        if not isinstance(dialog, CapacityPlannerDialog):
            cpu = self.bench.capacity().cpu if self.bench.workflow is not None else 16
            dialog = CapacityPlannerDialog(self.bench.plan_capacity, self,
                                           cpu_hi=max(2, int(cpu) * 2))
        self._keep("planner", dialog)

    def show_workers(self) -> None:
        from .dialogs.workers import WorkersDialog
        self.bench.configure_compute()
        dialog = self.dialogs.get("workers")
        if not isinstance(dialog, WorkersDialog):
            dialog = WorkersDialog(self.bench.compute, self)
        self._keep("workers", dialog)

    def show_guide(self) -> None:
        from .dialogs.about import UserGuideDialog
        self._keep("guide", self.dialogs.get("guide") or UserGuideDialog(self))

    def show_system_check(self) -> None:
        from ..core.run.doctor import report
        from .dialogs.system_check import SystemCheckDialog
        self._keep("system_check", SystemCheckDialog(report, self))

    def show_about(self) -> None:
        from .dialogs.about import AboutDialog
        self._keep("about", self.dialogs.get("about") or AboutDialog(self))

    def show_tab(self, widget: QWidget) -> None:
        if self.stack.currentWidget() is self.workbench_page:
            self.tabs.setCurrentWidget(widget)

    # -- state ----------------------------------------------------------------------------------

    def _selection_changed(self, names: tuple, _origin: str) -> None:
        self.log.show_task(names[0] if names else None)
        explain_dialog = self.dialogs.get("explain")
        if explain_dialog is not None and explain_dialog.isVisible() and names:
            self.show_explain(names[0])
        self._update_actions()

    def _update_actions(self) -> None:
        wf = self.bench.workflow
        act.update_enabled(self.actions, {
            act.WORKFLOW: wf is not None,
            act.IDLE: not self.bench.busy,
            act.RUNNING: self.bench.busy,
            act.SELECTION: bool(self.selection.names),
            act.EDITABLE: wf is not None and wf.kind == "toml",
        })
        # A disabled Edit Task says why where the reason is the workflow's kind.
        for key in ("edit_task", "add_task"):
            action = self.actions[key]
            tip = act.tip(key)
            if wf is not None and wf.kind != "toml":
                kind = "a Makefile" if wf.kind == "make" else f"a {wf.path.name}"
                tip = (f"{tip.split(' in gristmill.toml')[0]}: only a gristmill.toml's tasks can be "
                       f"edited here; this workflow is {kind} — edit {wf.path.name} in your editor "
                       "(Gristmill reloads it when you save)")
            action.setToolTip(tip)
            action.setStatusTip(tip)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            act.refresh_icons(self.actions)
            self.graph.apply_palette()
            self.board.apply_palette()
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.bench.busy:
            event.ignore()
            if self._close_after_run:
                return

            def answered(yes: object) -> None:
                if yes and self.bench.busy:
                    self._close_after_run = True
                    self.bench.cancel()
                elif yes:
                    self.close()

            prompts.ask(self, prompts.CLOSE_DURING_RUN, "Quit during a run?",
                        "A run is in progress. Cancel it and quit?",
                        [prompts.Choice("Cancel Run and Quit", True, prompts.ButtonRole.DestructiveRole),
                         prompts.Choice("Keep Running", False, prompts.ButtonRole.RejectRole,
                                        default=True, escape=True)],
                        answered, informative="Running tasks are stopped; nothing is left behind.")
            return
        self._save_layout()
        for dialog in self.dialogs.values():
            dialog.close()
        self.ticker.stop()
        self.bench.set_watching(False)
        self.bench.disk.close()
        self.bench.compute.close()
        super().closeEvent(event)

