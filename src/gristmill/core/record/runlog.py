"""The structured run log: one JSON object per line, per event, per run.

``RunLog.on_event`` only puts the event on a queue; one background thread
turns events into lines and writes them, so a slow disk never stalls the
engine. Each line is::

    {"ts": "2024-05-01T12:00:00.123456+00:00", "run": "<run id>", "task": "thumb",
     "attempt": 1, "event": "task_finished", "outcome": "succeeded", ...}

``task`` and ``attempt`` are present on every line (``null`` for run events);
the other fields are the event's own, with enums as their values and reasons
as ``{"kind", "message"}``. A run's file is opened at its first event and
closed at ``RunFinished``.

Output lines are not copied here: the executor writes each attempt's output to its own
log, and the ``task_started`` line names that file (``log_path``). A run log is a
few lines per task however much the tasks print.

The file is ``RunStarted.log_path`` when the engine sets it (so the path
history records is the one written), else ``run_log_path(run_id, directory)``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
import os
import re
from datetime import datetime, timezone
from json.encoder import encode_basestring as _string   # C; as json.dumps(ensure_ascii=False)
from pathlib import Path
from typing import IO, Mapping

from .. import paths
from ..events import (Event, OutputLine, RunFinished, RunStarted, TasksUpToDate,
                      TaskStateChanged)
from ..reasons import Reason
from .writer import BackgroundWriter

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_SKIP_FIELDS = frozenset({"run_id", "time", "task", "attempt"})


def runs_dir() -> Path:
    """The default folder of run logs: ``<logs_dir>/runs``."""
    return paths.logs_dir() / "runs"


def run_log_path(run_id: str, directory: Path | None = None) -> Path:
    """Where the log of ``run_id`` goes; the engine puts it in ``RunStarted.log_path``."""
    name = _UNSAFE.sub("_", run_id) or "_"
    return (Path(directory) if directory is not None else runs_dir()) / f"{name}.jsonl"


def _event_name(kind: type) -> str:
    """RunStarted -> "run_started"."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower()


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Reason):
        return {"kind": value.kind.value, "message": value.message}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


_FIELDS: dict[type, tuple[str, str, tuple[str, ...]]] = {}


def event_record(event: Event) -> dict[str, object]:
    """The JSON object of one event, as a run log line holds it."""
    kind = type(event)
    spec = _FIELDS.get(kind)
    if spec is None:
        names = tuple(f.name for f in dataclasses.fields(event) if f.name not in _SKIP_FIELDS)
        spec = _FIELDS[kind] = (_event_name(kind), kind.__name__, names)
    record: dict[str, object] = {
        "ts": datetime.fromtimestamp(event.time, timezone.utc).isoformat(timespec="microseconds"),
        "run": event.run_id,
        "task": getattr(event, "task", None),
        "attempt": getattr(event, "attempt", None),
        "event": spec[0],
    }
    for name in spec[2]:
        record[name] = _jsonable(getattr(event, name))
    return record


# -- the line of one event, written directly ----------------------------------
#
# ``encode_event(e)`` is ``json.dumps(event_record(e), ensure_ascii=False)``, made
# without the dict and the datetime: the run log writes ~7 lines per task, and the
# general path cost ~10 us a line, the writer thread ~150 us per task of a 2,000-task
# run on two cores that the tasks themselves need.

def _float(v: float) -> str:
    if math.isfinite(v):
        return float.__repr__(v)
    return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")


def _sequence(v) -> str:
    try:        # names (a run's 20,000 tasks): each one quoted in C
        return "[" + ", ".join(map(_string, v)) + "]"
    except TypeError:
        return "[" + ", ".join([_value(x) for x in v]) + "]"


def _mapping(v) -> str:
    return "{" + ", ".join([f"{_string(str(k))}: {_value(x)}" for k, x in v.items()]) + "}"


def _reason(r: Reason) -> str:
    return f'{{"kind": {_string(r.kind.value)}, "message": {_string(r.message)}}}'


_DATACLASS_LINES: dict[int, tuple[object, str]] = {}


