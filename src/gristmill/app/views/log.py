"""The log: live output of the selected task or of the whole run; follows the tail; searchable.

A task that is not in the run shown (or any task before the first run of the
session) shows its latest recorded output from history, labelled with its run
and attempt.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFontDatabase, QKeySequence, QShortcut, QTextCharFormat, QTextCursor, QTextDocument
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QSizePolicy, QTextEdit, QToolButton, QVBoxLayout, QWidget)

import time

from gristmill.core.events import Outcome, OutputLine, TaskState
from gristmill.core.record.history import AttemptRecord, RunRecord
from gristmill.core.sizes import format_duration

from ..names import shown
from ..past_logs import TaskAttempts
from ..runstate import RUN_LOG_LIMIT, RunState

MAX_BLOCKS = RUN_LOG_LIMIT
MAX_HIGHLIGHTS = 500
WHOLE_RUN, SELECTED_TASK = 0, 1


NO_TASK = "Select a task to see its output."


class LogSource(Protocol):
    def attempts(self, task: str) -> list[int]: ...
    def task_lines(self, task: str, attempt: int) -> list[str]: ...
    def run_lines(self) -> list[tuple[str, int, str]]: ...
    def heading(self, task: str, attempt: int) -> str: ...
    def live(self, task: str) -> bool: ...          # new output of this task may arrive
    def running(self, task: str, attempt: int) -> bool: ...   # that attempt has not ended


def stamp(t: float) -> str:
    """A line's time, as the log shows it with Times on: ``14:03:07.250``."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def header_text(command: str, outcome: Outcome | None, exit_code: int | None,
                duration: float | None, running: bool) -> str:
    """The log's header of one attempt: ``$ python report.py · exit 0 · 0.3 s``."""
    parts = []
    if command:
        first, *more = command.splitlines() or [""]
        parts.append(f"$ {first}{' …' if more else ''}")
    if running:
        parts.append("running" + (f" for {format_duration(duration)}" if duration else ""))
    elif outcome is not None or exit_code is not None:
        how = f"exit {exit_code}" if exit_code is not None else "no exit status (killed)"
        if outcome is not None and outcome is not Outcome.SUCCEEDED:
            how = f"{outcome.value}, {how}"
        parts.append(how)
        if duration is not None:
            parts.append(format_duration(duration))
    return " · ".join(parts)


def quiet_echo(attempt: AttemptRecord) -> list[str]:
    """The output a recorded attempt's log file holds, or, for a success that printed
    nothing (no file), the command echo the live view showed."""
    lines = read_log(attempt.log_path)
    if not lines and attempt.outcome is Outcome.SUCCEEDED and attempt.command:
        return attempt.command.splitlines()
    return lines


def past_header(attempt: AttemptRecord | None) -> str:
    if attempt is None:
        return ""
    return header_text(attempt.command, attempt.outcome, attempt.exit_code, attempt.duration,
                       running=False)


def past_heading(task: str, attempt: AttemptRecord | None, run: RunRecord) -> str:
    """``report — attempt 1 (succeeded, exit 0) · run 20251122-103102-ab12cd``."""
    if attempt is None:
        return f"{task} — not in run {run.id}"
    how = attempt.outcome.value if attempt.outcome is not None else "did not finish"
    if attempt.exit_code is not None:
        how += f", exit {attempt.exit_code}"
    return f"{task} — attempt {attempt.attempt} ({how}) · run {run.id}"


