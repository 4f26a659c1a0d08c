"""The task table: one row per task, adapting the workflow, the scan and the run state."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
import time
from collections import deque
from typing import Any, Callable, Iterable, Mapping

from PySide6.QtCore import (Signal, QAbstractTableModel, QModelIndex, QPersistentModelIndex,
                            QSortFilterProxyModel, Qt, QTimer)
from PySide6.QtGui import QFont

from gristmill.core.events import TaskState
from gristmill.core.sizes import format_duration, format_size
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.decide.staleness import Decision
from gristmill.core.reasons import ReasonKind
from gristmill.core.workflow import Task, Workflow

from .. import states, theme
from ..names import group_affixes, shown
from ..runstate import Changes, RunState
from ..states import IdleCounts, IdleState, ShownState

Index = QModelIndex | QPersistentModelIndex
ROLE_NAME = Qt.ItemDataRole.UserRole + 1      # the task name
ROLE_STATE = Qt.ItemDataRole.UserRole + 2     # TaskState.value, IdleState.value, or ""
ROLE_SORT = Qt.ItemDataRole.UserRole + 3      # a sort key per column


class Column(enum.IntEnum):
    NAME = 0
    STATE = 1
    WHY = 2
    LAST = 3
    ESTIMATE = 4
    RESOURCES = 5
    OUTPUTS = 6


HEADERS = {
    Column.NAME: ("Task", "The task's name"),
    Column.STATE: ("State", "Its state in the run shown; greyed when it is not in that run: "
                            "then whether it would run (stale) or is up to date"),
    Column.WHY: ("Why", "Why it will run, or why it will not"),
    Column.LAST: ("Last", "How long its last run took"),
    Column.ESTIMATE: ("Estimate", "How long it is expected to take (its last success)"),
    Column.RESOURCES: ("Resources", "What it declares: cpu, memory, gpu, pools"),
    Column.OUTPUTS: ("Outputs", "Age of its oldest output"),
}
CHUNK = 500     # rows announced changed in one turn of the event loop
_VALUE: dict[ShownState, str] = {s: s.value for s in (*TaskState, *IdleState)}
_STALE, _FRESH = IdleState.STALE.value, IdleState.FRESH.value
# Run states a scan after the run can overtake: a task the run finished well, stale now
# (a file changed since), shows the scan's "will run" in every view.
_FINISHED_WELL = frozenset({TaskState.DONE, TaskState.UP_TO_DATE})
_ALWAYS = frozenset({ReasonKind.PHONY, ReasonKind.NO_OUTPUTS})   # stale by nature, not by a change
STATE_ORDER: dict[ShownState, int] = {s: i for i, s in enumerate(states.RUN_STATES + states.IDLE_STATES)}


def describe_resources(task: Task) -> str:
    r = task.resources
    parts = [f"{r.cpu:g} cpu"]
    if r.mem:
        parts.append(format_size(r.mem))
    if r.gpu:
        parts.append(f"{r.gpu:g} gpu")
    if r.gpu_mem:
        parts.append(f"{format_size(r.gpu_mem)} gpu mem")
    parts += [f"{n}×{a}" for n, a in r.pools]
    return ", ".join(parts)


def describe_age(seconds: float) -> str:
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def output_times(workflow: Workflow, names: Iterable[str] | None = None,
                 stamp: Callable[[str], int | None] | None = None) -> dict[str, float | None]:
    """Task -> mtime of its oldest output; None when one is missing. Tasks without outputs are left out.

    ``stamp``: a path relative to the workflow's folder -> its mtime in ns or None, from
    what a scan just read (``StalenessScan.stamps.get``), so no output is stat'ed twice."""
    out: dict[str, float | None] = {}
    if stamp is None:
        root = workflow.root

        def stamp(path: str) -> int | None:
            try:
                return os.stat(os.path.join(root, path)).st_mtime_ns
            except OSError:
                return None
    tasks = workflow.tasks
    for name in names if names is not None else tasks:
        task = tasks.get(name)
        if task is None or not task.outputs or task.phony:
            continue
        oldest: int | None = None
        for o in task.outputs:
            m = stamp(o)
            if m is None:
                oldest = None
                break
            oldest = m if oldest is None or m < oldest else oldest
        out[name] = None if oldest is None else oldest / 1e9
    return out


@dataclass(frozen=True)
class ScanSummary:
    """What the table keeps of a scan besides its decisions: how many say stale, how many
    of those no default target needs, and which are stale by a change on disk (not by
    being phony). A walk over every decision: made on the scan's thread."""

    stale: int
    stale_outside: int
    outdated: frozenset[str]