def _dataclass(v) -> str:
    """A frozen value (``Resources``): encoded once, then found by identity (an equal
    value may differ in its text: ``cpu=1`` and ``cpu=1.0``). The cache holds the value,
    so its id is not reused while the entry lives."""
    hit = _DATACLASS_LINES.get(id(v))
    if hit is not None and hit[0] is v:
        return hit[1]
    text = "{" + ", ".join([f"{_string(f.name)}: {_value(getattr(v, f.name))}"
                            for f in dataclasses.fields(v)]) + "}"
    if len(_DATACLASS_LINES) > 1024:
        _DATACLASS_LINES.clear()
    _DATACLASS_LINES[id(v)] = (v, text)
    return text


_ENCODERS: dict[type, object] = {
    str: _string, int: int.__repr__, float: _float, type(None): lambda _: "null",
    bool: lambda b: "true" if b else "false", tuple: _sequence, list: _sequence,
    Reason: _reason,
}


def _encoder(kind: type):
    if issubclass(kind, enum.Enum):
        fn = {member: _value(member.value) for member in kind}.__getitem__
    elif issubclass(kind, int):      # subclasses of the plain types: as _jsonable keeps them
        fn = int.__repr__
    elif issubclass(kind, float):
        fn = _float
    elif issubclass(kind, str):
        fn = _string
    elif issubclass(kind, Reason):
        fn = _reason
    elif issubclass(kind, (tuple, list)):
        fn = _sequence
    elif issubclass(kind, Mapping):
        fn = _mapping
    elif dataclasses.is_dataclass(kind):
        fn = _dataclass
    elif issubclass(kind, os.PathLike):
        fn = lambda p: _string(os.fspath(p))   # noqa: E731
    else:
        fn = lambda v: _value(_jsonable(v))   # noqa: E731
    _ENCODERS[kind] = fn
    return fn


def _value(v: object) -> str:
    fn = _ENCODERS.get(type(v))
    if fn is None:
        fn = _encoder(type(v))
    return fn(v)  # type: ignore[operator]