class LiveLogSource:
    """The run of this session, from the lines kept in memory."""

    def __init__(self, run: RunState, commands: Callable[[str], str] | None = None):
        self.run = run
        self._commands = commands or (lambda _task: "")

    def live(self, task: str) -> bool:
        return True

    def header(self, task: str, attempt: int) -> str:
        """The command, exit status and duration of one attempt of this run."""
        if not attempt:
            return ""
        bar = next((b for b in reversed(self.run.bars) if b.task == task and b.attempt == attempt), None)
        command = self._commands(task)
        if bar is None:
            return header_text(command, None, None, None, running=True)
        running = bar.end is None
        end = bar.end if bar.end is not None else time.time()
        return header_text(command, bar.outcome, bar.exit_code, end - bar.start, running)

    def task_times(self, task: str, attempt: int) -> list[float] | None:
        return self.run.log.times(task, attempt)

    def run_times(self) -> list[float] | None:
        return list(self.run.log.run_times)

    def running(self, task: str, attempt: int) -> bool:
        tr = self.run.tasks.get(task)
        return tr is not None and tr.attempt == attempt and tr.finished is None

    def heading(self, task: str, attempt: int) -> str:
        if attempt:
            return f"{task} — attempt {attempt}"
        tr = self.run.tasks.get(task)
        if tr is not None and tr.state is not None:
            return f"{task} — {tr.state.words}; it has not started in this run"
        return f"{task} — has not run"

    def attempts(self, task: str) -> list[int]:
        found = self.run.log.attempts(task)
        tr = self.run.tasks.get(task)
        if tr is not None and tr.attempt and tr.attempt not in found:
            found.append(tr.attempt)
        return sorted(found)

    def task_lines(self, task: str, attempt: int) -> list[str]:
        lines = self.run.log.lines(task, attempt)
        if not lines and self._succeeded_quietly(task, attempt):
            return self._commands(task).splitlines()     # the command echo, as history keeps it
        return lines

    def _succeeded_quietly(self, task: str, attempt: int) -> bool:
        bar = next((b for b in reversed(self.run.bars) if b.task == task and b.attempt == attempt), None)
        return bar is not None and bar.outcome is Outcome.SUCCEEDED


    def run_lines(self) -> list[tuple[str, int, str]]:
        return list(self.run.log.run)

    def plan_lines(self) -> list[str] | None:
        """A plan (dry run) shown: what would run, in run order, with why; else None."""
        run = self.run
        if not run.dry_run or run.status is None:
            return None
        lines: list[str] = []
        for step, name in enumerate(run.would_run(), 1):
            lines.append(f"{step:>4}. {name}")
            lines += [f"        because {r.message}" for r in run.tasks[name].reasons]
        words = run.plan_words()
        lines.append(words[0].upper() + words[1:] + ".")
        return lines


def read_log(path: str, limit: int = MAX_BLOCKS) -> list[str]:
    if not path:
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return lines[-limit:]


class SessionLogSource(LiveLogSource):
    """The run of this session; for a task outside it (or before any run), its latest attempts from history."""

    def __init__(self, run: RunState, latest: Callable[[str], TaskAttempts | None],
                 commands: Callable[[str], str] | None = None):
        super().__init__(run, commands)
        self._latest = latest

    def _past(self, task: str) -> TaskAttempts | None:
        tr = self.run.tasks.get(task)
        if tr is not None and not (tr.state is TaskState.UP_TO_DATE and not tr.attempt):
            return None         # in the run shown: its live output, even before it starts
        # outside the run, or up to date in it: its last recorded attempt
        return self._latest(task)

    def header(self, task: str, attempt: int) -> str:
        past = self._past(task)
        if past is not None:
            return past_header(past.attempt(attempt))
        return super().header(task, attempt)

    def task_times(self, task: str, attempt: int) -> list[float] | None:
        return None if self._past(task) is not None else super().task_times(task, attempt)

    def live(self, task: str) -> bool:
        return task in self.run.tasks

    def attempts(self, task: str) -> list[int]:
        past = self._past(task)
        if past is not None:
            return [a.attempt for a in past.attempts]
        return super().attempts(task)

    def task_lines(self, task: str, attempt: int) -> list[str]:
        past = self._past(task)
        if past is not None:
            a = past.attempt(attempt)
            return quiet_echo(a) if a is not None else []
        return super().task_lines(task, attempt)

    def heading(self, task: str, attempt: int) -> str:
        past = self._past(task)
        if past is not None:
            tr = self.run.tasks.get(task)
            up = "up to date in this run; " if tr is not None else ""
            return (f"{past_heading(task, past.attempt(attempt), past.run)} "
                    f"({up}from history)")
        if task not in self.run.tasks:
            if self.run.status is None:
                return f"{task} — no run yet in this session, and none recorded"
            return f"{task} — not in this run, and no recorded run started it"
        return super().heading(task, attempt)