def summarise(decisions: Mapping[str, Decision], in_default: set[str]) -> ScanSummary:
    stale = [n for n, d in decisions.items() if d.stale]
    return ScanSummary(len(stale), sum(1 for n in stale if n not in in_default),
                       frozenset(n for n in stale if not any(
                           r.kind in _ALWAYS for r in decisions[n].reasons)))


class TaskTableModel(QAbstractTableModel):
    """Rows are the workflow's tasks in declaration order; the Python side owns the data."""

    runStarted = Signal()        # a new run is shown: which tasks are in it changed

    def __init__(self, run: RunState, parent=None):
        super().__init__(parent)
        self._run = run
        self._workflow: Workflow | None = None
        self._names: list[str] = []
        self._row: dict[str, int] = {}
        self._decisions: Mapping[str, Decision] = {}
        self._stale_count = 0               # decisions that say stale
        self._stale_outside = 0             # … of tasks no default target needs
        self._in_default: set[str] = set()  # the default targets and what they need
        self._after_run = False             # the decisions were made after the run shown
        self._outdated: frozenset[str] = frozenset()   # stale by a change on disk (not phony)
        self._affixes: dict[tuple[str, bool], tuple[int, int]] = {}
        self._groups_of: Workflow | None = None         # the workflow _groups are of
        self._groups: Mapping[str, tuple[str, ...]] = {}
        self._last: Mapping[str, float] = {}
        self._estimates: Mapping[str, float] = {}
        self._outputs: dict[str, float | None] = {}
        self._outputs_dirty: set[str] = set()     # tasks whose output times are to be read again
        self._idle_counted: tuple[object, IdleCounts | None] = (None, None)  # (key, counts)
        self._pending: deque[tuple[int, int]] = deque()   # row ranges still to announce
        self._flush_queued = False
        self._made_up: dict[str, Task] = {}

    # -- feeding --------------------------------------------------------------

    def set_workflow(self, workflow: Workflow | None,
                     decisions: Mapping[str, Decision] | None = None,
                     durations: Mapping[str, float] | None = None,
                     outputs: Mapping[str, float | None] | None = None,
                     summary: ScanSummary | None = None) -> None:
        """A new workflow, in one reset. With the scan's ``decisions``, ``durations`` and
        ``outputs`` (output times of every task) the rows are complete at once: every
        later every-row change re-checks 20,000 rows in each filter."""
        self._pending.clear()               # rows of the old workflow
        self.beginResetModel()
        self._workflow = workflow
        self._names = list(workflow.tasks) if workflow else []
        self._row = {n: i for i, n in enumerate(self._names)}
        self._affixes = {}
        self._in_default = (TaskGraph.of(workflow).closure(workflow.default)
                            if workflow is not None else set())
        self._set_decisions(decisions or {}, summary)
        if durations is not None:
            self._last, self._estimates = dict(durations), dict(durations)
        self._outputs_dirty = set()
        if outputs is not None:
            self._outputs = dict(outputs)
        else:
            self._outputs = output_times(workflow) if workflow else {}
        self.endResetModel()

    def _set_decisions(self, decisions: Mapping[str, Decision],
                       summary: ScanSummary | None = None) -> None:
        self._decisions = dict(decisions)
        if summary is None:
            summary = summarise(self._decisions, self._in_default)
        self._stale_count, self._stale_outside = summary.stale, summary.stale_outside
        self._outdated = summary.outdated
        self._after_run = not self._run.running

    def set_decisions(self, decisions: Mapping[str, Decision], notify: bool = True) -> None:
        self._set_decisions(decisions)
        if notify:
            self._all_changed()

    def set_durations(self, last: Mapping[str, float], estimates: Mapping[str, float],
                      notify: bool = True) -> None:
        self._last, self._estimates = dict(last), dict(estimates)
        if notify:
            self._all_changed()

    def apply_scan(self, decisions: Mapping[str, Decision], durations: Mapping[str, float],
                   outputs: Mapping[str, float | None], changed: list[str] | None,
                   summary: ScanSummary | None = None) -> None:
        """A scan made ready off the GUI thread: ``changed`` rows (None: every row) are
        redrawn, with ``outputs`` their output times (read on that thread too), and its
        ``summary`` (``summarise``: made there too)."""
        self._set_decisions(decisions, summary)
        self._last, self._estimates = dict(durations), dict(durations)
        self._outputs.update(outputs)
        self._outputs_dirty.difference_update(outputs)       # read by the scan just now
        if changed is None:
            self._all_changed()
        else:
            self.rows_changed(changed)

    def refresh_outputs(self, names: Iterable[str] | None = None, notify: bool = True) -> None:
        """Read the output times again (of ``names``; all when None). Without ``notify``
        the caller announces those rows itself."""
        if self._workflow is None:
            return
        names = list(names) if names is not None else None
        if names is None:
            self._outputs_dirty.clear()
            self._outputs.update(output_times(self._workflow, names))
        else:
            # Read when a row shows them (or is sorted by them), not here: mid-run, the
            # GUI thread stats no output of a task no one looks at.
            self._outputs_dirty.update(names)
        if not notify:
            return
        if names is None:
            self._all_changed()
        else:
            self.rows_changed(names)

    def apply_changes(self, changes: Changes) -> None:
        # A run's start names the tasks of the old and of the new run: only their rows
        # change (the rest show the scan's state before and after).
        if changes.started is not None:
            self._after_run = False         # the scan's verdicts are older than this run
        if changes.tasks:
            self.rows_changed(changes.tasks)
        if changes.started is not None:
            self.runStarted.emit()

    def rows_changed(self, names: Iterable[str]) -> None:
        """One dataChanged per contiguous range of changed rows, at most ``CHUNK`` rows
        in one turn of the event loop: every filter proxy (the table, each board
        column) re-checks each changed row, and the 2,000 rows of a run's start at once
        would stall the window. The rest follow in the next turns."""
        self._add_unknown(names)
        rows = sorted(self._row[n] for n in names if n in self._row)
        if not rows:
            return
        pending = self._pending
        start = prev = rows[0]
        for r in rows[1:] + [None]:
            if r is not None and r == prev + 1 and r - start < CHUNK:
                prev = r
                continue
            pending.append((start, prev))
            if r is not None:
                start = prev = r
        if not self._flush_queued:
            self._flush_pending()

    def _add_unknown(self, names: Iterable[str]) -> None:
        """Rows for tasks a run told of that the workflow does not know: the targets of
        a Makefile's sub-makes ("sub/target"), which make runs and Gristmill records."""
        if self._workflow is None:
            return
        new = sorted(n for n in names if n not in self._row and n in self._run.tasks)
        if not new:
            return
        first = len(self._names)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for n in new:
            self._row[n] = len(self._names)
            self._names.append(n)
        self.endInsertRows()

    def _task(self, name: str) -> Task:
        """The workflow's task, or one made up for a sub-make's target (default
        resources, its recipe make's)."""
        task = self._workflow.tasks.get(name) if self._workflow is not None else None
        if task is None:
            task = self._made_up.get(name)
            if task is None:
                task = self._made_up[name] = Task(name=name, description="run by a sub-make")
        return task

    def _flush_pending(self) -> None:
        self._flush_queued = False
        pending, last_col, budget = self._pending, self.columnCount() - 1, CHUNK
        while pending and budget > 0:
            start, end = pending.popleft()
            budget -= end - start + 1
            self.dataChanged.emit(self.index(start, 0), self.index(end, last_col))
        if pending:
            self._flush_queued = True
            QTimer.singleShot(0, self, self._flush_pending)

    def _all_changed(self) -> None:
        if self._names:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._names) - 1, self.columnCount() - 1))

    # -- questions ------------------------------------------------------------

    @property
    def workflow(self) -> Workflow | None:
        return self._workflow

    @property
    def run(self) -> RunState:
        """The run shown (read it; only events change it)."""
        return self._run

    def names(self) -> list[str]:
        return list(self._names)

    def row_of(self, name: str) -> int:
        return self._row.get(name, -1)

    def name_at(self, row: int) -> str:
        return self._names[row]

    def run_state(self, name: str) -> TaskState | None:
        """Its state in the run shown; None when it is not in that run (or before any run),
        or when the run finished it well but a scan since finds it stale (an input
        changed on disk): then it shows the scan's verdict, as a task outside the run."""
        state = self._run.state_of(name)
        if state in _FINISHED_WELL and self._overtaken(name):
            return None
        return state

    def _overtaken(self, name: str) -> bool:
        return self._after_run and name in self._outdated and not self._run.running

    def idle_state(self, name: str) -> IdleState | None:
        """For a task outside the run: what the latest scan says (None when unknown or in the run)."""
        if self.run_state(name) is not None:
            return None
        d = self._decisions.get(name)
        if d is None:
            return None
        return IdleState.STALE if d.stale else IdleState.FRESH

    def state(self, name: str) -> ShownState | None:
        """What the task shows: its run state when it is in the run, else the scan's idle state."""
        return self.run_state(name) or self.idle_state(name)

    def state_value_at(self, row: int) -> str:
        """``state`` of the task in ``row`` as its value ("" for none), for filters."""
        name = self._names[row]
        tr = self._run.tasks.get(name)
        if tr is not None and tr.state is not None and not (
                tr.state in _FINISHED_WELL and self._overtaken(name)):
            return _VALUE[tr.state]
        d = self._decisions.get(name)
        return "" if d is None else _STALE if d.stale else _FRESH

    def idle_counts(self) -> IdleCounts:
        """The tasks outside the run shown: those the default targets would run (stale
        and needed by a default target), up to date, and stale but run only when asked
        for. Counts the run's tasks, not the workflow's: the board asks at each run start.
        A task the run finished well but that a change on disk made stale since counts
        as stale (its decision was made after the run). While a run goes on, its tasks are
        all in it: counted once per run and scan (the graph and the board ask at its start)."""
        key = (self._run.run_id, len(self._run.tasks)) if self._run.running else None
        seen, counts = self._idle_counted
        if key is not None and seen is not None and seen[0] is self._decisions and seen[1] == key:
            return counts
        counts = self._count_idle()
        self._idle_counted = ((self._decisions, key), counts)
        return counts

    def _count_idle(self) -> IdleCounts:
        outside = self._stale_outside
        stale = self._stale_count - outside
        fresh = len(self._decisions) - self._stale_count
        decisions, in_default = self._decisions, self._in_default
        overtaken = self._after_run and not self._run.running
        for name, tr in self._run.tasks.items():
            if tr.state is None:
                continue
            d = decisions.get(name)
            if d is None or (overtaken and tr.state in _FINISHED_WELL and name in self._outdated):
                continue
            if not d.stale:
                fresh -= 1
            elif name in in_default:
                stale -= 1
            else:
                outside -= 1
        return IdleCounts(stale, fresh, outside)

    def group_affixes(self, group: str, short: bool) -> tuple[int, int]:
        """The prefix and suffix lengths a fan-out's items share (``names.common_affixes``;
        ``short``: of their short names), worked out when a view first draws the group."""
        key = (group, short)
        found = self._affixes.get(key)
        if found is None:
            wf = self._workflow
            if self._groups_of is not wf:
                self._groups_of, self._groups = wf, wf.groups() if wf is not None else {}
            members = self._groups.get(group, ())
            found = self._affixes[key] = group_affixes({group: members}, short).get(group, (0, 0))
        return found

    def states(self, names: Iterable[str]) -> list[ShownState | None]:
        """``state`` of many tasks at once (the graph recolours groups of thousands)."""
        run_tasks, decisions = self._run.tasks, self._decisions
        stale, fresh = IdleState.STALE, IdleState.FRESH
        out: list[ShownState | None] = []
        append = out.append
        overtaken = self._after_run and not self._run.running
        for name in names:
            tr = run_tasks.get(name)
            if tr is not None and tr.state is not None and not (
                    overtaken and tr.state in _FINISHED_WELL and name in self._outdated):
                append(tr.state)
            else:
                d = decisions.get(name)
                append(None if d is None else stale if d.stale else fresh)
        return out

    def reasons_text(self, name: str) -> str:
        """During a run: why the run decided what it did; otherwise the latest scan."""
        tr = self._run.tasks.get(name)
        reasons = tr.reasons if tr is not None and tr.reasons else ()
        if name in self._decisions and not self._run.running:
            reasons = ()
        if not reasons:
            d = self._decisions.get(name)
            reasons = d.reasons if d is not None else ()
        elif reasons[-1].kind is ReasonKind.WAITING:
            # ready but not started: what it waits for comes first (a card shows that)
            reasons = (reasons[-1],) + reasons[:-1]
        return "; ".join(r.message for r in reasons)

    def last_duration(self, name: str) -> float | None:
        tr = self._run.tasks.get(name)
        if tr is not None and tr.duration is not None:
            return tr.duration
        return self._last.get(name)

    def estimates(self) -> Mapping[str, float]:
        return self._estimates

    # -- Qt ---------------------------------------------------------------------

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._names)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        title, tip = HEADERS[Column(section)]
        if role == Qt.ItemDataRole.DisplayRole:
            return title
        if role == Qt.ItemDataRole.ToolTipRole:
            return tip
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._workflow is None:
            return None
        row, col = index.row(), index.column()
        if not 0 <= row < len(self._names):
            return None
        name = self._names[row]
        if role == ROLE_NAME:
            return name
        if role == ROLE_STATE:
            s = self.state(name)
            return s.value if s else ""
        if role == Qt.ItemDataRole.DisplayRole:
            return shown(self._display(name, Column(col)))
        if role == ROLE_SORT:
            return self._sort_key(name, Column(col))
        if role == Qt.ItemDataRole.ToolTipRole:
            return shown(self._tooltip(name, Column(col)))
        if role == Qt.ItemDataRole.DecorationRole and col == Column.STATE:
            return theme.state_color(self.state(name))
        if col == Column.STATE and isinstance(self.state(name), IdleState):
            if role == Qt.ItemDataRole.ForegroundRole:       # greyed: not in the run shown
                return theme.idle_text_color()
            if role == Qt.ItemDataRole.FontRole:
                font = QFont()
                font.setItalic(True)
                return font
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (Column.LAST, Column.ESTIMATE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, name: str, col: Column) -> str:
        task = self._task(name)
        if col == Column.NAME:
            return name
        if col == Column.STATE:
            s = self.state(name)
            if s is None:
                return ""
            text = states.title(s).lower()
            tr = self._run.tasks.get(name)
            if tr is not None and tr.attempt > 1:
                text += f" (attempt {tr.attempt})"
            return text
        if col == Column.WHY:
            return self.reasons_text(name)
        if col == Column.LAST:
            return format_duration(self.last_duration(name))
        if col == Column.ESTIMATE:
            return format_duration(self._estimates.get(name))
        if col == Column.RESOURCES:
            return describe_resources(task)
        if col == Column.OUTPUTS:
            self._read_outputs(name)
            if name not in self._outputs:
                return "—"
            m = self._outputs[name]
            return "missing" if m is None else describe_age(max(time.time() - m, 0))
        return ""

    def _read_outputs(self, name: str) -> None:
        """The output times of a task whose attempt ended, read now that they are asked for."""
        if name in self._outputs_dirty and self._workflow is not None:
            self._outputs_dirty.discard(name)
            self._outputs.update(output_times(self._workflow, (name,)))

    def _sort_key(self, name: str, col: Column) -> Any:
        if col == Column.STATE:
            s = self.state(name)
            return STATE_ORDER.get(s, -1) if s else -1
        if col == Column.LAST:
            return self.last_duration(name) or 0.0
        if col == Column.ESTIMATE:
            return self._estimates.get(name, 0.0)
        if col == Column.OUTPUTS:
            self._read_outputs(name)
            m = self._outputs.get(name, -1.0)
            return 0.0 if m is None else m
        if col == Column.RESOURCES:
            r = self._task(name).resources
            return r.cpu * 1e15 + r.mem
        if col == Column.NAME:
            return self._row[name]
        return self._display(name, col).lower()

    def _tooltip(self, name: str, col: Column) -> str:
        task = self._task(name)
        if col == Column.NAME:
            lines = [name]
            if task.description:
                lines.append(task.description)
            lines += [f"$ {c}" for c in task.commands[:5]]
            return "\n".join(lines)
        if col == Column.STATE:
            s = self.state(name)
            if isinstance(s, IdleState):
                verdict = "would run if asked" if s is IdleState.STALE else "is up to date"
                where = "No run yet in this session" if self._run.status is None else "Not in the run shown"
                return f"{where}: it {verdict}.\n{self.reasons_text(name)}".strip()
            return self._display(name, col)
        if col == Column.WHY:
            return self.reasons_text(name)
        if col == Column.OUTPUTS and task.outputs:
            return "\n".join(task.outputs[:20])
        return self._display(name, col)


class TaskFilterProxy(QSortFilterProxyModel):
    """Sort by each column's key; filter by text (name, state or reason) and by state."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSortRole(ROLE_SORT)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setDynamicSortFilter(True)
        self._states: frozenset[str] | None = None
        self._text = ""

    def _refilter(self, change) -> None:
        if hasattr(self, "endFilterChange"):          # Qt 6.9 and later
            self.beginFilterChange()
            change()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            change()
            self.invalidateFilter()

    def set_text(self, text: str) -> None:
        self._refilter(lambda: setattr(self, "_text", text.strip().lower()))

    def set_states(self, states: Iterable[TaskState] | None) -> None:
        value = None if states is None else frozenset(s.value for s in states)
        self._refilter(lambda: setattr(self, "_states", value))

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if self._states is not None:
            # Straight to the Python model: no QModelIndex, no trip through Qt's data().
            if model.state_value_at(source_row) not in self._states:
                return False
        needle = self._text
        if not needle:
            return True
        for col in (Column.NAME, Column.STATE, Column.WHY):
            value = model.data(model.index(source_row, col, source_parent))
            if value and needle in str(value).lower():
                return True
        return False