class _Clock:
    """``datetime.fromtimestamp(t, utc).isoformat(timespec="microseconds")``, with the
    part up to the second made once per second."""

    __slots__ = ("second", "prefix")

    def __init__(self) -> None:
        self.second: int | None = None
        self.prefix = ""

    def __call__(self, t: float) -> str:
        frac, whole = math.modf(t)
        second = int(whole)
        micro = round(frac * 1e6)        # half to even, as datetime rounds
        if micro >= 1_000_000:
            second += 1
            micro -= 1_000_000
        elif micro < 0:
            second -= 1
            micro += 1_000_000
        if second != self.second:
            self.second = second
            self.prefix = datetime.fromtimestamp(second, timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%S.")
        return f"{self.prefix}{micro:06d}+00:00"


_LINES: dict[type, tuple[str, tuple[tuple[str, str], ...]]] = {}


def _state_line(event: TaskStateChanged, ts: str) -> str:
    """A task's state change, the commonest line (four of a task's seven)."""
    reasons, task, attempt = event.reasons, event.task, event.attempt
    return (f'{{"ts": "{ts}", "run": {_value(event.run_id)}, '
            f'"task": {_string(task) if type(task) is str else _value(task)}, '
            f'"attempt": {int.__repr__(attempt) if type(attempt) is int else _value(attempt)}, '
            f'"event": "task_state_changed", "state": {_value(event.state)}, '
            f'"reasons": {_sequence(reasons) if reasons else "[]"}}}')


def encode_event(event: Event, clock: _Clock | None = None) -> str:
    """The run log's line of ``event`` (without its newline)."""
    kind = type(event)
    ts = (clock or _Clock())(event.time)
    if kind is TaskStateChanged:
        return _state_line(event, ts)  # type: ignore[arg-type]
    spec = _LINES.get(kind)
    if spec is None:
        names = tuple(f.name for f in dataclasses.fields(event) if f.name not in _SKIP_FIELDS)
        spec = _LINES[kind] = (_string(_event_name(kind)),
                               tuple((f", {_string(n)}: ", n) for n in names))
    head = (f'{{"ts": "{ts}", "run": {_value(event.run_id)}, '
            f'"task": {_value(getattr(event, "task", None))}, '
            f'"attempt": {_value(getattr(event, "attempt", None))}, "event": {spec[0]}')
    return head + "".join([key + _value(getattr(event, name)) for key, name in spec[1]]) + "}"


def up_to_date_record(run_id: str, time: float, tasks: list[str]) -> dict[str, object]:
    """One line for many tasks found up to date (``"event": "tasks_up_to_date"``)."""
    return {"ts": datetime.fromtimestamp(time, timezone.utc).isoformat(timespec="microseconds"),
            "run": run_id, "task": None, "attempt": None, "event": "tasks_up_to_date",
            "tasks": tasks}


class RunLog(BackgroundWriter):
    """Writes a JSON-lines log per run. Subscribe ``on_event`` to the engine's bus."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else runs_dir()
        super().__init__("gristmill-runlog")
        # Writer-thread state.
        self._files: dict[str, IO[str]] = {}
        self._paths: dict[str, Path] = {}
        self._broken: set[str] = set()           # runs whose file could not be opened
        self._open_runs: frozenset[str] = frozenset()
        self._clock = _Clock()
        self._start_writer()

    def run_log_path(self, run_id: str) -> Path:
        """Where this log writes ``run_id`` when ``RunStarted.log_path`` is empty."""
        return run_log_path(run_id, self.directory)

    @property
    def open_runs(self) -> frozenset[str]:
        """Runs whose file is open now (started, not yet finished)."""
        return self._open_runs

    # -- the subscriber (engine thread) ---------------------------------------

    def on_event(self, event: Event) -> None:
        """Queue an event for writing (not an output line: the attempt's log has it).
        Never blocks."""
        if not self._closed and type(event) is not OutputLine:
            self._enqueue(event)

    # -- the writer thread ----------------------------------------------------

    def _write_batch(self, events: list[Event]) -> None:
        touched: dict[str, IO[str]] = {}
        plain = (RunStarted, RunFinished, TasksUpToDate)
        files, clock = self._files, self._clock
        i, n = 0, len(events)
        while i < n:
            event = events[i]
            f = files.get(event.run_id)
            if f is None or type(event) in plain:
                if type(event) is TasksUpToDate:
                    # Thousands of tasks in one line, by name: their reasons are what
                    # `gristmill plan` prints, and would make a no-op's log megabytes long.
                    self._write(event, touched, up_to_date_record(
                        event.run_id, event.time, list(event.tasks)))  # type: ignore[attr-defined]
                else:
                    self._write(event, touched)
                i += 1
                continue
            # A stretch of one open run's task events: one write for all their lines.
            run_id, lines = event.run_id, []
            while i < n:
                event = events[i]
                if event.run_id != run_id or type(event) in plain:
                    break
                try:
                    lines.append(encode_event(event, clock))
                except (ValueError, TypeError):
                    log.exception("run log: could not write %r", event)
                i += 1
            try:
                f.write("\n".join(lines) + "\n")
                touched[run_id] = f
            except OSError:
                log.exception("run log: could not write %d lines", len(lines))
        for f in touched.values():
            self._flush_file(f)

    def _writer_stopped(self) -> None:
        for run_id in list(self._files):
            self._close_file(run_id)

    def _write(self, event: Event, touched: dict[str, IO[str]],
               record: dict[str, object] | None = None) -> None:
        run_id = event.run_id
        if isinstance(event, RunStarted) and event.log_path:
            self._paths[run_id] = Path(event.log_path)
        f = self._files.get(run_id)
        if f is None and run_id not in self._broken:
            f = self._open(run_id)
        if f is not None:
            try:
                line = (json.dumps(record, ensure_ascii=False) if record is not None
                        else encode_event(event, self._clock))
                f.write(line + "\n")
                touched[run_id] = f
            except (OSError, ValueError, TypeError):
                log.exception("run log: could not write %r", event)
        if isinstance(event, RunFinished):
            touched.pop(run_id, None)
            self._close_file(run_id)
            self._paths.pop(run_id, None)
            self._broken.discard(run_id)

    def _open(self, run_id: str) -> IO[str] | None:
        path = self._paths.get(run_id) or self.run_log_path(run_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = open(path, "a", encoding="utf-8", errors="backslashreplace", newline="\n")
        except OSError as exc:
            log.error("run log: cannot open %s: %s", path, exc)
            self._broken.add(run_id)
            return None
        self._files[run_id] = f
        self._open_runs = frozenset(self._files)
        return f

    def _close_file(self, run_id: str) -> None:
        f = self._files.pop(run_id, None)
        if f is None:
            return
        self._open_runs = frozenset(self._files)
        try:
            f.close()
        except OSError as exc:
            log.error("run log: closing the log of run %s: %s", run_id, exc)

    @staticmethod
    def _flush_file(f: IO[str]) -> None:
        try:
            f.flush()
        except OSError as exc:
            log.error("run log: %s", exc)
