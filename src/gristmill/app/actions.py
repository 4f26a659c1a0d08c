"""Menus as data: every action of the window, from which menus and the toolbar are built."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

from . import icons

# Conditions an action may need (the window computes them).
WORKFLOW = "workflow"        # a workflow is loaded
IDLE = "idle"                # no run in progress
RUNNING = "running"          # a run is in progress
SELECTION = "selection"      # at least one task is selected
EDITABLE = "editable"        # the workflow is a gristmill.toml


@dataclass(frozen=True)
class ActionSpec:
    id: str
    title: str
    menu: str
    group: str
    tip: str
    shortcut: str | QKeySequence.StandardKey | None = None
    icon: str = ""
    toolbar: bool = False
    enabled_when: tuple[str, ...] = ()
    checkable: bool = False          # a toggle: its handler reads isChecked()


ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open", "&Open Folder…", "&File", "open",
               "Open a folder with a gristmill.toml, gristmill.json or Makefile (Ctrl+O)",
               QKeySequence.StandardKey.Open, "open", toolbar=True),
    ActionSpec("open_file", "Open &Workflow File…", "&File", "open",
               "Open a gristmill.toml, gristmill.json or Makefile (Ctrl+Shift+O)", "Ctrl+Shift+O"),
    ActionSpec("reload", "&Reload", "&File", "open", "Read the workflow file again",
               "Ctrl+R", "reload", toolbar=True, enabled_when=(WORKFLOW,)),
    ActionSpec("close", "&Close Workflow", "&File", "open", "Close the workflow and show the welcome view",
               QKeySequence.StandardKey.Close, enabled_when=(WORKFLOW, IDLE)),
    ActionSpec("quit", "&Quit", "&File", "quit", "Quit Gristmill (asks first during a run)",
               QKeySequence.StandardKey.Quit),
    ActionSpec("add_task", "&Add Task…", "&Edit", "task", "Add a task to gristmill.toml",
               "Ctrl+Shift+N", enabled_when=(WORKFLOW, EDITABLE)),
    ActionSpec("edit_task", "&Edit Task…", "&Edit", "task", "Change the selected task in gristmill.toml",
               "Ctrl+E", "edit", enabled_when=(WORKFLOW, EDITABLE, SELECTION)),
    ActionSpec("preferences", "&Preferences…", "&Edit", "prefs",
               "Default parallelism and capacity, history retention, trusted folders",
               QKeySequence.StandardKey.Preferences, "preferences"),
    ActionSpec("run_default", "Run &Default", "&Run", "run", "Run the workflow's default targets (F5)",
               "F5", "run", toolbar=True, enabled_when=(WORKFLOW, IDLE)),
    ActionSpec("run_selected", "Run &Selected", "&Run", "run",
               "Run the selected tasks and what they need (Ctrl+F5)",
               "Ctrl+F5", "run-selected", toolbar=True, enabled_when=(WORKFLOW, IDLE, SELECTION)),
    ActionSpec("force_selected", "&Force Run Selected", "&Run", "run",
               "Run the selected tasks even if they are up to date (Ctrl+Shift+F5)",
               "Ctrl+Shift+F5", "force", toolbar=True, enabled_when=(WORKFLOW, IDLE, SELECTION)),
    ActionSpec("plan", "&Plan (Dry Run)", "&Run", "run",
               "Show what the default targets would run, and why, without running anything (F6)",
               "F6", "plan", toolbar=True, enabled_when=(WORKFLOW, IDLE)),
    ActionSpec("audit", "&Audit Dependencies", "&Run", "audit",
               "Trace each task's file accesses with strace in the runs that follow, and report "
               "what it reads or writes undeclared and declared inputs it never reads",
               None, checkable=True),
    ActionSpec("audit_findings", "Audit &Findings…", "&Run", "audit",
               "Every finding of the latest audited run, with the fix for each",
               None, enabled_when=(WORKFLOW,)),
    ActionSpec("watch", "&Watch", "&Run", "watch",
               "Keep the default targets (or the selected tasks) up to date: run them now, then "
               "whenever a change on disk makes one stale; off cancels what runs (F7)",
               "F7", "watch", toolbar=True, enabled_when=(WORKFLOW,), checkable=True),
    ActionSpec("cancel", "&Cancel Run", "&Run", "cancel",
               "Stop the run: kill every running task, start nothing more (Shift+F5)",
               "Shift+F5", "cancel", toolbar=True, enabled_when=(RUNNING,)),
    ActionSpec("cancel_task", "Cancel Selected &Task", "&Run", "cancel",
               "Kill the selected running task; the run goes on as after a failure",
               None, enabled_when=(RUNNING, SELECTION)),
    ActionSpec("explain", "E&xplain…", "&Run", "explain",
               "Why the selected task will run, or will not (Ctrl+I)",
               "Ctrl+I", "explain", toolbar=True, enabled_when=(WORKFLOW, SELECTION)),
    ActionSpec("clean", "C&lean…", "&Run", "clean",
               "After asking: run the workflow's own clean task, or, without one, remove the declared outputs",
               None, "clean", enabled_when=(WORKFLOW, IDLE)),
    ActionSpec("show_graph", "&Graph", "&View", "views", "Show the task graph (Ctrl+1)", "Ctrl+1"),
    ActionSpec("show_board", "&Board", "&View", "views", "Show the board of task states (Ctrl+2)", "Ctrl+2"),
    ActionSpec("show_timeline", "&Timeline", "&View", "views", "Show the run's timeline (Ctrl+3)", "Ctrl+3"),
    ActionSpec("fit_graph", "&Fit Graph to View", "&View", "graph", "Show the whole graph (Ctrl+0)",
               "Ctrl+0", "fit", enabled_when=(WORKFLOW,)),
    ActionSpec("history", "Run &History…", "&Tools", "history", "Past runs with their outcome and duration",
               "Ctrl+H", "history", toolbar=True),
    ActionSpec("planner", "&Capacity Planner…", "&Tools", "compute",
               "What more cores, GPUs or memory would buy: the makespan curve, the simulated "
               "schedule and the bottleneck", None, enabled_when=(WORKFLOW,)),
    ActionSpec("workers", "&Workers…", "&Tools", "compute",
               "The cluster's workers: resources, what each runs now, health; take one out of "
               "rotation or put it back", None),
    ActionSpec("guide", "&User Guide", "&Help", "help", "How to use Gristmill (F1)",
               QKeySequence.StandardKey.HelpContents),
    ActionSpec("system_check", "&System Check", "&Help", "system",
               "What this machine offers tasks: cgroups, sandbox, containers, strace, GPUs, Dask"),
    ActionSpec("about", "&About Gristmill", "&Help", "about", "Version and credits"),
)
MENUS = ("&File", "&Edit", "&Run", "&View", "&Tools", "&Help")


def create_actions(parent: QMainWindow, handlers: Mapping[str, Callable[[], None]]) -> dict[str, QAction]:
    actions: dict[str, QAction] = {}
    for spec in ACTIONS:
        action = QAction(spec.title.replace("&&", "&"), parent)
        action.setObjectName(f"action-{spec.id}")
        action.setCheckable(spec.checkable)
        if spec.icon:
            action.setIcon(icons.icon(spec.icon))
        if spec.shortcut is not None:
            action.setShortcut(QKeySequence(spec.shortcut))
        action.setCheckable(spec.checkable)
        tip = spec.tip
        action.setToolTip(tip)
        action.setStatusTip(tip)
        handler = handlers.get(spec.id)
        if handler is not None:
            action.triggered.connect(lambda _checked=False, h=handler: h())
        actions[spec.id] = action
    return actions


def build_menus(window: QMainWindow, actions: Mapping[str, QAction],
                extra: Mapping[tuple[str, str], QMenu | QAction] = {}) -> dict[str, QMenu]:
    """One menu per MENUS entry, separators between groups; ``extra[(menu, after_id)]`` inserts a submenu or action."""
    menus: dict[str, QMenu] = {}
    bar = window.menuBar()
    for title in MENUS:
        menu = bar.addMenu(title)
        menu.setToolTipsVisible(True)
        menus[title] = menu
        group = None
        for spec in ACTIONS:
            if spec.menu != title:
                continue
            if group is not None and spec.group != group:
                menu.addSeparator()
            group = spec.group
            menu.addAction(actions[spec.id])
            more = extra.get((title, spec.id))
            if isinstance(more, QMenu):
                menu.addMenu(more)
            elif more is not None:
                menu.addAction(more)
    return menus


def build_toolbar(window: QMainWindow, actions: Mapping[str, QAction]) -> QToolBar:
    bar = QToolBar("Run", window)
    bar.setObjectName("toolbar-run")
    bar.setMovable(False)
    menu = None
    for spec in ACTIONS:
        if not spec.toolbar:
            continue
        if menu is not None and spec.menu != menu:
            bar.addSeparator()
        menu = spec.menu
        bar.addAction(actions[spec.id])
    window.addToolBar(bar)
    return bar


def refresh_icons(actions: Mapping[str, QAction]) -> None:
    """After a palette change: icons drawn in the text colour follow it."""
    icons.clear_cache()
    for spec in ACTIONS:
        if spec.icon:
            actions[spec.id].setIcon(icons.icon(spec.icon))


def tip(action_id: str) -> str:
    """The tooltip an action was made with."""
    return next(spec.tip for spec in ACTIONS if spec.id == action_id)


def update_enabled(actions: Mapping[str, QAction], conditions: Mapping[str, bool]) -> None:
    for spec in ACTIONS:
        if spec.enabled_when:
            actions[spec.id].setEnabled(all(conditions.get(c, False) for c in spec.enabled_when))
