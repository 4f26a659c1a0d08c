"""The terminal subscriber: one live progress line, then a summary.

On a terminal a single line is redrawn in place (done/total, what runs, ETA);
elsewhere (CI logs, pipes) each finished task gets a line. Everything a task prints
is shown, as make shows it: while it is the only task running, line by line as it
comes; when tasks run side by side, each one's output whole when it ends, so that
they never interleave (make's ``-O``). A failure also shows its command and its
first error line, and where the full log is.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import Callable, Mapping, TextIO

from .core.events import (Event, IntermediatesRemoved, OutputLine, RunFinished, RunNotice,
                          RunStarted, RunStatus, TaskAudited, TaskFinished, TaskStarted,
                          TaskState, TaskStateChanged, Outcome)
from .core.findings import AuditFinding
from .core.reasons import ReasonKind
from .core.sizes import format_duration

KEEP = 10_000      # lines of a task's output held in memory; past that, its log is read
TICK = 0.2         # seconds between redraws of the live line
LINE_MAX = 2000    # characters of one output line printed; the log file has it whole
STREAM_AFTER = 0.5  # seconds a task runs alone before its output is shown as it comes
COMMAND_LINES = 5  # lines of a failed task's command shown
AUDIT_SHOWN = 10   # findings of one task printed after the run
# The line a failure is most likely about: what a compiler, a test runner or Python say.
_ERROR = re.compile(r"\b(?:error|Error|ERROR|fatal|Fatal|FATAL|FAILED|Traceback)\b")


class _Output:
    """One running task's output: lines held for printing, or shown as they come."""

    __slots__ = ("lines", "count", "spilled", "first_error", "streamed")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0                    # lines seen in all
        self.spilled = False              # more than KEEP: the log file has them all
        self.first_error: tuple[int, str] | None = None
        self.streamed = False             # printed as they came

    def add(self, text: str) -> None:
        self.count += 1
        if self.first_error is None and _ERROR.search(text):
            self.first_error = (self.count, text)
        if self.streamed:
            return
        if len(self.lines) < KEEP:
            self.lines.append(text)
        else:
            self.spilled = True


def _capped(line: str) -> str:
    """An output line as printed: at most ``LINE_MAX`` characters, and a word if cut."""
    if len(line) <= LINE_MAX:
        return line
    return f"{line[:LINE_MAX]} … [cut: {len(line) - LINE_MAX:,} more characters]"


def _columns() -> int:
    import shutil
    return shutil.get_terminal_size((100, 20)).columns