class PastLogSource:
    """A past run, from its attempts' log files."""

    def __init__(self, attempts: Sequence[AttemptRecord], run: RunRecord | None = None):
        self._attempts = {(a.task, a.attempt): a for a in attempts}
        self._order = sorted(attempts, key=lambda a: (a.started or 0.0, a.task))
        self._run = run

    def live(self, task: str) -> bool:
        return False

    def running(self, task: str, attempt: int) -> bool:
        return False

    def header(self, task: str, attempt: int) -> str:
        return past_header(self._attempts.get((task, attempt)))

    def heading(self, task: str, attempt: int) -> str:
        if self._run is not None:
            return past_heading(task, self._attempts.get((task, attempt)), self._run)
        return f"{task} — attempt {attempt}" if attempt else f"{task} — did not run in this run"

    def attempts(self, task: str) -> list[int]:
        return sorted(a for (t, a) in self._attempts if t == task)

    def task_lines(self, task: str, attempt: int) -> list[str]:
        a = self._attempts.get((task, attempt))
        return quiet_echo(a) if a is not None else []

    def run_lines(self) -> list[tuple[str, int, str]]:
        out: list[tuple[str, int, str]] = []
        for a in self._order:
            out += [(a.task, a.attempt, line) for line in read_log(a.log_path)]
        return out[-MAX_BLOCKS:]


