"""The terminal subscriber: one live progress line, then a summary.

On a terminal a single line is redrawn in place (done/total, what runs, ETA);
elsewhere (CI logs, pipes) each finished task gets a line. Output of a task is
printed when it ends, whole, so parallel tasks never interleave; a failure
shows its last lines and where the full log is.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Callable, Mapping, TextIO

from .core.events import (Event, OutputLine, RunFinished, RunStarted, RunStatus, TaskFinished,
                          TaskStarted, TaskState, TaskStateChanged, Outcome)
from .core.sizes import format_duration

TAIL = 20          # lines of a failed task's output shown
KEEP = 200         # lines of a task's output kept for printing when it ends
TICK = 0.2         # seconds between redraws of the live line
LINE_MAX = 2000    # characters of one output line printed; the log file has it whole


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
        self.output: dict[str, deque[str]] = {}
        self.log_paths: dict[str, str] = {}
        self.failures: list[str] = []
        self.started = time.time()
        self._line_shown = False
        self.dry_run = False
        self.finished_durations: list[float] = []
        self.width = 1
        self.ended: set[str] = set()      # tasks of the plan that are over
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the subscriber -----------------------------------------------------
    def __call__(self, ev: Event) -> None:
        with self._lock:
            self._on(ev)

    def _on(self, ev: Event) -> None:
        if isinstance(ev, OutputLine):
            buf = self.output.get(ev.task)
            if buf is None:
                buf = self.output[ev.task] = deque(maxlen=KEEP)
            buf.append(ev.text)
        elif isinstance(ev, TaskStateChanged):
            self._state(ev)
        elif isinstance(ev, TaskStarted):
            self.running[ev.task] = ev.time
            self.width = max(self.width, len(self.running))   # parallelism seen so far
            self.log_paths[ev.task] = ev.log_path
            if self.verbose:
                self._print(f"$ {ev.command}" if "\n" not in ev.command else
                            "$ " + ev.command.replace("\n", "\n$ "))
            self._draw()
        elif isinstance(ev, TaskFinished):
            self._finished(ev)
        elif isinstance(ev, RunStarted):
            self.started = ev.time
            self.dry_run = ev.dry_run
            if self.live and not self.quiet and not ev.dry_run:
                self._ticker = threading.Thread(target=self._tick, daemon=True,
                                                name="gristmill-progress")
                self._ticker.start()
        elif isinstance(ev, RunFinished):
            self._stop.set()
            self._summary(ev)

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            with self._lock:
                self._draw()

    def _state(self, ev: TaskStateChanged) -> None:
        if ev.state is TaskState.WAITING and ev.attempt == 0:
            self.to_run.add(ev.task)
            self.total = len(self.to_run)
        elif ev.state is TaskState.UP_TO_DATE and ev.task in self.to_run:
            # Rechecked after its dependencies ran: nothing to do after all.
            self.done += 1
            self.ended.add(ev.task)
            self._draw()
        elif ev.state is TaskState.SKIPPED:
            self.done += 1
            self.ended.add(ev.task)
            if self.verbose or not self.live:
                why = ev.reasons[0].message if ev.reasons else ""
                self._print(f"- {ev.task} skipped: {why}")

    def _finished(self, ev: TaskFinished) -> None:
        self.running.pop(ev.task, None)
        lines = self.output.pop(ev.task, deque())
        if ev.outcome is Outcome.SUCCEEDED:
            self.done += 1
            self.ended.add(ev.task)
            self.finished_durations.append(ev.duration)
            if not self.quiet and (lines or not self.live or ev.message):
                self._print(f"✓ {ev.task} ({format_duration(ev.duration)})")
                for line in lines:
                    self._print("  " + _capped(line))
            if ev.message:     # it succeeded, but something went wrong beside it
                self._print(f"  ! {ev.message}")
        else:
            what = ev.message or ev.outcome.value
            if ev.will_retry:
                self._print(f"↻ {ev.task} attempt {ev.attempt} failed ({what}); retrying")
            else:
                self.done += 1
                self.ended.add(ev.task)
                self.failures.append(ev.task)
                self._print(f"✗ {ev.task} failed: {what} (attempt {ev.attempt}, "
                            f"{format_duration(ev.duration)})")
                for line in list(lines)[-TAIL:]:
                    self._print("  | " + _capped(line))
                if not lines:
                    # A log file is made at the first byte: a task that printed nothing
                    # has none to point to.
                    self._print("  (it printed nothing)")
                elif ev.task in self.log_paths:
                    self._print(f"  full log: {self.log_paths[ev.task]}")
            if ev.removed_outputs:
                self._print("  removed partial outputs: " + ", ".join(ev.removed_outputs))
        self._draw()

    def _summary(self, ev: RunFinished) -> None:
        self._clear()
        c = ev.counts
        parts = [f"{c[k]} {k.replace('-', ' ')}" for k in
                 ("done", "up-to-date", "failed", "skipped", "waiting", "ready") if c.get(k)]
        word = {RunStatus.SUCCEEDED: "finished", RunStatus.FAILED: "FAILED",
                RunStatus.CANCELLED: "CANCELLED"}.get(ev.status, ev.status.value)
        if self.dry_run:
            return
        if not self.total:
            self.out.write("gristmill: nothing to do, everything is up to date.\n")
        else:
            self.out.write(f"gristmill: run {word} in {format_duration(ev.duration)}: "
                           f"{', '.join(parts)}\n")
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