class ConsoleReporter:
    def __init__(self, stream: TextIO | None = None,
                 durations: Mapping[str, float] | Callable[[], Mapping[str, float]] | None = None,
                 verbose: bool = False, live: bool | None = None, quiet: bool = False):
        """``durations`` (task -> seconds, for the ETA) may be a function: it is called
        at the first estimate, so a run with nothing to do never reads them."""
        self.out = stream or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.verbose = verbose
        self.quiet = quiet
        self._durations = durations
        self.total = 0
        self.done = 0
        self.to_run: set[str] = set()
        self.running: dict[str, float] = {}
        self.output: dict[str, _Output] = {}
        self.commands: dict[str, str] = {}
        self.streaming: str | None = None    # the task whose lines are printed as they come
        self.log_paths: dict[str, str] = {}
        self.failures: list[str] = []
        self.cancelled: list[str] = []    # tasks the user cancelled one by one
        # A cancelled attempt is told when its task's state says which kind it was: one
        # task cancelled by the user (the run goes on) or the whole run's cancel.
        self._cancelled_attempts: dict[str, tuple[TaskFinished, _Output]] = {}
        self.started = time.time()
        self._line_shown = False
        self.dry_run = False
        self.finished_durations: list[float] = []
        self.width = 1
        self.ended: set[str] = set()      # tasks of the plan that are over
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self.audits: dict[str, TaskAudited] = {}   # the dependency audit: task -> its last

    # -- the subscriber -----------------------------------------------------
    def __call__(self, ev: Event) -> None:
        with self._lock:
            try:
                self._on(ev)
            except OSError:
                self._gone()

    def _gone(self) -> None:
        """The console cannot be written (a closed terminal: EIO): the run goes on, and
        is recorded, without it."""
        self.live = False
        self._line_shown = False
        self.out = open(os.devnull, "w")

    def _on(self, ev: Event) -> None:
        if isinstance(ev, OutputLine):
            out = self.output.get(ev.task)
            if out is None:
                out = self.output[ev.task] = _Output()
            out.add(ev.text)
            if out.streamed:
                self._print("  " + _capped(ev.text))
            elif (self.streaming is None and not self.quiet and len(self.running) == 1
                    and ev.time - self.running.get(ev.task, ev.time) >= STREAM_AFTER):
                # Alone on the console, and not over at once: from here on its lines are
                # shown as they come (a quick task's are shown whole, under its name).
                self.streaming = ev.task
                out.streamed = True
                self._print(f"▸ {ev.task}")
                for line in out.lines:
                    self._print("  " + _capped(line))
                out.lines = []
        elif isinstance(ev, TaskStateChanged):
            self._state(ev)
        elif isinstance(ev, TaskStarted):
            self.running[ev.task] = ev.time
            self.width = max(self.width, len(self.running))   # parallelism seen so far
            self.log_paths[ev.task] = ev.log_path
            self.commands[ev.task] = ev.command
            self.output.pop(ev.task, None)         # a retry's output is its own
            if self.verbose:
                self._print(f"$ {ev.command}" if "\n" not in ev.command else
                            "$ " + ev.command.replace("\n", "\n$ "))
            self._draw()
        elif isinstance(ev, TaskFinished):
            self._finished(ev)
        elif isinstance(ev, TaskAudited):
            self.audits[ev.task] = ev
        elif isinstance(ev, RunStarted):
            self.started = ev.time
            self.dry_run = ev.dry_run
            # One reporter may see several runs (make's goals, one after another).
            self.total = self.done = 0
            self.to_run, self.ended = set(), set()
            self.audits = {}
            self._stop = threading.Event()
            if self.live and not self.quiet and not ev.dry_run:
                self._ticker = threading.Thread(target=self._tick, daemon=True,
                                                name="gristmill-progress")
                self._ticker.start()
        elif isinstance(ev, IntermediatesRemoved):
            if not self.quiet:
                self._print("rm " + " ".join(ev.paths))    # as make says it
        elif isinstance(ev, RunNotice):
            self._print(f"gristmill: {ev.message}")
        elif isinstance(ev, RunFinished):
            self._stop.set()
            self._summary(ev)

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                try:
                    self._draw()
                except OSError:
                    self._gone()

    def _state(self, ev: TaskStateChanged) -> None:
        if ev.state is TaskState.WAITING and ev.attempt == 0:
            self.to_run.add(ev.task)
            self.total = len(self.to_run)
        elif ev.state is TaskState.UP_TO_DATE and ev.task in self.to_run:
            # Rechecked after its dependencies ran: nothing to do after all.
            self.done += 1
            self.ended.add(ev.task)
            self._draw()
        elif ev.task in self._cancelled_attempts and ev.state in (TaskState.CANCELLED,
                                                                  TaskState.FAILED):
            finished, out = self._cancelled_attempts.pop(ev.task)
            if ev.state is TaskState.CANCELLED:
                self.done += 1
                self.ended.add(ev.task)
                took = f"attempt {finished.attempt}, {format_duration(finished.duration)}"
                if ev.reasons and ev.reasons[0].kind is ReasonKind.RUN_CANCELLED:
                    self._print(f"⊘ {ev.task} stopped: the run was cancelled ({took})")
                else:
                    self.cancelled.append(ev.task)
                    self._print(f"⊘ {ev.task} cancelled ({took}); the run goes on without it")
                if finished.removed_outputs:
                    self._print("  removed partial outputs: " + ", ".join(finished.removed_outputs))
                self._draw()
            else:
                self._failed(finished, out)
        elif ev.state is TaskState.CANCELLED:     # cancelled before it started
            self.done += 1
            self.ended.add(ev.task)
            self.cancelled.append(ev.task)
            self._print(f"⊘ {ev.task} cancelled; the run goes on without it")
        elif ev.state is TaskState.SKIPPED:
            self.done += 1
            self.ended.add(ev.task)
            if self.verbose or not self.live:
                why = ev.reasons[0].message if ev.reasons else ""
                self._print(f"- {ev.task} skipped: {why}")

    def _finished(self, ev: TaskFinished) -> None:
        self.running.pop(ev.task, None)
        out = self.output.pop(ev.task, None) or _Output()
        if self.streaming == ev.task:
            self.streaming = None
        if ev.outcome is Outcome.SUCCEEDED:
            self.done += 1
            self.ended.add(ev.task)
            self.finished_durations.append(ev.duration)
            if not self.quiet and (out.count or not self.live or ev.message):
                self._print(f"✓ {ev.task} ({format_duration(ev.duration)})")
                self._print_lines(ev.task, out, "  ")
            if ev.message:     # it succeeded, but something went wrong beside it
                self._print(f"  ! {ev.message}")
        elif ev.outcome is Outcome.CANCELLED and ev.will_retry:
            # watch: its inputs changed while it ran; the engine queued it again
            self._print(f"↻ {ev.task} attempt {ev.attempt} {ev.message}")
            if ev.removed_outputs:
                self._print("  removed partial outputs: " + ", ".join(ev.removed_outputs))
        elif ev.outcome is Outcome.CANCELLED and not ev.will_retry:
            self._cancelled_attempts[ev.task] = (ev, out)
            return
        else:
            self._failed(ev, out)
        self._draw()

    def _failed(self, ev: TaskFinished, out: _Output) -> None:
        what = ev.message or ev.outcome.value
        if ev.will_retry:
            self._print(f"↻ {ev.task} attempt {ev.attempt} failed ({what}); retrying")
        else:
            self.done += 1
            self.ended.add(ev.task)
            self.failures.append(ev.task)
            self._print(f"✗ {ev.task} failed: {what} (attempt {ev.attempt}, "
                        f"{format_duration(ev.duration)})")
            self._print_lines(ev.task, out, "  | ")
            self._explain_failure(ev.task, out)
        if ev.removed_outputs:
            self._print("  removed partial outputs: " + ", ".join(ev.removed_outputs))

    def _print_lines(self, task: str, out: _Output, prefix: str) -> None:
        """Everything the task printed that is not on the console yet."""
        if out.streamed:
            return
        if out.spilled and self._print_log(task, prefix):
            return
        for line in out.lines:
            self._print(prefix + _capped(line))
        if out.spilled:
            self._print(f"  … {out.count - len(out.lines)} more lines "
                        f"(full log: {self.log_paths.get(task) or 'not written'})")

    def _print_log(self, task: str, prefix: str) -> bool:
        path = self.log_paths.get(task)
        if not path:
            return False
        try:
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                self._clear()
                for line in f:
                    self.out.write(prefix + _capped(line.rstrip("\n").rstrip("\r")) + "\n")
        except OSError:
            return False
        return True

    def _explain_failure(self, task: str, out: _Output) -> None:
        """The command, the first error line, and where the whole output is."""
        command = self.commands.get(task, "")
        if command:
            lines = command.split("\n")
            for line in lines[:COMMAND_LINES]:
                self._print(f"  $ {line}")
            if len(lines) > COMMAND_LINES:
                self._print(f"  $ … ({len(lines) - COMMAND_LINES} more command lines)")
        if out.first_error is not None and out.count > 1:
            number, text = out.first_error
            self._print(f"  first error (line {number} of {out.count}): {_capped(text)}")
        if not out.count:
            # A log file is made at the first byte: a task that printed nothing
            # has none to point to.
            self._print("  (it printed nothing)")
        elif task in self.log_paths:
            self._print(f"  full log: {self.log_paths[task]}")

    def _summary(self, ev: RunFinished) -> None:
        self._clear()
        c = ev.counts
        # A cancelled run's cancelled tasks were stopped, its skipped ones never started.
        words = ({"cancelled": "stopped", "skipped": "not started"}
                 if ev.status is RunStatus.CANCELLED else {})
        parts = [f"{c[k]} {words.get(k) or k.replace('-', ' ')}" for k in
                 ("done", "up-to-date", "failed", "cancelled", "skipped", "waiting", "ready")
                 if c.get(k)]
        word = {RunStatus.SUCCEEDED: "finished", RunStatus.FAILED: "FAILED",
                RunStatus.CANCELLED: "CANCELLED"}.get(ev.status, ev.status.value)
        took = format_duration(ev.duration)
        cancelled = c.get(TaskState.CANCELLED.value, 0)
        if cancelled and ev.status is not RunStatus.CANCELLED:     # one by one, by the user
            took += f", with {cancelled} task{'s' if cancelled != 1 else ''} cancelled"
        if self.dry_run:
            return
        if not self.total:
            self.out.write("gristmill: nothing to do, everything is up to date.\n")
        else:
            self.out.write(f"gristmill: run {word} in {took}: "
                           f"{', '.join(parts)}\n")
        if self.audits:
            for line in audit_summary(list(self.audits.values())):
                self.out.write(line + "\n")
        self.out.flush()

    # -- drawing ------------------------------------------------------------
    @property
    def durations(self) -> dict[str, float]:
        known = self._durations
        if not isinstance(known, dict):
            known = self._durations = dict((known() if callable(known) else known) or {})
        return known

    def estimate(self, name: str) -> float | None:
        """A task's expected duration: from history, else the mean of this run so far."""
        known = self.durations.get(name)
        if known is not None:
            return known
        if self.finished_durations:
            return sum(self.finished_durations) / len(self.finished_durations)
        return None

    def eta(self) -> float | None:
        """Seconds left: the work not yet done spread over the tasks running now."""
        if not self.total or self.done >= self.total:
            return None
        now = time.time()
        work = 0.0
        for n in self.to_run:
            if n not in self.running and n not in self.ended:
                e = self.estimate(n)
                if e is None:
                    return None
                work += e
        for n, t in self.running.items():
            e = self.estimate(n)
            if e is None:
                return None
            work += max(0.0, e - (now - t))
        return work / max(1, self.width)

    def _draw(self) -> None:
        if not self.live or self.quiet or self._stop.is_set():
            return
        names = list(self.running)
        shown = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
        eta = self.eta()
        parts = [f"[{self.done}/{self.total}]"]
        if shown:
            parts.append(f"running {shown}")
        if eta is not None and self.done < self.total:
            parts.append(f"ETA {format_duration(eta)}")
        line = parts[0] + " " + " · ".join(parts[1:])
        width = _columns()
        self.out.write("\r" + line[: width - 1].ljust(min(width - 1, len(line) + 10)))
        self.out.flush()
        self._line_shown = True

    def _clear(self) -> None:
        if self._line_shown:
            width = _columns()
            self.out.write("\r" + " " * (width - 1) + "\r")
            self._line_shown = False

    def _print(self, text: str) -> None:
        self._clear()
        self.out.write(text + "\n")
        if not self.live:
            self.out.flush()