class LogPane(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.source: LogSource | None = None
        self.task: str | None = None
        self.attempt = 0
        self._init_widgets()
        self._connect_signals()

    def _init_widgets(self) -> None:
        self.mode = QComboBox(self)
        self.mode.addItem("Whole run")
        self.mode.addItem("Selected task")
        self.mode.setCurrentIndex(SELECTED_TASK)
        self.mode.setToolTip("Show the output of the whole run, or of the selected task only")
        self.attempt_box = QComboBox(self)
        self.attempt_box.setToolTip("Which attempt of the task to show")
        self.attempt_box.setMinimumContentsLength(10)
        self.heading = QLabel(self)
        self.heading.setObjectName("log-heading")
        self.heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Find in log")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Enter finds the next match, Shift+Enter the previous one")
        self.search.setMaximumWidth(260)
        self.prev_button = QToolButton(self)
        self.prev_button.setText("↑")
        self.prev_button.setToolTip("Previous match (Shift+Enter)")
        self.next_button = QToolButton(self)
        self.next_button.setText("↓")
        self.next_button.setToolTip("Next match (Enter)")
        self.matches = QLabel(self)
        self.times = QCheckBox("Times", self)
        self.times.setObjectName("log-times")
        self.times.setToolTip("Show when each line of this session's runs came (history keeps no times)")
        self.info = QLabel(self)
        self.info.setObjectName("log-header")
        self.info.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.info.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.info.hide()
        self.follow = QCheckBox("Follow", self)
        self.follow.setChecked(True)
        self.follow.setToolTip("Keep the newest output in view")
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("log-text")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setMaximumBlockCount(MAX_BLOCKS)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlaceholderText(NO_TASK)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 4, 4, 0)
        bar.addWidget(self.mode)
        bar.addWidget(self.attempt_box)
        bar.addWidget(self.heading, 1)
        bar.addWidget(self.search)
        bar.addWidget(self.prev_button)
        bar.addWidget(self.next_button)
        bar.addWidget(self.matches)
        bar.addWidget(self.times)
        bar.addWidget(self.follow)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        info_row = QHBoxLayout()
        info_row.setContentsMargins(8, 0, 4, 0)
        info_row.addWidget(self.info)
        layout.addLayout(info_row)
        layout.addWidget(self.text, 1)
        self._shift_enter = QShortcut(QKeySequence("Shift+Return"), self.search)
        self._shift_enter.setContext(Qt.ShortcutContext.WidgetShortcut)

    def _connect_signals(self) -> None:
        self.mode.currentIndexChanged.connect(lambda _i: self.reload())
        self.attempt_box.activated.connect(self._attempt_chosen)
        self.search.textChanged.connect(self._highlight)
        self.search.returnPressed.connect(lambda: self.find(backward=False))
        self._shift_enter.activated.connect(lambda: self.find(backward=True))
        self.next_button.clicked.connect(lambda: self.find(backward=False))
        self.prev_button.clicked.connect(lambda: self.find(backward=True))
        self.text.verticalScrollBar().valueChanged.connect(self._scrolled)
        self.follow.toggled.connect(lambda on: on and self._to_end())
        self.times.toggled.connect(lambda _on: self.reload())

    # -- what to show -----------------------------------------------------------------

    @property
    def whole_run(self) -> bool:
        return self.mode.currentIndex() == WHOLE_RUN

    def show_whole_run(self) -> None:
        self.mode.setCurrentIndex(WHOLE_RUN)

    def set_source(self, source: LogSource | None) -> None:
        self.source = source
        self.attempt = 0
        self.reload()

    def show_task(self, task: str | None) -> None:
        if task != self.task:
            self.task = task
            self.attempt = 0
            if not self.whole_run:
                self.reload()

    def _attempt_chosen(self, index: int) -> None:
        self.attempt = self.attempt_box.itemData(index) or 0
        self.reload()

    def _set_header(self, text: str) -> None:
        text = shown(text)
        self.info.setText(text)
        self.info.setToolTip(text)
        self.info.setVisible(bool(text))

    def _stamped(self, lines: list[str], times: list[float] | None) -> list[str]:
        if not self.times.isChecked() or not times or len(times) != len(lines):
            return lines
        return [f"{stamp(t)}  {line}" for t, line in zip(times, lines)]

    def reload(self) -> None:
        self.attempt_box.setVisible(False)          # shown below when the task has attempts
        self._set_header("")
        src = self.source
        if src is None:
            self._set_text([], "")
            return
        plan = getattr(src, "plan_lines", lambda: None)() if self.whole_run else None
        if plan is not None:
            self._set_text(plan, "Plan (dry run): what would run, in run order, and why")
            return
        if self.whole_run:
            lines = self._stamped([f"[{t}] {text}" for t, _a, text in src.run_lines()],
                                  getattr(src, "run_times", lambda: None)())
            self._set_text(lines, "Output of every task, in order", "No task has printed anything yet.")
            return
        if self.task is None:
            self.attempt_box.clear()
            self.attempt_box.hide()
            self._set_text([], "")
            return
        attempts = src.attempts(self.task)
        if self.attempt not in attempts:
            self.attempt = attempts[-1] if attempts else 0
        self.attempt_box.clear()
        for a in attempts:
            self.attempt_box.addItem(f"Attempt {a}", a)
        if attempts:
            self.attempt_box.setCurrentIndex(attempts.index(self.attempt))
        self.attempt_box.setVisible(bool(attempts))
        self.attempt_box.setEnabled(len(attempts) > 1)
        lines = src.task_lines(self.task, self.attempt) if self.attempt else []
        if self.attempt:
            lines = self._stamped(lines, getattr(src, "task_times", lambda *_: None)(self.task, self.attempt))
            self._set_header(getattr(src, "header", lambda *_: "")(self.task, self.attempt))
        self._set_text(lines, src.heading(self.task, self.attempt), self._empty_text())

    def _empty_text(self) -> str:
        """What the pane says while the shown attempt has no output."""
        if not self.attempt:
            return "Nothing to show: it has not run."
        if self.source is not None and self.source.running(self.task, self.attempt):
            return "No output yet."
        # A command that succeeds silently leaves no log file: nothing was lost.
        return "This attempt printed nothing."

    def tasks_changed(self, tasks: set[str]) -> None:
        """Tasks whose state moved: if the shown one did, its empty log may read otherwise."""
        if self.whole_run or self.task is None or self.task not in tasks:
            return
        if not self.attempt and self.source is not None and self.source.attempts(self.task):
            self.reload()           # its first attempt started: show it
        else:
            self.text.setPlaceholderText(self._empty_text())
            if self.attempt and self.source is not None:      # its exit status and time
                self._set_header(getattr(self.source, "header", lambda *_: "")(self.task, self.attempt))

    def _set_text(self, lines: list[str], heading: str, empty: str = NO_TASK) -> None:
        heading = shown(heading)
        self.heading.setText(heading)
        self.heading.setToolTip(heading)
        self.text.setPlaceholderText(empty)       # shown while the text is empty
        self.text.setPlainText(shown("\n".join(lines)))
        self._highlight()
        if self.follow.isChecked():
            self._to_end()

    def append(self, lines: Sequence[OutputLine]) -> None:
        """New live output from one batch: one insertion, whatever the number of lines."""
        if self.source is None or not lines:
            return
        stamped = self.times.isChecked()
        if self.whole_run:
            chosen = [(f"{stamp(ln.time)}  " if stamped else "") + f"[{ln.task}] {ln.text}" for ln in lines]
        elif self.task is not None and self.source.live(self.task):
            newest = max((ln.attempt for ln in lines if ln.task == self.task), default=0)
            if newest > self.attempt:        # a retry started: switch to it
                self.attempt = newest
                self.reload()
                return
            chosen = [(f"{stamp(ln.time)}  " if stamped else "") + ln.text
                      for ln in lines if ln.task == self.task and ln.attempt == self.attempt]
        else:
            chosen = []
        if not chosen:
            return
        follow = self.follow.isChecked()
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        text = shown("\n".join(chosen))
        cursor.insertText(("\n" if not self.text.document().isEmpty() else "") + text)
        if follow:
            self._to_end()

    # -- following and finding ---------------------------------------------------------

    def _to_end(self) -> None:
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _scrolled(self, value: int) -> None:
        bar = self.text.verticalScrollBar()
        at_end = value >= bar.maximum() - 2
        if self.follow.isChecked() != at_end and bar.maximum() > 0:
            self.follow.blockSignals(True)
            self.follow.setChecked(at_end)
            self.follow.blockSignals(False)

    def find(self, backward: bool = False) -> bool:
        needle = self.search.text()
        if not needle:
            return False
        flags = QTextDocument.FindFlag.FindBackward if backward else QTextDocument.FindFlag(0)
        found = self.text.find(needle, flags)
        if not found:
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End if backward else QTextCursor.MoveOperation.Start)
            self.text.setTextCursor(cursor)
            found = self.text.find(needle, flags)
        if found:
            self.follow.setChecked(False)
        return found

    def _highlight(self) -> None:
        needle = self.search.text()
        selections = []
        count = 0
        if needle:
            fmt = QTextCharFormat()
            fmt.setBackground(QColor("#f5d76e"))
            fmt.setForeground(QColor("#1b1f24"))
            doc = self.text.document()
            cursor = doc.find(needle)
            while not cursor.isNull():
                count += 1
                if count <= MAX_HIGHLIGHTS:
                    sel = QTextEdit.ExtraSelection()
                    sel.cursor = cursor
                    sel.format = fmt
                    selections.append(sel)
                cursor = doc.find(needle, cursor)
            self.matches.setText(f"{count} match{'es' if count != 1 else ''}")
        else:
            self.matches.setText("")
        self.text.setExtraSelections(selections)