class MakeReporter:
    """The console of a Makefile's run: make's own lines (its echoes, the recipes'
    output, its ``*** Error`` lines) are the output, on the streams make wrote them to.
    Gristmill adds only its own words, on stderr, each line ``gristmill: ``: notices,
    what it removed or killed, and with ``-v`` each recipe as it starts."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False,
                 quiet: bool = False):
        self.out = stream or sys.stderr
        self.verbose = verbose
        self.quiet = quiet
        self._lock = threading.Lock()
        self._logs: dict[str, str] = {}
        self._audits: dict[str, TaskAudited] = {}

    def __call__(self, ev: Event) -> None:
        if isinstance(ev, TaskAudited):
            self._audits[ev.task] = ev
        elif isinstance(ev, RunFinished) and self._audits:
            # the audit's block after the run, on stdout as for any workflow
            try:
                for line in audit_summary(list(self._audits.values())):
                    sys.stdout.write(line + "\n")
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
        line = self._words(ev)
        if line is None:
            return
        with self._lock:
            try:
                self.out.write(f"gristmill: {line}\n")
                self.out.flush()
            except (OSError, ValueError):
                pass

    def _words(self, ev: Event) -> str | None:
        if isinstance(ev, RunNotice):
            return ev.message
        if isinstance(ev, TaskStarted):
            self._logs[ev.task] = ev.log_path
            return f"▸ {ev.task}" if self.verbose else None
        if isinstance(ev, TaskFinished):
            log = self._logs.pop(ev.task, "")
            if ev.outcome is Outcome.SUCCEEDED:
                return None
            words = f"✗ {ev.task}: {ev.message or ev.outcome.value}"
            if ev.removed_outputs:
                words += (f"; removed {', '.join(ev.removed_outputs)}, which the failed "
                          "recipe changed (Gristmill's clean-up)")
            if log and os.path.exists(log):
                words += f"; full log: {log}"
            return words
        if isinstance(ev, RunFinished) and ev.status is RunStatus.CANCELLED:
            return "the run was cancelled"
        return None


def fix_label(f: AuditFinding) -> str:
    """What to do with a finding's fix, in words: "add the line" to a Makefile, else
    the edit of the workflow file."""
    if f.fix.startswith("[tasks.") or '" of task ' in f.fix:
        return "edit"                      # gristmill.toml, gristmill.json
    if " &: " in f.fix:
        return "declare it"
    if f.fix.startswith("remove "):
        return "fix"
    return "add the line"


def audit_summary(audits: list[TaskAudited]) -> list[str]:
    """The dependency audit after a run: a short block per task with findings."""
    lines: list[str] = []
    traced = [a for a in audits if a.traced]
    untraced = [a.task for a in audits if not a.traced]
    with_findings = [a for a in traced if a.findings]
    if not with_findings:
        lines.append(f"audit: {len(traced)} task{'s' if len(traced) != 1 else ''} traced; "
                     "every file each read and wrote is declared, and every declared input "
                     "was read")
    for a in with_findings:
        n = len(a.findings)
        where = a.findings[0].where
        lines.append(f"audit: {a.task}: {n} finding{'s' if n != 1 else ''}"
                     + (f" (declared at {where})" if where else ""))
        for f in a.findings[:AUDIT_SHOWN]:
            lines.append(f"  - {_capped(f.message)}")
            if f.fix:
                lines.append(f"    {fix_label(f)}: {_capped(f.fix)}")
        if n > AUDIT_SHOWN:
            lines.append(f"  … {n - AUDIT_SHOWN} more (all of them: the run log, history, "
                         "the app's Audit Findings)")
    if untraced:
        lines.append("audit: not traced (the executor runs no strace): " + ", ".join(untraced))
    return lines
